//! The analysis queue on SQS. It also carries backfill steps, told apart by their `kind`.

use crate::errors::cause_chain;
use buildlore_core::analysis_request::{AnalysisQueue, AnalysisRequest, QueueError};
use buildlore_core::backfill::{
    BackfillMessage, BackfillQueue, MAX_STEP_DELAY_SECONDS, StepQueueError,
};

#[derive(Debug, Clone)]
pub struct SqsAnalysisQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl SqsAnalysisQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        SqsAnalysisQueue {
            client,
            url: url.into(),
        }
    }
}

impl AnalysisQueue for SqsAnalysisQueue {
    async fn send(&self, request: &AnalysisRequest) -> Result<(), QueueError> {
        let body =
            serde_json::to_string(request).map_err(|e| QueueError::Unavailable(e.to_string()))?;
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| QueueError::Unavailable(cause_chain(&e)))?;
        Ok(())
    }
}

impl BackfillQueue for SqsAnalysisQueue {
    async fn send_step(
        &self,
        message: &BackfillMessage,
        delay_seconds: u64,
    ) -> Result<(), StepQueueError> {
        let body = serde_json::to_string(message).map_err(|e| StepQueueError(e.to_string()))?;
        let delay = i32::try_from(delay_seconds.min(MAX_STEP_DELAY_SECONDS)).unwrap_or(0);
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .delay_seconds(delay)
            .send()
            .await
            .map_err(|e| StepQueueError(cause_chain(&e)))?;
        Ok(())
    }
}
