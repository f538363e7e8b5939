//! Split: a worker that finds no task to claim cuts the largest remainder another worker is
//! copying into one range for each idle worker slot (and one the holder keeps), and copies
//! the first new one, so every worker stays busy until the end and no range ends up holding
//! most of a partition.
//!
//! Nothing is read before the copy starts: each partition begins as one task, and ranges are
//! cut while it runs, by whoever is free. A cut is found from range counts (`count(*)` with a
//! key-range filter, which no server answers by reading vectors): the remainder after the
//! holder's cursor is counted, its first keys are read (key-only), and [`CutSearch`] counts
//! its way to each cut key, at equal shares of the remainder (measured in
//! `bench/RESULTS.md`: a handful of counts, against reading every key of the remainder).
//!
//! The cut is safe whatever the timing. It is one conditional write ([`JobStore::split_task`]):
//! the task is shortened to end at the first cut, if its record is still the one the cuts were
//! counted on (its fence, holder and revision), and each range after it becomes a new task,
//! the first claimed by the worker that cut it. The first cut leaves at least two full pages (plus one entity) to the holder
//! after the cursor it had checkpointed, and a holder never has more than two pages read past
//! its checkpoint (the page it writes and the one it reads meanwhile; a holder that died may
//! have written one of them, which its successor writes again with upsert), so nothing it read
//! lies past the cut. A task nobody holds (released at the end of an invocation) may be cut
//! the same way. Its next write of the record finds the revision moved and takes the new end
//! (`JobStore::update_held`), and its later reads stop there. When the holder checkpointed
//! while the cut was counted, the count before the cut is lowered by what it copied (the
//! entities between two cursors are exactly those copied) and the cut is tried again.
//!
//! [`JobStore::split_task`]: crate::store::JobStore::split_task

use chrono::Utc;
use tokio::time::Instant;

use super::retry::Patience;
use super::{source_collection, Engine, EngineError};
use crate::domain::keyline::{CutSearch, Probe};
use crate::domain::task::Split as TaskSplit;
use crate::domain::{Cursor, Job, Level, Selection, Task, TaskStatus};
use crate::milvus::batch::key_page_limit;
use crate::milvus::{Cluster, FieldSchema, PageRequest};
use crate::store::Expected;

/// The most candidates one idle worker counts before it gives up.
const MAX_CANDIDATES: usize = 3;
/// The most times a cut is tried again after the holder checkpointed meanwhile.
const MAX_TRIES: usize = 8;

/// What came of an idle worker's look for something to cut.
pub(super) enum Split {
    /// A new task, claimed by the worker that cut it.
    Made(Box<Task>),
    /// Another worker cut the task first (or it ended): claim again, then look again.
    Raced,
    /// Nothing worth cutting.
    Nothing,
}

/// How large a remainder must be to be cut, and what each side must keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SplitRule {
    /// Entities each side keeps at least: two full pages and one more (see the module).
    pub guard: u64,
    /// The smallest remainder worth cutting: two ranges of at least `min_range`, and of at
    /// least two guards each.
    pub min_remainder: u64,
}

impl SplitRule {
    /// The rule for pages of at most `batch_size` entities and ranges of `min_range`.
    pub(crate) fn new(batch_size: u32, min_range: u64) -> Self {
        let guard = 2 * u64::from(batch_size) + 1;
        Self {
            guard,
            min_remainder: 2 * min_range.max(2 * guard),
        }
    }

    /// Whether a task is worth counting: it has entities left, it is the collection's current
    /// migration, it is not a repair (a repaired range is recorded and counted again as one),
    /// and it is not known to be small. (It is usually held by another worker: a worker splits
    /// only when it found nothing to claim.)
    fn candidate(&self, job: &Job, task: &Task) -> bool {
        task.status == TaskStatus::Pending
            && task.repair.is_none()
            && job.collections.iter().any(|c| c.holds(task))
            && task.remaining().is_none_or(|r| r >= self.min_remainder)
    }
}

/// Cuts found in a task's remainder: the keys, each with the entities after the task's cursor
/// up to it, out of `left`.
struct Cuts {
    at: Vec<(Cursor, u64)>,
    left: u64,
    probes: u32,
}

impl Engine {
    /// Cuts the largest remainder being copied by another worker, into as many ranges as there
    /// are workers without a task (and the holder), and returns the first new range, claimed
    /// by `owner`; the others are left for the other idle workers to claim. `None` when no
    /// remainder is worth cutting, or another worker cut it first (the caller claims again).
    pub(super) async fn split_any(
        &self,
        p: &Patience<'_>,
        job: &Job,
        owner: &str,
    ) -> Result<Split, EngineError> {
        let rule = SplitRule::new(
            job.request.options.batch_size,
            self.config.min_range_entities,
        );
        let now = Utc::now();
        let tasks = self.store.list_tasks(&job.id).await?;
        let busy = tasks
            .iter()
            .filter(|t| t.status == TaskStatus::Pending && t.leased(now))
            .count();
        // The holder, this worker, and every other slot nobody works in.
        let pieces = (job.request.options.max_workers as usize)
            .saturating_sub(busy)
            .max(1)
            + 1;
        let mut candidates: Vec<Task> = tasks
            .into_iter()
            .filter(|t| rule.candidate(job, t))
            .collect();
        // The largest remainder first; one of unknown size before all.
        candidates.sort_by_key(|t| std::cmp::Reverse(t.remaining().unwrap_or(u64::MAX)));
        candidates.truncate(MAX_CANDIDATES);
        if candidates.is_empty() {
            return Ok(Split::Nothing);
        }
        let (source, _) = self.clusters(p, job).await?;
        for task in candidates {
            let started = Instant::now();
            let info = source_collection(p, &*source, &task.database, &task.collection).await?;
            let Some(primary) = info.primary_field() else {
                continue;
            };
            let Some(cuts) = self
                .find_cuts(p, &*source, &task, primary, &rule, pieces)
                .await?
            else {
                continue;
            };
            match self.cut(&task, cuts, owner, &rule, started).await? {
                Split::Nothing => {}
                done => return Ok(done),
            }
        }
        Ok(Split::Nothing)
    }

    /// Counts `task`'s remainder and searches it for `pieces - 1` cuts at equal shares (fewer
    /// when the remainder holds fewer ranges), if it is worth cutting at all.
    async fn find_cuts(
        &self,
        p: &Patience<'_>,
        source: &dyn Cluster,
        task: &Task,
        primary: &FieldSchema,
        rule: &SplitRule,
        pieces: usize,
    ) -> Result<Option<Cuts>, EngineError> {
        fn range<'a>(
            task: &'a Task,
            reached: Option<&'a Cursor>,
            primary: &'a FieldSchema,
            upto: Option<&'a Cursor>,
            limit: u32,
        ) -> PageRequest<'a> {
            PageRequest {
                database: &task.database,
                collection: &task.collection,
                partition: task.partition.as_deref(),
                primary,
                after: reached,
                upto,
                read_at: task.read_at,
                limit,
                skip_fields: &[],
                // Cut at equal shares of every key in the range, matching a filter or not:
                // the counts and the key pages the search reads agree, and any cut is correct.
                subset: Selection::default(),
            }
        }
        // A staged file past the cursor is the holder's as much as what it checkpointed.
        let reached = task.reached();
        let all = range(task, reached.as_ref(), primary, task.upto.as_ref(), 0);
        let left = p.call(|| source.count_range(&all)).await?;
        if left < rule.min_remainder {
            return Ok(None);
        }
        let pieces = (pieces as u64).min(left / (rule.min_remainder / 2)).max(2);
        let want = u32::try_from(left / pieces + 1).unwrap_or(u32::MAX);
        let keys = range(
            task,
            reached.as_ref(),
            primary,
            task.upto.as_ref(),
            key_page_limit(primary, want),
        );
        let first = p.call(|| source.read_keys(&keys)).await?;
        let mut probes = 1;
        let mut at: Vec<(Cursor, u64)> = Vec::new();
        for piece in 1..pieces {
            let mut search =
                CutSearch::new(reached.clone(), task.upto.clone(), left, &first, rule.guard)
                    .at(left * piece / pieces, (left / (8 * pieces)).max(1));
            if let Some((key, count)) = at.last() {
                let _ = search.observe(key.clone(), *count);
            }
            let mut found = search.exact();
            while found.is_none() {
                let Some(probe) = search.probe() else { break };
                probes += 1;
                found = match probe {
                    Probe::Count(key) => {
                        let upto = range(task, reached.as_ref(), primary, Some(&key), 0);
                        let before = p.call(|| source.count_range(&upto)).await?;
                        search.observe(key, before)
                    }
                    Probe::KeysAfter(key) => {
                        let mut page = range(
                            task,
                            reached.as_ref(),
                            primary,
                            task.upto.as_ref(),
                            key_page_limit(primary, u32::MAX),
                        );
                        page.after = Some(&key);
                        let keys = p.call(|| source.read_keys(&page)).await?;
                        search.observe_keys(&key, &keys)
                    }
                };
            }
            let Some(cut) = found.or_else(|| search.best()) else {
                break;
            };
            // Cuts go up, each at least a guard past the one before.
            if at
                .last()
                .is_some_and(|(k, n)| cut.0 <= *k || cut.1 < n + rule.guard)
            {
                break;
            }
            at.push(cut);
        }
        Ok((!at.is_empty()).then_some(Cuts { at, left, probes }))
    }

    /// Writes the cuts, trying again on the holder's newer record while they still leave it
    /// its guard; returns the first new task, claimed by `owner`.
    async fn cut(
        &self,
        task: &Task,
        cuts: Cuts,
        owner: &str,
        rule: &SplitRule,
        started: Instant,
    ) -> Result<Split, EngineError> {
        let ttl = self.config.lease();
        let mut seen = task.clone();
        for _ in 0..MAX_TRIES {
            if seen.upto != task.upto {
                return Ok(Split::Raced);
            }
            // The entities between two cursors are those the holder copied in between.
            let copied = seen.passed().saturating_sub(task.passed());
            let split = TaskSplit {
                cuts: cuts
                    .at
                    .iter()
                    .map(|(k, n)| (k.clone(), n.saturating_sub(copied)))
                    .collect(),
                left: cuts.left.saturating_sub(copied),
            };
            if split.cuts[0].1 < rule.guard {
                return Ok(Split::Nothing);
            }
            let (mut kept, rests) = seen.split_at(&split, owner, Utc::now(), ttl);
            kept.rev = seen.rev + 1;
            if self
                .store
                .split_task(&Expected::of(&seen), &kept, &rests)
                .await?
            {
                let where_ = match &task.partition {
                    Some(p) => format!("partition `{p}`"),
                    None => "the collection".into(),
                };
                let keys: Vec<String> = split.cuts.iter().map(|(k, _)| k.to_string()).collect();
                let sizes: Vec<String> = rests
                    .iter()
                    .map(|r| r.planned.unwrap_or_default().to_string())
                    .collect();
                let message = format!(
                    "split {where_} at key {}: {} entities stay with the task being copied, {} go to {} new one(s) ({} counts, {:.1}s)",
                    keys.join(", "),
                    split.cuts[0].1,
                    sizes.join(" + "),
                    rests.len(),
                    cuts.probes,
                    started.elapsed().as_secs_f64()
                );
                let collection = Some(format!("{}.{}", task.database, task.collection));
                self.log(&task.job_id, Level::Info, collection, message)
                    .await;
                let mine = rests.into_iter().next();
                return Ok(mine.map_or(Split::Nothing, |t| Split::Made(Box::new(t))));
            }
            // The holder checkpointed, or another claimed the task: the cuts hold as long as
            // they leave the guard after the cursor now (a holder, new or not, has at most two
            // pages read past its cursor).
            match self.store.get_task(&task.job_id, &task.id).await? {
                Some(now) if now.status == TaskStatus::Pending => seen = now,
                _ => return Ok(Split::Raced),
            }
        }
        Ok(Split::Nothing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_leaves_two_pages_and_a_remainder_is_cut_only_when_both_halves_hold_a_range() {
        let rule = SplitRule::new(500, 1_500);
        assert_eq!(rule.guard, 1_001);
        assert_eq!(rule.min_remainder, 4_004);
        let rule = SplitRule::new(16_384, 50_000);
        assert_eq!((rule.guard, rule.min_remainder), (32_769, 131_076));
    }
}
