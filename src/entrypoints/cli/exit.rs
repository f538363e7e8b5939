//! How a command ends: the exit codes and the failure that carries one.
//!
//! 0 the job is SUCCESSFUL (`plan`: no problem); 1 it FAILED (`plan`: problems); 2 the request
//! or the command line is invalid; 3 it was CANCELLED; 4 anything else (job not found, store
//! unavailable, conflict); 5 the run was interrupted (Ctrl-C, SIGTERM) and the job can be
//! resumed.

use crate::domain::JobStatus;
use crate::engine::EngineError;

/// Exit code: the job is SUCCESSFUL.
pub const EXIT_OK: i32 = 0;
/// Exit code: the job FAILED.
pub const EXIT_FAILED: i32 = 1;
/// Exit code: invalid request or command line.
pub const EXIT_INVALID: i32 = 2;
/// Exit code: the job was CANCELLED.
pub const EXIT_CANCELLED: i32 = 3;
/// Exit code: anything else.
pub const EXIT_ERROR: i32 = 4;
/// Exit code: the run was interrupted (Ctrl-C, SIGTERM) and the job is resumable.
pub const EXIT_INTERRUPTED: i32 = 5;

/// A CLI failure with its exit code.
#[derive(Debug)]
pub struct Failure {
    /// The process exit code.
    pub code: i32,
    /// What to print.
    pub message: String,
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        let code = match e {
            EngineError::Invalid(_) => EXIT_INVALID,
            _ => EXIT_ERROR,
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

/// A failure of the command line's own input (exit code 2).
pub(super) fn invalid(message: impl Into<String>) -> Failure {
    Failure {
        code: EXIT_INVALID,
        message: message.into(),
    }
}

pub(super) fn exit_code(status: JobStatus) -> i32 {
    match status {
        JobStatus::Successful => EXIT_OK,
        JobStatus::Cancelled => EXIT_CANCELLED,
        JobStatus::Failed => EXIT_FAILED,
        JobStatus::Pending | JobStatus::InProgress => EXIT_OK,
    }
}
