//! The integration-test harness: the servers `scripts/test.sh` started (from the environment),
//! a small gRPC client of its own for seeding and for reading collections back, and the engine
//! wired to a fresh embedded store.
//!
//! Reading back deliberately shares no code with the adapter under test: it selects by key
//! ranges or key lists (never by `pk > cursor` paging) and compares every field of every row,
//! floats by their bits and JSON by value.
#![allow(dead_code)]

pub mod aws;
pub mod browser;
pub mod control_plane;
pub mod faults;
pub mod lambda;
pub mod receiver;
pub mod schemas;
pub mod tool;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use milvus::proto::common::{ConsistencyLevel, KeyValuePair, LoadState};
use milvus::proto::milvus::milvus_service_client::MilvusServiceClient;
use milvus::proto::milvus::{
    CreateCollectionRequest, CreateIndexRequest, CreatePartitionRequest, DescribeCollectionRequest,
    DescribeIndexRequest, GetLoadStateRequest, InsertRequest, LoadCollectionRequest, QueryRequest,
    ShowPartitionsRequest,
};
use milvus::proto::schema::{
    field_data, scalar_field, vector_field, BoolArray, CollectionSchema, DataType, DoubleArray,
    FieldData, FieldSchema, FloatArray, JsonArray, LongArray, ScalarField, StringArray,
    VectorField,
};
use prost::Message;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use vecmigrate::credentials::{Credentials, TokenResolver};
use vecmigrate::domain::{CollectionSpec, DatabaseSpec, MigrationRequest, Secret};
use vecmigrate::engine::{Engine, EngineConfig, Faults};
use vecmigrate::entrypoints::local::{LocalRunner, LocalSettings};
use vecmigrate::milvus::grpc::MilvusConnector;
use vecmigrate::milvus::zilliz::ControlPlane;
use vecmigrate::queue::inprocess::InProcessQueue;
use vecmigrate::store::sqlite::SqliteStore;
use vecmigrate::store::JobStore;

/// One test server.
#[derive(Debug, Clone)]
pub struct Server {
    pub uri: String,
    pub token: Option<String>,
}

/// The two servers of the backend under test.
#[derive(Debug, Clone)]
pub struct Servers {
    pub backend: String,
    pub source: Server,
    pub target: Server,
}

/// Whether a test whose behaviour does not depend on the backend runs on this one: it is
/// proven once, on `backend`, when this run of scripts/test.sh covers that backend
/// (`VECMIGRATE_TEST_BACKENDS`), and on whatever backend it has otherwise.
pub fn proven_on(backend: &str) -> bool {
    let current = var("VECMIGRATE_TEST_BACKEND");
    let covered = std::env::var("VECMIGRATE_TEST_BACKENDS")
        .unwrap_or_default()
        .split_whitespace()
        .any(|b| b == backend);
    if current == backend || !covered {
        return true;
    }
    eprintln!("proven on {backend}; not run again on {current}");
    false
}

pub fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the integration tests through scripts/test.sh, which starts the Milvus servers")
    })
}

impl Servers {
    pub fn from_env() -> Self {
        let token = |name: &str| std::env::var(name).ok().filter(|t| !t.is_empty());
        Self {
            backend: var("VECMIGRATE_TEST_BACKEND"),
            source: Server {
                uri: var("VECMIGRATE_TEST_SOURCE_URI"),
                token: token("VECMIGRATE_TEST_SOURCE_TOKEN"),
            },
            target: Server {
                uri: var("VECMIGRATE_TEST_TARGET_URI"),
                token: token("VECMIGRATE_TEST_TARGET_TOKEN"),
            },
        }
    }
}

/// The TLS proxies `scripts/test.sh` starts in front of the servers (scripts/grpc_proxy.py)
/// and the certificates it made for them (scripts/make_certs.py).
#[derive(Debug, Clone)]
pub struct TlsServers {
    /// Where `ca.pem`, `other-ca.pem`, `client.pem`, `client.key`, ... are.
    pub dir: std::path::PathBuf,
    /// The source behind one-way TLS (certificate for `localhost` only).
    pub source_port: u16,
    /// The target behind two-way TLS (a client certificate signed by the test CA required).
    pub target_port: u16,
    /// The source behind an expired certificate.
    pub expired_port: u16,
}

impl TlsServers {
    pub fn from_env() -> Self {
        let port = |name: &str| var(name).parse().expect("a port number");
        Self {
            dir: var("VECMIGRATE_TEST_TLS_DIR").into(),
            source_port: port("VECMIGRATE_TEST_TLS_SOURCE_PORT"),
            target_port: port("VECMIGRATE_TEST_TLS_TARGET_PORT"),
            expired_port: port("VECMIGRATE_TEST_TLS_EXPIRED_PORT"),
        }
    }

    /// The path of one of the test's PEM files.
    pub fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// The text of one of them.
    pub fn pem(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).expect("the test certificates exist")
    }
}

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

#[derive(Clone)]
pub struct Auth(Option<tonic::metadata::AsciiMetadataValue>);

impl tonic::service::Interceptor for Auth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

pub type Raw = MilvusServiceClient<InterceptedService<Channel, Auth>>;

/// A plain gRPC client, for seeding and checking.
pub async fn raw(server: &Server) -> Raw {
    let channel = Channel::from_shared(server.uri.clone())
        .unwrap()
        .connect()
        .await
        .expect("test server reachable");
    let header = server.token.as_ref().map(|t| {
        base64::engine::general_purpose::STANDARD
            .encode(t)
            .parse()
            .unwrap()
    });
    MilvusServiceClient::with_interceptor(channel, Auth(header))
        .max_decoding_message_size(512 << 20)
        .max_encoding_message_size(512 << 20)
}

pub fn kv(k: &str, v: &str) -> KeyValuePair {
    KeyValuePair {
        key: k.into(),
        value: v.into(),
    }
}

fn check(status: Option<&milvus::proto::common::Status>, what: &str) {
    if let Some(s) = status {
        #[allow(deprecated)]
        let failed = s.code != 0 || s.error_code != 0;
        assert!(!failed, "{what} failed: {} (code {})", s.reason, s.code);
    }
}

/// What to seed.
#[derive(Debug, Clone)]
pub struct Seed {
    pub name: String,
    pub rows: usize,
    pub dim: usize,
    /// Extra partitions besides `_default`; rows go round-robin over all of them.
    pub partitions: Vec<String>,
    pub varchar_pk: bool,
    pub dynamic: bool,
}

impl Seed {
    pub fn new(name: &str, rows: usize) -> Self {
        Self {
            name: name.into(),
            rows,
            dim: 16,
            partitions: vec![],
            varchar_pk: false,
            dynamic: true,
        }
    }
}

pub fn pk_of(seed: &Seed, i: usize) -> String {
    if seed.varchar_pk {
        // Keys with quotes, backslashes, `%`, a newline and non-ASCII text, as users have them.
        format!("k{i:06}-\"q\\é%\n'")
    } else {
        i.to_string()
    }
}

pub fn field(name: &str, t: DataType, params: &[(&str, &str)]) -> FieldSchema {
    FieldSchema {
        name: name.into(),
        data_type: t as i32,
        type_params: params.iter().map(|(k, v)| kv(k, v)).collect(),
        ..Default::default()
    }
}

pub fn scalar(name: &str, t: DataType, data: scalar_field::Data) -> FieldData {
    FieldData {
        r#type: t as i32,
        field_name: name.into(),
        field: Some(field_data::Field::Scalars(ScalarField {
            data: Some(data),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// Creates, fills, indexes and loads a source collection in `db`.
pub async fn seed(server: &Server, db: &str, seed: &Seed) {
    let mut c = raw(server).await;
    let mut pk = if seed.varchar_pk {
        field("id", DataType::VarChar, &[("max_length", "64")])
    } else {
        field("id", DataType::Int64, &[])
    };
    pk.is_primary_key = true;
    let dim = seed.dim.to_string();
    let schema = CollectionSchema {
        name: seed.name.clone(),
        description: "seeded by the vecmigrate tests".into(),
        fields: vec![
            pk,
            field("vec", DataType::FloatVector, &[("dim", &dim)]),
            field("title", DataType::VarChar, &[("max_length", "128")]),
            field("score", DataType::Double, &[]),
            field("flag", DataType::Bool, &[]),
            field("meta", DataType::Json, &[]),
        ],
        enable_dynamic_field: seed.dynamic,
        ..Default::default()
    };
    let r = c
        .create_collection(CreateCollectionRequest {
            db_name: db.into(),
            collection_name: seed.name.clone(),
            schema: schema.encode_to_vec(),
            shards_num: 1,
            consistency_level: ConsistencyLevel::Strong as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    check(Some(&r), "create collection");
    for p in &seed.partitions {
        let r = c
            .create_partition(CreatePartitionRequest {
                db_name: db.into(),
                collection_name: seed.name.clone(),
                partition_name: p.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        check(Some(&r), "create partition");
    }
    let mut all_partitions = vec!["_default".to_owned()];
    all_partitions.extend(seed.partitions.iter().cloned());
    for (pi, partition) in all_partitions.iter().enumerate() {
        let ids: Vec<usize> = (0..seed.rows)
            .filter(|i| i % all_partitions.len() == pi)
            .collect();
        for chunk in ids.chunks(2000) {
            insert_rows(&mut c, db, seed, partition, chunk).await;
        }
    }
    let r = c
        .create_index(CreateIndexRequest {
            db_name: db.into(),
            collection_name: seed.name.clone(),
            field_name: "vec".into(),
            extra_params: vec![
                kv("index_type", "FLAT"),
                kv("metric_type", "L2"),
                kv("params", "{}"),
            ],
            index_name: "vec_idx".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    check(Some(&r), "create index");
    load(&mut c, db, &seed.name).await;
}

async fn insert_rows(c: &mut Raw, db: &str, seed: &Seed, partition: &str, ids: &[usize]) {
    let pk = if seed.varchar_pk {
        scalar(
            "id",
            DataType::VarChar,
            scalar_field::Data::StringData(StringArray {
                data: ids.iter().map(|i| pk_of(seed, *i)).collect(),
            }),
        )
    } else {
        scalar(
            "id",
            DataType::Int64,
            scalar_field::Data::LongData(LongArray {
                data: ids.iter().map(|i| *i as i64).collect(),
            }),
        )
    };
    let mut vectors = Vec::with_capacity(ids.len() * seed.dim);
    for i in ids {
        for j in 0..seed.dim {
            vectors.push(((i * 31 + j * 7) % 1000) as f32 / 997.0 - 0.5);
        }
    }
    let mut fields = vec![
        pk,
        FieldData {
            r#type: DataType::FloatVector as i32,
            field_name: "vec".into(),
            field: Some(field_data::Field::Vectors(VectorField {
                dim: seed.dim as i64,
                data: Some(vector_field::Data::FloatVector(FloatArray { data: vectors })),
                ..Default::default()
            })),
            ..Default::default()
        },
        scalar("title", DataType::VarChar, scalar_field::Data::StringData(StringArray { data: ids.iter().map(|i| format!("título {i} ✓ \"x\"")).collect() })),
        scalar("score", DataType::Double, scalar_field::Data::DoubleData(DoubleArray { data: ids.iter().map(|i| *i as f64 * 1.5 + 0.1).collect() })),
        scalar("flag", DataType::Bool, scalar_field::Data::BoolData(BoolArray { data: ids.iter().map(|i| i % 3 == 0).collect() })),
        scalar("meta", DataType::Json, scalar_field::Data::JsonData(JsonArray {
            data: ids.iter().map(|i| serde_json::json!({"n": i, "w": format!("w{}", i % 10), "nested": {"k": [i % 7, "ü"]}}).to_string().into_bytes()).collect(),
        })),
    ];
    if seed.dynamic {
        let mut meta = scalar("$meta", DataType::Json, scalar_field::Data::JsonData(JsonArray {
            data: ids.iter().map(|i| serde_json::json!({"extra": i * 2, "color": if i % 2 == 0 { "red" } else { "blue" }}).to_string().into_bytes()).collect(),
        }));
        meta.is_dynamic = true;
        fields.push(meta);
    }
    let r = c
        .insert(InsertRequest {
            db_name: db.into(),
            collection_name: seed.name.clone(),
            partition_name: partition.into(),
            fields_data: fields,
            num_rows: ids.len() as u32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    check(r.status.as_ref(), "insert");
}

/// Loads a collection and waits; gives it a FLAT index first if it has none (a cancelled job's
/// target, which Milvus 2.3.5 cannot load without one).
pub async fn load(c: &mut Raw, db: &str, name: &str) {
    let indexes = c
        .describe_index(DescribeIndexRequest {
            db_name: db.into(),
            collection_name: name.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    if indexes.index_descriptions.is_empty() {
        let r = c
            .create_index(CreateIndexRequest {
                db_name: db.into(),
                collection_name: name.into(),
                field_name: "vec".into(),
                extra_params: vec![
                    kv("index_type", "FLAT"),
                    kv("metric_type", "L2"),
                    kv("params", "{}"),
                ],
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        check(Some(&r), "create index before load");
    }
    let r = c
        .load_collection(LoadCollectionRequest {
            db_name: db.into(),
            collection_name: name.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    check(Some(&r), "load");
    for _ in 0..600 {
        if load_state(c, db, name).await == LoadState::Loaded as i32 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{db}.{name} did not load");
}

pub async fn load_state(c: &mut Raw, db: &str, name: &str) -> i32 {
    let r = c
        .get_load_state(GetLoadStateRequest {
            db_name: db.into(),
            collection_name: name.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    check(r.status.as_ref(), "load state");
    r.state
}

/// Every row of a collection, keyed by primary key, each field rendered canonically.
pub type Rows = BTreeMap<String, BTreeMap<String, String>>;

pub fn slot(valid: &[bool], values: usize, i: usize) -> Option<usize> {
    if valid.is_empty() {
        return Some(i);
    }
    if !valid[i] {
        return None;
    }
    Some(if values == valid.len() {
        i
    } else {
        valid[..i].iter().filter(|v| **v).count()
    })
}

pub fn render_scalar(d: &scalar_field::Data, i: usize) -> String {
    use scalar_field::Data as S;
    match d {
        S::BoolData(a) => a.data[i].to_string(),
        S::IntData(a) => a.data[i].to_string(),
        S::LongData(a) => a.data[i].to_string(),
        S::FloatData(a) => format!("f32:{:08x}", a.data[i].to_bits()),
        S::DoubleData(a) => format!("f64:{:016x}", a.data[i].to_bits()),
        S::StringData(a) => format!("{:?}", a.data[i]),
        S::JsonData(a) => {
            // Milvus Lite returns a top-level string without its quotes.
            match serde_json::from_slice::<serde_json::Value>(&a.data[i]) {
                Ok(v) => format!("json:{v}"),
                Err(_) => format!(
                    "json:{}",
                    serde_json::Value::String(String::from_utf8_lossy(&a.data[i]).into())
                ),
            }
        }
        S::ArrayData(a) => {
            let el = &a.data[i];
            let n = match &el.data {
                None => 0,
                Some(S::BoolData(x)) => x.data.len(),
                Some(S::IntData(x)) => x.data.len(),
                Some(S::LongData(x)) => x.data.len(),
                Some(S::FloatData(x)) => x.data.len(),
                Some(S::DoubleData(x)) => x.data.len(),
                Some(S::StringData(x)) => x.data.len(),
                Some(other) => panic!("array of {other:?}"),
            };
            let items: Vec<String> = (0..n)
                .map(|j| render_scalar(el.data.as_ref().unwrap(), j))
                .collect();
            format!("[{}]", items.join(","))
        }
        S::TimestamptzData(a) => format!("ts:{}", a.data[i]),
        S::GeometryWktData(a) => format!("wkt:{}", a.data[i]),
        S::GeometryData(a) => format!("wkb:{:02x?}", a.data[i]),
        other => panic!("unexpected column {other:?}"),
    }
}

pub fn scalar_len(d: &scalar_field::Data) -> usize {
    use scalar_field::Data as S;
    match d {
        S::BoolData(a) => a.data.len(),
        S::IntData(a) => a.data.len(),
        S::LongData(a) => a.data.len(),
        S::FloatData(a) => a.data.len(),
        S::DoubleData(a) => a.data.len(),
        S::StringData(a) => a.data.len(),
        S::JsonData(a) => a.data.len(),
        S::ArrayData(a) => a.data.len(),
        S::TimestamptzData(a) => a.data.len(),
        S::GeometryWktData(a) => a.data.len(),
        S::GeometryData(a) => a.data.len(),
        _ => 0,
    }
}

/// Row `i` of a column, rendered canonically: floats by their bits, JSON by value, sparse
/// vectors as sorted index/value pairs, nulls as `null` (full or compact nullable columns).
pub fn render(fd: &FieldData, i: usize) -> String {
    match &fd.field {
        Some(field_data::Field::Scalars(s)) => {
            let d = s.data.as_ref().expect("scalar data");
            match slot(&fd.valid_data, scalar_len(d), i) {
                None => "null".into(),
                Some(k) => render_scalar(d, k),
            }
        }
        Some(field_data::Field::Vectors(v)) => {
            let dim = v.dim as usize;
            let d = v.data.as_ref().expect("vector data");
            let (count, width) = match d {
                vector_field::Data::FloatVector(a) => (a.data.len() / dim.max(1), dim),
                vector_field::Data::BinaryVector(b) => (b.len() / (dim / 8), dim / 8),
                vector_field::Data::Float16Vector(b) | vector_field::Data::Bfloat16Vector(b) => {
                    (b.len() / (dim * 2), dim * 2)
                }
                vector_field::Data::Int8Vector(b) => (b.len() / dim, dim),
                vector_field::Data::SparseFloatVector(s) => (s.contents.len(), 0),
                other => panic!("unexpected vector {other:?}"),
            };
            let valid = if fd.valid_data.is_empty() {
                &v.valid_data
            } else {
                &fd.valid_data
            };
            let Some(k) = slot(valid, count, i) else {
                return "null".into();
            };
            match d {
                vector_field::Data::FloatVector(a) => a.data[k * dim..(k + 1) * dim]
                    .iter()
                    .map(|x| format!("{:08x}", x.to_bits()))
                    .collect::<Vec<_>>()
                    .join(","),
                vector_field::Data::BinaryVector(b)
                | vector_field::Data::Float16Vector(b)
                | vector_field::Data::Bfloat16Vector(b)
                | vector_field::Data::Int8Vector(b) => {
                    format!("{:02x?}", &b[k * width..(k + 1) * width])
                }
                vector_field::Data::SparseFloatVector(s) => {
                    let mut pairs: Vec<(u32, String)> = s.contents[k]
                        .chunks(8)
                        .map(|c| {
                            (
                                u32::from_le_bytes(c[..4].try_into().unwrap()),
                                format!("{:08x}", u32::from_le_bytes(c[4..].try_into().unwrap())),
                            )
                        })
                        .collect();
                    pairs.sort();
                    format!("{pairs:?}")
                }
                _ => unreachable!(),
            }
        }
        other => panic!("unexpected field {other:?}"),
    }
}

async fn query(c: &mut Raw, db: &str, name: &str, expr: String) -> Vec<FieldData> {
    let r = c
        .query(QueryRequest {
            db_name: db.into(),
            collection_name: name.into(),
            expr,
            output_fields: vec!["*".into()],
            query_params: vec![kv("limit", "16384")],
            consistency_level: ConsistencyLevel::Strong as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    check(r.status.as_ref(), "query");
    r.fields_data
}

fn collect(fields: &[FieldData], rows: &mut Rows) {
    let Some(pk) = fields.iter().find(|f| f.field_name == "id") else {
        return;
    };
    let n = match &pk.field {
        Some(field_data::Field::Scalars(s)) => match &s.data {
            Some(scalar_field::Data::LongData(d)) => d.data.len(),
            Some(scalar_field::Data::StringData(d)) => d.data.len(),
            _ => 0,
        },
        _ => 0,
    };
    for i in 0..n {
        let key = render(pk, i);
        let row: BTreeMap<String, String> = fields
            .iter()
            .map(|f| (f.field_name.clone(), render(f, i)))
            .collect();
        assert!(
            rows.insert(key.clone(), row).is_none(),
            "primary key {key} returned twice"
        );
    }
}

/// Reads every seeded row of a collection (loading it first if needed).
pub async fn read_rows(server: &Server, db: &str, name: &str, seed: &Seed) -> Rows {
    let mut c = raw(server).await;
    if load_state(&mut c, db, name).await != LoadState::Loaded as i32 {
        load(&mut c, db, name).await;
    }
    let mut rows = Rows::new();
    if seed.varchar_pk {
        let keys: Vec<String> = (0..seed.rows).map(|i| pk_of(seed, i)).collect();
        for chunk in keys.chunks(1000) {
            let list: Vec<String> = chunk
                .iter()
                .map(|k| {
                    let quoted = k
                        .replace('\\', "\\\\")
                        .replace('"', "\\\"")
                        .replace('\n', "\\n");
                    format!("\"{quoted}\"")
                })
                .collect();
            let fields = query(&mut c, db, name, format!("id in [{}]", list.join(","))).await;
            collect(&fields, &mut rows);
        }
    } else {
        let mut start = 0;
        while start < seed.rows {
            let fields = query(
                &mut c,
                db,
                name,
                format!("id >= {start} && id < {}", start + 5000),
            )
            .await;
            collect(&fields, &mut rows);
            start += 5000;
        }
    }
    rows
}

/// The databases of a server.
/// Creates database `db` unless it exists.
#[allow(deprecated)] // Milvus 2.3.5 reports failures only in the legacy `error_code`
pub async fn ensure_database(c: &mut Raw, db: &str) {
    let dbs = c
        .list_databases(milvus::proto::milvus::ListDatabasesRequest::default())
        .await
        .unwrap()
        .into_inner();
    if !dbs.db_names.iter().any(|d| d == db) {
        let r = c
            .create_database(milvus::proto::milvus::CreateDatabaseRequest {
                db_name: db.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(
            r.code == 0 && r.error_code == 0,
            "create database {db}: {r:?}"
        );
    }
}

/// Drops a collection (nothing if it does not exist).
pub async fn drop_collection(c: &mut Raw, db: &str, name: &str) {
    let _ = c
        .drop_collection(milvus::proto::milvus::DropCollectionRequest {
            db_name: db.into(),
            collection_name: name.into(),
            ..Default::default()
        })
        .await;
}

pub async fn list_databases(server: &Server) -> Vec<String> {
    raw(server)
        .await
        .list_databases(milvus::proto::milvus::ListDatabasesRequest::default())
        .await
        .expect("list databases")
        .into_inner()
        .db_names
}

/// The collection names of a database.
pub async fn collection_names(server: &Server, db: &str) -> Vec<String> {
    raw(server)
        .await
        .show_collections(milvus::proto::milvus::ShowCollectionsRequest {
            db_name: db.into(),
            ..Default::default()
        })
        .await
        .expect("show collections")
        .into_inner()
        .collection_names
}

/// Exact count (loads the collection if needed).
pub async fn count(server: &Server, db: &str, name: &str) -> u64 {
    let mut c = raw(server).await;
    if load_state(&mut c, db, name).await != LoadState::Loaded as i32 {
        load(&mut c, db, name).await;
    }
    let r = c
        .query(QueryRequest {
            db_name: db.into(),
            collection_name: name.into(),
            output_fields: vec!["count(*)".into()],
            consistency_level: ConsistencyLevel::Strong as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    check(r.status.as_ref(), "count");
    match &r.fields_data[0].field {
        Some(field_data::Field::Scalars(s)) => match &s.data {
            Some(scalar_field::Data::LongData(d)) => d.data[0] as u64,
            other => panic!("count returned {other:?}"),
        },
        other => panic!("count returned {other:?}"),
    }
}

/// The comparable part of a schema: fields (name, type, params, flags) and collection flags.
pub async fn schema_of(server: &Server, db: &str, name: &str) -> Vec<String> {
    let mut c = raw(server).await;
    let r = c
        .describe_collection(DescribeCollectionRequest {
            db_name: db.into(),
            collection_name: name.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    check(r.status.as_ref(), "describe");
    let s = r.schema.unwrap();
    let mut out = vec![format!(
        "dynamic={} description={:?}",
        s.enable_dynamic_field, s.description
    )];
    for f in s.fields.iter().filter(|f| !f.is_dynamic) {
        let mut params: Vec<String> = f
            .type_params
            .iter()
            .map(|kv| format!("{}={}", kv.key, kv.value))
            .collect();
        params.sort();
        out.push(format!(
            "{} type={} pk={} auto_id={} partition_key={} nullable={} params={params:?}",
            f.name, f.data_type, f.is_primary_key, f.auto_id, f.is_partition_key, f.nullable
        ));
    }
    out
}

pub async fn partitions_of(server: &Server, db: &str, name: &str) -> Vec<String> {
    let mut c = raw(server).await;
    let r = c
        .show_partitions(ShowPartitionsRequest {
            db_name: db.into(),
            collection_name: name.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    check(r.status.as_ref(), "show partitions");
    let mut p = r.partition_names;
    p.sort();
    p
}

/// (field, index_type, metric_type) of every index.
pub async fn indexes_of(server: &Server, db: &str, name: &str) -> Vec<(String, String, String)> {
    let mut c = raw(server).await;
    let r = c
        .describe_index(DescribeIndexRequest {
            db_name: db.into(),
            collection_name: name.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let get = |params: &[KeyValuePair], k: &str| {
        params
            .iter()
            .find(|p| p.key == k)
            .map(|p| p.value.clone())
            .unwrap_or_default()
    };
    r.index_descriptions
        .iter()
        .map(|d| {
            (
                d.field_name.clone(),
                get(&d.params, "index_type"),
                get(&d.params, "metric_type"),
            )
        })
        .collect()
}

/// The engine on a fresh embedded store, with in-process workers.
pub struct Harness {
    pub engine: Arc<Engine>,
    pub runner: LocalRunner,
    pub store: Arc<dyn JobStore>,
    pub servers: Servers,
    _dir: tempfile::TempDir,
}

impl Harness {
    /// The embedded store's file (for another process, such as `vecmigrate serve`).
    pub fn store_path(&self) -> std::path::PathBuf {
        self._dir.path().join("jobs.sqlite3")
    }

    /// Starts a job and drives it to its end.
    pub async fn run(
        &self,
        request: MigrationRequest,
    ) -> (vecmigrate::domain::Job, vecmigrate::domain::Report) {
        let (job, _) = self.engine.start(request).await.unwrap();
        let report = self.runner.drive(&job.id, |_| {}).await.unwrap();
        (job, report)
    }
}

/// The job ended SUCCESSFUL; otherwise the test fails with the job's error.
#[track_caller]
pub fn assert_successful(report: &vecmigrate::domain::Report) {
    assert_eq!(
        report.job.status,
        vecmigrate::domain::JobStatus::Successful,
        "{:?}",
        report.job.error
    );
}

/// Every row of the seeded source collection arrived in `target_db.target` unchanged and once
/// (field by field, then `count(*)`).
pub async fn assert_same_rows(servers: &Servers, seed: &Seed, target_db: &str, target: &str) {
    let source_rows = read_rows(&servers.source, "default", &seed.name, seed).await;
    let target_rows = read_rows(&servers.target, target_db, target, seed).await;
    assert_eq!(
        source_rows.len(),
        seed.rows,
        "the source holds what was seeded"
    );
    assert_eq!(target_rows.len(), source_rows.len(), "{target}: row count");
    for (key, row) in &source_rows {
        assert_eq!(
            target_rows.get(key),
            Some(row),
            "{target}: row {key} differs"
        );
    }
    assert_eq!(
        count(&servers.target, target_db, target).await,
        seed.rows as u64,
        "{target}: count(*) sees no duplicates"
    );
}

/// A fresh embedded store in its own folder.
fn fresh_store() -> (Arc<dyn JobStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn JobStore> =
        Arc::new(SqliteStore::open(&dir.path().join("jobs.sqlite3")).unwrap());
    (store, dir)
}

pub fn harness(settings: LocalSettings, config: EngineConfig, faults: Option<Faults>) -> Harness {
    let (store, dir) = fresh_store();
    harness_on(Servers::from_env(), store, dir, settings, config, faults)
}

pub fn harness_on(
    servers: Servers,
    store: Arc<dyn JobStore>,
    dir: tempfile::TempDir,
    settings: LocalSettings,
    config: EngineConfig,
    faults: Option<Faults>,
) -> Harness {
    harness_full(
        servers,
        store,
        dir,
        settings,
        config,
        faults,
        Extras::default(),
    )
}

/// A harness whose engine signs webhooks with `secret` (as the CLI's `--webhook-secret`).
pub fn harness_webhook(
    settings: LocalSettings,
    config: EngineConfig,
    secret: &str,
    faults: Option<Faults>,
) -> Harness {
    let (store, dir) = fresh_store();
    harness_full(
        Servers::from_env(),
        store,
        dir,
        settings,
        config,
        faults,
        Extras {
            webhook_secret: Some(Secret::new(secret)),
            ..Extras::default()
        },
    )
}

/// A harness whose connector resolves cluster ids through `control_plane` (the stand-in's
/// URL), with `keys` (source, target) as the API keys given on the command line (a stored
/// request holds them redacted, so the CLI passes them to the resolver).
pub fn harness_zilliz(
    settings: LocalSettings,
    control_plane: &str,
    keys: &(String, String),
) -> Harness {
    let (store, dir) = fresh_store();
    harness_full(
        Servers::from_env(),
        store,
        dir,
        settings,
        // A cluster being created is asked about often, so a test waits little.
        EngineConfig {
            provision_poll: Duration::from_millis(100),
            ..EngineConfig::default()
        },
        None,
        Extras {
            zilliz: Some((
                control_plane.to_owned(),
                Secret::new(keys.0.as_str()),
                Secret::new(keys.1.as_str()),
            )),
            ..Extras::default()
        },
    )
}

/// What some harnesses add: the CLI's webhook secret; a control plane and the API keys.
#[derive(Default)]
struct Extras {
    webhook_secret: Option<Secret>,
    zilliz: Option<(String, Secret, Secret)>,
}

fn harness_full(
    servers: Servers,
    store: Arc<dyn JobStore>,
    dir: tempfile::TempDir,
    settings: LocalSettings,
    config: EngineConfig,
    faults: Option<Faults>,
    extras: Extras,
) -> Harness {
    let Extras {
        webhook_secret,
        zilliz,
    } = extras;
    let queue = InProcessQueue::new();
    let (source, target) = match &zilliz {
        Some((_, source, target)) => (Some(source.clone()), Some(target.clone())),
        None => (
            servers.source.token.clone().map(Secret::new),
            servers.target.token.clone().map(Secret::new),
        ),
    };
    let credentials: Arc<dyn Credentials> =
        Arc::new(TokenResolver::new(source, target).with_webhook_secret(webhook_secret));
    let notifier = vecmigrate::webhook::sender::HttpNotifier::local(
        credentials.clone(),
        config.webhook_timeout,
    );
    let mut connector = MilvusConnector::new(credentials);
    if let Some((url, _, _)) = zilliz {
        connector = connector.with_control_plane(ControlPlane::new(url));
    }
    let mut engine = Engine::new(
        store.clone(),
        Arc::new(queue.clone()),
        Arc::new(connector),
        notifier,
        config,
    );
    if let Some(f) = faults {
        engine = engine.with_faults(f);
    }
    let engine = Arc::new(engine);
    let runner = LocalRunner::new(engine.clone(), queue, settings);
    Harness {
        engine,
        runner,
        store,
        servers,
        _dir: dir,
    }
}

/// A request for `collections` (source name, target name) of the default database.
pub fn request(
    servers: &Servers,
    target_db: Option<&str>,
    collections: &[(&str, &str)],
) -> MigrationRequest {
    let spec = |s: &Server| vecmigrate::domain::ClusterSpec {
        token: s.token.clone().map(Secret::new),
        ..vecmigrate::domain::ClusterSpec::new(s.uri.clone())
    };
    MigrationRequest {
        idempotency_key: None,
        dry_run: false,
        source: spec(&servers.source),
        target: spec(&servers.target),
        databases: vec![DatabaseSpec {
            name: "default".into(),
            target_name: target_db.map(str::to_owned),
            collections: collections
                .iter()
                .map(|(s, t)| CollectionSpec {
                    target_name: Some((*t).into()),
                    ..CollectionSpec::named(*s)
                })
                .collect(),
        }],
        options: Default::default(),
        webhook: None,
    }
}

/// Fast settings for tests: short sweeps and progress ticks.
pub fn fast_settings() -> LocalSettings {
    LocalSettings {
        workers: 4,
        max_run: None,
        sweep_every: Duration::from_millis(300),
        progress_every: Duration::from_millis(50),
    }
}
