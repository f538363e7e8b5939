//! Direct invocations and EventBridge rules' inputs: `{"action": "start" | "status" |
//! "cancel" | "list" | "sweep", ...}`, answered with the call's body (errors as
//! `{"error": ...}`).

use serde_json::Value;

use super::api::Call;
use super::event::Invocation;
use super::LambdaApp;

impl LambdaApp {
    /// Runs an invocation; returns its body.
    pub(super) async fn on_invoke(&self, invocation: Invocation) -> Value {
        let call = match invocation {
            Invocation::Start(request) => Call::Start {
                body: request.to_string(),
                idempotency_key: None,
                dry_run: false,
            },
            Invocation::Status(job_id) => Call::Status(job_id),
            Invocation::Cancel(job_id) => Call::Cancel(job_id),
            Invocation::List {
                status,
                limit,
                next,
            } => Call::List {
                status,
                limit: limit.map(|l| l.text()),
                next,
            },
            Invocation::Sweep => Call::Sweep,
        };
        match self.call(call).await {
            Ok((_, body)) => body,
            Err(e) => e.body(),
        }
    }
}
