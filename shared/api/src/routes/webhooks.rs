//! `POST /webhooks/gitlab` and `POST /webhooks/github`: authenticate, parse and validate the
//! whole delivery, then record every pipeline, job and build it mentions. Deliveries are
//! idempotent; a report older than what is stored is acknowledged as stale (a webhook must get
//! a 2xx, or the provider counts it as failed and may disable the hook).

use crate::body::read_bytes;
use crate::error::{ApiError, store_failure};
use crate::routes::ingest::record_error;
use crate::state::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use buildlore_aws::record_store::ItemCodec;
use buildlore_core::BuildStatus;
use buildlore_core::keys;
use buildlore_core::last_green::{RecordedJob, keep_if_green};
use buildlore_core::ports::Markers;
use buildlore_core::record::{Record, RecordStore, record};
use buildlore_core::runs::Job;
use buildlore_core::trace::{TraceKey, TraceStore};
use buildlore_core::webhooks::secret::SecretMismatch;
use buildlore_core::webhooks::{Normalised, WebhookEvent, github, gitlab};
use futures_util::StreamExt;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

/// GitLab pipeline hooks with many jobs are the largest deliveries.
pub const MAX_WEBHOOK_BODY_BYTES: usize = 5 * 1024 * 1024;
/// How long a processed delivery id is remembered.
const DELIVERY_MEMORY_DAYS: i64 = 7;
/// Records of one delivery written at once.
const RECORD_CONCURRENCY: usize = 8;

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
    let delivery = header(&headers, "x-gitlab-event-uuid").and_then(|id| delivery_key(id, &bytes));
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
    let delivery = header(&headers, "x-github-delivery").and_then(|id| delivery_key(id, &bytes));
    respond(&state, github::PROVIDER, delivery, parsed).await
}

/// A delivery is the same delivery only with the same id *and* the same body: a different,
/// validly signed body under a reused id is processed, not dropped as a duplicate. Ids that
/// are empty or longer than 128 bytes are not remembered.
fn delivery_key(id: &str, body: &[u8]) -> Option<String> {
    use sha2::{Digest, Sha256};
    if id.is_empty() || id.len() > 128 {
        return None;
    }
    let digest = Sha256::digest(body);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    Some(format!("{id}#{hex}"))
}

async fn respond(
    state: &AppState,
    provider: &str,
    delivery: Option<String>,
    parsed: WebhookEvent,
) -> Result<Response, ApiError> {
    let records = match parsed {
        WebhookEvent::Ping => {
            return Ok(Json(json!({"status": "ok", "message": "pong"})).into_response());
        }
        WebhookEvent::Ignored(reason) => {
            return Ok((
                StatusCode::ACCEPTED,
                Json(json!({"status": "ignored", "reason": reason})),
            )
                .into_response());
        }
        WebhookEvent::Records(records) => records,
    };
    let marker = delivery.map(|key| keys::delivery(provider, &key));
    // The marker is taken before anything is written (a conditional put: of concurrent copies
    // of one delivery exactly one gets it) and released if the records fail, so the provider's
    // retry is processed.
    if let Some(marker) = &marker
        && !state
            .store
            .set_marker(marker, chrono::Duration::days(DELIVERY_MEMORY_DAYS))
            .await
            .map_err(store_failure)?
    {
        return Ok(Json(json!({"status": "duplicate", "results": []})).into_response());
    }
    match apply(state, &records).await {
        Ok(results) => {
            keep_green_logs(state, &records.jobs).await;
            super::test_reports::fetch_gitlab_reports(state, &records).await;
            Ok(Json(json!({"status": "processed", "results": results})).into_response())
        }
        Err(error) => {
            if let Some(marker) = &marker
                && let Err(release) = state.store.clear_marker(marker).await
            {
                tracing::error!(%release, "a failed delivery's marker could not be released");
            }
            Err(error)
        }
    }
}

/// A job reported successful whose log is stored already (uploaded part by part before its
/// status arrived) keeps that log as the last green log of its job name and branch. Best
/// effort: not keeping it costs only the comparison of a later failure, and the delivery was
/// recorded.
async fn keep_green_logs(state: &AppState, jobs: &[Job]) {
    for job in jobs.iter().filter(|job| job.status == BuildStatus::Success) {
        let key = TraceKey {
            provider: job.provider.clone(),
            repo: job.repo.clone(),
            job_id: job.job_id.clone(),
        };
        let recorded = RecordedJob {
            name: job.name.clone(),
            branch: job.git_ref.clone(),
            status: job.status,
            finished_at: job.finished_at,
            updated_at: job.updated_at,
        };
        let kept = match state.store.length(&key).await {
            Ok(Some(_)) => keep_if_green(&state.store, &key, &recorded).await,
            Ok(None) => Ok(false),
            Err(error) => Err(error),
        };
        if let Err(error) = kept {
            tracing::warn!(%error, job_id = %job.job_id, "a stored trace was not kept as the last green log");
        }
    }
}

/// Records every pipeline, job and build of a delivery; returns one result per record.
pub async fn apply(state: &AppState, records: &Normalised) -> Result<Vec<Value>, ApiError> {
    for pipeline in &records.pipelines {
        if let Some(project_id) = &pipeline.project_id {
            state
                .store
                .put_project_alias(
                    &keys::project_alias(&pipeline.provider, project_id),
                    &pipeline.repo,
                )
                .await
                .map_err(store_failure)?;
        }
    }
    let mut results = Vec::new();
    results.extend(record_all(state, &records.pipelines).await?);
    results.extend(record_all(state, &records.jobs).await?);
    results.extend(record_all(state, &records.builds).await?);
    Ok(results)
}

async fn record_all<R>(state: &AppState, items: &[R]) -> Result<Vec<Value>, ApiError>
where
    R: Record + ItemCodec,
    buildlore_aws::DynamoStore: RecordStore<R>,
{
    let outcomes: Vec<Result<Value, ApiError>> = futures_util::stream::iter(items.iter().cloned())
        .map(|item| async move {
            let id = item.id();
            let result = match record(&state.store, item).await {
                Ok((outcome, stored)) => json!({
                    "kind": R::KIND, "id": id, "result": outcome.as_str(), "status": stored.status(),
                }),
                Err(error) if error.is_stale() => json!({
                    "kind": R::KIND, "id": id, "result": "stale", "detail": error.to_string(),
                }),
                Err(error) => return Err(record_error(error)),
            };
            Ok(result)
        })
        .buffered(RECORD_CONCURRENCY)
        .collect()
        .await;
    outcomes.into_iter().collect()
}
