//! The domain: requests, jobs, tasks, their state machine and the report. No I/O lives here.

pub mod job;
pub mod report;
pub mod request;

pub use job::{
    Attempt, Checkpoint, CollectionReport, CollectionStatus, ContentCheck, CountCheck, Cursor,
    Delivery, DeliveryState, InvalidTransition, Job, JobError, JobStatus, Lease, Level, LogEntry,
    Phase, Task, TaskStatus,
};
pub use report::{Progress, Report};
pub use request::{
    ClusterSpec, CollectionSpec, DatabaseSpec, FieldError, MigrationRequest, OnCountMismatch,
    Options, PartitionKeyOverride, SchemaOverrides, Secret, VerifyMode, REDACTED,
};
