//! `buildlore dev` and `buildlore bootstrap`.

use buildlore_api::{AppState, Config, function_app, routes, worker};
use buildlore_aws::AwsClients;
use buildlore_aws::bootstrap::{ensure_queues, ensure_table};
use buildlore_core::table::TABLE;
use std::net::SocketAddr;
use std::time::Duration;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(clap::Args)]
pub struct DevArgs {
    /// Address to listen on; loopback by default so nothing is exposed.
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// Do not poll the analysis queue.
    #[arg(long)]
    pub no_worker: bool,
    /// A connection that has not sent a request's headers within this many seconds is closed
    /// (API Gateway does the same on AWS), so half-open connections cannot pile up.
    #[arg(long, default_value_t = 10)]
    pub header_timeout_seconds: u64,
    /// A request body that sends nothing for this many seconds is abandoned.
    #[arg(long, default_value_t = 30)]
    pub body_timeout_seconds: u64,
}

#[derive(clap::Args)]
pub struct BootstrapArgs {
    /// Table name (default: $TABLE_NAME, else `buildlore`).
    #[arg(long)]
    pub table: Option<String>,
    /// Analysis queue name; its dead-letter queue is `<name>-dlq`.
    #[arg(long, default_value = "buildlore-analysis")]
    pub queue: String,
}

pub async fn bootstrap(args: BootstrapArgs) -> Result<(), BoxError> {
    let clients = AwsClients::from_env().await;
    let table = args
        .table
        .or_else(|| std::env::var("TABLE_NAME").ok())
        .unwrap_or_else(|| "buildlore".to_string());
    ensure_table(&clients.dynamodb, &table, &TABLE).await?;
    let queues = ensure_queues(&clients.sqs, &args.queue).await?;
    println!("TABLE_NAME={table}");
    println!("ANALYSIS_QUEUE_URL={}", queues.analysis);
    println!("ANALYSIS_DLQ_URL={}", queues.dead_letter);
    Ok(())
}

pub async fn run(args: DevArgs) -> Result<(), BoxError> {
    let clients = AwsClients::from_env().await;
    let config = Config::from_env_and_secrets(&clients).await?;
    let state = AppState::new(config, clients);
    state.keep_secrets_fresh();
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let address = listener.local_addr()?;
    if !args.no_worker {
        match state.config.analysis_queue_url.clone() {
            Some(queue_url) => {
                tokio::spawn(poll_queue(state.clone(), queue_url));
            }
            None => tracing::warn!("ANALYSIS_QUEUE_URL is not set; the analysis worker is off"),
        }
    }
    println!("buildlore dev listening on http://{address}");
    let timeouts = Timeouts {
        header: Duration::from_secs(args.header_timeout_seconds.max(1)),
        body: Duration::from_secs(args.body_timeout_seconds.max(1)),
    };
    tokio::select! {
        served = serve(listener, function_app(routes::table::ALL, state), timeouts) => served?,
        () = shutdown_signal() => {}
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
struct Timeouts {
    header: Duration,
    body: Duration,
}

/// HTTP/1.1 with read timeouts on the headers and between body pieces (axum's own `serve`
/// has neither).
async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    timeouts: Timeouts,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let app = tower_http::timeout::RequestBodyTimeout::new(app, timeouts.body);
    loop {
        let (stream, _) = listener.accept().await?;
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(timeouts.header)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended");
            }
        });
    }
}

/// Ctrl-C, or SIGTERM (what `kill` sends, and what a backgrounded job gets instead of SIGINT).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Polls the analysis queue for the worker, as the Lambda SQS event source would.
async fn poll_queue(state: AppState, queue_url: String) {
    loop {
        if let Err(error) = worker::poll_once(&state, &queue_url, 10, None).await {
            tracing::warn!(%error, "polling the analysis queue failed");
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        }
    }
}
