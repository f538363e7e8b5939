//! AWS pieces shared by the Lambda entrypoint and the CLI: the SDK configuration (the one place
//! that builds it), Secrets Manager lookups, and sealing of inline secrets.

pub mod seal;
pub mod secrets;

pub use seal::Sealer;
pub use secrets::SecretsClient;

/// Loads the SDK configuration from the environment (region, credentials, and the standard
/// `AWS_ENDPOINT_URL_*` variables, which is how tests point the clients at an emulator).
pub async fn config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}

/// A failed AWS call in one line: the service's error code and message, or what kept the call
/// from getting an answer (its causes joined), without the SDK's raw response dump.
pub fn error_line<E, R>(e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> String
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    if let Some(service) = e.as_service_error() {
        return match (service.code(), service.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_owned(),
            _ => service.to_string(),
        };
    }
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// Whether trying a failed AWS call again may succeed: no answer, a timeout, or the service
/// saying it is busy or failed inside.
pub fn is_transient<E, R>(e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    use aws_sdk_dynamodb::error::SdkError;
    match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(s) => matches!(
            s.err().code(),
            Some(
                "SlowDown"
                    | "Throttling"
                    | "ThrottlingException"
                    | "RequestTimeout"
                    | "InternalError"
                    | "ServiceUnavailable"
                    | "IDPCommunicationError"
            )
        ),
        _ => false,
    }
}
