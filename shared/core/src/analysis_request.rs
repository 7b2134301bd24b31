//! The message that asks the analysis worker to explain a failed job. Versioned: a worker
//! refuses versions it does not know instead of guessing.

use crate::repo::RepoPath;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::future::Future;

pub const ANALYSIS_REQUEST_VERSION: u32 = 1;
/// Version 2 adds `question`: a follow-up question for the worker to answer (sent only when
/// the API may not call the LLM itself, as with Bedrock, which only the worker may invoke).
pub const FOLLOWUP_REQUEST_VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisRequest {
    pub version: u32,
    pub provider: String,
    pub repo: RepoPath,
    pub job_id: String,
    pub pipeline_id: Option<String>,
    pub job_name: Option<String>,
    /// The branch or ref the job ran on, when known (optional within version 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    pub requested_at: DateTime<Utc>,
    /// What asked for it: `log_push`, `api`, `followup`.
    pub origin: String,
    /// A follow-up question about the job's finished analysis (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the analysis queue is unavailable: {0}")]
    Unavailable(String),
}

pub trait AnalysisQueue: Send + Sync {
    fn send(
        &self,
        request: &AnalysisRequest,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;
}
