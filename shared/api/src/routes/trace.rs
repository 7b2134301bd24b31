//! The trace function: job logs fetched from GitLab and GitHub.

use super::not_yet;
use crate::state::AppState;
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/jobtrace", not_yet("GET /api/jobtrace"))
}
