//! AWS side of the harness: tables, queues and secrets on the moto server that
//! `scripts/test.sh` started. The SDK finds it through the standard `AWS_ENDPOINT_URL_*`
//! variables, exactly as production code finds AWS.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use vecmigrate::store::dynamodb::{BY_STATUS, BY_TIME, PK, SK, TTL_ATTRIBUTE, WEBHOOKS_DUE};

/// The SDK configuration, after checking that the emulator is configured.
pub async fn config() -> aws_config::SdkConfig {
    if std::env::var("AWS_ENDPOINT_URL_DYNAMODB").is_err() {
        panic!("AWS_ENDPOINT_URL_DYNAMODB is not set: run the tests through scripts/test.sh, which starts the moto server");
    }
    vecmigrate::aws::config().await
}

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .unwrap()
}

fn string_attribute(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .unwrap()
}

fn index(name: &str, hash: &str, range: &str) -> GlobalSecondaryIndex {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key(hash, KeyType::Hash))
        .key_schema(key(range, KeyType::Range))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .unwrap()
}

/// A fresh job table, defined as `template.yaml` defines it (keys, both indexes, TTL).
pub async fn create_table(name: &str) -> aws_sdk_dynamodb::Client {
    let client = aws_sdk_dynamodb::Client::new(&config().await);
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(PK, KeyType::Hash))
        .key_schema(key(SK, KeyType::Range))
        .attribute_definitions(string_attribute(PK))
        .attribute_definitions(string_attribute(SK))
        .attribute_definitions(string_attribute("status"))
        .attribute_definitions(string_attribute("kind"))
        .attribute_definitions(string_attribute("created"))
        .attribute_definitions(string_attribute("hook"))
        .attribute_definitions(string_attribute("hook_due"))
        .global_secondary_indexes(index(BY_STATUS, "status", "created"))
        .global_secondary_indexes(index(BY_TIME, "kind", "created"))
        .global_secondary_indexes(index(WEBHOOKS_DUE, "hook", "hook_due"))
        .send()
        .await
        .expect("create the job table on moto");
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(TTL_ATTRIBUTE)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("enable TTL");
    client
}

/// A fresh standard queue with the given visibility timeout; returns its URL.
pub async fn create_queue(name: &str, visibility_seconds: u32) -> (aws_sdk_sqs::Client, String) {
    let client = aws_sdk_sqs::Client::new(&config().await);
    let out = client
        .create_queue()
        .queue_name(name)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            visibility_seconds.to_string(),
        )
        .send()
        .await
        .expect("create the work queue on moto");
    (client, out.queue_url.unwrap())
}

/// Stores a secret string; returns its ARN.
pub async fn create_secret(name: &str, value: &str) -> String {
    let client = aws_sdk_secretsmanager::Client::new(&config().await);
    client
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
        .expect("create a secret on moto")
        .arn
        .unwrap()
}

/// Every item of a table, raw (to check what the store really wrote).
pub async fn scan(client: &aws_sdk_dynamodb::Client, table: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = client
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        items.extend(
            out.items
                .unwrap_or_default()
                .iter()
                .map(|i| format!("{i:?}")),
        );
        start = out.last_evaluated_key;
        if start.is_none() {
            return items;
        }
    }
}

/// A fresh S3 bucket (path-style, as vecmigrate addresses a custom endpoint), and its client.
pub async fn create_bucket(name: &str) -> aws_sdk_s3::Client {
    let client = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config().await)
            .force_path_style(true)
            .build(),
    );
    client.create_bucket().bucket(name).send().await.unwrap();
    client
}

/// The keys under `prefix` in `bucket`.
pub async fn keys_under(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<String> {
    let listed = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}
