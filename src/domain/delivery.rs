//! The outcome webhook of a job as its record keeps it: the event, every attempt to deliver
//! it, and where the delivery stands.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::status::JobStatus;

/// Where an outcome webhook stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Not delivered yet; `next_attempt_at` says when it is tried (again).
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up: a 4xx other than 408/429/410, a redirect, a refused URL, or every attempt used.
    Failed,
    /// The receiver answered 410 Gone: nothing more is sent to it for this job.
    Disabled,
}

impl DeliveryState {
    /// The state's name as `status` shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Disabled => "disabled",
        }
    }
}

/// The kinds of webhook event, by their wire names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WebhookEvent {
    /// The job ended SUCCESSFUL.
    #[serde(rename = "migration.succeeded")]
    Succeeded,
    /// The job ended FAILED.
    #[serde(rename = "migration.failed")]
    Failed,
    /// The job ended CANCELLED.
    #[serde(rename = "migration.cancelled")]
    Cancelled,
    /// Copy progress (best effort, never retried).
    #[serde(rename = "migration.progress")]
    Progress,
}

impl WebhookEvent {
    /// The wire name (`type` in the body).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "migration.succeeded",
            Self::Failed => "migration.failed",
            Self::Cancelled => "migration.cancelled",
            Self::Progress => "migration.progress",
        }
    }

    /// The outcome event of a job that ended with `status`.
    pub fn outcome(status: JobStatus) -> Self {
        match status {
            JobStatus::Successful => Self::Succeeded,
            JobStatus::Cancelled => Self::Cancelled,
            _ => Self::Failed,
        }
    }
}

impl std::fmt::Display for WebhookEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One try at delivering a webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// When it was sent.
    pub time: DateTime<Utc>,
    /// The HTTP status, if the receiver answered.
    pub status: Option<u16>,
    /// Milliseconds until the answer (or the failure).
    pub latency_ms: u64,
    /// What went wrong, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The outcome webhook of an ended job, and every attempt to deliver it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// `webhook-id`: the same for every attempt, so receivers can drop duplicates.
    pub id: String,
    /// `migration.succeeded`, `migration.failed` or `migration.cancelled`.
    pub event: WebhookEvent,
    /// The event's time (the job's end).
    pub timestamp: DateTime<Utc>,
    /// Where it stands.
    pub state: DeliveryState,
    /// Every attempt, oldest first.
    pub attempts: Vec<Attempt>,
    /// When the next attempt is due (also pushed forward while an attempt is in flight).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
}

impl Delivery {
    /// A pending delivery of `event`, due at once.
    pub fn new(event: WebhookEvent, now: DateTime<Utc>) -> Self {
        Self {
            id: format!("msg_{}", uuid::Uuid::new_v4().simple()),
            event,
            timestamp: now,
            state: DeliveryState::Pending,
            attempts: Vec::new(),
            next_attempt_at: Some(now),
        }
    }
}
