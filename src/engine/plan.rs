//! Plan: the step that runs preflight ([`super::preflight`]), then creates the target schema
//! and cuts the copy into tasks ([`super::schema`]). Only one invocation plans a job at a time
//! (its step lease).

use std::sync::Arc;

use chrono::Utc;

use super::retry::Patience;
use super::{Budget, Engine, EngineError, Handled};
use crate::domain::{Job, Level, Phase, Problem, Role};
use crate::milvus::Cluster;
use crate::queue::{Step, WorkMessage};

impl Engine {
    /// The job's two clusters, connected (an outage is waited out as for any call).
    pub(crate) async fn clusters(
        &self,
        p: &Patience<'_>,
        job: &Job,
    ) -> Result<(Arc<dyn Cluster>, Arc<dyn Cluster>), EngineError> {
        let source = p
            .call(|| self.clusters.connect(Role::Source, &job.request.source))
            .await?;
        let target = p
            .call(|| self.clusters.connect(Role::Target, &job.request.target))
            .await?;
        Ok((source, target))
    }

    /// The plan step: preflight, then the target schema and the tasks.
    pub(crate) async fn plan(&self, job_id: &str, budget: Budget) -> Result<Handled, EngineError> {
        let job = self.job(job_id).await?;
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
        let first = match job.request.target.new_cluster {
            Some(_) => Phase::Provision,
            None => Phase::Preflight,
        };
        self.advance(job_id, first).await?;
        // One planner at a time: a duplicated message finds the step taken and leaves it.
        let owner = format!("p-{}", uuid::Uuid::new_v4().simple());
        const PLANNING: &[Phase] = &[Phase::Provision, Phase::Preflight, Phase::Schema];
        if !self.hold_step(job_id, &owner, PLANNING).await? {
            return Ok(Handled::Nothing);
        }
        let heartbeat = self.step_heartbeat(job_id, &owner, PLANNING);
        self.faults.maybe_panic(Step::Plan);
        let job = self.job(job_id).await?;
        let p = self.patience(&job, budget);
        match self.plan_held(&p, &job, &owner).await {
            // An outage outlasted the invocation: the next one continues.
            Err(EngineError::OutOfTime) => {
                drop(heartbeat);
                self.release_step(job_id, &owner).await?;
                self.queue.send(WorkMessage::plan(job_id)).await?;
                Ok(Handled::Done)
            }
            other => other,
        }
    }

    /// Resolves the job's clusters given by id (recording their endpoints and what the control
    /// plane said on the job) and applies the plan-tier rule: the first of preflight's checks.
    /// A cluster that could not be resolved ends preflight here; the rule's refusal is returned,
    /// to be reported with the rest of preflight's findings.
    async fn locate_job(
        &self,
        p: &Patience<'_>,
        job: &Job,
    ) -> Result<(Job, Vec<Problem>), EngineError> {
        let located = self
            .locate(p, &job.request.source, &job.request.target)
            .await?;
        if !located.reachable() {
            return Err(EngineError::Preflight(located.problems));
        }
        if located.verdict.applied {
            let message = format!("plan tiers: {}", located.verdict.reason);
            self.log(&job.id, Level::Info, None, message).await;
        }
        if located.source == job.request.source && located.target == job.request.target {
            return Ok((job.clone(), located.problems));
        }
        let job = self
            .update_job(&job.id, |j| {
                j.request.source = located.source.clone();
                j.request.target = located.target.clone();
                Ok(true)
            })
            .await?;
        for (role, spec) in [
            (Role::Source, &job.request.source),
            (Role::Target, &job.request.target),
        ] {
            if let Some(line) = super::locate::resolved_line(role, spec) {
                self.log(&job.id, Level::Info, None, line).await;
            }
        }
        Ok((job, located.problems))
    }

    /// The plan step once its lease is held.
    async fn plan_held(
        &self,
        p: &Patience<'_>,
        job: &Job,
        owner: &str,
    ) -> Result<Handled, EngineError> {
        let job_id = &job.id;
        let (provisioned, fresh);
        let (job, p) = if job.phase == Some(Phase::Provision) {
            if self.provision(p, job_id).await?.is_none() {
                return Ok(Handled::Done);
            }
            self.advance(job_id, Phase::Preflight).await?;
            provisioned = self.job(job_id).await?;
            // Preflight's first contact with the new cluster fails fast, as for any target.
            fresh = self.patience(&provisioned, *p.budget());
            (&provisioned, &fresh)
        } else {
            (job, p)
        };
        let located;
        let (job, mut refused) = if job.phase == Some(Phase::Preflight) {
            let (j, refused) = self.locate_job(p, job).await?;
            located = j;
            (&located, refused)
        } else {
            (job, Vec::new())
        };
        let (source, target) = self.clusters(p, job).await?;
        if job.phase == Some(Phase::Preflight) {
            let collections = match self.preflight(p, job, &*source, &*target).await {
                Err(EngineError::Preflight(mut more)) => {
                    refused.append(&mut more);
                    return Err(EngineError::Preflight(refused));
                }
                Ok(_) if !refused.is_empty() => return Err(EngineError::Preflight(refused)),
                other => other?,
            };
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
        self.create_schema(p, job_id, owner, &*source, &*target)
            .await?;
        Ok(Handled::Done)
    }
}
