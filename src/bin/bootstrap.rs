//! The AWS Lambda function (`provided.al2023`): builds its clients once per container, then
//! hands every event to [`vecmigrate::entrypoints::lambda::LambdaApp`].

use std::sync::Arc;

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;
use vecmigrate::entrypoints::lambda::{LambdaApp, LambdaConfig};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    vecmigrate::memory::return_freed_pages();
    vecmigrate::tls::install_crypto_provider();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VECMIGRATE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        // CloudWatch adds its own timestamps and shows no colours.
        .without_time()
        .with_ansi(false)
        .init();
    let config = LambdaConfig::from_env()?;
    let app = Arc::new(LambdaApp::from_config(config).await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let app = app.clone();
        async move {
            let deadline = event.context.deadline;
            app.handle(event.payload, deadline)
                .await
                .map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}
