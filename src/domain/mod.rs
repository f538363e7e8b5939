//! The domain: requests, jobs, tasks, their state machine and the report. No I/O lives here.

pub mod cluster;
pub mod job;
pub mod report;
pub mod request;

pub use cluster::{Address, ClusterSpec, TlsSpec};
pub use job::{
    Attempt, Checkpoint, CollectionReport, CollectionStatus, ContentCheck, CountCheck, Cursor,
    Delivery, DeliveryState, InvalidTransition, Job, JobError, JobStatus, Lease, Level, LogEntry,
    Phase, Task, TaskStatus, MAX_STEP_PANICS,
};
pub use report::{Progress, Report};
pub use request::{
    CollectionSpec, DatabaseSpec, FieldError, MigrationRequest, OnCountMismatch, Options,
    PartitionKeyOverride, SchemaOverrides, Secret, VerifyMode, REDACTED,
};
