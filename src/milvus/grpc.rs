//! The Milvus adapter: [`Cluster`] on the official SDK's generated gRPC client.
//!
//! What it works around, measured against the two local backends:
//! - pages are read with `pk > cursor` and a limit, with `iterator=True` (Milvus Lite only sorts
//!   by primary key when it sees it) and `reduce_stop_for_best=False` (Milvus 2.3.5 otherwise
//!   returns short pages, which ended the SDK's own iterator after 1,001 of 100,001 rows); a
//!   task ends on an empty page, never on a short one, and every page's key order is checked;
//! - the response size limit is raised from tonic's 4 MiB, and pages are sized by bytes;
//! - Milvus Lite reports collection id 0 and mismatched ShowPartitions arrays, so only names are
//!   used; its per-partition counts are wrong, so only collection counts are used;
//! - index creation does not wait on AllocTimestamp (unimplemented in Lite).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ::milvus::proto::common::{ConsistencyLevel, ErrorCode, LoadState, Status};
use ::milvus::proto::milvus::milvus_service_client::MilvusServiceClient;
use ::milvus::proto::milvus::{
    AlterCollectionRequest, CreateCollectionRequest, CreateDatabaseRequest, CreateIndexRequest,
    CreatePartitionRequest, DescribeCollectionRequest, DescribeIndexRequest, DropCollectionRequest,
    FlushRequest, GetLoadStateRequest, GetVersionRequest, InsertRequest, ListDatabasesRequest,
    LoadCollectionRequest, QueryRequest, ReleaseCollectionRequest, ShowCollectionsRequest,
    ShowPartitionsRequest, UpsertRequest,
};
use ::milvus::proto::schema::{field_data, scalar_field};
use async_trait::async_trait;
use base64::Engine as _;
use prost::Message;
use tokio::sync::Mutex;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::batch::{after_filter, normalize_page, Batch};
use super::tls_probe;
use super::{
    kv, Cluster, ClusterConnector, ClusterError, CollectionInfo, IndexInfo, PageRequest, Role,
    RowQuery, WriteMode, ALLOW_INSERT_AUTO_ID,
};
use crate::credentials::{CredentialError, Credentials, TlsMaterial};
use crate::domain::{Address, ClusterSpec, Secret};
use crate::tls::TlsFailure;
use sha2::{Digest, Sha256};

/// Largest gRPC message accepted or sent (Milvus itself caps requests at 64 MB by default).
const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;
/// Per-call deadline.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// How long to wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for a collection to load.
const LOAD_TIMEOUT: Duration = Duration::from_secs(600);

type Client = MilvusServiceClient<InterceptedService<Channel, Auth>>;

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
    /// Open connections by role, URI and a digest of the token (never the token itself).
    open: Mutex<HashMap<ConnectionKey, Arc<MilvusCluster>>>,
}

impl MilvusConnector {
    /// A connector that asks `credentials` for each job's tokens and TLS material.
    pub fn new(credentials: Arc<dyn Credentials>) -> Self {
        Self {
            credentials,
            open: Mutex::new(HashMap::new()),
        }
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
        let cluster = Arc::new(MilvusCluster::connect(role, &address, token.as_ref(), &tls).await?);
        open.insert(key, cluster.clone());
        Ok(cluster)
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

/// One unary call of the cluster's gRPC client: `rpc!(cluster, operation, method(request))`
/// (see [`MilvusCluster::unary`]).
macro_rules! rpc {
    ($cluster:expr, $operation:expr, $method:ident($request:expr)) => {
        $cluster
            .unary($operation, |mut c| async move { c.$method($request).await })
            .await
    };
}

/// A gRPC status code's name, as the gRPC specification writes it (`UNAVAILABLE`).
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// A response with Milvus's own status in it (failures often come back with gRPC OK).
trait Answer {
    /// The status, if the response has one.
    fn status(&self) -> Option<&Status>;
}

/// Calls whose whole response is a status.
impl Answer for Status {
    fn status(&self) -> Option<&Status> {
        Some(self)
    }
}

macro_rules! answers_with_status {
    ($($response:ty),* $(,)?) => {
        $(impl Answer for $response {
            fn status(&self) -> Option<&Status> {
                self.status.as_ref()
            }
        })*
    };
}

answers_with_status!(
    ::milvus::proto::milvus::ListDatabasesResponse,
    ::milvus::proto::milvus::ShowCollectionsResponse,
    ::milvus::proto::milvus::DescribeCollectionResponse,
    ::milvus::proto::milvus::ShowPartitionsResponse,
    ::milvus::proto::milvus::DescribeIndexResponse,
    ::milvus::proto::milvus::GetLoadStateResponse,
    ::milvus::proto::milvus::QueryResults,
    ::milvus::proto::milvus::MutationResult,
    ::milvus::proto::milvus::FlushResponse,
    ::milvus::proto::milvus::GetVersionResponse,
);

// `error_code` is deprecated in the proto, but Milvus 2.3.5 still reports failures only there.
#[allow(deprecated)]
fn ok_status(status: Option<&Status>) -> Result<(), (String, bool)> {
    match status {
        None => Ok(()),
        Some(s) if s.code == 0 && s.error_code == ErrorCode::Success as i32 => Ok(()),
        Some(s) => Err((
            if s.reason.is_empty() {
                format!("error code {}", s.code.max(s.error_code))
            } else {
                s.reason.clone()
            },
            s.retriable,
        )),
    }
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
        let header = token
            .map(|t| {
                let encoded = base64::engine::general_purpose::STANDARD.encode(t.expose());
                encoded
                    .parse()
                    .map_err(|_| unreachable("the token cannot be sent as a header".into()))
            })
            .transpose()?;
        let client = MilvusServiceClient::with_interceptor(channel, Auth(header))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let cluster = Self {
            role,
            uri,
            address: address.clone(),
            client,
        };
        if let Err(e) = cluster.ping().await {
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

    fn call_error(&self, operation: String, status: tonic::Status) -> ClusterError {
        use tonic::Code;
        // A reconnection in the middle of a job can meet a certificate that changed.
        if let Some(failure) = TlsFailure::find(&status) {
            return ClusterError::Tls {
                role: self.role,
                address: self.address.authority(),
                detail: failure.explain(&format!("{}.tls", self.role)),
            };
        }
        match status.code() {
            Code::Unauthenticated | Code::PermissionDenied => ClusterError::Unauthenticated {
                role: self.role,
                uri: self.uri.clone(),
                detail: status.message().to_owned(),
            },
            code => ClusterError::Call {
                role: self.role,
                operation,
                detail: format!("{}: {}", code_name(code), status.message()),
                transient: matches!(
                    code,
                    Code::Unavailable
                        | Code::DeadlineExceeded
                        | Code::ResourceExhausted
                        | Code::Aborted
                ),
            },
        }
    }

    fn status_error(&self, operation: String, (detail, retriable): (String, bool)) -> ClusterError {
        let lower = detail.to_lowercase();
        if lower.contains("auth") && (lower.contains("fail") || lower.contains("denied")) {
            return ClusterError::Unauthenticated {
                role: self.role,
                uri: self.uri.clone(),
                detail,
            };
        }
        ClusterError::Call {
            role: self.role,
            operation,
            detail,
            transient: retriable,
        }
    }

    /// One unary call: `call` gets a client, and the gRPC error or the response's own status
    /// becomes a [`ClusterError`] naming `operation`.
    async fn unary<T, F, Fut>(
        &self,
        operation: impl Fn() -> String,
        call: F,
    ) -> Result<T, ClusterError>
    where
        T: Answer,
        F: FnOnce(Client) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let response = call(self.client.clone())
            .await
            .map_err(|e| self.call_error(operation(), e))?
            .into_inner();
        ok_status(response.status()).map_err(|e| self.status_error(operation(), e))?;
        Ok(response)
    }

    async fn load_state(&self, database: &str, collection: &str) -> Result<i32, ClusterError> {
        let response = rpc!(
            self,
            || format!("load state of {database}.{collection}"),
            get_load_state(GetLoadStateRequest {
                db_name: database.into(),
                collection_name: collection.into(),
                ..Default::default()
            })
        )?;
        Ok(response.state)
    }

    async fn query(
        &self,
        request: QueryRequest,
        what: &str,
    ) -> Result<Vec<::milvus::proto::schema::FieldData>, ClusterError> {
        let (db, coll) = (request.db_name.clone(), request.collection_name.clone());
        let response = rpc!(self, || format!("{what} {db}.{coll}"), query(request))?;
        Ok(response.fields_data)
    }
}

#[async_trait]
impl Cluster for MilvusCluster {
    async fn ping(&self) -> Result<(), ClusterError> {
        self.list_databases().await.map(|_| ())
    }

    async fn list_databases(&self) -> Result<Vec<String>, ClusterError> {
        let response = rpc!(
            self,
            || "list databases".into(),
            list_databases(ListDatabasesRequest::default())
        )?;
        Ok(response.db_names)
    }

    async fn create_database(&self, name: &str) -> Result<(), ClusterError> {
        rpc!(
            self,
            || format!("create database {name}"),
            create_database(CreateDatabaseRequest {
                db_name: name.into(),
                ..Default::default()
            })
        )
        .map(|_| ())
    }

    async fn list_collections(&self, database: &str) -> Result<Vec<String>, ClusterError> {
        let response = rpc!(
            self,
            || format!("list collections of {database}"),
            show_collections(ShowCollectionsRequest {
                db_name: database.into(),
                ..Default::default()
            })
        )?;
        Ok(response.collection_names)
    }

    async fn describe_collection(
        &self,
        database: &str,
        collection: &str,
    ) -> Result<Option<CollectionInfo>, ClusterError> {
        // Describe reports a missing collection with codes that differ across versions; the
        // listing is unambiguous.
        if !self
            .list_collections(database)
            .await?
            .iter()
            .any(|c| c == collection)
        {
            return Ok(None);
        }
        let response = rpc!(
            self,
            || format!("describe {database}.{collection}"),
            describe_collection(DescribeCollectionRequest {
                db_name: database.into(),
                collection_name: collection.into(),
                ..Default::default()
            })
        )?;
        let schema = response.schema.ok_or_else(|| {
            ClusterError::Protocol(format!("{database}.{collection} has no schema"), self.role)
        })?;
        Ok(Some(CollectionInfo {
            schema,
            shards_num: response.shards_num,
            consistency_level: response.consistency_level,
            properties: response.properties,
            num_partitions: response.num_partitions,
        }))
    }

    async fn list_partitions(
        &self,
        database: &str,
        collection: &str,
    ) -> Result<Vec<String>, ClusterError> {
        let response = rpc!(
            self,
            || format!("list partitions of {database}.{collection}"),
            show_partitions(ShowPartitionsRequest {
                db_name: database.into(),
                collection_name: collection.into(),
                ..Default::default()
            })
        )?;
        Ok(response.partition_names)
    }

    async fn list_indexes(
        &self,
        database: &str,
        collection: &str,
    ) -> Result<Vec<IndexInfo>, ClusterError> {
        let response = self
            .client
            .clone()
            .describe_index(DescribeIndexRequest {
                db_name: database.into(),
                collection_name: collection.into(),
                ..Default::default()
            })
            .await
            .map_err(|e| {
                self.call_error(format!("describe indexes of {database}.{collection}"), e)
            })?
            .into_inner();
        if let Err((reason, retriable)) = ok_status(response.status.as_ref()) {
            #[allow(deprecated)]
            let code = response.status.as_ref().map(|s| (s.code, s.error_code));
            // "No index yet" is an error status on every version; it means an empty list.
            let missing = code
                .is_some_and(|(c, e)| c == 700 || e == ErrorCode::IndexNotExist as i32)
                || reason.to_lowercase().contains("index not found")
                || reason.to_lowercase().contains("index doesn't exist");
            if missing {
                return Ok(Vec::new());
            }
            return Err(self.status_error(
                format!("describe indexes of {database}.{collection}"),
                (reason, retriable),
            ));
        }
        Ok(response
            .index_descriptions
            .into_iter()
            .map(|d| IndexInfo {
                index_name: d.index_name,
                field_name: d.field_name,
                params: d.params,
            })
            .collect())
    }

    async fn is_loaded(&self, database: &str, collection: &str) -> Result<bool, ClusterError> {
        Ok(self.load_state(database, collection).await? == LoadState::Loaded as i32)
    }

    async fn create_collection(
        &self,
        database: &str,
        collection: &str,
        info: &CollectionInfo,
    ) -> Result<(), ClusterError> {
        let mut schema = info.schema.clone();
        schema.name = collection.to_owned();
        schema.db_name = String::new();
        // The dynamic field `$meta` is the server's own: it comes back from `enable_dynamic_field`.
        schema.fields.retain(|f| !f.is_dynamic);
        for f in &mut schema.fields {
            f.field_id = 0;
        }
        for func in &mut schema.functions {
            func.id = 0;
            func.input_field_ids.clear();
            func.output_field_ids.clear();
        }
        let num_partitions = if info.has_partition_key() {
            info.num_partitions
        } else {
            0
        };
        let mut properties = info.properties.clone();
        if info.has_auto_id() && info.property(ALLOW_INSERT_AUTO_ID).is_none() {
            // Keys are copied, not generated again; the finish step removes the property.
            properties.push(kv(ALLOW_INSERT_AUTO_ID, "true"));
        }
        rpc!(
            self,
            || format!("create collection {database}.{collection}"),
            create_collection(CreateCollectionRequest {
                db_name: database.into(),
                collection_name: collection.into(),
                schema: schema.encode_to_vec(),
                shards_num: info.shards_num,
                consistency_level: info.consistency_level,
                properties,
                num_partitions,
                ..Default::default()
            })
        )
        .map(|_| ())
    }

    async fn create_partition(
        &self,
        database: &str,
        collection: &str,
        partition: &str,
    ) -> Result<(), ClusterError> {
        rpc!(
            self,
            || format!("create partition {partition} of {database}.{collection}"),
            create_partition(CreatePartitionRequest {
                db_name: database.into(),
                collection_name: collection.into(),
                partition_name: partition.into(),
                ..Default::default()
            })
        )
        .map(|_| ())
    }

    async fn create_index(
        &self,
        database: &str,
        collection: &str,
        index: &IndexInfo,
    ) -> Result<(), ClusterError> {
        rpc!(
            self,
            || {
                format!(
                    "create index on {database}.{collection}.{}",
                    index.field_name
                )
            },
            create_index(CreateIndexRequest {
                db_name: database.into(),
                collection_name: collection.into(),
                field_name: index.field_name.clone(),
                extra_params: index.params.clone(),
                index_name: index.index_name.clone(),
                ..Default::default()
            })
        )
        .map(|_| ())
    }

    async fn read_page(&self, page: &PageRequest<'_>) -> Result<Batch, ClusterError> {
        let request = QueryRequest {
            db_name: page.database.into(),
            collection_name: page.collection.into(),
            expr: after_filter(&page.primary.name, page.after),
            output_fields: vec!["*".into()],
            partition_names: page
                .partition
                .map(|p| vec![p.to_owned()])
                .unwrap_or_default(),
            query_params: vec![
                kv("limit", &page.limit.to_string()),
                kv("iterator", "True"),
                kv("reduce_stop_for_best", "False"),
            ],
            consistency_level: ConsistencyLevel::Strong as i32,
            use_default_consistency: false,
            ..Default::default()
        };
        let mut fields = self.query(request, "read").await?;
        fields.retain(|f| !page.skip_fields.contains(&f.field_name));
        normalize_page(&mut fields);
        Batch::from_columns(fields, &page.primary.name, page.after).map_err(|e| {
            ClusterError::Protocol(
                format!("reading {}.{}: {e}", page.database, page.collection),
                self.role,
            )
        })
    }

    async fn write_page(
        &self,
        database: &str,
        collection: &str,
        partition: Option<&str>,
        batch: &Batch,
        mode: WriteMode,
    ) -> Result<u64, ClusterError> {
        let operation = || format!("{} into {database}.{collection}", mode.as_str());
        let (db_name, collection_name) = (database.to_owned(), collection.to_owned());
        let partition_name = partition.unwrap_or_default().to_owned();
        let num_rows = batch.rows as u32;
        let fields_data = batch.fields.clone();
        let result = match mode {
            WriteMode::Insert => {
                let request = InsertRequest {
                    db_name,
                    collection_name,
                    partition_name,
                    fields_data,
                    num_rows,
                    ..Default::default()
                };
                rpc!(self, operation, insert(request))?
            }
            WriteMode::Upsert => {
                let request = UpsertRequest {
                    db_name,
                    collection_name,
                    partition_name,
                    fields_data,
                    num_rows,
                    ..Default::default()
                };
                rpc!(self, operation, upsert(request))?
            }
        };
        let written = match mode {
            WriteMode::Insert => result.insert_cnt,
            WriteMode::Upsert => result.upsert_cnt,
        };
        // Some servers leave the count at 0 on upsert; the ids list is the other witness.
        let ids = result.i_ds.as_ref().and_then(|ids| match &ids.id_field {
            Some(::milvus::proto::schema::i_ds::IdField::IntId(a)) => Some(a.data.len()),
            Some(::milvus::proto::schema::i_ds::IdField::StrId(a)) => Some(a.data.len()),
            _ => None,
        });
        let written = if written > 0 {
            written as u64
        } else {
            ids.unwrap_or(0) as u64
        };
        if written != batch.rows as u64 {
            return Err(ClusterError::Protocol(
                format!("{} took {written} of {} entities", operation(), batch.rows),
                self.role,
            ));
        }
        Ok(written)
    }

    async fn flush(&self, database: &str, collection: &str) -> Result<(), ClusterError> {
        rpc!(
            self,
            || format!("flush {database}.{collection}"),
            flush(FlushRequest {
                db_name: database.into(),
                collection_names: vec![collection.into()],
                ..Default::default()
            })
        )
        .map(|_| ())
    }

    async fn load(&self, database: &str, collection: &str) -> Result<(), ClusterError> {
        rpc!(
            self,
            || format!("load {database}.{collection}"),
            load_collection(LoadCollectionRequest {
                db_name: database.into(),
                collection_name: collection.into(),
                ..Default::default()
            })
        )?;
        let started = tokio::time::Instant::now();
        loop {
            let state = self.load_state(database, collection).await?;
            if state == LoadState::Loaded as i32 {
                return Ok(());
            }
            if started.elapsed() > LOAD_TIMEOUT {
                return Err(ClusterError::Call {
                    role: self.role,
                    operation: format!("load {database}.{collection}"),
                    detail: format!("not loaded after {}s", LOAD_TIMEOUT.as_secs()),
                    transient: true,
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn release(&self, database: &str, collection: &str) -> Result<(), ClusterError> {
        rpc!(
            self,
            || format!("release {database}.{collection}"),
            release_collection(ReleaseCollectionRequest {
                db_name: database.into(),
                collection_name: collection.into(),
                ..Default::default()
            })
        )
        .map(|_| ())
    }

    async fn count(&self, database: &str, collection: &str) -> Result<u64, ClusterError> {
        let fields = self
            .query(
                QueryRequest {
                    db_name: database.into(),
                    collection_name: collection.into(),
                    expr: String::new(),
                    output_fields: vec!["count(*)".into()],
                    consistency_level: ConsistencyLevel::Strong as i32,
                    use_default_consistency: false,
                    ..Default::default()
                },
                "count",
            )
            .await?;
        let count = fields.iter().find_map(|f| match &f.field {
            Some(field_data::Field::Scalars(s)) => match &s.data {
                Some(scalar_field::Data::LongData(d)) => d.data.first().copied(),
                _ => None,
            },
            _ => None,
        });
        count.map(|c| c.max(0) as u64).ok_or_else(|| {
            ClusterError::Protocol(
                format!("count(*) of {database}.{collection} returned no number"),
                self.role,
            )
        })
    }

    async fn drop_collection(&self, database: &str, collection: &str) -> Result<(), ClusterError> {
        rpc!(
            self,
            || format!("drop {database}.{collection}"),
            drop_collection(DropCollectionRequest {
                db_name: database.into(),
                collection_name: collection.into(),
                ..Default::default()
            })
        )
        .map(|_| ())
    }

    async fn query_rows(
        &self,
        query: &RowQuery<'_>,
    ) -> Result<Vec<::milvus::proto::schema::FieldData>, ClusterError> {
        self.query(
            QueryRequest {
                db_name: query.database.into(),
                collection_name: query.collection.into(),
                expr: query.filter.clone(),
                output_fields: vec!["*".into()],
                query_params: vec![kv("limit", &query.limit.to_string())],
                consistency_level: ConsistencyLevel::Strong as i32,
                use_default_consistency: false,
                ..Default::default()
            },
            "compare entities of",
        )
        .await
    }

    async fn drop_properties(
        &self,
        database: &str,
        collection: &str,
        keys: &[String],
    ) -> Result<(), ClusterError> {
        rpc!(
            self,
            || {
                format!(
                    "remove properties {} of {database}.{collection}",
                    keys.join(", ")
                )
            },
            alter_collection(AlterCollectionRequest {
                db_name: database.into(),
                collection_name: collection.into(),
                delete_keys: keys.to_vec(),
                ..Default::default()
            })
        )
        .map(|_| ())
    }

    async fn server_version(&self) -> Result<String, ClusterError> {
        let response = rpc!(
            self,
            || "get the server version".into(),
            get_version(GetVersionRequest::default())
        )?;
        Ok(response.version)
    }

    async fn probe_schema(
        &self,
        info: &CollectionInfo,
    ) -> Result<Result<::milvus::proto::schema::CollectionSchema, String>, ClusterError> {
        let name = scratch_name();
        match self.create_collection("", &name, info).await {
            Ok(()) => {}
            Err(ClusterError::Call {
                detail,
                transient: false,
                ..
            }) => return Ok(Err(detail)),
            Err(e) => return Err(e),
        }
        let described = self.describe_collection("", &name).await;
        self.drop_collection("", &name).await?;
        match described? {
            Some(kept) => Ok(Ok(kept.schema)),
            None => Ok(Err(
                "the scratch collection vanished after its creation".into()
            )),
        }
    }

    async fn probe_explicit_auto_id(&self) -> Result<Result<(), String>, ClusterError> {
        const KEY: i64 = 4_242_424_242;
        let name = scratch_name();
        let request = auto_id_scratch(&name);
        let operation = || format!("create scratch collection {name}");
        let created = rpc!(self, operation, create_collection(request));
        match created {
            Ok(_) => {}
            Err(ClusterError::Call {
                detail,
                transient: false,
                ..
            }) => return Ok(Err(detail)),
            Err(e) => return Err(e),
        }
        let inserted = self.client.clone().insert(one_entity(&name, KEY)).await;
        // The scratch collection goes whatever the insert did.
        let dropped = self.drop_collection("", &name).await;
        let verdict = match inserted {
            Err(status) => Err(status.message().to_owned()),
            Ok(response) => explicit_key_kept(response.into_inner(), KEY),
        };
        dropped?;
        Ok(verdict)
    }
}

/// A scratch `auto_id` collection that lets explicit keys in.
fn auto_id_scratch(name: &str) -> CreateCollectionRequest {
    use ::milvus::proto::schema::{CollectionSchema, DataType, FieldSchema};
    let schema = CollectionSchema {
        name: name.to_owned(),
        fields: vec![
            FieldSchema {
                name: "id".into(),
                data_type: DataType::Int64 as i32,
                is_primary_key: true,
                auto_id: true,
                ..Default::default()
            },
            FieldSchema {
                name: "v".into(),
                data_type: DataType::FloatVector as i32,
                type_params: vec![kv("dim", "2")],
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    CreateCollectionRequest {
        collection_name: name.to_owned(),
        schema: schema.encode_to_vec(),
        shards_num: 1,
        properties: vec![kv(ALLOW_INSERT_AUTO_ID, "true")],
        ..Default::default()
    }
}

/// One entity with an explicit key, for [`auto_id_scratch`].
fn one_entity(name: &str, key: i64) -> InsertRequest {
    use ::milvus::proto::schema::{
        field_data, vector_field, DataType, FieldData, FloatArray, LongArray, ScalarField,
        VectorField,
    };
    InsertRequest {
        collection_name: name.to_owned(),
        num_rows: 1,
        fields_data: vec![
            FieldData {
                r#type: DataType::Int64 as i32,
                field_name: "id".into(),
                field: Some(field_data::Field::Scalars(ScalarField {
                    data: Some(scalar_field::Data::LongData(LongArray { data: vec![key] })),
                    ..Default::default()
                })),
                ..Default::default()
            },
            FieldData {
                r#type: DataType::FloatVector as i32,
                field_name: "v".into(),
                field: Some(field_data::Field::Vectors(VectorField {
                    dim: 2,
                    data: Some(vector_field::Data::FloatVector(FloatArray {
                        data: vec![0.5, 0.5],
                    })),
                    ..Default::default()
                })),
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}

/// Whether an insert kept the explicit `key` it was given, or why not.
fn explicit_key_kept(
    response: ::milvus::proto::milvus::MutationResult,
    key: i64,
) -> Result<(), String> {
    use ::milvus::proto::schema::i_ds;
    ok_status(response.status.as_ref()).map_err(|(reason, _)| reason)?;
    match response.i_ds.and_then(|ids| ids.id_field) {
        Some(i_ds::IdField::IntId(ids)) if ids.data == [key] => Ok(()),
        Some(_) => Err("it took the entity but gave it another key".into()),
        None => Err("it took the entity but reported no key".into()),
    }
}
