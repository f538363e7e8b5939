//! `vecmigrate plan`: the dry run of a `run`'s request, and the table it prints for people
//! (`--json` prints the plan as the API answers it).

use std::fmt::Write;
use std::sync::Arc;

use super::args::RunArgs;
use super::exit::{Failure, EXIT_ERROR, EXIT_FAILED, EXIT_OK};
use super::request::request_from_args;
use super::setup::{engine_config, engine_on};
use crate::credentials::{Credentials, TokenResolver};
use crate::domain::Problem;
use crate::engine::Budget;
use crate::engine::{Estimate, NewClusterPlan, PlanReport, PlannedCluster};
use crate::queue::inprocess::InProcessQueue;
use crate::store::sqlite::SqliteStore;

/// `plan`: preflight only, on an engine whose store lives in memory (nothing is written).
pub(super) async fn plan(json: bool, args: &RunArgs) -> Result<i32, Failure> {
    let mut request = request_from_args(args)?;
    request.dry_run = true;
    let credentials: Arc<dyn Credentials> = Arc::new(TokenResolver::new(
        request.source.token.clone(),
        request.target.token.clone(),
    ));
    let config = engine_config(None)?;
    let store = SqliteStore::open(std::path::Path::new(":memory:")).map_err(|e| Failure {
        code: EXIT_ERROR,
        message: e.to_string(),
    })?;
    let margin = config.safety_margin;
    let engine = engine_on(Arc::new(store), InProcessQueue::new(), credentials, config);
    let plan = engine
        .dry_run(request, Budget::new(None, args.run.max_run, margin))
        .await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&plan).unwrap_or_default()
        );
    } else {
        print!("{}", render_plan(&plan));
    }
    Ok(if plan.ok { EXIT_OK } else { EXIT_FAILED })
}

/// Bytes as people read them (10^6 = MB).
fn size(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..=999_999 => format!("{:.1} kB", b / 1e3),
        1_000_000..=999_999_999 => format!("{:.1} MB", b / 1e6),
        _ => format!("{:.2} GB", b / 1e9),
    }
}

fn cluster_line(c: &PlannedCluster) -> String {
    let tier = match (c.tier, &c.zilliz) {
        (Some(t), Some(z)) => format!(
            "{} ({} plan, {} CU, {}, {})",
            t.as_str(),
            z.plan,
            z.cu_size,
            z.region_id,
            z.status
        ),
        (Some(t), None) => format!("{} (from its host name)", t.as_str()),
        _ => "not a Zilliz Cloud cluster".into(),
    };
    match &c.cluster_id {
        Some(id) if !c.uri.is_empty() => format!("{id} at {}: {tier}", c.uri),
        Some(id) => format!("{id} (not resolved)"),
        None => format!("{}: {tier}", c.uri),
    }
}

/// The plan as a table: the clusters, the collections, capacity and estimate, warnings, and
/// the verdict with every problem.
pub fn render_plan(plan: &PlanReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "plan (dry run; nothing was written)");
    let _ = writeln!(out, "  source     {}", cluster_line(&plan.source));
    match &plan.new_cluster {
        Some(n) => new_cluster(&mut out, n),
        None => {
            let _ = writeln!(out, "  target     {}", cluster_line(&plan.target));
        }
    }
    let _ = writeln!(out, "  tier rule  {}", plan.tier_rule.reason);
    collections(&mut out, plan);
    if let Some(c) = &plan.capacity {
        let max = c
            .max_collections
            .map_or("no known limit".into(), |m| format!("at most {m}"));
        let _ = writeln!(
            out,
            "\n  capacity   the target holds {} collections, {} after the job ({max}); at most {} partitions each",
            c.existing, c.after, c.max_partitions_per_collection
        );
    }
    if let Some(e) = &plan.estimate {
        estimate(&mut out, e);
    }
    for w in &plan.warnings {
        let _ = writeln!(out, "  warning    {w}");
    }
    verdict(&mut out, &plan.problems);
    out
}

/// The target the job would create, and the size its data calls for.
fn new_cluster(out: &mut String, n: &NewClusterPlan) {
    let c = &n.would_create;
    let _ = writeln!(
        out,
        "  target     a new {} cluster `{}` in project {} ({}, {} × {} CU; write cap {:.1} MB/s), created by the job",
        c.plan, c.name, c.project_id, c.region_id, c.cu_size, c.cu_type, n.write_cap_mb_per_s
    );
    let advice = match (n.recommended_cu_size, n.recommended_write_cap_mb_per_s) {
        (Some(cu), Some(cap)) => {
            let copy = n
                .recommended_copy_seconds
                .map(|s| {
                    format!(
                        ", copy estimated at {}",
                        humantime::format_duration(std::time::Duration::from_secs(s.ceil() as u64))
                    )
                })
                .unwrap_or_default();
            format!("{cu} CU holds the data at 70 % of its published capacity (write cap {cap:.1} MB/s{copy})")
        }
        _ => format!(
            "no {} size of the {} plan holds the data",
            c.cu_type, c.plan
        ),
    };
    let _ = writeln!(out, "  cu_size    {advice}");
}

/// One row of the collections table.
fn row(out: &mut String, cells: [&dyn std::fmt::Display; 6]) {
    let [a, b, c, d, e, f] = cells;
    let _ = writeln!(out, "  {a:<32} {b:<32} {c:>10} {d:>12} {e:>10} {f:>6}");
}

/// The collections, each with its partitions, entities, bytes and tasks, and their totals.
fn collections(out: &mut String, plan: &PlanReport) {
    if plan.collections.is_empty() {
        return;
    }
    out.push('\n');
    row(
        out,
        [
            &"COLLECTION",
            &"TARGET",
            &"PARTITIONS",
            &"ENTITIES",
            &"BYTES",
            &"TASKS",
        ],
    );
    for c in &plan.collections {
        row(
            out,
            [
                &format!("{}.{}", c.database, c.collection),
                &format!("{}.{}", c.target_database, c.target),
                &c.partitions,
                &c.entities,
                &size(c.bytes),
                &c.tasks,
            ],
        );
    }
    let t = &plan.totals;
    row(
        out,
        [
            &format!("total ({} collections)", t.collections),
            &"",
            &t.partitions,
            &t.entities,
            &size(t.bytes),
            &t.tasks,
        ],
    );
}

/// The estimated copy, and whether it fits the window.
fn estimate(out: &mut String, e: &Estimate) {
    let cap = match (e.write_cap_mb_per_s, e.write_cap_from) {
        (Some(cap), Some("option")) => format!("; write cap {cap:.1} MB/s (max_write_mb_per_s)"),
        (Some(cap), _) => format!("; write cap {cap:.1} MB/s (the target's plan)"),
        _ => String::new(),
    };
    let took =
        humantime::format_duration(std::time::Duration::from_secs(e.copy_seconds.ceil() as u64));
    let _ = writeln!(
        out,
        "  estimate   copy {took} at {:.1} MB/s (one reader {:.1} MB/s on {} sampled entities, {} readers{cap}), ending {}",
        e.rate_mb_per_s,
        e.read_mb_per_s,
        e.sampled_entities,
        e.readers,
        e.copy_ends_at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    if let (Some(end), Some(fits)) = (e.not_after, e.fits_window) {
        let verdict = if fits {
            "fits (the copy and half as long again for indexes and verification)"
        } else {
            "does NOT fit"
        };
        let _ = writeln!(
            out,
            "  window     ends {}: {verdict}",
            end.format("%Y-%m-%d %H:%M:%S UTC")
        );
    }
}

/// OK, or every problem with its field.
fn verdict(out: &mut String, problems: &[Problem]) {
    if problems.is_empty() {
        let _ = writeln!(
            out,
            "\nOK: no problems; `vecmigrate run` with the same flags starts it"
        );
        return;
    }
    let _ = writeln!(out, "\n{} problem(s):", problems.len());
    for p in problems {
        let _ = writeln!(out, "  {p}");
    }
}
