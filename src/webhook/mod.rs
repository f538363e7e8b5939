//! Standard Webhooks (v1): signing what vecmigrate sends and verifying what it receives.

pub mod signature;

pub use signature::{SignatureError, SigningSecret};
