//! Content verification (`verify: "sample"` and `"full"`): entities read on both sides and
//! compared field by field. Counts are compared for every mode, in `finish`.
//!
//! - `sample`: the copy keeps a uniform random sample of the keys it copied in each task (a
//!   reservoir, checkpointed with the task), so choosing the sample costs no extra pass; the
//!   chosen keys are read back from both sides by key.
//! - `full`: the source is read again page by page in key order; each page's key range is read
//!   from the target and every entity's canonical digest compared. Only a page is held at a
//!   time, and the pass checkpoints its cursor in the job record, so it continues in the next
//!   invocation when this one runs out of time.

use std::collections::BTreeMap;
use std::time::Instant;

use super::retry::Patience;
use super::sample::{draw, Rng};
use super::{source_collection, Budget, Engine, EngineError};
use crate::domain::request::MAX_QUERY_ENTITIES as MAX_QUERY_LIMIT;
use crate::domain::{CollectionReport, ContentCheck, Cursor, Job, VerifyMode};
use crate::milvus::batch::{
    after_filter, first_limit, keys_filter, next_limit, primary_keys, range_filter,
};
use crate::milvus::rows::{digest, rows_by_key, Row};
use crate::milvus::{Cluster, CollectionInfo, FieldData, PageRequest, RowQuery};

/// Keys fetched per query when comparing a sample.
const KEYS_PER_QUERY: usize = 256;

/// The keys among `keys` whose entities differ between the two sides (or exist on one only).
fn differing(
    keys: impl IntoIterator<Item = Cursor>,
    source: &BTreeMap<Cursor, Row>,
    target: &BTreeMap<Cursor, Row>,
) -> Vec<String> {
    keys.into_iter()
        .filter(|k| {
            let (s, t) = (source.get(k), target.get(k));
            match (s, t) {
                (Some(s), Some(t)) => digest(s) != digest(t),
                (None, None) => false,
                _ => true,
            }
        })
        .map(|k| k.to_string())
        .collect()
}

/// What one side of a comparison leaves out: fields the target computes (function outputs),
/// and the dynamic field where only an override gave the target one.
fn ignored_fields(info: &CollectionInfo) -> Vec<String> {
    let mut skip = info.function_outputs();
    if !info.schema.enable_dynamic_field {
        skip.push("$meta".into());
    }
    skip
}

/// Where a comparison stands after one call.
pub(crate) enum Progress {
    /// Every entity to compare was compared.
    Done(ContentCheck),
    /// Out of time: continue from this state in another invocation.
    Paused(ContentCheck),
}

/// One collection's two sides, as a comparison reads them.
struct Sides<'a> {
    p: &'a Patience<'a>,
    source: &'a dyn Cluster,
    target: &'a dyn Cluster,
    report: &'a CollectionReport,
    info: CollectionInfo,
    skip: Vec<String>,
}

impl Sides<'_> {
    fn primary(&self) -> Result<String, EngineError> {
        self.info
            .primary_field()
            .map(|f| f.name.clone())
            .ok_or_else(|| EngineError::Refused("the source collection has no primary key".into()))
    }

    async fn target_rows(&self, filter: String, limit: u32) -> Result<Vec<FieldData>, EngineError> {
        let q = RowQuery {
            database: &self.report.target_database,
            collection: &self.report.target,
            filter,
            limit,
        };
        self.p.call(|| self.target.query_rows(&q)).await
    }

    fn rows(&self, fields: &[FieldData]) -> Result<BTreeMap<Cursor, Row>, EngineError> {
        let primary = self.primary()?;
        rows_by_key(fields, &primary, &self.skip).map_err(|e| {
            EngineError::Refused(format!(
                "cannot compare `{}.{}`: {e}",
                self.report.database, self.report.source
            ))
        })
    }
}

impl Engine {
    /// Compares the content of one collection as the job's `verify` mode asks, continuing
    /// `state`; stops when the invocation's budget runs out.
    pub(crate) async fn compare_content(
        &self,
        p: &Patience<'_>,
        job: &Job,
        report: &CollectionReport,
        source: &dyn Cluster,
        target: &dyn Cluster,
    ) -> Result<Progress, EngineError> {
        let mode = job.request.options.verify;
        let mut state = report
            .content
            .clone()
            .unwrap_or_else(|| ContentCheck::new(mode));
        let info = source_collection(p, source, &report.database, &report.source).await?;
        let (tdb, tname) = (&report.target_database, &report.target);
        if !p.call(|| target.is_loaded(tdb, tname)).await? {
            p.call(|| target.load(tdb, tname)).await?;
        }
        let sides = Sides {
            p,
            source,
            target,
            report,
            skip: ignored_fields(&info),
            info,
        };
        if !state.recheck.is_empty() {
            self.compare_again(&sides, &mut state).await?;
            return Ok(Progress::Done(state));
        }
        match mode {
            VerifyMode::Count => {
                state.done = true;
                Ok(Progress::Done(state))
            }
            VerifyMode::Sample => {
                self.compare_sample(job, &sides, &mut state).await?;
                state.done = true;
                Ok(Progress::Done(state))
            }
            VerifyMode::Full => self.compare_all(job, &sides, state, p.budget()).await,
        }
    }

    /// Compares again the keys whose ranges were repaired: what still differs replaces what
    /// differed (the entities compared before are not counted twice).
    async fn compare_again(
        &self,
        sides: &Sides<'_>,
        state: &mut ContentCheck,
    ) -> Result<(), EngineError> {
        let keys: Vec<Cursor> = state
            .recheck
            .iter()
            .filter_map(|k| Cursor::parse_shown(k))
            .collect();
        let mut still = Vec::new();
        for chunk in keys.chunks(KEYS_PER_QUERY) {
            still.extend(self.compare_keys(sides, chunk).await?);
        }
        state.differing = still.len() as u64;
        state.keys = still;
        state.recheck.clear();
        state.done = true;
        Ok(())
    }

    /// The keys among `chunk` whose entities differ between the two sides.
    async fn compare_keys(
        &self,
        sides: &Sides<'_>,
        chunk: &[Cursor],
    ) -> Result<Vec<String>, EngineError> {
        let report = sides.report;
        let filter = keys_filter(&sides.primary()?, chunk);
        let q = RowQuery {
            database: &report.database,
            collection: &report.source,
            filter: filter.clone(),
            limit: chunk.len() as u32,
        };
        let source_rows = sides.rows(&sides.p.call(|| sides.source.query_rows(&q)).await?)?;
        let target_rows = sides.rows(&sides.target_rows(filter, chunk.len() as u32).await?)?;
        Ok(differing(chunk.iter().cloned(), &source_rows, &target_rows))
    }

    async fn compare_sample(
        &self,
        job: &Job,
        sides: &Sides<'_>,
        state: &mut ContentCheck,
    ) -> Result<(), EngineError> {
        let report = sides.report;
        let tasks: Vec<(u64, Vec<Cursor>)> = self
            .store
            .list_tasks(&job.id)
            .await?
            .into_iter()
            .filter(|t| report.holds(t))
            .map(|t| (t.copied, t.sample))
            .collect();
        let size = job.request.options.verify_sample_size as usize;
        let keys = draw(&tasks, size, &mut Rng::new());
        for chunk in keys.chunks(KEYS_PER_QUERY) {
            let bad = self.compare_keys(sides, chunk).await?;
            state.record(chunk.len() as u64, &bad);
        }
        Ok(())
    }

    async fn compare_all(
        &self,
        job: &Job,
        sides: &Sides<'_>,
        mut state: ContentCheck,
        budget: &Budget,
    ) -> Result<Progress, EngineError> {
        let report = sides.report;
        let primary_field = sides.info.primary_field().cloned().ok_or_else(|| {
            EngineError::Refused("the source collection has no primary key".into())
        })?;
        let primary = primary_field.name.clone();
        let max = job.request.options.batch_size.min(MAX_QUERY_LIMIT);
        let aim = self.config.page_bytes;
        let mut limit = first_limit(&sides.info.schema, max, aim);
        loop {
            let started = Instant::now();
            let request = PageRequest {
                database: &report.database,
                collection: &report.source,
                partition: None,
                primary: &primary_field,
                after: state.cursor.as_ref(),
                upto: None,
                read_at: None,
                limit,
                skip_fields: &sides.skip,
                subset: job.request.selection(&report.database, &report.source),
            };
            let page = sides.p.call(|| sides.source.read_page(&request)).await?;
            let Some(last) = page.last.clone() else {
                // Past the source's last key: the target must hold nothing more.
                let extra = sides
                    .target_rows(after_filter(&primary, state.cursor.as_ref()), 16)
                    .await?;
                let extra_keys: Vec<String> = extra
                    .iter()
                    .find(|f| f.field_name == primary)
                    .and_then(primary_keys)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|k| k.to_string())
                    .collect();
                state.record(0, &extra_keys);
                state.done = true;
                return Ok(Progress::Done(state));
            };
            let source_rows = sides.rows(&page.fields)?;
            let target_rows = sides.rows(
                &sides
                    .target_rows(
                        range_filter(&primary, state.cursor.as_ref(), &last),
                        (page.rows as u32 + 1).min(MAX_QUERY_LIMIT),
                    )
                    .await?,
            )?;
            let keys: Vec<Cursor> = source_rows
                .keys()
                .chain(target_rows.keys().filter(|k| !source_rows.contains_key(*k)))
                .cloned()
                .collect();
            let bad = differing(keys, &source_rows, &target_rows);
            state.record(page.rows as u64, &bad);
            state.cursor = Some(last);
            limit = next_limit(limit, page.rows, page.sizing_bytes, max, aim);
            if budget.exhausted(started.elapsed()) {
                return Ok(Progress::Paused(state));
            }
        }
    }
}
