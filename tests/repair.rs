//! Range repair (`on_count_mismatch: "repair"`, the default): a page the target acknowledged
//! without storing it (a named fault hook, as Milvus Lite does to acknowledged writes when it
//! is SIGKILLed, see docs/RELIABILITY.md) is pinned to its task's key range by counting the
//! range on both sides, and only that range is copied again with upsert. Proven on Milvus
//! 2.3.5, the backend that keeps two entities with one key, so that a repair that wrote a key
//! twice would show.

mod common;

use common::faults::{checkpointed, lost_and_duplicated};
use common::receiver::Receiver;
use common::*;
use vecmigrate::domain::request::WebhookSpec;
use vecmigrate::domain::{FoundAt, JobStatus, RepairReason, Secret, VerifyMode};
use vecmigrate::engine::{EngineConfig, Faults};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// 2,000 entities over two partitions (`_default` and `p1`, 1,000 each), copied in pages of
/// 250 by one worker: two tasks, one per partition.
fn two_partitions(prefix: &str) -> Seed {
    Seed {
        partitions: vec!["p1".into()],
        ..Seed::new(&unique(prefix), 2_000)
    }
}

/// Each key of the source once on the target, nothing else, every field the same.
async fn assert_exactly_once(h: &Harness, job_id: &str, s: &Seed) {
    let done = checkpointed(&*h.store, job_id).await;
    let (lost, duplicated) = lost_and_duplicated(&h.servers, s, "default", &s.name, done).await;
    assert_eq!((lost, duplicated), (0, 0), "lost and duplicated entities");
    assert_same_rows(&h.servers, s, "default", &s.name).await;
}

#[tokio::test]
async fn a_page_acknowledged_but_not_stored_is_repaired_in_its_range_only() {
    if !proven_on("standalone") {
        return;
    }
    // GIVEN a target that acknowledges the second page without storing it, and a webhook
    let receiver = Receiver::start(SECRET);
    let h = harness_webhook(
        fast_settings(),
        EngineConfig::default(),
        SECRET,
        Some(Faults::lose_write(2)),
    );
    let s = two_partitions("lost_page");
    seed(&h.servers.source, "default", &s).await;
    let mut r = request(&h.servers, None, &[(&s.name, &s.name)]);
    r.options.batch_size = 250;
    r.options.max_workers = 1;
    r.webhook = Some(WebhookSpec {
        url: receiver.url("/ok"),
        secret: Some(Secret::new(SECRET)),
        secret_arn: None,
        progress_every_seconds: None,
        sealed_secret: None,
    });

    // WHEN the job runs with the default options
    let (job, report) = h.run(r).await;

    // THEN it ends SUCCESSFUL, having copied again the one partition's range that lost a page
    assert_successful(&report);
    let c = &report.job.collections[0];
    assert_eq!((c.source_count, c.target_count), (Some(2_000), Some(2_000)));
    assert_eq!(c.repaired_ranges, 1, "{:?}", c.repairs);
    let r = &c.repairs[0];
    assert_eq!((r.reason, r.found), (RepairReason::Count, FoundAt::TaskEnd));
    assert_eq!(
        (r.source_count, r.target_before, r.target_after),
        (Some(1_000), Some(750), Some(1_000)),
        "the range is the partition, not the collection"
    );
    assert_eq!((r.attempts, r.repaired), (1, true));
    let tasks = h.store.list_tasks(&job.id).await.unwrap();
    let repaired: Vec<_> = tasks.iter().filter(|t| t.repair.is_some()).collect();
    assert_eq!(repaired.len(), 1, "one task was sent back");
    assert_eq!(repaired[0].id, r.task);
    assert_eq!(repaired[0].partition, r.partition);
    assert!(
        report
            .log
            .iter()
            .any(|l| l.message.contains("copying the range again with upsert")),
        "the log says what was repaired"
    );
    assert_exactly_once(&h, &job.id, &s).await;

    // AND the signed webhook carries the repaired range
    let got = receiver.deliveries().await;
    assert_eq!(got.len(), 1);
    let data = &got[0]["body"]["data"];
    assert_eq!(data["totals"]["repaired_ranges"], 1);
    let hooked = &data["job"]["collections"][0]["repairs"][0];
    assert_eq!(hooked["source_count"], 1_000);
    assert_eq!(hooked["target_before"], 750);
    assert_eq!(hooked["target_after"], 1_000);
    assert_eq!(hooked["repaired"], true);
}

#[tokio::test]
async fn without_range_counts_a_collection_mismatch_is_pinned_and_repaired_in_the_finish_step() {
    if !proven_on("standalone") {
        return;
    }
    // GIVEN the same lost page, and a job that counts only whole collections and compares
    // every entity
    let h = harness(
        fast_settings(),
        EngineConfig::default(),
        Some(Faults::lose_write(2)),
    );
    let s = two_partitions("lost_finish");
    seed(&h.servers.source, "default", &s).await;
    let mut r = request(&h.servers, None, &[(&s.name, &s.name)]);
    r.options.batch_size = 250;
    r.options.max_workers = 1;
    r.options.count_ranges = false;
    r.options.verify = VerifyMode::Full;

    // WHEN it runs
    let (job, report) = h.run(r).await;

    // THEN the finish step finds the collection short, counts its ranges, and repairs the one
    // (counted before the comparison, which would see 250 keys differ and repair them all)
    assert_successful(&report);
    let c = &report.job.collections[0];
    assert_eq!(c.repaired_ranges, 1, "{:?}", c.repairs);
    let r = &c.repairs[0];
    assert_eq!((r.reason, r.found), (RepairReason::Count, FoundAt::Finish));
    let content = c.content.as_ref().expect("a full comparison ran");
    assert_eq!((content.compared, content.differing), (2_000, 0));
    assert_eq!(
        (r.source_count, r.target_before, r.target_after),
        (Some(1_000), Some(750), Some(1_000))
    );
    assert_exactly_once(&h, &job.id, &s).await;
}

#[tokio::test]
async fn a_range_that_keeps_losing_writes_fails_the_job_after_its_repairs() {
    if !proven_on("standalone") {
        return;
    }
    // GIVEN a target that loses every page from the second on
    let h = harness(
        fast_settings(),
        EngineConfig::default(),
        Some(Faults::lose_writes_from(2)),
    );
    let s = Seed::new(&unique("lost_always"), 1_000);
    seed(&h.servers.source, "default", &s).await;
    let mut r = request(&h.servers, None, &[(&s.name, &s.name)]);
    r.options.batch_size = 250;
    r.options.max_workers = 1;
    r.options.max_repairs = 2;

    // WHEN it runs
    let (_, report) = h.run(r).await;

    // THEN it fails after two repairs of the range, naming the range and both counts
    assert_eq!(report.job.status, JobStatus::Failed);
    let error = report.job.error.unwrap().message;
    assert!(
        error.contains("still differs after 2 repairs")
            && error.contains("source 1000, target 250")
            && error.contains(&format!("`default.{}`", s.name)),
        "{error}"
    );
    let r = &report.job.collections[0].repairs[0];
    assert_eq!((r.attempts, r.repaired), (2, false));
    assert_eq!((r.target_before, r.target_after), (Some(250), Some(250)));
}
