//! The `vecmigrate` binary as a user runs it: exit codes, messages, `--json`, `status`, `list`.

mod common;

use std::process::{Command, Output};

use common::*;

fn vecmigrate(store: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vecmigrate"))
        .arg("--store")
        .arg(store)
        .args(args)
        .env_remove("VECMIGRATE_SOURCE_TOKEN")
        .env_remove("VECMIGRATE_TARGET_TOKEN")
        .output()
        .expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Whether `store` holds no job (a store never made holds none: reading it says so).
fn no_jobs(store: &std::path::Path) -> bool {
    !store.exists()
        || String::from_utf8_lossy(&vecmigrate(store, &["list", "--json"]).stdout).trim() == "[]"
}

#[test]
fn invalid_spec_exits_2_naming_the_json_path() {
    if !common::proven_on("lite") {
        return;
    }
    // GIVEN a spec whose second collection has a bad target name
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.json");
    std::fs::write(
        &spec,
        r#"{"source":{"uri":"http://127.0.0.1:1"},"target":{"uri":"http://127.0.0.1:2"},
            "databases":[{"name":"default","collections":[{"name":"a"},{"name":"b","target_name":"no spaces"}]}]}"#,
    )
    .unwrap();
    // WHEN it is run
    let out = vecmigrate(
        &dir.path().join("s.db"),
        &["run", "--spec", spec.to_str().unwrap()],
    );
    // THEN it exits 2 with the path of the bad field, and no job was written
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("databases[0].collections[1].target_name"),
        "{}",
        stderr(&out)
    );
    assert!(no_jobs(&dir.path().join("s.db")));
}

#[test]
fn unknown_field_and_missing_flags_exit_2() {
    if !common::proven_on("lite") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.json");
    std::fs::write(&spec, r#"{"source":{"uri":"http://a:1"},"target":{"uri":"http://b:2"},"databases":[{"name":"default"}],"optoins":{}}"#).unwrap();
    let out = vecmigrate(
        &dir.path().join("s.db"),
        &["run", "--spec", spec.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("optoins"), "{}", stderr(&out));
    let out = vecmigrate(
        &dir.path().join("s.db"),
        &["run", "--target-uri", "http://b:2"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--source-uri"), "{}", stderr(&out));
}

#[test]
fn status_of_unknown_job_exits_4() {
    if !common::proven_on("lite") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    drop(vecmigrate::store::sqlite::SqliteStore::open(&dir.path().join("s.db")).unwrap());
    let out = vecmigrate(&dir.path().join("s.db"), &["status", "mig-nope"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(stderr(&out).contains("mig-nope"), "{}", stderr(&out));
}

#[tokio::test]
async fn run_with_flags_prints_json_report_and_exits_0() {
    if !common::proven_on("lite") {
        return;
    }
    // GIVEN a seeded source collection
    let servers = Servers::from_env();
    let s = Seed {
        partitions: vec!["p1".into()],
        ..Seed::new(&unique("cli"), 2_500)
    };
    seed(&servers.source, "default", &s).await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("jobs.sqlite3");
    let target = format!("{}:{}_copy", s.name, s.name);
    let mut args: Vec<String> = [
        "--json",
        "run",
        "--source-uri",
        &servers.source.uri,
        "--target-uri",
        &servers.target.uri,
        "--collection",
        &target,
        "--max-run",
        "1s",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    if let Some(t) = &servers.source.token {
        args.extend(["--source-token".to_owned(), t.clone()]);
    }
    if let Some(t) = &servers.target.token {
        args.extend(["--target-token".to_owned(), t.clone()]);
    }
    // WHEN the CLI runs it
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        vecmigrate(&store, &args)
    })
    .await
    .unwrap();
    // THEN it exits 0 and prints the report with the verification, and no token
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["job"]["status"], "SUCCESSFUL");
    let c = &report["job"]["collections"][0];
    assert_eq!(
        (
            c["source_count"].as_u64(),
            c["target_count"].as_u64(),
            c["match"].as_bool()
        ),
        (Some(2_500), Some(2_500), Some(true))
    );
    assert_eq!(
        count(&servers.target, "default", &format!("{}_copy", s.name)).await,
        2_500
    );
    let text = String::from_utf8_lossy(&out.stdout);
    if let Some(t) = &servers.source.token {
        assert!(
            !text.contains(t.as_str()),
            "the token never appears in the report"
        );
    }
    // and `status` and `list` show the job
    let id = report["job"]["id"].as_str().unwrap().to_owned();
    let store = dir.path().join("jobs.sqlite3");
    let status = vecmigrate(&store, &["status", &id]);
    assert_eq!(status.status.code(), Some(0));
    let table = String::from_utf8_lossy(&status.stdout);
    assert!(
        table.contains("SUCCESSFUL") && table.contains("2500") && table.contains("yes"),
        "{table}"
    );
    let list = vecmigrate(&store, &["list", "--status", "successful"]);
    assert!(String::from_utf8_lossy(&list.stdout).contains(&id));
}

#[tokio::test]
async fn a_run_on_a_deployments_dynamodb_table_keeps_its_job_there() {
    if !common::proven_on("lite") {
        return;
    }
    // GIVEN a job table as template.yaml defines it (on moto), and a seeded source
    let servers = Servers::from_env();
    let s = Seed::new(&unique("ddb"), 1_200);
    seed(&servers.source, "default", &s).await;
    let table = unique("vecmigrate-jobs");
    let dynamo = common::aws::create_table(&table).await;
    let cli = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_vecmigrate"))
                .args(&args)
                .env_remove("VECMIGRATE_STORE")
                .output()
                .expect("the binary runs")
        })
    };
    let mut args: Vec<String> = ["--dynamodb-table", &table, "--json", "run"]
        .iter()
        .map(|a| a.to_string())
        .collect();
    args.extend(
        [
            "--source-uri",
            &servers.source.uri,
            "--target-uri",
            &servers.target.uri,
            "--collection",
            &s.name,
        ]
        .iter()
        .map(|a| a.to_string()),
    );
    for (flag, token) in [
        ("--source-token", &servers.source.token),
        ("--target-token", &servers.target.token),
    ] {
        if let Some(t) = token {
            args.extend([flag.to_owned(), t.clone()]);
        }
    }

    // WHEN the CLI runs the job with `--dynamodb-table`
    let out = cli(args).await.unwrap();

    // THEN it succeeds, its record is the table's `JOB#…/META` item, and `status` reads it there
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = report["job"]["id"].as_str().unwrap().to_owned();
    let item = dynamo
        .get_item()
        .table_name(&table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("JOB#{id}")),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("META".into()),
        )
        .send()
        .await
        .unwrap();
    let status = item.item().and_then(|i| i.get("status")).cloned();
    assert_eq!(
        status,
        Some(aws_sdk_dynamodb::types::AttributeValue::S(
            "SUCCESSFUL".into()
        ))
    );
    assert_eq!(count(&servers.target, "default", &s.name).await, 1_200);
    let shown = cli(vec![
        "--dynamodb-table".into(),
        table.clone(),
        "status".into(),
        id,
    ])
    .await
    .unwrap();
    assert_eq!(shown.status.code(), Some(0), "{}", stderr(&shown));
    assert!(String::from_utf8_lossy(&shown.stdout).contains("SUCCESSFUL"));
    // AND both stores at once is refused as a usage error
    let both = cli(vec![
        "--dynamodb-table".into(),
        table,
        "--store".into(),
        "/tmp/x.sqlite3".into(),
        "list".into(),
    ])
    .await
    .unwrap();
    assert_eq!(both.status.code(), Some(2), "{}", stderr(&both));
    // AND a table that does not exist is named, with what to check, in one sentence
    let missing = cli(vec![
        "--dynamodb-table".into(),
        "vecmigrate-no-such-table".into(),
        "list".into(),
    ])
    .await
    .unwrap();
    assert_eq!(missing.status.code(), Some(4), "{}", stderr(&missing));
    assert!(
        stderr(&missing).contains(
            "DynamoDB table `vecmigrate-no-such-table` does not exist in this account and region"
        ),
        "{}",
        stderr(&missing)
    );
}

#[tokio::test]
async fn a_token_in_secrets_manager_is_read_with_the_usual_aws_credentials() {
    if !common::proven_on("lite") {
        return;
    }
    // GIVEN a source token kept in Secrets Manager (moto) and a spec that names its ARN
    let servers = Servers::from_env();
    let s = Seed::new(&unique("arn"), 1_000);
    seed(&servers.source, "default", &s).await;
    let token = servers
        .source
        .token
        .clone()
        .unwrap_or_else(|| "root:Milvus".into());
    let arn = common::aws::create_secret(&unique("vecmigrate-src"), &token).await;
    let dir = tempfile::tempdir().unwrap();
    let spec_for = |arn: &str| {
        serde_json::json!({
            "source": { "uri": servers.source.uri, "token_secret_arn": arn },
            "target": { "uri": servers.target.uri, "token": servers.target.token.clone().unwrap_or_default() },
            "databases": [{ "name": "default", "collections": [{ "name": s.name, "target_name": format!("{}_a", s.name) }] }]
        })
        .to_string()
    };
    let run = |spec: String, name: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, spec).unwrap();
        let store = dir.path().join("jobs.sqlite3");
        tokio::task::spawn_blocking(move || {
            vecmigrate(&store, &["--json", "run", "--spec", path.to_str().unwrap()])
        })
    };

    // WHEN the CLI runs it
    let out = run(spec_for(&arn), "ok.json").await.unwrap();
    // THEN the migration succeeds; the record keeps the ARN, never the token
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&arn) && !text.contains(&token), "{text}");

    // AND an ARN that does not exist fails the job, naming the secret
    let missing = arn.replace("vecmigrate-src", "nothing-here");
    let out = run(spec_for(&missing), "missing.json").await.unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let error = report["job"]["error"]["message"].as_str().unwrap();
    assert!(
        error.contains("cannot get the source cluster's token") && error.contains(&missing),
        "{error}"
    );
}

#[tokio::test]
async fn a_spec_over_tls_with_an_inline_client_key_runs_and_never_stores_the_key() {
    if !common::proven_on("lite") {
        return;
    }
    // GIVEN a spec whose source is behind one-way TLS (CA file given by flag) and whose target
    // requires a client certificate, its key inline in the spec
    let servers = Servers::from_env();
    let tls = TlsServers::from_env();
    let s = Seed::new(&unique("cli_tls"), 1_200);
    seed(&servers.source, "default", &s).await;
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.json");
    let key = tls.pem("client.key");
    std::fs::write(
        &spec,
        serde_json::json!({
            "source": { "uri": format!("https://localhost:{}", tls.source_port),
                        "token": servers.source.token.clone().unwrap_or_default() },
            "target": { "uri": format!("https://localhost:{}", tls.target_port),
                        "token": servers.target.token.clone().unwrap_or_default(),
                        "tls": { "ca_cert": tls.pem("ca.pem"), "client_cert": tls.pem("client.pem"),
                                 "client_key": key } },
            "databases": [{ "name": "default", "collections": [{ "name": s.name }] }]
        })
        .to_string(),
    )
    .unwrap();
    let store = dir.path().join("jobs.sqlite3");
    let ca = tls.file("ca.pem");
    // WHEN the CLI runs it
    let out = {
        let (store, spec) = (store.clone(), spec.clone());
        tokio::task::spawn_blocking(move || {
            vecmigrate(
                &store,
                &[
                    "--json",
                    "run",
                    "--spec",
                    spec.to_str().unwrap(),
                    "--source-ca-cert",
                    &ca,
                ],
            )
        })
        .await
        .unwrap()
    };
    // THEN it succeeds, every row arrived, and the key is neither printed nor in the store's
    // file
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_same_rows(&servers, &s, "default", &s.name).await;
    let key_line = key.lines().nth(1).expect("a PEM body line");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(key_line));
    let bytes = std::fs::read(&store).unwrap();
    let wal = std::fs::read(store.with_extension("sqlite3-wal")).unwrap_or_default();
    for file in [&bytes, &wal] {
        assert!(
            !String::from_utf8_lossy(file).contains(key_line),
            "the client key is in the store"
        );
    }
}

#[tokio::test]
async fn a_step_that_keeps_panicking_fails_the_job_and_the_cli_exits_1() {
    if !common::proven_on("lite") {
        return;
    }
    // GIVEN a plan step that panics every time (a named fault hook of test builds) and short
    // leases, so that each panic is retried as soon as its lease expires
    let servers = Servers::from_env();
    let s = Seed::new(&unique("cli_panic"), 10);
    seed(&servers.source, "default", &s).await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("jobs.sqlite3");
    let mut args = vec![
        "--json".to_owned(),
        "run".into(),
        "--source-uri".into(),
        servers.source.uri.clone(),
        "--target-uri".into(),
        servers.target.uri.clone(),
        "--collection".into(),
        s.name.clone(),
    ];
    for (flag, token) in [
        ("--source-token", &servers.source.token),
        ("--target-token", &servers.target.token),
    ] {
        if let Some(t) = token {
            args.extend([flag.to_owned(), t.clone()]);
        }
    }
    // WHEN the CLI runs it (a hang, as before, fails the test instead of blocking it)
    let run = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_vecmigrate"))
            .arg("--store")
            .arg(&store)
            .args(&args)
            .env("VECMIGRATE_TEST_FAULTS", "panic:plan")
            .env("VECMIGRATE_LEASE_TTL", "1s")
            .output()
            .expect("the binary runs")
    });
    let out = tokio::time::timeout(std::time::Duration::from_secs(180), run)
        .await
        .expect("the CLI returns instead of hanging")
        .unwrap();
    // THEN the job ends FAILED with the panic's message after the bounded retries, and the CLI
    // exits with the failed job's code instead of hanging
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["job"]["status"], "FAILED");
    assert_eq!(report["job"]["panics"], 5);
    let error = report["job"]["error"]["message"].as_str().unwrap();
    assert!(
        error.contains("the plan step panicked 5 times")
            && error.contains("injected panic in the plan step"),
        "{error}"
    );
}

#[tokio::test]
async fn a_stop_signal_releases_the_tasks_and_resume_finishes_the_job_with_nothing_lost() {
    use common::faults::{lost_and_duplicated, FaultProxy};
    use vecmigrate::store::JobStore;
    // GIVEN a copy made slow by a target 150 ms away (the fault proxy's latency), with 2 workers
    let servers = Servers::from_env();
    let s = Seed::new(&unique("ctrl_c"), 3_000);
    seed(&servers.source, "default", &s).await;
    let proxy = FaultProxy::target();
    proxy.set(serde_json::json!({ "latency_ms": 150 })).await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("jobs.sqlite3");
    let mut tokens = Vec::new();
    for (flag, token) in [
        ("--source-token", &servers.source.token),
        ("--target-token", &servers.target.token),
    ] {
        if let Some(t) = token {
            tokens.extend([flag.to_owned(), t.clone()]);
        }
    }
    let child = Command::new(env!("CARGO_BIN_EXE_vecmigrate"))
        .arg("--store")
        .arg(&store)
        .args(["run", "--source-uri", &servers.source.uri, "--target-uri"])
        .arg(&proxy.uri)
        .args([
            "--collection",
            &s.name,
            "--batch-size",
            "100",
            "--workers",
            "2",
        ])
        .args(&tokens)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    // WHEN Ctrl-C (SIGINT; on Lite) or SIGTERM (systemd, `docker stop`; on 2.3.5) arrives once
    // a few pages are written: both go the same way, so each backend proves one
    let signal = if servers.backend == "lite" {
        "INT"
    } else {
        "TERM"
    };
    for _ in 0..600 {
        if proxy.stats().await["forwarded_writes"]
            .as_u64()
            .unwrap_or(0)
            >= 4
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let signalled = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    proxy.set(serde_json::json!({})).await;

    // THEN the CLI says how to resume and exits 5 (interrupted, resumable), and no task is
    // left under a live lease
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(5), "{said}");
    let resume = said
        .lines()
        .find_map(|l| l.split("vecmigrate resume ").nth(1))
        .expect("the resume command is printed")
        .trim()
        .to_owned();
    let opened = vecmigrate::store::sqlite::SqliteStore::open(&store).unwrap();
    let tasks = opened.list_tasks(&resume).await.unwrap();
    let now = chrono::Utc::now();
    assert!(!tasks.is_empty());
    assert!(
        tasks.iter().all(|t| !t.leased(now)),
        "a task is still leased: {tasks:#?}"
    );
    let before: u64 = tasks.iter().map(|t| t.copied).sum();
    assert!(
        before > 0 && before < 3_000,
        "interrupted mid-copy: {before}"
    );
    let name = if signal == "INT" { "Ctrl-C" } else { "SIGTERM" };
    let logged = |logs: &[vecmigrate::domain::LogEntry], words: &str| {
        logs.iter().any(|l| l.message.contains(words))
    };
    let logs = opened.list_logs(&resume).await.unwrap();
    assert!(
        logged(&logs, &format!("the run was interrupted ({name})")),
        "{logs:#?}"
    );
    drop(opened);

    // ... and `resume` finishes it, every row once
    let mut args = vec!["resume".to_owned(), resume.clone()];
    args.extend(tokens);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let resumed = vecmigrate(&store, &args);
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    assert_same_rows(&servers, &s, "default", &s.name).await;
    let (lost, duplicated) = lost_and_duplicated(&servers, &s, "default", &s.name, 3_000).await;
    assert_eq!((lost, duplicated), (0, 0));
    // ... and the job's log holds the resume
    let opened = vecmigrate::store::sqlite::SqliteStore::open(&store).unwrap();
    let logs = opened.list_logs(&resume).await.unwrap();
    assert!(logged(&logs, "resumed by `vecmigrate resume`"), "{logs:#?}");
}

#[tokio::test]
async fn a_resume_after_a_killed_run_says_it_waits_for_the_dead_workers_leases() {
    use vecmigrate::store::JobStore;
    if !common::proven_on("lite") {
        return;
    }
    // GIVEN a run killed (SIGKILL) after its first pages, its leases left held
    let servers = Servers::from_env();
    let s = Seed::new(&unique("killed"), 1_000);
    seed(&servers.source, "default", &s).await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("jobs.sqlite3");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vecmigrate"))
        .arg("--store")
        .arg(&store)
        .args(["run", "--source-uri", &servers.source.uri])
        .args(["--target-uri", &servers.target.uri, "--collection", &s.name])
        .args(["--batch-size", "100", "--workers", "1"])
        .env("VECMIGRATE_TEST_FAULTS", "slow-reads:300")
        .env("VECMIGRATE_LEASE_TTL", "4s")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let job = loop {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let Ok(opened) = vecmigrate::store::sqlite::SqliteStore::open_existing(&store) else {
            continue;
        };
        let jobs = opened.list_jobs(None, 1, None).await.unwrap().jobs;
        let Some(job) = jobs.first() else { continue };
        let tasks = opened.list_tasks(&job.id).await.unwrap();
        if tasks.iter().any(|t| t.copied > 0) {
            break job.id.clone();
        }
    };
    child.kill().unwrap();
    child.wait().unwrap();
    // WHEN it is resumed
    let resumed = Command::new(env!("CARGO_BIN_EXE_vecmigrate"))
        .arg("--store")
        .arg(&store)
        .args(["resume", &job])
        .env("VECMIGRATE_LEASE_TTL", "4s")
        .output()
        .unwrap();
    // THEN it says whose leases it waits for and how long, and then finishes the job
    let said = stderr(&resumed);
    assert!(
        said.contains("still held by an earlier worker") && said.contains("within"),
        "{said}"
    );
    assert_eq!(resumed.status.code(), Some(0), "{said}");
    assert_same_rows(&servers, &s, "default", &s.name).await;
}

#[tokio::test]
async fn a_target_collection_dropped_mid_copy_fails_the_job_saying_so() {
    use vecmigrate::store::JobStore;
    if !common::proven_on("lite") {
        return;
    }
    // GIVEN a slowed copy under way
    let servers = Servers::from_env();
    let s = Seed::new(&unique("dropped"), 1_000);
    seed(&servers.source, "default", &s).await;
    let target = unique("dropped_t");
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("jobs.sqlite3");
    let child = Command::new(env!("CARGO_BIN_EXE_vecmigrate"))
        .arg("--store")
        .arg(&store)
        .args(["run", "--source-uri", &servers.source.uri])
        .args(["--target-uri", &servers.target.uri])
        .args(["--collection", &format!("{}:{target}", s.name)])
        .args(["--batch-size", "50", "--workers", "1"])
        .env("VECMIGRATE_TEST_FAULTS", "slow-reads:300")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let Ok(opened) = vecmigrate::store::sqlite::SqliteStore::open_existing(&store) else {
            continue;
        };
        let jobs = opened.list_jobs(None, 1, None).await.unwrap().jobs;
        let Some(job) = jobs.first() else { continue };
        let tasks = opened.list_tasks(&job.id).await.unwrap();
        if tasks.iter().any(|t| t.copied > 0) {
            break;
        }
    }
    // WHEN someone drops the target collection
    common::drop_collection(&mut common::raw(&servers.target).await, "default", &target).await;
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    // THEN the job fails saying the collection disappeared, not with the server's words alone
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "collection `default.{target}` disappeared from the target while it was being copied"
        )),
        "{said}"
    );
}

#[tokio::test]
async fn plan_prints_the_dry_run_and_exits_1_when_the_tier_rule_refuses() {
    if !common::proven_on("lite") {
        return;
    }
    // GIVEN a seeded source, and a control plane (the stand-in) that knows a Dedicated
    // cluster on the source server, and a 64-CU Dedicated one (room for what earlier tests left)
    // and a Serverless one on the target's
    let servers = Servers::from_env();
    let s = Seed::new(&unique("plan"), 1_200);
    seed(&servers.source, "default", &s).await;
    let key = |t: &Option<String>| t.clone().unwrap_or_else(|| "standin-key".into());
    let (source_key, target_key) = (key(&servers.source.token), key(&servers.target.token));
    let cluster = |plan: &str, cu: u32, uri: &str| serde_json::json!({"plan": plan, "cuSize": cu, "connectAddress": uri, "status": "RUNNING"});
    let mut keys = serde_json::Map::new();
    keys.insert(source_key.clone(), serde_json::json!(["in01-src000001"]));
    keys.entry(target_key.clone())
        .or_insert_with(|| serde_json::json!([]))
        .as_array_mut()
        .unwrap()
        .extend([
            serde_json::json!("in01-dst000001"),
            serde_json::json!("in05-dst000002"),
        ]);
    let cp = common::control_plane::StandIn::start(&serde_json::json!({
        "keys": keys,
        "clusters": {
            "in01-src000001": cluster("Enterprise", 4, &servers.source.uri),
            "in01-dst000001": cluster("Standard", 64, &servers.target.uri),
            "in05-dst000002": cluster("Serverless", 0, &servers.target.uri),
        }
    }));
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("jobs.sqlite3");
    let not_after = (chrono::Utc::now() + chrono::Duration::hours(4)).to_rfc3339();
    let plan = |target: &str, json: bool| {
        let mut args = vec![
            "plan".to_owned(),
            "--source-cluster-id".into(),
            "in01-src000001".into(),
            "--target-cluster-id".into(),
            target.into(),
            "--collection".into(),
            s.name.clone(),
            "--not-after".into(),
            not_after.clone(),
        ];
        if json {
            args.insert(0, "--json".into());
        }
        let out = Command::new(env!("CARGO_BIN_EXE_vecmigrate"))
            .arg("--store")
            .arg(&store)
            .args(&args)
            .env("VECMIGRATE_ZILLIZ_API_URL", cp.url())
            .env("VECMIGRATE_SOURCE_TOKEN", &source_key)
            .env("VECMIGRATE_TARGET_TOKEN", &target_key)
            .output()
            .expect("the binary runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr(&out),
        )
    };

    // WHEN a Dedicated → Dedicated move is planned, for people and for machines
    let (code, table, err) = plan("in01-dst000001", false);
    // THEN it exits 0, and the table names the clusters, the rule, the collection and the window
    assert_eq!(code, Some(0), "{table}{err}");
    for words in [
        "plan (dry run; nothing was written)",
        "in01-dst000001 at",
        "Dedicated (Standard plan, 64 CU",
        "Dedicated → Dedicated is supported",
        "1200",
        "write cap 35.3 MB/s (the target's plan)",
        "fits",
        "OK: no problems",
    ] {
        assert!(table.contains(words), "`{words}` missing:\n{table}");
    }
    let (code, json, err) = plan("in01-dst000001", true);
    assert_eq!(code, Some(0), "{err}");
    let answer: serde_json::Value = serde_json::from_str(&json).expect("a JSON plan");
    assert_eq!(answer["ok"], true);
    assert_eq!(answer["collections"][0]["entities"], 1_200);
    assert_eq!(answer["estimate"]["fits_window"], true);
    for k in [&source_key, &target_key] {
        assert!(!json.contains(k.as_str()) && !table.contains(k.as_str()));
    }

    // WHEN the target is Serverless, a lower tier
    let (code, table, err) = plan("in05-dst000002", false);
    // THEN it exits 1 naming the rule's refusal, and no job was ever written
    assert_eq!(code, Some(1), "{table}{err}");
    assert!(table.contains("target: Zilliz Cloud's plan-tier rule refuses this migration: Dedicated → Serverless is not supported"), "{table}");
    assert!(no_jobs(&store));
    assert!(!collection_names(&servers.target, "default")
        .await
        .contains(&s.name));
}
