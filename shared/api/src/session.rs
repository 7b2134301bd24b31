//! Dashboard sessions: a signed, expiring cookie that stands for a read or admin key without
//! holding it. The cookie carries the scope, the id of the key that signed in (so rotating
//! that key away ends its sessions, and per-key budgets still apply) and the expiry, with an
//! HMAC-SHA256 over them under the session secret (`SESSION_SECRET`).

use crate::error::ApiError;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, Method, StatusCode, header};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The cookie's name.
pub const COOKIE: &str = "buildlore_session";
/// How long a session lasts: a working day, so the page can stay open all day.
pub const SESSION_HOURS: i64 = 12;
/// The shortest `SESSION_SECRET` accepted.
pub const MIN_SECRET_LEN: usize = 32;

/// What a session may do: the scope of the key that started it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionScope {
    Read,
    Admin,
}

impl SessionScope {
    fn name(self) -> &'static str {
        match self {
            SessionScope::Read => "read",
            SessionScope::Admin => "admin",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "read" => Some(SessionScope::Read),
            "admin" => Some(SessionScope::Admin),
            _ => None,
        }
    }
}

/// A verified session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionClaims {
    pub scope: SessionScope,
    pub key_id: String,
    pub expires: i64,
}

/// The key sessions are signed with.
#[derive(Clone)]
pub struct SessionKey {
    secret: Vec<u8>,
    /// Whether it came from configuration; a key made up at start-up is only good for this
    /// process (fine for `buildlore dev`, not for several Lambda functions).
    pub configured: bool,
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKey")
            .field("configured", &self.configured)
            .finish()
    }
}

impl Default for SessionKey {
    fn default() -> Self {
        let mut secret = vec![0u8; 32];
        if getrandom::getrandom(&mut secret).is_err() {
            // Without randomness no session can be trusted: an empty key signs nothing
            // `verify` accepts.
            secret.clear();
        }
        SessionKey {
            secret,
            configured: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("SESSION_SECRET must be at least {MIN_SECRET_LEN} characters; use a long random value")]
pub struct WeakSessionSecret;

impl SessionKey {
    pub fn from_secret(secret: &str) -> Result<Self, WeakSessionSecret> {
        let secret = secret.trim();
        if secret.len() < MIN_SECRET_LEN {
            return Err(WeakSessionSecret);
        }
        Ok(SessionKey {
            secret: secret.as_bytes().to_vec(),
            configured: true,
        })
    }

    fn mac(&self, payload: &str) -> Option<Vec<u8>> {
        if self.secret.is_empty() {
            return None;
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).ok()?;
        mac.update(payload.as_bytes());
        Some(mac.finalize().into_bytes().to_vec())
    }

    /// The cookie value of a new session: `v1.<scope>.<key id>.<expires>.<mac>`.
    pub fn issue(&self, scope: SessionScope, key_id: &str, now: i64) -> Option<String> {
        let payload = format!(
            "v1.{}.{key_id}.{}",
            scope.name(),
            now + SESSION_HOURS * 3600
        );
        let mac = self.mac(&payload)?;
        Some(format!("{payload}.{}", hex(&mac)))
    }

    /// The claims of a cookie value signed with this key and not yet expired.
    pub fn verify(&self, token: &str, now: i64) -> Result<SessionClaims, SessionRefused> {
        let (payload, mac) = token.rsplit_once('.').ok_or(SessionRefused::Invalid)?;
        let expected = self.mac(payload).ok_or(SessionRefused::Invalid)?;
        if !bool::from(hex(&expected).as_bytes().ct_eq(mac.as_bytes())) {
            return Err(SessionRefused::Invalid);
        }
        let mut parts = payload.split('.');
        let (Some("v1"), Some(scope), Some(key_id), Some(expires), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(SessionRefused::Invalid);
        };
        let scope = SessionScope::parse(scope).ok_or(SessionRefused::Invalid)?;
        let expires: i64 = expires.parse().map_err(|_| SessionRefused::Invalid)?;
        if expires <= now {
            return Err(SessionRefused::Expired);
        }
        Ok(SessionClaims {
            scope,
            key_id: key_id.to_string(),
            expires,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionRefused {
    Invalid,
    Expired,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The session cookie's value, if the request carries one.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// Whether the request came over HTTPS (API Gateway and CloudFront say so in
/// `X-Forwarded-Proto`), so the cookie must be `Secure`.
fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}

/// The `Set-Cookie` value that starts a session.
pub fn start_cookie(headers: &HeaderMap, token: &str) -> String {
    format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_HOURS * 3600,
        if over_https(headers) { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that ends a session.
pub fn end_cookie(headers: &HeaderMap) -> String {
    format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if over_https(headers) { "; Secure" } else { "" }
    )
}

/// Whether the request's `Origin` is the site it was sent to. Behind CloudFront the `Host`
/// the function sees is the API's own, so the viewer's host arrives as `X-Forwarded-Host`.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some((_, origin_host)) = origin.split_once("://") else {
        return false;
    };
    ["x-forwarded-host", "host"]
        .iter()
        .filter_map(|name| headers.get(*name).and_then(|v| v.to_str().ok()))
        .any(|host| host.eq_ignore_ascii_case(origin_host))
}

pub fn foreign_origin() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "this request changes state with the session cookie but does not come from this site's own pages (its Origin header differs); send it from the dashboard, or with an Authorization header",
    )
}

/// Requests that change state on the strength of the session cookie alone must come from
/// the dashboard's own pages: their `Origin` must be this site. (SameSite=Strict already keeps
/// the cookie off other sites' requests; this holds even where a browser does not.)
pub async fn origin_guard(request: Request, next: Next) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let headers = request.headers();
    let cookie_only =
        headers.get(header::AUTHORIZATION).is_none() && session_cookie(headers).is_some();
    if !safe && cookie_only && !same_origin(headers) {
        return foreign_origin().into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn key() -> SessionKey {
        SessionKey::from_secret("a-session-secret-of-at-least-32-chars").unwrap()
    }

    #[test]
    fn issued_sessions_verify_until_they_expire() {
        let token = key()
            .issue(SessionScope::Admin, "0011223344556677", 1000)
            .unwrap();
        let claims = key().verify(&token, 1001).unwrap();
        assert_eq!(claims.scope, SessionScope::Admin);
        assert_eq!(claims.key_id, "0011223344556677");
        assert_eq!(
            key().verify(&token, 1000 + SESSION_HOURS * 3600),
            Err(SessionRefused::Expired)
        );
    }

    #[test]
    fn tampered_or_foreign_sessions_are_refused() {
        let token = key()
            .issue(SessionScope::Read, "0011223344556677", 1000)
            .unwrap();
        let promoted = token.replace(".read.", ".admin.");
        assert_eq!(key().verify(&promoted, 1001), Err(SessionRefused::Invalid));
        let extended = token.replacen(&(1000 + SESSION_HOURS * 3600).to_string(), "99999999999", 1);
        assert_eq!(key().verify(&extended, 1001), Err(SessionRefused::Invalid));
        let other = SessionKey::from_secret("another-session-secret-32-chars-long").unwrap();
        assert_eq!(other.verify(&token, 1001), Err(SessionRefused::Invalid));
        for junk in ["", ".", "v1.read", "v1.read.x.y.z.w", "nonsense"] {
            assert_eq!(key().verify(junk, 1001), Err(SessionRefused::Invalid));
        }
        assert!(SessionKey::from_secret("short").is_err());
    }

    #[test]
    fn random_keys_differ_and_work() {
        let (a, b) = (SessionKey::default(), SessionKey::default());
        let token = a.issue(SessionScope::Read, "00", 0).unwrap();
        assert!(a.verify(&token, 1).is_ok());
        assert!(b.verify(&token, 1).is_err());
    }

    #[test]
    fn origin_must_match_the_host_or_forwarded_host() {
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_str(value).unwrap());
            }
            map
        };
        assert!(same_origin(&headers(&[
            ("origin", "http://127.0.0.1:3000"),
            ("host", "127.0.0.1:3000")
        ])));
        assert!(same_origin(&headers(&[
            ("origin", "https://ci.example.com"),
            ("host", "abc.execute-api.eu-west-1.amazonaws.com"),
            ("x-forwarded-host", "ci.example.com")
        ])));
        assert!(!same_origin(&headers(&[
            ("origin", "https://evil.example"),
            ("host", "127.0.0.1:3000")
        ])));
        assert!(!same_origin(&headers(&[("host", "127.0.0.1:3000")])));
        assert!(!same_origin(&headers(&[
            ("origin", "null"),
            ("host", "127.0.0.1:3000")
        ])));
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; buildlore_session=v1.abc ; x=y"),
        );
        assert_eq!(session_cookie(&headers), Some("v1.abc"));
        assert!(start_cookie(&headers, "t").contains("HttpOnly; SameSite=Strict"));
        assert!(!start_cookie(&headers, "t").contains("Secure"));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(start_cookie(&headers, "t").ends_with("; Secure"));
    }
}
