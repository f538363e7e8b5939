//! The stand-in for Zilliz Cloud's control plane (`scripts/zilliz_control_plane.py`, a test
//! tool answering Describe Cluster in its documented shapes): started per test with the
//! clusters and API keys the test names.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// The stand-in process; killed when dropped.
pub struct StandIn {
    child: Child,
    port: u16,
    _config: tempfile::NamedTempFile,
}

impl StandIn {
    /// Starts a stand-in with `config` (`{"keys": {KEY: [ids]}, "clusters": {id: {...}}}`).
    pub fn start(config: &Value) -> Self {
        let root = env!("CARGO_MANIFEST_DIR");
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), config.to_string()).unwrap();
        let mut child = Command::new(format!("{root}/.venv/bin/python"))
            .arg(format!("{root}/scripts/zilliz_control_plane.py"))
            .arg("--config")
            .arg(file.path())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the stand-in starts (scripts/test.sh installs .venv)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        Self {
            child,
            port: line.trim().parse().expect("the stand-in prints its port"),
            _config: file,
        }
    }

    /// Its base URL (what `VECMIGRATE_ZILLIZ_API_URL` names).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The requests it answered (paths, and whether each carried a bearer key).
    pub async fn requests(&self) -> Vec<Value> {
        let text = reqwest::get(format!("{}/requests", self.url()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
