//! The domain: requests, jobs, tasks, their state machine and the report. No I/O lives here.

pub mod cluster;
pub mod delivery;
pub mod job;
pub mod keyline;
pub mod new_cluster;
pub mod pace;
pub mod repair;
pub mod report;
pub mod request;
pub mod secret;
pub mod status;
pub mod task;
pub mod tier;
pub mod tls;

pub use cluster::{Address, ClusterSpec, Role, TlsSpec};
pub use job::{
    Attempt, Checkpoint, CollectionReport, CollectionStatus, CollectionWrite, ContentCheck,
    CountCheck, CountResult, Cursor, Delivery, DeliveryState, IndexedField, InvalidTransition, Job,
    JobError, JobStatus, Lease, Level, LogEntry, Outage, Phase, Problem, Staged, Task, TaskStatus,
    WebhookEvent, WriteRate, MAX_STEP_PANICS,
};
pub use new_cluster::{NewCluster, Provisioning};
pub use repair::{FoundAt, RangeCounts, RangeRepair, RepairReason, RepairedRange};
pub use report::{Progress, Report, TaskReport};
pub use request::{
    CollectionSpec, DatabaseSpec, FieldError, MigrationRequest, OnCountMismatch, Options,
    PartitionKeyOverride, SchemaOverrides, Selection, VerifyMode, WebhookSpec, WriteVia,
};
pub use secret::{Secret, REDACTED};
pub use tier::{Tier, TierVerdict, ZillizCluster};
