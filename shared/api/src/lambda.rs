//! Serving a function's router on Lambda.

use crate::app::function_app;
use crate::state::AppState;
use axum::Router;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Initialises logging and state once per cold start, then serves `routes` for every
/// API Gateway event.
pub async fn serve(routes: fn() -> Router<AppState>) -> Result<(), BoxError> {
    crate::telemetry::init();
    let state = AppState::from_env().await?;
    lambda_http::run(function_app(routes(), state)).await
}
