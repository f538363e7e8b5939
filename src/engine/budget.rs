//! The time one invocation may spend, and the page size that fits it: a page is sized by bytes
//! and, under a budget, shrunk when the last one took too long, so every invocation fits
//! several pages.

use std::time::Duration;

use tokio::time::Instant;

/// The time one invocation may spend: it stops copying before `deadline` minus a margin.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    deadline: Option<Instant>,
    margin: Duration,
    span: Option<Duration>,
}

impl Budget {
    /// No limit (a local run without `--max-run`).
    pub fn unlimited() -> Self {
        Self {
            deadline: None,
            margin: Duration::ZERO,
            span: None,
        }
    }

    /// Time left = the smaller of `time_left` and `max_run`, less `margin`. A `time_left` of
    /// zero or above a day makes no sense for one invocation and is ignored.
    pub fn new(time_left: Option<Duration>, max_run: Option<Duration>, margin: Duration) -> Self {
        let sane = time_left.filter(|t| !t.is_zero() && *t < Duration::from_secs(86_400));
        let left = match (sane, max_run) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match left {
            None => Self::unlimited(),
            Some(left) => Self {
                deadline: Some(Instant::now() + left),
                // The margin never eats more than a quarter of a short budget.
                margin: margin.min(left / 4),
                span: Some(left),
            },
        }
    }

    /// True when another page taking about `page_time` would not end before the margin.
    pub fn exhausted(&self, page_time: Duration) -> bool {
        self.deadline
            .is_some_and(|d| Instant::now() + self.margin + page_time >= d)
    }

    /// The most one page should take: a quarter of the invocation, so that an invocation
    /// always fits several pages. `None` without a limit.
    pub fn page_time_cap(&self) -> Option<Duration> {
        self.span.map(|s| s / 4)
    }
}

/// The smallest page the time rule shrinks to.
const MIN_TIMED_PAGE: u32 = 100;

/// The next page size, in entities: by bytes (see [`crate::milvus::batch::next_limit`]) and,
/// under an invocation budget, shrunk in proportion when the last page took longer than the
/// budget's page-time cap.
pub(crate) fn page_limit(
    current: u32,
    rows: usize,
    bytes: usize,
    page_time: Duration,
    budget: &Budget,
    max: u32,
    aim: usize,
) -> u32 {
    let by_bytes = crate::milvus::batch::next_limit(current, rows, bytes, max, aim);
    match budget.page_time_cap() {
        Some(cap) if page_time > cap && !page_time.is_zero() => {
            let scaled = (rows as f64 * cap.as_secs_f64() / page_time.as_secs_f64()) as u32;
            // At most halving per page, and never below a floor that any invocation fits.
            scaled
                .max(current / 2)
                .max(MIN_TIMED_PAGE.min(by_bytes))
                .min(by_bytes)
        }
        _ => by_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::milvus::batch::TARGET_PAGE_BYTES;

    #[test]
    fn budget_takes_smaller_limit_and_ignores_nonsense() {
        let b = Budget::new(Some(Duration::from_secs(0)), None, Duration::from_secs(1));
        assert!(b.deadline.is_none(), "a zero deadline is ignored");
        let b = Budget::new(Some(Duration::from_secs(10 * 86_400)), None, Duration::ZERO);
        assert!(b.deadline.is_none(), "an absurd deadline is ignored");
        let b = Budget::new(
            Some(Duration::from_secs(900)),
            Some(Duration::from_secs(2)),
            Duration::from_secs(30),
        );
        assert_eq!(
            b.margin,
            Duration::from_millis(500),
            "margin capped at a quarter"
        );
        assert!(!b.exhausted(Duration::from_millis(100)));
        assert!(b.exhausted(Duration::from_secs(2)));
        assert!(!Budget::unlimited().exhausted(Duration::from_secs(1_000_000)));
    }

    #[test]
    fn slow_pages_shrink_under_a_budget_only() {
        let budget = Budget::new(None, Some(Duration::from_secs(2)), Duration::ZERO);
        // 1,000 rows took 1 s against a 0.5 s cap: the next page halves.
        assert_eq!(
            page_limit(
                1000,
                1000,
                1000,
                Duration::from_secs(1),
                &budget,
                5000,
                TARGET_PAGE_BYTES
            ),
            500
        );
        // Fast pages follow the byte rule (at most doubling).
        assert_eq!(
            page_limit(
                1000,
                1000,
                1000,
                Duration::from_millis(10),
                &budget,
                5000,
                TARGET_PAGE_BYTES
            ),
            2000
        );
        // Without a budget, time never shrinks a page.
        assert_eq!(
            page_limit(
                1000,
                1000,
                1000,
                Duration::from_secs(60),
                &Budget::unlimited(),
                5000,
                TARGET_PAGE_BYTES
            ),
            2000
        );
        assert_eq!(
            page_limit(
                300,
                300,
                300,
                Duration::from_secs(100),
                &budget,
                5000,
                TARGET_PAGE_BYTES
            ),
            150,
            "at most halving"
        );
        assert_eq!(
            page_limit(
                120,
                120,
                120,
                Duration::from_secs(100),
                &budget,
                5000,
                TARGET_PAGE_BYTES
            ),
            100,
            "never below the floor"
        );
    }
}
