//! Writing a page: an Insert or Upsert request encoded straight from the page's shared columns,
//! so a page of up to 16 MiB is never deep-copied on its way to the target, nor on a retry.
//!
//! The generated client takes requests by value (`InsertRequest { fields_data: Vec<_> }`),
//! which would mean cloning every column of the page for each attempt. Insert and Upsert share
//! their first seven fields' tags, so one message type borrows the page's columns (an
//! `Arc`) and is sent through tonic's own client on the same channel.

use std::sync::Arc;

use ::milvus::proto::milvus::MutationResult;
use ::milvus::proto::schema::FieldData;
use prost::bytes::{Buf, BufMut};
use prost::encoding::{message, skip_field, string, uint32, DecodeContext, WireType};
use tonic::codec::ProstCodec;
use tonic::codegen::http::uri::PathAndQuery;

use super::{MilvusCluster, RawClient};
use crate::milvus::{ClusterError, WriteMode};

/// The fields an `InsertRequest` and an `UpsertRequest` share (tags 2, 3, 4, 5 and 7), with the
/// columns borrowed from the page.
#[derive(Debug, Clone, Default)]
pub(super) struct PageWrite {
    pub db_name: String,
    pub collection_name: String,
    pub partition_name: String,
    pub fields_data: Arc<Vec<FieldData>>,
    pub num_rows: u32,
}

impl prost::Message for PageWrite {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        for (tag, value) in self.strings() {
            if !value.is_empty() {
                string::encode(tag, value, buf);
            }
        }
        for field in self.fields_data.iter() {
            message::encode(5, field, buf);
        }
        if self.num_rows != 0 {
            uint32::encode(7, &self.num_rows, buf);
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        // Only ever sent; a decoder skips what it does not know.
        skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        let strings: usize = self
            .strings()
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(tag, v)| string::encoded_len(tag, v))
            .sum();
        let nums = if self.num_rows != 0 {
            uint32::encoded_len(7, &self.num_rows)
        } else {
            0
        };
        strings + message::encoded_len_repeated(5, &self.fields_data) + nums
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

impl PageWrite {
    fn strings(&self) -> [(u32, &String); 3] {
        [
            (2, &self.db_name),
            (3, &self.collection_name),
            (4, &self.partition_name),
        ]
    }
}

/// The gRPC method of a write mode.
fn path(mode: WriteMode) -> PathAndQuery {
    PathAndQuery::from_static(match mode {
        WriteMode::Insert => "/milvus.proto.milvus.MilvusService/Insert",
        WriteMode::Upsert => "/milvus.proto.milvus.MilvusService/Upsert",
    })
}

impl MilvusCluster {
    /// Sends one page as an Insert or Upsert and returns the server's answer, its status checked.
    pub(super) async fn send_page(
        &self,
        operation: impl Fn() -> String,
        mode: WriteMode,
        request: PageWrite,
    ) -> Result<MutationResult, ClusterError> {
        self.unary_on(
            self.raw.clone(),
            operation,
            |mut raw: RawClient| async move {
                raw.ready().await.map_err(|e| {
                    tonic::Status::unavailable(format!("the channel is not ready: {e}"))
                })?;
                raw.unary(
                    tonic::Request::new(request),
                    path(mode),
                    ProstCodec::<PageWrite, MutationResult>::default(),
                )
                .await
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::milvus::proto::milvus::{InsertRequest, UpsertRequest};
    use ::milvus::proto::schema::{field_data, scalar_field, LongArray, ScalarField};
    use prost::Message;

    #[test]
    fn a_page_write_is_byte_for_byte_the_generated_insert_and_upsert() {
        let fields = vec![FieldData {
            r#type: 5,
            field_name: "id".into(),
            field: Some(field_data::Field::Scalars(ScalarField {
                data: Some(scalar_field::Data::LongData(LongArray {
                    data: vec![1, 2, 3],
                })),
                ..Default::default()
            })),
            ..Default::default()
        }];
        for partition in ["", "p1"] {
            let ours = PageWrite {
                db_name: "default".into(),
                collection_name: "c".into(),
                partition_name: partition.into(),
                fields_data: Arc::new(fields.clone()),
                num_rows: 3,
            };
            let insert = InsertRequest {
                db_name: "default".into(),
                collection_name: "c".into(),
                partition_name: partition.into(),
                fields_data: fields.clone(),
                num_rows: 3,
                ..Default::default()
            };
            let upsert = UpsertRequest {
                db_name: "default".into(),
                collection_name: "c".into(),
                partition_name: partition.into(),
                fields_data: fields.clone(),
                num_rows: 3,
                ..Default::default()
            };
            let bytes = ours.encode_to_vec();
            assert_eq!(bytes.len(), ours.encoded_len());
            assert_eq!(bytes, insert.encode_to_vec());
            assert_eq!(bytes, upsert.encode_to_vec());
            assert_eq!(InsertRequest::decode(&bytes[..]).unwrap(), insert);
        }
    }
}
