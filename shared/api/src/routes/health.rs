//! `GET /api/health`, `GET /api/version` and `GET /api/openapi.json`: no key needed.

use crate::version::VERSION;
use axum::Json;
use serde_json::{Value, json};

pub(crate) async fn health() -> Json<Value> {
    Json(json!({
        "status": "healthy",
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    }))
}

pub(crate) async fn version() -> Json<Value> {
    Json(json!(VERSION))
}

pub(crate) async fn openapi() -> Json<Value> {
    Json(crate::openapi::document())
}
