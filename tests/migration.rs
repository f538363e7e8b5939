//! End-to-end migrations between the two real Milvus servers of the backend under test, run by
//! the engine with in-process workers and the embedded store. Each test reads what arrived in
//! the target back and compares it with the source, row by row.

mod common;

use std::time::Duration;

use common::*;
use vecmigrate::domain::{CollectionStatus, JobStatus, TaskStatus};
use vecmigrate::engine::{Budget, EngineConfig, Faults};
use vecmigrate::queue::{Step, WorkMessage};

#[tokio::test]
async fn migrates_collections_partitions_and_fields_row_by_row() {
    // GIVEN three source collections: 20,000 rows over four partitions (the size at which
    // Milvus 2.3.5 once cut the SDK's iterator short), VarChar keys with quotes and non-ASCII
    // text, and a dynamic field; migrated into a target database that does not exist yet
    let h = harness(fast_settings(), EngineConfig::default(), None);
    let big = Seed {
        partitions: vec!["p_a".into(), "p_b".into(), "p_c".into()],
        dim: 32,
        ..Seed::new(&unique("big"), 20_000)
    };
    let keys = Seed {
        varchar_pk: true,
        partitions: vec!["p1".into()],
        ..Seed::new(&unique("keys"), 3_000)
    };
    let small = Seed {
        dynamic: false,
        ..Seed::new(&unique("small"), 1_234)
    };
    for s in [&big, &keys, &small] {
        seed(&h.servers.source, "default", s).await;
    }
    let target_db = unique("tdb");
    let renamed = format!("{}_v2", small.name);
    let mut request = request(
        &h.servers,
        Some(&target_db),
        &[
            (&big.name, &big.name),
            (&keys.name, &keys.name),
            (&small.name, &renamed),
        ],
    );
    request.options.batch_size = 3_000;

    // WHEN the job runs
    let (job, report) = h.run(request).await;

    // THEN it succeeds with matching counts, every range (one per partition) counted equal on
    // both sides with nothing repaired, and every row arrived unchanged
    assert_successful(&report);
    assert_eq!(report.progress.copied, 24_234);
    for (c, ranges) in report.job.collections.iter().zip([4, 2, 1]) {
        assert_eq!(
            (c.matches, c.status),
            (Some(true), CollectionStatus::Verified),
            "{c:?}"
        );
        assert_eq!(c.source_count, c.target_count);
        assert_eq!(
            (c.ranges_counted, c.repaired_ranges),
            (Some(ranges), 0),
            "{:?}",
            c.repairs
        );
    }
    for (s, t) in [
        (&big, big.name.as_str()),
        (&keys, keys.name.as_str()),
        (&small, renamed.as_str()),
    ] {
        assert_same_rows(&h.servers, s, &target_db, t).await;
    }
    // the schema, the partitions and an AUTOINDEX on the vector field; left unloaded
    for (s, t) in [
        (&big, big.name.as_str()),
        (&keys, keys.name.as_str()),
        (&small, renamed.as_str()),
    ] {
        assert_eq!(
            schema_of(&h.servers.source, "default", &s.name).await,
            schema_of(&h.servers.target, &target_db, t).await
        );
        assert_eq!(
            partitions_of(&h.servers.source, "default", &s.name).await,
            partitions_of(&h.servers.target, &target_db, t).await
        );
        let indexes = indexes_of(&h.servers.target, &target_db, t).await;
        assert_eq!(
            indexes,
            vec![("vec".to_owned(), "AUTOINDEX".to_owned(), "L2".to_owned())],
            "{t}"
        );
    }
    // every task is done and checkpointed in the store
    let tasks = h.store.list_tasks(&job.id).await.unwrap();
    assert_eq!(tasks.len(), 4 + 2 + 1, "one task per partition");
    assert!(tasks
        .iter()
        .all(|t| t.status == TaskStatus::Done && !t.leased(chrono::Utc::now())));
    assert_eq!(tasks.iter().map(|t| t.copied).sum::<u64>(), 24_234);
}

#[tokio::test]
async fn targets_are_left_unloaded() {
    // GIVEN a small collection
    let h = harness(fast_settings(), EngineConfig::default(), None);
    let s = Seed::new(&unique("unloaded"), 500);
    seed(&h.servers.source, "default", &s).await;
    // WHEN it is migrated without load_after
    let (_, report) = h
        .run(request(&h.servers, None, &[(&s.name, &s.name)]))
        .await;
    // THEN the target collection was released after counting
    assert_successful(&report);
    let mut c = raw(&h.servers.target).await;
    assert_ne!(
        load_state(&mut c, "default", &s.name).await,
        milvus::proto::common::LoadState::Loaded as i32
    );
}

#[tokio::test]
async fn worker_killed_between_write_and_checkpoint_loses_and_duplicates_nothing() {
    if !common::proven_on("standalone") {
        return;
    }
    // GIVEN 6,000 rows of one partition, in pages of 500, ranges of 1,500 or more, and a worker
    // that dies right after its third write, before the checkpoint, leaving its lease held (as
    // a crashed Lambda would)
    let config = EngineConfig {
        lease_ttl: Duration::from_secs(2),
        min_range_entities: 1_500,
        ..EngineConfig::default()
    };
    let h = harness(
        fast_settings(),
        config.clone(),
        Some(Faults::crash_after_write(3)),
    );
    let s = Seed::new(&unique("killed"), 6_000);
    seed(&h.servers.source, "default", &s).await;
    let mut req = request(&h.servers, None, &[(&s.name, &s.name)]);
    req.options.batch_size = 500;
    req.options.max_workers = 2;
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
    assert_eq!(tasks.len(), 1, "nothing is cut before the copy starts");
    let crashed = &tasks[0];
    assert_eq!(
        crashed.copied, 1_000,
        "two pages checkpointed, the third written but not"
    );
    assert!(
        crashed.lease.is_some(),
        "the dead worker still holds the lease"
    );
    let crashed = crashed.id.clone();

    // WHEN a new process resumes the job (its sweep waits out the dead worker's lease)
    let resumed = harness_on(
        h.servers.clone(),
        h.store.clone(),
        tempfile::tempdir().unwrap(),
        fast_settings(),
        config,
        None,
    );
    resumed.runner.kick(&job.id).await.unwrap();
    let report = resumed.runner.drive(&job.id, |_| {}).await.unwrap();

    // THEN nothing is lost and nothing is written twice
    assert_successful(&report);
    assert_same_rows(&h.servers, &s, "default", &s.name).await;
    let tasks = h.store.list_tasks(&job.id).await.unwrap();
    let copied: u64 = tasks.iter().map(|t| t.copied).sum();
    assert_eq!(copied, 6_000, "checkpoints add up to the source exactly");
    assert_contiguous(&tasks);
    let again = tasks.iter().find(|t| t.id == crashed).unwrap();
    assert!(
        again.runs >= 2,
        "the range was claimed again after the crash"
    );
}

/// The tasks of one partition: key ranges that follow each other, the first from the
/// partition's start, each starting at the key the one before ends at, the last to the end.
fn assert_contiguous(tasks: &[vecmigrate::domain::Task]) {
    let mut ranges: Vec<_> = tasks.iter().collect();
    ranges.sort_by(|a, b| a.from.cmp(&b.from));
    assert!(
        ranges[0].from.is_none(),
        "the first range starts at the start"
    );
    for pair in ranges.windows(2) {
        assert_eq!(
            pair[0].upto, pair[1].from,
            "{} ends where {} starts",
            pair[0].id, pair[1].id
        );
    }
    assert!(
        ranges.last().unwrap().upto.is_none(),
        "the last range runs to the end"
    );
}

#[tokio::test]
async fn job_crosses_many_simulated_time_limits() {
    if !common::proven_on("standalone") {
        return;
    }
    // GIVEN 15,000 rows in pages of 100 and an invocation budget of 250 ms (150 pages: with
    // reads at a pinned timestamp Milvus 2.3.5 serves about 7 pages per budget, so 6,000 rows
    // made only 8 continuations)
    let settings = vecmigrate::entrypoints::local::LocalSettings {
        max_run: Some(Duration::from_millis(250)),
        workers: 2,
        ..fast_settings()
    };
    let h = harness(settings, EngineConfig::default(), None);
    let s = Seed {
        partitions: vec!["p1".into()],
        ..Seed::new(&unique("chunked"), 15_000)
    };
    seed(&h.servers.source, "default", &s).await;
    let mut req = request(&h.servers, None, &[(&s.name, &s.name)]);
    req.options.batch_size = 100;
    // WHEN it runs
    let (job, report) = h.run(req).await;
    // THEN it crossed at least ten time limits (each a released lease and a fresh claim,
    // counted in the store) and still copied every row exactly once
    assert_successful(&report);
    let tasks = h.store.list_tasks(&job.id).await.unwrap();
    let continuations: u32 = tasks.iter().map(|t| t.runs - 1).sum();
    assert!(continuations >= 10, "only {continuations} continuations");
    assert_same_rows(&h.servers, &s, "default", &s.name).await;
}

#[tokio::test]
async fn target_name_clash_is_refused_before_anything_is_written() {
    if !common::proven_on("lite") {
        return;
    }
    // GIVEN two source collections, and the target already has a collection named like one
    let h = harness(fast_settings(), EngineConfig::default(), None);
    let a = Seed::new(&unique("clash_a"), 100);
    let b = Seed::new(&unique("clash_b"), 100);
    seed(&h.servers.source, "default", &a).await;
    seed(&h.servers.source, "default", &b).await;
    let existing = Seed::new(&b.name, 7);
    seed(&h.servers.target, "default", &existing).await;
    // WHEN both are migrated under their own names
    let (job, report) = h
        .run(request(
            &h.servers,
            None,
            &[(&a.name, &a.name), (&b.name, &b.name)],
        ))
        .await;
    // THEN the job fails in preflight, naming the collection and target_name
    assert_eq!(report.job.status, JobStatus::Failed);
    let error = report.job.error.unwrap();
    assert_eq!(error.phase, Some(vecmigrate::domain::Phase::Preflight));
    assert!(
        error.message.contains(&b.name) && error.message.contains("target_name"),
        "{}",
        error.message
    );
    // and nothing was written: the other collection was not created, the clashing one untouched
    assert!(!collection_names(&h.servers.target, "default")
        .await
        .contains(&a.name));
    assert_eq!(count(&h.servers.target, "default", &b.name).await, 7);
    assert!(h.store.list_tasks(&job.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn empty_collection_and_empty_partition_migrate() {
    // GIVEN an empty collection with an empty extra partition
    let h = harness(fast_settings(), EngineConfig::default(), None);
    let s = Seed {
        partitions: vec!["nothing_here".into()],
        ..Seed::new(&unique("empty"), 0)
    };
    seed(&h.servers.source, "default", &s).await;
    // WHEN it is migrated
    let (_, report) = h
        .run(request(&h.servers, None, &[(&s.name, &s.name)]))
        .await;
    // THEN it succeeds with 0 = 0, and the target has the schema and both partitions
    assert_successful(&report);
    assert_eq!(
        (
            report.job.collections[0].source_count,
            report.job.collections[0].target_count
        ),
        (Some(0), Some(0))
    );
    assert_eq!(
        partitions_of(&h.servers.target, "default", &s.name).await,
        partitions_of(&h.servers.source, "default", &s.name).await
    );
    assert_eq!(
        schema_of(&h.servers.target, "default", &s.name).await,
        schema_of(&h.servers.source, "default", &s.name).await
    );
    assert_eq!(count(&h.servers.target, "default", &s.name).await, 0);
}

#[tokio::test]
async fn cancel_in_the_middle_of_a_copy_stops_the_workers() {
    if !common::proven_on("lite") {
        return;
    }
    // GIVEN a copy in small pages under short budgets
    let settings = vecmigrate::entrypoints::local::LocalSettings {
        max_run: Some(Duration::from_millis(300)),
        workers: 1,
        ..fast_settings()
    };
    let h = std::sync::Arc::new(harness(settings, EngineConfig::default(), None));
    let s = Seed::new(&unique("cancelled"), 8_000);
    seed(&h.servers.source, "default", &s).await;
    let mut req = request(&h.servers, None, &[(&s.name, &s.name)]);
    req.options.batch_size = 100;
    let (job, _) = h.engine.start(req).await.unwrap();
    let driver = {
        let (h, id) = (h.clone(), job.id.clone());
        tokio::spawn(async move { h.runner.drive(&id, |_| {}).await })
    };
    // WHEN it is cancelled once some entities are copied
    loop {
        let tasks = h.store.list_tasks(&job.id).await.unwrap();
        if tasks.iter().map(|t| t.copied).sum::<u64>() >= 500 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    h.engine.cancel(&job.id).await.unwrap();
    let report = tokio::time::timeout(Duration::from_secs(60), driver)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    // THEN the job ends CANCELLED, part-copied, with no lease left held, and the target holds
    // exactly what the checkpoints say
    assert_eq!(report.job.status, JobStatus::Cancelled);
    let tasks = h.store.list_tasks(&job.id).await.unwrap();
    let copied: u64 = tasks.iter().map(|t| t.copied).sum();
    assert!(copied < 8_000, "stopped early ({copied})");
    let now = chrono::Utc::now();
    assert!(tasks.iter().all(|t| !t.leased(now)), "leases released");
    assert_eq!(count(&h.servers.target, "default", &s.name).await, copied);
    // and cancelling again is a conflict
    assert!(matches!(
        h.engine.cancel(&job.id).await,
        Err(vecmigrate::engine::EngineError::Conflict(_))
    ));
}

#[tokio::test]
async fn unreachable_target_is_a_clear_error() {
    if !common::proven_on("lite") {
        return;
    }
    // GIVEN a target URI where nothing listens
    let h = harness(fast_settings(), EngineConfig::default(), None);
    let s = Seed::new(&unique("unreach"), 10);
    seed(&h.servers.source, "default", &s).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut req = request(&h.servers, None, &[(&s.name, &s.name)]);
    req.target.uri = format!("http://127.0.0.1:{port}");
    // WHEN the job runs
    let (_, report) = h.run(req).await;
    // THEN it fails, saying which cluster it could not reach and where
    assert_eq!(report.job.status, JobStatus::Failed);
    let message = report.job.error.unwrap().message;
    assert!(
        message.contains("cannot reach the target cluster") && message.contains(&port.to_string()),
        "{message}"
    );
}

#[tokio::test]
async fn wrong_token_is_a_clear_error() {
    let servers = Servers::from_env();
    // Milvus Lite has no authentication: ask the backend rather than assume.
    let probe = vecmigrate::milvus::grpc::MilvusCluster::connect(
        vecmigrate::milvus::Role::Source,
        &vecmigrate::domain::Address::parse(&servers.source.uri).unwrap(),
        Some(&vecmigrate::domain::Secret::new("root:certainly-wrong")),
        &Default::default(),
    )
    .await;
    if probe.is_ok() {
        eprintln!(
            "SKIPPED on {}: the backend accepts any token (no authentication)",
            servers.backend
        );
        assert_eq!(
            servers.backend, "lite",
            "only Milvus Lite is expected to lack authentication"
        );
        return;
    }
    // GIVEN a wrong source token
    let mut bad = servers.clone();
    bad.source.token = Some("root:certainly-wrong".into());
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(
        vecmigrate::store::sqlite::SqliteStore::open(&dir.path().join("jobs.sqlite3")).unwrap(),
    );
    let h = harness_on(
        bad,
        store,
        dir,
        fast_settings(),
        EngineConfig::default(),
        None,
    );
    let (job, report) = h
        .run(request(&h.servers, None, &[("whatever", "whatever")]))
        .await;
    // THEN the job fails saying the source refused the credentials, without the token in it
    assert_eq!(report.job.status, JobStatus::Failed);
    let message = report.job.error.unwrap().message;
    assert!(
        message.contains("source cluster") && message.contains("refused the credentials"),
        "{message}"
    );
    assert!(!message.contains("certainly-wrong"));
    let stored = serde_json::to_string(&h.store.get_job(&job.id).await.unwrap().unwrap()).unwrap();
    assert!(
        !stored.contains("certainly-wrong"),
        "no token in the job record"
    );
}

#[tokio::test]
async fn wide_rows_are_paged_by_bytes_under_the_message_limits() {
    // GIVEN 20,000 rows of 512-d vectors in one partition (about 42 MB), and the largest batch
    // size Milvus allows: one 16,384-row page of them (34 MB) would be over twice the 16 MiB a
    // page aims at (and broke the SDK's 4 MiB limit)
    let h = harness(fast_settings(), EngineConfig::default(), None);
    let s = Seed {
        dim: 512,
        ..Seed::new(&unique("wide"), 20_000)
    };
    seed(&h.servers.source, "default", &s).await;
    let mut req = request(&h.servers, None, &[(&s.name, &s.name)]);
    req.options.batch_size = 16_384;
    // WHEN it is migrated
    let (job, report) = h.run(req).await;
    // THEN every row arrives, in pages bounded by bytes rather than by the batch size
    assert_successful(&report);
    assert_same_rows(&h.servers, &s, "default", &s.name).await;
    let task = &h.store.list_tasks(&job.id).await.unwrap()[0];
    assert_eq!(task.copied, 20_000);
    assert!(
        task.batches >= 3,
        "{} pages, where 16,384 entities a page would make 2",
        task.batches
    );
    let per_page = task.bytes / task.batches;
    let limit = vecmigrate::milvus::batch::TARGET_PAGE_BYTES as u64;
    assert!(
        per_page <= limit + limit / 10,
        "pages average {per_page} bytes"
    );
    assert!(
        task.bytes > 32 << 20,
        "more than two pages' worth was moved"
    );
}

#[tokio::test]
async fn invocations_shorter_than_one_page_still_make_progress() {
    if !common::proven_on("standalone") {
        return;
    }
    // GIVEN an invocation budget far shorter than reading one page (1 ms), as when a slow
    // server meets a short Lambda: each worker used to read a page, find its time gone, drop
    // the page and hand the task on, forever
    let settings = vecmigrate::entrypoints::local::LocalSettings {
        max_run: Some(Duration::from_millis(1)),
        workers: 2,
        ..fast_settings()
    };
    let h = harness(settings, EngineConfig::default(), None);
    let s = Seed {
        partitions: vec!["p1".into()],
        ..Seed::new(&unique("slowpages"), 3_000)
    };
    seed(&h.servers.source, "default", &s).await;
    let mut req = request(&h.servers, None, &[(&s.name, &s.name)]);
    req.options.batch_size = 1_000;
    // WHEN it runs
    let (job, _) = h.engine.start(req).await.unwrap();
    let report = tokio::time::timeout(Duration::from_secs(180), h.runner.drive(&job.id, |_| {}))
        .await
        .expect("the job finishes: every invocation writes at least one page")
        .unwrap();
    // THEN it finishes, every row exactly once, and slow pages were made smaller
    assert_successful(&report);
    assert_same_rows(&h.servers, &s, "default", &s.name).await;
    let tasks = h.store.list_tasks(&job.id).await.unwrap();
    assert!(
        tasks.iter().any(|t| t.next_limit < 1_000),
        "{:?}",
        tasks.iter().map(|t| t.next_limit).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_job_that_outlives_its_maintenance_window_stops_at_its_end() {
    if !common::proven_on("standalone") {
        return;
    }
    // GIVEN a copy far longer than its window: 30,000 entities read 50 at a time by one
    // worker, in a window that closes 3 seconds after the start
    let h = harness(
        vecmigrate::entrypoints::local::LocalSettings {
            workers: 1,
            ..fast_settings()
        },
        EngineConfig::default(),
        None,
    );
    let s = Seed::new(&unique("window"), 30_000);
    seed(&h.servers.source, "default", &s).await;
    let mut request = request(&h.servers, None, &[(&s.name, &s.name)]);
    request.options.batch_size = 50;
    request.options.max_workers = 1;
    request.options.not_after = Some(chrono::Utc::now() + chrono::Duration::seconds(3));

    // WHEN it runs
    let (job, report) = h.run(request).await;

    // THEN it ends FAILED at the window's end, saying so, with part of the data copied
    assert_eq!(report.job.status, JobStatus::Failed);
    let error = report.job.error.expect("an error").message;
    assert!(error.contains("maintenance window"), "{error}");
    assert!(report.job.finished_at.unwrap() >= report.job.request.options.not_after.unwrap());
    let copied = report.progress.copied;
    assert!(copied > 0 && copied < 30_000, "copied {copied}");
    assert!(error.contains(&format!("{copied} of 30000")), "{error}");
    // ... cleanly: no lease left behind, and the target holds exactly what was checkpointed
    let tasks = h.store.list_tasks(&job.id).await.unwrap();
    let now = chrono::Utc::now();
    assert!(tasks.iter().all(|t| !t.leased(now)), "{tasks:?}");
    assert_eq!(count(&h.servers.target, "default", &s.name).await, copied);
}

#[tokio::test]
async fn one_partition_is_cut_while_it_is_copied_and_spread_over_four_workers() {
    // (2.3.5 keeps a key written twice, so a range copied twice would show there.)
    if !common::proven_on("standalone") {
        return;
    }
    // GIVEN 20,000 entities in one partition, four workers, pages of 500, ranges of 2,000
    // allowed, invocations of 1 s, and page reads slowed to 100 ms (a source across a network)
    let settings = vecmigrate::entrypoints::local::LocalSettings {
        max_run: Some(Duration::from_secs(1)),
        workers: 4,
        ..fast_settings()
    };
    let config = EngineConfig {
        min_range_entities: 2_000,
        ..EngineConfig::default()
    };
    let h = harness(settings, config, Some(Faults::slow_page_reads(100)));
    let s = Seed::new(&unique("spread"), 20_000);
    seed(&h.servers.source, "default", &s).await;
    let mut req = request(&h.servers, None, &[(&s.name, &s.name)]);
    req.options.batch_size = 500;
    req.options.max_workers = 4;

    // WHEN it is migrated
    let (job, report) = h.run(req).await;

    // THEN the one task the plan wrote was cut by the idle workers while it was copied: at
    // least four key ranges, contiguous, each copying at least two pages (what a cut leaves
    // each side), adding up to the partition; the report lists them; every row arrived once
    assert_successful(&report);
    let tasks = h.store.list_tasks(&job.id).await.unwrap();
    let log: Vec<&str> = report.log.iter().map(|l| l.message.as_str()).collect();
    assert!(tasks.len() >= 4, "{} tasks: {log:#?}", tasks.len());
    assert_contiguous(&tasks);
    let copied: Vec<u64> = report.tasks.iter().map(|t| t.copied).collect();
    assert_eq!(copied.len(), tasks.len());
    assert_eq!(copied.iter().sum::<u64>(), 20_000, "{copied:?}");
    assert!(copied.iter().all(|c| *c >= 1_001), "{copied:?}");
    assert!(
        report
            .log
            .iter()
            .any(|l| l.message.starts_with("split partition `_default` at key")),
        "{:?}",
        report.log
    );
    assert_same_rows(&h.servers, &s, "default", &s.name).await;
}

#[tokio::test]
async fn a_resume_among_hostile_varchar_keys_loses_and_duplicates_nothing() {
    // GIVEN VarChar keys with quotes, backslashes, `%`, newlines and non-ASCII text, and a
    // worker that dies after its second write, before the checkpoint: the task resumes from a
    // cursor that is one of those keys; the partition is cut at a VarChar key while it is copied
    let config = EngineConfig {
        lease_ttl: Duration::from_secs(2),
        min_range_entities: 500,
        ..EngineConfig::default()
    };
    let h = harness(fast_settings(), config, Some(Faults::crash_after_write(2)));
    let s = Seed {
        varchar_pk: true,
        ..Seed::new(&unique("hostile"), 3_000)
    };
    seed(&h.servers.source, "default", &s).await;
    let mut req = request(&h.servers, None, &[(&s.name, &s.name)]);
    req.options.batch_size = 200;
    req.options.max_workers = 2;

    // WHEN the job runs (the sweep hands the task on once the dead worker's lease expires)
    let (job, report) = h.run(req).await;

    // THEN every row arrived once, unchanged, and the task was resumed
    assert_successful(&report);
    assert_same_rows(&h.servers, &s, "default", &s.name).await;
    let tasks = h.store.list_tasks(&job.id).await.unwrap();
    assert!(tasks.iter().any(|t| t.runs >= 2), "{tasks:?}");
    assert!(tasks.len() >= 2, "a VarChar cut: {tasks:?}");
    assert!(tasks
        .iter()
        .any(|t| matches!(t.upto, Some(vecmigrate::domain::Cursor::Str(_)))));
    assert_contiguous(&tasks);
}

#[tokio::test]
async fn a_copy_that_panics_is_retried_like_a_crash_and_loses_nothing() {
    if !common::proven_on("standalone") {
        return;
    }
    // GIVEN a copy step that panics twice right after a page write, before its checkpoint
    // (a bug, as far as the runner can tell), with short leases
    let config = EngineConfig {
        lease_ttl: Duration::from_secs(2),
        ..EngineConfig::default()
    };
    let h = harness(
        fast_settings(),
        config,
        Some(Faults::panic_in(Step::Work, 2)),
    );
    let s = Seed::new(&unique("panicky"), 3_000);
    seed(&h.servers.source, "default", &s).await;
    let mut req = request(&h.servers, None, &[(&s.name, &s.name)]);
    req.options.batch_size = 500;
    // WHEN it runs
    let (job, report) = h.run(req).await;
    // THEN each panic ended its step as a crash would (the task was claimed again once its
    // lease expired), both are in the job's log, and every row arrived exactly once
    assert_successful(&report);
    assert_eq!(report.job.panics, 2);
    let panics = report
        .log
        .iter()
        .filter(|l| l.message.contains("the copy step panicked"))
        .count();
    assert_eq!(panics, 2, "{:?}", report.log);
    let tasks = h.store.list_tasks(&job.id).await.unwrap();
    assert!(tasks[0].runs >= 3, "claimed again after each panic");
    assert_same_rows(&h.servers, &s, "default", &s.name).await;
}

#[tokio::test]
async fn a_page_read_slower_than_two_thirds_of_the_lease_renews_the_lease_and_copies_on() {
    if !common::proven_on("standalone") {
        return;
    }
    // GIVEN 5 s leases and every page read slowed to 3.6 s: past the two thirds of the lease
    // after which a worker must not write under it unrenewed
    let config = EngineConfig {
        lease_ttl: Duration::from_secs(5),
        ..EngineConfig::default()
    };
    let h = harness(
        fast_settings(),
        config,
        Some(Faults::slow_page_reads(3_600)),
    );
    let s = Seed::new(&unique("slow_reads"), 1_000);
    seed(&h.servers.source, "default", &s).await;
    let mut req = request(&h.servers, None, &[(&s.name, &s.name)]);
    req.options.batch_size = 500;
    // WHEN it runs (a worker that stopped instead of renewing would stop before every write,
    // and the job would never end)
    let (job, report) = tokio::time::timeout(Duration::from_secs(120), h.run(req))
        .await
        .expect("the job did not end in 2 minutes: every claim stops before its write");
    // THEN one claim renewed its lease before each write and copied everything, once
    assert_successful(&report);
    let tasks = h.store.list_tasks(&job.id).await.unwrap();
    assert_eq!(
        tasks.iter().map(|t| t.runs).collect::<Vec<_>>(),
        vec![1],
        "one task, claimed once"
    );
    assert_same_rows(&h.servers, &s, "default", &s.name).await;
}

#[tokio::test]
async fn a_finish_that_keeps_panicking_fails_the_job_with_the_panic() {
    if !common::proven_on("standalone") {
        return;
    }
    // GIVEN a finish step that always panics, with short step leases
    let config = EngineConfig {
        lease_ttl: Duration::from_secs(3),
        ..EngineConfig::default()
    };
    let h = harness(
        fast_settings(),
        config,
        Some(Faults::panic_in(Step::Finish, u64::MAX)),
    );
    let s = Seed::new(&unique("panics_always"), 100);
    seed(&h.servers.source, "default", &s).await;
    // WHEN it runs
    let (_, report) = h
        .run(request(&h.servers, None, &[(&s.name, &s.name)]))
        .await;
    // THEN the job ends FAILED at the limit, with the panic's message, instead of hanging
    assert_eq!(report.job.status, JobStatus::Failed);
    assert_eq!(report.job.panics, vecmigrate::domain::MAX_STEP_PANICS);
    let message = report.job.error.unwrap().message;
    assert!(
        message.contains("the finish step panicked 5 times")
            && message.contains("injected panic in the finish step"),
        "{message}"
    );
}

#[tokio::test]
async fn indexes_exist_before_the_copy_and_wait_for_index_waits_until_they_are_built() {
    // GIVEN a collection of 3,000 entities and a job that waits for its indexes
    let h = harness(fast_settings(), EngineConfig::default(), None);
    let s = Seed::new(&unique("indexed"), 3_000);
    seed(&h.servers.source, "default", &s).await;
    let mut req = request(&h.servers, None, &[(&s.name, &s.name)]);
    req.options.wait_for_index = true;
    let (job, _) = h.engine.start(req).await.unwrap();

    // WHEN only the plan step has run
    let plan = WorkMessage::Plan {
        job_id: job.id.clone(),
    };
    h.engine.handle(&plan, Budget::unlimited()).await.unwrap();
    // THEN the empty target already has its AUTOINDEX, so the server builds it as data lands
    let planned = h.engine.report(&job.id).await.unwrap();
    assert_eq!(planned.job.collections[0].status, CollectionStatus::Copying);
    assert_eq!(
        indexes_of(&h.servers.target, "default", &s.name).await,
        vec![("vec".to_owned(), "AUTOINDEX".to_owned(), "L2".to_owned())]
    );
    assert_eq!(h.store.list_tasks(&job.id).await.unwrap()[0].copied, 0);

    // WHEN the job runs to its end
    h.runner.kick(&job.id).await.unwrap();
    let report = h.runner.drive(&job.id, |_| {}).await.unwrap();
    // THEN the report says the vector index was built over every entity before verification
    assert_successful(&report);
    let indexes = &report.job.collections[0].indexes;
    assert_eq!(indexes.len(), 1, "{indexes:?}");
    assert_eq!(indexes[0].field, "vec");
    assert!(indexes[0].built, "{indexes:?}");
    assert_eq!(
        (indexes[0].indexed_rows, indexes[0].total_rows),
        (3_000, 3_000),
        "{indexes:?}"
    );
    assert_same_rows(&h.servers, &s, "default", &s.name).await;
}
