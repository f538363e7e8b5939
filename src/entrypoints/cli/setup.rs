//! What a command works with: the job store its flags name, and an engine on it (with the
//! secrets given on the command line, and in-process workers for `run` and `resume`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::exit::{invalid, Failure, EXIT_ERROR};
use super::{Cli, RunSettings};
use crate::credentials::{Credentials, TokenResolver};
use crate::domain::Secret;
use crate::engine::{Engine, EngineConfig};
use crate::entrypoints::local::{LocalRunner, LocalSettings};
use crate::milvus::grpc::MilvusConnector;
use crate::queue::inprocess::InProcessQueue;
use crate::store::dynamodb::{DynamoStore, DEFAULT_RETENTION_DAYS};
use crate::store::sqlite::SqliteStore;
use crate::store::JobStore;
use crate::webhook::sender::HttpNotifier;

/// Whether a command may create the embedded store (`run`) or only reads one that exists.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Opening {
    /// `run`: made when missing.
    Create,
    /// Every other command: it must exist.
    Existing,
}

pub(super) async fn open_store(cli: &Cli, opening: Opening) -> Result<Arc<dyn JobStore>, Failure> {
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

/// The global flags that name this command's store, for the commands a page shows.
pub(super) fn store_flags(cli: &Cli) -> String {
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
pub(super) fn engine_config(max_run: Option<Duration>) -> Result<EngineConfig, Failure> {
    let mut config = EngineConfig::from_env().map_err(invalid)?;
    if let Some(max_run) = max_run {
        config.lease_ttl = config.lease_ttl.max(max_run * 3);
    }
    Ok(config)
}

/// The one place a command's engine is made: on `store` and `queue`, with `credentials`
/// (the secrets given on this command line) for the clusters and the webhook.
pub(super) fn engine_on(
    store: Arc<dyn JobStore>,
    queue: InProcessQueue,
    credentials: Arc<dyn Credentials>,
    config: EngineConfig,
) -> Engine {
    let notifier = HttpNotifier::local(credentials.clone(), config.webhook_timeout);
    Engine::new(
        store,
        Arc::new(queue),
        Arc::new(MilvusConnector::new(credentials)),
        notifier,
        config,
    )
}

/// An engine for commands that only read or cancel (no secrets, no workers).
pub(super) fn bare_engine(store: Arc<dyn JobStore>) -> Result<Engine, Failure> {
    let credentials: Arc<dyn Credentials> = Arc::new(TokenResolver::new(None, None));
    Ok(engine_on(
        store,
        InProcessQueue::new(),
        credentials,
        engine_config(None)?,
    ))
}

/// The engine and its local runner; `credentials` has the secrets given on this command line
/// (the client-key flags are added here).
pub(super) fn local(
    store: Arc<dyn JobStore>,
    credentials: TokenResolver,
    settings: &RunSettings,
    max_workers: u32,
) -> Result<(Arc<Engine>, LocalRunner), Failure> {
    let queue = InProcessQueue::new();
    let workers = settings.workers.unwrap_or(max_workers).max(1) as usize;
    let config = engine_config(settings.max_run)?.for_workers(workers);
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
    let engine = engine_on(store, queue.clone(), credentials, config);
    let engine = Arc::new(with_test_faults(engine)?);
    let local = LocalSettings {
        workers,
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
    match crate::env::text("VECMIGRATE_TEST_FAULTS") {
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
