//! `buildlore dev` and `buildlore bootstrap`.

use buildlore_api::{AppState, Config, function_app, routes, worker};
use buildlore_aws::AwsClients;
use buildlore_aws::bootstrap::{ensure_queues, ensure_table};
use buildlore_core::table::TABLE;
use std::net::SocketAddr;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(clap::Args)]
pub struct DevArgs {
    /// Address to listen on; loopback by default so nothing is exposed.
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// Do not poll the analysis queue.
    #[arg(long)]
    pub no_worker: bool,
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
    let config = Config::from_env()?;
    let state = AppState::new(config, AwsClients::from_env().await);
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
    axum::serve(listener, function_app(routes::all(), state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
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
