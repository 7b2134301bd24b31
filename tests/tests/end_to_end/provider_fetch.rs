//! `/api/jobtrace` fetching from GitLab and GitHub: local fake servers speak their formats.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use buildlore_providers::Url;
use buildlore_tests::fake_server::serve;
use buildlore_tests::{TestStack, fixtures};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const GITLAB_TOKEN: &str = "glpat-test-token";
const GITHUB_TOKEN: &str = "ghp-test-token";
const LOG: &str = "logchunks/logs/Java__square_at_retrofit__482509524.log";

#[derive(Clone, Default)]
struct Fake {
    trace_requests: Arc<AtomicUsize>,
    storm: Arc<AtomicUsize>,
    gzip_requests: Arc<AtomicUsize>,
    limited: Arc<AtomicUsize>,
    blob_port: u16,
    big_log: Arc<Vec<u8>>,
}

/// A log of several megabytes: the fixture log repeated, each copy numbered.
fn big_log() -> Vec<u8> {
    let one = fixtures::bytes(LOG);
    let mut log = Vec::new();
    let mut copy = 0;
    while log.len() < 6 * 1024 * 1024 + 12_345 {
        log.extend_from_slice(format!("copy {copy}\n").as_bytes());
        log.extend_from_slice(&one);
        copy += 1;
    }
    log
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn gitlab_authorised(headers: &HeaderMap) -> bool {
    headers.get("private-token").and_then(|v| v.to_str().ok()) == Some(GITLAB_TOKEN)
}

async fn gitlab_job(headers: HeaderMap, Path((_project, job)): Path<(String, u64)>) -> Response {
    if !gitlab_authorised(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            r#"{"message":"401 Unauthorized"}"#,
        )
            .into_response();
    }
    match job {
        1 | 3 | 5 | 6 | 7 => r#"{"id": 1, "status": "failed"}"#.into_response(),
        2 => r#"{"id": 2, "status": "running"}"#.into_response(),
        // A job answer of 2 MB: more than any job's metadata.
        8 => format!(
            r#"{{"id": 8, "status": "failed", "padding": "{}"}}"#,
            "x".repeat(2 << 20)
        )
        .into_response(),
        _ => (StatusCode::NOT_FOUND, r#"{"message":"404 Not found"}"#).into_response(),
    }
}

async fn gitlab_trace(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Path((project, job)): Path<(String, u64)>,
) -> Response {
    if !gitlab_authorised(&headers) || project != "group/sub/app" {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    fake.trace_requests.fetch_add(1, Ordering::SeqCst);
    match job {
        1 | 5 => fixtures::bytes(LOG).into_response(),
        2 => "partial log\n".into_response(),
        3 if fake.storm.fetch_add(1, Ordering::SeqCst) < 2 => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "0")],
            "slow down",
        )
            .into_response(),
        3 => "after the storm\n".into_response(),
        // Large, and gzip-compressed in transit when the client accepts it (as GitLab does).
        6 => {
            let accepts_gzip = headers
                .get("accept-encoding")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("gzip"));
            if accepts_gzip {
                fake.gzip_requests.fetch_add(1, Ordering::SeqCst);
                ([("content-encoding", "gzip")], gzip(&fake.big_log)).into_response()
            } else {
                fake.big_log.to_vec().into_response()
            }
        }
        // GitLab's rate limit: 429 with a reset an hour away.
        7 => (
            StatusCode::TOO_MANY_REQUESTS,
            [
                ("ratelimit-remaining", "0".to_string()),
                ("ratelimit-reset", (unix_now() + 3600).to_string()),
            ],
            "Retry later",
        )
            .into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn github_logs(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Path((_owner, _repo, job)): Path<(String, String, u64)>,
) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {GITHUB_TOKEN}"))
    {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    match job {
        10 => (
            StatusCode::FOUND,
            [(
                "location",
                format!("http://127.0.0.1:{}/blob/10?sig=abc", fake.blob_port),
            )],
        )
            .into_response(),
        11 => StatusCode::GONE.into_response(),
        // GitHub's primary rate limit: 403 with no requests remaining until the reset.
        13 if fake.limited.fetch_add(1, Ordering::SeqCst) == 0 => (
            StatusCode::FORBIDDEN,
            [
                ("x-ratelimit-remaining", "0".to_string()),
                ("x-ratelimit-reset", unix_now().to_string()),
            ],
            r#"{"message": "API rate limit exceeded"}"#,
        )
            .into_response(),
        13 => (
            StatusCode::FOUND,
            [(
                "location",
                format!("http://127.0.0.1:{}/blob/13", fake.blob_port),
            )],
        )
            .into_response(),
        12 => (
            StatusCode::FOUND,
            [("location", "http://metadata.internal.example/latest")],
        )
            .into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn blob(headers: HeaderMap) -> Response {
    if headers.contains_key("authorization") {
        return (
            StatusCode::BAD_REQUEST,
            "the token must not follow the redirect",
        )
            .into_response();
    }
    b"2021-08-05T10:26:08Z caf\xe9 \x1b[31mfailed\x1b[0m\n"
        .to_vec()
        .into_response()
}

async fn fakes() -> (Fake, u16) {
    let blob_port = serve(Router::new().route("/blob/{id}", get(blob))).await;
    let fake = Fake {
        blob_port,
        big_log: Arc::new(big_log()),
        ..Fake::default()
    };
    let provider = Router::new()
        .route("/api/v4/projects/{project}/jobs/{job}", get(gitlab_job))
        .route(
            "/api/v4/projects/{project}/jobs/{job}/trace",
            get(gitlab_trace),
        )
        .route(
            "/repos/{owner}/{repo}/actions/jobs/{job}/logs",
            get(github_logs),
        )
        .with_state(fake.clone());
    (fake.clone(), serve(provider).await)
}

async fn stack(port: u16, blob_port: u16, gitlab_token: &str, max_bytes: usize) -> TestStack {
    let gitlab_token = gitlab_token.to_string();
    TestStack::with_config(move |config| {
        let url = Url::parse(&format!("http://127.0.0.1:{port}/")).expect("url");
        config.providers.gitlab_base = url.clone();
        config.providers.gitlab_token = Some(gitlab_token);
        config.providers.github_api = url;
        config.providers.github_token = Some(GITHUB_TOKEN.into());
        config.providers.github_log_hosts = vec![format!("http://127.0.0.1:{blob_port}")];
        config.providers.max_bytes = max_bytes;
    })
    .await
}

#[tokio::test]
async fn gitlab_logs_are_fetched_once_when_finished() {
    let (fake, port) = fakes().await;
    let stack = stack(port, fake.blob_port, GITLAB_TOKEN, 64 * 1024 * 1024).await;
    let expected = String::from_utf8_lossy(&fixtures::bytes(LOG)).to_string();
    let path = "/api/jobtrace?projectId=group%2Fsub%2Fapp&jobId=1";
    let (status, first) = stack.get(path).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["trace"], expected);
    assert_eq!(first["complete"], true);
    let (_, second) = stack.get(path).await;
    assert_eq!(second["trace"], expected);
    assert_eq!(
        fake.trace_requests.load(Ordering::SeqCst),
        1,
        "the second request reached the provider"
    );

    // A running job is fetched each time and not stored.
    let running = "/api/jobtrace?projectId=group%2Fsub%2Fapp&jobId=2";
    let (_, body) = stack.get(running).await;
    assert_eq!(body["complete"], false);
    assert_eq!(body["trace"], "partial log\n");
    stack.get(running).await;
    assert_eq!(fake.trace_requests.load(Ordering::SeqCst), 3);

    // A 429 storm is waited out.
    let (status, body) = stack
        .get("/api/jobtrace?projectId=group%2Fsub%2Fapp&jobId=3")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["trace"], "after the storm\n");

    let (status, body) = stack
        .get("/api/jobtrace?projectId=group%2Fsub%2Fapp&jobId=4")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn an_oversized_job_answer_is_refused_not_read_whole() {
    let (fake, port) = fakes().await;
    let stack = stack(port, fake.blob_port, GITLAB_TOKEN, 64 * 1024 * 1024).await;
    let (status, body) = stack
        .get("/api/jobtrace?projectId=group%2Fsub%2Fapp&jobId=8")
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(fake.trace_requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_rejected_token_is_a_502_that_does_not_show_it() {
    let (fake, port) = fakes().await;
    let stack = stack(port, fake.blob_port, "glpat-wrong-secret", 1024).await;
    let (status, body) = stack
        .get("/api/jobtrace?projectId=group%2Fsub%2Fapp&jobId=1")
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(message.contains("rejected"), "{message}");
    assert!(!body.to_string().contains("glpat-wrong-secret"));
}

#[tokio::test]
async fn logs_over_the_cap_are_cut_with_a_marker_and_not_stored() {
    let (fake, port) = fakes().await;
    let stack = stack(port, fake.blob_port, GITLAB_TOKEN, 1000).await;
    let (status, _) = stack
        .get("/api/jobtrace?projectId=group%2Fsub%2Fapp&jobId=5")
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, json) = stack
        .get("/api/jobtrace?projectId=group%2Fsub%2Fapp&jobId=5")
        .await;
    let trace = json["trace"].as_str().unwrap();
    assert!(trace.ends_with("limit]\n"), "{trace}");
    assert!(trace.len() < 1200);
    assert_eq!(
        fake.trace_requests.load(Ordering::SeqCst),
        2,
        "a truncated log is not stored"
    );
}

#[tokio::test]
async fn github_logs_follow_the_redirect_without_the_token_and_only_to_allowed_hosts() {
    let (fake, port) = fakes().await;
    let stack = stack(port, fake.blob_port, GITLAB_TOKEN, 1 << 20).await;
    let request = http::Request::builder()
        .uri("/api/jobtrace?provider=github&repo=octo%2Frepo&jobId=10&format=raw")
        .header(
            "authorization",
            format!("Bearer {}", buildlore_tests::keys::READ),
        )
        .body(axum::body::Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(stack.app.clone(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(
        &bytes[..],
        b"2021-08-05T10:26:08Z caf\xe9 \x1b[31mfailed\x1b[0m\n",
        "bytes served exactly"
    );
    let (_, clean) = stack
        .get("/api/jobtrace?provider=github&repo=octo%2Frepo&jobId=10&clean=true")
        .await;
    assert_eq!(clean["lossless"], false);
    assert!(clean["trace"].as_str().unwrap().ends_with(" failed\n"));

    let (status, body) = stack
        .get("/api/jobtrace?provider=github&repo=octo%2Frepo&jobId=11")
        .await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert!(body["error"].as_str().unwrap().contains("expired"));
    let (status, body) = stack
        .get("/api/jobtrace?provider=github&repo=octo%2Frepo&jobId=12")
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("not an allowed log host")
    );
}

#[tokio::test]
async fn a_provider_that_does_not_answer_is_a_502_within_the_timeouts() {
    async fn stall() -> &'static str {
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        "too late"
    }
    let port =
        serve(Router::new().route("/api/v4/projects/{project}/jobs/{job}", get(stall))).await;
    let stack = TestStack::with_config(move |config| {
        config.providers.gitlab_base =
            Url::parse(&format!("http://127.0.0.1:{port}/")).expect("url");
        config.providers.gitlab_token = Some(GITLAB_TOKEN.into());
        config.providers.read_timeout = std::time::Duration::from_millis(200);
        config.providers.max_attempts = 2;
    })
    .await;
    let started = std::time::Instant::now();
    let (status, body) = stack
        .get("/api/jobtrace?projectId=group%2Fsub%2Fapp&jobId=1")
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[tokio::test]
async fn a_long_log_arrives_gzipped_is_cached_in_chunks_and_pages_from_the_store() {
    let (fake, port) = fakes().await;
    let stack = stack(port, fake.blob_port, GITLAB_TOKEN, 64 * 1024 * 1024).await;
    let log = fake.big_log.clone();
    let raw = |offset: Option<u64>| {
        let stack = &stack;
        async move {
            let mut uri =
                "/api/jobtrace?projectId=group%2Fsub%2Fapp&jobId=6&format=raw".to_string();
            if let Some(offset) = offset {
                uri.push_str(&format!("&offset={offset}"));
            }
            let request = http::Request::builder()
                .uri(uri)
                .header(
                    "authorization",
                    format!("Bearer {}", buildlore_tests::keys::READ),
                )
                .body(axum::body::Body::empty())
                .unwrap();
            let response = tower::ServiceExt::oneshot(stack.app.clone(), request)
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let length: u64 = response.headers()["x-trace-length"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            let bytes = http_body_util::BodyExt::collect(response.into_body())
                .await
                .unwrap()
                .to_bytes();
            (bytes, length)
        }
    };
    // First page from the provider, the rest from the store.
    let (first, length) = raw(None).await;
    assert_eq!(length, log.len() as u64);
    assert_eq!(first.len(), 4 * 1024 * 1024);
    assert_eq!(&first[..], &log[..first.len()]);
    assert_eq!(
        fake.gzip_requests.load(Ordering::SeqCst),
        1,
        "gzip was not asked for"
    );
    let (second, _) = raw(Some(first.len() as u64)).await;
    assert_eq!(&second[..], &log[first.len()..]);
    let (_, tail) = stack
        .get("/api/jobtrace?projectId=group%2Fsub%2Fapp&jobId=6&tail=3")
        .await;
    let expected_tail = String::from_utf8_lossy(&log[log.len() - 4096..]).to_string();
    let last_lines: Vec<&str> = expected_tail.lines().rev().take(3).collect();
    let tail = tail["trace"].as_str().unwrap();
    for line in last_lines {
        assert!(tail.contains(line), "{tail:?} lacks {line:?}");
    }
    assert_eq!(fake.trace_requests.load(Ordering::SeqCst), 1);

    // The copy is stored in chunks, each under the item limit, and kept for the cache TTL.
    let items = stack.items().await;
    let chunks: Vec<_> = items
        .iter()
        .filter(|item| item["sk"].as_s().is_ok_and(|sk| sk.starts_with("CHUNK#")))
        .collect();
    assert_eq!(chunks.len(), log.len().div_ceil(256 * 1024));
    let head = items
        .iter()
        .find(|item| item["sk"].as_s().is_ok_and(|sk| sk == "HEAD"))
        .expect("a head item");
    let expires: i64 = head["expires_at"].as_n().unwrap().parse().unwrap();
    let in_days = (expires - chrono::Utc::now().timestamp()) / 86_400;
    assert!((29..=30).contains(&in_days), "kept {in_days} days");
}

#[tokio::test]
async fn rate_limits_are_waited_out_or_reported_with_when_to_retry() {
    let (fake, port) = fakes().await;
    let stack = stack(port, fake.blob_port, GITLAB_TOKEN, 1 << 20).await;
    // GitHub: out of requests until now → wait, then succeed.
    let (status, body) = stack
        .get("/api/jobtrace?provider=github&repo=octo%2Frepo&jobId=13")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(fake.limited.load(Ordering::SeqCst), 2);
    // GitLab: out of requests for an hour → 503 at once, saying when.
    let started = std::time::Instant::now();
    let request = http::Request::builder()
        .uri("/api/jobtrace?projectId=group%2Fsub%2Fapp&jobId=7")
        .header(
            "authorization",
            format!("Bearer {}", buildlore_tests::keys::READ),
        )
        .body(axum::body::Body::empty())
        .unwrap();
    let (status, headers, body) = stack.send(request).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body["error"].as_str().unwrap().contains("rate limit"));
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((3590..=3600).contains(&retry), "{retry}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[tokio::test]
async fn any_job_id_a_log_was_stored_under_reads_back_and_only_numbers_reach_the_provider() {
    let (fake, port) = fakes().await;
    let stack = stack(port, fake.blob_port, GITLAB_TOKEN, 64 * 1024 * 1024).await;
    let push = serde_json::json!({
        "provider": "gitlab", "project": "group/sub/app", "pipeline_id": 9,
        "job_id": "nightly#12 α", "job_name": "nightly", "status": "success",
        "log": "built in 3 minutes\n",
    });
    let (status, _, body) = stack
        .call(
            http::Method::POST,
            "/api/ingest/log",
            Some(buildlore_tests::keys::INGEST),
            Some(&push),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, body) = stack
        .get("/api/jobtrace?projectId=group%2Fsub%2Fapp&jobId=nightly%2312%20%CE%B1")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["trace"], "built in 3 minutes\n");
    let (status, body) = stack
        .get("/api/ai/cache?projectId=group%2Fsub%2Fapp&jobId=nightly%2312%20%CE%B1")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // An id no provider could have is not looked up there (nor put into its URL).
    let (status, body) = stack
        .get("/api/jobtrace?projectId=group%2Fsub%2Fapp&jobId=..%2F..%2F1")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(fake.trace_requests.load(Ordering::SeqCst), 0);
    let (status, body) = stack
        .get("/api/jobtrace?projectId=group%2Fsub%2Fapp&jobId=a%00b")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}
