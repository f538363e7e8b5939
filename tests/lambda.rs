//! The Lambda function end to end: the real handler, fed the event JSON Lambda sends (read from
//! `events/`), with its job state in DynamoDB, its continuations in SQS and its secrets in
//! Secrets Manager (all on moto), migrating between two real Milvus servers.
//!
//! The test plays the parts AWS plays around the function: the SQS event source mapping
//! (receive, invoke, delete what succeeded; a failed or crashed invocation's message comes back
//! after the visibility timeout) and the sweep schedule.

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::aws::scan;
use common::lambda::*;
use common::{assert_same_rows, seed, unique, Seed, TlsServers};
use serde_json::{json, Value};
use vecmigrate::engine::Faults;
use vecmigrate::entrypoints::lambda::signed_content;
use vecmigrate::queue::sqs::SqsQueue;
use vecmigrate::queue::{WorkMessage, WorkQueue};
use vecmigrate::webhook::SigningSecret;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http_start_runs_to_success_across_many_invocations_crashes_and_duplicates() {
    // GIVEN 12,000 entities in one partition (cut into key ranges of 1,500 or more while it is
    // copied), and a function whose invocations copy for 2 s at most and whose 3rd page write
    // "dies" before its checkpoint
    let d = Deployment::new(
        Duration::from_secs(2),
        None,
        Some(Faults::crash_after_write(3)),
    )
    .await;
    let source = Seed {
        dim: 16,
        ..Seed::new(&unique("lam"), 12_000)
    };
    seed(&d.servers.source, "default", &source).await;
    let target = format!("{}_v2", source.name);
    let mut request = d.request(&source.name, &target);
    request["options"]["batch_size"] = json!(400);
    request["options"]["max_workers"] = json!(6);

    // WHEN it is started over HTTP (the Function URL event, IAM-signed)
    let mut start = event("http-start.json");
    start["body"] = json!(request.to_string());
    let (code, body) = http_response(&d.invoke(start).await);
    assert_eq!(code, 202, "{body}");
    let job_id = body["job"]["id"].as_str().unwrap().to_owned();
    // ... and SQS delivers a plan and a work message twice
    let queue = SqsQueue::new(d.sqs.clone(), d.queue_url.clone());
    for message in [
        WorkMessage::Plan {
            job_id: job_id.clone(),
        },
        WorkMessage::Work {
            job_id: job_id.clone(),
        },
    ] {
        queue.send(message).await.unwrap();
    }
    let clock = common::faults::started();
    let seen = pump(&d, &job_id, 6).await;

    // THEN it succeeds with matching counts, after many short invocations
    let report = d.status(&job_id).await;
    record_row(
        &d,
        &job_id,
        &source,
        &target,
        "a worker killed before its checkpoint, SQS messages sent twice",
        &report,
        clock,
    )
    .await;
    assert_eq!(
        report["job"]["status"], "SUCCESSFUL",
        "{report:#}\n{seen:?}"
    );
    let c = &report["job"]["collections"][0];
    assert_eq!(
        (
            c["source_count"].as_u64(),
            c["target_count"].as_u64(),
            &c["match"]
        ),
        (Some(12_000), Some(12_000), &json!(true))
    );
    let work = seen.invocations["work"];
    assert!(work >= 10, "only {work} work invocations: {seen:?}");
    assert_eq!(seen.invocations["plan"], 2, "{seen:?}");
    assert_eq!(seen.invocations["finish"], 1, "{seen:?}");
    // The crashed invocation's message failed and came back.
    assert!(seen.failures >= 1 && seen.redelivered >= 1, "{seen:?}");
    eprintln!("lambda end-to-end: {seen:?}");

    // ... every row arrived once and unchanged, compared field by field
    assert_same_rows(&d.servers, &source, "default", &target).await;

    // ... the one partition was cut while it was copied, by invocations that found nothing
    // to claim, and copied as key ranges by invocations holding leases at once; the report
    // lists what each range copied
    let tasks = d.app.engine().store().list_tasks(&job_id).await.unwrap();
    assert!(tasks.len() >= 4, "{} tasks", tasks.len());
    let copied: u64 = tasks.iter().map(|t| t.copied).sum();
    assert_eq!(
        copied,
        12_000,
        "the ranges add up to the partition, none overlapping: {:#?}\n{:#}",
        tasks
            .iter()
            .map(|t| (&t.id, &t.from, &t.upto, t.copied, t.runs, t.repair, t.planned))
            .collect::<Vec<_>>(),
        report["log"]
    );
    let per_task: Vec<u64> = report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["copied"].as_u64().unwrap())
        .collect();
    assert_eq!(per_task.len(), tasks.len(), "{per_task:?}");
    assert!(per_task.iter().all(|c| *c > 0), "{per_task:?}");
    assert!(seen.leases_at_once >= 2, "{seen:?}");
    // ... tasks were resumed in fresh invocations
    let runs: u32 = tasks.iter().map(|t| t.runs).sum();
    assert!(
        runs as usize > tasks.len(),
        "no task was continued: {runs} runs of {} tasks",
        tasks.len()
    );

    // ... and no token is in the table, in clear or otherwise readable; the ARN is
    let items = scan(&d.dynamo, &d.table).await.join("\n");
    let target_token = d
        .servers
        .target
        .token
        .clone()
        .unwrap_or_else(|| "root:Milvus".into());
    assert!(
        !items.contains(&target_token) && !items.contains("Milvus"),
        "a token leaked into the table"
    );
    assert!(items.contains(&d.source_token_arn));
    assert!(items.contains("sealed_token"));
    // ... nor in what the API returns
    let shown = report.to_string();
    assert!(
        !shown.contains("sealed_token") && !shown.contains(&target_token),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_errors_are_json_with_the_right_status() {
    // GIVEN a deployment that also accepts callers signing with an inbound secret
    let secret_text = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode([7u8; 32])
    );
    let d = Deployment::new(Duration::from_secs(2), Some(&secret_text), None).await;
    let secret = SigningSecret::parse(&secret_text).unwrap();
    let request = d.request("anything", "anything_v2");
    let start_with = |body: &str, iam: bool| {
        let mut ev = event("http-start.json");
        ev["body"] = json!(body);
        if !iam {
            ev["requestContext"]
                .as_object_mut()
                .unwrap()
                .remove("authorizer");
        }
        ev
    };
    let error = |response: &Value| {
        let (code, body) = http_response(response);
        (
            code,
            body["error"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            body["error"]["field"].clone(),
        )
    };

    // A bad field: 400 naming it
    let mut bad = request.clone();
    bad["options"]["max_workers"] = json!(0);
    assert_eq!(
        error(&d.invoke(start_with(&bad.to_string(), true)).await),
        (400, "invalid_request".into(), json!("options.max_workers"))
    );
    let mut unknown = request.clone();
    unknown["source"]["tokn"] = json!("x");
    assert_eq!(
        error(&d.invoke(start_with(&unknown.to_string(), true)).await).2,
        json!("source.tokn")
    );
    // A function cannot read the caller's files
    let mut file = request.clone();
    file["source"]["uri"] = json!("https://milvus.internal");
    file["source"]["tls"] = json!({ "ca_cert_file": "/etc/ca.pem" });
    assert_eq!(
        error(&d.invoke(start_with(&file.to_string(), true)).await),
        (
            400,
            "invalid_request".into(),
            json!("source.tls.ca_cert_file")
        )
    );
    // A caller may not set a sealed token
    let mut sealed = request.clone();
    sealed["target"]["sealed_token"] = json!("v1.AAAA");
    assert_eq!(
        error(&d.invoke(start_with(&sealed.to_string(), true)).await).2,
        json!("target.sealed_token")
    );

    // Neither IAM nor a signature: 401; a wrong or stale signature: 401; a good one: 202
    let body = request.to_string();
    assert_eq!(error(&d.invoke(start_with(&body, false)).await).0, 401);
    let now = chrono::Utc::now().timestamp();
    // Signed as the README says: "METHOD path\nbody", a fresh webhook-id each time.
    let sign = |ev: &mut Value, id: &str, ts: i64, content: &[u8]| {
        ev["headers"]["webhook-id"] = json!(id);
        ev["headers"]["webhook-timestamp"] = json!(ts.to_string());
        ev["headers"]["webhook-signature"] = json!(secret.sign(id, ts, content));
    };
    let start_signed = |id: &str, ts: i64, content: &[u8]| {
        let mut ev = start_with(&body, false);
        sign(&mut ev, id, ts, content);
        ev
    };
    let content = signed_content("POST", "/migrations", "", body.as_bytes());
    // a signature over another body, a stale one, one over the body alone (no method, path)
    assert_eq!(
        error(
            &d.invoke(start_signed(
                "msg_a",
                now,
                &signed_content("POST", "/migrations", "", b"{}")
            ))
            .await
        )
        .0,
        401
    );
    assert_eq!(
        error(&d.invoke(start_signed("msg_b", now - 600, &content)).await).0,
        401
    );
    assert_eq!(
        error(&d.invoke(start_signed("msg_c", now, body.as_bytes())).await).0,
        401
    );
    let (code, accepted) = http_response(&d.invoke(start_signed("msg_d", now, &content)).await);
    assert_eq!(code, 202, "{accepted}");
    // the same signed request again is a replay
    assert_eq!(
        error(&d.invoke(start_signed("msg_d", now, &content)).await).1,
        "replayed"
    );
    let job_id = accepted["job"]["id"].as_str().unwrap().to_owned();

    // The same key and body again: 200 with the same job; another body: 409
    let (code, again) = http_response(&d.invoke(start_with(&body, true)).await);
    assert_eq!((code, &again["job"]["id"]), (200, &json!(job_id)));
    let mut other = request.clone();
    other["options"]["batch_size"] = json!(77);
    assert_eq!(
        error(&d.invoke(start_with(&other.to_string(), true)).await).0,
        409
    );

    // Unknown job: 404; unknown route: 404; bad list filters: 400 naming them
    assert_eq!(
        error(&d.invoke(event_for("http-status.json", "mig-nope")).await).0,
        404
    );
    let mut route = event("http-status.json");
    route["rawPath"] = json!("/elsewhere");
    assert_eq!(error(&d.invoke(route).await).0, 404);
    let mut list = event("http-list.json");
    list["queryStringParameters"]["status"] = json!("DONE");
    assert_eq!(error(&d.invoke(list).await).2, json!("status"));
    let mut list = event("http-list.json");
    list["queryStringParameters"]["limit"] = json!("zero");
    assert_eq!(error(&d.invoke(list).await).2, json!("limit"));

    // The headers of a signed GET of the job do not authorize its cancel
    let mut get = event_for("http-status.json", &job_id);
    get["requestContext"]
        .as_object_mut()
        .unwrap()
        .remove("authorizer");
    let path = format!("/migrations/{job_id}");
    sign(
        &mut get,
        "msg_get",
        now,
        &signed_content("GET", &path, "", b""),
    );
    assert_eq!(http_response(&d.invoke(get.clone()).await).0, 200);
    let mut cancel = event_for("http-cancel.json", &job_id);
    cancel["requestContext"]
        .as_object_mut()
        .unwrap()
        .remove("authorizer");
    sign(
        &mut cancel,
        "msg_get2",
        now,
        &signed_content("GET", &path, "", b""),
    );
    assert_eq!(
        error(&d.invoke(cancel).await),
        (401, "unauthenticated".into(), Value::Null),
        "a GET's signature is not a cancel's"
    );

    // Cancel the pending job: 200 CANCELLED; cancel it again: 409
    let (code, cancelled) = http_response(&d.invoke(event_for("http-cancel.json", &job_id)).await);
    assert_eq!(
        (code, &cancelled["job"]["status"]),
        (200, &json!("CANCELLED"))
    );
    assert_eq!(
        error(&d.invoke(event_for("http-cancel.json", &job_id)).await),
        (409, "conflict".into(), Value::Null)
    );

    // The list shows it, by status, in pages
    let (code, listed) = http_response(&d.invoke(event("http-list.json")).await);
    assert_eq!(code, 200);
    assert_eq!(listed["jobs"], json!([]), "nothing is IN_PROGRESS");
    let mut list = event("http-list.json");
    list["queryStringParameters"]["status"] = json!("cancelled");
    let (_, listed) = http_response(&d.invoke(list).await);
    assert_eq!(listed["jobs"][0]["id"], json!(job_id));
    assert!(!listed.to_string().contains("sealed_token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_and_schedule_events_start_once_and_answer() {
    let d = Deployment::new(Duration::from_secs(2), None, None).await;
    // A scheduled start (the maintenance window's stored request) fired twice starts one job
    let mut scheduled = event("schedule-start.json");
    let key = scheduled["request"]["idempotency_key"].clone();
    scheduled["request"] = d.request("anything", "anything_v2");
    scheduled["request"]["idempotency_key"] = key;
    let first = d.invoke(scheduled.clone()).await;
    let second = d.invoke(scheduled).await;
    let job_id = first["job"]["id"].as_str().expect("a report").to_owned();
    assert_eq!(second["job"]["id"], json!(job_id));
    assert_eq!(first["job"]["status"], "PENDING");

    // Direct invoke: status and cancel; bad invocations name the field
    let status = d.invoke(event_for("invoke-status.json", &job_id)).await;
    assert_eq!(status["job"]["id"], json!(job_id));
    let cancelled = d.invoke(event_for("invoke-cancel.json", &job_id)).await;
    assert_eq!(cancelled["job"]["status"], "CANCELLED");
    assert_eq!(
        d.invoke(json!({ "action": "status" })).await["error"]["field"],
        "job_id"
    );
    assert_eq!(
        d.invoke(json!({ "action": "explode" })).await["error"]["field"],
        "action"
    );
    assert_eq!(
        d.invoke(json!({ "hello": 1 })).await["error"]["code"],
        "invalid_request"
    );
    let missing = d.invoke(event_for("invoke-status.json", "mig-nope")).await;
    assert_eq!(missing["error"]["code"], "not_found");

    // A webhook to the instance-metadata address is refused before anything starts; an inline
    // webhook secret is kept sealed
    let mut hooked = d.request("anything", "anything_v2");
    hooked["webhook"] = json!({ "url": "https://169.254.169.254/latest/meta-data", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" });
    let refused = d
        .invoke(json!({ "action": "start", "request": hooked.clone() }))
        .await;
    assert_eq!(refused["error"]["field"], "webhook.url", "{refused}");
    hooked["webhook"]["url"] = json!("https://hooks.example.com/migrations");
    let accepted = d
        .invoke(json!({ "action": "start", "request": hooked }))
        .await;
    assert_eq!(
        accepted["job"]["request"]["webhook"]["secret"], "[redacted]",
        "{accepted}"
    );
    let items = scan(&d.dynamo, &d.table).await.join("\n");
    assert!(!items.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") && items.contains("sealed_secret"));
    let cancelled = d
        .invoke(event_for(
            "invoke-cancel.json",
            accepted["job"]["id"].as_str().unwrap(),
        ))
        .await;
    assert_eq!(cancelled["job"]["status"], "CANCELLED");

    // The sweep schedule answers with what it looked at
    let swept = d.invoke(event("schedule-sweep.json")).await;
    assert_eq!(swept["swept"], json!(0), "{swept}");

    // A work message for a job that ended is consumed, not retried
    let work = d.invoke(event_for("sqs-work.json", &job_id)).await;
    assert_eq!(work["batchItemFailures"], json!([]));
    // A message that is not a work message fails (to the dead-letter queue, after retries)
    let mut junk = event("sqs-work.json");
    junk["Records"][0]["body"] = json!("{\"kind\":\"dance\"}");
    let failed = d.invoke(junk).await;
    assert_eq!(
        failed["batchItemFailures"][0]["itemIdentifier"],
        event("sqs-work.json")["Records"][0]["messageId"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_retries_that_outlive_an_invocation_are_resumed_by_the_sweep() {
    // GIVEN a job whose webhook host does not resolve (`.invalid` never does), in a function
    // whose invocations last 2 s with attempts of at most 1 s and waits of 0.1 s, 0.4 s,
    // 1.6 s, 6.4 s: from the 4th attempt on, a wait no longer fits in an invocation, and only
    // the sweep can bring the next one
    let d = Deployment::new(Duration::from_secs(2), None, None).await;
    let mut request = d.request("anything", "anything_v2");
    request["webhook"] = json!({ "url": "https://vecmigrate-test.invalid/hook",
                                 "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" });
    let started = d
        .invoke(json!({ "action": "start", "request": request }))
        .await;
    let job_id = started["job"]["id"].as_str().expect("a job").to_owned();
    // WHEN it ends (cancelled before it starts) and the event source mapping and the sweep run
    d.invoke(event_for("invoke-cancel.json", &job_id)).await;
    let seen = pump_until(&d, &job_id, 2, |report| {
        report["job"]["webhook"]["attempts"]
            .as_array()
            .is_some_and(|a| a.len() >= 5)
    })
    .await;

    // THEN each attempt is on record, from separate deliver invocations, still pending
    let report = d.status(&job_id).await;
    let hook = &report["job"]["webhook"];
    assert_eq!(hook["event"], "migration.cancelled");
    assert_eq!(hook["state"], "pending", "{hook:#}");
    let attempts = hook["attempts"].as_array().unwrap();
    assert!(
        attempts
            .iter()
            .all(|a| a["error"].as_str().unwrap().contains("resolve")),
        "{hook:#}"
    );
    assert!(seen.invocations["deliver"] >= 3, "{seen:?}");
    assert!(seen.sweeps >= 1, "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_over_tls_seals_the_client_key_and_runs_to_success() {
    // GIVEN a source behind one-way TLS and a target behind two-way TLS, with the CA and the
    // client certificate and key inline in the request (as a scheduler would send them)
    let d = Deployment::new(Duration::from_secs(5), None, None).await;
    let tls = TlsServers::from_env();
    let source = Seed::new(&unique("lam_tls"), 2_000);
    seed(&d.servers.source, "default", &source).await;
    let mut request = d.request(&source.name, &source.name);
    request["source"]["uri"] = json!(format!("https://localhost:{}", tls.source_port));
    request["source"]["tls"] = json!({ "ca_cert": tls.pem("ca.pem") });
    request["target"]["uri"] = json!(format!("https://localhost:{}", tls.target_port));
    let key = tls.pem("client.key");
    request["target"]["tls"] = json!({
        "ca_cert": tls.pem("ca.pem"), "client_cert": tls.pem("client.pem"), "client_key": key
    });
    // WHEN it is started and its messages delivered
    let mut start = event("http-start.json");
    start["body"] = json!(request.to_string());
    let (code, body) = http_response(&d.invoke(start).await);
    assert_eq!(code, 202, "{body}");
    let job_id = body["job"]["id"].as_str().unwrap().to_owned();
    pump(&d, &job_id, 2).await;
    // THEN it succeeds over TLS on both sides, every row arrived, and the key is only ever
    // in the table sealed, and never in an answer
    let report = d.status(&job_id).await;
    assert_eq!(report["job"]["status"], "SUCCESSFUL", "{report:#}");
    assert_same_rows(&d.servers, &source, "default", &source.name).await;
    let key_line = key.lines().nth(1).unwrap();
    let items = scan(&d.dynamo, &d.table).await.join("\n");
    assert!(!items.contains(key_line), "the client key is in the table");
    assert!(items.contains("sealed_client_key"));
    let shown = report.to_string();
    assert!(
        !shown.contains(key_line) && !shown.contains("sealed_client_key"),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn throttling_outages_lost_messages_and_conflicts_on_the_lambda_path_lose_nothing() {
    use common::faults::{started, FaultProxy};
    // GIVEN invocations of 2 s, a target behind the fault proxy that throttles a fifth of the
    // writes, drops a burst of calls and then goes dark for 6 s (longer than an invocation),
    // and a store where every 7th conditional write of a job record loses the race
    let d = Deployment::new(
        Duration::from_secs(2),
        None,
        Some(Faults::conflict_every(7)),
    )
    .await;
    let proxy = FaultProxy::target();
    let source = Seed {
        partitions: vec!["p1".into(), "p2".into()],
        ..Seed::new(&unique("lam_fault"), 6_000)
    };
    seed(&d.servers.source, "default", &source).await;
    proxy
        .set(json!({
            "throttle_ratio": 0.2, "throttle_rate": 4_000_000,
            "unavailable": { "after_writes": 3, "count": 4 },
            "blackout": { "after_writes": 8, "seconds": 6 }
        }))
        .await;
    let mut request = d.request(&source.name, &source.name);
    request["target"]["uri"] = json!(proxy.uri);
    request["options"]["batch_size"] = json!(300);
    request["options"]["max_workers"] = json!(3);
    let mut start = event("http-start.json");
    start["body"] = json!(request.to_string());
    let clock = started();
    let (code, body) = http_response(&d.invoke(start).await);
    assert_eq!(code, 202, "{body}");
    let job_id = body["job"]["id"].as_str().unwrap().to_owned();
    // WHEN SQS loses the first work message (received, never handed to the function)
    pump_until(&d, &job_id, 1, |r| r["job"]["phase"] == "copy").await;
    let lost = d
        .sqs
        .receive_message()
        .queue_url(&d.queue_url)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    for m in lost.messages.unwrap_or_default() {
        d.sqs
            .delete_message()
            .queue_url(&d.queue_url)
            .receipt_handle(m.receipt_handle.unwrap())
            .send()
            .await
            .unwrap();
    }
    let seen = pump(&d, &job_id, 3).await;
    proxy.set(json!({})).await;
    // THEN it succeeds, across invocations, with every row once
    let report = d.status(&job_id).await;
    let (lost, duplicated) = record_row(
        &d,
        &job_id,
        &source,
        &source.name,
        "throttling, UNAVAILABLE, 6 s blackout, a lost SQS message, DynamoDB conflicts",
        &report,
        clock,
    )
    .await;
    assert_eq!(
        report["job"]["status"], "SUCCESSFUL",
        "{report:#}\n{seen:?}"
    );
    assert_eq!((lost, duplicated), (0, 0));
    assert_same_rows(&d.servers, &source, "default", &source.name).await;
    let log = report["log"].to_string();
    assert!(
        log.contains("the target cluster fails the job's calls"),
        "{log}"
    );
    // (its end seen by a later invocation than the one that began it)
    assert!(log.contains("the target cluster answers again"), "{log}");
    assert!(report["job"]["outage"].is_null(), "{report:#}");
    let throttles = report["job"]["write_rate"]["throttles"]
        .as_u64()
        .unwrap_or(0);
    assert!(throttles > 0, "{report:#}");
    // AND its EMF metrics add up to its own report
    let sum = |name, dimension| d.metric_sum(&job_id, name, dimension);
    let progress = &report["progress"];
    assert_eq!(
        sum("EntitiesCopied", None),
        progress["copied"].as_f64().unwrap()
    );
    assert_eq!(
        sum("BytesCopied", None),
        progress["bytes"].as_f64().unwrap()
    );
    let pages: u64 = d
        .app
        .engine()
        .store()
        .list_tasks(&job_id)
        .await
        .unwrap()
        .iter()
        .map(|t| t.batches)
        .sum();
    assert_eq!(sum("PagesWritten", None), pages as f64);
    assert_eq!(sum("ThrottledWrites", None), throttles as f64);
    // (each invocation waits only within its 2 s: the sum of the pauses, not the blackout)
    assert!(
        sum("OutageSeconds", Some(("Role", "target"))) > 0.0,
        "the blackout was waited out"
    );
    assert!(sum("InvocationsOutOfTime", None) >= 1.0, "2 s invocations");
    assert!(sum("WritePace", None) > 0.0);
    assert_eq!(sum("JobsStarted", None), 1.0);
    assert_eq!(sum("JobsEnded", Some(("Outcome", "successful"))), 1.0);
    assert_eq!(sum("VerificationMismatches", None), 0.0);
    eprintln!("lambda fault path: {seen:?}");
}

/// Counts what a Lambda-path job lost and wrote twice, and adds its row to the fault table.
async fn record_row(
    d: &Deployment,
    job_id: &str,
    source: &Seed,
    target: &str,
    fault: &str,
    report: &Value,
    clock: std::time::Instant,
) -> (u64, u64) {
    use common::faults::{checkpointed, lost_and_duplicated, FaultRow};
    let done = checkpointed(&**d.app.engine().store(), job_id).await;
    let (lost, duplicated) = lost_and_duplicated(&d.servers, source, "default", target, done).await;
    FaultRow {
        fault,
        path: "lambda",
        lost,
        duplicated,
        outcome: report["job"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        took: clock.elapsed(),
    }
    .record(&d.servers);
    (lost, duplicated)
}

/// An HTTP event for `method path` with `body`, carrying `bearer` and no IAM signature.
fn zilliz_call(method: &str, path: &str, body: Option<&Value>, bearer: Option<&str>) -> Value {
    let mut ev = event("http-start.json");
    ev["rawPath"] = json!(path);
    ev["requestContext"]["http"]["method"] = json!(method);
    ev["requestContext"]["http"]["path"] = json!(path);
    ev["requestContext"]
        .as_object_mut()
        .unwrap()
        .remove("authorizer");
    ev["body"] = body.map_or(Value::Null, |b| json!(b.to_string()));
    if let Some(key) = bearer {
        ev["headers"]["authorization"] = json!(format!("Bearer {key}"));
    }
    ev
}

/// The API key the stand-in control plane knows: on Zilliz Cloud the key is also the
/// data-plane token, so it is the servers' token here (a made-up one without authentication).
fn api_key(servers: &common::Servers) -> String {
    servers
        .source
        .token
        .clone()
        .unwrap_or_else(|| "standin-api-key".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn zillizs_own_migration_api_starts_and_reports_a_job_by_cluster_id() {
    // GIVEN a deployment whose control plane (the stand-in) knows a Serverless cluster on the
    // source server and a 64-CU Dedicated one on the target's, both visible to one API key (on
    // Zilliz Cloud the key is also the data-plane token, so it is the servers' token here)
    let servers = common::Servers::from_env();
    assert_eq!(
        servers.source.token, servers.target.token,
        "one API key serves both test servers"
    );
    let key = api_key(&servers);
    let cp = common::control_plane::StandIn::start(&json!({
        "keys": { key.clone(): ["in05-src000001", "in01-dst000001"] },
        "clusters": {
            "in05-src000001": {"plan": "Serverless", "connectAddress": servers.source.uri},
            "in01-dst000001": {"plan": "Enterprise", "cuSize": 64, "connectAddress": servers.target.uri},
        }
    }));
    let d = Deployment::build(Duration::from_secs(60), None, None, Some(cp.url())).await;
    let s = Seed::new(&unique("zapi"), 3_000);
    seed(&d.servers.source, "default", &s).await;
    let body = json!({
        "source": {"clusterId": "in05-src000001"},
        "destination": {"clusterId": "in01-dst000001"},
        "dbCollections": [{"dbName": "default", "collections": [{"collectionName": s.name}]}]
    });

    // WHEN a script written for Zilliz Cloud posts its body with its API key
    let start = zilliz_call("POST", "/v2/migrations/toExisting", Some(&body), Some(&key));
    let (code, answer) = http_response(&d.invoke(start).await);
    // THEN it answers in Zilliz's shape, and the job runs to its end
    assert_eq!((code, &answer["code"]), (200, &json!(0)), "{answer}");
    let job_id = answer["data"]["jobId"].as_str().unwrap().to_owned();
    let running = zilliz_call("GET", &format!("/v2/jobs/{job_id}"), None, Some(&key));
    let (code, polled) = http_response(&d.invoke(running).await);
    assert_eq!(code, 200, "{polled}");
    assert!(
        ["PENDING", "IN_PROGRESS"].contains(&polled["data"]["status"].as_str().unwrap()),
        "{polled}"
    );
    pump(&d, &job_id, 2).await;
    let done = zilliz_call("GET", &format!("/v2/jobs/{job_id}"), None, Some(&key));
    let (code, polled) = http_response(&d.invoke(done).await);
    assert_eq!(code, 200, "{polled}");
    let data = &polled["data"];
    assert_eq!(polled["code"], 0);
    assert_eq!(
        (
            &data["jobId"],
            &data["type"],
            &data["status"],
            &data["progress"],
            &data["reason"]
        ),
        (
            &json!(job_id),
            &json!("MIGRATION"),
            &json!("SUCCESSFUL"),
            &json!("100"),
            &json!("")
        ),
        "{polled}"
    );
    assert!(data["startTime"].as_str().unwrap().ends_with('Z'));
    assert!(!data["endTime"].as_str().unwrap().is_empty());
    assert_same_rows(&d.servers, &s, "default", &s.name).await;
    // and the record keeps the ids and the resolved endpoints, the key only sealed
    let report = d.status(&job_id).await;
    assert_eq!(
        report["job"]["request"]["target"]["cluster_id"],
        "in01-dst000001"
    );
    assert_eq!(
        report["job"]["request"]["target"]["uri"],
        json!(d.servers.target.uri)
    );
    assert_eq!(
        report["job"]["request"]["target"]["zilliz"]["plan"],
        "Enterprise"
    );
    let items = scan(&d.dynamo, &d.table).await;
    assert!(!format!("{items:?}").contains(&format!("\"{key}\"")));

    // WHEN another key, no key, a job that does not exist, or a body Zilliz would not take
    let other = zilliz_call(
        "GET",
        &format!("/v2/jobs/{job_id}"),
        None,
        Some("some-other-key"),
    );
    let unsigned = zilliz_call("GET", &format!("/v2/jobs/{job_id}"), None, None);
    let missing = zilliz_call("GET", "/v2/jobs/mig-nope", None, Some(&key));
    let typo = json!({"source": {"clusterId": "in05-src000001"}, "destinaton": {"clusterId": "x"}});
    let bad = zilliz_call("POST", "/v2/migrations/toExisting", Some(&typo), Some(&key));
    // THEN each is refused in Zilliz's error shape with its HTTP status
    for (ev, status, words) in [
        (other, 403, "code 80001"),
        (unsigned, 401, "sign the request"),
        (missing, 404, "mig-nope"),
        (bad, 400, "destinaton"),
    ] {
        let (code, answer) = http_response(&d.invoke(ev).await);
        assert_eq!(
            (code, answer["code"].as_u64()),
            (status, Some(status)),
            "{answer}"
        );
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains(words), "{message}");
        assert!(!message.contains(&key), "{message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn zillizs_migrate_to_new_dedicated_cluster_creates_it_once_and_migrates_into_it() {
    // GIVEN a deployment whose control plane (the stand-in) knows a Serverless source, and maps
    // the clusters it creates to the target server, CREATING for three describes
    let servers = common::Servers::from_env();
    let key = api_key(&servers);
    let cp = common::control_plane::StandIn::start(&json!({
        "keys": { key.clone(): ["in05-src000001"] },
        "clusters": {
            "in05-src000001": {"plan": "Serverless", "connectAddress": servers.source.uri},
        },
        "newClusters": {"connectAddress": servers.target.uri, "creatingPolls": 3},
    }));
    let d = Deployment::build(Duration::from_secs(60), None, None, Some(cp.url())).await;
    let s = Seed::new(&unique("znew"), 2_000);
    seed(&d.servers.source, "default", &s).await;
    let name = unique("upgraded");
    let body = json!({
        "source": {"clusterId": "in05-src000001"},
        "destination": {"clusterName": name, "projectId": "proj-standin",
                        "regionId": "aws-us-west-2", "plan": "Enterprise",
                        "cuType": "Performance-optimized", "cuSize": 2},
        "dbCollections": [{"dbName": "default", "collections": [{"collectionName": s.name}]}]
    });

    // WHEN a script written for Zilliz Cloud posts it to toNewDedicated with its API key
    let start = zilliz_call(
        "POST",
        "/v2/migrations/toNewDedicated",
        Some(&body),
        Some(&key),
    );
    let (code, answer) = http_response(&d.invoke(start).await);

    // THEN it answers the job id and the new cluster's id, as Zilliz does
    assert_eq!((code, &answer["code"]), (200, &json!(0)), "{answer}");
    let created = cp.creations().await;
    assert_eq!(created.len(), 1, "{created:?}");
    let cluster_id = created[0]["clusterId"].as_str().unwrap();
    assert_eq!(answer["data"]["clusterId"], json!(cluster_id), "{answer}");
    let job_id = answer["data"]["jobId"].as_str().unwrap().to_owned();
    // ... the job waits for RUNNING in its provision phase, then migrates into the cluster
    pump(&d, &job_id, 2).await;
    let done = zilliz_call("GET", &format!("/v2/jobs/{job_id}"), None, Some(&key));
    let (_, polled) = http_response(&d.invoke(done).await);
    assert_eq!(polled["data"]["status"], "SUCCESSFUL", "{polled}");
    assert_same_rows(&d.servers, &s, "default", &s.name).await;
    assert_eq!(
        cp.creations().await.len(),
        1,
        "the plan step created nothing more"
    );
    let report = d.status(&job_id).await;
    let job = &report["job"];
    assert_eq!(job["request"]["target"]["cluster_id"], json!(cluster_id));
    assert_eq!(job["request"]["target"]["zilliz"]["cu_size"], 2);
    assert_eq!(job["provision"]["status"], "RUNNING", "{job}");
    assert_eq!(job["provision"]["create_calls"], 1);
    // ... and the generated password is kept sealed in the record only, never shown
    let password = created[0]["password"].as_str().unwrap();
    assert!(job["provision"].get("sealed_password").is_none(), "{job}");
    assert!(!report.to_string().contains(password));
    let items = format!("{:?}", scan(&d.dynamo, &d.table).await);
    assert!(
        !items.contains(password),
        "the password in clear in the table"
    );
    assert!(
        items.contains("sealed_password"),
        "the sealed password is kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn post_migrations_with_dry_run_answers_the_plan_and_records_no_job() {
    // GIVEN a deployment and a seeded source
    let d = Deployment::new(Duration::from_secs(60), None, None).await;
    let s = Seed::new(&unique("dry"), 500);
    seed(&d.servers.source, "default", &s).await;
    let mut start = event("http-start.json");
    start["rawQueryString"] = json!("dry_run=true");
    start["queryStringParameters"] = json!({"dry_run": "true"});
    start["body"] = json!(d.request(&s.name, &s.name).to_string());

    // WHEN it is posted with ?dry_run=true
    let (code, plan) = http_response(&d.invoke(start).await);

    // THEN the plan comes back with the collection's count, and no job was written
    assert_eq!(code, 200, "{plan}");
    assert_eq!(
        (&plan["dry_run"], &plan["ok"]),
        (&json!(true), &json!(true)),
        "{plan}"
    );
    assert_eq!(plan["collections"][0]["entities"], 500);
    assert_eq!(plan["tier_rule"]["applied"], false);
    let page = d
        .app
        .engine()
        .store()
        .list_jobs(None, 10, None)
        .await
        .unwrap();
    assert!(page.jobs.is_empty(), "{:?}", page.jobs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn import_into_zilliz_cloud_stages_in_s3_and_survives_a_crash_and_a_lost_reply() {
    if !common::proven_on("standalone") {
        return;
    }
    // GIVEN a Zilliz Cloud target given by id (the stand-in control plane, whose imports fetch
    // the objects from S3 on moto and have the real 2.3.5 target server import them), which
    // drops the answer of the first import create; a deployment staging in an S3 bucket with a
    // read role; and a worker that dies right after that first call, before its record. A
    // second collection of 768-d vectors makes a file of about 18 MB, uploaded in parts
    let servers = common::Servers::from_env();
    let key = api_key(&servers);
    let cp = common::control_plane::StandIn::start(&json!({
        "keys": { key.clone(): ["in01-imp000001"] },
        "clusters": {
            "in01-imp000001": {"plan": "Enterprise", "cuSize": 2,
                               "connectAddress": servers.target.uri,
                               "token": servers.target.token.clone().unwrap_or_default()},
        },
        "imports": {"loseReplies": 1},
    }));
    let bucket = unique("stage").replace('_', "-").to_lowercase();
    let s3 = common::aws::create_bucket(&bucket).await;
    let role = "arn:aws:iam::123456789012:role/vecmigrate-staging-read";
    let staging = format!("s3://{bucket}/staging");
    let d = Deployment::build_with(
        Duration::from_secs(60),
        None,
        Some(Faults::crash_after_import(1)),
        Some(cp.url()),
        |c| {
            c.engine.staging = Some(staging.clone());
            c.engine.staging_read_role = Some(role.into());
            // One range per partition, so the 768-d one is one file.
            c.engine.min_range_entities = 100_000;
        },
    )
    .await;
    let source = Seed {
        partitions: vec!["p_a".into()],
        ..Seed::new(&unique("zimp"), 4_000)
    };
    let wide = Seed {
        dim: 768,
        ..Seed::new(&unique("zimpw"), 6_000)
    };
    for s in [&source, &wide] {
        seed(&d.servers.source, "default", s).await;
    }
    let mut request = d.request(&source.name, &source.name);
    request["databases"][0]["collections"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": wide.name}));
    request["target"] = json!({"cluster_id": "in01-imp000001", "api_key": key});
    request["options"]["write_mode"] = json!("import");
    request["options"]["batch_size"] = json!(500);
    request["options"]["import_file_mb"] = json!(30);

    // WHEN it is started (no options.staging: the deployment's bucket) and SQS delivers its
    // messages, the crashed invocation's again
    let mut start = event("http-start.json");
    start["body"] = json!(request.to_string());
    let (code, body) = http_response(&d.invoke(start).await);
    assert_eq!(code, 202, "{body}");
    let job_id = body["job"]["id"].as_str().unwrap().to_owned();
    let seen = pump(&d, &job_id, 2).await;

    // THEN it succeeds, every key exactly once, compared row by row (2.3.5 would keep a
    // second import's rows as duplicates), through imports alone
    let report = d.status(&job_id).await;
    assert_eq!(
        report["job"]["status"], "SUCCESSFUL",
        "{report:#}\n{seen:?}"
    );
    assert!(seen.failures >= 1, "the worker did not crash: {seen:?}");
    assert_same_rows(&d.servers, &source, "default", &source.name).await;
    assert_same_rows(&d.servers, &wide, "default", &wide.name).await;
    assert_eq!(
        report["job"]["request"]["options"]["staging"],
        json!(staging)
    );
    let import = &report["progress"]["import"];
    assert_eq!(import["rows_imported"], 10_000, "{report:#}");
    // ... the 768-d collection's one file larger than a part (16 MiB), so uploaded in parts
    let creates = cp.imports().await;
    let largest = creates.iter().filter_map(|c| c["bytes"].as_u64()).max();
    assert!(largest > Some(16 << 20), "{creates:#?}");
    let log = report["log"].to_string();
    assert!(log.contains("adopted, not made again"), "{log}");
    // ... each create was made once per file, with short-lived credentials for the job's
    // files (an STS session, never the function's own keys) that never reach the record
    assert_eq!(
        creates.len() as u64,
        import["files_imported"].as_u64().unwrap(),
        "{creates:#?}"
    );
    for c in &creates {
        let access = c["accessKey"].as_str().unwrap();
        assert_ne!(access, std::env::var("AWS_ACCESS_KEY_ID").unwrap());
        assert!(access.starts_with("ASIA"), "{c}");
        assert_eq!((&c["secretKey"], &c["token"]), (&json!(true), &json!(true)));
        let url = c["objectUrls"][0][0].as_str().unwrap();
        assert!(
            url.starts_with(&format!("{staging}/vecmigrate-{job_id}/")),
            "{url}"
        );
    }
    let items = scan(&d.dynamo, &d.table).await.join("\n");
    assert!(!items.contains("ASIA"), "read credentials in the table");
    // ... and nothing is left staged in the bucket
    let left = common::aws::keys_under(&s3, &bucket, "staging/").await;
    assert!(left.is_empty(), "left in the bucket: {left:?}");
}
