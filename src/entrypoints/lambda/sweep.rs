//! The sweep, on the EventBridge schedule: every job that has not ended is looked after (lost
//! work re-enqueued, finished copies finished, jobs past their window ended), and due outcome
//! webhooks are sent again.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::LambdaApp;
use crate::domain::JobStatus;
use crate::entrypoints::api_error::ApiError;

impl LambdaApp {
    /// Sweeps every job that has not ended: lost work is re-enqueued, finished copies are
    /// finished, jobs past their window end.
    pub(super) async fn sweep(&self) -> Result<Value, ApiError> {
        let mut swept = 0;
        let mut errors: HashMap<String, String> = HashMap::new();
        for status in [JobStatus::Pending, JobStatus::InProgress] {
            let mut next: Option<String> = None;
            loop {
                let page = self
                    .engine
                    .store()
                    .list_jobs(Some(status), 100, next.as_deref())
                    .await?;
                for job in &page.jobs {
                    swept += 1;
                    if let Err(e) = self.engine.sweep(&job.id).await {
                        tracing::warn!(job_id = %job.id, "sweep failed: {e}");
                        errors.insert(job.id.clone(), e.to_string());
                    }
                }
                next = page.next;
                if next.is_none() {
                    break;
                }
            }
        }
        let webhooks = self.engine.sweep_webhooks().await?;
        Ok(json!({ "swept": swept, "webhooks_due": webhooks, "errors": errors }))
    }
}
