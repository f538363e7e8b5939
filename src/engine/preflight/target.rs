//! Preflight's checks of the target: whether it can hold each collection exactly as the
//! source has it (asked on a scratch collection), and, for a Zilliz Cloud target, whether its
//! plan has room for the collections and their partitions.

use super::{Candidate, Findings, Sides};
use crate::domain::cluster::printable;
use crate::domain::tier::{Tier, MAX_PARTITIONS_PER_COLLECTION};
use crate::domain::Problem;
use crate::engine::{Engine, EngineError};
use crate::milvus::compat::{schema_differences, too_old_for};
use crate::milvus::CollectionInfo;

/// The target's collections against its plan's limit (a Zilliz Cloud target only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Capacity {
    /// Collections the target holds now, in every database.
    pub existing: u64,
    /// Collections it would hold after the job.
    pub after: u64,
    /// The most its plan allows (unknown for a Dedicated cluster of unknown CU size).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_collections: Option<u64>,
    /// The most partitions one collection may have.
    pub max_partitions_per_collection: u64,
}

impl Engine {
    /// The collections a Zilliz Cloud target would hold, and each one's partitions, against
    /// its plan's limits.
    pub(super) async fn check_capacity(
        &self,
        sides: &Sides<'_>,
        tier: Tier,
        cu: Option<u32>,
        found: &mut Findings,
    ) -> Result<(), EngineError> {
        let mut existing = 0;
        if let Some(target) = sides.target {
            for db in &sides.target_dbs {
                existing += sides.p.call(|| target.list_collections(db)).await?.len() as u64;
            }
        }
        let adding = found.collections.len() as u64;
        let capacity = Capacity {
            existing,
            after: existing + adding,
            max_collections: tier.max_collections(cu),
            max_partitions_per_collection: MAX_PARTITIONS_PER_COLLECTION,
        };
        let plan = match cu {
            Some(cu) if tier == Tier::Dedicated => format!("a {cu}-CU Dedicated cluster"),
            _ => format!("a {} cluster", tier.as_str()),
        };
        if let Some(max) = capacity.max_collections.filter(|m| capacity.after > *m) {
            found.problems.push(Problem::at(
                "target",
                format!(
                    "the target is {plan}, which holds at most {max} collections: it holds {existing} and this job would add {adding}; migrate fewer collections, drop some on the target, or choose a larger plan"
                ),
            ));
        }
        for c in &found.collections {
            if c.partitions > MAX_PARTITIONS_PER_COLLECTION {
                found.problems.push(Problem::at(
                    c.field.clone(),
                    format!(
                        "collection `{}.{}` has {} partitions; the target is {plan}, which allows at most {MAX_PARTITIONS_PER_COLLECTION} per collection",
                        c.report.database, c.report.source, c.partitions
                    ),
                ));
            }
        }
        found.capacity = Some(capacity);
        Ok(())
    }

    /// Whether the target can hold a collection exactly as `wanted`: asked on a scratch
    /// collection that is dropped again (old servers silently drop what they do not know), after
    /// the types its version cannot serve are ruled out. Returns the problems, and warnings
    /// about what is lost that entities do not hold (a description the target does not keep).
    /// `description_path` names a description override, whose loss is a problem.
    pub(super) async fn target_keeps(
        &self,
        sides: &Sides<'_>,
        c: &Candidate<'_>,
        wanted: &CollectionInfo,
        description_path: Option<String>,
    ) -> Result<(Vec<Problem>, Vec<String>), EngineError> {
        let Some(target) = sides.target else {
            return Ok((Vec::new(), Vec::new()));
        };
        let version = &sides.target_version;
        let what = format!(
            "collection `{}.{}`: the target cannot hold it unchanged",
            c.db.name, c.name
        );
        let old = too_old_for(version, &wanted.schema);
        if !old.is_empty() {
            let problem = Problem::at(c.field(), format!("{what}: {}", old.join("; ")));
            return Ok((vec![problem], Vec::new()));
        }
        let mut sent = wanted.schema.clone();
        sent.fields.retain(|f| !f.is_dynamic);
        let kept = match sides.p.call(|| target.probe_schema(wanted)).await? {
            Err(refused) => {
                let problem = Problem::at(
                    c.field(),
                    format!("{what}: it refuses the schema ({refused})"),
                );
                return Ok((vec![problem], Vec::new()));
            }
            Ok(kept) => kept,
        };
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        let lost = schema_differences(&sent, &kept);
        if !lost.is_empty() {
            problems.push(Problem::at(
                c.field(),
                format!("{what} ({version}): {}", lost.join("; ")),
            ));
        }
        if kept.description != sent.description {
            match description_path {
                Some(path) => problems.push(Problem::at(
                    path,
                    format!(
                        "the target ({version}) does not keep collection descriptions (it keeps \"{}\")",
                        printable(&kept.description)
                    ),
                )),
                None => warnings.push(format!(
                    "the target ({version}) does not keep the collection's description \"{}\"; everything else of the schema is kept",
                    printable(&sent.description)
                )),
            }
        }
        Ok((problems, warnings))
    }
}
