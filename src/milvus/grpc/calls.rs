//! One call and its answer: a gRPC error or Milvus's own status (failures often come back
//! with gRPC OK) becomes a [`ClusterError`] that says what happened and whether to try again.

use ::milvus::proto::common::{ErrorCode, Status};

use super::{Client, MilvusCluster};
use crate::milvus::ClusterError;
use crate::tls::TlsFailure;

/// A gRPC status code's name, as the gRPC specification writes it (`UNAVAILABLE`).
pub(super) fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
/// A response with Milvus's own status in it (failures often come back with gRPC OK).
pub(super) trait Answer {
    /// The status, if the response has one.
    fn status(&self) -> Option<&Status>;
}

/// Calls whose whole response is a status.
impl Answer for Status {
    fn status(&self) -> Option<&Status> {
        Some(self)
    }
}

macro_rules! answers_with_status {
    ($($response:ty),* $(,)?) => {
        $(impl Answer for $response {
            fn status(&self) -> Option<&Status> {
                self.status.as_ref()
            }
        })*
    };
}

answers_with_status!(
    ::milvus::proto::milvus::ListDatabasesResponse,
    ::milvus::proto::milvus::ShowCollectionsResponse,
    ::milvus::proto::milvus::DescribeCollectionResponse,
    ::milvus::proto::milvus::ShowPartitionsResponse,
    ::milvus::proto::milvus::DescribeIndexResponse,
    ::milvus::proto::milvus::GetLoadStateResponse,
    ::milvus::proto::milvus::QueryResults,
    ::milvus::proto::milvus::MutationResult,
    ::milvus::proto::milvus::FlushResponse,
    ::milvus::proto::milvus::GetVersionResponse,
);

/// Milvus's status as a result: the reason and the server's `retriable` flag when it failed.
// `error_code` is deprecated in the proto, but Milvus 2.3.5 still reports failures only there.
#[allow(deprecated)]
pub(super) fn ok_status(status: Option<&Status>) -> Result<(), (String, bool)> {
    match status {
        None => Ok(()),
        Some(s) if s.code == 0 && s.error_code == ErrorCode::Success as i32 => Ok(()),
        Some(s) => Err((
            if s.reason.is_empty() {
                format!("error code {}", s.code.max(s.error_code))
            } else {
                s.reason.clone()
            },
            s.retriable,
        )),
    }
}

impl MilvusCluster {
    pub(super) fn call_error(&self, operation: String, status: tonic::Status) -> ClusterError {
        use tonic::Code;
        // A reconnection in the middle of a job can meet a certificate that changed.
        if let Some(failure) = TlsFailure::find(&status) {
            return ClusterError::Tls {
                role: self.role,
                address: self.address.authority(),
                detail: failure.explain(&format!("{}.tls", self.role)),
            };
        }
        match status.code() {
            Code::Unauthenticated | Code::PermissionDenied => ClusterError::Unauthenticated {
                role: self.role,
                uri: self.uri.clone(),
                detail: status.message().to_owned(),
            },
            code => ClusterError::Call {
                role: self.role,
                operation,
                detail: format!("{}: {}", code_name(code), status.message()),
                transient: matches!(
                    code,
                    Code::Unavailable
                        | Code::DeadlineExceeded
                        | Code::ResourceExhausted
                        | Code::Aborted
                ),
            },
        }
    }

    pub(super) fn status_error(
        &self,
        operation: String,
        (detail, retriable): (String, bool),
    ) -> ClusterError {
        let lower = detail.to_lowercase();
        if lower.contains("auth") && (lower.contains("fail") || lower.contains("denied")) {
            return ClusterError::Unauthenticated {
                role: self.role,
                uri: self.uri.clone(),
                detail,
            };
        }
        ClusterError::Call {
            role: self.role,
            operation,
            detail,
            transient: retriable,
        }
    }

    /// One unary call: `call` gets a client, and the gRPC error or the response's own status
    /// becomes a [`ClusterError`] naming `operation`.
    pub(super) async fn unary<T, F, Fut>(
        &self,
        operation: impl Fn() -> String,
        call: F,
    ) -> Result<T, ClusterError>
    where
        T: Answer,
        F: FnOnce(Client) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let response = call(self.client.clone())
            .await
            .map_err(|e| self.call_error(operation(), e))?
            .into_inner();
        ok_status(response.status()).map_err(|e| self.status_error(operation(), e))?;
        Ok(response)
    }
}
