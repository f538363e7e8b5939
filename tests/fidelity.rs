//! The fidelity suite: source collections covering every data type and schema feature, migrated
//! in one job across two databases, then compared on both sides: the schema (describe, apart
//! from ids and timestamps), the partitions, the indexes, and every field of every row, bit by
//! bit (floats by their bits, JSON by value, sparse vectors by index/value pairs, nulls as
//! nulls).
//!
//! What a backend cannot do is found by asking it: each optional case is first created, filled
//! and loaded on the source and tried on a scratch collection of the target; a server that
//! refuses it makes the case "skipped", with the server's words. The cases every backend must
//! carry are asserted proved. The table of what was proved and skipped is written to
//! `target/fidelity-<backend>.md` (and is the source of `docs/FIDELITY.md`).

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use common::{
    assert_successful, drop_collection, ensure_database, fast_settings, field, harness, kv, load,
    raw, render, scalar, scalar_len, unique, Raw, Server, Servers,
};
use milvus::proto::common::ConsistencyLevel;
use milvus::proto::milvus::{
    CreateCollectionRequest, CreateIndexRequest, CreatePartitionRequest, DescribeCollectionRequest,
    InsertRequest, QueryRequest,
};
use milvus::proto::schema::{
    field_data, scalar_field, value_field, vector_field, ArrayArray, BoolArray, CollectionSchema,
    DataType, DoubleArray, FieldData, FieldSchema, FloatArray, FunctionSchema, FunctionType,
    GeometryWktArray, IntArray, JsonArray, LongArray, ScalarField, SparseFloatArray, StringArray,
    TimestamptzArray, ValueField, VectorField,
};
use prost::Message;
use vecmigrate::domain::{
    CollectionSpec, DatabaseSpec, JobStatus, MigrationRequest, VerifyMode, WriteVia,
};
use vecmigrate::engine::EngineConfig;

// ---------------------------------------------------------------------------------------------
// Building blocks

fn pk_int() -> FieldSchema {
    FieldSchema {
        is_primary_key: true,
        ..field("id", DataType::Int64, &[])
    }
}

fn array(name: &str, element: DataType, extra: &[(&str, &str)]) -> FieldSchema {
    let mut params = vec![("max_capacity", "4")];
    params.extend_from_slice(extra);
    FieldSchema {
        element_type: element as i32,
        ..field(name, DataType::Array, &params)
    }
}

fn vector(name: &str, t: DataType, dim: i64, data: vector_field::Data) -> FieldData {
    FieldData {
        r#type: t as i32,
        field_name: name.into(),
        field: Some(field_data::Field::Vectors(VectorField {
            dim,
            data: Some(data),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// Marks which rows of a column are present: the data then carries the present values only.
fn with_valid(mut fd: FieldData, valid: Vec<bool>) -> FieldData {
    fd.valid_data = valid;
    fd
}

fn ints(ids: &[usize], f: impl Fn(usize) -> i64) -> Vec<i64> {
    ids.iter().map(|i| f(*i)).collect()
}

fn floats(ids: &[usize], dim: usize, seed: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(ids.len() * dim);
    for i in ids {
        for j in 0..dim {
            let x = ((i * 31 + j * 17 + seed) % 2003) as f32 / 1001.0 - 1.0;
            // Every row holds a -0.0, whose bits differ from 0.0.
            out.push(if j == 1 { -0.0 } else { x });
        }
    }
    out
}

fn dense(name: &str, ids: &[usize], dim: usize) -> FieldData {
    vector(
        name,
        DataType::FloatVector,
        dim as i64,
        vector_field::Data::FloatVector(FloatArray {
            data: floats(ids, dim, name.len()),
        }),
    )
}

fn pk_column(ids: &[usize]) -> FieldData {
    scalar(
        "id",
        DataType::Int64,
        scalar_field::Data::LongData(LongArray {
            data: ints(ids, |i| i as i64 * 1_000_003 - 7),
        }),
    )
}

const F32S: [f32; 8] = [
    0.0,
    -0.0,
    f32::MIN_POSITIVE,
    1e-45, // the smallest subnormal
    f32::MAX,
    f32::MIN,
    1.0 / 3.0,
    -2.5e-7,
];
const F64S: [f64; 8] = [
    0.0,
    -0.0,
    f64::MIN_POSITIVE,
    5e-324,
    f64::MAX,
    f64::MIN,
    1.0 / 3.0,
    -2.5e-300,
];

/// VarChar values: empty, unicode, and exactly `max_length` (24) bytes of four-byte characters.
fn text(i: usize) -> String {
    match i % 4 {
        0 => String::new(),
        1 => "ü✓ 中文 \"q\" \\ \n".into(),
        2 => "𝄞".repeat(6),
        _ => format!("row {i}"),
    }
}

fn json_doc(i: usize) -> Vec<u8> {
    match i % 6 {
        0 => serde_json::json!({"a": {"b": [1, 2.5, {"c": "ü✓"}], "big": 12_345_678_901_234_567i64}, "n": i}).to_string(),
        1 => r#"{"nothing":null,"list":[null]}"#.into(),
        2 => r#"{"list":[1,"x",null,{"k":[]}]}"#.into(),
        3 => "{\"s\": \"just a string ✓ \\u00e9\"}".into(),
        4 => "{}".into(),
        _ => format!("{{\"neg\": -{i}, \"f\": 0.1, \"t\": true}}"),
    }
    .into_bytes()
}

/// JSON documents that are not objects (top-level arrays and strings (an empty one too)).
fn json_scalar_doc(i: usize) -> Vec<u8> {
    match i % 5 {
        0 => r#"[1,"x",null,{"k":[]}]"#.to_owned(),
        1 => "\"just a string ✓\"".to_owned(),
        2 => "[[], {}, \"ü\"]".to_owned(),
        3 => "\"\"".to_owned(),
        _ => "[]".to_owned(),
    }
    .into_bytes()
}

fn array_column(name: &str, element: DataType, ids: &[usize]) -> FieldData {
    use scalar_field::Data as S;
    let rows = ids
        .iter()
        .map(|i| {
            let n = i % 5; // 0 to max_capacity elements
            let data = match element {
                DataType::Bool => S::BoolData(BoolArray {
                    data: (0..n).map(|j| (i + j) % 2 == 0).collect(),
                }),
                DataType::Int8 => S::IntData(IntArray {
                    data: (0..n).map(|j| [-128, 127, 0, -1][(i + j) % 4]).collect(),
                }),
                DataType::Int16 => S::IntData(IntArray {
                    data: (0..n)
                        .map(|j| [-32768, 32767, 5, -1][(i + j) % 4])
                        .collect(),
                }),
                DataType::Int32 => S::IntData(IntArray {
                    data: (0..n)
                        .map(|j| [i32::MIN, i32::MAX, 7, -1][(i + j) % 4])
                        .collect(),
                }),
                DataType::Int64 => S::LongData(LongArray {
                    data: (0..n)
                        .map(|j| [i64::MIN, i64::MAX, 9, -1][(i + j) % 4])
                        .collect(),
                }),
                DataType::Float => S::FloatData(FloatArray {
                    data: (0..n).map(|j| F32S[(i + j) % 8]).collect(),
                }),
                DataType::Double => S::DoubleData(DoubleArray {
                    data: (0..n).map(|j| F64S[(i + j) % 8]).collect(),
                }),
                DataType::VarChar => S::StringData(StringArray {
                    data: (0..n).map(|j| text(i + j)).collect(),
                }),
                other => panic!("no array of {other:?}"),
            };
            ScalarField {
                data: Some(data),
                ..Default::default()
            }
        })
        .collect();
    scalar(
        name,
        DataType::Array,
        S::ArrayData(ArrayArray {
            data: rows,
            element_type: element as i32,
        }),
    )
}

fn dynamic(ids: &[usize]) -> FieldData {
    let mut fd = scalar(
        "$meta",
        DataType::Json,
        scalar_field::Data::JsonData(JsonArray {
            data: ids
                .iter()
                .map(|i| {
                    serde_json::json!({"nested": {"k": [i, {"deep": "ü"}], "e": {}}, "tag": format!("t{}", i % 3)})
                        .to_string()
                        .into_bytes()
                })
                .collect(),
        }),
    );
    fd.is_dynamic = true;
    fd
}

/// A sparse vector column: 1 to 4 index/value pairs a row.
fn sparse(name: &str, ids: &[usize]) -> FieldData {
    let contents = ids
        .iter()
        .map(|i| {
            (0..i % 4 + 1)
                .flat_map(|j| {
                    let index = (i * 97 + j * 1_000_003) as u32 % 4_000_000;
                    let value = ((i * 7 + j * 3) % 100 + 1) as f32 / 7.0;
                    [index.to_le_bytes(), value.to_le_bytes()].concat()
                })
                .collect()
        })
        .collect();
    vector(
        name,
        DataType::SparseFloatVector,
        4_000_000,
        vector_field::Data::SparseFloatVector(SparseFloatArray {
            contents,
            dim: 4_000_000,
        }),
    )
}

/// An index on the source: field, index type, metric (empty for scalar indexes), params.
type IndexSpec = (
    &'static str,
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
);

/// Builds the columns of the rows with these indexes.
type Columns = dyn Fn(&[usize]) -> Vec<FieldData> + Send + Sync;

/// One source collection of the suite.
struct Case {
    /// Short name (also the collection's name prefix).
    key: &'static str,
    /// What it proves, for the table.
    covers: &'static str,
    /// Which source database (0 or 1).
    db: usize,
    /// Every backend must carry it.
    required: bool,
    fields: Vec<FieldSchema>,
    functions: Vec<FunctionSchema>,
    dynamic: bool,
    /// Extra partitions that get rows (round-robin with `_default`).
    partitions: Vec<&'static str>,
    /// Extra partitions left empty.
    empty_partitions: Vec<&'static str>,
    num_partitions: i64,
    rows: usize,
    columns: Box<Columns>,
    indexes: Vec<IndexSpec>,
}

impl Case {
    fn new(
        key: &'static str,
        covers: &'static str,
        fields: Vec<FieldSchema>,
        columns: impl Fn(&[usize]) -> Vec<FieldData> + Send + Sync + 'static,
    ) -> Self {
        Self {
            key,
            covers,
            db: 0,
            required: false,
            fields,
            functions: vec![],
            dynamic: false,
            partitions: vec![],
            empty_partitions: vec![],
            num_partitions: 0,
            rows: 150,
            columns: Box::new(columns),
            indexes: vec![("vec", "FLAT", "L2", vec![])],
        }
    }

    fn schema(&self, name: &str) -> CollectionSchema {
        CollectionSchema {
            name: name.into(),
            description: format!("fidelity case {} ✓", self.key),
            fields: self.fields.clone(),
            functions: self.functions.clone(),
            enable_dynamic_field: self.dynamic,
            ..Default::default()
        }
    }
}

fn cases() -> Vec<Case> {
    let vc = |name: &str, dim: &str| field(name, DataType::FloatVector, &[("dim", dim)]);
    let mut out = Vec::new();

    let mut c = Case::new(
        "scalars",
        "Bool, Int8, Int16, Int32, Int64, Float, Double (extremes, -0.0, subnormals); VarChar (empty, unicode, at max_length); JSON (nested, unicode, null members, arrays, big ints); Array of Bool, Int8, Int16, Int32, Int64, Float, Double (0 to max_capacity elements); FloatVector dim 4; dynamic field with nested keys; a filled and an empty user partition",
        vec![
            pk_int(),
            vc("vec", "4"),
            field("b", DataType::Bool, &[]),
            field("i8", DataType::Int8, &[]),
            field("i16", DataType::Int16, &[]),
            field("i32", DataType::Int32, &[]),
            field("i64", DataType::Int64, &[]),
            field("f32", DataType::Float, &[]),
            field("f64", DataType::Double, &[]),
            field("s", DataType::VarChar, &[("max_length", "24")]),
            field("j", DataType::Json, &[]),
            array("a_bool", DataType::Bool, &[]),
            array("a_i8", DataType::Int8, &[]),
            array("a_i16", DataType::Int16, &[]),
            array("a_i32", DataType::Int32, &[]),
            array("a_i64", DataType::Int64, &[]),
            array("a_f32", DataType::Float, &[]),
            array("a_f64", DataType::Double, &[]),
        ],
        |ids| {
            use scalar_field::Data as S;
            vec![
                pk_column(ids),
                dense("vec", ids, 4),
                scalar("b", DataType::Bool, S::BoolData(BoolArray { data: ids.iter().map(|i| i % 2 == 1).collect() })),
                scalar("i8", DataType::Int8, S::IntData(IntArray { data: ids.iter().map(|i| [-128, 127, 0, (*i % 100) as i32][i % 4]).collect() })),
                scalar("i16", DataType::Int16, S::IntData(IntArray { data: ids.iter().map(|i| [-32768, 32767, -1, *i as i32][i % 4]).collect() })),
                scalar("i32", DataType::Int32, S::IntData(IntArray { data: ids.iter().map(|i| [i32::MIN, i32::MAX, 0, -(*i as i32)][i % 4]).collect() })),
                scalar("i64", DataType::Int64, S::LongData(LongArray { data: ints(ids, |i| [i64::MIN, i64::MAX, 0, i as i64 * -99][i % 4]) })),
                scalar("f32", DataType::Float, S::FloatData(FloatArray { data: ids.iter().map(|i| F32S[i % 8]).collect() })),
                scalar("f64", DataType::Double, S::DoubleData(DoubleArray { data: ids.iter().map(|i| F64S[i % 8]).collect() })),
                scalar("s", DataType::VarChar, S::StringData(StringArray { data: ids.iter().map(|i| text(*i)).collect() })),
                scalar("j", DataType::Json, S::JsonData(JsonArray { data: ids.iter().map(|i| json_doc(*i)).collect() })),
                array_column("a_bool", DataType::Bool, ids),
                array_column("a_i8", DataType::Int8, ids),
                array_column("a_i16", DataType::Int16, ids),
                array_column("a_i32", DataType::Int32, ids),
                array_column("a_i64", DataType::Int64, ids),
                array_column("a_f32", DataType::Float, ids),
                array_column("a_f64", DataType::Double, ids),
                dynamic(ids),
            ]
        },
    );
    c.required = true;
    c.dynamic = true;
    c.rows = 400;
    c.partitions = vec!["p_filled"];
    c.empty_partitions = vec!["p_empty"];
    out.push(c);

    let mut c = Case::new(
        "varchar_pk",
        "VarChar primary key with quotes, backslashes, %, newlines and non-ASCII; FloatVector dim 1,536 (wide), COSINE",
        vec![
            FieldSchema {
                is_primary_key: true,
                ..field("id", DataType::VarChar, &[("max_length", "64")])
            },
            vc("vec", "1536"),
        ],
        |ids| {
            vec![
                scalar(
                    "id",
                    DataType::VarChar,
                    scalar_field::Data::StringData(StringArray {
                        data: ids.iter().map(|i| format!("k{i:05}-\"q\\é%\n' 中")).collect(),
                    }),
                ),
                dense("vec", ids, 1536),
            ]
        },
    );
    c.required = true;
    c.db = 1;
    c.rows = 300;
    c.indexes = vec![("vec", "FLAT", "COSINE", vec![])];
    out.push(c);

    let mut c = Case::new(
        "empty",
        "an empty collection (and its empty user partition)",
        vec![pk_int(), vc("vec", "4")],
        |ids| vec![pk_column(ids), dense("vec", ids, 4)],
    );
    c.required = true;
    c.db = 1;
    c.rows = 0;
    c.empty_partitions = vec!["p_empty"];
    out.push(c);

    let c = Case::new(
        "array_varchar",
        "Array of VarChar with max_capacity and the elements' max_length",
        vec![
            pk_int(),
            vc("vec", "4"),
            array("a_str", DataType::VarChar, &[("max_length", "24")]),
        ],
        |ids| {
            vec![
                pk_column(ids),
                dense("vec", ids, 4),
                array_column("a_str", DataType::VarChar, ids),
            ]
        },
    );
    out.push(c);

    let c = Case::new(
        "json_non_object",
        "JSON documents that are not objects: top-level arrays and strings (an empty one too)",
        vec![pk_int(), vc("vec", "4"), field("j", DataType::Json, &[])],
        |ids| {
            vec![
                pk_column(ids),
                dense("vec", ids, 4),
                scalar(
                    "j",
                    DataType::Json,
                    scalar_field::Data::JsonData(JsonArray {
                        data: ids.iter().map(|i| json_scalar_doc(*i)).collect(),
                    }),
                ),
            ]
        },
    );
    out.push(c);

    // The byte-packed vector types: Binary (a bit a dimension), Float16 and BFloat16 (two bytes;
    // normal positive halves), Int8.
    out.push(packed_vector_case(
        "binary_vector",
        "BinaryVector dim 128, HAMMING",
        DataType::BinaryVector,
        128,
        ("BIN_FLAT", "HAMMING", vec![]),
    ));
    out.push(packed_vector_case(
        "float16_vector",
        "Float16Vector dim 8",
        DataType::Float16Vector,
        8,
        ("FLAT", "L2", vec![]),
    ));
    out.push(packed_vector_case(
        "bfloat16_vector",
        "BFloat16Vector dim 8",
        DataType::BFloat16Vector,
        8,
        ("FLAT", "L2", vec![]),
    ));
    out.push(packed_vector_case(
        "int8_vector",
        "Int8Vector dim 8",
        DataType::Int8Vector,
        8,
        ("HNSW", "L2", vec![("M", "8"), ("efConstruction", "64")]),
    ));

    let mut c = Case::new(
        "sparse_vector",
        "SparseFloatVector (1 to 4 index/value pairs a row), IP",
        vec![pk_int(), field("vec", DataType::SparseFloatVector, &[])],
        |ids| vec![pk_column(ids), sparse("vec", ids)],
    );
    c.indexes = vec![("vec", "SPARSE_INVERTED_INDEX", "IP", vec![])];
    out.push(c);

    let mut c = Case::new(
        "multi_vector",
        "three vector fields in one collection (FloatVector dims 4 and 8, a SparseFloatVector without a source index); every one gets AUTOINDEX",
        vec![pk_int(), vc("vec", "4"), vc("vec2", "8"), field("bits", DataType::SparseFloatVector, &[])],
        |ids| {
            vec![
                pk_column(ids),
                dense("vec", ids, 4),
                dense("vec2", ids, 8),
                sparse("bits", ids),
            ]
        },
    );
    c.indexes = vec![
        ("vec", "FLAT", "L2", vec![]),
        ("vec2", "FLAT", "IP", vec![]),
    ];
    out.push(c);

    let default = |data: value_field::Data| Some(ValueField { data: Some(data) });
    let mut c = Case::new(
        "nullable_default",
        "nullable Int32, Double, VarChar, JSON, Array (nulls kept as nulls); default values on Int64, Float, Bool and a nullable VarChar",
        vec![
            pk_int(),
            vc("vec", "4"),
            FieldSchema { nullable: true, ..field("n_i32", DataType::Int32, &[]) },
            FieldSchema { nullable: true, ..field("n_f64", DataType::Double, &[]) },
            FieldSchema { nullable: true, ..field("n_s", DataType::VarChar, &[("max_length", "24")]) },
            FieldSchema { nullable: true, ..field("n_j", DataType::Json, &[]) },
            FieldSchema { nullable: true, ..array("n_a", DataType::Int64, &[]) },
            FieldSchema { default_value: default(value_field::Data::LongData(7)), ..field("d_i64", DataType::Int64, &[]) },
            FieldSchema { default_value: default(value_field::Data::FloatData(1.5)), ..field("d_f32", DataType::Float, &[]) },
            FieldSchema { default_value: default(value_field::Data::BoolData(true)), ..field("d_b", DataType::Bool, &[]) },
            FieldSchema { nullable: true, default_value: default(value_field::Data::StringData("dflt ✓".into())), ..field("d_s", DataType::VarChar, &[("max_length", "24")]) },
        ],
        |ids| {
            use scalar_field::Data as S;
            let valid: Vec<bool> = ids.iter().map(|i| i % 3 != 0).collect();
            let present: Vec<usize> = ids.iter().copied().filter(|i| i % 3 != 0).collect();
            let mut arrays = array_column("n_a", DataType::Int64, &present);
            arrays.r#type = DataType::Array as i32;
            vec![
                pk_column(ids),
                dense("vec", ids, 4),
                with_valid(scalar("n_i32", DataType::Int32, S::IntData(IntArray { data: present.iter().map(|i| -(*i as i32)).collect() })), valid.clone()),
                with_valid(scalar("n_f64", DataType::Double, S::DoubleData(DoubleArray { data: present.iter().map(|i| F64S[i % 8]).collect() })), valid.clone()),
                with_valid(scalar("n_s", DataType::VarChar, S::StringData(StringArray { data: present.iter().map(|i| text(*i)).collect() })), valid.clone()),
                with_valid(scalar("n_j", DataType::Json, S::JsonData(JsonArray { data: present.iter().map(|i| json_doc(*i)).collect() })), valid.clone()),
                with_valid(arrays, valid.clone()),
                with_valid(scalar("d_i64", DataType::Int64, S::LongData(LongArray { data: ints(&present, |i| i as i64) })), valid.clone()),
                with_valid(scalar("d_f32", DataType::Float, S::FloatData(FloatArray { data: present.iter().map(|i| F32S[i % 8]).collect() })), valid.clone()),
                with_valid(scalar("d_b", DataType::Bool, S::BoolData(BoolArray { data: present.iter().map(|_| false).collect() })), valid.clone()),
                with_valid(scalar("d_s", DataType::VarChar, S::StringData(StringArray { data: present.iter().map(|i| text(*i)).collect() })), valid),
            ]
        },
    );
    c.db = 1;
    out.push(c);

    let mut c = Case::new(
        "nullable_vector",
        "a nullable FloatVector (null vectors kept as nulls)",
        vec![
            pk_int(),
            FieldSchema {
                nullable: true,
                ..vc("vec", "4")
            },
        ],
        |ids| {
            let present: Vec<usize> = ids.iter().copied().filter(|i| i % 4 != 1).collect();
            vec![
                pk_column(ids),
                with_valid(
                    dense("vec", &present, 4),
                    ids.iter().map(|i| i % 4 != 1).collect(),
                ),
            ]
        },
    );
    c.indexes = vec![("vec", "FLAT", "L2", vec![])];
    out.push(c);

    let c = Case::new(
        "timestamptz",
        "Timestamptz",
        vec![
            pk_int(),
            vc("vec", "4"),
            field("ts", DataType::Timestamptz, &[]),
        ],
        |ids| {
            vec![
                pk_column(ids),
                dense("vec", ids, 4),
                scalar(
                    "ts",
                    DataType::Timestamptz,
                    scalar_field::Data::TimestamptzData(TimestamptzArray {
                        data: ints(ids, |i| 1_700_000_000_000_000 + i as i64 * 1_000_003),
                    }),
                ),
            ]
        },
    );
    out.push(c);

    let c = Case::new(
        "geometry",
        "Geometry (points and polygons, as WKT)",
        vec![
            pk_int(),
            vc("vec", "4"),
            field("geo", DataType::Geometry, &[]),
        ],
        |ids| {
            let wkt = |i: usize| match i % 3 {
                0 => format!("POINT ({} {})", i as f64 * 0.5, -(i as f64)),
                1 => format!("POINT({} {})", i, i as f64 / 8.0),
                _ => "POLYGON ((0 0, 4 0, 4 4, 0 4, 0 0))".to_owned(),
            };
            vec![
                pk_column(ids),
                dense("vec", ids, 4),
                scalar(
                    "geo",
                    DataType::Geometry,
                    scalar_field::Data::GeometryWktData(GeometryWktArray {
                        data: ids.iter().map(|i| wkt(*i)).collect(),
                    }),
                ),
            ]
        },
    );
    out.push(c);

    let mut c = Case::new(
        "partition_key",
        "a VarChar partition key with num_partitions 8",
        vec![
            pk_int(),
            vc("vec", "4"),
            FieldSchema {
                is_partition_key: true,
                ..field("tenant", DataType::VarChar, &[("max_length", "32")])
            },
        ],
        |ids| {
            vec![
                pk_column(ids),
                dense("vec", ids, 4),
                scalar(
                    "tenant",
                    DataType::VarChar,
                    scalar_field::Data::StringData(StringArray {
                        data: ids.iter().map(|i| format!("tenant-{}", i % 11)).collect(),
                    }),
                ),
            ]
        },
    );
    c.num_partitions = 8;
    out.push(c);

    let c = Case::new(
        "clustering_key",
        "an Int64 clustering key",
        vec![
            pk_int(),
            vc("vec", "4"),
            FieldSchema {
                is_clustering_key: true,
                ..field("ck", DataType::Int64, &[])
            },
        ],
        |ids| {
            vec![
                pk_column(ids),
                dense("vec", ids, 4),
                scalar(
                    "ck",
                    DataType::Int64,
                    scalar_field::Data::LongData(LongArray {
                        data: ints(ids, |i| (i % 13) as i64),
                    }),
                ),
            ]
        },
    );
    out.push(c);

    let mut c = Case::new(
        "bm25",
        "a BM25 function: its sparse output is generated by the target, never written, and indexed with the BM25 metric",
        vec![
            pk_int(),
            field("text", DataType::VarChar, &[("max_length", "256"), ("enable_analyzer", "true")]),
            FieldSchema { is_function_output: true, ..field("sparse", DataType::SparseFloatVector, &[]) },
        ],
        |ids| {
            let words = ["vector", "migration", "milvus", "lambda", "fidelity", "bits", "ünïcode"];
            vec![
                pk_column(ids),
                scalar(
                    "text",
                    DataType::VarChar,
                    scalar_field::Data::StringData(StringArray {
                        data: ids.iter().map(|i| (0..(i % 5 + 1)).map(|j| words[(i + j * 3) % 7]).collect::<Vec<_>>().join(" ")).collect(),
                    }),
                ),
            ]
        },
    );
    c.functions = vec![FunctionSchema {
        name: "text_bm25".into(),
        r#type: FunctionType::Bm25 as i32,
        input_field_names: vec!["text".into()],
        output_field_names: vec!["sparse".into()],
        ..Default::default()
    }];
    c.indexes = vec![("sparse", "SPARSE_INVERTED_INDEX", "BM25", vec![])];
    c.db = 1;
    out.push(c);

    out
}

/// One byte-packed vector of `t` for row `i`.
fn packed(t: DataType, dim: usize, i: usize) -> Vec<u8> {
    let half = |base: u16, j: usize| (base + ((i * 13 + j * 7) % 0x400) as u16).to_le_bytes();
    match t {
        DataType::BinaryVector => (0..dim / 8).map(|j| (i * 37 + j * 11) as u8).collect(),
        DataType::Float16Vector => (0..dim).flat_map(|j| half(0x3000, j)).collect(),
        DataType::BFloat16Vector => (0..dim).flat_map(|j| half(0x3c00, j)).collect(),
        DataType::Int8Vector => (0..dim).map(|j| ((i * 5 + j * 29) % 256) as u8).collect(),
        other => panic!("{other:?} is not byte-packed"),
    }
}

/// A collection whose one vector field is of a byte-packed type.
fn packed_vector_case(
    key: &'static str,
    covers: &'static str,
    t: DataType,
    dim: usize,
    (index, metric, params): (
        &'static str,
        &'static str,
        Vec<(&'static str, &'static str)>,
    ),
) -> Case {
    let mut c = Case::new(
        key,
        covers,
        vec![pk_int(), field("vec", t, &[("dim", &dim.to_string())])],
        move |ids| {
            let bytes: Vec<u8> = ids.iter().flat_map(|i| packed(t, dim, *i)).collect();
            let data = match t {
                DataType::BinaryVector => vector_field::Data::BinaryVector(bytes),
                DataType::Float16Vector => vector_field::Data::Float16Vector(bytes),
                DataType::BFloat16Vector => vector_field::Data::Bfloat16Vector(bytes),
                _ => vector_field::Data::Int8Vector(bytes),
            };
            vec![pk_column(ids), vector("vec", t, dim as i64, data)]
        },
    );
    c.indexes = vec![("vec", index, metric, params)];
    c
}

/// The `auto_id` case: keys generated by the source, which the target must keep.
fn auto_id_case() -> Case {
    let mut c = Case::new(
        "auto_id",
        "an auto_id primary key: the source's keys kept through `allow_insert_auto_id`",
        vec![
            FieldSchema {
                auto_id: true,
                ..pk_int()
            },
            field("vec", DataType::FloatVector, &[("dim", "4")]),
        ],
        |ids| vec![dense("vec", ids, 4)],
    );
    c.rows = 200;
    c
}

// ---------------------------------------------------------------------------------------------
// Talking to the servers

fn failed(status: Option<&milvus::proto::common::Status>) -> Option<String> {
    let s = status?;
    #[allow(deprecated)]
    let bad = s.code != 0 || s.error_code != 0;
    bad.then(|| format!("{} (code {})", s.reason, s.code))
}

/// Creates a collection of `case` and fills it; `Err` with the server's words when it refuses.
async fn create_and_fill(
    c: &mut Raw,
    db: &str,
    name: &str,
    case: &Case,
    rows: usize,
) -> Result<(), String> {
    // Types the server's version accepts but cannot serve (Milvus 2.3.5's query node crashes
    // when it loads a Float16Vector collection) are ruled out before asking.
    let version = c
        .get_version(milvus::proto::milvus::GetVersionRequest::default())
        .await
        .map_err(|e| e.message().to_owned())?
        .into_inner()
        .version;
    let old = vecmigrate::milvus::compat::too_old_for(&version, &case.schema(name));
    if !old.is_empty() {
        return Err(old.join("; "));
    }
    let r = c
        .create_collection(CreateCollectionRequest {
            db_name: db.into(),
            collection_name: name.into(),
            schema: case.schema(name).encode_to_vec(),
            shards_num: 1,
            consistency_level: ConsistencyLevel::Strong as i32,
            num_partitions: case.num_partitions,
            ..Default::default()
        })
        .await
        .map_err(|e| e.message().to_owned())?
        .into_inner();
    if let Some(e) = failed(Some(&r)) {
        return Err(format!("create collection: {e}"));
    }
    // What the server does not know, it may drop without a word: ask what it kept.
    let kept = c
        .describe_collection(DescribeCollectionRequest {
            db_name: db.into(),
            collection_name: name.into(),
            ..Default::default()
        })
        .await
        .map_err(|e| e.message().to_owned())?
        .into_inner()
        .schema
        .unwrap_or_default();
    let lost = vecmigrate::milvus::compat::schema_differences(&case.schema(name), &kept);
    if !lost.is_empty() {
        return Err(format!(
            "{version} does not keep the schema: {}",
            lost.join("; ")
        ));
    }
    for p in case.partitions.iter().chain(&case.empty_partitions) {
        let r = c
            .create_partition(CreatePartitionRequest {
                db_name: db.into(),
                collection_name: name.into(),
                partition_name: (*p).into(),
                ..Default::default()
            })
            .await
            .map_err(|e| e.message().to_owned())?
            .into_inner();
        if let Some(e) = failed(Some(&r)) {
            return Err(format!("create partition: {e}"));
        }
    }
    let mut filled = vec![if case.num_partitions > 0 {
        ""
    } else {
        "_default"
    }];
    filled.extend(case.partitions.iter().copied());
    for (pi, partition) in filled.iter().enumerate() {
        let ids: Vec<usize> = (0..rows).filter(|i| i % filled.len() == pi).collect();
        for chunk in ids.chunks(100) {
            let r = c
                .insert(InsertRequest {
                    db_name: db.into(),
                    collection_name: name.into(),
                    partition_name: (*partition).into(),
                    fields_data: (case.columns)(chunk),
                    num_rows: chunk.len() as u32,
                    ..Default::default()
                })
                .await
                .map_err(|e| e.message().to_owned())?
                .into_inner();
            if let Some(e) = failed(r.status.as_ref()) {
                return Err(format!("insert: {e}"));
            }
        }
    }
    Ok(())
}

async fn index_and_load(c: &mut Raw, db: &str, name: &str, case: &Case) -> Result<(), String> {
    for (f, t, metric, params) in &case.indexes {
        let mut extra = vec![kv("index_type", t)];
        if !metric.is_empty() {
            extra.push(kv("metric_type", metric));
        }
        let p: serde_json::Map<String, serde_json::Value> = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String((*v).to_owned())))
            .collect();
        extra.push(kv("params", &serde_json::Value::Object(p).to_string()));
        let r = c
            .create_index(CreateIndexRequest {
                db_name: db.into(),
                collection_name: name.into(),
                field_name: (*f).into(),
                extra_params: extra,
                index_name: format!("{f}_idx"),
                ..Default::default()
            })
            .await
            .map_err(|e| e.message().to_owned())?
            .into_inner();
        if let Some(e) = failed(Some(&r)) {
            return Err(format!("create index on {f}: {e}"));
        }
    }
    load(c, db, name).await;
    Ok(())
}

/// Asks the target whether it takes a collection of this case (a scratch collection, dropped).
async fn target_takes(target: &Server, case: &Case) -> Result<(), String> {
    let mut c = raw(target).await;
    let name = unique(&format!("probe_{}", case.key));
    let result = create_and_fill(&mut c, "default", &name, case, case.rows.min(3)).await;
    drop_collection(&mut c, "default", &name).await;
    result
}

/// Whether the target keeps explicit keys in an auto_id collection.
async fn target_keeps_auto_id_keys(target: &Server) -> Result<(), String> {
    let mut c = raw(target).await;
    let name = unique("probe_auto_id");
    let case = auto_id_case();
    let mut schema = case.schema(&name);
    schema.fields[0].auto_id = true;
    let r = c
        .create_collection(CreateCollectionRequest {
            collection_name: name.clone(),
            schema: schema.encode_to_vec(),
            properties: vec![kv("allow_insert_auto_id", "true")],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    if let Some(e) = failed(Some(&r)) {
        return Err(e);
    }
    let ids = [5usize];
    let r = c
        .insert(InsertRequest {
            collection_name: name.clone(),
            fields_data: vec![pk_column(&ids), dense("vec", &ids, 4)],
            num_rows: 1,
            ..Default::default()
        })
        .await;
    drop_collection(&mut c, "default", &name).await;
    let r = r.map_err(|e| e.message().to_owned())?.into_inner();
    if let Some(e) = failed(r.status.as_ref()) {
        return Err(e);
    }
    match r.i_ds.and_then(|i| i.id_field) {
        Some(milvus::proto::schema::i_ds::IdField::IntId(a)) if a.data == [5 * 1_000_003 - 7] => {
            Ok(())
        }
        other => Err(format!("the key was replaced: {other:?}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Reading back, independently of the adapter under test

/// A row's fields, each rendered canonically.
type Rendered = BTreeMap<String, String>;

/// Every row of a collection (at most 16,384), by rendered primary key.
async fn rows_of(server: &Server, db: &str, name: &str) -> BTreeMap<String, Rendered> {
    let mut c = raw(server).await;
    if common::load_state(&mut c, db, name).await != milvus::proto::common::LoadState::Loaded as i32
    {
        load(&mut c, db, name).await;
    }
    let r = c
        .query(QueryRequest {
            db_name: db.into(),
            collection_name: name.into(),
            expr: String::new(),
            output_fields: vec!["*".into()],
            query_params: vec![kv("limit", "16384")],
            consistency_level: ConsistencyLevel::Strong as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        failed(r.status.as_ref()).is_none(),
        "query {db}.{name}: {:?}",
        r.status
    );
    let pk = r.fields_data.iter().find(|f| f.field_name == "id");
    let mut out = BTreeMap::new();
    let Some(pk) = pk else {
        return out;
    };
    let n = match &pk.field {
        Some(field_data::Field::Scalars(s)) => scalar_len(s.data.as_ref().unwrap()),
        _ => 0,
    };
    for i in 0..n {
        let row: Rendered = r
            .fields_data
            .iter()
            .map(|f| (f.field_name.clone(), render(f, i)))
            .collect();
        assert!(
            out.insert(render(pk, i), row).is_none(),
            "{db}.{name}: a key returned twice"
        );
    }
    out
}

/// The describe response without what differs by nature (ids, timestamps, names, channels).
async fn described(server: &Server, db: &str, name: &str) -> String {
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
    let mut s = r.schema.unwrap();
    s.name.clear();
    s.db_name.clear();
    for f in &mut s.fields {
        f.field_id = 0;
    }
    for f in &mut s.functions {
        f.id = 0;
        f.input_field_ids.clear();
        f.output_field_ids.clear();
    }
    let mut props: Vec<(String, String)> = r
        .properties
        .iter()
        .map(|p| (p.key.clone(), p.value.clone()))
        .collect();
    props.sort();
    format!(
        "{s:#?}\nshards={} consistency={} num_partitions={} properties={props:?}",
        r.shards_num, r.consistency_level, r.num_partitions
    )
}

/// (field, index type, metric) of every index, sorted.
async fn sorted_indexes(server: &Server, db: &str, name: &str) -> Vec<(String, String, String)> {
    let mut out = common::indexes_of(server, db, name).await;
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------------
// The suite

struct Outcome {
    key: &'static str,
    covers: &'static str,
    result: Result<(usize, usize), String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_type_and_feature_round_trips_bit_exact() {
    round_trip(None).await;
}

/// The same suite with `write_mode: "auto"`: every collection whose fields can be staged is
/// imported from Parquet files (on 2.3.5, the backend with an import API), the rest inserted,
/// and every row compared as above.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_type_and_feature_round_trips_bit_exact_through_import() {
    if !common::proven_on("standalone") {
        return;
    }
    let staging = tempfile::tempdir().unwrap();
    round_trip(Some(staging.path())).await;
}

/// Creates every case on the source, migrates them in one job (by import where they can be,
/// when `staging` is given) and compares every row; without `staging`, writes the backend's
/// table and checks docs/FIDELITY.md against it.
async fn round_trip(staging: Option<&std::path::Path>) {
    let servers = Servers::from_env();
    let run = unique("fid");
    let dbs = [format!("{run}_a"), format!("{run}_b")];
    let target_dbs = [dbs[0].clone(), format!("{run}_b_t")];
    let mut src = raw(&servers.source).await;
    let mut tgt = raw(&servers.target).await;
    for db in &dbs {
        ensure_database(&mut src, db).await;
    }
    // The first target database exists; the second is created by the job.
    ensure_database(&mut tgt, &target_dbs[0]).await;

    let mut outcomes = Vec::new();
    let mut migrated: Vec<(Case, String)> = Vec::new();
    let mut all = cases();
    let auto_id = target_keeps_auto_id_keys(&servers.target).await;
    if auto_id.is_ok() {
        all.push(auto_id_case());
    } else {
        // Proved below: a job with it is refused in preflight.
        outcomes.push(Outcome {
            key: "auto_id",
            covers: auto_id_case().covers,
            result: Err(format!("target refuses explicit keys in an auto_id collection ({}); the job is refused in preflight, as proved by `an_auto_id_collection_the_target_would_renumber_is_refused_in_preflight`", auto_id.clone().unwrap_err())),
        });
    }
    for case in all {
        let name = format!("{}_{}", case.key, &run[4..]);
        let db = &dbs[case.db];
        let created = match create_and_fill(&mut src, db, &name, &case, case.rows).await {
            Ok(()) => index_and_load(&mut src, db, &name, &case).await,
            Err(e) => Err(e),
        };
        let probed = match created {
            Err(e) => Err(format!("the source server cannot hold it: {e}")),
            Ok(()) => target_takes(&servers.target, &case)
                .await
                .map_err(|e| format!("the target server cannot hold it: {e}")),
        };
        if let Err(reason) = probed {
            assert!(
                !case.required,
                "{}: every backend must carry it, but {reason}",
                case.key
            );
            drop_collection(&mut src, db, &name).await;
            outcomes.push(Outcome {
                key: case.key,
                covers: case.covers,
                result: Err(reason),
            });
            continue;
        }
        migrated.push((case, name));
    }

    // One job: both databases, every proved collection, small pages, full verification.
    let h = harness(fast_settings(), EngineConfig::default(), None);
    let spec = |s: &Server| vecmigrate::domain::ClusterSpec {
        token: s.token.clone().map(vecmigrate::domain::Secret::new),
        ..vecmigrate::domain::ClusterSpec::new(s.uri.clone())
    };
    let mut request = MigrationRequest {
        idempotency_key: None,
        dry_run: false,
        source: spec(&servers.source),
        target: spec(&servers.target),
        databases: (0..2)
            .map(|d| DatabaseSpec {
                name: dbs[d].clone(),
                target_name: Some(target_dbs[d].clone()),
                collections: migrated
                    .iter()
                    .filter(|(c, _)| c.db == d)
                    .map(|(_, n)| CollectionSpec::named(n.clone()))
                    .collect(),
            })
            .collect(),
        options: Default::default(),
        webhook: None,
    };
    request.options.batch_size = 64;
    request.options.verify = VerifyMode::Full;
    if let Some(dir) = staging {
        request.options.write_mode = WriteVia::Auto;
        request.options.staging = Some(dir.to_string_lossy().into_owned());
    }
    let (job, report) = h.run(request).await;
    let ended = h.store.get_job(&job.id).await.unwrap().unwrap();
    assert_eq!(
        report.job.status,
        JobStatus::Successful,
        "{:?} {:#?}",
        report.job.error,
        h.store.list_logs(&job.id).await.ok()
    );

    let logs = h.store.list_logs(&job.id).await.unwrap();
    for (case, name) in &migrated {
        let (db, tdb) = (&dbs[case.db], &target_dbs[case.db]);
        let what = format!("{}.{name}", tdb);
        let collection = ended
            .collections
            .iter()
            .find(|c| &c.source == name)
            .expect("in the report");
        if staging.is_some() {
            let write = collection.write.as_ref().expect("a write choice");
            let stageable = case
                .fields
                .iter()
                .all(|f| vecmigrate::staging::parquet::not_importable(f).is_none() && !f.auto_id);
            assert_eq!(
                write.via == WriteVia::Import,
                stageable,
                "{what}: imported exactly when its fields can be staged ({:?})",
                write.reason
            );
        }
        let content = collection.content.as_ref().expect("a full comparison ran");
        assert_eq!(
            (content.done, content.compared, content.differing),
            (true, case.rows as u64, 0),
            "{what}: the job's own full comparison"
        );
        assert_eq!(
            described(&servers.target, tdb, name).await,
            described(&servers.source, db, name).await,
            "{what}: schema"
        );
        assert_eq!(
            common::partitions_of(&servers.target, tdb, name).await,
            common::partitions_of(&servers.source, db, name).await,
            "{what}: partitions"
        );
        let expected: Vec<(String, String, String)> = {
            let mut e: Vec<_> = sorted_indexes(&servers.source, db, name)
                .await
                .into_iter()
                .map(|(f, t, m)| {
                    // A vector index becomes AUTOINDEX, unless the target refused it and the
                    // job says it recreated the source's own.
                    let own = logs.iter().any(|l| {
                        l.collection.as_deref() == Some(&format!("{db}.{name}"))
                            && l.message
                                .contains(&format!("created the source's {t} index"))
                            && l.message.contains(&format!("AUTOINDEX on `{f}`"))
                    });
                    if m.is_empty() || own {
                        (f, t, m)
                    } else {
                        (f, "AUTOINDEX".into(), m)
                    }
                })
                .collect();
            // Vector fields without a source index get AUTOINDEX too.
            for f in case
                .fields
                .iter()
                .filter(|f| vecmigrate::milvus::batch::is_vector(f.data_type))
            {
                if !e.iter().any(|(n, _, _)| n == &f.name) {
                    let refused = logs.iter().any(|l| {
                        l.collection.as_deref() == Some(&format!("{db}.{name}"))
                            && l.message.contains(&format!("AUTOINDEX on `{}`", f.name))
                    });
                    let metric = match DataType::try_from(f.data_type) {
                        Ok(DataType::BinaryVector) => "HAMMING",
                        Ok(DataType::SparseFloatVector) => "IP",
                        _ => "COSINE",
                    };
                    let kind = if refused {
                        "SPARSE_INVERTED_INDEX"
                    } else {
                        "AUTOINDEX"
                    };
                    e.push((f.name.clone(), kind.into(), metric.into()));
                }
            }
            e.sort();
            e
        };
        assert_eq!(
            sorted_indexes(&servers.target, tdb, name).await,
            expected,
            "{what}: indexes"
        );
        let source_rows = rows_of(&servers.source, db, name).await;
        let target_rows = rows_of(&servers.target, tdb, name).await;
        assert_eq!(
            source_rows.len(),
            case.rows,
            "{what}: the source holds what was seeded"
        );
        assert_eq!(target_rows.len(), source_rows.len(), "{what}: rows");
        let mut fields = 0;
        for (key, row) in &source_rows {
            assert_eq!(target_rows.get(key), Some(row), "{what}: row {key}");
            fields += row.len();
        }
        outcomes.push(Outcome {
            key: case.key,
            covers: case.covers,
            result: Ok((source_rows.len(), fields)),
        });
    }

    if staging.is_some() {
        return;
    }
    let mut table = format!("| case | covers | {} |\n|---|---|---|\n", servers.backend);
    let (mut rows, mut fields) = (0, 0);
    for o in &outcomes {
        let cell = match &o.result {
            Ok((r, f)) => {
                rows += r;
                fields += f;
                format!("proved: {r} rows, {f} fields compared")
            }
            Err(e) => format!("skipped: {}", e.replace('|', "\\|").replace('\n', " ")),
        };
        writeln!(table, "| {} | {} | {cell} |", o.key, o.covers).unwrap();
    }
    writeln!(
        table,
        "\n{rows} rows and {fields} fields compared on {}.",
        servers.backend
    )
    .unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("fidelity-{}.md", servers.backend)), &table).unwrap();
    println!("{table}");

    // The published table is what the suite finds: a case that stops being proved (or starts
    // being skipped because the test itself broke) fails here until docs/FIDELITY.md says so.
    let found: BTreeMap<&str, String> = outcomes
        .iter()
        .map(|o| {
            let cell = match &o.result {
                Ok((r, f)) => format!("proved: {r} rows, {f} fields compared"),
                Err(_) => "skipped".into(),
            };
            (o.key, cell)
        })
        .collect();
    assert_eq!(
        found,
        published(&servers.backend),
        "docs/FIDELITY.md is out of date for {}: run the suite on both backends, then regenerate its table with scripts/fidelity_table.py",
        servers.backend
    );
}

/// What docs/FIDELITY.md says the suite proved on `backend`: each case's cell ("proved: N rows,
/// M fields compared", or "skipped").
fn published(backend: &str) -> BTreeMap<&'static str, String> {
    let column = match backend {
        "lite" => 2,
        "standalone" => 3,
        other => panic!("no column for backend {other}"),
    };
    let doc = include_str!("../docs/FIDELITY.md");
    doc.lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| case"))
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
            let key = cases()
                .into_iter()
                .chain([auto_id_case()])
                .map(|c| c.key)
                .find(|k| *k == cells[0])?;
            let cell = cells.get(column)?;
            let cell = if cell.starts_with("proved") {
                (*cell).to_owned()
            } else {
                "skipped".to_owned()
            };
            Some((key, cell))
        })
        .collect()
}

#[tokio::test]
async fn an_auto_id_collection_the_target_would_renumber_is_refused_in_preflight() {
    // GIVEN an auto_id collection whose 50 keys the source generated
    let servers = Servers::from_env();
    let case = auto_id_case();
    let name = unique("autoid");
    let mut src = raw(&servers.source).await;
    create_and_fill(&mut src, "default", &name, &case, 50)
        .await
        .unwrap();
    index_and_load(&mut src, "default", &name, &case)
        .await
        .unwrap();
    let keeps = target_keeps_auto_id_keys(&servers.target).await;

    // WHEN it is migrated
    let h = harness(fast_settings(), EngineConfig::default(), None);
    let target = unique("autoid_t");
    let (_, report) = h
        .run(common::request(&servers, None, &[(&name, &target)]))
        .await;

    // THEN a target that keeps explicit keys gets the same keys and the source's properties;
    // one that does not is refused before anything is written
    let mut tgt = raw(&servers.target).await;
    let exists = tgt
        .describe_collection(DescribeCollectionRequest {
            collection_name: target.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .schema
        .is_some_and(|s| !s.fields.is_empty());
    match keeps {
        Ok(()) => {
            assert_successful(&report);
            let source_rows = rows_of(&servers.source, "default", &name).await;
            assert_eq!(source_rows.len(), 50);
            assert_eq!(
                rows_of(&servers.target, "default", &target).await,
                source_rows
            );
            assert_eq!(
                described(&servers.target, "default", &target).await,
                described(&servers.source, "default", &name).await,
                "allow_insert_auto_id was set for the copy only"
            );
        }
        Err(why) => {
            assert_eq!(
                report.job.status,
                JobStatus::Failed,
                "the target refused keys: {why}"
            );
            let error = report.job.error.unwrap().message;
            assert!(
                error.contains(&format!(
                    "`default.{name}` generate their primary keys (auto_id)"
                )) && error.contains("allow_insert_auto_id")
                    && error.contains("nothing was written"),
                "{error}"
            );
            assert!(!exists, "the target collection was created");
        }
    }
}
