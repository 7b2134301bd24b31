//! The trace function: `GET /api/jobtrace` (gitlab-summary's shape, `{"trace", "complete"}`).
//! The bytes come from a trace stored by log push or trace upload, else from GitLab or GitHub
//! with the deployment's token; a finished job's fetched log is stored, so the provider is
//! asked once.

use crate::error::ApiError;
use crate::params::{QueryParams, non_empty, query_params, whole_number};
use crate::routes::project::{JobTarget, job_target};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use buildlore_core::RepoPath;
use buildlore_core::last_green::keep_if_recorded_green;
use buildlore_core::log_clean::clean_log;
use buildlore_core::ports::StoreError;
use buildlore_core::trace::{
    ChunkBuffer, Replacement, TraceKey, TraceSlice, TraceStore, Window, WindowCollector,
};
use buildlore_providers::FetchError;
use http::{HeaderValue, StatusCode, header};
use serde_json::json;

/// Most log bytes one answer carries (Lambda answers are at most 6 MB, and JSON escaping
/// grows text); page with `offset` and `next_offset`.
pub const MAX_RESPONSE_BYTES: u64 = 4 * 1024 * 1024;

/// Lines `tail` may ask for.
pub const MAX_TAIL_LINES: usize = 100_000;

/// The last `lines` lines of `bytes`.
fn tail(bytes: &[u8], lines: usize) -> &[u8] {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let start = body
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, b)| **b == b'\n')
        .nth(lines.saturating_sub(1))
        .map_or(0, |(at, _)| at + 1);
    if lines == 0 {
        &bytes[bytes.len()..]
    } else {
        &bytes[start..]
    }
}

pub(crate) async fn job_trace(
    State(state): State<AppState>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let params = query_params(query)?;
    let get = |name: &str| non_empty(&params, name);
    let number = |name: &str, max: u64| whole_number(&params, name, max);
    let JobTarget {
        provider,
        repo,
        provider_project,
        job_id,
    } = job_target(&state, get).await?;
    let job_id = job_id.as_str();
    // A GitLab project known only by its numeric id (no webhook named its path yet) still has
    // its fetched logs cached, under the id.
    let repo = repo.or_else(|| {
        (provider == "gitlab" && provider_project.bytes().all(|b| b.is_ascii_digit()))
            .then(|| RepoPath::parse(&format!("_gitlab-project-id/{provider_project}")).ok())
            .flatten()
    });
    let requested_offset = number("offset", u64::MAX)?;
    let limit = match number("limit", u64::MAX)? {
        // An empty page would send a paging client round in circles.
        Some(0) => {
            return Err(ApiError::bad_request(format!(
                "`limit` must be 1 to {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        given => Some(given.map_or(MAX_RESPONSE_BYTES, |l| l.min(MAX_RESPONSE_BYTES))),
    };
    let tail_lines = number("tail", MAX_TAIL_LINES as u64)?;
    let clean = matches!(get("clean"), Some("true" | "1" | "yes"));
    let mut offset = requested_offset.unwrap_or(0);
    let stored = match &repo {
        Some(repo) => {
            let key = TraceKey {
                provider: provider.clone(),
                repo: repo.clone(),
                job_id: job_id.to_string(),
            };
            if tail_lines.is_some() && requested_offset.is_none() {
                // The last lines live in the last bytes: read the end of a long log.
                let length = state.store.length(&key).await?.unwrap_or(0);
                offset = length.saturating_sub(MAX_RESPONSE_BYTES);
            }
            state.store.read(&key, offset, limit).await?
        }
        None => None,
    };
    let (slice_bytes, slice_offset, total_length, complete) = match stored {
        Some(slice) => {
            let complete = match &repo {
                Some(repo) => state
                    .store
                    .job_status(&provider, repo, job_id)
                    .await?
                    .is_none_or(|status| status.is_terminal()),
                None => true,
            };
            (slice.bytes, slice.offset, slice.total_length, complete)
        }
        None => {
            let window = if tail_lines.is_some() && requested_offset.is_none() {
                Window::Last {
                    bytes: MAX_RESPONSE_BYTES,
                }
            } else {
                Window::Range {
                    start: offset,
                    limit,
                }
            };
            let cache_key = repo.as_ref().map(|repo| TraceKey {
                provider: provider.clone(),
                repo: repo.clone(),
                job_id: job_id.to_string(),
            });
            let (slice, complete) = download(
                &state,
                &provider,
                &provider_project,
                job_id,
                cache_key,
                window,
            )
            .await?;
            (slice.bytes, slice.offset, slice.total_length, complete)
        }
    };
    let slice_end = slice_offset + slice_bytes.len() as u64;
    let next_offset = (slice_end < total_length).then_some(slice_end);
    let mut bytes = if clean {
        clean_log(&slice_bytes)
    } else {
        slice_bytes
    };
    if let Some(lines) = tail_lines {
        bytes = tail(&bytes, lines as usize).to_vec();
    }
    if get("format") == Some("raw") {
        let mut response = (StatusCode::OK, bytes).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        response
            .headers_mut()
            .insert("x-trace-length", HeaderValue::from(total_length));
        return Ok(response);
    }
    let lossless = std::str::from_utf8(&bytes).is_ok();
    Ok(Json(json!({
        "trace": String::from_utf8_lossy(&bytes),
        "complete": complete,
        "offset": slice_offset,
        "total_length": total_length,
        // Where the next page starts, when this answer did not reach the end.
        "next_offset": next_offset,
        // Bytes that are not UTF-8 are replaced in JSON; `format=raw` serves them exactly.
        "lossless": lossless,
    }))
    .into_response())
}

/// Whole chunks written to the cache per DynamoDB batch while a log downloads.
const CHUNKS_PER_CACHE_WRITE: usize = 8;

/// A fetched log being copied into the store as it arrives.
struct CacheCopy {
    key: TraceKey,
    replacement: Replacement,
    buffer: ChunkBuffer,
}

/// Downloads the log from the provider, piece by piece: the caller's window is kept, and a
/// finished job's log is copied into the store as it arrives (so the provider is asked once),
/// without ever holding the whole log in memory.
async fn download(
    state: &AppState,
    provider: &str,
    project: &str,
    job_id: &str,
    cache_key: Option<TraceKey>,
    window: Window,
) -> Result<(TraceSlice, bool), ApiError> {
    let client = state.providers.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "log fetching is not configured on this deployment",
        )
    })?;
    let explain = |error| fetch_error(error, provider, project, job_id);
    let mut download = match provider {
        "github" => client.github_job_log_download(project, job_id).await,
        _ => client.gitlab_trace_download(project, job_id).await,
    }
    .map_err(explain)?;
    let mut cache = match cache_key.filter(|_| download.complete) {
        Some(key) => {
            let keep = chrono::Duration::days(i64::from(state.config.trace_cache_days));
            match state.store.begin_replacement(&key, Some(keep)).await {
                Ok(replacement) => Some(CacheCopy {
                    key,
                    replacement,
                    buffer: ChunkBuffer::new(CHUNKS_PER_CACHE_WRITE),
                }),
                Err(error) => {
                    tracing::warn!(%error, "a fetched trace will not be cached");
                    None
                }
            }
        }
        None => None,
    };
    let mut collector = WindowCollector::new(window);
    loop {
        let piece = match download.next_piece().await {
            Ok(Some(piece)) => piece,
            Ok(None) => break,
            Err(error) => {
                if let Some(copy) = cache {
                    state
                        .store
                        .discard_replacement(&copy.key, copy.replacement)
                        .await;
                }
                return Err(explain(error));
            }
        };
        collector.push(&piece);
        if let Some(copy) = cache.as_mut() {
            copy.buffer.push(&piece);
            if let Some((offset, bytes)) = copy.buffer.ready() {
                let written = state
                    .store
                    .write_replacement(&copy.key, &copy.replacement, offset, &bytes)
                    .await;
                if let Err(error) = written {
                    tracing::warn!(%error, "a fetched trace was not cached");
                    if let Some(copy) = cache.take() {
                        state
                            .store
                            .discard_replacement(&copy.key, copy.replacement)
                            .await;
                    }
                }
            }
        }
    }
    if let Some(copy) = cache {
        finish_cache_copy(state, copy, download.truncated()).await;
    }
    Ok((collector.finish(), download.complete))
}

/// Commits a complete copy; a truncated one is dropped (the cache holds only whole logs).
async fn finish_cache_copy(state: &AppState, copy: CacheCopy, truncated: bool) {
    let CacheCopy {
        key,
        replacement,
        buffer,
    } = copy;
    if truncated {
        state.store.discard_replacement(&key, replacement).await;
        return;
    }
    let (offset, rest) = buffer.finish();
    let length = offset + rest.len() as u64;
    let result = async {
        state
            .store
            .write_replacement(&key, &replacement, offset, &rest)
            .await?;
        state
            .store
            .commit_replacement(&key, replacement, length)
            .await
    }
    .await;
    match result {
        Ok(()) => {
            // A successful job's fetched log is its green log (best effort, as the copy).
            if let Err(error) = keep_if_recorded_green(&state.store, &key).await {
                tracing::warn!(%error, "a fetched trace was not kept as the last green log");
            }
        }
        // Someone stored this trace meanwhile (a log push, another fetch): theirs stays.
        Err(StoreError::Conflict) => {}
        Err(error) => {
            tracing::warn!(%error, "a fetched trace was not cached");
            state.store.discard_replacement(&key, replacement).await;
        }
    }
}

/// A provider failure as the caller sees it.
fn fetch_error(error: FetchError, provider: &str, project: &str, job_id: &str) -> ApiError {
    let name = if provider == "github" {
        "GitHub"
    } else {
        "GitLab"
    };
    match error {
        FetchError::NotFound => ApiError::not_found(format!(
            "{name} has no job {job_id} in {project}, and no trace is stored for it"
        )),
        FetchError::Expired => ApiError::new(
            StatusCode::GONE,
            format!(
                "{name} no longer keeps the log of job {job_id} (it expired), and no copy is stored"
            ),
        ),
        FetchError::NoToken(_) => ApiError::not_found(format!(
            "no trace is stored for job {job_id}, and no {name} token is configured to fetch it"
        )),
        FetchError::Rejected(status) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!("{name} rejected this deployment's token (HTTP {status}); check its scopes"),
        ),
        FetchError::ForeignRedirect(host) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!(
                "{name} redirected the log download to {host}, which is not an allowed log host"
            ),
        ),
        FetchError::RateLimited(seconds) => ApiError::unavailable(format!(
            "{name}'s API rate limit for this deployment's token is used up; retry in {seconds} s"
        ))
        .with_retry_after(seconds),
        FetchError::Unavailable(detail) => {
            tracing::warn!(%detail, "log fetch failed");
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                format!("{name} did not deliver the log; retry later"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tail;

    #[test]
    fn tails_lines() {
        assert_eq!(tail(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(tail(b"a\nb\nc", 1), b"c");
        assert_eq!(tail(b"a\nb\n", 5), b"a\nb\n");
        assert_eq!(tail(b"a\nb\n", 0), b"");
    }
}
