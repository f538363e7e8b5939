//! Copy: a worker claims a task, reads pages after its cursor, writes each to the same
//! partition of the target and checkpoints the cursor under its lease, reading the next page
//! while the current one is written. It stops when the task is done, when the invocation's
//! time runs short (releasing the task and enqueuing a continuation), or when the job is
//! cancelled. A read or write that fails is tried again through an outage (the lease kept
//! alive meanwhile) and a throttled write slows the worker's pace (see `retry`, `pacing`).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;

use super::faults::PageFault;
use super::pacing::Pacer;
use super::retry::Patience;
use super::sample::{reservoir, Rng};
use super::{page_limit, source_collection, Budget, Engine, EngineError, Handled};
use crate::domain::{Checkpoint, Cursor, Job, Phase, Task, TaskStatus, VerifyMode};
use crate::milvus::batch::primary_keys;
use crate::milvus::{Batch, Cluster, ClusterError, Failure, PageRequest, WriteMode};
use crate::queue::{Step, WorkMessage};
use crate::store::StoreError;

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
        let p = self.patience(job, budget);
        let prepared = async {
            let (source, target) = self.clusters(&p, job).await?;
            let info = source_collection(&p, &*source, &task.database, &task.collection).await?;
            Ok::<_, EngineError>((source, target, info))
        };
        let (source, target, info) = match prepared.await {
            Ok(prepared) => prepared,
            // An outage outlasted the invocation before the first page.
            Err(EngineError::OutOfTime) => return Ok(Stop::OutOfTime(task)),
            Err(e) => return Err(e),
        };
        let primary = info.primary_field().cloned().ok_or_else(|| {
            EngineError::Refused(format!(
                "collection `{}.{}` has no primary key",
                task.database, task.collection
            ))
        })?;
        let options = &job.request.options;
        let workers = self.workers_on(&job.id).await?;
        let mut copier = Copier {
            engine: self,
            job,
            reader: PageReader {
                cluster: source.clone(),
                database: task.database.clone(),
                collection: task.collection.clone(),
                partition: task.partition.clone(),
                primary,
                upto: task.upto.clone(),
                read_at: task.read_at,
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
            p,
            pacer: Pacer::new(job, workers),
            sample_size: (options.verify == VerifyMode::Sample)
                .then_some(options.verify_sample_size as usize),
            rng: Rng::new(),
        };
        copier.run(task).await
    }

    /// How many workers copy the job's tasks now (the tasks leased), for their share of the
    /// write rate.
    async fn workers_on(&self, job_id: &str) -> Result<usize, EngineError> {
        let now = Utc::now();
        let tasks = self.store.list_tasks(job_id).await?;
        Ok(tasks.iter().filter(|t| t.leased(now)).count().max(1))
    }
}

/// Why a worker stops before it is done with its task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Halt {
    /// Out of time: the next invocation continues.
    OutOfTime,
    /// The job was cancelled, ended, or its window closed.
    JobOver,
    /// Another worker holds the task now.
    LeaseLost,
}

impl Halt {
    fn stop(self, task: Task) -> Stop {
        match self {
            Halt::OutOfTime => Stop::OutOfTime(task),
            Halt::JobOver => Stop::JobOver(task),
            Halt::LeaseLost => Stop::LeaseLost,
        }
    }
}

/// What came of getting a page read or written through an outage or throttling.
enum Outcome<T> {
    Done(T),
    Halted(Halt),
}

/// What one worker needs to copy one task: where it reads and writes, the job's rules, how
/// it waits out outages and how fast it may write.
struct Copier<'a> {
    engine: &'a Engine,
    job: &'a Job,
    reader: PageReader,
    target: Arc<dyn Cluster>,
    routed: bool,
    p: Patience<'a>,
    pacer: Pacer,
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
        let first = self.read_page(task.cursor.clone(), limit).await;
        let mut page = match self.read_through(&mut task, limit, first).await? {
            Outcome::Done(page) => page,
            Outcome::Halted(h) => return Ok(h.stop(task)),
        };
        // Later pages are read at the first one's timestamp (kept with the checkpoint).
        self.reader.read_at = self.reader.read_at.or(page.read_at);
        let mut page_time = started.elapsed();
        let mut wrote = false;
        loop {
            if page.rows == 0 {
                return Ok(Stop::Done(task));
            }
            if let Some(h) = self.halt_before_write(&mut task, wrote, page_time).await? {
                return Ok(h.stop(task));
            }
            let started = Instant::now();
            let following = page_limit(
                limit,
                page.rows,
                page.sizing_bytes,
                page_time,
                self.p.budget(),
                self.job.request.options.batch_size,
            );
            if let Some(h) = self.pace(page.bytes, wrote) {
                return Ok(h.stop(task));
            }
            self.pacer.before_write(page.bytes).await;
            let fault = self.engine.faults.next_page();
            let (written, next_page) = tokio::join!(
                self.write_once(&task, &page, mode, fault),
                self.read_page(page.last.clone(), following)
            );
            if let Outcome::Halted(h) = self.write_through(&mut task, &page, fault, written).await?
            {
                return Ok(h.stop(task));
            }
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
            if self.pacer.sync_due() {
                let workers = self.engine.workers_on(&self.job.id).await?;
                self.engine
                    .sync_write_rate(&self.job.id, &mut self.pacer, workers)
                    .await?;
            }
            mode = WriteMode::Insert;
            wrote = true;
            page = match self.read_through(&mut task, following, next_page).await? {
                Outcome::Done(page) => page,
                Outcome::Halted(h) => return Ok(h.stop(task)),
            };
            limit = following;
            page_time = started.elapsed();
        }
    }

    /// A read that failed is tried again (after the cursor the task holds now) until it gets
    /// through, waiting out an outage and keeping the lease meanwhile.
    async fn read_through(
        &mut self,
        task: &mut Task,
        limit: u32,
        mut result: Result<Batch, ClusterError>,
    ) -> Result<Outcome<Batch>, EngineError> {
        loop {
            let error = match result {
                Ok(page) => {
                    self.p.answered().await;
                    return Ok(Outcome::Done(page));
                }
                Err(e) => e,
            };
            if let Some(h) = self.wait_out(task, error).await? {
                return Ok(Outcome::Halted(h));
            }
            result = self.read_page(task.cursor.clone(), limit).await;
        }
    }

    /// A write that failed is tried again (as an upsert: the server may have taken it) until
    /// it gets through; throttling slows the pace, an outage is waited out, the lease is kept.
    async fn write_through(
        &mut self,
        task: &mut Task,
        page: &Batch,
        fault: PageFault,
        mut result: Result<u64, ClusterError>,
    ) -> Result<Outcome<()>, EngineError> {
        loop {
            let error = match result {
                Ok(_) => {
                    self.pacer.wrote(page.bytes);
                    self.p.answered().await;
                    return Ok(Outcome::Done(()));
                }
                Err(e) => e,
            };
            if let Failure::Throttled { rate } = error.failure() {
                self.throttled(task, &error, rate, page.bytes).await?;
                if let Some(h) = self.keep_lease(task).await? {
                    return Ok(Outcome::Halted(h));
                }
            } else if let Some(h) = self.wait_out(task, error).await? {
                return Ok(Outcome::Halted(h));
            }
            if let Some(h) = self.pace(page.bytes, true) {
                return Ok(Outcome::Halted(h));
            }
            self.pacer.before_write(page.bytes).await;
            result = self.write_once(task, page, WriteMode::Upsert, fault).await;
        }
    }

    /// A throttled write: the pace goes down (and the job's rate with it). A target that has
    /// throttled every write for longer than `max_outage` fails the job.
    async fn throttled(
        &mut self,
        task: &Task,
        error: &ClusterError,
        hint: Option<f64>,
        bytes: usize,
    ) -> Result<(), EngineError> {
        self.pacer.throttled(hint, bytes);
        let max = self.job.request.options.max_outage;
        if self
            .pacer
            .throttled_since()
            .is_some_and(|t| t.elapsed() > max)
        {
            return Err(EngineError::Refused(format!(
                "the target refused every write as throttled for longer than options.max_outage ({}); the last answer was: {error}",
                humantime::format_duration(max)
            )));
        }
        let workers = self.engine.workers_on(&task.job_id).await?;
        self.engine
            .sync_write_rate(&self.job.id, &mut self.pacer, workers)
            .await
    }

    /// Waits out a failure with the step's retry policy, keeping the lease; `Some` when the
    /// worker must stop instead.
    async fn wait_out(
        &mut self,
        task: &mut Task,
        error: ClusterError,
    ) -> Result<Option<Halt>, EngineError> {
        match self.p.wait_after(error).await {
            Ok(()) => self.keep_lease(task).await,
            Err(EngineError::OutOfTime) => Ok(Some(Halt::OutOfTime)),
            Err(e) => Err(e),
        }
    }

    /// Whether the next write, paced, still fits in the invocation. An unpaced first write of
    /// a claim always goes (as in `halt_before_write`: every claim writes the page it read).
    fn pace(&self, bytes: usize, wrote: bool) -> Option<Halt> {
        let wait = self
            .pacer
            .rate()
            .map(|r| Duration::from_secs_f64(bytes as f64 / r))
            .unwrap_or_default();
        let must_wait = wrote || !wait.is_zero();
        (must_wait && self.p.budget().exhausted(wait)).then_some(Halt::OutOfTime)
    }

    /// Keeps the task's lease alive while the worker waits, and stops it if the job was
    /// cancelled or ended meanwhile.
    async fn keep_lease(&self, task: &mut Task) -> Result<Option<Halt>, EngineError> {
        let job = self.engine.store.get_job(&self.job.id).await?;
        let window_over = self
            .job
            .request
            .options
            .not_after
            .is_some_and(|t| Utc::now() >= t);
        if window_over || job.is_none_or(|j| j.cancel_requested || j.status.is_terminal()) {
            return Ok(Some(Halt::JobOver));
        }
        self.renew_lease(task).await
    }

    /// Extends the task's lease from now, if this worker still holds it.
    async fn renew_lease(&self, task: &mut Task) -> Result<Option<Halt>, EngineError> {
        let ttl = self.engine.config.lease();
        match self.engine.store.renew_task(task, Utc::now(), ttl).await {
            Ok(renewed) => {
                *task = renewed;
                Ok(None)
            }
            Err(StoreError::LeaseLost(_)) => Ok(Some(Halt::LeaseLost)),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether to stop before writing the next page: out of time (every claim writes at least
    /// the page it read, or a page slower than the whole budget would be read, dropped and read
    /// again forever), the job cancelled or past its window, or the lease lost. The target has
    /// no conditional writes, so a worker must not write under a lease that may pass to
    /// another: a lease near its end (a slow read) is renewed first, which fails if another
    /// worker has claimed the task. Stopping instead would make a read slower than two thirds
    /// of the lease stop every claim before its write, for ever.
    async fn halt_before_write(
        &self,
        task: &mut Task,
        wrote: bool,
        page_time: Duration,
    ) -> Result<Option<Halt>, EngineError> {
        if (wrote && self.p.budget().exhausted(page_time)) || self.engine.is_interrupted() {
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
        let ttl = self.engine.config.lease();
        let lease_ending = task
            .lease
            .as_ref()
            .is_none_or(|l| l.expires_at - ttl / 3 <= Utc::now());
        if !lease_ending {
            return Ok(None);
        }
        self.renew_lease(task).await
    }

    /// One attempt at reading the page after `after` (slowed first if a fault hook says).
    async fn read_page(&self, after: Option<Cursor>, limit: u32) -> Result<Batch, ClusterError> {
        self.engine.faults.before_page_read().await;
        self.reader.read(after, limit).await
    }

    /// One attempt at writing a page (unless a fault hook loses it, or garbles it first).
    async fn write_once(
        &self,
        task: &Task,
        page: &Batch,
        mode: WriteMode,
        fault: PageFault,
    ) -> Result<u64, ClusterError> {
        let page = match fault {
            PageFault::Lose => return Ok(page.rows as u64),
            PageFault::Garble => self.engine.faults.garbled(page, &self.reader.primary.name),
            PageFault::None => std::borrow::Cow::Borrowed(page),
        };
        let partition = if self.routed {
            None
        } else {
            task.partition.as_deref()
        };
        self.target
            .write_page(
                &task.target_database,
                &task.target_collection,
                partition,
                &page,
                mode,
            )
            .await
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
            read_at: page.read_at,
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
    /// The task's last key, when it is a key range.
    upto: Option<Cursor>,
    /// The timestamp pages are read at once the first page pinned it.
    read_at: Option<u64>,
    skip: Vec<String>,
}

impl PageReader {
    /// One attempt at the page after `after`.
    async fn read(&self, after: Option<Cursor>, limit: u32) -> Result<Batch, ClusterError> {
        let request = PageRequest {
            database: &self.database,
            collection: &self.collection,
            partition: self.partition.as_deref(),
            primary: &self.primary,
            after: after.as_ref(),
            upto: self.upto.as_ref(),
            read_at: self.read_at,
            limit,
            skip_fields: &self.skip,
        };
        self.cluster.read_page(&request).await
    }
}
