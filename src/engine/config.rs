//! The engine's settings: one struct, one default for each, read from the same environment
//! variables by the CLI and the Lambda function.

use std::time::Duration;

use crate::milvus::batch::{page_bytes_for, TARGET_PAGE_BYTES};

/// Tunables of the engine (the same for every job it runs).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How long a task or step lease lasts without a checkpoint (`VECMIGRATE_LEASE_TTL`): also
    /// how long a dead worker's task waits before another takes it.
    pub lease_ttl: Duration,
    /// Stop this long before an invocation's deadline (`VECMIGRATE_SAFETY_MARGIN`; never more
    /// than a quarter of a short budget).
    pub safety_margin: Duration,
    /// The most attempts at one outcome webhook (`VECMIGRATE_WEBHOOK_ATTEMPTS`).
    pub webhook_attempts: u32,
    /// The wait before a webhook's second attempt (`VECMIGRATE_WEBHOOK_BACKOFF`); each later
    /// wait is four times longer (capped at an hour, with jitter), unless the receiver says
    /// `Retry-After`.
    pub webhook_backoff: Duration,
    /// How long one webhook attempt may take (`VECMIGRATE_WEBHOOK_TIMEOUT`).
    pub webhook_timeout: Duration,
    /// A partition with at least twice this many entities is cut into primary-key ranges of
    /// about this many or more, so several workers copy it at once
    /// (`VECMIGRATE_MIN_RANGE_ENTITIES`; see `engine::split`).
    pub min_range_entities: u64,
    /// The bytes a copied page aims at: [`TARGET_PAGE_BYTES`] where one worker runs in a
    /// process (a Lambda invocation), less where several share one (see [`Self::for_workers`]).
    pub page_bytes: usize,
    /// How often a cluster being created for a job is asked whether it runs
    /// (`VECMIGRATE_PROVISION_POLL`).
    pub provision_poll: Duration,
    /// How long a job waits for the cluster it created to run before it fails
    /// (`VECMIGRATE_PROVISION_TIMEOUT`).
    pub provision_timeout: Duration,
    /// Where a job stages files for import when its request names no `options.staging`
    /// (`VECMIGRATE_STAGING`: the deployment's `s3://bucket/prefix`).
    pub staging: Option<String>,
    /// The IAM role whose credentials, narrowed to one job's staged files, a target that
    /// imports from S3 is given (`VECMIGRATE_STAGING_READ_ROLE_ARN`).
    pub staging_read_role: Option<String>,
}

impl EngineConfig {
    /// The lease TTL as a duration on the wall clock that leases are stamped with.
    pub(crate) fn lease(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.lease_ttl).unwrap_or(chrono::Duration::seconds(60))
    }

    /// The same settings for `workers` copying in one process: their pages together keep
    /// within [`crate::milvus::batch::PROCESS_PAGE_BYTES`], so memory does not grow with them.
    pub fn for_workers(mut self, workers: usize) -> Self {
        self.page_bytes = page_bytes_for(workers);
        self
    }

    /// The defaults, with what the environment sets; the error names the variable.
    pub fn from_env() -> Result<Self, String> {
        let d = Self::default();
        let duration = |name: &str, default: Duration| {
            crate::env::duration(name, Some(default)).map(|v| v.unwrap_or(default))
        };
        let number = |name: &str, default: u64, max: u64| match crate::env::text(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| format!("{name}=`{v}` is not a number from 1 to {max}")),
        };
        Ok(Self {
            lease_ttl: duration("VECMIGRATE_LEASE_TTL", d.lease_ttl)?,
            safety_margin: duration("VECMIGRATE_SAFETY_MARGIN", d.safety_margin)?,
            webhook_attempts: number(
                "VECMIGRATE_WEBHOOK_ATTEMPTS",
                d.webhook_attempts.into(),
                100,
            )? as u32,
            webhook_backoff: duration("VECMIGRATE_WEBHOOK_BACKOFF", d.webhook_backoff)?,
            webhook_timeout: duration("VECMIGRATE_WEBHOOK_TIMEOUT", d.webhook_timeout)?,
            min_range_entities: number(
                "VECMIGRATE_MIN_RANGE_ENTITIES",
                d.min_range_entities,
                1_000_000_000,
            )?,
            page_bytes: d.page_bytes,
            provision_poll: duration("VECMIGRATE_PROVISION_POLL", d.provision_poll)?,
            provision_timeout: duration("VECMIGRATE_PROVISION_TIMEOUT", d.provision_timeout)?,
            staging: match crate::env::text("VECMIGRATE_STAGING") {
                Some(s) => Some(
                    crate::staging::Location::parse(&s)
                        .map(|_| s)
                        .map_err(|e| format!("VECMIGRATE_STAGING: {e}"))?,
                ),
                None => None,
            },
            staging_read_role: crate::env::text("VECMIGRATE_STAGING_READ_ROLE_ARN"),
        })
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            lease_ttl: Duration::from_secs(60),
            safety_margin: Duration::from_secs(30),
            webhook_attempts: 8,
            webhook_backoff: Duration::from_secs(5),
            webhook_timeout: Duration::from_secs(15),
            min_range_entities: 50_000,
            page_bytes: TARGET_PAGE_BYTES,
            provision_poll: Duration::from_secs(15),
            provision_timeout: Duration::from_secs(3600),
            staging: None,
            staging_read_role: None,
        }
    }
}
