//! Pacing writes to a target that throttles: additive increase, multiplicative decrease, in
//! bytes per second.
//!
//! Until the target throttles, writes go as fast as it takes them. The first throttled answer
//! sets a rate: the server's `rate=` hint when it gives one (Milvus and Zilliz Cloud do), less a
//! margin, or else half of what this worker was writing. Each write that gets through then
//! raises the rate a little; each one throttled lowers it again, so the rate settles just under
//! the cap. `max_write_mb_per_s` is a ceiling from the start.
//!
//! The rate is the whole job's and lives on the job record (`write_rate`): every worker paces
//! itself at its share (the job's rate over the tasks being copied at once, in this process or
//! in concurrent Lambda invocations), a decrease is written at once, an increase every few
//! seconds, and a new invocation starts from what is recorded.

use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;

use super::{Engine, EngineError};
use crate::domain::{Job, WriteRate};

/// The share of the server's hint a throttled writer goes down to.
const UNDER_HINT: f64 = 0.95;
/// The part of its rate a writer adds after each write that got through (the increase is in
/// proportion to the rate, so that it finds a high cap as quickly as a low one).
const INCREASE: f64 = 0.02;
/// The least it adds, in bytes per second.
const MIN_INCREASE: f64 = 1024.0;
/// The slowest rate, in bytes per second (a target that takes less is better waited out).
const FLOOR: f64 = 16.0 * 1024.0;
/// The job's rate after a throttled first write without a hint, in bytes per second.
const NO_HINT_START: f64 = 1_000_000.0;
/// How often a worker brings its rate and the job's together.
const SYNC_EVERY: Duration = Duration::from_secs(5);

/// One worker's pace.
#[derive(Debug)]
pub(crate) struct Pacer {
    /// Bytes per second for this worker; `None` until the target throttles or a ceiling is set.
    rate: Option<f64>,
    /// The job's ceiling (`max_write_mb_per_s`), for the whole job.
    ceiling: Option<f64>,
    /// How many workers share the job's rate.
    share: f64,
    /// When the next write may start.
    next: Instant,
    /// What this worker wrote since it started, for a rate to halve when there is no hint.
    written: f64,
    started: Instant,
    /// Since when every write has been throttled, if the last one was.
    throttled_since: Option<Instant>,
    /// When the rate was last brought together with the job's.
    synced: Instant,
    /// Whether the rate went down since then (written at once).
    decreased: bool,
}

impl Pacer {
    /// A pacer for one of `workers` workers of `job`, starting from its recorded rate.
    pub(crate) fn new(job: &Job, workers: usize) -> Self {
        let ceiling = job.request.options.max_write_mb_per_s.map(|mb| mb * 1e6);
        let share = workers.max(1) as f64;
        let job_rate = match (job.write_rate.as_ref().map(|w| w.bytes_per_s), ceiling) {
            (Some(r), Some(c)) => Some(r.min(c)),
            (r, c) => r.or(c),
        };
        let now = Instant::now();
        Self {
            rate: job_rate.map(|r| r / share),
            ceiling,
            share,
            next: now,
            written: 0.0,
            started: now,
            throttled_since: None,
            synced: now,
            decreased: false,
        }
    }

    /// This worker's rate, if it has one.
    pub(crate) fn rate(&self) -> Option<f64> {
        self.rate
    }

    /// Since when the target has refused every write as throttled.
    pub(crate) fn throttled_since(&self) -> Option<Instant> {
        self.throttled_since
    }

    /// Waits until `bytes` may be written at this worker's rate.
    pub(crate) async fn before_write(&mut self, bytes: usize) {
        let Some(rate) = self.rate else {
            return;
        };
        let now = Instant::now();
        let start = self.next.max(now);
        tokio::time::sleep_until(start).await;
        self.next = start + Duration::from_secs_f64(bytes as f64 / rate);
    }

    /// `bytes` got through: the rate goes up a little (never above the ceiling).
    pub(crate) fn wrote(&mut self, bytes: usize) {
        self.written += bytes as f64;
        self.throttled_since = None;
        if let Some(rate) = self.rate.as_mut() {
            *rate += (*rate * INCREASE).max(MIN_INCREASE);
            if let Some(ceiling) = self.ceiling {
                *rate = rate.min(ceiling / self.share);
            }
        }
    }

    /// The target throttled a write: the rate goes down to its hint (or to half), and the write
    /// waits a turn before it is tried again.
    pub(crate) fn throttled(&mut self, hint: Option<f64>, bytes: usize) {
        let now = Instant::now();
        self.throttled_since.get_or_insert(now);
        let measured = self.written / self.started.elapsed().as_secs_f64().max(1e-3);
        let lowered = match (hint, self.rate) {
            (Some(hint), Some(rate)) => (hint * UNDER_HINT / self.share).min(rate),
            (Some(hint), None) => hint * UNDER_HINT / self.share,
            (None, Some(rate)) => rate / 2.0,
            // Nothing to go by but what got through so far (or a guess before any did).
            (None, None) if measured > 0.0 => measured / 2.0,
            (None, None) => NO_HINT_START / self.share,
        };
        let rate = lowered.max(FLOOR / self.share);
        self.rate = Some(rate);
        self.next = self.next.max(now) + Duration::from_secs_f64(bytes as f64 / rate);
        self.decreased = true;
    }

    /// Whether it is time to bring this worker's rate and the job's together.
    pub(crate) fn sync_due(&self) -> bool {
        self.decreased || (self.rate.is_some() && self.synced.elapsed() >= SYNC_EVERY)
    }

    /// Takes the job's rate after a sync, for `workers` workers now.
    fn adopt(&mut self, job_rate: Option<f64>, workers: usize) {
        self.share = workers.max(1) as f64;
        if let Some(r) = job_rate {
            self.rate = Some(r / self.share);
        }
        self.synced = Instant::now();
        self.decreased = false;
    }
}

impl Engine {
    /// Brings a worker's pace and the job's recorded write rate together: a decrease is
    /// written at once (the lower rate wins), an increase only where nobody lowered the rate
    /// in the meantime; the worker then takes its share of what is recorded.
    pub(crate) async fn sync_write_rate(
        &self,
        job_id: &str,
        pacer: &mut Pacer,
        workers: usize,
    ) -> Result<(), EngineError> {
        let Some(mine) = pacer.rate().map(|r| r * pacer.share) else {
            return Ok(());
        };
        let decreased = pacer.decreased;
        let since = Utc::now() - chrono::Duration::from_std(SYNC_EVERY).unwrap_or_default();
        let job = self
            .update_job(job_id, |job| {
                let recorded = job.write_rate.clone();
                let new = match &recorded {
                    None => WriteRate {
                        bytes_per_s: mine,
                        throttles: u64::from(decreased),
                        updated_at: Utc::now(),
                    },
                    Some(r) if decreased => WriteRate {
                        bytes_per_s: r.bytes_per_s.min(mine),
                        throttles: r.throttles + 1,
                        updated_at: Utc::now(),
                    },
                    // Raised only by a worker that saw no decrease since its last look.
                    Some(r) if r.updated_at <= since && mine > r.bytes_per_s => WriteRate {
                        bytes_per_s: mine,
                        throttles: r.throttles,
                        updated_at: Utc::now(),
                    },
                    Some(_) => return Ok(false),
                };
                job.write_rate = Some(new);
                Ok(true)
            })
            .await?;
        pacer.adopt(job.write_rate.map(|w| w.bytes_per_s), workers);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::MigrationRequest;

    fn job(ceiling: Option<f64>, recorded: Option<f64>) -> Job {
        let mut request = MigrationRequest::from_json(
            r#"{"source":{"uri":"http://a:1"},"target":{"uri":"http://b:2"},"databases":[{"name":"default"}]}"#,
        )
        .unwrap();
        request.options.max_write_mb_per_s = ceiling;
        let mut job = Job::new(Job::new_id(), request, Utc::now());
        job.write_rate = recorded.map(|r| WriteRate {
            bytes_per_s: r,
            throttles: 1,
            updated_at: Utc::now(),
        });
        job
    }

    #[test]
    fn unthrottled_writes_are_not_paced_until_the_target_says_so() {
        let mut p = Pacer::new(&job(None, None), 2);
        assert_eq!(p.rate(), None);
        p.wrote(1_000_000);
        assert_eq!(p.rate(), None);
        // A hint of 1 MB/s for the job: each of two workers takes just under half.
        p.throttled(Some(1_000_000.0), 100_000);
        assert_eq!(p.rate(), Some(475_000.0));
        assert!(p.sync_due(), "a decrease is written at once");
        p.wrote(100_000);
        assert!(p.rate().unwrap() > 475_000.0, "then it creeps up again");
        assert!(p.throttled_since().is_none());
    }

    #[test]
    fn the_ceiling_and_the_recorded_rate_set_the_start() {
        let p = Pacer::new(&job(Some(8.0), None), 4);
        assert_eq!(p.rate(), Some(2_000_000.0));
        let mut p = Pacer::new(&job(Some(8.0), Some(4_000_000.0)), 4);
        assert_eq!(p.rate(), Some(1_000_000.0));
        for _ in 0..1000 {
            p.wrote(1);
        }
        assert_eq!(
            p.rate(),
            Some(2_000_000.0),
            "never above the ceiling's share"
        );
    }

    #[test]
    fn without_a_hint_the_rate_halves_and_never_falls_below_the_floor() {
        let mut p = Pacer::new(&job(None, Some(100_000.0)), 1);
        p.throttled(None, 10);
        assert_eq!(p.rate(), Some(50_000.0));
        for _ in 0..10 {
            p.throttled(None, 10);
        }
        assert_eq!(p.rate(), Some(FLOOR));
    }
}
