//! A subset of a collection: a filter and a list of partitions copy exactly what they select,
//! verification counts the selection, the dry run estimates it, and what the source cannot
//! select is a problem at its field. On both backends (Milvus Lite and 2.3.5 evaluate filters
//! and partitions in their own code).

mod common;

use common::*;
use vecmigrate::domain::{CollectionSpec, JobStatus};
use vecmigrate::engine::{Budget, EngineConfig};

/// `score` is `i * 1.5 + 0.1`: this keeps the first 1,000 keys.
const FILTER: &str = "score < 1500.0";

/// The seeded keys the subset selects: under 1,000, in `_default` (`i % 3 == 0`) or `p2`
/// (`i % 3 == 2`).
fn selected(i: usize) -> bool {
    i < 1000 && i % 3 != 1
}

fn subset_of(name: &str, target: &str) -> CollectionSpec {
    CollectionSpec {
        target_name: Some(target.into()),
        filter: Some(FILTER.into()),
        partitions: Some(vec!["_default".into(), "p2".into()]),
        ..CollectionSpec::named(name)
    }
}

#[tokio::test]
async fn a_filter_and_partitions_copy_exactly_the_selected_entities() {
    // GIVEN 3,000 entities over `_default`, `p1` and `p2`
    let h = harness(fast_settings(), EngineConfig::default(), None);
    let source = Seed {
        partitions: vec!["p1".into(), "p2".into()],
        ..Seed::new(&unique("sub"), 3000)
    };
    seed(&h.servers.source, "default", &source).await;
    let target = format!("{}_part", source.name);
    let mut request = request(&h.servers, None, &[]);
    request.databases[0].collections = vec![subset_of(&source.name, &target)];
    request.options.batch_size = 128;
    let want: Vec<String> = (0..source.rows)
        .filter(|i| selected(*i))
        .map(|i| pk_of(&source, i))
        .collect();

    // WHEN the dry run plans it, THEN it counts the subset
    let plan = h
        .engine
        .dry_run(request.clone(), Budget::unlimited())
        .await
        .unwrap();
    assert!(plan.problems.is_empty(), "{:?}", plan.problems);
    assert_eq!(plan.collections[0].entities, want.len() as u64);
    assert_eq!(plan.collections[0].partitions, 2);

    // WHEN it runs
    let (_, report) = h.run(request).await;

    // THEN it verified the selection's count on the source against the target's
    assert_successful(&report);
    let c = &report.job.collections[0];
    assert_eq!(c.source_count, Some(want.len() as u64));
    assert_eq!(c.target_count, Some(want.len() as u64));
    // ... the target has only the selected partitions
    let mut partitions = partitions_of(&h.servers.target, "default", &target).await;
    partitions.sort();
    assert_eq!(partitions, ["_default", "p2"]);
    // ... and holds exactly the selected entities, each as the source has it
    let source_rows = read_rows(&h.servers.source, "default", &source.name, &source).await;
    let target_rows = read_rows(&h.servers.target, "default", &target, &source).await;
    let keys: Vec<&String> = target_rows.keys().collect();
    let mut wanted: Vec<&String> = want.iter().collect();
    wanted.sort();
    assert_eq!(keys, wanted, "the target holds the selected keys, no other");
    for (key, row) in &target_rows {
        assert_eq!(Some(row), source_rows.get(key), "row {key} differs");
    }
    assert_eq!(
        count(&h.servers.target, "default", &target).await,
        want.len() as u64,
        "count(*) sees no duplicates"
    );
}

#[tokio::test]
async fn what_the_source_cannot_select_is_a_problem_at_its_field() {
    // GIVEN a collection with partitions `_default` and `p1`
    let h = harness(fast_settings(), EngineConfig::default(), None);
    let source = Seed {
        partitions: vec!["p1".into()],
        ..Seed::new(&unique("subbad"), 300)
    };
    let other = Seed {
        name: format!("{}_o", source.name),
        ..source.clone()
    };
    seed(&h.servers.source, "default", &source).await;
    seed(&h.servers.source, "default", &other).await;
    // ... and a request with a filter the source cannot parse and a partition it lacks
    let mut request = request(&h.servers, None, &[]);
    request.databases[0].collections = vec![
        CollectionSpec {
            target_name: Some(format!("{}_a", source.name)),
            filter: Some("score <<< 3".into()),
            ..CollectionSpec::named(&source.name)
        },
        CollectionSpec {
            target_name: Some(format!("{}_b", source.name)),
            partitions: Some(vec!["p1".into(), "p9".into()]),
            ..CollectionSpec::named(&other.name)
        },
    ];

    // WHEN it is planned, THEN each is a problem at its field
    let plan = h
        .engine
        .dry_run(request.clone(), Budget::unlimited())
        .await
        .unwrap();
    let fields: Vec<&str> = plan
        .problems
        .iter()
        .map(|p| p.field.as_deref().unwrap_or_default())
        .collect();
    assert_eq!(
        fields,
        [
            "databases[0].collections[0].filter",
            "databases[0].collections[1].partitions[1]",
        ],
        "{:?}",
        plan.problems
    );
    assert!(plan.problems[0]
        .message
        .contains("the source refused the filter"));
    assert!(plan.problems[1]
        .message
        .contains("partition `p9` does not exist"));

    // WHEN it is run, THEN the job fails before writing anything
    let (_, report) = h.run(request).await;
    assert_eq!(report.job.status, JobStatus::Failed);
    let message = &report.job.error.as_ref().unwrap().message;
    assert!(
        message.contains("databases[0].collections[0].filter"),
        "{message}"
    );
    let names = collection_names(&h.servers.target, "default").await;
    assert!(
        !names.iter().any(|n| n.starts_with(&source.name)),
        "{names:?}"
    );
}
