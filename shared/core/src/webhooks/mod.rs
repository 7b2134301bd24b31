//! Webhook payloads from GitLab and GitHub, normalised into pipelines, jobs and builds.
//! Parsing is pure and storage-free, so it is fast and tested against the real payloads.

pub mod from_api;
pub mod github;
pub mod gitlab;
pub mod json;
pub mod pruned;
pub mod secret;

use crate::build::Build;
use crate::runs::{Job, Pipeline};

/// What one delivery reports.
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookEvent {
    /// Records to store, validated in full before anything is written.
    Records(Normalised),
    /// GitHub's ping when a webhook is created.
    Ping,
    /// A valid event this service does not use.
    Ignored(String),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Normalised {
    pub pipelines: Vec<Pipeline>,
    pub jobs: Vec<Job>,
    pub builds: Vec<Build>,
}
