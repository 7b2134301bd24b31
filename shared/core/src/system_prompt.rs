//! The system prompt an administrator may store in place of the shipped one, and the analysis
//! settings it becomes part of.

use crate::job_analysis::AnalysisSettings;
use crate::ports::StoreError;
use std::future::Future;

/// The system prompt stored by an administrator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPrompt {
    pub prompt: String,
    pub version: u64,
    pub updated_at: String,
}

/// Where the administrator's system prompt is kept, versioned so two editors cannot overwrite
/// each other unknowingly.
pub trait SystemPrompts: Send + Sync {
    /// The stored system prompt, if an administrator set one.
    fn system_prompt(
        &self,
    ) -> impl Future<Output = Result<Option<StoredPrompt>, StoreError>> + Send;

    /// Stores a new system prompt as version `previous + 1`; `Conflict` if another
    /// administrator changed it since `previous` was read.
    fn put_system_prompt(
        &self,
        prompt: &str,
        previous: u64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// How analyses are made here: the deployment's settings (reuse window, default branches)
/// with the system prompt an administrator stored, else the shipped one.
pub async fn analysis_settings<S: SystemPrompts>(
    store: &S,
    configured: &AnalysisSettings,
) -> Result<AnalysisSettings, StoreError> {
    let mut settings = configured.clone();
    if let Some(stored) = store.system_prompt().await? {
        settings.system_prompt = stored.prompt;
    }
    Ok(settings)
}

/// Longest system prompt an administrator may store, in characters.
pub const MAX_SYSTEM_PROMPT_CHARS: usize = 20_000;
/// Shortest system prompt: one that says what the model is for.
pub const MIN_SYSTEM_PROMPT_CHARS: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum ReplacePromptError {
    #[error(
        "`prompt` must be {MIN_SYSTEM_PROMPT_CHARS} to {MAX_SYSTEM_PROMPT_CHARS} characters (it is {0}): say what the model does and the answer's JSON fields"
    )]
    Length(usize),
    /// The administrator edited an older version than the stored one.
    #[error("the system prompt is at version {current}, not {edited}; reload it and edit again")]
    EditedOlderVersion { current: u64, edited: u64 },
    /// Another administrator stored a prompt between the read and the write.
    #[error("the system prompt changed meanwhile; reload it and edit again")]
    ChangedMeanwhile,
    #[error(transparent)]
    Store(StoreError),
}

/// Stores `prompt` (trimmed, non-empty) as the next version of the system prompt, if the
/// administrator edited the current version (`None`: whichever is current); returns the new
/// version.
pub async fn replace_system_prompt<S: SystemPrompts>(
    store: &S,
    prompt: &str,
    edited: Option<u64>,
) -> Result<u64, ReplacePromptError> {
    let length = prompt.chars().count();
    if !(MIN_SYSTEM_PROMPT_CHARS..=MAX_SYSTEM_PROMPT_CHARS).contains(&length) {
        return Err(ReplacePromptError::Length(length));
    }
    let current = store
        .system_prompt()
        .await
        .map_err(ReplacePromptError::Store)?
        .map_or(0, |stored| stored.version);
    let edited = edited.unwrap_or(current);
    if edited != current {
        return Err(ReplacePromptError::EditedOlderVersion { current, edited });
    }
    store
        .put_system_prompt(prompt, current)
        .await
        .map_err(|error| match error {
            StoreError::Conflict => ReplacePromptError::ChangedMeanwhile,
            other => ReplacePromptError::Store(other),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// The stored prompt in memory, versioned as the port promises.
    #[derive(Default)]
    struct KeptPrompt(Mutex<Option<StoredPrompt>>);

    impl SystemPrompts for KeptPrompt {
        async fn system_prompt(&self) -> Result<Option<StoredPrompt>, StoreError> {
            Ok(self.0.lock().unwrap().clone())
        }

        async fn put_system_prompt(&self, prompt: &str, previous: u64) -> Result<u64, StoreError> {
            let mut kept = self.0.lock().unwrap();
            if kept.as_ref().map_or(0, |stored| stored.version) != previous {
                return Err(StoreError::Conflict);
            }
            *kept = Some(StoredPrompt {
                prompt: prompt.to_string(),
                version: previous + 1,
                updated_at: String::new(),
            });
            Ok(previous + 1)
        }
    }

    const PROMPT: &str = "You explain why CI jobs failed, as JSON.";

    #[tokio::test]
    async fn each_edit_of_the_current_version_makes_the_next() {
        let store = KeptPrompt::default();
        assert_eq!(
            replace_system_prompt(&store, PROMPT, None).await.unwrap(),
            1
        );
        assert_eq!(
            replace_system_prompt(&store, PROMPT, Some(1))
                .await
                .unwrap(),
            2
        );
        let stale = replace_system_prompt(&store, PROMPT, Some(1))
            .await
            .unwrap_err();
        assert!(
            matches!(
                stale,
                ReplacePromptError::EditedOlderVersion {
                    current: 2,
                    edited: 1
                }
            ),
            "{stale:?}"
        );
        let settings = analysis_settings(&store, &AnalysisSettings::default())
            .await
            .unwrap();
        assert_eq!(settings.system_prompt, PROMPT);
    }

    #[tokio::test]
    async fn a_prompt_that_says_nothing_is_refused_before_anything_is_read() {
        let store = KeptPrompt::default();
        let short = replace_system_prompt(&store, "be nice", None)
            .await
            .unwrap_err();
        assert!(matches!(short, ReplacePromptError::Length(7)), "{short:?}");
        assert!(store.0.lock().unwrap().is_none());
    }
}
