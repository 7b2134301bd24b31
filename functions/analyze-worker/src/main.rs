//! The analysis worker: an SQS event source delivers batches; failures are reported per
//! message (`ReportBatchItemFailures`) so only those are retried.
// The analysis future (an instrumented message inside the runtime's service) nests deeper
// than the compiler's default layout limit.
#![recursion_limit = "256"]

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use buildlore_api::AppState;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), buildlore_api::lambda::BoxError> {
    buildlore_api::telemetry::init();
    let state = AppState::from_env().await?;
    let state = &state;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, lambda_runtime::Error>(
            buildlore_api::worker::handle_batch(state, event.payload.records).await,
        )
    }))
    .await
}
