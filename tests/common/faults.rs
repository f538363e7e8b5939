//! The fault suite's tools: the fault-injecting proxies in front of the servers
//! (`scripts/grpc_proxy.py`, a test tool), server restarts (`scripts/restart_server.sh`), what
//! a migration lost or wrote twice, and the suite's table.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{count, read_rows, var, Seed, Server, Servers};

/// One fault-injecting proxy: where it listens and where it is steered.
#[derive(Debug, Clone)]
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`, to give a job as a cluster URI.
    pub uri: String,
    control: String,
}

impl FaultProxy {
    /// The proxy in front of the target.
    pub fn target() -> Self {
        Self {
            uri: var("VECMIGRATE_TEST_FAULT_TARGET_URI"),
            control: var("VECMIGRATE_TEST_FAULT_TARGET_CONTROL"),
        }
    }

    /// The proxy in front of the source.
    pub fn source() -> Self {
        Self {
            uri: var("VECMIGRATE_TEST_FAULT_SOURCE_URI"),
            control: var("VECMIGRATE_TEST_FAULT_SOURCE_CONTROL"),
        }
    }

    /// Replaces the faults in force (see the proxy's documentation); `{}` for none.
    pub async fn set(&self, faults: Value) {
        let answer = reqwest::Client::new()
            .post(format!("{}/faults", self.control))
            .body(faults.to_string())
            .send()
            .await
            .expect("the fault proxy answers");
        assert!(answer.status().is_success());
    }

    /// What the proxy saw and did since the faults were set.
    pub async fn stats(&self) -> Value {
        reqwest::get(format!("{}/stats", self.control))
            .await
            .expect("the fault proxy answers")
            .json()
            .await
            .expect("JSON stats")
    }

    /// The proxy as a server of the harness (the token is the real server's).
    pub fn server(&self, behind: &Server) -> Server {
        Server {
            uri: self.uri.clone(),
            token: behind.token.clone(),
        }
    }
}

/// Kills a test server with SIGKILL, and starts it again on its data and port `down` later;
/// returns at once (the restart runs beside the test). `which` is `SOURCE` or `TARGET`.
pub fn restart_later(which: &str, down: Duration) -> std::process::Child {
    let dir = var(&format!("VECMIGRATE_TEST_{which}_DIR"));
    std::process::Command::new(format!(
        "{}/scripts/restart_server.sh",
        env!("CARGO_MANIFEST_DIR")
    ))
    .arg(dir)
    .arg(down.as_secs().to_string())
    .spawn()
    .expect("the restart script runs")
}

/// What a migration of `seed` into `target_db.target` lost and wrote twice: entities it
/// checkpointed (`checkpointed`, the sum of its tasks' counts) that the target lacks, and
/// entities beyond one per key (only a server that keeps two entities with one key, as Milvus
/// 2.3.5 does, can show them). A job that stopped early loses nothing it never copied.
pub async fn lost_and_duplicated(
    servers: &Servers,
    seed: &Seed,
    target_db: &str,
    target: &str,
    checkpointed: u64,
) -> (u64, u64) {
    let source = read_rows(&servers.source, "default", &seed.name, seed).await;
    let copied = read_rows(&servers.target, target_db, target, seed).await;
    let present = source.keys().filter(|k| copied.contains_key(*k)).count() as u64;
    let entities = count(&servers.target, target_db, target).await;
    (
        checkpointed.saturating_sub(present),
        entities.saturating_sub(copied.len() as u64),
    )
}

/// What a job's tasks checkpointed, in entities.
pub async fn checkpointed(store: &dyn vecmigrate::store::JobStore, job_id: &str) -> u64 {
    store
        .list_tasks(job_id)
        .await
        .expect("the job's tasks")
        .iter()
        .map(|t| t.copied)
        .sum()
}

/// One row of the fault suite's table (printed by `scripts/test.sh` at the end).
pub struct FaultRow<'a> {
    pub fault: &'a str,
    pub path: &'a str,
    pub lost: u64,
    pub duplicated: u64,
    pub outcome: String,
    pub took: Duration,
}

impl FaultRow<'_> {
    /// Appends the row to the table of this run.
    pub fn record(&self, servers: &Servers) {
        let Ok(path) = std::env::var("VECMIGRATE_TEST_FAULT_TABLE") else {
            return;
        };
        use std::io::Write;
        let line = format!(
            "{}\t{}\t{}\t1\t{}\t{}\t{}\t{:.1} s\n",
            self.fault,
            servers.backend,
            self.path,
            self.lost,
            self.duplicated,
            self.outcome,
            self.took.as_secs_f64()
        );
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
        {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// A stopwatch for a row's time.
pub fn started() -> Instant {
    Instant::now()
}
