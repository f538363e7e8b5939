//! Bulk import: on Milvus's `Import` RPC, or, for a Zilliz Cloud cluster given by id, on the
//! control plane's import API ([`CloudImport`]). One staged file per import, its state, and
//! the collection's list of imports (which is how a lost reply is found out).
//!
//! Milvus 2.3.5 reads each file by absolute path from its own storage (`common.storageType:
//! local`: the server's filesystem; object storage: a key in its bucket), one file per task,
//! and reports a task's files, partition and failure reason in `infos`. Milvus Lite has no
//! import: the probe says so.

use ::milvus::proto::common::ImportState as RpcState;
use ::milvus::proto::milvus::{
    GetImportStateRequest, GetImportStateResponse, ImportRequest, ListImportTasksRequest,
};

use super::MilvusCluster;
use crate::milvus::zilliz::CloudImport;
use crate::milvus::{ClusterError, Failure, ImportJob, ImportSource, ImportState};
use crate::staging::ReadGrant;

/// How many of a collection's tasks the list asks for (the server keeps them for a while, the
/// newest first).
const LIST_LIMIT: i64 = 1_000;

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
    /// Imports go through Zilliz Cloud's control plane rather than the `Import` RPC.
    pub fn with_cloud_import(mut self, cloud: CloudImport) -> Self {
        self.cloud_import = Some(cloud);
        self
    }

    pub(super) async fn probe_imports(&self) -> Result<Result<ImportSource, String>, ClusterError> {
        match &self.cloud_import {
            Some(cloud) => match cloud.probe().await {
                Ok(()) => Ok(Ok(ImportSource::ObjectStorage)),
                Err(e) if !e.is_transient() => Ok(Err(e.to_string())),
                Err(e) => Err(e),
            },
            None => Ok(self
                .rpc_probe_import()
                .await?
                .map(|()| ImportSource::ServerFiles)),
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
        match &self.cloud_import {
            Some(cloud) => {
                cloud
                    .create(database, collection, partition, file, grant)
                    .await
            }
            None => {
                self.rpc_import_file(database, collection, partition, file)
                    .await
            }
        }
    }

    pub(super) async fn import_state(&self, id: &str) -> Result<ImportJob, ClusterError> {
        match &self.cloud_import {
            Some(cloud) => cloud.progress(id).await,
            None => self.rpc_import_progress(id).await,
        }
    }

    pub(super) async fn imports_reading(
        &self,
        database: &str,
        collection: &str,
        file: &str,
    ) -> Result<Vec<ImportJob>, ClusterError> {
        match &self.cloud_import {
            Some(cloud) => cloud.imports_of(collection, file).await,
            None => self.rpc_imports_of(database, collection, file).await,
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
