//! Settings read from the process's environment: one reading of a variable for the engine's
//! settings and every entrypoint's (a duration such as `14m`, or a non-empty text). Below both,
//! so that the engine never has to know its entrypoints.

use std::time::Duration;

/// A duration from the environment (`14m`, `30s`), or `default` when unset; the error names
/// the variable.
pub(crate) fn duration(name: &str, default: Option<Duration>) -> Result<Option<Duration>, String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => humantime::parse_duration(v.trim())
            .map(Some)
            .map_err(|e| format!("{name}=`{v}` is not a duration such as 14m or 30s: {e}")),
        _ => Ok(default),
    }
}

/// A non-empty variable of the environment.
pub(crate) fn text(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}
