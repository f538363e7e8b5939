//! The DynamoDB job store passes the shared job store conformance suite on a real DynamoDB API
//! (moto), plus what only this store has: expiry through TTL and the idempotency item.

mod common;

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use common::aws::{create_table, scan};
use vecmigrate::domain::{Job, JobStatus, MigrationRequest};
use vecmigrate::store::dynamodb::DynamoStore;
use vecmigrate::store::{Created, JobStore};

async fn fresh() -> (DynamoStore, aws_sdk_dynamodb::Client, String) {
    let table = common::unique("jobs");
    let client = create_table(&table).await;
    let store = DynamoStore::new(client.clone(), table.clone(), chrono::Duration::days(7));
    (store, client, table)
}

async fn dynamo_store() -> Arc<dyn JobStore> {
    Arc::new(fresh().await.0)
}

vecmigrate::job_store_suite!(dynamo_store);

fn keyed_request(key: &str) -> MigrationRequest {
    let mut r = MigrationRequest::from_json(
        r#"{"source":{"uri":"http://127.0.0.1:1","token":"root:SourcePassword"},"target":{"uri":"http://127.0.0.1:2"},
            "databases":[{"name":"default","collections":[{"name":"c"}]}]}"#,
    )
    .unwrap();
    r.idempotency_key = Some(key.into());
    r
}

#[tokio::test]
async fn ended_jobs_and_their_idempotency_key_expire_after_the_retention() {
    // GIVEN a job with an idempotency key
    let (store, client, table) = fresh().await;
    let job = Job::new(Job::new_id(), keyed_request("nightly-1"), Utc::now());
    store.create_job(&job).await.unwrap();
    let ttl_of = |pk: String, sk: &'static str| {
        let (client, table) = (client.clone(), table.clone());
        async move {
            let item = client
                .get_item()
                .table_name(table)
                .key("pk", AttributeValue::S(pk))
                .key("sk", AttributeValue::S(sk.into()))
                .send()
                .await
                .unwrap()
                .item
                .unwrap();
            item.get("expires_at")
                .map(|v| v.as_n().unwrap().parse::<i64>().unwrap())
        }
    };
    // THEN while it runs, neither item expires
    assert_eq!(ttl_of(format!("JOB#{}", job.id), "META").await, None);
    assert_eq!(ttl_of("IDEM#nightly-1".into(), "IDEM").await, None);

    // WHEN it ends
    let mut ended = job.clone();
    ended
        .finish(JobStatus::Cancelled, None, Utc::now())
        .unwrap();
    let ended = store.save_job(&ended).await.unwrap();

    // THEN both expire 7 days after the end
    let expected = (ended.finished_at.unwrap() + chrono::Duration::days(7)).timestamp();
    assert_eq!(
        ttl_of(format!("JOB#{}", job.id), "META").await,
        Some(expected)
    );
    assert_eq!(
        ttl_of("IDEM#nightly-1".into(), "IDEM").await,
        Some(expected)
    );
}

#[tokio::test]
async fn a_key_whose_job_expired_can_be_used_again() {
    // GIVEN a key whose job TTL removed (the idempotency item outlived it)
    let (store, client, table) = fresh().await;
    let first = Job::new(Job::new_id(), keyed_request("weekly"), Utc::now());
    store.create_job(&first).await.unwrap();
    client
        .delete_item()
        .table_name(&table)
        .key("pk", AttributeValue::S(format!("JOB#{}", first.id)))
        .key("sk", AttributeValue::S("META".into()))
        .send()
        .await
        .unwrap();
    // WHEN a new job uses the key
    let second = Job::new(Job::new_id(), keyed_request("weekly"), Utc::now());
    // THEN it is created, and the key now points at it
    assert_eq!(
        store.create_job(&second).await.unwrap(),
        Created::New(second.clone())
    );
    let third = Job::new(Job::new_id(), keyed_request("weekly"), Utc::now());
    assert_eq!(
        store.create_job(&third).await.unwrap(),
        Created::Existing(second)
    );
}

#[tokio::test]
async fn no_item_holds_a_token() {
    let (store, client, table) = fresh().await;
    let job = Job::new(Job::new_id(), keyed_request("k"), Utc::now());
    store.create_job(&job).await.unwrap();
    let items = scan(&client, &table).await;
    assert_eq!(items.len(), 2, "the job and its idempotency key: {items:?}");
    assert!(
        items.iter().all(|i| !i.contains("SourcePassword")),
        "{items:?}"
    );
}
