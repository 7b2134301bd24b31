//! `GET /api/settings` and `POST /api/settings` (gitlab-summary's): the group and window the
//! summary and the event stream use when a request names none. Reading takes the read scope,
//! changing them the admin scope.

use crate::body::read_json;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use buildlore_core::settings::{Settings, SettingsStore, updated};
use http::HeaderMap;
use serde_json::{Value, json};

/// The stored settings, or the defaults.
pub async fn current_settings(state: &AppState) -> Result<Settings, ApiError> {
    Ok(state.store.settings().await?.unwrap_or_default())
}

pub(crate) async fn read_settings(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let settings = current_settings(&state).await?;
    Ok(Json(json!({
        "group": settings.group.unwrap_or_default(),
        "since": settings.since,
        "gitlabUrl": state.config.providers.gitlab_base.as_str().trim_end_matches('/'),
    })))
}

pub(crate) async fn change_settings(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let body = read_json(&headers, body, 16 * 1024).await?;
    let current = current_settings(&state).await?;
    let next = updated(&current, &body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    state.store.put_settings(&next).await?;
    Ok(Json(json!({
        "success": true,
        "group": next.group.unwrap_or_default(),
        "since": next.since,
    })))
}
