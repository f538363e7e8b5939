//! Bad input, 0 panics: one table of what callers get wrong, through the HTTP API, direct
//! invocation and the CLI, each with the status or exit code it must get and the field it must
//! name. A panic anywhere would fail the test (in the function) or exit 101 (the CLI).

mod common;

use std::process::Command;

use common::lambda::*;
use common::{ensure_database, list_databases, raw, seed, unique, Seed, Servers};
use serde_json::{json, Value};

/// What one case must get.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// An HTTP status, and the field the error names (`""` for none).
    Http(u64, &'static str),
    /// An HTTP status, the field, and words the message must carry.
    HttpSays(u64, &'static str, &'static str),
    /// An invocation answered with an error naming this field.
    Invoke(&'static str),
    /// A CLI exit code, and words its message must carry.
    Exit(i32, &'static str),
}

/// A start request over HTTP (IAM-signed), with the request changed by `edit`.
fn http_start(d: &Deployment, edit: impl Fn(&mut Value)) -> Value {
    let mut request = d.request("anything", "anything_v2");
    edit(&mut request);
    let mut ev = event("http-start.json");
    ev["body"] = json!(request.to_string());
    ev
}

fn http_body(body: &str) -> Value {
    let mut ev = event("http-start.json");
    ev["body"] = json!(body);
    ev
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_gets_its_status_and_names_its_field() {
    if !common::proven_on("lite") {
        return;
    }
    let secret = format!(
        "whsec_{}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [9u8; 32])
    );
    let d = Deployment::new(std::time::Duration::from_secs(5), Some(&secret), None).await;
    // A signed list request, taken once; the same headers again are a replay.
    let signing = vecmigrate::webhook::SigningSecret::parse(&secret).unwrap();
    let signed_list = {
        let mut e = event("http-list.json");
        e["requestContext"]
            .as_object_mut()
            .unwrap()
            .remove("authorizer");
        let (id, ts) = (unique("msg"), chrono::Utc::now().timestamp());
        let query = e["rawQueryString"].as_str().unwrap().to_owned();
        let content =
            vecmigrate::entrypoints::lambda::signed_content("GET", "/migrations", &query, b"");
        e["headers"]["webhook-id"] = json!(id);
        e["headers"]["webhook-timestamp"] = json!(ts.to_string());
        e["headers"]["webhook-signature"] = json!(signing.sign(&id, ts, &content));
        e
    };
    let first = d.invoke(signed_list.clone()).await;
    assert_eq!(first["statusCode"], 200, "{first}");
    let http: Vec<(&str, Value, Expect)> = vec![
        (
            "malformed JSON",
            http_body("{\"source\":"),
            Expect::Http(400, "source"),
        ),
        ("empty body", http_body(""), Expect::Http(400, "")),
        (
            "a JSON string, not an object",
            http_body("\"hello\""),
            Expect::Http(400, ""),
        ),
        (
            "text after the request",
            http_body(&format!("{} xyz", d.request("a", "b"))),
            Expect::Http(400, ""),
        ),
        (
            "oversize body",
            http_body(&"x".repeat(1_100_000)),
            Expect::Http(413, ""),
        ),
        (
            "unknown field",
            http_start(&d, |r| r["optoins"] = json!({})),
            Expect::Http(400, "optoins"),
        ),
        (
            "an empty array for a request",
            http_body("[]"),
            Expect::HttpSays(400, "", "must be a JSON object"),
        ),
        (
            "a request as an array of its fields",
            http_body(&format!(
                "[null, {}, {}, [{{\"name\": \"default\"}}]]",
                json!({"uri": "http://127.0.0.1:1"}),
                json!({"uri": "http://127.0.0.1:2"})
            )),
            Expect::HttpSays(400, "", "must be a JSON object"),
        ),
        (
            "options as an array",
            http_start(&d, |r| r["options"] = json!([100, 2])),
            Expect::HttpSays(400, "options", "must be a JSON object"),
        ),
        (
            "a database as an array",
            http_start(&d, |r| r["databases"] = json!([["default"]])),
            Expect::HttpSays(400, "databases[0]", "must be a JSON object"),
        ),
        (
            "a webhook secret that is the redaction marker",
            http_start(
                &d,
                |r| {
                    r["webhook"] =
                        json!({"url": "https://hooks.example.com/x", "secret": "[redacted]"})
                },
            ),
            Expect::HttpSays(400, "webhook.secret", "marker"),
        ),
        (
            "a token that is the redaction marker",
            http_start(&d, |r| r["target"]["token"] = json!("[redacted]")),
            Expect::HttpSays(400, "target.token", "marker"),
        ),
        (
            "not_after without a time zone",
            http_start(&d, |r| {
                r["options"]["not_after"] = json!("2027-01-01T00:00:00")
            }),
            Expect::HttpSays(400, "options.not_after", "2027-01-01T00:00:00Z"),
        ),
        (
            "a write ceiling of a nanobyte per second",
            http_start(&d, |r| r["options"]["max_write_mb_per_s"] = json!(1e-9)),
            Expect::HttpSays(400, "options.max_write_mb_per_s", "from 0.1"),
        ),
        (
            "unknown nested field",
            http_start(&d, |r| r["source"]["tokn"] = json!("x")),
            Expect::Http(400, "source.tokn"),
        ),
        (
            "wrong type",
            http_start(&d, |r| r["options"]["batch_size"] = json!("big")),
            Expect::Http(400, "options.batch_size"),
        ),
        (
            "null source",
            http_start(&d, |r| r["source"] = Value::Null),
            Expect::Http(400, "source"),
        ),
        (
            "batch_size 0",
            http_start(&d, |r| r["options"]["batch_size"] = json!(0)),
            Expect::Http(400, "options.batch_size"),
        ),
        (
            "negative batch_size",
            http_start(&d, |r| r["options"]["batch_size"] = json!(-5)),
            Expect::Http(400, "options.batch_size"),
        ),
        (
            "huge batch_size",
            http_start(&d, |r| {
                r["options"]["batch_size"] = json!(1_000_000_000_000u64)
            }),
            Expect::Http(400, "options.batch_size"),
        ),
        (
            "max_workers 0",
            http_start(&d, |r| r["options"]["max_workers"] = json!(0)),
            Expect::Http(400, "options.max_workers"),
        ),
        (
            "empty database name",
            http_start(&d, |r| r["databases"][0]["name"] = json!("")),
            Expect::Http(400, "databases[0].name"),
        ),
        (
            "overlong collection name",
            http_start(&d, |r| {
                r["databases"][0]["collections"][0]["name"] = json!("c".repeat(300))
            }),
            Expect::Http(400, "databases[0].collections[0].name"),
        ),
        (
            "a collection listed twice",
            http_start(&d, |r| {
                r["databases"][0]["collections"] =
                    json!([{"name": "a"}, {"name": "a", "target_name": "b"}])
            }),
            Expect::Http(400, "databases[0].collections[1].name"),
        ),
        (
            "1,001 collections",
            http_start(&d, |r| {
                r["databases"][0]["collections"] = json!((0..1001)
                    .map(|i| json!({"name": format!("c{i}")}))
                    .collect::<Vec<_>>())
            }),
            Expect::Http(400, "databases[0].collections"),
        ),
        (
            "no databases",
            http_start(&d, |r| r["databases"] = json!([])),
            Expect::Http(400, "databases"),
        ),
        (
            "ftp URI",
            http_start(&d, |r| r["source"]["uri"] = json!("ftp://h")),
            Expect::Http(400, "source.uri"),
        ),
        (
            "a cluster id that is not one",
            http_start(&d, |r| {
                r["source"] = json!({"cluster_id": "in01-../x", "api_key": "k"})
            }),
            Expect::Http(400, "source.cluster_id"),
        ),
        (
            "a cluster id and a URI",
            http_start(
                &d,
                |r| {
                    r["target"] =
                        json!({"cluster_id": "in01-abc", "uri": "http://h", "api_key": "k"})
                },
            ),
            Expect::Http(400, "target.cluster_id"),
        ),
        (
            "an api_key that is not text",
            http_start(&d, |r| {
                r["target"] = json!({"cluster_id": "in01-abc", "api_key": 42})
            }),
            Expect::Http(400, "target.api_key"),
        ),
        (
            "the control plane's answer from a caller",
            http_start(&d, |r| {
                r["target"]["zilliz"] = json!({"cluster_id": "in01-abc"})
            }),
            Expect::Http(400, "target.zilliz"),
        ),
        (
            "dry_run that is not true or false",
            http_start(&d, |r| r["dry_run"] = json!("yes")),
            Expect::Http(400, "dry_run"),
        ),
        (
            "port 0",
            http_start(&d, |r| r["target"]["uri"] = json!("http://h:0")),
            Expect::Http(400, "target.uri"),
        ),
        (
            "port 70000",
            http_start(&d, |r| r["target"]["uri"] = json!("http://h:70000")),
            Expect::Http(400, "target.uri"),
        ),
        (
            "unclosed IPv6",
            http_start(&d, |r| r["target"]["uri"] = json!("http://[::1")),
            Expect::Http(400, "target.uri"),
        ),
        (
            "token in the URI's query",
            http_start(&d, |r| r["target"]["uri"] = json!("http://h/?token=secret")),
            Expect::Http(400, "target.uri"),
        ),
        (
            "a path in the URI",
            http_start(&d, |r| r["target"]["uri"] = json!("http://h:19530/db")),
            Expect::Http(400, "target.uri"),
        ),
        (
            "tls on an http URI",
            http_start(&d, |r| r["source"]["tls"] = json!({})),
            Expect::Http(400, "source.tls"),
        ),
        (
            "not_after in the past",
            http_start(&d, |r| {
                r["options"]["not_after"] = json!("2001-01-01T00:00:00Z")
            }),
            Expect::Http(400, "options.not_after"),
        ),
        (
            "max_outage that is no duration",
            http_start(&d, |r| r["options"]["max_outage"] = json!("soon")),
            Expect::Http(400, "options.max_outage"),
        ),
        (
            "max_outage of 1 s",
            http_start(&d, |r| r["options"]["max_outage"] = json!("1s")),
            Expect::Http(400, "options.max_outage"),
        ),
        (
            "no repairs allowed",
            http_start(&d, |r| r["options"]["max_repairs"] = json!(0)),
            Expect::HttpSays(400, "options.max_repairs", "between 1 and 10"),
        ),
        (
            "negative write ceiling",
            http_start(&d, |r| r["options"]["max_write_mb_per_s"] = json!(-1)),
            Expect::Http(400, "options.max_write_mb_per_s"),
        ),
        (
            "webhook to plain http",
            http_start(
                &d,
                |r| r["webhook"] = json!({"url": "http://hooks.example.com/x", "secret_arn": "arn:aws:secretsmanager:r:1:secret:s"}),
            ),
            Expect::Http(400, "webhook.url"),
        ),
        (
            "webhook without a host",
            http_start(
                &d,
                |r| r["webhook"] = json!({"url": "https:///x", "secret_arn": "arn:aws:secretsmanager:r:1:secret:s"}),
            ),
            Expect::Http(400, "webhook.url"),
        ),
        (
            "webhook to instance metadata",
            http_start(
                &d,
                |r| r["webhook"] = json!({"url": "https://169.254.169.254/x", "secret_arn": "arn:aws:secretsmanager:r:1:secret:s"}),
            ),
            Expect::Http(400, "webhook.url"),
        ),
        (
            "webhook to loopback in AWS",
            http_start(
                &d,
                |r| r["webhook"] = json!({"url": "https://127.0.0.1/x", "secret_arn": "arn:aws:secretsmanager:r:1:secret:s"}),
            ),
            Expect::Http(400, "webhook.url"),
        ),
        (
            "unknown job",
            event_for("http-status.json", "mig-nope"),
            Expect::Http(404, ""),
        ),
        (
            "cancel of an unknown job",
            event_for("http-cancel.json", "mig-nope"),
            Expect::Http(404, ""),
        ),
        (
            "unknown route",
            {
                let mut e = event("http-status.json");
                e["rawPath"] = json!("/elsewhere");
                e
            },
            Expect::Http(404, ""),
        ),
        (
            "wrong method",
            {
                let mut e = event("http-list.json");
                e["requestContext"]["http"]["method"] = json!("DELETE");
                e
            },
            Expect::Http(405, ""),
        ),
        (
            "list filter that is no status",
            {
                let mut e = event("http-list.json");
                e["queryStringParameters"]["status"] = json!("DONE");
                e
            },
            Expect::Http(400, "status"),
        ),
        (
            "list limit 0",
            {
                let mut e = event("http-list.json");
                e["queryStringParameters"]["limit"] = json!("0");
                e
            },
            Expect::Http(400, "limit"),
        ),
        (
            "a page token never issued",
            {
                let mut e = event("http-list.json");
                e["queryStringParameters"]["next"] = json!("bogus");
                e
            },
            Expect::Http(400, "next"),
        ),
        (
            "unsigned request",
            {
                let mut e = event("http-list.json");
                e["requestContext"]
                    .as_object_mut()
                    .unwrap()
                    .remove("authorizer");
                e
            },
            Expect::Http(401, ""),
        ),
        (
            "a bad signature",
            {
                let mut e = event("http-list.json");
                e["requestContext"]
                    .as_object_mut()
                    .unwrap()
                    .remove("authorizer");
                e["headers"]["webhook-id"] = json!("msg_x");
                e["headers"]["webhook-timestamp"] =
                    json!(chrono::Utc::now().timestamp().to_string());
                e["headers"]["webhook-signature"] = json!("v1,AAAA");
                e
            },
            Expect::Http(401, ""),
        ),
        (
            "a replayed signed request",
            signed_list,
            Expect::Http(401, ""),
        ),
    ];
    let invoke: Vec<(&str, Value, Expect)> = vec![
        (
            "unknown action",
            json!({"action": "explode"}),
            Expect::Invoke("action"),
        ),
        (
            "no action",
            json!({"job_id": "x"}),
            Expect::Invoke("action"),
        ),
        (
            "status without job_id",
            json!({"action": "status"}),
            Expect::Invoke("job_id"),
        ),
        (
            "start without request",
            json!({"action": "start"}),
            Expect::Invoke("request"),
        ),
        (
            "start with a bad request",
            json!({"action": "start", "request": {"source": 5}}),
            Expect::Invoke("source"),
        ),
        (
            "list limit that is no number",
            json!({"action": "list", "limit": "x"}),
            Expect::Invoke("limit"),
        ),
        (
            "unknown field",
            json!({"action": "sweep", "extra": 1}),
            Expect::Invoke("extra"),
        ),
        (
            "wrong type of job_id",
            json!({"action": "status", "job_id": 7}),
            Expect::Invoke("job_id"),
        ),
    ];
    let mut rows = Vec::new();
    for (name, ev, expect) in http.into_iter().chain(invoke) {
        let answer = d.invoke(ev).await;
        let (got, field) = match expect {
            Expect::Http(..) | Expect::HttpSays(..) => {
                let (code, body) = http_response(&answer);
                (
                    code,
                    body["error"]["field"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                )
            }
            _ => (
                0,
                answer["error"]["field"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            ),
        };
        match expect {
            Expect::Http(code, f) => {
                assert_eq!((got, field.as_str()), (code, f), "{name}: {answer}");
            }
            Expect::HttpSays(code, f, words) => {
                assert_eq!((got, field.as_str()), (code, f), "{name}: {answer}");
                let (_, body) = http_response(&answer);
                let message = body["error"]["message"].as_str().unwrap_or_default();
                assert!(message.contains(words), "{name}: {message}");
            }
            Expect::Invoke(f) => assert_eq!(field, f, "{name}: {answer}"),
            Expect::Exit(..) => unreachable!(),
        }
        rows.push(name);
    }
    // ... and no refused request left a job behind
    let items = common::aws::scan(&d.dynamo, &d.table).await;
    let jobs = items
        .iter()
        .filter(|i| i.contains("S(\"META\")") && i.contains("S(\"JOB#"))
        .count();
    assert_eq!(jobs, 0, "refused requests wrote jobs: {items:#?}");
    let cli = cli_cases();
    eprintln!(
        "bad input: {} HTTP and invoke cases and {cli} CLI cases, 0 panics",
        rows.len()
    );
    assert!(rows.len() + cli >= 40);
}

fn vecmigrate(store: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vecmigrate"))
        .arg("--store")
        .arg(store)
        .args(args)
        .env_remove("VECMIGRATE_SOURCE_TOKEN")
        .env_remove("VECMIGRATE_TARGET_TOKEN")
        .output()
        .expect("the binary runs")
}

/// The CLI's cases that need no server; returns how many ran.
fn cli_cases() -> usize {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("jobs.sqlite3");
    // The store the cases read (a read never makes one).
    drop(vecmigrate::store::sqlite::SqliteStore::open(&store).unwrap());
    let spec = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let hostile = spec(
        "hostile.json",
        r#"{"source":{"uri":"http://127.0.0.1:1"},"target":{"uri":"http://127.0.0.1:2"},
            "databases":[{"name":"bad\u001b[31mname\n"}]}"#,
    );
    let garbage = spec(
        "garbage.json",
        r#"{"source":{"uri":"http://a:1"},"target":{"uri":"http://b:2"},"databases":[{"name":"default"}]} xyz"#,
    );
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = busy.local_addr().unwrap();
    let missing_store = dir.path().join("typo").join("jobs.sqlite3");
    let text_store = dir.path().join("not-sqlite");
    std::fs::write(&text_store, "this is not a database, it is text").unwrap();
    let cases: Vec<(&str, Vec<String>, Option<std::path::PathBuf>, Expect)> = vec![
        (
            "spec file missing",
            args(&["run", "--spec", "/nonexistent/spec.json"]),
            None,
            Expect::Exit(2, "cannot read spec"),
        ),
        (
            "text after the request",
            args(&["run", "--spec", &garbage]),
            None,
            Expect::Exit(2, "text after"),
        ),
        (
            "escape codes in a name are written out",
            args(&["run", "--spec", &hostile]),
            None,
            Expect::Exit(2, "\\u{1b}"),
        ),
        (
            "--max-run 0s",
            args(&[
                "run",
                "--source-uri",
                "http://a:1",
                "--target-uri",
                "http://b:2",
                "--max-run",
                "0s",
            ]),
            None,
            Expect::Exit(2, "too short"),
        ),
        (
            "list --limit 0",
            args(&["list", "--limit", "0"]),
            None,
            Expect::Exit(2, "from 1 to 1000"),
        ),
        (
            "webhook without a host",
            args(&[
                "run",
                "--source-uri",
                "http://a:1",
                "--target-uri",
                "http://b:2",
                "--webhook-url",
                "https:///x",
                "--webhook-secret",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            ]),
            None,
            Expect::Exit(2, "webhook.url"),
        ),
        (
            "a token in the URI",
            args(&[
                "run",
                "--source-uri",
                "http://h:1/?token=abc",
                "--target-uri",
                "http://b:2",
            ]),
            None,
            Expect::Exit(2, "source.uri"),
        ),
        (
            "status of an unknown job",
            args(&["status", "mig-nope"]),
            None,
            Expect::Exit(4, "mig-nope"),
        ),
        (
            "status in a store that does not exist",
            args(&["status", "mig-nope"]),
            Some(missing_store.clone()),
            Expect::Exit(4, "there is no job store at"),
        ),
        (
            "list in a store that does not exist",
            args(&["list"]),
            Some(missing_store.clone()),
            Expect::Exit(4, "there is no job store at"),
        ),
        (
            "resume in a store that does not exist",
            args(&["resume", "mig-nope"]),
            Some(missing_store.clone()),
            Expect::Exit(4, "there is no job store at"),
        ),
        (
            "cancel in a store that does not exist",
            args(&["cancel", "mig-nope"]),
            Some(missing_store.clone()),
            Expect::Exit(4, "there is no job store at"),
        ),
        (
            "a webhook secret that is the redaction marker",
            args(&[
                "run",
                "--source-uri",
                "http://a:1",
                "--target-uri",
                "http://b:2",
                "--webhook-url",
                "http://127.0.0.1:9/x",
                "--webhook-secret",
                "[redacted]",
            ]),
            None,
            Expect::Exit(2, "webhook.secret"),
        ),
        (
            "--not-after without a time zone",
            args(&[
                "run",
                "--source-uri",
                "http://a:1",
                "--target-uri",
                "http://b:2",
                "--not-after",
                "2027-01-01T00:00:00",
            ]),
            None,
            Expect::Exit(2, "has no time zone"),
        ),
        (
            "--max-outage of a second",
            args(&[
                "run",
                "--source-uri",
                "http://a:1",
                "--target-uri",
                "http://b:2",
                "--max-outage",
                "1s",
            ]),
            None,
            Expect::Exit(2, "options.max_outage"),
        ),
        (
            "--on-count-mismatch that is no choice",
            args(&[
                "run",
                "--source-uri",
                "http://a:1",
                "--target-uri",
                "http://b:2",
                "--on-count-mismatch",
                "shrug",
            ]),
            None,
            Expect::Exit(2, "repair or fail or remigrate"),
        ),
        (
            "--log-format that is no format",
            args(&["--log-format", "xml", "list"]),
            None,
            Expect::Exit(2, "text or json"),
        ),
        (
            "a store that is a directory",
            args(&["list"]),
            Some(dir.path().to_owned()),
            Expect::Exit(4, "cannot open"),
        ),
        (
            "a store that is not SQLite",
            args(&["list"]),
            Some(text_store.clone()),
            Expect::Exit(4, ""),
        ),
        (
            "a read-only store",
            args(&["list"]),
            Some("/proc/version".into()),
            Expect::Exit(4, ""),
        ),
        (
            "unknown flag",
            args(&["run", "--frobnicate"]),
            None,
            Expect::Exit(2, "frobnicate"),
        ),
        (
            "serve --listen that is no address",
            args(&["serve", "--listen", "localhost:eighty"]),
            None,
            Expect::Exit(2, "--listen"),
        ),
        (
            "serve on a port already taken",
            args(&["serve", "--listen", &taken.to_string()]),
            None,
            Expect::Exit(4, "cannot serve the jobs page on"),
        ),
    ];
    let n = cases.len();
    for (name, argv, store_path, expect) in cases {
        let Expect::Exit(code, words) = expect else {
            unreachable!()
        };
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let out = vecmigrate(store_path.as_deref().unwrap_or(&store), &argv);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{name}: {stderr}");
        assert!(stderr.contains(words), "{name}: {stderr}");
        assert!(
            !stderr.contains('\u{1b}'),
            "{name}: raw escape codes: {stderr:?}"
        );
    }
    // No refused command left a job behind, nor made the store it was told to read.
    assert!(!missing_store.exists() && !missing_store.parent().unwrap().exists());
    let listed = vecmigrate(&store, &["list", "--json"]);
    assert_eq!(String::from_utf8_lossy(&listed.stdout).trim(), "[]");
    n
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn clusters_that_cannot_serve_the_request_fail_the_job_naming_what_is_wrong() {
    if !common::proven_on("standalone") {
        return;
    }
    // GIVEN a seeded source, and requests a cluster cannot serve
    let servers = Servers::from_env();
    let s = Seed::new(&unique("badin"), 10);
    seed(&servers.source, "default", &s).await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("jobs.sqlite3");
    let free_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let token = |t: &Option<String>| t.clone().unwrap_or_default();
    let spec = |source_uri: &str, db: &str, collection: &str, target_name: &str| {
        json!({
            "source": { "uri": source_uri, "token": token(&servers.source.token) },
            "target": { "uri": servers.target.uri, "token": token(&servers.target.token) },
            "databases": [{ "name": db, "collections": [{ "name": collection, "target_name": target_name }] }],
            "options": { "max_outage": "10s" }
        })
        .to_string()
    };
    let existing = unique("clash");
    seed(&servers.target, "default", &Seed::new(&existing, 3)).await;
    // Two source databases that both hold a collection of the same name, schema and keys.
    let (db_a, db_b, merged) = (unique("dba"), unique("dbb"), unique("merged"));
    let same = Seed::new(&unique("same"), 10);
    for db in [&db_a, &db_b] {
        ensure_database(&mut raw(&servers.source).await, db).await;
        seed(&servers.source, db, &same).await;
    }
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut v: Value =
            serde_json::from_str(&spec(&servers.source.uri, "default", &s.name, "y")).unwrap();
        edit(&mut v);
        v.to_string()
    };
    // Something that answers HTTP/1.1, not gRPC (the moto server), and a port that accepts
    // connections and never answers.
    let http_only = common::var("VECMIGRATE_TEST_MOTO");
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_uri = format!("http://{}", silent.local_addr().unwrap());
    let mut cases = vec![
        (
            "two whole databases into one target database, sharing a collection name",
            with(&|v| {
                v["databases"] = json!([
                    {"name": db_a, "target_name": merged},
                    {"name": db_b, "target_name": merged}
                ])
            }),
            "would both be written to",
        ),
        (
            "a target that answers HTTP/1.1, not gRPC",
            with(&|v| v["target"]["uri"] = json!(http_only)),
            "not as a Milvus gRPC server",
        ),
        (
            "a target that accepts connections and never answers",
            with(&|v| v["target"]["uri"] = json!(silent_uri)),
            "answered no gRPC call within 10s",
        ),
        (
            "a 100 KB token",
            with(&|v| v["target"]["token"] = json!("k".repeat(100_000))),
            "too long to send",
        ),
        (
            "nothing listens",
            spec(
                &format!("http://127.0.0.1:{free_port}"),
                "default",
                &s.name,
                "x1",
            ),
            "cannot reach the source cluster",
        ),
        (
            "unresolvable host",
            spec(
                "http://no-such-host.invalid:19530",
                "default",
                &s.name,
                "x2",
            ),
            "cannot reach the source cluster",
        ),
        (
            "a missing database",
            spec(&servers.source.uri, "nope", &s.name, "x3"),
            "databases[0].name: source database `nope` does not exist",
        ),
        (
            "a missing collection",
            spec(&servers.source.uri, "default", "no_such_collection", "x4"),
            "does not exist on the source",
        ),
        (
            "a name clash on the target",
            spec(&servers.source.uri, "default", &s.name, &existing),
            "already exists in target database",
        ),
    ];
    // Milvus Lite has no authentication; Milvus 2.3.5 here has it on.
    if servers.backend != "lite" {
        let mut wrong: Value =
            serde_json::from_str(&spec(&servers.source.uri, "default", &s.name, "x5")).unwrap();
        wrong["source"]["token"] = json!("root:certainly-wrong");
        cases.push((
            "a wrong source token",
            wrong.to_string(),
            "refused the credentials",
        ));
    }
    for (name, text, words) in cases {
        let path = dir.path().join("spec.json");
        std::fs::write(&path, text).unwrap();
        let out = vecmigrate(&store, &["--json", "run", "--spec", path.to_str().unwrap()]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
        let message = report["job"]["error"]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(message.contains(words), "{name}: {message}");
        assert!(
            !message.contains("certainly-wrong") && !message.contains("kkkkkkkk"),
            "{name}: the token echoed"
        );
    }
    // ... and nothing was written: the merged database was never made.
    assert!(!list_databases(&servers.target).await.contains(&merged));
    drop(silent);
}
