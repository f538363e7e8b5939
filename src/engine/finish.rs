//! Finish: flush the targets, make sure every index exists (AUTOINDEX on every vector field and
//! the source's scalar indexes, created on the empty targets by the schema step), record how far
//! the vector indexes are built (waiting for them with `wait_for_index`), then verification
//! ([`super::content`], [`super::counts`]) ends the job. One invocation at a time (the step
//! lease); an index wait or a content comparison out of time continues in the next.

use std::time::Duration;

use chrono::Utc;

use super::retry::Patience;
use super::{source_collection, Budget, Engine, EngineError, Handled};
use crate::domain::{CollectionReport, IndexedField, Job, Level, Phase};
use crate::milvus::{kv, Cluster, CollectionInfo, DataType, IndexInfo, ALLOW_INSERT_AUTO_ID};
use crate::queue::{Step, WorkMessage};

/// The phases the finish step runs in.
const FINISHING: &[Phase] = &[Phase::Index, Phase::Verify];

/// The metric AUTOINDEX gets when the source field has no index to copy it from.
fn default_metric(data_type: i32, is_function_output: bool) -> &'static str {
    if is_function_output {
        return "BM25";
    }
    match DataType::try_from(data_type) {
        Ok(DataType::BinaryVector) => "HAMMING",
        Ok(DataType::SparseFloatVector) => "IP",
        _ => "COSINE",
    }
}

/// The indexes the target gets: AUTOINDEX on every vector field, keeping the source's metric
/// and index name; the source's scalar indexes as they are.
pub(crate) fn target_indexes(info: &CollectionInfo, source: &[IndexInfo]) -> Vec<IndexInfo> {
    let mut out = Vec::new();
    for field in info.vector_fields() {
        let existing = source.iter().find(|i| i.field_name == field.name);
        let metric = existing
            .and_then(|i| i.param("metric_type"))
            .unwrap_or_else(|| {
                default_metric(field.data_type, info.is_function_output(&field.name))
            });
        out.push(IndexInfo {
            index_name: existing.map(|i| i.index_name.clone()).unwrap_or_default(),
            field_name: field.name.clone(),
            params: vec![kv("index_type", "AUTOINDEX"), kv("metric_type", metric)],
        });
    }
    for index in source {
        let is_vector = info.vector_fields().any(|f| f.name == index.field_name);
        if !is_vector {
            out.push(index.clone());
        }
    }
    out
}

/// The index a vector field gets when the target refuses AUTOINDEX on it (Milvus Lite does for
/// sparse vectors): the source's own index, or else the one index type sparse vectors have.
pub(crate) fn fallback_index(
    info: &CollectionInfo,
    auto: &IndexInfo,
    source: &[IndexInfo],
) -> Option<IndexInfo> {
    if let Some(own) = source.iter().find(|i| i.field_name == auto.field_name) {
        return Some(own.clone());
    }
    let field = info
        .schema
        .fields
        .iter()
        .find(|f| f.name == auto.field_name)?;
    (field.data_type == DataType::SparseFloatVector as i32).then(|| IndexInfo {
        index_name: auto.index_name.clone(),
        field_name: auto.field_name.clone(),
        params: vec![
            kv("index_type", "SPARSE_INVERTED_INDEX"),
            kv("metric_type", auto.param("metric_type").unwrap_or("IP")),
        ],
    })
}

/// How often the index phase asks how far a waited-for index is built.
const INDEX_POLL: Duration = Duration::from_secs(2);

/// How one collection's index phase ended.
enum Indexing {
    /// Created (and built, when the job waits for it).
    Built,
    /// Still building when the invocation ran short: the next one goes on waiting.
    OutOfTime,
    /// The job ended (its window closed while waiting).
    JobOver,
}

impl Engine {
    /// The finish step: indexes, verification, load policy, final status.
    pub(crate) async fn finish(
        &self,
        job_id: &str,
        budget: Budget,
    ) -> Result<Handled, EngineError> {
        let job = self.job(job_id).await?;
        if job.status.is_terminal() || job.phase < Some(Phase::Index) {
            return Ok(Handled::Nothing);
        }
        if job.cancel_requested {
            self.end_cancelled(job_id).await?;
            return Ok(Handled::Done);
        }
        let owner = format!("f-{}", uuid::Uuid::new_v4().simple());
        if !self.hold_step(job_id, &owner, FINISHING).await? {
            return Ok(Handled::Nothing);
        }
        let heartbeat = self.step_heartbeat(job_id, &owner, FINISHING);
        self.faults.maybe_panic(Step::Finish);
        let p = self.patience(&job, budget);
        let done = match self.finish_held(&p, &job, &owner).await {
            Ok(done) => done,
            // An outage outlasted the invocation: the next one continues.
            Err(EngineError::OutOfTime) => false,
            Err(e) => return Err(e),
        };
        if !done {
            // Out of time: hand the step to the next invocation.
            drop(heartbeat);
            self.release_step(job_id, &owner).await?;
            self.queue.send(WorkMessage::finish(job_id)).await?;
        }
        Ok(Handled::Done)
    }

    /// The finish step once its lease is held; false when it ran out of time.
    async fn finish_held(
        &self,
        p: &Patience<'_>,
        job: &Job,
        owner: &str,
    ) -> Result<bool, EngineError> {
        let job_id = &job.id;
        let (source, target) = self.clusters(p, job).await?;
        if job.phase == Some(Phase::Index) {
            for c in &job.collections {
                // Renewed per collection, so a long finish keeps its step.
                if !self.hold_step(job_id, owner, &[Phase::Index]).await? {
                    return Ok(true);
                }
                match self.index_collection(p, job, c, &*source, &*target).await? {
                    Indexing::Built => {}
                    Indexing::OutOfTime => return Ok(false),
                    Indexing::JobOver => return Ok(true),
                }
            }
            self.advance(job_id, Phase::Verify).await?;
        }
        self.verify(p, job_id, owner, &*source, &*target).await
    }

    /// Flushes one target collection, ends its copy-only properties, creates any index the
    /// schema step did not (a job planned before indexes were made up front), and records how
    /// far its vector indexes are built, waiting for them when the job asks to.
    async fn index_collection(
        &self,
        p: &Patience<'_>,
        job: &Job,
        c: &CollectionReport,
        source: &dyn Cluster,
        target: &dyn Cluster,
    ) -> Result<Indexing, EngineError> {
        let (tdb, tname) = (&c.target_database, &c.target);
        p.call(|| target.flush(tdb, tname)).await?;
        let info = source_collection(p, source, &c.database, &c.source).await?;
        if info.has_auto_id() && info.property(ALLOW_INSERT_AUTO_ID).is_none() {
            // Set for the copy only: the target ends with the source's properties.
            // (Asked first: a finish run again after a crash finds it gone.)
            let set = p
                .call(|| target.describe_collection(tdb, tname))
                .await?
                .is_some_and(|t| t.property(ALLOW_INSERT_AUTO_ID).is_some());
            if set {
                let keys = [ALLOW_INSERT_AUTO_ID.to_owned()];
                p.call(|| target.drop_properties(tdb, tname, &keys)).await?;
            }
        }
        // The schema step created the indexes on the empty target; they are made again only
        // where a vector field has none (on Milvus Lite, describing the source's indexes
        // costs 3 s a collection).
        let present = p.call(|| target.list_indexes(tdb, tname)).await?;
        if info
            .vector_fields()
            .any(|f| !present.iter().any(|i| i.field_name == f.name))
        {
            self.ensure_indexes(p, &job.id, c, &info, source, target)
                .await?;
        }
        let options = &job.request.options;
        let wait = options.wait_for_index || options.load_after;
        // What the target holds of this collection: a server may call an index finished before
        // it covers the segments the flush just sealed (Milvus 2.3.5 reports 0 of 0 then).
        let copied: u64 = self
            .store
            .list_tasks(&job.id)
            .await?
            .iter()
            .filter(|t| c.holds(t))
            .map(|t| t.copied)
            .sum();
        loop {
            let progress = p.call(|| target.index_progress(tdb, tname)).await?;
            let vectors: Vec<IndexedField> = progress
                .into_iter()
                .filter(|i| info.vector_fields().any(|f| f.name == i.field_name))
                .map(|i| IndexedField {
                    field: i.field_name,
                    indexed_rows: i.indexed_rows,
                    total_rows: i.total_rows,
                    built: i.finished && i.indexed_rows >= copied,
                })
                .collect();
            let built = vectors.iter().all(|v| v.built);
            if built || !wait {
                self.record_indexes(job, c, vectors).await?;
                return Ok(Indexing::Built);
            }
            if job
                .request
                .options
                .not_after
                .is_some_and(|t| Utc::now() >= t)
            {
                let message = format!(
                    "the maintenance window (not_after) ended while the indexes of `{tdb}.{tname}` were being built: every entity was copied, the server goes on building, and the counts were not verified"
                );
                self.record_indexes(job, c, vectors).await?;
                self.fail(&job.id, message).await?;
                return Ok(Indexing::JobOver);
            }
            if p.budget().exhausted(INDEX_POLL) {
                return Ok(Indexing::OutOfTime);
            }
            tokio::time::sleep(INDEX_POLL).await;
        }
    }

    /// Records one collection's index progress on the job.
    async fn record_indexes(
        &self,
        job: &Job,
        c: &CollectionReport,
        indexes: Vec<IndexedField>,
    ) -> Result<(), EngineError> {
        self.update_job(&job.id, |j| {
            let Some(r) = j.collection_mut(&c.database, &c.source) else {
                return Ok(false);
            };
            if r.indexes == indexes {
                return Ok(false);
            }
            r.indexes = indexes.clone();
            Ok(true)
        })
        .await
        .map(|_| ())
    }

    /// Creates the indexes the target lacks (see [`target_indexes`]): in the schema step, on
    /// the empty collection, so the server builds them as segments seal; again in the index
    /// phase if a vector field has none there.
    pub(crate) async fn ensure_indexes(
        &self,
        p: &Patience<'_>,
        job_id: &str,
        c: &CollectionReport,
        info: &CollectionInfo,
        source: &dyn Cluster,
        target: &dyn Cluster,
    ) -> Result<(), EngineError> {
        let (tdb, tname) = (&c.target_database, &c.target);
        let source_indexes = p
            .call(|| source.list_indexes(&c.database, &c.source))
            .await?;
        let present = p.call(|| target.list_indexes(tdb, tname)).await?;
        for index in target_indexes(info, &source_indexes) {
            if !present.iter().any(|p| p.field_name == index.field_name) {
                self.create_index(p, job_id, c, info, &index, &source_indexes, target)
                    .await?;
            }
        }
        Ok(())
    }

    /// Creates one index. A vector field whose AUTOINDEX the target refuses gets the source's
    /// own index (or the one sparse vectors have); a scalar index that fails is logged, as the
    /// data is complete without it.
    #[allow(clippy::too_many_arguments)]
    async fn create_index(
        &self,
        p: &Patience<'_>,
        job_id: &str,
        c: &CollectionReport,
        info: &CollectionInfo,
        index: &IndexInfo,
        source_indexes: &[IndexInfo],
        target: &dyn Cluster,
    ) -> Result<(), EngineError> {
        let (tdb, tname) = (&c.target_database, &c.target);
        let collection = Some(format!("{}.{}", c.database, c.source));
        let is_vector = info.vector_fields().any(|f| f.name == index.field_name);
        let message = match p.call(|| target.create_index(tdb, tname, index)).await {
            Ok(()) => return Ok(()),
            // Some servers refuse AUTOINDEX for some fields (Milvus Lite for a BM25 output):
            // the source's own index is the faithful second choice.
            Err(auto) if is_vector => {
                let Some(own) = fallback_index(info, index, source_indexes) else {
                    return Err(auto);
                };
                p.call(|| target.create_index(tdb, tname, &own)).await?;
                format!(
                    "the target refused AUTOINDEX on `{}` ({auto}); created the source's {} index on it instead",
                    index.field_name,
                    own.param("index_type").unwrap_or("own")
                )
            }
            Err(e) => format!(
                "scalar index on `{}` was not recreated: {e}",
                index.field_name
            ),
        };
        self.log(job_id, Level::Warn, collection, message).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::milvus::{CollectionSchema, FieldSchema};

    fn field(name: &str, t: DataType) -> FieldSchema {
        FieldSchema {
            name: name.into(),
            data_type: t as i32,
            ..Default::default()
        }
    }

    #[test]
    fn every_vector_field_gets_autoindex_keeping_source_metric() {
        let info = CollectionInfo {
            schema: CollectionSchema {
                fields: vec![
                    field("id", DataType::Int64),
                    field("dense", DataType::FloatVector),
                    field("bits", DataType::BinaryVector),
                    field("tag", DataType::VarChar),
                ],
                ..Default::default()
            },
            shards_num: 1,
            consistency_level: 0,
            properties: vec![],
            num_partitions: 0,
        };
        let source = vec![
            IndexInfo {
                index_name: "dense_idx".into(),
                field_name: "dense".into(),
                params: vec![kv("index_type", "HNSW"), kv("metric_type", "L2")],
            },
            IndexInfo {
                index_name: "tag_idx".into(),
                field_name: "tag".into(),
                params: vec![kv("index_type", "INVERTED")],
            },
        ];
        let out = target_indexes(&info, &source);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].field_name, "dense");
        assert_eq!(out[0].index_name, "dense_idx");
        assert_eq!(out[0].param("index_type"), Some("AUTOINDEX"));
        assert_eq!(out[0].param("metric_type"), Some("L2"));
        assert_eq!(out[1].field_name, "bits");
        assert_eq!(out[1].param("metric_type"), Some("HAMMING"));
        assert_eq!(out[2], source[1], "scalar index recreated as it was");
    }
}
