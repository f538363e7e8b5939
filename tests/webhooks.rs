//! Outcome webhooks end to end: a real migration between two Milvus servers, delivered with
//! `reqwest` to a receiver on loopback that verifies each signature with the official Standard
//! Webhooks library (`scripts/webhook_receiver.py`, PyPI `standardwebhooks`).

mod common;

use std::time::Duration;

use common::faults;
use common::receiver::Receiver;
use common::*;
use serde_json::Value;
use vecmigrate::domain::request::WebhookSpec;
use vecmigrate::domain::{DeliveryState, Job, JobStatus, Secret};
use vecmigrate::engine::EngineConfig;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Fast retries, so that four attempts take well under a second.
fn config() -> EngineConfig {
    EngineConfig {
        webhook_backoff: Duration::from_millis(50),
        ..EngineConfig::default()
    }
}

/// A webhook to `url` signed with [`SECRET`].
fn webhook_to(url: String, progress_every_seconds: Option<u64>) -> WebhookSpec {
    WebhookSpec {
        url,
        secret: Some(Secret::new(SECRET)),
        secret_arn: None,
        progress_every_seconds,
        sealed_secret: None,
    }
}

/// Migrates a small collection with a webhook to `url`; returns the ended job.
async fn migrate_with_webhook(
    url: String,
    progress_every: Option<u64>,
    rows: usize,
    batch: u32,
) -> Job {
    migrate_and_count(url, progress_every, rows, batch, None).await
}

/// As [`migrate_with_webhook`], adding the job's row to the fault table under `fault`.
async fn migrate_and_count(
    url: String,
    progress_every: Option<u64>,
    rows: usize,
    batch: u32,
    fault: Option<&str>,
) -> Job {
    let h = harness_webhook(fast_settings(), config(), SECRET, None);
    let s = Seed::new(&unique("hook"), rows);
    seed(&h.servers.source, "default", &s).await;
    let mut r = request(&h.servers, None, &[(&s.name, &s.name)]);
    r.options.batch_size = batch;
    r.options.max_workers = 1;
    r.webhook = Some(webhook_to(url, progress_every));
    let clock = faults::started();
    let (_, report) = h.run(r).await;
    if let Some(fault) = fault {
        let done = faults::checkpointed(&*h.store, &report.job.id).await;
        let (lost, duplicated) =
            faults::lost_and_duplicated(&h.servers, &s, "default", &s.name, done).await;
        faults::FaultRow {
            fault,
            path: "local",
            lost,
            duplicated,
            outcome: report.job.status.as_str().to_owned(),
            took: clock.elapsed(),
        }
        .record(&h.servers);
    }
    report.job
}

#[tokio::test]
async fn a_receiver_down_three_times_gets_exactly_one_verified_delivery_on_the_fourth() {
    // GIVEN a receiver that answers 503 three times, then 200
    let receiver = Receiver::start(SECRET);
    // WHEN a migration ends
    let job = migrate_and_count(
        receiver.url("/down/3"),
        None,
        500,
        5000,
        Some("webhook receiver down for 3 attempts"),
    )
    .await;

    // THEN the job records 4 attempts, the last delivered
    assert_eq!(job.status, JobStatus::Successful);
    let d = job.webhook.expect("a delivery record");
    assert_eq!(d.state, DeliveryState::Delivered);
    let statuses: Vec<_> = d.attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [Some(503), Some(503), Some(503), Some(200)]);
    assert!(d.attempts[..3].iter().all(|a| a.error.is_some()));

    // ... the receiver accepted exactly one, verified by standardwebhooks, all with one id
    let got = receiver.deliveries().await;
    assert_eq!(got.len(), 4);
    assert!(got.iter().all(|g| g["verified"] == true), "{got:#?}");
    let accepted: Vec<_> = got.iter().filter(|g| g["status"] == 200).collect();
    assert_eq!(accepted.len(), 1);
    assert!(got
        .iter()
        .all(|g| g["headers"]["webhook-id"] == Value::String(d.id.clone())));

    // ... and its body is the outcome with the verification and no secret
    let body = &accepted[0]["body"];
    assert_eq!(body["type"], "migration.succeeded");
    assert_eq!(body["data"]["job"]["status"], "SUCCESSFUL");
    let c = &body["data"]["job"]["collections"][0];
    assert_eq!(
        (
            c["source_count"].as_u64(),
            c["target_count"].as_u64(),
            &c["match"]
        ),
        (Some(500), Some(500), &Value::Bool(true))
    );
    assert_eq!(body["data"]["totals"]["target_count"], 500);
    assert!(body["data"]["duration_seconds"].as_f64().is_some());
    let text = body.to_string();
    assert!(
        !text.contains(SECRET) && !text.contains("MfKQ9r8"),
        "{text}"
    );
}

#[tokio::test]
async fn a_4xx_is_not_retried_and_410_disables_the_endpoint() {
    let receiver = Receiver::start(SECRET);
    for (path, state) in [
        ("/status/400", DeliveryState::Failed),
        ("/status/410", DeliveryState::Disabled),
    ] {
        let job = migrate_with_webhook(receiver.url(path), None, 200, 5000).await;
        let d = job.webhook.unwrap();
        assert_eq!((d.state, d.attempts.len()), (state, 1), "{path}: {d:?}");
    }
    let got = receiver.deliveries().await;
    assert_eq!(got.len(), 2, "one request each: {got:#?}");
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_fails_the_delivery() {
    // The receiver redirects to a private address; following it would be an SSRF.
    let receiver = Receiver::start(SECRET);
    let job = migrate_with_webhook(receiver.url("/redirect"), None, 200, 5000).await;
    let d = job.webhook.unwrap();
    assert_eq!((d.state, d.attempts.len()), (DeliveryState::Failed, 1));
    let error = d.attempts[0].error.clone().unwrap();
    assert!(
        error.contains("redirect") && error.contains("10.0.0.1"),
        "{error}"
    );
    assert_eq!(receiver.deliveries().await.len(), 1);
}

#[tokio::test]
async fn progress_events_come_while_the_copy_runs_when_asked() {
    // GIVEN a copy of many small pages and progress events every second
    let receiver = Receiver::start(SECRET);
    let job = migrate_with_webhook(receiver.url("/ok"), Some(1), 6_000, 100).await;
    assert_eq!(job.status, JobStatus::Successful);
    // THEN progress events arrived (verified), then the outcome, last
    let got = receiver.deliveries().await;
    let types: Vec<&str> = got
        .iter()
        .map(|g| g["body"]["type"].as_str().unwrap())
        .collect();
    assert!(
        types.iter().filter(|t| **t == "migration.progress").count() >= 1,
        "{types:?}"
    );
    assert_eq!(types.last(), Some(&"migration.succeeded"));
    assert!(got.iter().all(|g| g["verified"] == true));
    let progress = got
        .iter()
        .find(|g| g["body"]["type"] == "migration.progress")
        .unwrap();
    assert!(
        progress["body"]["data"]["progress"]["copied"]
            .as_u64()
            .unwrap()
            < 6_000
    );
}

#[tokio::test]
async fn a_count_mismatch_with_remigrate_migrates_the_collection_again_and_succeeds() {
    // GIVEN a write the target "loses" (fault injection: the 2nd page is reported written but
    // never sent), so the first verification finds too few entities
    let receiver = Receiver::start(SECRET);
    let h = harness_webhook(
        fast_settings(),
        config(),
        SECRET,
        Some(vecmigrate::engine::Faults::lose_write(2)),
    );
    let s = Seed {
        partitions: vec!["p1".into()],
        ..Seed::new(&unique("remig"), 3_000)
    };
    seed(&h.servers.source, "default", &s).await;
    let mut r = request(&h.servers, None, &[(&s.name, &s.name)]);
    r.options.batch_size = 500;
    r.options.max_workers = 1;
    r.options.on_count_mismatch = vecmigrate::domain::OnCountMismatch::Remigrate;
    r.options.max_remigrations = 1;
    r.webhook = Some(webhook_to(receiver.url("/ok"), None));

    // WHEN the job runs
    let (_, report) = h.run(r).await;

    // THEN it ends SUCCESSFUL after one remigration, and the first attempt is on record
    assert_successful(&report);
    let c = &report.job.collections[0];
    assert_eq!(
        (c.remigrations, c.source_count, c.target_count),
        (1, Some(3_000), Some(3_000))
    );
    assert_eq!(c.mismatches.len(), 1);
    assert_eq!(c.mismatches[0].source_count, 3_000);
    assert!(c.mismatches[0].target_count < 3_000, "{:?}", c.mismatches);
    assert_eq!(
        report.progress.copied, 3_000,
        "only the latest migration counts"
    );
    // ... every row arrived, once
    assert_same_rows(&h.servers, &s, "default", &s.name).await;
    // ... and the webhook shows both attempts
    let got = receiver.deliveries().await;
    assert_eq!(got.len(), 1);
    let hooked = &got[0]["body"]["data"]["job"]["collections"][0];
    assert_eq!(hooked["remigrations"], 1);
    assert_eq!(hooked["mismatches"][0]["source_count"], 3_000);
    assert_eq!(hooked["match"], true);
}

#[tokio::test]
async fn with_fail_the_same_mismatch_fails_the_job() {
    let h = harness_webhook(
        fast_settings(),
        config(),
        SECRET,
        Some(vecmigrate::engine::Faults::lose_write(2)),
    );
    let s = Seed::new(&unique("mism"), 2_000);
    seed(&h.servers.source, "default", &s).await;
    let mut r = request(&h.servers, None, &[(&s.name, &s.name)]);
    r.options.batch_size = 500;
    r.options.max_workers = 1;
    r.options.on_count_mismatch = vecmigrate::domain::OnCountMismatch::Fail;
    let receiver = Receiver::start(SECRET);
    r.webhook = Some(webhook_to(receiver.url("/ok"), None));
    let (_, report) = h.run(r).await;
    assert_eq!(report.job.status, JobStatus::Failed);
    let error = report.job.error.unwrap().message;
    assert!(error.contains("source 2000, target 1500"), "{error}");
    // ... and says so in a verified migration.failed event carrying the error
    let got = receiver.deliveries().await;
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0]["verified"], true);
    assert_eq!(got[0]["body"]["type"], "migration.failed");
    assert_eq!(got[0]["body"]["data"]["error"], Value::String(error));
}

#[tokio::test]
async fn a_cancelled_job_sends_one_migration_cancelled_event() {
    // GIVEN a job with a webhook, cancelled before it ran
    let receiver = Receiver::start(SECRET);
    let h = harness_webhook(fast_settings(), config(), SECRET, None);
    let s = Seed::new(&unique("hookc"), 200);
    seed(&h.servers.source, "default", &s).await;
    let mut r = request(&h.servers, None, &[(&s.name, &s.name)]);
    r.webhook = Some(webhook_to(receiver.url("/ok"), None));
    let (job, _) = h.engine.start(r).await.unwrap();
    h.engine.cancel(&job.id).await.unwrap();
    // WHEN its work runs
    let report = h.runner.drive(&job.id, |_| {}).await.unwrap();
    // THEN it ends CANCELLED and the receiver gets one verified migration.cancelled event
    assert_eq!(report.job.status, JobStatus::Cancelled);
    let got = receiver.deliveries().await;
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0]["verified"], true);
    assert_eq!(got[0]["body"]["type"], "migration.cancelled");
    assert_eq!(got[0]["body"]["data"]["job"]["status"], "CANCELLED");
    assert_eq!(got[0]["body"]["data"]["id"], Value::String(job.id));
}

/// Runs one of the README's verification examples (`examples/webhooks/`) on a saved delivery.
fn run_example(
    program: &str,
    script: &str,
    headers: &std::path::Path,
    body: &std::path::Path,
) -> std::process::Output {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/webhooks");
    std::process::Command::new(program)
        .arg(format!("{dir}/{script}"))
        .arg(headers)
        .arg(body)
        .env("VECMIGRATE_WEBHOOK_SECRET", SECRET)
        .output()
        .expect("the example runs")
}

#[tokio::test]
async fn the_readme_examples_verify_a_real_delivery_in_python_and_node() {
    // GIVEN a real outcome delivery, saved as the receiver got it (headers and raw body)
    let receiver = Receiver::start(SECRET);
    migrate_with_webhook(receiver.url("/ok"), None, 300, 5000).await;
    let got = receiver.deliveries().await;
    let delivery = &got[0];
    let dir = tempfile::tempdir().unwrap();
    let headers = dir.path().join("headers.json");
    std::fs::write(&headers, delivery["headers"].to_string()).unwrap();
    let raw = delivery["raw"].as_str().expect("the raw body");
    let body = dir.path().join("body");
    std::fs::write(&body, raw).unwrap();
    let tampered = dir.path().join("tampered");
    std::fs::write(&tampered, raw.replacen("SUCCESSFUL", "SUCCESSFUl", 1)).unwrap();
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");

    for (program, script) in [(python, "verify.py"), ("node", "verify.mjs")] {
        // WHEN the example checks it, THEN it accepts it and reads the event
        let out = run_example(program, script, &headers, &body);
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "migration.succeeded SUCCESSFUL",
            "{script}"
        );
        // AND a body changed by one letter is refused
        let out = run_example(program, script, &headers, &tampered);
        assert_eq!(out.status.code(), Some(1), "{script}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("refused"),
            "{script}"
        );
    }
}

/// The schema checks every test relies on can fail: a body the code would never send is
/// refused, and an error answer is held to its route family's shape.
#[test]
fn the_published_schemas_refuse_a_body_off_them() {
    use common::schemas::{check_event, check_http};
    use serde_json::json;
    let refused = |f: fn()| std::panic::catch_unwind(f).is_err();
    assert!(refused(|| check_event(
        &json!({"type": "migration.succeeded"})
    )));
    assert!(refused(|| check_event(
        &json!({"type": "migration.unknown"})
    )));
    assert!(refused(|| check_http(
        "GET",
        "/migrations/mig-1",
        200,
        &json!({"job": {}})
    )));
    // A vecmigrate error body on a Zilliz route is off its schema.
    assert!(refused(|| check_http(
        "GET",
        "/v2/jobs/mig-1",
        404,
        &json!({"error": {"code": "not_found", "message": "no", "field": null}})
    )));
    check_http(
        "GET",
        "/migrations/mig-1",
        404,
        &json!({"error": {"code": "not_found", "message": "no job mig-1", "field": null}}),
    );
    check_http(
        "GET",
        "/v2/jobs/mig-1",
        404,
        &json!({"code": 404, "message": "no job mig-1"}),
    );
    check_http(
        "DELETE",
        "/nowhere",
        404,
        &json!({"error": {"code": "not_found", "message": "no route DELETE /nowhere", "field": null}}),
    );
}
