//! The TLS settings of a cluster behind `https://`: which CA to trust, the client certificate
//! and key of two-way TLS, the server name to expect, each from one source (inline PEM, a file
//! for the CLI, a Secrets Manager ARN), checked before anything connects.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::{Deserialize, Serialize};

use super::cluster::{check_arn, printable};
use super::request::{FieldError, Secret};

/// TLS settings of a cluster: which CA to trust instead of the platform's roots, and the client
/// certificate a server in two-way TLS mode asks for. Certificates are public and kept as
/// given; the client key is a secret like a token.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    /// The CA certificate(s) that signed the server's certificate, PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<String>,
    /// A PEM file holding them (the CLI only: a function cannot read your files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert_file: Option<String>,
    /// A Secrets Manager ARN holding them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert_secret_arn: Option<String>,
    /// The client certificate for two-way TLS, PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<String>,
    /// A PEM file holding it (the CLI only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_file: Option<String>,
    /// The client certificate's private key, PEM: a secret, never stored in clear or shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<Secret>,
    /// A PEM file holding the key (the CLI only; the record keeps the path, not the key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key_file: Option<String>,
    /// A Secrets Manager ARN holding the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key_secret_arn: Option<String>,
    /// The inline key, sealed by the Lambda deployment. Set by the service only; never shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_client_key: Option<String>,
    /// The name the server's certificate must carry, when it differs from the URI's host
    /// (a server reached by IP address, or through a tunnel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
}

impl TlsSpec {
    /// True when a client certificate is configured in any form.
    pub fn has_client_cert(&self) -> bool {
        self.client_cert.is_some() || self.client_cert_file.is_some()
    }

    /// True when a client key is configured in any form.
    pub fn has_client_key(&self) -> bool {
        self.client_key.is_some()
            || self.client_key_file.is_some()
            || self.client_key_secret_arn.is_some()
            || self.sealed_client_key.is_some()
    }

    pub(super) fn validate(&self, path: &str) -> Result<(), FieldError> {
        let field = |name: &str| format!("{path}.{name}");
        self.one_source_each(path)?;
        if let Some(pem) = &self.ca_cert {
            check_certificates(&field("ca_cert"), pem)?;
        }
        if let Some(pem) = &self.client_cert {
            check_certificates(&field("client_cert"), pem)?;
        }
        if let Some(key) = self.client_key.as_ref().filter(|k| !k.is_redacted()) {
            check_private_key(&field("client_key"), key)?;
        }
        match (self.has_client_cert(), self.has_client_key()) {
            (true, false) => return Err(FieldError::new(
                field("client_key"),
                "is required with a client certificate (or client_key_file, client_key_secret_arn)",
            )),
            (false, true) => {
                return Err(FieldError::new(
                    field("client_cert"),
                    "is required with a client key (or client_cert_file)",
                ))
            }
            _ => {}
        }
        for (name, arn) in [
            ("ca_cert_secret_arn", &self.ca_cert_secret_arn),
            ("client_key_secret_arn", &self.client_key_secret_arn),
        ] {
            if let Some(arn) = arn {
                check_arn(&field(name), arn)?;
            }
        }
        if let Some(name) = &self.server_name {
            if ServerName::try_from(name.as_str()).is_err() {
                return Err(FieldError::new(
                    field("server_name"),
                    format!("`{}` is not a host name or IP address", printable(name)),
                ));
            }
        }
        Ok(())
    }

    /// At most one source for the CA, the client certificate and the key; file paths not
    /// empty.
    fn one_source_each(&self, path: &str) -> Result<(), FieldError> {
        let groups: [&[(&str, bool)]; 3] = [
            &[
                ("ca_cert", self.ca_cert.is_some()),
                ("ca_cert_file", self.ca_cert_file.is_some()),
                ("ca_cert_secret_arn", self.ca_cert_secret_arn.is_some()),
            ],
            &[
                ("client_cert", self.client_cert.is_some()),
                ("client_cert_file", self.client_cert_file.is_some()),
            ],
            &[
                ("client_key", self.client_key.is_some()),
                ("client_key_file", self.client_key_file.is_some()),
                (
                    "client_key_secret_arn",
                    self.client_key_secret_arn.is_some(),
                ),
            ],
        ];
        for group in groups {
            let given: Vec<&str> = group
                .iter()
                .filter(|(_, set)| *set)
                .map(|(n, _)| *n)
                .collect();
            if given.len() > 1 {
                return Err(FieldError::new(
                    format!("{path}.{}", given[1]),
                    format!("give one of {}, not several", given.join(", ")),
                ));
            }
        }
        for (name, file) in [
            ("ca_cert_file", &self.ca_cert_file),
            ("client_cert_file", &self.client_cert_file),
            ("client_key_file", &self.client_key_file),
        ] {
            if file.as_deref().is_some_and(|f| f.trim().is_empty()) {
                return Err(FieldError::new(
                    format!("{path}.{name}"),
                    "must be a file path",
                ));
            }
        }
        Ok(())
    }
}

/// Checks that `pem` holds at least one certificate (the error names the field).
pub fn check_certificates(field: &str, pem: &str) -> Result<(), FieldError> {
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        cert.map_err(|e| FieldError::new(field, format!("is not a PEM certificate: {e}")))?;
        count += 1;
    }
    if count == 0 {
        return Err(FieldError::new(
            field,
            "holds no certificate (expected -----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok(())
}

/// Checks that `key` holds a PEM private key, without ever repeating it.
pub fn check_private_key(field: &str, key: &Secret) -> Result<(), FieldError> {
    PrivateKeyDer::from_pem_slice(key.expose().as_bytes())
        .map(|_| ())
        .map_err(|_| {
            FieldError::new(
                field,
                "is not a PEM private key (expected -----BEGIN PRIVATE KEY-----; the value is not shown)",
            )
        })
}
