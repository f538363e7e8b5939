//! The engine: the steps of a job (plan → copy → finish → deliver), written once against the
//! ports ([`JobStore`], [`WorkQueue`], [`ClusterConnector`], [`Notifier`]). It never knows
//! whether it runs in a Lambda invocation or in the CLI's in-process workers.
//!
//! Every step is safe to run twice: messages are delivered at least once and a sweep may race a
//! slow worker. What makes that safe is the store's conditional writes (job versions, task
//! fences), not timing.
//!
//! - [`lifecycle`]: start, cancel, sweep, report; the conditional job updates every step uses.
//! - [`plan`] (with [`preflight`], [`schema`] and [`split`]), [`copy`], [`finish`] (with [`counts`] and
//!   [`content`]), [`notify`]: the steps; [`ranges`]: each range counted and repaired.
//! - [`step_lease`], [`budget`], [`retry`], [`sample`]: what the steps share.
//! - [`config`], [`error`], [`faults`]: settings, the one error type, test fault hooks.

use std::sync::Arc;

use tracing::Instrument;

use crate::domain::{Job, Level, MAX_STEP_PANICS};
use crate::metrics::{Metric, Metrics};
use crate::milvus::ClusterConnector;
use crate::queue::{WorkMessage, WorkQueue};
use crate::store::JobStore;
use crate::webhook::Notifier;

mod budget;
mod config;
mod content;
mod copier;
mod copy;
mod counts;
mod dry_run;
mod error;
mod faults;
mod finish;
mod lifecycle;
mod locate;
mod notify;
mod pacing;
mod plan;
mod preflight;
mod provision;
mod ranges;
mod retry;
pub(crate) mod sample;
mod schema;
mod split;
mod step_lease;

pub(crate) use budget::page_limit;
pub use budget::Budget;
pub use config::EngineConfig;
pub use dry_run::{
    Estimate, NewClusterPlan, PlanReport, PlannedCluster, PlannedCollection, Totals,
};
pub use error::EngineError;
pub use faults::Faults;
pub(crate) use lifecycle::source_collection;
pub use preflight::Capacity;

/// What a handled message led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// The step ran.
    Done,
    /// The job was already over, or the step had nothing to do.
    Nothing,
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
    /// Where metrics go (EMF lines in Lambda); none in the CLI.
    metrics: Option<Arc<Metrics>>,
    /// Set when the process is asked to stop (Ctrl-C): workers stop at their next page.
    interrupted: Arc<std::sync::atomic::AtomicBool>,
}

impl Engine {
    /// The job's staging area, when it stages files for import.
    pub(crate) async fn staging_of(
        &self,
        job: &Job,
    ) -> Result<Option<crate::staging::Staging>, EngineError> {
        match job.request.options.staging.as_deref() {
            Some(location) => Ok(Some(
                crate::staging::Staging::open(location, self.config.staging_read_role.as_deref())
                    .await?,
            )),
            None => Ok(None),
        }
    }

    /// Asks this process's workers to stop at their next page (or wait) and release their
    /// tasks: the process is about to exit, and a `resume` should not wait for its leases.
    pub fn interrupt(&self) {
        self.interrupted
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether [`Engine::interrupt`] was called.
    pub(crate) fn is_interrupted(&self) -> bool {
        self.interrupted.load(std::sync::atomic::Ordering::SeqCst)
    }

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
            faults: Arc::default(),
            metrics: None,
            interrupted: Arc::default(),
        }
    }

    /// Emits the engine's metrics through `metrics` (see [`crate::metrics`]).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(Arc::new(metrics));
        self
    }

    /// Emits `metrics` of a job, when the engine has somewhere to emit them.
    pub(crate) fn metric(&self, job_id: &str, dimension: Option<(&str, &str)>, metrics: &[Metric]) {
        if let Some(sink) = &self.metrics {
            sink.emit(job_id, dimension, metrics);
        }
    }

    /// Installs fault injection (tests of crash recovery only).
    #[cfg(any(test, feature = "test-support"))]
    pub fn with_faults(mut self, faults: Faults) -> Self {
        self.faults = Arc::new(faults);
        self
    }

    /// The job store.
    pub fn store(&self) -> &Arc<dyn JobStore> {
        &self.store
    }

    /// The job, or [`EngineError::NotFound`].
    pub(crate) async fn job(&self, job_id: &str) -> Result<Job, EngineError> {
        let job = self
            .store
            .get_job(job_id)
            .await?
            .ok_or_else(|| EngineError::NotFound(job_id.into()))?;
        if let Some(phase) = job.phase {
            // The step's span shows the phase its log lines happened in.
            tracing::Span::current().record("phase", phase.as_str());
        }
        Ok(job)
    }

    /// Runs one step of a job.
    pub async fn handle(
        &self,
        message: &WorkMessage,
        budget: Budget,
    ) -> Result<Handled, EngineError> {
        // Every log line of the step carries the job, the step and (once read) the phase.
        let span = tracing::info_span!(
            "step",
            job_id = %message.job_id(),
            step = %message.step(),
            phase = tracing::field::Empty
        );
        self.handle_in(message, budget).instrument(span).await
    }

    async fn handle_in(
        &self,
        message: &WorkMessage,
        budget: Budget,
    ) -> Result<Handled, EngineError> {
        let (job_id, result) = match message {
            WorkMessage::Plan { job_id } => (job_id, self.plan(job_id, budget).await),
            WorkMessage::Work { job_id } => (job_id, self.work(job_id, budget).await),
            WorkMessage::Finish { job_id } => (job_id, self.finish(job_id, budget).await),
            WorkMessage::Deliver { job_id } => (job_id, self.deliver(job_id, budget).await),
        };
        match result {
            // A crash is not the job's failure: its task is picked up again.
            Err(e @ (EngineError::InjectedCrash | EngineError::Panicked { .. })) => Err(e),
            // Out of time waiting out an outage: the step's continuation is on its way.
            Err(EngineError::OutOfTime) => Ok(Handled::Done),
            // The store or queue itself failing leaves the job as it is, for a retry; so does
            // staging storage that may answer next time.
            Err(e @ (EngineError::Store(_) | EngineError::Queue(_))) => Err(e),
            Err(EngineError::Staging(e)) if e.is_transient() => Err(EngineError::Staging(e)),
            Err(e) => {
                self.fail_with(job_id, e.to_string(), e.problems().to_vec())
                    .await?;
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
                tracing::error!(job_id = %message.job_id(), "the {} step panicked: {what}", message.step());
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
}

/// The text of a panic's payload.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}
