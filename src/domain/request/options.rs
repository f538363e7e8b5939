//! How a job runs: the request's `options`, their defaults and their limits.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    FieldError, DEFAULT_BATCH_SIZE, DEFAULT_MAX_WORKERS, MAX_BATCH_SIZE, MAX_REMIGRATIONS,
    MAX_WORKERS,
};

/// What to do when the verified counts differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnCountMismatch {
    /// Copy again, with upsert, each key range whose counts (or contents) differ, then count it
    /// again, up to `max_repairs` times per range.
    #[default]
    Repair,
    /// Fail the job with both numbers.
    Fail,
    /// Drop the target collection and migrate it again.
    Remigrate,
}

impl OnCountMismatch {
    /// Every choice's name, as requests and flags write it.
    pub const NAMES: [&'static str; 3] = ["repair", "fail", "remigrate"];

    /// Parses a choice's name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "repair" => Some(Self::Repair),
            "fail" => Some(Self::Fail),
            "remigrate" => Some(Self::Remigrate),
            _ => None,
        }
    }
}

/// How a job runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// The most entities per batch (the copy also keeps each batch under a byte budget).
    pub batch_size: u32,
    /// The most tasks copied at once.
    pub max_workers: u32,
    /// Load the target collections when the job ends (implies `wait_for_index`).
    pub load_after: bool,
    /// Stay in the index phase until every index of the targets is built (bounded by
    /// `not_after`); otherwise the servers go on building after the job ends.
    pub wait_for_index: bool,
    /// What to do when counts differ.
    pub on_count_mismatch: OnCountMismatch,
    /// How many times a mismatched collection may be migrated again.
    pub max_remigrations: u32,
    /// How many times one key range may be copied again (`on_count_mismatch: "repair"`).
    pub max_repairs: u32,
    /// Count each task's key range on both sides when the task ends and again in the finish
    /// step (`on_count_mismatch: "repair"`); when false, only collections whose counts differ
    /// get their ranges counted, to find what to repair.
    pub count_ranges: bool,
    /// The end of the maintenance window: the job stops and fails cleanly at this time.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "window_end"
    )]
    pub not_after: Option<DateTime<Utc>>,
    /// What verification compares besides the counts.
    pub verify: VerifyMode,
    /// Keys compared per collection by `verify: "sample"`.
    pub verify_sample_size: u32,
    /// How long an outage of either cluster is waited out before the job fails (`"15m"`).
    #[serde(with = "duration_text")]
    pub max_outage: std::time::Duration,
    /// A ceiling on the job's writes to the target, in MB/s (10^6 bytes); the rate adapts to
    /// the target's throttling below it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_write_mb_per_s: Option<f64>,
    /// How pages reach the target: inserted, or staged as files the target imports.
    pub write_mode: WriteVia,
    /// Where pages are staged for import: `s3://bucket/prefix` (a Zilliz Cloud target given by
    /// id) or an absolute directory the target's server reads; unset, the deployment's
    /// `VECMIGRATE_STAGING`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staging: Option<String>,
    /// The largest staged file, in MB (10^6 bytes).
    pub import_file_mb: u32,
}

/// How a job writes pages to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteVia {
    /// Insert requests, metered by the target's write cap.
    #[default]
    Insert,
    /// Staged Parquet files the target imports; a collection that cannot be imported fails
    /// preflight.
    Import,
    /// Import where preflight finds it can, insert elsewhere.
    Auto,
}

impl WriteVia {
    /// Every choice's name, as requests and flags write it.
    pub const NAMES: [&'static str; 3] = ["insert", "import", "auto"];

    /// The choice's name.
    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// Parses a choice's name.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Insert, Self::Import, Self::Auto]
            .into_iter()
            .find(|m| m.as_str() == text)
    }
}

/// The default `import_file_mb`: 1 GB, Zilliz Cloud's file limit on Free clusters.
pub const DEFAULT_IMPORT_FILE_MB: u32 = 1_000;
/// The largest `import_file_mb`: Zilliz Cloud's 10 GB file limit on Serverless and Dedicated,
/// less a margin for what Parquet adds to the pages' bytes (its levels, headers and footer).
pub const MAX_IMPORT_FILE_MB: u32 = 9_500;

/// The default `max_repairs`.
pub const DEFAULT_MAX_REPAIRS: u32 = 3;
/// The largest `max_repairs`.
pub const MAX_REPAIRS: u32 = 10;

/// The default `max_outage`.
pub const DEFAULT_MAX_OUTAGE: std::time::Duration = std::time::Duration::from_secs(15 * 60);
/// The shortest and longest `max_outage`.
pub const MAX_OUTAGE_RANGE: (std::time::Duration, std::time::Duration) = (
    std::time::Duration::from_secs(10),
    std::time::Duration::from_secs(24 * 3600),
);

/// A point in time as requests and flags write it: RFC 3339 with a time zone. A time without
/// one is refused with the reason (chrono's own words are "premature end of input").
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    let shown = crate::domain::cluster::printable(text);
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let local = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f"));
    if local.is_ok() {
        return Err(format!(
            "`{shown}` has no time zone; add one, such as `{shown}Z` for UTC or `{shown}+01:00`"
        ));
    }
    Err(format!(
        "`{shown}` is not an RFC 3339 time such as 2026-12-02T06:00:00Z"
    ))
}

/// `not_after`, read with [`parse_time`].
fn window_end<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let text: Option<String> = Option::deserialize(d)?;
    text.map(|t| parse_time(&t).map_err(serde::de::Error::custom))
        .transpose()
}

/// The lowest `max_write_mb_per_s`: below it a gigabyte takes more than three hours, and the
/// pace would sit under the slowest rate the pacer keeps (16 KiB/s).
pub const MIN_WRITE_MB_PER_S: f64 = 0.1;

/// Durations written as people write them (`"15m"`, `"90s"`).
mod duration_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(text.trim()).map_err(|_| {
            serde::de::Error::custom(format!(
                "`{}` is not a duration such as \"15m\" or \"90s\"",
                crate::domain::cluster::printable(&text)
            ))
        })
    }
}

impl Options {
    pub(super) fn validate(&self, now: DateTime<Utc>) -> Result<(), FieldError> {
        let o = self;
        let (shortest, longest) = MAX_OUTAGE_RANGE;
        if o.max_outage < shortest || o.max_outage > longest {
            return Err(FieldError::new(
                "options.max_outage",
                "must be from 10s to 24h",
            ));
        }
        if let Some(rate) = o.max_write_mb_per_s {
            if !(rate.is_finite() && (MIN_WRITE_MB_PER_S..=100_000.0).contains(&rate)) {
                return Err(FieldError::new(
                    "options.max_write_mb_per_s",
                    format!("must be a number of MB/s from {MIN_WRITE_MB_PER_S} to 100000"),
                ));
            }
        }
        if o.import_file_mb == 0 || o.import_file_mb > MAX_IMPORT_FILE_MB {
            return Err(FieldError::new(
                "options.import_file_mb",
                format!("must be between 1 and {MAX_IMPORT_FILE_MB}"),
            ));
        }
        // A missing staging is the deployment's default (`Engine::complete`).
        if let Some(staging) = &o.staging {
            crate::staging::Location::parse(staging)
                .map_err(|e| FieldError::new("options.staging", e))?;
        }
        if o.batch_size == 0 || o.batch_size > MAX_BATCH_SIZE {
            return Err(FieldError::new(
                "options.batch_size",
                format!("must be between 1 and {MAX_BATCH_SIZE}"),
            ));
        }
        if o.max_workers == 0 || o.max_workers > MAX_WORKERS {
            return Err(FieldError::new(
                "options.max_workers",
                format!("must be between 1 and {MAX_WORKERS}"),
            ));
        }
        if o.max_remigrations > MAX_REMIGRATIONS {
            return Err(FieldError::new(
                "options.max_remigrations",
                format!("must be at most {MAX_REMIGRATIONS}"),
            ));
        }
        if o.max_repairs == 0 || o.max_repairs > MAX_REPAIRS {
            return Err(FieldError::new(
                "options.max_repairs",
                format!("must be between 1 and {MAX_REPAIRS}"),
            ));
        }
        if o.verify_sample_size == 0 || o.verify_sample_size > MAX_SAMPLE_SIZE {
            return Err(FieldError::new(
                "options.verify_sample_size",
                format!("must be between 1 and {MAX_SAMPLE_SIZE}"),
            ));
        }
        if let Some(not_after) = o.not_after {
            if not_after <= now {
                return Err(FieldError::new(
                    "options.not_after",
                    format!("the maintenance window already ended at {not_after}"),
                ));
            }
        }
        Ok(())
    }
}

/// How a job verifies what it copied. Counts are always compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifyMode {
    /// Exact entity counts only.
    #[default]
    Count,
    /// Counts, and `verify_sample_size` random keys compared field by field on both sides.
    Sample,
    /// Counts, and every entity compared on both sides in one streaming pass.
    Full,
}

impl VerifyMode {
    /// The mode's name, as requests write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Count => "count",
            Self::Sample => "sample",
            Self::Full => "full",
        }
    }

    /// Parses a mode's name.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Count, Self::Sample, Self::Full]
            .into_iter()
            .find(|m| m.as_str() == text)
    }
}

/// The default `verify_sample_size`.
pub const DEFAULT_SAMPLE_SIZE: u32 = 100;
/// The largest `verify_sample_size` (each task keeps its sample in its record).
pub const MAX_SAMPLE_SIZE: u32 = 1_000;

impl Default for Options {
    fn default() -> Self {
        Self {
            batch_size: DEFAULT_BATCH_SIZE,
            max_workers: DEFAULT_MAX_WORKERS,
            load_after: false,
            wait_for_index: false,
            on_count_mismatch: OnCountMismatch::Repair,
            max_remigrations: 1,
            max_repairs: DEFAULT_MAX_REPAIRS,
            count_ranges: true,
            not_after: None,
            verify: VerifyMode::Count,
            verify_sample_size: DEFAULT_SAMPLE_SIZE,
            max_outage: DEFAULT_MAX_OUTAGE,
            max_write_mb_per_s: None,
            write_mode: WriteVia::Insert,
            staging: None,
            import_file_mb: DEFAULT_IMPORT_FILE_MB,
        }
    }
}
