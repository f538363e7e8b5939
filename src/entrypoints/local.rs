//! The local runner: in-process workers on the in-process queue, each message handled as one
//! simulated invocation with its own time budget (`--max-run`), plus the same sweep that AWS
//! runs on a schedule. It drives one job until it ends.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::domain::{JobStatus, Phase, Report};
use crate::engine::{Budget, Engine, EngineError};
use crate::queue::inprocess::InProcessQueue;
use crate::queue::{WorkMessage, WorkQueue};

/// How long a message whose step panicked waits before it is delivered again.
const REDELIVERY_DELAY: Duration = Duration::from_millis(200);

/// How the local workers run.
#[derive(Debug, Clone)]
pub struct LocalSettings {
    /// Parallel workers.
    pub workers: usize,
    /// The simulated invocation budget: a worker stops after this long and a fresh one goes on
    /// (less the engine's safety margin).
    pub max_run: Option<Duration>,
    /// How often the sweep looks for dead workers' tasks.
    pub sweep_every: Duration,
    /// How often progress is reported: each report reads the job, its tasks and its log from
    /// the store, which on a DynamoDB table are billed reads over the network.
    pub progress_every: Duration,
}

impl Default for LocalSettings {
    fn default() -> Self {
        Self {
            workers: 4,
            max_run: None,
            sweep_every: Duration::from_secs(1),
            progress_every: Duration::from_secs(1),
        }
    }
}

/// Drives jobs with in-process workers.
pub struct LocalRunner {
    engine: Arc<Engine>,
    queue: InProcessQueue,
    settings: LocalSettings,
}

impl LocalRunner {
    /// A runner over `engine`, whose queue must be `queue`.
    pub fn new(engine: Arc<Engine>, queue: InProcessQueue, settings: LocalSettings) -> Self {
        Self {
            engine,
            queue,
            settings,
        }
    }

    /// Enqueues what a job needs next, for `resume`: the step its phase is in.
    pub async fn kick(&self, job_id: &str) -> Result<(), EngineError> {
        let report = self.engine.report(job_id).await?;
        let job_id = job_id.to_owned();
        let (message, copies) = match (report.job.status, report.job.phase) {
            // An ended job may still owe its webhook.
            (s, _) if s.is_terminal() && report.job.webhook_due().is_some() => {
                (WorkMessage::Deliver { job_id }, 1)
            }
            (s, _) if s.is_terminal() => return Ok(()),
            (JobStatus::Pending, _)
            | (_, None | Some(Phase::Provision | Phase::Preflight | Phase::Schema)) => {
                (WorkMessage::Plan { job_id }, 1)
            }
            // One message per worker slot, as plan sends them.
            (_, Some(Phase::Copy)) => (WorkMessage::Work { job_id }, self.settings.workers.max(1)),
            (_, Some(Phase::Index | Phase::Verify)) => (WorkMessage::Finish { job_id }, 1),
        };
        for _ in 0..copies {
            self.queue.send(message.clone()).await?;
        }
        Ok(())
    }

    /// Runs workers until the job ends; calls `progress` as it goes; returns the final report.
    pub async fn drive(
        &self,
        job_id: &str,
        progress: impl FnMut(&Report),
    ) -> Result<Report, EngineError> {
        self.drive_until(job_id, progress, std::future::pending())
            .await
            .map(|(report, _)| report)
    }

    /// As [`LocalRunner::drive`], but stops early when `interrupt` completes (Ctrl-C): the
    /// workers stop at their next page and release their tasks, so that a `resume` takes them
    /// at once. Returns the report and whether the run was interrupted.
    pub async fn drive_until(
        &self,
        job_id: &str,
        mut progress: impl FnMut(&Report),
        interrupt: impl std::future::Future<Output = ()>,
    ) -> Result<(Report, bool), EngineError> {
        tokio::pin!(interrupt);
        let mut interrupted = false;
        let mut workers = JoinSet::new();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        for _ in 0..self.settings.workers.max(1) {
            let (engine, queue) = (self.engine.clone(), self.queue.clone());
            let (max_run, margin) = (self.settings.max_run, self.engine.config.safety_margin);
            let mut stopped = stopped.clone();
            workers.spawn(async move {
                loop {
                    // Stop taking messages once the job is over; a step already running is
                    // never interrupted, so no page is left written without its checkpoint.
                    let message = tokio::select! {
                        m = queue.recv() => m,
                        _ = stopped.changed() => None,
                    };
                    let Some(message) = message else { break };
                    let budget = Budget::new(None, max_run, margin);
                    match engine.handle_guarded(&message, budget).await {
                        Ok(_) => {}
                        Err(EngineError::InjectedCrash) => {
                            tracing::warn!(job_id = %message.job_id(), "worker crashed (injected fault); the sweep recovers its task once the lease expires");
                        }
                        // Redelivered as SQS would; the job record counts the panics and
                        // fails the job at the limit, so this cannot go on forever.
                        Err(e @ EngineError::Panicked { .. }) => {
                            tracing::warn!(job_id = %message.job_id(), "{e}; the message is delivered again");
                            tokio::time::sleep(REDELIVERY_DELAY).await;
                            let _ = queue.send(message).await;
                        }
                        Err(e) => {
                            tracing::warn!(job_id = %message.job_id(), "step failed: {e}");
                        }
                    }
                }
            });
        }
        let mut last_sweep = tokio::time::Instant::now();
        let result = loop {
            let report = match self.engine.report(job_id).await {
                Ok(r) => r,
                Err(e) => break Err(e),
            };
            progress(&report);
            // The run ends with the job, once its outcome webhook is delivered or given up.
            if report.job.status.is_terminal() && report.job.webhook_due().is_none() {
                break Ok(report);
            }
            if last_sweep.elapsed() >= self.settings.sweep_every {
                last_sweep = tokio::time::Instant::now();
                if let Err(e) = self.engine.sweep(job_id).await {
                    tracing::warn!(job_id = %job_id, "sweep failed: {e}");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.settings.progress_every) => {}
                _ = &mut interrupt => {
                    interrupted = true;
                    self.engine.interrupt();
                    break Ok(report);
                }
            }
        };
        // In-flight steps see the ended job at their next page and release their tasks.
        let _ = stop.send(true);
        let drained = tokio::time::timeout(Duration::from_secs(120), async {
            while workers.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(job_id = %job_id, "workers did not stop within 120 s; their leases expire on their own");
            workers.abort_all();
        }
        // Read again: the last workers checkpointed their final pages while draining.
        match result {
            Ok(_) => Ok((self.engine.report(job_id).await?, interrupted)),
            Err(e) => Err(e),
        }
    }
}
