//! Zilliz Cloud plan tiers: what the control plane says about a cluster, which tier a cluster
//! is on (from that answer, or from the cluster id its host names), the Offline Migration rule
//! of which tiers may migrate to which, and each tier's published limits (collections,
//! partitions, write rate).

use serde::{Deserialize, Serialize};

/// What Zilliz Cloud's control plane (`GET /v2/clusters/{id}`) said about a cluster: kept on
/// the job record beside the id (never the API key).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ZillizCluster {
    /// The cluster id.
    pub cluster_id: String,
    /// Its public endpoint (`connectAddress`).
    pub endpoint: String,
    /// Its plan (`Free`, `Serverless`, `Standard`, `Enterprise`, `BusinessCritical`).
    pub plan: String,
    /// Its status when the job was planned (`RUNNING`).
    pub status: String,
    /// Its CU size (0 for Free and Serverless).
    pub cu_size: u32,
    /// Its cloud region (`aws-us-west-2`).
    pub region_id: String,
}

/// A Zilliz Cloud plan tier, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Tier {
    /// Free clusters (ids `in03-`).
    Free,
    /// Serverless clusters (ids `in05-`).
    Serverless,
    /// Dedicated clusters: the plans Standard, Enterprise, BusinessCritical (ids `in01-`).
    Dedicated,
}

impl Tier {
    /// The tier's name, as Zilliz Cloud writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Free => "Free",
            Tier::Serverless => "Serverless",
            Tier::Dedicated => "Dedicated",
        }
    }

    /// The tier a cluster id's prefix names (`in01-` Dedicated, `in03-` Free, `in05-`
    /// Serverless).
    pub fn of_id(cluster_id: &str) -> Option<Tier> {
        match cluster_id.get(..5)? {
            "in01-" => Some(Tier::Dedicated),
            "in03-" => Some(Tier::Free),
            "in05-" => Some(Tier::Serverless),
            _ => None,
        }
    }

    /// The tier of a cluster the control plane described: its `plan`, except that an
    /// `in03-` cluster is Free even where the plan reads `Serverless` (the control plane
    /// reports the project's plan for Free clusters).
    pub fn of_plan(cluster_id: &str, plan: &str) -> Option<Tier> {
        if Tier::of_id(cluster_id) == Some(Tier::Free) {
            return Some(Tier::Free);
        }
        match plan {
            "Free" => Some(Tier::Free),
            "Serverless" => Some(Tier::Serverless),
            "Standard" | "Enterprise" | "BusinessCritical" | "Dedicated" => Some(Tier::Dedicated),
            _ => Tier::of_id(cluster_id),
        }
    }

    /// The most collections a cluster of this tier holds (Dedicated: 64 per CU, at most
    /// 4,096; `None` when its CU size is unknown).
    pub fn max_collections(self, cu_size: Option<u32>) -> Option<u64> {
        match self {
            Tier::Free => Some(5),
            Tier::Serverless => Some(100),
            Tier::Dedicated => cu_size
                .filter(|cu| *cu > 0)
                .map(|cu| (64 * u64::from(cu)).min(4096)),
        }
    }

    /// The write rate a cluster of this tier accepts, in MB/s (10^6 bytes): Free 2,
    /// Serverless 10, Dedicated 8 at 1–2 CU up to 64 at 256 CU or more. Zilliz publishes the
    /// Dedicated figures at those two ends; between them the cap grows by the same factor per
    /// doubling of CUs (2^(3/7), about 1.35). An unknown CU size counts as the smallest.
    pub fn write_cap_mb_per_s(self, cu_size: Option<u32>) -> f64 {
        match self {
            Tier::Free => 2.0,
            Tier::Serverless => 10.0,
            Tier::Dedicated => {
                let cu = f64::from(cu_size.unwrap_or(1).clamp(2, 256));
                8.0 * 2f64.powf((cu / 2.0).log2() * 3.0 / 7.0)
            }
        }
    }
}

/// The most partitions one collection may have on Zilliz Cloud.
pub const MAX_PARTITIONS_PER_COLLECTION: u64 = 1024;

/// Where a cluster's tier came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TierSource {
    /// The control plane's `plan` for a cluster given by id.
    ControlPlane,
    /// The cluster id a Zilliz Cloud host name carries.
    Host,
    /// The plan and CU size `target.new_cluster` asks for.
    Request,
}

/// The cluster id a Zilliz Cloud host names (`in03-….serverless.{region}.vectordb.zillizcloud.com`,
/// `in01-….{region}.vectordb.zillizcloud.com`, and the China region's `zilliz.com.cn`);
/// `None` for other hosts.
pub fn cluster_id_of_host(host: &str) -> Option<String> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let zilliz = ["zillizcloud.com", "zilliz.com", "zilliz.com.cn"]
        .iter()
        .any(|domain| host.ends_with(&format!(".{domain}")));
    let first = host.split('.').next()?;
    (zilliz && Tier::of_id(first).is_some() && first.len() > 5).then(|| first.to_owned())
}

/// The Offline Migration rule's answer for one pair of clusters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierVerdict {
    /// False when a side's tier is unknown (not a Zilliz Cloud cluster): nothing was checked.
    pub applied: bool,
    /// Whether the move is allowed (true when the rule was not applied).
    pub allowed: bool,
    /// The source's tier, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_tier: Option<Tier>,
    /// The target's tier, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_tier: Option<Tier>,
    /// Why, in words fit for the user.
    pub reason: String,
}

/// Zilliz Cloud's Offline Migration table: Free → Dedicated; Serverless → Serverless or
/// Dedicated; Dedicated → Dedicated; nothing else (Free → Free and Free → Serverless are an
/// upgrade of the Free cluster instead; every other refused move goes to a lower tier).
pub fn migration_rule(source: Option<Tier>, target: Option<Tier>) -> TierVerdict {
    let verdict = |applied, allowed, reason: String| TierVerdict {
        applied,
        allowed,
        source_tier: source,
        target_tier: target,
        reason,
    };
    let (Some(s), Some(t)) = (source, target) else {
        let unknown = match (source, target) {
            (None, None) => "neither cluster is",
            (None, _) => "the source is not",
            _ => "the target is not",
        };
        return verdict(
            false,
            true,
            format!("not applied: {unknown} a Zilliz Cloud cluster (its plan tier is unknown)"),
        );
    };
    let (from, to) = (s.as_str(), t.as_str());
    match (s, t) {
        (Tier::Free, Tier::Dedicated)
        | (Tier::Serverless, Tier::Serverless | Tier::Dedicated)
        | (Tier::Dedicated, Tier::Dedicated) => {
            verdict(true, true, format!("{from} → {to} is supported"))
        }
        (Tier::Free, Tier::Free | Tier::Serverless) => verdict(
            true,
            false,
            format!(
                "{from} → {to} is not supported: upgrade the Free cluster instead (Zilliz Cloud console: the cluster's Manage Cluster → Upgrade), or migrate it to a Dedicated cluster"
            ),
        ),
        _ => verdict(
            true,
            false,
            format!(
                "{from} → {to} is not supported: a migration cannot go to a lower plan tier; choose a target cluster on the {from} tier or above"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offline_migration_table_holds_for_every_pair() {
        use Tier::*;
        let table = [
            (Free, Free, false),
            (Free, Serverless, false),
            (Free, Dedicated, true),
            (Serverless, Free, false),
            (Serverless, Serverless, true),
            (Serverless, Dedicated, true),
            (Dedicated, Free, false),
            (Dedicated, Serverless, false),
            (Dedicated, Dedicated, true),
        ];
        for (s, t, allowed) in table {
            let v = migration_rule(Some(s), Some(t));
            assert!(v.applied);
            assert_eq!(v.allowed, allowed, "{s:?} → {t:?}: {}", v.reason);
        }
        assert!(migration_rule(Some(Free), Some(Serverless))
            .reason
            .contains("upgrade the Free cluster"));
        assert!(migration_rule(Some(Dedicated), Some(Serverless))
            .reason
            .contains("lower plan tier"));
        let unknown = migration_rule(None, Some(Free));
        assert!(!unknown.applied && unknown.allowed);
        assert!(unknown.reason.contains("the source is not"));
    }

    #[test]
    fn tiers_come_from_plans_ids_and_hosts() {
        assert_eq!(
            Tier::of_plan("in01-abc", "Enterprise"),
            Some(Tier::Dedicated)
        );
        assert_eq!(
            Tier::of_plan("in01-abc", "BusinessCritical"),
            Some(Tier::Dedicated)
        );
        assert_eq!(
            Tier::of_plan("in05-abc", "Serverless"),
            Some(Tier::Serverless)
        );
        // A Free cluster whose project's plan reads Serverless.
        assert_eq!(Tier::of_plan("in03-abc", "Serverless"), Some(Tier::Free));
        assert_eq!(Tier::of_plan("in09-abc", "Mystery"), None);
        assert_eq!(
            cluster_id_of_host("in03-0123abcd.serverless.gcp-us-west1.vectordb.zillizcloud.com"),
            Some("in03-0123abcd".into())
        );
        assert_eq!(
            cluster_id_of_host("in01-89ab.aws-us-west-2.vectordb.zillizcloud.com"),
            Some("in01-89ab".into())
        );
        assert_eq!(
            cluster_id_of_host("in05-1.ali-cn-hangzhou.vectordb.zilliz.com.cn"),
            Some("in05-1".into())
        );
        assert_eq!(cluster_id_of_host("in01-x.example.com"), None);
        assert_eq!(cluster_id_of_host("milvus.internal"), None);
        assert_eq!(cluster_id_of_host("127.0.0.1"), None);
    }

    #[test]
    fn limits_follow_the_plan_and_cus() {
        assert_eq!(Tier::Free.max_collections(None), Some(5));
        assert_eq!(Tier::Serverless.max_collections(Some(0)), Some(100));
        assert_eq!(Tier::Dedicated.max_collections(Some(2)), Some(128));
        assert_eq!(Tier::Dedicated.max_collections(Some(100)), Some(4096));
        assert_eq!(Tier::Dedicated.max_collections(None), None);
        let cap = |cu| Tier::Dedicated.write_cap_mb_per_s(Some(cu));
        assert_eq!(cap(1), 8.0);
        assert_eq!(cap(2), 8.0);
        assert!((cap(256) - 64.0).abs() < 1e-9);
        assert!((cap(512) - 64.0).abs() < 1e-9);
        assert!(cap(8) > cap(4) && cap(4) > cap(2));
        assert_eq!(Tier::Free.write_cap_mb_per_s(None), 2.0);
        assert_eq!(Tier::Serverless.write_cap_mb_per_s(None), 10.0);
    }
}
