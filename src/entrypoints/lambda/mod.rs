//! The AWS Lambda entrypoint: reads every event the function receives as one typed [`Event`]
//! and hands it to the engine.
//!
//! - [`http`]: Function URL / API Gateway HTTP API requests (payload format 2.0):
//!   `POST /migrations`, `GET /migrations/{id}`, `GET /migrations?status=&limit=&next=`,
//!   `POST /migrations/{id}/cancel`, with IAM or Standard Webhooks authentication; and
//!   [`zilliz_api`], Zilliz Cloud's own `POST /v2/migrations/toExisting` and
//!   `GET /v2/jobs/{jobId}`.
//! - [`invoke`]: direct invocations and EventBridge inputs, `{ "action": ..., ... }`; a plain
//!   `Scheduled Event` sweeps ([`sweep`]).
//! - [`sqs`]: SQS work messages, answered with partial-batch failures.
//! - [`api`] runs the calls they carry; [`error`] maps every error to its status and body;
//!   [`config`] reads the environment.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::aws::{Sealer, SecretsClient};
use crate::credentials::TokenResolver;
use crate::engine::{Budget, Engine};
use crate::milvus::grpc::MilvusConnector;
use crate::milvus::zilliz::ControlPlane;
use crate::queue::sqs::SqsQueue;
use crate::store::dynamodb::DynamoStore;
use crate::webhook::guard::UrlPolicy;
use crate::webhook::sender::HttpNotifier;
use crate::webhook::SigningSecret;

mod api;
mod config;
mod event;
mod http;
mod invoke;
mod sqs;
mod sweep;
mod zilliz_api;

use crate::entrypoints::api_error::ApiError;
pub use config::LambdaConfig;
use event::Event;
pub use http::{signed_content, MAX_BODY_BYTES};

/// The function: an engine on DynamoDB and SQS, plus what the HTTP routes need.
pub struct LambdaApp {
    engine: Engine,
    config: LambdaConfig,
    sealer: Option<Sealer>,
    inbound: Option<SigningSecret>,
}

/// Milliseconds left before an invocation's deadline, if the deadline makes sense.
/// The cargo-lambda emulator sends a relative deadline (600000), which is in the past as an
/// epoch time and is ignored here; `Budget` ignores deadlines absurdly far away.
pub fn time_left(deadline_ms: u64, now_ms: u64) -> Option<Duration> {
    deadline_ms
        .checked_sub(now_ms)
        .filter(|left| *left > 0)
        .map(Duration::from_millis)
}

fn now_ms() -> u64 {
    chrono::Utc::now().timestamp_millis().max(0) as u64
}

impl LambdaApp {
    /// Builds the clients once per container: DynamoDB, SQS, Secrets Manager and Milvus.
    pub async fn from_config(config: LambdaConfig) -> Result<Self, String> {
        let sdk = crate::aws::config().await;
        let secrets = Arc::new(SecretsClient::new(&sdk));
        let sealer = match &config.sealing_key_arn {
            Some(arn) => Some(Sealer::from_secret(secrets.get(arn).await?.expose())),
            None => None,
        };
        let inbound = match &config.inbound_secret_arn {
            Some(arn) => Some(
                SigningSecret::parse(secrets.get(arn).await?.expose())
                    .map_err(|e| format!("the inbound secret `{arn}` {e}"))?,
            ),
            None => None,
        };
        let mut resolver = TokenResolver::new(None, None).with_secrets(secrets);
        if let Some(s) = &sealer {
            resolver = resolver.with_sealer(s.clone());
        }
        let resolver = Arc::new(resolver);
        let engine_config = config.engine.clone();
        let notifier = HttpNotifier::new(
            UrlPolicy::deployed(config.allowed_private.clone()),
            resolver.clone(),
            engine_config.webhook_timeout,
        );
        let store = DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            config.table.clone(),
            chrono::Duration::days(config.retention_days.into()),
        );
        let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), config.queue_url.clone());
        let engine = Engine::new(
            Arc::new(store),
            Arc::new(queue),
            Arc::new(
                MilvusConnector::new(resolver)
                    .with_control_plane(ControlPlane::new(config.zilliz_api_url.clone())),
            ),
            Arc::new(notifier),
            engine_config,
        )
        // Metrics as EMF lines on stdout: CloudWatch turns them into metrics.
        .with_metrics(crate::metrics::Metrics::stdout(
            config.function_name.clone(),
        ));
        Ok(Self {
            engine,
            config,
            sealer,
            inbound,
        })
    }

    /// The engine (tests read the store through it).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Sends the engine's metrics to `metrics` instead of stdout (the tests read them).
    pub fn with_metrics(mut self, metrics: crate::metrics::Metrics) -> Self {
        self.engine = self.engine.with_metrics(metrics);
        self
    }

    /// Installs fault injection (tests of crash recovery only).
    #[cfg(any(test, feature = "test-support"))]
    pub fn with_faults(mut self, faults: crate::engine::Faults) -> Self {
        self.engine = self.engine.with_faults(faults);
        self
    }

    /// Handles one event. `deadline_ms` is the invocation's deadline in epoch milliseconds.
    /// An SQS batch that cannot be read is an error of the invocation, so that SQS keeps its
    /// messages (and, after its receives, moves them to the dead-letter queue) instead of
    /// deleting them; every other event gets an answer.
    pub async fn handle(&self, event: Value, deadline_ms: u64) -> Result<Value, UnreadableBatch> {
        let budget = Budget::new(
            time_left(deadline_ms, now_ms()),
            self.config.max_run,
            self.config.engine.safety_margin,
        );
        let from_sqs = event
            .pointer("/Records/0/eventSource")
            .and_then(Value::as_str)
            == Some("aws:sqs");
        Ok(match Event::parse(event) {
            Err(e) if from_sqs => {
                tracing::error!("unreadable SQS batch: {}", e.body());
                return Err(UnreadableBatch(e.body().to_string()));
            }
            Err(e) => e.body(),
            Ok(Event::Sqs(sqs)) => self.on_sqs(sqs, budget).await,
            Ok(Event::Http(request)) => self.on_http(*request).await,
            Ok(Event::Invoke(invocation)) => self.on_invoke(invocation).await,
            Ok(Event::Schedule { detail_type }) if detail_type == "Scheduled Event" => {
                match self.call(api::Call::Sweep).await {
                    Ok((_, body)) => body,
                    Err(e) => e.body(),
                }
            }
            Ok(Event::Schedule { detail_type }) => ApiError::new(
                400,
                "bad_event",
                format!("no route for EventBridge events of type `{detail_type}`"),
            )
            .body(),
        })
    }
}

/// An SQS batch the function could not read: the invocation fails, and SQS keeps the messages.
#[derive(Debug, thiserror::Error)]
#[error("unreadable SQS batch: {0}")]
pub struct UnreadableBatch(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_that_make_no_sense_are_ignored() {
        let now = 1_800_000_000_000;
        assert_eq!(time_left(now + 5_000, now), Some(Duration::from_secs(5)));
        // cargo-lambda's emulator sends a relative 600000.
        assert_eq!(time_left(600_000, now), None);
        assert_eq!(time_left(now, now), None);
    }
}
