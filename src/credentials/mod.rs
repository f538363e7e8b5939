//! Credentials: the port through which adapters get each job's secrets (cluster tokens, TLS
//! client keys and CAs, webhook signing secrets) and its one implementation,
//! [`TokenResolver`]. Entry points build one resolver and hand it, as `Arc<dyn Credentials>`, to
//! the Milvus connector and the webhook notifier; neither builds one itself.
//!
//! A job record never holds a secret in clear ([`crate::domain::Secret`] redacts itself), so a
//! secret comes from what the record names (a Secrets Manager ARN, a value the Lambda sealed, a
//! file the CLI may read) or from what the process was given (the CLI's flags).

use async_trait::async_trait;

use crate::domain::{ClusterSpec, Role, Secret, WebhookSpec};

mod resolver;

pub use resolver::TokenResolver;

/// Why a credential could not be found; the message names where it was looked for, never a
/// value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CredentialError(pub String);

/// What a TLS connection to a cluster needs beyond the platform's defaults, resolved from its
/// spec's [`crate::domain::TlsSpec`] (files read, ARNs fetched, sealed keys opened).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsMaterial {
    /// The CA certificates to trust instead of the platform's roots, PEM.
    pub ca_pem: Option<String>,
    /// The client certificate (PEM) and its key, for two-way TLS.
    pub identity: Option<(String, Secret)>,
    /// The name the server's certificate must carry, if not the URI's host.
    pub server_name: Option<String>,
}

/// Where a job's secrets come from (command-line flags, Secrets Manager, sealed values, files).
#[async_trait]
pub trait Credentials: Send + Sync {
    /// The token for the `role` cluster that `spec` describes; `None` for no authentication.
    async fn token(
        &self,
        role: Role,
        spec: &ClusterSpec,
    ) -> Result<Option<Secret>, CredentialError>;

    /// The TLS material of the `role` cluster that `spec` describes (empty without `tls`).
    async fn tls(&self, role: Role, spec: &ClusterSpec) -> Result<TlsMaterial, CredentialError>;

    /// The signing secret of a job's webhook.
    async fn webhook_secret(&self, spec: &WebhookSpec) -> Result<Option<Secret>, CredentialError>;

    /// `secret` sealed for `purpose`, to keep on a job record (a new cluster's password);
    /// `None` where this process has no sealing key (the CLI), and nothing is kept.
    fn seal(&self, purpose: &str, secret: &Secret) -> Option<String>;
}
