//! Acting on GitLab and GitHub (retry, cancel) with an audit record of every attempt: who
//! asked (which key, or the automatic retry), what, when, and what the provider answered —
//! refusals included, so the record shows what was tried as well as what happened.

use crate::ports::StoreError;
use crate::provider_actions::{
    ActionError, ActionOutcome, Forge, ForgeProject, ProviderAction, ProviderActions,
};
use crate::repo::RepoPath;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::future::Future;

/// How long an audit record is kept.
pub const ACTION_RECORD_DAYS: i64 = 400;

/// Who asked for an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    /// A person or script with an admin key: the key's id (not the key).
    Key { key_id: String },
    /// buildlore's automatic retry of an infrastructure failure.
    AutoRetry,
}

/// One action as the audit list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRecord {
    /// Sortable by time: the time, then a digest of what was done.
    pub id: String,
    pub at: DateTime<Utc>,
    pub actor: Actor,
    pub provider: String,
    pub repo: RepoPath,
    /// The provider's numeric project id, when the request named it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    #[serde(flatten)]
    pub action: ProviderAction,
    /// "retry job 42" and the like.
    pub description: String,
    /// What the provider did, when it did it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<ActionOutcome>,
    /// Why it did not, when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why the action was taken (the automatic retry's reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ActionRecord {
    pub fn succeeded(&self) -> bool {
        self.outcome.is_some()
    }
}

/// The audit list.
pub trait ActionLog: Send + Sync {
    fn record_action(
        &self,
        record: &ActionRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Newest first, at most `limit`, older than the record `before` names when given.
    fn recent_actions(
        &self,
        limit: usize,
        before: Option<&str>,
    ) -> impl Future<Output = Result<Vec<ActionRecord>, StoreError>> + Send;
}

/// What an action request asks for.
#[derive(Debug, Clone)]
pub struct ActionRequest {
    pub project: ForgeProject,
    pub action: ProviderAction,
    pub actor: Actor,
    pub reason: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ActOnProviderError {
    /// The provider refused or failed; the attempt is recorded.
    #[error("{error}")]
    Provider {
        error: ActionError,
        record: Box<ActionRecord>,
    },
    /// The provider acted, but the audit record could not be written: the caller learns what
    /// happened, and the failure to record it is reported rather than hidden.
    #[error("the action was done but its audit record could not be written: {store}")]
    NotRecorded {
        store: StoreError,
        record: Box<ActionRecord>,
    },
}

/// Asks the provider to act and records the attempt, whatever came of it.
pub async fn act_on_provider<P: ProviderActions, L: ActionLog>(
    provider: &P,
    log: &L,
    request: ActionRequest,
    now: DateTime<Utc>,
) -> Result<ActionRecord, ActOnProviderError> {
    let answer = provider.act(&request.project, &request.action).await;
    let (outcome, error) = match &answer {
        Ok(outcome) => (Some(outcome.clone()), None),
        Err(error) => (None, Some(error.clone())),
    };
    let record = ActionRecord {
        id: action_id(now, &request),
        at: now,
        actor: request.actor,
        provider: request.project.forge.as_str().to_string(),
        repo: request.project.path.clone(),
        project_id: request.project.id.clone(),
        description: request.action.describe(),
        action: request.action,
        outcome,
        error: error.as_ref().map(ToString::to_string),
        reason: request.reason,
    };
    if let Err(store) = log.record_action(&record).await {
        tracing::error!(%store, action = %record.description, "an action's audit record was not written");
        if error.is_none() {
            return Err(ActOnProviderError::NotRecorded {
                store,
                record: Box::new(record),
            });
        }
    }
    match error {
        None => Ok(record),
        Some(error) => Err(ActOnProviderError::Provider {
            error,
            record: Box::new(record),
        }),
    }
}

/// `<time>#<digest>`: sorts by time; the digest tells apart actions of the same millisecond.
fn action_id(now: DateTime<Utc>, request: &ActionRequest) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(request.project.path.as_str().as_bytes());
    hasher.update(request.action.describe().as_bytes());
    hasher.update(format!("{:?}", request.actor).as_bytes());
    hasher.update(now.timestamp_nanos_opt().unwrap_or_default().to_be_bytes());
    let digest = hasher.finalize();
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}#{hex}", crate::time::sortable(now))
}

/// The forge a request's provider names, or why it cannot be acted on.
pub fn forge_of(provider: &str) -> Result<Forge, ActionError> {
    Forge::of_provider(provider).ok_or(ActionError::Unsupported(
        "buildlore can act on gitlab and github jobs and pipelines only",
    ))
}
