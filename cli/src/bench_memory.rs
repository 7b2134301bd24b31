//! `buildlore bench memory`: the resident memory of a `buildlore dev` process (started by the
//! bench, on the emulator) while it takes compressed log pushes that decode to tens of
//! megabytes, one and many at once, and while unauthenticated senders post the largest
//! webhook bodies. Peak figures are the kernel's high-water mark (`VmHWM`), reset before each
//! phase.

use crate::bench::require_emulator;
use crate::dev::BoxError;
use buildlore_aws::AwsClients;
use buildlore_aws::bootstrap::ensure_table;
use buildlore_core::compression::gzip;
use buildlore_core::table::TABLE;
use futures_util::future::join_all;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const INGEST_KEY: &str = "bench-memory-ingest-key-0001";
const GITLAB_TOKEN: &str = "bench-memory-gitlab-token";
const GITHUB_SECRET: &str = "bench-memory-github-secret";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `VmRSS` and `VmHWM` of a process, in MB.
fn memory_mb(pid: u32) -> Result<(f64, f64), BoxError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> f64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

/// Resets the process's high-water mark to its current RSS (Linux: `clear_refs` value 5).
fn reset_peak(pid: u32) -> Result<(), BoxError> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")?;
    Ok(())
}

/// A job log of about `megabytes` MB that compresses like a real one that repeats itself
/// (test output, progress lines): numbered lines around a repeated block.
fn job_log(megabytes: usize) -> Vec<u8> {
    let block: String = (0..64)
        .map(|n| format!("[INFO] Running com.example.service.Suite{n}Test\n[INFO] Tests run: 12, Failures: 0, Errors: 0, Skipped: 0, Time elapsed: 0.4 s\n"))
        .collect();
    let mut log = Vec::with_capacity(megabytes << 20);
    let mut round = 0;
    while log.len() < megabytes << 20 {
        round += 1;
        log.extend_from_slice(format!("--- round {round}\n").as_bytes());
        log.extend_from_slice(block.as_bytes());
    }
    log.extend_from_slice(b"[ERROR] Tests run: 12, Failures: 1\n[ERROR] BUILD FAILURE\n");
    log
}

fn push_body(job_id: usize, log: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(log);
    gzip(
        &serde_json::to_vec(&serde_json::json!({
            "provider": "gitlab", "project": "bench/memory", "job_id": job_id.to_string(),
            "job_name": "test", "status": "failed", "branch": "main", "log": text,
        }))
        .unwrap_or_default(),
    )
}

pub async fn run(megabytes: usize, concurrency: usize) -> Result<(), BoxError> {
    require_emulator()?;
    let clients = AwsClients::from_env().await;
    let table = format!(
        "buildlore-bench-memory-{}",
        chrono::Utc::now().timestamp_millis()
    );
    ensure_table(&clients.dynamodb, &table, &TABLE).await?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let server = Server(
        Command::new(std::env::current_exe()?)
            .args([
                "dev",
                "--no-worker",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .env("TABLE_NAME", &table)
            .env("INGEST_API_KEY", INGEST_KEY)
            .env("GITLAB_WEBHOOK_SECRET", GITLAB_TOKEN)
            .env("GITHUB_WEBHOOK_SECRET", GITHUB_SECRET)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .spawn()?,
    );
    let pid = server.0.id();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(format!("{base}/api/health")).send().await.is_err() {
        if Instant::now() > deadline {
            return Err("buildlore dev did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let log = job_log(megabytes);
    let sample = push_body(0, &log);
    println!(
        "log push: {:.1} MB of log, {:.0} KB as sent (JSON, gzip)",
        log.len() as f64 / 1048576.0,
        sample.len() as f64 / 1024.0
    );
    let push = |job_id: usize| {
        let http = http.clone();
        let url = format!("{base}/api/ingest/log");
        let body = push_body(job_id, &log);
        async move {
            http.post(url)
                .bearer_auth(INGEST_KEY)
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .body(body)
                .send()
                .await
                .map(|response| response.status().as_u16())
                .unwrap_or(0)
        }
    };
    let (idle, _) = memory_mb(pid)?;
    println!(
        "{:<40} {:>10} {:>9} {:>10}  answers",
        "phase", "before MB", "peak MB", "growth MB"
    );
    println!(
        "{:<40} {:>10} {idle:>9.1} {:>10}",
        "idle, after start", "", ""
    );
    // Each phase: the RSS before it, the peak during it, and the answers' status codes (0: the
    // connection was closed before the request was sent whole, as a server refusing a body
    // early does).
    let phase = |label: &str, before: f64, statuses: Vec<u16>| -> Result<(), BoxError> {
        let (_, peak) = memory_mb(pid)?;
        let mut counts = std::collections::BTreeMap::new();
        for status in statuses {
            *counts.entry(status).or_insert(0) += 1;
        }
        let answers: Vec<String> = counts
            .iter()
            .map(|(status, count)| format!("{count}× {status}"))
            .collect();
        println!(
            "{label:<40} {before:>10.1} {peak:>9.1} {:>10.1}  {}",
            peak - before,
            answers.join(", ")
        );
        Ok(())
    };
    let start_phase = || -> Result<f64, BoxError> {
        reset_peak(pid)?;
        Ok(memory_mb(pid)?.0)
    };

    let before = start_phase()?;
    let one = vec![push(1).await];
    phase("1 push", before, one)?;

    let before = start_phase()?;
    let many = join_all((0..concurrency).map(|n| push(100 + n))).await;
    phase(&format!("{concurrency} concurrent pushes"), before, many)?;

    // Unauthenticated webhook senders, with the largest bodies a webhook may have.
    let huge = vec![b' '; 5 * 1024 * 1024 - 1];
    let post = |path: &'static str, headers: Vec<(&'static str, &'static str)>| {
        let http = http.clone();
        let url = format!("{base}{path}");
        let body = huge.clone();
        async move {
            let mut request = http.post(url).body(body);
            for (name, value) in headers {
                request = request.header(name, value);
            }
            request
                .send()
                .await
                .map(|response| response.status().as_u16())
                .unwrap_or(0)
        }
    };
    let before = start_phase()?;
    let github = join_all((0..100).map(|_| {
        post(
            "/webhooks/github",
            vec![
                ("x-github-event", "workflow_run"),
                (
                    "x-hub-signature-256",
                    "sha256=0000000000000000000000000000000000000000000000000000000000000000",
                ),
            ],
        )
    }))
    .await;
    phase("100 unsigned 5 MB GitHub webhooks", before, github)?;
    let before = start_phase()?;
    let gitlab = join_all((0..100).map(|_| {
        post(
            "/webhooks/gitlab",
            vec![
                ("x-gitlab-event", "Pipeline Hook"),
                ("x-gitlab-token", "wrong"),
            ],
        )
    }))
    .await;
    phase("100 wrong-token 5 MB GitLab webhooks", before, gitlab)?;
    drop(server);
    Ok(())
}
