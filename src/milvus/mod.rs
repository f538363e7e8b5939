//! The cluster port and its Milvus adapter. The engine sees a [`Cluster`]: describe, create,
//! read a page after a cursor, write a page, count. Pages stay in Milvus's own columnar form
//! (`FieldData`) from the source's query response to the target's insert request.
//!
//! [`grpc::MilvusConnector`] implements it on the official SDK's generated gRPC client
//! (`milvus::proto`), which the SDK's high-level API falls short of here: its iterator stops
//! early against Milvus 2.3.5, its 4 MiB response limit cannot be raised, and it converts
//! columns into rows and back.

use std::sync::Arc;

use async_trait::async_trait;

pub use ::milvus::proto::common::KeyValuePair;
pub use ::milvus::proto::schema::{CollectionSchema, DataType, FieldData, FieldSchema};

use crate::domain::{ClusterSpec, Cursor, SchemaOverrides, Selection, ZillizCluster};

/// The collection property that lets explicit keys into an `auto_id` collection.
pub const ALLOW_INSERT_AUTO_ID: &str = "allow_insert_auto_id";

pub mod batch;
pub mod compat;
pub mod grpc;
pub mod rows;
pub mod zilliz;

pub use batch::Batch;

/// A Milvus key/value param.
pub fn kv(key: &str, value: &str) -> KeyValuePair {
    KeyValuePair {
        key: key.into(),
        value: value.into(),
    }
}

pub use crate::domain::Role;

/// A failed cluster call, with what a user needs to act on it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    /// The server could not be reached at all.
    #[error(
        "cannot reach the {role} cluster at {uri}: {detail} (is it running? check {role}.uri)"
    )]
    Unreachable {
        /// Which cluster.
        role: Role,
        /// Where we tried.
        uri: String,
        /// The transport's words.
        detail: String,
    },
    /// The TLS handshake failed: a certificate problem, or a scheme that does not match the
    /// server (`https` to a plaintext port, `http` to a TLS one). Never worth retrying.
    #[error("TLS with the {role} cluster at {address} failed: {detail}")]
    Tls {
        /// Which cluster.
        role: Role,
        /// `host:port`.
        address: String,
        /// What failed and what to do.
        detail: String,
    },
    /// The server refused the credentials.
    #[error("the {role} cluster at {uri} refused the credentials: {detail} (check {role}.token)")]
    Unauthenticated {
        /// Which cluster.
        role: Role,
        /// Where.
        uri: String,
        /// The server's words.
        detail: String,
    },
    /// A call failed.
    #[error("{role} cluster: {operation} failed: {detail}{}", .failure.advice(*.role))]
    Call {
        /// Which cluster.
        role: Role,
        /// The operation, with its object (`insert into db.collection`).
        operation: String,
        /// The server's words.
        detail: String,
        /// What the failure means for the caller.
        failure: Failure,
    },
    /// The cluster's token could not be found (Secrets Manager, a sealed token).
    #[error("cannot get the {role} cluster's token: {detail}")]
    Credentials {
        /// Which cluster.
        role: Role,
        /// What failed (never the token).
        detail: String,
    },
    /// The server answered something that breaks an invariant we rely on.
    #[error("{role} cluster: {0}", role = .1)]
    Protocol(String, Role),
    /// Something answers at the address, but not as a Milvus gRPC server (an HTTP/1.1 port
    /// such as Milvus's 9091 metrics port, a web server): never worth retrying.
    #[error("the {role} cluster at {uri} answered, but not as a Milvus gRPC server ({detail}); check {role}.uri: Milvus serves gRPC on port 19530 by default (9091 is its HTTP metrics port)")]
    NotMilvus {
        /// Which cluster.
        role: Role,
        /// Where.
        uri: String,
        /// What the connection said.
        detail: String,
    },
    /// Zilliz Cloud's control plane could not resolve a cluster given by id.
    #[error("the {role} cluster {cluster_id} {detail}")]
    ZillizCloud {
        /// Which cluster.
        role: Role,
        /// The id it was given by.
        cluster_id: String,
        /// What the control plane said, and what to do.
        detail: String,
        /// Whether asking again may succeed (the control plane was unreachable or busy).
        transient: bool,
    },
}

/// What a failed call means for whoever made it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Failure {
    /// Trying again will not help (a bad request, a missing collection, a refused schema).
    Permanent,
    /// The cluster or the network is down for now (connection refused or reset,
    /// `UNAVAILABLE`, `DEADLINE_EXCEEDED`, a restart): wait it out.
    Outage,
    /// The cluster asks for fewer or smaller requests (its rate limiter, gRPC
    /// `RESOURCE_EXHAUSTED`); `rate` is its hint, in bytes per second for writes.
    Throttled {
        /// The `rate=` of the server's message.
        rate: Option<f64>,
    },
    /// The cluster is full (quota exceeded, disk or memory quota): nothing gets in until
    /// someone makes room.
    Full,
}

impl Failure {
    /// What to do, appended to the error's message.
    fn advice(&self, role: Role) -> String {
        match self {
            Failure::Full => format!(
                "; the {role} cluster is full: free space on it or raise its quota (a larger plan or more CUs on Zilliz Cloud), then start the job again"
            ),
            _ => String::new(),
        }
    }
}

impl ClusterError {
    /// What the failure means: every error but a failed call is either an outage (a cluster
    /// that cannot be reached) or permanent.
    pub fn failure(&self) -> Failure {
        match self {
            ClusterError::Call { failure, .. } => *failure,
            ClusterError::Unreachable { .. } => Failure::Outage,
            ClusterError::ZillizCloud { transient, .. } if *transient => Failure::Outage,
            _ => Failure::Permanent,
        }
    }

    /// Which cluster failed.
    pub fn role(&self) -> Role {
        match self {
            ClusterError::Unreachable { role, .. }
            | ClusterError::Tls { role, .. }
            | ClusterError::Unauthenticated { role, .. }
            | ClusterError::Call { role, .. }
            | ClusterError::Credentials { role, .. }
            | ClusterError::ZillizCloud { role, .. }
            | ClusterError::NotMilvus { role, .. }
            | ClusterError::Protocol(_, role) => *role,
        }
    }

    /// Whether trying the same call again may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self.failure(), Failure::Outage | Failure::Throttled { .. })
    }
}

/// Everything needed to recreate a collection: the schema and the collection-level settings.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionInfo {
    /// The schema as the source describes it.
    pub schema: CollectionSchema,
    /// Shards.
    pub shards_num: i32,
    /// Default consistency level.
    pub consistency_level: i32,
    /// Collection properties.
    pub properties: Vec<KeyValuePair>,
    /// Partitions of a partition-key collection.
    pub num_partitions: i64,
}

impl CollectionInfo {
    /// The primary key field.
    pub fn primary_field(&self) -> Option<&FieldSchema> {
        self.schema.fields.iter().find(|f| f.is_primary_key)
    }

    /// True when Milvus routes entities to partitions by a partition key field.
    pub fn has_partition_key(&self) -> bool {
        self.schema.fields.iter().any(|f| f.is_partition_key)
    }

    /// Fields the target computes itself (function outputs, such as BM25 sparse vectors).
    pub fn is_function_output(&self, name: &str) -> bool {
        self.schema
            .fields
            .iter()
            .any(|f| f.name == name && f.is_function_output)
            || self
                .schema
                .functions
                .iter()
                .any(|func| func.output_field_names.iter().any(|o| o == name))
    }

    /// True when the primary key is generated by the server.
    pub fn has_auto_id(&self) -> bool {
        self.primary_field().is_some_and(|f| f.auto_id)
    }

    /// The value of a collection property.
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|kv| kv.key == key)
            .map(|kv| kv.value.as_str())
    }

    /// The collection as the target gets it: the source's, with the request's overrides
    /// applied. The error names the override (relative to `schema_overrides`) and the problem.
    pub fn with_overrides(&self, o: &SchemaOverrides) -> Result<Self, (String, String)> {
        let mut out = self.clone();
        if let Some(d) = &o.description {
            out.schema.description = d.clone();
        }
        match o.enable_dynamic_field {
            Some(false) if self.schema.enable_dynamic_field => {
                return Err((
                    "enable_dynamic_field".into(),
                    "the source collection has a dynamic field; turning it off would drop the data its entities keep there".into(),
                ))
            }
            Some(on) => out.schema.enable_dynamic_field = on,
            None => {}
        }
        if let Some(pk) = &o.partition_key {
            let field = self
                .schema
                .fields
                .iter()
                .find(|f| f.name == pk.field && !f.is_dynamic)
                .ok_or_else(|| {
                    (
                        "partition_key.field".to_owned(),
                        format!("the collection has no field `{}`", pk.field),
                    )
                })?;
            let why_not = if field.is_primary_key {
                Some("it is the primary key".to_owned())
            } else if field.nullable {
                Some("it is nullable".to_owned())
            } else if self.is_function_output(&field.name) {
                Some("it is a function's output".to_owned())
            } else if !matches!(
                DataType::try_from(field.data_type),
                Ok(DataType::Int64 | DataType::VarChar)
            ) {
                Some(format!(
                    "its type is {}; a partition key must be Int64 or VarChar",
                    compat::type_name(field.data_type)
                ))
            } else {
                None
            };
            if let Some(why) = why_not {
                return Err((
                    "partition_key.field".into(),
                    format!("`{}` cannot be a partition key: {why}", pk.field),
                ));
            }
            for f in &mut out.schema.fields {
                f.is_partition_key = f.name == pk.field;
            }
            if let Some(n) = pk.num_partitions {
                out.num_partitions = n;
            } else if !self.has_partition_key() {
                // The server's default, as when the collection is created without a number.
                out.num_partitions = 0;
            }
        }
        Ok(out)
    }

    /// The names of the fields the target computes (function outputs): never read, never written.
    pub fn function_outputs(&self) -> Vec<String> {
        self.schema
            .fields
            .iter()
            .filter(|f| self.is_function_output(&f.name))
            .map(|f| f.name.clone())
            .collect()
    }

    /// The vector fields.
    pub fn vector_fields(&self) -> impl Iterator<Item = &FieldSchema> {
        self.schema
            .fields
            .iter()
            .filter(|f| batch::is_vector(f.data_type))
    }
}

/// An index on one field.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexInfo {
    /// The index name.
    pub index_name: String,
    /// The indexed field.
    pub field_name: String,
    /// `index_type`, `metric_type` and the index's params.
    pub params: Vec<KeyValuePair>,
}

impl IndexInfo {
    /// The value of one param.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|kv| kv.key == key)
            .map(|kv| kv.value.as_str())
    }
}

/// How far the server has built one index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexProgress {
    /// The indexed field.
    pub field_name: String,
    /// Entities indexed.
    pub indexed_rows: u64,
    /// Entities the index covers when it is built (the sealed segments').
    pub total_rows: u64,
    /// True when the server reports the index built (state `Finished`, nothing pending).
    pub finished: bool,
}

/// How a page is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Plain insert.
    Insert,
    /// Replace entities with the same primary key (used for a page a dead worker may have written).
    Upsert,
}

impl WriteMode {
    /// The write's name in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Insert => "insert",
            Self::Upsert => "upsert",
        }
    }
}

/// Where a bulk import of one staged file stands, as the target reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportState {
    /// Queued or being read; not finished.
    Running,
    /// Every entity of the file is in the collection.
    Completed,
    /// Nothing of the file is in the collection (an import is all or nothing).
    Failed,
}

/// One bulk import the target knows of.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportJob {
    /// The target's id for it.
    pub id: String,
    /// Where it stands.
    pub state: ImportState,
    /// Entities imported so far.
    pub rows: u64,
    /// The files it reads, as they were given.
    pub files: Vec<String>,
    /// Why it failed, in the target's words.
    pub reason: String,
}

/// One page to read: entities after `after` in primary-key order.
#[derive(Debug, Clone)]
pub struct PageRequest<'a> {
    /// Database.
    pub database: &'a str,
    /// Collection.
    pub collection: &'a str,
    /// Partition, or every partition.
    pub partition: Option<&'a str>,
    /// The primary key field.
    pub primary: &'a FieldSchema,
    /// Read strictly after this key.
    pub after: Option<&'a Cursor>,
    /// Read up to this key (inclusive), or to the end.
    pub upto: Option<&'a Cursor>,
    /// Read as of this server timestamp (the task's pinned one), or with Strong consistency.
    pub read_at: Option<u64>,
    /// At most this many entities.
    pub limit: u32,
    /// Fields to leave out (computed by the target).
    pub skip_fields: &'a [String],
    /// The job's subset of the source: its filter narrows every read, and its partitions
    /// bound a read of every partition (`partition: None`). The target is read whole.
    pub subset: Selection<'a>,
}

impl<'a> PageRequest<'a> {
    /// All of `subset` in one partition (`None`: in every partition), as a count reads it.
    pub fn whole(
        database: &'a str,
        collection: &'a str,
        partition: Option<&'a str>,
        primary: &'a FieldSchema,
        subset: Selection<'a>,
    ) -> Self {
        Self {
            database,
            collection,
            partition,
            primary,
            after: None,
            upto: None,
            read_at: None,
            limit: 0,
            skip_fields: &[],
            subset,
        }
    }
}

/// Entities selected by a filter, in no particular order (for verification).
#[derive(Debug, Clone)]
pub struct RowQuery<'a> {
    /// Database.
    pub database: &'a str,
    /// Collection.
    pub collection: &'a str,
    /// The filter expression (see [`batch::keys_filter`], [`batch::range_filter`]).
    pub filter: String,
    /// At most this many entities (at most 16,384).
    pub limit: u32,
}

/// One Milvus cluster, as the engine uses it.
#[async_trait]
pub trait Cluster: Send + Sync {
    /// Checks that the cluster answers and accepts the credentials.
    async fn ping(&self) -> Result<(), ClusterError>;
    /// Database names.
    async fn list_databases(&self) -> Result<Vec<String>, ClusterError>;
    /// Creates a database.
    async fn create_database(&self, name: &str) -> Result<(), ClusterError>;
    /// Collection names of a database.
    async fn list_collections(&self, database: &str) -> Result<Vec<String>, ClusterError>;
    /// Describes a collection; `None` when it does not exist.
    async fn describe_collection(
        &self,
        database: &str,
        collection: &str,
    ) -> Result<Option<CollectionInfo>, ClusterError>;
    /// Partition names of a collection.
    async fn list_partitions(
        &self,
        database: &str,
        collection: &str,
    ) -> Result<Vec<String>, ClusterError>;
    /// Indexes of a collection.
    async fn list_indexes(
        &self,
        database: &str,
        collection: &str,
    ) -> Result<Vec<IndexInfo>, ClusterError>;
    /// How far each index of a collection is built.
    async fn index_progress(
        &self,
        database: &str,
        collection: &str,
    ) -> Result<Vec<IndexProgress>, ClusterError>;
    /// Whether the collection is loaded (it must be, to be read).
    async fn is_loaded(&self, database: &str, collection: &str) -> Result<bool, ClusterError>;
    /// Creates a collection with `info`'s schema and settings under `collection`.
    async fn create_collection(
        &self,
        database: &str,
        collection: &str,
        info: &CollectionInfo,
    ) -> Result<(), ClusterError>;
    /// Creates a partition.
    async fn create_partition(
        &self,
        database: &str,
        collection: &str,
        partition: &str,
    ) -> Result<(), ClusterError>;
    /// Creates an index.
    async fn create_index(
        &self,
        database: &str,
        collection: &str,
        index: &IndexInfo,
    ) -> Result<(), ClusterError>;
    /// Reads one page in primary-key order.
    async fn read_page(&self, page: &PageRequest<'_>) -> Result<Batch, ClusterError>;
    /// Reads only the primary keys of one page, in order (to cut a partition into key ranges
    /// without reading its vectors).
    async fn read_keys(&self, page: &PageRequest<'_>) -> Result<Vec<Cursor>, ClusterError>;
    /// Writes one page; returns how many entities the server took.
    async fn write_page(
        &self,
        database: &str,
        collection: &str,
        partition: Option<&str>,
        batch: &Batch,
        mode: WriteMode,
    ) -> Result<u64, ClusterError>;
    /// Seals what was written.
    async fn flush(&self, database: &str, collection: &str) -> Result<(), ClusterError>;
    /// Loads a collection and waits until it is loaded.
    async fn load(&self, database: &str, collection: &str) -> Result<(), ClusterError>;
    /// Releases a collection.
    async fn release(&self, database: &str, collection: &str) -> Result<(), ClusterError>;
    /// Exact entity count (`count(*)`, Strong consistency); the collection must be loaded.
    async fn count(&self, database: &str, collection: &str) -> Result<u64, ClusterError>;
    /// The entities of one key range of a partition (or of the collection): `count(*)` with
    /// the filter a page read of `range` would have (its `limit` is ignored), read at its
    /// pinned timestamp or with Strong consistency.
    async fn count_range(&self, range: &PageRequest<'_>) -> Result<u64, ClusterError>;
    /// Drops a collection.
    async fn drop_collection(&self, database: &str, collection: &str) -> Result<(), ClusterError>;
    /// Every field of the entities a filter selects (the collection must be loaded).
    async fn query_rows(&self, query: &RowQuery<'_>) -> Result<Vec<FieldData>, ClusterError>;
    /// Removes collection properties.
    async fn drop_properties(
        &self,
        database: &str,
        collection: &str,
        keys: &[String],
    ) -> Result<(), ClusterError>;
    /// The server's version string (`v2.3.5`, `milvus_lite-3.2.2`).
    async fn server_version(&self) -> Result<String, ClusterError>;
    /// Whether the cluster takes bulk imports of staged files: `Ok(Err(reason))` when it has
    /// no import API.
    async fn probe_import(&self) -> Result<Result<(), String>, ClusterError>;
    /// Asks the cluster once to import one staged file into a collection (a partition, or the
    /// one its partition key routes to); returns the import's id.
    async fn import_file(
        &self,
        database: &str,
        collection: &str,
        partition: Option<&str>,
        file: &str,
    ) -> Result<String, ClusterError>;
    /// Where one import stands.
    async fn import_progress(&self, id: &str) -> Result<ImportJob, ClusterError>;
    /// The imports of a collection the cluster knows of that read `file` (to tell whether an
    /// import call whose reply was lost was made).
    async fn imports_of(
        &self,
        database: &str,
        collection: &str,
        file: &str,
    ) -> Result<Vec<ImportJob>, ClusterError>;
    /// Creates `info`'s collection under a scratch name, describes it and drops it again:
    /// the schema the cluster would really keep, or `Ok(Err(reason))` when it refuses it.
    async fn probe_schema(
        &self,
        info: &CollectionInfo,
    ) -> Result<Result<CollectionSchema, String>, ClusterError>;
    /// Asks the cluster whether an `auto_id` collection keeps explicit keys (through
    /// [`ALLOW_INSERT_AUTO_ID`]), by trying it on a scratch collection that is dropped again.
    /// `Ok(Err(reason))` when it does not.
    async fn probe_explicit_auto_id(&self) -> Result<Result<(), String>, ClusterError>;
}

/// Opens clusters for a job, with credentials that never pass through the job record in clear.
#[async_trait]
pub trait ClusterConnector: Send + Sync {
    /// A connection to the job's `role` cluster as `spec` describes it.
    async fn connect(
        &self,
        role: Role,
        spec: &ClusterSpec,
    ) -> Result<Arc<dyn Cluster>, ClusterError>;

    /// What Zilliz Cloud's control plane says about the `role` cluster `spec` gives by
    /// `cluster_id`, asked with its token (the API key); only a `RUNNING` cluster is an answer.
    async fn describe_zilliz(
        &self,
        role: Role,
        spec: &ClusterSpec,
    ) -> Result<ZillizCluster, ClusterError>;

    /// What the control plane says about the target cluster `cluster_id` names, whatever its
    /// status (a new cluster goes `CREATING` before `RUNNING`).
    async fn zilliz_status(
        &self,
        cluster_id: &str,
        spec: &ClusterSpec,
    ) -> Result<ZillizCluster, ClusterError>;

    /// Asks the control plane once to create the target's `new_cluster`. The generated
    /// password never comes back in clear: sealed where the process can seal, else dropped.
    async fn create_zilliz(&self, spec: &ClusterSpec) -> Result<NewZilliz, ClusterError>;

    /// The target's `new_cluster`, if the control plane holds one by its name and project.
    async fn find_zilliz(&self, spec: &ClusterSpec) -> Result<Option<ZillizCluster>, ClusterError>;
}

/// A cluster the control plane created for a job.
#[derive(Debug, Clone)]
pub struct NewZilliz {
    /// Its id.
    pub cluster_id: String,
    /// Its admin user.
    pub username: Option<String>,
    /// Its generated password, sealed (`None` where the process cannot seal).
    pub sealed_password: Option<String>,
}
