//! The pace of writes to one target cluster, shared by everyone writing to it: every worker of
//! every job, in one process or in concurrent Lambda invocations, through the job store.
//!
//! It is a GCRA schedule (the generic cell rate algorithm): `next_at` is when the next write
//! may start, and a write of `b` bytes takes the slot from `max(now, next_at)` to
//! `+ b / rate`. So writes leave at the rate however many workers write and however large their
//! pages are, and a target that admits a write while its bucket is not negative (Milvus's
//! limiter, Zilliz Cloud's) admits every one of them.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// The share of the target's own `rate=` hint the pace keeps to: a little under, so that a
/// clock or a measure a little off does not cost a refusal per write.
pub const UNDER_HINT: f64 = 0.98;
/// The slowest pace, in bytes per second (a target that takes less is better waited out).
pub const FLOOR: f64 = 16.0 * 1024.0;
/// A pace after a refusal that gave no hint and nothing measured to halve.
pub const NO_HINT_START: f64 = 1_000_000.0;
/// The part of its rate an unhinted pace climbs by after a write that got through.
pub const INCREASE: f64 = 0.02;

/// One pace: whose it is, how fast, and when the next write may start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pace {
    /// `target:<endpoint>` for the target's learnt cap, `job:<id>` for a job's own ceiling.
    pub key: String,
    /// Bytes per second.
    pub bytes_per_s: f64,
    /// When the next write may start.
    pub next_at: DateTime<Utc>,
    /// Whether the rate is the target's own hint (kept, not probed upwards).
    pub hinted: bool,
    /// Writes the target refused as throttled.
    pub throttles: u64,
    /// Optimistic-concurrency version: every store write is conditional on it.
    pub version: u64,
}

impl Pace {
    /// A pace that starts now at `bytes_per_s`.
    pub fn new(key: String, bytes_per_s: f64, hinted: bool, now: DateTime<Utc>) -> Self {
        Self {
            key,
            bytes_per_s: bytes_per_s.max(FLOOR),
            next_at: now,
            hinted,
            throttles: 0,
            version: 0,
        }
    }

    /// Takes the slot for `bytes` written at the earliest from `now`; returns when the write
    /// may start.
    pub fn reserve(&mut self, bytes: usize, now: DateTime<Utc>) -> DateTime<Utc> {
        let start = self.next_at.max(now);
        self.next_at = start + seconds(bytes as f64 / self.bytes_per_s);
        start
    }

    /// The target refused a write as throttled: the pace goes to its hint (a little under), or
    /// halves without one, never above `ceiling`; and no write starts before a write of this
    /// size could have paid its debt (refusals that come together push the schedule once, not
    /// once each: they saw the same empty bucket).
    pub fn throttled(
        &mut self,
        hint: Option<f64>,
        ceiling: Option<f64>,
        bytes: usize,
        now: DateTime<Utc>,
    ) {
        let (rate, hinted) = match hint {
            Some(h) => (h * UNDER_HINT, true),
            None => (self.bytes_per_s / 2.0, false),
        };
        let rate = ceiling.map_or(rate, |c| rate.min(c));
        self.bytes_per_s = rate.max(FLOOR);
        self.hinted = hinted;
        self.throttles += 1;
        self.next_at = self
            .next_at
            .max(now + seconds(bytes as f64 / self.bytes_per_s));
    }

    /// A write got through: an unhinted pace climbs a little (never above `ceiling`).
    pub fn wrote(&mut self, ceiling: Option<f64>) {
        if !self.hinted {
            let rate = self.bytes_per_s * (1.0 + INCREASE);
            self.bytes_per_s = ceiling.map_or(rate, |c| rate.min(c));
        }
    }
}

/// A duration of `s` seconds, to the microsecond.
fn seconds(s: f64) -> Duration {
    Duration::microseconds((s * 1e6).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_each_other_at_the_rate_whoever_takes_them() {
        let t0 = Utc::now();
        let mut p = Pace::new("target:x".into(), 2_000_000.0, true, t0);
        // Three workers, pages of 7.2 MB against 2 MB/s: one page every 3.6 s.
        let starts: Vec<_> = (0..3).map(|_| p.reserve(7_200_000, t0)).collect();
        assert_eq!(starts[0], t0);
        assert_eq!(starts[1] - starts[0], Duration::milliseconds(3_600));
        assert_eq!(starts[2] - starts[1], Duration::milliseconds(3_600));
        // A writer that comes late starts at once, and the schedule goes on from then.
        let late = t0 + Duration::seconds(60);
        assert_eq!(p.reserve(1_000_000, late), late);
    }

    #[test]
    fn refusals_that_come_together_push_the_schedule_once() {
        let t0 = Utc::now();
        let mut p = Pace::new("target:x".into(), 2_000_000.0, true, t0);
        p.throttled(Some(2_000_000.0), None, 7_840_000, t0);
        p.throttled(Some(2_000_000.0), None, 7_840_000, t0);
        assert_eq!(p.next_at - t0, Duration::seconds(4));
        assert_eq!(p.reserve(7_840_000, t0), t0 + Duration::seconds(4));
    }

    #[test]
    fn a_refusal_sets_the_pace_to_the_hint_and_without_one_halves_it() {
        let t0 = Utc::now();
        let mut p = Pace::new("target:x".into(), 10_000_000.0, false, t0);
        p.throttled(Some(2_000_000.0), None, 1_000, t0);
        assert_eq!(
            (p.bytes_per_s, p.hinted, p.throttles),
            (1_960_000.0, true, 1)
        );
        p.wrote(None);
        assert_eq!(p.bytes_per_s, 1_960_000.0, "a hinted pace is kept");
        p.throttled(None, Some(500_000.0), 1_000, t0);
        assert_eq!((p.bytes_per_s, p.hinted), (500_000.0, false));
        p.wrote(Some(505_000.0));
        assert_eq!(p.bytes_per_s, 505_000.0, "climbs, up to the ceiling");
        for _ in 0..40 {
            p.throttled(None, None, 10, t0);
        }
        assert_eq!(p.bytes_per_s, FLOOR);
    }
}
