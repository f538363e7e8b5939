//! The engine: the steps of a job (plan → copy → finish), written once against the ports
//! ([`JobStore`], [`WorkQueue`], [`ClusterConnector`]). It never knows whether it runs in a
//! Lambda invocation or in the CLI's in-process workers.
//!
//! Every step is safe to run twice: messages are delivered at least once and a sweep may race a
//! slow worker. What makes that safe is the store's conditional writes (job versions, task
//! fences), not timing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;

use crate::domain::{
    FieldError, InvalidTransition, Job, JobStatus, Lease, Level, LogEntry, MigrationRequest, Phase,
    Report, MAX_STEP_PANICS,
};
use crate::milvus::{Batch, ClusterConnector, ClusterError};
use crate::queue::{QueueError, Step, WorkMessage, WorkQueue};
use crate::store::{Created, JobStore, StoreError};
use crate::webhook::Notifier;

mod copy;
mod finish;
mod notify;
mod plan;
mod retry;
mod verify;

pub use retry::retry_transient;

/// Why an engine call failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The request is invalid.
    #[error("invalid request: {0}")]
    Invalid(#[from] FieldError),
    /// The job does not exist.
    #[error("job `{0}` not found")]
    NotFound(String),
    /// The call conflicts with the job's state (or an idempotency key's earlier request).
    #[error("{0}")]
    Conflict(String),
    /// A cluster call failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The job store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The work queue failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// A check on the clusters failed; the message says what to do.
    #[error("{0}")]
    Refused(String),
    /// The state machine refused a change (a bug, or a race the caller must re-read).
    #[error(transparent)]
    Transition(#[from] InvalidTransition),
    /// Fault injection: the worker "died" between a write and its checkpoint.
    #[error("injected crash between a write and its checkpoint")]
    InjectedCrash,
    /// The step panicked (a bug): it ended as a crash would, and its message is redelivered.
    #[error("the {step} step panicked: {message}")]
    Panicked {
        /// Which step.
        step: Step,
        /// The panic's message.
        message: String,
    },
}

/// The text of a panic's payload.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Tunables of the engine (the same for every job it runs).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How long a task lease lasts without a checkpoint.
    pub lease_ttl: Duration,
    /// Stop this long before an invocation's deadline.
    pub safety_margin: Duration,
    /// The most attempts at one outcome webhook.
    pub webhook_attempts: u32,
    /// The wait before the second attempt; each later wait is four times longer (capped at an
    /// hour, with jitter), unless the receiver says `Retry-After`.
    pub webhook_backoff: Duration,
    /// How long one attempt may take (the notifier's timeout).
    pub webhook_timeout: Duration,
}

impl EngineConfig {
    /// The lease TTL as a duration on the wall clock that leases are stamped with.
    pub(crate) fn lease(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.lease_ttl).unwrap_or(chrono::Duration::seconds(60))
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            lease_ttl: Duration::from_secs(60),
            safety_margin: Duration::from_secs(20),
            webhook_attempts: 8,
            webhook_backoff: Duration::from_secs(5),
            webhook_timeout: Duration::from_secs(15),
        }
    }
}

/// Describes a source collection a job is migrating; it vanishing is the job's failure.
pub(crate) async fn source_collection(
    source: &dyn crate::milvus::Cluster,
    database: &str,
    collection: &str,
) -> Result<crate::milvus::CollectionInfo, EngineError> {
    retry_transient(|| source.describe_collection(database, collection))
        .await?
        .ok_or_else(|| {
            EngineError::Refused(format!(
                "collection `{database}.{collection}` disappeared from the source"
            ))
        })
}

/// Fault injection for tests of crash recovery: make the N-th page write of this engine "die"
/// before its checkpoint, leaving its lease held. Production code never sets it.
#[derive(Debug, Default)]
pub struct Faults {
    crash_after_write: AtomicU64,
    lose_write: AtomicU64,
    corrupt_write: AtomicU64,
    writes: AtomicU64,
    panic_step: std::sync::Mutex<Option<Step>>,
    panics_left: AtomicU64,
}

impl Faults {
    /// Crash once, right after the `n`-th page write (counted across the engine's workers).
    pub fn crash_after_write(n: u64) -> Self {
        Self {
            crash_after_write: AtomicU64::new(n),
            ..Default::default()
        }
    }

    /// Once, skip the `n`-th page write but report it written and checkpoint it: a write a
    /// server lost, which only verification can notice.
    pub fn lose_write(n: u64) -> Self {
        Self {
            lose_write: AtomicU64::new(n),
            ..Default::default()
        }
    }

    /// Once, change one value of the `n`-th page before writing it: a write a server garbled,
    /// which counts cannot notice and content verification must.
    pub fn corrupt_write(n: u64) -> Self {
        Self {
            corrupt_write: AtomicU64::new(n),
            ..Default::default()
        }
    }

    /// Panic (a bug, as far as the runner can tell) the first `times` times a `step` reaches
    /// its fault point: after taking its lease, so that the panic leaves it held as a crash
    /// would. Plan and finish panic after taking the step lease, copy after a page write
    /// (before its checkpoint), deliver after claiming an attempt.
    pub fn panic_in(step: Step, times: u64) -> Self {
        Self {
            panic_step: std::sync::Mutex::new(Some(step)),
            panics_left: AtomicU64::new(times),
            ..Default::default()
        }
    }

    /// Parses a fault hook as the CLI's tests name it: `panic:STEP[:TIMES]` (STEP one of plan,
    /// copy, finish, deliver; TIMES defaults to always).
    #[cfg(feature = "test-support")]
    pub fn parse(spec: &str) -> Result<Self, String> {
        let parts: Vec<&str> = spec.split(':').collect();
        let step = |s: &str| {
            [Step::Plan, Step::Work, Step::Finish, Step::Deliver]
                .into_iter()
                .find(|k| k.as_str() == s)
                .ok_or_else(|| format!("`{s}` is not a step (plan, copy, finish, deliver)"))
        };
        match parts.as_slice() {
            ["panic", s] => Ok(Self::panic_in(step(s)?, u64::MAX)),
            ["panic", s, n] => Ok(Self::panic_in(
                step(s)?,
                n.parse()
                    .map_err(|_| format!("`{n}` is not a number of times"))?,
            )),
            _ => Err(format!("`{spec}` is not a fault hook (panic:STEP[:TIMES])")),
        }
    }

    /// Panics if this is a step and a time to panic.
    pub(crate) fn maybe_panic(&self, step: Step) {
        let chosen = self
            .panic_step
            .lock()
            .map(|s| *s == Some(step))
            .unwrap_or(false);
        if chosen
            && self
                .panics_left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            panic!("injected panic in the {step} step");
        }
    }

    /// The page to write: the page itself, or a garbled copy when this is the write to corrupt.
    fn maybe_corrupt<'a>(&self, page: &'a Batch, primary: &str) -> std::borrow::Cow<'a, Batch> {
        let n = self.corrupt_write.load(Ordering::SeqCst);
        if n == 0 || self.writes.load(Ordering::SeqCst) + 1 != n {
            return std::borrow::Cow::Borrowed(page);
        }
        let mut garbled = page.clone();
        garble_first_value(&mut garbled, primary);
        std::borrow::Cow::Owned(garbled)
    }

    /// Whether the next page write is the one to lose.
    fn loses_next_write(&self) -> bool {
        let n = self.lose_write.load(Ordering::SeqCst);
        n != 0 && self.writes.load(Ordering::SeqCst) + 1 == n
    }

    fn after_write(&self) -> Result<(), EngineError> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.crash_after_write.load(Ordering::SeqCst) {
            return Err(EngineError::InjectedCrash);
        }
        Ok(())
    }
}

/// Changes the first entity's value in the first column that is not the primary key.
fn garble_first_value(page: &mut Batch, primary: &str) {
    use crate::milvus::batch::{field_data, scalar_field, vector_field};
    for column in page.fields.iter_mut().filter(|f| f.field_name != primary) {
        match &mut column.field {
            Some(field_data::Field::Vectors(v)) => {
                if let Some(vector_field::Data::FloatVector(d)) = &mut v.data {
                    if let Some(x) = d.data.first_mut() {
                        *x += 0.25;
                        return;
                    }
                }
            }
            Some(field_data::Field::Scalars(s)) => match &mut s.data {
                Some(scalar_field::Data::StringData(d)) if !d.data.is_empty() => {
                    d.data[0].push('~');
                    return;
                }
                Some(scalar_field::Data::DoubleData(d)) if !d.data.is_empty() => {
                    d.data[0] += 1.0;
                    return;
                }
                _ => {}
            },
            _ => {}
        }
    }
}

/// The time one invocation may spend: it stops copying before `deadline` minus a margin.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    deadline: Option<Instant>,
    margin: Duration,
    span: Option<Duration>,
}

impl Budget {
    /// No limit (a local run without `--max-run`).
    pub fn unlimited() -> Self {
        Self {
            deadline: None,
            margin: Duration::ZERO,
            span: None,
        }
    }

    /// Time left = the smaller of `time_left` and `max_run`, less `margin`. A `time_left` of
    /// zero or above a day makes no sense for one invocation and is ignored.
    pub fn new(time_left: Option<Duration>, max_run: Option<Duration>, margin: Duration) -> Self {
        let sane = time_left.filter(|t| !t.is_zero() && *t < Duration::from_secs(86_400));
        let left = match (sane, max_run) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match left {
            None => Self::unlimited(),
            Some(left) => Self {
                deadline: Some(Instant::now() + left),
                // The margin never eats more than a quarter of a short budget.
                margin: margin.min(left / 4),
                span: Some(left),
            },
        }
    }

    /// True when another page taking about `page_time` would not end before the margin.
    pub fn exhausted(&self, page_time: Duration) -> bool {
        self.deadline
            .is_some_and(|d| Instant::now() + self.margin + page_time >= d)
    }

    /// The most one page should take: a quarter of the invocation, so that an invocation
    /// always fits several pages. `None` without a limit.
    pub fn page_time_cap(&self) -> Option<Duration> {
        self.span.map(|s| s / 4)
    }
}

/// The smallest page the time rule shrinks to.
const MIN_TIMED_PAGE: u32 = 100;

/// The next page size, in entities: by bytes (see [`crate::milvus::batch::next_limit`]) and,
/// under an invocation budget, shrunk in proportion when the last page took longer than the
/// budget's page-time cap.
pub(crate) fn page_limit(
    current: u32,
    rows: usize,
    bytes: usize,
    page_time: Duration,
    budget: &Budget,
    max: u32,
) -> u32 {
    let by_bytes = crate::milvus::batch::next_limit(current, rows, bytes, max);
    match budget.page_time_cap() {
        Some(cap) if page_time > cap && !page_time.is_zero() => {
            let scaled = (rows as f64 * cap.as_secs_f64() / page_time.as_secs_f64()) as u32;
            // At most halving per page, and never below a floor that any invocation fits.
            scaled
                .max(current / 2)
                .max(MIN_TIMED_PAGE.min(by_bytes))
                .min(by_bytes)
        }
        _ => by_bytes,
    }
}

/// What a handled message led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// The step ran.
    Done,
    /// The job was already over, or the step had nothing to do.
    Nothing,
}

/// Renews a step lease in the background while its step runs; stops when dropped.
pub(crate) struct Heartbeat(tokio::task::JoinHandle<()>);

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The migration engine (cheap to clone: its parts are shared).
#[derive(Clone)]
pub struct Engine {
    pub(crate) store: Arc<dyn JobStore>,
    pub(crate) queue: Arc<dyn WorkQueue>,
    pub(crate) clusters: Arc<dyn ClusterConnector>,
    pub(crate) notifier: Arc<dyn Notifier>,
    pub(crate) config: EngineConfig,
    pub(crate) faults: Arc<Faults>,
}

impl Engine {
    /// An engine on the given ports.
    pub fn new(
        store: Arc<dyn JobStore>,
        queue: Arc<dyn WorkQueue>,
        clusters: Arc<dyn ClusterConnector>,
        notifier: Arc<dyn Notifier>,
        config: EngineConfig,
    ) -> Self {
        Self {
            store,
            queue,
            clusters,
            notifier,
            config,
            faults: Arc::new(Faults::default()),
        }
    }

    /// Installs fault injection (tests of crash recovery only).
    pub fn with_faults(mut self, faults: Faults) -> Self {
        self.faults = Arc::new(faults);
        self
    }

    /// The job store.
    pub fn store(&self) -> &Arc<dyn JobStore> {
        &self.store
    }

    /// Accepts a request: validates it, writes the job (once per idempotency key) and enqueues
    /// its plan. Returns the job and whether it is new.
    pub async fn start(&self, request: MigrationRequest) -> Result<(Job, bool), EngineError> {
        let now = Utc::now();
        request.validate(now)?;
        if let Some(w) = &request.webhook {
            // Refused now rather than at the end of a long job.
            self.notifier
                .check_url(&w.url)
                .map_err(|e| FieldError::new("webhook.url", e))?;
        }
        let job = Job::new(Job::new_id(), request, now);
        match self.store.create_job(&job).await? {
            Created::New(job) => {
                self.queue
                    .send(WorkMessage::Plan {
                        job_id: job.id.clone(),
                    })
                    .await?;
                tracing::info!(job = %job.id, "job accepted");
                Ok((job, true))
            }
            Created::Existing(existing) if existing.fingerprint == job.fingerprint => {
                Ok((existing, false))
            }
            Created::Existing(existing) => Err(EngineError::Conflict(format!(
                "idempotency key `{}` was already used for a different request (job {})",
                job.request.idempotency_key.unwrap_or_default(),
                existing.id
            ))),
        }
    }

    /// Runs one step of a job.
    pub async fn handle(
        &self,
        message: &WorkMessage,
        budget: Budget,
    ) -> Result<Handled, EngineError> {
        let (job_id, result) = match message {
            WorkMessage::Plan { job_id } => (job_id, self.plan(job_id).await),
            WorkMessage::Work { job_id } => (job_id, self.work(job_id, budget).await),
            WorkMessage::Finish { job_id } => (job_id, self.finish(job_id, budget).await),
            WorkMessage::Deliver { job_id } => (job_id, self.deliver(job_id, budget).await),
        };
        match result {
            // A crash is not the job's failure: its task is picked up again.
            Err(e @ (EngineError::InjectedCrash | EngineError::Panicked { .. })) => Err(e),
            // The store or queue itself failing leaves the job as it is, for a retry.
            Err(e @ (EngineError::Store(_) | EngineError::Queue(_))) => Err(e),
            Err(e) => {
                self.fail(job_id, e.to_string()).await?;
                Ok(Handled::Done)
            }
            ok => ok,
        }
    }

    /// Runs one step as [`Engine::handle`] does, in a task of its own, so that a panic inside
    /// it (a bug) ends the step as a crash would: whatever lease it held is left to expire,
    /// the panic is counted and logged on the job, and the caller redelivers the message. At
    /// the [`MAX_STEP_PANICS`]-th panic the job fails (or, once it ended, its webhook is
    /// given up) with the panic's message, so a step that keeps panicking never hangs a job.
    pub async fn handle_guarded(
        &self,
        message: &WorkMessage,
        budget: Budget,
    ) -> Result<Handled, EngineError> {
        let (engine, owned) = (self.clone(), message.clone());
        let step = tokio::spawn(async move { engine.handle(&owned, budget).await });
        match step.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => {
                let what = panic_message(e.into_panic());
                tracing::error!(job = %message.job_id(), "the {} step panicked: {what}", message.step());
                self.record_panic(message, &what).await?;
                Err(EngineError::Panicked {
                    step: message.step(),
                    message: what,
                })
            }
            Err(e) => Err(EngineError::Panicked {
                step: message.step(),
                message: format!("the step was cancelled: {e}"),
            }),
        }
    }

    /// Counts a panic on the job and logs it; gives the job (or its webhook) up at the limit.
    async fn record_panic(&self, message: &WorkMessage, what: &str) -> Result<(), EngineError> {
        let job_id = message.job_id();
        let job = self
            .update_job(job_id, |job| {
                job.panics += 1;
                Ok(true)
            })
            .await?;
        let step = message.step();
        let n = job.panics;
        if n < MAX_STEP_PANICS {
            self.log(
                job_id,
                Level::Error,
                None,
                format!("the {step} step panicked ({n} of at most {MAX_STEP_PANICS}), and runs again like a crashed invocation: {what}"),
            )
            .await;
            return Ok(());
        }
        let reason = format!("the {step} step panicked {n} times, the most a job allows (a bug in vecmigrate; please report it): {what}");
        if job.status.is_terminal() {
            self.give_up_webhook(job_id, &reason).await
        } else {
            self.fail(job_id, reason).await
        }
    }

    /// Asks a job to stop. Workers stop at their next page; a job with nobody working on it
    /// is cancelled at once. Cancelling a finished job is a conflict.
    pub async fn cancel(&self, job_id: &str) -> Result<Job, EngineError> {
        let job = self
            .update_job(job_id, |job| {
                if job.status.is_terminal() {
                    return Err(EngineError::Conflict(format!(
                        "job `{}` already ended {}; nothing to cancel",
                        job.id,
                        job.status.as_str()
                    )));
                }
                let changed = !job.cancel_requested;
                job.cancel_requested = true;
                Ok(changed)
            })
            .await?;
        self.log(job_id, Level::Warn, None, "cancel requested".into())
            .await;
        let tasks = self.store.list_tasks(job_id).await?;
        let nobody_working = !tasks.iter().any(|t| t.leased(Utc::now()));
        if job.status == JobStatus::Pending || (job.phase == Some(Phase::Copy) && nobody_working) {
            return self.end_cancelled(job_id).await;
        }
        Ok(job)
    }

    /// Looks after a job nobody may be watching: restarts a plan or finish step whose invocation
    /// died (its step lease expired), re-enqueues work for tasks whose holder died (lease
    /// expired), finishes a job whose tasks are all done, and ends a job past its window.
    pub async fn sweep(&self, job_id: &str) -> Result<(), EngineError> {
        let Some(job) = self.store.get_job(job_id).await? else {
            return Err(EngineError::NotFound(job_id.into()));
        };
        if job.status.is_terminal() {
            // An outcome webhook whose deliverer died or ran out of time.
            if job.webhook_due().is_some_and(|due| due <= Utc::now()) {
                self.after_end(&job).await?;
            }
            return Ok(());
        }
        if self.past_window(&job).await? {
            return Ok(());
        }
        let now = Utc::now();
        // A step whose holder died; one that has not started yet still has its message queued.
        let step_idle = job.step_lease.as_ref().is_some_and(|l| l.expires_at <= now);
        match job.phase {
            // A plan or finish whose invocation died: run it again.
            Some(Phase::Preflight | Phase::Schema) if step_idle => {
                self.queue
                    .send(WorkMessage::Plan {
                        job_id: job_id.into(),
                    })
                    .await?;
                return Ok(());
            }
            Some(Phase::Index | Phase::Verify) if step_idle => {
                self.queue
                    .send(WorkMessage::Finish {
                        job_id: job_id.into(),
                    })
                    .await?;
                return Ok(());
            }
            Some(Phase::Copy) => {}
            _ => return Ok(()),
        }
        let tasks = self.store.list_tasks(job_id).await?;
        if job.cancel_requested && !tasks.iter().any(|t| t.leased(now)) {
            self.end_cancelled(job_id).await?;
            return Ok(());
        }
        // Tasks released at a time limit already have their continuation message; a task whose
        // holder died has none, and its expired lease says so.
        let orphaned = tasks.iter().filter(|t| t.lease_expired(now)).count();
        let wanted = orphaned.min(job.request.options.max_workers as usize);
        for _ in 0..wanted {
            self.queue
                .send(WorkMessage::Work {
                    job_id: job_id.into(),
                })
                .await?;
        }
        if tasks
            .iter()
            .all(|t| t.status == crate::domain::TaskStatus::Done)
        {
            self.copy_finished(job_id).await?;
        }
        Ok(())
    }

    /// The job with its progress and log.
    pub async fn report(&self, job_id: &str) -> Result<Report, EngineError> {
        let job = self
            .store
            .get_job(job_id)
            .await?
            .ok_or_else(|| EngineError::NotFound(job_id.into()))?;
        let tasks = self.store.list_tasks(job_id).await?;
        let log = self.store.list_logs(job_id).await?;
        Ok(Report::new(job, &tasks, log, Utc::now()))
    }

    /// Reads, changes and conditionally writes a job, retrying when another writer got there
    /// first. `change` returns whether it changed anything; the job is returned as stored.
    pub(crate) async fn update_job<F>(
        &self,
        job_id: &str,
        mut change: F,
    ) -> Result<Job, EngineError>
    where
        F: FnMut(&mut Job) -> Result<bool, EngineError>,
    {
        for _ in 0..50 {
            let mut job = self
                .store
                .get_job(job_id)
                .await?
                .ok_or_else(|| EngineError::NotFound(job_id.into()))?;
            if !change(&mut job)? {
                return Ok(job);
            }
            match self.store.save_job(&job).await {
                Ok(saved) => return Ok(saved),
                Err(StoreError::Conflict(_)) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(EngineError::Conflict(format!(
            "job `{job_id}` is changing too fast to update; try again"
        )))
    }

    /// Takes (or renews) the job's step lease for `owner` while the job is in one of `phases`.
    /// Returns false when another live invocation holds it, or the job moved on: the caller
    /// then leaves the step alone.
    pub(crate) async fn hold_step(
        &self,
        job_id: &str,
        owner: &str,
        phases: &[Phase],
    ) -> Result<bool, EngineError> {
        let now = Utc::now();
        let in_step =
            |job: &Job| !job.status.is_terminal() && job.phase.is_some_and(|p| phases.contains(&p));
        let job = self
            .update_job(job_id, |job| {
                if !in_step(job) {
                    return Ok(false);
                }
                if job
                    .step_lease
                    .as_ref()
                    .is_some_and(|l| l.owner != owner && l.expires_at > now)
                {
                    return Ok(false);
                }
                job.step_lease = Some(Lease {
                    owner: owner.to_owned(),
                    expires_at: now + self.config.lease(),
                });
                Ok(true)
            })
            .await?;
        Ok(in_step(&job) && job.step_lease.as_ref().is_some_and(|l| l.owner == owner))
    }

    /// Keeps the step lease of `owner` alive every third of its TTL until the guard is dropped,
    /// so that one long call (loading a large collection) does not let the sweep start the
    /// step a second time.
    pub(crate) fn step_heartbeat(
        &self,
        job_id: &str,
        owner: &str,
        phases: &'static [Phase],
    ) -> Heartbeat {
        let (engine, job_id, owner) = (self.clone(), job_id.to_owned(), owner.to_owned());
        let every = self.config.lease_ttl / 3;
        Heartbeat(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match engine.hold_step(&job_id, &owner, phases).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => tracing::warn!(job = %job_id, "cannot renew the step lease: {e}"),
                }
            }
        }))
    }

    /// Gives up `owner`'s step lease by expiring it, so the next invocation can take the step
    /// at once, and the sweep restarts it should the continuation message be lost.
    pub(crate) async fn release_step(&self, job_id: &str, owner: &str) -> Result<(), EngineError> {
        let now = Utc::now();
        self.update_job(job_id, |job| match job.step_lease.as_mut() {
            Some(l) if l.owner == owner && l.expires_at > now => {
                l.expires_at = now;
                Ok(true)
            }
            _ => Ok(false),
        })
        .await
        .map(|_| ())
    }

    /// Moves the job into `phase` if it is not there yet; returns whether this call moved it.
    pub(crate) async fn advance(&self, job_id: &str, phase: Phase) -> Result<bool, EngineError> {
        let mut moved = false;
        self.update_job(job_id, |job| {
            // The closure runs again after a conflict: only its last run counts.
            moved = false;
            let ahead = job.status.is_terminal() || job.phase.is_some_and(|p| p >= phase);
            if ahead {
                return Ok(false);
            }
            job.enter(phase, Utc::now())?;
            moved = true;
            Ok(true)
        })
        .await?;
        Ok(moved)
    }

    /// Ends the job FAILED with `message` (unless it already ended).
    pub(crate) async fn fail(&self, job_id: &str, message: String) -> Result<(), EngineError> {
        tracing::warn!(job = %job_id, "job failed: {message}");
        self.log(job_id, Level::Error, None, message.clone()).await;
        self.end_job(job_id, |job| {
            Ok(job.finish(JobStatus::Failed, Some(message.clone()), Utc::now())?)
        })
        .await
        .map(|_| ())
    }

    /// Ends the job with `finish` (which calls `Job::finish`) unless it already ended, then
    /// sends its outcome webhook. Returns the job as stored.
    pub(crate) async fn end_job<F>(&self, job_id: &str, mut finish: F) -> Result<Job, EngineError>
    where
        F: FnMut(&mut Job) -> Result<(), EngineError>,
    {
        let mut ended = false;
        let job = self
            .update_job(job_id, |job| {
                // The closure runs again after a conflict: only its last run counts.
                ended = false;
                if job.status.is_terminal() {
                    return Ok(false);
                }
                finish(job)?;
                ended = true;
                Ok(true)
            })
            .await?;
        if ended {
            self.after_end(&job).await?;
        }
        Ok(job)
    }

    /// Ends the job CANCELLED (unless it already ended).
    pub(crate) async fn end_cancelled(&self, job_id: &str) -> Result<Job, EngineError> {
        let job = self
            .end_job(job_id, |job| {
                Ok(job.finish(JobStatus::Cancelled, None, Utc::now())?)
            })
            .await?;
        if job.status == JobStatus::Cancelled {
            self.log(
                job_id,
                Level::Warn,
                None,
                "job cancelled; target collections keep what was copied (see the report)".into(),
            )
            .await;
        }
        Ok(job)
    }

    /// Returns whether the job's maintenance window is over, and then ends it FAILED, once no
    /// worker holds a task: each stops at its next page boundary and the last one out (or the
    /// sweep, once a dead worker's lease expired) ends the job with the final counts.
    pub(crate) async fn past_window(&self, job: &Job) -> Result<bool, EngineError> {
        let Some(not_after) = job.request.options.not_after else {
            return Ok(false);
        };
        let now = Utc::now();
        if now < not_after {
            return Ok(false);
        }
        let tasks = self.store.list_tasks(&job.id).await?;
        if tasks.iter().any(|t| t.leased(now)) {
            return Ok(true);
        }
        let copied: u64 = tasks.iter().map(|t| t.copied).sum();
        let total: u64 = job.collections.iter().filter_map(|c| c.source_count).sum();
        self.fail(
            &job.id,
            format!(
                "stopped at the end of the maintenance window (not_after {not_after}) with {copied} of {total} entities copied; the target collections hold partial data"
            ),
        )
        .await?;
        Ok(true)
    }

    /// Appends to the job's log; a failing log write is reported but never fails the job.
    pub(crate) async fn log(
        &self,
        job_id: &str,
        level: Level,
        collection: Option<String>,
        message: String,
    ) {
        let entry = LogEntry {
            time: Utc::now(),
            level,
            collection,
            message,
        };
        if let Err(e) = self.store.append_log(job_id, &entry).await {
            tracing::warn!(job = %job_id, "cannot write the job log: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_takes_smaller_limit_and_ignores_nonsense() {
        let b = Budget::new(Some(Duration::from_secs(0)), None, Duration::from_secs(1));
        assert!(b.deadline.is_none(), "a zero deadline is ignored");
        let b = Budget::new(Some(Duration::from_secs(10 * 86_400)), None, Duration::ZERO);
        assert!(b.deadline.is_none(), "an absurd deadline is ignored");
        let b = Budget::new(
            Some(Duration::from_secs(900)),
            Some(Duration::from_secs(2)),
            Duration::from_secs(30),
        );
        assert_eq!(
            b.margin,
            Duration::from_millis(500),
            "margin capped at a quarter"
        );
        assert!(!b.exhausted(Duration::from_millis(100)));
        assert!(b.exhausted(Duration::from_secs(2)));
        assert!(!Budget::unlimited().exhausted(Duration::from_secs(1_000_000)));
    }

    #[test]
    fn slow_pages_shrink_under_a_budget_only() {
        let budget = Budget::new(None, Some(Duration::from_secs(2)), Duration::ZERO);
        // 1,000 rows took 1 s against a 0.5 s cap: the next page halves.
        assert_eq!(
            page_limit(1000, 1000, 1000, Duration::from_secs(1), &budget, 5000),
            500
        );
        // Fast pages follow the byte rule (at most doubling).
        assert_eq!(
            page_limit(1000, 1000, 1000, Duration::from_millis(10), &budget, 5000),
            2000
        );
        // Without a budget, time never shrinks a page.
        assert_eq!(
            page_limit(
                1000,
                1000,
                1000,
                Duration::from_secs(60),
                &Budget::unlimited(),
                5000
            ),
            2000
        );
        assert_eq!(
            page_limit(300, 300, 300, Duration::from_secs(100), &budget, 5000),
            150,
            "at most halving"
        );
        assert_eq!(
            page_limit(120, 120, 120, Duration::from_secs(100), &budget, 5000),
            100,
            "never below the floor"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn of_two_racing_advances_exactly_one_moves_the_job() {
        // Two workers finishing the last tasks at once both try to move the job to index; only
        // the one whose write landed may enqueue the finish (a conflict makes the loser retry).
        let dir = tempfile::tempdir().unwrap();
        let store =
            Arc::new(crate::store::sqlite::SqliteStore::open(&dir.path().join("s")).unwrap());
        let engine = Arc::new(Engine::new(
            store.clone(),
            Arc::new(crate::queue::inprocess::InProcessQueue::new()),
            Arc::new(crate::milvus::grpc::MilvusConnector::new(None, None)),
            crate::webhook::sender::HttpNotifier::local(None),
            EngineConfig::default(),
        ));
        let request = MigrationRequest::from_json(
            r#"{"source":{"uri":"http://127.0.0.1:1"},"target":{"uri":"http://127.0.0.1:2"},
                "databases":[{"name":"default"}]}"#,
        )
        .unwrap();
        for _ in 0..40 {
            let mut job = Job::new(Job::new_id(), request.clone(), Utc::now());
            for phase in [Phase::Preflight, Phase::Schema, Phase::Copy] {
                job.enter(phase, Utc::now()).unwrap();
            }
            store.create_job(&job).await.unwrap();
            let racers: Vec<_> = (0..2)
                .map(|_| {
                    let (engine, id) = (engine.clone(), job.id.clone());
                    tokio::spawn(async move { engine.advance(&id, Phase::Index).await.unwrap() })
                })
                .collect();
            let mut moved = 0;
            for r in racers {
                moved += usize::from(r.await.unwrap());
            }
            assert_eq!(moved, 1, "exactly one advance moves the job");
        }
    }

    #[test]
    fn faults_fire_once_at_the_nth_write() {
        let f = Faults::crash_after_write(2);
        assert!(f.after_write().is_ok());
        assert!(matches!(f.after_write(), Err(EngineError::InjectedCrash)));
        assert!(f.after_write().is_ok());
        assert!(Faults::default().after_write().is_ok());
    }
}
