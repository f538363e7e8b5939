//! How a request names a cluster: its URI (parsed into an [`Address`], with the default ports
//! users expect), its Zilliz Cloud cluster id or the cluster it creates (`new_cluster.rs`), its
//! token (or API key), and the TLS settings of a server behind `https://` (`tls.rs`).
//!
//! The URI rule is pymilvus's: a URI without a port gets 443 for `https` and 19530 for `http`.
//! Anything the URI could carry besides scheme, host and port (credentials, a path, a query) is
//! refused rather than ignored: the URI is stored and shown, and a token in its query would be
//! kept in clear.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::new_cluster::NewCluster;
use super::request::{FieldError, Secret};
use super::tier::{cluster_id_of_host, Tier, TierSource, ZillizCluster};
pub use super::tls::{check_certificates, check_private_key, TlsSpec};

/// The port of an `https://` URI that names none (pymilvus's rule; Zilliz Cloud Serverless).
pub const DEFAULT_TLS_PORT: u16 = 443;
/// The port of an `http://` URI that names none (Milvus's own).
pub const DEFAULT_PORT: u16 = 19_530;

/// Which side of the migration a cluster is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Read from.
    Source,
    /// Written to.
    Target,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Source => "source",
            Role::Target => "target",
        })
    }
}

/// How to reach one cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// `http://host[:port]` or `https://host[:port]`. For a cluster given by `cluster_id`, the
    /// endpoint the control plane gave (set by the service).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uri: String,
    /// A Zilliz Cloud cluster id (`in01-…`), instead of `uri`: its endpoint, plan and status
    /// come from the Zilliz Cloud control plane, asked with the API key (`token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// `user:password` or an API key (`api_key` is another name for it).
    #[serde(default, alias = "api_key", skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    /// A Secrets Manager ARN holding the token (AWS deployments; alias `api_key_secret_arn`).
    #[serde(
        default,
        alias = "api_key_secret_arn",
        skip_serializing_if = "Option::is_none"
    )]
    pub token_secret_arn: Option<String>,
    /// What the control plane said about `cluster_id` when the job was planned. Set by the
    /// service only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zilliz: Option<ZillizCluster>,
    /// The inline token, encrypted by the Lambda deployment so that later invocations can use
    /// it (see [`crate::aws::Sealer`]). Set by the service only; never shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_token: Option<String>,
    /// TLS settings for an `https://` cluster with its own CA or two-way TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
    /// A Zilliz Cloud Dedicated cluster to create as the target, with the API key in
    /// `token`: once it is `RUNNING` the service sets `cluster_id` to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_cluster: Option<NewCluster>,
}

pub(super) fn check_arn(field: &str, arn: &str) -> Result<(), FieldError> {
    if !arn.starts_with("arn:") || !arn.contains(":secretsmanager:") {
        return Err(FieldError::new(
            field,
            "is not a Secrets Manager ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)",
        ));
    }
    Ok(())
}

/// `text` with control characters escaped, fit to quote in an error message.
pub fn printable(text: &str) -> String {
    text.chars().flat_map(char::escape_debug).collect()
}

impl ClusterSpec {
    /// A cluster at `uri`, with no credentials.
    pub fn new(uri: impl Into<String>) -> Self {
        Self {
            uri: uri.into(),
            ..Self::default()
        }
    }

    /// A Zilliz Cloud cluster given by id, resolved when the job is planned.
    pub fn by_id(cluster_id: impl Into<String>) -> Self {
        Self {
            cluster_id: Some(cluster_id.into()),
            ..Self::default()
        }
    }

    /// Where the cluster listens. The request was validated, so this only fails for a record
    /// written by another version, a cluster id not resolved yet, or a cluster not created yet.
    pub fn address(&self) -> Result<Address, String> {
        if self.uri.is_empty() && self.cluster_id.is_none() {
            if let Some(n) = &self.new_cluster {
                return Err(format!(
                    "the new cluster `{}` has not been created yet",
                    n.name
                ));
            }
        }
        if self.uri.is_empty() {
            if let Some(id) = &self.cluster_id {
                return Err(format!(
                    "cluster `{id}` has not been resolved through the Zilliz Cloud control plane yet"
                ));
            }
        }
        Address::parse(&self.uri)
    }

    /// The cluster as messages name it: its id, the cluster it creates, or its URI.
    pub fn name(&self) -> String {
        match (&self.cluster_id, &self.new_cluster) {
            (Some(id), _) => format!("cluster {id}"),
            (None, Some(n)) => format!("new cluster `{}`", n.name),
            (None, None) => self.uri.trim().to_owned(),
        }
    }

    /// The cluster this spec asks to create, while it has not been created.
    pub fn to_create(&self) -> Option<&NewCluster> {
        self.new_cluster
            .as_ref()
            .filter(|_| self.cluster_id.is_none())
    }

    /// The cluster's Zilliz Cloud plan tier and CU size, and where they came from: the control
    /// plane's answer for a cluster given by id, else the cluster id a Zilliz Cloud host
    /// names (CU size unknown), or the request's `new_cluster`; `None` for any other cluster.
    pub fn tier(&self) -> Option<(Tier, Option<u32>, TierSource)> {
        if let Some(n) = self.to_create() {
            return Some((Tier::Dedicated, Some(n.cu_size), TierSource::Request));
        }
        if let Some(z) = &self.zilliz {
            let tier = Tier::of_plan(&z.cluster_id, &z.plan)?;
            return Some((tier, Some(z.cu_size), TierSource::ControlPlane));
        }
        let host = Address::parse(&self.uri).ok()?.host;
        let id = cluster_id_of_host(&host)?;
        Some((Tier::of_id(&id)?, None, TierSource::Host))
    }

    pub(crate) fn validate(&self, path: &str) -> Result<(), FieldError> {
        if let Some(n) = &self.new_cluster {
            let field = format!("{path}.new_cluster");
            if path != "target" {
                return Err(FieldError::new(
                    field,
                    "applies to the target only: the source is a cluster that exists",
                ));
            }
            if !self.uri.trim().is_empty() || self.cluster_id.is_some() || self.tls.is_some() {
                return Err(FieldError::new(
                    field,
                    "creates the target: give it without uri, cluster_id or tls",
                ));
            }
            n.validate(&field)?;
            return self.validate_credentials(path);
        }
        if let Some(id) = &self.cluster_id {
            if !self.uri.trim().is_empty() && self.zilliz.is_none() {
                return Err(FieldError::new(
                    format!("{path}.cluster_id"),
                    "give either uri or cluster_id, not both",
                ));
            }
            check_cluster_id(&format!("{path}.cluster_id"), id)?;
            if self.tls.is_some() {
                return Err(FieldError::new(
                    format!("{path}.tls"),
                    "applies to clusters given by uri; a Zilliz Cloud cluster id is reached at its public endpoint with the platform's CAs",
                ));
            }
            return self.validate_credentials(path);
        }
        let address =
            Address::parse(&self.uri).map_err(|e| FieldError::new(format!("{path}.uri"), e))?;
        self.validate_credentials(path)?;
        if let Some(tls) = &self.tls {
            if !address.tls {
                return Err(FieldError::new(
                    format!("{path}.tls"),
                    format!(
                        "applies to https:// URIs only; write {path}.uri as https://{}",
                        address.authority()
                    ),
                ));
            }
            tls.validate(&format!("{path}.tls"))?;
        }
        Ok(())
    }

    fn validate_credentials(&self, path: &str) -> Result<(), FieldError> {
        if self.token.is_some() && self.token_secret_arn.is_some() {
            return Err(FieldError::new(
                format!("{path}.token_secret_arn"),
                "give either token (api_key) or token_secret_arn (api_key_secret_arn), not both",
            ));
        }
        if let Some(arn) = &self.token_secret_arn {
            check_arn(&format!("{path}.token_secret_arn"), arn)?;
        }
        Ok(())
    }

    /// Secrets replaced by the redaction marker (tokens and client keys).
    pub(crate) fn redact(&mut self) {
        mark(&mut self.token);
        if let Some(tls) = self.tls.as_mut() {
            mark(&mut tls.client_key);
        }
    }

    /// Redacted, and without the values only the service can open.
    pub(crate) fn make_public(&mut self) {
        self.redact();
        self.sealed_token = None;
        if let Some(tls) = self.tls.as_mut() {
            tls.sealed_client_key = None;
        }
    }

    /// The error when a field only the service sets came with the request.
    pub(crate) fn refuse_service_fields(&self, path: &str) -> Result<(), FieldError> {
        let client_key = self.tls.as_ref().and_then(|t| t.client_key.as_ref());
        for (field, secret) in [
            ("token", self.token.as_ref()),
            ("tls.client_key", client_key),
        ] {
            if secret.is_some_and(Secret::is_redacted) {
                return Err(FieldError::new(
                    format!("{path}.{field}"),
                    super::secret::MARKER_GIVEN,
                ));
            }
        }
        if self.zilliz.is_some() {
            return Err(FieldError::new(
                format!("{path}.zilliz"),
                "is set by the service from the Zilliz Cloud control plane; give cluster_id",
            ));
        }
        if self.sealed_token.is_some() {
            return Err(FieldError::new(
                format!("{path}.sealed_token"),
                "is set by the service, not by callers; pass token or token_secret_arn",
            ));
        }
        if self
            .tls
            .as_ref()
            .is_some_and(|t| t.sealed_client_key.is_some())
        {
            return Err(FieldError::new(
                format!("{path}.tls.sealed_client_key"),
                "is set by the service, not by callers; pass client_key or client_key_secret_arn",
            ));
        }
        Ok(())
    }
}

/// A Zilliz Cloud cluster id: `in` and two digits, `-`, then letters and digits.
fn check_cluster_id(field: &str, id: &str) -> Result<(), FieldError> {
    let b = id.as_bytes();
    let ok = id.len() > 5
        && id.len() <= 64
        && id.starts_with("in")
        && b[2].is_ascii_digit()
        && b[3].is_ascii_digit()
        && b[4] == b'-'
        && id[5..].bytes().all(|c| c.is_ascii_alphanumeric());
    if !ok {
        return Err(FieldError::new(
            field,
            format!(
                "`{}` is not a Zilliz Cloud cluster id (such as in01-0123456789abcdef)",
                printable(id)
            ),
        ));
    }
    Ok(())
}

fn mark(secret: &mut Option<Secret>) {
    if secret.is_some() {
        *secret = Some(Secret::new(super::request::REDACTED));
    }
}

/// Where a cluster listens: parsed from its URI, with the default port filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// `https`: the connection uses TLS.
    pub tls: bool,
    /// The host name or IP address (IPv6 without brackets).
    pub host: String,
    /// The port, given or the scheme's default.
    pub port: u16,
}

impl Address {
    /// Parses `http[s]://host[:port][/]`; the error says what is wrong without repeating the
    /// URI (it could hold a credential).
    pub fn parse(uri: &str) -> Result<Self, String> {
        let uri = uri.trim();
        let Some((scheme, rest)) = uri.split_once("://") else {
            return Err(
                "is not a URI; write it as http://host:19530 or https://host (the value is not shown)"
                    .into(),
            );
        };
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "https" => true,
            "http" => false,
            _ => {
                return Err(format!(
                    "scheme `{}` is not supported; use http or https",
                    printable(scheme)
                ))
            }
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.contains('@') {
            // The URI is stored and shown; credentials in it would be too.
            return Err(
                "must not carry credentials; give them as token (the value is not shown)".into(),
            );
        }
        if tail.contains(['?', '#']) {
            return Err("must not carry a query or fragment (a token there would be stored in clear); give credentials as token".into());
        }
        if !tail.is_empty() && tail != "/" {
            return Err(
                "must not carry a path: name the databases in `databases` (the path is not used)"
                    .into(),
            );
        }
        let (host, port) = split_host_port(authority)?;
        if host.is_empty() {
            return Err("has no host".into());
        }
        let checked = if host.contains(':') {
            url::Host::parse(&format!("[{host}]"))
        } else {
            url::Host::parse(host)
        };
        if checked.is_err() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "host `{}` is not a host name or IP address",
                printable(host)
            ));
        }
        let port = match port {
            None => {
                if tls {
                    DEFAULT_TLS_PORT
                } else {
                    DEFAULT_PORT
                }
            }
            Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
                format!(
                    "port `{}` is not a port number from 1 to 65535",
                    printable(p)
                )
            })?,
        };
        Ok(Self {
            tls,
            host: host.to_owned(),
            port,
        })
    }

    /// `host:port`, with IPv6 addresses in brackets.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The URI a connection is opened to: the scheme and the authority with its port.
    pub fn endpoint(&self) -> String {
        format!(
            "{}://{}",
            if self.tls { "https" } else { "http" },
            self.authority()
        )
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.endpoint())
    }
}

/// `host[:port]` or `[v6][:port]` into the host and the port's text.
fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(inner) = authority.strip_prefix('[') {
        let (host, after) = inner
            .split_once(']')
            .ok_or("has an IPv6 address without its closing `]`")?;
        return match after {
            "" => Ok((host, None)),
            _ => after
                .strip_prefix(':')
                .map(|p| (host, Some(p)))
                .ok_or_else(|| "has text after the IPv6 address that is not a port".into()),
        };
    }
    match authority.matches(':').count() {
        0 => Ok((authority, None)),
        1 => {
            let (host, port) = authority.split_once(':').unwrap_or((authority, ""));
            Ok((host, Some(port)))
        }
        _ => Err("has an IPv6 address outside brackets; write it as http://[::1]:19530".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_default_as_pymilvus_does() {
        let a = Address::parse("https://in03-abc.serverless.gcp-us-west1.vectordb.zillizcloud.com")
            .unwrap();
        assert!(a.tls);
        assert_eq!(a.port, 443);
        assert_eq!(
            a.endpoint(),
            "https://in03-abc.serverless.gcp-us-west1.vectordb.zillizcloud.com:443"
        );
        let a = Address::parse("http://10.0.0.4").unwrap();
        assert_eq!((a.tls, a.port), (false, 19530));
        // A port equal to the scheme's usual one is kept, not dropped.
        assert_eq!(Address::parse("http://h:80").unwrap().port, 80);
        assert_eq!(Address::parse("HTTPS://h:19530/").unwrap().port, 19530);
        let v6 = Address::parse("http://[::1]:1234").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 1234));
        assert_eq!(v6.authority(), "[::1]:1234");
        assert_eq!(Address::parse("https://[::1]").unwrap().port, 443);
    }

    #[test]
    fn everything_but_scheme_host_and_port_is_refused() {
        for (uri, words) in [
            ("ftp://h", "scheme"),
            ("h:19530", "not a URI"),
            ("http://", "no host"),
            ("http://:19530", "no host"),
            ("http://u:secret@h", "credentials"),
            ("http://h/?token=secret", "query"),
            ("http://h#x", "query or fragment"),
            ("http://h/db", "path"),
            ("http://h:0", "port"),
            ("http://h:70000", "port"),
            ("http://h:x", "port"),
            ("http://[::1", "closing"),
            ("http://::1", "brackets"),
            ("http://h a", "host"),
            ("http://h\u{1b}[31m", "host"),
        ] {
            let e = Address::parse(uri).unwrap_err();
            assert!(e.contains(words), "{uri}: {e}");
            assert!(!e.contains("secret"), "{uri}: {e}");
        }
    }

    fn spec(tls: TlsSpec) -> ClusterSpec {
        ClusterSpec {
            tls: Some(tls),
            ..ClusterSpec::new("https://milvus.internal")
        }
    }

    #[test]
    fn tls_settings_are_checked_by_path() {
        let bad = |s: ClusterSpec| s.validate("source").unwrap_err().field;
        let mut http = spec(TlsSpec::default());
        http.uri = "http://h".into();
        assert_eq!(bad(http), "source.tls");
        assert_eq!(
            bad(spec(TlsSpec {
                ca_cert: Some("not a cert".into()),
                ..Default::default()
            })),
            "source.tls.ca_cert"
        );
        assert_eq!(
            bad(spec(TlsSpec {
                ca_cert: Some("x".into()),
                ca_cert_file: Some("ca.pem".into()),
                ..Default::default()
            })),
            "source.tls.ca_cert_file"
        );
        assert_eq!(
            bad(spec(TlsSpec {
                client_cert_file: Some("c.pem".into()),
                ..Default::default()
            })),
            "source.tls.client_key"
        );
        assert_eq!(
            bad(spec(TlsSpec {
                client_key_file: Some("k.pem".into()),
                ..Default::default()
            })),
            "source.tls.client_cert"
        );
        let e = spec(TlsSpec {
            client_cert_file: Some("c.pem".into()),
            client_key: Some(Secret::new("hunter2")),
            ..Default::default()
        })
        .validate("source")
        .unwrap_err();
        assert_eq!(e.field, "source.tls.client_key");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert_eq!(
            bad(spec(TlsSpec {
                server_name: Some("bad name!".into()),
                ..Default::default()
            })),
            "source.tls.server_name"
        );
        assert_eq!(
            bad(spec(TlsSpec {
                ca_cert_secret_arn: Some("nope".into()),
                ..Default::default()
            })),
            "source.tls.ca_cert_secret_arn"
        );
        assert!(spec(TlsSpec {
            ca_cert_file: Some("ca.pem".into()),
            client_cert_file: Some("c.pem".into()),
            client_key_file: Some("k.pem".into()),
            server_name: Some("10.0.0.4".into()),
            ..Default::default()
        })
        .validate("source")
        .is_ok());
    }

    #[test]
    fn a_cluster_is_given_by_uri_or_by_id_and_the_id_is_checked() {
        let ok = ClusterSpec::by_id("in01-0123456789abcdef");
        assert!(ok.validate("source").is_ok());
        assert!(ok.address().unwrap_err().contains("not been resolved"));
        for (spec, field) in [
            (ClusterSpec::by_id("in01-"), "source.cluster_id"),
            (ClusterSpec::by_id("cluster-1"), "source.cluster_id"),
            (ClusterSpec::by_id("in01-abc/../x"), "source.cluster_id"),
            (
                ClusterSpec {
                    uri: "http://h".into(),
                    ..ClusterSpec::by_id("in01-abc")
                },
                "source.cluster_id",
            ),
            (
                ClusterSpec {
                    tls: Some(TlsSpec::default()),
                    ..ClusterSpec::by_id("in01-abc")
                },
                "source.tls",
            ),
        ] {
            assert_eq!(
                spec.validate("source").unwrap_err().field,
                field,
                "{spec:?}"
            );
        }
        // `api_key` is another name for the token, and is redacted like it.
        let spec: ClusterSpec =
            serde_json::from_str(r#"{"cluster_id":"in05-abc","api_key":"k-123"}"#).unwrap();
        assert_eq!(spec.token.as_ref().unwrap().expose(), "k-123");
        let mut shown = spec.clone();
        shown.make_public();
        assert!(!serde_json::to_string(&shown).unwrap().contains("k-123"));
        // A Zilliz Cloud host names its tier; others have none.
        let host =
            ClusterSpec::new("https://in03-abc.serverless.gcp-us-west1.vectordb.zillizcloud.com");
        assert_eq!(host.tier().map(|t| t.0), Some(Tier::Free));
        assert_eq!(ClusterSpec::new("http://10.0.0.4:19530").tier(), None);
    }

    #[test]
    fn client_keys_are_redacted_and_sealed_values_dropped() {
        let mut s = spec(TlsSpec {
            client_cert_file: Some("c.pem".into()),
            client_key: Some(Secret::new("-----BEGIN PRIVATE KEY-----")),
            sealed_client_key: Some("v1.sealed".into()),
            ..Default::default()
        });
        s.make_public();
        let json = serde_json::to_string(&s).unwrap();
        assert!(!json.contains("BEGIN PRIVATE"), "{json}");
        assert!(!json.contains("v1.sealed"), "{json}");
        assert!(json.contains("client_cert_file"), "{json}");
    }
}
