//! The one retry policy: how a step waits out what a cluster does to it.
//!
//! - **Permanent** failures (a bad request, authentication, a missing collection) and a **full**
//!   target (quota, disk) end the step at once: the job fails with the cluster's words.
//! - **Outages** (connection refused or reset, `UNAVAILABLE`, `DEADLINE_EXCEEDED`, a restart)
//!   and throttled calls other than writes are retried with capped exponential backoff and
//!   jitter. The first failure of an outage is recorded on the job (and logged once), so that
//!   `status` shows the job waiting and the next invocation counts from the same start; the
//!   first success after it closes the record and logs its length. An outage that outlasts the
//!   invocation ends the step with [`EngineError::OutOfTime`] (its task or step is handed to
//!   the next invocation); one that outlasts the job's `max_outage` fails the job, naming the
//!   cluster and the last error.
//! - Throttled **writes** are paced instead (see `pacing`): the copy slows down, never fails.
//!
//! In preflight a cluster that cannot be reached at all is a wrong address more often than an
//! outage, so it fails at once there.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Budget, Engine, EngineError};
use crate::domain::{Job, Level, Outage, Phase, Role};
use crate::milvus::{ClusterError, Failure};

/// The first pause after a failure; each next one doubles.
const FIRST_PAUSE: Duration = Duration::from_millis(200);
/// The longest pause between two attempts.
const MAX_PAUSE: Duration = Duration::from_secs(10);
/// The longest outage a dry run waits out before it reports the cluster as a problem.
const DRY_RUN_OUTAGE: Duration = Duration::from_secs(20);
/// How often an outage's record on the job is brought up to date (calls retried, last error).
const RECORD_EVERY: Duration = Duration::from_secs(10);

/// One step's retry policy, and the outage it is waiting out (if any).
pub(crate) struct Patience<'a> {
    engine: &'a Engine,
    job_id: String,
    budget: Budget,
    max_outage: Duration,
    /// Preflight: a cluster never reached is a wrong address, not an outage.
    first_contact: bool,
    /// Whether outages are recorded on the job (a dry run has no job record).
    recorded: bool,
    state: Mutex<Waiting>,
}

/// The outage a step is in.
#[derive(Debug, Default)]
struct Waiting {
    /// The cluster, and since when (the job's record, when an earlier invocation began it).
    since: Option<(Role, DateTime<Utc>)>,
    /// Failures in a row.
    attempt: u32,
    /// Calls retried since the last record.
    retried: u64,
    /// When the record was last brought up to date.
    recorded: Option<tokio::time::Instant>,
    /// Time spent in pauses, waiting out each cluster (source, target), for the metrics.
    waited: (Duration, Duration),
}

/// The pause before attempt `n` (0-based): doubling from [`FIRST_PAUSE`], capped, with up to
/// half of it added at random so that workers do not retry in step.
pub(crate) fn pause(n: u32) -> Duration {
    let base = FIRST_PAUSE
        .saturating_mul(2u32.saturating_pow(n.min(16)))
        .min(MAX_PAUSE);
    base + base.mul_f64(super::sample::unit() / 2.0)
}

impl Engine {
    /// The retry policy of a step of `job` running under `budget`.
    pub(crate) fn patience(&self, job: &Job, budget: Budget) -> Patience<'_> {
        Patience {
            engine: self,
            job_id: job.id.clone(),
            budget,
            max_outage: job.request.options.max_outage,
            first_contact: job.phase.is_none_or(|p| p == Phase::Preflight),
            recorded: true,
            state: Mutex::new(Waiting::default()),
        }
    }

    /// The same policy for a job that is not in the store (a dry run): outages are waited out
    /// for at most [`DRY_RUN_OUTAGE`] (someone is waiting for the answer), and not recorded.
    pub(crate) fn unrecorded_patience(&self, job: &Job, budget: Budget) -> Patience<'_> {
        let mut patience = self.patience(job, budget);
        patience.recorded = false;
        patience.max_outage = patience.max_outage.min(DRY_RUN_OUTAGE);
        patience
    }

    /// Records that `role` stopped answering (unless an outage of it is recorded already);
    /// returns since when it has been out.
    async fn outage_began(
        &self,
        job_id: &str,
        role: Role,
        error: &ClusterError,
        max_outage: Duration,
    ) -> Result<DateTime<Utc>, EngineError> {
        let now = Utc::now();
        let mut began = false;
        let job = self
            .update_job(job_id, |job| {
                began = false;
                if job.outage.as_ref().is_some_and(|o| o.role == role) {
                    return Ok(false);
                }
                job.outage = Some(Outage {
                    role,
                    since: now,
                    last_error: error.to_string(),
                    retried: 0,
                });
                began = true;
                Ok(true)
            })
            .await?;
        if began {
            let wait = humantime::format_duration(max_outage);
            let what = match error.failure() {
                Failure::Throttled { .. } => "throttles the job's calls",
                _ => "fails the job's calls",
            };
            let message =
                format!("the {role} cluster {what} ({error}); waiting it out for up to {wait}");
            self.log(job_id, Level::Warn, None, message).await;
        }
        Ok(job.outage.map_or(now, |o| o.since))
    }

    /// Brings the outage record up to date: calls retried and the last error.
    async fn outage_goes_on(
        &self,
        job_id: &str,
        role: Role,
        error: &ClusterError,
        retried: u64,
    ) -> Result<(), EngineError> {
        self.update_job(job_id, |job| match job.outage.as_mut() {
            Some(o) if o.role == role => {
                o.retried += retried;
                o.last_error = error.to_string();
                Ok(true)
            }
            _ => Ok(false),
        })
        .await
        .map(|_| ())
    }

    /// Closes the outage record of `role`, and logs how long it lasted.
    pub(super) async fn outage_ended(&self, job_id: &str, role: Role, retried: u64) {
        let mut ended = None;
        let closed = self
            .update_job(job_id, |job| {
                ended = None;
                match job.outage.take() {
                    Some(o) if o.role == role => {
                        ended = Some(o);
                        Ok(true)
                    }
                    other => {
                        job.outage = other;
                        Ok(false)
                    }
                }
            })
            .await;
        if let (Ok(_), Some(o)) = (closed, ended) {
            let lasted = (Utc::now() - o.since).to_std().unwrap_or_default();
            let lasted = humantime::format_duration(Duration::from_secs(lasted.as_secs()));
            let message = format!(
                "the {role} cluster answers again after {lasted}; {} calls were retried",
                o.retried + retried
            );
            self.log(job_id, Level::Info, None, message).await;
        }
    }
}

impl Patience<'_> {
    /// Runs `call` until it succeeds, fails for good, or the outage outlasts the invocation or
    /// the job's `max_outage`.
    pub(crate) async fn call<T, F, Fut>(&self, mut call: F) -> Result<T, EngineError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ClusterError>>,
    {
        loop {
            match call().await {
                Ok(value) => {
                    self.answered().await;
                    return Ok(value);
                }
                Err(e) => self.wait_after(e).await?,
            }
        }
    }

    /// After a failed call: returns once it is worth trying again, or the error that ends
    /// the step.
    pub(crate) async fn wait_after(&self, error: ClusterError) -> Result<(), EngineError> {
        match error.failure() {
            Failure::Permanent | Failure::Full => return Err(error.into()),
            Failure::Outage
                if self.first_contact && matches!(error, ClusterError::Unreachable { .. }) =>
            {
                return Err(error.into())
            }
            Failure::Outage | Failure::Throttled { .. } => {}
        }
        let role = error.role();
        let known = self
            .lock()
            .since
            .filter(|(r, _)| *r == role)
            .map(|(_, s)| s);
        let since = match known {
            Some(since) => since,
            None => {
                let since = if self.recorded {
                    self.engine
                        .outage_began(&self.job_id, role, &error, self.max_outage)
                        .await?
                } else {
                    Utc::now()
                };
                let mut state = self.lock();
                state.since = Some((role, since));
                state.attempt = 0;
                state.recorded = Some(tokio::time::Instant::now());
                since
            }
        };
        let out_for = (Utc::now() - since).to_std().unwrap_or_default();
        if out_for > self.max_outage {
            return Err(EngineError::OutageTooLong {
                role,
                since,
                last_error: error.to_string(),
            });
        }
        let (wait, update) = {
            let mut state = self.lock();
            let wait = pause(state.attempt);
            state.attempt += 1;
            state.retried += 1;
            let due = state.recorded.is_none_or(|t| t.elapsed() >= RECORD_EVERY);
            let update = due.then(|| std::mem::take(&mut state.retried));
            if update.is_some() {
                state.recorded = Some(tokio::time::Instant::now());
            }
            (wait, update)
        };
        if let Some(retried) = update.filter(|_| self.recorded) {
            self.engine
                .outage_goes_on(&self.job_id, role, &error, retried)
                .await?;
        }
        if self.budget.exhausted(wait) || self.engine.is_interrupted() {
            // The step goes on in the next invocation, which counts from the same start.
            return Err(EngineError::OutOfTime);
        }
        {
            let mut state = self.lock();
            match role {
                Role::Source => state.waited.0 += wait,
                Role::Target => state.waited.1 += wait,
            }
        }
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// A call succeeded: an outage this step was waiting out is over.
    pub(crate) async fn answered(&self) {
        let ended = {
            let mut state = self.lock();
            let ended = state.since.take().map(|(role, _)| (role, state.retried));
            state.attempt = 0;
            state.retried = 0;
            ended
        };
        if let Some((role, retried)) = ended.filter(|_| self.recorded) {
            self.engine.outage_ended(&self.job_id, role, retried).await;
        }
    }

    /// Whether this step is waiting out an outage of `role` itself.
    pub(crate) fn waiting_out(&self, role: Role) -> bool {
        self.lock().since.is_some_and(|(r, _)| r == role)
    }

    /// The invocation's budget.
    pub(crate) fn budget(&self) -> &Budget {
        &self.budget
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        // A poisoned lock only means another call panicked; the state is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Patience<'_> {
    /// The step is over: the time it spent waiting out each cluster goes to the metrics.
    fn drop(&mut self) {
        if !self.recorded {
            return;
        }
        let (source, target) = self.lock().waited;
        for (role, waited) in [(Role::Source, source), (Role::Target, target)] {
            if !waited.is_zero() {
                let role = role.to_string();
                self.engine.metric(
                    &self.job_id,
                    Some(("Role", &role)),
                    &[crate::metrics::Metric {
                        name: "OutageSeconds",
                        value: waited.as_secs_f64(),
                        unit: crate::metrics::Unit::Seconds,
                    }],
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_a_cap_with_jitter() {
        for (n, nominal) in [(0, 0.2), (1, 0.4), (3, 1.6), (10, 10.0), (30, 10.0)] {
            let p = pause(n).as_secs_f64();
            assert!(p >= nominal && p <= nominal * 1.5, "pause {n}: {p}");
        }
    }
}
