//! The migration request: one JSON shape for every trigger (CLI `--spec`, HTTP body, invoke,
//! schedule), parsed strictly and validated before anything touches a cluster.
//!
//! Every error names the JSON path of the bad field (`databases[0].collections[1].target_name`),
//! so a caller can fix the request without reading our code. `options.rs` holds how a job runs,
//! `webhook.rs` where its outcome goes.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use super::cluster::ClusterSpec;
pub use super::secret::{Secret, REDACTED};

pub(crate) mod objects;
mod options;
mod webhook;

objects::objects_only!(
    MigrationRequest,
    DatabaseSpec,
    CollectionSpec,
    SchemaOverrides,
    PartitionKeyOverride,
    Options,
    WebhookSpec,
    ClusterSpec,
    crate::domain::cluster::TlsSpec,
    crate::domain::new_cluster::NewCluster,
);

pub use options::{
    parse_time, OnCountMismatch, Options, VerifyMode, WriteVia, DEFAULT_IMPORT_FILE_MB,
    DEFAULT_MAX_OUTAGE, DEFAULT_SAMPLE_SIZE, MAX_IMPORT_FILE_MB, MAX_OUTAGE_RANGE, MAX_SAMPLE_SIZE,
    MIN_WRITE_MB_PER_S,
};
pub use webhook::WebhookSpec;

/// The most entities Milvus returns from one query (`limit` + `offset` ≤ 16,384): the
/// largest page, and the largest batch a request may ask for.
pub const MAX_QUERY_ENTITIES: u32 = 16_384;
/// The largest batch a request may ask for.
pub const MAX_BATCH_SIZE: u32 = MAX_QUERY_ENTITIES;
/// The default number of entities read and written per page at most: as many as a query may
/// return, as pages are sized by bytes within it (`milvus::batch::TARGET_PAGE_BYTES`).
pub const DEFAULT_BATCH_SIZE: u32 = MAX_QUERY_ENTITIES;
/// The default number of parallel workers.
pub const DEFAULT_MAX_WORKERS: u32 = 4;
/// The most times one collection may be migrated again after a count mismatch.
pub const MAX_REMIGRATIONS: u32 = 5;

/// The most databases one request may name.
pub const MAX_DATABASES: usize = 64;
/// The most collections one request may list per database.
pub const MAX_COLLECTIONS: usize = 1000;

/// The largest number of parallel workers a job may ask for.
pub const MAX_WORKERS: u32 = 256;

/// A whole migration request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
#[serde(deny_unknown_fields)]
pub struct MigrationRequest {
    /// A caller-chosen key: starting the same request twice with it returns the first job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// The cluster read from.
    pub source: ClusterSpec,
    /// The cluster written to.
    pub target: ClusterSpec,
    /// The databases (and their collections) to migrate.
    pub databases: Vec<DatabaseSpec>,
    /// How the job runs.
    #[serde(default)]
    pub options: Options,
    /// Where the outcome is reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookSpec>,
    /// Only plan: run preflight, answer what would be migrated and how long it would take,
    /// and write nothing (no job is recorded).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

/// One database to migrate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
#[serde(deny_unknown_fields)]
pub struct DatabaseSpec {
    /// The source database.
    pub name: String,
    /// The target database (created when missing); defaults to `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_name: Option<String>,
    /// The collections; empty means every collection of the database.
    #[serde(default)]
    pub collections: Vec<CollectionSpec>,
}

impl DatabaseSpec {
    /// The database name on the target.
    pub fn target(&self) -> &str {
        self.target_name.as_deref().unwrap_or(&self.name)
    }
}

/// One collection to migrate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
#[serde(deny_unknown_fields)]
pub struct CollectionSpec {
    /// The source collection.
    pub name: String,
    /// The target collection; defaults to `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_name: Option<String>,
    /// The few schema changes a migration allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_overrides: Option<SchemaOverrides>,
    /// Copy only the entities that match this Milvus boolean expression (checked by the
    /// source in preflight).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// Copy only these partitions (and create only them on the target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<Vec<String>>,
}

/// The part of one source collection a job copies: all of it, or the entities of some
/// partitions, or those matching a filter, or both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Selection<'a> {
    /// The filter every read of the source adds to its key range.
    pub filter: Option<&'a str>,
    /// The partitions copied; `None`: every partition.
    pub partitions: Option<&'a [String]>,
}

impl Selection<'_> {
    /// Whether `partition` is copied.
    pub fn holds(&self, partition: &str) -> bool {
        self.partitions
            .is_none_or(|kept| kept.iter().any(|p| p == partition))
    }

    /// True when the whole collection is copied.
    pub fn is_all(&self) -> bool {
        self.filter.is_none() && self.partitions.is_none()
    }
}

/// The longest filter expression accepted.
pub const MAX_FILTER_CHARS: usize = 65_536;

/// The only schema changes a migration allows (as Zilliz Cloud's "Configure Schema" step):
/// everything else of the source schema is kept as it is.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(remote = "Self")]
#[serde(deny_unknown_fields)]
pub struct SchemaOverrides {
    /// Turn the dynamic field on (turning it off would drop the source's dynamic data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_dynamic_field: Option<bool>,
    /// Route entities by this field, into this many partitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_key: Option<PartitionKeyOverride>,
    /// The target collection's description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The partition key the target collection gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self")]
#[serde(deny_unknown_fields)]
pub struct PartitionKeyOverride {
    /// An Int64 or VarChar field of the source schema (not the primary key, not nullable).
    pub field: String,
    /// Partitions Milvus spreads the keys over; the server's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_partitions: Option<i64>,
}

/// The most partitions a partition key may ask for (Milvus's own limit).
pub const MAX_KEY_PARTITIONS: i64 = 1024;
/// The longest description accepted.
pub const MAX_DESCRIPTION_CHARS: usize = 2048;

impl SchemaOverrides {
    fn validate(&self, path: &str) -> Result<(), FieldError> {
        if let Some(pk) = &self.partition_key {
            if pk.field.trim().is_empty() {
                return Err(FieldError::new(
                    format!("{path}.partition_key.field"),
                    "must name a field of the collection",
                ));
            }
            if let Some(n) = pk.num_partitions {
                if !(1..=MAX_KEY_PARTITIONS).contains(&n) {
                    return Err(FieldError::new(
                        format!("{path}.partition_key.num_partitions"),
                        format!("must be between 1 and {MAX_KEY_PARTITIONS}"),
                    ));
                }
            }
        }
        if let Some(d) = &self.description {
            if d.chars().count() > MAX_DESCRIPTION_CHARS {
                return Err(FieldError::new(
                    format!("{path}.description"),
                    format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
                ));
            }
        }
        Ok(())
    }
}

impl CollectionSpec {
    /// A collection migrated under its own name.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            target_name: None,
            schema_overrides: None,
            filter: None,
            partitions: None,
        }
    }

    /// The collection name on the target.
    pub fn target(&self) -> &str {
        self.target_name.as_deref().unwrap_or(&self.name)
    }

    /// What the job copies of this collection.
    pub fn selection(&self) -> Selection<'_> {
        Selection {
            filter: self.filter.as_deref(),
            partitions: self.partitions.as_deref(),
        }
    }

    /// A filter must say something; partitions must be named, each once. Whether they exist
    /// and whether the source understands the filter is preflight's to ask.
    fn validate_selection(&self, path: &str) -> Result<(), FieldError> {
        if let Some(filter) = &self.filter {
            if filter.trim().is_empty() {
                return Err(FieldError::new(
                    format!("{path}.filter"),
                    "is empty; leave it out to copy every entity",
                ));
            }
            if filter.chars().count() > MAX_FILTER_CHARS {
                return Err(FieldError::new(
                    format!("{path}.filter"),
                    format!("must be at most {MAX_FILTER_CHARS} characters"),
                ));
            }
        }
        if let Some(partitions) = &self.partitions {
            if partitions.is_empty() {
                return Err(FieldError::new(
                    format!("{path}.partitions"),
                    "is empty; leave it out to copy every partition",
                ));
            }
            let mut seen = HashSet::new();
            for (k, name) in partitions.iter().enumerate() {
                check_name(&format!("{path}.partitions[{k}]"), name)?;
                if !seen.insert(name) {
                    return Err(FieldError::new(
                        format!("{path}.partitions[{k}]"),
                        format!("partition `{name}` is listed twice"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A request that cannot be accepted: the JSON path of the bad field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// JSON path of the field, e.g. `databases[0].collections[1].name`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl FieldError {
    /// A new error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        // A message may quote what the caller sent: its control characters (escapes, newlines)
        // are written out, so that nobody's terminal interprets them.
        Self {
            field: escape_controls(&field.into()),
            message: escape_controls(&message.into()),
        }
    }
}

/// `text` with its control characters written as escapes (`\u{1b}`, `\n`); the rest as is.
pub fn escape_controls(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

impl MigrationRequest {
    /// Parses and validates a request from JSON text.
    pub fn from_json(text: &str) -> Result<Self, FieldError> {
        // A byte-order mark, as some editors on Windows save files, is not part of the JSON.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut de = serde_json::Deserializer::from_str(text);
        let request: MigrationRequest = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." { String::new() } else { path };
            // serde quotes a wrongly typed value in its message: never a secret's.
            if field.ends_with(".token")
                || field.ends_with(".api_key")
                || field.ends_with(".secret")
                || field.ends_with(".client_key")
            {
                return FieldError::new(field, "must be a string (the value is not shown)");
            }
            let message = e.into_inner().to_string();
            if message.starts_with("invalid type: sequence, expected struct") {
                return FieldError::new(field, "must be a JSON object ({…}), not an array");
            }
            FieldError::new(field, message)
        })?;
        // Text after the request is a mistake (two requests pasted, a stray character).
        de.end().map_err(|_| {
            FieldError::new(
                "",
                "there is text after the request's closing brace; send one JSON object",
            )
        })?;
        request.refuse_service_fields()?;
        request.validate(Utc::now())?;
        Ok(request)
    }

    /// Refuses what only the service writes into a request (sealed secrets, what the control
    /// plane said) and the marker it writes in place of a secret, from a caller.
    pub fn refuse_service_fields(&self) -> Result<(), FieldError> {
        if let Some(w) = &self.webhook {
            if w.sealed_secret.is_some() {
                return Err(FieldError::new(
                    "webhook.sealed_secret",
                    "is set by the service, not by callers; pass secret or secret_arn",
                ));
            }
            if w.secret.as_ref().is_some_and(Secret::is_redacted) {
                return Err(FieldError::new(
                    "webhook.secret",
                    super::secret::MARKER_GIVEN,
                ));
            }
        }
        self.source.refuse_service_fields("source")?;
        self.target.refuse_service_fields("target")
    }

    /// The schema overrides asked for one source collection.
    pub fn overrides(&self, database: &str, collection: &str) -> Option<&SchemaOverrides> {
        self.databases
            .iter()
            .filter(|d| d.name == database)
            .flat_map(|d| d.collections.iter())
            .find(|c| c.name == collection)
            .and_then(|c| c.schema_overrides.as_ref())
    }

    /// What the job copies of one source collection.
    pub fn selection(&self, database: &str, collection: &str) -> Selection<'_> {
        self.databases
            .iter()
            .filter(|d| d.name == database)
            .flat_map(|d| d.collections.iter())
            .find(|c| c.name == collection)
            .map(CollectionSpec::selection)
            .unwrap_or_default()
    }

    /// Checks everything that can be checked without a cluster.
    pub fn validate(&self, now: DateTime<Utc>) -> Result<(), FieldError> {
        if let Some(key) = &self.idempotency_key {
            if key.is_empty() || key.len() > 256 {
                return Err(FieldError::new(
                    "idempotency_key",
                    "must be 1 to 256 characters",
                ));
            }
        }
        self.source.validate("source")?;
        self.target.validate("target")?;
        if self.databases.is_empty() {
            return Err(FieldError::new(
                "databases",
                "must name at least one database (use \"default\" for the default database)",
            ));
        }
        self.validate_databases()?;
        self.options.validate(now)?;
        if let Some(w) = &self.webhook {
            w.validate()?;
        }
        Ok(())
    }

    /// Names valid, no collection listed twice, no two written to one target, and no more of
    /// them than one job should carry.
    fn validate_databases(&self) -> Result<(), FieldError> {
        if self.databases.len() > MAX_DATABASES {
            return Err(FieldError::new(
                "databases",
                format!("at most {MAX_DATABASES} databases per request; start several jobs"),
            ));
        }
        for (i, db) in self.databases.iter().enumerate() {
            if db.collections.len() > MAX_COLLECTIONS {
                return Err(FieldError::new(
                    format!("databases[{i}].collections"),
                    format!("at most {MAX_COLLECTIONS} collections per database in one request; start several jobs, or leave `collections` out to migrate all of them"),
                ));
            }
        }
        let mut targets = HashSet::new();
        let mut sources = HashSet::new();
        for (i, db) in self.databases.iter().enumerate() {
            let path = format!("databases[{i}]");
            check_name(&format!("{path}.name"), &db.name)?;
            if let Some(t) = &db.target_name {
                check_name(&format!("{path}.target_name"), t)?;
            }
            for (j, c) in db.collections.iter().enumerate() {
                let cpath = format!("{path}.collections[{j}]");
                check_name(&format!("{cpath}.name"), &c.name)?;
                if let Some(t) = &c.target_name {
                    check_name(&format!("{cpath}.target_name"), t)?;
                }
                if let Some(o) = &c.schema_overrides {
                    o.validate(&format!("{cpath}.schema_overrides"))?;
                }
                c.validate_selection(&cpath)?;
                if !sources.insert((db.name.clone(), c.name.clone())) {
                    return Err(FieldError::new(
                        format!("{cpath}.name"),
                        format!("collection `{}` is listed twice", c.name),
                    ));
                }
                if !targets.insert((db.target().to_owned(), c.target().to_owned())) {
                    return Err(FieldError::new(
                        format!("{cpath}.target_name"),
                        format!(
                            "two collections would be written to `{}.{}`; give one a different target_name",
                            db.target(),
                            c.target()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// A copy fit to store: every secret replaced by its marker.
    pub fn redacted(&self) -> Self {
        let mut r = self.clone();
        r.source.redact();
        r.target.redact();
        if let Some(w) = r.webhook.as_mut() {
            if w.secret.is_some() {
                w.secret = Some(Secret::new(REDACTED));
            }
        }
        r
    }

    /// The webhook's secret as given, unless it was redacted.
    pub fn webhook_secret(&self) -> Option<&Secret> {
        self.webhook
            .as_ref()
            .and_then(|w| w.secret.as_ref())
            .filter(|s| !s.is_redacted())
    }

    /// A copy fit to show: redacted, and without sealed tokens.
    pub fn public(&self) -> Self {
        let mut r = self.redacted();
        r.source.make_public();
        r.target.make_public();
        if let Some(w) = r.webhook.as_mut() {
            w.sealed_secret = None;
        }
        r
    }

    /// A stable digest of the request, to tell a reused idempotency key with another body.
    pub fn fingerprint(&self) -> String {
        // Serialization redacts secrets, so two requests that differ only in a token match:
        // the token is a credential, not part of what is migrated.
        let bytes = serde_json::to_vec(&self.public()).unwrap_or_default();
        let digest = Sha256::digest(bytes);
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Milvus names: a letter or `_` first, then letters, digits and `_`, at most 255 characters.
fn check_name(field: &str, name: &str) -> Result<(), FieldError> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || name.len() > 255 || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(FieldError::new(
            field,
            format!(
                "`{name}` is not a valid Milvus name (a letter or _ first, then letters, digits and _, at most 255)"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> &'static str {
        r#"{"source":{"uri":"http://127.0.0.1:19530","token":"root:Milvus"},
            "target":{"uri":"http://127.0.0.1:19531"},
            "databases":[{"name":"default","collections":[{"name":"products","target_name":"p2"}]}]}"#
    }

    #[test]
    fn parses_minimal_request_with_defaults() {
        let r = MigrationRequest::from_json(minimal()).unwrap();
        assert_eq!(r.options.batch_size, DEFAULT_BATCH_SIZE);
        assert_eq!(r.databases[0].collections[0].target(), "p2");
        assert_eq!(r.databases[0].target(), "default");
        assert_eq!(r.source.token.as_ref().unwrap().expose(), "root:Milvus");
    }

    #[test]
    fn unknown_field_names_its_path() {
        let text = minimal().replace(r#""target_name":"p2""#, r#""target_nam":"p2""#);
        let err = MigrationRequest::from_json(&text).unwrap_err();
        assert_eq!(err.field, "databases[0].collections[0].target_nam");
        assert!(err.message.contains("target_nam"), "{err}");
    }

    #[test]
    fn wrong_type_names_its_path() {
        let text = minimal().replace(
            r#""databases""#,
            r#""options":{"batch_size":"big"},"databases""#,
        );
        let err = MigrationRequest::from_json(&text).unwrap_err();
        assert_eq!(err.field, "options.batch_size");
    }

    #[test]
    fn staging_is_an_absolute_directory_or_an_s3_prefix_named_by_its_field() {
        let with = |options: &str| {
            let text = minimal().replace(
                r#""databases""#,
                &format!(r#""options":{options},"databases""#),
            );
            MigrationRequest::from_json(&text)
        };
        // No staging is the deployment's default, checked when the job is accepted.
        assert!(with(r#"{"write_mode":"import"}"#).is_ok());
        let relative = with(r#"{"write_mode":"auto","staging":"stage"}"#).unwrap_err();
        assert_eq!(relative.field, "options.staging");
        assert!(
            relative.message.contains("absolute directory"),
            "{relative}"
        );
        let bucket = with(r#"{"write_mode":"import","staging":"s3://B/p"}"#).unwrap_err();
        assert_eq!(bucket.field, "options.staging");
        assert!(with(r#"{"write_mode":"import","staging":"s3://stage-b/p"}"#).is_ok());
        let big = with(r#"{"import_file_mb":9501}"#).unwrap_err();
        assert_eq!(big.field, "options.import_file_mb");
        let bad = with(r#"{"write_mode":"bulk"}"#).unwrap_err();
        assert_eq!(bad.field, "options.write_mode");
        let ok = with(r#"{"write_mode":"import","staging":"/srv/stage"}"#).unwrap();
        assert_eq!(ok.options.write_mode, WriteVia::Import);
        assert_eq!(ok.options.import_file_mb, DEFAULT_IMPORT_FILE_MB);
    }

    #[test]
    fn a_mistyped_token_is_not_echoed() {
        let text = minimal().replace(r#""token":"root:Milvus""#, r#""token":987654321"#);
        let err = MigrationRequest::from_json(&text).unwrap_err();
        assert_eq!(err.field, "source.token");
        assert!(!err.to_string().contains("987654321"), "{err}");
    }

    #[test]
    fn verify_options_and_overrides_are_checked_by_path() {
        let with = |options: &str, overrides: &str| {
            let text = minimal()
                .replace(
                    r#""databases""#,
                    &format!(r#""options":{options},"databases""#),
                )
                .replace(
                    r#""target_name":"p2""#,
                    &format!(r#""target_name":"p2","schema_overrides":{overrides}"#),
                );
            MigrationRequest::from_json(&text)
        };
        let ok = with(
            r#"{"verify":"sample","verify_sample_size":1000}"#,
            r#"{"enable_dynamic_field":true,"partition_key":{"field":"tenant","num_partitions":16},"description":"d"}"#,
        )
        .unwrap();
        assert_eq!(ok.options.verify, VerifyMode::Sample);
        let o = ok.overrides("default", "products").unwrap();
        assert_eq!(o.partition_key.as_ref().unwrap().num_partitions, Some(16));
        for (options, overrides, field) in [
            (r#"{"verify":"all"}"#, "{}", "options.verify"),
            (
                r#"{"verify_sample_size":1001}"#,
                "{}",
                "options.verify_sample_size",
            ),
            (
                r#"{"verify_sample_size":0}"#,
                "{}",
                "options.verify_sample_size",
            ),
            (
                "{}",
                r#"{"partition_key":{"field":"t","num_partitions":0}}"#,
                "databases[0].collections[0].schema_overrides.partition_key.num_partitions",
            ),
            (
                "{}",
                r#"{"partition_key":{"field":" "}}"#,
                "databases[0].collections[0].schema_overrides.partition_key.field",
            ),
            (
                "{}",
                r#"{"partition_key":"tenant"}"#,
                "databases[0].collections[0].schema_overrides.partition_key",
            ),
            (
                "{}",
                r#"{"shards_num":2}"#,
                "databases[0].collections[0].schema_overrides.shards_num",
            ),
        ] {
            let err = with(options, overrides).unwrap_err();
            assert_eq!(err.field, field, "{err}");
        }
    }

    #[test]
    fn a_subset_is_checked_by_path() {
        let with = |selection: &str| {
            let text = minimal().replace(
                r#""target_name":"p2""#,
                &format!(r#""target_name":"p2",{selection}"#),
            );
            MigrationRequest::from_json(&text)
        };
        let ok = with(r#""filter":"age > 3","partitions":["a","b"]"#).unwrap();
        let selection = ok.selection("default", "products");
        assert_eq!(selection.filter, Some("age > 3"));
        assert!(selection.holds("a") && !selection.holds("c"));
        assert!(ok.selection("default", "other").is_all());
        let long = format!(r#""filter":"{}""#, "x".repeat(MAX_FILTER_CHARS + 1));
        for (selection, field, words) in [
            (r#""filter":" ""#, "filter", "is empty"),
            (long.as_str(), "filter", "at most"),
            (r#""partitions":[]"#, "partitions", "is empty"),
            (r#""partitions":["a","a"]"#, "partitions[1]", "listed twice"),
            (r#""partitions":["a",""]"#, "partitions[1]", ""),
        ] {
            let err = with(selection).unwrap_err();
            assert_eq!(
                err.field,
                format!("databases[0].collections[0].{field}"),
                "{err}"
            );
            assert!(err.to_string().contains(words), "{err}");
        }
    }

    #[test]
    fn out_of_range_batch_size_is_rejected() {
        let text = minimal().replace(
            r#""databases""#,
            r#""options":{"batch_size":20000},"databases""#,
        );
        let err = MigrationRequest::from_json(&text).unwrap_err();
        assert_eq!(err.field, "options.batch_size");
    }

    #[test]
    fn bad_uri_and_bad_names_are_rejected() {
        let err =
            MigrationRequest::from_json(&minimal().replace("http://127.0.0.1:19531", "ftp://x"))
                .unwrap_err();
        assert_eq!(err.field, "target.uri");
        let err =
            MigrationRequest::from_json(&minimal().replace("\"p2\"", "\"9lives\"")).unwrap_err();
        assert_eq!(err.field, "databases[0].collections[0].target_name");
    }

    #[test]
    fn webhooks_need_a_signing_secret_and_a_sane_url() {
        let with = |webhook: &str| {
            MigrationRequest::from_json(&minimal().replacen(
                r#""databases""#,
                &format!(r#""webhook":{webhook},"databases""#),
                1,
            ))
        };
        let field = |webhook: &str| with(webhook).unwrap_err().field;
        assert!(with(
            r#"{"url":"https://h.example.com/x","secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}"#
        )
        .is_ok());
        assert_eq!(
            field(r#"{"url":"https://h.example.com/x"}"#),
            "webhook.secret"
        );
        assert_eq!(
            field(r#"{"url":"https://h.example.com/x","secret":"not base64!"}"#),
            "webhook.secret"
        );
        assert_eq!(
            field(r#"{"url":"ftp://h","secret_arn":"arn:aws:secretsmanager:r:1:secret:s"}"#),
            "webhook.url"
        );
        assert_eq!(
            field(r#"{"url":"https://h.example.com","secret_arn":"nope"}"#),
            "webhook.secret_arn"
        );
        assert_eq!(
            field(
                r#"{"url":"https://h.example.com","secret_arn":"arn:aws:secretsmanager:r:1:secret:s","progress_every_seconds":0}"#
            ),
            "webhook.progress_every_seconds"
        );
        assert_eq!(
            field(
                r#"{"url":"https://h.example.com","secret_arn":"arn:aws:secretsmanager:r:1:secret:s","sealed_secret":"v1.x"}"#
            ),
            "webhook.sealed_secret"
        );
        // A bad secret is never repeated in the message.
        let err = with(r#"{"url":"https://h.example.com/x","secret":"whsec_short"}"#).unwrap_err();
        assert!(!err.to_string().contains("short"), "{err}");
    }

    #[test]
    fn credentials_in_a_uri_are_refused_without_echoing_them() {
        let err = MigrationRequest::from_json(&minimal().replace(
            "http://127.0.0.1:19531",
            "https://admin:hunter2@db.example.com",
        ))
        .unwrap_err();
        assert_eq!(err.field, "target.uri");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn two_collections_into_one_target_are_rejected() {
        let text = minimal().replace(
            r#"[{"name":"products","target_name":"p2"}]"#,
            r#"[{"name":"a","target_name":"x"},{"name":"b","target_name":"x"}]"#,
        );
        let err = MigrationRequest::from_json(&text).unwrap_err();
        assert_eq!(err.field, "databases[0].collections[1].target_name");
    }

    #[test]
    fn a_byte_order_mark_is_read_past_and_arrays_are_not_objects() {
        let with_bom = format!("\u{feff}{}", minimal());
        assert!(MigrationRequest::from_json(&with_bom).is_ok());
        let err = MigrationRequest::from_json("[]").unwrap_err();
        assert_eq!(
            (err.field.as_str(), err.message.as_str()),
            ("", "must be a JSON object ({…}), not an array")
        );
        let err = MigrationRequest::from_json(
            &minimal().replace(r#""databases""#, r#""options":[100,2],"databases""#),
        )
        .unwrap_err();
        assert_eq!(err.field, "options");
        // Stored records (serde's other formats) still read back.
        let r = MigrationRequest::from_json(minimal()).unwrap();
        let back: MigrationRequest =
            serde_json::from_value(serde_json::to_value(r.redacted()).unwrap()).unwrap();
        assert_eq!(back.databases, r.databases);
    }

    #[test]
    fn a_window_end_without_a_time_zone_says_so() {
        let text = minimal().replace(
            r#""databases""#,
            r#""options":{"not_after":"2099-01-01T00:00:00"},"databases""#,
        );
        let err = MigrationRequest::from_json(&text).unwrap_err();
        assert_eq!(err.field, "options.not_after");
        assert!(
            err.message.contains("has no time zone")
                && err.message.contains("2099-01-01T00:00:00Z"),
            "{err}"
        );
        assert!(parse_time("2099-01-01T00:00:00+01:00").is_ok());
        assert!(parse_time("tomorrow").unwrap_err().contains("RFC 3339"));
    }

    #[test]
    fn the_redaction_marker_is_no_secret() {
        let text = minimal().replace(r#""token":"root:Milvus""#, r#""token":"[redacted]""#);
        assert_eq!(
            MigrationRequest::from_json(&text).unwrap_err().field,
            "source.token"
        );
        let text = minimal().replacen(
            r#""databases""#,
            r#""webhook":{"url":"https://h.example.com/x","secret":"[redacted]"},"databases""#,
            1,
        );
        let err = MigrationRequest::from_json(&text).unwrap_err();
        assert_eq!(err.field, "webhook.secret");
        assert!(err.message.contains("marker"), "{err}");
    }

    #[test]
    fn past_window_is_rejected() {
        let text = minimal().replace(
            r#""databases""#,
            r#""options":{"not_after":"2001-01-01T00:00:00Z"},"databases""#,
        );
        let err = MigrationRequest::from_json(&text).unwrap_err();
        assert_eq!(err.field, "options.not_after");
    }

    #[test]
    fn secrets_never_serialize() {
        let r = MigrationRequest::from_json(minimal()).unwrap();
        let json = serde_json::to_string(&r).unwrap();
        assert!(!json.contains("root:Milvus"), "{json}");
        assert!(json.contains(REDACTED));
        assert_eq!(format!("{:?}", r.source.token.unwrap()), REDACTED);
    }

    #[test]
    fn fingerprint_ignores_tokens_but_not_collections() {
        let a = MigrationRequest::from_json(minimal()).unwrap();
        let b = MigrationRequest::from_json(&minimal().replace("root:Milvus", "other")).unwrap();
        let c = MigrationRequest::from_json(&minimal().replace("products", "orders")).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
    }
}

#[cfg(test)]
mod properties {
    //! Property tests of the parser: whatever a caller sends, it answers with a request or an
    //! error naming a field, never panics, and never repeats a token.
    use super::*;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    /// The request's own field names, so that generated objects reach deep into the parser.
    const KEYS: &[&str] = &[
        "source",
        "target",
        "databases",
        "options",
        "webhook",
        "uri",
        "token",
        "tls",
        "ca_cert",
        "client_key",
        "server_name",
        "name",
        "target_name",
        "collections",
        "schema_overrides",
        "filter",
        "partitions",
        "partition_key",
        "field",
        "batch_size",
        "max_workers",
        "verify",
        "not_after",
        "max_outage",
        "wait_for_index",
        "url",
        "secret",
        "idempotency_key",
        "x",
    ];
    const MARK: &str = "zz-never-echo-zz";

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|f| json!(f)),
            "[a-z:/._0-9]{0,24}".prop_map(Value::String),
            Just(json!("http://127.0.0.1:19530")),
            Just(json!(MARK)),
        ];
        leaf.prop_recursive(5, 96, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(
                    |pairs| {
                        Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                    }
                ),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn any_text_gets_a_request_or_an_error(text in "\\PC{0,160}") {
            let _ = MigrationRequest::from_json(&text);
        }

        #[test]
        fn any_json_gets_a_request_or_an_error_and_never_echoes_a_token(v in value()) {
            let mut v = v;
            // Tokens carry the marker, wherever the generator put them.
            if let Some(source) = v.get_mut("source").and_then(Value::as_object_mut) {
                source.insert("token".into(), json!(7));
            }
            match MigrationRequest::from_json(&v.to_string()) {
                Ok(r) => prop_assert!(r.validate(Utc::now()).is_ok()),
                Err(e) => {
                    let shown = e.to_string();
                    if v.pointer("/source/token").is_some() && e.field.ends_with(".token") {
                        prop_assert!(!shown.contains('7'), "{shown}");
                    }
                    prop_assert!(!shown.chars().any(|c| c.is_control()), "{shown:?}");
                }
            }
        }

        #[test]
        fn a_valid_request_keeps_its_meaning_through_the_record(
            batch in 1u32..=MAX_BATCH_SIZE,
            workers in 1u32..=MAX_WORKERS,
            name in "[a-z_][a-z0-9_]{0,30}",
        ) {
            let text = json!({
                "source": {"uri": "http://127.0.0.1:1", "token": MARK},
                "target": {"uri": "https://milvus.example.com"},
                "databases": [{"name": "default", "collections": [{"name": name}]}],
                "options": {"batch_size": batch, "max_workers": workers}
            })
            .to_string();
            let r = MigrationRequest::from_json(&text).unwrap();
            let stored = serde_json::to_string(&r.redacted()).unwrap();
            prop_assert!(!stored.contains(MARK));
            let back: MigrationRequest = serde_json::from_str(&stored).unwrap();
            prop_assert_eq!(back.options, r.options);
            prop_assert_eq!(back.databases, r.databases);
        }
    }
}
