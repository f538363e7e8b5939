//! Tasks: the units of copy work, each with its cursor, its counts and the lease (with a
//! fence) that says which worker may write it; and the rules of claiming, checkpointing and
//! taking over.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// The last primary key written by a task: reading resumes strictly after it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cursor {
    /// An Int64 primary key.
    Int(i64),
    /// A VarChar primary key.
    Str(String),
}

impl std::fmt::Display for Cursor {
    /// The key as a user would write it: a number, or a JSON-quoted string (so that quotes,
    /// newlines and other hostile characters stay visible).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cursor::Int(v) => write!(f, "{v}"),
            Cursor::Str(s) => write!(f, "{}", serde_json::Value::String(s.clone())),
        }
    }
}

impl Cursor {
    /// Reads back a key as [`Display`](std::fmt::Display) wrote it: a number, or a JSON string.
    pub fn parse_shown(text: &str) -> Option<Cursor> {
        if text.starts_with('"') {
            return serde_json::from_str(text).ok().map(Cursor::Str);
        }
        text.parse().ok().map(Cursor::Int)
    }
}

/// Whether a task still has entities to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatus {
    /// Entities left (or not yet known to be none).
    Pending,
    /// Every entity copied and checkpointed.
    Done,
}

/// The right to work on a task until `expires_at`; `fence` grows with every claim so a stale
/// holder's writes are refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// A token unique to the invocation holding it.
    pub owner: String,
    /// When another worker may take the task over.
    pub expires_at: DateTime<Utc>,
}

/// One unit of copy work: a (collection, partition) of a job, or one primary-key range of it,
/// with its checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// The job.
    pub job_id: String,
    /// `db/collection/partition/n` (or `db/collection/partition#k/n` for the `k`-th key range),
    /// unique within the job.
    pub id: String,
    /// Source database.
    pub database: String,
    /// Source collection.
    pub collection: String,
    /// Target database.
    pub target_database: String,
    /// Target collection.
    pub target_collection: String,
    /// The partition, or `None` for a whole partition-key collection (its partitions are Milvus's).
    pub partition: Option<String>,
    /// Whether entities are left.
    pub status: TaskStatus,
    /// The last primary key checkpointed (for a key range not yet begun: the key before it).
    pub cursor: Option<Cursor>,
    /// The last key of the task's key range (inclusive); `None`: to the partition's end. A
    /// split (another worker cutting the range's remainder) can only lower it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upto: Option<Cursor>,
    /// The key before the task's range (its first cursor); `None`: from the partition's start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Cursor>,
    /// Entities the range held when it was made (counted, or estimated), for choosing the
    /// largest remainder to split; `None` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned: Option<u64>,
    /// Grows with every write of the record: a conditional write compares it, so that a split
    /// by another worker is never overwritten by the holder's next checkpoint.
    #[serde(default)]
    pub rev: u64,
    /// The source timestamp the task's pages are read at, pinned by its first page (when the
    /// server reports one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_at: Option<u64>,
    /// The page size to read after the cursor: kept with it, so a resumed worker re-reads
    /// exactly the page a dead worker may have written.
    pub next_limit: u32,
    /// Entities checkpointed.
    pub copied: u64,
    /// Bytes of field data checkpointed.
    pub bytes: u64,
    /// Batches checkpointed.
    pub batches: u64,
    /// Grows with every claim: conditional writes compare it.
    pub fence: u64,
    /// How many times the task was claimed.
    pub runs: u32,
    /// Who holds the task now.
    pub lease: Option<Lease>,
    /// Which migration of its collection the task belongs to (0, then 1 per remigration).
    #[serde(default)]
    pub generation: u32,
    /// The largest batch checkpointed, in bytes of field data.
    #[serde(default)]
    pub largest_batch_bytes: u64,
    /// A uniform random sample of the keys copied (for `verify: "sample"`), kept as a reservoir.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sample: Vec<Cursor>,
    /// The repair the task is under, when its range is being copied again (or last was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repair: Option<crate::domain::repair::RangeRepair>,
    /// True when the task's pages are staged as files the target imports, not inserted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub via_import: bool,
    /// The file being staged or imported past the cursor: what a worker resumes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staged: Option<Staged>,
    /// Files the target imported for this task.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub files_imported: u64,
    /// Bytes of the files the target imported for this task.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub staged_bytes: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One staged file of a task, from its first page to its import. While staging, `upto` moves
/// with every page (a split cuts only after it); once `sealed`, the file is complete where the
/// target reads it, and each import call is counted before it is made and its id recorded
/// after, so a file is imported at most once whatever stops a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Staged {
    /// The file, as the target reads it (an absolute path).
    pub file: String,
    /// The last key staged in it.
    pub upto: Cursor,
    /// Entities in it.
    pub rows: u64,
    /// Bytes of field data in it (as pages count them).
    pub bytes: u64,
    /// Pages in it.
    pub pages: u64,
    /// The file's size once sealed.
    #[serde(default)]
    pub file_bytes: u64,
    /// True once the file is complete and may be imported.
    #[serde(default)]
    pub sealed: bool,
    /// Import calls made for it (counted before each call).
    #[serde(default)]
    pub calls: u32,
    /// The target's id of its import, once a call answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_id: Option<String>,
    /// The key sample after the file's pages, when the job samples keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<Vec<Cursor>>,
    /// The largest page in it, in bytes of field data.
    #[serde(default)]
    pub largest_page: u64,
}

impl Task {
    /// A new task with nothing copied.
    pub fn new(
        job_id: &str,
        database: &str,
        collection: &str,
        target_database: &str,
        target_collection: &str,
        partition: Option<&str>,
        first_limit: u32,
    ) -> Self {
        let id = format!("{database}/{collection}/{}/0", partition.unwrap_or("*"));
        Self {
            job_id: job_id.to_owned(),
            id,
            database: database.to_owned(),
            collection: collection.to_owned(),
            target_database: target_database.to_owned(),
            target_collection: target_collection.to_owned(),
            partition: partition.map(str::to_owned),
            status: TaskStatus::Pending,
            cursor: None,
            upto: None,
            from: None,
            planned: None,
            rev: 0,
            read_at: None,
            next_limit: first_limit,
            copied: 0,
            bytes: 0,
            batches: 0,
            fence: 0,
            runs: 0,
            lease: None,
            generation: 0,
            largest_batch_bytes: 0,
            sample: Vec::new(),
            repair: None,
            via_import: false,
            staged: None,
            files_imported: 0,
            staged_bytes: 0,
        }
    }

    /// The last key the task has read and kept: its cursor, or the last key of its staged
    /// file. A split cuts only after it.
    pub fn reached(&self) -> Option<Cursor> {
        self.staged
            .as_ref()
            .map(|s| s.upto.clone())
            .or_else(|| self.cursor.clone())
    }

    /// Entities up to [`reached`](Self::reached): copied, and staged.
    pub fn passed(&self) -> u64 {
        self.copied + self.staged.as_ref().map_or(0, |s| s.rows)
    }

    /// The task as it is after its staged file was imported: the cursor at the file's last
    /// key, its entities counted as copied.
    pub fn imported(&self, now: DateTime<Utc>, ttl: Duration) -> Task {
        let mut t = self.clone();
        let Some(s) = t.staged.take() else {
            return t;
        };
        t.cursor = Some(s.upto);
        t.copied += s.rows;
        t.bytes += s.bytes;
        t.batches += s.pages;
        t.largest_batch_bytes = t.largest_batch_bytes.max(s.largest_page);
        if let Some(sample) = s.sample {
            t.sample = sample;
        }
        t.files_imported += 1;
        t.staged_bytes += s.file_bytes;
        if let Some(lease) = t.lease.as_mut() {
            lease.expires_at = now + ttl;
        }
        t
    }

    /// The `k`-th key range of the task's partition: the keys after `after` up to `upto`
    /// (inclusive), with an id of its own.
    pub fn ranged(mut self, k: usize, after: Option<Cursor>, upto: Option<Cursor>) -> Self {
        if let Some((base, generation)) = self.id.rsplit_once('/') {
            self.id = format!("{base}#{k}/{generation}");
        }
        self.from = after.clone();
        self.cursor = after;
        self.upto = upto;
        self
    }

    /// The task with the entities its range holds, when known.
    pub fn with_planned(mut self, planned: Option<u64>) -> Self {
        self.planned = planned;
        self
    }

    /// Entities the task is thought to have left (from what it held when made, less what it
    /// copied); `None` when unknown.
    pub fn remaining(&self) -> Option<u64> {
        self.planned.map(|p| p.saturating_sub(self.copied))
    }

    /// The tasks `split` makes of this one: this task ending at the first cut, and one new
    /// task per cut for the range after it (to the next cut, the last to this task's end), read
    /// at the same timestamp; the first new one already claimed by `owner` (the worker that
    /// cut it), the others free for any worker to claim.
    pub fn split_at(
        &self,
        split: &Split,
        owner: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> (Task, Vec<Task>) {
        let mut kept = self.clone();
        let Some((first, first_before)) = split.cuts.first() else {
            return (kept, Vec::new());
        };
        kept.upto = Some(first.clone());
        kept.planned = Some(self.passed() + first_before);
        let mut rests = Vec::with_capacity(split.cuts.len());
        for (i, (cut, before)) in split.cuts.iter().enumerate() {
            let (upto, until) = match split.cuts.get(i + 1) {
                Some((next, next_before)) => (Some(next.clone()), *next_before),
                None => (self.upto.clone(), split.left),
            };
            let rest = Task {
                id: self.split_id(),
                status: TaskStatus::Pending,
                cursor: Some(cut.clone()),
                from: Some(cut.clone()),
                upto,
                planned: Some(until.saturating_sub(*before)),
                rev: 0,
                next_limit: self.next_limit,
                copied: 0,
                bytes: 0,
                batches: 0,
                fence: 0,
                runs: 0,
                lease: None,
                largest_batch_bytes: 0,
                sample: Vec::new(),
                staged: None,
                files_imported: 0,
                staged_bytes: 0,
                ..self.clone()
            };
            rests.push(if i == 0 {
                rest.claimed(owner, now, ttl)
            } else {
                rest
            });
        }
        (kept, rests)
    }

    /// An id for a task split off this one: its base, a fresh suffix, its generation.
    pub fn split_id(&self) -> String {
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
        match self.id.rsplit_once('/') {
            Some((base, generation)) => {
                let base = base.split_once('#').map_or(base, |(b, _)| b);
                format!("{base}#{suffix}/{generation}")
            }
            None => format!("{}#{suffix}", self.id),
        }
    }

    /// The same task for the `generation`-th migration of its collection (after remigrations),
    /// with an id of its own.
    pub fn for_generation(mut self, generation: u32) -> Self {
        if let Some((base, _)) = self.id.rsplit_once('/') {
            self.id = format!("{base}/{generation}");
        }
        self.generation = generation;
        self
    }

    /// True when a worker may claim the task at `now`.
    pub fn claimable(&self, now: DateTime<Utc>) -> bool {
        self.status == TaskStatus::Pending
            && self.lease.as_ref().is_none_or(|l| l.expires_at <= now)
    }

    /// True when the task is pending under a lease that expired: its holder is presumed dead.
    pub fn lease_expired(&self, now: DateTime<Utc>) -> bool {
        self.status == TaskStatus::Pending
            && self.lease.as_ref().is_some_and(|l| l.expires_at <= now)
    }

    /// True when a worker holds a live lease on the task at `now`.
    pub fn leased(&self, now: DateTime<Utc>) -> bool {
        self.lease.as_ref().is_some_and(|l| l.expires_at > now)
    }

    /// The task as it is after `owner` claims it.
    pub fn claimed(&self, owner: &str, now: DateTime<Utc>, ttl: Duration) -> Task {
        let mut t = self.clone();
        t.fence += 1;
        t.runs += 1;
        t.lease = Some(Lease {
            owner: owner.to_owned(),
            expires_at: now + ttl,
        });
        t
    }

    /// True when `owner` holds the lease at `fence`.
    pub fn held_by(&self, owner: &str, fence: u64) -> bool {
        self.fence == fence && self.lease.as_ref().is_some_and(|l| l.owner == owner)
    }

    /// The task as it is after a batch is checkpointed; the lease is extended.
    pub fn checkpointed(&self, cp: &Checkpoint, now: DateTime<Utc>, ttl: Duration) -> Task {
        let mut t = self.clone();
        t.cursor = Some(cp.cursor.clone());
        t.next_limit = cp.next_limit;
        t.copied += cp.rows;
        t.bytes += cp.bytes;
        t.batches += 1;
        t.largest_batch_bytes = t.largest_batch_bytes.max(cp.bytes);
        if let Some(sample) = &cp.sample {
            t.sample = sample.clone();
        }
        t.read_at = t.read_at.or(cp.read_at);
        if let Some(lease) = t.lease.as_mut() {
            lease.expires_at = now + ttl;
        }
        t
    }

    /// True when the first batch of this claim must be written with upsert: an earlier holder
    /// may have written the page after the cursor without checkpointing it.
    pub fn resumed(&self) -> bool {
        self.runs > 1
    }

    /// The task sent back to copy its whole range again, every page with upsert, as its
    /// `repair.attempt`-th repair: pending from the range's start, nothing copied, its lease
    /// (if any) ended at `now` so any worker may claim it.
    pub fn for_repair(
        &self,
        repair: crate::domain::repair::RangeRepair,
        now: DateTime<Utc>,
    ) -> Task {
        let mut t = self.clone();
        t.status = TaskStatus::Pending;
        t.cursor = t.from.clone();
        t.copied = 0;
        t.sample.clear();
        t.repair = Some(repair);
        // A range is repaired by upsert, whatever wrote it first.
        t.via_import = false;
        t.staged = None;
        if let Some(lease) = t.lease.as_mut() {
            lease.expires_at = now;
        }
        t
    }

    /// True when `key` lies in the task's key range.
    pub fn contains(&self, key: &Cursor) -> bool {
        self.from.as_ref().is_none_or(|f| key > f) && self.upto.as_ref().is_none_or(|u| key <= u)
    }
}

/// Where a task is cut: at each key, and how many of the `left` entities after its cursor lie
/// up to that key (keys ascending); the task keeps what lies up to the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The cuts: a key, and the entities after the task's cursor up to it.
    pub cuts: Vec<(Cursor, u64)>,
    /// Entities after the task's cursor in all.
    pub left: u64,
}

/// What a worker records after writing one batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The last primary key of the batch.
    pub cursor: Cursor,
    /// Entities in the batch.
    pub rows: u64,
    /// Bytes of field data in the batch.
    pub bytes: u64,
    /// The page size for the next read.
    pub next_limit: u32,
    /// The task's key sample after this batch, when the job samples keys.
    pub sample: Option<Vec<Cursor>>,
    /// The timestamp the batch was read at, when the server said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_at: Option<u64>,
}
