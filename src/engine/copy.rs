//! Copy: a worker's turn at a job's tasks. It claims a claimable task (starting from a random
//! one so that workers spread out), or, when none is left, cuts the largest remainder another
//! worker copies (see `split`) and takes one of its pieces; has a [`Copier`] copy it, and then
//! completes it, or releases it and enqueues a continuation when the invocation's time runs
//! short, or when the job was cancelled. The worker that sees the last task done moves the
//! job on to `finish`.

use std::time::Duration;

use chrono::Utc;
use tracing::Instrument;

use super::copier::{Copier, PageReader, Stop, Turn};
use super::pacing::Pacer;
use super::ranges::{self, RangeSides};
use super::sample::Rng;
use super::split::Split;
use super::{source_collection, Budget, Engine, EngineError, Handled};
use crate::domain::{Job, Phase, Task, TaskStatus, VerifyMode};
use crate::metrics::{Metric, Unit};
use crate::queue::WorkMessage;
use crate::store::StoreError;

/// How many times in a row a worker claims again after another idle worker cut what it was
/// cutting.
const MAX_RACES: u32 = 3;

impl Engine {
    /// Handles a `work` message: copies tasks of the job until none is left or time runs out.
    pub(crate) async fn work(&self, job_id: &str, budget: Budget) -> Result<Handled, EngineError> {
        let owner = format!("w-{}", uuid::Uuid::new_v4().simple());
        let mut handled = Handled::Nothing;
        let mut raced = 0;
        loop {
            let job = self.job(job_id).await?;
            if job.status.is_terminal() || job.phase != Some(Phase::Copy) {
                return Ok(handled);
            }
            if job.cancel_requested {
                self.end_cancelled(job_id).await?;
                return Ok(Handled::Done);
            }
            if self.past_window(&job).await? {
                return Ok(Handled::Done);
            }
            if budget.exhausted(Duration::ZERO) {
                // Whatever is left is claimable; the continuation picks it up.
                self.continue_later(job_id).await?;
                return Ok(handled);
            }
            let claimed = match self.claim_any(&job, &owner).await? {
                Some(task) => Some(task),
                // Nothing to claim: cut the largest remainder another worker is copying.
                None => match self
                    .split_any(&self.patience(&job, budget), &job, &owner)
                    .await
                {
                    Ok(Split::Made(task)) => Some(*task),
                    // Another idle worker cut it first: what it left may be free to claim.
                    Ok(Split::Raced) if raced < MAX_RACES => {
                        raced += 1;
                        continue;
                    }
                    Ok(_) | Err(EngineError::OutOfTime) => None,
                    Err(e) => return Err(e),
                },
            };
            let Some(task) = claimed else {
                let tasks = self.store.list_tasks(job_id).await?;
                if tasks.iter().all(|t| t.status == TaskStatus::Done) {
                    self.copy_finished(job_id).await?;
                }
                return Ok(handled);
            };
            handled = Handled::Done;
            let span = tracing::info_span!(
                "task",
                task = %task.id,
                collection = %format!("{}.{}", task.database, task.collection)
            );
            match self.copy_task(&job, task, budget).instrument(span).await {
                Ok(Stop::Done(task)) => match self.store.complete_task(&task).await {
                    Ok(_) | Err(StoreError::LeaseLost(_)) => {}
                    Err(e) => return Err(e.into()),
                },
                Ok(Stop::OutOfTime(task)) => {
                    self.release(&task).await?;
                    self.continue_later(job_id).await?;
                    return Ok(handled);
                }
                Ok(Stop::JobOver(task)) => {
                    self.release(&task).await?;
                }
                Ok(Stop::LeaseLost | Stop::SentBack) => {}
                // The lease stays held, as after a real crash; `handle` fails the job on any
                // other error.
                Err(e) => return Err(e),
            }
        }
    }

    async fn release(&self, task: &Task) -> Result<(), EngineError> {
        match self.store.release_task(task).await {
            Ok(()) | Err(StoreError::LeaseLost(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn continue_later(&self, job_id: &str) -> Result<(), EngineError> {
        self.queue.send(WorkMessage::work(job_id)).await?;
        Ok(())
    }

    /// Claims the first claimable task, starting from a random one so that workers spread out.
    async fn claim_any(&self, job: &Job, owner: &str) -> Result<Option<Task>, EngineError> {
        let tasks = self.store.list_tasks(&job.id).await?;
        let now = Utc::now();
        let ttl = self.config.lease();
        let start = Rng::new().below(tasks.len().max(1) as u64) as usize;
        for i in 0..tasks.len() {
            let t = &tasks[(start + i) % tasks.len()];
            if !t.claimable(now) {
                continue;
            }
            if let Some(claimed) = self
                .store
                .claim_task(&job.id, &t.id, owner, now, ttl)
                .await?
            {
                return Ok(Some(claimed));
            }
        }
        Ok(None)
    }

    /// When every task is done, moves the job on to `index` and enqueues `finish`: exactly one
    /// caller wins the conditional write that does it.
    pub(crate) async fn copy_finished(&self, job_id: &str) -> Result<(), EngineError> {
        if self.advance(job_id, Phase::Index).await? {
            let tasks = self.store.list_tasks(job_id).await?;
            let (copied, bytes) = tasks
                .iter()
                .fold((0, 0), |(c, b), t| (c + t.copied, b + t.bytes));
            let pages: u64 = tasks.iter().map(|t| t.batches).sum();
            let import = crate::domain::report::ImportProgress::of(&tasks);
            if import.is_some() {
                // Kept on the job, so the outcome event (built from the job alone) shows it.
                self.update_job(job_id, |j| {
                    j.import = import;
                    Ok(true)
                })
                .await?;
            }
            self.log(
                job_id,
                crate::domain::Level::Info,
                None,
                format!("copy finished: {copied} entities, {bytes} bytes in {pages} pages"),
            )
            .await;
            self.queue.send(WorkMessage::finish(job_id)).await?;
        }
        Ok(())
    }

    async fn copy_task(&self, job: &Job, task: Task, budget: Budget) -> Result<Stop, EngineError> {
        let p = self.patience(job, budget);
        let prepared = async {
            let (source, target) = self.clusters(&p, job).await?;
            let info = source_collection(&p, &*source, &task.database, &task.collection).await?;
            Ok::<_, EngineError>((source, target, info))
        };
        let (source, target, info) = match prepared.await {
            Ok(prepared) => prepared,
            // An outage outlasted the invocation before the first page.
            Err(EngineError::OutOfTime) => return Ok(Stop::OutOfTime(task)),
            Err(e) => return Err(e),
        };
        let primary = info.primary_field().cloned().ok_or_else(|| {
            EngineError::Refused(format!(
                "collection `{}.{}` has no primary key",
                task.database, task.collection
            ))
        })?;
        let routed = ranges::routed(job, &info, &task.database, &task.collection);
        let options = &job.request.options;
        let mut copier = Copier {
            engine: self,
            job,
            reader: PageReader {
                cluster: source.clone(),
                database: task.database.clone(),
                collection: task.collection.clone(),
                partition: task.partition.clone(),
                primary: primary.clone(),
                read_at: task.read_at,
                skip: info.function_outputs(),
                filter: job
                    .request
                    .selection(&task.database, &task.collection)
                    .filter
                    .map(str::to_owned),
            },
            target: target.clone(),
            info: std::sync::Arc::new(info.clone()),
            // A target with a partition key routes entities itself (also when an override
            // gave it one): pages read from a source partition are written without a name.
            routed,
            p,
            pacer: Pacer::new(self, job).await?,
            sample_size: (options.verify == VerifyMode::Sample)
                .then_some(options.verify_sample_size as usize),
            rng: Rng::new(),
            turn: Turn::default(),
            staging: None,
        };
        let stop = copier.run(task).await;
        let t = copier.turn;
        let out_of_time = matches!(stop, Ok(Stop::OutOfTime(_)));
        self.metric(
            &job.id,
            None,
            &[
                Metric::count("EntitiesCopied", t.entities),
                Metric {
                    name: "BytesCopied",
                    value: t.bytes as f64,
                    unit: Unit::Bytes,
                },
                Metric::count("PagesWritten", t.pages),
                Metric::count("ThrottledWrites", t.throttled),
                Metric::count("InvocationsOutOfTime", u64::from(out_of_time)),
            ],
        );
        let task = match stop? {
            Stop::Done(task) => task,
            other => return Ok(other),
        };
        let sides = RangeSides {
            p: &copier.p,
            source: &*source,
            target: &*target,
            primary: &primary,
            routed,
            filter: job
                .request
                .selection(&task.database, &task.collection)
                .filter,
        };
        match self.settle(&sides, job, &task).await {
            Ok(false) => Ok(Stop::Done(task)),
            Ok(true) => Ok(Stop::SentBack),
            // An outage outlasted the invocation while counting: the next claim reads the
            // range's (empty) end again and counts it then.
            Err(EngineError::OutOfTime) => Ok(Stop::OutOfTime(task)),
            Err(e) => Err(e),
        }
    }
}
