//! The SQS work queue that feeds the Lambda function: each message is one [`WorkMessage`] as
//! JSON. The event source mapping delivers it (batch size 1); a message whose invocation dies
//! without deleting it becomes visible again after the queue's visibility timeout, and its task
//! resumes from the cursor in the job store.

use async_trait::async_trait;

use super::{QueueError, WorkMessage, WorkQueue};

/// A work queue on one SQS queue.
#[derive(Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl SqsQueue {
    /// A queue at `url`.
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }

    /// The queue's URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

#[async_trait]
impl WorkQueue for SqsQueue {
    async fn send(&self, message: WorkMessage) -> Result<(), QueueError> {
        let body = serde_json::to_string(&message).map_err(|e| QueueError(e.to_string()))?;
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| {
                QueueError(format!(
                    "SQS SendMessage to {}: {}",
                    self.url,
                    crate::aws::error_line(&e)
                ))
            })?;
        Ok(())
    }
}
