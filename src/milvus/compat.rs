//! What a target can hold, found before anything is written:
//! - [`schema_differences`] compares the schema a target describes for a scratch collection with
//!   the one it was asked for: older servers silently drop what their protocol does not know
//!   (Milvus 2.3.5 ignores `nullable`, default values, clustering keys and functions);
//! - [`too_old_for`] names the fields whose data type the server's version cannot serve: Milvus
//!   2.3.5 accepts a Float16Vector collection and its inserts, then its query node crashes when
//!   the collection is loaded, so this one must be known before the server is asked.

use ::milvus::proto::schema::{CollectionSchema, DataType, FieldSchema, FunctionSchema};

/// A Milvus server version (`v2.3.5`, `v2.4.1-gpu`, `2.6.0`); `None` for other servers (Milvus
/// Lite reports `milvus_lite-3.2.2`, and refuses the types it lacks when asked).
pub fn parse_version(version: &str) -> Option<(u32, u32, u32)> {
    let v = version.trim().strip_prefix('v').unwrap_or(version.trim());
    let core = v.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
    Some((
        parts.next()??,
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
    ))
}

/// The first Milvus release that serves a data type (from Milvus's API reference), for the
/// types a release before it does not refuse.
pub fn first_release(data_type: i32) -> Option<(u32, u32)> {
    match DataType::try_from(data_type).ok()? {
        DataType::Float16Vector | DataType::BFloat16Vector | DataType::SparseFloatVector => {
            Some((2, 4))
        }
        DataType::Int8Vector | DataType::Geometry | DataType::Timestamptz => Some((2, 6)),
        _ => None,
    }
}

/// A data type's name as Milvus writes it (`FloatVector`).
pub(crate) fn type_name(data_type: i32) -> String {
    DataType::try_from(data_type)
        .map(|t| t.as_str_name().to_owned())
        .unwrap_or_else(|_| format!("type {data_type}"))
}

/// The fields of `schema` a server of `version` cannot serve, each with the reason.
pub fn too_old_for(version: &str, schema: &CollectionSchema) -> Vec<String> {
    let Some((major, minor, _)) = parse_version(version) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for f in &schema.fields {
        for t in [f.data_type, f.element_type] {
            if let Some((m, n)) = first_release(t) {
                if (major, minor) < (m, n) {
                    out.push(format!(
                        "field `{}` has type {}, which Milvus serves from {m}.{n} on; the server runs {version}",
                        f.name,
                        type_name(t)
                    ));
                }
            }
        }
    }
    out
}

fn flags(f: &FieldSchema) -> Vec<(&'static str, bool)> {
    vec![
        ("primary key", f.is_primary_key),
        ("auto_id", f.auto_id),
        ("nullable", f.nullable),
        ("partition key", f.is_partition_key),
        ("clustering key", f.is_clustering_key),
        ("function output", f.is_function_output),
    ]
}

fn function_shape(f: &FunctionSchema) -> String {
    let mut params: Vec<String> = f
        .params
        .iter()
        .map(|p| format!("{}={}", p.key, p.value))
        .collect();
    params.sort();
    format!(
        "{} type {} from [{}] to [{}] {{{}}}",
        f.name,
        f.r#type,
        f.input_field_names.join(", "),
        f.output_field_names.join(", "),
        params.join(", ")
    )
}

/// What a server kept differently from what it was asked to create (empty when it kept all),
/// in what entities hold: fields, their types, params and flags, and functions. Type params the
/// server adds are not differences; params it drops or changes are. (The description is
/// compared on its own: Milvus Lite keeps none.)
pub fn schema_differences(wanted: &CollectionSchema, got: &CollectionSchema) -> Vec<String> {
    let mut out = Vec::new();
    if wanted.enable_dynamic_field != got.enable_dynamic_field {
        out.push(format!(
            "the dynamic field is {} instead of {}",
            on(got.enable_dynamic_field),
            on(wanted.enable_dynamic_field)
        ));
    }
    for w in wanted.fields.iter().filter(|f| !f.is_dynamic) {
        let Some(g) = got.fields.iter().find(|g| g.name == w.name) else {
            out.push(format!("field `{}` is missing", w.name));
            continue;
        };
        if w.data_type != g.data_type {
            out.push(format!(
                "field `{}` is {} instead of {}",
                w.name,
                type_name(g.data_type),
                type_name(w.data_type)
            ));
        }
        if w.data_type == DataType::Array as i32 && w.element_type != g.element_type {
            out.push(format!("field `{}` lost its element type", w.name));
        }
        for ((what, a), (_, b)) in flags(w).into_iter().zip(flags(g)) {
            if a != b {
                out.push(format!("field `{}`: {what} is {b} instead of {a}", w.name));
            }
        }
        if w.default_value != g.default_value {
            out.push(format!("field `{}`: the default value is not kept", w.name));
        }
        for p in &w.type_params {
            let kept = g.type_params.iter().find(|q| q.key == p.key);
            if kept.map(|q| &q.value) != Some(&p.value) {
                out.push(format!(
                    "field `{}`: param {}={} is not kept",
                    w.name, p.key, p.value
                ));
            }
        }
    }
    let mut a: Vec<String> = wanted.functions.iter().map(function_shape).collect();
    let mut b: Vec<String> = got.functions.iter().map(function_shape).collect();
    a.sort();
    b.sort();
    if a != b {
        let names: Vec<String> = wanted
            .functions
            .iter()
            .map(|f| format!("`{}`", f.name))
            .collect();
        out.push(format!("functions {} are not kept", names.join(", ")));
    }
    out
}

fn on(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::milvus::kv;
    use ::milvus::proto::schema::{value_field, ValueField};

    fn field(name: &str, t: DataType) -> FieldSchema {
        FieldSchema {
            name: name.into(),
            data_type: t as i32,
            ..Default::default()
        }
    }

    #[test]
    fn versions_parse_or_stay_unknown() {
        assert_eq!(parse_version("v2.3.5"), Some((2, 3, 5)));
        assert_eq!(parse_version("v2.3.5-lite"), Some((2, 3, 5)));
        assert_eq!(parse_version("2.6"), Some((2, 6, 0)));
        assert_eq!(parse_version("milvus_lite-3.2.2"), None);
        assert_eq!(parse_version(""), None);
    }

    #[test]
    fn old_servers_are_refused_types_they_would_crash_on() {
        let schema = CollectionSchema {
            fields: vec![
                field("id", DataType::Int64),
                field("h", DataType::Float16Vector),
                field("g", DataType::Geometry),
                field("v", DataType::FloatVector),
            ],
            ..Default::default()
        };
        let problems = too_old_for("v2.3.5", &schema);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("field `h` has type Float16Vector"));
        assert_eq!(
            too_old_for("v2.4.9", &schema).len(),
            1,
            "Geometry needs 2.6"
        );
        assert!(too_old_for("v2.6.0", &schema).is_empty());
        assert!(too_old_for("milvus_lite-3.2.2", &schema).is_empty());
    }

    #[test]
    fn what_a_server_silently_dropped_is_named() {
        let wanted = CollectionSchema {
            description: "d".into(),
            fields: vec![
                FieldSchema {
                    nullable: true,
                    default_value: Some(ValueField {
                        data: Some(value_field::Data::LongData(7)),
                    }),
                    ..field("n", DataType::Int64)
                },
                FieldSchema {
                    is_clustering_key: true,
                    type_params: vec![kv("max_length", "8")],
                    ..field("c", DataType::VarChar)
                },
            ],
            functions: vec![FunctionSchema {
                name: "bm25".into(),
                r#type: 1,
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut got = wanted.clone();
        assert!(schema_differences(&wanted, &got).is_empty());
        got.description.clear();
        assert!(
            schema_differences(&wanted, &got).is_empty(),
            "the description is compared on its own"
        );
        got.fields[1].type_params.push(kv("mmap.enabled", "false"));
        assert!(
            schema_differences(&wanted, &got).is_empty(),
            "added params are not differences"
        );
        got.fields[0].nullable = false;
        got.fields[0].default_value = None;
        got.fields[1].is_clustering_key = false;
        got.functions.clear();
        let d = schema_differences(&wanted, &got);
        assert_eq!(
            d,
            vec![
                "field `n`: nullable is false instead of true",
                "field `n`: the default value is not kept",
                "field `c`: clustering key is false instead of true",
                "functions `bm25` are not kept",
            ]
        );
    }
}
