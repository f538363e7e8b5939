//! The embedded job store: one SQLite file (bundled SQLite, WAL mode), the default for local runs.
//!
//! Records are kept as JSON beside the columns that conditions and listings need (status,
//! version, fence, lease owner), so every conditional write is a single `UPDATE ... WHERE`
//! whose changed-row count says whether the condition held, as a DynamoDB condition would.
//! Several processes may share the file (`vecmigrate cancel` from a second terminal).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::{Created, Expected, JobPage, JobStore, StoreError};
use crate::domain::pace::Pace;
use crate::domain::{Job, JobStatus, LogEntry, Task, TaskStatus};

/// A job store in one SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    version INTEGER NOT NULL,
    record TEXT NOT NULL,
    hook_due TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, created_at, id);
CREATE INDEX IF NOT EXISTS jobs_by_hook_due ON jobs (hook_due) WHERE hook_due IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created_at, id);
CREATE TABLE IF NOT EXISTS tasks (
    job_id TEXT NOT NULL,
    id TEXT NOT NULL,
    status TEXT NOT NULL,
    fence INTEGER NOT NULL,
    lease_owner TEXT,
    record TEXT NOT NULL,
    PRIMARY KEY (job_id, id)
);
CREATE TABLE IF NOT EXISTS logs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_by_job ON logs (job_id, seq);
CREATE TABLE IF NOT EXISTS paces (
    key TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS request_ids (
    id TEXT PRIMARY KEY,
    until TEXT NOT NULL
);
";

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(backend)
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| backend(format!("unreadable record: {e}")))
}

fn timestamp(t: DateTime<Utc>) -> String {
    // Fixed width, so text order is time order.
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn status_text(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::Pending => "PENDING",
        TaskStatus::Done => "DONE",
    }
}

impl SqliteStore {
    /// Opens (or creates) the store at `path`, creating its folder.
    /// Opens an existing store: a path where no store is yet (a mistyped `--store`) is an
    /// error that says so, rather than a new empty store.
    pub fn open_existing(path: &Path) -> Result<Self, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing(format!(
                "there is no job store at {}: no job has been run with it (check --store or VECMIGRATE_STORE)",
                path.display()
            )));
        }
        Self::open(path)
    }

    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| backend(format!("cannot create {}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path)
            .map_err(|e| backend(format!("cannot open {}: {e}", path.display())))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(backend)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(backend)?;
        // Stores made before outcome webhooks lack the column their index needs.
        let has_hook_due: bool = conn
            .query_row(
                "SELECT COUNT(*) FROM pragma_table_info('jobs') WHERE name = 'hook_due'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .unwrap_or(true);
        let table_exists: bool = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'jobs'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .map_err(backend)?;
        if table_exists && !has_hook_due {
            conn.execute("ALTER TABLE jobs ADD COLUMN hook_due TEXT", [])
                .map_err(backend)?;
        }
        conn.execute_batch(SCHEMA).map_err(backend)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_owned(),
        })
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the connection off the async threads.
    async fn with<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            // A poisoned lock means a panic mid-statement; SQLite rolled that statement back.
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(backend)?
    }

    /// Reads the JSON records a query returns for one job id, in order.
    fn records<T: serde::de::DeserializeOwned>(
        conn: &Connection,
        sql: &str,
        job_id: &str,
    ) -> Result<Vec<T>, StoreError> {
        let mut stmt = conn.prepare(sql).map_err(backend)?;
        let rows = stmt
            .query_map(params![job_id], |r| r.get::<_, String>(0))
            .map_err(backend)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)?;
        rows.iter().map(|r| from_json(r)).collect()
    }

    /// Conditionally replaces a task: only if its stored fence, lease owner and revision are
    /// as expected (a record written before revisions counts as revision 0).
    fn swap(conn: &Connection, expected: &Expected<'_>, new: &Task) -> Result<bool, StoreError> {
        let changed = conn
            .execute(
                "UPDATE tasks SET status = ?1, fence = ?2, lease_owner = ?3, record = ?4
                 WHERE job_id = ?5 AND id = ?6 AND fence = ?7 AND lease_owner IS ?8
                   AND COALESCE(json_extract(record, '$.rev'), 0) = ?9",
                params![
                    status_text(new.status),
                    new.fence as i64,
                    new.lease.as_ref().map(|l| l.owner.as_str()),
                    to_json(new)?,
                    new.job_id,
                    new.id,
                    expected.fence as i64,
                    expected.owner,
                    expected.rev as i64,
                ],
            )
            .map_err(backend)?;
        Ok(changed == 1)
    }

    /// Inserts a task unless one with its id exists; whether it was inserted.
    fn insert(conn: &Connection, t: &Task) -> Result<bool, StoreError> {
        let added = conn
            .execute(
                "INSERT OR IGNORE INTO tasks (job_id, id, status, fence, lease_owner, record)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    t.job_id,
                    t.id,
                    status_text(t.status),
                    t.fence as i64,
                    t.lease.as_ref().map(|l| l.owner.as_str()),
                    to_json(t)?
                ],
            )
            .map_err(backend)?;
        Ok(added == 1)
    }
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn create_job(&self, job: &Job) -> Result<Created, StoreError> {
        let job = job.clone();
        self.with(move |conn| {
            let tx = conn.transaction().map_err(backend)?;
            let key = job.request.idempotency_key.clone();
            if let Some(key) = &key {
                let existing: Option<String> = tx
                    .query_row(
                        "SELECT record FROM jobs WHERE idempotency_key = ?1",
                        params![key],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(backend)?;
                if let Some(record) = existing {
                    return Ok(Created::Existing(from_json(&record)?));
                }
            }
            tx.execute(
                "INSERT INTO jobs (id, status, created_at, idempotency_key, version, record, hook_due)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    job.id,
                    job.status.as_str(),
                    timestamp(job.created_at),
                    key,
                    job.version as i64,
                    to_json(&job)?,
                    job.webhook_due().map(timestamp)
                ],
            )
            .map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(Created::New(job))
        })
        .await
    }

    async fn get_job(&self, id: &str) -> Result<Option<Job>, StoreError> {
        let id = id.to_owned();
        self.with(move |conn| {
            let record: Option<String> = conn
                .query_row("SELECT record FROM jobs WHERE id = ?1", params![id], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(backend)?;
            record.map(|r| from_json(&r)).transpose()
        })
        .await
    }

    async fn list_jobs(
        &self,
        status: Option<JobStatus>,
        limit: usize,
        next: Option<&str>,
    ) -> Result<JobPage, StoreError> {
        let after = next
            .map(|token| {
                let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(token)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok());
                raw.and_then(|s| s.split_once('|').map(|(a, b)| (a.to_owned(), b.to_owned())))
                    .ok_or_else(|| StoreError::BadPageToken(token.to_owned()))
            })
            .transpose()?;
        let limit = limit.clamp(1, 1000);
        self.with(move |conn| {
            let (before_time, before_id) =
                after.unwrap_or_else(|| ("9999".to_owned(), String::new()));
            let mut stmt = conn
                .prepare(
                    "SELECT record, created_at, id FROM jobs
                     WHERE (?1 IS NULL OR status = ?1)
                       AND (created_at < ?2 OR (created_at = ?2 AND id < ?3))
                     ORDER BY created_at DESC, id DESC LIMIT ?4",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(
                    params![
                        status.map(|s| s.as_str()),
                        before_time,
                        before_id,
                        (limit + 1) as i64
                    ],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                        ))
                    },
                )
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            let more = rows.len() > limit;
            let mut jobs = Vec::new();
            let mut last = None;
            for (record, created, id) in rows.into_iter().take(limit) {
                jobs.push(from_json(&record)?);
                last = Some(format!("{created}|{id}"));
            }
            let next = if more {
                last.map(|l| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(l))
            } else {
                None
            };
            Ok(JobPage { jobs, next })
        })
        .await
    }

    async fn save_job(&self, job: &Job) -> Result<Job, StoreError> {
        let mut new = job.clone();
        new.version = job.version + 1;
        self.with(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE jobs SET status = ?1, version = ?2, record = ?3, hook_due = ?6
                     WHERE id = ?4 AND version = ?5",
                    params![
                        new.status.as_str(),
                        new.version as i64,
                        to_json(&new)?,
                        new.id,
                        (new.version - 1) as i64,
                        new.webhook_due().map(timestamp)
                    ],
                )
                .map_err(backend)?;
            if changed == 1 {
                Ok(new)
            } else {
                Err(StoreError::Conflict(new.id.clone()))
            }
        })
        .await
    }

    async fn put_tasks(&self, tasks: &[Task]) -> Result<(), StoreError> {
        let tasks = tasks.to_vec();
        self.with(move |conn| {
            let tx = conn.transaction().map_err(backend)?;
            for t in &tasks {
                Self::insert(&tx, t)?;
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn get_task(&self, job_id: &str, task_id: &str) -> Result<Option<Task>, StoreError> {
        let (job_id, task_id) = (job_id.to_owned(), task_id.to_owned());
        self.with(move |conn| {
            let record: Option<String> = conn
                .query_row(
                    "SELECT record FROM tasks WHERE job_id = ?1 AND id = ?2",
                    params![job_id, task_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
            record.map(|r| from_json(&r)).transpose()
        })
        .await
    }

    async fn list_tasks(&self, job_id: &str) -> Result<Vec<Task>, StoreError> {
        let job_id = job_id.to_owned();
        self.with(move |conn| {
            Self::records(
                conn,
                "SELECT record FROM tasks WHERE job_id = ?1 ORDER BY id",
                &job_id,
            )
        })
        .await
    }

    async fn list_due_webhooks(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Job>, StoreError> {
        let (now, limit) = (timestamp(now), limit.clamp(1, 1000) as i64);
        self.with(move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT record FROM jobs WHERE hook_due IS NOT NULL AND hook_due <= ?1
                     ORDER BY hook_due LIMIT ?2",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![now, limit], |r| r.get::<_, String>(0))
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            rows.iter().map(|r| from_json(r)).collect()
        })
        .await
    }

    async fn swap_task(&self, expected: &Expected<'_>, new: &Task) -> Result<bool, StoreError> {
        let (fence, owner, rev) = (
            expected.fence,
            expected.owner.map(str::to_owned),
            expected.rev,
        );
        let new = new.clone();
        self.with(move |conn| {
            let expected = Expected {
                fence,
                owner: owner.as_deref(),
                rev,
            };
            Self::swap(conn, &expected, &new)
        })
        .await
    }

    async fn split_task(
        &self,
        expected: &Expected<'_>,
        kept: &Task,
        rests: &[Task],
    ) -> Result<bool, StoreError> {
        let (fence, owner, rev) = (
            expected.fence,
            expected.owner.map(str::to_owned),
            expected.rev,
        );
        let (kept, rests) = (kept.clone(), rests.to_vec());
        self.with(move |conn| {
            let expected = Expected {
                fence,
                owner: owner.as_deref(),
                rev,
            };
            let tx = conn.transaction().map_err(backend)?;
            if !Self::swap(&tx, &expected, &kept)? {
                return Ok(false); // dropping the transaction rolls it back
            }
            for rest in &rests {
                if !Self::insert(&tx, rest)? {
                    return Ok(false);
                }
            }
            tx.commit().map_err(backend)?;
            Ok(true)
        })
        .await
    }

    async fn get_pace(&self, key: &str) -> Result<Option<Pace>, StoreError> {
        let key = key.to_owned();
        self.with(move |conn| {
            conn.query_row(
                "SELECT record FROM paces WHERE key = ?1",
                params![key],
                |r| r.get::<_, String>(0),
            )
            .optional()
            .map_err(backend)?
            .map(|r| from_json(&r))
            .transpose()
        })
        .await
    }

    async fn save_pace(&self, pace: &Pace) -> Result<Option<Pace>, StoreError> {
        let mut saved = pace.clone();
        saved.version = pace.version + 1;
        let (record, expected) = (to_json(&saved)?, pace.version as i64);
        let (key, version) = (saved.key.clone(), saved.version as i64);
        let changed = self
            .with(move |conn| {
                let sql = if expected == 0 {
                    "INSERT OR IGNORE INTO paces (key, version, record) VALUES (?1, ?2, ?3)"
                } else {
                    "UPDATE paces SET version = ?2, record = ?3 WHERE key = ?1 AND version = ?4"
                };
                let changed = if expected == 0 {
                    conn.execute(sql, params![key, version, record])
                } else {
                    conn.execute(sql, params![key, version, record, expected])
                };
                changed.map_err(backend)
            })
            .await?;
        Ok((changed == 1).then_some(saved))
    }

    async fn append_log(&self, job_id: &str, entry: &LogEntry) -> Result<(), StoreError> {
        let (job_id, record) = (job_id.to_owned(), to_json(entry)?);
        self.with(move |conn| {
            conn.execute(
                "INSERT INTO logs (job_id, record) VALUES (?1, ?2)",
                params![job_id, record],
            )
            .map(|_| ())
            .map_err(backend)
        })
        .await
    }

    async fn remember_request_id(
        &self,
        id: &str,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (id, until, now) = (id.to_owned(), timestamp(until), timestamp(Utc::now()));
        self.with(move |c| {
            let tx = c.transaction().map_err(backend)?;
            tx.execute("DELETE FROM request_ids WHERE until <= ?1", params![now])
                .map_err(backend)?;
            let added = tx
                .execute(
                    "INSERT OR IGNORE INTO request_ids (id, until) VALUES (?1, ?2)",
                    params![id, until],
                )
                .map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(added == 1)
        })
        .await
    }

    async fn list_logs(&self, job_id: &str) -> Result<Vec<LogEntry>, StoreError> {
        let job_id = job_id.to_owned();
        self.with(move |conn| {
            Self::records(
                conn,
                "SELECT record FROM logs WHERE job_id = ?1 ORDER BY seq",
                &job_id,
            )
        })
        .await
    }
}
