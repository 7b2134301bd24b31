//! `buildlore bench init`: the cold start of each function binary, next to a minimal
//! `lambda_http` hello-world built with the same profile. A fake Lambda Runtime API on
//! loopback hands each process one event (an HTTP API request for `GET /api/health`; an
//! empty SQS batch for the worker) and the time from exec to the posted response is the
//! figure: initialisation (configuration, clients) plus the first invocation.

use crate::dev::BoxError;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::path::{Path as FilePath, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

const FUNCTIONS: &[&str] = &[
    "ingest",
    "query",
    "trace",
    "events",
    "analyze",
    "analyze-worker",
];
const HELLO: &str = "lambda_hello";

/// One process's exchange with the fake Runtime API.
#[derive(Default)]
struct Exchange {
    event: Mutex<Option<Value>>,
    answered: Notify,
    failure: Mutex<Option<String>>,
}

async fn next_invocation(State(exchange): State<Arc<Exchange>>) -> Response {
    let Some(event) = exchange.event.lock().map(|mut e| e.take()).unwrap_or(None) else {
        // One event per process: later polls wait until the process is stopped.
        std::future::pending::<()>().await;
        return StatusCode::NO_CONTENT.into_response();
    };
    let mut response = axum::Json(event).into_response();
    let deadline = (chrono::Utc::now() + chrono::Duration::seconds(30)).timestamp_millis();
    let headers = response.headers_mut();
    for (name, value) in [
        (
            "lambda-runtime-aws-request-id",
            "bench-request-1".to_string(),
        ),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:000000000000:function:bench".to_string(),
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000".to_string(),
        ),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

async fn response_posted(
    State(exchange): State<Arc<Exchange>>,
    Path(_id): Path<String>,
) -> StatusCode {
    exchange.answered.notify_one();
    StatusCode::ACCEPTED
}

async fn error_posted(
    State(exchange): State<Arc<Exchange>>,
    _headers: HeaderMap,
    body: String,
) -> StatusCode {
    if let Ok(mut failure) = exchange.failure.lock() {
        *failure = Some(body);
    }
    exchange.answered.notify_one();
    StatusCode::ACCEPTED
}

async fn fake_runtime_api(exchange: Arc<Exchange>) -> Result<u16, BoxError> {
    let router = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response_posted),
        )
        .route(
            "/2018-06-01/runtime/invocation/{id}/error",
            post(error_posted),
        )
        .route("/2018-06-01/runtime/init/error", post(error_posted))
        .with_state(exchange);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move { axum::serve(listener, router).await.ok() });
    Ok(port)
}

/// An HTTP API (payload 2.0) request for `GET /api/health`.
fn health_request() -> Value {
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/api/health", "rawQueryString": "",
        "headers": {"host": "bench.execute-api.us-east-1.amazonaws.com", "user-agent": "bench"},
        "requestContext": {
            "accountId": "000000000000", "apiId": "bench", "domainName": "bench.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "bench", "requestId": "bench-request-1", "routeKey": "$default", "stage": "$default",
            "time": "02/Dec/2026:12:00:00 +0000", "timeEpoch": 1_796_212_800_000_u64,
            "http": {"method": "GET", "path": "/api/health", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench"},
        },
        "isBase64Encoded": false,
    })
}

/// One cold start: exec to the posted response.
async fn cold_start(binary: &FilePath, event: Value) -> Result<Duration, BoxError> {
    let exchange = Arc::new(Exchange::default());
    *exchange.event.lock().map_err(|_| "poisoned")? = Some(event);
    let port = fake_runtime_api(exchange.clone()).await?;
    let started = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("TABLE_NAME", "bench")
        .env("INGEST_API_KEY", "bench-ingest-key-0000000000")
        .env("READ_API_KEY", "bench-read-key-00000000000000")
        .env("ADMIN_API_KEY", "bench-admin-key-0000000000000")
        .env("SESSION_SECRET", "bench-session-secret-000000000000000000")
        .env(
            "ANALYSIS_QUEUE_URL",
            "http://127.0.0.1:9/000000000000/bench",
        )
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let answered =
        tokio::time::timeout(Duration::from_secs(20), exchange.answered.notified()).await;
    let elapsed = started.elapsed();
    child.kill().await.ok();
    answered.map_err(|_| format!("{} did not answer within 20 s", binary.display()))?;
    if let Some(failure) = exchange.failure.lock().map_err(|_| "poisoned")?.take() {
        return Err(format!("{} reported an error: {failure}", binary.display()).into());
    }
    Ok(elapsed)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn milliseconds(time: Duration) -> f64 {
    time.as_secs_f64() * 1000.0
}

pub async fn run(dir: Option<PathBuf>, runs: usize) -> Result<(), BoxError> {
    let dir = dir.unwrap_or_else(|| {
        let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
        PathBuf::from(target).join("release")
    });
    let binary = |name: &str| dir.join(name);
    for name in FUNCTIONS.iter().chain([&HELLO]) {
        if !binary(name).exists() {
            return Err(format!(
                "{} is missing: build it first (cargo build --release --bins)",
                binary(name).display()
            )
            .into());
        }
    }
    let mut hello = Vec::new();
    for _ in 0..runs {
        hello.push(cold_start(&binary(HELLO), health_request()).await?);
    }
    let hello = median(hello);
    let limit = hello * 2 + Duration::from_millis(5);
    println!(
        "cold start (exec to first response), median of {runs}, binaries in {}",
        dir.display()
    );
    println!(
        "{:<16} {:>10} {:>10}  target ≤ 2 × hello + 5 ms = {:.1} ms",
        "binary",
        "ms",
        "× hello",
        milliseconds(limit)
    );
    println!("{:<16} {:>10.1} {:>10}", HELLO, milliseconds(hello), "1.00");
    for name in FUNCTIONS {
        let event = if *name == "analyze-worker" {
            json!({"Records": []})
        } else {
            health_request()
        };
        let mut times = Vec::new();
        for _ in 0..runs {
            times.push(cold_start(&binary(name), event.clone()).await?);
        }
        let time = median(times);
        println!(
            "{:<16} {:>10.1} {:>10.2}  {}",
            name,
            milliseconds(time),
            time.as_secs_f64() / hello.as_secs_f64(),
            if time <= limit { "met" } else { "not met" }
        );
    }
    Ok(())
}
