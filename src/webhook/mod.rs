//! Webhooks: Standard Webhooks v1 signatures (outcome webhooks and inbound HTTP requests), the
//! event bodies, the SSRF guard and the HTTP notifier.

pub mod event;
pub mod guard;
pub mod sender;
pub mod signature;

use std::time::Duration;

use async_trait::async_trait;

use crate::domain::request::WebhookSpec;

pub use signature::{SignatureError, SigningSecret};

/// The longest wait between two attempts at a webhook, whatever the backoff or the receiver's
/// `Retry-After` says.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(3600);

/// What one attempt to deliver a webhook gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// The receiver answered 2xx.
    Delivered {
        /// The HTTP status.
        status: u16,
    },
    /// 410 Gone: stop sending to this receiver for the job.
    Gone {
        /// The HTTP status.
        status: u16,
    },
    /// Worth trying again (connection failure, timeout, 408, 429, 5xx).
    Retry {
        /// The HTTP status, if the receiver answered.
        status: Option<u16>,
        /// What went wrong.
        error: String,
        /// The receiver's `Retry-After`.
        after: Option<Duration>,
    },
    /// Never worth trying again (other 4xx, a redirect, a refused URL).
    Refused {
        /// The HTTP status, if the receiver answered.
        status: Option<u16>,
        /// What went wrong.
        error: String,
    },
}

/// The port the engine sends webhooks through.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Checks a webhook URL when a job is accepted (no lookup); the error completes a
    /// sentence about `webhook.url`.
    fn check_url(&self, url: &str) -> Result<(), String>;

    /// One signed attempt: POSTs `body` with `webhook-id: id`, timestamped now. Returns the
    /// outcome and how long it took.
    async fn send(&self, spec: &WebhookSpec, id: &str, body: &[u8]) -> (Sent, Duration);
}
