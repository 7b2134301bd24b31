//! `POST /webhooks/gitlab` and `POST /webhooks/github`: authenticate and parse the delivery,
//! then hand it to the delivery use case ([`deliver_webhook`]), which records every pipeline,
//! job and build it mentions.

use crate::body::read_bytes;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use buildlore_core::deliver_webhook::{
    Applied, Delivered, DeliveryId, RecordResult, deliver_webhook,
};
use buildlore_core::webhooks::secret::SecretMismatch;
use buildlore_core::webhooks::{WebhookEvent, github, gitlab};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

/// GitLab pipeline hooks with many jobs are the largest deliveries.
pub const MAX_WEBHOOK_BODY_BYTES: usize = 5 * 1024 * 1024;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

fn unauthorized(mismatch: SecretMismatch, header_name: &str) -> ApiError {
    let message = match mismatch {
        SecretMismatch::NotConfigured => mismatch.to_string(),
        SecretMismatch::Missing => format!("missing {header_name} header"),
        SecretMismatch::Mismatch => format!("{header_name} does not match the configured secret"),
    };
    ApiError::new(StatusCode::UNAUTHORIZED, message)
}

pub(crate) async fn gitlab_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    // The token is checked before the body is read: an unauthenticated sender costs nothing.
    state
        .config
        .gitlab_webhook_secrets
        .verify_token(headers.get("x-gitlab-token").map(|v| v.as_bytes()))
        .map_err(|e| unauthorized(e, "X-Gitlab-Token"))?;
    let bytes = read_bytes(body, MAX_WEBHOOK_BODY_BYTES).await?;
    let event = header(&headers, "x-gitlab-event")
        .filter(|event| !event.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("missing or empty X-Gitlab-Event header"))?;
    let parsed = gitlab::parse_bytes(event, &bytes, chrono::Utc::now())
        .map_err(|e| ApiError::bad_request(format!("{event}: {e}")))?;
    let delivery =
        header(&headers, "x-gitlab-event-uuid").and_then(|id| DeliveryId::of(id, &bytes));
    respond(&state, gitlab::PROVIDER, delivery, parsed).await
}

pub(crate) async fn github_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    // The signature covers the whole body, so the body must be read before anything is known
    // about its sender: a bounded number are read at once.
    if !state.config.github_webhook_secrets.is_configured() {
        return Err(unauthorized(
            SecretMismatch::NotConfigured,
            "X-Hub-Signature-256",
        ));
    }
    if headers.get("x-hub-signature-256").is_none() {
        return Err(unauthorized(SecretMismatch::Missing, "X-Hub-Signature-256"));
    }
    let permit = state
        .webhook_bodies
        .acquire()
        .await
        .map_err(|_| ApiError::unavailable("the service is shutting down"))?;
    let bytes = read_bytes(body, MAX_WEBHOOK_BODY_BYTES).await?;
    state
        .config
        .github_webhook_secrets
        .verify_signature(
            &bytes,
            headers.get("x-hub-signature-256").map(|v| v.as_bytes()),
        )
        .map_err(|e| unauthorized(e, "X-Hub-Signature-256"))?;
    // Authenticated: the sender is GitHub, and its body is processed as any other request.
    drop(permit);
    let event = header(&headers, "x-github-event")
        .filter(|event| !event.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("missing or empty X-GitHub-Event header"))?;
    let parsed = github::parse_bytes(event, &bytes, chrono::Utc::now())
        .map_err(|e| ApiError::bad_request(format!("{event}: {e}")))?;
    let delivery = header(&headers, "x-github-delivery").and_then(|id| DeliveryId::of(id, &bytes));
    respond(&state, github::PROVIDER, delivery, parsed).await
}

async fn respond(
    state: &AppState,
    provider: &str,
    delivery: Option<DeliveryId>,
    parsed: WebhookEvent,
) -> Result<Response, ApiError> {
    let response = match deliver_webhook(&state.store, provider, delivery, parsed).await? {
        Delivered::Pong => Json(json!({"status": "ok", "message": "pong"})).into_response(),
        Delivered::Ignored(reason) => (
            StatusCode::ACCEPTED,
            Json(json!({"status": "ignored", "reason": reason})),
        )
            .into_response(),
        Delivered::Duplicate => Json(json!({"status": "duplicate", "results": []})).into_response(),
        Delivered::Processed { results, records } => {
            super::test_reports::fetch_gitlab_reports(state, &records).await;
            queue_comment_refreshes(state, &records.pipelines).await;
            announce_branch_colours(state, &records, &results).await;
            Json(json!({"status": "processed", "results": results_json(&results)})).into_response()
        }
    };
    Ok(response)
}

/// One object per record: its kind, id, what happened and the status now stored.
pub(crate) fn results_json(results: &[RecordResult]) -> Vec<Value> {
    results
        .iter()
        .map(|result| match &result.applied {
            Applied::Recorded { outcome, status } => json!({
                "kind": result.kind, "id": result.id, "result": outcome, "status": status,
            }),
            Applied::Stale { detail } => json!({
                "kind": result.kind, "id": result.id, "result": "stale", "detail": detail,
            }),
        })
        .collect()
}

/// A merge request pipeline that passed updates the merge request's comment (in the worker,
/// which holds the provider token), where the repository opted in. Best effort: the delivery
/// is recorded either way.
async fn queue_comment_refreshes(state: &AppState, pipelines: &[buildlore_core::runs::Pipeline]) {
    use buildlore_core::merge_request_comment::{CommentRefresh, CommentRefreshQueue};
    use buildlore_core::repo_settings::RepoSettingsStore;
    let Some(queue) = state.analysis_queue.as_ref() else {
        return;
    };
    for refresh in CommentRefresh::after_delivery(pipelines) {
        let wanted = state
            .store
            .repo_settings(&refresh.repo)
            .await
            .map(|settings| settings.is_some_and(|s| s.merge_request_comments));
        let queued = match wanted {
            Ok(true) => queue
                .send_refresh(&refresh, 0)
                .await
                .map_err(|e| e.to_string()),
            Ok(false) => Ok(()),
            Err(error) => Err(error.to_string()),
        };
        if let Err(error) = queued {
            tracing::warn!(%error, pipeline_id = %refresh.pipeline_id, "a merge request comment refresh was not queued");
        }
    }
}

/// A default branch that turned red or green again is announced to the notification targets
/// (queued: the delivery does not wait on a receiver). Best effort: the delivery is recorded
/// either way.
async fn announce_branch_colours(
    state: &AppState,
    records: &buildlore_core::webhooks::Normalised,
    results: &[RecordResult],
) {
    use buildlore_core::notify::{announce, branch_events};
    use buildlore_core::record::Record;
    use buildlore_core::runs::Pipeline;
    let Some(queue) = state.analysis_queue.as_ref() else {
        return;
    };
    // Only pipelines this delivery changed: a stale or repeated report is not news.
    let changed: Vec<Pipeline> = records
        .pipelines
        .iter()
        .filter(|pipeline| {
            results.iter().any(|result| {
                result.kind == Pipeline::KIND
                    && result.id == pipeline.id()
                    && matches!(result.applied, Applied::Recorded { outcome, .. } if outcome != "unchanged")
            })
        })
        .cloned()
        .collect();
    let default_branches = &state.config.test_reports.flaky.default_branches;
    let announced =
        match branch_events(&state.store, &changed, &records.jobs, default_branches).await {
            Ok(events) => announce(&state.store, queue, events, chrono::Utc::now())
                .await
                .map_err(|error| error.to_string()),
            Err(error) => Err(error.to_string()),
        };
    if let Err(error) = announced {
        tracing::warn!(%error, "a branch's change of colour was not announced");
    }
}
