//! Preflight: checks both clusters and every collection before anything is written, and
//! reports every problem at once, each with the request field it concerns. It writes nothing
//! but scratch collections it drops at once (asking the target what it can hold).
//! `target.rs` holds the checks of the target itself (schema kept, plan capacity).

use std::collections::{HashMap, HashSet};

mod import;
mod target;

pub use target::Capacity;

use super::ranges::count_selected;
use super::retry::Patience;
use super::{Engine, EngineError};
use crate::domain::{
    CollectionReport, CollectionStatus, DatabaseSpec, Job, Level, Problem, Selection, WriteVia,
};
use crate::milvus::compat::type_name;
use crate::milvus::{Cluster, ClusterError, CollectionInfo, DataType, Failure};

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

/// One collection preflight found fit to migrate.
pub(super) struct Inspected {
    /// Its report, with the source's count.
    pub report: CollectionReport,
    /// Its schema and settings on the source.
    pub info: CollectionInfo,
    /// Its partitions (a partition-key collection's: as many as Milvus spreads keys over).
    pub partitions: u64,
    /// The request field that names it.
    pub field: String,
}

/// What preflight found.
#[derive(Default)]
pub(super) struct Findings {
    pub problems: Vec<Problem>,
    pub collections: Vec<Inspected>,
    /// The target's capacity, when its plan is known.
    pub capacity: Option<Capacity>,
    /// `db.collection` of the collections whose keys the server generates.
    auto_id: Vec<String>,
    /// (`db.collection`, warning) for the job log.
    pub warnings: Vec<(String, String)>,
}

/// The two clusters, as preflight reads them.
struct Sides<'a> {
    p: &'a Patience<'a>,
    source: &'a dyn Cluster,
    /// `None` for a target still to be created (the dry run of `target.new_cluster`): it holds
    /// nothing, and its checks wait until it runs.
    target: Option<&'a dyn Cluster>,
    source_dbs: Vec<String>,
    target_dbs: Vec<String>,
    target_version: String,
    /// Whether the target takes imports, asked only when the job may import.
    import_api: Option<Result<(), String>>,
    /// The job's `write_mode`.
    write_mode: WriteVia,
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

    /// `db.collection` on the target.
    fn target(&self) -> String {
        format!("{}.{}", self.db.target(), self.target_name())
    }

    fn target_name(&self) -> String {
        self.listed
            .map(|j| self.db.collections[j].target().to_owned())
            .unwrap_or_else(|| self.name.clone())
    }
}

/// Every collection the request would copy twice, or write twice into one target: refused
/// before anything is written, naming both requests' entries. Two sources written into one
/// target collection would merge (a server that keeps one entity per key even counts them as
/// copied), and one source copied twice is one collection's entry in the job twice.
fn clashes(candidates: &[Candidate<'_>]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut sources: HashMap<(&str, &str), &Candidate> = HashMap::new();
    let mut targets: HashMap<(String, String), &Candidate> = HashMap::new();
    for c in candidates {
        let source = (c.db.name.as_str(), c.name.as_str());
        if let Some(first) = sources.get(&source) {
            problems.push(Problem::at(
                c.field(),
                format!(
                    "collection `{}.{}` would be copied twice, by {} (into `{}`) and by {} (into `{}`); a job copies each source collection once: remove one of them, or start a second job for the second copy",
                    c.db.name,
                    c.name,
                    first.field(),
                    first.target(),
                    c.field(),
                    c.target()
                ),
            ));
            continue;
        }
        sources.insert(source, c);
        let target = (c.db.target().to_owned(), c.target_name());
        match targets.get(&target) {
            Some(first) => problems.push(Problem::at(
                c.entry_field("target_name"),
                format!(
                    "`{}.{}` ({}) and `{}.{}` ({}) would both be written to `{}`, merging two collections into one; give one of them another target_name (list it in its database's `collections`), or send the two databases to different target databases",
                    first.db.name,
                    first.name,
                    first.field(),
                    c.db.name,
                    c.name,
                    c.field(),
                    c.target()
                ),
            )),
            None => {
                targets.insert(target, c);
            }
        }
    }
    problems
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
        let found = self.inspect(p, job, source, Some(target)).await?;
        if !found.problems.is_empty() {
            return Err(EngineError::Preflight(found.problems));
        }
        for (collection, warning) in found.warnings {
            self.log(&job.id, Level::Warn, Some(collection), warning)
                .await;
        }
        Ok(found.collections.into_iter().map(|c| c.report).collect())
    }

    /// Which of `found`'s collections bulk import would copy, for the dry run's estimate:
    /// those the job imports, or, under `"insert"`, those `"auto"` would import (staged where
    /// the request or the deployment says).
    pub(super) async fn importable(
        &self,
        p: &Patience<'_>,
        job: &Job,
        target: Option<&dyn Cluster>,
        found: &Findings,
    ) -> Result<Vec<bool>, EngineError> {
        let o = &job.request.options;
        if o.write_mode != WriteVia::Insert {
            return Ok(found
                .collections
                .iter()
                .map(|c| {
                    c.report
                        .write
                        .as_ref()
                        .is_some_and(|w| w.via == WriteVia::Import)
                })
                .collect());
        }
        let Some(t) = target else {
            return Ok(vec![false; found.collections.len()]);
        };
        let staging = o.staging.as_deref().or(self.config.staging.as_deref());
        let api = import::usable(
            p.call(|| t.probe_import()).await?,
            staging,
            self.config.staging_read_role.is_some(),
        );
        Ok(found
            .collections
            .iter()
            .map(|c| import::why_not_imported(&c.info, &api).is_none())
            .collect())
    }

    /// Everything preflight finds, problems included (the dry run reports them all).
    pub(super) async fn inspect(
        &self,
        p: &Patience<'_>,
        job: &Job,
        source: &dyn Cluster,
        target: Option<&dyn Cluster>,
    ) -> Result<Findings, EngineError> {
        let may_import = job.request.options.write_mode != WriteVia::Insert;
        let import_api = match target.filter(|_| may_import) {
            Some(t) => Some(import::usable(
                p.call(|| t.probe_import()).await?,
                job.request.options.staging.as_deref(),
                self.config.staging_read_role.is_some(),
            )),
            None => None,
        };
        let (target_dbs, target_version) = match target {
            Some(t) => (
                p.call(|| t.list_databases()).await?,
                p.call(|| t.server_version()).await?,
            ),
            None => (Vec::new(), String::new()),
        };
        let sides = Sides {
            p,
            source,
            target,
            source_dbs: p.call(|| source.list_databases()).await?,
            target_dbs,
            target_version,
            import_api,
            write_mode: job.request.options.write_mode,
        };
        let mut found = Findings::default();
        let mut candidates = Vec::new();
        for (i, db) in job.request.databases.iter().enumerate() {
            candidates.extend(self.candidates(&sides, i, db, &mut found).await?);
        }
        // Only once every database's collections are known can two of them be seen to go to
        // one target (a database migrated whole lists its collections only here).
        found.problems.extend(clashes(&candidates));
        let mut existing: HashMap<&str, HashSet<String>> = HashMap::new();
        for c in &candidates {
            let target_db = c.db.target();
            if !existing.contains_key(target_db) {
                let names = self.existing_targets(&sides, target_db).await?;
                existing.insert(target_db, names);
            }
            self.check_collection(&sides, c, &existing[target_db], &mut found)
                .await?;
        }
        if let Some(target) = target.filter(|_| !found.auto_id.is_empty()) {
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
        if let Some((tier, cu, _)) = job.request.target.tier() {
            self.check_capacity(&sides, tier, cu, &mut found).await?;
        }
        Ok(found)
    }

    /// The collections a database entry names: the listed ones, or every collection of the
    /// source database when none is listed. A missing or empty database is a problem.
    async fn candidates<'r>(
        &self,
        sides: &Sides<'_>,
        i: usize,
        db: &'r DatabaseSpec,
        found: &mut Findings,
    ) -> Result<Vec<Candidate<'r>>, EngineError> {
        if !sides.source_dbs.contains(&db.name) {
            found.problems.push(Problem::at(
                format!("databases[{i}].name"),
                format!("source database `{}` does not exist", db.name),
            ));
            return Ok(Vec::new());
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
        Ok(candidates)
    }

    /// The target collections a database's collections go to that exist already.
    async fn existing_targets(
        &self,
        sides: &Sides<'_>,
        target_db: &str,
    ) -> Result<HashSet<String>, EngineError> {
        let Some(target) = sides
            .target
            .filter(|_| sides.target_dbs.iter().any(|d| d == target_db))
        else {
            return Ok(HashSet::new());
        };
        Ok(sides
            .p
            .call(|| target.list_collections(target_db))
            .await?
            .into_iter()
            .collect())
    }

    /// The source's count of what the job copies of a collection: all of it, or the subset
    /// its filter and partitions select. `None` (with a problem at the filter) when the
    /// source refuses the filter.
    async fn count_selected(
        &self,
        sides: &Sides<'_>,
        c: &Candidate<'_>,
        info: &CollectionInfo,
        selection: Selection<'_>,
        found: &mut Findings,
    ) -> Result<Option<u64>, EngineError> {
        let (db, name) = (&c.db.name, &c.name);
        match count_selected(sides.p, sides.source, db, name, info, selection).await {
            Err(EngineError::Cluster(ClusterError::Call {
                failure: Failure::Permanent,
                detail,
                ..
            })) if selection.filter.is_some() => {
                found.problems.push(Problem::at(
                    c.entry_field("filter"),
                    format!("the source refused the filter on `{db}.{name}`: {detail}"),
                ));
                Ok(None)
            }
            counted => counted.map(Some),
        }
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
            found.auto_id.push(qualified.clone());
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
        let selection = c
            .listed
            .map(|j| c.db.collections[j].selection())
            .unwrap_or_default();
        let partitions = if info.has_partition_key() {
            if selection.partitions.is_some() {
                found.problems.push(Problem::at(
                    c.entry_field("partitions"),
                    format!("collection `{db}.{name}` has a partition key, so its partitions are the key's buckets and cannot be picked; select by a filter on the key field instead"),
                ));
                return Ok(());
            }
            info.num_partitions.max(1) as u64
        } else {
            let all = sides
                .p
                .call(|| sides.source.list_partitions(db, name))
                .await?;
            let picked = selection.partitions.unwrap_or_default();
            let missing: Vec<Problem> = picked
                .iter()
                .enumerate()
                .filter(|(_, p)| !all.contains(p))
                .map(|(k, p)| {
                    Problem::at(
                        c.entry_field(&format!("partitions[{k}]")),
                        format!(
                            "partition `{p}` does not exist in source collection `{db}.{name}`"
                        ),
                    )
                })
                .collect();
            if !missing.is_empty() {
                found.problems.extend(missing);
                return Ok(());
            }
            all.iter().filter(|p| selection.holds(p)).count() as u64
        };
        let Some(count) = self
            .count_selected(sides, c, &info, selection, found)
            .await?
        else {
            return Ok(());
        };
        let report = CollectionReport {
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
            repairs: Vec::new(),
            repaired_ranges: 0,
            ranges_counted: None,
            write: None,
        };
        let report = match &sides.import_api {
            Some(api) => {
                let why_not = import::why_not_imported(&info, api);
                match import::choose(sides.write_mode, why_not, &c.field(), &qualified) {
                    Ok(write) => {
                        if let Some(why) = write.as_ref().and_then(|w| w.reason.as_ref()) {
                            found.warnings.push((
                                qualified.clone(),
                                format!("inserted, not imported: {why}"),
                            ));
                        }
                        CollectionReport { write, ..report }
                    }
                    Err(problem) => {
                        found.problems.push(problem);
                        return Ok(());
                    }
                }
            }
            None => report,
        };
        found.collections.push(Inspected {
            report,
            info,
            partitions,
            field: c.field(),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::CollectionSpec;

    fn db(name: &str, target: Option<&str>, listed: &[(&str, Option<&str>)]) -> DatabaseSpec {
        DatabaseSpec {
            name: name.into(),
            target_name: target.map(str::to_owned),
            collections: listed
                .iter()
                .map(|(n, t)| CollectionSpec {
                    target_name: t.map(str::to_owned),
                    ..CollectionSpec::named(*n)
                })
                .collect(),
        }
    }

    /// The candidates of `dbs`, each database's unlisted collections given in `found`.
    fn candidates<'a>(dbs: &'a [DatabaseSpec], found: &[&[&str]]) -> Vec<Candidate<'a>> {
        let mut out = Vec::new();
        for (i, d) in dbs.iter().enumerate() {
            if d.collections.is_empty() {
                out.extend(found[i].iter().map(|n| Candidate {
                    db_index: i,
                    db: d,
                    name: (*n).into(),
                    listed: None,
                }));
            } else {
                out.extend((0..d.collections.len()).map(|j| Candidate {
                    db_index: i,
                    db: d,
                    name: d.collections[j].name.clone(),
                    listed: Some(j),
                }));
            }
        }
        out
    }

    #[test]
    fn two_whole_databases_into_one_target_database_clash_on_a_shared_name() {
        // GIVEN db3 and db4, migrated whole into merged2, both holding `same`
        let dbs = [
            db("db3", Some("merged2"), &[]),
            db("db4", Some("merged2"), &[]),
        ];
        let c = candidates(&dbs, &[&["only3", "same"], &["same"]]);
        // WHEN the expanded lists are checked
        let problems = clashes(&c);
        // THEN the second is refused, naming both sources and the target
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(
            problems[0].field.as_deref(),
            Some("databases[1].collections")
        );
        let m = &problems[0].message;
        assert!(
            m.contains("`db3.same` (databases[0].name)")
                && m.contains("`db4.same` (databases[1].name)")
                && m.contains("`merged2.same`"),
            "{m}"
        );
    }

    #[test]
    fn a_listed_rename_onto_a_collection_another_database_creates_clashes() {
        // GIVEN db3 migrated whole into m (it holds `x`), and db4 listing `y` renamed to `x` in m
        let dbs = [
            db("db3", Some("m"), &[]),
            db("db4", Some("m"), &[("y", Some("x"))]),
        ];
        let problems = clashes(&candidates(&dbs, &[&["x"], &[]]));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(
            problems[0].field.as_deref(),
            Some("databases[1].collections[0].target_name")
        );
        // AND one database listed twice copies its collection twice
        let dbs = [db("db3", None, &[]), db("db3", Some("copy"), &[])];
        let problems = clashes(&candidates(&dbs, &[&["a"], &["a"]]));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].field.as_deref(), Some("databases[1].name"));
        assert!(problems[0].message.contains("copied twice"), "{problems:?}");
        // AND distinct targets do not clash
        let dbs = [
            db("a", Some("t"), &[]),
            db("b", Some("t"), &[("same", Some("same_b"))]),
        ];
        assert!(clashes(&candidates(&dbs, &[&["same"], &[]])).is_empty());
    }
}
