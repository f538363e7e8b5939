//! The job store port: where jobs, tasks, checkpoints and logs live. Every change that two
//! workers could race on is a conditional write here, never a matter of timing.
//!
//! Adapters: [`sqlite::SqliteStore`] (the embedded default) and [`dynamodb::DynamoStore`]
//! (the Lambda deployment's). Each adapter must pass the shared conformance suite
//! (`store::conformance`, in test builds).

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use crate::domain::pace::Pace;
use crate::domain::{Checkpoint, Job, JobStatus, LogEntry, Task, TaskStatus};

#[cfg(any(test, feature = "test-support"))]
pub mod conformance;
pub mod dynamodb;
pub mod sqlite;

/// A failed store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The job changed since it was read (its version moved): read it again and retry.
    #[error("job `{0}` was changed by someone else; read it again")]
    Conflict(String),
    /// The task's lease is no longer held by this worker: it must stop working on it.
    #[error("lease on task `{0}` was lost to another worker")]
    LeaseLost(String),
    /// The record does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A listing's `next` token that this store never issued.
    #[error("page token `{0}` is not one this store issued")]
    BadPageToken(String),
    /// The store itself failed.
    #[error("job store: {0}")]
    Backend(String),
    /// There is no store where one was to be read (a mistyped path, a missing table).
    #[error("{0}")]
    Missing(String),
}

/// The result of creating a job.
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    /// A new job was written.
    New(Job),
    /// A job with the same idempotency key already exists: it is returned unchanged.
    Existing(Job),
}

/// One page of a job listing.
#[derive(Debug, Clone, PartialEq)]
pub struct JobPage {
    /// Newest first.
    pub jobs: Vec<Job>,
    /// Pass back to get the next page.
    pub next: Option<String>,
}

/// What a conditional task write expects the stored record to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected<'a> {
    /// Its fence.
    pub fence: u64,
    /// Its lease's holder, or none.
    pub owner: Option<&'a str>,
    /// Its revision.
    pub rev: u64,
}

impl<'a> Expected<'a> {
    /// The task as it was read.
    pub fn of(task: &'a Task) -> Self {
        Self {
            fence: task.fence,
            owner: task.lease.as_ref().map(|l| l.owner.as_str()),
            rev: task.rev,
        }
    }
}

/// Durable state of jobs and their tasks.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Writes a new job; if its idempotency key is taken, returns the job that holds it.
    async fn create_job(&self, job: &Job) -> Result<Created, StoreError>;

    /// Reads a job.
    async fn get_job(&self, id: &str) -> Result<Option<Job>, StoreError>;

    /// Lists jobs, newest first, optionally of one status.
    async fn list_jobs(
        &self,
        status: Option<JobStatus>,
        limit: usize,
        next: Option<&str>,
    ) -> Result<JobPage, StoreError>;

    /// Writes `job` if the stored version still equals `job.version`; returns it with the new
    /// version. Fails with [`StoreError::Conflict`] otherwise.
    async fn save_job(&self, job: &Job) -> Result<Job, StoreError>;

    /// Writes the tasks of a job in one transaction; tasks that already exist are left as they are.
    async fn put_tasks(&self, tasks: &[Task]) -> Result<(), StoreError>;

    /// Reads one task.
    async fn get_task(&self, job_id: &str, task_id: &str) -> Result<Option<Task>, StoreError>;

    /// Reads every task of a job, in id order.
    async fn list_tasks(&self, job_id: &str) -> Result<Vec<Task>, StoreError>;

    /// Ended jobs whose outcome webhook is pending and due at `now`, soonest first.
    async fn list_due_webhooks(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Job>, StoreError>;

    /// Replaces a task if its stored fence, lease owner and revision are still as `expected`:
    /// the one conditional write every lease change below is made of. Returns whether it
    /// replaced it. `new.rev` is the revision after `expected.rev`.
    async fn swap_task(&self, expected: &Expected<'_>, new: &Task) -> Result<bool, StoreError>;

    /// Splits a task in one transaction: replaces it by `kept` (its range ending at the first
    /// cut) if it is still as `expected`, and adds `rests` (the ranges after the cuts), none of
    /// whose ids may exist. Returns whether all of it happened; when not, none did.
    async fn split_task(
        &self,
        expected: &Expected<'_>,
        kept: &Task,
        rests: &[Task],
    ) -> Result<bool, StoreError>;

    /// Takes the lease of a claimable task (pending; lease free or expired at `now`).
    /// Returns `None` when the task is not claimable or another worker won the race.
    async fn claim_task(
        &self,
        job_id: &str,
        task_id: &str,
        owner: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Option<Task>, StoreError> {
        let Some(current) = self.get_task(job_id, task_id).await? else {
            return Ok(None);
        };
        if !current.claimable(now) {
            return Ok(None);
        }
        let mut new = current.claimed(owner, now, ttl);
        new.rev = current.rev + 1;
        Ok(self
            .swap_task(&Expected::of(&current), &new)
            .await?
            .then_some(new))
    }

    /// Records a written batch, if `task`'s lease (owner and fence) is still held; extends it.
    async fn checkpoint(
        &self,
        task: &Task,
        checkpoint: &Checkpoint,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Task, StoreError> {
        self.update_held(task, task.checkpointed(checkpoint, now, ttl))
            .await
    }

    /// Extends the lease of a worker that is waiting (an outage, a throttled target), if it
    /// still holds it.
    async fn renew_task(
        &self,
        task: &Task,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Task, StoreError> {
        let mut new = task.clone();
        if let Some(lease) = new.lease.as_mut() {
            lease.expires_at = now + ttl;
        }
        self.update_held(task, new).await
    }

    /// Gives the lease back so another worker can continue at once. The lease is expired
    /// rather than removed: should the continuation message be lost, the sweep sees a task
    /// whose holder is gone and sends work for it.
    async fn release_task(&self, task: &Task) -> Result<(), StoreError> {
        let mut new = task.clone();
        if let Some(lease) = new.lease.as_mut() {
            lease.expires_at = Utc::now();
        }
        self.update_held(task, new).await.map(|_| ())
    }

    /// Marks the task done and frees its lease, if the lease is still held. The lease is
    /// expired rather than removed, so the sweep can tell how long the job has been quiet.
    async fn complete_task(&self, task: &Task) -> Result<Task, StoreError> {
        let mut new = task.clone();
        if let Some(lease) = new.lease.as_mut() {
            lease.expires_at = Utc::now();
        }
        new.status = TaskStatus::Done;
        self.update_held(task, new).await
    }

    /// Replaces `task` by `new` if `task`'s lease is still held, or fails with `LeaseLost`.
    /// Another worker may have split the task meanwhile (its revision moved, its lease did not):
    /// `new` then takes the record's range end (a split only lowers it) and is written again,
    /// so the holder sees the split at its next write and a split is never undone.
    async fn update_held(&self, task: &Task, new: Task) -> Result<Task, StoreError> {
        let owner = task
            .lease
            .as_ref()
            .map(|l| l.owner.clone())
            .ok_or_else(|| StoreError::LeaseLost(task.id.clone()))?;
        let (mut expected_rev, mut new) = (task.rev, new);
        // Each retry follows a split, and a split leaves at least two pages to its holder.
        for _ in 0..16 {
            new.rev = expected_rev + 1;
            let expected = Expected {
                fence: task.fence,
                owner: Some(&owner),
                rev: expected_rev,
            };
            if self.swap_task(&expected, &new).await? {
                return Ok(new);
            }
            match self.get_task(&task.job_id, &task.id).await? {
                Some(now) if now.held_by(&owner, task.fence) && now.rev != expected_rev => {
                    new.upto = now.upto;
                    new.planned = now.planned.map(|p| p.max(new.copied));
                    expected_rev = now.rev;
                }
                _ => break,
            }
        }
        Err(StoreError::LeaseLost(task.id.clone()))
    }

    /// Records the id of a signed request until `until`; false when it is recorded already
    /// and not expired (the request is a replay).
    async fn remember_request_id(&self, id: &str, until: DateTime<Utc>)
        -> Result<bool, StoreError>;

    /// Reads a pace of writes (see [`Pace`]), if one was made.
    async fn get_pace(&self, key: &str) -> Result<Option<Pace>, StoreError>;

    /// Writes `pace` if the stored one is still at `pace.version` (or, at version 0, if there
    /// is none yet); returns it at its new version, or `None` when another writer got there
    /// first.
    async fn save_pace(&self, pace: &Pace) -> Result<Option<Pace>, StoreError>;

    /// Appends to the job's log.
    async fn append_log(&self, job_id: &str, entry: &LogEntry) -> Result<(), StoreError>;

    /// Reads the job's log, oldest first.
    async fn list_logs(&self, job_id: &str) -> Result<Vec<LogEntry>, StoreError>;
}
