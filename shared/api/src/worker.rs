//! The analysis worker's batch handler, shared by the Lambda (SQS event source) and the
//! local poller in `buildlore dev`.

use crate::state::AppState;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};
use serde_json::Value;

/// The message schema versions this worker understands.
pub const SUPPORTED_VERSIONS: &[u64] = &[];

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// Retrying cannot help: the message is logged and acknowledged.
    #[error("permanent: {0}")]
    Permanent(String),
    /// Retried by SQS, then moved to the dead-letter queue.
    #[error("retryable: {0}")]
    Retryable(String),
}

/// Processes each message; returns the ids of those SQS should deliver again.
pub async fn handle_batch(state: &AppState, messages: Vec<SqsMessage>) -> SqsBatchResponse {
    let mut failures = Vec::new();
    for message in messages {
        let id = message.message_id.clone().unwrap_or_default();
        let span = tracing::info_span!("message", message_id = %id);
        let _entered = span.enter();
        match process(state, &message) {
            Ok(()) => tracing::info!("processed"),
            Err(MessageError::Permanent(reason)) => {
                tracing::error!(%reason, "dropped: cannot be processed");
            }
            Err(MessageError::Retryable(reason)) => {
                tracing::warn!(%reason, "will be retried");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                failures.push(failure);
            }
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}

fn process(_state: &AppState, message: &SqsMessage) -> Result<(), MessageError> {
    let body = message.body.as_deref().unwrap_or_default();
    let parsed: Value = serde_json::from_str(body)
        .map_err(|e| MessageError::Permanent(format!("body is not JSON: {e}")))?;
    let version = parsed
        .get("version")
        .and_then(Value::as_u64)
        .ok_or_else(|| MessageError::Permanent("message has no numeric `version`".to_string()))?;
    if !SUPPORTED_VERSIONS.contains(&version) {
        // A newer producer than this worker: keep the message for a worker that knows it.
        return Err(MessageError::Retryable(format!(
            "message version {version} is not supported by this worker (analysis is not built yet)"
        )));
    }
    Ok(())
}
