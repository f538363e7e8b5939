//! Pacing writes to a target that throttles, at the target's own rate, shared by everyone
//! writing to it.
//!
//! Until the target throttles, writes go as fast as it takes them. The first throttled answer
//! makes the target's pace ([`Pace`], kept in the job store under `target:<endpoint>`): the
//! server's `rate=` hint (Milvus and Zilliz Cloud send their cap there) a little under, or half
//! of what got through without one. From then on every write, by any worker of any job that
//! shares the store, first takes its slot in that pace (one conditional store write), sleeps
//! until the slot and writes: the writes leave at the pace whatever the number of workers,
//! the size of their pages or the tasks that come and go, so the cap is used in full and not
//! exceeded. A pace without a hint climbs 2 % per write that gets through and halves on each
//! refusal. `max_write_mb_per_s` is a job's own pace (`job:<id>`), taken as well.
//!
//! A target refusing every write for longer than `max_outage` fails the job (see `copier`).

use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;

use super::{Budget, Engine, EngineError};
use crate::domain::pace::{Pace, NO_HINT_START};
use crate::domain::{Job, WriteRate};

/// How often a worker that has not met the target's pace yet looks for one (another worker,
/// or another job, may have learnt it).
const LOOK_EVERY: Duration = Duration::from_secs(5);

/// When a write may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// At once.
    Now,
    /// After this wait.
    After(Duration),
    /// Not within the invocation's time: nothing was taken.
    TooLate,
}

/// One worker's view of the paces its writes keep to.
#[derive(Debug)]
pub(crate) struct Pacer {
    /// The store key of the target's pace.
    target_key: String,
    /// The store key of the job's ceiling, and the ceiling in bytes per second.
    ceiling: Option<(String, f64)>,
    /// The paces as last read or written (`None`: not met yet).
    target: Option<Pace>,
    job: Option<Pace>,
    /// When the target's pace was last looked for.
    looked: Instant,
    /// Whether the last write got through (an unhinted pace climbs at the next slot).
    climb: bool,
    /// What this worker wrote since it started, for a pace to halve when there is no hint.
    written: f64,
    started: Instant,
    /// Since when every write has been throttled, if the last one was.
    throttled_since: Option<Instant>,
}

impl Pacer {
    /// The pacer of a worker of `job`, starting from the target's pace if one is recorded.
    pub(crate) async fn new(engine: &Engine, job: &Job) -> Result<Self, EngineError> {
        let target_key = format!("target:{}", target_endpoint(job));
        let target = engine.store.get_pace(&target_key).await?;
        let ceiling = job
            .request
            .options
            .max_write_mb_per_s
            .map(|mb| (format!("job:{}", job.id), mb * 1e6));
        let now = Instant::now();
        Ok(Self {
            target_key,
            ceiling,
            target,
            job: None,
            looked: now,
            climb: false,
            written: 0.0,
            started: now,
            throttled_since: None,
        })
    }

    /// Since when the target has refused every write as throttled.
    pub(crate) fn throttled_since(&self) -> Option<Instant> {
        self.throttled_since
    }

    /// Takes the slot of a write of `bytes` in every pace that applies, unless the wait would
    /// not fit in `budget` (`must_fit`: also a write that needs no wait; a claim's first write
    /// goes whatever the budget, as every claim writes the page it read).
    pub(crate) async fn slot(
        &mut self,
        engine: &Engine,
        bytes: usize,
        budget: &Budget,
        must_fit: bool,
    ) -> Result<Slot, EngineError> {
        if self.target.is_none() && self.looked.elapsed() >= LOOK_EVERY {
            self.target = engine.store.get_pace(&self.target_key).await?;
            self.looked = Instant::now();
        }
        let fits = |wait: Duration| (!must_fit && wait.is_zero()) || !budget.exhausted(wait);
        let climb = std::mem::take(&mut self.climb);
        let target_key = self.target_key.clone();
        let mut last = None;
        if self.target.is_some() {
            match take(engine, &mut self.target, &target_key, bytes, climb, &fits).await? {
                None => return Ok(Slot::TooLate),
                Some(start) => last = Some(start),
            }
        }
        if let Some((key, ceiling)) = self.ceiling.clone() {
            if self.job.is_none() {
                self.job = engine.store.get_pace(&key).await?;
            }
            if self.job.is_none() {
                self.job = Some(Pace::new(key.clone(), ceiling, true, Utc::now()));
            }
            match take(engine, &mut self.job, &key, bytes, false, &fits).await? {
                None => return Ok(Slot::TooLate),
                Some(start) => last = last.max(Some(start)),
            }
        }
        let wait = last
            .map(|start| (start - Utc::now()).to_std().unwrap_or_default())
            .unwrap_or_default();
        if !fits(wait) {
            return Ok(Slot::TooLate);
        }
        Ok(if wait.is_zero() {
            Slot::Now
        } else {
            Slot::After(wait)
        })
    }

    /// `bytes` got through.
    pub(crate) fn wrote(&mut self, bytes: usize) {
        self.written += bytes as f64;
        self.throttled_since = None;
        self.climb = true;
    }

    /// The target refused a write of `bytes` as throttled, with its `rate=` hint if it gave
    /// one: the target's pace is made or lowered, for every writer, and the job's record
    /// shows it.
    pub(crate) async fn throttled(
        &mut self,
        engine: &Engine,
        job_id: &str,
        hint: Option<f64>,
        bytes: usize,
    ) -> Result<(), EngineError> {
        self.throttled_since.get_or_insert_with(Instant::now);
        self.climb = false;
        let measured = self.written / self.started.elapsed().as_secs_f64().max(1e-3);
        let first = if measured > 0.0 {
            measured
        } else {
            NO_HINT_START * 2.0
        };
        let key = self.target_key.clone();
        loop {
            let now = Utc::now();
            let mut pace = match self.target.clone() {
                Some(p) => p,
                None => match engine.store.get_pace(&key).await? {
                    Some(p) => p,
                    None => Pace::new(key.clone(), first, false, now),
                },
            };
            pace.throttled(hint, None, bytes, now);
            if let Some(saved) = engine.store.save_pace(&pace).await? {
                self.target = Some(saved);
                break;
            }
            self.target = engine.store.get_pace(&key).await?;
        }
        let (rate, throttles) = self
            .target
            .as_ref()
            .map_or((first, 1), |p| (p.bytes_per_s, p.throttles));
        engine.metric(
            job_id,
            None,
            &[crate::metrics::Metric {
                name: "WritePace",
                value: rate,
                unit: crate::metrics::Unit::BytesPerSecond,
            }],
        );
        engine
            .update_job(job_id, |job| {
                job.write_rate = Some(WriteRate {
                    bytes_per_s: rate,
                    throttles,
                    updated_at: Utc::now(),
                });
                Ok(true)
            })
            .await?;
        Ok(())
    }
}

/// Takes the slot for `bytes` in the pace `cached` (read again from the store when another
/// writer took a slot first); `None` when the wait does not fit.
async fn take(
    engine: &Engine,
    cached: &mut Option<Pace>,
    key: &str,
    bytes: usize,
    climb: bool,
    fits: &impl Fn(Duration) -> bool,
) -> Result<Option<chrono::DateTime<Utc>>, EngineError> {
    loop {
        let Some(mut pace) = cached.clone() else {
            return Ok(Some(Utc::now()));
        };
        let now = Utc::now();
        if !fits((pace.next_at - now).to_std().unwrap_or_default()) {
            return Ok(None);
        }
        if climb {
            pace.wrote(None);
        }
        let start = pace.reserve(bytes, now);
        if let Some(saved) = engine.store.save_pace(&pace).await? {
            *cached = Some(saved);
            return Ok(Some(start));
        }
        *cached = engine.store.get_pace(key).await?;
    }
}

/// The target's endpoint, as its pace is known by (the same for every job that writes to it).
fn target_endpoint(job: &Job) -> String {
    job.request
        .target
        .address()
        .map(|a| a.endpoint())
        .unwrap_or_else(|_| job.request.target.uri.trim().to_owned())
}
