//! Range repair: a task's key range whose counts (or contents) differ between the two sides is
//! copied again with upsert, then counted again. What a task carries while it is repaired, and
//! what the report lists for every range repaired.

use serde::{Deserialize, Serialize};

use super::task::{Cursor, Task};

/// Why a key range is copied again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RepairReason {
    /// Its entity counts differed between the source and the target.
    Count,
    /// A content comparison (`verify: "sample"` or `"full"`) found a key in it that differs.
    Content,
}

/// When the difference was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FoundAt {
    /// When the task copying the range had written its last page.
    TaskEnd,
    /// In the finish step, after every task was done.
    Finish,
}

/// The repair a task is under while its range is copied again: every page is upserted, and
/// the range is counted again at its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeRepair {
    /// Which repair of the range this is (1 for the first).
    pub attempt: u32,
    /// Why the range is copied again.
    pub reason: RepairReason,
}

/// The counts of one key range on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeCounts {
    /// Entities in the source's range.
    pub source: u64,
    /// Entities in the target's range.
    pub target: u64,
}

impl RangeCounts {
    /// True when both sides hold as many entities.
    pub fn matches(&self) -> bool {
        self.source == self.target
    }
}

/// One key range copied again, as the report, the status, the jobs page and the webhook list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairedRange {
    /// The task that copies the range (one entry per task).
    pub task: String,
    /// The source partition, or none for the whole collection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// The range's keys are after this one (none: from the partition's first key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// The range's keys are up to this one, inclusive (none: to the partition's last key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upto: Option<String>,
    /// Why it was copied again.
    pub reason: RepairReason,
    /// When the difference was found.
    pub found: FoundAt,
    /// The source's count of the range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_count: Option<u64>,
    /// The target's count of the range when the difference was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_before: Option<u64>,
    /// The target's count of the range after the last repair, once counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_after: Option<u64>,
    /// How many times the range was copied again.
    pub attempts: u32,
    /// True once the range counted the same on both sides after a repair.
    pub repaired: bool,
}

impl RepairedRange {
    /// The entry for `task`'s range, sent to its `attempt`-th repair.
    pub fn of(
        task: &Task,
        reason: RepairReason,
        found: FoundAt,
        counts: Option<RangeCounts>,
        attempt: u32,
    ) -> Self {
        Self {
            task: task.id.clone(),
            partition: task.partition.clone(),
            after: task.from.as_ref().map(Cursor::to_string),
            upto: task.upto.as_ref().map(Cursor::to_string),
            reason,
            found,
            source_count: counts.map(|c| c.source),
            target_before: counts.map(|c| c.target),
            target_after: None,
            attempts: attempt,
            repaired: false,
        }
    }

    /// The range as a user reads it: `(after, upto]` of a partition.
    pub fn describe(&self) -> String {
        let keys = match (&self.after, &self.upto) {
            (Some(a), Some(u)) => format!("keys after {a} up to {u}"),
            (Some(a), None) => format!("keys after {a}"),
            (None, Some(u)) => format!("keys up to {u}"),
            (None, None) => "every key".to_owned(),
        };
        let partition = self
            .partition
            .as_deref()
            .map(|p| format!(" of partition `{p}`"))
            .unwrap_or_default();
        format!("{keys}{partition}")
    }
}

impl RepairedRange {
    /// One line for people: the range, its counts before and after, and how it ended.
    pub fn summary(&self) -> String {
        let counts = match (self.source_count, self.target_before) {
            (Some(s), Some(t)) => format!("source {s}, target {t}"),
            _ => "content differed".to_owned(),
        };
        let after = self
            .target_after
            .map(|t| format!(", target {t} after"))
            .unwrap_or_default();
        let ended = if self.repaired {
            "repaired"
        } else {
            "not repaired yet"
        };
        let found = match self.found {
            FoundAt::TaskEnd => "at its task's end",
            FoundAt::Finish => "in the finish step",
        };
        format!(
            "{}: {counts} {found}{after} {} repair(s); {ended}",
            self.describe(),
            self.attempts
        )
    }
}

/// The most repaired ranges a collection's report lists (the job record must stay small); the
/// count of all of them is kept beside the list.
pub const MAX_LISTED_REPAIRS: usize = 50;

/// Records `entry` in `list` (replacing the entry of the same task), keeping at most
/// [`MAX_LISTED_REPAIRS`]; returns whether it was new.
pub fn record(list: &mut Vec<RepairedRange>, entry: RepairedRange) -> bool {
    if let Some(existing) = list.iter_mut().find(|r| r.task == entry.task) {
        // The first difference found stays on record; the latest attempt is added to it.
        existing.attempts = entry.attempts;
        existing.target_after = entry.target_after;
        existing.repaired = entry.repaired;
        return false;
    }
    if list.len() < MAX_LISTED_REPAIRS {
        list.push(entry);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(task: &str, attempts: u32) -> RepairedRange {
        RepairedRange {
            task: task.into(),
            partition: None,
            after: Some("10".into()),
            upto: Some("20".into()),
            reason: RepairReason::Count,
            found: FoundAt::TaskEnd,
            source_count: Some(10),
            target_before: Some(7),
            target_after: None,
            attempts,
            repaired: false,
        }
    }

    #[test]
    fn a_range_repaired_again_keeps_its_first_counts_and_its_latest_attempt() {
        let mut list = Vec::new();
        assert!(record(&mut list, entry("t1", 1)));
        let mut again = entry("t1", 2);
        again.target_before = Some(9);
        again.target_after = Some(10);
        again.repaired = true;
        assert!(!record(&mut list, again));
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].target_before, Some(7));
        assert_eq!((list[0].attempts, list[0].target_after), (2, Some(10)));
        assert!(list[0].repaired);
    }

    #[test]
    fn the_list_stops_growing_at_its_bound() {
        let mut list = Vec::new();
        for i in 0..MAX_LISTED_REPAIRS + 5 {
            record(&mut list, entry(&format!("t{i}"), 1));
        }
        assert_eq!(list.len(), MAX_LISTED_REPAIRS);
    }

    #[test]
    fn a_summary_gives_the_counts_before_and_after() {
        let mut e = entry("t", 1);
        e.target_after = Some(10);
        e.repaired = true;
        assert_eq!(
            e.summary(),
            "keys after 10 up to 20: source 10, target 7 at its task's end, target 10 after 1 repair(s); repaired"
        );
    }

    #[test]
    fn a_key_shown_reads_back_as_the_same_key() {
        for key in [Cursor::Int(-42), Cursor::Str("a \"quoted\" key".into())] {
            assert_eq!(Cursor::parse_shown(&key.to_string()), Some(key));
        }
        assert_eq!(Cursor::parse_shown("not a key"), None);
    }

    #[test]
    fn a_task_contains_the_keys_of_its_range_only() {
        let t = Task::new("j", "db", "c", "db", "c", None, 10).ranged(
            1,
            Some(Cursor::Int(10)),
            Some(Cursor::Int(20)),
        );
        assert!(!t.contains(&Cursor::Int(10)));
        assert!(t.contains(&Cursor::Int(11)) && t.contains(&Cursor::Int(20)));
        assert!(!t.contains(&Cursor::Int(21)));
    }

    #[test]
    fn a_range_is_described_by_its_bounds_and_partition() {
        let mut e = entry("t", 1);
        assert_eq!(e.describe(), "keys after 10 up to 20");
        e.after = None;
        e.partition = Some("p1".into());
        assert_eq!(e.describe(), "keys up to 20 of partition `p1`");
    }
}
