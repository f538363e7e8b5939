//! Split: cuts a large partition into contiguous primary-key ranges of about equal entity
//! counts, reading only its keys (never its vectors), so several workers copy one partition at
//! once. Each range is a task with its own cursor (the key before it) and upper bound.

use std::time::Duration;

use tokio::time::Instant;

use super::retry::Patience;
use super::{Engine, EngineError};
use crate::domain::{Cursor, Level};
use crate::milvus::batch::key_page_limit;
use crate::milvus::{Cluster, FieldSchema, PageRequest};

/// One key range: the keys after the first key (or from the partition's first) up to the
/// second (inclusive; or to the partition's end).
pub(crate) type KeyRange = (Option<Cursor>, Option<Cursor>);

/// What is cut: one partition of a source collection (or the whole of a partition-key
/// collection).
pub(crate) struct Partition<'a> {
    /// Database.
    pub database: &'a str,
    /// Collection.
    pub collection: &'a str,
    /// The partition, or the whole collection.
    pub partition: Option<&'a str>,
    /// The primary key field.
    pub primary: &'a FieldSchema,
    /// Entities in a copy task's first page (what one data page is measured at).
    pub page_limit: u32,
    /// Fields the copy leaves out (computed by the target), left out of that page too.
    pub skip_fields: &'a [String],
}

/// Whether cutting pays, from one page of keys read in `key_page` and one page of `page_rows`
/// entities read in `data_page`: reading every key (`keys_per_page` a query) must cost less
/// than half of what `workers` perfectly parallel ranges could save over one reader, which is
/// `(1 - 1/workers)` of reading the partition once. Milvus Lite fails it (a query costs about
/// the same whatever it returns, and its readers do not run in parallel); servers whose key
/// reads are far cheaper than their vector pages pass it.
pub(crate) fn cut_pays(
    key_page: Duration,
    keys_per_page: u32,
    data_page: Duration,
    page_rows: usize,
    workers: u32,
) -> bool {
    let per_key = key_page.as_secs_f64() / keys_per_page.max(1) as f64;
    let per_entity = data_page.as_secs_f64() / page_rows.max(1) as f64;
    let saving = 1.0 - 1.0 / workers.max(1) as f64;
    per_key < per_entity * saving / 2.0
}

impl Engine {
    /// The key ranges one partition is copied in: one range when it holds fewer than twice
    /// `min_range_entities`, otherwise one per `min_range_entities` or more, at most
    /// two per worker. Every quarter-range-th key is kept as a place to cut, so a cut misses its
    /// ideal place by at most a quarter of a range. A scan that runs short of the invocation's
    /// time stops early: the ranges cover what it read, and the last one the rest. A partition
    /// whose keys take more than one read is first measured (one page of keys against one
    /// page of entities, see [`cut_pays`]) and left whole where cutting would not pay.
    pub(crate) async fn key_ranges(
        &self,
        p: &Patience<'_>,
        job_id: &str,
        source: &dyn Cluster,
        part: &Partition<'_>,
        workers: u32,
    ) -> Result<Vec<KeyRange>, EngineError> {
        let max_ranges = 2 * workers as usize;
        let min_range = self.config.min_range_entities;
        // As many keys per read as a response holds (on Milvus Lite each query costs time in
        // proportion to the collection, whatever its limit), keeping every `every`-th key as a
        // place to cut.
        let limit = key_page_limit(part.primary, u32::MAX);
        let every = (min_range / 4).max(1) as usize;
        let started = Instant::now();
        let mut boundaries: Vec<(u64, Cursor)> = Vec::new();
        let mut after: Option<Cursor> = None;
        let mut seen = 0u64;
        let mut cut_short = false;
        loop {
            let request = PageRequest {
                database: part.database,
                collection: part.collection,
                partition: part.partition,
                primary: part.primary,
                after: after.as_ref(),
                upto: None,
                read_at: None,
                limit,
                skip_fields: &[],
            };
            let read = Instant::now();
            self.faults.before_key_read().await;
            let keys = p.call(|| source.read_keys(&request)).await?;
            let key_page = read.elapsed();
            let Some(last) = keys.last().cloned() else {
                break;
            };
            if seen == 0 && keys.len() as u32 == limit {
                if let Some(message) = self
                    .cut_not_paying(p, source, part, key_page, limit, workers)
                    .await?
                {
                    let collection = Some(format!("{}.{}", part.database, part.collection));
                    self.log(job_id, Level::Info, collection, message).await;
                    return Ok(vec![(None, None)]);
                }
            }
            // The `every`-th, `2 × every`-th … key counted from the partition's start.
            let first = every - 1 - (seen % every as u64) as usize;
            for (i, key) in keys.iter().enumerate().skip(first).step_by(every) {
                boundaries.push((seen + i as u64 + 1, key.clone()));
            }
            seen += keys.len() as u64;
            after = Some(last);
            if (keys.len() as u32) < limit {
                break;
            }
            if p.budget().exhausted(Duration::ZERO) {
                cut_short = true;
                break;
            }
        }
        let ranges = (seen / min_range).clamp(1, max_ranges.max(1) as u64) as usize;
        let cuts = cuts(&boundaries, seen, ranges);
        let mut out = Vec::with_capacity(cuts.len() + 1);
        let mut after = None;
        for cut in cuts {
            out.push((after, Some(cut.clone())));
            after = Some(cut);
        }
        out.push((after, None));
        if out.len() > 1 || cut_short {
            let place = match part.partition {
                Some(p) => format!("partition `{p}`"),
                None => "the collection".into(),
            };
            let short = if cut_short {
                " (the invocation ran short: the last range also holds the keys not read)"
            } else {
                ""
            };
            let message = format!(
                "cut {place} into {} key ranges of about {} entities ({seen} keys read in {:.1}s){short}",
                out.len(),
                seen / out.len() as u64,
                started.elapsed().as_secs_f64()
            );
            let collection = Some(format!("{}.{}", part.database, part.collection));
            self.log(job_id, Level::Info, collection, message).await;
        }
        Ok(out)
    }

    /// Reads one page of the partition's entities, timed, and says why it is not cut if
    /// [`cut_pays`] says it would not pay.
    async fn cut_not_paying(
        &self,
        p: &Patience<'_>,
        source: &dyn Cluster,
        part: &Partition<'_>,
        key_page: Duration,
        keys_per_page: u32,
        workers: u32,
    ) -> Result<Option<String>, EngineError> {
        let request = PageRequest {
            database: part.database,
            collection: part.collection,
            partition: part.partition,
            primary: part.primary,
            after: None,
            upto: None,
            read_at: None,
            limit: part.page_limit,
            skip_fields: part.skip_fields,
        };
        let read = Instant::now();
        let page = p.call(|| source.read_page(&request)).await?;
        let data_page = read.elapsed();
        if cut_pays(key_page, keys_per_page, data_page, page.rows, workers) {
            return Ok(None);
        }
        let place = match part.partition {
            Some(p) => format!("partition `{p}`"),
            None => "the collection".into(),
        };
        Ok(Some(format!(
            "{place} is copied whole: {keys_per_page} keys took {:.2}s to read and {} entities {:.2}s, so reading every key to cut it would cost more than half of what {workers} workers could save",
            key_page.as_secs_f64(),
            page.rows,
            data_page.as_secs_f64()
        )))
    }
}

/// Where to cut `total` entities into `ranges` of about equal counts, given `boundaries`:
/// (entities up to and including the key, the key), in key order. Each cut is the boundary
/// nearest its ideal place; cuts are strictly increasing and never at the end, so no range is
/// empty.
pub(crate) fn cuts(boundaries: &[(u64, Cursor)], total: u64, ranges: usize) -> Vec<Cursor> {
    let mut out: Vec<Cursor> = Vec::new();
    let mut from = 0usize;
    for i in 1..ranges as u64 {
        let ideal = total * i / ranges as u64;
        let candidates = boundaries[from..]
            .iter()
            .enumerate()
            .filter(|(_, (count, _))| *count < total);
        let Some((at, (_, key))) = candidates.min_by_key(|(_, (count, _))| count.abs_diff(ideal))
        else {
            break;
        };
        out.push(key.clone());
        from += at + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(page: u64, total: u64) -> Vec<(u64, Cursor)> {
        (1..=total.div_ceil(page))
            .map(|i| {
                (
                    (i * page).min(total),
                    Cursor::Int((i * page).min(total) as i64 * 10),
                )
            })
            .collect()
    }

    #[test]
    fn cutting_pays_only_where_keys_are_far_cheaper_than_entities() {
        let ms = Duration::from_millis;
        // Milvus Lite at 200,000 entities: a query costs about the same whatever it returns.
        assert!(!cut_pays(ms(5_100), 16_384, ms(5_800), 16_384, 4));
        // A server that sends 16,384 keys in 40 ms and 16,384 128-d entities in 400 ms.
        assert!(cut_pays(ms(40), 16_384, ms(400), 16_384, 4));
        assert!(cut_pays(ms(40), 16_384, ms(400), 16_384, 2));
        // Keys at a third of a page's cost: worth it for 4 workers, not for 2.
        assert!(cut_pays(ms(100), 16_384, ms(300), 16_384, 4));
        assert!(!cut_pays(ms(100), 16_384, ms(300), 16_384, 2));
        // One worker never gains; an empty page says nothing either way.
        assert!(!cut_pays(ms(1), 16_384, ms(1_000), 16_384, 1));
        assert!(!cut_pays(ms(10), 16_384, ms(0), 0, 4));
    }

    #[test]
    fn ranges_are_balanced_within_a_page() {
        // 1,000,003 entities in pages of 12,500, cut in 8
        let b = bounds(12_500, 1_000_003);
        let cuts = cuts(&b, 1_000_003, 8);
        assert_eq!(cuts.len(), 7);
        let mut counts = vec![];
        let mut prev = 0;
        for c in &cuts {
            let Cursor::Int(k) = c else { panic!() };
            counts.push(*k as u64 / 10 - prev);
            prev = *k as u64 / 10;
        }
        counts.push(1_000_003 - prev);
        let mean = 1_000_003 / 8;
        assert!(
            counts.iter().all(|c| c.abs_diff(mean) <= 12_500),
            "{counts:?}"
        );
        assert!(cuts.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn never_an_empty_range() {
        // fewer boundaries than ranges: one cut per boundary below the end, none at the end
        let b = bounds(100, 250);
        assert_eq!(cuts(&b, 250, 8), vec![Cursor::Int(1000), Cursor::Int(2000)]);
        assert!(cuts(&[], 0, 4).is_empty());
        assert!(cuts(&b, 250, 1).is_empty());
    }

    #[test]
    fn string_keys_cut_as_well() {
        let b: Vec<(u64, Cursor)> = (1..=10u64)
            .map(|i| (i * 10, Cursor::Str(format!("k{i:03}"))))
            .collect();
        assert_eq!(
            cuts(&b, 100, 2),
            vec![Cursor::Str("k005".into())],
            "the boundary at 50 of 100"
        );
    }
}
