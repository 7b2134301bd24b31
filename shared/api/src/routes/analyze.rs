//! The analyze function: the `/api/ai/*` API.

use super::not_yet;
use crate::state::AppState;
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/ai/analyse", not_yet("POST /api/ai/analyse"))
        .route("/api/ai/followup", not_yet("POST /api/ai/followup"))
        .route("/api/ai/analyzed", not_yet("GET /api/ai/analyzed"))
        .route("/api/ai/cache", not_yet("/api/ai/cache"))
        .route("/api/ai/history", not_yet("GET /api/ai/history"))
        .route("/api/ai/system-prompt", not_yet("/api/ai/system-prompt"))
        .route("/api/v1/failures", not_yet("GET /api/v1/failures"))
}
