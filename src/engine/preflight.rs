//! Preflight: checks both clusters and every collection before anything is written, and
//! reports every problem at once, each with the request field it concerns. It writes nothing
//! but scratch collections it drops at once (asking the target what it can hold).

use std::collections::HashSet;

use super::retry::Patience;
use super::{Engine, EngineError};
use crate::domain::cluster::printable;
use crate::domain::{CollectionReport, CollectionStatus, DatabaseSpec, Job, Level, Problem};
use crate::milvus::compat::{schema_differences, too_old_for, type_name};
use crate::milvus::{Cluster, CollectionInfo, DataType};

/// Data types the copy passes through unchanged.
fn supported(data_type: i32) -> bool {
    matches!(
        DataType::try_from(data_type),
        Ok(DataType::Bool
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Float
            | DataType::Double
            | DataType::VarChar
            | DataType::String
            | DataType::Array
            | DataType::Json
            | DataType::Geometry
            | DataType::Timestamptz
            | DataType::BinaryVector
            | DataType::FloatVector
            | DataType::Float16Vector
            | DataType::BFloat16Vector
            | DataType::SparseFloatVector
            | DataType::Int8Vector)
    )
}

/// What the copy cannot carry in a collection's schema.
fn schema_problems(field: &str, database: &str, name: &str, info: &CollectionInfo) -> Vec<Problem> {
    let what = format!("collection `{database}.{name}`");
    let mut problems = Vec::new();
    for f in &info.schema.fields {
        if !supported(f.data_type) && !f.is_dynamic {
            problems.push(Problem::at(
                field,
                format!(
                    "{what}: field `{}` has type {}, which vecmigrate cannot copy yet",
                    f.name,
                    type_name(f.data_type)
                ),
            ));
        }
    }
    if !info.schema.struct_array_fields.is_empty() {
        problems.push(Problem::at(
            field,
            format!("{what}: struct array fields cannot be copied yet"),
        ));
    }
    match info.primary_field() {
        None => problems.push(Problem::at(field, format!("{what} has no primary key"))),
        Some(pk)
            if !matches!(
                DataType::try_from(pk.data_type),
                Ok(DataType::Int64 | DataType::VarChar)
            ) =>
        {
            problems.push(Problem::at(
                field,
                format!(
                    "{what}: primary key `{}` has type {}; only Int64 and VarChar keys can be paged",
                    pk.name,
                    type_name(pk.data_type)
                ),
            ))
        }
        Some(_) => {}
    }
    problems
}

/// What preflight has found so far.
#[derive(Default)]
struct Findings {
    problems: Vec<Problem>,
    reports: Vec<CollectionReport>,
    /// `db.collection` of the collections whose keys the server generates.
    auto_id: Vec<String>,
    /// (`db.collection`, warning) for the job log.
    warnings: Vec<(String, String)>,
}

/// The two clusters, as preflight reads them.
struct Sides<'a> {
    p: &'a Patience<'a>,
    source: &'a dyn Cluster,
    target: &'a dyn Cluster,
    source_dbs: Vec<String>,
    target_dbs: Vec<String>,
    target_version: String,
}

/// One collection to check: where it is in the request and where it goes.
struct Candidate<'a> {
    db_index: usize,
    db: &'a DatabaseSpec,
    name: String,
    /// Its index in `db.collections`, when it is listed (not just found in the database).
    listed: Option<usize>,
}

impl Candidate<'_> {
    /// The request field that names the collection (or its database).
    fn field(&self) -> String {
        match self.listed {
            Some(j) => format!("databases[{}].collections[{j}].name", self.db_index),
            None => format!("databases[{}].name", self.db_index),
        }
    }

    /// A field of the collection's entry in the request (`target_name`, `schema_overrides`).
    fn entry_field(&self, name: &str) -> String {
        match self.listed {
            Some(j) => format!("databases[{}].collections[{j}].{name}", self.db_index),
            None => format!("databases[{}].collections", self.db_index),
        }
    }

    fn target_name(&self) -> String {
        self.listed
            .map(|j| self.db.collections[j].target().to_owned())
            .unwrap_or_else(|| self.name.clone())
    }
}

impl Engine {
    /// Checks both clusters and every collection; writes nothing. Reports every problem at once.
    pub(super) async fn preflight(
        &self,
        p: &Patience<'_>,
        job: &Job,
        source: &dyn Cluster,
        target: &dyn Cluster,
    ) -> Result<Vec<CollectionReport>, EngineError> {
        let sides = Sides {
            p,
            source,
            target,
            source_dbs: p.call(|| source.list_databases()).await?,
            target_dbs: p.call(|| target.list_databases()).await?,
            target_version: p.call(|| target.server_version()).await?,
        };
        let mut found = Findings::default();
        for (i, db) in job.request.databases.iter().enumerate() {
            self.check_database(&sides, i, db, &mut found).await?;
        }
        if !found.auto_id.is_empty() {
            let p = sides.p;
            // Keys are preserved or the collection is not migrated: ask the target whether it
            // keeps explicit keys in an auto_id collection (on a scratch collection).
            if let Err(reason) = p.call(|| target.probe_explicit_auto_id()).await? {
                found.problems.push(Problem::general(format!(
                    "{} generate their primary keys (auto_id), and the target cannot keep the source's keys: it refused explicit keys in an auto_id collection even with the `allow_insert_auto_id` property ({reason}); migrate to a Milvus version that supports `allow_insert_auto_id`, as copying would renumber every entity",
                    found.auto_id.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
                )));
            }
        }
        if !found.problems.is_empty() {
            return Err(EngineError::Preflight(found.problems));
        }
        for (collection, warning) in found.warnings {
            self.log(&job.id, Level::Warn, Some(collection), warning)
                .await;
        }
        Ok(found.reports)
    }

    async fn check_database(
        &self,
        sides: &Sides<'_>,
        i: usize,
        db: &DatabaseSpec,
        found: &mut Findings,
    ) -> Result<(), EngineError> {
        if !sides.source_dbs.contains(&db.name) {
            found.problems.push(Problem::at(
                format!("databases[{i}].name"),
                format!("source database `{}` does not exist", db.name),
            ));
            return Ok(());
        }
        let candidates: Vec<Candidate> = if db.collections.is_empty() {
            let mut all = sides
                .p
                .call(|| sides.source.list_collections(&db.name))
                .await?;
            all.sort();
            all.into_iter()
                .map(|name| Candidate {
                    db_index: i,
                    db,
                    name,
                    listed: None,
                })
                .collect()
        } else {
            (0..db.collections.len())
                .map(|j| Candidate {
                    db_index: i,
                    db,
                    name: db.collections[j].name.clone(),
                    listed: Some(j),
                })
                .collect()
        };
        if candidates.is_empty() {
            found.problems.push(Problem::at(
                format!("databases[{i}]"),
                format!(
                    "source database `{}` has no collections to migrate",
                    db.name
                ),
            ));
        }
        let existing_targets: HashSet<String> = if sides.target_dbs.iter().any(|d| d == db.target())
        {
            sides
                .p
                .call(|| sides.target.list_collections(db.target()))
                .await?
                .into_iter()
                .collect()
        } else {
            HashSet::new()
        };
        for c in candidates {
            self.check_collection(sides, &c, &existing_targets, found)
                .await?;
        }
        Ok(())
    }

    async fn check_collection(
        &self,
        sides: &Sides<'_>,
        c: &Candidate<'_>,
        existing_targets: &HashSet<String>,
        found: &mut Findings,
    ) -> Result<(), EngineError> {
        let (db, name) = (&c.db.name, &c.name);
        let Some(info) = sides
            .p
            .call(|| sides.source.describe_collection(db, name))
            .await?
        else {
            found.problems.push(Problem::at(
                c.field(),
                format!("collection `{db}.{name}` does not exist on the source"),
            ));
            return Ok(());
        };
        found
            .problems
            .extend(schema_problems(&c.field(), db, name, &info));
        let overrides = c
            .listed
            .and_then(|j| c.db.collections[j].schema_overrides.as_ref());
        let wanted = match overrides.map(|o| info.with_overrides(o)) {
            Some(Err((field, problem))) => {
                let path = c.entry_field(&format!("schema_overrides.{field}"));
                found.problems.push(Problem::at(path, problem));
                info.clone()
            }
            Some(Ok(wanted)) => wanted,
            None => info.clone(),
        };
        let description_path = overrides
            .is_some_and(|o| o.description.is_some())
            .then(|| c.entry_field("schema_overrides.description"));
        let (lost, lesser) = self
            .target_keeps(sides, c, &wanted, description_path)
            .await?;
        found.problems.extend(lost);
        let qualified = format!("{db}.{name}");
        found
            .warnings
            .extend(lesser.into_iter().map(|w| (qualified.clone(), w)));
        if info.has_auto_id() {
            found.auto_id.push(qualified);
        }
        let target_name = c.target_name();
        if existing_targets.contains(&target_name) {
            found.problems.push(Problem::at(
                c.entry_field("target_name"),
                format!(
                    "collection `{target_name}` already exists in target database `{}`; set target_name for `{db}.{name}` to migrate it under another name, or drop it on the target",
                    c.db.target()
                ),
            ));
        }
        if !sides.p.call(|| sides.source.is_loaded(db, name)).await? {
            found.problems.push(Problem::at(
                c.field(),
                format!(
                    "collection `{db}.{name}` is not loaded on the source, so it cannot be read; load it (pymilvus: client.load_collection(\"{name}\")) and start the job again"
                ),
            ));
            return Ok(());
        }
        let count = sides.p.call(|| sides.source.count(db, name)).await?;
        found.reports.push(CollectionReport {
            database: db.clone(),
            source: name.clone(),
            target_database: c.db.target().to_owned(),
            target: target_name,
            status: CollectionStatus::Pending,
            source_count: Some(count),
            target_count: None,
            matches: None,
            remigrations: 0,
            mismatches: Vec::new(),
            content: None,
            indexes: Vec::new(),
        });
        Ok(())
    }

    /// Whether the target can hold a collection exactly as `wanted`: asked on a scratch
    /// collection that is dropped again (old servers silently drop what they do not know), after
    /// the types its version cannot serve are ruled out. Returns the problems, and warnings
    /// about what is lost that entities do not hold (a description the target does not keep).
    /// `description_path` names a description override, whose loss is a problem.
    async fn target_keeps(
        &self,
        sides: &Sides<'_>,
        c: &Candidate<'_>,
        wanted: &CollectionInfo,
        description_path: Option<String>,
    ) -> Result<(Vec<Problem>, Vec<String>), EngineError> {
        let version = &sides.target_version;
        let what = format!(
            "collection `{}.{}`: the target cannot hold it unchanged",
            c.db.name, c.name
        );
        let old = too_old_for(version, &wanted.schema);
        if !old.is_empty() {
            let problem = Problem::at(c.field(), format!("{what}: {}", old.join("; ")));
            return Ok((vec![problem], Vec::new()));
        }
        let mut sent = wanted.schema.clone();
        sent.fields.retain(|f| !f.is_dynamic);
        let kept = match sides.p.call(|| sides.target.probe_schema(wanted)).await? {
            Err(refused) => {
                let problem = Problem::at(
                    c.field(),
                    format!("{what}: it refuses the schema ({refused})"),
                );
                return Ok((vec![problem], Vec::new()));
            }
            Ok(kept) => kept,
        };
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        let lost = schema_differences(&sent, &kept);
        if !lost.is_empty() {
            problems.push(Problem::at(
                c.field(),
                format!("{what} ({version}): {}", lost.join("; ")),
            ));
        }
        if kept.description != sent.description {
            match description_path {
                Some(path) => problems.push(Problem::at(
                    path,
                    format!(
                        "the target ({version}) does not keep collection descriptions (it keeps \"{}\")",
                        printable(&kept.description)
                    ),
                )),
                None => warnings.push(format!(
                    "the target ({version}) does not keep the collection's description \"{}\"; everything else of the schema is kept",
                    printable(&sent.description)
                )),
            }
        }
        Ok((problems, warnings))
    }
}
