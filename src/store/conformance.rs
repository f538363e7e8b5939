//! The job store conformance suite: behaviour every [`JobStore`] adapter must show, written once
//! and run unchanged against each adapter (see [`crate::job_store_suite`]).
//!
//! Each check makes its own jobs with fresh ids, so the suite can share one store (or one
//! emulator) with other tests.

use std::sync::Arc;

use chrono::{Duration, Utc};

use super::{Created, Expected, JobStore, StoreError};
use crate::domain::pace::Pace;
use crate::domain::task::Split;
use crate::domain::{
    Checkpoint, Cursor, Job, JobStatus, Level, LogEntry, MigrationRequest, Phase, Task, TaskStatus,
};

fn request(key: Option<&str>) -> MigrationRequest {
    let mut r = MigrationRequest::from_json(
        r#"{"source":{"uri":"http://127.0.0.1:1","token":"root:Milvus"},"target":{"uri":"http://127.0.0.1:2"},
            "databases":[{"name":"default","collections":[{"name":"c"}]}]}"#,
    )
    .expect("a valid request");
    r.idempotency_key = key.map(str::to_owned);
    r
}

fn new_job() -> Job {
    Job::new(Job::new_id(), request(None), Utc::now())
}

fn task(job: &Job, partition: &str) -> Task {
    Task::new(
        &job.id,
        "default",
        "c",
        "default",
        "c",
        Some(partition),
        100,
    )
}

/// A created job reads back equal; a missing one reads as `None`.
pub async fn creates_and_reads_jobs(store: Arc<dyn JobStore>) {
    let job = new_job();
    assert_eq!(
        store.create_job(&job).await.unwrap(),
        Created::New(job.clone())
    );
    assert_eq!(store.get_job(&job.id).await.unwrap(), Some(job));
    assert_eq!(store.get_job("mig-missing").await.unwrap(), None);
}

/// A second job with the same idempotency key returns the first one, unchanged.
pub async fn idempotency_key_returns_first_job(store: Arc<dyn JobStore>) {
    let key = format!("key-{}", uuid::Uuid::new_v4());
    let first = Job::new(Job::new_id(), request(Some(&key)), Utc::now());
    let second = Job::new(Job::new_id(), request(Some(&key)), Utc::now());
    store.create_job(&first).await.unwrap();
    assert_eq!(
        store.create_job(&second).await.unwrap(),
        Created::Existing(first)
    );
    assert_eq!(store.get_job(&second.id).await.unwrap(), None);
}

/// Saving is conditional on the version read: a stale writer gets `Conflict`.
pub async fn save_is_conditional_on_version(store: Arc<dyn JobStore>) {
    let job = new_job();
    store.create_job(&job).await.unwrap();
    let mut a = job.clone();
    a.enter(Phase::Preflight, Utc::now()).unwrap();
    let saved = store.save_job(&a).await.unwrap();
    assert_eq!(saved.version, 1);
    let mut stale = job.clone();
    stale.cancel_requested = true;
    assert!(matches!(
        store.save_job(&stale).await,
        Err(StoreError::Conflict(_))
    ));
    let read = store.get_job(&job.id).await.unwrap().unwrap();
    assert_eq!(read.status, JobStatus::InProgress);
    assert!(!read.cancel_requested, "the stale write left no trace");
}

/// Listing pages through every job once, newest first, and filters by status.
pub async fn lists_jobs_in_pages_and_by_status(store: Arc<dyn JobStore>) {
    let base = Utc::now() + Duration::days(3650); // newer than anything else in the store
    let mut ids = Vec::new();
    for i in 0..5 {
        let job = Job::new(Job::new_id(), request(None), base + Duration::seconds(i));
        store.create_job(&job).await.unwrap();
        ids.push(job.id);
    }
    let mut seen = Vec::new();
    let mut next: Option<String> = None;
    for _ in 0..100 {
        let page = store.list_jobs(None, 2, next.as_deref()).await.unwrap();
        assert!(page.jobs.len() <= 2);
        seen.extend(
            page.jobs
                .into_iter()
                .map(|j| j.id)
                .filter(|id| ids.contains(id)),
        );
        next = page.next;
        if next.is_none() || seen.len() == ids.len() {
            break;
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);

    let mut done = store.get_job(&ids[0]).await.unwrap().unwrap();
    done.finish(JobStatus::Cancelled, None, Utc::now()).unwrap();
    store.save_job(&done).await.unwrap();
    let cancelled = store
        .list_jobs(Some(JobStatus::Cancelled), 1000, None)
        .await
        .unwrap();
    assert!(cancelled.jobs.iter().any(|j| j.id == ids[0]));
    assert!(cancelled
        .jobs
        .iter()
        .all(|j| j.status == JobStatus::Cancelled));
}

/// An ended job with a pending webhook is listed once due, and no longer once delivered.
pub async fn lists_due_webhooks(store: Arc<dyn JobStore>) {
    let mut with_hook = request(None);
    with_hook.webhook = Some(crate::domain::request::WebhookSpec {
        url: "https://hooks.example.com/m".into(),
        secret: Some(crate::domain::Secret::new(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        )),
        secret_arn: None,
        progress_every_seconds: None,
        sealed_secret: None,
    });
    let hooked = Job::new(Job::new_id(), with_hook, Utc::now());
    let plain = new_job();
    for job in [&hooked, &plain] {
        store.create_job(job).await.unwrap();
        let mut ended = job.clone();
        ended
            .finish(JobStatus::Cancelled, None, Utc::now())
            .unwrap();
        store.save_job(&ended).await.unwrap();
    }
    let due = |jobs: Vec<Job>| jobs.into_iter().map(|j| j.id).collect::<Vec<_>>();
    let later = Utc::now() + Duration::seconds(1);
    let listed = due(store.list_due_webhooks(later, 1000).await.unwrap());
    assert!(listed.contains(&hooked.id), "{listed:?}");
    assert!(!listed.contains(&plain.id));
    let earlier = Utc::now() - Duration::hours(1);
    assert!(!due(store.list_due_webhooks(earlier, 1000).await.unwrap()).contains(&hooked.id));

    let mut delivered = store.get_job(&hooked.id).await.unwrap().unwrap();
    delivered.webhook.as_mut().unwrap().state = crate::domain::DeliveryState::Delivered;
    store.save_job(&delivered).await.unwrap();
    assert!(!due(store.list_due_webhooks(later, 1000).await.unwrap()).contains(&hooked.id));
}

/// Writing tasks twice keeps the first (with its progress): planning is safe to repeat.
pub async fn put_tasks_keeps_existing(store: Arc<dyn JobStore>) {
    let job = new_job();
    let tasks = vec![task(&job, "a"), task(&job, "b")];
    store.put_tasks(&tasks).await.unwrap();
    let now = Utc::now();
    let claimed = store
        .claim_task(&job.id, &tasks[0].id, "w1", now, Duration::seconds(30))
        .await
        .unwrap()
        .unwrap();
    let cp = Checkpoint {
        cursor: Cursor::Int(9),
        rows: 10,
        bytes: 80,
        next_limit: 100,
        sample: None,
        read_at: None,
    };
    store
        .checkpoint(&claimed, &cp, now, Duration::seconds(30))
        .await
        .unwrap();
    store.put_tasks(&tasks).await.unwrap();
    let listed = store.list_tasks(&job.id).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(
        listed[0].copied, 10,
        "a repeated plan did not reset progress"
    );
    assert_eq!(listed[0].cursor, Some(Cursor::Int(9)));
}

/// Of many workers claiming one task at once, exactly one wins.
pub async fn exactly_one_concurrent_claim_wins(store: Arc<dyn JobStore>) {
    let job = new_job();
    let t = task(&job, "p");
    store.put_tasks(std::slice::from_ref(&t)).await.unwrap();
    let now = Utc::now();
    let mut handles = Vec::new();
    for i in 0..8 {
        let (store, job_id, task_id) = (store.clone(), job.id.clone(), t.id.clone());
        handles.push(tokio::spawn(async move {
            store
                .claim_task(
                    &job_id,
                    &task_id,
                    &format!("w{i}"),
                    now,
                    Duration::seconds(30),
                )
                .await
                .unwrap()
        }));
    }
    let mut winners = 0;
    for h in handles {
        winners += h.await.unwrap().is_some() as usize;
    }
    assert_eq!(winners, 1);
    let stored = store.get_task(&job.id, &t.id).await.unwrap().unwrap();
    assert_eq!((stored.fence, stored.runs), (1, 1));
}

/// A live lease blocks claims; an expired one is taken over, and the old holder is fenced out.
pub async fn expired_lease_is_taken_over_and_fenced(store: Arc<dyn JobStore>) {
    let job = new_job();
    let t = task(&job, "p");
    store.put_tasks(std::slice::from_ref(&t)).await.unwrap();
    let now = Utc::now();
    let ttl = Duration::seconds(10);
    let a = store
        .claim_task(&job.id, &t.id, "a", now, ttl)
        .await
        .unwrap()
        .unwrap();
    assert!(store
        .claim_task(&job.id, &t.id, "b", now, ttl)
        .await
        .unwrap()
        .is_none());
    let later = now + ttl + Duration::seconds(1);
    let b = store
        .claim_task(&job.id, &t.id, "b", later, ttl)
        .await
        .unwrap()
        .unwrap();
    assert!(b.resumed());
    let cp = Checkpoint {
        cursor: Cursor::Str("k".into()),
        rows: 1,
        bytes: 1,
        next_limit: 100,
        sample: None,
        read_at: None,
    };
    assert!(matches!(
        store.checkpoint(&a, &cp, later, ttl).await,
        Err(StoreError::LeaseLost(_))
    ));
    assert!(matches!(
        store.release_task(&a).await,
        Err(StoreError::LeaseLost(_))
    ));
    assert!(matches!(
        store.complete_task(&a).await,
        Err(StoreError::LeaseLost(_))
    ));
    let stored = store.get_task(&job.id, &t.id).await.unwrap().unwrap();
    assert_eq!(stored.copied, 0, "the fenced holder wrote nothing");
    assert_eq!(stored.lease.unwrap().owner, "b");
}

/// Checkpoints move the cursor and counts; release frees the task; complete ends it.
pub async fn checkpoint_release_complete(store: Arc<dyn JobStore>) {
    let job = new_job();
    let t = task(&job, "p");
    store.put_tasks(std::slice::from_ref(&t)).await.unwrap();
    let now = Utc::now();
    let ttl = Duration::seconds(10);
    let a = store
        .claim_task(&job.id, &t.id, "a", now, ttl)
        .await
        .unwrap()
        .unwrap();
    let cp1 = Checkpoint {
        cursor: Cursor::Int(99),
        rows: 100,
        bytes: 800,
        next_limit: 50,
        sample: None,
        read_at: None,
    };
    let a = store.checkpoint(&a, &cp1, now, ttl).await.unwrap();
    let cp2 = Checkpoint {
        cursor: Cursor::Int(149),
        rows: 50,
        bytes: 400,
        next_limit: 50,
        sample: None,
        read_at: None,
    };
    let a = store.checkpoint(&a, &cp2, now, ttl).await.unwrap();
    store.release_task(&a).await.unwrap();
    let stored = store.get_task(&job.id, &t.id).await.unwrap().unwrap();
    assert_eq!(stored.cursor, Some(Cursor::Int(149)));
    assert_eq!(
        (
            stored.copied,
            stored.bytes,
            stored.batches,
            stored.next_limit
        ),
        (150, 1200, 2, 50)
    );
    let later = Utc::now();
    assert!(
        !stored.leased(later) && stored.claimable(later),
        "released at once, no waiting"
    );
    let b = store
        .claim_task(&job.id, &t.id, "b", later, ttl)
        .await
        .unwrap()
        .unwrap();
    let done = store.complete_task(&b).await.unwrap();
    assert_eq!(done.status, TaskStatus::Done);
    assert!(store
        .claim_task(&job.id, &t.id, "c", later + ttl * 2, ttl)
        .await
        .unwrap()
        .is_none());
}

/// A split shortens a held task and adds the rest in one write, only on the record it was
/// counted on; the holder's next write keeps the split (takes the new end) instead of undoing
/// it, and a split on a record that moved meanwhile does nothing.
pub async fn a_split_is_kept_by_the_holders_next_write(store: Arc<dyn JobStore>) {
    let job = new_job();
    let t = task(&job, "p");
    store.put_tasks(std::slice::from_ref(&t)).await.unwrap();
    let (now, ttl) = (Utc::now(), Duration::seconds(30));
    let a = store
        .claim_task(&job.id, &t.id, "a", now, ttl)
        .await
        .unwrap()
        .unwrap();
    let cp = |cursor: i64| Checkpoint {
        cursor: Cursor::Int(cursor),
        rows: 100,
        bytes: 800,
        next_limit: 100,
        sample: None,
        read_at: None,
    };
    let a = store.checkpoint(&a, &cp(99), now, ttl).await.unwrap();
    // GIVEN a worker that cuts the task in three at 5,000 and 7,500, on the record it read
    let seen = store.get_task(&job.id, &t.id).await.unwrap().unwrap();
    let split = |cuts: &[(i64, u64)]| Split {
        cuts: cuts.iter().map(|(k, n)| (Cursor::Int(*k), *n)).collect(),
        left: 9_900,
    };
    let (mut kept, rests) = seen.split_at(&split(&[(5_000, 4_900), (7_500, 7_400)]), "b", now, ttl);
    kept.rev = seen.rev + 1;
    assert!(store
        .split_task(&Expected::of(&seen), &kept, &rests)
        .await
        .unwrap());
    // WHEN the holder checkpoints from its older copy of the record
    let a = store.checkpoint(&a, &cp(199), now, ttl).await.unwrap();
    // THEN its record keeps the split's end; the ranges after the cuts are tasks of their own,
    // the first held by b, the second free to claim
    assert_eq!(a.upto, Some(Cursor::Int(5_000)));
    let stored = store.get_task(&job.id, &t.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.upto, stored.copied),
        (Some(Cursor::Int(5_000)), 200)
    );
    let second = store
        .get_task(&job.id, &rests[0].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (second.from.clone(), second.upto.clone(), second.planned),
        (
            Some(Cursor::Int(5_000)),
            Some(Cursor::Int(7_500)),
            Some(2_500)
        )
    );
    assert!(second.held_by("b", 1));
    let third = store
        .get_task(&job.id, &rests[1].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (third.from.clone(), third.upto.clone()),
        (Some(Cursor::Int(7_500)), None)
    );
    assert!(third.claimable(now));
    // AND a split counted on the record before that checkpoint does nothing
    let (mut late, again) = seen.split_at(&split(&[(7_000, 6_900)]), "c", now, ttl);
    late.rev = seen.rev + 1;
    assert!(!store
        .split_task(&Expected::of(&seen), &late, &again)
        .await
        .unwrap());
    assert!(store
        .get_task(&job.id, &again[0].id)
        .await
        .unwrap()
        .is_none());
    assert_eq!(store.list_tasks(&job.id).await.unwrap().len(), 3);
    // AND a worker whose lease passed to another still cannot write
    let stolen = store
        .claim_task(&job.id, &t.id, "d", now + ttl * 2, ttl)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        store.checkpoint(&a, &cp(299), now, ttl).await,
        Err(StoreError::LeaseLost(_))
    ));
    assert_eq!(stolen.upto, Some(Cursor::Int(5_000)));
}

/// A pace is made once, and each later write of it is conditional on its version.
pub async fn paces_are_written_on_their_version(store: Arc<dyn JobStore>) {
    let key = format!("target:test-{}", uuid::Uuid::new_v4().simple());
    assert!(store.get_pace(&key).await.unwrap().is_none());
    let fresh = Pace::new(key.clone(), 2_000_000.0, true, Utc::now());
    let saved = store.save_pace(&fresh).await.unwrap().expect("made");
    assert_eq!(saved.version, 1);
    assert!(
        store.save_pace(&fresh).await.unwrap().is_none(),
        "made twice"
    );
    let mut a = saved.clone();
    a.reserve(1_000_000, Utc::now());
    let a = store.save_pace(&a).await.unwrap().expect("the first slot");
    let mut b = saved.clone();
    b.reserve(1_000_000, Utc::now());
    assert!(
        store.save_pace(&b).await.unwrap().is_none(),
        "a slot taken on an older version"
    );
    assert_eq!(store.get_pace(&key).await.unwrap(), Some(a));
}

/// The log keeps entries in order, per job.
pub async fn log_keeps_order(store: Arc<dyn JobStore>) {
    let job = new_job();
    let other = new_job();
    for i in 0..3 {
        let entry = LogEntry {
            time: Utc::now(),
            level: Level::Warn,
            collection: Some("default.c".into()),
            message: format!("entry {i}"),
        };
        store.append_log(&job.id, &entry).await.unwrap();
    }
    let log = store.list_logs(&job.id).await.unwrap();
    let messages: Vec<_> = log.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(messages, ["entry 0", "entry 1", "entry 2"]);
    assert!(store.list_logs(&other.id).await.unwrap().is_empty());
}

/// A signed request's id is taken once until it expires; after that it may be used again.
pub async fn request_ids_are_taken_once(store: Arc<dyn JobStore>) {
    let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let until = Utc::now() + Duration::minutes(10);
    assert!(store.remember_request_id(&id, until).await.unwrap());
    assert!(
        !store.remember_request_id(&id, until).await.unwrap(),
        "a replay"
    );
    let other = format!("msg_{}", uuid::Uuid::new_v4().simple());
    assert!(store.remember_request_id(&other, until).await.unwrap());
    let gone = format!("msg_{}", uuid::Uuid::new_v4().simple());
    assert!(store
        .remember_request_id(&gone, Utc::now() - Duration::seconds(5))
        .await
        .unwrap());
    assert!(
        store.remember_request_id(&gone, until).await.unwrap(),
        "an expired id may be used again"
    );
}

/// Generates one `#[tokio::test]` per conformance check, for a store made by `$make` (an async
/// function returning `Arc<dyn JobStore>`).
#[macro_export]
macro_rules! job_store_suite {
    ($make:path) => {
        $crate::job_store_suite!(@tests $make;
            creates_and_reads_jobs, idempotency_key_returns_first_job,
            save_is_conditional_on_version, lists_jobs_in_pages_and_by_status,
            put_tasks_keeps_existing, exactly_one_concurrent_claim_wins,
            expired_lease_is_taken_over_and_fenced, checkpoint_release_complete, log_keeps_order,
            lists_due_webhooks, request_ids_are_taken_once,
            a_split_is_kept_by_the_holders_next_write, paces_are_written_on_their_version);
    };
    (@tests $make:path; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                $crate::store::conformance::$name($make().await).await;
            }
        )*
    };
}
