//! The job record: its status and phase state machine, the per-collection report, the error
//! that ended it, its log; and the pure functions that decide how it may change. Tasks are in
//! [`super::task`], the outcome webhook in [`super::delivery`], status and phase in
//! [`super::status`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::cluster::Role;
pub use super::delivery::{Attempt, Delivery, DeliveryState, WebhookEvent};
use super::repair::RepairedRange;
use super::request::MigrationRequest;
pub use super::status::{JobStatus, Phase};
pub use super::task::{Checkpoint, Cursor, Lease, Staged, Task, TaskStatus};

/// A change the state machine refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("job cannot go from {from} to {to}")]
pub struct InvalidTransition {
    /// The state before.
    pub from: String,
    /// The state asked for.
    pub to: String,
}

/// Per-collection state in the job record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectionStatus {
    /// Nothing done yet.
    Pending,
    /// The job is creating the target collection (recorded before the call, so a crash leaves a record).
    Creating,
    /// The target collection exists and the copy runs.
    Copying,
    /// Copied and verified: counts match.
    Verified,
    /// Counts differ.
    Mismatch,
}

/// One collection of the job: where it goes and how its verification came out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionReport {
    /// Source database.
    pub database: String,
    /// Source collection.
    pub source: String,
    /// Target database.
    pub target_database: String,
    /// Target collection.
    pub target: String,
    /// Where it stands.
    pub status: CollectionStatus,
    /// Entities in the source when verified (or when planned, until then).
    pub source_count: Option<u64>,
    /// Entities in the target when verified.
    pub target_count: Option<u64>,
    /// Whether the two counts are equal, once verified.
    #[serde(rename = "match")]
    pub matches: Option<bool>,
    /// How many times the collection was migrated again after a count mismatch.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub remigrations: u32,
    /// Earlier verifications that did not match, oldest first (with `remigrate`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mismatches: Vec<CountCheck>,
    /// The content comparison (`verify: "sample"` or `"full"`), once it has started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<ContentCheck>,
    /// How far the target's vector indexes were built when the index phase ended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<IndexedField>,
    /// Key ranges copied again because they differed (at most
    /// [`MAX_LISTED_REPAIRS`](crate::domain::repair::MAX_LISTED_REPAIRS), oldest first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repairs: Vec<RepairedRange>,
    /// How many key ranges were copied again in all (also those past the list's bound).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub repaired_ranges: u32,
    /// How many key ranges the finish step counted on both sides and found equal, once it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranges_counted: Option<u32>,
    /// How the copy writes the collection when the job may import (`write_mode` `import` or
    /// `auto`); absent for a job that inserts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write: Option<CollectionWrite>,
}

/// How one collection is written, as preflight chose it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionWrite {
    /// `import` (staged files) or `insert`.
    pub via: crate::domain::WriteVia,
    /// Why it is inserted although the job asked to import where it can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl CollectionReport {
    /// True when `task` copies this collection in its current migration (not an earlier one
    /// dropped by a remigration).
    pub fn holds(&self, task: &crate::domain::Task) -> bool {
        task.database == self.database
            && task.collection == self.source
            && task.generation == self.remigrations
    }
}

/// How far the target server had built one vector field's index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexedField {
    /// The vector field.
    pub field: String,
    /// Entities indexed.
    pub indexed_rows: u64,
    /// Entities the index covers once built.
    pub total_rows: u64,
    /// True when the server reported it built.
    pub built: bool,
}

/// The most differing keys a content check names.
pub const MAX_NAMED_KEYS: usize = 10;

/// What a content comparison of one collection found: entities read on both sides and compared
/// field by field (floats by their bits, JSON by value, sparse vectors by index/value pairs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentCheck {
    /// `sample` or `full`.
    pub mode: crate::domain::VerifyMode,
    /// Entities compared so far.
    pub compared: u64,
    /// Entities that differ, or exist on one side only.
    pub differing: u64,
    /// Up to ten of the differing primary keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    /// True once every entity to compare was compared.
    pub done: bool,
    /// Where a `full` pass resumes (the last key compared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Cursor>,
    /// Keys to compare again after their ranges were repaired (the comparison then compares
    /// only these).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recheck: Vec<String>,
}

impl ContentCheck {
    /// A check that has compared nothing yet.
    pub fn new(mode: crate::domain::VerifyMode) -> Self {
        Self {
            mode,
            compared: 0,
            differing: 0,
            keys: Vec::new(),
            done: false,
            cursor: None,
            recheck: Vec::new(),
        }
    }

    /// Records entities compared and the keys of those that differ.
    pub fn record(&mut self, compared: u64, differing: &[String]) {
        self.compared += compared;
        self.differing += differing.len() as u64;
        for k in differing {
            if self.keys.len() < MAX_NAMED_KEYS {
                self.keys.push(k.clone());
            }
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One verification of a collection's counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountCheck {
    /// Entities in the source.
    pub source_count: u64,
    /// Entities in the target.
    pub target_count: u64,
    /// When they were counted.
    pub checked_at: DateTime<Utc>,
}

/// The error that ended a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobError {
    /// The phase the job was in.
    pub phase: Option<Phase>,
    /// What went wrong and what to do about it.
    pub message: String,
    /// Every problem preflight found, each with the request field it concerns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
}

/// One thing preflight found wrong: the request field it concerns, if one does, and what is
/// wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The JSON path of the field (`databases[0].collections[1].name`), if a field is at fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What is wrong and what to do.
    pub message: String,
}

impl Problem {
    /// A problem with `field`.
    pub fn at(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// A problem no single field is at fault for.
    pub fn general(message: impl Into<String>) -> Self {
        Self {
            field: None,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// One collection's counts, as verification found them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountResult {
    /// Source database.
    pub database: String,
    /// Source collection.
    pub source: String,
    /// Entities in the source.
    pub source_count: u64,
    /// Entities in the target.
    pub target_count: u64,
}

impl CountResult {
    /// Whether the two counts are equal.
    pub fn matches(&self) -> bool {
        self.source_count == self.target_count
    }
}

/// A migration job: the single source of truth about it lives in the job store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// `mig-` and a random id.
    pub id: String,
    /// The life-cycle status.
    pub status: JobStatus,
    /// The phase, while in progress (and the last phase reached, after).
    pub phase: Option<Phase>,
    /// The request, secrets redacted.
    pub request: MigrationRequest,
    /// Digest of the request, to compare against a reused idempotency key.
    pub fingerprint: String,
    /// When the job was accepted.
    pub created_at: DateTime<Utc>,
    /// When preflight began.
    pub started_at: Option<DateTime<Utc>>,
    /// When the job reached its final status.
    pub finished_at: Option<DateTime<Utc>>,
    /// Optimistic-concurrency version: every store write is conditional on it.
    pub version: u64,
    /// Set by `cancel`; workers stop at the next batch boundary.
    pub cancel_requested: bool,
    /// One entry per migrated collection, filled in by preflight.
    pub collections: Vec<CollectionReport>,
    /// Why the job failed.
    pub error: Option<JobError>,
    /// Who runs the job's current single-runner step (plan or finish), so that a duplicated
    /// message does not run it twice at once; the sweep restarts the step once it expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_lease: Option<Lease>,
    /// When the job entered its current phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase_since: Option<DateTime<Utc>>,
    /// The outcome webhook, once the job ended (when the request asked for one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Delivery>,
    /// When the last `migration.progress` event was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_sent_at: Option<DateTime<Utc>>,
    /// How many times a step of the job panicked (a bug): each ends like a crash, and the job
    /// fails after [`MAX_STEP_PANICS`].
    #[serde(default, skip_serializing_if = "is_zero")]
    pub panics: u32,
    /// The outage of a cluster the job is waiting out, while it lasts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outage: Option<Outage>,
    /// The write rate the target was found to take, once it throttled (the whole job's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_rate: Option<WriteRate>,
    /// The creation of the target cluster, for a request with `target.new_cluster`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provision: Option<super::Provisioning>,
    /// What bulk import did, recorded when the copy finished (for a job that imports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<super::report::ImportProgress>,
}

/// An outage a job is waiting out: since when, and what the cluster last said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outage {
    /// The cluster that does not answer.
    pub role: Role,
    /// When the first call failed.
    pub since: DateTime<Utc>,
    /// The last error.
    pub last_error: String,
    /// Calls retried so far.
    pub retried: u64,
}

/// The pace the target takes writes at, learnt from its throttling: every worker takes its
/// share, and a new invocation starts from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriteRate {
    /// Bytes per second, for the whole job.
    pub bytes_per_s: f64,
    /// Writes the target answered as throttled.
    pub throttles: u64,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// The most panics a job's steps may have before the job fails (as the work queue's five
/// receives before a message goes to the dead-letter queue).
pub const MAX_STEP_PANICS: u32 = 5;

impl Job {
    /// A new pending job for a validated request. The job keeps the request with its secrets
    /// redacted: a job record never holds a credential, in memory or in a store.
    pub fn new(id: String, request: MigrationRequest, now: DateTime<Utc>) -> Self {
        let fingerprint = request.fingerprint();
        Self {
            id,
            status: JobStatus::Pending,
            phase: None,
            request: request.redacted(),
            fingerprint,
            created_at: now,
            started_at: None,
            finished_at: None,
            version: 0,
            cancel_requested: false,
            step_lease: None,
            phase_since: None,
            webhook: None,
            progress_sent_at: None,
            panics: 0,
            outage: None,
            write_rate: None,
            provision: None,
            import: None,
            collections: Vec::new(),
            error: None,
        }
    }

    /// A fresh job id.
    pub fn new_id() -> String {
        format!("mig-{}", uuid::Uuid::new_v4().simple())
    }

    /// When the outcome webhook is due, while it is pending.
    pub fn webhook_due(&self) -> Option<DateTime<Utc>> {
        self.webhook
            .as_ref()
            .filter(|d| d.state == DeliveryState::Pending)
            .and_then(|d| d.next_attempt_at)
    }

    /// The record as callers may see it: no secrets, no sealed tokens.
    pub fn public(&self) -> Job {
        let mut job = self.clone();
        job.request = job.request.public();
        if let Some(p) = job.provision.as_mut() {
            p.sealed_password = None;
        }
        job
    }

    /// Moves the job to `phase`: from PENDING into preflight, or forward while in progress.
    pub fn enter(&mut self, phase: Phase, now: DateTime<Utc>) -> Result<(), InvalidTransition> {
        let allowed = match (self.status, self.phase) {
            (JobStatus::Pending, _) => matches!(phase, Phase::Provision | Phase::Preflight),
            (JobStatus::InProgress, Some(current)) => phase > current,
            _ => false,
        };
        if !allowed {
            return Err(self.transition_error(phase.as_str()));
        }
        if self.status == JobStatus::Pending {
            self.started_at = Some(now);
        }
        self.status = JobStatus::InProgress;
        self.phase = Some(phase);
        self.phase_since = Some(now);
        // The plan ends as the copy begins, and the finish is a new step: a lease held for the
        // step before must not keep the next one waiting.
        if matches!(phase, Phase::Copy | Phase::Index) {
            self.step_lease = None;
        }
        Ok(())
    }

    /// Sends the job back from verification to the schema step, to migrate `collections`
    /// (database, source name) again after a count mismatch: each is marked pending, its
    /// mismatch recorded and its remigration counted.
    pub fn remigrate(
        &mut self,
        collections: &[CountResult],
        now: DateTime<Utc>,
    ) -> Result<(), InvalidTransition> {
        if self.status != JobStatus::InProgress || self.phase != Some(Phase::Verify) {
            return Err(self.transition_error("Schema (remigration)"));
        }
        for counted in collections {
            if let Some(c) = self.collection_mut(&counted.database, &counted.source) {
                c.mismatches.push(CountCheck {
                    source_count: counted.source_count,
                    target_count: counted.target_count,
                    checked_at: now,
                });
                c.remigrations += 1;
                c.status = CollectionStatus::Pending;
                c.target_count = None;
                c.matches = None;
                c.content = None;
                c.ranges_counted = None;
            }
        }
        self.phase = Some(Phase::Schema);
        self.phase_since = Some(now);
        self.step_lease = None;
        Ok(())
    }

    /// Sends the job back from the finish step to the copy, to copy again the key ranges of
    /// `collections` (database, source name) that differed: each is marked copying again and
    /// its verdict cleared. The tasks themselves are reset by the caller.
    pub fn reopen_copy(
        &mut self,
        collections: &[(String, String)],
        now: DateTime<Utc>,
    ) -> Result<(), InvalidTransition> {
        let finishing = matches!(self.phase, Some(Phase::Index | Phase::Verify));
        if self.status != JobStatus::InProgress || !finishing {
            return Err(self.transition_error("Copy (range repair)"));
        }
        for (database, source) in collections {
            if let Some(c) = self.collection_mut(database, source) {
                c.status = CollectionStatus::Copying;
                c.target_count = None;
                c.matches = None;
                c.ranges_counted = None;
            }
        }
        self.phase = Some(Phase::Copy);
        self.phase_since = Some(now);
        self.step_lease = None;
        Ok(())
    }

    /// Ends the job with a terminal status.
    pub fn finish(
        &mut self,
        status: JobStatus,
        error: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(), InvalidTransition> {
        self.finish_with(status, error.map(|m| (m, Vec::new())), now)
    }

    /// Ends the job with a terminal status, and an error with the problems behind it.
    pub fn finish_with(
        &mut self,
        status: JobStatus,
        error: Option<(String, Vec<Problem>)>,
        now: DateTime<Utc>,
    ) -> Result<(), InvalidTransition> {
        if !status.is_terminal() || self.status.is_terminal() {
            return Err(self.transition_error(status.as_str()));
        }
        if status == JobStatus::Successful
            && (self.status != JobStatus::InProgress || self.phase != Some(Phase::Verify))
        {
            return Err(self.transition_error(status.as_str()));
        }
        self.status = status;
        self.finished_at = Some(now);
        self.step_lease = None;
        if self.request.webhook.is_some() {
            self.webhook = Some(Delivery::new(WebhookEvent::outcome(status), now));
        }
        self.error = error.map(|(message, problems)| JobError {
            phase: self.phase,
            message,
            problems,
        });
        Ok(())
    }

    /// The report entry for a source collection.
    pub fn collection_mut(
        &mut self,
        database: &str,
        source: &str,
    ) -> Option<&mut CollectionReport> {
        self.collections
            .iter_mut()
            .find(|c| c.database == database && c.source == source)
    }

    fn transition_error(&self, to: &str) -> InvalidTransition {
        let from = match self.phase {
            Some(p) if self.status == JobStatus::InProgress => format!("IN_PROGRESS/{p}"),
            _ => self.status.as_str().to_owned(),
        };
        InvalidTransition {
            from,
            to: to.to_owned(),
        }
    }
}

/// How serious a log entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// For the record.
    Info,
    /// Worth a look; the job goes on.
    Warn,
    /// The job failed or a step was refused.
    Error,
}

/// One entry of a job's error log: what a user reads instead of digging through logs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// When.
    pub time: DateTime<Utc>,
    /// How serious.
    pub level: Level,
    /// The source collection concerned, as `db.collection`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    /// What happened.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn job() -> Job {
        let request = MigrationRequest::from_json(
            r#"{"source":{"uri":"http://a:1"},"target":{"uri":"http://b:2"},"databases":[{"name":"default"}]}"#,
        )
        .unwrap();
        Job::new(Job::new_id(), request, Utc::now())
    }

    #[test]
    fn a_job_never_holds_a_token() {
        let request = MigrationRequest::from_json(
            r#"{"source":{"uri":"http://a:1","token":"root:s3cret"},"target":{"uri":"http://b:2","token":"t0ken"},"databases":[{"name":"default"}]}"#,
        )
        .unwrap();
        let j = Job::new(Job::new_id(), request, Utc::now());
        assert!(j.request.source.token.as_ref().unwrap().is_redacted());
        assert!(j.request.target.token.as_ref().unwrap().is_redacted());
        let json = serde_json::to_string(&j).unwrap();
        assert!(
            !json.contains("s3cret") && !json.contains("t0ken"),
            "{json}"
        );
    }

    #[test]
    fn phases_move_forward_only() {
        let mut j = job();
        let now = Utc::now();
        assert!(
            j.enter(Phase::Copy, now).is_err(),
            "PENDING goes to preflight first"
        );
        j.enter(Phase::Preflight, now).unwrap();
        assert_eq!(j.status, JobStatus::InProgress);
        assert!(j.started_at.is_some());
        j.enter(Phase::Schema, now).unwrap();
        j.enter(Phase::Copy, now).unwrap();
        let err = j.enter(Phase::Schema, now).unwrap_err();
        assert_eq!(err.from, "IN_PROGRESS/copy");
        assert!(
            j.enter(Phase::Copy, now).is_err(),
            "entering the same phase twice is refused"
        );
    }

    #[test]
    fn a_step_lease_ends_with_its_step() {
        let mut j = job();
        let now = Utc::now();
        let lease = |owner: &str| {
            Some(Lease {
                owner: owner.into(),
                expires_at: now + Duration::seconds(60),
            })
        };
        j.enter(Phase::Preflight, now).unwrap();
        j.step_lease = lease("plan");
        j.enter(Phase::Schema, now).unwrap();
        assert_eq!(
            j.step_lease,
            lease("plan"),
            "the plan goes on through schema"
        );
        j.enter(Phase::Copy, now).unwrap();
        assert_eq!(j.step_lease, None, "the plan ended");
        j.enter(Phase::Index, now).unwrap();
        j.step_lease = lease("finish");
        j.enter(Phase::Verify, now).unwrap();
        assert_eq!(j.step_lease, lease("finish"));
        j.finish(JobStatus::Successful, None, now).unwrap();
        assert_eq!(j.step_lease, None);
    }

    #[test]
    fn remigration_goes_back_to_schema_from_verify_only() {
        let mut j = job();
        let now = Utc::now();
        j.collections.push(CollectionReport {
            database: "default".into(),
            source: "c".into(),
            target_database: "default".into(),
            target: "c".into(),
            status: CollectionStatus::Mismatch,
            source_count: Some(10),
            target_count: Some(9),
            matches: Some(false),
            remigrations: 0,
            mismatches: Vec::new(),
            content: None,
            indexes: Vec::new(),
            repairs: Vec::new(),
            repaired_ranges: 0,
            ranges_counted: None,
            write: None,
        });
        let mismatch = [CountResult {
            database: "default".into(),
            source: "c".into(),
            source_count: 10,
            target_count: 9,
        }];
        j.enter(Phase::Preflight, now).unwrap();
        assert!(j.remigrate(&mismatch, now).is_err(), "only from verify");
        for p in [Phase::Schema, Phase::Copy, Phase::Index, Phase::Verify] {
            j.enter(p, now).unwrap();
        }
        j.remigrate(&mismatch, now).unwrap();
        assert_eq!(j.phase, Some(Phase::Schema));
        let c = &j.collections[0];
        assert_eq!(
            (c.remigrations, c.status, c.matches),
            (1, CollectionStatus::Pending, None)
        );
        assert_eq!(
            (c.mismatches[0].source_count, c.mismatches[0].target_count),
            (10, 9)
        );
        // New tasks for the new migration, with ids of their own.
        let t = Task::new("j", "default", "c", "default", "c", Some("p"), 10).for_generation(1);
        assert_eq!((t.id.as_str(), t.generation), ("default/c/p/1", 1));
    }

    #[test]
    fn success_only_after_verify_and_terminal_is_final() {
        let mut j = job();
        let now = Utc::now();
        j.enter(Phase::Preflight, now).unwrap();
        assert!(j.finish(JobStatus::Successful, None, now).is_err());
        j.enter(Phase::Verify, now).unwrap();
        j.finish(JobStatus::Successful, None, now).unwrap();
        assert!(j
            .finish(JobStatus::Failed, Some("late".into()), now)
            .is_err());
        assert!(j.enter(Phase::Verify, now).is_err());
    }

    #[test]
    fn failure_records_phase_and_message() {
        let mut j = job();
        let now = Utc::now();
        j.enter(Phase::Preflight, now).unwrap();
        j.finish(JobStatus::Failed, Some("boom".into()), now)
            .unwrap();
        assert_eq!(
            j.error,
            Some(JobError {
                phase: Some(Phase::Preflight),
                message: "boom".into(),
                problems: Vec::new(),
            })
        );
        assert!(j.finished_at.is_some());
    }

    #[test]
    fn leases_fence_and_expire() {
        let now = Utc::now();
        let ttl = Duration::seconds(10);
        let t = Task::new("j", "db", "c", "db", "c", Some("p"), 100);
        assert!(t.claimable(now));
        let a = t.claimed("a", now, ttl);
        assert_eq!((a.fence, a.runs), (1, 1));
        assert!(!a.claimable(now), "a live lease blocks other claims");
        assert!(a.claimable(now + ttl), "an expired lease does not");
        assert!(a.held_by("a", 1) && !a.held_by("b", 1) && !a.held_by("a", 0));
        assert!(!a.resumed());
        let b = a.claimed("b", now + ttl, ttl);
        assert!(
            b.resumed(),
            "a second claim writes its first batch with upsert"
        );
        assert!(!b.held_by("a", 1), "the old holder is fenced out");
    }

    #[test]
    fn checkpoint_moves_cursor_and_counts() {
        let now = Utc::now();
        let t =
            Task::new("j", "db", "c", "db", "c", None, 100).claimed("a", now, Duration::seconds(5));
        let cp = Checkpoint {
            cursor: Cursor::Int(41),
            rows: 42,
            bytes: 1000,
            next_limit: 200,
            sample: None,
            read_at: None,
        };
        let t2 = t.checkpointed(&cp, now + Duration::seconds(3), Duration::seconds(5));
        assert_eq!(t2.cursor, Some(Cursor::Int(41)));
        assert_eq!(
            (t2.copied, t2.bytes, t2.batches, t2.next_limit),
            (42, 1000, 1, 200)
        );
        assert_eq!(t2.lease.unwrap().expires_at, now + Duration::seconds(8));
        assert_eq!(t.id, "db/c/*/0");
    }
}
