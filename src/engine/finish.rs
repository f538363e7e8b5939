//! Finish: flush the targets, create AUTOINDEX on every vector field (and the source's scalar
//! indexes), verify exact counts per collection, apply the load policy and end the job.

use chrono::Utc;

use super::verify::Progress;
use super::{retry_transient, source_collection, Budget, Engine, EngineError, Handled};
use crate::domain::{CollectionStatus, JobStatus, Level, OnCountMismatch, Phase, VerifyMode};
use crate::milvus::{kv, Cluster, CollectionInfo, DataType, IndexInfo, ALLOW_INSERT_AUTO_ID};
use crate::queue::WorkMessage;

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

impl Engine {
    /// The finish step: indexes, verification, load policy, final status.
    pub(crate) async fn finish(
        &self,
        job_id: &str,
        budget: Budget,
    ) -> Result<Handled, EngineError> {
        let job = self
            .store
            .get_job(job_id)
            .await?
            .ok_or_else(|| EngineError::NotFound(job_id.into()))?;
        if job.status.is_terminal() || job.phase < Some(Phase::Index) {
            return Ok(Handled::Nothing);
        }
        if job.cancel_requested {
            self.end_cancelled(job_id).await?;
            return Ok(Handled::Done);
        }
        let owner = format!("f-{}", uuid::Uuid::new_v4().simple());
        if !self
            .hold_step(job_id, &owner, &[Phase::Index, Phase::Verify])
            .await?
        {
            return Ok(Handled::Nothing);
        }
        let heartbeat = self.step_heartbeat(job_id, &owner, &[Phase::Index, Phase::Verify]);
        self.faults.maybe_panic(crate::queue::Step::Finish);
        let (source, target) = self.clusters(&job).await?;
        if job.phase == Some(Phase::Index) {
            for c in &job.collections {
                // Renewed per collection, so a long finish keeps its step.
                if !self.hold_step(job_id, &owner, &[Phase::Index]).await? {
                    return Ok(Handled::Nothing);
                }
                let (tdb, tname) = (&c.target_database, &c.target);
                retry_transient(|| target.flush(tdb, tname)).await?;
                let info = source_collection(&*source, &c.database, &c.source).await?;
                if info.has_auto_id() && info.property(ALLOW_INSERT_AUTO_ID).is_none() {
                    // Set for the copy only: the target ends with the source's properties.
                    // (Asked first: a finish run again after a crash finds it gone.)
                    let set = retry_transient(|| target.describe_collection(tdb, tname))
                        .await?
                        .is_some_and(|t| t.property(ALLOW_INSERT_AUTO_ID).is_some());
                    if set {
                        let keys = [ALLOW_INSERT_AUTO_ID.to_owned()];
                        retry_transient(|| target.drop_properties(tdb, tname, &keys)).await?;
                    }
                }
                let source_indexes =
                    retry_transient(|| source.list_indexes(&c.database, &c.source)).await?;
                let present = retry_transient(|| target.list_indexes(tdb, tname)).await?;
                for index in target_indexes(&info, &source_indexes) {
                    if present.iter().any(|p| p.field_name == index.field_name) {
                        continue;
                    }
                    let is_vector = info.vector_fields().any(|f| f.name == index.field_name);
                    let fallback = fallback_index(&info, &index, &source_indexes);
                    match retry_transient(|| target.create_index(tdb, tname, &index)).await {
                        Ok(()) => {}
                        // Some servers refuse AUTOINDEX for some fields (Milvus Lite for a BM25
                        // output): the source's own index is the faithful second choice.
                        Err(auto) if is_vector && fallback.is_some() => {
                            let own = fallback.clone().unwrap_or_else(|| index.clone());
                            retry_transient(|| target.create_index(tdb, tname, &own)).await?;
                            self.log(
                                job_id,
                                Level::Warn,
                                Some(format!("{}.{}", c.database, c.source)),
                                format!(
                                    "the target refused AUTOINDEX on `{}` ({auto}); created the source's {} index on it instead",
                                    index.field_name,
                                    own.param("index_type").unwrap_or("own")
                                ),
                            )
                            .await;
                        }
                        Err(e) if is_vector => return Err(e.into()),
                        // The data is complete without a scalar index; say so and go on.
                        Err(e) => {
                            self.log(
                                job_id,
                                Level::Warn,
                                Some(format!("{}.{}", c.database, c.source)),
                                format!(
                                    "scalar index on `{}` was not recreated: {e}",
                                    index.field_name
                                ),
                            )
                            .await;
                        }
                    }
                }
            }
            self.advance(job_id, Phase::Verify).await?;
        }
        if !self
            .verify(job_id, &owner, &*source, &*target, &budget)
            .await?
        {
            // Out of time in a content comparison: hand the step to the next invocation.
            drop(heartbeat);
            self.release_step(job_id, &owner).await?;
            self.queue
                .send(WorkMessage::Finish {
                    job_id: job_id.into(),
                })
                .await?;
        }
        Ok(Handled::Done)
    }

    /// Compares contents (as the job's `verify` mode asks), then counts, and ends the job.
    /// Returns false when it ran out of time in a content comparison (its progress is saved).
    async fn verify(
        &self,
        job_id: &str,
        owner: &str,
        source: &dyn Cluster,
        target: &dyn Cluster,
        budget: &Budget,
    ) -> Result<bool, EngineError> {
        let job = self
            .store
            .get_job(job_id)
            .await?
            .ok_or_else(|| EngineError::NotFound(job_id.into()))?;
        if job.request.options.verify != VerifyMode::Count {
            for c in &job.collections {
                if c.content.as_ref().is_some_and(|s| s.done) {
                    continue;
                }
                if !self.hold_step(job_id, owner, &[Phase::Verify]).await? {
                    return Ok(true);
                }
                let (state, paused) = match self
                    .compare_content(&job, c, source, target, budget)
                    .await?
                {
                    Progress::Done(s) => (s, false),
                    Progress::Paused(s) => (s, true),
                };
                self.update_job(job_id, |j| {
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
                if state.done {
                    self.log(
                        job_id,
                        if state.differing == 0 {
                            Level::Info
                        } else {
                            Level::Error
                        },
                        Some(format!("{}.{}", c.database, c.source)),
                        format!(
                            "{:?} comparison: {} entities compared field by field, {} differ",
                            state.mode, state.compared, state.differing
                        )
                        .to_lowercase(),
                    )
                    .await;
                }
                if paused {
                    self.log(
                        job_id,
                        Level::Info,
                        Some(format!("{}.{}", c.database, c.source)),
                        format!(
                            "full comparison paused after {} entities, out of time; it continues in the next invocation",
                            state.compared
                        ),
                    )
                    .await;
                    return Ok(false);
                }
            }
        }
        let job = self
            .store
            .get_job(job_id)
            .await?
            .ok_or_else(|| EngineError::NotFound(job_id.into()))?;
        let load_after = job.request.options.load_after;
        let mut results = Vec::new();
        for c in &job.collections {
            if !self.hold_step(job_id, owner, &[Phase::Verify]).await? {
                return Ok(true);
            }
            let source_count = retry_transient(|| source.count(&c.database, &c.source)).await?;
            let (tdb, tname) = (&c.target_database, &c.target);
            if !retry_transient(|| target.is_loaded(tdb, tname)).await? {
                retry_transient(|| target.load(tdb, tname)).await?;
            }
            let target_count = retry_transient(|| target.count(tdb, tname)).await?;
            if !load_after {
                // The target collection is the job's own: it is left unloaded unless asked,
                // also where the server loaded it by itself (Milvus Lite loads on create).
                retry_transient(|| target.release(tdb, tname)).await?;
            }
            results.push((
                c.database.clone(),
                c.source.clone(),
                source_count,
                target_count,
            ));
        }
        let mismatches: Vec<String> = results
            .iter()
            .filter(|(_, _, s, t)| s != t)
            .map(|(db, name, s, t)| format!("`{db}.{name}`: source {s}, target {t}"))
            .collect();
        let content_differs: Vec<String> = job
            .collections
            .iter()
            .filter_map(|c| {
                let check = c.content.as_ref().filter(|s| s.differing > 0)?;
                Some(format!(
                    "`{}.{}`: {} of {} entities compared differ (keys {})",
                    c.database,
                    c.source,
                    check.differing,
                    check.compared,
                    check.keys.join(", ")
                ))
            })
            .collect();
        let differs = |db: &str, name: &str| {
            job.collections.iter().any(|c| {
                c.database == db
                    && c.source == name
                    && c.content.as_ref().is_some_and(|s| s.differing > 0)
            })
        };
        for (db, name, s, t) in &results {
            let level = if s == t { Level::Info } else { Level::Error };
            self.log(
                job_id,
                level,
                Some(format!("{db}.{name}")),
                format!("verified: source {s}, target {t}"),
            )
            .await;
        }
        if !mismatches.is_empty() && self.remigrate(&job, &results).await? {
            return Ok(true);
        }
        self.end_job(job_id, |job| {
            for (db, name, s, t) in &results {
                if let Some(c) = job.collection_mut(db, name) {
                    c.source_count = Some(*s);
                    c.target_count = Some(*t);
                    let same = s == t && !differs(db, name);
                    c.matches = Some(same);
                    c.status = if same {
                        CollectionStatus::Verified
                    } else {
                        CollectionStatus::Mismatch
                    };
                }
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
}

impl Engine {
    /// With `on_count_mismatch: "remigrate"`, sends the job back to migrate every mismatched
    /// collection again, if none has used up `max_remigrations`; returns whether it did.
    async fn remigrate(
        &self,
        job: &crate::domain::Job,
        results: &[(String, String, u64, u64)],
    ) -> Result<bool, EngineError> {
        let options = &job.request.options;
        if options.on_count_mismatch != OnCountMismatch::Remigrate {
            return Ok(false);
        }
        let mismatched: Vec<(String, String, u64, u64)> = results
            .iter()
            .filter(|(_, _, s, t)| s != t)
            .cloned()
            .collect();
        let used = |db: &str, name: &str| {
            job.collections
                .iter()
                .find(|c| c.database == db && c.source == name)
                .map_or(u32::MAX, |c| c.remigrations)
        };
        if mismatched
            .iter()
            .any(|(db, name, _, _)| used(db, name) >= options.max_remigrations)
        {
            return Ok(false);
        }
        let mut moved = false;
        self.update_job(&job.id, |j| {
            moved = false;
            if j.status.is_terminal() || j.phase != Some(Phase::Verify) {
                return Ok(false);
            }
            for (db, name, s, t) in results.iter().filter(|(_, _, s, t)| s == t) {
                if let Some(c) = j.collection_mut(db, name) {
                    c.source_count = Some(*s);
                    c.target_count = Some(*t);
                    c.matches = Some(true);
                    c.status = CollectionStatus::Verified;
                }
            }
            j.remigrate(&mismatched, Utc::now())?;
            moved = true;
            Ok(true)
        })
        .await?;
        if !moved {
            return Ok(false);
        }
        for (db, name, s, t) in &mismatched {
            self.log(
                &job.id,
                Level::Warn,
                Some(format!("{db}.{name}")),
                format!(
                    "counts differ (source {s}, target {t}): migrating it again (remigration {} of at most {})",
                    used(db, name) + 1,
                    options.max_remigrations
                ),
            )
            .await;
        }
        self.queue
            .send(WorkMessage::Plan {
                job_id: job.id.clone(),
            })
            .await?;
        Ok(true)
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
