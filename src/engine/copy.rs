//! Copy: a worker claims a task, reads pages after its cursor, writes each to the same
//! partition of the target and checkpoints the cursor under its lease, reading the next page
//! while the current one is written. It stops when the task is done, when the invocation's
//! time runs short (releasing the task and enqueuing a continuation), or when the job is
//! cancelled.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;

use super::sample::{reservoir, Rng};
use super::{page_limit, source_collection, Budget, Engine, EngineError, Handled};
use crate::domain::{Checkpoint, Job, Phase, Task, TaskStatus, VerifyMode};
use crate::milvus::batch::primary_keys;
use crate::milvus::{Batch, Cluster, PageRequest, WriteMode};
use crate::queue::{Step, WorkMessage};
use crate::store::StoreError;

use super::retry_transient;

/// How a worker's time on one task ended.
enum Stop {
    /// Every entity copied.
    Done(Task),
    /// Out of time: continue in a fresh invocation.
    OutOfTime(Task),
    /// The job was cancelled or ended.
    JobOver(Task),
    /// Another worker holds the task now.
    LeaseLost,
}

impl Engine {
    /// Handles a `work` message: copies tasks of the job until none is left or time runs out.
    pub(crate) async fn work(&self, job_id: &str, budget: Budget) -> Result<Handled, EngineError> {
        let owner = format!("w-{}", uuid::Uuid::new_v4().simple());
        let mut handled = Handled::Nothing;
        loop {
            let job = self.job(job_id).await?;
            if job.status.is_terminal() || job.phase != Some(Phase::Copy) {
                return Ok(handled);
            }
            if job.cancel_requested {
                self.end_cancelled(job_id).await?;
                return Ok(Handled::Done);
            }
            if self.past_window(&job).await? {
                return Ok(Handled::Done);
            }
            if budget.exhausted(Duration::ZERO) {
                // Whatever is left is claimable; the continuation picks it up.
                self.continue_later(job_id).await?;
                return Ok(handled);
            }
            let Some(task) = self.claim_any(&job, &owner).await? else {
                let tasks = self.store.list_tasks(job_id).await?;
                if tasks.iter().all(|t| t.status == TaskStatus::Done) {
                    self.copy_finished(job_id).await?;
                }
                return Ok(handled);
            };
            handled = Handled::Done;
            match self.copy_task(&job, task, budget).await {
                Ok(Stop::Done(task)) => match self.store.complete_task(&task).await {
                    Ok(_) | Err(StoreError::LeaseLost(_)) => {}
                    Err(e) => return Err(e.into()),
                },
                Ok(Stop::OutOfTime(task)) => {
                    self.release(&task).await?;
                    self.continue_later(job_id).await?;
                    return Ok(handled);
                }
                Ok(Stop::JobOver(task)) => {
                    self.release(&task).await?;
                }
                Ok(Stop::LeaseLost) => {}
                // The lease stays held, as after a real crash; `handle` fails the job on any
                // other error.
                Err(e) => return Err(e),
            }
        }
    }

    async fn release(&self, task: &Task) -> Result<(), EngineError> {
        match self.store.release_task(task).await {
            Ok(()) | Err(StoreError::LeaseLost(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn continue_later(&self, job_id: &str) -> Result<(), EngineError> {
        self.queue.send(WorkMessage::work(job_id)).await?;
        Ok(())
    }

    /// Claims the first claimable task, starting from a random one so that workers spread out.
    async fn claim_any(&self, job: &Job, owner: &str) -> Result<Option<Task>, EngineError> {
        let tasks = self.store.list_tasks(&job.id).await?;
        let now = Utc::now();
        let ttl = self.config.lease();
        let start = Rng::new().below(tasks.len().max(1) as u64) as usize;
        for i in 0..tasks.len() {
            let t = &tasks[(start + i) % tasks.len()];
            if !t.claimable(now) {
                continue;
            }
            if let Some(claimed) = self
                .store
                .claim_task(&job.id, &t.id, owner, now, ttl)
                .await?
            {
                return Ok(Some(claimed));
            }
        }
        Ok(None)
    }

    /// When every task is done, moves the job on to `index` and enqueues `finish`: exactly one
    /// caller wins the conditional write that does it.
    pub(crate) async fn copy_finished(&self, job_id: &str) -> Result<(), EngineError> {
        if self.advance(job_id, Phase::Index).await? {
            let tasks = self.store.list_tasks(job_id).await?;
            let (copied, bytes) = tasks
                .iter()
                .fold((0, 0), |(c, b), t| (c + t.copied, b + t.bytes));
            let pages: u64 = tasks.iter().map(|t| t.batches).sum();
            self.log(
                job_id,
                crate::domain::Level::Info,
                None,
                format!("copy finished: {copied} entities, {bytes} bytes in {pages} pages"),
            )
            .await;
            self.queue.send(WorkMessage::finish(job_id)).await?;
        }
        Ok(())
    }

    async fn copy_task(&self, job: &Job, task: Task, budget: Budget) -> Result<Stop, EngineError> {
        let (source, target) = self.clusters(job).await?;
        let info = source_collection(&*source, &task.database, &task.collection).await?;
        let primary = info.primary_field().cloned().ok_or_else(|| {
            EngineError::Refused(format!(
                "collection `{}.{}` has no primary key",
                task.database, task.collection
            ))
        })?;
        let options = &job.request.options;
        let mut copier = Copier {
            engine: self,
            job,
            reader: PageReader {
                cluster: source.clone(),
                database: task.database.clone(),
                collection: task.collection.clone(),
                partition: task.partition.clone(),
                primary,
                skip: info.function_outputs(),
            },
            target,
            // A target with a partition key routes entities itself (also when an override
            // gave it one): pages read from a source partition are written without a name.
            routed: info.has_partition_key()
                || job
                    .request
                    .overrides(&task.database, &task.collection)
                    .is_some_and(|o| o.partition_key.is_some()),
            budget,
            sample_size: (options.verify == VerifyMode::Sample)
                .then_some(options.verify_sample_size as usize),
            rng: Rng::new(),
        };
        copier.run(task).await
    }
}

/// Why a worker stops before writing the page it holds.
enum Halt {
    OutOfTime,
    JobOver,
}

/// What one worker needs to copy one task: where it reads and writes, and the job's rules.
struct Copier<'a> {
    engine: &'a Engine,
    job: &'a Job,
    reader: PageReader,
    target: Arc<dyn Cluster>,
    routed: bool,
    budget: Budget,
    /// The sample each task keeps, when the job verifies a sample.
    sample_size: Option<usize>,
    rng: Rng,
}

impl Copier<'_> {
    /// Reads pages after the task's cursor, writing each while reading the next, and
    /// checkpoints every page under the task's lease.
    async fn run(&mut self, mut task: Task) -> Result<Stop, EngineError> {
        let mut mode = if task.resumed() {
            WriteMode::Upsert
        } else {
            WriteMode::Insert
        };
        let mut limit = task.next_limit;
        let started = Instant::now();
        let mut page = self.reader.read(task.cursor.clone(), limit).await?;
        let mut page_time = started.elapsed();
        let mut wrote = false;
        loop {
            if page.rows == 0 {
                return Ok(Stop::Done(task));
            }
            match self.halt_before_write(&task, wrote, page_time).await? {
                Some(Halt::OutOfTime) => return Ok(Stop::OutOfTime(task)),
                Some(Halt::JobOver) => return Ok(Stop::JobOver(task)),
                None => {}
            }
            let started = Instant::now();
            let following = page_limit(
                limit,
                page.rows,
                page.sizing_bytes,
                page_time,
                &self.budget,
                self.job.request.options.batch_size,
            );
            let (written, next_page) = tokio::join!(
                self.write(&task, &page, mode),
                self.reader.read(page.last.clone(), following)
            );
            written?;
            self.engine.faults.after_write()?;
            self.engine.faults.maybe_panic(Step::Work);
            let checkpoint = self.checkpoint(&task, &page, following)?;
            let ttl = self.engine.config.lease();
            task = match self
                .engine
                .store
                .checkpoint(&task, &checkpoint, Utc::now(), ttl)
                .await
            {
                Ok(t) => t,
                Err(StoreError::LeaseLost(_)) => return Ok(Stop::LeaseLost),
                Err(e) => return Err(e.into()),
            };
            mode = WriteMode::Insert;
            wrote = true;
            page = next_page?;
            limit = following;
            page_time = started.elapsed();
        }
    }

    /// Whether to stop before writing the next page: out of time (every claim writes at least
    /// the page it read, or a page slower than the whole budget would be read, dropped and read
    /// again forever), the job cancelled or past its window, or a lease too close to its end
    /// to write under (the target has no conditional writes, so a worker whose lease may pass
    /// to another must not write).
    async fn halt_before_write(
        &self,
        task: &Task,
        wrote: bool,
        page_time: Duration,
    ) -> Result<Option<Halt>, EngineError> {
        if wrote && self.budget.exhausted(page_time) {
            return Ok(Some(Halt::OutOfTime));
        }
        let fresh = self.engine.store.get_job(&self.job.id).await?;
        let window_over = self
            .job
            .request
            .options
            .not_after
            .is_some_and(|t| Utc::now() >= t);
        let ended = fresh
            .as_ref()
            .is_none_or(|j| j.cancel_requested || j.status.is_terminal());
        if window_over || ended {
            // The work loop ends the job (cancelled, or failed at the window's end).
            return Ok(Some(Halt::JobOver));
        }
        if let Some(fresh) = &fresh {
            self.engine.maybe_progress(fresh).await?;
        }
        let write_guard = self.engine.config.lease() / 3;
        let lease_ending = task
            .lease
            .as_ref()
            .is_none_or(|l| l.expires_at - write_guard <= Utc::now());
        Ok(lease_ending.then_some(Halt::OutOfTime))
    }

    /// Writes a page (unless a fault hook loses it, or garbles it first).
    async fn write(&self, task: &Task, page: &Batch, mode: WriteMode) -> Result<u64, EngineError> {
        let faults = &self.engine.faults;
        if faults.loses_next_write() {
            return Ok(page.rows as u64);
        }
        let page = faults.maybe_corrupt(page, &self.reader.primary.name);
        write(&*self.target, task, self.routed, &page, mode).await
    }

    /// The checkpoint of a written page: its last key, its counts, the next page's size and the
    /// task's key sample after it.
    fn checkpoint(
        &mut self,
        task: &Task,
        page: &Batch,
        following: u32,
    ) -> Result<Checkpoint, EngineError> {
        let sample = self.sample_size.map(|size| {
            let keys = page
                .fields
                .iter()
                .find(|f| f.field_name == self.reader.primary.name)
                .and_then(primary_keys)
                .unwrap_or_default();
            reservoir(&task.sample, task.copied, &keys, size, &mut self.rng)
        });
        Ok(Checkpoint {
            cursor: page
                .last
                .clone()
                .ok_or_else(|| EngineError::Refused("a non-empty page without keys".into()))?,
            rows: page.rows as u64,
            bytes: page.bytes as u64,
            next_limit: following,
            sample,
        })
    }
}

/// Reads the pages of one task from the source.
struct PageReader {
    cluster: Arc<dyn Cluster>,
    database: String,
    collection: String,
    partition: Option<String>,
    primary: crate::milvus::FieldSchema,
    skip: Vec<String>,
}

impl PageReader {
    async fn read(
        &self,
        after: Option<crate::domain::Cursor>,
        limit: u32,
    ) -> Result<Batch, EngineError> {
        let request = PageRequest {
            database: &self.database,
            collection: &self.collection,
            partition: self.partition.as_deref(),
            primary: &self.primary,
            after: after.as_ref(),
            limit,
            skip_fields: &self.skip,
        };
        Ok(retry_transient(|| self.cluster.read_page(&request)).await?)
    }
}

async fn write(
    target: &dyn Cluster,
    task: &Task,
    routed: bool,
    page: &Batch,
    mode: WriteMode,
) -> Result<u64, EngineError> {
    let partition = if routed {
        None
    } else {
        task.partition.as_deref()
    };
    // A retried insert after a transient failure could double a page the server did take, so
    // retries always replace by primary key.
    let mut attempt_mode = mode;
    Ok(retry_transient(|| {
        let m = attempt_mode;
        attempt_mode = WriteMode::Upsert;
        target.write_page(
            &task.target_database,
            &task.target_collection,
            partition,
            page,
            m,
        )
    })
    .await?)
}
