//! A scripted fake HTTP server on a loopback port: it records every request and answers with
//! what the test's script says for it.

#![allow(
    dead_code,
    clippy::unwrap_used,
    reason = "test support: a failed expectation is the test failing"
)]

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use buildlore_providers::{ProviderConfig, Url};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const GITLAB_TOKEN: &str = "glpat-fake-token-0123456789";
pub const GITHUB_TOKEN: &str = "ghp_fakeTokenForTests0123456789abcdefgh";

/// One request as the server received it (the path still percent-encoded).
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: String,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A query parameter, decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        Url::parse(&format!("http://x/?{}", self.query))
            .ok()?
            .query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

type Script = dyn Fn(&Seen, usize) -> Response + Send + Sync;

#[derive(Clone)]
struct Shared {
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Script>,
}

pub struct Fake {
    pub base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn url(&self) -> Url {
        Url::parse(&self.base).unwrap()
    }
}

/// Starts a server answering each request with `script(request, how many earlier requests had
/// the same method and path)`.
pub async fn fake(script: impl Fn(&Seen, usize) -> Response + Send + Sync + 'static) -> Fake {
    let shared = Shared {
        seen: Arc::new(Mutex::new(Vec::new())),
        script: Arc::new(script),
    };
    let seen = shared.seen.clone();
    let router = Router::new().fallback(handle).with_state(shared);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Fake {
        base: format!("http://{address}"),
        seen,
    }
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = Seen {
        method,
        path: uri.path().to_string(),
        query: uri.query().unwrap_or("").to_string(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let earlier = {
        let mut seen = shared.seen.lock().unwrap();
        let earlier = seen
            .iter()
            .filter(|s| s.method == request.method && s.path == request.path)
            .count();
        seen.push(request.clone());
        earlier
    };
    (shared.script)(&request, earlier)
}

/// A JSON answer with extra headers.
pub fn json_with(status: u16, body: serde_json::Value, headers: &[(&str, String)]) -> Response {
    let mut response = (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response();
    for (name, value) in headers {
        response.headers_mut().insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    response
}

pub fn json(status: u16, body: serde_json::Value) -> Response {
    json_with(status, body, &[])
}

pub fn empty(status: u16) -> Response {
    StatusCode::from_u16(status).unwrap().into_response()
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The client configuration pointing both providers at `base`.
pub fn config(gitlab: &str, github: &str) -> ProviderConfig {
    ProviderConfig {
        gitlab_base: Url::parse(gitlab).unwrap(),
        gitlab_token: Some(GITLAB_TOKEN.into()),
        github_api: Url::parse(github).unwrap(),
        github_token: Some(GITHUB_TOKEN.into()),
        github_log_hosts: Vec::new(),
        max_bytes: 1024 * 1024,
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(5),
        max_attempts: 3,
    }
}
