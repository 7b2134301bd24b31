//! `bench jobtrace`: fetch a long log from a fake GitLab through `GET /api/jobtrace`, which
//! copies it into the store as it arrives, and print MB/s and the process's peak RSS. The fake
//! provider streams the fixture logs over and over, so the figure is the service's memory, not
//! the fake's.

use crate::bench::{READ_KEY, bench_state, require_emulator};
use crate::bench_webhooks::{fixture_files, fixtures, read_fixture};
use crate::dev::BoxError;
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use buildlore_api::auth::ApiKeys;
use buildlore_api::{function_app, routes};
use buildlore_aws::AwsClients;
use buildlore_aws::bootstrap::ensure_table;
use buildlore_core::table::TABLE;
use std::time::Instant;

const FAKE_TOKEN: &str = "bench-gitlab-token";

/// The fixture logs, concatenated: the fake provider repeats them to any length.
fn fixture_logs() -> Result<Vec<u8>, BoxError> {
    let names = fixture_files(&fixtures().join("logchunks/logs"))?;
    let mut logs = Vec::new();
    for name in names.iter().take(40) {
        logs.extend_from_slice(&read_fixture(name)?);
    }
    Ok(logs)
}

/// Peak resident memory of this process so far, in MB (Linux `VmHWM`).
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// A fake GitLab that answers every job as failed and streams a `bytes`-long trace.
async fn fake_gitlab(logs: Vec<u8>, bytes: usize) -> Result<u16, BoxError> {
    let logs = std::sync::Arc::new(logs);
    let trace = move || {
        let logs = logs.clone();
        async move {
            const PIECE: usize = 64 * 1024;
            let pieces = (0..bytes.div_ceil(PIECE)).map(move |index| {
                let start = index * PIECE;
                let len = PIECE.min(bytes - start);
                let at = start % logs.len();
                let mut piece = Vec::with_capacity(len);
                while piece.len() < len {
                    let from = (at + piece.len()) % logs.len();
                    let take = (len - piece.len()).min(logs.len() - from);
                    piece.extend_from_slice(&logs[from..from + take]);
                }
                Ok::<_, std::io::Error>(piece)
            });
            Body::from_stream(futures_util::stream::iter(pieces))
        }
    };
    let router = Router::new()
        .route(
            "/api/v4/projects/{project}/jobs/{job}",
            get(|| async { r#"{"id": 1, "status": "failed"}"# }),
        )
        .route("/api/v4/projects/{project}/jobs/{job}/trace", get(trace));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move { axum::serve(listener, router).await.ok() });
    Ok(port)
}

pub async fn run(megabytes: usize) -> Result<(), BoxError> {
    require_emulator()?;
    let bytes = megabytes * 1024 * 1024;
    let logs = fixture_logs()?;
    let provider_port = fake_gitlab(logs, bytes).await?;
    let clients = AwsClients::from_env().await;
    let table = format!(
        "buildlore-bench-jobtrace-{}",
        chrono::Utc::now().timestamp_millis()
    );
    ensure_table(&clients.dynamodb, &table, &TABLE).await?;
    let gitlab_base = format!("http://127.0.0.1:{provider_port}/").parse()?;
    let keys = ApiKeys::from_lists("", READ_KEY, "")?;
    let state = bench_state(&clients, &table, keys, |config| {
        config.providers.gitlab_base = gitlab_base;
        config.providers.gitlab_token = Some(FAKE_TOKEN.into());
    })?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, function_app(routes::table::ALL, state)).await;
    });
    let http = reqwest::Client::new();
    println!(
        "bench jobtrace: a {megabytes} MB GitLab log through GET /api/jobtrace, table {table}"
    );
    let before = peak_rss_mb().unwrap_or(0.0);
    let mut figures = Vec::new();
    for (label, job) in [("fetch + cache", 1), ("served from the store", 1)] {
        let started = Instant::now();
        let mut offset = Some(0u64);
        let mut total = 0u64;
        while let Some(at) = offset {
            let page: serde_json::Value = http
                .get(format!(
                    "http://127.0.0.1:{port}/api/jobtrace?projectId=bench%2Fapp&jobId={job}&offset={at}"
                ))
                .bearer_auth(READ_KEY)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            total = page["total_length"].as_u64().unwrap_or(0);
            offset = page["next_offset"].as_u64();
            // The first answer carries the first page; the rest of the log is in the store.
            if label == "fetch + cache" {
                break;
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        if total != bytes as u64 {
            return Err(format!("{label}: the log is {total} bytes, expected {bytes}").into());
        }
        figures.push((label, seconds, peak_rss_mb().unwrap_or(0.0)));
    }
    for (label, seconds, peak) in figures {
        println!(
            "  {label:<24} {:>6.1} s  {:>6.1} MB/s  peak RSS so far {peak:.1} MB",
            seconds,
            megabytes as f64 / seconds
        );
    }
    println!(
        "  ({before:.1} MB before the first request: the runtime, the fake provider and its logs; target ≤ 64 MB)"
    );
    Ok(())
}
