//! Secrets as the domain holds them: a [`Secret`] never prints or serializes its value, and the
//! format rule of webhook signing secrets (`whsec_<base64>`) lives here so that a request can
//! be checked without the webhook module.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// A credential that never leaves the process: it prints and serializes as `[redacted]`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

/// How a secret is written wherever it is shown or stored.
pub const REDACTED: &str = "[redacted]";

/// What a caller is told who gave [`REDACTED`] as a secret (copied from a job record, say):
/// it stands for a secret that is not shown, and a job given it could never use one.
pub(crate) const MARKER_GIVEN: &str = "is `[redacted]`, the marker that stands for a secret vecmigrate does not show; give the secret itself";

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that sends it to a cluster.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when this value came back from a stored record, where only the marker is kept.
    pub fn is_redacted(&self) -> bool {
        self.0 == REDACTED
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

/// The key bytes of a Standard Webhooks secret, `whsec_<base64>` (the prefix is optional).
/// The error completes a sentence about the secret and never repeats its value.
pub fn signing_key(text: &str) -> Result<Vec<u8>, String> {
    let raw = text.trim();
    let raw = raw.strip_prefix("whsec_").unwrap_or(raw);
    let key = STANDARD
        .decode(raw)
        .map_err(|_| "is not a `whsec_<base64>` secret".to_owned())?;
    if key.len() < 16 {
        return Err("is shorter than 16 bytes; use at least 24 random bytes".into());
    }
    Ok(key)
}
