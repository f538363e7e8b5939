//! Plan: preflight (check everything, write nothing), schema (create target databases,
//! collections and partitions, recording each before it is made), then cut the copy into tasks.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::Utc;

use super::{retry_transient, source_collection, Engine, EngineError, Handled};
use crate::domain::{CollectionReport, CollectionStatus, Job, Level, Phase, Task};
use crate::milvus::batch::first_limit;
use crate::milvus::compat::{schema_differences, too_old_for};
use crate::milvus::{Cluster, CollectionInfo, DataType, Role};
use crate::queue::WorkMessage;

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

fn type_name(data_type: i32) -> String {
    DataType::try_from(data_type)
        .map(|t| format!("{t:?}"))
        .unwrap_or_else(|_| format!("type {data_type}"))
}

/// Problems found in a collection's schema that the copy cannot carry.
fn schema_problems(database: &str, name: &str, info: &CollectionInfo) -> Vec<String> {
    let mut problems = Vec::new();
    for f in &info.schema.fields {
        if !supported(f.data_type) && !f.is_dynamic {
            problems.push(format!(
                "collection `{database}.{name}`: field `{}` has type {}, which vecmigrate cannot copy yet",
                f.name,
                type_name(f.data_type)
            ));
        }
    }
    if !info.schema.struct_array_fields.is_empty() {
        problems.push(format!(
            "collection `{database}.{name}`: struct array fields cannot be copied yet"
        ));
    }
    match info.primary_field() {
        None => problems.push(format!("collection `{database}.{name}` has no primary key")),
        Some(pk) if !matches!(DataType::try_from(pk.data_type), Ok(DataType::Int64 | DataType::VarChar)) => {
            problems.push(format!(
                "collection `{database}.{name}`: primary key `{}` has type {}; only Int64 and VarChar keys can be paged",
                pk.name,
                type_name(pk.data_type)
            ))
        }
        Some(_) => {}
    }
    problems
}

impl Engine {
    pub(crate) async fn clusters(
        &self,
        job: &Job,
    ) -> Result<(Arc<dyn Cluster>, Arc<dyn Cluster>), EngineError> {
        let source = self
            .clusters
            .connect(Role::Source, &job.request.source)
            .await?;
        let target = self
            .clusters
            .connect(Role::Target, &job.request.target)
            .await?;
        Ok((source, target))
    }

    /// The plan step: preflight, then the target schema and the tasks.
    pub(crate) async fn plan(&self, job_id: &str) -> Result<Handled, EngineError> {
        let Some(job) = self.store.get_job(job_id).await? else {
            return Err(EngineError::NotFound(job_id.into()));
        };
        if job.status.is_terminal() || job.phase.is_some_and(|p| p >= Phase::Copy) {
            return Ok(Handled::Nothing);
        }
        if job.cancel_requested {
            self.end_cancelled(job_id).await?;
            return Ok(Handled::Done);
        }
        if self.past_window(&job).await? {
            return Ok(Handled::Done);
        }
        self.advance(job_id, Phase::Preflight).await?;
        // One planner at a time: a duplicated message finds the step taken and leaves it.
        let owner = format!("p-{}", uuid::Uuid::new_v4().simple());
        if !self
            .hold_step(job_id, &owner, &[Phase::Preflight, Phase::Schema])
            .await?
        {
            return Ok(Handled::Nothing);
        }
        let _heartbeat = self.step_heartbeat(job_id, &owner, &[Phase::Preflight, Phase::Schema]);
        self.faults.maybe_panic(crate::queue::Step::Plan);
        let job = self
            .store
            .get_job(job_id)
            .await?
            .ok_or_else(|| EngineError::NotFound(job_id.into()))?;
        let (source, target) = self.clusters(&job).await?;
        if job.phase == Some(Phase::Preflight) {
            let collections = self.preflight(&job, &*source, &*target).await?;
            let total: u64 = collections.iter().filter_map(|c| c.source_count).sum();
            self.update_job(job_id, |j| {
                if j.phase != Some(Phase::Preflight) {
                    return Ok(false);
                }
                j.collections = collections.clone();
                j.enter(Phase::Schema, Utc::now())?;
                Ok(true)
            })
            .await?;
            self.log(
                job_id,
                Level::Info,
                None,
                format!(
                    "preflight passed: {} collections, {total} entities",
                    collections.len()
                ),
            )
            .await;
        }
        self.create_schema(job_id, &owner, &*source, &*target)
            .await?;
        Ok(Handled::Done)
    }

    /// Checks both clusters and every collection; writes nothing. Reports every problem at once.
    async fn preflight(
        &self,
        job: &Job,
        source: &dyn Cluster,
        target: &dyn Cluster,
    ) -> Result<Vec<CollectionReport>, EngineError> {
        let source_dbs = retry_transient(|| source.list_databases()).await?;
        let target_dbs = retry_transient(|| target.list_databases()).await?;
        let mut problems = Vec::new();
        let mut reports = Vec::new();
        let mut auto_id = Vec::new();
        let mut warnings: Vec<(String, String)> = Vec::new();
        let target_version = retry_transient(|| target.server_version()).await?;
        for (i, db) in job.request.databases.iter().enumerate() {
            if !source_dbs.contains(&db.name) {
                problems.push(format!(
                    "source database `{}` does not exist (databases[{i}].name)",
                    db.name
                ));
                continue;
            }
            let names: Vec<String> = if db.collections.is_empty() {
                let mut all = retry_transient(|| source.list_collections(&db.name)).await?;
                all.sort();
                all
            } else {
                db.collections.iter().map(|c| c.name.clone()).collect()
            };
            if names.is_empty() {
                problems.push(format!(
                    "source database `{}` has no collections to migrate (databases[{i}])",
                    db.name
                ));
            }
            let target_db_exists = target_dbs.iter().any(|d| d == db.target());
            let existing_targets: HashSet<String> = if target_db_exists {
                retry_transient(|| target.list_collections(db.target()))
                    .await?
                    .into_iter()
                    .collect()
            } else {
                HashSet::new()
            };
            for name in names {
                let target_name = db
                    .collections
                    .iter()
                    .find(|c| c.name == name)
                    .map(|c| c.target().to_owned())
                    .unwrap_or_else(|| name.clone());
                let Some(info) =
                    retry_transient(|| source.describe_collection(&db.name, &name)).await?
                else {
                    problems.push(format!(
                        "collection `{}.{name}` does not exist on the source",
                        db.name
                    ));
                    continue;
                };
                problems.extend(schema_problems(&db.name, &name, &info));
                if let Some((j, spec)) = db
                    .collections
                    .iter()
                    .enumerate()
                    .find(|(_, c)| c.name == name)
                {
                    if let Some(o) = &spec.schema_overrides {
                        if let Err((field, problem)) = info.with_overrides(o) {
                            problems.push(format!(
                                "databases[{i}].collections[{j}].schema_overrides.{field}: {problem}"
                            ));
                        }
                    }
                }
                let wanted = match job.request.overrides(&db.name, &name) {
                    Some(o) => info.with_overrides(o).unwrap_or_else(|_| info.clone()),
                    None => info.clone(),
                };
                let description_path = db
                    .collections
                    .iter()
                    .position(|c| {
                        c.name == name
                            && c.schema_overrides
                                .as_ref()
                                .is_some_and(|o| o.description.is_some())
                    })
                    .map(|j| {
                        format!("databases[{i}].collections[{j}].schema_overrides.description")
                    });
                let (lost, lesser) = self
                    .target_keeps(
                        target,
                        &target_version,
                        (&db.name, &name),
                        &wanted,
                        description_path,
                    )
                    .await?;
                problems.extend(lost);
                warnings.extend(
                    lesser
                        .into_iter()
                        .map(|w| (format!("{}.{name}", db.name), w)),
                );
                if info.has_auto_id() {
                    auto_id.push(format!("{}.{name}", db.name));
                }
                if existing_targets.contains(&target_name) {
                    problems.push(format!(
                        "collection `{target_name}` already exists in target database `{}`; set target_name for `{}.{name}` to migrate it under another name, or drop it on the target",
                        db.target(),
                        db.name
                    ));
                }
                if !retry_transient(|| source.is_loaded(&db.name, &name)).await? {
                    problems.push(format!(
                        "collection `{}.{name}` is not loaded on the source, so it cannot be read; load it (pymilvus: client.load_collection(\"{name}\")) and start the job again",
                        db.name
                    ));
                    continue;
                }
                let count = retry_transient(|| source.count(&db.name, &name)).await?;
                reports.push(CollectionReport {
                    database: db.name.clone(),
                    source: name.clone(),
                    target_database: db.target().to_owned(),
                    target: target_name,
                    status: CollectionStatus::Pending,
                    source_count: Some(count),
                    target_count: None,
                    matches: None,
                    remigrations: 0,
                    mismatches: Vec::new(),
                    content: None,
                });
            }
        }
        if !auto_id.is_empty() {
            // Keys are preserved or the collection is not migrated: ask the target whether it
            // keeps explicit keys in an auto_id collection (on a scratch collection).
            if let Err(reason) = retry_transient(|| target.probe_explicit_auto_id()).await? {
                problems.push(format!(
                    "{} generate their primary keys (auto_id), and the target cannot keep the source's keys: it refused explicit keys in an auto_id collection even with the `allow_insert_auto_id` property ({reason}); migrate to a Milvus version that supports `allow_insert_auto_id`, as copying would renumber every entity",
                    auto_id.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
                ));
            }
        }
        if !problems.is_empty() {
            return Err(EngineError::Refused(format!(
                "preflight found {} problem(s), nothing was written: {}",
                problems.len(),
                problems.join("; ")
            )));
        }
        for (collection, warning) in warnings {
            self.log(&job.id, Level::Warn, Some(collection), warning)
                .await;
        }
        Ok(reports)
    }

    /// Whether the target can hold a collection exactly as `wanted`: asked on a scratch
    /// collection that is dropped again (old servers silently drop what they do not know), after
    /// the types its version cannot serve are ruled out. Returns the problems, and warnings
    /// about what is lost that entities do not hold (a description the target does not keep).
    /// `description_path` names a description override, whose loss is a problem.
    async fn target_keeps(
        &self,
        target: &dyn Cluster,
        version: &str,
        (database, name): (&str, &str),
        wanted: &CollectionInfo,
        description_path: Option<String>,
    ) -> Result<(Vec<String>, Vec<String>), EngineError> {
        let what = format!("collection `{database}.{name}`: the target cannot hold it unchanged");
        let old = too_old_for(version, &wanted.schema);
        if !old.is_empty() {
            return Ok((vec![format!("{what}: {}", old.join("; "))], Vec::new()));
        }
        let mut sent = wanted.schema.clone();
        sent.fields.retain(|f| !f.is_dynamic);
        let kept = match retry_transient(|| target.probe_schema(wanted)).await? {
            Err(refused) => {
                return Ok((
                    vec![format!("{what}: it refuses the schema ({refused})")],
                    Vec::new(),
                ))
            }
            Ok(kept) => kept,
        };
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        let lost = schema_differences(&sent, &kept);
        if !lost.is_empty() {
            problems.push(format!("{what} ({version}): {}", lost.join("; ")));
        }
        if kept.description != sent.description {
            match description_path {
                Some(path) => problems.push(format!(
                    "{path}: the target ({version}) does not keep collection descriptions (it keeps {:?})",
                    kept.description
                )),
                None => warnings.push(format!(
                    "the target ({version}) does not keep the collection's description {:?}; everything else of the schema is kept",
                    sent.description
                )),
            }
        }
        Ok((problems, warnings))
    }

    /// Creates what the target needs, then writes the tasks and starts the workers.
    async fn create_schema(
        &self,
        job_id: &str,
        owner: &str,
        source: &dyn Cluster,
        target: &dyn Cluster,
    ) -> Result<(), EngineError> {
        let job = self
            .store
            .get_job(job_id)
            .await?
            .ok_or_else(|| EngineError::NotFound(job_id.into()))?;
        if job.phase != Some(Phase::Schema) {
            return Ok(());
        }
        let batch_size = job.request.options.batch_size;
        let mut tasks = Vec::new();
        for report in &job.collections {
            // Renewed per collection; lost only if this invocation stalled past the lease.
            if !self.hold_step(job_id, owner, &[Phase::Schema]).await? {
                return Ok(());
            }
            let (db, name) = (&report.database, &report.source);
            let (tdb, tname) = (&report.target_database, &report.target);
            let info = source_collection(source, db, name).await?;
            let partitions = retry_transient(|| source.list_partitions(db, name)).await?;
            // What the target gets: the source's collection with the request's overrides
            // (checked in preflight).
            let wanted = match job.request.overrides(db, name) {
                Some(o) => info.with_overrides(o).map_err(|(field, problem)| {
                    EngineError::Refused(format!("schema_overrides.{field}: {problem}"))
                })?,
                None => info.clone(),
            };
            if report.status == CollectionStatus::Pending && report.remigrations > 0 {
                // Migrated again after a count mismatch: the target collection starts over.
                // (Done before `creating` is recorded, so a rerun never drops the new one.)
                if retry_transient(|| target.describe_collection(tdb, tname))
                    .await?
                    .is_some()
                {
                    retry_transient(|| target.drop_collection(tdb, tname)).await?;
                }
                self.log(
                    job_id,
                    Level::Warn,
                    Some(format!("{db}.{name}")),
                    format!(
                        "dropped `{tdb}.{tname}` to migrate it again (remigration {})",
                        report.remigrations
                    ),
                )
                .await;
            }
            if matches!(
                report.status,
                CollectionStatus::Pending | CollectionStatus::Creating
            ) {
                // Recorded before the call: a crash between the two leaves a record that the
                // target collection may exist and is this job's.
                self.set_collection_status(job_id, db, name, CollectionStatus::Creating)
                    .await?;
                if !retry_transient(|| target.list_databases())
                    .await?
                    .contains(tdb)
                {
                    retry_transient(|| target.create_database(tdb)).await?;
                }
                if retry_transient(|| target.describe_collection(tdb, tname))
                    .await?
                    .is_none()
                {
                    retry_transient(|| target.create_collection(tdb, tname, &wanted)).await?;
                }
                if !wanted.has_partition_key() {
                    let existing = retry_transient(|| target.list_partitions(tdb, tname)).await?;
                    for p in partitions.iter().filter(|p| !existing.contains(p)) {
                        retry_transient(|| target.create_partition(tdb, tname, p)).await?;
                    }
                }
                self.set_collection_status(job_id, db, name, CollectionStatus::Copying)
                    .await?;
                self.log(
                    job_id,
                    Level::Info,
                    Some(format!("{db}.{name}")),
                    format!(
                        "created `{tdb}.{tname}` with {} fields",
                        info.schema.fields.len()
                    ),
                )
                .await;
            }
            let limit = first_limit(&info.schema, batch_size);
            if info.has_partition_key() {
                // Milvus routes entities by key; its partitions cannot be named in reads or writes.
                tasks.push(
                    Task::new(job_id, db, name, tdb, tname, None, limit)
                        .for_generation(report.remigrations),
                );
            } else {
                for p in &partitions {
                    tasks.push(
                        Task::new(job_id, db, name, tdb, tname, Some(p), limit)
                            .for_generation(report.remigrations),
                    );
                }
            }
        }
        self.store.put_tasks(&tasks).await?;
        if self.advance(job_id, Phase::Copy).await? {
            let workers = tasks
                .len()
                .min(job.request.options.max_workers as usize)
                .max(1);
            self.log(
                job_id,
                Level::Info,
                None,
                format!("copying {} tasks with up to {workers} workers", tasks.len()),
            )
            .await;
            for _ in 0..workers {
                self.queue
                    .send(WorkMessage::Work {
                        job_id: job_id.into(),
                    })
                    .await?;
            }
            if tasks.is_empty() {
                self.copy_finished(job_id).await?;
            }
        }
        Ok(())
    }

    pub(crate) async fn set_collection_status(
        &self,
        job_id: &str,
        database: &str,
        collection: &str,
        status: CollectionStatus,
    ) -> Result<(), EngineError> {
        self.update_job(job_id, |job| {
            let Some(c) = job.collection_mut(database, collection) else {
                return Ok(false);
            };
            if c.status == status {
                return Ok(false);
            }
            c.status = status;
            Ok(true)
        })
        .await
        .map(|_| ())
    }
}
