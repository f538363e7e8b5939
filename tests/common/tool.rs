//! A test tool: a Python script of `scripts/`, run in the test venv, that prints its port on
//! its first line of output (the webhook receiver, the stand-in control plane).

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The tool's process; killed when dropped.
pub struct Tool {
    child: Child,
    /// The loopback port it listens on.
    pub port: u16,
}

impl Tool {
    /// Starts `scripts/{script}` with `args` and reads its port.
    pub fn start<S: AsRef<OsStr>>(script: &str, args: &[S]) -> Self {
        let root = env!("CARGO_MANIFEST_DIR");
        let mut child = Command::new(format!("{root}/.venv/bin/python"))
            .arg(format!("{root}/scripts/{script}"))
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{script} starts (scripts/test.sh installs .venv): {e}"));
        let line = first_line(&mut child);
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{script} prints its port, not `{line}`"));
        Self { child, port }
    }

    /// The address of `path` on the tool.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// What `GET path` answers, as JSON.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let text = reqwest::get(self.url(path))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

/// The first line a child started with a piped stdout prints (where it listens).
pub fn first_line(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line
}

impl Drop for Tool {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
