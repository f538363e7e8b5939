//! The AWS Lambda entrypoint: routes every event the function receives to the engine.
//!
//! - Function URL / API Gateway HTTP API requests (payload format 2.0): `POST /migrations`,
//!   `GET /migrations/{id}`, `GET /migrations?status=&limit=&next=`,
//!   `POST /migrations/{id}/cancel`. Callers are trusted when AWS verified their IAM signature
//!   (the request context carries an IAM authorizer), or when the body carries a valid Standard
//!   Webhooks signature with the deployment's inbound secret.
//! - Direct invoke and EventBridge schedules: `{ "action": "start" | "status" | "cancel" |
//!   "list" | "sweep", ... }`, bare or as the `detail` of an EventBridge event; a plain
//!   `Scheduled Event` sweeps.
//! - SQS work messages, answered with partial-batch failures.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{env_duration, env_text};
use crate::aws::{Sealer, SecretsClient, TokenResolver};
use crate::domain::{FieldError, JobStatus, MigrationRequest};
use crate::engine::{Budget, Engine, EngineConfig, EngineError, Faults};
use crate::milvus::grpc::MilvusConnector;
use crate::milvus::Role;
use crate::queue::sqs::SqsQueue;
use crate::queue::WorkMessage;
use crate::store::dynamodb::DynamoStore;
use crate::store::StoreError;
use crate::webhook::guard::{Cidr, UrlPolicy};
use crate::webhook::sender::HttpNotifier;
use crate::webhook::SigningSecret;

/// How the function is set up, from its environment (see `template.yaml`).
#[derive(Debug, Clone)]
pub struct LambdaConfig {
    /// The DynamoDB table (`VECMIGRATE_TABLE`).
    pub table: String,
    /// The SQS work queue's URL (`VECMIGRATE_QUEUE_URL`).
    pub queue_url: String,
    /// Secrets Manager ARN of the key that seals inline tokens (`VECMIGRATE_SEALING_KEY_ARN`).
    pub sealing_key_arn: Option<String>,
    /// Secrets Manager ARN of the inbound signature secret (`VECMIGRATE_INBOUND_SECRET_ARN`).
    pub inbound_secret_arn: Option<String>,
    /// The longest one invocation copies (`VECMIGRATE_MAX_RUN`, e.g. `14m`).
    pub max_run: Option<Duration>,
    /// Stop this long before the deadline (`VECMIGRATE_SAFETY_MARGIN`, default `30s`).
    pub safety_margin: Duration,
    /// A task lease's lifetime without a checkpoint (`VECMIGRATE_LEASE_TTL`, default `2m`).
    pub lease_ttl: Duration,
    /// How long ended jobs are kept (`VECMIGRATE_RETENTION_DAYS`, default 30).
    pub retention_days: u32,
    /// Private ranges webhooks may go to (`VECMIGRATE_ALLOWED_PRIVATE_RANGES`, CIDRs).
    pub allowed_private: Vec<Cidr>,
    /// The wait before a webhook's second attempt (`VECMIGRATE_WEBHOOK_BACKOFF`, default `5s`;
    /// each later wait is four times longer).
    pub webhook_backoff: Duration,
    /// How long one webhook attempt may take (`VECMIGRATE_WEBHOOK_TIMEOUT`, default `15s`).
    pub webhook_timeout: Duration,
}

impl LambdaConfig {
    /// Reads the configuration from the environment; the error names the variable.
    pub fn from_env() -> Result<Self, String> {
        let required = |name: &str| {
            env_text(name).ok_or_else(|| format!("{name} is not set (see template.yaml)"))
        };
        let retention_days = match env_text("VECMIGRATE_RETENTION_DAYS") {
            None => 30,
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| format!("VECMIGRATE_RETENTION_DAYS=`{v}` is not a number of days"))?,
        };
        Ok(Self {
            table: required("VECMIGRATE_TABLE")?,
            queue_url: required("VECMIGRATE_QUEUE_URL")?,
            sealing_key_arn: env_text("VECMIGRATE_SEALING_KEY_ARN"),
            inbound_secret_arn: env_text("VECMIGRATE_INBOUND_SECRET_ARN"),
            max_run: env_duration("VECMIGRATE_MAX_RUN", None)?,
            safety_margin: env_duration("VECMIGRATE_SAFETY_MARGIN", Some(Duration::from_secs(30)))?
                .unwrap_or_default(),
            lease_ttl: env_duration("VECMIGRATE_LEASE_TTL", Some(Duration::from_secs(120)))?
                .unwrap_or_default(),
            retention_days,
            allowed_private: UrlPolicy::parse_ranges(
                &env_text("VECMIGRATE_ALLOWED_PRIVATE_RANGES").unwrap_or_default(),
            )
            .map_err(|e| format!("VECMIGRATE_ALLOWED_PRIVATE_RANGES: {e}"))?,
            webhook_backoff: env_duration(
                "VECMIGRATE_WEBHOOK_BACKOFF",
                Some(Duration::from_secs(5)),
            )?
            .unwrap_or_default(),
            webhook_timeout: env_duration(
                "VECMIGRATE_WEBHOOK_TIMEOUT",
                Some(Duration::from_secs(15)),
            )?
            .unwrap_or_default(),
        })
    }
}

/// The function: an engine on DynamoDB and SQS, plus what the HTTP routes need.
pub struct LambdaApp {
    engine: Engine,
    config: LambdaConfig,
    sealer: Option<Sealer>,
    inbound: Option<SigningSecret>,
}

/// An API error: the status code and the JSON body `{ "error": { code, message, field } }`.
#[derive(Debug)]
struct ApiError {
    status: u16,
    code: &'static str,
    message: String,
    field: Option<String>,
}

impl ApiError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status: 400,
            code: "invalid_request",
            message: message.into(),
            field: Some(field.into()),
        }
    }

    fn body(&self) -> Value {
        json!({ "error": { "code": self.code, "message": self.message, "field": self.field } })
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        let field = (!e.field.is_empty()).then_some(e.field.clone());
        Self {
            status: 400,
            code: "invalid_request",
            message: e.to_string(),
            field,
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Invalid(f) => f.into(),
            EngineError::NotFound(id) => {
                Self::new(404, "not_found", format!("job `{id}` not found"))
            }
            EngineError::Conflict(m) => Self::new(409, "conflict", m),
            EngineError::Store(StoreError::NotFound(what)) if what.starts_with("page token") => {
                Self::field("next", format!("{what} is not a token this API returned"))
            }
            e @ (EngineError::Store(_) | EngineError::Queue(_)) => {
                tracing::error!("{e}");
                Self::new(503, "unavailable", format!("{e}; try again"))
            }
            e => Self::new(500, "internal", e.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        EngineError::from(e).into()
    }
}

/// One call of the API, whatever trigger carried it.
#[derive(Debug)]
enum Call {
    Start {
        body: String,
        idempotency_key: Option<String>,
    },
    Status(String),
    List {
        status: Option<String>,
        limit: Option<String>,
        next: Option<String>,
    },
    Cancel(String),
    Sweep,
}

/// A direct invocation (or an EventBridge rule's input).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Invocation {
    action: String,
    #[serde(default)]
    request: Option<Value>,
    #[serde(default)]
    job_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    limit: Option<Value>,
    #[serde(default)]
    next: Option<String>,
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
        let engine_config = EngineConfig {
            lease_ttl: config.lease_ttl,
            safety_margin: config.safety_margin,
            webhook_backoff: config.webhook_backoff,
            webhook_timeout: config.webhook_timeout,
            ..EngineConfig::default()
        };
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
            Arc::new(MilvusConnector::with_credentials(resolver)),
            Arc::new(notifier),
            engine_config,
        );
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

    /// Installs fault injection (tests of crash recovery only).
    pub fn with_faults(mut self, faults: Faults) -> Self {
        self.engine = self.engine.with_faults(faults);
        self
    }

    /// Handles one event. `deadline_ms` is the invocation's deadline in epoch milliseconds.
    pub async fn handle(&self, event: Value, deadline_ms: u64) -> Value {
        let budget = Budget::new(
            time_left(deadline_ms, now_ms()),
            self.config.max_run,
            self.config.safety_margin,
        );
        if event
            .pointer("/Records/0/eventSource")
            .and_then(Value::as_str)
            == Some("aws:sqs")
        {
            return self.on_sqs(event, budget).await;
        }
        if event.pointer("/requestContext/http").is_some() {
            return self.on_http(event).await;
        }
        if let Some(kind) = event.get("detail-type").and_then(Value::as_str) {
            let detail = event.get("detail").cloned().unwrap_or(Value::Null);
            if detail.get("action").is_some() {
                return self.on_invoke(detail).await;
            }
            if kind == "Scheduled Event" {
                return self.on_invoke(json!({ "action": "sweep" })).await;
            }
            return ApiError::new(
                400,
                "bad_event",
                format!("no route for EventBridge events of type `{kind}`"),
            )
            .body();
        }
        self.on_invoke(event).await
    }

    async fn on_sqs(&self, event: Value, budget: Budget) -> Value {
        let event: SqsEvent = match serde_json::from_value(event) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!("unreadable SQS event: {e}");
                return json!({ "batchItemFailures": [] });
            }
        };
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
                    .map_err(|e| format!("{} of job {}: {e}", kind_of(&message), message.job_id())),
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

    async fn on_http(&self, event: Value) -> Value {
        let (status, body) = match serde_json::from_value::<LambdaFunctionUrlRequest>(event) {
            Err(e) => (
                400,
                ApiError::new(400, "bad_event", format!("unreadable HTTP event: {e}")).body(),
            ),
            Ok(request) => match self.http(request).await {
                Ok((status, body)) => (status, body),
                Err(e) => (e.status, e.body()),
            },
        };
        let mut response = LambdaFunctionUrlResponse::default();
        response.status_code = status.into();
        response.headers.insert(
            "content-type",
            aws_lambda_events::http::HeaderValue::from_static("application/json"),
        );
        response.body = Some(body.to_string());
        serde_json::to_value(response).unwrap_or(Value::Null)
    }

    async fn http(&self, request: LambdaFunctionUrlRequest) -> Result<(u16, Value), ApiError> {
        let method = request
            .request_context
            .http
            .method
            .clone()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let path = request.raw_path.clone().unwrap_or_default();
        let body = match (&request.body, request.is_base64_encoded) {
            (None, _) => Vec::new(),
            (Some(b), false) => b.as_bytes().to_vec(),
            (Some(b), true) => base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|_| ApiError::new(400, "bad_request", "the body is not valid base64"))?,
        };
        self.authenticate(&request, &body)?;
        let header = |name: &str| {
            request
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let query = |name: &str| request.query_string_parameters.get(name).cloned();
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let call = match (method.as_str(), segments.as_slice()) {
            ("POST", ["migrations"]) => Call::Start {
                body: String::from_utf8(body)
                    .map_err(|_| ApiError::new(400, "bad_request", "the body is not UTF-8 text"))?,
                idempotency_key: header("idempotency-key"),
            },
            ("GET", ["migrations"]) => Call::List {
                status: query("status"),
                limit: query("limit"),
                next: query("next"),
            },
            ("GET", ["migrations", id]) => Call::Status((*id).to_owned()),
            ("POST", ["migrations", id, "cancel"]) => Call::Cancel((*id).to_owned()),
            (_, ["migrations"] | ["migrations", _] | ["migrations", _, "cancel"]) => {
                return Err(ApiError::new(
                    405,
                    "method_not_allowed",
                    format!("{method} is not allowed on {path}"),
                ))
            }
            _ => {
                return Err(ApiError::new(
                    404,
                    "not_found",
                    format!("no route {method} {path}"),
                ))
            }
        };
        self.call(call).await
    }

    /// IAM-verified callers pass; others need a valid inbound Standard Webhooks signature.
    fn authenticate(
        &self,
        request: &LambdaFunctionUrlRequest,
        body: &[u8],
    ) -> Result<(), ApiError> {
        let iam = request
            .request_context
            .authorizer
            .as_ref()
            .and_then(|a| a.iam.as_ref())
            .is_some();
        if iam {
            return Ok(());
        }
        let Some(secret) = &self.inbound else {
            return Err(ApiError::new(
                401,
                "unauthenticated",
                "sign the request with IAM (SigV4); this deployment has no inbound signing secret",
            ));
        };
        let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok());
        secret
            .verify(
                header("webhook-id"),
                header("webhook-timestamp"),
                header("webhook-signature"),
                body,
                chrono::Utc::now().timestamp(),
            )
            .map_err(|e| ApiError::new(401, "unauthenticated", e.to_string()))
    }

    async fn on_invoke(&self, event: Value) -> Value {
        let invocation: Invocation = match serde_path_to_error::deserialize(&event) {
            Ok(i) => i,
            Err(e) => {
                let field = e.path().to_string();
                return ApiError::field(
                    if field == "." { "action".to_owned() } else { field },
                    format!("not an invocation this function knows ({}); send {{\"action\": \"start\" | \"status\" | \"cancel\" | \"list\" | \"sweep\", ...}}", e.into_inner()),
                )
                .body();
            }
        };
        let job_id = |inv: &Invocation| {
            inv.job_id.clone().ok_or_else(|| {
                ApiError::field("job_id", format!("is required for `{}`", inv.action))
            })
        };
        let call = match invocation.action.as_str() {
            "start" => match &invocation.request {
                Some(request) => Ok(Call::Start {
                    body: request.to_string(),
                    idempotency_key: None,
                }),
                None => Err(ApiError::field("request", "is required for `start`")),
            },
            "status" => job_id(&invocation).map(Call::Status),
            "cancel" => job_id(&invocation).map(Call::Cancel),
            "list" => Ok(Call::List {
                status: invocation.status.clone(),
                limit: invocation.limit.as_ref().map(|l| match l {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                }),
                next: invocation.next.clone(),
            }),
            "sweep" => Ok(Call::Sweep),
            other => Err(ApiError::field(
                "action",
                format!("`{other}` is not one of start, status, cancel, list, sweep"),
            )),
        };
        match call {
            Err(e) => e.body(),
            Ok(call) => match self.call(call).await {
                Ok((_, body)) => body,
                Err(e) => e.body(),
            },
        }
    }

    async fn call(&self, call: Call) -> Result<(u16, Value), ApiError> {
        match call {
            Call::Start {
                body,
                idempotency_key,
            } => {
                let mut request = MigrationRequest::from_json(&body)?;
                match (&request.idempotency_key, idempotency_key) {
                    (None, Some(key)) => request.idempotency_key = Some(key),
                    (Some(a), Some(b)) if *a != b => {
                        return Err(ApiError::field(
                            "idempotency_key",
                            "differs from the Idempotency-Key header; give one of them",
                        ))
                    }
                    _ => {}
                }
                self.seal(&mut request)?;
                let (job, created) = self.engine.start(request).await?;
                let report = self.engine.report(&job.id).await?;
                Ok((if created { 202 } else { 200 }, json!(report)))
            }
            Call::Status(id) => Ok((200, json!(self.engine.report(&id).await?))),
            Call::Cancel(id) => {
                self.engine.cancel(&id).await?;
                Ok((200, json!(self.engine.report(&id).await?)))
            }
            Call::List {
                status,
                limit,
                next,
            } => {
                let status = status
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        JobStatus::parse(&s).ok_or_else(|| {
                            ApiError::field("status", format!("`{s}` is not one of PENDING, IN_PROGRESS, SUCCESSFUL, FAILED, CANCELLED"))
                        })
                    })
                    .transpose()?;
                let limit = match limit {
                    None => 50,
                    Some(l) => l
                        .parse::<usize>()
                        .ok()
                        .filter(|l| (1..=1000).contains(l))
                        .ok_or_else(|| {
                            ApiError::field("limit", "must be a number from 1 to 1000")
                        })?,
                };
                let page = self
                    .engine
                    .store()
                    .list_jobs(status, limit, next.as_deref())
                    .await?;
                let jobs: Vec<_> = page.jobs.iter().map(|j| j.public()).collect();
                Ok((200, json!({ "jobs": jobs, "next": page.next })))
            }
            Call::Sweep => Ok((200, self.sweep().await?)),
        }
    }

    /// Keeps inline tokens only sealed; without a sealing key they cannot be kept at all.
    fn seal(&self, request: &mut MigrationRequest) -> Result<(), ApiError> {
        for (role, spec) in [
            (Role::Source, &mut request.source),
            (Role::Target, &mut request.target),
        ] {
            if let Some(tls) = spec.tls.as_mut() {
                for (name, set) in [
                    ("ca_cert_file", tls.ca_cert_file.is_some()),
                    ("client_cert_file", tls.client_cert_file.is_some()),
                    ("client_key_file", tls.client_key_file.is_some()),
                ] {
                    if set {
                        return Err(ApiError::field(
                            format!("{role}.tls.{name}"),
                            "names a file, which the function cannot read; give the PEM text inline, or (for keys and CAs) a Secrets Manager ARN",
                        ));
                    }
                }
                if let Some(key) = tls.client_key.as_ref().filter(|k| !k.is_redacted()) {
                    let Some(sealer) = &self.sealer else {
                        return Err(ApiError::field(
                            format!("{role}.tls.client_key"),
                            "this deployment has no sealing key (VECMIGRATE_SEALING_KEY_ARN), so it cannot keep inline keys; use client_key_secret_arn",
                        ));
                    };
                    tls.sealed_client_key = Some(sealer.seal(&format!("{role}.tls"), key));
                }
            }
            let Some(token) = spec.token.as_ref().filter(|t| !t.is_redacted()) else {
                continue;
            };
            let Some(sealer) = &self.sealer else {
                return Err(ApiError::field(
                    format!("{role}.token"),
                    "this deployment has no sealing key (VECMIGRATE_SEALING_KEY_ARN), so it cannot keep inline tokens; use token_secret_arn",
                ));
            };
            spec.sealed_token = Some(sealer.seal(&role.to_string(), token));
        }
        if let Some(webhook) = request.webhook.as_mut() {
            if let Some(secret) = webhook.secret.as_ref().filter(|s| !s.is_redacted()) {
                let Some(sealer) = &self.sealer else {
                    return Err(ApiError::field(
                        "webhook.secret",
                        "this deployment has no sealing key (VECMIGRATE_SEALING_KEY_ARN), so it cannot keep inline secrets; use secret_arn",
                    ));
                };
                webhook.sealed_secret = Some(sealer.seal("webhook", secret));
            }
        }
        Ok(())
    }

    /// Sweeps every job that has not ended: lost work is re-enqueued, finished copies are
    /// finished, jobs past their window end.
    async fn sweep(&self) -> Result<Value, ApiError> {
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
                        tracing::warn!(job = %job.id, "sweep failed: {e}");
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

fn kind_of(message: &WorkMessage) -> &'static str {
    match message {
        WorkMessage::Plan { .. } => "plan",
        WorkMessage::Work { .. } => "work",
        WorkMessage::Finish { .. } => "finish",
        WorkMessage::Deliver { .. } => "deliver",
    }
}

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
