//! Zilliz-compatible endpoints, so that a script written against Zilliz Cloud's migration API
//! works against vecmigrate by changing its base URL:
//!
//! - `POST /v2/migrations/toExisting` with Zilliz's body (`source.clusterId`,
//!   `destination.clusterId`, `dbCollections: [{dbName, destDbName, collections:
//!   [{collectionName}]}]`), answered `{"code":0,"data":{"jobId":…}}`;
//! - `POST /v2/migrations/toNewDedicated` with `destination: {clusterName, projectId, regionId,
//!   plan, cuType, cuSize}` instead: the same job into `target.new_cluster`, answered with the
//!   job id and the cluster's id (created within the call, see `Engine::create_target`);
//! - `GET /v2/jobs/{jobId}`, answered `{"code":0,"data":{"jobId","type":"MIGRATION","status",
//!   "progress","startTime","endTime","reason"}}` with Zilliz's status names.
//!
//! Errors are `{"code":N,"message":…}`, N the HTTP status. A caller is trusted as on every
//! route (IAM, or an inbound signature), or, where the deployment allows it
//! (`VECMIGRATE_ZILLIZ_BEARER_AUTH`), by its `Authorization: Bearer` API key alone: the key
//! must be able to describe every cluster the call names (for a job, its source). The API key
//! for the clusters is the bearer's, else the deployment's (`VECMIGRATE_ZILLIZ_API_KEY_SECRET_ARN`).

use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use serde::Deserialize;
use serde_json::{json, Value};

use super::LambdaApp;
use crate::domain::{
    ClusterSpec, CollectionSpec, DatabaseSpec, JobStatus, MigrationRequest, NewCluster, Options,
    Role, Secret,
};
use crate::engine::EngineError;
use crate::entrypoints::api_error::ApiError;

/// Zilliz's `POST /v2/migrations/toExisting` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ToExisting {
    source: ClusterRef,
    destination: ClusterRef,
    #[serde(default)]
    db_collections: Vec<DbCollections>,
}

/// Zilliz's `POST /v2/migrations/toNewDedicated` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ToNewDedicated {
    source: ClusterRef,
    destination: NewDestination,
    #[serde(default)]
    db_collections: Vec<DbCollections>,
}

/// The cluster `toNewDedicated` creates.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewDestination {
    cluster_name: String,
    project_id: String,
    region_id: String,
    plan: String,
    cu_type: String,
    cu_size: u32,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ClusterRef {
    cluster_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DbCollections {
    #[serde(default)]
    db_name: Option<String>,
    #[serde(default)]
    dest_db_name: Option<String>,
    #[serde(default)]
    collections: Vec<CollectionRef>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CollectionRef {
    collection_name: String,
}

impl ToNewDedicated {
    /// The same migration as vecmigrate's request, into `target.new_cluster`.
    fn into_request(self) -> MigrationRequest {
        let d = self.destination;
        let mut request = ToExisting {
            source: self.source,
            destination: ClusterRef {
                cluster_id: String::new(),
            },
            db_collections: self.db_collections,
        }
        .into_request();
        request.target = ClusterSpec {
            new_cluster: Some(NewCluster {
                project_id: d.project_id,
                region_id: d.region_id,
                plan: d.plan,
                cu_type: d.cu_type,
                cu_size: d.cu_size,
                name: d.cluster_name,
            }),
            ..ClusterSpec::default()
        };
        request
    }
}

impl ToExisting {
    /// The same migration as vecmigrate's request. Field names in errors are Zilliz's.
    fn into_request(self) -> MigrationRequest {
        let databases = if self.db_collections.is_empty() {
            // Zilliz: no dbCollections migrates the cluster's collections; here, the default
            // database's (a request names its databases).
            vec![DatabaseSpec {
                name: "default".into(),
                target_name: None,
                collections: Vec::new(),
            }]
        } else {
            self.db_collections
                .into_iter()
                .map(|d| DatabaseSpec {
                    name: d.db_name.unwrap_or_else(|| "default".into()),
                    target_name: d.dest_db_name,
                    collections: d
                        .collections
                        .into_iter()
                        .map(|c| CollectionSpec::named(c.collection_name))
                        .collect(),
                })
                .collect()
        };
        MigrationRequest {
            idempotency_key: None,
            source: ClusterSpec::by_id(self.source.cluster_id),
            target: ClusterSpec::by_id(self.destination.cluster_id),
            databases,
            options: Options::default(),
            webhook: None,
            dry_run: false,
        }
    }
}

/// A Zilliz-shaped body, parsed strictly; an error names the field as Zilliz does.
fn zilliz_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        ApiError::field(field, e.into_inner().to_string())
    })
}

/// Zilliz's name for a job status.
pub fn zilliz_status(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Cancelled => "CANCELED",
        other => other.as_str(),
    }
}

/// A request path's own field names for Zilliz's body (`databases[0]` is `dbCollections[0]`).
fn zilliz_field(field: &str) -> String {
    let f = field
        .replace("databases", "dbCollections")
        .replace("source.cluster_id", "source.clusterId")
        .replace("target.cluster_id", "destination.clusterId")
        .replace("target.new_cluster.name", "destination.clusterName")
        .replace("target.new_cluster.project_id", "destination.projectId")
        .replace("target.new_cluster.region_id", "destination.regionId")
        .replace("target.new_cluster.cu_type", "destination.cuType")
        .replace("target.new_cluster.cu_size", "destination.cuSize")
        .replace("target.new_cluster.plan", "destination.plan")
        .replace("target.new_cluster", "destination");
    if f.contains("].collections[") {
        f.replace(".name", ".collectionName")
    } else {
        f.replace("].name", "].dbName")
            .replace("].target_name", "].destDbName")
    }
}

impl LambdaApp {
    /// Answers a `/v2` route in Zilliz's shapes.
    pub(super) async fn zilliz_http(
        &self,
        request: &LambdaFunctionUrlRequest,
        method: &str,
        path: &str,
        segments: &[&str],
        body: &[u8],
    ) -> (u16, Value) {
        match self
            .zilliz_route(request, method, path, segments, body)
            .await
        {
            Ok(body) => (200, body),
            Err(e) => (e.status, e.zilliz_body()),
        }
    }

    async fn zilliz_route(
        &self,
        request: &LambdaFunctionUrlRequest,
        method: &str,
        path: &str,
        segments: &[&str],
        body: &[u8],
    ) -> Result<Value, ApiError> {
        let bearer = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|k| Secret::new(k.trim()))
            .filter(|k| !k.expose().is_empty());
        let trusted = match self.authenticate(request, method, path, body).await {
            Ok(()) => true,
            // The API key alone, checked against the clusters below.
            Err(_) if bearer.is_some() && self.config.zilliz_bearer_auth => false,
            Err(e) => return Err(e),
        };
        match (method, segments) {
            ("POST", ["v2", "migrations", "toExisting"]) => {
                let parsed: ToExisting = zilliz_body(body)?;
                self.migrate(parsed.into_request(), bearer, trusted).await
            }
            ("POST", ["v2", "migrations", "toNewDedicated"]) => {
                let parsed: ToNewDedicated = zilliz_body(body)?;
                self.migrate(parsed.into_request(), bearer, trusted).await
            }
            ("GET", ["v2", "jobs", id]) => self.zilliz_job(id, bearer, trusted).await,
            (_, ["v2", "migrations", "toExisting" | "toNewDedicated"] | ["v2", "jobs", _]) => Err(ApiError::new(
                405,
                "method_not_allowed",
                format!("{method} is not allowed on {path}"),
            )),
            _ => Err(ApiError::new(
                404,
                "not_found",
                format!("no route {method} {path}; the Zilliz-compatible routes are POST /v2/migrations/toExisting, POST /v2/migrations/toNewDedicated and GET /v2/jobs/{{jobId}}"),
            )),
        }
    }

    /// `POST /v2/migrations/toExisting` and `…/toNewDedicated`: the migration Zilliz's body
    /// describes, answered with its job id and, for a new cluster, the cluster's id once the
    /// control plane named it (created here, within this request's time).
    async fn migrate(
        &self,
        mut request: MigrationRequest,
        bearer: Option<Secret>,
        trusted: bool,
    ) -> Result<Value, ApiError> {
        for spec in [&mut request.source, &mut request.target] {
            spec.token = bearer.clone();
        }
        self.deployment_api_key(&mut request);
        request
            .validate(chrono::Utc::now())
            .map_err(|e| ApiError::field(zilliz_field(&e.field), e.message))?;
        if !trusted {
            // A new cluster does not exist yet: the key vouches for the source.
            let target = request
                .target
                .new_cluster
                .is_none()
                .then_some(&request.target);
            let sides = [
                (Role::Source, Some(&request.source)),
                (Role::Target, target),
            ];
            for (role, spec) in sides {
                if let Some(spec) = spec {
                    self.key_sees(role, spec).await?;
                }
            }
        }
        self.seal(&mut request)?;
        let new_cluster = request.target.new_cluster.is_some();
        let (job, _) = self.engine.start(request).await?;
        if !new_cluster {
            return Ok(json!({ "code": 0, "data": { "jobId": job.id } }));
        }
        let cluster_id = self
            .engine
            .create_target(&job.id, self.request_budget())
            .await?;
        Ok(json!({ "code": 0, "data": { "jobId": job.id, "clusterId": cluster_id } }))
    }

    /// `GET /v2/jobs/{jobId}`: the job in Zilliz's shape.
    async fn zilliz_job(
        &self,
        id: &str,
        bearer: Option<Secret>,
        trusted: bool,
    ) -> Result<Value, ApiError> {
        let report = self.engine.report(id).await?;
        let job = &report.job;
        if !trusted {
            let Some(cluster_id) = &job.request.source.cluster_id else {
                return Err(ApiError::new(
                    403,
                    "forbidden",
                    "this job names its source by URI, so an API key cannot vouch for it; sign the request",
                ));
            };
            let spec = ClusterSpec {
                token: bearer,
                ..ClusterSpec::by_id(cluster_id.clone())
            };
            self.key_sees(Role::Source, &spec).await?;
        }
        let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
            t.map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                .unwrap_or_default()
        };
        let progress = if job.status == JobStatus::Successful {
            100
        } else {
            report.progress.percent.clamp(0.0, 99.0).floor() as u64
        };
        Ok(json!({
            "code": 0,
            "data": {
                "jobId": job.id,
                "type": "MIGRATION",
                "status": zilliz_status(job.status),
                "progress": progress.to_string(),
                "startTime": time(job.started_at.or(Some(job.created_at))),
                "endTime": time(job.finished_at),
                "reason": job.error.as_ref().map(|e| e.message.clone()).unwrap_or_default(),
            }
        }))
    }

    /// The time a request may spend creating a cluster before it answers without its id.
    fn request_budget(&self) -> crate::engine::Budget {
        let answer_within = Some(std::time::Duration::from_secs(20));
        let margin = self.config.engine.safety_margin;
        crate::engine::Budget::new(answer_within, self.config.max_run, margin)
    }

    /// Refuses a caller whose API key cannot describe the `role` cluster `spec` names.
    async fn key_sees(&self, role: Role, spec: &ClusterSpec) -> Result<(), ApiError> {
        match self.engine.describe_zilliz(role, spec).await {
            Ok(_) => Ok(()),
            Err(EngineError::Cluster(e)) if !e.is_transient() => {
                Err(ApiError::new(403, "forbidden", e.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Gives clusters named by id without a key the deployment's API key.
    pub(super) fn deployment_api_key(&self, request: &mut MigrationRequest) {
        let Some(arn) = &self.config.zilliz_api_key_secret_arn else {
            return;
        };
        for spec in [&mut request.source, &mut request.target] {
            let by_api_key = spec.cluster_id.is_some() || spec.new_cluster.is_some();
            if by_api_key && spec.token.is_none() && spec.token_secret_arn.is_none() {
                spec.token_secret_arn = Some(arn.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zillizs_body_becomes_the_same_request() {
        let body: ToExisting = serde_json::from_str(
            r#"{"source":{"clusterId":"in01-aaa"},"destination":{"clusterId":"in01-bbb"},
                "dbCollections":[{"dbName":"shop","destDbName":"shop2","collections":[{"collectionName":"items"}]},
                                 {"collections":[]}]}"#,
        )
        .unwrap();
        let r = body.into_request();
        assert_eq!(r.source.cluster_id.as_deref(), Some("in01-aaa"));
        assert_eq!(r.target.cluster_id.as_deref(), Some("in01-bbb"));
        assert_eq!(r.databases[0].name, "shop");
        assert_eq!(r.databases[0].target(), "shop2");
        assert_eq!(r.databases[0].collections[0].name, "items");
        // No collections: the whole database.
        assert_eq!(r.databases[1].name, "default");
        assert!(r.databases[1].collections.is_empty());
        assert!(r.validate(chrono::Utc::now()).is_ok());
        assert_eq!(zilliz_status(JobStatus::Cancelled), "CANCELED");
        assert_eq!(zilliz_status(JobStatus::InProgress), "IN_PROGRESS");
        assert_eq!(
            zilliz_field("databases[0].collections[1].name"),
            "dbCollections[0].collections[1].collectionName"
        );
        assert_eq!(
            zilliz_field("databases[2].target_name"),
            "dbCollections[2].destDbName"
        );
    }
}
