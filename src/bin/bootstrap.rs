//! The AWS Lambda function (`provided.al2023`): builds its clients once per container, then
//! hands every event to [`vecmigrate::entrypoints::lambda::LambdaApp`].

use std::sync::Arc;

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;
use tracing::Instrument;
use vecmigrate::entrypoints::lambda::{LambdaApp, LambdaConfig};
use vecmigrate::logging::{self, LogFormat};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    vecmigrate::memory::return_freed_pages();
    vecmigrate::tls::install_crypto_provider();
    init_logging();
    let config = LambdaConfig::from_env()?;
    let app = Arc::new(LambdaApp::from_config(config).await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let app = app.clone();
        // Every line of the invocation carries its request id; the X-Ray trace header (when
        // the invocation is traced) makes its steps subsegments of the trace.
        let span = tracing::info_span!(
            "invocation",
            request_id = %event.context.request_id,
            xray_trace = tracing::field::Empty
        );
        if let Some(trace) = &event.context.xray_trace_id {
            span.record("xray_trace", trace.as_str());
        }
        async move {
            let deadline = event.context.deadline;
            app.handle(event.payload, deadline)
                .await
                .map_err(lambda_runtime::Error::from)
        }
        .instrument(span)
    }))
    .await
}

/// Logs as the function's `LoggingConfig` asks: JSON lines when `AWS_LAMBDA_LOG_FORMAT` is
/// `JSON` (CloudWatch then filters them by their `level` at `AWS_LAMBDA_LOG_LEVEL`), from that
/// level up; else text lines without a time (CloudWatch adds its own). `VECMIGRATE_LOG`
/// overrides the level with tracing's directives.
fn init_logging() {
    let format = std::env::var("AWS_LAMBDA_LOG_FORMAT")
        .ok()
        .and_then(|f| LogFormat::parse(&f))
        .unwrap_or(LogFormat::Text);
    let level = match std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .unwrap_or_default()
        .to_ascii_uppercase()
        .as_str()
    {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "WARN" => "warn",
        "ERROR" | "FATAL" => "error",
        _ => "info",
    };
    // With `Tracing: Active`, each step is a subsegment of the invocation's trace.
    let xray = vecmigrate::xray::XrayLayer::from_env();
    logging::init(format, logging::filter_from_env(level), false, false, xray);
}
