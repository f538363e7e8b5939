//! The Zilliz Cloud control plane, for clusters given by id: `GET {base}/v2/clusters/{id}`
//! with `Authorization: Bearer <API key>`, answered `{"code":0,"data":{…}}` or
//! `{"code":N,"message":…}`. The base is `https://api.cloud.zilliz.com` unless
//! `VECMIGRATE_ZILLIZ_API_URL` names another (the China region's
//! `https://api.cloud.zilliz.com.cn`, or the tests' stand-in).

use std::time::Duration;

use serde::Deserialize;

use super::{ClusterError, Role};
use crate::domain::{Secret, ZillizCluster};

/// The control plane's base URL unless [`API_URL_ENV`] says otherwise.
pub const DEFAULT_API_URL: &str = "https://api.cloud.zilliz.com";
/// The environment variable naming another base URL.
pub const API_URL_ENV: &str = "VECMIGRATE_ZILLIZ_API_URL";
/// The status of a cluster that can be migrated from or to.
pub const RUNNING: &str = "RUNNING";

/// How long one control-plane call may take.
const TIMEOUT: Duration = Duration::from_secs(20);

/// A client of the Zilliz Cloud control plane.
#[derive(Debug, Clone)]
pub struct ControlPlane {
    base: String,
    http: reqwest::Client,
}

/// The control plane's envelope.
#[derive(Deserialize)]
struct Answer {
    code: i64,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    data: Option<Described>,
}

/// The fields of `GET /v2/clusters/{id}` that a migration uses.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Described {
    #[serde(default)]
    cluster_id: String,
    #[serde(default)]
    connect_address: String,
    #[serde(default)]
    plan: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    cu_size: u32,
    #[serde(default)]
    region_id: String,
}

impl ControlPlane {
    /// A client of the control plane at `base` (`https://api.cloud.zilliz.com`).
    pub fn new(base: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            base: base.into().trim_end_matches('/').to_owned(),
            http,
        }
    }

    /// The client of the control plane the environment names ([`API_URL_ENV`]), or Zilliz
    /// Cloud's own.
    pub fn from_env() -> Self {
        let base = std::env::var(API_URL_ENV)
            .ok()
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_API_URL.to_owned());
        Self::new(base)
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Describes the `role` cluster `cluster_id` with `api_key`. An error answer, an unknown
    /// cluster or a cluster that is not `RUNNING` is a permanent error naming the side and the
    /// cluster; a control plane that cannot be reached, or answers 429 or 5xx, is an outage.
    pub async fn describe(
        &self,
        role: Role,
        cluster_id: &str,
        api_key: Option<&Secret>,
    ) -> Result<ZillizCluster, ClusterError> {
        let fail = |detail: String, transient: bool| ClusterError::ZillizCloud {
            role,
            cluster_id: cluster_id.to_owned(),
            detail,
            transient,
        };
        let Some(key) = api_key else {
            return Err(fail(
                format!("is given by id, which needs a Zilliz Cloud API key: give {role}.api_key or {role}.api_key_secret_arn (on the command line, --{role}-token)"),
                false,
            ));
        };
        let url = format!("{}/v2/clusters/{cluster_id}", self.base);
        let response = self
            .http
            .get(&url)
            .bearer_auth(key.expose())
            .header("accept", "application/json")
            .send()
            .await
            // reqwest's message names the URL, never the header.
            .map_err(|e| {
                fail(
                    format!(
                        "cannot be resolved: the control plane at {} cannot be reached: {e}",
                        self.base
                    ),
                    true,
                )
            })?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        let answer: Option<Answer> = serde_json::from_str(&body).ok();
        let transient = status.as_u16() == 429 || status.is_server_error();
        let Some(answer) = answer else {
            return Err(fail(
                format!("cannot be resolved: the control plane answered HTTP {status} without its JSON envelope"),
                transient,
            ));
        };
        if answer.code != 0 {
            let message = answer.message.unwrap_or_default();
            return Err(fail(
                format!(
                    "cannot be resolved: the control plane answered code {}: {} (check the cluster id, and that the API key may see it)",
                    answer.code,
                    crate::domain::cluster::printable(&message)
                ),
                transient,
            ));
        }
        let Some(d) = answer.data else {
            return Err(fail(
                "cannot be resolved: the control plane answered without data".into(),
                false,
            ));
        };
        if d.status != RUNNING {
            return Err(fail(
                format!(
                    "is {}, not RUNNING: resume it (or wait until it is created) in the Zilliz Cloud console, then start the job again",
                    crate::domain::cluster::printable(&d.status)
                ),
                false,
            ));
        }
        if d.connect_address.trim().is_empty() {
            return Err(fail(
                "has no public endpoint (connectAddress)".into(),
                false,
            ));
        }
        Ok(ZillizCluster {
            cluster_id: if d.cluster_id.is_empty() {
                cluster_id.to_owned()
            } else {
                d.cluster_id
            },
            endpoint: d.connect_address,
            plan: d.plan,
            status: d.status,
            cu_size: d.cu_size,
            region_id: d.region_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_key_is_permanent_and_an_unreachable_control_plane_is_an_outage() {
        // Port 9 (discard) on loopback: nothing listens there.
        let cp = ControlPlane::new("http://127.0.0.1:9/");
        assert_eq!(cp.base(), "http://127.0.0.1:9");
        let e = cp
            .describe(Role::Source, "in01-abc", None)
            .await
            .unwrap_err();
        assert!(!e.is_transient(), "{e}");
        assert!(e.to_string().contains("source.api_key"), "{e}");
        let key = Secret::new("k-secret");
        let e = cp
            .describe(Role::Target, "in01-abc", Some(&key))
            .await
            .unwrap_err();
        assert!(e.is_transient(), "{e}");
        assert!(
            e.to_string()
                .starts_with("the target cluster in01-abc cannot be resolved"),
            "{e}"
        );
        assert!(!e.to_string().contains("k-secret"), "{e}");
    }
}
