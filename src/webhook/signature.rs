//! Standard Webhooks v1 signatures: `v1,<base64 HMAC-SHA256(secret, "id.timestamp.body")>`,
//! with secrets written `whsec_<base64>`. The same code signs outcome webhooks and verifies
//! inbound HTTP requests signed by callers.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a signed timestamp may be from our clock.
pub const TOLERANCE_SECONDS: i64 = 5 * 60;

/// A signing key, decoded from its `whsec_<base64>` form. Never printed.
#[derive(Clone)]
pub struct SigningSecret(Vec<u8>);

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(crate::domain::REDACTED)
    }
}

/// Why a signature was refused. The messages never include the secret or the expected value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// A `webhook-*` header is missing.
    #[error("missing the `{0}` header (sign requests as Standard Webhooks v1 does)")]
    Missing(&'static str),
    /// The timestamp is not a number of seconds.
    #[error("`webhook-timestamp` is not Unix seconds")]
    BadTimestamp,
    /// The timestamp is too old or too far ahead.
    #[error("`webhook-timestamp` is more than 5 minutes from the server's clock")]
    Expired,
    /// No signature in the header matches.
    #[error("no `webhook-signature` matches the body")]
    Mismatch,
}

impl SigningSecret {
    /// Parses `whsec_<base64>` (the prefix is optional). The error never repeats the value.
    pub fn parse(text: &str) -> Result<Self, String> {
        crate::domain::secret::signing_key(text).map(Self)
    }

    /// Wraps raw key bytes.
    pub fn from_bytes(key: Vec<u8>) -> Self {
        Self(key)
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any size");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `webhook-signature` header value for a message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = self.mac(id, timestamp, body).finalize().into_bytes();
        format!("v1,{}", STANDARD.encode(tag))
    }

    /// Checks a message's headers against its body at time `now` (Unix seconds).
    /// `signatures` may hold several space-separated `v1,<base64>` values (key rotation).
    pub fn verify(
        &self,
        id: Option<&str>,
        timestamp: Option<&str>,
        signatures: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<(), SignatureError> {
        let id = id.ok_or(SignatureError::Missing("webhook-id"))?;
        let timestamp = timestamp.ok_or(SignatureError::Missing("webhook-timestamp"))?;
        let signatures = signatures.ok_or(SignatureError::Missing("webhook-signature"))?;
        let ts: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| SignatureError::BadTimestamp)?;
        if (now - ts).abs() > TOLERANCE_SECONDS {
            return Err(SignatureError::Expired);
        }
        let matches = signatures.split_whitespace().any(|candidate| {
            let Some(("v1", tag)) = candidate.split_once(',') else {
                return false;
            };
            let Ok(tag) = STANDARD.decode(tag) else {
                return false;
            };
            // Constant-time comparison.
            self.mac(id, ts, body).verify_slice(&tag).is_ok()
        });
        if matches {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of the Standard Webhooks specification's reference libraries.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const BODY: &str = r#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signs_the_reference_vector() {
        let secret = SigningSecret::parse(SECRET).unwrap();
        assert_eq!(secret.sign(ID, TS, BODY.as_bytes()), SIGNATURE);
    }

    #[test]
    fn verifies_and_refuses() {
        let secret = SigningSecret::parse(SECRET).unwrap();
        let ok = |sig: &str, body: &str, now: i64| {
            secret.verify(
                Some(ID),
                Some(&TS.to_string()),
                Some(sig),
                body.as_bytes(),
                now,
            )
        };
        assert_eq!(ok(SIGNATURE, BODY, TS), Ok(()));
        assert_eq!(ok(&format!("v1,bad {SIGNATURE}"), BODY, TS + 299), Ok(()));
        assert_eq!(ok(SIGNATURE, "{}", TS), Err(SignatureError::Mismatch));
        assert_eq!(ok(SIGNATURE, BODY, TS + 301), Err(SignatureError::Expired));
        assert_eq!(ok(SIGNATURE, BODY, TS - 301), Err(SignatureError::Expired));
        assert_eq!(
            secret.verify(None, Some("1"), Some(SIGNATURE), b"", TS),
            Err(SignatureError::Missing("webhook-id"))
        );
        assert!(SigningSecret::parse("whsec_!!").is_err());
        assert!(format!("{secret:?}").contains("redacted"));
    }
}
