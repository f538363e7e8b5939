//! The command line's words: subcommands, flags and their help, as clap reads them.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::domain::{OnCountMismatch, VerifyMode, WriteVia};

/// Offline migrations of Milvus / Zilliz Cloud collections between clusters.
#[derive(Debug, Parser)]
#[command(
    name = "vecmigrate",
    version,
    about,
    after_help = "Exit codes: 0 the job is SUCCESSFUL (plan: no problem), 1 FAILED (plan: problems), 2 invalid request or command line, 3 CANCELLED, 4 anything else (job not found, store unavailable), 5 interrupted (Ctrl-C, SIGTERM): the job is resumable."
)]
pub struct Cli {
    /// The embedded job store (SQLite file).
    #[arg(
        long,
        global = true,
        env = "VECMIGRATE_STORE",
        default_value_os_t = default_store(),
        help_heading = STORE
    )]
    pub store: PathBuf,
    /// A deployment's DynamoDB job table instead of the embedded store, reached with the
    /// environment's AWS credentials and region (the table `template.yaml` creates).
    #[arg(
        long,
        global = true,
        env = "VECMIGRATE_DYNAMODB_TABLE",
        conflicts_with = "store",
        help_heading = STORE
    )]
    pub dynamodb_table: Option<String>,
    /// Print the report as JSON instead of a table.
    #[arg(long, global = true, help_heading = STORE)]
    pub json: bool,
    /// How log lines are written to stderr: `text` (for people, warnings only unless
    /// `VECMIGRATE_LOG` says) or `json` (one object per line with the job, step, phase, task
    /// and collection, from `info` up, as the Lambda function writes them).
    #[arg(
        long,
        global = true,
        env = "VECMIGRATE_LOG_FORMAT",
        default_value = "text",
        value_parser = parse_log_format,
        help_heading = STORE
    )]
    pub log_format: crate::logging::LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The help's headings, in the order they are shown.
const CLUSTERS: &str = "Source and target";
const WHAT: &str = "What to migrate";
const HOW: &str = "How the job runs";
const WEBHOOK: &str = "Outcome webhook";
const TLS: &str = "TLS (servers with their own CA, two-way TLS)";
const STORE: &str = "Job store and output";

/// The embedded store's default place: `$XDG_DATA_HOME/vecmigrate/jobs.sqlite3`, or under
/// `~/.local/share`.
pub fn default_store() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("vecmigrate").join("jobs.sqlite3")
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a migration and run it to the end.
    Run(Box<RunArgs>),
    /// Check a migration without running it (the same flags and --spec as `run`): preflight,
    /// the plan-tier rule, the target's capacity and the estimated duration against
    /// --not-after. Writes nothing. Exit 0 when the plan has no problem, 1 when it has.
    Plan(Box<RunArgs>),
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
        /// At most this many (1 to 1000).
        #[arg(long, default_value_t = 20, value_parser = parse_limit)]
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
    /// Serve the jobs page over this store: every job's status, progress, verification and
    /// log, with a Cancel button. It has no login: it listens on loopback unless told otherwise.
    Serve {
        /// The address to listen on, `HOST:PORT` (port 0: any free port; the first line
        /// printed names it).
        #[arg(long, default_value = "127.0.0.1:8080", value_parser = parse_listen)]
        listen: std::net::SocketAddr,
    },
}

/// Settings that apply to running a job (also on resume).
#[derive(Debug, Clone, Args)]
pub struct RunSettings {
    /// Source token (`user:password` or API key).
    #[arg(long, env = "VECMIGRATE_SOURCE_TOKEN", hide_env_values = true, help_heading = CLUSTERS)]
    pub source_token: Option<String>,
    /// Target token.
    #[arg(long, env = "VECMIGRATE_TARGET_TOKEN", hide_env_values = true, help_heading = CLUSTERS)]
    pub target_token: Option<String>,
    /// Parallel workers (overrides options.max_workers; default 4).
    #[arg(long, help_heading = HOW)]
    pub workers: Option<u32>,
    /// Simulated invocation budget, e.g. `2s` (at least 1s): a worker stops after it and a
    /// fresh one continues, as Lambda invocations do.
    #[arg(long, value_parser = parse_max_run, help_heading = HOW)]
    pub max_run: Option<Duration>,
    /// The webhook's signing secret, `whsec_<base64>` (never stored; pass it again on resume).
    #[arg(long, env = "VECMIGRATE_WEBHOOK_SECRET", hide_env_values = true, help_heading = WEBHOOK)]
    pub webhook_secret: Option<String>,
    /// The source's client key for two-way TLS, a PEM file (with --source-client-cert).
    #[arg(long, value_name = "FILE", help_heading = TLS)]
    pub source_client_key: Option<PathBuf>,
    /// The target's client key for two-way TLS, a PEM file (with --target-client-cert).
    #[arg(long, value_name = "FILE", help_heading = TLS)]
    pub target_client_key: Option<PathBuf>,
}

/// `run`: a spec file, or flags for the common case.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The request as a JSON file (see README); `-` reads standard input. The flags below
    /// complete or override it.
    #[arg(long, help_heading = CLUSTERS, conflicts_with_all = ["source_uri", "target_uri", "source_cluster_id", "target_cluster_id", "collection", "database"])]
    pub spec: Option<PathBuf>,
    /// Source cluster URI, e.g. http://127.0.0.1:19530.
    #[arg(long, help_heading = CLUSTERS)]
    pub source_uri: Option<String>,
    /// The source as a Zilliz Cloud cluster id (in01-…) instead of --source-uri, resolved
    /// through the control plane with the API key given as --source-token.
    #[arg(long, conflicts_with = "source_uri", help_heading = CLUSTERS)]
    pub source_cluster_id: Option<String>,
    /// Target cluster URI.
    #[arg(long, help_heading = CLUSTERS)]
    pub target_uri: Option<String>,
    /// The target as a Zilliz Cloud cluster id, its API key given as --target-token.
    #[arg(long, conflicts_with = "target_uri", help_heading = CLUSTERS)]
    pub target_cluster_id: Option<String>,
    /// Source database (default `default`).
    #[arg(long, help_heading = WHAT)]
    pub database: Option<String>,
    /// Target database (default: the source's name).
    #[arg(long, help_heading = WHAT)]
    pub target_database: Option<String>,
    /// A collection to migrate, `NAME` or `NAME:TARGET`; repeat it; none means all.
    #[arg(long, help_heading = WHAT)]
    pub collection: Vec<String>,
    /// Tokens and worker settings.
    #[command(flatten)]
    pub run: RunSettings,
    /// Entities per page at most [16384]; pages are also kept under 16 MiB.
    #[arg(long, help_heading = HOW)]
    pub batch_size: Option<u32>,
    /// What verification compares besides counts: `count`, `sample` or `full`.
    #[arg(long, value_parser = parse_verify, help_heading = HOW)]
    pub verify: Option<VerifyMode>,
    /// Keys compared per collection by `--verify sample` (default 100).
    #[arg(long, help_heading = HOW)]
    pub verify_sample_size: Option<u32>,
    /// What a count mismatch does: `repair` (the default: copy again only the key ranges
    /// that differ), `fail`, or `remigrate` (drop the target collection and copy it again).
    #[arg(long, value_parser = parse_on_mismatch, help_heading = HOW)]
    pub on_count_mismatch: Option<OnCountMismatch>,
    /// How many times one key range may be copied again (default 3, at most 10).
    #[arg(long, help_heading = HOW)]
    pub max_repairs: Option<u32>,
    /// Count only whole collections: leave out the count of each key range on both sides
    /// at each task's end and in the finish step (ranges are then counted only in a
    /// collection whose counts differ, to find what to repair).
    #[arg(long, help_heading = HOW)]
    pub no_range_counts: bool,
    /// A ceiling on the job's writes to the target, in MB/s (from 0.1); the pace adapts to the
    /// target's throttling below it.
    #[arg(long, value_name = "MB_PER_S", help_heading = HOW)]
    pub max_write_mb_per_s: Option<f64>,
    /// How pages reach the target: `insert` (the default), `import` (staged as Parquet files
    /// in `--staging` that the target imports, past its write cap; a collection that cannot be
    /// imported fails preflight), or `auto` (import where it can, insert elsewhere).
    #[arg(long, value_parser = parse_write_mode, help_heading = HOW)]
    pub write_mode: Option<WriteVia>,
    /// Where `--write-mode import` stages files: `s3://bucket/prefix` for a Zilliz Cloud target
    /// given by id, or an absolute directory a self-hosted target's server reads by the same
    /// path (default: `VECMIGRATE_STAGING`).
    #[arg(long, value_name = "DIR|S3_URL", help_heading = HOW)]
    pub staging: Option<String>,
    /// The largest staged file, in MB (default 1000, at most 9500).
    #[arg(long, value_name = "MB", help_heading = HOW)]
    pub import_file_mb: Option<u32>,
    /// How long an outage of either cluster is waited out before the job fails, e.g. `15m`
    /// (the default; from 10s to 24h).
    #[arg(long, value_parser = parse_outage, help_heading = HOW)]
    pub max_outage: Option<Duration>,
    /// The end of the maintenance window (RFC 3339, e.g. 2026-12-02T06:00:00Z): the job
    /// stops there; `plan` says whether it is expected to end before.
    #[arg(long, value_parser = parse_time, help_heading = HOW)]
    pub not_after: Option<chrono::DateTime<chrono::Utc>>,
    /// Load the target collections at the end.
    #[arg(long, help_heading = HOW)]
    pub load_after: bool,
    /// Wait until every index of the targets is built before verifying (implied by
    /// `--load-after`).
    #[arg(long, help_heading = HOW)]
    pub wait_for_index: bool,
    /// Idempotency key: the same key returns the job it started first.
    #[arg(long, help_heading = HOW)]
    pub idempotency_key: Option<String>,
    /// Send the signed outcome webhook here (https, or http to a loopback address).
    #[arg(long, help_heading = WEBHOOK)]
    pub webhook_url: Option<String>,
    /// Also send `migration.progress` events, at most every this many seconds.
    #[arg(long, requires = "webhook_url", help_heading = WEBHOOK)]
    pub webhook_progress_every: Option<u64>,
    /// The CA certificate (PEM file) that signed the source server's certificate, for a
    /// server with its own CA.
    #[arg(long, value_name = "FILE", help_heading = TLS)]
    pub source_ca_cert: Option<PathBuf>,
    /// The source's client certificate for two-way TLS, a PEM file.
    #[arg(long, value_name = "FILE", help_heading = TLS)]
    pub source_client_cert: Option<PathBuf>,
    /// The CA certificate (PEM file) of the target server.
    #[arg(long, value_name = "FILE", help_heading = TLS)]
    pub target_ca_cert: Option<PathBuf>,
    /// The target's client certificate for two-way TLS, a PEM file.
    #[arg(long, value_name = "FILE", help_heading = TLS)]
    pub target_client_cert: Option<PathBuf>,
}

fn parse_limit(s: &str) -> Result<usize, String> {
    s.parse::<usize>()
        .ok()
        .filter(|n| (1..=1000).contains(n))
        .ok_or_else(|| format!("`{s}` is not a number from 1 to 1000"))
}

fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    crate::domain::request::parse_time(s)
}

fn parse_max_run(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("`{s}` is not a duration: {e}"))?;
    if d < Duration::from_secs(1) {
        return Err(format!(
            "`{s}` is too short: an invocation must fit at least one page (use 1s or more)"
        ));
    }
    Ok(d)
}

fn parse_write_mode(s: &str) -> Result<WriteVia, String> {
    WriteVia::parse(s)
        .ok_or_else(|| format!("`{s}` is not a write mode: use insert, import or auto"))
}

fn parse_verify(s: &str) -> Result<VerifyMode, String> {
    VerifyMode::parse(s)
        .ok_or_else(|| format!("`{s}` is not a verify mode: use count, sample or full"))
}

fn parse_log_format(s: &str) -> Result<crate::logging::LogFormat, String> {
    crate::logging::LogFormat::parse(s)
        .ok_or_else(|| format!("`{s}` is not a log format: text or json"))
}

fn parse_on_mismatch(s: &str) -> Result<OnCountMismatch, String> {
    OnCountMismatch::parse(s).ok_or_else(|| {
        format!(
            "`{s}` is not what a count mismatch may do: use {}",
            OnCountMismatch::NAMES.join(" or ")
        )
    })
}

fn parse_outage(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|_| format!("`{s}` is not a duration such as 15m or 90s"))
}

/// `HOST:PORT`, the host a name (`localhost`) or an address.
fn parse_listen(s: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs;
    if let Ok(address) = s.parse() {
        return Ok(address);
    }
    let found = s
        .to_socket_addrs()
        .map_err(|_| format!("`{s}` is not an address such as 127.0.0.1:8080 or localhost:0"))?
        .collect::<Vec<_>>();
    // A name with IPv4 and IPv6 addresses (localhost): the IPv4 one, as browsers try it too.
    found
        .iter()
        .find(|a| a.is_ipv4())
        .or(found.first())
        .copied()
        .ok_or_else(|| format!("`{s}` names no address"))
}
