//! Sealing of inline cluster tokens for the Lambda deployment: a token given in a request is
//! needed by later invocations, so the job record keeps it encrypted (XChaCha20-Poly1305 under a
//! key from Secrets Manager), never in clear. Status responses drop the sealed value too.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

use crate::domain::Secret;

const PREFIX: &str = "v1.";

/// Encrypts and decrypts tokens with the deployment's sealing key.
#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer([redacted])")
    }
}

impl Sealer {
    /// A sealer whose key is derived from a secret string (the template generates one).
    pub fn from_secret(secret: &str) -> Self {
        let key = Sha256::digest(secret.as_bytes());
        Self {
            cipher: XChaCha20Poly1305::new(&key),
        }
    }

    /// Seals `token` for one purpose (`source`, `target`, `webhook`): a value sealed for one
    /// cannot be opened for another.
    pub fn seal(&self, purpose: &str, token: &Secret) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: token.expose().as_bytes(),
                    aad: purpose.as_bytes(),
                },
            )
            .expect("encryption of a short message cannot fail");
        let mut bytes = nonce.to_vec();
        bytes.extend(sealed);
        format!("{PREFIX}{}", STANDARD_NO_PAD.encode(bytes))
    }

    /// Opens a sealed value; fails if it was sealed under another key or for another purpose.
    pub fn open(&self, purpose: &str, sealed: &str) -> Result<Secret, String> {
        let bytes = sealed
            .strip_prefix(PREFIX)
            .and_then(|b| STANDARD_NO_PAD.decode(b).ok())
            .filter(|b| b.len() > 24)
            .ok_or_else(|| "the sealed token is malformed".to_owned())?;
        let (nonce, body) = bytes.split_at(24);
        let plain = self
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: purpose.as_bytes(),
                },
            )
            .map_err(|_| {
                "the sealed token does not open with this deployment's sealing key (was the key rotated?); start the job again with the token".to_owned()
            })?;
        String::from_utf8(plain)
            .map(Secret::new)
            .map_err(|_| "the sealed token is not text".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_opens_and_binds_role_and_key() {
        let sealer = Sealer::from_secret("key one");
        let token = Secret::new("root:Milvus");
        let sealed = sealer.seal("source", &token);
        assert!(!sealed.contains("root"));
        assert_ne!(
            sealed,
            sealer.seal("source", &token),
            "fresh nonce each time"
        );
        assert_eq!(sealer.open("source", &sealed).unwrap(), token);
        assert!(sealer.open("target", &sealed).is_err());
        assert!(Sealer::from_secret("key two")
            .open("source", &sealed)
            .is_err());
        assert!(sealer.open("source", "v1.AAAA").is_err());
    }
}
