//! Probes: what a target can hold, asked on scratch collections (`vecmigrate_probe_…`) that
//! are dropped at once. Old servers silently drop what they do not know, so asking is the only
//! way to know.

use ::milvus::proto::milvus::{CreateCollectionRequest, InsertRequest};
use ::milvus::proto::schema::scalar_field;
use prost::Message;

use super::calls::ok_status;
use super::{scratch_name, MilvusCluster};
use crate::milvus::{kv, Cluster, ClusterError, CollectionInfo, Failure, ALLOW_INSERT_AUTO_ID};

impl MilvusCluster {
    pub(super) async fn scratch_schema(
        &self,
        info: &CollectionInfo,
    ) -> Result<Result<::milvus::proto::schema::CollectionSchema, String>, ClusterError> {
        let name = scratch_name();
        match self.create_collection("", &name, info).await {
            Ok(()) => {}
            Err(ClusterError::Call {
                detail,
                failure: Failure::Permanent,
                ..
            }) => return Ok(Err(detail)),
            Err(e) => return Err(e),
        }
        let described = self.describe_collection("", &name).await;
        self.drop_collection("", &name).await?;
        match described? {
            Some(kept) => Ok(Ok(kept.schema)),
            None => Ok(Err(
                "the scratch collection vanished after its creation".into()
            )),
        }
    }

    pub(super) async fn scratch_auto_id(&self) -> Result<Result<(), String>, ClusterError> {
        const KEY: i64 = 4_242_424_242;
        let name = scratch_name();
        let request = auto_id_scratch(&name);
        let operation = || format!("create scratch collection {name}");
        let created = rpc!(self, operation, create_collection(request));
        match created {
            Ok(_) => {}
            Err(ClusterError::Call {
                detail,
                failure: Failure::Permanent,
                ..
            }) => return Ok(Err(detail)),
            Err(e) => return Err(e),
        }
        let inserted = self.client.clone().insert(one_entity(&name, KEY)).await;
        // The scratch collection goes whatever the insert did.
        let dropped = self.drop_collection("", &name).await;
        let verdict = match inserted {
            Err(status) => Err(status.message().to_owned()),
            Ok(response) => explicit_key_kept(response.into_inner(), KEY),
        };
        dropped?;
        Ok(verdict)
    }
}

/// A scratch `auto_id` collection that lets explicit keys in.
fn auto_id_scratch(name: &str) -> CreateCollectionRequest {
    use ::milvus::proto::schema::{CollectionSchema, DataType, FieldSchema};
    let schema = CollectionSchema {
        name: name.to_owned(),
        fields: vec![
            FieldSchema {
                name: "id".into(),
                data_type: DataType::Int64 as i32,
                is_primary_key: true,
                auto_id: true,
                ..Default::default()
            },
            FieldSchema {
                name: "v".into(),
                data_type: DataType::FloatVector as i32,
                type_params: vec![kv("dim", "2")],
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    CreateCollectionRequest {
        collection_name: name.to_owned(),
        schema: schema.encode_to_vec(),
        shards_num: 1,
        properties: vec![kv(ALLOW_INSERT_AUTO_ID, "true")],
        ..Default::default()
    }
}

/// One entity with an explicit key, for [`auto_id_scratch`].
fn one_entity(name: &str, key: i64) -> InsertRequest {
    use ::milvus::proto::schema::{
        field_data, vector_field, DataType, FieldData, FloatArray, LongArray, ScalarField,
        VectorField,
    };
    InsertRequest {
        collection_name: name.to_owned(),
        num_rows: 1,
        fields_data: vec![
            FieldData {
                r#type: DataType::Int64 as i32,
                field_name: "id".into(),
                field: Some(field_data::Field::Scalars(ScalarField {
                    data: Some(scalar_field::Data::LongData(LongArray { data: vec![key] })),
                    ..Default::default()
                })),
                ..Default::default()
            },
            FieldData {
                r#type: DataType::FloatVector as i32,
                field_name: "v".into(),
                field: Some(field_data::Field::Vectors(VectorField {
                    dim: 2,
                    data: Some(vector_field::Data::FloatVector(FloatArray {
                        data: vec![0.5, 0.5],
                    })),
                    ..Default::default()
                })),
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}

/// Whether an insert kept the explicit `key` it was given, or why not.
fn explicit_key_kept(
    response: ::milvus::proto::milvus::MutationResult,
    key: i64,
) -> Result<(), String> {
    use ::milvus::proto::schema::i_ds;
    ok_status(response.status.as_ref()).map_err(|r| r.reason)?;
    match response.i_ds.and_then(|ids| ids.id_field) {
        Some(i_ds::IdField::IntId(ids)) if ids.data == [key] => Ok(()),
        Some(_) => Err("it took the entity but gave it another key".into()),
        None => Err("it took the entity but reported no key".into()),
    }
}
