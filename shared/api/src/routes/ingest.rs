//! The ingest function: builds (Leliel contract); webhooks, log push and trace append follow.

use crate::body::read_json;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use buildlore_core::Build;
use buildlore_core::build::BuildSubmission;
use buildlore_core::record::{RecordOutcome, record};
use buildlore_core::record_batch::{BatchEntry, record_batch};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Value, json};

/// One build is small: 64 KB of extra_data plus the fields.
pub const MAX_BUILD_BODY_BYTES: usize = 128 * 1024;
/// A batch stays under Lambda's 6 MB payload limit.
pub const MAX_BATCH_BODY_BYTES: usize = 5 * 1024 * 1024;
pub const MAX_BATCH_RECORDS: usize = 100;

/// Where a build can be read back.
pub fn build_location(build: &Build) -> String {
    format!(
        "/api/v1/repos/{}/builds/{}",
        percent_encode(build.repo.as_str()),
        percent_encode(&build.build_id)
    )
}

pub use buildlore_core::percent::encode_component as percent_encode;

fn outcome_status(outcome: RecordOutcome) -> StatusCode {
    match outcome {
        RecordOutcome::Created => StatusCode::CREATED,
        _ => StatusCode::OK,
    }
}

pub(crate) async fn ingest_build(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let value = read_json(&headers, body, MAX_BUILD_BODY_BYTES).await?;
    let build = BuildSubmission::parse(&value, chrono::Utc::now())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (outcome, stored) = record(&state.store, build).await?;
    tracing::info!(repo = %stored.repo, build_id = %stored.build_id, result = outcome.as_str(), "build recorded");
    let location = build_location(&stored);
    let mut response = (
        outcome_status(outcome),
        Json(json!({ "result": outcome.as_str(), "build": stored })),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// The records of a batch body: a JSON array, or an object with a `builds` array.
fn batch_records(value: Value) -> Result<Vec<Value>, ApiError> {
    let records = match value {
        Value::Array(records) => records,
        Value::Object(mut object) => match object.remove("builds") {
            Some(Value::Array(records)) => records,
            _ => {
                return Err(ApiError::bad_request(
                    "a batch must be a JSON array of builds or an object {\"builds\": [...]}",
                ));
            }
        },
        _ => {
            return Err(ApiError::bad_request(
                "a batch must be a JSON array of builds or an object {\"builds\": [...]}",
            ));
        }
    };
    if records.is_empty() {
        return Err(ApiError::bad_request(
            "the batch is empty; send 1 to 100 builds",
        ));
    }
    if records.len() > MAX_BATCH_RECORDS {
        return Err(ApiError::bad_request(format!(
            "a batch holds at most {MAX_BATCH_RECORDS} builds, got {}; split it",
            records.len()
        )));
    }
    Ok(records)
}

pub(crate) async fn ingest_batch(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let value = read_json(&headers, body, MAX_BATCH_BODY_BYTES).await?;
    let records = batch_records(value)?;
    let now = chrono::Utc::now();
    let submissions = records
        .iter()
        .map(|record| BuildSubmission::parse(record, now))
        .collect();
    let entries = record_batch(&state.store, submissions).await;
    let results: Vec<Value> = entries
        .into_iter()
        .zip(&records)
        .enumerate()
        .map(|(index, (entry, record))| entry_json(index, entry, record))
        .collect();
    let count = |result: &str| {
        results
            .iter()
            .filter(|r| r.get("result").and_then(Value::as_str) == Some(result))
            .count()
    };
    let failed = results.iter().filter(|r| r.get("error").is_some()).count();
    let summary = json!({
        "received": results.len(),
        "created": count("created"),
        "updated": count("updated"),
        "unchanged": count("unchanged"),
        "failed": failed,
        "results": results,
    });
    Ok((StatusCode::OK, Json(summary)).into_response())
}

/// One entry of a batch's answer: what became of the build at `index` (sent as `record`).
fn entry_json(index: usize, entry: BatchEntry, record: &Value) -> Value {
    match entry {
        BatchEntry::Invalid(error) => json!({
            "index": index,
            "build_id": record.get("build_id"),
            "statusCode": 400,
            "error": error.to_string(),
        }),
        BatchEntry::Recorded(outcome, stored) => json!({
            "index": index,
            "build_id": stored.build_id,
            "statusCode": outcome_status(outcome).as_u16(),
            "result": outcome.as_str(),
            "location": build_location(&stored),
        }),
        BatchEntry::Failed { build_id, error } => {
            let error = ApiError::from(error);
            json!({
                "index": index,
                "build_id": build_id,
                "statusCode": error.status.as_u16(),
                "error": error.message,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_keeps_one_segment() {
        assert_eq!(percent_encode("group/sub/app"), "group%2Fsub%2Fapp");
        assert_eq!(percent_encode("a b#?"), "a%20b%23%3F");
        assert_eq!(percent_encode("ü"), "%C3%BC");
    }
}
