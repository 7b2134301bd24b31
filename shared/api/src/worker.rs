//! The analysis worker's batch handler, shared by the Lambda (SQS event source) and the
//! local poller in `buildlore dev`.

use crate::state::AppState;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};
use buildlore_core::analysis_request::AnalysisRequest;
use buildlore_core::backfill::{BACKFILL_MESSAGE_KIND, BackfillMessage, run_backfill_step};
use buildlore_core::job_analysis::{
    AnalyseError, AnalysisStore, FollowUpError, JobAnalysis, JobToAnalyse, LlmError, analyse_job,
    answer_followup, followup_turns,
};
use buildlore_core::junit::evidence::report_evidence;
use buildlore_core::junit::ingest::JobKey;
use buildlore_core::merge_request_comment::{
    COMMENT_REFRESH_KIND, CommentRefresh, CommentRefreshQueue, MergeRequestCommentError,
    refresh_merge_request_comment,
};
use buildlore_core::notify::{
    DeliverNotificationError, NOTIFICATION_KIND, NotificationQueue, QueuedNotification, announce,
    deliver_notification, recurring_failure_event, recurring_marker,
};
use buildlore_core::ports::Markers;
use buildlore_core::provider_actions::CommentError;
use buildlore_core::system_prompt::analysis_settings;
use buildlore_core::trace::{TraceKey, TraceStore};
use buildlore_providers::FetchError;
use serde_json::Value;
use tracing::Instrument;

/// The message schema versions this worker understands (2 adds follow-up questions).
pub const SUPPORTED_VERSIONS: &[u64] = &[1, 2];

/// The longest log the worker reads for one analysis.
const MAX_ANALYSED_LOG_BYTES: u64 = 64 * 1024 * 1024;

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
        // The span is attached to the future, not entered across its awaits (an entered
        // guard held over an await would tag whatever else runs on the thread meanwhile).
        let span = tracing::info_span!("message", message_id = %id);
        let outcome = process(state, &message).instrument(span.clone()).await;
        let _in_span = span.enter();
        match outcome {
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

async fn process(state: &AppState, message: &SqsMessage) -> Result<(), MessageError> {
    let body = message.body.as_deref().unwrap_or_default();
    let parsed: Value = serde_json::from_str(body)
        .map_err(|e| MessageError::Permanent(format!("body is not JSON: {e}")))?;
    match parsed.get("kind").and_then(Value::as_str) {
        Some(BACKFILL_MESSAGE_KIND) => return run_backfill_message(state, parsed).await,
        Some(NOTIFICATION_KIND) => {
            let queued: QueuedNotification = serde_json::from_value(parsed)
                .map_err(|e| MessageError::Permanent(format!("not a notification: {e}")))?;
            return send_notification(state, &queued).await;
        }
        Some(COMMENT_REFRESH_KIND) => {
            let refresh: CommentRefresh = serde_json::from_value(parsed).map_err(|e| {
                MessageError::Permanent(format!("not a merge request comment refresh: {e}"))
            })?;
            return refresh_comment(state, &refresh).await;
        }
        _ => {}
    }
    let version = parsed
        .get("version")
        .and_then(Value::as_u64)
        .ok_or_else(|| MessageError::Permanent("message has no numeric `version`".to_string()))?;
    if !SUPPORTED_VERSIONS.contains(&version) {
        // A newer producer than this worker: keep the message for a worker that knows it.
        return Err(MessageError::Retryable(format!(
            "message version {version} is not supported by this worker"
        )));
    }
    let request: AnalysisRequest = serde_json::from_value(parsed)
        .map_err(|e| MessageError::Permanent(format!("not an analysis request: {e}")))?;
    if let Some(question) = &request.question {
        // Boxed: the two paths' futures nested in one would be too deep for the compiler.
        return Box::pin(answer_queued_followup(state, &request, question)).await;
    }
    let job = JobToAnalyse {
        provider: &request.provider,
        repo: &request.repo,
        job_id: &request.job_id,
        pipeline_id: request.pipeline_id.as_deref(),
        job_name: request.job_name.as_deref(),
        stage: None,
        branch: request.branch.as_deref(),
        report: None,
    };
    let policy = state.config.analysis_policy();
    let report_of = JobKey {
        provider: request.provider.clone(),
        repo: request.repo.clone(),
        job_id: request.job_id.clone(),
    };
    let report = report_evidence(&state.store, &report_of, chrono::Utc::now(), &policy.flaky)
        .await
        .map_err(|e| MessageError::Retryable(e.to_string()))?;
    let job = JobToAnalyse {
        report: report.as_ref(),
        ..job
    };
    let log = match job_log(state, &request).await? {
        Ok(log) => log,
        Err(reason) => {
            // Recorded as a failed analysis, so the caller sees why; not retried.
            let failed = JobAnalysis::failed(&job, reason);
            state
                .store
                .put_analysis(&failed)
                .await
                .map_err(|e| MessageError::Retryable(e.to_string()))?;
            return Ok(());
        }
    };
    let settings = analysis_settings(&state.store, &policy.settings)
        .await
        .map_err(|e| MessageError::Retryable(e.to_string()))?;
    match analyse_job(&state.store, state.llm(), &settings, &job, &log).await {
        Ok(analysis) => {
            tracing::info!(
                status = ?analysis.status,
                source = ?analysis.source,
                fingerprint = analysis.fingerprint.as_deref().unwrap_or(""),
                "analysed"
            );
            retry_if_due(state, &analysis).await;
            announce_if_recurring(state, &analysis).await;
            if let Some(pipeline_id) = &analysis.pipeline_id {
                let refresh = CommentRefresh::of(&analysis.provider, &analysis.repo, pipeline_id);
                if let Err(error) = refresh_comment(state, &refresh).await {
                    tracing::warn!(%error, "the merge request comment was not refreshed");
                }
            }
            Ok(())
        }
        Err(AnalyseError::Retryable(error)) => Err(MessageError::Retryable(error.to_string())),
        Err(AnalyseError::Store(error)) => Err(MessageError::Retryable(error.to_string())),
    }
}

/// Seconds before a refresh that met another writer posting the first comment runs again.
const COMMENT_RETRY_SECONDS: u64 = 10;

/// Brings a pipeline's merge request comment up to date (where its repository opted in).
async fn refresh_comment(state: &AppState, refresh: &CommentRefresh) -> Result<(), MessageError> {
    let Some(forge) = state.forge() else {
        return Ok(());
    };
    let origin = state.config.dashboard_url.as_deref().unwrap_or_default();
    let refreshed = refresh_merge_request_comment(
        &state.store,
        forge,
        &refresh.provider,
        &refresh.repo,
        &refresh.pipeline_id,
        origin,
    )
    .await;
    match refreshed {
        Ok(outcome) => {
            tracing::info!(?outcome, pipeline_id = %refresh.pipeline_id, "merge request comment");
            Ok(())
        }
        Err(MergeRequestCommentError::Busy) => {
            again_later(state, refresh, COMMENT_RETRY_SECONDS).await
        }
        Err(MergeRequestCommentError::Provider(CommentError::RateLimited(seconds))) => {
            again_later(state, refresh, seconds).await
        }
        Err(MergeRequestCommentError::Provider(error @ CommentError::Unavailable(_))) => {
            Err(MessageError::Retryable(error.to_string()))
        }
        Err(MergeRequestCommentError::Provider(error)) => {
            // The provider refused (a token without the scope, a merge request gone):
            // retrying the same request cannot help.
            Err(MessageError::Permanent(format!(
                "the merge request comment was not posted: {error}"
            )))
        }
        Err(error) => Err(MessageError::Retryable(error.to_string())),
    }
}

/// Sends one queued notification; a receiver that asks to wait gets the message again later.
async fn send_notification(
    state: &AppState,
    queued: &QueuedNotification,
) -> Result<(), MessageError> {
    let Some(notifier) = state.notifier() else {
        return Err(MessageError::Retryable(
            "the notification sender is off".into(),
        ));
    };
    match deliver_notification(&state.store, notifier, queued).await {
        Ok(()) => Ok(()),
        Err(DeliverNotificationError::Refused(reason)) => Err(MessageError::Permanent(reason)),
        Err(DeliverNotificationError::Retry {
            after: Some(seconds),
            ..
        }) => {
            let queue = state.analysis_queue.as_ref().ok_or_else(|| {
                MessageError::Retryable("the receiver asks to wait, and there is no queue".into())
            })?;
            queue
                .send_notification(queued, seconds)
                .await
                .map_err(|e| MessageError::Retryable(e.to_string()))
        }
        Err(error) => Err(MessageError::Retryable(error.to_string())),
    }
}

/// A failure seen for the second time in its repository is announced, once.
async fn announce_if_recurring(state: &AppState, analysis: &JobAnalysis) {
    let Some(queue) = state.analysis_queue.as_ref() else {
        return;
    };
    let job_url = state.config.dashboard_url.as_deref().map(|origin| {
        format!(
            "{origin}/job?provider={}&project={}&job={}",
            buildlore_providers::percent_encode(&analysis.provider),
            buildlore_providers::percent_encode(analysis.repo.as_str()),
            buildlore_providers::percent_encode(&analysis.job_id)
        )
    });
    let announced = match recurring_failure_event(&state.store, analysis, job_url).await {
        Ok(Some(event)) => {
            let queued = announce(&state.store, queue, vec![event], chrono::Utc::now()).await;
            if queued.is_err()
                && let Some(fingerprint) = &analysis.fingerprint
            {
                // Not announced after all: a later occurrence tries again.
                let marker = recurring_marker(&analysis.repo, fingerprint);
                if let Err(error) = state.store.clear_marker(&marker).await {
                    tracing::warn!(%error, "a recurring failure's marker was not cleared");
                }
            }
            queued.map(|_| ()).map_err(|error| error.to_string())
        }
        Ok(None) => Ok(()),
        Err(error) => Err(error.to_string()),
    };
    if let Err(error) = announced {
        tracing::warn!(%error, "a recurring failure was not announced");
    }
}

/// Queues the refresh again, delivered after `seconds`.
async fn again_later(
    state: &AppState,
    refresh: &CommentRefresh,
    seconds: u64,
) -> Result<(), MessageError> {
    let queue = state.analysis_queue.as_ref().ok_or_else(|| {
        MessageError::Retryable("the comment must wait, and there is no queue".into())
    })?;
    queue
        .send_refresh(refresh, seconds)
        .await
        .map_err(|e| MessageError::Retryable(e.to_string()))
}

/// One page of a backfill (see `buildlore_core::backfill`).
async fn run_backfill_message(state: &AppState, parsed: Value) -> Result<(), MessageError> {
    let message: BackfillMessage = serde_json::from_value(parsed)
        .map_err(|e| MessageError::Permanent(format!("not a backfill step: {e}")))?;
    let (Some(forge), Some(queue)) = (state.forge(), state.analysis_queue.as_ref()) else {
        return Err(MessageError::Permanent(
            "a backfill step, but this worker has no provider client or work queue".into(),
        ));
    };
    run_backfill_step(&state.store, forge, queue, &message, chrono::Utc::now())
        .await
        // Every failure of a step may pass: the step is read again from its first line.
        .map_err(|error| MessageError::Retryable(error.to_string()))
}

/// The automatic retry of an infrastructure failure, where the repository opted in. Its
/// failure does not fail the analysis, which is stored already.
async fn retry_if_due(state: &AppState, analysis: &JobAnalysis) {
    let Some(forge) = state.forge() else {
        return;
    };
    let decided = buildlore_core::retry_after_analysis::retry_after_analysis(
        &state.store,
        forge,
        analysis,
        chrono::Utc::now(),
    )
    .await;
    match decided {
        Ok(Some(note)) => {
            tracing::info!(retried = note.retried, reason = %note.reason, "automatic retry decided")
        }
        Ok(None) => {}
        Err(error) => tracing::warn!(%error, "the automatic retry was not decided"),
    }
}

/// Answers a follow-up question the API queued (for an LLM only the worker may call). An
/// answer the LLM refuses is stored as the answer's turn, so whoever asked sees why.
async fn answer_queued_followup(
    state: &AppState,
    request: &AnalysisRequest,
    question: &str,
) -> Result<(), MessageError> {
    let llm = state.llm().ok_or_else(|| {
        MessageError::Permanent("a follow-up question, but no LLM is configured".into())
    })?;
    let asked = answer_followup(
        &state.store,
        llm,
        &request.provider,
        &request.repo,
        &request.job_id,
        question,
    )
    .await;
    match asked {
        Ok(_) => Ok(()),
        Err(FollowUpError::NoAnalysis(job_id)) => Err(MessageError::Permanent(format!(
            "job {job_id} has no finished analysis to ask about"
        ))),
        Err(FollowUpError::Llm(LlmError::Permanent(reason))) => {
            let turns = followup_turns(question, &format!("The LLM could not answer: {reason}"));
            state
                .store
                .append_conversation(&request.provider, &request.repo, &request.job_id, &turns)
                .await
                .map_err(|e| MessageError::Retryable(e.to_string()))?;
            Ok(())
        }
        Err(error @ (FollowUpError::Llm(_) | FollowUpError::Store(_))) => {
            Err(MessageError::Retryable(error.to_string()))
        }
    }
}

/// The job's log: the stored trace, else fetched from the provider. `Ok(Err(reason))` when
/// there is none to be had (not worth retrying); `Err` when trying again may help.
async fn job_log(
    state: &AppState,
    request: &AnalysisRequest,
) -> Result<Result<Vec<u8>, String>, MessageError> {
    let key = TraceKey {
        provider: request.provider.clone(),
        repo: request.repo.clone(),
        job_id: request.job_id.clone(),
    };
    match state
        .store
        .read(&key, 0, Some(MAX_ANALYSED_LOG_BYTES))
        .await
    {
        Ok(Some(slice)) => return Ok(Ok(slice.bytes)),
        Ok(None) => {}
        Err(error) => return Err(MessageError::Retryable(error.to_string())),
    }
    let Some(client) = state.providers() else {
        return Ok(Err("no log is stored for this job".into()));
    };
    let fetched = match request.provider.as_str() {
        "github" => {
            client
                .github_job_log(request.repo.as_str(), &request.job_id)
                .await
        }
        _ => {
            client
                .gitlab_trace(request.repo.as_str(), &request.job_id)
                .await
        }
    };
    match fetched {
        Ok(fetched) => Ok(Ok(fetched.bytes)),
        Err(error @ (FetchError::Unavailable(_) | FetchError::RateLimited(_))) => {
            Err(MessageError::Retryable(error.to_string()))
        }
        Err(error) => Ok(Err(format!(
            "no log is stored for this job and fetching it failed: {error}"
        ))),
    }
}

/// Receives one batch from the analysis queue and hands it to [`handle_batch`] exactly as the
/// Lambda SQS event source does: messages reported as failed stay on the queue (and reach the
/// dead-letter queue after the redrive policy's receives); the rest are deleted. Returns how
/// many messages were received. `visibility_timeout` overrides the queue's (tests use 0 to
/// see retries at once).
pub async fn poll_once(
    state: &AppState,
    queue_url: &str,
    wait_seconds: i32,
    visibility_timeout: Option<i32>,
) -> Result<usize, String> {
    let sqs = &state.clients.sqs;
    let received = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(wait_seconds)
        .set_visibility_timeout(visibility_timeout)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
        .send()
        .await
        .map_err(|e| buildlore_aws::errors::cause_chain(&e))?;
    let messages = received.messages.unwrap_or_default();
    let count = messages.len();
    if count == 0 {
        return Ok(0);
    }
    let receipts: Vec<(String, String)> = messages
        .iter()
        .filter_map(|m| Some((m.message_id.clone()?, m.receipt_handle.clone()?)))
        .collect();
    let events = messages.into_iter().map(to_event_message).collect();
    let response = handle_batch(state, events).await;
    for (id, receipt) in &receipts {
        if response
            .batch_item_failures
            .iter()
            .any(|failure| &failure.item_identifier == id)
        {
            continue;
        }
        if let Err(error) = sqs
            .delete_message()
            .queue_url(queue_url)
            .receipt_handle(receipt)
            .send()
            .await
        {
            tracing::warn!(message_id = %id, error = %buildlore_aws::errors::cause_chain(&error), "could not delete a processed message");
        }
    }
    Ok(count)
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
