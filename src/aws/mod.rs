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
