//! The analysis queue on SQS.

use crate::errors::cause_chain;
use buildlore_core::analysis_request::{AnalysisQueue, AnalysisRequest, QueueError};

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
