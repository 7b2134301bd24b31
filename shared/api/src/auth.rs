//! Scoped API keys. Keys are held only as SHA-256 digests and compared in constant time;
//! each scope may have several keys at once, so keys can be rotated without downtime.

use crate::error::ApiError;
use crate::session::{SessionKey, SessionRefused, SessionScope, WeakSessionSecret, session_cookie};
use http::{HeaderMap, StatusCode, header};
use sha2::{Digest, Sha256};
use std::sync::{Arc, PoisonError, RwLock};
use subtle::ConstantTimeEq;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Push builds, logs and traces.
    Ingest,
    /// Read builds, summaries, traces and analyses.
    Read,
    /// Everything, plus administrative changes (cache purge, system prompt).
    Admin,
}

impl Scope {
    fn name(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }
}

type Digest32 = [u8; 32];

/// Who made a request: an id of the key it presented (not the key, and not reversible to
/// it), for per-key budgets and audit records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub key_id: String,
}

impl Caller {
    fn of(digest: &Digest32) -> Self {
        Caller {
            key_id: digest[..8].iter().map(|b| format!("{b:02x}")).collect(),
        }
    }
}

fn digest(key: &str) -> Digest32 {
    Sha256::digest(key.as_bytes()).into()
}

/// The keys of every scope. Clones share them, so keys read again from Secrets Manager
/// ([`ApiKeys::replace_with`]) take effect for every holder at once.
#[derive(Clone, Default)]
pub struct ApiKeys {
    lists: Arc<RwLock<KeyLists>>,
    /// Signs dashboard sessions (see `session`).
    session_key: Arc<RwLock<SessionKey>>,
}

#[derive(Clone, Default)]
struct KeyLists {
    ingest: Vec<Digest32>,
    read: Vec<Digest32>,
    admin: Vec<Digest32>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lists = self.lists();
        f.debug_struct("ApiKeys")
            .field("ingest", &lists.ingest.len())
            .field("read", &lists.read.len())
            .field("admin", &lists.admin.len())
            .finish()
    }
}

/// Keys shorter than this are refused at start-up: they can be guessed.
pub const MIN_KEY_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum WeakKey {
    #[error("{variable} holds a key shorter than {MIN_KEY_LEN} characters; use a long random key")]
    Short { variable: &'static str },
    #[error("{variable} must be SHA-256 digests of keys: 64 hex digits each, comma-separated")]
    NotADigest { variable: &'static str },
}

impl ApiKeys {
    /// Each argument is a comma-separated list of keys (empty: no key has that scope).
    pub fn from_lists(ingest: &str, read: &str, admin: &str) -> Result<Self, WeakKey> {
        let parse = |list: &str, variable: &'static str| -> Result<Vec<Digest32>, WeakKey> {
            list.split(',')
                .map(str::trim)
                .filter(|key| !key.is_empty())
                .map(|key| {
                    if key.len() < MIN_KEY_LEN {
                        Err(WeakKey::Short { variable })
                    } else {
                        Ok(digest(key))
                    }
                })
                .collect()
        };
        let lists = KeyLists {
            ingest: parse(ingest, "INGEST_API_KEY")?,
            read: parse(read, "READ_API_KEY")?,
            admin: parse(admin, "ADMIN_API_KEY")?,
        };
        Ok(ApiKeys {
            lists: Arc::new(RwLock::new(lists)),
            session_key: Arc::default(),
        })
    }

    fn lists(&self) -> std::sync::RwLockReadGuard<'_, KeyLists> {
        // The lists are replaced whole, so a panic elsewhere cannot leave them half-written.
        self.lists.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// From now on, the keys of `fresh` (keys rotated in their store) for every clone.
    pub fn replace_with(&self, fresh: &ApiKeys) {
        let lists = fresh.lists().clone();
        *self.lists.write().unwrap_or_else(PoisonError::into_inner) = lists;
        let session_key = fresh.session_key();
        // A key made up at start-up is never news: replacing one would end every session.
        if session_key.configured {
            *self
                .session_key
                .write()
                .unwrap_or_else(PoisonError::into_inner) = session_key;
        }
    }

    /// Adds keys given as SHA-256 digests (hex, comma-separated), for deployments that keep
    /// only digests in their configuration.
    pub fn with_digests(self, ingest: &str, read: &str, admin: &str) -> Result<Self, WeakKey> {
        let parse = |list: &str, variable: &'static str| -> Result<Vec<Digest32>, WeakKey> {
            list.split(',')
                .map(str::trim)
                .filter(|digest| !digest.is_empty())
                .map(|digest| hex_digest(digest).ok_or(WeakKey::NotADigest { variable }))
                .collect()
        };
        let (ingest, read, admin) = (
            parse(ingest, "INGEST_API_KEY_SHA256")?,
            parse(read, "READ_API_KEY_SHA256")?,
            parse(admin, "ADMIN_API_KEY_SHA256")?,
        );
        {
            let mut lists = self.lists.write().unwrap_or_else(PoisonError::into_inner);
            lists.ingest.extend(ingest);
            lists.read.extend(read);
            lists.admin.extend(admin);
        }
        Ok(self)
    }

    fn matches(candidates: &[Digest32], presented: &Digest32) -> bool {
        // Check every candidate so timing does not reveal which one matched.
        candidates
            .iter()
            .fold(subtle::Choice::from(0), |found, candidate| {
                found | candidate.ct_eq(presented)
            })
            .into()
    }

    /// Which scopes a presented key carries.
    fn scopes_of(&self, presented: &Digest32) -> Vec<Scope> {
        let lists = self.lists();
        let mut scopes = Vec::new();
        if Self::matches(&lists.admin, presented) {
            scopes.extend([Scope::Admin, Scope::Ingest, Scope::Read]);
        }
        if Self::matches(&lists.ingest, presented) {
            scopes.push(Scope::Ingest);
        }
        if Self::matches(&lists.read, presented) {
            scopes.push(Scope::Read);
        }
        scopes
    }

    /// Signs dashboard sessions with `secret` (`SESSION_SECRET`) instead of a key made up
    /// at start-up, so every function accepts the sessions any of them started.
    pub fn with_session_secret(self, secret: Option<&str>) -> Result<Self, WeakSessionSecret> {
        if let Some(secret) = secret.filter(|secret| !secret.trim().is_empty()) {
            *self
                .session_key
                .write()
                .unwrap_or_else(PoisonError::into_inner) = SessionKey::from_secret(secret)?;
        }
        Ok(self)
    }

    fn session_key(&self) -> SessionKey {
        self.session_key
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether sessions are signed with a configured secret (else only this process knows
    /// the key).
    pub fn session_secret_configured(&self) -> bool {
        self.session_key().configured
    }

    /// Starts a dashboard session for a presented read or admin key: the cookie value. The
    /// key itself is not in it.
    pub fn start_session(&self, key: &str, now: i64) -> Result<String, ApiError> {
        let presented = digest(key.trim());
        let scopes = self.scopes_of(&presented);
        let scope = if scopes.contains(&Scope::Admin) {
            SessionScope::Admin
        } else if scopes.contains(&Scope::Read) {
            SessionScope::Read
        } else if scopes.is_empty() {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "API key not recognised",
            ));
        } else {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "this key has only the ingest scope; sign in with a read or admin key",
            ));
        };
        self.session_key()
            .issue(scope, &Caller::of(&presented).key_id, now)
            .ok_or_else(|| ApiError::unavailable("sessions cannot be signed right now"))
    }

    /// The caller of a request that carries a session cookie instead of a key.
    fn authorize_session(&self, token: &str, scope: Scope) -> Result<Caller, ApiError> {
        let now = chrono::Utc::now().timestamp();
        let claims = self.session_key().verify(token, now).map_err(|refused| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                match refused {
                    SessionRefused::Expired => "your session has expired; sign in again",
                    SessionRefused::Invalid => "the session cookie is not valid; sign in again",
                },
            )
        })?;
        // A session lasts only as long as the key that started it.
        let still_valid = {
            let lists = self.lists();
            let keys = match claims.scope {
                SessionScope::Admin => &lists.admin,
                SessionScope::Read => &lists.read,
            };
            keys.iter()
                .any(|digest| Caller::of(digest).key_id == claims.key_id)
        };
        if !still_valid {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "the key this session was started with is no longer valid; sign in again",
            ));
        }
        let allowed = match claims.scope {
            SessionScope::Admin => true,
            SessionScope::Read => scope == Scope::Read,
        };
        if !allowed {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "this session does not have the {} scope; sign in with a key that does",
                    scope.name()
                ),
            ));
        }
        Ok(Caller {
            key_id: claims.key_id,
        })
    }

    /// Checks the request's bearer key (or, without one, its dashboard session cookie) for
    /// `scope`: 401 without a known key, 403 with a key of another scope.
    pub fn authorize(&self, headers: &HeaderMap, scope: Scope) -> Result<Caller, ApiError> {
        let unauthorized = |message: &str| ApiError::new(StatusCode::UNAUTHORIZED, message);
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            if let Some(token) = session_cookie(headers) {
                return self.authorize_session(token, scope);
            }
            return Err(unauthorized(
                "missing API key: send the header `Authorization: Bearer <key>`",
            ));
        };
        let text = value.to_str().unwrap_or_default().trim();
        let key = match text.split_once(' ') {
            Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") => key.trim(),
            _ => {
                return Err(unauthorized(
                    "the Authorization header must be `Bearer <key>`",
                ));
            }
        };
        let presented = digest(key);
        let scopes = self.scopes_of(&presented);
        if scopes.is_empty() {
            return Err(unauthorized("API key not recognised"));
        }
        if !scopes.contains(&scope) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "this key does not have the {} scope; use a key that does",
                    scope.name()
                ),
            ));
        }
        Ok(Caller::of(&presented))
    }
}

/// A SHA-256 digest written as 64 hex digits.
pub fn hex_digest(text: &str) -> Option<Digest32> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let digit = |byte: u8| char::from(byte).to_digit(16).map(|value| value as u8);
    let mut out = [0u8; 32];
    for (index, pair) in bytes.chunks_exact(2).enumerate() {
        out[index] = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const INGEST: &str = "ingest-key-0123456789";
    const READ: &str = "read-key-0123456789ab";
    const ADMIN: &str = "admin-key-0123456789a";

    fn keys() -> ApiKeys {
        ApiKeys::from_lists(&format!("{INGEST}, old-ingest-key-rotated"), READ, ADMIN).unwrap()
    }

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn scopes_are_enforced() {
        let keys = keys();
        assert!(
            keys.authorize(&with(&format!("Bearer {INGEST}")), Scope::Ingest)
                .is_ok()
        );
        assert!(
            keys.authorize(&with("bearer old-ingest-key-rotated"), Scope::Ingest)
                .is_ok()
        );
        assert_eq!(
            keys.authorize(&with(&format!("Bearer {INGEST}")), Scope::Read)
                .unwrap_err()
                .status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            keys.authorize(&with(&format!("Bearer {READ}")), Scope::Ingest)
                .unwrap_err()
                .status,
            StatusCode::FORBIDDEN
        );
        for scope in [Scope::Ingest, Scope::Read, Scope::Admin] {
            assert!(
                keys.authorize(&with(&format!("Bearer {ADMIN}")), scope)
                    .is_ok()
            );
        }
    }

    #[test]
    fn missing_malformed_and_unknown_keys_are_401() {
        let keys = keys();
        for headers in [
            HeaderMap::new(),
            with("Basic abc"),
            with(INGEST),
            with("Bearer nope-nope-nope-nope"),
        ] {
            assert_eq!(
                keys.authorize(&headers, Scope::Read).unwrap_err().status,
                StatusCode::UNAUTHORIZED
            );
        }
    }

    #[test]
    fn replaced_keys_take_effect_for_every_clone() {
        let keys = keys();
        let held_by_a_handler = keys.clone();
        let rotated = ApiKeys::from_lists("", "read-key-rotated-000001", "").unwrap();
        keys.replace_with(&rotated);
        assert!(
            held_by_a_handler
                .authorize(&with("Bearer read-key-rotated-000001"), Scope::Read)
                .is_ok()
        );
        assert_eq!(
            held_by_a_handler
                .authorize(&with(&format!("Bearer {READ}")), Scope::Read)
                .unwrap_err()
                .status,
            StatusCode::UNAUTHORIZED
        );
    }

    #[test]
    fn keys_given_as_digests_work_like_keys() {
        let digest: String = digest(READ).iter().map(|b| format!("{b:02x}")).collect();
        let keys = ApiKeys::from_lists("", "", "")
            .unwrap()
            .with_digests("", &format!(" {digest} "), "")
            .unwrap();
        assert!(
            keys.authorize(&with(&format!("Bearer {READ}")), Scope::Read)
                .is_ok()
        );
        assert!(
            keys.authorize(&with(&format!("Bearer {READ}")), Scope::Ingest)
                .is_err()
        );
        // The digest itself is not a key.
        assert!(
            keys.authorize(&with(&format!("Bearer {digest}")), Scope::Read)
                .is_err()
        );
        for bad in ["abc", &"g".repeat(64), &format!("{digest}0")] {
            assert!(
                ApiKeys::from_lists("", "", "")
                    .unwrap()
                    .with_digests(bad, "", "")
                    .is_err()
            );
        }
    }

    #[test]
    fn short_keys_are_refused_and_debug_shows_no_digests() {
        assert!(ApiKeys::from_lists("short", "", "").is_err());
        assert!(ApiKeys::from_lists("", "", "").is_ok());
        assert!(!format!("{:?}", keys()).contains('['));
    }
}
