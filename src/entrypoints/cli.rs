//! The `vecmigrate` command line: `run`, `status`, `list`, `resume`, `cancel`, on the embedded
//! job store with in-process workers. Progress bars on a terminal, plain lines otherwise.
//!
//! Exit codes: 0 the job is SUCCESSFUL; 1 it FAILED; 2 the request or the command line is
//! invalid; 3 it was CANCELLED; 4 anything else (job not found, store unavailable, conflict).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::aws::TokenResolver;
use crate::domain::request::WebhookSpec;
use crate::domain::{
    ClusterSpec, CollectionSpec, DatabaseSpec, FieldError, JobStatus, MigrationRequest, Options,
    Report, Secret, TlsSpec, VerifyMode,
};
use crate::engine::{Engine, EngineConfig, EngineError};
use crate::entrypoints::local::{LocalRunner, LocalSettings};
use crate::milvus::grpc::MilvusConnector;
use crate::queue::inprocess::InProcessQueue;
use crate::store::sqlite::SqliteStore;
use crate::store::JobStore;
use crate::webhook::sender::HttpNotifier;

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

/// Offline migrations of Milvus / Zilliz Cloud collections between clusters.
#[derive(Debug, Parser)]
#[command(name = "vecmigrate", version, about)]
pub struct Cli {
    /// The embedded job store (SQLite file).
    #[arg(long, global = true, env = "VECMIGRATE_STORE")]
    pub store: Option<PathBuf>,
    /// Print the report as JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a migration and run it to the end.
    Run(Box<RunArgs>),
    /// Show a job's status and verification.
    Status {
        /// The job id.
        job: String,
    },
    /// List jobs, newest first.
    List {
        /// Only jobs with this status (PENDING, IN_PROGRESS, SUCCESSFUL, FAILED, CANCELLED).
        #[arg(long)]
        status: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Continue a job that stopped (crash, Ctrl-C) from its checkpoints.
    Resume {
        /// The job id.
        job: String,
        /// Tokens and worker settings (tokens are never stored, so pass them again).
        #[command(flatten)]
        run: RunSettings,
    },
    /// Ask a job to stop at its next page.
    Cancel {
        /// The job id.
        job: String,
    },
}

/// Settings that apply to running a job (also on resume).
#[derive(Debug, Clone, Args)]
pub struct RunSettings {
    /// Source token (`user:password` or API key).
    #[arg(long, env = "VECMIGRATE_SOURCE_TOKEN", hide_env_values = true)]
    pub source_token: Option<String>,
    /// Target token.
    #[arg(long, env = "VECMIGRATE_TARGET_TOKEN", hide_env_values = true)]
    pub target_token: Option<String>,
    /// Parallel workers (overrides options.max_workers).
    #[arg(long)]
    pub workers: Option<u32>,
    /// Simulated invocation budget, e.g. `2s`: a worker stops after it and a fresh one continues.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub max_run: Option<Duration>,
    /// The webhook's signing secret, `whsec_<base64>` (never stored; pass it again on resume).
    #[arg(long, env = "VECMIGRATE_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// The source's client key for two-way TLS, a PEM file (with --source-client-cert).
    #[arg(long, value_name = "FILE")]
    pub source_client_key: Option<PathBuf>,
    /// The target's client key for two-way TLS, a PEM file (with --target-client-cert).
    #[arg(long, value_name = "FILE")]
    pub target_client_key: Option<PathBuf>,
}

/// `run`: a spec file, or flags for the common case.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The request as a JSON file (see README); `-` reads standard input.
    #[arg(long, conflicts_with_all = ["source_uri", "target_uri", "collection", "database"])]
    pub spec: Option<PathBuf>,
    /// Source cluster URI, e.g. http://127.0.0.1:19530.
    #[arg(long)]
    pub source_uri: Option<String>,
    /// Target cluster URI.
    #[arg(long)]
    pub target_uri: Option<String>,
    /// The CA certificate (PEM file) that signed the source server's certificate, for a
    /// server with its own CA.
    #[arg(long, value_name = "FILE")]
    pub source_ca_cert: Option<PathBuf>,
    /// The CA certificate (PEM file) of the target server.
    #[arg(long, value_name = "FILE")]
    pub target_ca_cert: Option<PathBuf>,
    /// The source's client certificate for two-way TLS, a PEM file.
    #[arg(long, value_name = "FILE")]
    pub source_client_cert: Option<PathBuf>,
    /// The target's client certificate for two-way TLS, a PEM file.
    #[arg(long, value_name = "FILE")]
    pub target_client_cert: Option<PathBuf>,
    /// Source database (default `default`).
    #[arg(long)]
    pub database: Option<String>,
    /// Target database (default: the source's name).
    #[arg(long)]
    pub target_database: Option<String>,
    /// A collection to migrate, `NAME` or `NAME:TARGET`; repeat it; none means all.
    #[arg(long)]
    pub collection: Vec<String>,
    /// Entities per page at most.
    #[arg(long)]
    pub batch_size: Option<u32>,
    /// Load the target collections at the end.
    #[arg(long)]
    pub load_after: bool,
    /// What verification compares besides counts: `count`, `sample` or `full`.
    #[arg(long, value_parser = parse_verify)]
    pub verify: Option<VerifyMode>,
    /// Keys compared per collection by `--verify sample` (default 100).
    #[arg(long)]
    pub verify_sample_size: Option<u32>,
    /// Idempotency key: the same key returns the job it started first.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Send the signed outcome webhook here (https, or http to a loopback address).
    #[arg(long)]
    pub webhook_url: Option<String>,
    /// Also send `migration.progress` events, at most every this many seconds.
    #[arg(long, requires = "webhook_url")]
    pub webhook_progress_every: Option<u64>,
    /// Tokens and worker settings.
    #[command(flatten)]
    pub run: RunSettings,
}

fn parse_verify(s: &str) -> Result<VerifyMode, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| format!("`{s}` is not a verify mode: use count, sample or full"))
}

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

fn invalid(message: impl Into<String>) -> Failure {
    Failure {
        code: EXIT_INVALID,
        message: message.into(),
    }
}

fn default_store() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("vecmigrate").join("jobs.sqlite3")
}

/// Builds the request from `run`'s flags or spec file.
pub fn request_from_args(args: &RunArgs) -> Result<MigrationRequest, Failure> {
    let mut request = if let Some(path) = &args.spec {
        let text = if path.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin())
                .map_err(|e| invalid(format!("cannot read the spec from standard input: {e}")))?
        } else {
            std::fs::read_to_string(path)
                .map_err(|e| invalid(format!("cannot read spec {}: {e}", path.display())))?
        };
        MigrationRequest::from_json(&text).map_err(|e| spec_error(path, &e))?
    } else {
        let source = args
            .source_uri
            .clone()
            .ok_or_else(|| invalid("give --spec FILE, or --source-uri and --target-uri"))?;
        let target = args
            .target_uri
            .clone()
            .ok_or_else(|| invalid("--target-uri is missing"))?;
        let collections = args
            .collection
            .iter()
            .map(|c| match c.split_once(':') {
                Some((name, target)) => CollectionSpec {
                    name: name.into(),
                    target_name: Some(target.into()),
                    schema_overrides: None,
                },
                None => CollectionSpec::named(c.as_str()),
            })
            .collect();
        MigrationRequest {
            idempotency_key: None,
            source: ClusterSpec::new(source),
            target: ClusterSpec::new(target),
            databases: vec![DatabaseSpec {
                name: args.database.clone().unwrap_or_else(|| "default".into()),
                target_name: args.target_database.clone(),
                collections,
            }],
            options: Options::default(),
            webhook: None,
        }
    };
    if let Some(key) = &args.idempotency_key {
        request.idempotency_key = Some(key.clone());
    }
    if let Some(b) = args.batch_size {
        request.options.batch_size = b;
    }
    if let Some(w) = args.run.workers {
        request.options.max_workers = w;
    }
    if args.load_after {
        request.options.load_after = true;
    }
    if let Some(mode) = args.verify {
        request.options.verify = mode;
    }
    if let Some(n) = args.verify_sample_size {
        request.options.verify_sample_size = n;
    }
    if request.source.token.is_none() {
        request.source.token = args.run.source_token.clone().map(Secret::new);
    }
    if request.target.token.is_none() {
        request.target.token = args.run.target_token.clone().map(Secret::new);
    }
    tls_from_flags(
        &mut request.source,
        [
            &args.source_ca_cert,
            &args.source_client_cert,
            &args.run.source_client_key,
        ],
    );
    tls_from_flags(
        &mut request.target,
        [
            &args.target_ca_cert,
            &args.target_client_cert,
            &args.run.target_client_key,
        ],
    );
    if let Some(url) = &args.webhook_url {
        request.webhook = Some(WebhookSpec {
            url: url.clone(),
            secret: args.run.webhook_secret.clone().map(Secret::new),
            secret_arn: None,
            progress_every_seconds: args.webhook_progress_every,
            sealed_secret: None,
        });
    } else if let Some(w) = request.webhook.as_mut() {
        if w.secret.is_none() && w.secret_arn.is_none() {
            w.secret = args.run.webhook_secret.clone().map(Secret::new);
        }
    }
    request
        .validate(chrono::Utc::now())
        .map_err(|e| spec_error(args.spec.as_deref().unwrap_or("flags".as_ref()), &e))?;
    Ok(request)
}

/// Fills a cluster's TLS file settings from `--{role}-ca-cert`, `--{role}-client-cert` and
/// `--{role}-client-key` where the spec gives none. The record keeps the paths, so `resume`
/// reads the files again.
fn tls_from_flags(spec: &mut ClusterSpec, [ca, cert, key]: [&Option<PathBuf>; 3]) {
    if ca.is_none() && cert.is_none() && key.is_none() {
        return;
    }
    let tls = spec.tls.get_or_insert_with(TlsSpec::default);
    let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    if tls.ca_cert.is_none() && tls.ca_cert_secret_arn.is_none() {
        tls.ca_cert_file = path(ca).or(tls.ca_cert_file.take());
    }
    if tls.client_cert.is_none() {
        tls.client_cert_file = path(cert).or(tls.client_cert_file.take());
    }
    if !tls.has_client_key() {
        tls.client_key_file = path(key);
    }
}

fn spec_error(path: &std::path::Path, e: &FieldError) -> Failure {
    let at = if e.field.is_empty() {
        String::new()
    } else {
        format!(" at `{}`", e.field)
    };
    invalid(format!(
        "invalid request in {}{at}: {}",
        path.display(),
        e.message
    ))
}

/// Runs the command line; returns the exit code.
pub async fn main_with(cli: Cli) -> i32 {
    match dispatch(cli).await {
        Ok(code) => code,
        Err(f) => {
            eprintln!("error: {}", f.message);
            f.code
        }
    }
}

fn open_store(cli: &Cli) -> Result<Arc<dyn JobStore>, Failure> {
    let path = cli.store.clone().unwrap_or_else(default_store);
    let store = SqliteStore::open(&path).map_err(|e| Failure {
        code: EXIT_ERROR,
        message: e.to_string(),
    })?;
    Ok(Arc::new(store))
}

async fn dispatch(cli: Cli) -> Result<i32, Failure> {
    let store = open_store(&cli)?;
    match &cli.command {
        Command::Run(args) => {
            let request = request_from_args(args)?;
            let settings = &args.run;
            // Secrets given inline are kept in memory only: the record holds markers.
            let inline_key = |spec: &ClusterSpec| {
                spec.tls
                    .as_ref()
                    .and_then(|t| t.client_key.clone())
                    .filter(|k| !k.is_redacted())
            };
            let credentials =
                TokenResolver::new(request.source.token.clone(), request.target.token.clone())
                    .with_client_keys(inline_key(&request.source), inline_key(&request.target));
            let (engine, runner) = local(
                store,
                credentials,
                request.webhook_secret().cloned(),
                settings,
                request.options.max_workers,
            )?;
            let (job, new) = engine.start(request).await?;
            if !new {
                eprintln!("idempotency key matched job {}; following it", job.id);
                runner.kick(&job.id).await?;
            }
            follow(&runner, &job.id, cli.json).await
        }
        Command::Resume { job, run } => {
            let found = store
                .get_job(job)
                .await
                .map_err(EngineError::from)?
                .ok_or_else(|| EngineError::NotFound(job.clone()))?;
            let source = token_for(&found.request.source, run.source_token.as_deref(), "source")?;
            let target = token_for(&found.request.target, run.target_token.as_deref(), "target")?;
            let webhook = match &found.request.webhook {
                Some(w) if w.secret.is_some() => {
                    let given = run.webhook_secret.as_deref().ok_or_else(|| {
                        invalid("the job was started with a webhook secret, which is never stored; pass --webhook-secret or set VECMIGRATE_WEBHOOK_SECRET")
                    })?;
                    Some(Secret::new(given))
                }
                _ => None,
            };
            let (_, runner) = local(
                store,
                TokenResolver::new(source, target),
                webhook,
                run,
                found.request.options.max_workers,
            )?;
            runner.kick(job).await?;
            follow(&runner, job, cli.json).await
        }
        Command::Status { job } => {
            let engine = bare_engine(store);
            let report = engine.report(job).await?;
            print_report(&report, cli.json);
            Ok(exit_code(report.job.status))
        }
        Command::Cancel { job } => {
            let engine = bare_engine(store);
            engine.cancel(job).await?;
            // A worker in another process notices at its next page.
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
        Command::List { status, limit } => {
            let status = status
                .as_deref()
                .map(|s| JobStatus::parse(s).ok_or_else(|| invalid(format!("--status `{s}` is not one of PENDING, IN_PROGRESS, SUCCESSFUL, FAILED, CANCELLED"))))
                .transpose()?;
            let page = store
                .list_jobs(status, *limit, None)
                .await
                .map_err(EngineError::from)?;
            if cli.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&page.jobs).unwrap_or_default()
                );
            } else {
                println!(
                    "{:<38} {:<12} {:<8} {:<25} COLLECTIONS",
                    "JOB", "STATUS", "PHASE", "CREATED"
                );
                for j in &page.jobs {
                    let phase = j
                        .phase
                        .map(|p| format!("{p:?}").to_lowercase())
                        .unwrap_or_default();
                    println!(
                        "{:<38} {:<12} {:<8} {:<25} {}",
                        j.id,
                        j.status.as_str(),
                        phase,
                        j.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
                        j.collections.len()
                    );
                }
            }
            Ok(EXIT_OK)
        }
    }
}

/// A stored token is only ever the redaction marker: ask for it again if one was used.
fn token_for(
    spec: &ClusterSpec,
    given: Option<&str>,
    role: &str,
) -> Result<Option<Secret>, Failure> {
    match (given, &spec.token) {
        (Some(t), _) => Ok(Some(Secret::new(t))),
        (None, Some(_)) => Err(invalid(format!(
            "the job was started with a {role} token, which is never stored; pass --{role}-token or set VECMIGRATE_{}_TOKEN",
            role.to_uppercase()
        ))),
        (None, None) => Ok(None),
    }
}

fn bare_engine(store: Arc<dyn JobStore>) -> Engine {
    Engine::new(
        store,
        Arc::new(InProcessQueue::new()),
        Arc::new(MilvusConnector::new(None, None)),
        HttpNotifier::local(None),
        EngineConfig::default(),
    )
}

/// The engine and its local runner; `credentials` has the secrets given on this command line
/// (the client-key flags are added here).
fn local(
    store: Arc<dyn JobStore>,
    credentials: TokenResolver,
    webhook_secret: Option<Secret>,
    settings: &RunSettings,
    max_workers: u32,
) -> Result<(Arc<Engine>, LocalRunner), Failure> {
    let queue = InProcessQueue::new();
    let mut config = EngineConfig::default();
    if let Some(max_run) = settings.max_run {
        config.lease_ttl = config.lease_ttl.max(max_run * 3);
    }
    // How long a dead worker's task waits before another takes it (as in the Lambda).
    if let Some(ttl) = super::env_duration("VECMIGRATE_LEASE_TTL", None).map_err(invalid)? {
        config.lease_ttl = ttl;
    }
    let key = |flag: &str, path: &Option<PathBuf>| {
        path.as_ref()
            .map(|p| {
                std::fs::read_to_string(p)
                    .map(Secret::new)
                    .map_err(|e| invalid(format!("cannot read {flag} {}: {e}", p.display())))
            })
            .transpose()
    };
    let credentials = credentials.with_client_keys(
        key("--source-client-key", &settings.source_client_key)?,
        key("--target-client-key", &settings.target_client_key)?,
    );
    let engine = Arc::new(with_test_faults(Engine::new(
        store,
        Arc::new(queue.clone()),
        Arc::new(MilvusConnector::with_credentials(Arc::new(credentials))),
        HttpNotifier::local(webhook_secret),
        config,
    ))?);
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

async fn follow(runner: &LocalRunner, job_id: &str, json: bool) -> Result<i32, Failure> {
    let terminal = std::io::stderr().is_terminal() && !json;
    eprintln!("job {job_id}");
    let bar = ProgressBar::new(0);
    if terminal {
        bar.set_style(
            // Rate and ETA come from the job's own progress: the bar only sees page-sized jumps.
            ProgressStyle::with_template(
                "{spinner} {msg:<12} [{bar:40}] {pos}/{len} entities {prefix}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut last_line = std::time::Instant::now() - Duration::from_secs(10);
    let mut last_phase = None;
    let report = tokio::select! {
        r = runner.drive(job_id, |r| {
            let phase = r.job.phase.map(|p| format!("{p:?}").to_lowercase()).unwrap_or_else(|| "pending".into());
            bar.set_length(r.progress.total);
            bar.set_position(r.progress.copied);
            bar.set_message(phase.clone());
            let eta = r.progress.eta_seconds.map(|s| format!(", eta {s}s")).unwrap_or_default();
            bar.set_prefix(format!("({:.0}/s{eta})", r.progress.rate));
            if !terminal && (last_line.elapsed() >= Duration::from_secs(2) || last_phase.as_ref() != Some(&phase)) {
                eprintln!("{phase}: {}/{} entities ({:.1}%), {:.0}/s", r.progress.copied, r.progress.total, r.progress.percent, r.progress.rate);
                last_line = std::time::Instant::now();
                last_phase = Some(phase);
            }
        }) => r?,
        _ = tokio::signal::ctrl_c() => {
            bar.abandon();
            eprintln!("interrupted; the job keeps its checkpoints: vecmigrate resume {job_id}");
            return Ok(EXIT_FAILED);
        }
    };
    bar.finish_and_clear();
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

/// Prints the report: JSON, or the verification table.
pub fn print_report(report: &Report, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).unwrap_or_default()
        );
        return;
    }
    print!("{}", render_table(report));
}

/// The human-readable report: outcome line, verification table, error.
pub fn render_table(report: &Report) -> String {
    use std::fmt::Write;
    let job = &report.job;
    let p = &report.progress;
    let mut out = String::new();
    let phase = job
        .phase
        .map(|p| format!(" ({:?})", p).to_lowercase())
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "job {} {}{} — {} of {} entities copied in {:.1}s ({:.0}/s), {} of {} tasks done",
        job.id,
        job.status.as_str(),
        if job.status.is_terminal() {
            String::new()
        } else {
            phase
        },
        p.copied,
        p.total,
        report.duration_seconds.unwrap_or(0.0),
        p.rate,
        p.tasks_done,
        p.tasks
    );
    if !job.collections.is_empty() {
        let _ = writeln!(
            out,
            "{:<32} {:<32} {:>12} {:>12}  MATCH",
            "SOURCE", "TARGET", "SOURCE_COUNT", "TARGET_COUNT"
        );
        for c in &job.collections {
            let count = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
            let verdict = match c.matches {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "-",
            };
            let _ = writeln!(
                out,
                "{:<32} {:<32} {:>12} {:>12}  {verdict}",
                format!("{}.{}", c.database, c.source),
                format!("{}.{}", c.target_database, c.target),
                count(c.source_count),
                count(c.target_count),
            );
            if let Some(check) = &c.content {
                let keys = if check.keys.is_empty() {
                    String::new()
                } else {
                    format!(" (keys {})", check.keys.join(", "))
                };
                let _ = writeln!(
                    out,
                    "  {} comparison{}: {} entities compared field by field, {} differ{keys}",
                    format!("{:?}", check.mode).to_lowercase(),
                    if check.done { "" } else { " (in progress)" },
                    check.compared,
                    check.differing,
                );
            }
        }
    }
    if let Some(e) = &job.error {
        let _ = writeln!(out, "error: {}", e.message);
    }
    if let Some(d) = &job.webhook {
        let last = d.attempts.last();
        let detail = match (d.state, last) {
            (crate::domain::DeliveryState::Delivered, Some(a)) => {
                format!("delivered (status {})", a.status.unwrap_or_default())
            }
            (crate::domain::DeliveryState::Pending, Some(a)) => format!(
                "pending: attempt {} failed ({}), next at {}",
                d.attempts.len(),
                a.error.clone().unwrap_or_default(),
                d.next_attempt_at
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default()
            ),
            (crate::domain::DeliveryState::Pending, None) => "pending".into(),
            (state, a) => format!(
                "{} ({})",
                format!("{state:?}").to_uppercase(),
                a.and_then(|a| a.error.clone()).unwrap_or_default()
            ),
        };
        let _ = writeln!(
            out,
            "webhook {} {}: {detail}, {} attempt(s)",
            d.event,
            d.id,
            d.attempts.len()
        );
    }
    out
}
