//! One worker's copy of one task: it reads pages after the task's cursor, writes each to the
//! same partition of the target and checkpoints the cursor under its lease, reading the next
//! page while the current one is written. A read or write that fails is tried again through an
//! outage (the lease kept alive meanwhile) and a throttled write slows the worker's pace (see
//! `retry`, `pacing`).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;

use super::faults::PageFault;
use super::pacing::{Pacer, Slot};
use super::retry::Patience;
use super::sample::{reservoir, Rng};
use super::{page_limit, Engine, EngineError};
use crate::domain::{Checkpoint, Cursor, Job, Selection, Task};
use crate::milvus::batch::primary_keys;
use crate::milvus::{Batch, Cluster, ClusterError, Failure, PageRequest, WriteMode};
use crate::queue::Step;
use crate::store::StoreError;

mod import;

/// How a worker's time on one task ended.
pub(super) enum Stop {
    /// Every entity copied.
    Done(Task),
    /// Out of time: continue in a fresh invocation.
    OutOfTime(Task),
    /// The job was cancelled or ended.
    JobOver(Task),
    /// Another worker holds the task now.
    LeaseLost,
    /// Its range differed and it was sent back to be copied again (see `ranges`).
    SentBack,
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
pub(super) struct Copier<'a> {
    pub(super) engine: &'a Engine,
    pub(super) job: &'a Job,
    pub(super) reader: PageReader,
    pub(super) target: Arc<dyn Cluster>,
    /// The source collection (the columns of its pages, for staging them).
    pub(super) info: Arc<crate::milvus::CollectionInfo>,
    pub(super) routed: bool,
    pub(super) p: Patience<'a>,
    pub(super) pacer: Pacer,
    /// The sample each task keeps, when the job verifies a sample.
    pub(super) sample_size: Option<usize>,
    pub(super) rng: Rng,
    /// What this worker's turn wrote, for its metrics.
    pub(super) turn: Turn,
    /// The job's staging area, for a task copied by import (opened when it starts).
    pub(super) staging: Option<crate::staging::Staging>,
}

/// What one worker's turn at a task wrote and met.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Turn {
    pub(super) entities: u64,
    pub(super) bytes: u64,
    pub(super) pages: u64,
    pub(super) throttled: u64,
}

impl Copier<'_> {
    /// Reads pages after the task's cursor, writing each while reading the next, and
    /// checkpoints every page under the task's lease.
    pub(super) async fn run(&mut self, mut task: Task) -> Result<Stop, EngineError> {
        if task.via_import {
            return self.run_import(task).await;
        }
        // A range under repair is upserted throughout: the target holds some of it already.
        let steady = if task.repair.is_some() {
            WriteMode::Upsert
        } else {
            WriteMode::Insert
        };
        let mut mode = if task.resumed() {
            WriteMode::Upsert
        } else {
            steady
        };
        let mut limit = task.next_limit;
        let started = Instant::now();
        let first = self
            .read_page(task.cursor.clone(), task.upto.clone(), limit)
            .await;
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
            let following = self.following(limit, &page, page_time);
            if let Some(h) = self.pace(page.bytes, wrote).await? {
                return Ok(h.stop(task));
            }
            let fault = self.engine.faults.next_page();
            // The task's end as last written: a split that lowered it is seen at the next
            // write of the record, and lies at least two pages past the cursor (see `split`).
            let (written, next_page) = tokio::join!(
                self.write_once(&task, &page, mode, fault),
                self.read_page(page.last.clone(), task.upto.clone(), following)
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
            self.turn.entities += page.rows as u64;
            self.turn.bytes += page.bytes as u64;
            self.turn.pages += 1;
            tracing::debug!(
                rows = page.rows,
                bytes = page.bytes,
                copied = task.copied,
                "page written and checkpointed"
            );
            mode = steady;
            wrote = true;
            page = match self.read_through(&mut task, following, next_page).await? {
                Outcome::Done(page) => page,
                Outcome::Halted(h) => return Ok(h.stop(task)),
            };
            limit = following;
            page_time = started.elapsed();
        }
    }

    /// The size of the page after `page` (read with `limit` in `page_time`).
    fn following(&self, limit: u32, page: &Batch, page_time: Duration) -> u32 {
        page_limit(
            limit,
            page.rows,
            page.sizing_bytes,
            page_time,
            self.p.budget(),
            self.job.request.options.batch_size,
            self.engine.config.page_bytes,
        )
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
            // After what the task has kept: its checkpoint, or its staged file's last key.
            result = self
                .read_page(task.reached(), task.upto.clone(), limit)
                .await;
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
            if let Some(h) = self.pace(page.bytes, true).await? {
                return Ok(Outcome::Halted(h));
            }
            result = self.write_once(task, page, WriteMode::Upsert, fault).await;
        }
    }

    /// A throttled write: the target's pace goes down (for every writer). A target that has
    /// throttled every write for longer than `max_outage` fails the job.
    async fn throttled(
        &mut self,
        task: &Task,
        error: &ClusterError,
        hint: Option<f64>,
        bytes: usize,
    ) -> Result<(), EngineError> {
        self.turn.throttled += 1;
        self.pacer
            .throttled(self.engine, &task.job_id, hint, bytes)
            .await?;
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
        Ok(())
    }

    /// Waits out a failure with the step's retry policy, keeping the lease; `Some` when the
    /// worker must stop instead.
    async fn wait_out(
        &mut self,
        task: &mut Task,
        error: ClusterError,
    ) -> Result<Option<Halt>, EngineError> {
        let role = error.role();
        match self.p.wait_after(error).await {
            Ok(()) => self.keep_lease(task).await,
            Err(EngineError::OutOfTime) => Ok(Some(Halt::OutOfTime)),
            Err(e @ EngineError::Cluster(_)) => Err(self.vanished(task, role).await.unwrap_or(e)),
            Err(e) => Err(e),
        }
    }

    /// After a call refused for good: whether the collection it read or wrote is gone (dropped
    /// while it was copied), which the servers say in their own ways ("collection not found",
    /// "WAL already closed").
    async fn vanished(&self, task: &Task, role: crate::domain::Role) -> Option<EngineError> {
        let (cluster, database, collection) = match role {
            crate::domain::Role::Source => (&self.reader.cluster, &task.database, &task.collection),
            crate::domain::Role::Target => {
                (&self.target, &task.target_database, &task.target_collection)
            }
        };
        let advice = match role {
            crate::domain::Role::Source => "the rest of it cannot be read",
            crate::domain::Role::Target => "start the job again to copy it anew",
        };
        match cluster.describe_collection(database, collection).await {
            Ok(None) => Some(EngineError::Refused(format!(
                "collection `{database}.{collection}` disappeared from the {role} while it was being copied (was it dropped?); {advice}"
            ))),
            _ => None,
        }
    }

    /// Takes the next write's slot in the paces it keeps to and waits for it; `Some` when the
    /// wait does not fit in the invocation. An unpaced first write of a claim always goes (as
    /// in `halt_before_write`: every claim writes the page it read).
    async fn pace(&mut self, bytes: usize, wrote: bool) -> Result<Option<Halt>, EngineError> {
        match self
            .pacer
            .slot(self.engine, bytes, self.p.budget(), wrote)
            .await?
        {
            Slot::Now => Ok(None),
            Slot::After(wait) => {
                tokio::time::sleep(wait).await;
                Ok(None)
            }
            Slot::TooLate => Ok(Some(Halt::OutOfTime)),
        }
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
            // An outage an earlier invocation recorded, that this one never met (its first
            // calls got through): this page was read, and the last one written, so it is over.
            if let Some(o) = &fresh.outage {
                let answered = match o.role {
                    crate::domain::Role::Source => true,
                    crate::domain::Role::Target => wrote,
                };
                if answered && !self.p.waiting_out(o.role) {
                    self.engine.outage_ended(&self.job.id, o.role, 0).await;
                }
            }
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

    /// One attempt at reading the page after `after` up to `upto` (slowed first if a fault
    /// hook says).
    async fn read_page(
        &self,
        after: Option<Cursor>,
        upto: Option<Cursor>,
        limit: u32,
    ) -> Result<Batch, ClusterError> {
        self.engine.faults.before_page_read().await;
        self.reader.read(after, upto, limit).await
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

    /// The primary keys of a page, in order (for the task's key sample).
    fn page_keys(&self, page: &Batch) -> Vec<Cursor> {
        page.fields
            .iter()
            .find(|f| f.field_name == self.reader.primary.name)
            .and_then(primary_keys)
            .unwrap_or_default()
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
            let keys = self.page_keys(page);
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
pub(super) struct PageReader {
    pub(super) cluster: Arc<dyn Cluster>,
    pub(super) database: String,
    pub(super) collection: String,
    pub(super) partition: Option<String>,
    pub(super) primary: crate::milvus::FieldSchema,
    /// The timestamp pages are read at once the first page pinned it.
    pub(super) read_at: Option<u64>,
    pub(super) skip: Vec<String>,
    /// The job's filter on this collection, if it copies a subset.
    pub(super) filter: Option<String>,
}

impl PageReader {
    /// One attempt at the page after `after`, up to `upto` (the task's end) when it has one.
    async fn read(
        &self,
        after: Option<Cursor>,
        upto: Option<Cursor>,
        limit: u32,
    ) -> Result<Batch, ClusterError> {
        let request = PageRequest {
            database: &self.database,
            collection: &self.collection,
            partition: self.partition.as_deref(),
            primary: &self.primary,
            after: after.as_ref(),
            upto: upto.as_ref(),
            read_at: self.read_at,
            limit,
            skip_fields: &self.skip,
            subset: Selection {
                filter: self.filter.as_deref(),
                partitions: None,
            },
        };
        self.cluster.read_page(&request).await
    }
}
