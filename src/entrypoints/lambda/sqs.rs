//! SQS work messages from the event source mapping (batch size 1), answered with partial-batch
//! failures so that only a failed message comes back.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use serde_json::Value;

use super::LambdaApp;
use crate::engine::Budget;
use crate::queue::WorkMessage;

impl LambdaApp {
    /// Runs each message's step; the failed ones are named for SQS to deliver again.
    pub(super) async fn on_sqs(&self, event: SqsEvent, budget: Budget) -> Value {
        let mut failures = Vec::new();
        for record in event.records {
            let id = record.message_id.clone().unwrap_or_default();
            let message: Result<WorkMessage, _> =
                serde_json::from_str(record.body.as_deref().unwrap_or_default());
            let outcome = match message {
                // A message no version of this function wrote: the dead-letter queue keeps it.
                Err(e) => Err(format!("not a work message: {e}")),
                Ok(message) => self
                    .engine
                    .handle_guarded(&message, budget)
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("{} of job {}: {e}", message.step(), message.job_id())),
            };
            if let Err(e) = outcome {
                tracing::warn!(message = %id, "work message failed, SQS will redeliver it: {e}");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                failures.push(failure);
            }
        }
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = failures;
        serde_json::to_value(response).unwrap_or(Value::Null)
    }
}
