//! Secrets Manager lookups, cached per container (rotation is seen within minutes).

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::domain::Secret;

/// How long a secret read from Secrets Manager is reused before it is read again (rotation).
const CACHE_FOR: Duration = Duration::from_secs(300);

/// Reads secret strings from Secrets Manager, keeping each for a few minutes.
pub struct SecretsClient {
    client: aws_sdk_secretsmanager::Client,
    cache: Mutex<HashMap<String, (Instant, Secret)>>,
}

impl SecretsClient {
    /// A client on an SDK configuration.
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            client: aws_sdk_secretsmanager::Client::new(config),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The secret string of `arn` (its current version). The error names the ARN, never a value.
    pub async fn get(&self, arn: &str) -> Result<Secret, String> {
        if let Some((at, value)) = self.cache.lock().await.get(arn) {
            if at.elapsed() < CACHE_FOR {
                return Ok(value.clone());
            }
        }
        let out = self
            .client
            .get_secret_value()
            .secret_id(arn)
            .send()
            .await
            .map_err(|e| format!("cannot read secret `{arn}`: {}", super::error_line(&e)))?;
        let value = out
            .secret_string
            .ok_or_else(|| format!("secret `{arn}` has no string value"))?;
        let value = Secret::new(value);
        self.cache
            .lock()
            .await
            .insert(arn.to_owned(), (Instant::now(), value.clone()));
        Ok(value)
    }
}
