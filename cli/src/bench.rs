//! Benchmarks that print their figures. They run against the local emulator
//! (`AWS_ENDPOINT_URL`), each in a fresh table of its own.

use crate::dev::BoxError;
use buildlore_api::auth::ApiKeys;
use buildlore_api::{AppState, Config, function_app, routes};
use buildlore_aws::AwsClients;
use buildlore_aws::bootstrap::ensure_table;
use buildlore_core::table::TABLE;
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// POST builds over HTTP to the dev server (started in this process, on the emulator)
    /// and report throughput, latency, errors, records stored and DynamoDB calls per build.
    Ingest {
        #[arg(long, default_value_t = 2000)]
        count: usize,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Builds are spread over this many repos.
        #[arg(long, default_value_t = 10)]
        repos: usize,
    },
    /// The cost of a 7-day pipeline summary over a small and a large history: items read and
    /// DynamoDB calls must not grow with the number of builds stored.
    Summary {
        #[arg(long, default_value_t = 1000)]
        small: usize,
        #[arg(long, default_value_t = 20000)]
        large: usize,
        #[arg(long, default_value_t = 10)]
        projects: usize,
    },
    /// Webhook deliveries per second on one core: authenticate (GitLab token, GitHub HMAC),
    /// parse and normalise the fixture payloads; storage excluded.
    Webhooks {
        /// Seconds to measure each payload.
        #[arg(long, default_value_t = 1.0)]
        seconds: f64,
    },
    /// Fetch a long log from a fake GitLab through `/api/jobtrace` (copied into the store as
    /// it arrives), then read it back from the store; MB/s and the process's peak RSS.
    Jobtrace {
        #[arg(long, default_value_t = 50)]
        megabytes: usize,
    },
    /// JUnit reports: parse speed on one core (plain and gzip) and peak RSS for a generated
    /// report, then the DynamoDB calls and write units of storing it with its failures.
    Junit {
        #[arg(long, default_value_t = 5000)]
        tests: usize,
        #[arg(long, default_value_t = 10)]
        megabytes: usize,
        #[arg(long, default_value_t = 20)]
        failures: usize,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// Resident memory of a `buildlore dev` process taking gzip log pushes that decode to
    /// `megabytes` each (one, then `concurrency` at once) and 100 unauthenticated 5 MB
    /// webhook posts; peak RSS per phase.
    Memory {
        #[arg(long, default_value_t = 31)]
        megabytes: usize,
        #[arg(long, default_value_t = 50)]
        concurrency: usize,
    },
    /// Cold start of each function binary (exec to the first response through a fake Lambda
    /// Runtime API), next to a minimal lambda_http hello-world of the same profile.
    Init {
        /// Where the binaries are (default: $CARGO_TARGET_DIR/release, or target/release).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
        #[arg(long, default_value_t = 7)]
        runs: usize,
    },
    /// Triage speed on one core over a corpus of the fixture logs, next to `grep -c -E`.
    Triage {
        #[arg(long, default_value_t = 256)]
        megabytes: usize,
        /// Rounds of prefilter, triage and grep, one after the other (a shared machine's speed
        /// drifts: the median of a few rounds says more than one).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
}

pub async fn run(command: BenchCommand) -> Result<(), BoxError> {
    match command {
        BenchCommand::Webhooks { seconds } => crate::bench_webhooks::run(seconds),
        BenchCommand::Init { dir, runs } => crate::bench_init::run(dir, runs.max(1)).await,
        BenchCommand::Triage { megabytes, rounds } => {
            crate::bench_triage::run(megabytes.max(1), rounds.max(1))
        }
        BenchCommand::Junit {
            tests,
            megabytes,
            failures,
            rounds,
        } => crate::bench_junit::run(tests.max(1), megabytes.max(1), failures, rounds.max(1)).await,
        BenchCommand::Jobtrace { megabytes } => crate::bench_jobtrace::run(megabytes.max(1)).await,
        BenchCommand::Memory {
            megabytes,
            concurrency,
        } => crate::bench_memory::run(megabytes.max(1), concurrency.max(1)).await,
        BenchCommand::Summary {
            small,
            large,
            projects,
        } => summary(small, large, projects.max(1)).await,
        BenchCommand::Ingest {
            count,
            concurrency,
            repos,
        } => ingest(count, concurrency, repos.max(1)).await,
    }
}

const INGEST_KEY: &str = "bench-ingest-key-0000000000";
pub(crate) const READ_KEY: &str = "bench-read-key-00000000000000";

/// The service's state over a benchmark's own table, configured as by default otherwise
/// (then changed by `adjust`).
pub(crate) fn bench_state(
    clients: &AwsClients,
    table: &str,
    keys: ApiKeys,
    adjust: impl FnOnce(&mut Config),
) -> Result<AppState, BoxError> {
    let mut config = Config::from_lookup(|name| (name == "TABLE_NAME").then(|| table.to_string()))?;
    config.keys = keys;
    adjust(&mut config);
    Ok(AppState::new(config, clients.clone()))
}

pub(crate) fn require_emulator() -> Result<(), BoxError> {
    if std::env::var("AWS_ENDPOINT_URL").is_err() {
        return Err("set AWS_ENDPOINT_URL to the local emulator (infra/local/run starts one on http://127.0.0.1:4566)".into());
    }
    Ok(())
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

async fn ingest(count: usize, concurrency: usize, repos: usize) -> Result<(), BoxError> {
    require_emulator()?;
    let clients = AwsClients::from_env().await;
    let table = format!("buildlore-bench-{}", chrono::Utc::now().timestamp_millis());
    ensure_table(&clients.dynamodb, &table, &TABLE).await?;
    let state = bench_state(
        &clients,
        &table,
        ApiKeys::from_lists(INGEST_KEY, READ_KEY, "")?,
        |_| {},
    )?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, function_app(routes::table::ALL, state)).await;
    });

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let started_at = chrono::Utc::now() - chrono::Duration::hours(1);
    clients.stats.reset();
    let started = Instant::now();
    let results: Vec<(Duration, Result<u16, String>)> = futures_util::stream::iter(0..count)
        .map(|n| {
            let http = http.clone();
            let url = format!("{base}/api/v1/builds");
            let body = json!({
                "build_id": format!("bench-{n}"),
                "repo": format!("bench/repo-{}", n % repos),
                "branch": if n % 3 == 0 { "main" } else { "feature/x" },
                "status": if n % 7 == 0 { "failed" } else { "success" },
                "commit": format!("{n:040x}"),
                "duration_ms": 30_000 + (n as u64 * 7919) % 600_000,
                "timestamp": (started_at + chrono::Duration::milliseconds(n as i64)).to_rfc3339(),
            });
            async move {
                let sent = Instant::now();
                let outcome = http
                    .post(url)
                    .bearer_auth(INGEST_KEY)
                    .json(&body)
                    .send()
                    .await
                    .map(|response| response.status().as_u16())
                    .map_err(|e| e.to_string());
                (sent.elapsed(), outcome)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let calls = clients.stats.snapshot();

    let mut latencies: Vec<Duration> = results.iter().map(|(latency, _)| *latency).collect();
    latencies.sort();
    let created = results.iter().filter(|(_, r)| matches!(r, Ok(201))).count();
    let errors = count - created;

    let mut found = 0usize;
    for repo in 0..repos {
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!("{base}/api/v1/builds?repo=bench/repo-{repo}&limit=100");
            if let Some(cursor) = &cursor {
                url.push_str(&format!("&cursor={cursor}"));
            }
            let page: Value = http
                .get(url)
                .bearer_auth(READ_KEY)
                .send()
                .await?
                .json()
                .await?;
            found += page["builds"].as_array().map_or(0, Vec::len);
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => break,
            }
        }
    }

    let per_build = |n: u64| n as f64 / count.max(1) as f64;
    let writes: u64 = calls
        .iter()
        .filter(|(op, _)| {
            [
                "TransactWriteItems",
                "PutItem",
                "UpdateItem",
                "BatchWriteItem",
                "DeleteItem",
            ]
            .iter()
            .any(|w| op.ends_with(w))
        })
        .map(|(_, n)| n)
        .sum();
    let total_calls: u64 = calls.values().sum();
    println!(
        "bench ingest: {count} builds over {repos} repos, concurrency {concurrency}, table {table}"
    );
    println!("  elapsed            {:.2} s", elapsed.as_secs_f64());
    println!(
        "  throughput         {:.0} builds/s",
        count as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  latency p50        {:.1} ms",
        percentile(&latencies, 0.50).as_secs_f64() * 1000.0
    );
    println!(
        "  latency p99        {:.1} ms",
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0
    );
    println!(
        "  latency max        {:.1} ms",
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0
    );
    println!("  created (201)      {created}");
    println!("  errors             {errors}");
    println!("  records found      {found}");
    for (operation, n) in &calls {
        println!(
            "  calls {operation:<28} {n} ({:.2} per build)",
            per_build(*n)
        );
    }
    println!("  write calls/build  {:.2}", per_build(writes));
    println!("  all calls/build    {:.2}", per_build(total_calls));
    if found != count || errors > 0 {
        return Err(format!(
            "expected {count} records and no errors, found {found} with {errors} errors"
        )
        .into());
    }
    Ok(())
}

/// Stores builds `from..to` directly through the recording use case (as the ingest handler
/// does), spread over the projects and the last seven days.
async fn store_builds(
    state: &AppState,
    from: usize,
    to: usize,
    projects: usize,
) -> Result<(), BoxError> {
    let now = chrono::Utc::now();
    let results: Vec<Result<(), BoxError>> = futures_util::stream::iter(from..to)
        .map(|n| {
            let store = state.store.clone();
            async move {
                let body = json!({
                    "build_id": format!("b-{n}"),
                    "repo": format!("bench/project-{}", n % projects),
                    "branch": "main",
                    "status": if n % 5 == 0 { "failed" } else { "success" },
                    "duration_ms": 10_000 + (n as u64 * 7919) % 900_000,
                    "timestamp": (now - chrono::Duration::minutes((n as i64 * 37) % (6 * 24 * 60))).to_rfc3339(),
                });
                let build = buildlore_core::build::BuildSubmission::parse(&body, now)?;
                buildlore_core::record::record(&store, build).await?;
                Ok(())
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    results.into_iter().collect()
}

async fn measure_summary(
    state: &AppState,
    clients: &AwsClients,
    builds: usize,
) -> Result<(usize, u64, i64), BoxError> {
    use buildlore_core::summary::{
        ProjectScope, SummarySource, days_between, parse_since, pipeline_summary,
    };
    let now = chrono::Utc::now();
    let since = parse_since(Some("7d"), now)?;
    let items = state
        .store
        .day_counters(&days_between(since, now), &ProjectScope::All)
        .await?
        .len();
    clients.stats.reset();
    let started = Instant::now();
    let summary = pipeline_summary(&state.store, since, now, &ProjectScope::All).await?;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let calls = clients.stats.total();
    println!(
        "  {builds:>6} builds stored: summary read {items} counter items in {calls} DynamoDB calls \
         (counters: one query per day; recent runs: one batch read per 100 projects) in \
         {elapsed_ms:.0} ms; it counts {} runs",
        summary.summary.total_pipelines
    );
    Ok((items, calls, summary.summary.total_pipelines))
}

async fn summary(small: usize, large: usize, projects: usize) -> Result<(), BoxError> {
    require_emulator()?;
    let clients = AwsClients::from_env().await;
    let table = format!(
        "buildlore-bench-summary-{}",
        chrono::Utc::now().timestamp_millis()
    );
    ensure_table(&clients.dynamodb, &table, &TABLE).await?;
    let state = bench_state(&clients, &table, ApiKeys::default(), |_| {})?;
    println!("bench summary: 7-day summary over {projects} projects, table {table}");
    let started = Instant::now();
    store_builds(&state, 0, small, projects).await?;
    let (small_items, small_calls, small_runs) = measure_summary(&state, &clients, small).await?;
    store_builds(&state, small, large, projects).await?;
    println!(
        "  (stored {large} builds in {:.0} s)",
        started.elapsed().as_secs_f64()
    );
    let (large_items, large_calls, large_runs) = measure_summary(&state, &clients, large).await?;
    let growth = |a: f64, b: f64| (b - a) / a.max(1.0) * 100.0;
    println!(
        "  growth from {small} to {large} builds: items read {:+.1}%, calls {:+.1}% (target: within 10%)",
        growth(small_items as f64, large_items as f64),
        growth(small_calls as f64, large_calls as f64)
    );
    if small_runs != small as i64 || large_runs != large as i64 {
        return Err(format!("the summaries counted {small_runs} and {large_runs} runs").into());
    }
    Ok(())
}
