//! Locate: the first thing preflight does. A cluster given by Zilliz Cloud cluster id is
//! resolved through the control plane (its endpoint, plan, CU size, status), and the plan-tier
//! rule of Zilliz's Offline Migration is applied to the pair (clusters given by URI get their
//! tier from the cluster id a Zilliz Cloud host names, or none).

use super::retry::Patience;
use super::{Engine, EngineError};
use crate::domain::tier::migration_rule;
use crate::domain::{ClusterSpec, Problem, Role, TierVerdict, ZillizCluster};

/// The job's two clusters once located.
pub(crate) struct Located {
    /// The source, with its endpoint when it was given by id.
    pub source: ClusterSpec,
    /// The target, likewise.
    pub target: ClusterSpec,
    /// The plan-tier rule's answer.
    pub verdict: TierVerdict,
    /// What keeps the job from going on: a cluster id not resolved, a move the rule refuses.
    pub problems: Vec<Problem>,
}

impl Located {
    /// Whether both clusters have an address to connect to (every cluster id was resolved),
    /// or, for a target still to be created, the source has.
    pub fn reachable(&self) -> bool {
        self.source.address().is_ok()
            && (self.target.address().is_ok() || self.target.to_create().is_some())
    }
}

impl Engine {
    /// What Zilliz Cloud's control plane says about the `role` cluster `spec` gives by id, with
    /// `spec`'s API key (the Zilliz-compatible API checks a caller's key with it).
    pub async fn describe_zilliz(
        &self,
        role: Role,
        spec: &ClusterSpec,
    ) -> Result<ZillizCluster, EngineError> {
        Ok(self.clusters.describe_zilliz(role, spec).await?)
    }

    /// Resolves the clusters given by id and applies the tier rule. A refused or failed
    /// resolution is a problem naming the side and the cluster; an unreachable control plane
    /// is waited out like any outage.
    pub(crate) async fn locate(
        &self,
        p: &Patience<'_>,
        source: &ClusterSpec,
        target: &ClusterSpec,
    ) -> Result<Located, EngineError> {
        let mut problems = Vec::new();
        let mut sides = [
            (Role::Source, source.clone()),
            (Role::Target, target.clone()),
        ];
        for (role, spec) in sides.iter_mut() {
            if spec.cluster_id.is_none() || spec.zilliz.is_some() {
                continue;
            }
            let role = *role;
            let described = {
                let spec = &*spec;
                p.call(|| self.clusters.describe_zilliz(role, spec)).await
            };
            match described {
                Ok(z) => {
                    spec.uri = z.endpoint.clone();
                    spec.zilliz = Some(z);
                }
                Err(EngineError::Cluster(e)) => {
                    problems.push(Problem::at(format!("{role}.cluster_id"), e.to_string()))
                }
                Err(e) => return Err(e),
            }
        }
        let [(_, source), (_, target)] = sides;
        let tier = |s: &ClusterSpec| s.tier().map(|(t, _, _)| t);
        let verdict = migration_rule(tier(&source), tier(&target));
        if !verdict.allowed {
            problems.push(Problem::at(
                "target",
                format!(
                    "Zilliz Cloud's plan-tier rule refuses this migration: {}",
                    verdict.reason
                ),
            ));
        }
        Ok(Located {
            source,
            target,
            verdict,
            problems,
        })
    }
}

/// One line for the job log about a cluster given by id.
pub(crate) fn resolved_line(role: Role, spec: &ClusterSpec) -> Option<String> {
    let z = spec.zilliz.as_ref()?;
    let tier = spec
        .tier()
        .map(|(t, _, _)| t.as_str())
        .unwrap_or("unknown tier");
    Some(format!(
        "the {role} cluster {} is {} at {} (plan {}, {tier}; {} CU; {})",
        z.cluster_id, z.status, z.endpoint, z.plan, z.cu_size, z.region_id
    ))
}
