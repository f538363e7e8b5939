//! Preflight's part in bulk import: whether each collection can be staged and imported with
//! its keys kept, and how it is written as the job's `write_mode` asks.

use crate::domain::{CollectionWrite, Problem, WriteVia};
use crate::milvus::CollectionInfo;
use crate::staging::parquet::not_importable;

/// Why `info` cannot be imported into a target whose import API answered `api`, or `None`.
pub(super) fn why_not_imported(info: &CollectionInfo, api: &Result<(), String>) -> Option<String> {
    if let Err(reason) = api {
        return Some(format!("the target has no import API ({reason})"));
    }
    if info.has_auto_id() {
        return Some(
            "its primary key is generated (auto_id), and an import cannot keep the source's keys"
                .into(),
        );
    }
    let outputs = info.function_outputs();
    info.schema
        .fields
        .iter()
        .filter(|f| !f.is_dynamic && !outputs.contains(&f.name))
        .find_map(|f| not_importable(f).map(|why| format!("field `{}`: {why}", f.name)))
}

/// How a collection is written under `mode`: `Err` is preflight's problem at `field` (the job
/// asked to import it and it cannot be).
pub(super) fn choose(
    mode: WriteVia,
    why_not: Option<String>,
    field: &str,
    qualified: &str,
) -> Result<Option<CollectionWrite>, Problem> {
    match (mode, why_not) {
        (WriteVia::Insert, _) => Ok(None),
        (_, None) => Ok(Some(CollectionWrite {
            via: WriteVia::Import,
            reason: None,
        })),
        (WriteVia::Import, Some(why)) => Err(Problem::at(
            field.to_owned(),
            format!(
                "collection `{qualified}` cannot be imported: {why}; set options.write_mode to \"auto\" to insert it (and import the rest), or to \"insert\""
            ),
        )),
        (_, Some(why)) => Ok(Some(CollectionWrite {
            via: WriteVia::Insert,
            reason: Some(why),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_refuses_what_auto_inserts_and_insert_never_asks() {
        let why = Some("its primary key is generated (auto_id)".to_owned());
        let refused = choose(
            WriteVia::Import,
            why.clone(),
            "databases[0].collections[1]",
            "db.c",
        )
        .unwrap_err();
        assert_eq!(
            refused.field.as_deref(),
            Some("databases[0].collections[1]")
        );
        assert!(refused
            .message
            .contains("cannot be imported: its primary key is generated"));
        let auto = choose(WriteVia::Auto, why, "f", "db.c").unwrap().unwrap();
        assert_eq!(auto.via, WriteVia::Insert);
        assert!(auto.reason.unwrap().contains("auto_id"));
        assert_eq!(choose(WriteVia::Insert, None, "f", "db.c").unwrap(), None);
        let imported = choose(WriteVia::Auto, None, "f", "db.c").unwrap().unwrap();
        assert_eq!((imported.via, imported.reason), (WriteVia::Import, None));
    }
}
