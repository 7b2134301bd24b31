//! The dashboard's defaults (gitlab-summary's `/api/settings`): the group and the window the
//! summary and the event stream use when a request names none. Stored in the table, changed
//! by an administrator.

use crate::ports::StoreError;
use crate::repo::RepoPath;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::future::Future;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Projects under this group path only; `None` is every project.
    pub group: Option<String>,
    /// A window such as `7d`.
    pub since: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            group: None,
            since: crate::summary::DEFAULT_WINDOW.to_string(),
        }
    }
}

pub trait SettingsStore: Send + Sync {
    fn settings(&self) -> impl Future<Output = Result<Option<Settings>, StoreError>> + Send;

    fn put_settings(
        &self,
        settings: &Settings,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSettings {
    #[error("the body must be a JSON object with `group` and/or `since`")]
    NotAnObject,
    #[error("`group` must be a group path such as team/platform, or empty for every project: {0}")]
    Group(String),
    #[error("`since` must be a window such as 1d, 7d or 30d: {0}")]
    Since(String),
}

/// `current` with the fields a POST body gives (`group`, `since`); others stay.
pub fn updated(current: &Settings, body: &Value) -> Result<Settings, InvalidSettings> {
    let object = body.as_object().ok_or(InvalidSettings::NotAnObject)?;
    let mut next = current.clone();
    match object.get("group") {
        None => {}
        Some(Value::Null) => next.group = None,
        Some(Value::String(group)) if group.trim().is_empty() => next.group = None,
        Some(Value::String(group)) => {
            let group =
                RepoPath::parse(group.trim()).map_err(|e| InvalidSettings::Group(e.to_string()))?;
            next.group = Some(group.to_string());
        }
        Some(other) => {
            return Err(InvalidSettings::Group(format!(
                "got {}",
                crate::fields::type_name(other)
            )));
        }
    }
    match object.get("since") {
        None | Some(Value::Null) => {}
        Some(Value::String(since)) => {
            crate::time::parse_window(since.trim())
                .map_err(|e| InvalidSettings::Since(e.to_string()))?;
            next.since = since.trim().to_string();
        }
        Some(other) => {
            return Err(InvalidSettings::Since(format!(
                "got {}",
                crate::fields::type_name(other)
            )));
        }
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_update_changes_what_it_names_and_checks_it() {
        let current = Settings::default();
        let next = updated(&current, &json!({"group": "team/platform"})).unwrap();
        assert_eq!(next.group.as_deref(), Some("team/platform"));
        assert_eq!(next.since, "7d");
        let next = updated(&next, &json!({"since": "30d"})).unwrap();
        assert_eq!(
            (next.group.as_deref(), next.since.as_str()),
            (Some("team/platform"), "30d")
        );
        assert_eq!(updated(&next, &json!({"group": ""})).unwrap().group, None);
        for bad in [
            json!({"since": "forever"}),
            json!({"group": "../x"}),
            json!({"since": 7}),
            json!([1]),
        ] {
            assert!(updated(&current, &bad).is_err(), "{bad}");
        }
    }
}
