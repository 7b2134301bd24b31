//! Serving a function's router on Lambda.

use crate::app::function_app;
use crate::routes::Function;
use crate::state::AppState;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Initialises logging and state once per cold start, then serves `function`'s routes for every
/// API Gateway event.
pub async fn serve(function: Function) -> Result<(), BoxError> {
    crate::telemetry::init();
    let state = AppState::from_env().await?;
    lambda_http::run(function_app(&[function], state)).await
}

/// Like [`serve`], for a function behind a Function URL in response-streaming mode.
pub async fn serve_streaming(function: Function) -> Result<(), BoxError> {
    crate::telemetry::init();
    let state = AppState::from_env().await?;
    lambda_http::run_with_streaming_response(function_app(&[function], state)).await
}
