//! Pages written as a Parquet file a Milvus or Zilliz Cloud import reads: one column per
//! field of the target's schema, under the field's name, one row group per page.
//!
//! The encodings are the ones Milvus's Parquet import takes (measured on 2.3.5, see
//! `docs/IMPORT.md`): Int8/Int16 as annotated INT32, VarChar and JSON as UTF-8 strings, the
//! dynamic field as a `$meta` JSON string, FloatVector as `list<float32>`, BinaryVector as
//! `binary`, Array as a list of its element type. Values are checked against `max_length` and
//! `max_capacity` first, since an import does not check them the way an insert does.

use std::io::Write;
use std::sync::Arc;

use ::milvus::proto::schema::{
    field_data, scalar_field, vector_field, CollectionSchema, DataType, FieldData, FieldSchema,
    ScalarField,
};
use parquet::data_type::{
    BoolType, ByteArray, ByteArrayType, DoubleType, FloatType, Int32Type, Int64Type,
};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::{SerializedColumnWriter, SerializedFileWriter};
use parquet::schema::types::Type;

use crate::milvus::rows::scalar_len;
use crate::milvus::Batch;

/// The column Milvus imports a dynamic field's values from.
pub const DYNAMIC_COLUMN: &str = "$meta";

/// A page that cannot be staged.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// A value the target would refuse on insert, which an import would take.
    #[error("field `{field}`: {problem}")]
    Value {
        /// The field.
        field: String,
        /// What is wrong, with the entity's key.
        problem: String,
    },
    /// The page lacks a column of the schema, or has one of another type.
    #[error("column `{0}`: {1}")]
    Column(String, String),
    /// The Parquet writer failed (the disk, most likely).
    #[error("writing Parquet failed: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
}

/// Why a field cannot be imported, or `None` when it can. An import takes only the encodings
/// above; nullable fields and newer vector types are inserted instead.
pub fn not_importable(field: &FieldSchema) -> Option<String> {
    let t = DataType::try_from(field.data_type).unwrap_or(DataType::None);
    if field.nullable {
        return Some("it is nullable (an import file cannot mark a null)".into());
    }
    match t {
        DataType::Bool
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::Float
        | DataType::Double
        | DataType::VarChar
        | DataType::Json
        | DataType::FloatVector
        | DataType::BinaryVector => None,
        DataType::Array => {
            let e = DataType::try_from(field.element_type).unwrap_or(DataType::None);
            match e {
                DataType::Bool
                | DataType::Int8
                | DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::Float
                | DataType::Double
                | DataType::VarChar => None,
                _ => Some(format!("an Array of {} is not staged", e.as_str_name())),
            }
        }
        _ => Some(format!(
            "its type {} is not staged for import",
            crate::milvus::compat::type_name(field.data_type)
        )),
    }
}

/// One column of the file: the field it holds and how it is written.
#[derive(Debug, Clone)]
struct Column {
    name: String,
    data_type: DataType,
    element_type: DataType,
    max_length: Option<usize>,
    max_capacity: Option<usize>,
}

/// A Parquet file being written, a page at a time.
pub struct ParquetFile<W: Write + Send> {
    writer: SerializedFileWriter<W>,
    columns: Vec<Column>,
    primary: String,
    rows: u64,
}

fn param(field: &FieldSchema, key: &str) -> Option<usize> {
    field
        .type_params
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.trim().parse().ok())
}

/// The Parquet primitive for a Milvus scalar type, with its annotation.
fn primitive(name: &str, t: DataType) -> String {
    match t {
        DataType::Bool => format!("required boolean {name};"),
        DataType::Int8 => format!("required int32 {name} (INTEGER(8,true));"),
        DataType::Int16 => format!("required int32 {name} (INTEGER(16,true));"),
        DataType::Int32 => format!("required int32 {name};"),
        DataType::Int64 => format!("required int64 {name};"),
        DataType::Float => format!("required float {name};"),
        DataType::Double => format!("required double {name};"),
        _ => format!("required binary {name} (STRING);"),
    }
}

fn list(name: &str, element: &str) -> String {
    format!("required group {name} (LIST) {{ repeated group list {{ {element} }} }}")
}

impl<W: Write + Send> ParquetFile<W> {
    /// A file for `schema`'s fields (less `skip`, the fields the target computes) written to
    /// `out`.
    pub fn new(schema: &CollectionSchema, skip: &[String], out: W) -> Result<Self, StageError> {
        let mut columns = Vec::new();
        let mut primary = String::new();
        for f in &schema.fields {
            if skip.contains(&f.name) || f.is_dynamic {
                continue;
            }
            if let Some(why) = not_importable(f) {
                return Err(StageError::Column(f.name.clone(), why));
            }
            if f.is_primary_key {
                primary = f.name.clone();
            }
            columns.push(Column {
                name: f.name.clone(),
                data_type: DataType::try_from(f.data_type).unwrap_or(DataType::None),
                element_type: DataType::try_from(f.element_type).unwrap_or(DataType::None),
                max_length: param(f, "max_length"),
                max_capacity: param(f, "max_capacity"),
            });
        }
        if schema.enable_dynamic_field {
            columns.push(Column {
                name: DYNAMIC_COLUMN.into(),
                data_type: DataType::Json,
                element_type: DataType::None,
                max_length: None,
                max_capacity: None,
            });
        }
        // Field names go into the message as they are: Milvus names are letters, digits and
        // underscores, and `$meta`, which the parser takes too.
        let fields: Vec<String> = columns
            .iter()
            .map(|c| {
                let name = &c.name;
                match c.data_type {
                    DataType::FloatVector => list(name, "required float element;"),
                    DataType::BinaryVector => format!("required binary {name};"),
                    DataType::Array => list(name, &primitive("element", c.element_type)),
                    t => primitive(name, t),
                }
            })
            .collect();
        let message = format!("message schema {{ {} }}", fields.join(" "));
        let parsed: Type = parquet::schema::parser::parse_message_type(&message)?;
        let props = WriterProperties::builder()
            .set_dictionary_enabled(false)
            .set_statistics_enabled(EnabledStatistics::None)
            .build();
        let writer = SerializedFileWriter::new(out, Arc::new(parsed), Arc::new(props))?;
        Ok(Self {
            writer,
            columns,
            primary,
            rows: 0,
        })
    }

    /// Entities written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Writes one page as a row group, after checking its values against the schema's limits.
    pub fn append(&mut self, page: &Batch) -> Result<(), StageError> {
        if page.rows == 0 {
            return Ok(());
        }
        let keys = page
            .fields
            .iter()
            .find(|f| f.field_name == self.primary)
            .and_then(crate::milvus::batch::primary_keys)
            .unwrap_or_default();
        let mut found = Vec::with_capacity(self.columns.len());
        for c in &self.columns {
            let data = page
                .fields
                .iter()
                .find(|f| f.field_name == c.name || (c.name == DYNAMIC_COLUMN && f.is_dynamic))
                .ok_or_else(|| {
                    StageError::Column(c.name.clone(), "missing from the page".into())
                })?;
            check_limits(c, data, &keys)?;
            found.push(data);
        }
        let mut group = self.writer.next_row_group()?;
        for (c, data) in self.columns.iter().zip(found) {
            let mut out = group
                .next_column()?
                .ok_or_else(|| StageError::Column(c.name.clone(), "no column to write".into()))?;
            write_column(c, data, page.rows, &mut out)?;
            out.close()?;
        }
        group.close()?;
        self.rows += page.rows as u64;
        Ok(())
    }

    /// Ends the file (its footer) and hands back what it was written to.
    pub fn finish(self) -> Result<W, StageError> {
        Ok(self.writer.into_inner()?)
    }
}

fn wrong(c: &Column, what: &str) -> StageError {
    StageError::Column(
        c.name.clone(),
        format!("the page holds {what}, not {:?}", c.data_type),
    )
}

/// A VarChar value over `max_length` bytes, or an Array over `max_capacity` elements, named
/// with its entity's key.
fn check_limits(
    c: &Column,
    data: &FieldData,
    keys: &[crate::domain::Cursor],
) -> Result<(), StageError> {
    let key = |i: usize| {
        keys.get(i)
            .map_or_else(|| format!("row {i}"), |k| format!("key {k}"))
    };
    let Some(field_data::Field::Scalars(s)) = &data.field else {
        return Ok(());
    };
    match &s.data {
        Some(scalar_field::Data::StringData(d)) => {
            if let Some(max) = c.max_length {
                if let Some(i) = d.data.iter().position(|v| v.len() > max) {
                    return Err(StageError::Value {
                        field: c.name.clone(),
                        problem: format!(
                            "the value at {} is {} bytes, over its max_length {max}",
                            key(i),
                            d.data[i].len()
                        ),
                    });
                }
            }
        }
        Some(scalar_field::Data::ArrayData(d)) => {
            for (i, element) in d.data.iter().enumerate() {
                let n = element.data.as_ref().map_or(0, scalar_len);
                if c.max_capacity.is_some_and(|max| n > max) {
                    return Err(StageError::Value {
                        field: c.name.clone(),
                        problem: format!(
                            "the array at {} has {n} elements, over its max_capacity {}",
                            key(i),
                            c.max_capacity.unwrap_or_default()
                        ),
                    });
                }
                if let (Some(max), Some(scalar_field::Data::StringData(s))) =
                    (c.max_length, &element.data)
                {
                    if s.data.iter().any(|v| v.len() > max) {
                        return Err(StageError::Value {
                            field: c.name.clone(),
                            problem: format!(
                                "an element of the array at {} is over its max_length {max}",
                                key(i)
                            ),
                        });
                    }
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Repetition and definition levels of a required list column: each list's first element
/// starts a row (0) and the rest repeat (1); an empty list is one undefined slot.
fn list_levels(lengths: impl Iterator<Item = usize>) -> (Vec<i16>, Vec<i16>) {
    let (mut def, mut rep) = (Vec::new(), Vec::new());
    for n in lengths {
        if n == 0 {
            def.push(0);
            rep.push(0);
            continue;
        }
        for j in 0..n {
            def.push(1);
            rep.push(i16::from(j > 0));
        }
    }
    (def, rep)
}

fn strings(values: impl Iterator<Item = Vec<u8>>) -> Vec<ByteArray> {
    values.map(ByteArray::from).collect()
}

fn write_column(
    c: &Column,
    data: &FieldData,
    rows: usize,
    out: &mut SerializedColumnWriter<'_>,
) -> Result<(), StageError> {
    use scalar_field::Data as S;
    match &data.field {
        Some(field_data::Field::Scalars(s)) => {
            let Some(values) = &s.data else {
                return Err(wrong(c, "no values"));
            };
            match (c.data_type, values) {
                (DataType::Array, S::ArrayData(a)) => write_array(c, &a.data, out),
                (_, S::BoolData(d)) => {
                    out.typed::<BoolType>().write_batch(&d.data, None, None)?;
                    Ok(())
                }
                (_, S::IntData(d)) => {
                    out.typed::<Int32Type>().write_batch(&d.data, None, None)?;
                    Ok(())
                }
                (_, S::LongData(d)) => {
                    out.typed::<Int64Type>().write_batch(&d.data, None, None)?;
                    Ok(())
                }
                (_, S::FloatData(d)) => {
                    out.typed::<FloatType>().write_batch(&d.data, None, None)?;
                    Ok(())
                }
                (_, S::DoubleData(d)) => {
                    out.typed::<DoubleType>().write_batch(&d.data, None, None)?;
                    Ok(())
                }
                (_, S::StringData(d)) => {
                    let v = strings(d.data.iter().map(|s| s.as_bytes().to_vec()));
                    out.typed::<ByteArrayType>().write_batch(&v, None, None)?;
                    Ok(())
                }
                (_, S::JsonData(d)) => {
                    let v = strings(d.data.iter().cloned());
                    out.typed::<ByteArrayType>().write_batch(&v, None, None)?;
                    Ok(())
                }
                _ => Err(wrong(c, "another scalar type")),
            }
        }
        Some(field_data::Field::Vectors(v)) => {
            let dim = usize::try_from(v.dim).unwrap_or(0);
            match &v.data {
                Some(vector_field::Data::FloatVector(f)) if dim > 0 => {
                    let (def, rep) = list_levels(std::iter::repeat_n(dim, rows));
                    out.typed::<FloatType>()
                        .write_batch(&f.data, Some(&def), Some(&rep))?;
                    Ok(())
                }
                Some(vector_field::Data::BinaryVector(b)) if dim > 0 => {
                    let width = dim.div_ceil(8);
                    let v = strings(b.chunks(width).map(<[u8]>::to_vec));
                    out.typed::<ByteArrayType>().write_batch(&v, None, None)?;
                    Ok(())
                }
                _ => Err(wrong(c, "another vector type")),
            }
        }
        _ => Err(wrong(c, "no values it can stage")),
    }
}

/// An Array column: every entity's elements, flattened, with the list levels.
fn write_array(
    c: &Column,
    arrays: &[ScalarField],
    out: &mut SerializedColumnWriter<'_>,
) -> Result<(), StageError> {
    use scalar_field::Data as S;
    let lens = arrays.iter().map(|a| a.data.as_ref().map_or(0, scalar_len));
    let (def, rep) = list_levels(lens);
    let each = |f: &dyn Fn(&S) -> bool| arrays.iter().filter_map(|a| a.data.as_ref()).all(f);
    macro_rules! flat {
        ($variant:ident, $ty:ty, $map:expr) => {{
            if !each(&|d| matches!(d, S::$variant(_))) {
                return Err(wrong(c, "arrays of another element type"));
            }
            let values: Vec<_> = arrays
                .iter()
                .filter_map(|a| match &a.data {
                    Some(S::$variant(d)) => Some(d.data.iter().map($map)),
                    _ => None,
                })
                .flatten()
                .collect();
            out.typed::<$ty>()
                .write_batch(&values, Some(&def), Some(&rep))?;
        }};
    }
    match c.element_type {
        DataType::Bool => flat!(BoolData, BoolType, |v: &bool| *v),
        DataType::Int8 | DataType::Int16 | DataType::Int32 => {
            flat!(IntData, Int32Type, |v: &i32| *v)
        }
        DataType::Int64 => flat!(LongData, Int64Type, |v: &i64| *v),
        DataType::Float => flat!(FloatData, FloatType, |v: &f32| *v),
        DataType::Double => flat!(DoubleData, DoubleType, |v: &f64| *v),
        DataType::VarChar => flat!(StringData, ByteArrayType, |v: &String| ByteArray::from(
            v.as_bytes().to_vec()
        )),
        _ => return Err(wrong(c, "arrays of an element type that is not staged")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_levels_mark_each_rows_first_element_and_an_empty_list() {
        let (def, rep) = list_levels([2, 0, 1].into_iter());
        assert_eq!(def, vec![1, 1, 0, 1]);
        assert_eq!(rep, vec![0, 1, 0, 0]);
    }
}
