//! One call and its answer: a gRPC error or Milvus's own status (failures often come back
//! with gRPC OK) becomes a [`ClusterError`] that says what happened and whether to try again.

use ::milvus::proto::common::{ErrorCode, Status};

use super::{Client, MilvusCluster};
use crate::milvus::{ClusterError, Failure};
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
    ::milvus::proto::milvus::ImportResponse,
    ::milvus::proto::milvus::GetImportStateResponse,
    ::milvus::proto::milvus::ListImportTasksResponse,
);

/// A failed status, as Milvus sent it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Refusal {
    /// The server's words.
    pub(super) reason: String,
    /// The server's `retriable` flag.
    pub(super) retriable: bool,
    /// `code` (Milvus 2.4+'s error codes) and the legacy `error_code`.
    pub(super) codes: (i32, i32),
}

/// Milvus's status as a result.
// `error_code` is deprecated in the proto, but Milvus 2.3.5 still reports failures only there.
#[allow(deprecated)]
pub(super) fn ok_status(status: Option<&Status>) -> Result<(), Refusal> {
    match status {
        None => Ok(()),
        Some(s) if s.code == 0 && s.error_code == ErrorCode::Success as i32 => Ok(()),
        Some(s) => Err(Refusal {
            reason: if s.reason.is_empty() {
                format!("error code {}", s.code.max(s.error_code))
            } else {
                s.reason.clone()
            },
            retriable: s.retriable,
            codes: (s.code, s.error_code),
        }),
    }
}

/// Milvus 2.4's code for "rate limit exceeded" (`merr.ErrServiceRateLimit`).
const CODE_RATE_LIMIT: i32 = 8;
/// Milvus 2.4's code for "quota exceeded" (`merr.ErrServiceQuotaExceeded`).
const CODE_QUOTA_EXCEEDED: i32 = 9;
/// Milvus's code for "collection not loaded" (`merr.ErrCollectionNotLoaded`).
const CODE_NOT_LOADED: i32 = 101;

/// What a failed status means: Milvus 2.2+ answers an excess write with gRPC OK and a status
/// of code 8 / `RateLimit` ("rate limit exceeded[rate=N]"), and a full cluster with code 9 /
/// `ForceDeny`, `MemoryQuotaExhausted` or `DiskQuotaExhausted` ("quota exceeded").
pub(super) fn status_failure(refusal: &Refusal) -> Failure {
    let (code, legacy) = refusal.codes;
    let reason = refusal.reason.to_lowercase();
    let full = code == CODE_QUOTA_EXCEEDED
        || [
            ErrorCode::ForceDeny,
            ErrorCode::MemoryQuotaExhausted,
            ErrorCode::DiskQuotaExhausted,
        ]
        .iter()
        .any(|c| *c as i32 == legacy)
        || reason.contains("quota exceeded")
        || reason.contains("quota exhausted");
    if full {
        return Failure::Full;
    }
    if code == CODE_RATE_LIMIT
        || legacy == ErrorCode::RateLimit as i32
        || reason.contains("rate limit exceeded")
    {
        return Failure::Throttled {
            rate: rate_hint(&refusal.reason),
        };
    }
    // A restarted server (re)loads its collections: until it has, queries are refused as "not
    // loaded". Waited out like an outage (Milvus Lite never reloads by itself: max_outage
    // then fails the job with the server's advice).
    let not_loaded = code == CODE_NOT_LOADED
        || reason.contains("not loaded")
        || reason.contains("in state 'released'");
    if refusal.retriable || not_loaded {
        return Failure::Outage;
    }
    Failure::Permanent
}

/// The `rate=N` of a rate-limit message (`... rate limit exceeded[rate=8388608]`).
pub(super) fn rate_hint(reason: &str) -> Option<f64> {
    let at = reason.find("rate=")? + "rate=".len();
    let digits: String = reason[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    digits.parse::<f64>().ok().filter(|r| *r > 0.0)
}

/// What a gRPC error means. A dropped or refused connection shows as `UNAVAILABLE`,
/// `UNKNOWN: transport error`, `CANCELLED` (the connection closed under the call) or an
/// `INTERNAL` HTTP/2 error; a server restart as any of them.
pub(super) fn grpc_failure(code: tonic::Code, message: &str) -> Failure {
    use tonic::Code;
    let lower = message.to_lowercase();
    let transport = [
        "transport error",
        "connection",
        "broken pipe",
        "reset",
        "h2 protocol",
        "closed",
    ]
    .iter()
    .any(|w| lower.contains(w));
    // A request the server refuses for its size (metadata over its limit) is refused again.
    if lower.contains("metadata size") || lower.contains("header list size") {
        return Failure::Permanent;
    }
    match code {
        Code::Unavailable | Code::DeadlineExceeded | Code::Aborted | Code::Cancelled => {
            Failure::Outage
        }
        // gRPC says RESOURCE_EXHAUSTED for a message over the size limit too: that one will
        // not pass by waiting.
        Code::ResourceExhausted
            if lower.contains("larger than max") || lower.contains("message length") =>
        {
            Failure::Permanent
        }
        Code::ResourceExhausted => Failure::Throttled {
            rate: rate_hint(message),
        },
        Code::Unknown | Code::Internal if transport => Failure::Outage,
        _ => Failure::Permanent,
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
                failure: grpc_failure(code, status.message()),
            },
        }
    }

    pub(super) fn status_error(&self, operation: String, refusal: Refusal) -> ClusterError {
        let lower = refusal.reason.to_lowercase();
        if lower.contains("auth") && (lower.contains("fail") || lower.contains("denied")) {
            return ClusterError::Unauthenticated {
                role: self.role,
                uri: self.uri.clone(),
                detail: refusal.reason,
            };
        }
        ClusterError::Call {
            role: self.role,
            operation,
            failure: status_failure(&refusal),
            detail: refusal.reason,
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
        self.unary_on(self.client.clone(), operation, call).await
    }

    /// [`Self::unary`] on a given client (the generated one, or tonic's own for [`super::write`]).
    pub(super) async fn unary_on<C, T, F, Fut>(
        &self,
        client: C,
        operation: impl Fn() -> String,
        call: F,
    ) -> Result<T, ClusterError>
    where
        T: Answer,
        F: FnOnce(C) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let response = call(client)
            .await
            .map_err(|e| self.call_error(operation(), e))?
            .into_inner();
        ok_status(response.status()).map_err(|e| self.status_error(operation(), e))?;
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(code: i32, legacy: i32, reason: &str, retriable: bool) -> Refusal {
        Refusal {
            reason: reason.into(),
            retriable,
            codes: (code, legacy),
        }
    }

    #[test]
    fn statuses_are_classified_as_milvus_and_zilliz_send_them() {
        let throttled = refusal(
            8,
            49,
            "request is rejected by grpc RateLimiter middleware, please retry later: rate limit exceeded[rate=8388608]",
            false,
        );
        assert_eq!(
            status_failure(&throttled),
            Failure::Throttled {
                rate: Some(8_388_608.0)
            }
        );
        // Milvus 2.3.5 fills only the legacy code; older messages have no rate.
        assert_eq!(
            status_failure(&refusal(0, 49, "rate limit exceeded", false)),
            Failure::Throttled { rate: None }
        );
        assert_eq!(
            status_failure(&refusal(9, 48, "quota exceeded[reason=disk quota]", false)),
            Failure::Full
        );
        assert_eq!(
            status_failure(&refusal(0, 54, "disk quota exhausted", false)),
            Failure::Full
        );
        assert_eq!(
            status_failure(&refusal(1, 1, "service not ready", true)),
            Failure::Outage
        );
        assert_eq!(
            status_failure(&refusal(100, 1, "collection not found", false)),
            Failure::Permanent
        );
        assert_eq!(
            status_failure(&refusal(
                101,
                1,
                "Collection 'c' is in state 'released'; call load() before search/get/query",
                false
            )),
            Failure::Outage
        );
        assert_eq!(rate_hint("rate limit exceeded[rate=0.1]"), Some(0.1));
        assert_eq!(rate_hint("no hint"), None);
    }

    #[test]
    fn transport_failures_are_outages_and_oversize_messages_are_not() {
        use tonic::Code;
        assert_eq!(
            grpc_failure(Code::Unavailable, "tcp connect error"),
            Failure::Outage
        );
        assert_eq!(
            grpc_failure(Code::Unknown, "transport error"),
            Failure::Outage
        );
        assert_eq!(
            grpc_failure(Code::Cancelled, "operation was canceled"),
            Failure::Outage
        );
        assert_eq!(
            grpc_failure(Code::Internal, "h2 protocol error: connection reset"),
            Failure::Outage
        );
        assert_eq!(
            grpc_failure(Code::Internal, "segment lost"),
            Failure::Permanent
        );
        assert_eq!(
            grpc_failure(
                Code::ResourceExhausted,
                "grpc: received message larger than max"
            ),
            Failure::Permanent
        );
        assert!(matches!(
            grpc_failure(Code::ResourceExhausted, "quota"),
            Failure::Throttled { .. }
        ));
        assert_eq!(
            grpc_failure(Code::InvalidArgument, "bad"),
            Failure::Permanent
        );
        assert_eq!(
            grpc_failure(
                Code::Unavailable,
                "received metadata size exceeds hard limit (102433 vs. 16384)"
            ),
            Failure::Permanent
        );
    }
}
