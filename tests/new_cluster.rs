//! A new Dedicated cluster as the target (`target.new_cluster`): created through the stand-in
//! control plane (`scripts/zilliz_control_plane.py`, which maps a created cluster to the real
//! target test server and keeps it `CREATING` for a few describes), exactly once whatever
//! replies are lost or plan messages duplicated, waited for, then migrated into row by row.
//! The behaviour does not depend on the backend: proven once, on Milvus Lite (scripts/test.sh).

mod common;

use common::control_plane::StandIn;
use common::*;
use serde_json::{json, Value};
use vecmigrate::domain::{ClusterSpec, JobStatus, NewCluster, Phase, Secret};
use vecmigrate::engine::Budget;

const PROJECT: &str = "proj-standin";

/// The API key of each side (the servers' own token, or a made-up one where the server has
/// no authentication).
fn keys(servers: &Servers) -> (String, String) {
    let key = |s: &Server, fallback: &str| s.token.clone().unwrap_or_else(|| fallback.into());
    (
        key(&servers.source, "standin-source-key"),
        key(&servers.target, "standin-target-key"),
    )
}

/// A stand-in with a Serverless source on the source server; clusters it creates map to the
/// target server, stay CREATING for `creating_polls` describes, and the answers of the first
/// `lose_replies` creates are lost. `existing` names a cluster already in the project.
fn stand_in(servers: &Servers, creating_polls: u32, lose_replies: u32, existing: &str) -> StandIn {
    let (source_key, target_key) = keys(servers);
    StandIn::start(&json!({
        "keys": { source_key: ["in05-src000001"], target_key: ["in01-old000001"] },
        "clusters": {
            "in05-src000001": {"plan": "Serverless", "connectAddress": servers.source.uri},
            "in01-old000001": {"plan": "Enterprise", "cuSize": 2, "clusterName": existing,
                               "projectId": PROJECT, "connectAddress": servers.target.uri},
        },
        "newClusters": {"connectAddress": servers.target.uri, "creatingPolls": creating_polls,
                        "loseReplies": lose_replies},
    }))
}

fn new_target(name: &str, key: &str) -> ClusterSpec {
    ClusterSpec {
        token: Some(Secret::new(key)),
        new_cluster: Some(NewCluster {
            project_id: PROJECT.into(),
            region_id: "aws-us-west-2".into(),
            plan: "Enterprise".into(),
            cu_type: "Performance-optimized".into(),
            cu_size: 4,
            name: name.into(),
        }),
        ..ClusterSpec::default()
    }
}

#[tokio::test]
async fn a_new_cluster_is_created_once_waited_for_and_migrated_into() {
    // GIVEN a stand-in whose first create answer is lost (the cluster is created, the reply
    // never arrives: as a crash between the call and its record), and whose new clusters stay
    // CREATING for five describes
    let servers = Servers::from_env();
    let cp = stand_in(&servers, 5, 1, "someone-elses");
    let mut settings = fast_settings();
    // Short invocations: the wait for RUNNING spans several.
    settings.max_run = Some(std::time::Duration::from_secs(2));
    let h = harness_zilliz(settings, &cp.url(), &keys(&servers));
    let s = Seed::new(&unique("newc"), 1_200);
    seed(&h.servers.source, "default", &s).await;
    let (source_key, target_key) = keys(&h.servers);
    let name = unique("orders-eu");
    let mut request = request(&h.servers, None, &[(&s.name, &s.name)]);
    request.source = ClusterSpec {
        token: Some(Secret::new(source_key.as_str())),
        ..ClusterSpec::by_id("in05-src000001")
    };
    request.target = new_target(&name, &target_key);

    // WHEN the job starts and its plan message is duplicated
    let (job, _) = h.engine.start(request).await.unwrap();
    h.runner.kick(&job.id).await.unwrap();
    let mut phases = Vec::new();
    let report = h
        .runner
        .drive(&job.id, |r| phases.extend(r.job.phase))
        .await
        .unwrap();

    // THEN the control plane created exactly one cluster, with the fields asked for, and the
    // job found it again by its name after the lost reply
    assert_successful(&report);
    let created = cp.creations().await;
    assert_eq!(created.len(), 1, "{created:?}");
    let id = created[0]["clusterId"].as_str().unwrap();
    assert_eq!(
        created[0]["body"],
        json!({"clusterName": name, "projectId": PROJECT, "regionId": "aws-us-west-2",
               "plan": "Enterprise", "cuType": "Performance-optimized", "cuSize": 4})
    );
    let p = report.job.provision.as_ref().unwrap();
    assert_eq!(p.cluster_id.as_deref(), Some(id));
    assert!(p.found_by_name, "{p:?}");
    assert_eq!((p.create_calls, p.status.as_str()), (1, "RUNNING"), "{p:?}");
    assert!(p.running_at.unwrap() > p.requested_at.unwrap());
    assert!(p.password_note.contains("Zilliz Cloud console"));
    // ... went through a provision phase the status showed, waited across invocations for
    // RUNNING, and migrated into it as a cluster given by id (the tier rule applied to it)
    assert!(phases.contains(&Phase::Provision), "{phases:?}");
    let target = &report.job.request.target;
    assert_eq!(target.cluster_id.as_deref(), Some(id));
    assert_eq!(target.zilliz.as_ref().unwrap().plan, "Enterprise");
    assert_eq!(target.uri, h.servers.target.uri);
    assert_eq!(report.job.collections[0].target_count, Some(1_200));
    assert_same_rows(&h.servers, &s, "default", &s.name).await;
    let log: Vec<&str> = report.log.iter().map(|l| l.message.as_str()).collect();
    let log = log.join("\n");
    assert!(log.contains("found by its name"), "{log}");
    assert!(
        log.contains(&format!("the new cluster {id} is RUNNING")),
        "{log}"
    );
    assert!(log.contains("Serverless → Dedicated is supported"), "{log}");
    let describes = cp
        .requests()
        .await
        .into_iter()
        .filter(|r| r["path"] == json!(format!("/v2/clusters/{id}")))
        .count();
    assert!(
        describes >= 6,
        "five CREATING answers, then RUNNING: {describes}"
    );
    // ... and the generated password is nowhere: not in the record, the status, the log
    let password = created[0]["password"].as_str().unwrap();
    let store = std::fs::read(h.store_path()).unwrap();
    let report_json = serde_json::to_string(&report).unwrap();
    assert!(!String::from_utf8_lossy(&store).contains(password));
    assert!(!report_json.contains(password) && !log.contains(password));
    // (the CLI cannot seal it, so it keeps no copy at all)
    assert_eq!(p.sealed_password, None);
}

#[tokio::test]
async fn a_taken_name_is_refused_and_a_dry_run_says_what_it_would_create() {
    // GIVEN a project that already holds a cluster named `taken-…`
    let servers = Servers::from_env();
    let taken = unique("taken");
    let cp = stand_in(&servers, 1, 0, &taken);
    let h = harness_zilliz(fast_settings(), &cp.url(), &keys(&servers));
    let s = Seed::new(&unique("newd"), 600);
    seed(&h.servers.source, "default", &s).await;
    let (_, target_key) = keys(&h.servers);
    let mut request = request(&h.servers, None, &[(&s.name, &s.name)]);
    request.target = new_target(&taken, &target_key);

    // WHEN a job asks to create a cluster by that name
    let (job, report) = h.run(request.clone()).await;

    // THEN it fails at the name, creates nothing and writes nothing
    assert_eq!(report.job.status, JobStatus::Failed);
    let problems = &report.job.error.as_ref().unwrap().problems;
    assert_eq!(
        problems[0].field.as_deref(),
        Some("target.new_cluster.name")
    );
    assert!(
        problems[0].message.contains("in01-old000001"),
        "{problems:?}"
    );
    assert!(cp.creations().await.is_empty());
    assert!(!collection_names(&h.servers.target, "default")
        .await
        .contains(&s.name));
    assert_eq!(report.job.request.target.cluster_id, None, "{job:?}");

    // WHEN the same request with a free name is planned (a dry run)
    let mut dry = request;
    dry.target = new_target(&unique("fresh"), &target_key);
    dry.dry_run = true;
    let plan = h.engine.dry_run(dry, Budget::unlimited()).await.unwrap();

    // THEN it says what it would create, the size the data calls for and that size's write
    // cap, counts the source, and creates nothing
    assert!(plan.ok, "{:?}", plan.problems);
    let n = plan.new_cluster.as_ref().unwrap();
    assert_eq!(n.would_create.cu_size, 4);
    assert_eq!(n.recommended_cu_size, Some(1));
    assert_eq!(n.recommended_write_cap_mb_per_s, Some(8.0));
    assert_eq!(plan.totals.entities, 600);
    let as_json: Value = serde_json::to_value(&plan).unwrap();
    assert_eq!(as_json["new_cluster"]["would_create"]["plan"], "Enterprise");
    assert!(cp.creations().await.is_empty());
}
