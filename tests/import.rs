//! Bulk import: pages staged as Parquet files in a directory the target's server reads, each
//! file imported once by the target's `Import` RPC (Milvus 2.3.5, where a second import of a
//! file would show as duplicate keys), or by its REST import where the RPC is missing (a
//! stand-in for a 2.4+ port in front of the same server), read back row by row.

mod common;

use std::time::Duration;

use common::*;
use vecmigrate::domain::{MigrationRequest, WriteVia};

use vecmigrate::engine::{Budget, EngineConfig, Faults};
use vecmigrate::queue::WorkMessage;

/// A staging directory the local target server reads by absolute path; removed after the test.
fn staging() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn importing(mut req: MigrationRequest, dir: &tempfile::TempDir) -> MigrationRequest {
    req.options.write_mode = WriteVia::Import;
    req.options.staging = Some(dir.path().to_string_lossy().into_owned());
    req
}

#[tokio::test]
async fn imports_staged_files_into_partitions_with_keys_kept_row_by_row() {
    if !common::proven_on("standalone") {
        return;
    }
    // GIVEN 7,000 rows over two partitions with a dynamic field, and 1,500 with VarChar keys,
    // staged in files of at most 0.1 MB (several per partition)
    let h = harness(fast_settings(), EngineConfig::default(), None);
    let ints = Seed {
        partitions: vec!["p_a".into()],
        ..Seed::new(&unique("imp"), 7_000)
    };
    let keys = Seed {
        varchar_pk: true,
        ..Seed::new(&unique("impk"), 1_500)
    };
    for s in [&ints, &keys] {
        seed(&h.servers.source, "default", s).await;
    }
    let dir = staging();
    let mut req = importing(
        request(
            &h.servers,
            None,
            &[(&ints.name, &ints.name), (&keys.name, &keys.name)],
        ),
        &dir,
    );
    req.options.batch_size = 500;
    req.options.import_file_mb = 1;

    // WHEN the job runs
    let (job, report) = h.run(req).await;

    // THEN every row arrived once, by import: each task's files imported, none left staged
    assert_successful(&report);
    assert_same_rows(&h.servers, &ints, "default", &ints.name).await;
    assert_same_rows(&h.servers, &keys, "default", &keys.name).await;
    let tasks = h.store.list_tasks(&job.id).await.unwrap();
    let logs = h.store.list_logs(&job.id).await.unwrap();
    for t in &tasks {
        assert!(t.via_import && t.staged.is_none(), "{t:#?} {logs:#?}");
    }
    let files: u64 = tasks.iter().map(|t| t.files_imported).sum();
    assert!(files >= 3, "{files} files imported");
    let import = report.progress.import.expect("the status shows the import");
    assert_eq!(
        (import.files_imported, import.rows_imported),
        (files, 8_500)
    );
    assert!(import.staged_bytes > 8_500 * 16 * 4, "{import:?}");
    assert_eq!(
        report.job.import,
        Some(import),
        "kept on the job for the outcome event"
    );
    for c in &report.job.collections {
        assert_eq!(c.write.as_ref().map(|w| w.via), Some(WriteVia::Import));
        assert_eq!(
            c.repaired_ranges,
            0,
            "every range counted equal once imported: {:#?}",
            h.store.list_logs(&job.id).await.unwrap()
        );
    }
    let left: Vec<_> = walk(dir.path());
    assert!(left.is_empty(), "staged files left behind: {left:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn a_worker_killed_between_the_import_call_and_its_record_imports_nothing_twice() {
    if !common::proven_on("standalone") {
        return;
    }
    // GIVEN 3,000 rows staged in files of at most 1 MB (pages of 500), and a worker that dies
    // right after its first import call is answered, before the answer is recorded, leaving its
    // lease held (as a crashed Lambda would)
    let config = EngineConfig {
        lease_ttl: Duration::from_secs(2),
        ..EngineConfig::default()
    };
    let h = harness(
        fast_settings(),
        config.clone(),
        Some(Faults::crash_after_import(1)),
    );
    let s = Seed::new(&unique("impkill"), 3_000);
    seed(&h.servers.source, "default", &s).await;
    let dir = staging();
    let mut req = importing(request(&h.servers, None, &[(&s.name, &s.name)]), &dir);
    req.options.batch_size = 500;
    let (job, _) = h.engine.start(req).await.unwrap();
    let plan = WorkMessage::Plan {
        job_id: job.id.clone(),
    };
    h.engine.handle(&plan, Budget::unlimited()).await.unwrap();
    let work = WorkMessage::Work {
        job_id: job.id.clone(),
    };
    let crash = h.engine.handle(&work, Budget::unlimited()).await;
    assert!(
        matches!(crash, Err(vecmigrate::engine::EngineError::InjectedCrash)),
        "{crash:?}"
    );
    let tasks = h.store.list_tasks(&job.id).await.unwrap();
    let staged = tasks[0].staged.clone().expect("the file is staged");
    assert!(staged.sealed && staged.calls == 1 && staged.import_id.is_none());
    assert_eq!((tasks[0].copied, staged.rows), (0, 3_000));

    // WHEN a new process resumes the job, and, as a duplicated work message would, two
    // workers handle it at once
    let resumed = harness_on(
        h.servers.clone(),
        h.store.clone(),
        tempfile::tempdir().unwrap(),
        fast_settings(),
        config,
        None,
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (a, b) = tokio::join!(
        resumed.engine.handle(&work, Budget::unlimited()),
        resumed.engine.handle(&work, Budget::unlimited())
    );
    a.unwrap();
    b.unwrap();
    resumed.runner.kick(&job.id).await.unwrap();
    let report = resumed.runner.drive(&job.id, |_| {}).await.unwrap();

    // THEN the import the dead worker made is found on the target and adopted, not made again:
    // each key once, row by row
    assert_successful(&report);
    assert_same_rows(&h.servers, &s, "default", &s.name).await;
    assert_eq!(count(&h.servers.target, "default", &s.name).await, 3_000);
    let tasks = h.store.list_tasks(&job.id).await.unwrap();
    assert_eq!(tasks.iter().map(|t| t.files_imported).sum::<u64>(), 1);
    let logs = h.store.list_logs(&job.id).await.unwrap();
    assert!(
        logs.iter()
            .any(|l| l.message.contains("adopted, not made again")),
        "{logs:#?}"
    );
}

#[tokio::test]
async fn a_milvus_without_the_import_rpc_imports_through_its_rest_api_exactly_once() {
    if !common::proven_on("standalone") {
        return;
    }
    // GIVEN a target that serves gRPC and Milvus 2.4's REST import on one port, as 2.4+ does
    // (the stand-in pipes gRPC to the fault proxy and has the real server import what REST is
    // asked), whose `Import` RPCs are missing, and which loses the answer of the first
    // `import/create` after the import started
    let h = harness(fast_settings(), EngineConfig::default(), None);
    let s = Seed::new(&unique("imprest"), 3_000);
    seed(&h.servers.source, "default", &s).await;
    let proxy = faults::FaultProxy::target();
    proxy
        .set(serde_json::json!({"unimplemented": ["Import", "GetImportState", "ListImportTasks"]}))
        .await;
    let grpc = proxy.uri.trim_start_matches("http://").to_owned();
    let port = tool::Tool::start(
        "milvus_rest_port.py",
        &[
            "--grpc",
            &grpc,
            "--milvus",
            &h.servers.target.uri,
            "--lose-replies",
            "1",
        ],
    );
    let dir = staging();
    let mut req = importing(request(&h.servers, None, &[(&s.name, &s.name)]), &dir);
    req.target.uri = port.url("");
    req.options.batch_size = 500;
    req.options.import_file_mb = 1;

    // WHEN the job runs
    let (job, report) = h.run(req).await;
    proxy.set(serde_json::json!({})).await;

    // THEN every file went through the REST import once: the create whose answer was lost is
    // found in the collection's jobs (by the file each names) and adopted, and each key
    // arrived once, row by row
    assert_successful(&report);
    assert_same_rows(&h.servers, &s, "default", &s.name).await;
    assert_eq!(count(&h.servers.target, "default", &s.name).await, 3_000);
    let tasks = h.store.list_tasks(&job.id).await.unwrap();
    let files: u64 = tasks.iter().map(|t| t.files_imported).sum();
    let creates = port.get_json("/imports").await;
    let created: Vec<&str> = creates
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["file"].as_str().unwrap())
        .collect();
    assert!(files >= 1, "{files} files imported");
    assert_eq!(
        created.len() as u64,
        files,
        "one create per file: {created:?}"
    );
    let mut distinct = created.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        created.len(),
        "a file imported twice: {created:?}"
    );
    let logs = h.store.list_logs(&job.id).await.unwrap();
    assert!(
        logs.iter()
            .any(|l| l.message.contains("adopted, not made again")),
        "{logs:#?}"
    );
}

#[tokio::test]
async fn a_staged_file_gone_before_its_import_is_staged_again_from_the_cursor() {
    if !common::proven_on("standalone") {
        return;
    }
    // GIVEN 2,000 rows staged in files of at most 1 MB (pages of 500), the first of which is
    // gone from the staging directory just before its import is asked for
    let h = harness(
        fast_settings(),
        EngineConfig::default(),
        Some(Faults::vanish_before_import(1)),
    );
    let s = Seed::new(&unique("impgone"), 2_000);
    seed(&h.servers.source, "default", &s).await;
    let dir = staging();
    let mut req = importing(request(&h.servers, None, &[(&s.name, &s.name)]), &dir);
    req.options.batch_size = 500;

    // WHEN the job runs
    let (job, report) = h.run(req).await;

    // THEN the failed import is not asked for again: the pages are staged again into a new
    // file, imported once, and every row arrives once
    assert_successful(&report);
    assert_same_rows(&h.servers, &s, "default", &s.name).await;
    let logs = h.store.list_logs(&job.id).await.unwrap();
    assert!(
        logs.iter()
            .any(|l| l.message.contains("the file is gone from staging")),
        "{logs:#?}"
    );
    let tasks = h.store.list_tasks(&job.id).await.unwrap();
    assert_eq!(tasks.iter().map(|t| t.files_imported).sum::<u64>(), 1);
    assert!(walk(dir.path()).is_empty());
}

#[tokio::test]
async fn a_target_without_an_import_api_is_refused_for_import_and_inserted_by_auto() {
    if !common::proven_on("lite") {
        return;
    }
    // GIVEN a target with no import API (Milvus Lite)
    let h = harness(fast_settings(), EngineConfig::default(), None);
    let s = Seed::new(&unique("impnone"), 800);
    seed(&h.servers.source, "default", &s).await;
    let dir = staging();

    // WHEN the job asks to import, THEN preflight refuses the collection, naming it and why
    let req = importing(request(&h.servers, None, &[(&s.name, &s.name)]), &dir);
    let (job, report) = h.run(req).await;
    let problems = report.job.error.expect("refused").problems;
    assert!(
        problems.iter().any(
            |p| p.field.as_deref() == Some("databases[0].collections[0].name")
                && p.message
                    .contains("cannot be imported: the target has no import API")
        ),
        "{problems:?} ({})",
        job.id
    );
    assert!(!collection_names(&h.servers.target, "default")
        .await
        .contains(&s.name));

    // WHEN it asks for `auto`, THEN the collection is inserted, and the report says why
    let mut req = importing(request(&h.servers, None, &[(&s.name, &s.name)]), &dir);
    req.options.write_mode = WriteVia::Auto;
    let (_, report) = h.run(req).await;
    assert_successful(&report);
    let write = report.job.collections[0].write.clone().unwrap();
    assert_eq!(write.via, WriteVia::Insert);
    assert!(write.reason.unwrap().contains("no import API"));
    assert_same_rows(&h.servers, &s, "default", &s.name).await;
}
