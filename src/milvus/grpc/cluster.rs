//! The [`Cluster`] port on Milvus's gRPC API: every call the engine makes, each one request.

use std::sync::Arc;
use std::time::Duration;

use ::milvus::proto::common::{ConsistencyLevel, ErrorCode, IndexState, LoadState};
use ::milvus::proto::milvus::{
    AlterCollectionRequest, CreateCollectionRequest, CreateDatabaseRequest, CreateIndexRequest,
    CreatePartitionRequest, DescribeCollectionRequest, DescribeIndexRequest, DropCollectionRequest,
    FlushRequest, GetLoadStateRequest, GetVersionRequest, IndexDescription, ListDatabasesRequest,
    LoadCollectionRequest, QueryRequest, ReleaseCollectionRequest, ShowCollectionsRequest,
    ShowPartitionsRequest,
};
use async_trait::async_trait;
use prost::Message;

use super::calls::ok_status;
use super::query::{client_timestamp, page_query};
use super::write::PageWrite;
use super::{MilvusCluster, LOAD_TIMEOUT};
use crate::domain::Cursor;
use crate::milvus::batch::{every_key_filter, normalize_page, primary_keys, Batch};
use crate::milvus::{
    kv, Cluster, ClusterError, CollectionInfo, Failure, ImportJob, ImportSource, IndexInfo,
    IndexProgress, PageRequest, RowQuery, WriteMode, ALLOW_INSERT_AUTO_ID,
};
use crate::staging::ReadGrant;

impl MilvusCluster {
    /// The collection's indexes as the server describes them (none yet: an empty list).
    async fn describe_indexes(
        &self,
        database: &str,
        collection: &str,
    ) -> Result<Vec<IndexDescription>, ClusterError> {
        let what = || format!("describe indexes of {database}.{collection}");
        let response = self
            .client
            .clone()
            .describe_index(DescribeIndexRequest {
                db_name: database.into(),
                collection_name: collection.into(),
                ..Default::default()
            })
            .await
            .map_err(|e| self.call_error(what(), e))?
            .into_inner();
        if let Err(refusal) = ok_status(response.status.as_ref()) {
            // "No index yet" is an error status on every version; it means an empty list.
            let (code, legacy) = refusal.codes;
            let reason = refusal.reason.to_lowercase();
            let missing = code == 700
                || legacy == ErrorCode::IndexNotExist as i32
                || reason.contains("index not found")
                || reason.contains("index doesn't exist");
            if missing {
                return Ok(Vec::new());
            }
            return Err(self.status_error(what(), refusal));
        }
        Ok(response.index_descriptions)
    }

    async fn load_state(&self, database: &str, collection: &str) -> Result<i32, ClusterError> {
        let response = rpc!(
            self,
            || format!("load state of {database}.{collection}"),
            get_load_state(GetLoadStateRequest {
                db_name: database.into(),
                collection_name: collection.into(),
                ..Default::default()
            })
        )?;
        Ok(response.state)
    }
}

#[async_trait]
impl Cluster for MilvusCluster {
    async fn ping(&self) -> Result<(), ClusterError> {
        self.list_databases().await.map(|_| ())
    }

    async fn list_databases(&self) -> Result<Vec<String>, ClusterError> {
        let response = rpc!(
            self,
            || "list databases".into(),
            list_databases(ListDatabasesRequest::default())
        )?;
        Ok(response.db_names)
    }

    async fn create_database(&self, name: &str) -> Result<(), ClusterError> {
        rpc!(
            self,
            || format!("create database {name}"),
            create_database(CreateDatabaseRequest {
                db_name: name.into(),
                ..Default::default()
            })
        )
        .map(|_| ())
    }

    async fn list_collections(&self, database: &str) -> Result<Vec<String>, ClusterError> {
        let response = rpc!(
            self,
            || format!("list collections of {database}"),
            show_collections(ShowCollectionsRequest {
                db_name: database.into(),
                ..Default::default()
            })
        )?;
        Ok(response.collection_names)
    }

    async fn describe_collection(
        &self,
        database: &str,
        collection: &str,
    ) -> Result<Option<CollectionInfo>, ClusterError> {
        // Describe reports a missing collection with codes that differ across versions; the
        // listing is unambiguous.
        if !self
            .list_collections(database)
            .await?
            .iter()
            .any(|c| c == collection)
        {
            return Ok(None);
        }
        let response = rpc!(
            self,
            || format!("describe {database}.{collection}"),
            describe_collection(DescribeCollectionRequest {
                db_name: database.into(),
                collection_name: collection.into(),
                ..Default::default()
            })
        )?;
        let schema = response.schema.ok_or_else(|| {
            ClusterError::Protocol(format!("{database}.{collection} has no schema"), self.role)
        })?;
        Ok(Some(CollectionInfo {
            schema,
            shards_num: response.shards_num,
            consistency_level: response.consistency_level,
            properties: response.properties,
            num_partitions: response.num_partitions,
        }))
    }

    async fn list_partitions(
        &self,
        database: &str,
        collection: &str,
    ) -> Result<Vec<String>, ClusterError> {
        let response = rpc!(
            self,
            || format!("list partitions of {database}.{collection}"),
            show_partitions(ShowPartitionsRequest {
                db_name: database.into(),
                collection_name: collection.into(),
                ..Default::default()
            })
        )?;
        Ok(response.partition_names)
    }

    async fn list_indexes(
        &self,
        database: &str,
        collection: &str,
    ) -> Result<Vec<IndexInfo>, ClusterError> {
        let described = self.describe_indexes(database, collection).await?;
        Ok(described
            .into_iter()
            .map(|d| IndexInfo {
                index_name: d.index_name,
                field_name: d.field_name,
                params: d.params,
            })
            .collect())
    }

    async fn index_progress(
        &self,
        database: &str,
        collection: &str,
    ) -> Result<Vec<IndexProgress>, ClusterError> {
        let described = self.describe_indexes(database, collection).await?;
        Ok(described
            .into_iter()
            .map(|d| IndexProgress {
                finished: d.state == IndexState::Finished as i32 && d.pending_index_rows == 0,
                field_name: d.field_name,
                indexed_rows: d.indexed_rows.max(0) as u64,
                total_rows: d.total_rows.max(0) as u64,
            })
            .collect())
    }

    async fn is_loaded(&self, database: &str, collection: &str) -> Result<bool, ClusterError> {
        Ok(self.load_state(database, collection).await? == LoadState::Loaded as i32)
    }

    async fn create_collection(
        &self,
        database: &str,
        collection: &str,
        info: &CollectionInfo,
    ) -> Result<(), ClusterError> {
        let mut schema = info.schema.clone();
        schema.name = collection.to_owned();
        schema.db_name = String::new();
        // The dynamic field `$meta` is the server's own: it comes back from `enable_dynamic_field`.
        schema.fields.retain(|f| !f.is_dynamic);
        for f in &mut schema.fields {
            f.field_id = 0;
        }
        for func in &mut schema.functions {
            func.id = 0;
            func.input_field_ids.clear();
            func.output_field_ids.clear();
        }
        let num_partitions = if info.has_partition_key() {
            info.num_partitions
        } else {
            0
        };
        let mut properties = info.properties.clone();
        if info.has_auto_id() && info.property(ALLOW_INSERT_AUTO_ID).is_none() {
            // Keys are copied, not generated again; the finish step removes the property.
            properties.push(kv(ALLOW_INSERT_AUTO_ID, "true"));
        }
        rpc!(
            self,
            || format!("create collection {database}.{collection}"),
            create_collection(CreateCollectionRequest {
                db_name: database.into(),
                collection_name: collection.into(),
                schema: schema.encode_to_vec(),
                shards_num: info.shards_num,
                consistency_level: info.consistency_level,
                properties,
                num_partitions,
                ..Default::default()
            })
        )
        .map(|_| ())
    }

    async fn create_partition(
        &self,
        database: &str,
        collection: &str,
        partition: &str,
    ) -> Result<(), ClusterError> {
        rpc!(
            self,
            || format!("create partition {partition} of {database}.{collection}"),
            create_partition(CreatePartitionRequest {
                db_name: database.into(),
                collection_name: collection.into(),
                partition_name: partition.into(),
                ..Default::default()
            })
        )
        .map(|_| ())
    }

    async fn create_index(
        &self,
        database: &str,
        collection: &str,
        index: &IndexInfo,
    ) -> Result<(), ClusterError> {
        rpc!(
            self,
            || {
                format!(
                    "create index on {database}.{collection}.{}",
                    index.field_name
                )
            },
            create_index(CreateIndexRequest {
                db_name: database.into(),
                collection_name: collection.into(),
                field_name: index.field_name.clone(),
                extra_params: index.params.clone(),
                index_name: index.index_name.clone(),
                ..Default::default()
            })
        )
        .map(|_| ())
    }

    async fn read_page(&self, page: &PageRequest<'_>) -> Result<Batch, ClusterError> {
        let request = page_query(page, vec!["*".into()]);
        let (mut fields, session_ts) = self.query_at(request, "read").await?;
        fields.retain(|f| !page.skip_fields.contains(&f.field_name));
        normalize_page(&mut fields);
        let mut batch =
            Batch::from_columns(fields, &page.primary.name, page.after).map_err(|e| {
                ClusterError::Protocol(
                    format!("reading {}.{}: {e}", page.database, page.collection),
                    self.role,
                )
            })?;
        batch.read_at = Some(match (page.read_at, session_ts) {
            (Some(pinned), _) => pinned,
            (None, ts) if ts > 0 => ts,
            (None, _) => client_timestamp(),
        });
        Ok(batch)
    }

    async fn read_keys(&self, page: &PageRequest<'_>) -> Result<Vec<Cursor>, ClusterError> {
        let primary = &page.primary.name;
        let request = page_query(page, vec![primary.clone()]);
        let fields = self.query(request, "read keys of").await?;
        let column = fields.iter().find(|f| &f.field_name == primary);
        let mut keys = column.and_then(primary_keys).unwrap_or_default();
        // The server sorts an iterator's page by key; sorted here too, as the split relies on it.
        keys.sort();
        Ok(keys)
    }

    async fn write_page(
        &self,
        database: &str,
        collection: &str,
        partition: Option<&str>,
        batch: &Batch,
        mode: WriteMode,
    ) -> Result<u64, ClusterError> {
        let operation = || format!("{} into {database}.{collection}", mode.as_str());
        let request = PageWrite {
            db_name: database.to_owned(),
            collection_name: collection.to_owned(),
            partition_name: partition.unwrap_or_default().to_owned(),
            fields_data: Arc::clone(&batch.fields),
            num_rows: batch.rows as u32,
        };
        let result = self.send_page(operation, mode, request).await?;
        let written = match mode {
            WriteMode::Insert => result.insert_cnt,
            WriteMode::Upsert => result.upsert_cnt,
        };
        // Some servers leave the count at 0 on upsert; the ids list is the other witness.
        let ids = result.i_ds.as_ref().and_then(|ids| match &ids.id_field {
            Some(::milvus::proto::schema::i_ds::IdField::IntId(a)) => Some(a.data.len()),
            Some(::milvus::proto::schema::i_ds::IdField::StrId(a)) => Some(a.data.len()),
            _ => None,
        });
        let written = if written > 0 {
            written as u64
        } else {
            ids.unwrap_or(0) as u64
        };
        if written != batch.rows as u64 {
            return Err(ClusterError::Protocol(
                format!("{} took {written} of {} entities", operation(), batch.rows),
                self.role,
            ));
        }
        Ok(written)
    }

    async fn flush(&self, database: &str, collection: &str) -> Result<(), ClusterError> {
        rpc!(
            self,
            || format!("flush {database}.{collection}"),
            flush(FlushRequest {
                db_name: database.into(),
                collection_names: vec![collection.into()],
                ..Default::default()
            })
        )
        .map(|_| ())
    }

    async fn load(&self, database: &str, collection: &str) -> Result<(), ClusterError> {
        rpc!(
            self,
            || format!("load {database}.{collection}"),
            load_collection(LoadCollectionRequest {
                db_name: database.into(),
                collection_name: collection.into(),
                ..Default::default()
            })
        )?;
        let started = tokio::time::Instant::now();
        loop {
            let state = self.load_state(database, collection).await?;
            if state == LoadState::Loaded as i32 {
                return Ok(());
            }
            if started.elapsed() > LOAD_TIMEOUT {
                return Err(ClusterError::Call {
                    role: self.role,
                    operation: format!("load {database}.{collection}"),
                    detail: format!("not loaded after {}s", LOAD_TIMEOUT.as_secs()),
                    failure: Failure::Outage,
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn release(&self, database: &str, collection: &str) -> Result<(), ClusterError> {
        rpc!(
            self,
            || format!("release {database}.{collection}"),
            release_collection(ReleaseCollectionRequest {
                db_name: database.into(),
                collection_name: collection.into(),
                ..Default::default()
            })
        )
        .map(|_| ())
    }

    async fn count(&self, database: &str, collection: &str) -> Result<u64, ClusterError> {
        let request = QueryRequest {
            db_name: database.into(),
            collection_name: collection.into(),
            expr: String::new(),
            output_fields: vec!["count(*)".into()],
            consistency_level: ConsistencyLevel::Strong as i32,
            use_default_consistency: false,
            ..Default::default()
        };
        self.count_query(request, database, collection).await
    }

    async fn count_range(&self, range: &PageRequest<'_>) -> Result<u64, ClusterError> {
        let mut request = page_query(range, vec!["count(*)".into()]);
        // A count is one answer: no page size, no iterator.
        request.query_params.clear();
        if request.expr.is_empty() && !request.partition_names.is_empty() {
            // Milvus Lite counts the whole collection for `count(*)` of a partition without a
            // filter (it honours the partition once there is one): one every key passes.
            request.expr = every_key_filter(range.primary);
        }
        self.count_query(request, range.database, range.collection)
            .await
    }

    async fn drop_collection(&self, database: &str, collection: &str) -> Result<(), ClusterError> {
        rpc!(
            self,
            || format!("drop {database}.{collection}"),
            drop_collection(DropCollectionRequest {
                db_name: database.into(),
                collection_name: collection.into(),
                ..Default::default()
            })
        )
        .map(|_| ())
    }

    async fn query_rows(
        &self,
        query: &RowQuery<'_>,
    ) -> Result<Vec<::milvus::proto::schema::FieldData>, ClusterError> {
        self.query(
            QueryRequest {
                db_name: query.database.into(),
                collection_name: query.collection.into(),
                expr: query.filter.clone(),
                output_fields: vec!["*".into()],
                query_params: vec![kv("limit", &query.limit.to_string())],
                consistency_level: ConsistencyLevel::Strong as i32,
                use_default_consistency: false,
                ..Default::default()
            },
            "compare entities of",
        )
        .await
    }

    async fn drop_properties(
        &self,
        database: &str,
        collection: &str,
        keys: &[String],
    ) -> Result<(), ClusterError> {
        rpc!(
            self,
            || {
                format!(
                    "remove properties {} of {database}.{collection}",
                    keys.join(", ")
                )
            },
            alter_collection(AlterCollectionRequest {
                db_name: database.into(),
                collection_name: collection.into(),
                delete_keys: keys.to_vec(),
                ..Default::default()
            })
        )
        .map(|_| ())
    }

    async fn server_version(&self) -> Result<String, ClusterError> {
        let response = rpc!(
            self,
            || "get the server version".into(),
            get_version(GetVersionRequest::default())
        )?;
        Ok(response.version)
    }

    async fn probe_schema(
        &self,
        info: &CollectionInfo,
    ) -> Result<Result<::milvus::proto::schema::CollectionSchema, String>, ClusterError> {
        self.scratch_schema(info).await
    }

    async fn probe_explicit_auto_id(&self) -> Result<Result<(), String>, ClusterError> {
        self.scratch_auto_id().await
    }

    async fn probe_import(&self) -> Result<Result<ImportSource, String>, ClusterError> {
        self.probe_imports().await
    }

    async fn import_file(
        &self,
        database: &str,
        collection: &str,
        partition: Option<&str>,
        file: &str,
        grant: Option<&ReadGrant>,
    ) -> Result<String, ClusterError> {
        self.import_one(database, collection, partition, file, grant)
            .await
    }

    async fn import_progress(&self, id: &str) -> Result<ImportJob, ClusterError> {
        self.import_state(id).await
    }

    async fn imports_of(
        &self,
        database: &str,
        collection: &str,
        file: &str,
    ) -> Result<Vec<ImportJob>, ClusterError> {
        self.imports_reading(database, collection, file).await
    }
}
