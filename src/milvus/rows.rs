//! Rows out of Milvus's columns, for comparing an entity on both sides: each field of a row in
//! one canonical form (floats by their bits, JSON by value, sparse vectors by index/value pairs,
//! nulls as nulls), and a digest of a whole row.
//!
//! Every data type goes through the same path, including the vector types no local test server
//! accepts (Float16, BFloat16, Int8): their unit tests below are the proof for those.

use std::collections::BTreeMap;

use ::milvus::proto::schema::{field_data, scalar_field, vector_field, FieldData, ScalarField};
use sha2::{Digest, Sha256};

use super::batch::primary_keys;
use crate::domain::Cursor;

/// One field of one entity, canonically.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A null (nullable field) or a missing vector.
    Null,
    /// Bool.
    Bool(bool),
    /// Int8, Int16, Int32, Int64, Timestamptz.
    Int(i64),
    /// Float, by its bits.
    F32(u32),
    /// Double, by its bits.
    F64(u64),
    /// VarChar, Geometry as WKT.
    Str(String),
    /// JSON, parsed (so equal documents compare equal whatever their spacing).
    Json(serde_json::Value),
    /// Bytes: Geometry as WKB, one Binary, Float16, BFloat16 or Int8 vector.
    Bytes(Vec<u8>),
    /// One float vector, by the bits of each element.
    Floats(Vec<u32>),
    /// One sparse vector: (index, bits of value), by index.
    Sparse(Vec<(u32, u32)>),
    /// An Array field's elements.
    Array(Vec<Value>),
}

/// A column this module cannot read a row of.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column `{field}`: {problem}")]
pub struct RowError {
    /// The field.
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

fn err(column: &FieldData, problem: impl Into<String>) -> RowError {
    RowError {
        field: column.field_name.clone(),
        problem: problem.into(),
    }
}

/// Where row `row`'s value sits in a column's data: nullable columns may carry every row (a
/// placeholder for each null) or only the present values; `None` for a null.
fn slot(valid: &[bool], values: usize, row: usize) -> Option<usize> {
    if valid.is_empty() || values == valid.len() {
        return match valid.get(row) {
            Some(false) => None,
            _ => Some(row),
        };
    }
    if !valid.get(row).copied().unwrap_or(false) {
        return None;
    }
    Some(valid[..row].iter().filter(|v| **v).count())
}

/// Values in one scalar column (or one Array element's values).
pub(crate) fn scalar_len(data: &scalar_field::Data) -> usize {
    use scalar_field::Data as S;
    match data {
        S::BoolData(d) => d.data.len(),
        S::IntData(d) => d.data.len(),
        S::LongData(d) => d.data.len(),
        S::FloatData(d) => d.data.len(),
        S::DoubleData(d) => d.data.len(),
        S::StringData(d) => d.data.len(),
        S::BytesData(d) => d.data.len(),
        S::ArrayData(d) => d.data.len(),
        S::JsonData(d) => d.data.len(),
        S::GeometryData(d) => d.data.len(),
        S::TimestamptzData(d) => d.data.len(),
        S::GeometryWktData(d) => d.data.len(),
        S::MolData(d) => d.data.len(),
        S::MolSmilesData(d) => d.data.len(),
        S::DateData(d) => d.data.len(),
        S::TimeData(d) => d.data.len(),
    }
}

fn scalar_at(column: &FieldData, data: &scalar_field::Data, i: usize) -> Result<Value, RowError> {
    use scalar_field::Data as S;
    let missing = || err(column, format!("no value at {i}"));
    Ok(match data {
        S::BoolData(d) => Value::Bool(*d.data.get(i).ok_or_else(missing)?),
        S::IntData(d) => Value::Int(*d.data.get(i).ok_or_else(missing)? as i64),
        S::LongData(d) => Value::Int(*d.data.get(i).ok_or_else(missing)?),
        S::FloatData(d) => Value::F32(d.data.get(i).ok_or_else(missing)?.to_bits()),
        S::DoubleData(d) => Value::F64(d.data.get(i).ok_or_else(missing)?.to_bits()),
        S::StringData(d) => Value::Str(d.data.get(i).ok_or_else(missing)?.clone()),
        S::GeometryWktData(d) => Value::Str(d.data.get(i).ok_or_else(missing)?.clone()),
        S::MolSmilesData(d) => Value::Str(d.data.get(i).ok_or_else(missing)?.clone()),
        S::BytesData(d) => Value::Bytes(d.data.get(i).ok_or_else(missing)?.clone()),
        S::GeometryData(d) => Value::Bytes(d.data.get(i).ok_or_else(missing)?.clone()),
        S::MolData(d) => Value::Bytes(d.data.get(i).ok_or_else(missing)?.clone()),
        S::TimestamptzData(d) => Value::Int(*d.data.get(i).ok_or_else(missing)?),
        S::DateData(d) => Value::Int(*d.data.get(i).ok_or_else(missing)? as i64),
        S::TimeData(d) => Value::Int(*d.data.get(i).ok_or_else(missing)?),
        S::JsonData(d) => Value::Json(json(d.data.get(i).ok_or_else(missing)?)),
        S::ArrayData(d) => {
            let element: &ScalarField = d.data.get(i).ok_or_else(missing)?;
            match &element.data {
                None => Value::Array(Vec::new()),
                Some(inner) => Value::Array(
                    (0..scalar_len(inner))
                        .map(|j| scalar_at(column, inner, j))
                        .collect::<Result<_, _>>()?,
                ),
            }
        }
    })
}

/// A JSON value as stored. Milvus Lite returns a top-level JSON string without its quotes
/// (`"abc"` comes back as `abc`): what does not parse is that string.
pub fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

/// Bytes per vector of a fixed-width byte-encoded vector type.
fn width(data: &vector_field::Data, dim: usize) -> Option<usize> {
    use vector_field::Data as V;
    match data {
        V::BinaryVector(_) => Some(dim.div_ceil(8)),
        V::Float16Vector(_) | V::Bfloat16Vector(_) => Some(dim * 2),
        V::Int8Vector(_) => Some(dim),
        _ => None,
    }
}

fn vector_at(
    column: &FieldData,
    data: &vector_field::Data,
    dim: usize,
    i: usize,
) -> Result<Value, RowError> {
    use vector_field::Data as V;
    let short = || err(column, format!("no vector at {i}"));
    Ok(match data {
        V::FloatVector(d) => Value::Floats(
            d.data
                .get(i * dim..(i + 1) * dim)
                .ok_or_else(short)?
                .iter()
                .map(|x| x.to_bits())
                .collect(),
        ),
        V::BinaryVector(b) | V::Float16Vector(b) | V::Bfloat16Vector(b) | V::Int8Vector(b) => {
            let w = width(data, dim).unwrap_or(0);
            Value::Bytes(b.get(i * w..(i + 1) * w).ok_or_else(short)?.to_vec())
        }
        V::SparseFloatVector(s) => {
            let raw = s.contents.get(i).ok_or_else(short)?;
            if raw.len() % 8 != 0 {
                return Err(err(
                    column,
                    format!("sparse row {i} has {} bytes", raw.len()),
                ));
            }
            let mut pairs: Vec<(u32, u32)> = raw
                .chunks_exact(8)
                .map(|c| {
                    (
                        u32::from_le_bytes([c[0], c[1], c[2], c[3]]),
                        u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
                    )
                })
                .collect();
            pairs.sort_unstable();
            Value::Sparse(pairs)
        }
        V::VectorArray(_) => return Err(err(column, "vector arrays are not supported")),
    })
}

fn vector_count(data: &vector_field::Data, dim: usize) -> Option<usize> {
    use vector_field::Data as V;
    match data {
        V::FloatVector(d) if dim > 0 => Some(d.data.len() / dim),
        V::SparseFloatVector(s) => Some(s.contents.len()),
        V::BinaryVector(b) | V::Float16Vector(b) | V::Bfloat16Vector(b) | V::Int8Vector(b) => {
            width(data, dim).filter(|w| *w > 0).map(|w| b.len() / w)
        }
        _ => None,
    }
}

/// Row `row` of a column, canonically.
pub fn value(column: &FieldData, row: usize) -> Result<Value, RowError> {
    match &column.field {
        Some(field_data::Field::Scalars(s)) => {
            let Some(data) = &s.data else {
                return Ok(Value::Null);
            };
            match slot(&column.valid_data, scalar_len(data), row) {
                None => Ok(Value::Null),
                Some(i) => scalar_at(column, data, i),
            }
        }
        Some(field_data::Field::Vectors(v)) => {
            let Some(data) = &v.data else {
                return Ok(Value::Null);
            };
            let dim = v.dim.max(0) as usize;
            let valid = if column.valid_data.is_empty() {
                &v.valid_data
            } else {
                &column.valid_data
            };
            let n = vector_count(data, dim).unwrap_or(0);
            match slot(valid, n, row) {
                None => Ok(Value::Null),
                Some(i) => vector_at(column, data, dim, i),
            }
        }
        Some(field_data::Field::StructArrays(_)) => {
            Err(err(column, "struct arrays are not supported"))
        }
        None => Ok(Value::Null),
    }
}

/// One entity: its fields by name.
pub type Row = BTreeMap<String, Value>;

/// The entities of a query response, by primary key. Fields in `skip` are left out.
pub fn rows_by_key(
    fields: &[FieldData],
    primary: &str,
    skip: &[String],
) -> Result<BTreeMap<Cursor, Row>, RowError> {
    let Some(pk) = fields.iter().find(|f| f.field_name == primary) else {
        return if fields.is_empty() {
            Ok(BTreeMap::new())
        } else {
            Err(RowError {
                field: primary.to_owned(),
                problem: "the primary key column is missing".into(),
            })
        };
    };
    let keys = primary_keys(pk).ok_or_else(|| err(pk, "not an Int64 or VarChar key"))?;
    let mut out = BTreeMap::new();
    for (i, key) in keys.into_iter().enumerate() {
        let mut row = Row::new();
        for f in fields.iter().filter(|f| !skip.contains(&f.field_name)) {
            row.insert(f.field_name.clone(), value(f, i)?);
        }
        out.insert(key, row);
    }
    Ok(out)
}

fn canonical_json(v: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value as J;
    match v {
        J::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(J::String(k.clone()).to_string().as_bytes());
                out.push(b':');
                canonical_json(v, out);
            }
            out.push(b'}');
        }
        J::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(item, out);
            }
            out.push(b']');
        }
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
}

fn encode(v: &Value, out: &mut Vec<u8>) {
    let len = |out: &mut Vec<u8>, n: usize| out.extend_from_slice(&(n as u64).to_le_bytes());
    match v {
        Value::Null => out.push(0),
        Value::Bool(b) => out.extend_from_slice(&[1, *b as u8]),
        Value::Int(i) => {
            out.push(2);
            out.extend_from_slice(&i.to_le_bytes());
        }
        Value::F32(b) => {
            out.push(3);
            out.extend_from_slice(&b.to_le_bytes());
        }
        Value::F64(b) => {
            out.push(4);
            out.extend_from_slice(&b.to_le_bytes());
        }
        Value::Str(s) => {
            out.push(5);
            len(out, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        Value::Json(j) => {
            out.push(6);
            let mut buf = Vec::new();
            canonical_json(j, &mut buf);
            len(out, buf.len());
            out.extend_from_slice(&buf);
        }
        Value::Bytes(b) => {
            out.push(7);
            len(out, b.len());
            out.extend_from_slice(b);
        }
        Value::Floats(f) => {
            out.push(8);
            len(out, f.len());
            f.iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
        }
        Value::Sparse(p) => {
            out.push(9);
            len(out, p.len());
            for (i, x) in p {
                out.extend_from_slice(&i.to_le_bytes());
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        Value::Array(items) => {
            out.push(10);
            len(out, items.len());
            items.iter().for_each(|i| encode(i, out));
        }
    }
}

/// The SHA-256 of an entity's canonical form (fields by name).
pub fn digest(row: &Row) -> [u8; 32] {
    let mut buf = Vec::new();
    for (name, value) in row {
        buf.extend_from_slice(&(name.len() as u64).to_le_bytes());
        buf.extend_from_slice(name.as_bytes());
        encode(value, &mut buf);
    }
    Sha256::digest(&buf).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::milvus::proto::schema::{
        ArrayArray, DataType, FloatArray, IntArray, JsonArray, LongArray, SparseFloatArray,
        StringArray, VectorField,
    };

    fn scalar(name: &str, data: scalar_field::Data, valid: Vec<bool>) -> FieldData {
        FieldData {
            field_name: name.into(),
            valid_data: valid,
            field: Some(field_data::Field::Scalars(ScalarField {
                data: Some(data),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn vector(name: &str, dim: i64, data: vector_field::Data) -> FieldData {
        FieldData {
            field_name: name.into(),
            field: Some(field_data::Field::Vectors(VectorField {
                dim,
                data: Some(data),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn byte_vectors_split_by_their_width() {
        // Two rows of each type no local server accepts, at dim 4 (binary at dim 16).
        let f16 = vector(
            "h",
            4,
            vector_field::Data::Float16Vector((0u8..16).collect()),
        );
        let bf16 = vector(
            "b",
            4,
            vector_field::Data::Bfloat16Vector((16u8..32).collect()),
        );
        let i8v = vector(
            "i",
            4,
            vector_field::Data::Int8Vector(vec![0x80, 0x7f, 0, 1, 2, 3, 4, 0xff]),
        );
        let bin = vector("n", 16, vector_field::Data::BinaryVector(vec![1, 2, 3, 4]));
        assert_eq!(value(&f16, 1).unwrap(), Value::Bytes((8u8..16).collect()));
        assert_eq!(value(&bf16, 0).unwrap(), Value::Bytes((16u8..24).collect()));
        assert_eq!(value(&i8v, 1).unwrap(), Value::Bytes(vec![2, 3, 4, 0xff]));
        assert_eq!(value(&bin, 1).unwrap(), Value::Bytes(vec![3, 4]));
        assert!(
            value(&f16, 2).is_err(),
            "a row past the data is an error, not a null"
        );
    }

    #[test]
    fn floats_compare_by_bits_and_json_by_value() {
        let a = vector(
            "v",
            2,
            vector_field::Data::FloatVector(FloatArray {
                data: vec![0.0, 1.0],
            }),
        );
        let b = vector(
            "v",
            2,
            vector_field::Data::FloatVector(FloatArray {
                data: vec![-0.0, 1.0],
            }),
        );
        assert_ne!(
            value(&a, 0).unwrap(),
            value(&b, 0).unwrap(),
            "-0.0 is not 0.0"
        );
        let j1 = scalar(
            "j",
            scalar_field::Data::JsonData(JsonArray {
                data: vec![br#"{"a":1,"b":[true,null]}"#.to_vec()],
            }),
            vec![],
        );
        let j2 = scalar(
            "j",
            scalar_field::Data::JsonData(JsonArray {
                data: vec![br#"{ "b": [true, null], "a": 1 }"#.to_vec()],
            }),
            vec![],
        );
        let r1: Row = [("j".to_owned(), value(&j1, 0).unwrap())].into();
        let r2: Row = [("j".to_owned(), value(&j2, 0).unwrap())].into();
        assert_eq!(
            digest(&r1),
            digest(&r2),
            "key order and spacing do not matter"
        );
    }

    #[test]
    fn an_unquoted_top_level_string_is_that_string() {
        let quoted = scalar(
            "j",
            scalar_field::Data::JsonData(JsonArray {
                data: vec![br#""ab c""#.to_vec(), b"ab c".to_vec()],
            }),
            vec![],
        );
        assert_eq!(value(&quoted, 0).unwrap(), value(&quoted, 1).unwrap());
    }

    #[test]
    fn sparse_vectors_compare_by_pairs() {
        let pair = |i: u32, v: f32| [i.to_le_bytes(), v.to_bits().to_le_bytes()].concat();
        let s = vector(
            "s",
            0,
            vector_field::Data::SparseFloatVector(SparseFloatArray {
                contents: vec![[pair(7, 0.5), pair(2, 1.5)].concat(), vec![]],
                dim: 8,
            }),
        );
        assert_eq!(
            value(&s, 0).unwrap(),
            Value::Sparse(vec![(2, 1.5f32.to_bits()), (7, 0.5f32.to_bits())])
        );
        assert_eq!(value(&s, 1).unwrap(), Value::Sparse(vec![]));
    }

    #[test]
    fn nulls_in_full_and_compact_columns() {
        let full = scalar(
            "n",
            scalar_field::Data::IntData(IntArray {
                data: vec![5, 0, 7],
            }),
            vec![true, false, true],
        );
        let compact = scalar(
            "n",
            scalar_field::Data::IntData(IntArray { data: vec![5, 7] }),
            vec![true, false, true],
        );
        for c in [&full, &compact] {
            assert_eq!(value(c, 0).unwrap(), Value::Int(5));
            assert_eq!(value(c, 1).unwrap(), Value::Null);
            assert_eq!(value(c, 2).unwrap(), Value::Int(7));
        }
    }

    #[test]
    fn arrays_and_rows_by_key() {
        let arr = scalar(
            "a",
            scalar_field::Data::ArrayData(ArrayArray {
                data: vec![
                    ScalarField {
                        data: Some(scalar_field::Data::StringData(StringArray {
                            data: vec!["x".into(), "ü".into()],
                        })),
                        ..Default::default()
                    },
                    ScalarField::default(),
                ],
                element_type: DataType::VarChar as i32,
            }),
            vec![],
        );
        let pk = scalar(
            "id",
            scalar_field::Data::LongData(LongArray { data: vec![10, 3] }),
            vec![],
        );
        let rows = rows_by_key(&[pk, arr], "id", &[]).unwrap();
        assert_eq!(
            rows[&Cursor::Int(10)]["a"],
            Value::Array(vec![Value::Str("x".into()), Value::Str("ü".into())])
        );
        assert_eq!(rows[&Cursor::Int(3)]["a"], Value::Array(vec![]));
        assert_ne!(
            digest(&rows[&Cursor::Int(10)]),
            digest(&rows[&Cursor::Int(3)])
        );
    }
}
