//! The dashboard: sign-in, the pages (server-rendered frames whose modules read the API with
//! the session cookie) and their static files. Nothing is loaded from another origin: every
//! answer carries a Content-Security-Policy of `default-src 'self'`.

pub mod assets;
pub mod pages;

use crate::auth::Scope;
use crate::error::ApiError;
use crate::session;
use crate::state::AppState;
use axum::extract::rejection::{FormRejection, PathRejection};
use axum::extract::{Form, Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use pages::Page;
use serde::Deserialize;

/// What the pages may load: only this origin. Charts are inline SVG drawn by the modules, and
/// styles are set through the CSSOM, so neither needs `unsafe-inline`.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn with_page_headers(mut response: Response, cache: &'static str) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("x-frame-options", "DENY"),
        ("cache-control", cache),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn html(status: StatusCode, body: String) -> Response {
    with_page_headers(
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
        "no-store",
    )
}

/// Where to go after signing in: a path on this site only.
fn safe_next(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control());
    if local { next } else { "/" }
}

/// The page for a signed-in viewer, else the sign-in form (saying why, when a session was
/// presented and refused).
fn page_or_sign_in(state: &AppState, headers: &HeaderMap, page: Page, here: &str) -> Response {
    match state.config.keys.authorize(headers, Scope::Read) {
        Ok(_) => {
            let admin = state.config.keys.authorize(headers, Scope::Admin).is_ok();
            html(StatusCode::OK, pages::signed_in(page, admin))
        }
        Err(refused) => {
            let said = session::session_cookie(headers).map(|_| refused.message.as_str());
            // The form is the page's answer, not an error: a 401 here would be a console error.
            html(StatusCode::OK, pages::sign_in(said, here))
        }
    }
}

fn here(uri: &http::Uri) -> String {
    uri.path_and_query()
        .map_or_else(|| "/".to_string(), ToString::to_string)
}

pub(crate) async fn overview(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: http::Uri,
) -> Response {
    page_or_sign_in(&state, &headers, Page::Overview, &here(&uri))
}

pub(crate) async fn pipeline(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: http::Uri,
) -> Response {
    page_or_sign_in(&state, &headers, Page::Pipeline, &here(&uri))
}

pub(crate) async fn job(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: http::Uri,
) -> Response {
    page_or_sign_in(&state, &headers, Page::Job, &here(&uri))
}

pub(crate) async fn failures(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: http::Uri,
) -> Response {
    page_or_sign_in(&state, &headers, Page::Failures, &here(&uri))
}

pub(crate) async fn repo(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: http::Uri,
) -> Response {
    page_or_sign_in(&state, &headers, Page::Repo, &here(&uri))
}

#[derive(Deserialize)]
pub(crate) struct SignInForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    next: String,
}

fn see_other(location: &str, cookie: String) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, location);
    }
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    with_page_headers(response, "no-store")
}

/// `POST /session` (the sign-in form): a read or admin key starts a session.
pub(crate) async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<SignInForm>, FormRejection>,
) -> Response {
    // A sign-in from another site would sign the viewer into someone else's session.
    if !session::same_origin(&headers) {
        return session::foreign_origin().into_response();
    }
    let Ok(Form(form)) = form else {
        return html(
            StatusCode::BAD_REQUEST,
            pages::sign_in(Some("Send the sign-in form with a key."), "/"),
        );
    };
    let next = safe_next(&form.next);
    if form.key.trim().is_empty() {
        return html(
            StatusCode::OK,
            pages::sign_in(Some("Enter an API key."), next),
        );
    }
    let now = chrono::Utc::now().timestamp();
    match state.config.keys.start_session(&form.key, now) {
        Ok(token) => see_other(next, session::start_cookie(&headers, &token)),
        Err(refused) => {
            let message = if refused.status == StatusCode::UNAUTHORIZED {
                "That key is not valid here. Check it and try again.".to_string()
            } else {
                refused.message
            };
            // The form again, saying what went wrong (a 4xx would be a console error).
            html(StatusCode::OK, pages::sign_in(Some(&message), next))
        }
    }
}

/// `POST /session/end` (the sign-out button): the cookie is cleared. The origin guard has
/// already refused this from another site.
pub(crate) async fn sign_out(headers: HeaderMap) -> Response {
    see_other("/", session::end_cookie(&headers))
}

pub(crate) async fn asset(path: Result<Path<(String, String)>, PathRejection>) -> Response {
    let Ok(Path((version, name))) = path else {
        return ApiError::not_found("no such asset").into_response();
    };
    let Some(asset) = assets::find(&name) else {
        return ApiError::not_found(format!("no asset named {name:?}")).into_response();
    };
    // An older page asking for its own version gets today's file, not cached for long.
    let cache = if version == assets::version() {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    with_page_headers(
        ([(header::CONTENT_TYPE, asset.content_type)], asset.bytes).into_response(),
        cache,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next("/job?x=1"), "/job?x=1");
        for foreign in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil",
            "",
            "job",
        ] {
            assert_eq!(safe_next(foreign), "/");
        }
    }
}
