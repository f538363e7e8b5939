//! Schema: create what the target needs for each collection (its database, the collection with
//! the source's schema and the request's overrides, its partitions), recording each collection
//! as `creating` before it is made, then write the copy's tasks (one per partition; large ones
//! are cut into key ranges later, while they are copied: see [`super::split`]) and start the
//! workers.

use super::retry::Patience;
use super::{source_collection, Engine, EngineError};
use crate::domain::{
    CollectionReport, CollectionStatus, Job, Level, Phase, Selection, Task, WriteVia,
};
use crate::milvus::batch::first_limit;
use crate::milvus::{Cluster, CollectionInfo, PageRequest};
use crate::queue::WorkMessage;

impl Engine {
    /// Creates what the target needs, then writes the tasks and starts the workers.
    pub(super) async fn create_schema(
        &self,
        p: &Patience<'_>,
        job_id: &str,
        owner: &str,
        source: &dyn Cluster,
        target: &dyn Cluster,
    ) -> Result<(), EngineError> {
        let job = self.job(job_id).await?;
        if job.phase != Some(Phase::Schema) {
            return Ok(());
        }
        let mut tasks = Vec::new();
        for report in &job.collections {
            // Renewed per collection; lost only if this invocation stalled past the lease.
            if !self.hold_step(job_id, owner, &[Phase::Schema]).await? {
                return Ok(());
            }
            let info = source_collection(p, source, &report.database, &report.source).await?;
            // A subset by partitions creates and copies only those (preflight found them all).
            let selection = job.request.selection(&report.database, &report.source);
            let mut partitions = p
                .call(|| source.list_partitions(&report.database, &report.source))
                .await?;
            partitions.retain(|name| selection.holds(name));
            self.prepare_target(p, &job, report, &info, &partitions, source, target)
                .await?;
            tasks.extend(
                self.tasks_for(p, &job, report, &info, &partitions, source)
                    .await?,
            );
        }
        self.store.put_tasks(&tasks).await?;
        self.start_copy(&job, tasks.len()).await
    }

    /// Creates one collection's target (database, collection, partitions, indexes), unless an
    /// earlier run of the step already did; drops it first when the collection is migrated
    /// again.
    #[allow(clippy::too_many_arguments)]
    async fn prepare_target(
        &self,
        p: &Patience<'_>,
        job: &Job,
        report: &CollectionReport,
        info: &CollectionInfo,
        partitions: &[String],
        source: &dyn Cluster,
        target: &dyn Cluster,
    ) -> Result<(), EngineError> {
        let (db, name) = (&report.database, &report.source);
        let (tdb, tname) = (&report.target_database, &report.target);
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
            if p.call(|| target.describe_collection(tdb, tname))
                .await?
                .is_some()
            {
                p.call(|| target.drop_collection(tdb, tname)).await?;
            }
            let message = format!(
                "dropped `{tdb}.{tname}` to migrate it again (remigration {})",
                report.remigrations
            );
            self.log(&job.id, Level::Warn, Some(format!("{db}.{name}")), message)
                .await;
        }
        if !matches!(
            report.status,
            CollectionStatus::Pending | CollectionStatus::Creating
        ) {
            return Ok(());
        }
        // Recorded before the call: a crash between the two leaves a record that the target
        // collection may exist and is this job's.
        self.set_collection_status(&job.id, db, name, CollectionStatus::Creating)
            .await?;
        if !p.call(|| target.list_databases()).await?.contains(tdb) {
            p.call(|| target.create_database(tdb)).await?;
        }
        if p.call(|| target.describe_collection(tdb, tname))
            .await?
            .is_none()
        {
            p.call(|| target.create_collection(tdb, tname, &wanted))
                .await?;
        }
        if !wanted.has_partition_key() {
            let existing = p.call(|| target.list_partitions(tdb, tname)).await?;
            for partition in partitions.iter().filter(|p| !existing.contains(p)) {
                p.call(|| target.create_partition(tdb, tname, partition))
                    .await?;
            }
        }
        // On the empty collection: the server builds them as the copy's segments seal, not
        // all at once after it.
        self.ensure_indexes(p, &job.id, report, info, source, target)
            .await?;
        self.set_collection_status(&job.id, db, name, CollectionStatus::Copying)
            .await?;
        let fields = info.schema.fields.len();
        let message = format!("created `{tdb}.{tname}` with {fields} fields");
        self.log(&job.id, Level::Info, Some(format!("{db}.{name}")), message)
            .await;
        Ok(())
    }

    /// Moves the job into its copy phase and sends one `Work` message per worker slot.
    async fn start_copy(&self, job: &Job, tasks: usize) -> Result<(), EngineError> {
        if !self.advance(&job.id, Phase::Copy).await? {
            return Ok(());
        }
        // Every worker slot: a worker with no task of its own cuts another's remainder.
        let workers = if tasks == 0 {
            1
        } else {
            job.request.options.max_workers as usize
        };
        let message = format!("copying {tasks} tasks with up to {workers} workers");
        self.log(&job.id, Level::Info, None, message).await;
        for _ in 0..workers {
            self.queue.send(WorkMessage::work(&job.id)).await?;
        }
        if tasks == 0 {
            self.copy_finished(&job.id).await?;
        }
        Ok(())
    }

    /// One collection's tasks: one per partition, or one for a partition-key collection (Milvus
    /// routes its entities by key; its partitions cannot be named in reads or writes). Nothing
    /// is cut here: a large partition is cut into key ranges while it is copied, by workers
    /// that would otherwise be idle (see `split`), so the copy starts at once. Each task knows
    /// the entities it holds (one count per partition), to choose what to cut first.
    async fn tasks_for(
        &self,
        p: &Patience<'_>,
        job: &Job,
        report: &CollectionReport,
        info: &CollectionInfo,
        partitions: &[String],
        source: &dyn Cluster,
    ) -> Result<Vec<Task>, EngineError> {
        let (db, name) = (&report.database, &report.source);
        let (tdb, tname) = (&report.target_database, &report.target);
        let limit = first_limit(
            &info.schema,
            job.request.options.batch_size,
            self.config.page_bytes,
        );
        let parts: Vec<Option<&str>> = if info.has_partition_key() {
            vec![None]
        } else {
            partitions.iter().map(|p| Some(p.as_str())).collect()
        };
        let primary = info.primary_field().ok_or_else(|| {
            EngineError::Refused(format!("collection `{db}.{name}` has no primary key"))
        })?;
        let mut tasks = Vec::with_capacity(parts.len());
        for partition in parts {
            let planned = match (partition, report.source_count) {
                // One task for the whole collection: its count is known from preflight.
                (None, count) => count,
                (Some(_), count) if partitions.len() == 1 => count,
                (Some(_), _) => {
                    let filter = job.request.selection(db, name).filter;
                    let subset = Selection {
                        filter,
                        partitions: None,
                    };
                    let range = PageRequest::whole(db, name, partition, primary, subset);
                    Some(p.call(|| source.count_range(&range)).await?)
                }
            };
            tasks.push(
                Task {
                    via_import: report
                        .write
                        .as_ref()
                        .is_some_and(|w| w.via == WriteVia::Import),
                    ..Task::new(&job.id, db, name, tdb, tname, partition, limit)
                }
                .for_generation(report.remigrations)
                .with_planned(planned),
            );
        }
        Ok(tasks)
    }

    /// Sets one collection's status in the job record.
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
