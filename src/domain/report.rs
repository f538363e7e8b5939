//! The report a user reads: the job record, progress computed from its tasks, and its log.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::job::{Job, LogEntry, Task, TaskStatus};

/// How far the copy has come.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Entities checkpointed so far.
    pub copied: u64,
    /// Entities in the source collections (known after preflight).
    pub total: u64,
    /// Bytes of field data checkpointed.
    pub bytes: u64,
    /// Entities per second since the job started.
    pub rate: f64,
    /// Seconds left at that rate.
    pub eta_seconds: Option<u64>,
    /// Percent of `total` copied.
    pub percent: f64,
    /// Tasks finished, out of all tasks.
    pub tasks_done: usize,
    /// All tasks.
    pub tasks: usize,
    /// What bulk import has done, for a job that imports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<ImportProgress>,
}

/// What bulk import has done for a job: staged files and what the target imported of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ImportProgress {
    /// Bytes of the files staged so far (imported, or being imported).
    pub staged_bytes: u64,
    /// Files the target imported.
    pub files_imported: u64,
    /// Entities the target imported from them.
    pub rows_imported: u64,
}

impl ImportProgress {
    /// The totals of `tasks`; `None` when none of them imports.
    pub fn of(tasks: &[Task]) -> Option<Self> {
        let importing: Vec<&Task> = tasks.iter().filter(|t| t.via_import).collect();
        (!importing.is_empty()).then(|| Self {
            staged_bytes: importing
                .iter()
                .map(|t| t.staged_bytes + t.staged.as_ref().map_or(0, |s| s.file_bytes))
                .sum(),
            files_imported: importing.iter().map(|t| t.files_imported).sum(),
            rows_imported: importing.iter().map(|t| t.copied).sum(),
        })
    }

    /// One line for people: `import: 3 file(s) imported, 2000000 entities; 597.0 MB staged`.
    pub fn summary(&self) -> String {
        format!(
            "import: {} file(s) imported, {} entities; {:.1} MB staged",
            self.files_imported,
            self.rows_imported,
            self.staged_bytes as f64 / 1e6
        )
    }
}

impl Progress {
    /// Progress of `job` from its tasks, as of `now`.
    pub fn of(job: &Job, tasks: &[Task], now: DateTime<Utc>) -> Self {
        // After a remigration only the collection's latest tasks count.
        let current: Vec<Task> = tasks
            .iter()
            .filter(|t| {
                job.collections
                    .iter()
                    .find(|c| c.database == t.database && c.source == t.collection)
                    .is_none_or(|c| c.remigrations == t.generation)
            })
            .cloned()
            .collect();
        let tasks = current.as_slice();
        let copied: u64 = tasks.iter().map(|t| t.copied).sum();
        let bytes: u64 = tasks.iter().map(|t| t.bytes).sum();
        let total: u64 = job.collections.iter().filter_map(|c| c.source_count).sum();
        let end = job.finished_at.unwrap_or(now);
        let elapsed = job
            .started_at
            .map(|s| (end - s).num_milliseconds().max(1) as f64 / 1000.0)
            .unwrap_or(0.0);
        let rate = if elapsed > 0.0 {
            copied as f64 / elapsed
        } else {
            0.0
        };
        let left = total.saturating_sub(copied);
        let eta_seconds =
            (rate > 0.0 && !job.status.is_terminal()).then(|| (left as f64 / rate).ceil() as u64);
        let percent = if total == 0 {
            if job.status.is_terminal() {
                100.0
            } else {
                0.0
            }
        } else {
            (copied as f64 * 100.0 / total as f64).min(100.0)
        };
        Self {
            copied,
            total,
            bytes,
            rate,
            eta_seconds,
            percent,
            tasks_done: tasks
                .iter()
                .filter(|t| t.status == TaskStatus::Done)
                .count(),
            tasks: tasks.len(),
            import: ImportProgress::of(tasks),
        }
    }
}

/// One task of a collection's current migration, as the report shows it: which key range it
/// copies and how much of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskReport {
    /// Source database.
    pub database: String,
    /// Source collection.
    pub collection: String,
    /// The partition, or none for a partition-key collection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// The key before its range (`None`: from the start).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The last key of its range (`None`: to the end).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upto: Option<String>,
    /// Entities copied.
    pub copied: u64,
    /// Whether it is done.
    pub done: bool,
    /// How many times it was claimed.
    pub runs: u32,
}

/// Everything `status` and `--json` show about a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The job record (request secrets redacted).
    pub job: Job,
    /// Copy progress.
    pub progress: Progress,
    /// Seconds from start to finish (or to now).
    pub duration_seconds: Option<f64>,
    /// The job's log.
    pub log: Vec<LogEntry>,
    /// The tasks of each collection's current migration, in key order per partition.
    #[serde(default)]
    pub tasks: Vec<TaskReport>,
}

/// A task's start for ordering: numbers as numbers, strings as themselves, the start first.
fn tasks_from(t: &TaskReport) -> (bool, i128, String) {
    match &t.from {
        None => (false, 0, String::new()),
        Some(f) => match f.parse::<i128>() {
            Ok(n) => (true, n, String::new()),
            Err(_) => (true, 0, f.clone()),
        },
    }
}

impl Report {
    /// Builds the report as of `now`.
    pub fn new(job: Job, tasks: &[Task], log: Vec<LogEntry>, now: DateTime<Utc>) -> Self {
        let job = job.public();
        let progress = Progress::of(&job, tasks, now);
        let duration_seconds = job
            .started_at
            .map(|s| (job.finished_at.unwrap_or(now) - s).num_milliseconds() as f64 / 1000.0);
        let mut tasks: Vec<TaskReport> = tasks
            .iter()
            .filter(|t| job.collections.iter().any(|c| c.holds(t)))
            .map(|t| TaskReport {
                database: t.database.clone(),
                collection: t.collection.clone(),
                partition: t.partition.clone(),
                from: t.from.as_ref().map(ToString::to_string),
                upto: t.upto.as_ref().map(ToString::to_string),
                copied: t.copied,
                done: t.status == TaskStatus::Done,
                runs: t.runs,
            })
            .collect();
        let order = |t: &TaskReport| {
            let from = tasks_from(t);
            (
                t.database.clone(),
                t.collection.clone(),
                t.partition.clone(),
                from,
            )
        };
        tasks.sort_by_key(order);
        Self {
            job,
            progress,
            duration_seconds,
            log,
            tasks,
        }
    }
}
