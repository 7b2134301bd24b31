//! Serving a function's router on Lambda.

use crate::app::function_app;
use crate::routes::table::RouteSet;
use crate::state::AppState;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Initialises logging and state once per cold start, then serves `routes` for every
/// API Gateway event.
pub async fn serve(routes: RouteSet) -> Result<(), BoxError> {
    crate::telemetry::init();
    let state = AppState::from_env().await?;
    lambda_http::run(function_app(&[routes], state)).await
}

/// Like [`serve`], for a function behind a Function URL in response-streaming mode.
pub async fn serve_streaming(routes: RouteSet) -> Result<(), BoxError> {
    crate::telemetry::init();
    let state = AppState::from_env().await?;
    lambda_http::run_with_streaming_response(function_app(&[routes], state)).await
}
