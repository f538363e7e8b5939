//! TLS for the whole process: the one rustls crypto provider, and what a failed handshake
//! means to a user.
//!
//! The dependency tree compiles rustls with two providers (the Milvus SDK asks for `ring`, the
//! AWS SDK for `aws-lc-rs`), so rustls cannot pick one by itself and panics on the first
//! connection that asks for the process default (tonic's gRPC TLS does). Both binaries call
//! [`install_crypto_provider`] first thing, and so does the Milvus connector, so library users
//! and tests get the same choice: **aws-lc-rs**, rustls's own default, the provider the AWS
//! SDK's clients already use, and the one with a FIPS-validated build. tonic (cluster
//! connections) and reqwest (webhooks) both take the process default once it is installed.

use std::error::Error;
use std::sync::Once;

use rustls::{AlertDescription, CertificateError};

/// Installs aws-lc-rs as the process-level rustls crypto provider, once. Later calls, and a
/// provider some other code installed first, are left alone.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // Fails only when another thread installed one in between: that one stays.
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        }
    });
}

/// What went wrong with a TLS connection, for the user to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsFailure {
    /// The server's certificate is not signed by a CA this client trusts.
    UnknownIssuer,
    /// The certificate does not name the host that was dialled.
    WrongHost(String),
    /// The certificate's validity period is over.
    Expired(String),
    /// The certificate is not valid yet.
    NotValidYet,
    /// The certificate was refused for another reason.
    BadCertificate(String),
    /// The server is in two-way TLS mode and no client certificate was given.
    ClientCertRequired,
    /// The server refused the client certificate that was sent (or the handshake).
    ClientCertRefused(String),
    /// What answered is not a TLS server.
    NotTls,
    /// A TLS server answered where the URI said plaintext (`http://`).
    SpeaksTls,
    /// The server finished the handshake but does not speak HTTP/2 (gRPC needs it).
    NoHttp2,
    /// Anything else rustls reports.
    Other(String),
}

impl TlsFailure {
    /// The first TLS failure in an error's chain of causes, if any.
    pub fn find(error: &(dyn Error + 'static)) -> Option<Self> {
        let mut current: Option<&(dyn Error + 'static)> = Some(error);
        while let Some(e) = current {
            if let Some(r) = e.downcast_ref::<rustls::Error>() {
                return Some(Self::from_rustls(r));
            }
            // tokio-rustls wraps rustls errors in an `io::Error`, whose `source` skips them.
            if let Some(r) = e
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                return Some(Self::from_rustls(r));
            }
            // tonic reports a missing ALPN `h2` only in its own words.
            if e.to_string().contains("HTTP/2 was not negotiated") {
                return Some(Self::NoHttp2);
            }
            current = e.source();
        }
        None
    }

    fn from_rustls(e: &rustls::Error) -> Self {
        match e {
            rustls::Error::InvalidCertificate(c) => match c {
                CertificateError::UnknownIssuer => Self::UnknownIssuer,
                CertificateError::NotValidForName => Self::WrongHost(String::new()),
                CertificateError::NotValidForNameContext {
                    expected,
                    presented,
                } => Self::WrongHost(format!(
                    "it names {} but `{}` was dialled",
                    presented.join(", "),
                    expected.to_str()
                )),
                CertificateError::Expired => Self::Expired(String::new()),
                CertificateError::ExpiredContext { not_after, .. } => Self::Expired(format!(
                    " at {}",
                    chrono::DateTime::from_timestamp(not_after.as_secs() as i64, 0)
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_default()
                )),
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    Self::NotValidYet
                }
                other => Self::BadCertificate(other.to_string()),
            },
            rustls::Error::AlertReceived(AlertDescription::CertificateRequired) => {
                Self::ClientCertRequired
            }
            rustls::Error::AlertReceived(
                AlertDescription::HandshakeFailure
                | AlertDescription::BadCertificate
                | AlertDescription::UnknownCA
                | AlertDescription::CertificateUnknown
                | AlertDescription::AccessDenied,
            ) => Self::ClientCertRefused(e.to_string()),
            rustls::Error::AlertReceived(_) => {
                Self::Other(format!("the server sent an alert: {e}"))
            }
            rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
                Self::NotTls
            }
            other => Self::Other(other.to_string()),
        }
    }

    /// The explanation, with what to do; `field` is where the TLS settings go
    /// (`source.tls`).
    pub fn explain(&self, field: &str) -> String {
        match self {
            Self::UnknownIssuer => format!(
                "the server's certificate is not signed by a CA this client trusts (unknown issuer); if the server has its own CA, give it as {field}.ca_cert (or ca_cert_file, ca_cert_secret_arn)"
            ),
            Self::WrongHost(detail) => format!(
                "the server's certificate is not valid for this host name{}; connect with a name the certificate carries, or set {field}.server_name to it",
                if detail.is_empty() { String::new() } else { format!(" ({detail})") }
            ),
            Self::Expired(at) => format!(
                "the server's certificate expired{at}; the server needs a new certificate"
            ),
            Self::NotValidYet => {
                "the server's certificate is not valid yet (check the clocks of both machines)".into()
            }
            Self::BadCertificate(why) => format!("the server's certificate was refused ({why})"),
            Self::ClientCertRequired => format!(
                "the server is in two-way TLS mode and asks for a client certificate; give it as {field}.client_cert and {field}.client_key"
            ),
            Self::ClientCertRefused(why) => format!(
                "the server refused the client certificate ({why}); give one signed by a CA the server trusts, as {field}.client_cert and {field}.client_key"
            ),
            Self::NotTls => {
                "what answered does not speak TLS: if the server is not behind TLS, write the URI as http://".into()
            }
            Self::SpeaksTls => {
                "the server at this port speaks TLS: write the URI as https://".into()
            }
            Self::NoHttp2 => {
                "the TLS server does not offer HTTP/2 (ALPN h2), which gRPC needs: is this a Milvus port?".into()
            }
            Self::Other(e) => format!("the TLS handshake failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustls_errors_are_found_in_a_chain_and_explained() {
        #[derive(Debug)]
        struct Wrapper(rustls::Error);
        impl std::fmt::Display for Wrapper {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("transport error")
            }
        }
        impl Error for Wrapper {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                Some(&self.0)
            }
        }
        let found = |e: rustls::Error| TlsFailure::find(&Wrapper(e)).unwrap();
        assert_eq!(
            found(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer
            )),
            TlsFailure::UnknownIssuer
        );
        assert!(matches!(
            found(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName
            )),
            TlsFailure::WrongHost(_)
        ));
        assert_eq!(
            found(rustls::Error::AlertReceived(
                AlertDescription::CertificateRequired
            )),
            TlsFailure::ClientCertRequired
        );
        assert!(TlsFailure::UnknownIssuer
            .explain("target.tls")
            .contains("target.tls.ca_cert"));
        assert!(TlsFailure::find(&std::io::Error::other("plain")).is_none());
    }

    #[test]
    fn the_provider_is_installed_once() {
        install_crypto_provider();
        install_crypto_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
