//! The Milvus adapter: [`Cluster`] on the official SDK's generated gRPC client.
//!
//! What it works around, measured against the two local backends:
//! - pages are read with `pk > cursor` and a limit, with `iterator=True` (Milvus Lite only sorts
//!   by primary key when it sees it) and `reduce_stop_for_best=False` (Milvus 2.3.5 otherwise
//!   returns short pages, which ended the SDK's own iterator after 1,001 of 100,001 rows); a
//!   task ends on an empty page, never on a short one, and every page's key order is checked;
//! - the message size limit is raised from tonic's 4 MiB, pages are sized by bytes, and a page
//!   is written without being copied ([`write`]);
//! - Milvus Lite reports collection id 0 and mismatched ShowPartitions arrays, so only names are
//!   used; its per-partition counts are wrong, so only collection counts are used;
//! - index creation does not wait on AllocTimestamp (unimplemented in Lite).
//!
//! [`calls`] turns one gRPC call and Milvus's status into a result, [`cluster`] is the
//! `Cluster` port on top of it, [`write`] sends a page without copying it, [`probes`] asks a
//! target what it can hold on scratch collections; this module opens connections.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ::milvus::proto::milvus::milvus_service_client::MilvusServiceClient;
use async_trait::async_trait;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::zilliz::ControlPlane;
use super::{Cluster, ClusterConnector, ClusterError, NewZilliz, Role};
use crate::credentials::{CredentialError, Credentials, TlsMaterial};
use crate::domain::{Address, ClusterSpec, Secret, ZillizCluster};
use crate::tls::TlsFailure;

/// One unary call of the cluster's gRPC client: `rpc!(cluster, operation, method(request))`
/// (see [`MilvusCluster::unary`]).
macro_rules! rpc {
    ($cluster:expr, $operation:expr, $method:ident($request:expr)) => {
        $cluster
            .unary($operation, |mut c| async move { c.$method($request).await })
            .await
    };
}

mod calls;
mod cluster;
mod import;
mod probes;
mod query;
mod tls_probe;
mod write;

/// Largest gRPC message accepted or sent (Milvus itself caps requests at 64 MB by default).
const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;
/// Per-call deadline.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// How long to wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a new connection's first call may take: a server that accepts the connection and
/// never answers is not waited on for the whole call deadline.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest `authorization` header sent: gRPC servers refuse a request whose metadata is
/// over 8 KiB by default (grpc-core's soft limit; Go's is larger), so a longer token cannot
/// work and is refused before it is sent.
const MAX_AUTH_HEADER_BYTES: usize = 8 * 1024;
/// How long to wait for a collection to load.
const LOAD_TIMEOUT: Duration = Duration::from_secs(600);

type Client = MilvusServiceClient<InterceptedService<Channel, Auth>>;
/// tonic's own client on the same channel, for the calls [`write`] encodes itself.
type RawClient = tonic::client::Grpc<InterceptedService<Channel, Auth>>;

/// Adds the `authorization` header Milvus expects (base64 of the token).
#[derive(Clone)]
struct Auth(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for Auth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            req.metadata_mut().insert("authorization", value.clone());
        }
        Ok(req)
    }
}

/// Role, endpoint and the SHA-256 of the token and TLS material.
type ConnectionKey = (Role, String, [u8; 32]);

/// Opens Milvus clusters with each job's tokens (see [`Credentials`]), and reuses connections.
pub struct MilvusConnector {
    credentials: Arc<dyn Credentials>,
    /// Resolves clusters given by id.
    control_plane: ControlPlane,
    /// Open connections by role, URI and a digest of the token (never the token itself).
    open: Mutex<HashMap<ConnectionKey, Arc<MilvusCluster>>>,
}

impl MilvusConnector {
    /// A connector that asks `credentials` for each job's tokens and TLS material.
    pub fn new(credentials: Arc<dyn Credentials>) -> Self {
        Self {
            credentials,
            control_plane: ControlPlane::from_env(),
            open: Mutex::new(HashMap::new()),
        }
    }

    /// Resolves cluster ids through this control plane instead of the environment's.
    pub fn with_control_plane(mut self, control_plane: ControlPlane) -> Self {
        self.control_plane = control_plane;
        self
    }
}

#[async_trait]
impl ClusterConnector for MilvusConnector {
    async fn connect(
        &self,
        role: Role,
        spec: &ClusterSpec,
    ) -> Result<Arc<dyn Cluster>, ClusterError> {
        let address = spec.address().map_err(|e| ClusterError::Unreachable {
            role,
            uri: "(unparsable uri)".into(),
            detail: format!("{role}.uri {e}"),
        })?;
        let refused = |e: CredentialError| ClusterError::Credentials { role, detail: e.0 };
        let token = self.credentials.token(role, spec).await.map_err(refused)?;
        let tls = self.credentials.tls(role, spec).await.map_err(refused)?;
        let key = (
            role,
            address.endpoint(),
            connection_digest(token.as_ref(), &tls),
        );
        let mut open = self.open.lock().await;
        if let Some(c) = open.get(&key) {
            return Ok(c.clone());
        }
        let mut cluster = MilvusCluster::connect(role, &address, token.as_ref(), &tls).await?;
        if let Some(id) = &spec.cluster_id {
            cluster = cluster.with_cloud_import(super::rest_import::RestImport::cloud(
                self.control_plane.clone(),
                id,
                token.clone(),
            ));
        }
        let cluster = Arc::new(cluster);
        open.insert(key, cluster.clone());
        Ok(cluster)
    }

    async fn describe_zilliz(
        &self,
        role: Role,
        spec: &ClusterSpec,
    ) -> Result<ZillizCluster, ClusterError> {
        let id = spec.cluster_id.as_deref().unwrap_or_default();
        let refused = |e: CredentialError| ClusterError::Credentials { role, detail: e.0 };
        let key = self.credentials.token(role, spec).await.map_err(refused)?;
        self.control_plane.describe(role, id, key.as_ref()).await
    }

    async fn zilliz_status(
        &self,
        cluster_id: &str,
        spec: &ClusterSpec,
    ) -> Result<ZillizCluster, ClusterError> {
        let key = self.api_key(spec).await?;
        self.control_plane
            .status(Role::Target, cluster_id, key.as_ref())
            .await
    }

    async fn create_zilliz(&self, spec: &ClusterSpec) -> Result<NewZilliz, ClusterError> {
        let key = self.api_key(spec).await?;
        let Some(n) = &spec.new_cluster else {
            return Err(ClusterError::Credentials {
                role: Role::Target,
                detail: "the target names no new_cluster to create".into(),
            });
        };
        let created = self.control_plane.create_dedicated(n, key.as_ref()).await?;
        let purpose = format!("new_cluster:{}", created.cluster_id);
        Ok(NewZilliz {
            sealed_password: created
                .password
                .and_then(|p| self.credentials.seal(&purpose, &p)),
            cluster_id: created.cluster_id,
            username: created.username,
        })
    }

    async fn find_zilliz(&self, spec: &ClusterSpec) -> Result<Option<ZillizCluster>, ClusterError> {
        let key = self.api_key(spec).await?;
        match &spec.new_cluster {
            Some(n) => self.control_plane.find_by_name(n, key.as_ref()).await,
            None => Ok(None),
        }
    }
}

impl MilvusConnector {
    /// The target's API key, for the control plane.
    async fn api_key(&self, spec: &ClusterSpec) -> Result<Option<Secret>, ClusterError> {
        let refused = |e: CredentialError| ClusterError::Credentials {
            role: Role::Target,
            detail: e.0,
        };
        self.credentials
            .token(Role::Target, spec)
            .await
            .map_err(refused)
    }
}

/// A digest of what a connection was opened with (never the secrets themselves).
fn connection_digest(token: Option<&Secret>, tls: &TlsMaterial) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [
        token.map(|t| t.expose()),
        tls.ca_pem.as_deref(),
        tls.identity.as_ref().map(|(c, _)| c.as_str()),
        tls.identity.as_ref().map(|(_, k)| k.expose()),
        tls.server_name.as_deref(),
    ] {
        // Length-prefixed, so that no two different inputs digest the same.
        let bytes = part.unwrap_or_default().as_bytes();
        h.update((bytes.len() as u64).to_le_bytes());
        h.update([u8::from(part.is_some())]);
        h.update(bytes);
    }
    h.finalize().into()
}

/// A collection name no user has: for probes that create a collection and drop it at once.
fn scratch_name() -> String {
    format!(
        "vecmigrate_probe_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// One Milvus cluster over gRPC.
pub struct MilvusCluster {
    role: Role,
    uri: String,
    address: Address,
    client: Client,
    raw: RawClient,
    /// The import API, chosen on first use (Zilliz Cloud's, for a cluster given by id, from
    /// the start).
    import_api: tokio::sync::OnceCell<import::ImportApi>,
    /// Import Operations over REST at the cluster's own address (Milvus 2.4+), or why it
    /// cannot be called.
    rest_import: Result<super::rest_import::RestImport, String>,
}

/// tonic's TLS settings: the job's CA instead of the platform's roots when it names one (a
/// private CA is trusted alone, as `curl --cacert` does), a client identity for two-way TLS,
/// and the name the certificate must carry (the URI's host unless `server_name` says).
fn tls_config(address: &Address, tls: &TlsMaterial) -> ClientTlsConfig {
    let mut config = ClientTlsConfig::new().domain_name(
        tls.server_name
            .clone()
            .unwrap_or_else(|| address.host.clone()),
    );
    config = match &tls.ca_pem {
        Some(ca) => config.ca_certificate(Certificate::from_pem(ca)),
        None => config.with_native_roots(),
    };
    if let Some((cert, key)) = &tls.identity {
        config = config.identity(Identity::from_pem(cert, key.expose()));
    }
    config
}

/// The HTTP client for the cluster's REST port (Milvus 2.4+ serves it beside gRPC), with the
/// same trust as the gRPC channel; or why there is none.
fn rest_client(address: &Address, tls: &TlsMaterial) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .timeout(super::rest_import::MILVUS_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none());
    if address.tls {
        if tls.server_name.is_some() {
            return Err("its REST port cannot be called with tls.server_name (the HTTP client checks the certificate against the URI's host)".into());
        }
        if let Some(ca) = &tls.ca_pem {
            let ca = reqwest::Certificate::from_pem(ca.as_bytes())
                .map_err(|e| format!("tls.ca_pem cannot be used over HTTPS: {e}"))?;
            builder = builder
                .tls_built_in_root_certs(false)
                .add_root_certificate(ca);
        }
        if let Some((cert, key)) = &tls.identity {
            let pem = format!("{cert}\n{}", key.expose());
            let identity = reqwest::Identity::from_pem(pem.as_bytes())
                .map_err(|e| format!("the client certificate cannot be used over HTTPS: {e}"))?;
            builder = builder.identity(identity);
        }
    }
    builder.build().map_err(|e| format!("no HTTP client: {e}"))
}

/// A failed connection: a TLS failure is explained and never retried; anything else is the
/// transport's words.
fn connect_error(role: Role, address: &Address, e: &tonic::transport::Error) -> ClusterError {
    if let Some(failure) = TlsFailure::find(e) {
        return ClusterError::Tls {
            role,
            address: address.authority(),
            detail: failure.explain(&format!("{role}.tls")),
        };
    }
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail = format!("{detail}: {s}");
        source = s.source();
    }
    ClusterError::Unreachable {
        role,
        uri: address.endpoint(),
        detail,
    }
}

/// The `authorization` header for `token` (base64, as Milvus expects it), unless it is too long
/// for any server to accept.
fn auth_header(
    role: Role,
    token: &Secret,
) -> Result<tonic::metadata::MetadataValue<tonic::metadata::Ascii>, ClusterError> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(token.expose());
    if encoded.len() > MAX_AUTH_HEADER_BYTES {
        return Err(ClusterError::Credentials {
            role,
            detail: format!(
                "the token is {} bytes, too long to send: gRPC servers refuse request headers over 8 KiB, and Milvus tokens (user:password, API keys) are far shorter; check {role}.token",
                token.expose().len()
            ),
        });
    }
    encoded.parse().map_err(|_| ClusterError::Credentials {
        role,
        detail: format!("the token cannot be sent as a header; check {role}.token"),
    })
}

/// What a new connection's first call failed with, when the failure says that the server is
/// not a gRPC server at all (HTTP/1.1 answering HTTP/2's preface, an HTTP answer without a
/// gRPC status).
fn not_grpc(e: &ClusterError) -> Option<String> {
    let ClusterError::Call { detail, .. } = e else {
        return None;
    };
    let lower = detail.to_lowercase();
    [
        "frame_size_error",
        "frame with invalid size",
        "protocol_error",
        "invalid http",
        "http2 error",
        "h2 protocol error",
        "invalid content-type",
        "grpc-status header missing",
    ]
    .iter()
    .any(|w| lower.contains(w))
    .then(|| detail.clone())
}

impl MilvusCluster {
    /// Connects (over TLS for `https`) and checks the credentials.
    pub async fn connect(
        role: Role,
        address: &Address,
        token: Option<&Secret>,
        tls: &TlsMaterial,
    ) -> Result<Self, ClusterError> {
        crate::tls::install_crypto_provider();
        let uri = address.endpoint();
        let unreachable = |detail: String| ClusterError::Unreachable {
            role,
            uri: uri.clone(),
            detail,
        };
        let mut endpoint = Endpoint::from_shared(uri.clone())
            .map_err(|e| unreachable(format!("not a valid address: {e}")))?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CALL_TIMEOUT)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true);
        if address.tls {
            endpoint =
                endpoint
                    .tls_config(tls_config(address, tls))
                    .map_err(|e| ClusterError::Tls {
                        role,
                        address: address.authority(),
                        detail: format!("the TLS settings cannot be used: {e}"),
                    })?;
        }
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| connect_error(role, address, &e))?;
        let header = token.map(|t| auth_header(role, t)).transpose()?;
        let raw = RawClient::new(InterceptedService::new(
            channel.clone(),
            Auth(header.clone()),
        ))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let client = MilvusServiceClient::with_interceptor(channel, Auth(header))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let cluster = Self {
            role,
            uri: uri.clone(),
            address: address.clone(),
            client,
            raw,
            import_api: tokio::sync::OnceCell::new(),
            rest_import: rest_client(address, tls)
                .map(|http| super::rest_import::RestImport::milvus(&uri, http, token.cloned())),
        };
        let first = tokio::time::timeout(HANDSHAKE_TIMEOUT, cluster.ping())
            .await
            .unwrap_or_else(|_| {
                Err(unreachable(format!(
                    "it accepted the connection but answered no gRPC call within {}s, as a port that is not Milvus's gRPC port (19530 by default) may do",
                    HANDSHAKE_TIMEOUT.as_secs()
                )))
            });
        if let Err(e) = first {
            if let Some(detail) = not_grpc(&e) {
                return Err(ClusterError::NotMilvus {
                    role,
                    uri: cluster.uri.clone(),
                    detail,
                });
            }
            // tonic says only "connection closed" when the server refused our side of the
            // handshake, or when a TLS server sits behind an http:// URI: ask it directly.
            if matches!(e, ClusterError::Call { .. }) {
                if let Some(failure) = tls_probe::diagnose(address, tls).await {
                    return Err(ClusterError::Tls {
                        role,
                        address: address.authority(),
                        detail: failure.explain(&format!("{role}.tls")),
                    });
                }
            }
            return Err(e);
        }
        Ok(cluster)
    }
}
