//! A job's life seen from outside the steps: starting, cancelling, sweeping, reporting; and the
//! conditional updates every step makes to the job record (moving its phase, ending it,
//! logging).

use std::time::Duration;

use chrono::Utc;

use super::retry::Patience;
use super::{Engine, EngineError};
use crate::domain::{
    FieldError, Job, JobStatus, Level, LogEntry, MigrationRequest, Phase, Problem, Report,
};
use crate::metrics::Metric;
use crate::milvus::{Cluster, CollectionInfo};
use crate::queue::WorkMessage;
use crate::store::{Created, StoreError};

/// Describes a source collection a job is migrating; it vanishing is the job's failure.
pub(crate) async fn source_collection(
    p: &Patience<'_>,
    source: &dyn Cluster,
    database: &str,
    collection: &str,
) -> Result<CollectionInfo, EngineError> {
    p.call(|| source.describe_collection(database, collection))
        .await?
        .ok_or_else(|| {
            EngineError::Refused(format!(
                "collection `{database}.{collection}` disappeared from the source"
            ))
        })
}

impl Engine {
    /// Accepts a request: validates it, writes the job (once per idempotency key) and enqueues
    /// its plan. Returns the job and whether it is new.
    pub async fn start(&self, mut request: MigrationRequest) -> Result<(Job, bool), EngineError> {
        let now = Utc::now();
        self.complete(&mut request)?;
        self.accept_checks(&request, now)?;
        if request.dry_run {
            return Err(EngineError::Invalid(FieldError::new(
                "dry_run",
                "a dry run starts no job; ask for the plan instead (vecmigrate plan, POST /migrations?dry_run=true)",
            )));
        }
        let job = Job::new(Job::new_id(), request, now);
        match self.store.create_job(&job).await? {
            Created::New(job) => {
                self.queue.send(WorkMessage::plan(&job.id)).await?;
                tracing::info!(job_id = %job.id, "job accepted");
                self.metric(&job.id, None, &[Metric::count("JobsStarted", 1)]);
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

    /// Fills in what the deployment decides when a request does not: where a job that may
    /// import stages its files (`VECMIGRATE_STAGING`). Without either, the request is refused
    /// at `options.staging`.
    pub(crate) fn complete(&self, request: &mut MigrationRequest) -> Result<(), FieldError> {
        let o = &mut request.options;
        if o.write_mode == crate::domain::WriteVia::Insert || o.staging.is_some() {
            return Ok(());
        }
        o.staging = self.config.staging.clone();
        if o.staging.is_none() {
            return Err(FieldError::new(
                "options.staging",
                format!(
                    "write_mode \"{}\" stages files for the target to import: give s3://bucket/prefix (for Zilliz Cloud) or an absolute directory the target's server can read (this deployment names no default, VECMIGRATE_STAGING)",
                    o.write_mode.as_str()
                ),
            ));
        }
        Ok(())
    }

    /// What a request must pass before anything is done with it: its own checks, and a
    /// webhook URL the notifier accepts (refused now rather than at the end of a long job).
    pub(crate) fn accept_checks(
        &self,
        request: &MigrationRequest,
        now: chrono::DateTime<Utc>,
    ) -> Result<(), EngineError> {
        request.validate(now)?;
        if let Some(w) = &request.webhook {
            self.notifier
                .check_url(&w.url)
                .map_err(|e| FieldError::new("webhook.url", e))?;
        }
        Ok(())
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
        let job = self.job(job_id).await?;
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
            Some(Phase::Provision | Phase::Preflight | Phase::Schema) if step_idle => {
                self.queue.send(WorkMessage::plan(job_id)).await?;
                return Ok(());
            }
            Some(Phase::Index | Phase::Verify) if step_idle => {
                self.queue.send(WorkMessage::finish(job_id)).await?;
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
        // A task whose holder died has no message, and its expired lease says so. A task
        // released at a time limit has its continuation on the way, but its lease is expired
        // too (in case that message is lost): it counts once it has waited a while unclaimed.
        // And when nobody has held any task for a while (since the copy began, or the last
        // lease ended) while some are left, every work message was lost. The wait matters:
        // a message still on its way would otherwise get a twin, and a second worker beyond
        // `max_workers`.
        let grace = chrono::Duration::from_std(self.config.lease_ttl / 4).unwrap_or_default();
        let expired = tasks
            .iter()
            .filter(|t| t.lease_expired(now - grace))
            .count();
        let last_active = tasks
            .iter()
            .filter_map(|t| t.lease.as_ref().map(|l| l.expires_at))
            .chain(job.phase_since)
            .max();
        let idle =
            !tasks.iter().any(|t| t.leased(now)) && last_active.is_none_or(|at| at <= now - grace);
        let claimable = tasks.iter().filter(|t| t.claimable(now)).count();
        let orphaned = if idle { claimable } else { expired };
        let wanted = orphaned.min(job.request.options.max_workers as usize);
        for _ in 0..wanted {
            self.queue.send(WorkMessage::work(job_id)).await?;
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
        let job = self.job(job_id).await?;
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
            let mut job = self.job(job_id).await?;
            if !change(&mut job)? {
                return Ok(job);
            }
            if self.faults.conflicts_now() {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
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
        self.fail_with(job_id, message, Vec::new()).await
    }

    /// Ends the job FAILED with `message` and the problems behind it (unless it already ended).
    pub(crate) async fn fail_with(
        &self,
        job_id: &str,
        message: String,
        problems: Vec<Problem>,
    ) -> Result<(), EngineError> {
        tracing::info!(job_id = %job_id, "job failed: {message}");
        self.log(job_id, Level::Error, None, message.clone()).await;
        self.end_job(job_id, |job| {
            let error = (message.clone(), problems.clone());
            Ok(job.finish_with(JobStatus::Failed, Some(error), Utc::now())?)
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
            self.ended_metrics(&job);
            self.after_end(&job).await?;
        }
        Ok(job)
    }

    /// The metrics of a job that just ended: its outcome, and what its verification found.
    fn ended_metrics(&self, job: &Job) {
        let outcome = job.status.as_str().to_ascii_lowercase();
        self.metric(
            &job.id,
            Some(("Outcome", &outcome)),
            &[Metric::count("JobsEnded", 1)],
        );
        let mismatched = job
            .collections
            .iter()
            .filter(|c| c.matches == Some(false))
            .count();
        let repaired: u32 = job.collections.iter().map(|c| c.repaired_ranges).sum();
        self.metric(
            &job.id,
            None,
            &[
                Metric::count("VerificationMismatches", mismatched as u64),
                Metric::count("RangesRepaired", repaired.into()),
            ],
        );
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
        let message = if job.phase == Some(Phase::Provision) {
            format!(
                "stopped at the end of the maintenance window (not_after {not_after}) while the new target cluster was being created; nothing was written, and the cluster is left as it is"
            )
        } else {
            format!(
                "stopped at the end of the maintenance window (not_after {not_after}) with {copied} of {total} entities copied; the target collections hold partial data"
            )
        };
        self.fail(&job.id, message).await?;
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
        // The job's log is also the process's: one line each, with the job and collection.
        let at = collection.as_deref();
        match level {
            Level::Info => {
                tracing::info!(target: "vecmigrate::job", job_id, collection = at, "{message}")
            }
            Level::Warn => {
                tracing::warn!(target: "vecmigrate::job", job_id, collection = at, "{message}")
            }
            Level::Error => {
                tracing::error!(target: "vecmigrate::job", job_id, collection = at, "{message}")
            }
        }
        let entry = LogEntry {
            time: Utc::now(),
            level,
            collection,
            message,
        };
        if let Err(e) = self.store.append_log(job_id, &entry).await {
            tracing::warn!(job_id = %job_id, "cannot write the job log: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::domain::Task;
    use crate::engine::EngineConfig;
    use crate::store::JobStore;

    /// An engine on a fresh SQLite store and an in-process queue (its clusters unreachable).
    fn engine_on(
        dir: &tempfile::TempDir,
    ) -> (
        Arc<Engine>,
        Arc<crate::store::sqlite::SqliteStore>,
        crate::queue::inprocess::InProcessQueue,
    ) {
        let store =
            Arc::new(crate::store::sqlite::SqliteStore::open(&dir.path().join("s")).unwrap());
        let queue = crate::queue::inprocess::InProcessQueue::new();
        let credentials: Arc<dyn crate::credentials::Credentials> =
            Arc::new(crate::credentials::TokenResolver::new(None, None));
        let engine = Arc::new(Engine::new(
            store.clone(),
            Arc::new(queue.clone()),
            Arc::new(crate::milvus::grpc::MilvusConnector::new(
                credentials.clone(),
            )),
            crate::webhook::sender::HttpNotifier::local(credentials, Duration::from_secs(1)),
            EngineConfig::default(),
        ));
        (engine, store, queue)
    }

    fn request(max_workers: u32) -> MigrationRequest {
        let mut r = MigrationRequest::from_json(
            r#"{"source":{"uri":"http://127.0.0.1:1"},"target":{"uri":"http://127.0.0.1:2"},
                "databases":[{"name":"default"}]}"#,
        )
        .unwrap();
        r.options.max_workers = max_workers;
        r
    }

    /// Drains the messages already queued.
    async fn queued(queue: &crate::queue::inprocess::InProcessQueue) -> usize {
        let mut n = 0;
        while tokio::time::timeout(Duration::from_millis(20), queue.recv())
            .await
            .is_ok()
        {
            n += 1;
        }
        n
    }

    #[tokio::test]
    async fn the_sweep_sends_work_for_an_idle_copy_only_once_it_has_been_quiet_a_while() {
        // GIVEN a job whose copy just began with two tasks and one worker: its one work
        // message may still be on its way to a worker
        let dir = tempfile::tempdir().unwrap();
        let (engine, store, queue) = engine_on(&dir);
        let mut job = Job::new(Job::new_id(), request(1), Utc::now());
        for phase in [Phase::Preflight, Phase::Schema, Phase::Copy] {
            job.enter(phase, Utc::now()).unwrap();
        }
        store.create_job(&job).await.unwrap();
        let tasks: Vec<_> = ["p1", "p2"]
            .map(|p| Task::new(&job.id, "default", "c", "default", "c", Some(p), 100))
            .into();
        store.put_tasks(&tasks).await.unwrap();
        // WHEN the sweep runs at once, THEN it sends nothing: a twin would be a second worker
        engine.sweep(&job.id).await.unwrap();
        assert_eq!(queued(&queue).await, 0, "no work while the copy is new");
        // WHEN nobody has claimed a task for longer than the grace, THEN the messages were
        // lost, and it sends one per worker slot
        let grace = chrono::Duration::from_std(engine.config.lease_ttl / 4).unwrap();
        let mut quiet = store.get_job(&job.id).await.unwrap().unwrap();
        quiet.phase_since = Some(Utc::now() - grace - chrono::Duration::seconds(1));
        store.save_job(&quiet).await.unwrap();
        engine.sweep(&job.id).await.unwrap();
        assert_eq!(
            queued(&queue).await,
            1,
            "one work message, as max_workers is 1"
        );
        // ... but not just after a task ended (its lease expired now): its worker moves on
        let claimed = store
            .claim_task(
                &job.id,
                &tasks[0].id,
                "w",
                Utc::now(),
                engine.config.lease(),
            )
            .await
            .unwrap()
            .unwrap();
        store.complete_task(&claimed).await.unwrap();
        engine.sweep(&job.id).await.unwrap();
        assert_eq!(
            queued(&queue).await,
            0,
            "the worker that ended a task takes the next"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn of_two_racing_advances_exactly_one_moves_the_job() {
        // Two workers finishing the last tasks at once both try to move the job to index; only
        // the one whose write landed may enqueue the finish (a conflict makes the loser retry).
        let dir = tempfile::tempdir().unwrap();
        let (engine, store, _queue) = engine_on(&dir);
        let request = request(4);
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
}
