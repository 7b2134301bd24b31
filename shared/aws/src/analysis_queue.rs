//! The analysis queue on SQS. It also carries backfill steps, merge request comment refreshes
//! and notifications, told apart by their `kind`.

use crate::errors::cause_chain;
use buildlore_core::analysis_request::{AnalysisQueue, AnalysisRequest, QueueError};
use buildlore_core::backfill::{
    BackfillMessage, BackfillQueue, MAX_STEP_DELAY_SECONDS, StepQueueError,
};
use buildlore_core::merge_request_comment::{
    CommentRefresh, CommentRefreshQueue, RefreshQueueError,
};
use buildlore_core::notify::{NotificationQueue, NotificationQueueError, QueuedNotification};

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

impl SqsAnalysisQueue {
    /// Sends one message body, delivered after `delay_seconds` (SQS allows up to 900).
    async fn send_body(&self, body: String, delay_seconds: u64) -> Result<(), String> {
        let delay = i32::try_from(delay_seconds.min(MAX_STEP_DELAY_SECONDS)).unwrap_or(0);
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .delay_seconds(delay)
            .send()
            .await
            .map_err(|e| cause_chain(&e))?;
        Ok(())
    }
}

impl AnalysisQueue for SqsAnalysisQueue {
    async fn send(&self, request: &AnalysisRequest) -> Result<(), QueueError> {
        let body =
            serde_json::to_string(request).map_err(|e| QueueError::Unavailable(e.to_string()))?;
        self.send_body(body, 0)
            .await
            .map_err(QueueError::Unavailable)
    }
}

impl BackfillQueue for SqsAnalysisQueue {
    async fn send_step(
        &self,
        message: &BackfillMessage,
        delay_seconds: u64,
    ) -> Result<(), StepQueueError> {
        let body = serde_json::to_string(message).map_err(|e| StepQueueError(e.to_string()))?;
        self.send_body(body, delay_seconds)
            .await
            .map_err(StepQueueError)
    }
}

impl CommentRefreshQueue for SqsAnalysisQueue {
    async fn send_refresh(
        &self,
        refresh: &CommentRefresh,
        delay_seconds: u64,
    ) -> Result<(), RefreshQueueError> {
        let body = serde_json::to_string(refresh).map_err(|e| RefreshQueueError(e.to_string()))?;
        self.send_body(body, delay_seconds)
            .await
            .map_err(RefreshQueueError)
    }
}

impl NotificationQueue for SqsAnalysisQueue {
    async fn send_notification(
        &self,
        queued: &QueuedNotification,
        delay_seconds: u64,
    ) -> Result<(), NotificationQueueError> {
        let body =
            serde_json::to_string(queued).map_err(|e| NotificationQueueError(e.to_string()))?;
        self.send_body(body, delay_seconds)
            .await
            .map_err(NotificationQueueError)
    }
}
