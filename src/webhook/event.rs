//! Webhook event bodies: `{ "type", "timestamp", "data" }` as the README documents them. The
//! body of an outcome event is built from the ended job alone, so every retry sends the same
//! bytes.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::domain::{Job, Progress, WebhookEvent};

/// The job as events show it: public, without the delivery's own bookkeeping.
fn job_data(job: &Job) -> Value {
    let mut job = job.public();
    job.webhook = None;
    job.progress_sent_at = None;
    job.step_lease = None;
    let source: u64 = job.collections.iter().filter_map(|c| c.source_count).sum();
    let target: u64 = job.collections.iter().filter_map(|c| c.target_count).sum();
    let matched = job
        .collections
        .iter()
        .filter(|c| c.matches == Some(true))
        .count();
    let duration = job
        .started_at
        .zip(job.finished_at)
        .map(|(s, f)| (f - s).num_milliseconds() as f64 / 1000.0);
    let repaired: u32 = job.collections.iter().map(|c| c.repaired_ranges).sum();
    let error = job.error.as_ref().map(|e| e.message.clone());
    let mut data = json!({
        "job": job,
        "totals": {
            "collections": job.collections.len(),
            "matched": matched,
            "source_count": source,
            "target_count": target,
            "repaired_ranges": repaired,
        },
        "duration_seconds": duration,
        "error": error,
    });
    data["id"] = json!(job.id);
    data
}

/// The body of an ended job's outcome event.
pub fn outcome(job: &Job, event: WebhookEvent, timestamp: DateTime<Utc>) -> Vec<u8> {
    let body = json!({
        "type": event.as_str(),
        "timestamp": timestamp.to_rfc3339_opts(SecondsFormat::Millis, true),
        "data": job_data(job),
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The body of a `migration.progress` event.
pub fn progress(job: &Job, progress: &Progress, now: DateTime<Utc>) -> Vec<u8> {
    let mut data = job_data(job);
    data["progress"] = json!(progress);
    let body = json!({
        "type": WebhookEvent::Progress.as_str(),
        "timestamp": now.to_rfc3339_opts(SecondsFormat::Millis, true),
        "data": data,
    });
    serde_json::to_vec(&body).unwrap_or_default()
}
