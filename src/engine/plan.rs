//! Plan: the step that runs preflight ([`super::preflight`]), then creates the target schema
//! and cuts the copy into tasks ([`super::schema`]). Only one invocation plans a job at a time
//! (its step lease).

use std::sync::Arc;

use chrono::Utc;

use super::{Engine, EngineError, Handled};
use crate::domain::{Job, Level, Phase, Role};
use crate::milvus::Cluster;
use crate::queue::Step;

impl Engine {
    /// The job's two clusters, connected.
    pub(crate) async fn clusters(
        &self,
        job: &Job,
    ) -> Result<(Arc<dyn Cluster>, Arc<dyn Cluster>), EngineError> {
        let source = self
            .clusters
            .connect(Role::Source, &job.request.source)
            .await?;
        let target = self
            .clusters
            .connect(Role::Target, &job.request.target)
            .await?;
        Ok((source, target))
    }

    /// The plan step: preflight, then the target schema and the tasks.
    pub(crate) async fn plan(&self, job_id: &str) -> Result<Handled, EngineError> {
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
        self.advance(job_id, Phase::Preflight).await?;
        // One planner at a time: a duplicated message finds the step taken and leaves it.
        let owner = format!("p-{}", uuid::Uuid::new_v4().simple());
        const PLANNING: &[Phase] = &[Phase::Preflight, Phase::Schema];
        if !self.hold_step(job_id, &owner, PLANNING).await? {
            return Ok(Handled::Nothing);
        }
        let _heartbeat = self.step_heartbeat(job_id, &owner, PLANNING);
        self.faults.maybe_panic(Step::Plan);
        let job = self.job(job_id).await?;
        let (source, target) = self.clusters(&job).await?;
        if job.phase == Some(Phase::Preflight) {
            let collections = self.preflight(&job, &*source, &*target).await?;
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
        self.create_schema(job_id, &owner, &*source, &*target)
            .await?;
        Ok(Handled::Done)
    }
}
