//! The commands on jobs: `run`, `resume`, `status`, `cancel`, `list`, and `serve` (the jobs
//! page over the same store).

use std::time::Duration;

use super::exit::{exit_code, invalid, Failure, EXIT_ERROR, EXIT_OK};
use super::follow::{follow, say_held_leases};
use super::request::{self, request_from_args};
use super::setup::{bare_engine, local, open_store, store_flags, Opening};
use super::{print_report, Cli, RunArgs, RunSettings};
use crate::credentials::TokenResolver;
use crate::domain::{ClusterSpec, JobStatus, Level, Secret};
use crate::engine::EngineError;

/// `run`: start a job and follow it to its end.
pub(super) async fn run(cli: &Cli, args: &RunArgs) -> Result<i32, Failure> {
    let request = request_from_args(args)?;
    // Secrets given inline are kept in memory only: the record holds markers.
    let inline_key = |spec: &ClusterSpec| {
        spec.tls
            .as_ref()
            .and_then(|t| t.client_key.clone())
            .filter(|k| !k.is_redacted())
    };
    let credentials =
        TokenResolver::new(request.source.token.clone(), request.target.token.clone())
            .with_client_keys(inline_key(&request.source), inline_key(&request.target))
            .with_webhook_secret(request.webhook_secret().cloned());
    let (engine, runner) = local(
        open_store(cli, Opening::Create).await?,
        credentials,
        &args.run,
        request.options.max_workers,
    )?;
    let (job, new) = engine.start(request).await?;
    if !new {
        eprintln!("idempotency key matched job {}; following it", job.id);
        runner.kick(&job.id).await?;
    }
    follow(&engine, &runner, &job.id, cli.json).await
}

/// `resume`: continue a job from its checkpoints, with its secrets given again.
pub(super) async fn resume(cli: &Cli, job: &str, settings: &RunSettings) -> Result<i32, Failure> {
    let store = open_store(cli, Opening::Existing).await?;
    let found = store
        .get_job(job)
        .await
        .map_err(EngineError::from)?
        .ok_or_else(|| EngineError::NotFound(job.to_owned()))?;
    let source = request::token_for(
        &found.request.source,
        settings.source_token.as_deref(),
        "source",
    )?;
    let target = request::token_for(
        &found.request.target,
        settings.target_token.as_deref(),
        "target",
    )?;
    let webhook = match &found.request.webhook {
        Some(w) if w.secret.is_some() => {
            let given = settings.webhook_secret.as_deref().ok_or_else(|| {
                invalid("the job was started with a webhook secret, which is never stored; pass --webhook-secret or set VECMIGRATE_WEBHOOK_SECRET")
            })?;
            Some(Secret::new(given))
        }
        _ => None,
    };
    let credentials = TokenResolver::new(source, target).with_webhook_secret(webhook);
    let (engine, runner) = local(
        store,
        credentials,
        settings,
        found.request.options.max_workers,
    )?;
    if !found.status.is_terminal() {
        engine
            .log(
                job,
                Level::Info,
                None,
                "resumed by `vecmigrate resume`".into(),
            )
            .await;
        say_held_leases(&engine, &found).await?;
    }
    runner.kick(job).await?;
    follow(&engine, &runner, job, cli.json).await
}

/// `status`: print a job's report.
pub(super) async fn status(cli: &Cli, job: &str) -> Result<i32, Failure> {
    let engine = bare_engine(open_store(cli, Opening::Existing).await?)?;
    let report = engine.report(job).await?;
    print_report(&report, cli.json);
    Ok(exit_code(report.job.status))
}

/// `cancel`: ask a job to stop, and wait a little for a worker in another process to see it.
pub(super) async fn cancel(cli: &Cli, job: &str) -> Result<i32, Failure> {
    let engine = bare_engine(open_store(cli, Opening::Existing).await?)?;
    engine.cancel(job).await?;
    let mut report = engine.report(job).await?;
    for _ in 0..50 {
        if report.job.status.is_terminal() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        report = engine.report(job).await?;
    }
    if !report.job.status.is_terminal() {
        eprintln!("cancel requested; the workers of job {job} stop at their next page");
    }
    print_report(&report, cli.json);
    Ok(if report.job.status.is_terminal() {
        exit_code(report.job.status)
    } else {
        EXIT_OK
    })
}

/// `list`: jobs, newest first.
pub(super) async fn list(cli: &Cli, status: Option<&str>, limit: usize) -> Result<i32, Failure> {
    let status = status
        .map(|s| {
            JobStatus::parse(s).ok_or_else(|| {
                invalid(format!(
                    "--status `{s}` is not one of PENDING, IN_PROGRESS, SUCCESSFUL, FAILED, CANCELLED"
                ))
            })
        })
        .transpose()?;
    let page = open_store(cli, Opening::Existing)
        .await?
        .list_jobs(status, limit, None)
        .await
        .map_err(EngineError::from)?;
    let jobs: Vec<_> = page.jobs.iter().map(|j| j.public()).collect();
    if cli.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&jobs).unwrap_or_default()
        );
        return Ok(EXIT_OK);
    }
    println!(
        "{:<38} {:<12} {:<8} {:<25} COLLECTIONS",
        "JOB", "STATUS", "PHASE", "CREATED"
    );
    for j in &jobs {
        println!(
            "{:<38} {:<12} {:<8} {:<25} {}",
            j.id,
            j.status.as_str(),
            j.phase.map(|p| p.as_str()).unwrap_or_default(),
            j.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
            j.collections.len()
        );
    }
    Ok(EXIT_OK)
}

/// `serve`: the jobs page over this store, until the process is stopped.
pub(super) async fn serve(cli: &Cli, listen: std::net::SocketAddr) -> Result<i32, Failure> {
    let store = open_store(cli, Opening::Existing).await?;
    let page = crate::entrypoints::web::JobsPage::new(
        bare_engine(store.clone())?,
        store,
        store_flags(cli),
    );
    crate::entrypoints::web::run(page, listen)
        .await
        .map_err(|e| Failure {
            code: EXIT_ERROR,
            message: format!("cannot serve the jobs page on {listen}: {e}"),
        })?;
    Ok(EXIT_OK)
}
