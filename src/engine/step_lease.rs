//! Step leases: only one invocation runs a job's plan or finish at a time. The step takes the
//! lease on the job record (owner and expiry), renews it while it runs, and gives it up by
//! expiring it, so that the sweep restarts a step whose holder died.

use chrono::Utc;

use super::{Engine, EngineError};
use crate::domain::{Job, Lease, Phase};

/// Renews a step lease in the background while its step runs; stops when dropped.
pub(crate) struct Heartbeat(tokio::task::JoinHandle<()>);

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Engine {
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
                    Err(e) => tracing::warn!(job_id = %job_id, "cannot renew the step lease: {e}"),
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
}
