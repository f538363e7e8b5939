//! How the function is set up, from its environment (see `template.yaml`).

use std::time::Duration;

use crate::engine::EngineConfig;
use crate::env::{duration as env_duration, text as env_text};
use crate::milvus::zilliz::{API_URL_ENV, DEFAULT_API_URL};
use crate::webhook::guard::{Cidr, UrlPolicy};

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
    /// How long ended jobs are kept (`VECMIGRATE_RETENTION_DAYS`, default 30).
    pub retention_days: u32,
    /// Private ranges webhooks may go to (`VECMIGRATE_ALLOWED_PRIVATE_RANGES`, CIDRs).
    pub allowed_private: Vec<Cidr>,
    /// The Zilliz Cloud control plane clusters given by id are resolved through
    /// (`VECMIGRATE_ZILLIZ_API_URL`, default `https://api.cloud.zilliz.com`).
    pub zilliz_api_url: String,
    /// Secrets Manager ARN of the deployment's Zilliz Cloud API key, used for clusters given
    /// by id when a request brings no key (`VECMIGRATE_ZILLIZ_API_KEY_SECRET_ARN`).
    pub zilliz_api_key_secret_arn: Option<String>,
    /// Whether the Zilliz-compatible `/v2` routes accept callers whose only credential is a
    /// Zilliz Cloud API key (`Authorization: Bearer`) that can see the clusters they name
    /// (`VECMIGRATE_ZILLIZ_BEARER_AUTH=true`).
    pub zilliz_bearer_auth: bool,
    /// The engine's settings (leases, safety margin, webhook retries; see [`EngineConfig`]).
    pub engine: EngineConfig,
    /// The function's name, the `Function` dimension of its metrics
    /// (`AWS_LAMBDA_FUNCTION_NAME`, which Lambda sets).
    pub function_name: String,
}

impl LambdaConfig {
    /// Reads the configuration from the environment; the error names the variable.
    pub fn from_env() -> Result<Self, String> {
        let required = |name: &str| {
            env_text(name).ok_or_else(|| format!("{name} is not set (see template.yaml)"))
        };
        let retention_days = match env_text("VECMIGRATE_RETENTION_DAYS") {
            None => crate::store::dynamodb::DEFAULT_RETENTION_DAYS,
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| format!("VECMIGRATE_RETENTION_DAYS=`{v}` is not a number of days"))?,
        };
        Ok(Self {
            function_name: env_text("AWS_LAMBDA_FUNCTION_NAME")
                .unwrap_or_else(|| "vecmigrate".into()),
            table: required("VECMIGRATE_TABLE")?,
            queue_url: required("VECMIGRATE_QUEUE_URL")?,
            sealing_key_arn: env_text("VECMIGRATE_SEALING_KEY_ARN"),
            inbound_secret_arn: env_text("VECMIGRATE_INBOUND_SECRET_ARN"),
            max_run: env_duration("VECMIGRATE_MAX_RUN", None)?,
            retention_days,
            allowed_private: UrlPolicy::parse_ranges(
                &env_text("VECMIGRATE_ALLOWED_PRIVATE_RANGES").unwrap_or_default(),
            )
            .map_err(|e| format!("VECMIGRATE_ALLOWED_PRIVATE_RANGES: {e}"))?,
            zilliz_api_url: env_text(API_URL_ENV).unwrap_or_else(|| DEFAULT_API_URL.into()),
            zilliz_api_key_secret_arn: env_text("VECMIGRATE_ZILLIZ_API_KEY_SECRET_ARN"),
            zilliz_bearer_auth: match env_text("VECMIGRATE_ZILLIZ_BEARER_AUTH").as_deref() {
                None | Some("false") => false,
                Some("true") => true,
                Some(other) => {
                    return Err(format!(
                        "VECMIGRATE_ZILLIZ_BEARER_AUTH=`{other}` is neither true nor false"
                    ))
                }
            },
            engine: EngineConfig::from_env()?,
        })
    }
}
