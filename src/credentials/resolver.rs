//! [`TokenResolver`]: finds each secret of a job where its record says it is (a Secrets Manager
//! ARN, a value sealed by the Lambda, a file the CLI reads), or among the secrets the process
//! was given (the CLI's flags).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::OnceCell;

use super::{CredentialError, Credentials, TlsMaterial};
use crate::aws::{Sealer, SecretsClient};
use crate::domain::{ClusterSpec, Role, Secret, WebhookSpec};

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
    secrets: OnceCell<Arc<SecretsClient>>,
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
    pub fn with_secrets(self, secrets: Arc<SecretsClient>) -> Self {
        let _ = self.secrets.set(secrets);
        self
    }

    async fn secrets(&self) -> &SecretsClient {
        self.secrets
            .get_or_init(|| async { Arc::new(SecretsClient::new(&crate::aws::config().await)) })
            .await
    }
}

#[async_trait]
impl Credentials for TokenResolver {
    async fn token(
        &self,
        role: Role,
        spec: &ClusterSpec,
    ) -> Result<Option<Secret>, CredentialError> {
        let refused = CredentialError;
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

    fn seal(&self, purpose: &str, secret: &Secret) -> Option<String> {
        self.sealer.as_ref().map(|s| s.seal(purpose, secret))
    }

    async fn tls(&self, role: Role, spec: &ClusterSpec) -> Result<TlsMaterial, CredentialError> {
        let Some(tls) = &spec.tls else {
            return Ok(TlsMaterial::default());
        };
        let refused = CredentialError;
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

    async fn webhook_secret(&self, spec: &WebhookSpec) -> Result<Option<Secret>, CredentialError> {
        if let Some(arn) = &spec.secret_arn {
            return self
                .secrets()
                .await
                .get(arn)
                .await
                .map(Some)
                .map_err(CredentialError);
        }
        if let Some(sealed) = &spec.sealed_secret {
            let sealer = self.sealer.as_ref().ok_or_else(|| {
                CredentialError(
                    "the webhook secret is sealed, and this process has no sealing key".into(),
                )
            })?;
            return sealer
                .open("webhook", sealed)
                .map(Some)
                .map_err(CredentialError);
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
