//! How the data path asks Milvus for pages, keys and counts: one query per page in key order,
//! pinned to a read timestamp, and `count(*)` over a key range.

use ::milvus::proto::common::ConsistencyLevel;
use ::milvus::proto::milvus::QueryRequest;
use ::milvus::proto::schema::{field_data, scalar_field, FieldData};

use super::MilvusCluster;
use crate::milvus::batch::{and_filter, page_filter};
use crate::milvus::{kv, ClusterError, PageRequest};

impl MilvusCluster {
    pub(super) async fn query(
        &self,
        request: QueryRequest,
        what: &str,
    ) -> Result<Vec<FieldData>, ClusterError> {
        Ok(self.query_at(request, what).await?.0)
    }

    /// A query's columns and the timestamp the server read at (0 when it does not say).
    pub(super) async fn query_at(
        &self,
        request: QueryRequest,
        what: &str,
    ) -> Result<(Vec<FieldData>, u64), ClusterError> {
        let (db, coll) = (request.db_name.clone(), request.collection_name.clone());
        let response = rpc!(self, || format!("{what} {db}.{coll}"), query(request))?;
        Ok((response.fields_data, response.session_ts))
    }

    /// A `count(*)` query's number.
    pub(super) async fn count_query(
        &self,
        request: QueryRequest,
        database: &str,
        collection: &str,
    ) -> Result<u64, ClusterError> {
        let fields = self.query(request, "count").await?;
        let count = fields.iter().find_map(|f| match &f.field {
            Some(field_data::Field::Scalars(s)) => match &s.data {
                Some(scalar_field::Data::LongData(d)) => d.data.first().copied(),
                _ => None,
            },
            _ => None,
        });
        count.map(|c| c.max(0) as u64).ok_or_else(|| {
            ClusterError::Protocol(
                format!("count(*) of {database}.{collection} returned no number"),
                self.role,
            )
        })
    }
}

/// A Milvus hybrid timestamp (milliseconds since the epoch above 18 logical bits) one second
/// ahead of this machine's clock: the pin for servers that report no `session_ts` (Milvus
/// before 2.4), as pymilvus's query iterator falls back to the client's time. The second ahead
/// covers a client clock up to a second behind the server's (a server ahead of it waits at most
/// that long, once); the counts verified with Strong consistency catch a larger skew.
pub(super) fn client_timestamp() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (now.as_millis() as u64 + 1_000) << 18
}

/// The query that reads one page in key order (an iterator's page: sorted by primary key),
/// returning `output_fields`.
pub(super) fn page_query(page: &PageRequest<'_>, output_fields: Vec<String>) -> QueryRequest {
    QueryRequest {
        db_name: page.database.into(),
        collection_name: page.collection.into(),
        expr: and_filter(
            page_filter(&page.primary.name, page.after, page.upto),
            page.subset.filter,
        ),
        output_fields,
        partition_names: match (page.partition, page.subset.partitions) {
            (Some(p), _) => vec![p.to_owned()],
            (None, Some(kept)) => kept.to_vec(),
            (None, None) => Vec::new(),
        },
        query_params: vec![
            kv("limit", &page.limit.to_string()),
            kv("iterator", "True"),
            kv("reduce_stop_for_best", "False"),
        ],
        // Pinned: the server serves the page as of that timestamp, without waiting for its
        // newest one as Strong does on every page (as pymilvus's query iterator does with the
        // first page's session_ts, or the client's time where the server reports none).
        guarantee_timestamp: page.read_at.unwrap_or_default(),
        consistency_level: match page.read_at {
            Some(_) => ConsistencyLevel::Customized as i32,
            None => ConsistencyLevel::Strong as i32,
        },
        use_default_consistency: false,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Cursor, Selection};
    use crate::milvus::FieldSchema;

    #[test]
    fn a_pinned_page_is_read_at_its_timestamp_and_an_unpinned_one_strongly() {
        let primary = FieldSchema {
            name: "id".into(),
            ..Default::default()
        };
        let (after, upto) = (Cursor::Int(10), Cursor::Int(99));
        let mut page = PageRequest {
            database: "db",
            collection: "c",
            partition: None,
            primary: &primary,
            after: Some(&after),
            upto: Some(&upto),
            read_at: None,
            limit: 16,
            skip_fields: &[],
            subset: Selection::default(),
        };
        let strong = page_query(&page, vec!["*".into()]);
        assert_eq!(strong.consistency_level, ConsistencyLevel::Strong as i32);
        assert_eq!(strong.guarantee_timestamp, 0);
        assert_eq!(strong.expr, "id > 10 && id <= 99");
        page.read_at = Some(451_000_000_000_000_000);
        let pinned = page_query(&page, vec!["id".into()]);
        assert_eq!(
            pinned.consistency_level,
            ConsistencyLevel::Customized as i32
        );
        assert_eq!(pinned.guarantee_timestamp, 451_000_000_000_000_000);
        assert!(!pinned.use_default_consistency);
        // A job's filter narrows the key range; alone, it is the whole expression.
        page.subset.filter = Some("color == \"red\" || n > 3");
        let subset = page_query(&page, vec!["id".into()]);
        assert_eq!(
            subset.expr,
            "(id > 10 && id <= 99) && (color == \"red\" || n > 3)"
        );
        page.after = None;
        page.upto = None;
        let kept = ["p1".to_owned(), "p2".to_owned()];
        page.subset.partitions = Some(&kept);
        let whole = page_query(&page, vec!["id".into()]);
        assert_eq!(whole.expr, "color == \"red\" || n > 3");
        assert_eq!(whole.partition_names, ["p1", "p2"]);
        // A task's own partition is read alone.
        page.partition = Some("p2");
        assert_eq!(page_query(&page, vec![]).partition_names, ["p2"]);
    }
}
