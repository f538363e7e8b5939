//! Bulk import on Milvus's `Import` RPC: one staged file per import task, the task's state,
//! and the collection's list of tasks (which is how a lost reply is found out).
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
use crate::milvus::{ClusterError, Failure, ImportJob, ImportState};

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
    pub(super) async fn rpc_probe_import(&self) -> Result<Result<(), String>, ClusterError> {
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

    pub(super) async fn rpc_import_file(
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

    pub(super) async fn rpc_import_progress(&self, id: &str) -> Result<ImportJob, ClusterError> {
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

    pub(super) async fn rpc_imports_of(
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
