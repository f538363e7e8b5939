//! Where a job's signed outcome webhook goes: the request's `webhook`.

use serde::{Deserialize, Serialize};

use super::{FieldError, Secret};

/// Where the signed outcome webhook goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
#[serde(deny_unknown_fields)]
pub struct WebhookSpec {
    /// The receiver.
    pub url: String,
    /// The `whsec_...` signing secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
    /// A Secrets Manager ARN holding the signing secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_arn: Option<String>,
    /// Send `migration.progress` events at most this often (seconds); off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_every_seconds: Option<u64>,
    /// The inline secret, sealed by the Lambda deployment (see `ClusterSpec::sealed_token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_secret: Option<String>,
}

impl WebhookSpec {
    pub(super) fn validate(&self) -> Result<(), FieldError> {
        let url = self.url.trim();
        let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
        if !scheme_ok || url.len() <= "https://".len() {
            return Err(FieldError::new(
                "webhook.url",
                "must be an https:// URL (http:// only to a loopback address, for local runs)",
            ));
        }
        match (&self.secret, &self.secret_arn) {
            (Some(_), Some(_)) => Err(FieldError::new(
                "webhook.secret_arn",
                "give either secret or secret_arn, not both",
            )),
            (None, None) => Err(FieldError::new(
                "webhook.secret",
                "is required (or secret_arn): webhooks are always signed",
            )),
            (Some(secret), None) if !secret.is_redacted() => {
                crate::domain::secret::signing_key(secret.expose())
                    .map(|_| ())
                    .map_err(|e| FieldError::new("webhook.secret", e))
            }
            (None, Some(arn)) if !arn.starts_with("arn:") || !arn.contains(":secretsmanager:") => {
                Err(FieldError::new(
                    "webhook.secret_arn",
                    "is not a Secrets Manager ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)",
                ))
            }
            _ => Ok(()),
        }?;
        if self.progress_every_seconds == Some(0) {
            return Err(FieldError::new(
                "webhook.progress_every_seconds",
                "must be at least 1 (leave it out for no progress events)",
            ));
        }
        Ok(())
    }
}
