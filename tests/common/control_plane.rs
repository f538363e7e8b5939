//! The stand-in for Zilliz Cloud's control plane (`scripts/zilliz_control_plane.py`, a test
//! tool answering Describe, List and Create Dedicated Cluster in their documented shapes): started per test with the
//! clusters and API keys the test names.

use serde_json::Value;

use super::tool::Tool;

/// The stand-in process; killed when dropped.
pub struct StandIn {
    tool: Tool,
    _config: tempfile::NamedTempFile,
}

impl StandIn {
    /// Starts a stand-in with `config` (`{"keys": {KEY: [ids]}, "clusters": {id: {...}}}`).
    pub fn start(config: &Value) -> Self {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), config.to_string()).unwrap();
        let args = [std::ffi::OsStr::new("--config"), file.path().as_os_str()];
        Self {
            tool: Tool::start("zilliz_control_plane.py", &args),
            _config: file,
        }
    }

    /// Its base URL (what `VECMIGRATE_ZILLIZ_API_URL` names).
    pub fn url(&self) -> String {
        self.tool.url("")
    }

    /// The clusters it created (`clusterId`, the `body` it was asked with, and the generated
    /// `password`, for tests to look for where it must not be).
    pub async fn creations(&self) -> Vec<Value> {
        serde_json::from_value(self.tool.get_json("/creations").await).unwrap()
    }

    /// What each import create was given: `accessKey` (an id, not a secret), whether a
    /// `secretKey` and a `token` came, the `objectUrls`, and the fetched object's `bytes`.
    pub async fn imports(&self) -> Vec<Value> {
        serde_json::from_value(self.tool.get_json("/imports").await).unwrap()
    }

    /// The requests it answered (paths, and whether each carried a bearer key).
    pub async fn requests(&self) -> Vec<Value> {
        serde_json::from_value(self.tool.get_json("/requests").await).unwrap()
    }
}
