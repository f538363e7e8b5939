//! The table's layout and how records become items: key names, attribute values, the
//! condition a task swap is written on, and the errors the SDK answers, as store errors.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};

use crate::store::{Expected, StoreError};

/// The table's partition key attribute.
pub const PK: &str = "pk";
/// The table's sort key attribute.
pub const SK: &str = "sk";
/// The table's TTL attribute (epoch seconds).
pub const TTL_ATTRIBUTE: &str = "expires_at";
/// The index listing jobs of one status, newest first (`status`, `created`).
pub const BY_STATUS: &str = "by_status";
/// The index listing all jobs, newest first (`kind`, `created`).
pub const BY_TIME: &str = "by_time";
/// The sparse index of ended jobs whose webhook is pending (`hook`, `hook_due`).
pub const WEBHOOKS_DUE: &str = "webhooks_due";

pub(super) type Item = HashMap<String, AttributeValue>;

/// How long ended jobs are kept unless the deployment says (`VECMIGRATE_RETENTION_DAYS`).
pub const DEFAULT_RETENTION_DAYS: u32 = 30;

pub(super) fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// A failed DynamoDB call as a store error; a missing table is said in a sentence that names
/// it, since that is what a mistyped `--dynamodb-table` or a wrong region produces.
pub(super) fn sdk<E, R>(
    table: &str,
    operation: &str,
    e: aws_sdk_dynamodb::error::SdkError<E, R>,
) -> StoreError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    let code = e.as_service_error().and_then(|s| s.code());
    if code == Some("ResourceNotFoundException") {
        return StoreError::Backend(format!(
            "DynamoDB table `{table}` does not exist in this account and region \
             (check the table name, e.g. the stack's JobTableName output, and AWS_REGION)"
        ));
    }
    StoreError::Backend(format!(
        "DynamoDB {operation}: {}",
        crate::aws::error_line(&e)
    ))
}

/// The condition of a task write that expects the record as `expected` (a record written
/// before revisions has no `rev`, which counts as 0), with its names and values.
pub(super) fn swap_condition(
    expected: &Expected<'_>,
) -> (
    &'static str,
    HashMap<String, String>,
    HashMap<String, AttributeValue>,
) {
    let mut names = HashMap::from([("#owner".to_owned(), "owner".to_owned())]);
    let mut values = HashMap::from([(":fence".to_owned(), n(expected.fence))]);
    if let Some(owner) = expected.owner {
        values.insert(":owner".into(), s(owner));
    }
    names.insert("#rev".into(), "rev".into());
    values.insert(":rev".into(), n(expected.rev));
    let condition = match (expected.owner.is_some(), expected.rev == 0) {
        (true, false) => "fence = :fence AND #owner = :owner AND #rev = :rev",
        (true, true) => {
            "fence = :fence AND #owner = :owner AND (#rev = :rev OR attribute_not_exists(#rev))"
        }
        (false, false) => "fence = :fence AND attribute_not_exists(#owner) AND #rev = :rev",
        (false, true) => {
            "fence = :fence AND attribute_not_exists(#owner) AND (#rev = :rev OR attribute_not_exists(#rev))"
        }
    };
    (condition, names, values)
}

/// True when a write failed only because its condition did not hold.
pub(super) fn condition_failed<E: ProvideErrorMetadata, R>(
    e: &aws_sdk_dynamodb::error::SdkError<E, R>,
) -> bool {
    e.as_service_error()
        .and_then(|s| s.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(super) fn job_pk(id: &str) -> String {
    format!("JOB#{id}")
}

pub(super) fn timestamp(t: DateTime<Utc>) -> String {
    // Fixed width, so text order is time order.
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub(super) fn record<T: serde::Serialize>(value: &T) -> Result<AttributeValue, StoreError> {
    serde_dynamo::to_attribute_value(value).map_err(|e| backend(format!("cannot map record: {e}")))
}

pub(super) fn from_item<T: serde::de::DeserializeOwned>(item: &Item) -> Result<T, StoreError> {
    let value = item
        .get("record")
        .cloned()
        .ok_or_else(|| backend("item without a record"))?;
    serde_dynamo::from_attribute_value(value)
        .map_err(|e| backend(format!("unreadable record: {e}")))
}

pub(super) fn string_of(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}
