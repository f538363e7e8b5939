//! The work queue port: how the engine hands itself the next step of a job (plan, copy work,
//! finish). Delivery is at least once, so every step is safe to run twice.
//!
//! Adapters: [`inprocess::InProcessQueue`] for local runs, [`sqs::SqsQueue`] feeding the Lambda.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub mod inprocess;
pub mod sqs;

/// One step of a job, as it travels through the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WorkMessage {
    /// Preflight, create the target schema, cut tasks.
    Plan {
        /// The job.
        job_id: String,
    },
    /// Claim a task of the job and copy until it is done or the invocation's time runs out.
    Work {
        /// The job.
        job_id: String,
    },
    /// Index, verify and end the job.
    Finish {
        /// The job.
        job_id: String,
    },
    /// Deliver the ended job's outcome webhook (attempts while the invocation lasts).
    Deliver {
        /// The job.
        job_id: String,
    },
}

/// The kind of step a message asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Preflight, schema and tasks.
    Plan,
    /// Copying tasks.
    Work,
    /// Index, verification and the end of the job.
    Finish,
    /// The outcome webhook.
    Deliver,
}

impl Step {
    /// The step's name in logs and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plan => "plan",
            Self::Work => "copy",
            Self::Finish => "finish",
            Self::Deliver => "deliver",
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl WorkMessage {
    /// A `Plan` message for a job.
    pub fn plan(job_id: &str) -> Self {
        Self::Plan {
            job_id: job_id.into(),
        }
    }

    /// A `Work` message for a job.
    pub fn work(job_id: &str) -> Self {
        Self::Work {
            job_id: job_id.into(),
        }
    }

    /// A `Finish` message for a job.
    pub fn finish(job_id: &str) -> Self {
        Self::Finish {
            job_id: job_id.into(),
        }
    }

    /// A `Deliver` message for a job.
    pub fn deliver(job_id: &str) -> Self {
        Self::Deliver {
            job_id: job_id.into(),
        }
    }

    /// The kind of step it asks for.
    pub fn step(&self) -> Step {
        match self {
            Self::Plan { .. } => Step::Plan,
            Self::Work { .. } => Step::Work,
            Self::Finish { .. } => Step::Finish,
            Self::Deliver { .. } => Step::Deliver,
        }
    }

    /// The job the message belongs to.
    pub fn job_id(&self) -> &str {
        match self {
            Self::Plan { job_id }
            | Self::Work { job_id }
            | Self::Finish { job_id }
            | Self::Deliver { job_id } => job_id,
        }
    }
}

/// A failure to enqueue.
#[derive(Debug, thiserror::Error)]
#[error("work queue: {0}")]
pub struct QueueError(pub String);

/// Where the engine sends the next steps of its jobs.
#[async_trait]
pub trait WorkQueue: Send + Sync {
    /// Enqueues a message for some worker (possibly in another invocation).
    async fn send(&self, message: WorkMessage) -> Result<(), QueueError>;
}
