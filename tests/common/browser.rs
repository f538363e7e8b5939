//! Headless Chromium for the jobs page's tests, through `scripts/browser.py` (a test tool that
//! drives Debian's `chromium` over the DevTools protocol), and the `vecmigrate serve` process
//! it looks at.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

use super::tool::{first_line, Tool};

/// One headless Chromium with one tab; stopped when dropped.
pub struct Browser {
    tool: Tool,
    http: reqwest::Client,
}

impl Browser {
    /// Starts Chromium (scripts/test.sh installs Debian's package).
    pub fn start() -> Self {
        Self {
            tool: Tool::start::<&str>("browser.py", &[]),
            http: reqwest::Client::new(),
        }
    }

    /// Loads `url` in a window `width` × `height` CSS pixels, and waits for it.
    pub async fn open(&self, url: &str, width: u32, height: u32) {
        self.post(
            "/open",
            json!({ "url": url, "width": width, "height": height }),
        )
        .await;
    }

    /// The value of a JavaScript expression on the page.
    pub async fn eval(&self, js: &str) -> Value {
        self.post("/eval", json!({ "js": js })).await["value"].clone()
    }

    /// The text the page shows in the first element matching `selector` ("" if none).
    pub async fn text(&self, selector: &str) -> String {
        let js = format!(
            "(document.querySelector({}) || {{innerText: ''}}).innerText",
            json!(selector)
        );
        self.eval(&js).await.as_str().unwrap_or_default().to_owned()
    }

    /// Presses the mouse on the element matching `selector`, and waits for the page it loads.
    pub async fn click(&self, selector: &str) {
        self.post("/click", json!({ "selector": selector })).await;
    }

    /// Saves the whole page as a PNG.
    pub async fn screenshot(&self, path: &Path) {
        self.post("/screenshot", json!({ "path": path })).await;
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let answer: Value = self
            .http
            .post(self.tool.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(answer.get("error").is_none(), "browser {path}: {answer}");
        answer
    }
}

/// `vecmigrate --store PATH serve` on a free loopback port; stopped when dropped.
pub struct JobsPage {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl JobsPage {
    /// Serves the jobs page over the SQLite store at `store`.
    pub fn start(store: &Path) -> Self {
        Self::over([OsStr::new("--store"), store.as_os_str()])
    }

    /// Serves the jobs page over a deployment's DynamoDB table (with the environment's AWS
    /// endpoint and credentials).
    pub fn over_table(table: &str) -> Self {
        Self::over(["--dynamodb-table", table].map(OsStr::new))
    }

    /// Serves the jobs page over the store that `store_flags` name.
    fn over<'a>(store_flags: impl IntoIterator<Item = &'a OsStr>) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vecmigrate"))
            .args(store_flags)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env_remove("VECMIGRATE_STORE")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let line = first_line(&mut child);
        let base = line
            .trim()
            .strip_prefix("jobs page: ")
            .unwrap_or_else(|| panic!("serve names its address first, not `{line}`"))
            .trim_end_matches('/')
            .to_owned();
        Self { child, base }
    }

    /// The address of `path` on it.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for JobsPage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
