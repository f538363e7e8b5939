//! Bulk import: one staged file per import, its state, and the collection's list of imports
//! (which is how a lost reply is found out), through the cluster's import API ([`ImportApi`]):
//! - Zilliz Cloud's control plane, for a cluster given by id ([`RestImport`]);
//! - Milvus's REST import at the cluster's own address on 2.4 and later, whose job
//!   descriptions name each job's files; and wherever the `Import` RPC is missing;
//! - Milvus's `Import` RPC otherwise (2.3). Milvus 2.3.5 reads each file by absolute path from
//!   its own storage (`common.storageType: local`: the server's filesystem; object storage: a
//!   key in its bucket), one file per task, and reports a task's files, partition and failure
//!   reason in `infos`.
//!
//! Milvus Lite has neither: the probe says so.

use ::milvus::proto::common::ImportState as RpcState;
use ::milvus::proto::milvus::{
    GetImportStateRequest, GetImportStateResponse, ImportRequest, ListImportTasksRequest,
};

use super::MilvusCluster;
use crate::milvus::compat::parse_version;
use crate::milvus::rest_import::RestImport;
use crate::milvus::{Cluster, ClusterError, Failure, ImportJob, ImportSource, ImportState};
use crate::staging::ReadGrant;

/// How many of a collection's tasks the list asks for (the server keeps them for a while, the
/// newest first).
const LIST_LIMIT: i64 = 1_000;

/// The first Milvus release whose import job descriptions are documented to name their files
/// (REST `…/jobs/import/describe`, `details[].fileName`), which exactly-once relies on.
const REST_IMPORT_RELEASE: (u32, u32) = (2, 4);

/// Which API a cluster's imports go through, chosen once per connection.
#[derive(Debug)]
pub(super) enum ImportApi {
    /// Milvus's `Import`, `GetImportState` and `ListImportTasks` RPCs.
    Rpc,
    /// Import Operations over REST (Zilliz Cloud's control plane, Milvus 2.4+).
    Rest(RestImport),
    /// None: why.
    Missing(String),
}

/// Which API to try first on a server reporting `version`: REST from 2.4 (where the RPC is
/// served by the new import, whose task list is not documented to name files), else the RPC.
fn rest_first(version: &str) -> bool {
    parse_version(version).is_some_and(|(major, minor, _)| (major, minor) >= REST_IMPORT_RELEASE)
}

fn info<'a>(response: &'a GetImportStateResponse, key: &str) -> &'a str {
    response
        .infos
        .iter()
        .find(|kv| kv.key == key)
        .map_or("", |kv| kv.value.as_str())
}

fn import_job(response: &GetImportStateResponse) -> ImportJob {
    let state = match RpcState::try_from(response.state) {
        Ok(RpcState::ImportCompleted) => ImportState::Completed,
        Ok(RpcState::ImportFailed | RpcState::ImportFailedAndCleaned) => ImportState::Failed,
        _ => ImportState::Running,
    };
    ImportJob {
        id: response.id.to_string(),
        state,
        rows: u64::try_from(response.row_count).unwrap_or(0),
        files: info(response, "files")
            .split(',')
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .collect(),
        reason: info(response, "failed_reason").to_owned(),
    }
}

impl MilvusCluster {
    /// Imports go through Zilliz Cloud's control plane.
    pub fn with_cloud_import(self, cloud: RestImport) -> Self {
        Self {
            import_api: tokio::sync::OnceCell::new_with(Some(ImportApi::Rest(cloud))),
            ..self
        }
    }

    /// The cluster's import API, chosen on first use.
    async fn import_api(&self) -> Result<&ImportApi, ClusterError> {
        self.import_api
            .get_or_try_init(|| self.choose_import_api())
            .await
    }

    /// REST first on 2.4 and later, then the RPC, then REST where the RPC is missing. A REST
    /// port that does not answer as one is not an import API (a gRPC-only port, a server
    /// before 2.4); an outage of the gRPC side is an error, and the choice is made again.
    async fn choose_import_api(&self) -> Result<ImportApi, ClusterError> {
        let rest = || async {
            match &self.rest_import {
                Ok(rest) => match rest.probe().await {
                    Ok(()) => Ok(rest.clone()),
                    Err(ClusterError::Call { detail, .. }) => Err(detail),
                    Err(e) => Err(e.to_string()),
                },
                Err(why) => Err(why.clone()),
            }
        };
        let first = rest_first(&self.server_version().await?);
        let mut rest_failed = None;
        if first {
            match rest().await {
                Ok(rest) => return Ok(ImportApi::Rest(rest)),
                Err(why) => rest_failed = Some(why),
            }
        }
        let rpc_missing = match self.rpc_probe_import().await? {
            Ok(()) => return Ok(ImportApi::Rpc),
            Err(why) => why,
        };
        let rest_failed = match rest_failed {
            Some(why) => why,
            None => match rest().await {
                Ok(rest) => return Ok(ImportApi::Rest(rest)),
                Err(why) => why,
            },
        };
        Ok(ImportApi::Missing(format!(
            "no Import RPC ({rpc_missing}) and no REST import at {} ({rest_failed})",
            self.uri
        )))
    }

    pub(super) async fn probe_imports(&self) -> Result<Result<ImportSource, String>, ClusterError> {
        match self.import_api().await? {
            ImportApi::Rpc => Ok(Ok(ImportSource::ServerFiles)),
            ImportApi::Rest(rest) => match rest.probe().await {
                Ok(()) => Ok(Ok(rest.source())),
                Err(e) if !e.is_transient() => Ok(Err(e.to_string())),
                Err(e) => Err(e),
            },
            ImportApi::Missing(why) => Ok(Err(why.clone())),
        }
    }

    /// The error of a call to an import API the cluster does not have.
    fn missing(&self, operation: String, why: &str) -> ClusterError {
        ClusterError::Call {
            role: self.role,
            operation,
            detail: why.to_owned(),
            failure: Failure::Permanent,
        }
    }

    pub(super) async fn import_one(
        &self,
        database: &str,
        collection: &str,
        partition: Option<&str>,
        file: &str,
        grant: Option<&ReadGrant>,
    ) -> Result<String, ClusterError> {
        match self.import_api().await? {
            ImportApi::Rpc => {
                self.rpc_import_file(database, collection, partition, file)
                    .await
            }
            ImportApi::Rest(rest) => {
                rest.create(database, collection, partition, file, grant)
                    .await
            }
            ImportApi::Missing(why) => Err(self.missing(format!("import {file}"), why)),
        }
    }

    pub(super) async fn import_state(&self, id: &str) -> Result<ImportJob, ClusterError> {
        match self.import_api().await? {
            ImportApi::Rpc => self.rpc_import_progress(id).await,
            ImportApi::Rest(rest) => rest.progress(id).await,
            ImportApi::Missing(why) => {
                Err(self.missing(format!("tell how import {id} stands"), why))
            }
        }
    }

    pub(super) async fn imports_reading(
        &self,
        database: &str,
        collection: &str,
        file: &str,
    ) -> Result<Vec<ImportJob>, ClusterError> {
        match self.import_api().await? {
            ImportApi::Rpc => self.rpc_imports_of(database, collection, file).await,
            ImportApi::Rest(rest) => rest.imports_of(database, collection, file).await,
            ImportApi::Missing(why) => {
                Err(self.missing(format!("list the imports of {collection}"), why))
            }
        }
    }

    async fn rpc_probe_import(&self) -> Result<Result<(), String>, ClusterError> {
        let listed = rpc!(
            self,
            || "list import tasks".into(),
            list_import_tasks(ListImportTasksRequest {
                limit: 1,
                ..Default::default()
            })
        );
        match listed {
            Ok(_) => Ok(Ok(())),
            Err(ClusterError::Call {
                detail,
                failure: Failure::Permanent,
                ..
            }) => Ok(Err(detail)),
            Err(e) => Err(e),
        }
    }

    async fn rpc_import_file(
        &self,
        database: &str,
        collection: &str,
        partition: Option<&str>,
        file: &str,
    ) -> Result<String, ClusterError> {
        let response = rpc!(
            self,
            || format!("import {file} into {database}.{collection}"),
            import(ImportRequest {
                db_name: database.into(),
                collection_name: collection.into(),
                partition_name: partition.unwrap_or_default().into(),
                files: vec![file.to_owned()],
                ..Default::default()
            })
        )?;
        match response.tasks.as_slice() {
            [id] => Ok(id.to_string()),
            other => Err(ClusterError::Protocol(
                format!(
                    "an import of one file answered with {} task ids",
                    other.len()
                ),
                self.role,
            )),
        }
    }

    async fn rpc_import_progress(&self, id: &str) -> Result<ImportJob, ClusterError> {
        let task = id.parse::<i64>().map_err(|_| {
            ClusterError::Protocol(format!("`{id}` is not a Milvus import task id"), self.role)
        })?;
        let response = rpc!(
            self,
            || format!("get the state of import task {id}"),
            get_import_state(GetImportStateRequest { task })
        )?;
        Ok(import_job(&response))
    }

    async fn rpc_imports_of(
        &self,
        database: &str,
        collection: &str,
        file: &str,
    ) -> Result<Vec<ImportJob>, ClusterError> {
        let response = rpc!(
            self,
            || format!("list import tasks of {database}.{collection}"),
            list_import_tasks(ListImportTasksRequest {
                db_name: database.into(),
                collection_name: collection.into(),
                limit: LIST_LIMIT,
            })
        )?;
        Ok(response
            .tasks
            .iter()
            .map(import_job)
            .filter(|p| p.files.iter().any(|f| f == file))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_comes_first_from_milvus_2_4() {
        for v in ["v2.4.0", "v2.4.15-gpu", "2.5.4", "v2.6.0", "v3.0.0"] {
            assert!(rest_first(v), "{v}");
        }
        for v in ["v2.3.5", "v2.2.16", "milvus_lite-3.2.2", ""] {
            assert!(!rest_first(v), "{v}");
        }
    }
}
