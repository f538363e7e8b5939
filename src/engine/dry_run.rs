//! The dry run: preflight only, answered as a plan. What would be migrated (collections,
//! partitions, entities, bytes, tasks), every problem with its field, the plan-tier rule's
//! verdict, the target's capacity, and an estimated duration against the maintenance window.
//! It writes nothing but the scratch collections preflight drops at once, and records no job.
//!
//! The estimate: each collection's bytes are its entities times the bytes per entity of one
//! sampled page (read as the copy reads its first page, and timed); the copy runs at the
//! sampled read rate times the readers that can work at once (`max_workers`, at most one per
//! task), capped by the target's write rate (`options.max_write_mb_per_s`, else the target
//! plan's published cap). Bytes copied by bulk import are not capped: the cap does not meter
//! it. Indexing and verification come on top, so the job is said to fit the window only if
//! the copy, and half as long again, ends before `not_after`. A job that inserts, slowed by the
//! cap, is told how long `write_mode: "auto"` would take where the target can import, and
//! recommended it when that fits the window the inserts do not (or saves more than a day).
//!
//! For a `target.new_cluster` the dry run inspects the source only (the cluster holds nothing
//! yet) and says what it would create, with the CU size its data calls for.

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::preflight::{Capacity, Findings};
use super::{Budget, Engine, EngineError};
use crate::domain::new_cluster::recommended_cu_size;
use crate::domain::tier::{Tier, TierSource};
use crate::domain::{
    ClusterSpec, Job, MigrationRequest, NewCluster, Problem, Role, TierVerdict, ZillizCluster,
};
use crate::milvus::batch::{first_limit, TARGET_PAGE_BYTES};
use crate::milvus::{Cluster, ClusterError, PageRequest};

/// The most entities one sampled page holds.
const SAMPLE_ENTITIES: u32 = 4096;
/// A day, in seconds: a longer estimate is worth a warning even without a window.
const DAY: f64 = 86_400.0;
/// How much longer than the copy a job is allowed for indexing and verification.
const WINDOW_MARGIN: f64 = 1.5;

/// The answer of a dry run.
#[derive(Debug, Clone, Serialize)]
pub struct PlanReport {
    /// Always true: nothing was written.
    pub dry_run: bool,
    /// No problem was found (and the copy is expected to fit the window).
    pub ok: bool,
    /// The source as located.
    pub source: PlannedCluster,
    /// The target as located.
    pub target: PlannedCluster,
    /// The plan-tier rule's answer.
    pub tier_rule: TierVerdict,
    /// What would be migrated.
    pub collections: Vec<PlannedCollection>,
    /// Their sums.
    pub totals: Totals,
    /// The target's collections against its plan's limits (Zilliz Cloud targets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<Capacity>,
    /// How long the copy would take (absent when preflight could not read the collections).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate: Option<Estimate>,
    /// The cluster `target.new_cluster` would create, and the CU size the data calls for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_cluster: Option<NewClusterPlan>,
    /// Every problem, each with its field.
    pub problems: Vec<Problem>,
    /// Warnings (what the target keeps differently without losing entities).
    pub warnings: Vec<String>,
}

/// What a dry run says about the cluster it would create.
#[derive(Debug, Clone, Serialize)]
pub struct NewClusterPlan {
    /// The cluster the job would create, as asked.
    pub would_create: NewCluster,
    /// Its write cap, MB/s.
    pub write_cap_mb_per_s: f64,
    /// The smallest CU size of the plan and CU type that holds the estimated bytes at 70 %
    /// of the published capacity (`None`: none of the plan's sizes does).
    pub recommended_cu_size: Option<u32>,
    /// The write cap of the recommended size, MB/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recommended_write_cap_mb_per_s: Option<f64>,
    /// How long the copy would take at the recommended size's cap, seconds (at the read rate
    /// sampled for the estimate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recommended_copy_seconds: Option<f64>,
}

/// One side of the migration, as the dry run found it.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedCluster {
    /// The endpoint (for a cluster given by id, the control plane's).
    pub uri: String,
    /// The Zilliz Cloud cluster id it was given by.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// Its plan tier, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    /// Where the tier came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier_from: Option<TierSource>,
    /// What the control plane said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zilliz: Option<ZillizCluster>,
}

impl PlannedCluster {
    fn of(spec: &ClusterSpec) -> Self {
        let tier = spec.tier();
        Self {
            uri: spec.uri.trim().to_owned(),
            cluster_id: spec.cluster_id.clone(),
            tier: tier.map(|(t, _, _)| t),
            tier_from: tier.map(|(_, _, from)| from),
            zilliz: spec.zilliz.clone(),
        }
    }
}

/// One collection the job would migrate.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedCollection {
    /// Source database.
    pub database: String,
    /// Source collection.
    pub collection: String,
    /// Target database.
    pub target_database: String,
    /// Target collection.
    pub target: String,
    /// Partitions.
    pub partitions: u64,
    /// Entities on the source now.
    pub entities: u64,
    /// Estimated bytes (entities × the bytes per entity of the sampled page).
    pub bytes: u64,
    /// Copy tasks before any key-range cut (one per partition; one for a partition-key
    /// collection). A large partition may be cut into more while the job plans.
    pub tasks: u64,
}

/// The sums over the collections.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    /// Collections.
    pub collections: u64,
    /// Partitions.
    pub partitions: u64,
    /// Entities.
    pub entities: u64,
    /// Estimated bytes.
    pub bytes: u64,
    /// Copy tasks.
    pub tasks: u64,
}

/// The estimated duration of the copy.
#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    /// Entities read to sample the collections.
    pub sampled_entities: u64,
    /// One reader's rate on the sample, MB/s (10^6 bytes).
    pub read_mb_per_s: f64,
    /// Readers that would work at once.
    pub readers: u64,
    /// The target's write cap, MB/s, when one applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_cap_mb_per_s: Option<f64>,
    /// Where the cap came from: `option` (`max_write_mb_per_s`), `plan` (the target's tier).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_cap_from: Option<&'static str>,
    /// The rate the copy is estimated at, MB/s.
    pub rate_mb_per_s: f64,
    /// The copy's estimated duration, seconds.
    pub copy_seconds: f64,
    /// When a job started now would end its copy.
    pub copy_ends_at: DateTime<Utc>,
    /// The maintenance window's end, when the request has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_after: Option<DateTime<Utc>>,
    /// Whether the copy, and half as long again for indexes and verification, ends before
    /// `not_after`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fits_window: Option<bool>,
    /// Estimated bytes of the collections copied by bulk import (or, for a job that inserts,
    /// that `write_mode: "auto"` would import), which the write cap does not meter.
    pub import_bytes: u64,
    /// For a job that inserts and is slowed by the write cap: the copy's duration, seconds,
    /// with `write_mode: "auto"` (absent when the target can import none of it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_copy_seconds: Option<f64>,
}

impl Engine {
    /// Runs preflight for `request` and answers the plan; records no job. Bad input is an
    /// error, as for [`Engine::start`]; whatever preflight finds is in the answer.
    pub async fn dry_run(
        &self,
        mut request: MigrationRequest,
        budget: Budget,
    ) -> Result<PlanReport, EngineError> {
        let now = Utc::now();
        self.complete(&mut request)?;
        self.accept_checks(&request, now)?;
        let mut job = Job::new(
            format!("dry-run-{}", uuid::Uuid::new_v4().simple()),
            request,
            now,
        );
        let p = self.unrecorded_patience(&job, budget);
        let located = self
            .locate(&p, &job.request.source, &job.request.target)
            .await?;
        let reachable = located.reachable();
        job.request.source = located.source;
        job.request.target = located.target;
        let mut problems = located.problems;
        let mut found = Findings::default();
        let mut sample = Sample::default();
        if reachable {
            match self.inspect_and_sample(&p, &job).await {
                Ok((f, s)) => (found, sample) = (f, s),
                // A cluster that refuses the job (its token, its address) is a finding too.
                // Preflight stopped at it (patience decided it is not worth waiting for).
                Err(EngineError::Cluster(e)) => problems.push(problem_of(&e)),
                // A plan never waits long: a cluster that stays out is a finding as well.
                Err(e @ EngineError::OutageTooLong { role, .. }) => {
                    problems.push(Problem::at(format!("{role}.uri"), e.to_string()))
                }
                Err(e) => return Err(e),
            }
        }
        problems.append(&mut found.problems);
        let collections: Vec<PlannedCollection> = found
            .collections
            .iter()
            .zip(&sample.per_collection)
            .map(|(c, bytes_per_entity)| {
                let entities = c.report.source_count.unwrap_or(0);
                PlannedCollection {
                    database: c.report.database.clone(),
                    collection: c.report.source.clone(),
                    target_database: c.report.target_database.clone(),
                    target: c.report.target.clone(),
                    partitions: c.partitions,
                    entities,
                    bytes: (entities as f64 * bytes_per_entity).round() as u64,
                    tasks: if c.info.has_partition_key() {
                        1
                    } else {
                        c.partitions.max(1)
                    },
                }
            })
            .collect();
        let totals = collections.iter().fold(Totals::default(), |mut t, c| {
            t.collections += 1;
            t.partitions += c.partitions;
            t.entities += c.entities;
            t.bytes += c.bytes;
            t.tasks += c.tasks;
            t
        });
        let import_bytes = collections
            .iter()
            .zip(&sample.importable)
            .filter(|(_, importable)| **importable)
            .map(|(c, _)| c.bytes)
            .sum();
        let estimate =
            (!collections.is_empty()).then(|| estimate(&job, &totals, import_bytes, &sample, now));
        let advice = estimate.as_ref().and_then(|e| recommend_auto(e, now));
        let mut advised = Vec::new();
        if let Some(e) = estimate.as_ref().filter(|e| e.fits_window == Some(false)) {
            problems.push(Problem::at(
                "options.not_after",
                format!(
                    "the copy is estimated to take {} (at {:.1} MB/s) and to end at {}; with half as long again for indexes and verification it would not end before the window closes at {}{}",
                    humantime::format_duration(std::time::Duration::from_secs(e.copy_seconds.ceil() as u64)),
                    e.rate_mb_per_s,
                    e.copy_ends_at.format("%Y-%m-%d %H:%M:%S UTC"),
                    e.not_after.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string()).unwrap_or_default(),
                    advice.as_deref().map(|a| format!("; {a}")).unwrap_or_default(),
                ),
            ));
        } else if let Some(a) = advice {
            advised.push(a);
        }
        let mut warnings: Vec<String> = found
            .warnings
            .into_iter()
            .map(|(c, w)| format!("{c}: {w}"))
            .collect();
        warnings.extend(estimate.as_ref().and_then(longer_than_a_day));
        warnings.extend(advised);
        let new_cluster = job.request.target.to_create().map(|n| {
            let plan = plan_new_cluster(n, &totals, estimate.as_ref());
            warnings.extend(undersized(&plan, &totals));
            plan
        });
        Ok(PlanReport {
            dry_run: true,
            ok: problems.is_empty(),
            source: PlannedCluster::of(&job.request.source),
            target: PlannedCluster::of(&job.request.target),
            tier_rule: located.verdict,
            collections,
            totals,
            capacity: found.capacity,
            estimate,
            new_cluster,
            problems,
            warnings,
        })
    }

    /// Preflight's findings, and one sampled page per collection fit to migrate.
    async fn inspect_and_sample(
        &self,
        p: &super::retry::Patience<'_>,
        job: &Job,
    ) -> Result<(Findings, Sample), EngineError> {
        let spec = &job.request.source;
        let source = p.call(|| self.clusters.connect(Role::Source, spec)).await?;
        let target = match job.request.target.to_create() {
            Some(_) => None,
            None => {
                let spec = &job.request.target;
                Some(p.call(|| self.clusters.connect(Role::Target, spec)).await?)
            }
        };
        let found = self.inspect(p, job, &*source, target.as_deref()).await?;
        let mut sample = Sample {
            importable: self.importable(p, job, target.as_deref(), &found).await?,
            ..Sample::default()
        };
        for c in &found.collections {
            sample.add(self.sample(p, job, &*source, c).await?);
        }
        Ok((found, sample))
    }

    /// Reads a collection's first page as the copy would (at most [`SAMPLE_ENTITIES`]), timed.
    async fn sample(
        &self,
        p: &super::retry::Patience<'_>,
        job: &Job,
        source: &dyn Cluster,
        c: &super::preflight::Inspected,
    ) -> Result<Sampled, EngineError> {
        let Some(primary) = c.info.primary_field() else {
            return Ok(Sampled::default());
        };
        let skip = c.info.function_outputs();
        let max = job.request.options.batch_size.min(SAMPLE_ENTITIES);
        let request = PageRequest {
            database: &c.report.database,
            collection: &c.report.source,
            partition: None,
            primary,
            after: None,
            upto: None,
            read_at: None,
            limit: first_limit(&c.info.schema, max, TARGET_PAGE_BYTES),
            skip_fields: &skip,
            subset: job.request.selection(&c.report.database, &c.report.source),
        };
        let started = Instant::now();
        let page = p.call(|| source.read_page(&request)).await?;
        Ok(Sampled {
            rows: page.rows as u64,
            bytes: page.bytes as u64,
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}

/// A warning for an estimate over a day (with the time for indexes and verification), which is
/// worth a second look even where no window is given.
fn longer_than_a_day(e: &Estimate) -> Option<String> {
    (e.copy_seconds * WINDOW_MARGIN > DAY).then(|| {
        format!(
            "the copy is estimated to take {} at {:.2} MB/s, more than a day: check options.max_write_mb_per_s and max_workers, or migrate fewer collections per job",
            humantime::format_duration(std::time::Duration::from_secs(e.copy_seconds.ceil() as u64)),
            e.rate_mb_per_s
        )
    })
}

/// The cluster the job would create, with the CU size its data calls for and that size's
/// write cap and copy time (the estimate's read rate, capped by that size's write cap).
fn plan_new_cluster(
    n: &NewCluster,
    totals: &Totals,
    estimate: Option<&Estimate>,
) -> NewClusterPlan {
    let recommended = recommended_cu_size(&n.plan, &n.cu_type, totals.bytes);
    let cap = |cu: u32| Tier::Dedicated.write_cap_mb_per_s(Some(cu));
    let copy_seconds = |cu: u32| {
        let e = estimate?;
        let rate = (e.read_mb_per_s * e.readers as f64).min(cap(cu));
        (rate > 0.0).then(|| totals.bytes as f64 / 1e6 / rate)
    };
    NewClusterPlan {
        would_create: n.clone(),
        write_cap_mb_per_s: cap(n.cu_size),
        recommended_cu_size: recommended,
        recommended_write_cap_mb_per_s: recommended.map(cap),
        recommended_copy_seconds: recommended.and_then(copy_seconds),
    }
}

/// A warning when the CU size asked for is smaller than the data calls for.
fn undersized(plan: &NewClusterPlan, totals: &Totals) -> Option<String> {
    let asked = plan.would_create.cu_size;
    let gb = totals.bytes as f64 / 1e9;
    match plan.recommended_cu_size {
        None => Some(format!(
            "target.new_cluster: no {} size of the {} plan holds the estimated {gb:.1} GB at 70 % of its published capacity; choose another CU type or plan, or migrate fewer collections",
            plan.would_create.cu_type, plan.would_create.plan
        )),
        Some(cu) if cu > asked => Some(format!(
            "target.new_cluster.cu_size: {asked} CU of {} holds less than the estimated {gb:.1} GB at 70 % of its published capacity; {cu} CU would (write cap {:.1} MB/s)",
            plan.would_create.cu_type,
            plan.recommended_write_cap_mb_per_s.unwrap_or_default()
        )),
        Some(_) => None,
    }
}

/// A cluster's refusal as a problem at the request field to fix.
fn problem_of(e: &ClusterError) -> Problem {
    let role = e.role();
    let field = match e {
        ClusterError::Unauthenticated { .. } | ClusterError::Credentials { .. } => {
            format!("{role}.token")
        }
        ClusterError::Unreachable { .. } | ClusterError::NotMilvus { .. } => format!("{role}.uri"),
        ClusterError::Tls { .. } => format!("{role}.tls"),
        ClusterError::ZillizCloud { .. } => format!("{role}.cluster_id"),
        _ => role.to_string(),
    };
    Problem::at(field, e.to_string())
}

/// One sampled page.
#[derive(Debug, Default, Clone, Copy)]
struct Sampled {
    rows: u64,
    bytes: u64,
    seconds: f64,
}

/// Every sampled page.
#[derive(Debug, Default)]
struct Sample {
    /// Bytes per entity, per collection (0 for an empty one).
    per_collection: Vec<f64>,
    /// Whether bulk import would copy each collection.
    importable: Vec<bool>,
    rows: u64,
    bytes: u64,
    seconds: f64,
}

impl Sample {
    fn add(&mut self, s: Sampled) {
        let per_entity = if s.rows == 0 {
            0.0
        } else {
            s.bytes as f64 / s.rows as f64
        };
        self.per_collection.push(per_entity);
        self.rows += s.rows;
        self.bytes += s.bytes;
        self.seconds += s.seconds;
    }
}

/// What the dry run says of `write_mode: "auto"` for a job that inserts: a recommendation
/// when it would fit the window the inserts miss, or save more than a day; else nothing.
fn recommend_auto(e: &Estimate, now: DateTime<Utc>) -> Option<String> {
    let auto = e.auto_copy_seconds?;
    let within = |seconds: f64| {
        e.not_after.map(|end| {
            now + chrono::Duration::milliseconds((seconds * WINDOW_MARGIN * 1000.0) as i64) <= end
        })
    };
    let worth = match within(auto) {
        Some(fits) => fits && within(e.copy_seconds) == Some(false),
        None => e.copy_seconds - auto > DAY,
    };
    let took = |s: f64| humantime::format_duration(std::time::Duration::from_secs(s.ceil() as u64));
    worth.then(|| {
        format!(
            "options.write_mode \"auto\" would copy it in about {} instead of {}: bulk import ({:.1} GB of it; give options.staging where the target reads) is not metered by the target's {:.1} MB/s write cap",
            took(auto),
            took(e.copy_seconds),
            e.import_bytes as f64 / 1e9,
            e.write_cap_mb_per_s.unwrap_or_default()
        )
    })
}

/// The copy's duration from the sample, the readers and the target's cap (which bulk import's
/// `import_bytes` do not pass through).
fn estimate(
    job: &Job,
    totals: &Totals,
    import_bytes: u64,
    sample: &Sample,
    now: DateTime<Utc>,
) -> Estimate {
    let options = &job.request.options;
    let read = if sample.seconds > 0.0 {
        sample.bytes as f64 / sample.seconds / 1e6
    } else {
        0.0
    };
    let readers = u64::from(options.max_workers).min(totals.tasks).max(1);
    let (cap, from) = match (options.max_write_mb_per_s, job.request.target.tier()) {
        (Some(cap), _) => (Some(cap), Some("option")),
        (None, Some((tier, cu, _))) => (Some(tier.write_cap_mb_per_s(cu)), Some("plan")),
        (None, None) => (None, None),
    };
    let parallel = read * readers as f64;
    let capped = cap.map_or(parallel, |c| parallel.min(c));
    let seconds = |bytes: u64, rate: f64| {
        if rate > 0.0 {
            bytes as f64 / 1e6 / rate
        } else {
            0.0
        }
    };
    // Imported bytes at the read rate, the rest through the cap, one after the other.
    let mixed = seconds(import_bytes, parallel) + seconds(totals.bytes - import_bytes, capped);
    let inserting = options.write_mode == crate::domain::WriteVia::Insert;
    let copy_seconds = if inserting {
        seconds(totals.bytes, capped)
    } else {
        mixed
    };
    let rate = if copy_seconds > 0.0 {
        totals.bytes as f64 / 1e6 / copy_seconds
    } else {
        capped
    };
    let auto_copy_seconds =
        (inserting && import_bytes > 0 && capped < parallel && mixed < copy_seconds)
            .then_some(mixed);
    let after =
        |factor: f64| now + chrono::Duration::milliseconds((copy_seconds * factor * 1000.0) as i64);
    let not_after = options.not_after;
    Estimate {
        sampled_entities: sample.rows,
        read_mb_per_s: read,
        readers,
        write_cap_mb_per_s: cap,
        write_cap_from: from,
        rate_mb_per_s: rate,
        copy_seconds,
        copy_ends_at: after(1.0),
        not_after,
        fits_window: not_after.map(|end| after(WINDOW_MARGIN) <= end),
        import_bytes,
        auto_copy_seconds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_estimate_over_a_day_is_a_warning() {
        let job = Job::new(
            "j".into(),
            MigrationRequest::from_json(
                r#"{"source":{"uri":"http://a:1"},"target":{"uri":"http://b:2"},"databases":[{"name":"default"}],"options":{"max_write_mb_per_s":0.1}}"#,
            )
            .unwrap(),
            Utc::now(),
        );
        let sample = Sample {
            per_collection: vec![100.0],
            importable: vec![false],
            rows: 1000,
            bytes: 100_000,
            seconds: 0.01,
        };
        let totals = |bytes| Totals {
            collections: 1,
            partitions: 1,
            entities: bytes / 100,
            bytes,
            tasks: 1,
        };
        // 10 GB at 0.1 MB/s: 28 hours.
        let slow = estimate(&job, &totals(10_000_000_000), 0, &sample, Utc::now());
        assert_eq!(slow.rate_mb_per_s, 0.1);
        let warning = longer_than_a_day(&slow).expect("a warning");
        assert!(warning.contains("more than a day"), "{warning}");
        // 1 GB: under three hours.
        let quick = estimate(&job, &totals(1_000_000_000), 0, &sample, Utc::now());
        assert!(longer_than_a_day(&quick).is_none());
    }

    #[test]
    fn auto_is_recommended_when_import_fits_the_window_the_inserts_miss() {
        // GIVEN 10 GB read at 10 MB/s by one reader, into a 1 MB/s cap, in a 3-hour window
        let now = Utc::now();
        let request = |mode: &str| {
            let text = format!(
                r#"{{"source":{{"uri":"http://a:1"}},"target":{{"uri":"http://b:2"}},"databases":[{{"name":"default"}}],"options":{{"max_write_mb_per_s":1,"max_workers":1,"write_mode":"{mode}","staging":"/srv/stage","not_after":"{}"}}}}"#,
                (now + chrono::Duration::hours(3)).to_rfc3339()
            );
            Job::new("j".into(), MigrationRequest::from_json(&text).unwrap(), now)
        };
        let sample = Sample {
            per_collection: vec![100.0],
            importable: vec![true],
            rows: 1000,
            bytes: 100_000,
            seconds: 0.01,
        };
        let totals = Totals {
            collections: 1,
            partitions: 1,
            entities: 100_000_000,
            bytes: 10_000_000_000,
            tasks: 1,
        };
        // WHEN it inserts: 10,000 s through the cap, past the window; 1,000 s by import
        let inserting = estimate(&request("insert"), &totals, totals.bytes, &sample, now);
        assert_eq!(inserting.fits_window, Some(false));
        assert_eq!(inserting.auto_copy_seconds.map(f64::round), Some(1000.0));
        let advice = recommend_auto(&inserting, now).expect("a recommendation");
        assert!(
            advice.contains(
                "write_mode \"auto\" would copy it in about 16m 40s instead of 2h 46m 40s"
            ),
            "{advice}"
        );
        // ... none that import nothing
        let nothing = estimate(&request("insert"), &totals, 0, &sample, now);
        assert_eq!(
            (nothing.auto_copy_seconds, recommend_auto(&nothing, now)),
            (None, None)
        );
        // WHEN it already imports: the cap does not apply, and it fits
        let importing = estimate(&request("auto"), &totals, totals.bytes, &sample, now);
        assert_eq!(importing.copy_seconds.round(), 1000.0);
        assert_eq!(
            (importing.fits_window, importing.auto_copy_seconds),
            (Some(true), None)
        );
    }
}
