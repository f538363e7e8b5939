//! What a failed cluster call means: [`ClusterError`], with the words a user needs to act on
//! it, and [`Failure`], what it means for the caller (wait, slow down, or stop).

use super::Role;

/// A failed cluster call, with what a user needs to act on it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    /// The server could not be reached at all.
    #[error(
        "cannot reach the {role} cluster at {uri}: {detail} (is it running? check {role}.uri)"
    )]
    Unreachable {
        /// Which cluster.
        role: Role,
        /// Where we tried.
        uri: String,
        /// The transport's words.
        detail: String,
    },
    /// The TLS handshake failed: a certificate problem, or a scheme that does not match the
    /// server (`https` to a plaintext port, `http` to a TLS one). Never worth retrying.
    #[error("TLS with the {role} cluster at {address} failed: {detail}")]
    Tls {
        /// Which cluster.
        role: Role,
        /// `host:port`.
        address: String,
        /// What failed and what to do.
        detail: String,
    },
    /// The server refused the credentials.
    #[error("the {role} cluster at {uri} refused the credentials: {detail} (check {role}.token)")]
    Unauthenticated {
        /// Which cluster.
        role: Role,
        /// Where.
        uri: String,
        /// The server's words.
        detail: String,
    },
    /// A call failed.
    #[error("{role} cluster: {operation} failed: {detail}{}", .failure.advice(*.role))]
    Call {
        /// Which cluster.
        role: Role,
        /// The operation, with its object (`insert into db.collection`).
        operation: String,
        /// The server's words.
        detail: String,
        /// What the failure means for the caller.
        failure: Failure,
    },
    /// The cluster's token could not be found (Secrets Manager, a sealed token).
    #[error("cannot get the {role} cluster's token: {detail}")]
    Credentials {
        /// Which cluster.
        role: Role,
        /// What failed (never the token).
        detail: String,
    },
    /// The server answered something that breaks an invariant we rely on.
    #[error("{role} cluster: {0}", role = .1)]
    Protocol(String, Role),
    /// Something answers at the address, but not as a Milvus gRPC server (an HTTP/1.1 port
    /// such as Milvus's 9091 metrics port, a web server): never worth retrying.
    #[error("the {role} cluster at {uri} answered, but not as a Milvus gRPC server ({detail}); check {role}.uri: Milvus serves gRPC on port 19530 by default (9091 is its HTTP metrics port)")]
    NotMilvus {
        /// Which cluster.
        role: Role,
        /// Where.
        uri: String,
        /// What the connection said.
        detail: String,
    },
    /// Zilliz Cloud's control plane could not resolve a cluster given by id.
    #[error("the {role} cluster {cluster_id} {detail}")]
    ZillizCloud {
        /// Which cluster.
        role: Role,
        /// The id it was given by.
        cluster_id: String,
        /// What the control plane said, and what to do.
        detail: String,
        /// Whether asking again may succeed (the control plane was unreachable or busy).
        transient: bool,
    },
}

/// What a failed call means for whoever made it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Failure {
    /// Trying again will not help (a bad request, a missing collection, a refused schema).
    Permanent,
    /// The cluster or the network is down for now (connection refused or reset,
    /// `UNAVAILABLE`, `DEADLINE_EXCEEDED`, a restart): wait it out.
    Outage,
    /// The cluster asks for fewer or smaller requests (its rate limiter, gRPC
    /// `RESOURCE_EXHAUSTED`); `rate` is its hint, in bytes per second for writes.
    Throttled {
        /// The `rate=` of the server's message.
        rate: Option<f64>,
    },
    /// The cluster is full (quota exceeded, disk or memory quota): nothing gets in until
    /// someone makes room.
    Full,
}

impl Failure {
    /// What to do, appended to the error's message.
    fn advice(&self, role: Role) -> String {
        match self {
            Failure::Full => format!(
                "; the {role} cluster is full: free space on it or raise its quota (a larger plan or more CUs on Zilliz Cloud), then start the job again"
            ),
            _ => String::new(),
        }
    }
}

impl ClusterError {
    /// What the failure means: every error but a failed call is either an outage (a cluster
    /// that cannot be reached) or permanent.
    pub fn failure(&self) -> Failure {
        match self {
            ClusterError::Call { failure, .. } => *failure,
            ClusterError::Unreachable { .. } => Failure::Outage,
            ClusterError::ZillizCloud { transient, .. } if *transient => Failure::Outage,
            _ => Failure::Permanent,
        }
    }

    /// Which cluster failed.
    pub fn role(&self) -> Role {
        match self {
            ClusterError::Unreachable { role, .. }
            | ClusterError::Tls { role, .. }
            | ClusterError::Unauthenticated { role, .. }
            | ClusterError::Call { role, .. }
            | ClusterError::Credentials { role, .. }
            | ClusterError::ZillizCloud { role, .. }
            | ClusterError::NotMilvus { role, .. }
            | ClusterError::Protocol(_, role) => *role,
        }
    }

    /// Whether trying the same call again may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self.failure(), Failure::Outage | Failure::Throttled { .. })
    }
}
