//! Secrets Manager lookups (cached per container) and the [`TokenResolver`] that finds each
//! cluster's token: a Secrets Manager ARN, a sealed token, or one given on the command line.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use tokio::sync::{Mutex, OnceCell};
use tokio::time::Instant;

use super::Sealer;
use crate::domain::request::WebhookSpec;
use crate::domain::{ClusterSpec, Secret};
use crate::milvus::{ClusterError, Credentials, Role, TlsMaterial};

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
            .map_err(|e| format!("cannot read secret `{arn}`: {}", DisplayErrorContext(&e)))?;
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

/// A cluster token kept in Secrets Manager: the whole string, or the `token` key of a JSON
/// object, or `username` and `password` keys joined as Milvus expects (`user:password`).
fn token_of(secret: &Secret) -> Secret {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str(secret.expose()) else {
        return secret.clone();
    };
    let text = |k: &str| map.get(k).and_then(|v| v.as_str());
    if let Some(token) = text("token") {
        return Secret::new(token);
    }
    match (text("username"), text("password")) {
        (Some(user), Some(password)) => Secret::new(format!("{user}:{password}")),
        _ => secret.clone(),
    }
}

/// Finds the token and the TLS material of each cluster of a job.
pub struct TokenResolver {
    fixed: HashMap<Role, Secret>,
    client_keys: HashMap<Role, Secret>,
    webhook: Option<Secret>,
    sealer: Option<Sealer>,
    secrets: OnceCell<std::sync::Arc<SecretsClient>>,
}

impl TokenResolver {
    /// A resolver with tokens given directly (the CLI's flags), used when a job names none.
    pub fn new(source: Option<Secret>, target: Option<Secret>) -> Self {
        let mut fixed = HashMap::new();
        fixed.extend(source.map(|t| (Role::Source, t)));
        fixed.extend(target.map(|t| (Role::Target, t)));
        Self {
            fixed,
            client_keys: HashMap::new(),
            webhook: None,
            sealer: None,
            secrets: OnceCell::new(),
        }
    }

    /// Signs webhooks with this secret when a job names none it can read (the CLI's flag).
    pub fn with_webhook_secret(mut self, secret: Option<Secret>) -> Self {
        self.webhook = secret;
        self
    }

    /// Client keys given directly (the CLI's flags on resume), used when a job's TLS settings
    /// named a key that was redacted in its record.
    pub fn with_client_keys(mut self, source: Option<Secret>, target: Option<Secret>) -> Self {
        self.client_keys.extend(source.map(|k| (Role::Source, k)));
        self.client_keys.extend(target.map(|k| (Role::Target, k)));
        self
    }

    /// Opens sealed tokens with this sealer.
    pub fn with_sealer(mut self, sealer: Sealer) -> Self {
        self.sealer = Some(sealer);
        self
    }

    /// Reads ARNs with this client (otherwise one is made from the environment on first use).
    pub fn with_secrets(self, secrets: std::sync::Arc<SecretsClient>) -> Self {
        let _ = self.secrets.set(secrets);
        self
    }

    async fn secrets(&self) -> &SecretsClient {
        self.secrets
            .get_or_init(|| async {
                std::sync::Arc::new(SecretsClient::new(&super::config().await))
            })
            .await
    }
}

#[async_trait]
impl Credentials for TokenResolver {
    async fn token(&self, role: Role, spec: &ClusterSpec) -> Result<Option<Secret>, ClusterError> {
        let refused = |detail: String| ClusterError::Credentials { role, detail };
        if let Some(arn) = &spec.token_secret_arn {
            let secret = self.secrets().await.get(arn).await.map_err(refused)?;
            return Ok(Some(token_of(&secret)));
        }
        if let Some(sealed) = &spec.sealed_token {
            let sealer = self.sealer.as_ref().ok_or_else(|| {
                refused("the job's token is sealed, and this process has no sealing key".into())
            })?;
            return sealer
                .open(&role.to_string(), sealed)
                .map(Some)
                .map_err(refused);
        }
        if let Some(token) = spec.token.as_ref().filter(|t| !t.is_redacted()) {
            return Ok(Some(token.clone()));
        }
        Ok(self.fixed.get(&role).cloned())
    }

    async fn tls(&self, role: Role, spec: &ClusterSpec) -> Result<TlsMaterial, ClusterError> {
        let Some(tls) = &spec.tls else {
            return Ok(TlsMaterial::default());
        };
        let refused = |detail: String| ClusterError::Credentials { role, detail };
        let file = |field: &str, path: &str| {
            let field = format!("{role}.tls.{field}");
            let path = path.to_owned();
            async move {
                tokio::fs::read_to_string(&path)
                    .await
                    .map_err(|e| format!("cannot read {field} `{path}`: {e}"))
            }
        };
        let ca_pem = match (&tls.ca_cert, &tls.ca_cert_file, &tls.ca_cert_secret_arn) {
            (Some(pem), _, _) => Some(pem.clone()),
            (_, Some(path), _) => Some(file("ca_cert_file", path).await.map_err(refused)?),
            (_, _, Some(arn)) => Some(
                self.secrets()
                    .await
                    .get(arn)
                    .await
                    .map_err(refused)?
                    .expose()
                    .to_owned(),
            ),
            _ => None,
        };
        let cert = match (&tls.client_cert, &tls.client_cert_file) {
            (Some(pem), _) => Some(pem.clone()),
            (_, Some(path)) => Some(file("client_cert_file", path).await.map_err(refused)?),
            _ => None,
        };
        let key = if let Some(sealed) = &tls.sealed_client_key {
            let sealer = self.sealer.as_ref().ok_or_else(|| {
                refused("the client key is sealed, and this process has no sealing key".into())
            })?;
            Some(
                sealer
                    .open(&format!("{role}.tls"), sealed)
                    .map_err(refused)?,
            )
        } else if let Some(key) = tls.client_key.as_ref().filter(|k| !k.is_redacted()) {
            Some(key.clone())
        } else if let Some(path) = &tls.client_key_file {
            Some(Secret::new(
                file("client_key_file", path).await.map_err(refused)?,
            ))
        } else if let Some(arn) = &tls.client_key_secret_arn {
            Some(self.secrets().await.get(arn).await.map_err(refused)?)
        } else {
            self.client_keys.get(&role).cloned()
        };
        let identity = match (cert, key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, _) => None,
            (Some(_), None) => {
                return Err(refused(format!(
                    "the client key was given inline and is never stored; pass it again (--{role}-client-key FILE)"
                )))
            }
        };
        Ok(TlsMaterial {
            ca_pem,
            identity,
            server_name: tls.server_name.clone(),
        })
    }

    async fn webhook_secret(&self, spec: &WebhookSpec) -> Result<Option<Secret>, String> {
        if let Some(arn) = &spec.secret_arn {
            return self.secrets().await.get(arn).await.map(Some);
        }
        if let Some(sealed) = &spec.sealed_secret {
            let sealer = self.sealer.as_ref().ok_or_else(|| {
                "the webhook secret is sealed, and this process has no sealing key".to_owned()
            })?;
            return sealer.open("webhook", sealed).map(Some);
        }
        if let Some(secret) = spec.secret.as_ref().filter(|s| !s.is_redacted()) {
            return Ok(Some(secret.clone()));
        }
        Ok(self.webhook.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_strings_become_tokens() {
        let t = |s: &str| token_of(&Secret::new(s)).expose().to_owned();
        assert_eq!(t("root:Milvus"), "root:Milvus");
        assert_eq!(t(r#"{"token":"abc"}"#), "abc");
        assert_eq!(t(r#"{"username":"u","password":"p"}"#), "u:p");
        assert_eq!(t(r#"{"other":1}"#), r#"{"other":1}"#);
    }
}
