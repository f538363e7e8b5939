//! Range verification and repair (`on_count_mismatch: "repair"`, the default). Each task's key
//! range is counted on both sides when the task has copied its last page, and again in the
//! finish step; a range whose counts differ, or that holds a key whose content differs, is sent
//! back to the copy: the same task, pending again from its range's start, every page upserted,
//! under a lease and checkpointed like any copy. At its end it is counted again; a range that
//! still differs after `max_repairs` repairs fails the job with both counts and the range.
//!
//! The source is counted at the task's pinned read timestamp, the target with Strong
//! consistency (it must be loaded to be counted: the first count loads it, and the finish step
//! releases it again unless `load_after`).

use chrono::Utc;

use super::retry::Patience;
use super::{source_collection, Engine, EngineError};
use crate::domain::repair::{self, RangeCounts, RangeRepair, RepairReason, RepairedRange};
use crate::domain::{
    CollectionReport, CountResult, Cursor, FoundAt, Job, Level, OnCountMismatch, Phase, Selection,
    Task, TaskStatus,
};
use crate::milvus::{Cluster, CollectionInfo, FieldSchema, PageRequest};
use crate::queue::WorkMessage;
use crate::store::Expected;

/// What counting one collection's ranges on both sides needs.
pub(super) struct RangeSides<'a> {
    pub(super) p: &'a Patience<'a>,
    pub(super) source: &'a dyn Cluster,
    pub(super) target: &'a dyn Cluster,
    /// The collection's primary key field.
    pub(super) primary: &'a FieldSchema,
    /// Whether the target routes entities to partitions itself (a partition key).
    pub(super) routed: bool,
    /// The job's filter on this collection: the source's count of a range is what matches.
    pub(super) filter: Option<&'a str>,
}

impl RangeSides<'_> {
    /// The counts of `task`'s key range on both sides; `None` when the target cannot tell
    /// the range apart: a named source partition written into a target that routes entities
    /// by a partition key (an override gave it one), where the ranges of other partitions
    /// hold the same keys.
    pub(super) async fn count(&self, task: &Task) -> Result<Option<RangeCounts>, EngineError> {
        if self.routed && task.partition.is_some() {
            return Ok(None);
        }
        let source_range = PageRequest {
            database: &task.database,
            collection: &task.collection,
            partition: task.partition.as_deref(),
            primary: self.primary,
            after: task.from.as_ref(),
            upto: task.upto.as_ref(),
            read_at: task.read_at,
            limit: 0,
            skip_fields: &[],
            subset: Selection {
                filter: self.filter,
                partitions: None,
            },
        };
        let source = self
            .p
            .call(|| self.source.count_range(&source_range))
            .await?;
        let (tdb, tname) = (&task.target_database, &task.target_collection);
        if !self.p.call(|| self.target.is_loaded(tdb, tname)).await? {
            self.p.call(|| self.target.load(tdb, tname)).await?;
        }
        let target_range = PageRequest {
            database: tdb,
            collection: tname,
            read_at: None,
            subset: Selection::default(),
            ..source_range
        };
        let target = self
            .p
            .call(|| self.target.count_range(&target_range))
            .await?;
        Ok(Some(RangeCounts { source, target }))
    }
}

/// Whether the target of `info` (as the job makes it) routes entities by a partition key.
pub(super) fn routed(job: &Job, info: &CollectionInfo, database: &str, collection: &str) -> bool {
    info.has_partition_key()
        || job
            .request
            .overrides(database, collection)
            .is_some_and(|o| o.partition_key.is_some())
}

/// True when the job repairs ranges that differ.
fn repairs(job: &Job) -> bool {
    job.request.options.on_count_mismatch == OnCountMismatch::Repair
}

/// A range to send back: the task, why, and its counts when they were taken.
struct SendBack {
    task: Task,
    reason: RepairReason,
    counts: Option<RangeCounts>,
}

impl SendBack {
    /// The repair it gets next, or the error that fails the job when the range had its last.
    fn next(&self, job: &Job) -> Result<RangeRepair, EngineError> {
        let attempt = self.task.repair.map_or(1, |r| r.attempt + 1);
        let max = job.request.options.max_repairs;
        if attempt <= max {
            return Ok(RangeRepair {
                attempt,
                reason: self.reason,
            });
        }
        let range = RepairedRange::of(&self.task, self.reason, FoundAt::TaskEnd, None, 0);
        let what = match (self.reason, self.counts) {
            (RepairReason::Count, Some(c)) => {
                format!(
                    "its counts differ: source {}, target {}",
                    c.source, c.target
                )
            }
            _ => "a key in it still differs in content".to_owned(),
        };
        Err(EngineError::Refused(format!(
            "{} of `{}.{}` still differs after {max} repairs ({what}); the target may be losing writes: check its health, then drop the target collection (or choose another target_name) and start a new job",
            range.describe(),
            self.task.database,
            self.task.collection,
        )))
    }
}

impl Engine {
    /// After a task copied its last page: when the job counts ranges (or the task was a
    /// repair), counts its range on both sides. Returns true when the range differed and the
    /// task was sent back to copy it again (its lease released); false when the task is to be
    /// completed (the range matches, or cannot be told apart on the target), a repair then
    /// recorded as done.
    pub(super) async fn settle(
        &self,
        sides: &RangeSides<'_>,
        job: &Job,
        task: &Task,
    ) -> Result<bool, EngineError> {
        if !repairs(job) || !(job.request.options.count_ranges || task.repair.is_some()) {
            return Ok(false);
        }
        let Some(counts) = sides.count(task).await? else {
            return Ok(false);
        };
        if counts.matches() {
            if let Some(done) = task.repair {
                self.note_repaired(job, task, done, counts).await?;
            }
            return Ok(false);
        }
        let back = SendBack {
            task: task.clone(),
            reason: RepairReason::Count,
            counts: Some(counts),
        };
        let next = match back.next(job) {
            Ok(next) => next,
            Err(e) => {
                self.note_exhausted(job, &back, counts, FoundAt::TaskEnd)
                    .await?;
                return Err(e);
            }
        };
        let reset = task.for_repair(next, Utc::now());
        match self.store.update_held(task, reset).await {
            Ok(_) => {}
            // Another worker holds it now; it counts the range again at its end.
            Err(crate::store::StoreError::LeaseLost(_)) => return Ok(true),
            Err(e) => return Err(e.into()),
        }
        self.note_sent_back(job, &[(back, next)], FoundAt::TaskEnd)
            .await?;
        Ok(true)
    }

    /// The finish step's range count (`repair` mode): counts the ranges of each collection
    /// (every one when the job counts ranges, else those whose counts differ) and sends back
    /// those that differ. Returns `None` when the step was lost to another invocation,
    /// `Some(true)` when ranges were sent back (the job copies again), `Some(false)` when none
    /// was.
    pub(super) async fn check_ranges(
        &self,
        p: &Patience<'_>,
        job: &Job,
        owner: &str,
        source: &dyn Cluster,
        target: &dyn Cluster,
        counted: &[CountResult],
    ) -> Result<Option<bool>, EngineError> {
        if !repairs(job) {
            return Ok(Some(false));
        }
        let tasks = self.store.list_tasks(&job.id).await?;
        let mut back = Vec::new();
        let mut reopened = Vec::new();
        for c in &job.collections {
            let mine: Vec<&Task> = tasks.iter().filter(|t| c.holds(t)).collect();
            // Tasks already sent back by an invocation that died before reopening the copy.
            if mine.iter().any(|t| t.status == TaskStatus::Pending) {
                reopened.push((c.database.clone(), c.source.clone()));
                continue;
            }
            let suspect = counted
                .iter()
                .find(|r| r.database == c.database && r.source == c.source)
                .is_some_and(|r| !r.matches());
            if c.ranges_counted.is_some() || !(job.request.options.count_ranges || suspect) {
                continue;
            }
            match self
                .count_ranges(p, job, owner, c, &mine, source, target)
                .await?
            {
                None => return Ok(None),
                Some(differing) => back.extend(differing),
            }
        }
        if back.is_empty() && reopened.is_empty() {
            return Ok(Some(false));
        }
        self.send_back(job, back, reopened).await?;
        Ok(Some(true))
    }

    /// Counts each range of one collection on both sides; returns those that differ (`None`
    /// when the step was lost). A collection whose ranges all match records it.
    #[allow(clippy::too_many_arguments)]
    async fn count_ranges(
        &self,
        p: &Patience<'_>,
        job: &Job,
        owner: &str,
        c: &CollectionReport,
        tasks: &[&Task],
        source: &dyn Cluster,
        target: &dyn Cluster,
    ) -> Result<Option<Vec<SendBack>>, EngineError> {
        let info = source_collection(p, source, &c.database, &c.source).await?;
        let primary = info.primary_field().cloned().ok_or_else(|| {
            EngineError::Refused(format!(
                "collection `{}.{}` has no primary key",
                c.database, c.source
            ))
        })?;
        let sides = RangeSides {
            p,
            source,
            target,
            primary: &primary,
            routed: routed(job, &info, &c.database, &c.source),
            filter: job.request.selection(&c.database, &c.source).filter,
        };
        let mut differing = Vec::new();
        for task in tasks {
            if !self.hold_step(&job.id, owner, &[Phase::Verify]).await? {
                return Ok(None);
            }
            match sides.count(task).await? {
                Some(counts) if !counts.matches() => differing.push(SendBack {
                    task: (*task).clone(),
                    reason: RepairReason::Count,
                    counts: Some(counts),
                }),
                _ => {}
            }
        }
        if differing.is_empty() {
            let n = tasks.len() as u32;
            self.update_job(&job.id, |j| {
                let Some(col) = j.collection_mut(&c.database, &c.source) else {
                    return Ok(false);
                };
                col.ranges_counted = Some(n);
                Ok(j.phase == Some(Phase::Verify))
            })
            .await?;
            let message = format!("{n} key range(s) counted on both sides: all equal");
            let collection = Some(format!("{}.{}", c.database, c.source));
            self.log(&job.id, Level::Info, collection, message).await;
        }
        Ok(Some(differing))
    }

    /// After the content comparisons (`repair` mode): sends back the ranges holding keys a
    /// comparison found to differ. Returns whether it sent any.
    pub(super) async fn repair_content(&self, job: &Job) -> Result<bool, EngineError> {
        if !repairs(job) {
            return Ok(false);
        }
        let tasks = self.store.list_tasks(&job.id).await?;
        let back: Vec<SendBack> = job
            .collections
            .iter()
            .flat_map(|c| {
                let mine: Vec<&Task> = tasks.iter().filter(|t| c.holds(t)).collect();
                content_differs(c, &mine)
            })
            .collect();
        if back.is_empty() {
            return Ok(false);
        }
        self.send_back(job, back, Vec::new()).await?;
        Ok(true)
    }

    /// Sends `back` to the copy from the finish step: each task reset to copy its range again,
    /// then the job moved back to copy (the collections of `reopened` too, whose tasks were
    /// reset already), then work sent. In that order, so that a crash in between leaves pending
    /// tasks in a finishing job, which the next finish step sends back again.
    async fn send_back(
        &self,
        job: &Job,
        back: Vec<SendBack>,
        mut reopened: Vec<(String, String)>,
    ) -> Result<(), EngineError> {
        let mut sent = Vec::new();
        for b in back {
            let next = match b.next(job) {
                Ok(next) => next,
                Err(e) => {
                    if let Some(counts) = b.counts {
                        self.note_exhausted(job, &b, counts, FoundAt::Finish)
                            .await?;
                    }
                    return Err(e);
                }
            };
            let mut reset = b.task.for_repair(next, Utc::now());
            reset.rev = b.task.rev + 1;
            if !self.store.swap_task(&Expected::of(&b.task), &reset).await? {
                return Err(EngineError::Conflict(format!(
                    "task `{}` changed while the finish step sent it back; the step runs again",
                    b.task.id
                )));
            }
            let key = (b.task.database.clone(), b.task.collection.clone());
            if !reopened.contains(&key) {
                reopened.push(key);
            }
            sent.push((b, next));
        }
        self.update_job(&job.id, |j| {
            if j.status.is_terminal() || !matches!(j.phase, Some(Phase::Index | Phase::Verify)) {
                return Ok(false);
            }
            j.reopen_copy(&reopened, Utc::now())?;
            for (b, _) in &sent {
                if b.reason == RepairReason::Content {
                    if let Some(c) = j.collection_mut(&b.task.database, &b.task.collection) {
                        c.content = c.content.take().and_then(recheck);
                    }
                }
            }
            Ok(true)
        })
        .await?;
        self.note_sent_back(job, &sent, FoundAt::Finish).await?;
        let workers = sent
            .len()
            .max(1)
            .min(job.request.options.max_workers as usize);
        for _ in 0..workers {
            self.queue.send(WorkMessage::work(&job.id)).await?;
        }
        Ok(())
    }

    /// Records ranges sent back in the job's report and log.
    async fn note_sent_back(
        &self,
        job: &Job,
        sent: &[(SendBack, RangeRepair)],
        found: FoundAt,
    ) -> Result<(), EngineError> {
        if sent.is_empty() {
            return Ok(());
        }
        self.update_job(&job.id, |j| {
            let mut changed = false;
            for (b, next) in sent {
                let entry = RepairedRange::of(&b.task, b.reason, found, b.counts, next.attempt);
                if let Some(c) = j.collection_mut(&b.task.database, &b.task.collection) {
                    if repair::record(&mut c.repairs, entry) {
                        c.repaired_ranges += 1;
                    }
                    changed = true;
                }
            }
            Ok(changed)
        })
        .await?;
        let max = job.request.options.max_repairs;
        for (b, next) in sent {
            let range = RepairedRange::of(&b.task, b.reason, found, b.counts, next.attempt);
            let why = match b.counts {
                Some(c) => format!("counts differ (source {}, target {})", c.source, c.target),
                None => "a key in it differs in content".to_owned(),
            };
            let message = format!(
                "{}: {why}; copying the range again with upsert (repair {} of at most {max})",
                range.describe(),
                next.attempt
            );
            let collection = Some(format!("{}.{}", b.task.database, b.task.collection));
            self.log(&job.id, Level::Warn, collection, message).await;
        }
        Ok(())
    }

    /// Records a range that counts the same on both sides after its repair.
    async fn note_repaired(
        &self,
        job: &Job,
        task: &Task,
        done: RangeRepair,
        counts: RangeCounts,
    ) -> Result<(), EngineError> {
        let mut entry = RepairedRange::of(task, done.reason, FoundAt::TaskEnd, None, done.attempt);
        entry.target_after = Some(counts.target);
        entry.repaired = true;
        self.update_job(&job.id, |j| {
            let Some(c) = j.collection_mut(&task.database, &task.collection) else {
                return Ok(false);
            };
            if repair::record(&mut c.repairs, entry.clone()) {
                c.repaired_ranges += 1;
            }
            Ok(true)
        })
        .await?;
        let message = format!(
            "{}: repaired, source {} and target {} after {} repair(s)",
            entry.describe(),
            counts.source,
            counts.target,
            done.attempt
        );
        let collection = Some(format!("{}.{}", task.database, task.collection));
        self.log(&job.id, Level::Info, collection, message).await;
        Ok(())
    }

    /// Records the last count of a range that used up its repairs (`found`: where, should
    /// the range have no entry yet).
    async fn note_exhausted(
        &self,
        job: &Job,
        b: &SendBack,
        counts: RangeCounts,
        found: FoundAt,
    ) -> Result<(), EngineError> {
        let attempts = b.task.repair.map_or(0, |r| r.attempt);
        let mut entry = RepairedRange::of(&b.task, b.reason, found, None, attempts);
        entry.target_after = Some(counts.target);
        self.update_job(&job.id, |j| {
            let Some(c) = j.collection_mut(&b.task.database, &b.task.collection) else {
                return Ok(false);
            };
            if repair::record(&mut c.repairs, entry.clone()) {
                c.repaired_ranges += 1;
            }
            Ok(true)
        })
        .await?;
        Ok(())
    }
}

/// The ranges of a collection holding a key its finished content comparison found to differ
/// (every range of the collection when the comparison could not name every such key).
fn content_differs(c: &CollectionReport, tasks: &[&Task]) -> Vec<SendBack> {
    let Some(check) = c.content.as_ref().filter(|s| s.done && s.differing > 0) else {
        return Vec::new();
    };
    let keys: Vec<Cursor> = check
        .keys
        .iter()
        .filter_map(|k| Cursor::parse_shown(k))
        .collect();
    let named_all = keys.len() as u64 == check.differing;
    tasks
        .iter()
        .filter(|t| !named_all || keys.iter().any(|k| t.contains(k)))
        .map(|t| SendBack {
            task: (*t).clone(),
            reason: RepairReason::Content,
            counts: None,
        })
        .collect()
}

/// What a content comparison does after its differing keys' ranges were repaired: compare
/// those keys again when it named them all, else start over.
fn recheck(check: crate::domain::ContentCheck) -> Option<crate::domain::ContentCheck> {
    if check.keys.len() as u64 != check.differing {
        return None;
    }
    Some(crate::domain::ContentCheck {
        recheck: check.keys.clone(),
        done: false,
        ..check
    })
}

/// The source's count of what a job copies of a collection: `count(*)` of all of it, or of
/// the entities of the selected partitions that match its filter.
pub(super) async fn count_selected(
    p: &Patience<'_>,
    source: &dyn Cluster,
    database: &str,
    collection: &str,
    info: &CollectionInfo,
    selection: Selection<'_>,
) -> Result<u64, EngineError> {
    let primary = match info.primary_field() {
        Some(primary) if !selection.is_all() => primary,
        _ => return p.call(|| source.count(database, collection)).await,
    };
    let subset = PageRequest::whole(database, collection, None, primary, selection);
    p.call(|| source.count_range(&subset)).await
}
