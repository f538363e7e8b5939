//! Where a job is in its life: its status and, while it runs, its phase. Below the job record
//! and its outcome webhook, which both name them.

use serde::{Deserialize, Serialize};

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    /// Accepted, not started.
    Pending,
    /// Running one of its phases.
    InProgress,
    /// Every collection copied and verified.
    Successful,
    /// Stopped by an error; the error log says why.
    Failed,
    /// Stopped on request.
    Cancelled,
}

impl JobStatus {
    /// True for the three statuses a job never leaves.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Successful | Self::Failed | Self::Cancelled)
    }

    /// The name used in records and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::InProgress => "IN_PROGRESS",
            Self::Successful => "SUCCESSFUL",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
        }
    }

    /// Every status, in the order a job goes through them.
    pub const ALL: [Self; 5] = [
        Self::Pending,
        Self::InProgress,
        Self::Successful,
        Self::Failed,
        Self::Cancelled,
    ];

    /// Parses a status name, case-insensitively.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text))
    }
}

/// The step an in-progress job is on, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The target cluster (`target.new_cluster`) created and waited for until it runs.
    Provision,
    /// Both clusters checked, nothing written.
    Preflight,
    /// Target databases, collections and partitions created.
    Schema,
    /// Entities copied, task by task.
    Copy,
    /// Indexes created on the target.
    Index,
    /// Counts compared.
    Verify,
}

impl Phase {
    /// The phase's name in records, messages and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provision => "provision",
            Self::Preflight => "preflight",
            Self::Schema => "schema",
            Self::Copy => "copy",
            Self::Index => "index",
            Self::Verify => "verify",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
