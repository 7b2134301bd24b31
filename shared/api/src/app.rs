//! Wrapping a function's routes into a complete service: health and version, JSON errors for
//! unknown routes and methods, and one log span per request.

use crate::error::ApiError;
use crate::routes::table::RouteSet;
use crate::state::AppState;
use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use std::time::Instant;
use tracing::Instrument;

/// The service of the routes of `sets` (see [`crate::routes::table`]).
pub fn function_app(sets: &[RouteSet], state: AppState) -> Router {
    let cors = cors_layer(&state.config.cors_allowed_origins);
    let app = crate::routes::table::router(sets, &state)
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
        .with_state(state);
    // Repo paths are rewritten before routing, which `Router::layer` middleware runs after.
    let app = Router::new().fallback_service(tower::util::MapRequest::new(app, encode_repo_paths));
    match cors {
        Some(cors) => app.layer(cors),
        None => app,
    }
}

/// Cross-origin access for the configured origins only: bearer keys in headers (no
/// cookies), the methods and headers the API takes, the headers clients read back.
fn cors_layer(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use http::{HeaderName, Method, header};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let origins: Vec<http::HeaderValue> = origins
        .iter()
        .filter_map(|origin| origin.parse().ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::CONTENT_ENCODING,
                header::CONTENT_RANGE,
            ])
            .expose_headers([
                header::LOCATION,
                header::RETRY_AFTER,
                header::RANGE,
                HeaderName::from_static("x-trace-length"),
                HeaderName::from_static("x-trace-offset"),
                HeaderName::from_static("x-trace-next-offset"),
            ])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// The resources under `/api/v1/repos/{repo}/…`, by the segments that follow the repo.
const REPO_RESOURCES_LAST: &[&str] = &["analysis", "tests", "quarantine", "settings"];
const REPO_RESOURCES_WITH_ID: &[&str] = &["builds", "tests", "quarantine"];

/// Leliel's client puts a repo's path in the URL as it is (`/api/v1/repos/my-org/my-repo/
/// analysis`); the routes take it URL-encoded (`my-org%2Fmy-repo`). The repo is what lies
/// between `repos/` and the resource named at the end, so the raw form is encoded here.
fn encode_repo_paths(mut request: Request) -> Request {
    if let Some(encoded) = encoded_repo_path(request.uri().path())
        && let Ok(uri) = match request.uri().query() {
            Some(query) => format!("{encoded}?{query}"),
            None => encoded,
        }
        .parse()
    {
        *request.uri_mut() = uri;
    }
    request
}

fn encoded_repo_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/api/v1/repos/")?;
    let segments: Vec<&str> = rest.split('/').collect();
    let count = segments.len();
    let repo_segments = if count >= 2 && REPO_RESOURCES_LAST.contains(&segments[count - 1]) {
        count - 1
    } else if count >= 3 && REPO_RESOURCES_WITH_ID.contains(&segments[count - 2]) {
        count - 2
    } else {
        return None;
    };
    if repo_segments < 2 || segments[..repo_segments].iter().any(|s| s.is_empty()) {
        return None;
    }
    Some(format!(
        "/api/v1/repos/{}/{}",
        segments[..repo_segments].join("%2F"),
        segments[repo_segments..].join("/")
    ))
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

#[cfg(test)]
mod tests {
    use super::encoded_repo_path;

    #[test]
    fn a_raw_repo_path_is_encoded_and_an_encoded_one_left_alone() {
        for (raw, encoded) in [
            (
                "/api/v1/repos/my-org/my-repo/analysis",
                Some("/api/v1/repos/my-org%2Fmy-repo/analysis"),
            ),
            (
                "/api/v1/repos/a/b/c/builds/17",
                Some("/api/v1/repos/a%2Fb%2Fc/builds/17"),
            ),
            (
                "/api/v1/repos/org/tests/analysis",
                Some("/api/v1/repos/org%2Ftests/analysis"),
            ),
            (
                "/api/v1/repos/a/b/tests/t-1",
                Some("/api/v1/repos/a%2Fb/tests/t-1"),
            ),
            ("/api/v1/repos/a%2Fb/analysis", None),
            ("/api/v1/repos/a%2Fb/builds/17", None),
            ("/api/v1/repos/a//b/analysis", None),
            ("/api/v1/builds", None),
        ] {
            assert_eq!(encoded_repo_path(raw).as_deref(), encoded, "{raw}");
        }
    }
}
