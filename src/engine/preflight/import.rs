//! Preflight's part in bulk import: whether each collection can be staged and imported with
//! its keys kept, and how it is written as the job's `write_mode` asks.

use crate::domain::{CollectionWrite, Problem, WriteVia};
use crate::milvus::{CollectionInfo, ImportSource};
use crate::staging::parquet::not_importable;
use crate::staging::Location;

/// Whether the target can import what the job stages: its import API (`probe`) must read
/// where `staging` puts files, and a target that reads S3 needs credentials made for it.
pub(super) fn usable(
    probe: Result<ImportSource, String>,
    staging: Option<&str>,
    read_role: bool,
) -> Result<(), String> {
    let source = probe.map_err(|reason| format!("the target has no import API ({reason})"))?;
    let in_s3 = staging
        .and_then(|s| Location::parse(s).ok())
        .is_some_and(|l| l.is_s3());
    match (source, in_s3) {
        (ImportSource::ServerFiles, true) => Err(
            "the target is a self-hosted Milvus, which imports files from its own storage by path: give options.staging as a directory its server can read".into(),
        ),
        (ImportSource::ObjectStorage, false) => Err(
            "the target is a Zilliz Cloud cluster, which imports files from object storage: give options.staging as s3://bucket/prefix".into(),
        ),
        (ImportSource::ObjectStorage, true) if !read_role => Err(
            "the target reads staged files from S3 with credentials this deployment cannot make: set VECMIGRATE_STAGING_READ_ROLE_ARN to a role it may assume that can read the staging bucket (template.yaml creates one)".into(),
        ),
        _ => Ok(()),
    }
}

/// Why `info` cannot be imported into a target whose import API answered `api`, or `None`.
pub(super) fn why_not_imported(info: &CollectionInfo, api: &Result<(), String>) -> Option<String> {
    if let Err(reason) = api {
        return Some(reason.clone());
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
    fn the_target_must_read_where_files_are_staged() {
        let (dir, s3) = (Some("/srv/stage"), Some("s3://stage-b/p"));
        assert!(usable(Ok(ImportSource::ServerFiles), dir, false).is_ok());
        assert!(usable(Ok(ImportSource::ObjectStorage), s3, true).is_ok());
        let no_api = usable(Err("UNIMPLEMENTED".into()), dir, true).unwrap_err();
        assert!(no_api.contains("no import API (UNIMPLEMENTED)"), "{no_api}");
        let self_hosted = usable(Ok(ImportSource::ServerFiles), s3, true).unwrap_err();
        assert!(
            self_hosted.contains("directory its server can read"),
            "{self_hosted}"
        );
        let cloud = usable(Ok(ImportSource::ObjectStorage), dir, true).unwrap_err();
        assert!(cloud.contains("s3://bucket/prefix"), "{cloud}");
        let no_role = usable(Ok(ImportSource::ObjectStorage), s3, false).unwrap_err();
        assert!(
            no_role.contains("VECMIGRATE_STAGING_READ_ROLE_ARN"),
            "{no_role}"
        );
    }

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
