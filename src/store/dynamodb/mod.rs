//! The DynamoDB job store: one table for every job, as the Lambda deployment keeps it.
//!
//! | item | `pk` | `sk` |
//! |---|---|---|
//! | job | `JOB#<id>` | `META` |
//! | task | `JOB#<id>` | `TASK#<task id>` |
//! | log entry | `JOB#<id>` | `LOG#<time>#<n>` |
//! | idempotency key | `IDEM#<key>` | `IDEM` |
//!
//! Records are mapped with `serde_dynamo` into a `record` map; beside it sit the attributes
//! that conditions, listings and expiry need: `version` (jobs), `fence` and `owner` (tasks),
//! `status` and `created` (the `by_status` and `by_time` indexes list jobs newest first) and
//! `expires_at` (the table's TTL attribute). Every change two workers could race on is one
//! conditional write, as in the embedded store; a new job and its idempotency key are written
//! in one transaction.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};

use super::{Created, Expected, JobPage, JobStore, StoreError};
use crate::domain::pace::Pace;
use crate::domain::{Job, JobStatus, LogEntry, Task};

mod items;

use items::{
    backend, condition_failed, from_item, job_pk, n, record, s, sdk, string_of, swap_condition,
    timestamp, Item,
};
pub use items::{BY_STATUS, BY_TIME, DEFAULT_RETENTION_DAYS, PK, SK, TTL_ATTRIBUTE, WEBHOOKS_DUE};
/// Log keys sort by time, then by a per-process counter for entries in the same microsecond.
static LOG_SEQ: AtomicU64 = AtomicU64::new(0);

/// A job store in one DynamoDB table (see the module docs for its layout).
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    retention: Duration,
}
impl DynamoStore {
    /// A store on `table`; ended jobs, and every task and log item, expire `retention` after
    /// their last write (through the table's TTL on `expires_at`).
    pub fn new(client: Client, table: impl Into<String>, retention: Duration) -> Self {
        Self {
            client,
            table: table.into(),
            retention,
        }
    }

    fn expiry(&self, from: DateTime<Utc>) -> AttributeValue {
        n((from + self.retention).timestamp())
    }

    fn job_item(&self, job: &Job) -> Result<Item, StoreError> {
        let mut item = Item::new();
        item.insert(PK.into(), s(job_pk(&job.id)));
        item.insert(SK.into(), s("META"));
        item.insert("kind".into(), s("JOB"));
        item.insert("status".into(), s(job.status.as_str()));
        // Time, then id: unique, and newest first when read backwards.
        item.insert(
            "created".into(),
            s(format!("{}#{}", timestamp(job.created_at), job.id)),
        );
        item.insert("version".into(), n(job.version));
        item.insert("record".into(), record(job)?);
        if job.status.is_terminal() {
            let ended = job.finished_at.unwrap_or_else(Utc::now);
            item.insert(TTL_ATTRIBUTE.into(), self.expiry(ended));
        }
        if let Some(due) = job.webhook_due() {
            // Present only while pending: the index holds nothing else.
            item.insert("hook".into(), s("DUE"));
            item.insert(
                "hook_due".into(),
                s(format!("{}#{}", timestamp(due), job.id)),
            );
        }
        Ok(item)
    }

    fn task_item(&self, task: &Task) -> Result<Item, StoreError> {
        let mut item = Item::new();
        item.insert(PK.into(), s(job_pk(&task.job_id)));
        item.insert(SK.into(), s(format!("TASK#{}", task.id)));
        item.insert("fence".into(), n(task.fence));
        item.insert("rev".into(), n(task.rev));
        if let Some(lease) = &task.lease {
            item.insert("owner".into(), s(&lease.owner));
        }
        item.insert("record".into(), record(task)?);
        item.insert(TTL_ATTRIBUTE.into(), self.expiry(Utc::now()));
        Ok(item)
    }

    async fn get_item(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .key(SK, s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk(&self.table, "GetItem", e))?;
        Ok(out.item)
    }

    /// Every item of a job whose sort key starts with `prefix`, in key order (all pages).
    async fn query_prefix(&self, job_id: &str, prefix: &str) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", s(job_pk(job_id)))
                .expression_attribute_values(":prefix", s(prefix))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk(&self.table, "Query", e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }

    /// The job an idempotency key points at, if both still exist.
    async fn job_of_key(&self, key: &str) -> Result<Option<(String, Option<Job>)>, StoreError> {
        let Some(item) = self.get_item(format!("IDEM#{key}"), "IDEM").await? else {
            return Ok(None);
        };
        let job_id =
            string_of(&item, "job_id").ok_or_else(|| backend("idempotency item without job_id"))?;
        let job = self.get_job(&job_id).await?;
        Ok(Some((job_id, job)))
    }

    /// Deletes an idempotency item whose job has expired, so that the key can be used again.
    async fn drop_stale_key(&self, key: &str, job_id: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(format!("IDEM#{key}")))
            .key(SK, s("IDEM"))
            .condition_expression("job_id = :job")
            .expression_attribute_values(":job", s(job_id))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Ok(()),
            Err(e) => Err(sdk(&self.table, "DeleteItem", e)),
        }
    }
}

#[async_trait]
impl JobStore for DynamoStore {
    async fn create_job(&self, job: &Job) -> Result<Created, StoreError> {
        let item = self.job_item(job)?;
        let Some(key) = job.request.idempotency_key.clone() else {
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
                .send()
                .await
                .map_err(|e| sdk(&self.table, "PutItem", e))?;
            return Ok(Created::New(job.clone()));
        };
        let put_job = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .build()
            .map_err(backend)?;
        let mut key_item = Item::new();
        key_item.insert(PK.into(), s(format!("IDEM#{key}")));
        key_item.insert(SK.into(), s("IDEM"));
        key_item.insert("job_id".into(), s(&job.id));
        let put_key = Put::builder()
            .table_name(&self.table)
            .set_item(Some(key_item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .build()
            .map_err(backend)?;
        // Twice at most: a key whose job has expired is dropped once, then taken.
        for _ in 0..2 {
            let result = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(put_job.clone()).build())
                .transact_items(TransactWriteItem::builder().put(put_key.clone()).build())
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(Created::New(job.clone())),
                Err(e) => e,
            };
            // The cancellation reasons say which write's condition failed: the key's means
            // another job holds it.
            let key_taken = match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                    c.cancellation_reasons.as_ref()
                }
                _ => None,
            }
            .and_then(|r| r.get(1))
            .and_then(|r| r.code())
            .is_some_and(|c| c == "ConditionalCheckFailed");
            if !key_taken {
                return Err(sdk(&self.table, "TransactWriteItems", err));
            }
            match self.job_of_key(&key).await? {
                Some((_, Some(existing))) => return Ok(Created::Existing(existing)),
                Some((stale, None)) => self.drop_stale_key(&key, &stale).await?,
                None => {}
            }
        }
        Err(StoreError::Conflict(format!("idempotency key `{key}`")))
    }

    async fn get_job(&self, id: &str) -> Result<Option<Job>, StoreError> {
        self.get_item(job_pk(id), "META")
            .await?
            .map(|item| from_item(&item))
            .transpose()
    }

    async fn list_jobs(
        &self,
        status: Option<JobStatus>,
        limit: usize,
        next: Option<&str>,
    ) -> Result<JobPage, StoreError> {
        let start: Option<Item> = next
            .map(|token| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(token)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<HashMap<String, String>>(&b).ok())
                    .map(|m| m.into_iter().map(|(k, v)| (k, s(v))).collect())
                    .ok_or_else(|| StoreError::BadPageToken(token.to_owned()))
            })
            .transpose()?;
        let limit = limit.clamp(1, 1000);
        let (index, key_name, key_value) = match status {
            Some(st) => (BY_STATUS, "status", st.as_str()),
            None => (BY_TIME, "kind", "JOB"),
        };
        // One more than asked, to know whether a next page exists.
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#k = :v")
            .expression_attribute_names("#k", key_name)
            .expression_attribute_values(":v", s(key_value))
            .scan_index_forward(false)
            .limit((limit + 1) as i32)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| sdk(&self.table, "Query", e))?;
        let items = out.items.unwrap_or_default();
        let more = items.len() > limit;
        let mut jobs = Vec::new();
        let mut last_key = None;
        for item in items.iter().take(limit) {
            jobs.push(from_item(item)?);
            let key: HashMap<String, String> = [PK, SK, key_name, "created"]
                .iter()
                .filter_map(|k| string_of(item, k).map(|v| (k.to_string(), v)))
                .collect();
            last_key = Some(key);
        }
        let next = match (more, last_key) {
            (true, Some(key)) => Some(
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(serde_json::to_vec(&key).map_err(backend)?),
            ),
            _ => None,
        };
        Ok(JobPage { jobs, next })
    }

    async fn save_job(&self, job: &Job) -> Result<Job, StoreError> {
        let mut new = job.clone();
        new.version = job.version + 1;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.job_item(&new)?))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", n(job.version))
            .send()
            .await;
        match result {
            Ok(_) => {}
            Err(e) if condition_failed(&e) => return Err(StoreError::Conflict(new.id.clone())),
            Err(e) => return Err(sdk(&self.table, "PutItem", e)),
        }
        if new.status.is_terminal() {
            if let Some(key) = &new.request.idempotency_key {
                // The key expires with its job; if this write is lost, `create_job` drops the
                // key once its job is gone.
                let ended = new.finished_at.unwrap_or_else(Utc::now);
                let result = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .key(PK, s(format!("IDEM#{key}")))
                    .key(SK, s("IDEM"))
                    .update_expression("SET #ttl = :ttl")
                    .condition_expression("job_id = :job")
                    .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                    .expression_attribute_values(":ttl", self.expiry(ended))
                    .expression_attribute_values(":job", s(&new.id))
                    .send()
                    .await;
                if let Err(e) = result {
                    if !condition_failed(&e) {
                        tracing::warn!(job_id = %new.id, "cannot set the idempotency key's expiry: {}", crate::aws::error_line(&e));
                    }
                }
            }
        }
        Ok(new)
    }

    async fn put_tasks(&self, tasks: &[Task]) -> Result<(), StoreError> {
        // Insert-if-absent, one conditional put per task: a repeated plan keeps the progress of
        // tasks that exist. The job only enters its copy phase once every put succeeded.
        for task in tasks {
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(self.task_item(task)?))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
                .send()
                .await;
            match result {
                Ok(_) => {}
                Err(e) if condition_failed(&e) => {}
                Err(e) => return Err(sdk(&self.table, "PutItem", e)),
            }
        }
        Ok(())
    }

    async fn get_task(&self, job_id: &str, task_id: &str) -> Result<Option<Task>, StoreError> {
        self.get_item(job_pk(job_id), &format!("TASK#{task_id}"))
            .await?
            .map(|item| from_item(&item))
            .transpose()
    }

    async fn list_tasks(&self, job_id: &str) -> Result<Vec<Task>, StoreError> {
        self.query_prefix(job_id, "TASK#")
            .await?
            .iter()
            .map(from_item)
            .collect()
    }

    async fn list_due_webhooks(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Job>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(WEBHOOKS_DUE)
            .key_condition_expression("#h = :due AND #d <= :now")
            .expression_attribute_names("#h", "hook")
            .expression_attribute_names("#d", "hook_due")
            .expression_attribute_values(":due", s("DUE"))
            // `~` sorts after the `#id` suffix: due at this very microsecond counts.
            .expression_attribute_values(":now", s(format!("{}~", timestamp(now))))
            .limit(limit.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(|e| sdk(&self.table, "Query", e))?;
        out.items
            .unwrap_or_default()
            .iter()
            .map(from_item)
            .collect()
    }

    async fn swap_task(&self, expected: &Expected<'_>, new: &Task) -> Result<bool, StoreError> {
        let (condition, names, values) = swap_condition(expected);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.task_item(new)?))
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(sdk(&self.table, "PutItem", e)),
        }
    }

    async fn split_task(
        &self,
        expected: &Expected<'_>,
        kept: &Task,
        rests: &[Task],
    ) -> Result<bool, StoreError> {
        let (condition, names, values) = swap_condition(expected);
        let put_kept = Put::builder()
            .table_name(&self.table)
            .set_item(Some(self.task_item(kept)?))
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(backend)?;
        let mut write = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put_kept).build());
        for rest in rests {
            let put_rest = Put::builder()
                .table_name(&self.table)
                .set_item(Some(self.task_item(rest)?))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
                .build()
                .map_err(backend)?;
            write = write.transact_items(TransactWriteItem::builder().put(put_rest).build());
        }
        let result = write.send().await;
        match result {
            Ok(_) => Ok(true),
            Err(e) => match e.as_service_error() {
                // Either condition failed: the task moved on, or the new id exists.
                Some(TransactWriteItemsError::TransactionCanceledException(_)) => Ok(false),
                _ => Err(sdk(&self.table, "TransactWriteItems", e)),
            },
        }
    }

    async fn append_log(&self, job_id: &str, entry: &LogEntry) -> Result<(), StoreError> {
        let seq = LOG_SEQ.fetch_add(1, Ordering::Relaxed);
        let mut item = Item::new();
        item.insert(PK.into(), s(job_pk(job_id)));
        item.insert(
            SK.into(),
            s(format!("LOG#{}#{seq:012}", timestamp(entry.time))),
        );
        item.insert("record".into(), record(entry)?);
        item.insert(TTL_ATTRIBUTE.into(), self.expiry(Utc::now()));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| sdk(&self.table, "PutItem", e))?;
        Ok(())
    }

    async fn get_pace(&self, key: &str) -> Result<Option<Pace>, StoreError> {
        self.get_item(format!("PACE#{key}"), "META")
            .await?
            .map(|item| from_item(&item))
            .transpose()
    }

    async fn save_pace(&self, pace: &Pace) -> Result<Option<Pace>, StoreError> {
        let mut saved = pace.clone();
        saved.version = pace.version + 1;
        let mut item = Item::new();
        item.insert(PK.into(), s(format!("PACE#{}", saved.key)));
        item.insert(SK.into(), s("META"));
        item.insert("version".into(), n(saved.version));
        item.insert("record".into(), record(&saved)?);
        // A pace nobody writes to any more goes with the retention of what wrote it.
        item.insert(TTL_ATTRIBUTE.into(), self.expiry(Utc::now()));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let put = if pace.version == 0 {
            put.condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
        } else {
            put.condition_expression("version = :v")
                .expression_attribute_values(":v", n(pace.version))
        };
        match put.send().await {
            Ok(_) => Ok(Some(saved)),
            Err(e) if condition_failed(&e) => Ok(None),
            Err(e) => Err(sdk(&self.table, "PutItem", e)),
        }
    }

    async fn remember_request_id(
        &self,
        id: &str,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        // One item per id, gone by TTL after `until`; an item TTL has not removed yet but
        // whose time is over does not count.
        let mut item = Item::new();
        item.insert(PK.into(), s(format!("REQ#{id}")));
        item.insert(SK.into(), s("META"));
        item.insert(TTL_ATTRIBUTE.into(), n(until.timestamp()));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk) OR #ttl <= :now")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", n(Utc::now().timestamp()));
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(sdk(&self.table, "PutItem", e)),
        }
    }

    async fn list_logs(&self, job_id: &str) -> Result<Vec<LogEntry>, StoreError> {
        self.query_prefix(job_id, "LOG#")
            .await?
            .iter()
            .map(from_item)
            .collect()
    }
}
