//! The Zilliz Cloud control plane, for clusters given by id (`GET {base}/v2/clusters/{id}`)
//! and for a new target (`POST …/v2/clusters/createDedicated`, and `GET …/v2/clusters` to find
//! it again by name), with `Authorization: Bearer <API key>`, answered `{"code":0,"data":{…}}`
//! or `{"code":N,"message":…}`. The base is `https://api.cloud.zilliz.com` unless
//! `VECMIGRATE_ZILLIZ_API_URL` names another (the China region's
//! `https://api.cloud.zilliz.com.cn`, or the tests' stand-in).
//!
//! A target given by id imports staged files through it too ([`super::rest_import`]).

use std::time::Duration;

use serde::Deserialize;

use super::{ClusterError, Role};
use crate::domain::{NewCluster, Secret, ZillizCluster};

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

/// The envelope of the control plane's answers (and of Milvus's RESTful API v2).
#[derive(Deserialize)]
struct Answer<T> {
    code: i64,
    #[serde(default)]
    message: Option<String>,
    #[serde(default = "none")]
    data: Option<T>,
}

fn none<T>() -> Option<T> {
    None
}

/// Why an answer is not a success in the envelope.
pub(super) enum Refusal {
    /// Not the JSON envelope at all.
    NoEnvelope,
    /// A non-zero code, with the message made printable.
    Code(i64, String),
    /// Code 0 without `data`.
    NoData,
}

/// Opens an answer in the envelope: its `data`, or why not with the HTTP status.
pub(super) async fn open_envelope<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, (Refusal, reqwest::StatusCode)> {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let Ok(answer) = serde_json::from_str::<Answer<T>>(&body) else {
        return Err((Refusal::NoEnvelope, status));
    };
    if answer.code != 0 {
        let message = answer.message.unwrap_or_default();
        let printable = crate::domain::cluster::printable(&message);
        return Err((Refusal::Code(answer.code, printable), status));
    }
    answer.data.ok_or((Refusal::NoData, status))
}

/// The fields of a cluster (`GET /v2/clusters/{id}`, and each of `GET /v2/clusters`) that a
/// migration uses.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Described {
    #[serde(default)]
    cluster_id: String,
    #[serde(default)]
    cluster_name: String,
    #[serde(default)]
    project_id: String,
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

impl Described {
    fn into_cluster(self, cluster_id: &str) -> ZillizCluster {
        ZillizCluster {
            cluster_id: if self.cluster_id.is_empty() {
                cluster_id.to_owned()
            } else {
                self.cluster_id
            },
            endpoint: self.connect_address,
            plan: self.plan,
            status: self.status,
            cu_size: self.cu_size,
            region_id: self.region_id,
        }
    }
}

/// One page of `GET /v2/clusters`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Listed {
    #[serde(default)]
    count: u64,
    #[serde(default)]
    clusters: Vec<Described>,
}

/// The answer of `POST /v2/clusters/createDedicated`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreatedAnswer {
    cluster_id: String,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// A cluster the control plane was asked to create: its id, its admin user and the password
/// it generated (a secret, to be sealed or dropped; never logged).
#[derive(Debug)]
pub struct Created {
    /// The new cluster's id.
    pub cluster_id: String,
    /// Its admin user.
    pub username: Option<String>,
    /// Its generated password.
    pub password: Option<Secret>,
}

/// The clusters one page of a list asks for.
const LIST_PAGE: u64 = 100;

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
        let z = self.status(role, cluster_id, api_key).await?;
        let fail = |detail: String| failure(role, cluster_id, detail, false);
        if z.status != RUNNING {
            return Err(fail(format!(
                "is {}, not RUNNING: resume it (or wait until it is created) in the Zilliz Cloud console, then start the job again",
                crate::domain::cluster::printable(&z.status)
            )));
        }
        if z.endpoint.trim().is_empty() {
            return Err(fail("has no public endpoint (connectAddress)".into()));
        }
        Ok(z)
    }

    /// What the control plane says about the `role` cluster `cluster_id`, whatever its status
    /// (a cluster being created has no endpoint yet).
    pub async fn status(
        &self,
        role: Role,
        cluster_id: &str,
        api_key: Option<&Secret>,
    ) -> Result<ZillizCluster, ClusterError> {
        let path = format!("/v2/clusters/{cluster_id}");
        let d: Described = self
            .send(
                role,
                cluster_id,
                api_key,
                "be resolved",
                self.http.get(self.url(&path)),
            )
            .await?;
        Ok(d.into_cluster(cluster_id))
    }

    /// Creates the Dedicated cluster `n` (Create Dedicated Cluster (V2)). Not retried here:
    /// a create whose reply is lost may have landed, and only [`Self::find_by_name`] can tell.
    pub async fn create_dedicated(
        &self,
        n: &NewCluster,
        api_key: Option<&Secret>,
    ) -> Result<Created, ClusterError> {
        let body = serde_json::json!({
            "clusterName": n.name,
            "projectId": n.project_id,
            "regionId": n.region_id,
            "plan": n.plan,
            "cuType": n.cu_type,
            "cuSize": n.cu_size,
        });
        let post = self
            .http
            .post(self.url("/v2/clusters/createDedicated"))
            .json(&body);
        let label = format!("`{}`", n.name);
        let a: CreatedAnswer = self
            .send(Role::Target, &label, api_key, "be created", post)
            .await?;
        Ok(Created {
            cluster_id: a.cluster_id,
            username: a.username,
            password: a.password.map(Secret::new),
        })
    }

    /// The id and status of the cluster named `n.name` in `n.project_id`, if the API key can
    /// see one (List Clusters (V2), page by page).
    pub async fn find_by_name(
        &self,
        n: &NewCluster,
        api_key: Option<&Secret>,
    ) -> Result<Option<ZillizCluster>, ClusterError> {
        let label = format!("`{}`", n.name);
        let mut page = 1;
        loop {
            let get = self.http.get(self.url("/v2/clusters")).query(&[
                ("projectId", n.project_id.clone()),
                ("pageSize", LIST_PAGE.to_string()),
                ("currentPage", page.to_string()),
            ]);
            let listed: Listed = self
                .send(Role::Target, &label, api_key, "be looked up", get)
                .await?;
            let seen = (page - 1) * LIST_PAGE + listed.clusters.len() as u64;
            let last = listed.clusters.len() < LIST_PAGE as usize || seen >= listed.count;
            if let Some(d) = listed.clusters.into_iter().find(|d| {
                d.cluster_name == n.name
                    && (d.project_id.is_empty() || d.project_id == n.project_id)
            }) {
                let id = d.cluster_id.clone();
                return Ok(Some(d.into_cluster(&id)));
            }
            if last {
                return Ok(None);
            }
            page += 1;
        }
    }

    /// The HTTP client calls go through.
    pub(super) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The address of `path` on the control plane.
    pub(super) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends `request` with `api_key` and opens the envelope. `what` completes "the {role}
    /// cluster {name} cannot …" in errors.
    pub(super) async fn send<T: serde::de::DeserializeOwned>(
        &self,
        role: Role,
        name: &str,
        api_key: Option<&Secret>,
        what: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ClusterError> {
        let fail = |detail: String, transient: bool| failure(role, name, detail, transient);
        let Some(key) = api_key else {
            return Err(fail(
                format!("needs a Zilliz Cloud API key (a cluster given by id or created by the job): give {role}.api_key or {role}.api_key_secret_arn (on the command line, --{role}-token)"),
                false,
            ));
        };
        let response = request
            .bearer_auth(key.expose())
            .header("accept", "application/json")
            .send()
            .await
            // reqwest's message names the URL, never the header.
            .map_err(|e| {
                fail(
                    format!(
                        "cannot {what}: the control plane at {} cannot be reached: {e}",
                        self.base
                    ),
                    true,
                )
            })?;
        let transient =
            |status: reqwest::StatusCode| status.as_u16() == 429 || status.is_server_error();
        open_envelope(response).await.map_err(|(refusal, status)| match refusal {
            Refusal::NoEnvelope => fail(
                format!("cannot {what}: the control plane answered HTTP {status} without its JSON envelope"),
                transient(status),
            ),
            Refusal::Code(code, message) => fail(
                format!(
                    "cannot {what}: the control plane answered code {code}: {message} (check the cluster id or the new cluster's fields, and that the API key may see the project)"
                ),
                transient(status),
            ),
            Refusal::NoData => fail(
                format!("cannot {what}: the control plane answered without data"),
                false,
            ),
        })
    }
}

fn failure(role: Role, name: &str, detail: String, transient: bool) -> ClusterError {
    ClusterError::ZillizCloud {
        role,
        cluster_id: name.to_owned(),
        detail,
        transient,
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
