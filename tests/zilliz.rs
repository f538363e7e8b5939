//! Zilliz Cloud: clusters given by id (resolved through a stand-in of the control plane,
//! `scripts/zilliz_control_plane.py`, whose clusters point at the two real test servers), the
//! plan-tier rule, the target's capacity, and the dry run.

mod common;

use common::control_plane::StandIn;
use common::*;
use serde_json::json;
use vecmigrate::domain::{ClusterSpec, JobStatus, Secret, Tier};
use vecmigrate::engine::Budget;

/// The API key of each side: the servers' own token (on Zilliz Cloud an API key is also the
/// data-plane token), or a made-up one where the server has no authentication (Milvus Lite).
fn keys(servers: &Servers) -> (String, String) {
    let key = |s: &Server, fallback: &str| s.token.clone().unwrap_or_else(|| fallback.into());
    (
        key(&servers.source, "standin-source-key"),
        key(&servers.target, "standin-target-key"),
    )
}

/// A stand-in that knows `clusters` (id → plan, status, cuSize, and which server), each
/// visible to the API key of its side.
fn stand_in(servers: &Servers, clusters: &[(&str, &str, &str, u32, bool)]) -> StandIn {
    let (source_key, target_key) = keys(servers);
    let mut keys = serde_json::Map::new();
    let mut described = serde_json::Map::new();
    for (id, plan, status, cu, on_source) in clusters {
        let (key, server) = if *on_source {
            (&source_key, &servers.source)
        } else {
            (&target_key, &servers.target)
        };
        keys.entry(key.clone())
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .unwrap()
            .push(json!(id));
        described.insert(
            (*id).into(),
            json!({"plan": plan, "status": status, "cuSize": cu,
                   "connectAddress": server.uri, "regionId": "aws-us-west-2"}),
        );
    }
    StandIn::start(&json!({ "keys": keys, "clusters": described }))
}

fn by_id(id: &str, key: &str) -> ClusterSpec {
    ClusterSpec {
        token: Some(Secret::new(key)),
        ..ClusterSpec::by_id(id)
    }
}

#[tokio::test]
async fn clusters_given_by_id_are_resolved_and_the_record_keeps_the_id_and_endpoint_not_the_key() {
    // GIVEN a Serverless source and a 64-CU Dedicated target known to the control plane (room
    // for 4,096 collections: the test servers keep what every test left)
    let servers = Servers::from_env();
    let cp = stand_in(
        &servers,
        &[
            ("in05-src0123", "Serverless", "RUNNING", 0, true),
            ("in01-dst4567", "Enterprise", "RUNNING", 64, false),
        ],
    );
    let h = harness_zilliz(fast_settings(), &cp.url(), &keys(&servers));
    let s = Seed::new(&unique("byid"), 1_500);
    seed(&h.servers.source, "default", &s).await;
    let (source_key, target_key) = keys(&h.servers);
    let mut request = request(&h.servers, None, &[(&s.name, &s.name)]);
    request.source = by_id("in05-src0123", &source_key);
    request.target = by_id("in01-dst4567", &target_key);

    // WHEN the job runs
    let (job, report) = h.run(request).await;

    // THEN it succeeds, every row arrived, and the record holds the ids, the endpoints and the
    // plans the control plane gave, never the keys
    assert_successful(&report);
    assert_same_rows(&h.servers, &s, "default", &s.name).await;
    let stored = h.store.get_job(&job.id).await.unwrap().unwrap();
    let src = &stored.request.source;
    assert_eq!(src.cluster_id.as_deref(), Some("in05-src0123"));
    assert_eq!(src.uri, h.servers.source.uri);
    let z = stored.request.target.zilliz.as_ref().unwrap();
    assert_eq!(
        (z.plan.as_str(), z.cu_size, z.status.as_str()),
        ("Enterprise", 64, "RUNNING")
    );
    assert_eq!(
        stored.request.target.tier().map(|t| t.0),
        Some(Tier::Dedicated)
    );
    let record = serde_json::to_string(&stored).unwrap();
    let log = serde_json::to_string(&h.store.list_logs(&job.id).await.unwrap()).unwrap();
    for key in [&source_key, &target_key] {
        assert!(
            !record.contains(key.as_str()),
            "a key in the record: {record}"
        );
        assert!(!log.contains(key.as_str()), "a key in the log: {log}");
    }
    assert!(log.contains("Serverless → Dedicated is supported"), "{log}");
    assert!(log.contains("in01-dst4567 is RUNNING at"), "{log}");
    // and the control plane was asked once per cluster, with a bearer key
    let asked = cp.requests().await;
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(asked.iter().all(|r| r["bearer"] == true), "{asked:?}");
}

#[tokio::test]
async fn a_cluster_not_running_and_a_refused_key_fail_preflight_naming_each_side() {
    // GIVEN a suspended source, and a target asked with a key the control plane refuses
    let servers = Servers::from_env();
    let cp = stand_in(
        &servers,
        &[
            ("in01-sleepy01", "Enterprise", "SUSPENDED", 4, true),
            ("in01-dst4567", "Enterprise", "RUNNING", 4, false),
        ],
    );
    let (source_key, _) = keys(&servers);
    let h = harness_zilliz(
        fast_settings(),
        &cp.url(),
        &(source_key.clone(), "a-key-nobody-issued".into()),
    );
    let target_name = unique("never");
    let mut request = request(&h.servers, None, &[("whatever", &target_name)]);
    request.source = by_id("in01-sleepy01", &source_key);
    request.target = by_id("in01-dst4567", "a-key-nobody-issued");

    // WHEN the job runs
    let (_, report) = h.run(request).await;

    // THEN it fails in preflight with both problems, each naming its side and cluster, and
    // nothing was created on the target
    assert_eq!(report.job.status, JobStatus::Failed);
    let problems = &report.job.error.as_ref().unwrap().problems;
    let find = |field: &str| {
        problems
            .iter()
            .find(|p| p.field.as_deref() == Some(field))
            .unwrap_or_else(|| panic!("no problem at {field}: {problems:?}"))
            .message
            .clone()
    };
    let source = find("source.cluster_id");
    assert!(
        source.contains("source cluster in01-sleepy01 is SUSPENDED, not RUNNING"),
        "{source}"
    );
    let target = find("target.cluster_id");
    assert!(target.contains("target cluster in01-dst4567"), "{target}");
    assert!(target.contains("code 80001"), "{target}");
    assert!(!target.contains("a-key-nobody-issued"), "{target}");
    assert!(!collection_names(&h.servers.target, "default")
        .await
        .contains(&target_name));
}

#[tokio::test]
async fn the_tier_rule_refuses_a_move_to_a_lower_tier_before_anything_is_written() {
    // GIVEN a Dedicated source and a Serverless target
    let servers = Servers::from_env();
    let cp = stand_in(
        &servers,
        &[
            ("in01-big00001", "BusinessCritical", "RUNNING", 8, true),
            ("in05-small0001", "Serverless", "RUNNING", 0, false),
        ],
    );
    let h = harness_zilliz(fast_settings(), &cp.url(), &keys(&servers));
    let s = Seed::new(&unique("lower"), 100);
    seed(&h.servers.source, "default", &s).await;
    let (source_key, target_key) = keys(&h.servers);
    let missing = unique("missing");
    let mut request = request(
        &h.servers,
        None,
        &[(&s.name, &s.name), (&missing, &missing)],
    );
    request.source = by_id("in01-big00001", &source_key);
    request.target = by_id("in05-small0001", &target_key);

    // WHEN the job runs
    let (_, report) = h.run(request).await;

    // THEN the rule refuses it with the seed's explanation, reported with preflight's other
    // findings (a collection the source does not have), and the target is untouched
    assert_eq!(report.job.status, JobStatus::Failed);
    let error = report.job.error.unwrap();
    let refused = error
        .problems
        .iter()
        .find(|p| p.field.as_deref() == Some("target"))
        .unwrap_or_else(|| panic!("{error:?}"));
    assert!(
        refused
            .message
            .contains("Dedicated → Serverless is not supported"),
        "{refused:?}"
    );
    assert!(refused.message.contains("lower plan tier"), "{refused:?}");
    assert!(
        error
            .problems
            .iter()
            .any(|p| p.field.as_deref() == Some("databases[0].collections[1].name")),
        "{error:?}"
    );
    assert!(!collection_names(&h.servers.target, "default")
        .await
        .contains(&s.name));
}

#[tokio::test]
async fn a_dry_run_answers_the_plan_and_writes_nothing() {
    // GIVEN a source collection of two partitions, given by URI (no tier), and a 64-CU
    // Dedicated target given by id (room for 4,096 collections, whatever earlier tests left
    // on the target server)
    let servers = Servers::from_env();
    let cp = stand_in(
        &servers,
        &[("in01-dst0001", "Standard", "RUNNING", 64, false)],
    );
    let h = harness_zilliz(fast_settings(), &cp.url(), &keys(&servers));
    let s = Seed {
        partitions: vec!["p_a".into()],
        ..Seed::new(&unique("plan"), 2_000)
    };
    seed(&h.servers.source, "default", &s).await;
    let (_, target_key) = keys(&h.servers);
    let mut request = request(&h.servers, None, &[(&s.name, &s.name)]);
    request.source.token = h.servers.source.token.clone().map(Secret::new);
    request.target = by_id("in01-dst0001", &target_key);
    request.options.not_after = Some(chrono::Utc::now() + chrono::Duration::hours(6));
    request.dry_run = true;

    // WHEN it is planned
    let plan = h
        .engine
        .dry_run(request.clone(), Budget::unlimited())
        .await
        .unwrap();

    // THEN the plan names the collection with its entities, partitions, bytes and tasks, the
    // rule is not applied (the source is not a Zilliz Cloud cluster), the capacity counts the
    // target's collections, and the copy fits the window
    assert!(plan.ok, "{plan:#?}");
    assert_eq!(plan.target.cluster_id.as_deref(), Some("in01-dst0001"));
    assert_eq!(plan.target.uri, h.servers.target.uri);
    assert!(!plan.tier_rule.applied);
    let c = &plan.collections[0];
    assert_eq!((c.entities, c.partitions, c.tasks), (2_000, 2, 2), "{c:?}");
    // The seed's entities hold a 16-d vector, a few scalars and a dynamic field.
    let per_entity = c.bytes as f64 / c.entities as f64;
    assert!(
        (20.0..2_000.0).contains(&per_entity),
        "{per_entity} bytes per entity"
    );
    let capacity = plan.capacity.unwrap();
    assert_eq!(capacity.max_collections, Some(4096));
    let existing: u64 = {
        let mut n = 0;
        for db in list_databases(&h.servers.target).await {
            n += collection_names(&h.servers.target, &db).await.len() as u64;
        }
        n
    };
    // On Milvus 2.3.5 the tests run in parallel, so others create and drop collections
    // (their own, and preflight's scratch ones) while this one counts: the count is checked
    // against the server's listing within their churn, not pinned to it.
    assert_eq!(capacity.after, capacity.existing + 1);
    assert!(
        capacity.existing.abs_diff(existing) <= 10,
        "{} collections counted, {existing} listed after",
        capacity.existing
    );
    let estimate = plan.estimate.as_ref().unwrap();
    let cap = Tier::Dedicated.write_cap_mb_per_s(Some(64));
    assert!((35.0..36.0).contains(&cap), "{cap}");
    assert_eq!(
        (estimate.write_cap_mb_per_s, estimate.write_cap_from),
        (Some(cap), Some("plan"))
    );
    assert_eq!(estimate.fits_window, Some(true));
    assert!(
        estimate.sampled_entities > 0 && estimate.read_mb_per_s > 0.0,
        "{estimate:?}"
    );
    // and nothing was written: no job, no target collection
    assert!(h
        .store
        .list_jobs(None, 10, None)
        .await
        .unwrap()
        .jobs
        .is_empty());
    let after = collection_names(&h.servers.target, "default").await;
    assert!(!after.contains(&s.name), "the dry run created {}", s.name);

    // WHEN the write cap is the lowest allowed (0.1 MB/s: the collection takes seconds) and
    // the window closes in two seconds
    request.options.max_write_mb_per_s = Some(vecmigrate::domain::request::MIN_WRITE_MB_PER_S);
    request.options.not_after = Some(chrono::Utc::now() + chrono::Duration::seconds(2));
    let plan = h
        .engine
        .dry_run(request, Budget::unlimited())
        .await
        .unwrap();
    // THEN the window is the problem, with its field
    assert!(!plan.ok);
    let window = plan
        .problems
        .iter()
        .find(|p| p.field.as_deref() == Some("options.not_after"))
        .unwrap_or_else(|| panic!("{:?}", plan.problems));
    assert!(
        window.message.contains("would not end before the window"),
        "{window:?}"
    );
    assert_eq!(plan.estimate.unwrap().write_cap_from, Some("option"));
}

#[tokio::test]
async fn a_free_target_holds_five_collections_and_the_dry_run_says_so() {
    // GIVEN six source collections and a Free target (its tier from the control plane)
    let servers = Servers::from_env();
    let cp = stand_in(
        &servers,
        &[("in03-free0001", "Serverless", "RUNNING", 0, false)],
    );
    let h = harness_zilliz(fast_settings(), &cp.url(), &keys(&servers));
    let seeds: Vec<Seed> = (0..6)
        .map(|i| Seed::new(&unique(&format!("f{i}")), 10))
        .collect();
    for s in &seeds {
        seed(&h.servers.source, "default", s).await;
    }
    let names: Vec<(&str, &str)> = seeds
        .iter()
        .map(|s| (s.name.as_str(), s.name.as_str()))
        .collect();
    let (_, target_key) = keys(&h.servers);
    let mut request = request(&h.servers, None, &names);
    request.source.token = h.servers.source.token.clone().map(Secret::new);
    request.target = by_id("in03-free0001", &target_key);

    // WHEN it is planned
    let plan = h
        .engine
        .dry_run(request, Budget::unlimited())
        .await
        .unwrap();

    // THEN the in03- id makes it Free (though its plan reads Serverless), and the capacity
    // problem names the target
    assert_eq!(plan.target.tier, Some(Tier::Free));
    assert!(!plan.ok);
    let full = plan
        .problems
        .iter()
        .find(|p| p.field.as_deref() == Some("target"))
        .unwrap_or_else(|| panic!("{:?}", plan.problems));
    assert!(
        full.message
            .contains("a Free cluster, which holds at most 5 collections"),
        "{full:?}"
    );
    assert_eq!(plan.totals.collections, 6);
}

#[tokio::test]
async fn a_dry_run_reports_a_refused_token_as_a_problem_at_its_field() {
    // GIVEN a wrong source token (Milvus Lite has no authentication: ask the backend)
    let servers = Servers::from_env();
    let wrong = Secret::new("root:certainly-wrong");
    let probe = vecmigrate::milvus::grpc::MilvusCluster::connect(
        vecmigrate::milvus::Role::Source,
        &vecmigrate::domain::Address::parse(&servers.source.uri).unwrap(),
        Some(&wrong),
        &Default::default(),
    )
    .await;
    if probe.is_ok() {
        eprintln!(
            "SKIPPED on {}: the backend accepts any token",
            servers.backend
        );
        assert_eq!(
            servers.backend, "lite",
            "only Milvus Lite lacks authentication"
        );
        return;
    }
    let cp = stand_in(&servers, &[]);
    let (_, target_key) = keys(&servers);
    let h = harness_zilliz(
        fast_settings(),
        &cp.url(),
        &(wrong.expose().to_owned(), target_key),
    );
    let request = request(&h.servers, None, &[("anything", "anything")]);

    // WHEN it is planned
    let plan = h
        .engine
        .dry_run(request, Budget::unlimited())
        .await
        .unwrap();

    // THEN the answer is a plan with the problem at source.token, without the token
    assert!(!plan.ok);
    let refused = plan
        .problems
        .iter()
        .find(|p| p.field.as_deref() == Some("source.token"))
        .unwrap_or_else(|| panic!("{:?}", plan.problems));
    assert!(
        refused.message.contains("refused the credentials"),
        "{refused:?}"
    );
    assert!(!refused.message.contains("certainly-wrong"), "{refused:?}");
}
