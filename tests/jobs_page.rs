//! The jobs page (`vecmigrate serve`) in headless Chromium (Debian's `chromium`, driven by
//! `scripts/browser.py`), over real migrations between the test servers: the list and a job's
//! page while it runs and after it ends, and Cancel pressed on a second running job; then
//! the same page over a deployment's DynamoDB table (moto), and its answers to bad requests.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::browser::{Browser, JobsPage};
use common::receiver::Receiver;
use common::*;
use serde_json::Value;
use vecmigrate::domain::request::WebhookSpec;
use vecmigrate::domain::{Job, JobStatus, MigrationRequest, Secret};
use vecmigrate::engine::{EngineConfig, Faults};
use vecmigrate::store::dynamodb::DynamoStore;
use vecmigrate::store::JobStore;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ROWS: usize = 6_000;

/// Where the screenshots go: `target/screenshots`, and `docs/` too when
/// `VECMIGRATE_UPDATE_SCREENSHOTS=1` (how the README's pictures are made).
fn shots(name: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = vec![root.join("target/screenshots").join(name)];
    if std::env::var("VECMIGRATE_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        paths.push(root.join("docs").join(name));
    }
    paths
}

async fn screenshot(browser: &Browser, name: &str) {
    for path in shots(name) {
        browser.screenshot(&path).await;
        assert!(std::fs::metadata(&path).unwrap().len() > 10_000, "{path:?}");
    }
}

/// Polls `js` on the open page (which reloads itself) until `done` holds; panics after 2 min.
async fn until(browser: &Browser, js: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..1_200 {
        let v = browser.eval(js).await;
        if done(&v) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("`{js}` never held; last seen: {:?}", browser.eval(js).await);
}

/// A request for one seeded collection, one worker, small pages.
fn slow_request(servers: &Servers, name: &str) -> MigrationRequest {
    let mut r = request(servers, None, &[(name, name)]);
    r.options.batch_size = 200;
    r.options.max_workers = 1;
    r
}

const STATUS: &str = "document.querySelector('h1 [data-status]').dataset.status";

#[tokio::test]
async fn the_jobs_page_follows_a_migration_to_its_end_and_cancels_another() {
    // GIVEN a source whose page reads each take 400 ms (30 pages a job: 12 s to look at it),
    // the jobs page served by another process over the same store, and a browser
    let receiver = Receiver::start(SECRET);
    let h = harness_webhook(
        fast_settings(),
        EngineConfig::default(),
        SECRET,
        Some(Faults::slow_page_reads(400)),
    );
    let a = Seed {
        partitions: vec!["p1".into()],
        ..Seed::new(&unique("page_a"), ROWS)
    };
    let b = Seed::new(&unique("page_b"), ROWS);
    seed(&h.servers.source, "default", &a).await;
    seed(&h.servers.source, "default", &b).await;
    let page = JobsPage::start(&h.store_path());
    let browser = Browser::start();

    // WHEN job A runs (with a signed webhook)
    let mut ra = slow_request(&h.servers, &a.name);
    ra.webhook = Some(WebhookSpec {
        url: receiver.url("/ok"),
        secret: Some(Secret::new(SECRET)),
        secret_arn: None,
        progress_every_seconds: None,
        sealed_secret: None,
    });
    let (job_a, _) = h.engine.start(ra).await.unwrap();
    let driving = h.runner.drive(&job_a.id, |_| {});
    let looking = async {
        // THEN the list shows it running: its route, status and a progress bar of its total
        // (opened again until the copy has begun, to look early in it)
        let row = format!("document.getElementById('{}')", job_a.id);
        let bar_js = format!(
            "(() => {{ const r = {row}; const p = r && r.querySelector('progress'); return p ? [p.max, p.value] : null; }})()"
        );
        let mut bar = Value::Null;
        for _ in 0..600 {
            browser.open(&page.url("/"), 1280, 800).await;
            bar = browser.eval(&bar_js).await;
            if bar[0] == ROWS as f64 && bar[1].as_f64().unwrap_or(0.0) > 0.0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let copied = bar[1].as_f64().unwrap_or(0.0);
        assert!(
            bar[0] == ROWS as f64 && copied > 0.0 && copied < ROWS as f64,
            "a bar of 6,000 entities, part copied: {bar}"
        );
        let text = browser.eval(&format!("{row}.innerText")).await;
        let text = text.as_str().unwrap();
        assert!(text.contains("IN_PROGRESS"), "{text}");
        assert!(text.contains(&format!("of {} entities", "6,000")), "{text}");
        assert!(text.contains(&h.servers.source.uri), "the source: {text}");
        assert!(text.contains("/s"), "a rate: {text}");
        // ... and the job's page shows it running, refreshing itself, with Cancel and resume
        browser
            .open(&page.url(&format!("/jobs/{}", job_a.id)), 1280, 900)
            .await;
        assert_eq!(browser.eval(STATUS).await, "IN_PROGRESS");
        assert_eq!(
            browser
                .eval("!!document.querySelector('meta[http-equiv=refresh]')")
                .await,
            true
        );
        assert_eq!(
            browser.eval("!!document.getElementById('cancel')").await,
            true
        );
        let resume = browser.text("#resume").await;
        assert_eq!(
            resume,
            format!(
                "vecmigrate --store {} resume {}",
                h.store_path().display(),
                job_a.id
            )
        );
        // ... which, left alone, reloads itself until the job has ended and its webhook is sent
        until(&browser, STATUS, |v| v == "SUCCESSFUL").await;
        until(
            &browser,
            "document.getElementById('webhook').innerText",
            |v| v.as_str().is_some_and(|t| t.contains("delivered")),
        )
        .await;
    };
    let (report, ()) = tokio::join!(driving, looking);
    let report = report.unwrap();
    assert_eq!(report.job.status, JobStatus::Successful);

    // THEN the ended job's page shows the counts and the match read back from the target
    browser
        .open(&page.url(&format!("/jobs/{}", job_a.id)), 1280, 900)
        .await;
    let collections = browser.text("table.collections tbody").await;
    let target = count(&h.servers.target, "default", &a.name).await;
    assert_eq!(target, ROWS as u64);
    assert!(
        collections.contains(&format!(
            "default.{}\tdefault.{}\t6,000\t6,000\tyes",
            a.name, a.name
        )),
        "{collections:?}"
    );
    assert!(browser
        .text(".progress .copied")
        .await
        .contains("6,000 of 6,000 entities"));
    assert_eq!(browser.text("#tasks-done").await, "2 of 2 done");
    let log = browser.text("table.log").await;
    assert!(
        log.contains(&format!("created `default.{}`", a.name)),
        "{log}"
    );
    assert_eq!(
        browser.text("table.attempts td[data-label='Answer']").await,
        "200",
        "the one attempt, answered 200"
    );
    assert_eq!(
        browser.eval("!!document.getElementById('cancel')").await,
        false
    );
    assert_eq!(
        browser
            .eval("!!document.querySelector('meta[http-equiv=refresh]')")
            .await,
        false,
        "an ended job's page stays still"
    );
    screenshot(&browser, "jobs-page-job.png").await;

    // WHEN job B runs and Cancel is pressed on its page
    let (job_b, _) = h
        .engine
        .start(slow_request(&h.servers, &b.name))
        .await
        .unwrap();
    let driving = h.runner.drive(&job_b.id, |_| {});
    let cancelling = async {
        browser
            .open(&page.url(&format!("/jobs/{}", job_b.id)), 1280, 900)
            .await;
        until(
            &browser,
            "document.querySelector('.progress progress').value",
            |v| v.as_f64().unwrap_or(0.0) > 0.0,
        )
        .await;
        // a cancel from another site is refused, and changes nothing
        let forged = reqwest::Client::new()
            .post(page.url(&format!("/jobs/{}/cancel", job_b.id)))
            .header("origin", "http://evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 403);
        assert!(
            !h.store
                .get_job(&job_b.id)
                .await
                .unwrap()
                .unwrap()
                .cancel_requested
        );
        browser.click("#cancel").await;
        // THEN the page it lands on is the job's, which shows the cancel, then CANCELLED
        assert_eq!(
            browser.eval("location.pathname").await,
            format!("/jobs/{}", job_b.id)
        );
        until(&browser, STATUS, |v| v == "CANCELLED").await;
    };
    let (report_b, ()) = tokio::join!(driving, cancelling);
    let report_b = report_b.unwrap();
    assert_eq!(report_b.job.status, JobStatus::Cancelled);
    assert!(report_b.job.cancel_requested);
    assert!(
        report_b.progress.copied < ROWS as u64,
        "the copy stopped early"
    );
    assert!(
        browser.text("table.log").await.contains("cancel requested"),
        "the log says who stopped it"
    );

    // THEN the list shows both outcomes, filters by status, and keeps every secret out
    browser.open(&page.url("/"), 1280, 800).await;
    let a_row = browser.text(&format!("tr[id='{}']", job_a.id)).await;
    assert!(
        a_row.contains("SUCCESSFUL") && a_row.contains("6,000 of 6,000"),
        "{a_row}"
    );
    assert!(a_row.contains("delivered"), "the webhook's state: {a_row}");
    let b_row = browser.text(&format!("tr[id='{}']", job_b.id)).await;
    assert!(b_row.contains("CANCELLED"), "{b_row}");
    screenshot(&browser, "jobs-page-list.png").await;
    let html = browser.eval("document.documentElement.outerHTML").await;
    let html = html.as_str().unwrap();
    for secret in [Some(SECRET.to_owned()), h.servers.source.token.clone()]
        .into_iter()
        .flatten()
    {
        assert!(!html.contains(&secret), "a secret on the list");
    }
    browser
        .open(&page.url("/?status=CANCELLED"), 1280, 800)
        .await;
    let ids = browser
        .eval("[...document.querySelectorAll('tr.job')].map(r => r.id)")
        .await;
    assert!(ids
        .as_array()
        .unwrap()
        .contains(&Value::from(job_b.id.clone())));
    assert!(!ids
        .as_array()
        .unwrap()
        .contains(&Value::from(job_a.id.clone())));
    // ... and on a narrow screen the list is cards, with nothing wider than the screen
    browser.open(&page.url("/"), 390, 800).await;
    assert_eq!(
        browser
            .eval("document.documentElement.scrollWidth <= 390")
            .await,
        true
    );
    assert_eq!(
        browser
            .eval("getComputedStyle(document.querySelector('thead')).display")
            .await,
        "none"
    );
    screenshot(&browser, "jobs-page-narrow.png").await;
}

#[tokio::test]
async fn the_jobs_page_answers_bad_requests_with_what_is_wrong() {
    let h = harness(fast_settings(), EngineConfig::default(), None);
    let page = JobsPage::start(&h.store_path());
    // A new connection per request: the server closes an idle keep-alive connection after the
    // same header timeout the slow client below waits out, and a pooled connection picked up
    // as it closes fails the request (a browser retries it; reqwest does not).
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let get = |path: &str| http.get(page.url(path)).send();
    // A filter that is no status names the field.
    let r = get("/?status=DONE").await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("status `DONE` is not one of"));
    // A page token it never gave.
    assert_eq!(get("/?next=bm9wZQ").await.unwrap().status(), 400);
    // A job it does not have, a page it does not have, a method it does not take.
    let r = get("/jobs/mig-nope").await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("job `mig-nope` not found"));
    assert_eq!(get("/nothing/here").await.unwrap().status(), 404);
    assert_eq!(
        http.delete(page.url("/")).send().await.unwrap().status(),
        405
    );
    // A cancel without an origin (curl, another program) is sent to the CLI.
    let r = http
        .post(page.url("/jobs/mig-nope/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("vecmigrate cancel"));
    // A name that is not loopback's (DNS rebinding) gets nothing.
    let r = http
        .get(page.url("/"))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 421);
    // Two Host headers could each pass a different check: refused.
    let address = page
        .url("/")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let answer = raw_exchange(
        &address,
        "GET / HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    // A client that never finishes its headers is not kept for ever: the server closes the
    // connection (hyper answers 408 first) well within a minute.
    let answer = raw_exchange(&address, "GET / HTTP/1.1\r\nHost: localhost\r\n").await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    // Every page forbids framing and loading from elsewhere; the stylesheet is served here.
    let r = get("/").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert!(r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    let css = get("/style.css").await.unwrap();
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert!(css
        .text()
        .await
        .unwrap()
        .contains("@media (max-width: 720px)"));
}

/// Sends `request` as it is over a new connection to `address` and reads until the server
/// closes it (at most a minute, which fails the test).
async fn raw_exchange(address: &str, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        stream.read_to_end(&mut answer),
    )
    .await;
    assert!(
        read.is_ok(),
        "the server kept the connection open for a minute"
    );
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn the_jobs_page_serves_a_deployments_dynamodb_table_and_cancels_there() {
    // GIVEN a deployment's job table (template.yaml's, on moto) holding a job not yet started
    let table = unique("vecmigrate-jobs");
    let client = common::aws::create_table(&table).await;
    let store = DynamoStore::new(client, table.clone(), chrono::Duration::days(7));
    let request = MigrationRequest::from_json(
        r#"{"source":{"uri":"http://127.0.0.1:1","token":"root:SourcePassword"},
            "target":{"uri":"http://127.0.0.1:2"},
            "databases":[{"name":"default","collections":[{"name":"in_the_table"}]}]}"#,
    )
    .unwrap();
    let job = Job::new(Job::new_id(), request, chrono::Utc::now());
    store.create_job(&job).await.unwrap();

    // WHEN `vecmigrate --dynamodb-table TABLE serve` serves it
    let page = JobsPage::over_table(&table);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // THEN the list and the job's page show the table's job, and not its token
    let list = http.get(page.url("/")).send().await.unwrap();
    assert_eq!(list.status(), 200);
    let list = list.text().await.unwrap();
    assert!(
        list.contains(&job.id) && list.contains("in_the_table"),
        "{list}"
    );
    let one = http
        .get(page.url(&format!("/jobs/{}", job.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    let one = one.text().await.unwrap();
    let form = format!(r#"action="/jobs/{}/cancel""#, job.id);
    assert!(one.contains("PENDING") && one.contains(&form), "{one}");
    assert!(!list.contains("SourcePassword") && !one.contains("SourcePassword"));

    // AND its Cancel, posted as the page's own form is, ends the job in the table
    let cancel = http
        .post(page.url(&format!("/jobs/{}/cancel", job.id)))
        .header("origin", &page.base)
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), 303);
    let stored = store.get_job(&job.id).await.unwrap().unwrap();
    assert!(stored.cancel_requested, "{stored:?}");
    assert_eq!(stored.status, JobStatus::Cancelled);
}
