//! Why an engine call failed: one error type for every step, mapped to HTTP statuses and exit
//! codes in one place each (the Lambda's `http` module, the CLI).

use crate::domain::{FieldError, InvalidTransition, Problem, Role};
use crate::milvus::ClusterError;
use crate::queue::{QueueError, Step};
use crate::store::StoreError;

/// Why an engine call failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The request is invalid.
    #[error("invalid request: {0}")]
    Invalid(#[from] FieldError),
    /// The job does not exist.
    #[error("job `{0}` not found")]
    NotFound(String),
    /// The call conflicts with the job's state (or an idempotency key's earlier request).
    #[error("{0}")]
    Conflict(String),
    /// A cluster call failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The job store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The work queue failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// Staging a file for import failed (S3 or the local filesystem).
    #[error(transparent)]
    Staging(#[from] crate::staging::StagingError),
    /// Preflight found problems (every one of them, each with its field); nothing was written.
    #[error("preflight found {} problem(s), nothing was written: {}", .0.len(), joined(.0))]
    Preflight(Vec<Problem>),
    /// A check on the clusters failed while the job ran; the message says what to do.
    #[error("{0}")]
    Refused(String),
    /// The state machine refused a change (a bug, or a race the caller must re-read).
    #[error(transparent)]
    Transition(#[from] InvalidTransition),
    /// An outage outlasted the invocation: the step is handed to the next one (never the
    /// job's failure).
    #[error("the invocation ran out of time waiting out an outage; the next one continues")]
    OutOfTime,
    /// A cluster did not answer for longer than the job's `max_outage`.
    #[error(
        "the {role} cluster has not answered since {since} (longer than options.max_outage); the last error was: {last_error}"
    )]
    OutageTooLong {
        /// Which cluster.
        role: Role,
        /// Since when.
        since: chrono::DateTime<chrono::Utc>,
        /// What it said last.
        last_error: String,
    },
    /// Fault injection: the worker "died" between a write and its checkpoint.
    #[error("injected crash between a write and its checkpoint")]
    InjectedCrash,
    /// The step panicked (a bug): it ended as a crash would, and its message is redelivered.
    #[error("the {step} step panicked: {message}")]
    Panicked {
        /// Which step.
        step: Step,
        /// The panic's message.
        message: String,
    },
}

fn joined(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl EngineError {
    /// The preflight problems behind the error (none for other errors).
    pub fn problems(&self) -> &[Problem] {
        match self {
            Self::Preflight(p) => p,
            _ => &[],
        }
    }
}
