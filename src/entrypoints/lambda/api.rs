//! The API's calls, whatever trigger carried them (HTTP, direct invoke, EventBridge): start,
//! status, list, cancel, sweep. Inline secrets of a start are sealed before the job is written.

use serde_json::{json, Value};

use super::LambdaApp;
use crate::domain::{JobStatus, MigrationRequest, Role};
use crate::engine::Budget;
use crate::entrypoints::api_error::ApiError;

/// One call of the API.
#[derive(Debug)]
pub(super) enum Call {
    /// Start a migration: the request's JSON text, and an `Idempotency-Key` header; or, with
    /// `dry_run` (or `"dry_run": true` in the request), only plan it.
    Start {
        body: String,
        idempotency_key: Option<String>,
        dry_run: bool,
    },
    /// A job's report.
    Status(String),
    /// Jobs, newest first, as the query string gives the filters.
    List {
        status: Option<String>,
        limit: Option<String>,
        next: Option<String>,
    },
    /// Cancel a job.
    Cancel(String),
    /// Look after every job that has not ended.
    Sweep,
}

/// The largest `limit` of a listing.
const MAX_LIST_LIMIT: usize = 1000;

impl LambdaApp {
    /// Runs a call; returns the HTTP status and the body.
    pub(super) async fn call(&self, call: Call) -> Result<(u16, Value), ApiError> {
        match call {
            Call::Start {
                body,
                idempotency_key,
                dry_run,
            } => self.start(&body, idempotency_key, dry_run).await,
            Call::Status(id) => Ok((200, json!(self.engine.report(&id).await?))),
            Call::Cancel(id) => {
                self.engine.cancel(&id).await?;
                Ok((200, json!(self.engine.report(&id).await?)))
            }
            Call::List {
                status,
                limit,
                next,
            } => self.list(status, limit, next).await,
            Call::Sweep => Ok((200, self.sweep().await?)),
        }
    }

    async fn start(
        &self,
        body: &str,
        idempotency_key: Option<String>,
        dry_run: bool,
    ) -> Result<(u16, Value), ApiError> {
        let mut request = MigrationRequest::from_json(body)?;
        self.deployment_api_key(&mut request);
        if dry_run || request.dry_run {
            request.dry_run = true;
            self.seal(&mut request)?;
            // A dry run answers within the invocation: at most one run's time.
            let budget = Budget::new(None, self.config.max_run, self.config.engine.safety_margin);
            let plan = self.engine.dry_run(request, budget).await?;
            return Ok((200, json!(plan)));
        }
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

    async fn list(
        &self,
        status: Option<String>,
        limit: Option<String>,
        next: Option<String>,
    ) -> Result<(u16, Value), ApiError> {
        let status = status
            .filter(|s| !s.is_empty())
            .map(|s| {
                JobStatus::parse(&s).ok_or_else(|| {
                    ApiError::field(
                        "status",
                        format!("`{s}` is not one of PENDING, IN_PROGRESS, SUCCESSFUL, FAILED, CANCELLED"),
                    )
                })
            })
            .transpose()?;
        let limit = match limit {
            None => 50,
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=MAX_LIST_LIMIT).contains(l))
                .ok_or_else(|| {
                    ApiError::field(
                        "limit",
                        format!("must be a number from 1 to {MAX_LIST_LIMIT}"),
                    )
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

    /// Keeps inline tokens only sealed; without a sealing key they cannot be kept at all.
    pub(super) fn seal(&self, request: &mut MigrationRequest) -> Result<(), ApiError> {
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
}
