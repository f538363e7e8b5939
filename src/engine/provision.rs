//! Provision: the first step of a job whose target is `target.new_cluster`. It creates the
//! Zilliz Cloud Dedicated cluster once, waits (across invocations) until it is `RUNNING`, and
//! then names it as the target's `cluster_id`, so that the rest of the job migrates to it as to
//! any cluster given by id (locate applies the plan-tier rule to it).
//!
//! Creating once: each create call is recorded on the job before it is made. A later attempt
//! that finds a call recorded without its answer (a lost reply, a crash between the call and
//! its record, a retried plan message) looks the cluster up by name before creating again;
//! and a cluster with that name that exists before the job ever asked is not taken over but
//! refused. Only one invocation plans a job at a time (the step lease), so two attempts never
//! race.

use chrono::Utc;

use super::retry::Patience;
use super::{Engine, EngineError};
use crate::domain::new_cluster::PASSWORD_NOTE;
use crate::domain::{Job, Level, Phase, Problem, Provisioning};
use crate::milvus::zilliz::RUNNING;
use crate::milvus::ClusterError;
use crate::queue::WorkMessage;

/// The statuses a new cluster passes through on its way to `RUNNING`.
const ON_ITS_WAY: [&str; 2] = ["CREATING", "RESUMING"];

impl Engine {
    /// Creates a job's new target cluster now, for a caller that answers its id at once (the
    /// Zilliz-compatible "Migrate to New Dedicated Cluster"), under the plan step's lease, so
    /// the plan step finds it recorded and only waits for it. `None` when the cluster could
    /// not be created yet (another invocation holds the step, the budget ran out, the control
    /// plane refused): the plan step creates it, or fails the job with the reason.
    pub async fn create_target(
        &self,
        job_id: &str,
        budget: super::Budget,
    ) -> Result<Option<String>, EngineError> {
        let job = self.job(job_id).await?;
        if job.request.target.to_create().is_none() {
            return Ok(job.provision.and_then(|p| p.cluster_id));
        }
        self.advance(job_id, Phase::Provision).await?;
        let owner = format!("c-{}", uuid::Uuid::new_v4().simple());
        const PROVISION: &[Phase] = &[Phase::Provision];
        if !self.hold_step(job_id, &owner, PROVISION).await? {
            return Ok(None);
        }
        // A slow control plane must not let the sweep start the plan step beside this call.
        let heartbeat = self.step_heartbeat(job_id, &owner, PROVISION);
        let p = self.patience(&job, budget);
        let created = self.created_cluster(&p, job_id).await;
        drop(heartbeat);
        self.release_step(job_id, &owner).await?;
        // A plan message taken while the step was held was dropped: send one.
        self.queue.send(WorkMessage::plan(job_id)).await?;
        match created {
            Ok(id) => Ok(Some(id)),
            Err(EngineError::OutOfTime | EngineError::Preflight(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates the target cluster (once) and waits until it runs. Answers the job with the
    /// cluster as its target's `cluster_id`, or `None` when the job ended meanwhile (its
    /// window closed, or it was cancelled; the cluster is left as it is). An invocation that
    /// runs out of time first ends with [`EngineError::OutOfTime`], and the next one goes on
    /// waiting.
    pub(crate) async fn provision(
        &self,
        p: &Patience<'_>,
        job_id: &str,
    ) -> Result<Option<Job>, EngineError> {
        let cluster_id = self.created_cluster(p, job_id).await?;
        self.wait_running(p, job_id, &cluster_id).await
    }

    /// The new cluster's id: the one recorded, else one found by name after an unanswered
    /// create, else a new one.
    async fn created_cluster(&self, p: &Patience<'_>, job_id: &str) -> Result<String, EngineError> {
        loop {
            let job = self.job(job_id).await?;
            let record = job.provision.clone().unwrap_or_default();
            if let Some(id) = record.cluster_id {
                return Ok(id);
            }
            match self.create_once(&job, &record).await? {
                Ok(id) => {
                    p.answered().await;
                    return Ok(id);
                }
                // A create that may have landed is looked for by name on the next turn.
                Err(e) => p.wait_after(e).await?,
            }
        }
    }

    /// One attempt: look the cluster up by name, and create it if it is not there. A failed
    /// call is answered as `Ok(Err(_))`, for the retry policy to judge.
    async fn create_once(
        &self,
        job: &Job,
        record: &Provisioning,
    ) -> Result<Result<String, ClusterError>, EngineError> {
        let spec = &job.request.target;
        let Some(n) = spec.new_cluster.as_ref() else {
            return Err(EngineError::Preflight(vec![Problem::at(
                "target.new_cluster",
                "the job has no cluster to create",
            )]));
        };
        let found = match self.clusters.find_zilliz(spec).await {
            Ok(found) => found,
            Err(e) => return Ok(Err(e)),
        };
        if let Some(z) = found {
            if record.create_calls == 0 {
                return Err(EngineError::Preflight(vec![Problem::at(
                    "target.new_cluster.name",
                    format!(
                        "a cluster named `{}` already exists in project {} ({}, {}): give it as target.cluster_id to migrate into it, or choose another name",
                        n.name, n.project_id, z.cluster_id, z.status
                    ),
                )]));
            }
            let id = z.cluster_id.clone();
            self.update_job(&job.id, |j| {
                let p = j.provision.get_or_insert_with(Provisioning::default);
                p.cluster_id = Some(id.clone());
                p.found_by_name = true;
                p.status = z.status.clone();
                p.password_note = PASSWORD_NOTE.into();
                Ok(true)
            })
            .await?;
            let message = format!(
                "the new cluster `{}` is {id} ({}): found by its name after a create call whose answer was lost",
                n.name, z.status
            );
            self.log(&job.id, Level::Warn, None, message).await;
            return Ok(Ok(id));
        }
        // Recorded before the call: if its answer is lost, the next attempt looks by name.
        self.update_job(&job.id, |j| {
            let p = j.provision.get_or_insert_with(Provisioning::default);
            p.create_calls += 1;
            p.requested_at.get_or_insert_with(Utc::now);
            Ok(true)
        })
        .await?;
        let message = format!(
            "creating the {} cluster `{}` in project {} ({}, {} × {} CU)",
            n.plan, n.name, n.project_id, n.region_id, n.cu_size, n.cu_type
        );
        self.log(&job.id, Level::Info, None, message).await;
        let created = match self.clusters.create_zilliz(spec).await {
            Ok(created) => created,
            Err(e) => return Ok(Err(e)),
        };
        let id = created.cluster_id.clone();
        self.update_job(&job.id, |j| {
            let p = j.provision.get_or_insert_with(Provisioning::default);
            p.cluster_id = Some(id.clone());
            p.username = created.username.clone();
            p.sealed_password = created.sealed_password.clone();
            p.password_note = PASSWORD_NOTE.into();
            Ok(true)
        })
        .await?;
        let message = format!("Zilliz Cloud is creating the new cluster {id}");
        self.log(&job.id, Level::Info, None, message).await;
        Ok(Ok(id))
    }

    /// Asks the control plane about the new cluster until it runs, recording each answer; then
    /// names it as the target. Bounded by the provisioning timeout and the job's window.
    async fn wait_running(
        &self,
        p: &Patience<'_>,
        job_id: &str,
        cluster_id: &str,
    ) -> Result<Option<Job>, EngineError> {
        loop {
            let job = self.job(job_id).await?;
            let spec = &job.request.target;
            let z = p
                .call(|| self.clusters.zilliz_status(cluster_id, spec))
                .await?;
            let running = z.status == RUNNING;
            let now = Utc::now();
            let job = self
                .update_job(job_id, |j| {
                    let p = j.provision.get_or_insert_with(Provisioning::default);
                    p.status = z.status.clone();
                    p.checked_at = Some(now);
                    if running {
                        p.running_at.get_or_insert(now);
                        j.request.target.cluster_id = Some(cluster_id.to_owned());
                    }
                    Ok(true)
                })
                .await?;
            if running {
                let message = format!("the new cluster {cluster_id} is RUNNING");
                self.log(job_id, Level::Info, None, message).await;
                return Ok(Some(job));
            }
            if !ON_ITS_WAY.contains(&z.status.as_str()) {
                return Err(EngineError::Preflight(vec![Problem::at(
                    "target.new_cluster",
                    format!(
                        "the new cluster {cluster_id} is {}, not on its way to RUNNING: see it in the Zilliz Cloud console; nothing was written to it",
                        crate::domain::cluster::printable(&z.status)
                    ),
                )]));
            }
            let since = job
                .provision
                .as_ref()
                .and_then(|p| p.requested_at)
                .unwrap_or(now);
            let waited = (now - since).to_std().unwrap_or_default();
            if waited > self.config.provision_timeout {
                return Err(EngineError::Preflight(vec![Problem::at(
                    "target.new_cluster",
                    format!(
                        "the new cluster {cluster_id} is still {} after {} (VECMIGRATE_PROVISION_TIMEOUT); it is left as it is: once it runs, start the job again with it as target.cluster_id, or drop it in the Zilliz Cloud console",
                        z.status,
                        humantime::format_duration(self.config.provision_timeout)
                    ),
                )]));
            }
            if job.cancel_requested {
                self.end_cancelled(job_id).await?;
                return Ok(None);
            }
            if self.past_window(&job).await? {
                return Ok(None);
            }
            let poll = self.config.provision_poll;
            if p.budget().exhausted(poll) || self.is_interrupted() {
                return Err(EngineError::OutOfTime);
            }
            tokio::time::sleep(poll).await;
        }
    }
}
