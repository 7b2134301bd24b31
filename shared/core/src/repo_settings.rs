//! What a repository opts into: comments on merge and pull requests, and the automatic retry
//! of infrastructure failures. Everything is off until an admin turns it on.

use crate::ports::StoreError;
use crate::repo::RepoPath;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::future::Future;

pub const DEFAULT_AUTO_RETRY_DAILY_CAP: u32 = 5;
pub const MAX_AUTO_RETRY_DAILY_CAP: u32 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoSettings {
    /// Comment on a merge request (GitLab) or pull request (GitHub) whose pipeline failed.
    pub merge_request_comments: bool,
    /// Retry a job once when its failure is the infrastructure's.
    pub auto_retry: bool,
    /// Automatic retries per day (UTC) in this repository, at most.
    pub auto_retry_daily_cap: u32,
}

impl Default for RepoSettings {
    fn default() -> Self {
        RepoSettings {
            merge_request_comments: false,
            auto_retry: false,
            auto_retry_daily_cap: DEFAULT_AUTO_RETRY_DAILY_CAP,
        }
    }
}

pub trait RepoSettingsStore: Send + Sync {
    /// `None` when nothing was ever set (the defaults apply).
    fn repo_settings(
        &self,
        repo: &RepoPath,
    ) -> impl Future<Output = Result<Option<RepoSettings>, StoreError>> + Send;

    fn put_repo_settings(
        &self,
        repo: &RepoPath,
        settings: &RepoSettings,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepoSettingsError {
    #[error(
        "the body must be a JSON object with any of `merge_request_comments` (boolean), `auto_retry` (boolean), `auto_retry_daily_cap` (1 to {MAX_AUTO_RETRY_DAILY_CAP})"
    )]
    NotAnObject,
    #[error(
        "unknown setting `{0}`: the settings are `merge_request_comments`, `auto_retry`, `auto_retry_daily_cap`"
    )]
    Unknown(String),
    #[error("`{0}` must be true or false")]
    NotABoolean(&'static str),
    #[error("`auto_retry_daily_cap` must be a whole number from 1 to {MAX_AUTO_RETRY_DAILY_CAP}")]
    BadCap,
}

impl RepoSettings {
    /// These settings with the changes a request body gives; fields it leaves out keep their
    /// value. Nothing changes unless every field is valid.
    pub fn changed_by(self, body: &Value) -> Result<RepoSettings, RepoSettingsError> {
        let object: &Map<String, Value> = body.as_object().ok_or(RepoSettingsError::NotAnObject)?;
        let mut changed = self;
        for (name, value) in object {
            match name.as_str() {
                "merge_request_comments" => {
                    changed.merge_request_comments = value
                        .as_bool()
                        .ok_or(RepoSettingsError::NotABoolean("merge_request_comments"))?;
                }
                "auto_retry" => {
                    changed.auto_retry = value
                        .as_bool()
                        .ok_or(RepoSettingsError::NotABoolean("auto_retry"))?;
                }
                "auto_retry_daily_cap" => {
                    changed.auto_retry_daily_cap = value
                        .as_u64()
                        .filter(|cap| (1..=u64::from(MAX_AUTO_RETRY_DAILY_CAP)).contains(cap))
                        .and_then(|cap| u32::try_from(cap).ok())
                        .ok_or(RepoSettingsError::BadCap)?;
                }
                other => {
                    return Err(RepoSettingsError::Unknown(other.chars().take(64).collect()));
                }
            }
        }
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_change_keeps_what_it_leaves_out_and_refuses_bad_values_whole() {
        let start = RepoSettings::default();
        let changed = start.changed_by(&json!({"auto_retry": true})).unwrap();
        assert!(changed.auto_retry);
        assert!(!changed.merge_request_comments);
        assert_eq!(changed.auto_retry_daily_cap, DEFAULT_AUTO_RETRY_DAILY_CAP);
        let changed = changed
            .changed_by(&json!({"auto_retry_daily_cap": 2, "merge_request_comments": true}))
            .unwrap();
        assert_eq!(changed.auto_retry_daily_cap, 2);
        assert!(changed.merge_request_comments && changed.auto_retry);
        for (body, error) in [
            (json!([]), RepoSettingsError::NotAnObject),
            (
                json!({"auto_retry": "yes"}),
                RepoSettingsError::NotABoolean("auto_retry"),
            ),
            (
                json!({"auto_retry_daily_cap": 0}),
                RepoSettingsError::BadCap,
            ),
            (
                json!({"auto_retry_daily_cap": 101}),
                RepoSettingsError::BadCap,
            ),
            (
                json!({"auto_retry_daily_cap": 2.5}),
                RepoSettingsError::BadCap,
            ),
            (
                json!({"auto_retry": true, "colour": "red"}),
                RepoSettingsError::Unknown("colour".into()),
            ),
        ] {
            assert_eq!(changed.changed_by(&body), Err(error), "{body}");
        }
    }
}
