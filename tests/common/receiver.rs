//! The webhook receiver of the tests (`scripts/webhook_receiver.py`): it verifies every request
//! with the official Standard Webhooks library and records what it received.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// The receiver process; killed when dropped.
pub struct Receiver {
    child: Child,
    port: u16,
}

impl Receiver {
    /// Starts a receiver that verifies with `secret` (`whsec_…`).
    pub fn start(secret: &str) -> Self {
        let root = env!("CARGO_MANIFEST_DIR");
        let mut child = Command::new(format!("{root}/.venv/bin/python"))
            .arg(format!("{root}/scripts/webhook_receiver.py"))
            .args(["--secret", secret])
            .stdout(Stdio::piped())
            .spawn()
            .expect("the receiver starts (scripts/test.sh installs .venv)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        Self {
            child,
            port: line.trim().parse().expect("the receiver prints its port"),
        }
    }

    /// The address of `path` on the receiver.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Everything it received.
    pub async fn deliveries(&self) -> Vec<Value> {
        let text = reqwest::get(self.url("/deliveries"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
