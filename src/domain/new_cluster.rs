//! A new Zilliz Cloud Dedicated cluster as the target: what the request asks Zilliz Cloud to
//! create (`target.new_cluster`), the record of its creation on the job, and the CU size the
//! dry run recommends for the data to migrate.
//!
//! The record is what makes creation happen once: it is written before the create call (so a
//! later invocation knows a create may have landed and looks for the cluster by name instead
//! of creating another) and after it (the cluster id, and the generated password sealed).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::cluster::printable;
use super::request::FieldError;
use super::tier::Tier;

/// The CU sizes Zilliz Cloud's Standard plan offers (Create Dedicated Cluster (V2)).
pub const STANDARD_CU_SIZES: [u32; 10] = [1, 2, 4, 8, 12, 16, 20, 24, 28, 32];
/// The largest CU size of the Enterprise and Business Critical plans.
pub const MAX_CU_SIZE: u32 = 1024;
/// The plans a Dedicated cluster can be created on.
pub const PLANS: [&str; 3] = ["Standard", "Enterprise", "BusinessCritical"];
/// The CU types Zilliz Cloud offers, and the 768-d vectors one CU of each holds (its published
/// capacity, used to size a cluster for the data).
pub const CU_TYPES: [(&str, u64); 3] = [
    ("Performance-optimized", 1_500_000),
    ("Capacity-optimized", 5_000_000),
    ("Tiered-storage", 20_000_000),
];
/// The bytes of one 768-d float vector: the unit of the published CU capacities.
const BYTES_PER_768D: u64 = 768 * 4;
/// The share of a cluster's capacity the migrated data may fill, leaving room to grow.
const FILL: f64 = 0.7;

/// The Dedicated cluster to create as the target, in the fields of Zilliz Cloud's Create
/// Dedicated Cluster (V2) call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self")]
#[serde(deny_unknown_fields)]
pub struct NewCluster {
    /// The project to create it in (`proj-…`).
    pub project_id: String,
    /// The cloud region (`aws-us-west-2`).
    pub region_id: String,
    /// `Standard`, `Enterprise` or `BusinessCritical`.
    pub plan: String,
    /// `Performance-optimized`, `Capacity-optimized` or `Tiered-storage`.
    pub cu_type: String,
    /// Its CU size (Standard: 1, 2, 4, 8, 12 … 32; the others up to 1,024).
    pub cu_size: u32,
    /// Its name: how an interrupted creation is found again, so unique in the project.
    pub name: String,
}

impl NewCluster {
    /// Checks every field; the error names it (`target.new_cluster.cu_size`).
    pub(crate) fn validate(&self, path: &str) -> Result<(), FieldError> {
        let field = |name: &str| format!("{path}.{name}");
        for (name, value) in [
            ("project_id", &self.project_id),
            ("region_id", &self.region_id),
            ("name", &self.name),
        ] {
            if value.trim().is_empty() || value.len() > 64 || value.chars().any(char::is_control) {
                return Err(FieldError::new(
                    field(name),
                    "must be 1 to 64 printable characters",
                ));
            }
        }
        if !PLANS.contains(&self.plan.as_str()) {
            return Err(FieldError::new(
                field("plan"),
                format!(
                    "`{}` is not a Dedicated plan: give one of {}",
                    printable(&self.plan),
                    PLANS.join(", ")
                ),
            ));
        }
        if !CU_TYPES.iter().any(|(t, _)| *t == self.cu_type) {
            let types: Vec<&str> = CU_TYPES.iter().map(|(t, _)| *t).collect();
            return Err(FieldError::new(
                field("cu_type"),
                format!(
                    "`{}` is not a CU type: give one of {}",
                    printable(&self.cu_type),
                    types.join(", ")
                ),
            ));
        }
        if !cu_sizes(&self.plan).any(|s| s == self.cu_size) {
            return Err(FieldError::new(
                field("cu_size"),
                format!(
                    "{} is not a CU size of the {} plan: give 1, 2, 4, 8, then multiples of 4 up to {}",
                    self.cu_size,
                    self.plan,
                    if self.plan == "Standard" { 32 } else { MAX_CU_SIZE }
                ),
            ));
        }
        Ok(())
    }

    /// The write cap of the cluster to create, MB/s.
    pub fn write_cap_mb_per_s(&self) -> f64 {
        Tier::Dedicated.write_cap_mb_per_s(Some(self.cu_size))
    }
}

/// The CU sizes `plan` offers, smallest first: 1, 2, 4, 8, then steps of 4 to 64, 8 to 256
/// and 16 to 1,024 (Standard stops at 32).
fn cu_sizes(plan: &str) -> impl Iterator<Item = u32> + '_ {
    let larger = (12..=64)
        .step_by(4)
        .chain((72..=256).step_by(8))
        .chain((272..=MAX_CU_SIZE).step_by(16));
    [1, 2, 4, 8]
        .into_iter()
        .chain(larger)
        .filter(move |s| plan != "Standard" || STANDARD_CU_SIZES.contains(s))
}

/// The smallest CU size of `plan` whose `cu_type` capacity holds `bytes` of vectors at 70 %
/// full; `None` when even the largest does not.
pub fn recommended_cu_size(plan: &str, cu_type: &str, bytes: u64) -> Option<u32> {
    let per_cu = CU_TYPES.iter().find(|(t, _)| *t == cu_type)?.1 * BYTES_PER_768D;
    let needed = bytes as f64 / (per_cu as f64 * FILL);
    cu_sizes(plan).find(|s| f64::from(*s) >= needed)
}

/// The creation of `target.new_cluster`, as far as it went: kept on the job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provisioning {
    /// Create calls made (recorded before each): more than zero means a cluster may exist
    /// that no reply named, to be found by name before creating again.
    pub create_calls: u32,
    /// When the first create call was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<DateTime<Utc>>,
    /// The new cluster's id, once the control plane named it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// True when the id was found by the cluster's name after a create whose reply was lost.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub found_by_name: bool,
    /// The cluster's status when last asked (`CREATING`, `RUNNING`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    /// When the status was last asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<DateTime<Utc>>,
    /// When it was first seen `RUNNING`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_at: Option<DateTime<Utc>>,
    /// The cluster's admin user, as the create call named it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The generated password, sealed by the Lambda deployment (never kept in clear, never
    /// shown; the local CLI keeps no copy at all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_password: Option<String>,
    /// Where the user finds the cluster's password.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password_note: String,
}

impl Provisioning {
    /// One line for the status and the jobs page: the cluster, its status, how it was found.
    pub fn summary(&self) -> String {
        let id = self.cluster_id.as_deref().unwrap_or("(no id yet)");
        let status = if self.status.is_empty() {
            "being created"
        } else {
            &self.status
        };
        let checked = self
            .checked_at
            .map(|t| format!(" at {}", t.format("%H:%M:%S UTC")))
            .unwrap_or_default();
        let how = if self.found_by_name {
            ", found again by its name"
        } else {
            ""
        };
        format!(
            "new target cluster {id}: {status}{checked} ({} create call(s){how})",
            self.create_calls
        )
    }
}

/// Where the password of a new cluster is found, for the record and the outcome.
pub const PASSWORD_NOTE: &str = "Zilliz Cloud generated the cluster's password at creation; vecmigrate never shows or logs it (the Lambda deployment keeps it sealed on the job, the CLI keeps no copy). Reset it in the Zilliz Cloud console (the cluster's Users page), or connect with an API key as this job did.";

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> NewCluster {
        NewCluster {
            project_id: "proj-1".into(),
            region_id: "aws-us-west-2".into(),
            plan: "Standard".into(),
            cu_type: "Performance-optimized".into(),
            cu_size: 4,
            name: "orders-eu".into(),
        }
    }

    #[test]
    fn every_field_is_checked_by_name() {
        assert!(spec().validate("target.new_cluster").is_ok());
        type Change = fn(&mut NewCluster);
        let cases: [(Change, &str); 4] = [
            (|n| n.plan = "Serverless".into(), "target.new_cluster.plan"),
            (|n| n.cu_type = "fast".into(), "target.new_cluster.cu_type"),
            (|n| n.cu_size = 64, "target.new_cluster.cu_size"),
            (|n| n.name = " ".into(), "target.new_cluster.name"),
        ];
        for (change, path) in cases {
            let mut n = spec();
            change(&mut n);
            let e = n.validate("target.new_cluster").unwrap_err();
            assert_eq!(e.field, path, "{e}");
        }
        let mut big = spec();
        big.plan = "Enterprise".into();
        big.cu_size = 64;
        assert!(big.validate("target.new_cluster").is_ok());
        big.cu_size = 66;
        assert!(big.validate("target.new_cluster").is_err());
    }

    #[test]
    fn the_recommended_size_holds_the_data_at_seventy_percent() {
        // 100M × 768-d (307 GB of vectors) on Performance-optimized CUs (1.5M each): 96 CUs
        // at 70 % full; Standard cannot hold it, Enterprise can.
        let bytes = 100_000_000 * BYTES_PER_768D;
        assert_eq!(
            recommended_cu_size("Standard", "Performance-optimized", bytes),
            None
        );
        assert_eq!(
            recommended_cu_size("Enterprise", "Performance-optimized", bytes),
            Some(96)
        );
        assert_eq!(
            recommended_cu_size("Standard", "Capacity-optimized", bytes),
            Some(32)
        );
        assert_eq!(
            recommended_cu_size("Standard", "Performance-optimized", 1000),
            Some(1)
        );
    }
}
