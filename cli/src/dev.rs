//! `buildlore dev` and `buildlore bootstrap`.

use aws_lambda_events::event::sqs::SqsMessage;
use buildlore_api::{AppState, Config, function_app, routes, worker};
use buildlore_aws::AwsClients;
use buildlore_aws::bootstrap::{ensure_queues, ensure_table};
use buildlore_core::table::TABLE;
use std::collections::HashMap;
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

/// Receives from the analysis queue and hands batches to the worker exactly as the Lambda
/// SQS event source does: messages the worker reports as failed stay on the queue (and reach
/// the dead-letter queue after the redrive policy's receives); the rest are deleted.
async fn poll_queue(state: AppState, queue_url: String) {
    let sqs = state.clients.sqs.clone();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(10)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await;
        let messages = match received {
            Ok(output) => output.messages.unwrap_or_default(),
            Err(error) => {
                tracing::warn!(error = %buildlore_aws::errors::cause_chain(&error), "polling the analysis queue failed");
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let receipts: HashMap<String, String> = messages
            .iter()
            .filter_map(|m| Some((m.message_id.clone()?, m.receipt_handle.clone()?)))
            .collect();
        let events = messages.into_iter().map(to_event_message).collect();
        let response = worker::handle_batch(&state, events).await;
        let failed: Vec<&String> = response
            .batch_item_failures
            .iter()
            .map(|failure| &failure.item_identifier)
            .collect();
        for (id, receipt) in &receipts {
            if failed.contains(&id) {
                continue;
            }
            if let Err(error) = sqs
                .delete_message()
                .queue_url(&queue_url)
                .receipt_handle(receipt)
                .send()
                .await
            {
                tracing::warn!(message_id = %id, error = %buildlore_aws::errors::cause_chain(&error), "could not delete a processed message");
            }
        }
    }
}

fn to_event_message(message: aws_sdk_sqs::types::Message) -> SqsMessage {
    let mut event = SqsMessage::default();
    event.message_id = message.message_id;
    event.receipt_handle = message.receipt_handle;
    event.body = message.body;
    event.md5_of_body = message.md5_of_body;
    event.attributes = message
        .attributes
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| (name.as_str().to_string(), value))
        .collect();
    event
}
