//! The `vecmigrate` command line: `run`, `plan`, `status`, `list`, `resume`, `cancel` and
//! `serve` (the jobs page), on the embedded job store with in-process workers. [`args`] holds the words, [`request`] builds a
//! `run`'s request, [`render`] prints progress and reports, [`plan`] the dry run; this module
//! runs each command.
//!
//! Exit codes: 0 the job is SUCCESSFUL (`plan`: no problem); 1 it FAILED (`plan`: problems);
//! 2 the request or the command line is invalid; 3 it was CANCELLED; 4 anything else (job not
//! found, store unavailable, conflict); 5 the run was interrupted (Ctrl-C, SIGTERM) and the
//! job can be resumed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

mod args;
mod plan;
mod render;
mod request;

pub use args::{Cli, Command, RunArgs, RunSettings};
pub use plan::render_plan;
pub use render::{print_report, render_table};
pub use request::request_from_args;

use crate::credentials::{Credentials, TokenResolver};
use crate::domain::{ClusterSpec, JobStatus, Level, Secret};
use crate::engine::{Engine, EngineConfig, EngineError};
use crate::entrypoints::local::{LocalRunner, LocalSettings};
use crate::milvus::grpc::MilvusConnector;
use crate::queue::inprocess::InProcessQueue;
use crate::store::dynamodb::{DynamoStore, DEFAULT_RETENTION_DAYS};
use crate::store::sqlite::SqliteStore;
use crate::store::JobStore;
use crate::webhook::sender::HttpNotifier;
use render::Follower;

/// Exit code: the job is SUCCESSFUL.
pub const EXIT_OK: i32 = 0;
/// Exit code: the job FAILED.
pub const EXIT_FAILED: i32 = 1;
/// Exit code: invalid request or command line.
pub const EXIT_INVALID: i32 = 2;
/// Exit code: the job was CANCELLED.
pub const EXIT_CANCELLED: i32 = 3;
/// Exit code: anything else.
pub const EXIT_ERROR: i32 = 4;
/// Exit code: the run was interrupted (Ctrl-C, SIGTERM) and the job is resumable.
pub const EXIT_INTERRUPTED: i32 = 5;

/// A CLI failure with its exit code.
#[derive(Debug)]
pub struct Failure {
    /// The process exit code.
    pub code: i32,
    /// What to print.
    pub message: String,
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        let code = match e {
            EngineError::Invalid(_) => EXIT_INVALID,
            _ => EXIT_ERROR,
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

/// A failure of the command line's own input (exit code 2).
fn invalid(message: impl Into<String>) -> Failure {
    Failure {
        code: EXIT_INVALID,
        message: message.into(),
    }
}

/// Runs the command line; returns the exit code.
pub async fn main_with(cli: Cli) -> i32 {
    let result = match &cli.command {
        Command::Run(args) => run(&cli, args).await,
        Command::Plan(args) => plan::plan(cli.json, args).await,
        Command::Resume { job, run } => resume(&cli, job, run).await,
        Command::Status { job } => status(&cli, job).await,
        Command::Cancel { job } => cancel(&cli, job).await,
        Command::List { status, limit } => list(&cli, status.as_deref(), *limit).await,
        Command::Serve { listen } => serve(&cli, *listen).await,
    };
    match result {
        Ok(code) => code,
        Err(f) => {
            // Messages may quote what the user typed: control characters are written out.
            eprintln!(
                "error: {}",
                crate::domain::request::escape_controls(&f.message)
            );
            f.code
        }
    }
}

/// Whether a command may create the embedded store (`run`) or only reads one that exists.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Opening {
    Create,
    Existing,
}

async fn open_store(cli: &Cli, opening: Opening) -> Result<Arc<dyn JobStore>, Failure> {
    if let Some(table) = &cli.dynamodb_table {
        // A deployment's table, with the environment's AWS credentials and region.
        let sdk = crate::aws::config().await;
        return Ok(Arc::new(DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            table.clone(),
            chrono::Duration::days(DEFAULT_RETENTION_DAYS.into()),
        )));
    }
    let store = match opening {
        Opening::Create => SqliteStore::open(&cli.store),
        Opening::Existing => SqliteStore::open_existing(&cli.store),
    }
    .map_err(|e| Failure {
        code: EXIT_ERROR,
        message: e.to_string(),
    })?;
    Ok(Arc::new(store))
}

/// `run`: start a job and follow it to its end.
async fn run(cli: &Cli, args: &RunArgs) -> Result<i32, Failure> {
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
async fn resume(cli: &Cli, job: &str, settings: &RunSettings) -> Result<i32, Failure> {
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
async fn status(cli: &Cli, job: &str) -> Result<i32, Failure> {
    let engine = bare_engine(open_store(cli, Opening::Existing).await?)?;
    let report = engine.report(job).await?;
    print_report(&report, cli.json);
    Ok(exit_code(report.job.status))
}

/// `cancel`: ask a job to stop, and wait a little for a worker in another process to see it.
async fn cancel(cli: &Cli, job: &str) -> Result<i32, Failure> {
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
async fn list(cli: &Cli, status: Option<&str>, limit: usize) -> Result<i32, Failure> {
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
async fn serve(cli: &Cli, listen: std::net::SocketAddr) -> Result<i32, Failure> {
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

/// The global flags that name this command's store, for the commands a page shows.
fn store_flags(cli: &Cli) -> String {
    if let Some(table) = &cli.dynamodb_table {
        format!("--dynamodb-table {}", shell_word(table))
    } else {
        format!("--store {}", shell_word(&cli.store.display().to_string()))
    }
}

/// `word` as a shell reads it back: as it is when it is plain, else single-quoted.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The engine's settings for this process: the environment's, with leases that outlast a
/// simulated invocation several times over.
fn engine_config(max_run: Option<Duration>) -> Result<EngineConfig, Failure> {
    let mut config = EngineConfig::from_env().map_err(invalid)?;
    if let Some(max_run) = max_run {
        config.lease_ttl = config.lease_ttl.max(max_run * 3);
    }
    Ok(config)
}

/// An engine for commands that only read or cancel (no secrets, no workers).
fn bare_engine(store: Arc<dyn JobStore>) -> Result<Engine, Failure> {
    let config = engine_config(None)?;
    let credentials: Arc<dyn Credentials> = Arc::new(TokenResolver::new(None, None));
    Ok(Engine::new(
        store,
        Arc::new(InProcessQueue::new()),
        Arc::new(MilvusConnector::new(credentials.clone())),
        HttpNotifier::local(credentials, config.webhook_timeout),
        config,
    ))
}

/// The engine and its local runner; `credentials` has the secrets given on this command line
/// (the client-key flags are added here).
fn local(
    store: Arc<dyn JobStore>,
    credentials: TokenResolver,
    settings: &RunSettings,
    max_workers: u32,
) -> Result<(Arc<Engine>, LocalRunner), Failure> {
    let queue = InProcessQueue::new();
    let config = engine_config(settings.max_run)?;
    let key = |flag: &str, path: &Option<PathBuf>| {
        path.as_ref()
            .map(|p| {
                std::fs::read_to_string(p)
                    .map(Secret::new)
                    .map_err(|e| invalid(format!("cannot read {flag} {}: {e}", p.display())))
            })
            .transpose()
    };
    let credentials: Arc<dyn Credentials> = Arc::new(credentials.with_client_keys(
        key("--source-client-key", &settings.source_client_key)?,
        key("--target-client-key", &settings.target_client_key)?,
    ));
    let notifier = HttpNotifier::local(credentials.clone(), config.webhook_timeout);
    let engine = Engine::new(
        store,
        Arc::new(queue.clone()),
        Arc::new(MilvusConnector::new(credentials)),
        notifier,
        config,
    );
    let engine = Arc::new(with_test_faults(engine)?);
    let local = LocalSettings {
        workers: settings.workers.unwrap_or(max_workers).max(1) as usize,
        max_run: settings.max_run,
        ..LocalSettings::default()
    };
    let runner = LocalRunner::new(engine.clone(), queue, local);
    Ok((engine, runner))
}

/// The engine's fault hooks, from `VECMIGRATE_TEST_FAULTS` (for the CLI's own tests; builds
/// without the `test-support` feature have none).
#[cfg(feature = "test-support")]
fn with_test_faults(engine: Engine) -> Result<Engine, Failure> {
    match super::env_text("VECMIGRATE_TEST_FAULTS") {
        None => Ok(engine),
        Some(spec) => Ok(engine.with_faults(
            crate::engine::Faults::parse(&spec)
                .map_err(|e| invalid(format!("VECMIGRATE_TEST_FAULTS: {e}")))?,
        )),
    }
}

#[cfg(not(feature = "test-support"))]
fn with_test_faults(engine: Engine) -> Result<Engine, Failure> {
    Ok(engine)
}

/// Says which of a job's tasks (or steps) another worker still holds: a worker that was killed
/// (SIGKILL, a crash) could not give its leases back, so this run waits until they expire.
async fn say_held_leases(engine: &Engine, job: &crate::domain::Job) -> Result<(), Failure> {
    let now = chrono::Utc::now();
    let tasks = engine
        .store()
        .list_tasks(&job.id)
        .await
        .map_err(EngineError::from)?;
    let held = tasks
        .iter()
        .filter(|t| t.status == crate::domain::TaskStatus::Pending)
        .filter_map(|t| t.lease.as_ref())
        .chain(job.step_lease.as_ref())
        .filter(|l| l.expires_at > now)
        .map(|l| l.expires_at)
        .collect::<Vec<_>>();
    if let Some(last) = held.iter().max() {
        let wait = (*last - now).num_seconds().max(1);
        eprintln!(
            "{} task(s) of job {} are still held by an earlier worker; if it is gone (killed), this run takes them over when their leases expire, within {wait}s (by {})",
            held.len(),
            job.id,
            last.format("%H:%M:%S UTC")
        );
    }
    Ok(())
}

/// Completes on the first Ctrl-C or SIGTERM (as systemd, `docker stop` or `kill` send it);
/// names the one that came.
async fn stop_signal() -> &'static str {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return "Ctrl-C";
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => "Ctrl-C",
            _ = term.recv() => "SIGTERM",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

/// Drives a job to its end, showing progress; Ctrl-C or SIGTERM leaves it resumable.
async fn follow(
    engine: &Engine,
    runner: &LocalRunner,
    job_id: &str,
    json: bool,
) -> Result<i32, Failure> {
    eprintln!("job {job_id}");
    let mut follower = Follower::new(json);
    let mut signal = None;
    let interrupt = async {
        let which = stop_signal().await;
        signal = Some(which);
        eprintln!("interrupted ({which}): the workers stop at their next page and release their tasks ({which} again to quit at once)…");
        tokio::spawn(async {
            stop_signal().await;
            std::process::exit(EXIT_INTERRUPTED);
        });
    };
    let (report, interrupted) = runner
        .drive_until(job_id, |r| follower.update(r), interrupt)
        .await?;
    if interrupted {
        follower.abandon();
        let which = signal.unwrap_or("a signal");
        engine
            .log(
                job_id,
                Level::Warn,
                None,
                format!("the run was interrupted ({which}); the job keeps its checkpoints: `vecmigrate resume {job_id}` continues it"),
            )
            .await;
        eprintln!("interrupted; the job keeps its checkpoints: vecmigrate resume {job_id}");
        return Ok(EXIT_INTERRUPTED);
    }
    follower.finish();
    print_report(&report, json);
    Ok(exit_code(report.job.status))
}

fn exit_code(status: JobStatus) -> i32 {
    match status {
        JobStatus::Successful => EXIT_OK,
        JobStatus::Cancelled => EXIT_CANCELLED,
        JobStatus::Failed => EXIT_FAILED,
        JobStatus::Pending | JobStatus::InProgress => EXIT_OK,
    }
}
