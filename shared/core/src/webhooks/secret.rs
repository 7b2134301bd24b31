//! Webhook authentication: GitLab's shared token and GitHub's HMAC signature, both compared
//! in constant time. Each accepts several secrets at once, so a secret can be rotated.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use std::sync::{Arc, PoisonError, RwLock};
use subtle::ConstantTimeEq;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretMismatch {
    #[error("no webhook secret is configured on this deployment for this provider")]
    NotConfigured,
    #[error("the webhook secret header is missing")]
    Missing,
    #[error("the webhook secret or signature does not match")]
    Mismatch,
}

/// Secrets configured for one provider (comma-separated in configuration). Clones share
/// them, so secrets read again from their store ([`WebhookSecrets::replace_with`]) take effect
/// for every holder at once.
#[derive(Clone, Default)]
pub struct WebhookSecrets {
    shared: Arc<RwLock<Secrets>>,
}

#[derive(Clone, Default)]
struct Secrets {
    secrets: Vec<Vec<u8>>,
    /// GitLab tokens known only by their SHA-256 digest (a token is compared by digest anyway).
    token_digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secrets = self.read();
        write!(
            f,
            "WebhookSecrets({} configured)",
            secrets.secrets.len() + secrets.token_digests.len()
        )
    }
}

impl WebhookSecrets {
    pub fn from_list(list: &str) -> Self {
        let secrets = Secrets {
            secrets: list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| s.as_bytes().to_vec())
                .collect(),
            token_digests: Vec::new(),
        };
        WebhookSecrets {
            shared: Arc::new(RwLock::new(secrets)),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Secrets> {
        // Replaced whole, so a panic elsewhere cannot leave them half-written.
        self.shared.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// From now on, the secrets of `fresh` (rotated in their store) for every clone.
    pub fn replace_with(&self, fresh: &WebhookSecrets) {
        let secrets = fresh.read().clone();
        *self.shared.write().unwrap_or_else(PoisonError::into_inner) = secrets;
    }

    /// Adds tokens given as SHA-256 digests (64 hex digits, comma-separated); `None` when one
    /// is not such a digest. Digests verify GitLab tokens only: an HMAC needs the secret.
    pub fn with_token_digests(self, list: &str) -> Option<Self> {
        let mut digests = Vec::new();
        for digest in list.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            digests.push(decode_hex(digest.as_bytes())?);
        }
        self.shared
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .token_digests
            .extend(digests);
        Some(self)
    }

    pub fn is_configured(&self) -> bool {
        let secrets = self.read();
        !secrets.secrets.is_empty() || !secrets.token_digests.is_empty()
    }

    /// GitLab: `X-Gitlab-Token` equals one of the secrets. Digests are compared so the
    /// comparison takes the same time whatever the lengths.
    pub fn verify_token(&self, presented: Option<&[u8]>) -> Result<(), SecretMismatch> {
        if !self.is_configured() {
            return Err(SecretMismatch::NotConfigured);
        }
        let presented = presented.ok_or(SecretMismatch::Missing)?;
        let presented_digest = Sha256::digest(presented);
        let configured = self.read();
        let digests = configured
            .secrets
            .iter()
            .map(|secret| <[u8; 32]>::from(Sha256::digest(secret)))
            .chain(configured.token_digests.iter().copied());
        let matched = digests.fold(subtle::Choice::from(0), |found, digest| {
            found | digest.ct_eq(presented_digest.as_slice())
        });
        if bool::from(matched) {
            Ok(())
        } else {
            Err(SecretMismatch::Mismatch)
        }
    }

    /// GitHub: `X-Hub-Signature-256` is `sha256=` + hex HMAC-SHA256 of the raw body under one
    /// of the secrets.
    pub fn verify_signature(
        &self,
        body: &[u8],
        header: Option<&[u8]>,
    ) -> Result<(), SecretMismatch> {
        let configured = self.read();
        if configured.secrets.is_empty() {
            return Err(SecretMismatch::NotConfigured);
        }
        let header = header.ok_or(SecretMismatch::Missing)?;
        let hex = header
            .strip_prefix(b"sha256=")
            .ok_or(SecretMismatch::Mismatch)?;
        let presented = decode_hex(hex).ok_or(SecretMismatch::Mismatch)?;
        let matched = configured
            .secrets
            .iter()
            .fold(subtle::Choice::from(0), |found, secret| {
                found | sign(secret, body).ct_eq(&presented)
            });
        if bool::from(matched) {
            Ok(())
        } else {
            Err(SecretMismatch::Mismatch)
        }
    }
}

/// HMAC-SHA256 of `body` under `secret`.
#[allow(clippy::expect_used, reason = "HMAC takes keys of any length")]
pub fn sign(secret: &[u8], body: &[u8]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// The `X-Hub-Signature-256` value GitHub would send.
pub fn signature_header(secret: &[u8], body: &[u8]) -> String {
    let digest = sign(secret, body);
    let mut out = String::from("sha256=");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

pub(crate) fn decode_hex(hex: &[u8]) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    // Digit by digit: `u8::from_str_radix` would accept a sign (`+f`).
    let digit = |byte: u8| char::from(byte).to_digit(16).map(|value| value as u8);
    let mut out = [0u8; 32];
    for (index, pair) in hex.chunks_exact(2).enumerate() {
        out[index] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_accept_any_configured_secret() {
        let secrets = WebhookSecrets::from_list("new-secret, old-secret");
        assert!(secrets.verify_token(Some(b"new-secret")).is_ok());
        assert!(secrets.verify_token(Some(b"old-secret")).is_ok());
        assert_eq!(
            secrets.verify_token(Some(b"new-secre")),
            Err(SecretMismatch::Mismatch)
        );
        assert_eq!(secrets.verify_token(None), Err(SecretMismatch::Missing));
        assert_eq!(
            WebhookSecrets::from_list(" ").verify_token(Some(b"x")),
            Err(SecretMismatch::NotConfigured)
        );
    }

    #[test]
    fn a_gitlab_token_may_be_configured_as_its_digest() {
        let digest: String = Sha256::digest(b"gitlab-token-value")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let secrets = WebhookSecrets::from_list("")
            .with_token_digests(&digest)
            .expect("a digest");
        assert!(secrets.verify_token(Some(b"gitlab-token-value")).is_ok());
        assert_eq!(
            secrets.verify_token(Some(digest.as_bytes())),
            Err(SecretMismatch::Mismatch)
        );
        assert!(
            WebhookSecrets::from_list("")
                .with_token_digests("not-hex")
                .is_none()
        );
    }

    #[test]
    fn a_signature_is_exactly_64_hex_digits() {
        let secrets = WebhookSecrets::from_list("s3cret-s3cret");
        let good = signature_header(b"s3cret-s3cret", b"{}");
        assert!(
            secrets
                .verify_signature(b"{}", Some(good.as_bytes()))
                .is_ok()
        );
        // A sign where a digit belongs, upper case, a short or long value: refused.
        let hex = &good["sha256=".len()..];
        for bad in [
            format!("sha256=+{}", &hex[1..]),
            format!("sha256={}+{}", &hex[..10], &hex[11..]),
            format!("sha256={}", &hex[1..]),
            format!("sha256={hex}0"),
            format!("sha256={}", "g".repeat(64)),
        ] {
            assert_eq!(
                secrets.verify_signature(b"{}", Some(bad.as_bytes())),
                Err(SecretMismatch::Mismatch),
                "{bad}"
            );
        }
    }

    #[test]
    fn signatures_cover_the_exact_body() {
        let secrets = WebhookSecrets::from_list("s3cret");
        let header = signature_header(b"s3cret", b"{\"a\":1}");
        assert!(
            secrets
                .verify_signature(b"{\"a\":1}", Some(header.as_bytes()))
                .is_ok()
        );
        assert_eq!(
            secrets.verify_signature(b"{\"a\":2}", Some(header.as_bytes())),
            Err(SecretMismatch::Mismatch)
        );
        for bad in [
            "sha1=abc",
            "sha256=zz",
            "sha256=",
            &header[..header.len() - 1],
        ] {
            assert_eq!(
                secrets.verify_signature(b"{\"a\":1}", Some(bad.as_bytes())),
                Err(SecretMismatch::Mismatch),
                "{bad}"
            );
        }
    }
}
