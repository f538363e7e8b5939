//! Pages of entities in Milvus's columnar form, and the rules around them: the `pk > cursor`
//! filter, the primary-key order check, and page sizing by bytes.

pub use ::milvus::proto::schema::{field_data, scalar_field, vector_field};
use ::milvus::proto::schema::{CollectionSchema, DataType, FieldData, FieldSchema};
use prost::Message;
use std::sync::Arc;

use crate::domain::request::MAX_QUERY_ENTITIES;
use crate::domain::Cursor;

/// The largest request or response Milvus's proxy (`proxy.grpc.serverMaxRecvSize`) and Zilliz
/// Cloud accept by default: 64 MB.
pub const MESSAGE_LIMIT_BYTES: usize = 64 * 1024 * 1024;

/// Bytes a page aims at. Pages are sized by the widest entity seen in the last page (not the
/// average), so a page stays under it unless entities grow wider than any seen before. 16 MiB
/// lets 128-d pages reach the servers' 16,384 entities per query (on Milvus Lite each query
/// costs the same whatever its size, so fewer pages are faster: see `bench/RESULTS.md`), and is
/// a quarter of [`MESSAGE_LIMIT_BYTES`], so entities four times wider than any seen still fit.
/// Workers sharing a process aim lower (see [`page_bytes_for`]).
pub const TARGET_PAGE_BYTES: usize = 16 * 1024 * 1024;
/// The page bytes all the workers of one process hold at most: a worker holds about four
/// pages' bytes at once (the response, the page, the prefetched one, the request), so four
/// pages each of eight workers at 768-d stay well under 256 MB with the rest of the process.
pub const PROCESS_PAGE_BYTES: usize = 160 * 1024 * 1024;
/// The smallest page aim, however many workers share a process.
const MIN_PAGE_BYTES: usize = 1024 * 1024;

/// The bytes a page aims at when `workers` copy in one process: [`TARGET_PAGE_BYTES`] for one
/// or two, less for more, so that their pages together keep within [`PROCESS_PAGE_BYTES`].
pub fn page_bytes_for(workers: usize) -> usize {
    (PROCESS_PAGE_BYTES / (4 * workers.max(1))).clamp(MIN_PAGE_BYTES, TARGET_PAGE_BYTES)
}
// Entities four times wider than any seen still fit a message.
const _: () = assert!(4 * TARGET_PAGE_BYTES <= MESSAGE_LIMIT_BYTES);

/// One page read from the source, written to the target as it came.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Batch {
    /// The columns, as the query returned them (minus target-computed fields); shared, so a
    /// page goes to the target, and again on a retry, without being copied.
    pub fields: Arc<Vec<FieldData>>,
    /// Entities in the page.
    pub rows: usize,
    /// The largest primary key in the page.
    pub last: Option<Cursor>,
    /// Encoded size of the columns.
    pub bytes: usize,
    /// `rows` times the widest entity's size: what sizes the next page, so that a page of
    /// entities as wide as the widest one seen still fits [`TARGET_PAGE_BYTES`].
    pub sizing_bytes: usize,
    /// The timestamp the server read the page at (its `session_ts`), when it says.
    pub read_at: Option<u64>,
}

/// A page that breaks the paging invariant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    /// The primary key column is missing from the response.
    #[error("the page has no primary key column `{0}`")]
    NoPrimaryKey(String),
    /// Keys are not strictly ascending or not after the cursor: paging would skip entities.
    #[error("the page is not in primary-key order after the cursor (at row {0}); refusing to continue, as entities could be skipped")]
    OutOfOrder(usize),
    /// Columns of different lengths.
    #[error("column `{0}` has {1} values for {2} entities")]
    Ragged(String, usize, usize),
}

impl Batch {
    /// Builds a page from a query response, checking that its keys are strictly ascending and
    /// after `after`.
    pub fn from_columns(
        fields: Vec<FieldData>,
        primary: &str,
        after: Option<&Cursor>,
    ) -> Result<Self, PageError> {
        let pk = fields
            .iter()
            .find(|f| f.field_name == primary)
            .ok_or_else(|| PageError::NoPrimaryKey(primary.to_owned()))?;
        let keys = primary_keys(pk).ok_or_else(|| PageError::NoPrimaryKey(primary.to_owned()))?;
        let mut previous = after.cloned();
        for (i, key) in keys.iter().enumerate() {
            if previous.as_ref().is_some_and(|p| !cursor_less(p, key)) {
                return Err(PageError::OutOfOrder(i));
            }
            previous = Some(key.clone());
        }
        let rows = keys.len();
        for f in &fields {
            if let Some(n) = column_len(f) {
                if n != rows {
                    return Err(PageError::Ragged(f.field_name.clone(), n, rows));
                }
            }
        }
        let bytes = fields.iter().map(|f| f.encoded_len()).sum();
        let sizing_bytes = widest_row(&fields, rows).saturating_mul(rows).max(bytes);
        Ok(Self {
            fields: Arc::new(fields),
            rows,
            last: keys.into_iter().last(),
            bytes,
            sizing_bytes,
            read_at: None,
        })
    }
}

/// An upper bound of one entity's encoded size: the widest value of each variable-width column
/// (strings, JSON, bytes, arrays, sparse vectors) plus the even share of each fixed-width one.
fn widest_row(fields: &[FieldData], rows: usize) -> usize {
    use scalar_field::Data as S;
    if rows == 0 {
        return 0;
    }
    // Field tag and length prefix of one value.
    const FRAMING: usize = 8;
    let widest = |lens: &mut dyn Iterator<Item = usize>| lens.max().unwrap_or(0) + FRAMING;
    fields
        .iter()
        .map(|f| match &f.field {
            Some(field_data::Field::Scalars(s)) => match &s.data {
                Some(S::StringData(d)) => widest(&mut d.data.iter().map(String::len)),
                Some(S::GeometryWktData(d)) => widest(&mut d.data.iter().map(String::len)),
                Some(S::JsonData(d)) => widest(&mut d.data.iter().map(Vec::len)),
                Some(S::BytesData(d)) => widest(&mut d.data.iter().map(Vec::len)),
                Some(S::GeometryData(d)) => widest(&mut d.data.iter().map(Vec::len)),
                Some(S::ArrayData(d)) => widest(&mut d.data.iter().map(|a| a.encoded_len())),
                _ => f.encoded_len().div_ceil(rows),
            },
            Some(field_data::Field::Vectors(v)) => match &v.data {
                Some(vector_field::Data::SparseFloatVector(d)) => {
                    widest(&mut d.contents.iter().map(Vec::len))
                }
                _ => f.encoded_len().div_ceil(rows),
            },
            _ => f.encoded_len().div_ceil(rows),
        })
        .sum()
}

fn cursor_less(a: &Cursor, b: &Cursor) -> bool {
    match (a, b) {
        (Cursor::Int(x), Cursor::Int(y)) => x < y,
        // Milvus compares VarChar keys bytewise, as Rust compares `str`.
        (Cursor::Str(x), Cursor::Str(y)) => x.as_bytes() < y.as_bytes(),
        _ => false,
    }
}

/// The primary keys of a column, as cursors.
pub fn primary_keys(column: &FieldData) -> Option<Vec<Cursor>> {
    match &column.field {
        Some(field_data::Field::Scalars(s)) => match &s.data {
            Some(scalar_field::Data::LongData(d)) => {
                Some(d.data.iter().map(|v| Cursor::Int(*v)).collect())
            }
            Some(scalar_field::Data::StringData(d)) => {
                Some(d.data.iter().map(|v| Cursor::Str(v.clone())).collect())
            }
            _ => None,
        },
        _ => None,
    }
}

/// Entities in a column, where it can be told from the column alone.
fn column_len(column: &FieldData) -> Option<usize> {
    use scalar_field::Data as S;
    match &column.field {
        Some(field_data::Field::Scalars(s)) => match &s.data {
            Some(S::BoolData(d)) => Some(d.data.len()),
            Some(S::IntData(d)) => Some(d.data.len()),
            Some(S::LongData(d)) => Some(d.data.len()),
            Some(S::FloatData(d)) => Some(d.data.len()),
            Some(S::DoubleData(d)) => Some(d.data.len()),
            Some(S::StringData(d)) => Some(d.data.len()),
            Some(S::JsonData(d)) => Some(d.data.len()),
            Some(S::ArrayData(d)) => Some(d.data.len()),
            _ => None,
        }
        // Nullable columns carry only the present values; their validity list has every row.
        .map(|n| {
            if column.valid_data.is_empty() {
                n
            } else {
                column.valid_data.len()
            }
        }),
        Some(field_data::Field::Vectors(v)) if v.dim > 0 && column.valid_data.is_empty() => {
            let dim = v.dim as usize;
            match &v.data {
                Some(vector_field::Data::FloatVector(d)) => Some(d.data.len() / dim),
                Some(vector_field::Data::BinaryVector(d)) => Some(d.len() * 8 / dim),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Makes a page read from one server safe to write to another: see [`requote_json`] and
/// [`fill_empty_arrays`]. Returns how many values it changed.
pub fn normalize_page(fields: &mut [FieldData]) -> usize {
    requote_json(fields) + fill_empty_arrays(fields)
}

/// Gives every empty Array value its typed, empty element list. Servers return an empty array
/// as an element without data, and Milvus 2.3.5's insert validation dereferences that
/// missing data and crashes the server.
pub fn fill_empty_arrays(fields: &mut [FieldData]) -> usize {
    use ::milvus::proto::schema::{BoolArray, DoubleArray, FloatArray, IntArray, LongArray};
    use scalar_field::Data as S;
    let mut filled = 0;
    for f in fields.iter_mut() {
        let Some(field_data::Field::Scalars(s)) = &mut f.field else {
            continue;
        };
        let Some(S::ArrayData(arrays)) = &mut s.data else {
            continue;
        };
        let empty = match DataType::try_from(arrays.element_type) {
            Ok(DataType::Bool) => S::BoolData(BoolArray::default()),
            Ok(DataType::Int8 | DataType::Int16 | DataType::Int32) => {
                S::IntData(IntArray::default())
            }
            Ok(DataType::Int64) => S::LongData(LongArray::default()),
            Ok(DataType::Float) => S::FloatData(FloatArray::default()),
            Ok(DataType::Double) => S::DoubleData(DoubleArray::default()),
            Ok(DataType::VarChar | DataType::String) => S::StringData(Default::default()),
            _ => continue,
        };
        for element in arrays.data.iter_mut().filter(|e| e.data.is_none()) {
            element.data = Some(empty.clone());
            filled += 1;
        }
    }
    filled
}

/// Quotes again the JSON values a server returned as bare text: Milvus Lite returns a top-level
/// JSON string without its quotes (`"abc"` as `abc`), which a target would then store as
/// invalid JSON, or refuse. Returns how many values it repaired.
pub fn requote_json(fields: &mut [FieldData]) -> usize {
    let mut repaired = 0;
    for f in fields.iter_mut() {
        let valid = f.valid_data.clone();
        let Some(field_data::Field::Scalars(s)) = &mut f.field else {
            continue;
        };
        let Some(scalar_field::Data::JsonData(d)) = &mut s.data else {
            continue;
        };
        let full = valid.is_empty() || valid.len() == d.data.len();
        for (i, bytes) in d.data.iter_mut().enumerate() {
            // A null's placeholder is left alone.
            let present = !full || valid.get(i).copied().unwrap_or(true);
            if present && serde_json::from_slice::<serde_json::Value>(bytes).is_err() {
                let text = String::from_utf8_lossy(bytes).into_owned();
                *bytes = serde_json::Value::String(text).to_string().into_bytes();
                repaired += 1;
            }
        }
    }
    repaired
}

/// The filter that selects entities after `after` (all entities when there is no cursor).
pub fn after_filter(primary: &str, after: Option<&Cursor>) -> String {
    match after {
        None => String::new(),
        Some(key) => format!("{primary} > {}", literal(key)),
    }
}

fn literal(key: &Cursor) -> String {
    match key {
        Cursor::Int(v) => v.to_string(),
        Cursor::Str(s) => format!("\"{}\"", escape_string(s)),
    }
}

/// A filter every entity passes, for a query that needs one: `pk >= ""` for a VarChar key,
/// `pk >= 0 || pk < 0` for an Int64 key (the smallest Int64 has no literal Milvus parses).
pub fn every_key_filter(primary: &FieldSchema) -> String {
    let name = &primary.name;
    if primary.data_type == DataType::VarChar as i32 {
        format!("{name} >= \"\"")
    } else {
        format!("{name} >= 0 || {name} < 0")
    }
}

/// The filter that selects the entities with these keys.
pub fn keys_filter(primary: &str, keys: &[Cursor]) -> String {
    let list: Vec<String> = keys.iter().map(literal).collect();
    format!("{primary} in [{}]", list.join(", "))
}

/// The filter that selects the entities after `after` (or from the first) up to `upto`.
pub fn range_filter(primary: &str, after: Option<&Cursor>, upto: &Cursor) -> String {
    let upper = format!("{primary} <= {}", literal(upto));
    match after {
        None => upper,
        Some(a) => format!("{primary} > {} && {upper}", literal(a)),
    }
}

/// The filter of a page read: the entities after `after`, up to `upto` when the read is
/// bounded (a key-range task).
pub fn page_filter(primary: &str, after: Option<&Cursor>, upto: Option<&Cursor>) -> String {
    match upto {
        None => after_filter(primary, after),
        Some(upto) => range_filter(primary, after, upto),
    }
}

/// `expr` narrowed by `filter` (a job's subset): both must hold. Each is parenthesized, so a
/// filter's `||` cannot escape the key range.
pub fn and_filter(expr: String, filter: Option<&str>) -> String {
    match filter.map(str::trim).filter(|f| !f.is_empty()) {
        None => expr,
        Some(f) if expr.is_empty() => f.to_owned(),
        Some(f) => format!("({expr}) && ({f})"),
    }
}

/// Escapes a string for a double-quoted Milvus expression literal.
pub fn escape_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out
}

/// True for vector data types.
pub fn is_vector(data_type: i32) -> bool {
    matches!(
        DataType::try_from(data_type),
        Ok(DataType::FloatVector
            | DataType::BinaryVector
            | DataType::Float16Vector
            | DataType::BFloat16Vector
            | DataType::SparseFloatVector
            | DataType::Int8Vector)
    )
}

fn type_param(field: &FieldSchema, key: &str) -> Option<usize> {
    field
        .type_params
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.parse().ok())
}

/// A pessimistic guess of one entity's encoded size, for sizing the first page.
pub fn estimate_row_bytes(schema: &CollectionSchema) -> usize {
    let mut total = 0usize;
    for f in &schema.fields {
        let dim = type_param(f, "dim").unwrap_or(0);
        total += match DataType::try_from(f.data_type) {
            Ok(DataType::FloatVector) => dim * 4,
            Ok(DataType::Float16Vector | DataType::BFloat16Vector) => dim * 2,
            Ok(DataType::BinaryVector) => dim.div_ceil(8),
            Ok(DataType::Int8Vector) => dim,
            Ok(DataType::SparseFloatVector) => 2048,
            Ok(DataType::VarChar | DataType::String) => type_param(f, "max_length").unwrap_or(256),
            Ok(DataType::Json) => 1024,
            Ok(DataType::Array) => type_param(f, "max_capacity").unwrap_or(16) * 16,
            Ok(DataType::Geometry) => 512,
            _ => 8,
        } + 4;
    }
    if schema.enable_dynamic_field {
        total += 512;
    }
    total.max(1)
}

/// How many keys one key-only read asks for: `want`, within the servers' 16,384 entities per
/// query and a response of [`TARGET_PAGE_BYTES`] of keys as long as the field allows.
pub fn key_page_limit(primary: &FieldSchema, want: u32) -> u32 {
    let width = match DataType::try_from(primary.data_type) {
        Ok(DataType::VarChar | DataType::String) => {
            type_param(primary, "max_length").unwrap_or(256)
        }
        _ => 8,
    } + 4;
    let fit = (TARGET_PAGE_BYTES / width).max(1) as u32;
    want.clamp(1, MAX_QUERY_ENTITIES.min(fit))
}

/// The page size after a page of `rows` entities took `bytes`: aimed at `aim` bytes (at most
/// [`TARGET_PAGE_BYTES`]), at most doubling per page, within `1..=max`.
pub fn next_limit(current: u32, rows: usize, bytes: usize, max: u32, aim: usize) -> u32 {
    if rows == 0 || bytes == 0 {
        return current.clamp(1, max);
    }
    let per_row = bytes.div_ceil(rows).max(1);
    let fit = (aim.min(TARGET_PAGE_BYTES) / per_row).max(1) as u64;
    let capped = fit.min(current as u64 * 2).min(max as u64).max(1);
    capped as u32
}

/// The first page size for a schema, aimed at `aim` bytes (at most [`TARGET_PAGE_BYTES`]).
pub fn first_limit(schema: &CollectionSchema, max: u32, aim: usize) -> u32 {
    ((aim.min(TARGET_PAGE_BYTES) / estimate_row_bytes(schema)).max(1) as u64).min(max as u64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::milvus::proto::schema::{FloatArray, LongArray, ScalarField, StringArray, VectorField};

    fn long_column(name: &str, values: &[i64]) -> FieldData {
        FieldData {
            r#type: DataType::Int64 as i32,
            field_name: name.into(),
            field: Some(field_data::Field::Scalars(ScalarField {
                data: Some(scalar_field::Data::LongData(LongArray {
                    data: values.to_vec(),
                })),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn vector_column(name: &str, rows: usize, dim: usize) -> FieldData {
        FieldData {
            r#type: DataType::FloatVector as i32,
            field_name: name.into(),
            field: Some(field_data::Field::Vectors(VectorField {
                dim: dim as i64,
                data: Some(vector_field::Data::FloatVector(FloatArray {
                    data: vec![0.5; rows * dim],
                })),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn pages_of_every_packed_vector_type_pass_as_they_came() {
        // Float16, BFloat16 and Int8 vectors no local server accepts: the page keeps the
        // columns untouched, normalizing leaves them alone, and they count in its size.
        for data in [
            vector_field::Data::Float16Vector(vec![1; 3 * 8]),
            vector_field::Data::Bfloat16Vector(vec![2; 3 * 8]),
            vector_field::Data::Int8Vector(vec![3; 3 * 4]),
            vector_field::Data::BinaryVector(vec![4; 3 * 2]),
        ] {
            let column = FieldData {
                field_name: "v".into(),
                field: Some(field_data::Field::Vectors(VectorField {
                    dim: if matches!(data, vector_field::Data::BinaryVector(_)) {
                        16
                    } else {
                        4
                    },
                    data: Some(data),
                    ..Default::default()
                })),
                ..Default::default()
            };
            let mut fields = vec![long_column("id", &[1, 2, 3]), column.clone()];
            assert_eq!(normalize_page(&mut fields), 0);
            let b = Batch::from_columns(fields, "id", None).unwrap();
            assert_eq!(b.fields[1], column);
            assert_eq!(b.rows, 3);
            assert!(b.sizing_bytes >= b.bytes && b.bytes > column.encoded_len());
        }
    }

    #[test]
    fn pages_are_sized_by_their_widest_entity() {
        let text = |values: Vec<String>| FieldData {
            field_name: "t".into(),
            field: Some(field_data::Field::Scalars(ScalarField {
                data: Some(scalar_field::Data::StringData(StringArray { data: values })),
                ..Default::default()
            })),
            ..Default::default()
        };
        // Nine short texts and one of 100 KiB: sized as ten of 100 KiB, not by the average.
        let mut values = vec!["x".to_owned(); 9];
        values.push("y".repeat(100 * 1024));
        let b = Batch::from_columns(
            vec![
                long_column("id", &(0..10).collect::<Vec<_>>()),
                text(values),
            ],
            "id",
            None,
        )
        .unwrap();
        assert!(b.bytes < 11 * 1024 * 10);
        assert!(b.sizing_bytes >= 10 * 100 * 1024, "{}", b.sizing_bytes);
        let next = next_limit(10, b.rows, b.sizing_bytes, 16_384, TARGET_PAGE_BYTES) as usize;
        assert!(
            next * 100 * 1024 <= TARGET_PAGE_BYTES,
            "{next} such entities fit"
        );
    }

    #[test]
    fn page_takes_last_key_and_size() {
        let b = Batch::from_columns(
            vec![long_column("id", &[3, 5, 9]), vector_column("v", 3, 4)],
            "id",
            Some(&Cursor::Int(2)),
        )
        .unwrap();
        assert_eq!((b.rows, b.last.clone()), (3, Some(Cursor::Int(9))));
        assert!(b.bytes > 3 * 4 * 4);
    }

    #[test]
    fn unordered_or_repeated_page_is_refused() {
        let e = Batch::from_columns(vec![long_column("id", &[3, 9, 5])], "id", None).unwrap_err();
        assert_eq!(e, PageError::OutOfOrder(2));
        let e = Batch::from_columns(vec![long_column("id", &[3])], "id", Some(&Cursor::Int(3)))
            .unwrap_err();
        assert_eq!(
            e,
            PageError::OutOfOrder(0),
            "a key at the cursor would be written twice"
        );
    }

    #[test]
    fn ragged_columns_are_refused() {
        let e = Batch::from_columns(
            vec![long_column("id", &[1, 2]), vector_column("v", 3, 2)],
            "id",
            None,
        )
        .unwrap_err();
        assert_eq!(e, PageError::Ragged("v".into(), 3, 2));
    }

    #[test]
    fn string_keys_compare_bytewise() {
        let col = FieldData {
            field_name: "k".into(),
            field: Some(field_data::Field::Scalars(ScalarField {
                data: Some(scalar_field::Data::StringData(StringArray {
                    data: vec!["A".into(), "a".into(), "é".into()],
                })),
                ..Default::default()
            })),
            ..Default::default()
        };
        let b = Batch::from_columns(vec![col], "k", Some(&Cursor::Str(String::new()))).unwrap();
        assert_eq!(b.last, Some(Cursor::Str("é".into())));
    }

    #[test]
    fn filters_escape_hostile_keys() {
        assert_eq!(after_filter("id", None), "");
        assert_eq!(after_filter("id", Some(&Cursor::Int(-7))), "id > -7");
        assert_eq!(
            after_filter("k", Some(&Cursor::Str("a\"b\\c\nd".into()))),
            r#"k > "a\"b\\c\nd""#
        );
    }

    #[test]
    fn bare_json_strings_are_quoted_again_and_nulls_left_alone() {
        use ::milvus::proto::schema::JsonArray;
        let column = |data: Vec<&[u8]>, valid: Vec<bool>| FieldData {
            field_name: "j".into(),
            valid_data: valid,
            field: Some(field_data::Field::Scalars(ScalarField {
                data: Some(scalar_field::Data::JsonData(JsonArray {
                    data: data.into_iter().map(<[u8]>::to_vec).collect(),
                })),
                ..Default::default()
            })),
            ..Default::default()
        };
        let mut fields = vec![column(
            vec![b"{\"a\":1}", "just ✓".as_bytes(), b""],
            vec![true, true, false],
        )];
        assert_eq!(requote_json(&mut fields), 1);
        let Some(field_data::Field::Scalars(s)) = &fields[0].field else {
            unreachable!()
        };
        let Some(scalar_field::Data::JsonData(d)) = &s.data else {
            unreachable!()
        };
        assert_eq!(
            d.data,
            vec![
                b"{\"a\":1}".to_vec(),
                "\"just ✓\"".as_bytes().to_vec(),
                vec![]
            ]
        );
    }

    #[test]
    fn empty_arrays_get_their_typed_empty_list() {
        use ::milvus::proto::schema::{ArrayArray, IntArray};
        let mut fields = vec![FieldData {
            field_name: "a".into(),
            field: Some(field_data::Field::Scalars(ScalarField {
                data: Some(scalar_field::Data::ArrayData(ArrayArray {
                    data: vec![
                        ScalarField::default(),
                        ScalarField {
                            data: Some(scalar_field::Data::IntData(IntArray { data: vec![1] })),
                            ..Default::default()
                        },
                    ],
                    element_type: DataType::Int16 as i32,
                })),
                ..Default::default()
            })),
            ..Default::default()
        }];
        assert_eq!(normalize_page(&mut fields), 1);
        let Some(field_data::Field::Scalars(s)) = &fields[0].field else {
            unreachable!()
        };
        let Some(scalar_field::Data::ArrayData(a)) = &s.data else {
            unreachable!()
        };
        assert_eq!(
            a.data[0].data,
            Some(scalar_field::Data::IntData(IntArray::default()))
        );
        assert_eq!(
            a.data[1].data,
            Some(scalar_field::Data::IntData(IntArray { data: vec![1] }))
        );
    }

    #[test]
    fn key_and_range_filters_quote_every_key() {
        let hostile = Cursor::Str("a\"b\\c\nd%'é".into());
        assert_eq!(
            keys_filter("k", &[Cursor::Str("x".into()), hostile.clone()]),
            r#"k in ["x", "a\"b\\c\nd%'é"]"#
        );
        assert_eq!(
            keys_filter("id", &[Cursor::Int(1), Cursor::Int(-2)]),
            "id in [1, -2]"
        );
        assert_eq!(range_filter("id", None, &Cursor::Int(9)), "id <= 9");
        assert_eq!(
            range_filter("k", Some(&Cursor::Str("a".into())), &hostile),
            r#"k > "a" && k <= "a\"b\\c\nd%'é""#
        );
    }

    #[test]
    fn wide_rows_stay_under_the_response_limit() {
        // 16,384-d float vectors (64 KiB a row) and 65,535-byte VarChars, at the largest batch.
        let schema = CollectionSchema {
            fields: vec![
                FieldSchema {
                    name: "id".into(),
                    data_type: DataType::Int64 as i32,
                    ..Default::default()
                },
                FieldSchema {
                    name: "v".into(),
                    data_type: DataType::FloatVector as i32,
                    type_params: vec![crate::milvus::kv("dim", "16384")],
                    ..Default::default()
                },
                FieldSchema {
                    name: "text".into(),
                    data_type: DataType::VarChar as i32,
                    type_params: vec![crate::milvus::kv("max_length", "65535")],
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let first = first_limit(&schema, 16_384, TARGET_PAGE_BYTES) as usize;
        assert!(first >= 1);
        assert!(
            first * (65_536 + 65_535) <= TARGET_PAGE_BYTES,
            "first page of {first}"
        );
        // Then by measured bytes: 64 KiB rows give 255 a page.
        assert_eq!(
            next_limit(200, 16, 16 * 65_600, 16_384, TARGET_PAGE_BYTES),
            255
        );
    }

    #[test]
    fn page_size_follows_bytes() {
        // 3 KiB rows (768-d): 5,461 fit the target, but the limit at most doubles per page.
        assert_eq!(
            next_limit(500, 500, 500 * 3072, 16_384, TARGET_PAGE_BYTES),
            1000
        );
        assert_eq!(
            next_limit(3000, 3000, 3000 * 3072, 16_384, TARGET_PAGE_BYTES),
            5461
        );
        // 1 KiB rows reach the servers' 16,384 entities per query.
        assert_eq!(
            next_limit(10_000, 10_000, 10_000 * 1024, 16_384, TARGET_PAGE_BYTES),
            16_384
        );
        // 64 KiB rows (a 16,384-d float vector): 256 per page.
        assert_eq!(
            next_limit(1000, 1000, 1000 * 65_536, 16_384, TARGET_PAGE_BYTES),
            256
        );
        assert_eq!(
            next_limit(40, 40, 40, 50, TARGET_PAGE_BYTES),
            50,
            "never above the batch size"
        );
        assert_eq!(next_limit(5, 0, 0, 16_384, TARGET_PAGE_BYTES), 5);
        // Eight workers in one process aim at a quarter of the bytes each: 768-d pages of
        // 1,365 entities, not 5,461.
        let aim = page_bytes_for(8);
        assert_eq!(
            (page_bytes_for(1), page_bytes_for(2)),
            (TARGET_PAGE_BYTES, TARGET_PAGE_BYTES)
        );
        assert_eq!(aim, 5 * 1024 * 1024);
        assert_eq!(next_limit(3000, 3000, 3000 * 3072, 16_384, aim), 1706);
        assert_eq!(page_bytes_for(1_000), 1024 * 1024, "never below 1 MiB");
    }
}
