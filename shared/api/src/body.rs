//! Reading a JSON request body: content type, size limit and syntax, each with a 4xx that
//! says what to fix.

use crate::error::ApiError;
use axum::body::Body;
use http::{HeaderMap, StatusCode, header};
use serde_json::Value;

/// Reads at most `limit` bytes of body.
pub async fn read_bytes(body: Body, limit: usize) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than the {limit} byte limit"),
        )
    })
}

/// Parses JSON bytes, or says where they are broken.
pub fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::bad_request(
            "request body is empty; send a JSON object",
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|error| ApiError::bad_request(format!("request body is not valid JSON: {error}")))
}

/// Refuses a content type that is present and not JSON.
pub fn require_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        let text = content_type
            .to_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let essence = text.split(';').next().unwrap_or_default().trim();
        let is_json = essence == "application/json" || essence.ends_with("+json");
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "Content-Type must be application/json, got {:?}",
                    essence.chars().take(64).collect::<String>()
                ),
            ));
        }
    }
    Ok(())
}

/// Checks the content type (absent is taken as JSON, since plain `curl -d` scripts often
/// omit it) and reads at most `limit` bytes of JSON.
pub async fn read_json(headers: &HeaderMap, body: Body, limit: usize) -> Result<Value, ApiError> {
    require_json_content_type(headers)?;
    let bytes = read_bytes(body, limit).await?;
    parse_json(&bytes)
}

/// Whether the body is gzip-encoded: `Content-Encoding: gzip`, or a gzip content type
/// (`application/gzip`, as some uploaders label compressed files); other encodings are
/// refused.
pub fn gzip_encoded(headers: &HeaderMap) -> Result<bool, ApiError> {
    let gzip_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("gzip"));
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|value| value.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("") | Some("identity") => Ok(gzip_type),
        Some("gzip") | Some("x-gzip") => Ok(true),
        Some(other) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Encoding {:?} is not supported; send gzip or no encoding",
                other.chars().take(32).collect::<String>()
            ),
        )),
    }
}
