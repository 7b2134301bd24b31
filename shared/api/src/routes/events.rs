//! `GET /api/events/pipelines`: Server-Sent Events. `event: pipeline-update` carries the
//! summary (same body and query parameters as `/api/pipelines/summary`) whenever it changes,
//! `event: heartbeat` keeps the connection alive. The summary is recomputed only while a client
//! is connected: a client that goes away stops the polling. On AWS this is served by its own
//! function behind a Lambda Function URL in response-streaming mode (HTTP APIs cannot stream).

use crate::auth::Caller;
use crate::error::{ApiError, store_failure};
use crate::params::{QueryParams, query_params};
use crate::routes::query::SummaryRequest;
use crate::state::AppState;
use axum::Extension;
use axum::extract::State;
use axum::response::sse::{Event, Sse};
use buildlore_core::stream_slots::{StreamSlotError, close_stream, open_stream};
use futures_util::Stream;
use http::StatusCode;
use std::convert::Infallible;
use tokio::time::Instant;

pub(crate) async fn pipeline_events(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: QueryParams,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let params = query_params(query)?;
    let request = SummaryRequest::read(&state, &params).await?;
    let timing = state.config.events;
    let lifetime = chrono::Duration::from_std(timing.max).unwrap_or(chrono::Duration::minutes(15));
    let slot = open_stream(
        &state.store,
        &caller.key_id,
        timing.max_streams_per_key,
        lifetime,
        chrono::Utc::now(),
    )
    .await
    .map_err(|error| match error {
        StreamSlotError::AllTaken { retry_after, .. } => {
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, error.to_string())
                .with_retry_after(retry_after)
        }
        StreamSlotError::Store(error) => store_failure(error),
    })?;

    let stream = async_stream(move |sender| async move {
        stream_summaries(&state, &sender, &request, timing).await;
        if let Err(error) = close_stream(&state.store, &slot).await {
            tracing::warn!(%error, "an event stream's slot was not released; its lease expires");
        }
    });
    Ok(Sse::new(stream))
}

/// Sends the summary whenever it changes, and heartbeats, until the client leaves or the
/// stream's time is up.
async fn stream_summaries(
    state: &AppState,
    sender: &tokio::sync::mpsc::Sender<Event>,
    request: &SummaryRequest,
    timing: crate::config::EventTiming,
) {
    let started = Instant::now();
    let mut last_sent: Option<String> = None;
    let mut next_heartbeat = started + timing.heartbeat;
    while started.elapsed() < timing.max {
        match request.summary(state, chrono::Utc::now()).await {
            Ok(current) => {
                // `since` moves with the clock; only a change in the figures is news.
                let mut comparable = serde_json::json!(current);
                if let Some(object) = comparable.as_object_mut() {
                    object.remove("since");
                }
                let key = comparable.to_string();
                if last_sent.as_ref() != Some(&key) {
                    let data = serde_json::to_string(&current).unwrap_or_default();
                    if sender
                        .send(Event::default().event("pipeline-update").data(data))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    last_sent = Some(key);
                }
            }
            Err(error) => {
                tracing::warn!(error = %error.message, "summary for the event stream failed")
            }
        }
        let wake = (Instant::now() + timing.poll).min(next_heartbeat);
        tokio::time::sleep_until(wake).await;
        if Instant::now() >= next_heartbeat {
            // JSON, like every other event's data (a bare string fails `JSON.parse`).
            let beat = Event::default().event("heartbeat").data(
                serde_json::json!({"timestamp": buildlore_core::time::sortable(chrono::Utc::now())})
                    .to_string(),
            );
            if sender.send(beat).await.is_err() {
                return;
            }
            next_heartbeat = Instant::now() + timing.heartbeat;
        }
    }
}

/// A stream fed by a task through a bounded channel; dropping the stream (the client left)
/// closes the channel and ends the task at its next send.
fn async_stream<F, Fut>(producer: F) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Event>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (sender, mut receiver) = tokio::sync::mpsc::channel(4);
    tokio::spawn(producer(sender));
    futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx).map(|event| event.map(Ok)))
}
