//! `GET /api/health`, `GET /api/version` and `GET /api/openapi.json`: no key needed.

use crate::state::AppState;
use crate::version::VERSION;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/health", get(health))
        .route("/api/version", get(version))
        .route("/api/openapi.json", get(openapi))
}

async fn health() -> Json<Value> {
    Json(json!({
        "status": "healthy",
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    }))
}

async fn version() -> Json<Value> {
    Json(json!(VERSION))
}

async fn openapi() -> Json<Value> {
    Json(crate::openapi::document())
}
