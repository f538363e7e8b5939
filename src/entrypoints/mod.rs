//! Entrypoints: thin adapters that drive the engine from a trigger. [`cli`] is the terminal,
//! [`local`] the in-process workers it runs jobs with, [`lambda`] the AWS Lambda function,
//! [`web`] the jobs page `vecmigrate serve` shows; [`api_error`] is how the HTTP ones answer
//! an error.

pub(crate) mod api_error;
pub mod cli;
pub mod lambda;
pub mod local;
pub mod web;

use std::time::Duration;

/// A duration from the environment (`14m`, `30s`), or `default` when unset; the error names
/// the variable.
pub(crate) fn env_duration(
    name: &str,
    default: Option<Duration>,
) -> Result<Option<Duration>, String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => humantime::parse_duration(v.trim())
            .map(Some)
            .map_err(|e| format!("{name}=`{v}` is not a duration such as 14m or 30s: {e}")),
        _ => Ok(default),
    }
}

/// A non-empty variable of the environment.
pub(crate) fn env_text(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}
