//! The trace function: `GET /api/jobtrace` (gitlab-summary's shape, `{"trace", "complete"}`).
//! The bytes come from a trace stored by log push or trace upload, else from GitLab or GitHub
//! with the deployment's token; a finished job's fetched log is stored, so the provider is
//! asked once.

use crate::error::ApiError;
use crate::log_downloads::ProviderLogs;
use crate::params::{QueryParams, non_empty, query_params, whole_number};
use crate::routes::project::job_target;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use buildlore_core::fetch_trace::{FetchedTrace, TraceWindow, WantedTrace, fetch_trace};
use buildlore_core::log_clean::clean_log;
use http::{HeaderValue, StatusCode, header};
use serde_json::json;
use std::collections::HashMap;

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
    let target = job_target(&state, get).await?;
    let shown = shown_part(&params)?;
    let wanted = WantedTrace {
        provider: &target.provider,
        repo: target.repo.as_ref(),
        provider_project: &target.provider_project,
        job_id: &target.job_id,
        window: shown.window,
    };
    let downloads = state.providers().map(ProviderLogs);
    let cache_for = chrono::Duration::days(i64::from(state.config.trace_cache_days));
    let fetched = fetch_trace(&state.store, downloads.as_ref(), cache_for, wanted).await?;
    Ok(render(fetched, &shown))
}

/// What part of the log a request wants, and how it wants it shown.
struct ShownPart {
    window: TraceWindow,
    /// `tail`: only the last lines.
    tail_lines: Option<u64>,
    /// `clean`: without ANSI colours and carriage-return redraws.
    clean: bool,
    /// `format=raw`: the bytes as they are, not JSON.
    raw: bool,
}

fn shown_part(params: &HashMap<String, String>) -> Result<ShownPart, ApiError> {
    let number = |name: &str, max: u64| whole_number(params, name, max);
    let requested_offset = number("offset", u64::MAX)?;
    let limit = match number("limit", u64::MAX)? {
        // An empty page would send a paging client round in circles.
        Some(0) => {
            return Err(ApiError::bad_request(format!(
                "`limit` must be 1 to {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        given => given.map_or(MAX_RESPONSE_BYTES, |l| l.min(MAX_RESPONSE_BYTES)),
    };
    let tail_lines = number("tail", MAX_TAIL_LINES as u64)?;
    let window = match (tail_lines, requested_offset) {
        (Some(_), None) => TraceWindow::End {
            bytes: MAX_RESPONSE_BYTES,
            limit,
        },
        (_, start) => TraceWindow::Range {
            start: start.unwrap_or(0),
            limit,
        },
    };
    Ok(ShownPart {
        window,
        tail_lines,
        clean: matches!(non_empty(params, "clean"), Some("true" | "1" | "yes")),
        raw: non_empty(params, "format") == Some("raw"),
    })
}

/// The answer: gitlab-summary's `{"trace", "complete"}` with paging fields, or the raw bytes.
fn render(fetched: FetchedTrace, shown: &ShownPart) -> Response {
    let FetchedTrace { slice, complete } = fetched;
    let slice_end = slice.offset + slice.bytes.len() as u64;
    let next_offset = (slice_end < slice.total_length).then_some(slice_end);
    let mut bytes = if shown.clean {
        clean_log(&slice.bytes)
    } else {
        slice.bytes
    };
    if let Some(lines) = shown.tail_lines {
        bytes = tail(&bytes, lines as usize).to_vec();
    }
    if shown.raw {
        let mut response = (StatusCode::OK, bytes).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        headers.insert("x-trace-length", HeaderValue::from(slice.total_length));
        return response;
    }
    let lossless = std::str::from_utf8(&bytes).is_ok();
    Json(json!({
        "trace": String::from_utf8_lossy(&bytes),
        "complete": complete,
        "offset": slice.offset,
        "total_length": slice.total_length,
        // Where the next page starts, when this answer did not reach the end.
        "next_offset": next_offset,
        // Bytes that are not UTF-8 are replaced in JSON; `format=raw` serves them exactly.
        "lossless": lossless,
    }))
    .into_response()
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
