//! Import Operations (V2) over REST: `POST …/v2/vectordb/jobs/import/create`, the job's
//! progress, and the list of jobs, answered `{"code":0,"data":{…}}` or `{"code":N,"message":…}`.
//! Two services speak it:
//! - Zilliz Cloud's control plane, for a cluster given by id: `clusterId` in every body, files
//!   as S3 URLs (`objectUrls`) read with the credentials the job hands it, progress at
//!   `…/getProgress`, a paged list;
//! - Milvus 2.4+, on the cluster's own address (its proxy serves HTTP/1.1 beside gRPC on
//!   19530 unless `proxy.http.port` moves it): files as paths in the server's storage
//!   (`files`), progress at `…/describe`, the list of one collection's jobs.
//!
//! Neither list names files; a job's progress does (`details[].fileName`), so finding the import
//! a lost reply hid describes each of the collection's jobs (only after such a loss).

use std::time::Duration;

use serde::Deserialize;

use super::zilliz::{open_envelope, ControlPlane, Refusal};
use super::{ClusterError, Failure, ImportJob, ImportSource, ImportState, Role};
use crate::domain::Secret;
use crate::staging::ReadGrant;

/// How long one call to a Milvus server's REST port may take.
pub const MILVUS_TIMEOUT: Duration = Duration::from_secs(20);
/// The jobs one page of Zilliz Cloud's list asks for.
const CLOUD_PAGE: u64 = 100;

/// The three calls, whose paths differ between the two services.
#[derive(Clone, Copy)]
enum Verb {
    Create,
    Progress,
    List,
}

/// The answer of `…/import/create`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Created {
    job_id: String,
}

/// The answer of `…/import/getProgress` or `…/import/describe` (the fields a migration uses).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Described {
    #[serde(default)]
    job_id: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    imported_rows: u64,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    details: Vec<DescribedFile>,
}

/// One file of an import job.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribedFile {
    #[serde(default)]
    file_name: String,
}

/// The answer of `…/import/list` (one page of it on Zilliz Cloud).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Listed {
    #[serde(default)]
    count: u64,
    #[serde(default)]
    records: Vec<ListedJob>,
}

/// One import job of the list.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListedJob {
    #[serde(default)]
    job_id: String,
    #[serde(default)]
    collection_name: String,
}

/// Who serves the import API, and how it is called.
#[derive(Debug, Clone)]
enum Service {
    /// Zilliz Cloud's control plane, for `cluster_id`, called with `api_key`.
    Cloud {
        control_plane: ControlPlane,
        cluster_id: String,
        api_key: Option<Secret>,
    },
    /// A Milvus server's own REST port at `base` (`http[s]://host:port`), called with the
    /// cluster's token.
    Milvus {
        base: String,
        http: reqwest::Client,
        token: Option<Secret>,
    },
}

/// A target's import API over REST.
#[derive(Debug, Clone)]
pub struct RestImport {
    service: Service,
}

impl RestImport {
    /// Zilliz Cloud's import API for `cluster_id`, called on `control_plane` with `api_key`.
    pub fn cloud(control_plane: ControlPlane, cluster_id: &str, api_key: Option<Secret>) -> Self {
        Self {
            service: Service::Cloud {
                control_plane,
                cluster_id: cluster_id.to_owned(),
                api_key,
            },
        }
    }

    /// A Milvus server's import API at `base`, called through `http` with `token`.
    pub fn milvus(base: &str, http: reqwest::Client, token: Option<Secret>) -> Self {
        Self {
            service: Service::Milvus {
                base: base.trim_end_matches('/').to_owned(),
                http,
                token,
            },
        }
    }

    /// Where the service reads staged files from.
    pub fn source(&self) -> ImportSource {
        match self.service {
            Service::Cloud { .. } => ImportSource::ObjectStorage,
            Service::Milvus { .. } => ImportSource::ServerFiles,
        }
    }

    /// Whether the credentials may use the import API (one page of the job list).
    pub async fn probe(&self) -> Result<(), ClusterError> {
        let body = match self.service {
            Service::Cloud { .. } => serde_json::json!({"pageSize": 1, "currentPage": 1}),
            Service::Milvus { .. } => serde_json::json!({}),
        };
        self.call::<Listed>(Verb::List, "list its imports", body)
            .await
            .map(|_| ())
    }

    /// Asks once for `file` (a URL on Zilliz Cloud, read with `grant`; a path on Milvus) to be
    /// imported into a collection (or partition); returns the job's id.
    pub async fn create(
        &self,
        database: &str,
        collection: &str,
        partition: Option<&str>,
        file: &str,
        grant: Option<&ReadGrant>,
    ) -> Result<String, ClusterError> {
        let mut body = serde_json::json!({"dbName": database, "collectionName": collection});
        if let Some(p) = partition {
            body["partitionName"] = p.into();
        }
        match (&self.service, grant) {
            (Service::Cloud { cluster_id, .. }, None) => {
                return Err(cloud_failure(cluster_id, format!("cannot import {file}: Zilliz Cloud reads staged files from S3 with credentials, and none were made (stage in s3://…)"), false));
            }
            (Service::Cloud { .. }, Some(grant)) => {
                body["objectUrls"] = serde_json::json!([[file]]);
                body["accessKey"] = grant.access_key_id.clone().into();
                body["secretKey"] = grant.secret_access_key.expose().into();
                body["token"] = grant.session_token.expose().into();
            }
            (Service::Milvus { .. }, _) => body["files"] = serde_json::json!([[file]]),
        }
        let what = format!("import {file} into {database}.{collection}");
        let created: Created = self.call(Verb::Create, &what, body).await?;
        Ok(created.job_id)
    }

    /// Where the import job `id` stands.
    pub async fn progress(&self, id: &str) -> Result<ImportJob, ClusterError> {
        let d: Described = self
            .call(
                Verb::Progress,
                &format!("tell how import job {id} stands"),
                serde_json::json!({"jobId": id}),
            )
            .await?;
        let state = match d.state.as_str() {
            "Completed" => ImportState::Completed,
            "Failed" => ImportState::Failed,
            // Pending, (Pre)Importing, and whatever a newer server adds before an end.
            _ => ImportState::Running,
        };
        Ok(ImportJob {
            id: if d.job_id.is_empty() {
                id.to_owned()
            } else {
                d.job_id
            },
            state,
            rows: d.imported_rows,
            // Milvus names a task's files joined by commas.
            files: d
                .details
                .iter()
                .flat_map(|f| f.file_name.split(','))
                .filter(|f| !f.is_empty())
                .map(str::to_owned)
                .collect(),
            reason: d.reason,
        })
    }

    /// The import jobs into `collection` that read `file`.
    pub async fn imports_of(
        &self,
        database: &str,
        collection: &str,
        file: &str,
    ) -> Result<Vec<ImportJob>, ClusterError> {
        let mut found = Vec::new();
        let mut page = 1;
        loop {
            let (body, paged) = match self.service {
                Service::Cloud { .. } => (
                    serde_json::json!({"pageSize": CLOUD_PAGE, "currentPage": page}),
                    true,
                ),
                Service::Milvus { .. } => (
                    serde_json::json!({"dbName": database, "collectionName": collection}),
                    false,
                ),
            };
            let listed: Listed = self.call(Verb::List, "list its imports", body).await?;
            let last = !paged
                || listed.records.len() < CLOUD_PAGE as usize
                || page * CLOUD_PAGE >= listed.count;
            for r in listed
                .records
                .iter()
                .filter(|r| r.collection_name == collection)
            {
                let job = self.progress(&r.job_id).await?;
                if job.files.iter().any(|f| reads(file, f)) {
                    found.push(job);
                }
            }
            if last {
                return Ok(found);
            }
            page += 1;
        }
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        verb: Verb,
        what: &str,
        mut body: serde_json::Value,
    ) -> Result<T, ClusterError> {
        match &self.service {
            Service::Cloud {
                control_plane,
                cluster_id,
                api_key,
            } => {
                body["clusterId"] = cluster_id.clone().into();
                let path = match verb {
                    Verb::Create => "create",
                    Verb::Progress => "getProgress",
                    Verb::List => "list",
                };
                let post = control_plane
                    .http()
                    .post(control_plane.url(&format!("/v2/vectordb/jobs/import/{path}")))
                    .json(&body);
                control_plane
                    .send(Role::Target, cluster_id, api_key.as_ref(), what, post)
                    .await
            }
            Service::Milvus { base, http, token } => {
                let path = match verb {
                    Verb::Create => "create",
                    Verb::Progress => "describe",
                    Verb::List => "list",
                };
                let mut post = http
                    .post(format!("{base}/v2/vectordb/jobs/import/{path}"))
                    .header("accept", "application/json")
                    .json(&body);
                if let Some(token) = token {
                    post = post.bearer_auth(token.expose());
                }
                milvus_answer(base, what, post).await
            }
        }
    }
}

/// Sends a call to a Milvus server's REST port and opens the envelope.
async fn milvus_answer<T: serde::de::DeserializeOwned>(
    base: &str,
    what: &str,
    post: reqwest::RequestBuilder,
) -> Result<T, ClusterError> {
    let fail = |detail: String, failure: Failure| ClusterError::Call {
        role: Role::Target,
        operation: format!("{what} (REST import at {base})"),
        detail,
        failure,
    };
    // reqwest's message names the URL, never the header.
    let response = post
        .send()
        .await
        .map_err(|e| fail(format!("no answer: {e}"), Failure::Outage))?;
    open_envelope(response).await.map_err(|(refusal, status)| {
        let failure = if status.as_u16() == 429 {
            Failure::Throttled { rate: None }
        } else if status.is_server_error() {
            Failure::Outage
        } else {
            Failure::Permanent
        };
        match refusal {
            Refusal::NoEnvelope => fail(
                format!("HTTP {status} without Milvus's JSON envelope (a server before 2.4 has no REST import)"),
                failure,
            ),
            Refusal::Code(code, message) => fail(format!("code {code}: {message}"), failure),
            Refusal::NoData => fail("an answer without data".into(), Failure::Permanent),
        }
    })
}

fn cloud_failure(cluster_id: &str, detail: String, transient: bool) -> ClusterError {
    ClusterError::ZillizCloud {
        role: Role::Target,
        cluster_id: cluster_id.to_owned(),
        detail,
        transient,
    }
}

/// Whether the file an import names (a path, a URL, or an object's key) is `file`.
fn reads(file: &str, named: &str) -> bool {
    !named.is_empty()
        && (file == named || file.ends_with(&format!("/{}", named.trim_start_matches('/'))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_file_is_the_staged_one_by_path_url_or_key() {
        let url = "s3://bucket/staging/job/a.parquet";
        assert!(reads(url, url));
        assert!(reads(url, "staging/job/a.parquet"));
        assert!(reads("/data/stage/a.parquet", "/data/stage/a.parquet"));
        assert!(!reads(url, "staging/job/b.parquet"));
        assert!(!reads(url, "job/xa.parquet"));
        assert!(!reads(url, ""));
    }
}
