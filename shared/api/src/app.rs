//! Wrapping a function's routes into a complete service: health and version, JSON errors for
//! unknown routes and methods, and one log span per request.

use crate::error::ApiError;
use crate::routes::health;
use crate::state::AppState;
use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use std::time::Instant;
use tracing::Instrument;

pub fn function_app(routes: Router<AppState>, state: AppState) -> Router {
    routes
        .merge(health::routes())
        .fallback(|request: Request| async move {
            ApiError::not_found(format!(
                "no route for {} {}",
                request.method(),
                request.uri().path()
            ))
        })
        .method_not_allowed_fallback(|request: Request| async move {
            ApiError::new(
                http::StatusCode::METHOD_NOT_ALLOWED,
                format!(
                    "{} is not allowed on {}",
                    request.method(),
                    request.uri().path()
                ),
            )
        })
        .layer(middleware::from_fn(crate::session::origin_guard))
        .layer(middleware::from_fn(request_span))
        .with_state(state)
}

async fn request_span(request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get("x-amzn-requestid")
        .or_else(|| request.headers().get("x-request-id"))
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %request_id,
    );
    async move {
        let started = Instant::now();
        let response = next.run(request).await;
        tracing::info!(
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "handled"
        );
        response
    }
    .instrument(span)
    .await
}
