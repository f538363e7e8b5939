//! Verification's last word: compare contents as the job's `verify` mode asks (see
//! [`super::content`]), count every collection on both sides and, in `repair` mode, its key
//! ranges (see [`super::ranges`]), apply the load policy, then end the job SUCCESSFUL or
//! FAILED, or send what differs back to be copied again (ranges) or migrated again
//! (collections, in `remigrate` mode).

use chrono::Utc;

use super::content::Progress;
use super::lifecycle::source_collection;
use super::ranges::count_selected;
use super::retry::Patience;
use super::{Engine, EngineError};
use crate::domain::{
    CollectionReport, CollectionStatus, CountResult, Job, JobStatus, Level, OnCountMismatch, Phase,
    VerifyMode,
};
use crate::milvus::Cluster;
use crate::queue::WorkMessage;

impl Engine {
    /// Compares contents, then counts, and ends the job. Returns false when it ran out of time
    /// in a content comparison (its progress is saved); true when it is done (or lost its step).
    pub(super) async fn verify(
        &self,
        p: &Patience<'_>,
        job_id: &str,
        owner: &str,
        source: &dyn Cluster,
        target: &dyn Cluster,
    ) -> Result<bool, EngineError> {
        let job = self.job(job_id).await?;
        let Some(results) = self.count_all(p, &job, owner, source, target).await? else {
            return Ok(true);
        };
        // Ranges first: a range short of entities would show as keys that differ, too many to
        // name, and have its whole collection compared and repaired.
        match self
            .check_ranges(p, &job, owner, source, target, &results)
            .await?
        {
            // Ranges went back to the copy, or the step was lost: the target stays loaded.
            Some(true) | None => return Ok(true),
            Some(false) => {}
        }
        if job.request.options.verify != VerifyMode::Count {
            for c in &job.collections {
                if c.content.as_ref().is_some_and(|s| s.done) {
                    continue;
                }
                if !self.hold_step(job_id, owner, &[Phase::Verify]).await? {
                    return Ok(true);
                }
                if !self.compare_one(p, &job, c, source, target).await? {
                    return Ok(false);
                }
            }
        }
        let job = self.job(job_id).await?;
        if self.repair_content(&job).await? {
            return Ok(true);
        }
        if !job.request.options.load_after {
            // The target collections are the job's own: each is left unloaded unless asked,
            // also where the server loaded it by itself (Milvus Lite loads on create) or a
            // range count loaded it.
            for c in &job.collections {
                let (tdb, tname) = (&c.target_database, &c.target);
                p.call(|| target.release(tdb, tname)).await?;
            }
        }
        for r in &results {
            let level = if r.matches() {
                Level::Info
            } else {
                Level::Error
            };
            let message = format!(
                "verified: source {}, target {}",
                r.source_count, r.target_count
            );
            self.log(
                job_id,
                level,
                Some(format!("{}.{}", r.database, r.source)),
                message,
            )
            .await;
        }
        if results.iter().any(|r| !r.matches()) && self.remigrate(&job, &results).await? {
            return Ok(true);
        }
        self.end_job(job_id, |job| {
            let reasons = record_verification(job, &results);
            if reasons.is_empty() {
                job.finish(JobStatus::Successful, None, Utc::now())?;
            } else {
                job.finish(JobStatus::Failed, Some(reasons.join("; ")), Utc::now())?;
            }
            Ok(())
        })
        .await?;
        Ok(true)
    }

    /// Runs (or continues) one collection's content comparison and records where it stands;
    /// returns false when it paused, out of time.
    async fn compare_one(
        &self,
        p: &Patience<'_>,
        job: &Job,
        c: &CollectionReport,
        source: &dyn Cluster,
        target: &dyn Cluster,
    ) -> Result<bool, EngineError> {
        let (state, paused) = match self.compare_content(p, job, c, source, target).await? {
            Progress::Done(s) => (s, false),
            Progress::Paused(s) => (s, true),
        };
        self.update_job(&job.id, |j| {
            if j.status.is_terminal() || j.phase != Some(Phase::Verify) {
                return Ok(false);
            }
            match j.collection_mut(&c.database, &c.source) {
                Some(col) => col.content = Some(state.clone()),
                None => return Ok(false),
            }
            Ok(true)
        })
        .await?;
        let collection = Some(format!("{}.{}", c.database, c.source));
        if state.done {
            let level = if state.differing == 0 {
                Level::Info
            } else {
                Level::Error
            };
            let message = format!(
                "{} comparison: {} entities compared field by field, {} differ",
                state.mode.as_str(),
                state.compared,
                state.differing
            );
            self.log(&job.id, level, collection.clone(), message).await;
        }
        if paused {
            let message = format!(
                "full comparison paused after {} entities, out of time; it continues in the next invocation",
                state.compared
            );
            self.log(&job.id, Level::Info, collection, message).await;
        }
        Ok(!paused)
    }

    /// Counts every collection on both sides (loading the target to count it: `verify`
    /// releases it again unless `load_after`). `None` when the step was lost to another
    /// invocation.
    async fn count_all(
        &self,
        p: &Patience<'_>,
        job: &Job,
        owner: &str,
        source: &dyn Cluster,
        target: &dyn Cluster,
    ) -> Result<Option<Vec<CountResult>>, EngineError> {
        let mut results = Vec::new();
        for c in &job.collections {
            if !self.hold_step(&job.id, owner, &[Phase::Verify]).await? {
                return Ok(None);
            }
            let selection = job.request.selection(&c.database, &c.source);
            let source_count = if selection.is_all() {
                p.call(|| source.count(&c.database, &c.source)).await?
            } else {
                let info = source_collection(p, source, &c.database, &c.source).await?;
                count_selected(p, source, &c.database, &c.source, &info, selection).await?
            };
            let (tdb, tname) = (&c.target_database, &c.target);
            if !p.call(|| target.is_loaded(tdb, tname)).await? {
                p.call(|| target.load(tdb, tname)).await?;
            }
            let target_count = p.call(|| target.count(tdb, tname)).await?;
            results.push(CountResult {
                database: c.database.clone(),
                source: c.source.clone(),
                source_count,
                target_count,
            });
        }
        Ok(Some(results))
    }

    /// With `on_count_mismatch: "remigrate"`, sends the job back to migrate every mismatched
    /// collection again, if none has used up `max_remigrations`; returns whether it did.
    async fn remigrate(&self, job: &Job, results: &[CountResult]) -> Result<bool, EngineError> {
        let options = &job.request.options;
        if options.on_count_mismatch != OnCountMismatch::Remigrate {
            return Ok(false);
        }
        let mismatched: Vec<CountResult> =
            results.iter().filter(|r| !r.matches()).cloned().collect();
        let used = |r: &CountResult| {
            job.collections
                .iter()
                .find(|c| c.database == r.database && c.source == r.source)
                .map_or(u32::MAX, |c| c.remigrations)
        };
        if mismatched
            .iter()
            .any(|r| used(r) >= options.max_remigrations)
        {
            return Ok(false);
        }
        let mut moved = false;
        self.update_job(&job.id, |j| {
            moved = false;
            if j.status.is_terminal() || j.phase != Some(Phase::Verify) {
                return Ok(false);
            }
            let matched: Vec<CountResult> =
                results.iter().filter(|r| r.matches()).cloned().collect();
            record_verification(j, &matched);
            j.remigrate(&mismatched, Utc::now())?;
            moved = true;
            Ok(true)
        })
        .await?;
        if !moved {
            return Ok(false);
        }
        for r in &mismatched {
            let message = format!(
                "counts differ (source {}, target {}): migrating it again (remigration {} of at most {})",
                r.source_count,
                r.target_count,
                used(r) + 1,
                options.max_remigrations
            );
            let collection = Some(format!("{}.{}", r.database, r.source));
            self.log(&job.id, Level::Warn, collection, message).await;
        }
        self.queue.send(WorkMessage::plan(&job.id)).await?;
        Ok(true)
    }
}

/// Writes the counts and verdicts of `results` into the job's collections; returns why the
/// job fails (counts or contents that differ), empty when everything matches.
fn record_verification(job: &mut Job, results: &[CountResult]) -> Vec<String> {
    let mut mismatches = Vec::new();
    let mut content_differs = Vec::new();
    for r in results {
        let Some(c) = job.collection_mut(&r.database, &r.source) else {
            continue;
        };
        let differing = c.content.as_ref().filter(|s| s.differing > 0);
        if let Some(check) = differing {
            content_differs.push(format!(
                "`{}.{}`: {} of {} entities compared differ (keys {})",
                r.database,
                r.source,
                check.differing,
                check.compared,
                check.keys.join(", ")
            ));
        }
        if !r.matches() {
            mismatches.push(format!(
                "`{}.{}`: source {}, target {}",
                r.database, r.source, r.source_count, r.target_count
            ));
        }
        let same = r.matches() && differing.is_none();
        c.source_count = Some(r.source_count);
        c.target_count = Some(r.target_count);
        c.matches = Some(same);
        c.status = if same {
            CollectionStatus::Verified
        } else {
            CollectionStatus::Mismatch
        };
    }
    let mut reasons = Vec::new();
    if !mismatches.is_empty() {
        reasons.push(format!(
            "entity counts differ after the copy: {}",
            mismatches.join("; ")
        ));
    }
    if !content_differs.is_empty() {
        reasons.push(format!(
            "entity contents differ after the copy: {}",
            content_differs.join("; ")
        ));
    }
    reasons
}
