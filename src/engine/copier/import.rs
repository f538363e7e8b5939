//! A task copied by bulk import: its pages are read as for an insert and staged as Parquet
//! files, each file imported by the target once, and the cursor moves past a file only when
//! its import completed.
//!
//! Exactly once: the task's record holds the file being staged (`staged`), moved on with
//! every page so that a split cuts only after it. Sealed, it is imported under this protocol:
//! the call is counted in the record before it is made (`calls`) and its id recorded after;
//! a worker that finds a counted call without an id (a crash or a lost reply between the two)
//! asks the target's list of the collection's imports for one reading the file, and adopts it
//! rather than importing again. Only a file whose import failed (all or nothing) is imported
//! again. A file that was staged but not sealed (the worker died while writing it) is never
//! imported: its pages are read and staged again from the cursor.

use std::future::Future;
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;

use super::{Copier, Halt, Outcome, Stop};
use crate::domain::{Level, Staged, Task};
use crate::engine::sample::reservoir;
use crate::engine::EngineError;
use crate::milvus::{Batch, ClusterError, ImportState};
use crate::staging::parquet::ParquetFile;
use crate::staging::{StagedPath, Staging as Area};
use crate::store::StoreError;

/// How many times one file's import may fail before the job fails with the target's reason.
const MAX_IMPORT_CALLS: u32 = 4;
/// The first and the longest pause between two questions about a running import.
const POLL: (Duration, Duration) = (Duration::from_millis(500), Duration::from_secs(10));

/// How long a completed import's entities are waited for on a loaded target.
const VISIBLE_WITHIN: Duration = Duration::from_secs(60);

/// What came of staging a file.
enum Staging {
    /// The range had nothing left: the task is done.
    Empty,
    /// A file was sealed; it is imported next.
    Sealed,
}

impl Copier<'_> {
    /// Copies the task by import: imports a sealed file it holds, then stages and imports file
    /// after file until its range is done.
    pub(super) async fn run_import(&mut self, mut task: Task) -> Result<Stop, EngineError> {
        self.staging = Some(
            self.engine
                .staging_of(self.job)
                .await?
                .ok_or_else(|| EngineError::Refused("options.staging is not set".into()))?,
        );
        loop {
            match task.staged.as_ref().map(|s| s.sealed) {
                Some(true) => {
                    if let Outcome::Halted(h) = self.import_staged(&mut task).await? {
                        return Ok(h.stop(task));
                    }
                    continue;
                }
                // A worker died while writing it: it was never imported.
                Some(false) if self.drop_staged(&mut task).await?.is_none() => {
                    return Ok(Stop::LeaseLost);
                }
                _ => {}
            }
            match self.stage_file(&mut task).await? {
                Outcome::Done(Staging::Empty) => return Ok(Stop::Done(task)),
                Outcome::Done(Staging::Sealed) => {}
                Outcome::Halted(h) => return Ok(h.stop(task)),
            }
        }
    }

    /// The job's staging area (opened when the task started).
    fn staging(&self) -> Result<Area, EngineError> {
        self.staging
            .clone()
            .ok_or_else(|| EngineError::Refused("options.staging is not set".into()))
    }

    /// Forgets the task's staged file (never imported, or failed and gone) and removes what
    /// is left of it: its pages are staged again from the cursor. `None` when the lease was
    /// lost.
    async fn drop_staged(&self, task: &mut Task) -> Result<Option<()>, EngineError> {
        let Some(file) = task.staged.as_ref().map(|s| s.file.clone()) else {
            return Ok(Some(()));
        };
        let mut dropped = task.clone();
        dropped.staged = None;
        *task = match self.update(task, dropped).await? {
            Some(t) => t,
            None => return Ok(None),
        };
        self.staging()?.remove(&file).await;
        Ok(Some(()))
    }

    /// Writes `new` over `task` under its lease; `None` when the lease was lost.
    async fn update(&self, task: &Task, new: Task) -> Result<Option<Task>, EngineError> {
        match self.engine.store.update_held(task, new).await {
            Ok(t) => Ok(Some(t)),
            Err(StoreError::LeaseLost(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads pages after the cursor into a new file, recording each page in the task, until
    /// the range ends, the file reaches its bound, or the invocation's time runs short; then
    /// seals it. Reads the next page while it stages the current one.
    async fn stage_file(&mut self, task: &mut Task) -> Result<Outcome<Staging>, EngineError> {
        let staging = self.staging()?;
        let path = staging.new_file(&task.job_id, &task.id);
        let file_name = path.name.clone();
        let bound = u64::from(self.job.request.options.import_file_mb) * 1_000_000;
        let skip = self.reader.skip.clone();
        let info = self.info.clone();
        let file = staging.create(&path)?;
        let mut out = ParquetFile::new(&info.schema, &skip, std::io::BufWriter::new(file))
            .map_err(|e| staging_failed(&path, e))?;
        let mut limit = task.next_limit;
        let started = Instant::now();
        let first = self
            .read_page(task.cursor.clone(), task.upto.clone(), limit)
            .await;
        let mut page = match self.read_through(task, limit, first).await? {
            Outcome::Done(page) => page,
            Outcome::Halted(h) => {
                staging.discard(&path);
                return Ok(Outcome::Halted(h));
            }
        };
        self.reader.read_at = self.reader.read_at.or(page.read_at);
        let mut page_time = started.elapsed();
        let mut staged = false;
        loop {
            if page.rows == 0 {
                break;
            }
            // Out of time with pages staged: seal them, so the next invocation imports them. A
            // page that would take the file past its bound starts the next file instead.
            let written = task.staged.as_ref().map_or(0, |s| s.bytes);
            if staged
                && (self.p.budget().exhausted(page_time) || written + page.bytes as u64 > bound)
            {
                break;
            }
            if let Some(h) = self.halt_before_write(task, staged, page_time).await? {
                if h == Halt::OutOfTime && staged {
                    break;
                }
                staging.discard(&path);
                return Ok(Outcome::Halted(h));
            }
            let started = Instant::now();
            let following = self.following(limit, &page, page_time);
            let (next_page, appended) = tokio::join!(
                self.read_page(page.last.clone(), task.upto.clone(), following),
                async { out.append(&page) }
            );
            appended.map_err(|e| {
                EngineError::Refused(format!(
                    "cannot stage a page of `{}.{}` for import: {e}",
                    task.database, task.collection
                ))
            })?;
            let recorded = self.staged_page(task, &file_name, &page, following);
            *task = match self.update(task, recorded).await? {
                Some(t) => t,
                None => {
                    staging.discard(&path);
                    return Ok(Outcome::Halted(Halt::LeaseLost));
                }
            };
            staged = true;
            self.turn.pages += 1;
            self.turn.bytes += page.bytes as u64;
            page = match self.read_through(task, following, next_page).await? {
                Outcome::Done(page) => page,
                Outcome::Halted(h) => {
                    staging.discard(&path);
                    return Ok(Outcome::Halted(h));
                }
            };
            limit = following;
            page_time = started.elapsed();
        }
        if !staged {
            staging.discard(&path);
            return Ok(Outcome::Done(Staging::Empty));
        }
        let file_bytes = seal(out).map_err(|e| staging_failed(&path, e))?;
        // Published (uploaded, for S3) before it is recorded sealed: a sealed file is there.
        if let Err(e) = staging.publish(&path).await {
            staging.discard(&path);
            return Err(e.into());
        }
        let mut sealed = task.clone();
        if let Some(s) = sealed.staged.as_mut() {
            s.sealed = true;
            s.file_bytes = file_bytes;
        }
        *task = match self.update(task, sealed).await? {
            Some(t) => t,
            None => return Ok(Outcome::Halted(Halt::LeaseLost)),
        };
        tracing::debug!(file = %file_name, file_bytes, "staged file sealed");
        Ok(Outcome::Done(Staging::Sealed))
    }

    /// The task with one more page in its staged file.
    fn staged_page(&mut self, task: &Task, file: &str, page: &Batch, following: u32) -> Task {
        let mut t = task.clone();
        let before = t.staged.clone();
        let sample = self.sample_size.map(|size| {
            let keys = self.page_keys(page);
            let kept = before
                .as_ref()
                .and_then(|s| s.sample.clone())
                .unwrap_or_else(|| task.sample.clone());
            reservoir(&kept, task.passed(), &keys, size, &mut self.rng)
        });
        let mut s = before.unwrap_or_else(|| Staged {
            file: file.to_owned(),
            upto: task
                .cursor
                .clone()
                .unwrap_or(crate::domain::Cursor::Int(i64::MIN)),
            rows: 0,
            bytes: 0,
            pages: 0,
            file_bytes: 0,
            sealed: false,
            calls: 0,
            import_id: None,
            sample: None,
            largest_page: 0,
        });
        if let Some(last) = &page.last {
            s.upto = last.clone();
        }
        s.rows += page.rows as u64;
        s.bytes += page.bytes as u64;
        s.pages += 1;
        s.largest_page = s.largest_page.max(page.bytes as u64);
        s.sample = sample.or(s.sample);
        t.staged = Some(s);
        t.next_limit = following;
        t.read_at = t.read_at.or(page.read_at);
        t
    }

    /// Imports the task's sealed file once, waits for the import to complete and moves the
    /// cursor past it.
    async fn import_staged(&mut self, task: &mut Task) -> Result<Outcome<()>, EngineError> {
        let mut pause = POLL.0;
        loop {
            let Some(s) = task.staged.clone() else {
                return Ok(Outcome::Done(()));
            };
            let id = match (&s.import_id, s.calls) {
                (Some(id), _) => Some(id.clone()),
                (None, 0) => match self.call_import(task, &s).await? {
                    Outcome::Done(id) => id,
                    Outcome::Halted(h) => return Ok(Outcome::Halted(h)),
                },
                (None, _) => match self.adopt_or_call(task, &s).await? {
                    Outcome::Done(id) => id,
                    Outcome::Halted(h) => return Ok(Outcome::Halted(h)),
                },
            };
            // No answer to the call: the next turn asks the target's list.
            let Some(id) = id else { continue };
            let target = self.target.clone();
            let progress = match self.through(task, || target.import_progress(&id)).await? {
                Outcome::Done(p) => p,
                Outcome::Halted(h) => return Ok(Outcome::Halted(h)),
            };
            match progress.state {
                ImportState::Completed => {
                    if progress.rows != s.rows {
                        return Err(EngineError::Refused(format!(
                            "the target's import {id} of {} completed with {} entities, but the file holds {}",
                            s.file, progress.rows, s.rows
                        )));
                    }
                    if let Some(h) = self.until_visible(task, &s).await? {
                        return Ok(Outcome::Halted(h));
                    }
                    let ttl = self.engine.config.lease();
                    *task = match self.update(task, task.imported(Utc::now(), ttl)).await? {
                        Some(t) => t,
                        None => return Ok(Outcome::Halted(Halt::LeaseLost)),
                    };
                    self.turn.entities += s.rows;
                    self.staging()?.remove(&s.file).await;
                    return Ok(Outcome::Done(()));
                }
                ImportState::Failed => {
                    // A file gone from staging (removed by hand, or by the bucket's lifecycle
                    // rule) is staged again from the cursor rather than asked for again.
                    if !self.staging()?.exists(&s.file).await? {
                        self.engine
                            .log(
                                &task.job_id,
                                Level::Warn,
                                Some(format!("{}.{}", task.database, task.collection)),
                                format!(
                                    "the target's import {id} of {} failed ({}), and the file is gone from staging: its pages are staged again",
                                    s.file, progress.reason
                                ),
                            )
                            .await;
                        return Ok(match self.drop_staged(task).await? {
                            Some(()) => Outcome::Done(()),
                            None => Outcome::Halted(Halt::LeaseLost),
                        });
                    }
                    if s.calls >= MAX_IMPORT_CALLS {
                        return Err(EngineError::Refused(format!(
                            "the target failed to import {} {} times; the last time it said: {}",
                            s.file, s.calls, progress.reason
                        )));
                    }
                    self.engine
                        .log(
                            &task.job_id,
                            Level::Warn,
                            Some(format!("{}.{}", task.database, task.collection)),
                            format!(
                                "the target's import {id} of {} failed ({}); importing it again (nothing of a failed import is kept)",
                                s.file, progress.reason
                            ),
                        )
                        .await;
                    if let Outcome::Halted(h) = self.call_import(task, &s).await? {
                        return Ok(Outcome::Halted(h));
                    }
                }
                ImportState::Running => {
                    if self.p.budget().exhausted(pause) {
                        return Ok(Outcome::Halted(Halt::OutOfTime));
                    }
                    if let Some(h) = self.keep_lease(task).await? {
                        return Ok(Outcome::Halted(h));
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(POLL.1);
                }
            }
        }
    }

    /// A call was counted and its answer never recorded: the target's list of the
    /// collection's imports says whether it was made. One that did not fail is adopted;
    /// otherwise the file is imported (again).
    async fn adopt_or_call(
        &mut self,
        task: &mut Task,
        s: &Staged,
    ) -> Result<Outcome<Option<String>>, EngineError> {
        let (db, name) = (task.target_database.clone(), task.target_collection.clone());
        let target = self.target.clone();
        let found = match self
            .through(task, || target.imports_of(&db, &name, &s.file))
            .await?
        {
            Outcome::Done(found) => found,
            Outcome::Halted(h) => return Ok(Outcome::Halted(h)),
        };
        let Some(made) = found.into_iter().find(|i| i.state != ImportState::Failed) else {
            return self.call_import(task, s).await;
        };
        self.engine
            .log(
                &task.job_id,
                Level::Info,
                Some(format!("{}.{}", task.database, task.collection)),
                format!(
                    "import {} of {} found on the target after a call whose answer was not recorded: adopted, not made again",
                    made.id, s.file
                ),
            )
            .await;
        match self.record_id(task, &made.id).await? {
            Some(()) => Ok(Outcome::Done(Some(made.id))),
            None => Ok(Outcome::Halted(Halt::LeaseLost)),
        }
    }

    /// Waits until the target shows the file's entities: Milvus 2.3.5 reports an import
    /// completed before a loaded collection serves its segments, and a range counted then
    /// would look short and be repaired for nothing. Bounded by [`VISIBLE_WITHIN`]. A job that
    /// does not count ranges does not wait on an unloaded target (its finish step counts the
    /// whole collection after the index phase), nor does a range the target cannot tell apart.
    async fn until_visible(
        &mut self,
        task: &mut Task,
        s: &Staged,
    ) -> Result<Option<Halt>, EngineError> {
        if self.routed && task.partition.is_some() {
            return Ok(None);
        }
        let (db, name) = (task.target_database.clone(), task.target_collection.clone());
        let target = self.target.clone();
        match self.through(task, || target.is_loaded(&db, &name)).await? {
            Outcome::Done(true) => {}
            // The task's range is counted next: loaded for it now, as the count would.
            Outcome::Done(false) if self.job.request.options.count_ranges => {
                if let Outcome::Halted(h) = self.through(task, || target.load(&db, &name)).await? {
                    return Ok(Some(h));
                }
            }
            Outcome::Done(false) => return Ok(None),
            Outcome::Halted(h) => return Ok(Some(h)),
        }
        let (after, partition, primary) = (
            task.cursor.clone(),
            task.partition.clone(),
            self.reader.primary.clone(),
        );
        let started = Instant::now();
        let mut pause = POLL.0;
        loop {
            let range = crate::milvus::PageRequest {
                database: &db,
                collection: &name,
                partition: partition.as_deref(),
                primary: &primary,
                after: after.as_ref(),
                upto: Some(&s.upto),
                read_at: None,
                limit: 0,
                skip_fields: &[],
                subset: crate::domain::Selection::default(),
            };
            let seen = match self.through(task, || target.count_range(&range)).await? {
                Outcome::Done(n) => n,
                Outcome::Halted(h) => return Ok(Some(h)),
            };
            if seen >= s.rows || started.elapsed() > VISIBLE_WITHIN {
                return Ok(None);
            }
            if self.p.budget().exhausted(pause) {
                return Ok(Some(Halt::OutOfTime));
            }
            if let Some(h) = self.keep_lease(task).await? {
                return Ok(Some(h));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(POLL.1);
        }
    }

    /// Counts one import call in the record, makes it, and records its id; `Done(None)` when
    /// the call got no answer (it may have been made).
    async fn call_import(
        &mut self,
        task: &mut Task,
        s: &Staged,
    ) -> Result<Outcome<Option<String>>, EngineError> {
        // Credentials first: a call is counted only when it can be made.
        let grant = self.staging()?.read_grant(&task.job_id).await?;
        let mut counted = task.clone();
        let ttl = self.engine.config.lease();
        if let Some(st) = counted.staged.as_mut() {
            st.calls += 1;
            st.import_id = None;
        }
        if let Some(lease) = counted.lease.as_mut() {
            lease.expires_at = Utc::now() + ttl;
        }
        *task = match self.update(task, counted).await? {
            Some(t) => t,
            None => return Ok(Outcome::Halted(Halt::LeaseLost)),
        };
        let partition = if self.routed {
            None
        } else {
            task.partition.clone()
        };
        if self.engine.faults.vanishes_now() {
            self.staging()?.remove(&s.file).await;
        }
        let answer = self
            .target
            .import_file(
                &task.target_database,
                &task.target_collection,
                partition.as_deref(),
                &s.file,
                grant.as_ref(),
            )
            .await;
        self.engine.faults.after_import()?;
        match answer {
            Ok(id) => match self.record_id(task, &id).await? {
                Some(()) => Ok(Outcome::Done(Some(id))),
                None => Ok(Outcome::Halted(Halt::LeaseLost)),
            },
            Err(e) => match self.wait_out(task, e).await? {
                Some(h) => Ok(Outcome::Halted(h)),
                None => Ok(Outcome::Done(None)),
            },
        }
    }

    /// Records the id of the file's import; `None` when the lease was lost.
    async fn record_id(&self, task: &mut Task, id: &str) -> Result<Option<()>, EngineError> {
        let mut recorded = task.clone();
        if let Some(st) = recorded.staged.as_mut() {
            st.import_id = Some(id.to_owned());
        }
        match self.update(task, recorded).await? {
            Some(t) => {
                *task = t;
                Ok(Some(()))
            }
            None => Ok(None),
        }
    }

    /// One target call, tried again through an outage (keeping the lease) until it answers.
    async fn through<T, F, Fut>(
        &mut self,
        task: &mut Task,
        mut call: F,
    ) -> Result<Outcome<T>, EngineError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ClusterError>>,
    {
        loop {
            match call().await {
                Ok(v) => {
                    self.p.answered().await;
                    return Ok(Outcome::Done(v));
                }
                Err(e) => {
                    if let Some(h) = self.wait_out(task, e).await? {
                        return Ok(Outcome::Halted(h));
                    }
                }
            }
        }
    }
}

/// Ends the file and makes it durable; returns its size.
fn seal(
    out: ParquetFile<std::io::BufWriter<std::fs::File>>,
) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
    let file = out.finish()?.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(file.metadata()?.len())
}

fn staging_failed(path: &StagedPath, e: impl std::fmt::Display) -> EngineError {
    EngineError::Refused(format!(
        "cannot write staged file {}: {e}; check that options.staging (or, for S3, the temporary directory) is a directory this process can write, with room for a file",
        path.local.display()
    ))
}
