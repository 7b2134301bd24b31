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
