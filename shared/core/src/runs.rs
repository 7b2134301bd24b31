//! Pipelines and jobs from every source (GitLab and GitHub webhooks, log push, trace upload),
//! normalised into one model with the same status set as builds.

use crate::counters::{Contribution, CounterFamily};
use crate::keys;
use crate::record::{Decision, Record, RefuseReason};
use crate::repo::RepoPath;
use crate::status::BuildStatus;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// The provider's numeric user id.
    #[serde(default)]
    pub id: Option<u64>,
    pub name: Option<String>,
    pub username: Option<String>,
    pub avatar_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitInfo {
    pub id: Option<String>,
    pub title: Option<String>,
    pub message: Option<String>,
    pub author_name: Option<String>,
    /// As the provider's hook carries it (a commit's author, public in the repository).
    #[serde(default)]
    pub author_email: Option<String>,
    /// When the commit was made.
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Runner {
    pub id: Option<String>,
    pub name: Option<String>,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub number: Option<u64>,
    pub name: String,
    pub status: BuildStatus,
}

/// Where a pipeline or job ran: `gitlab`, `github`, or another CI system's name as reported
/// through log push (lower-case letters, digits, `-`, `_`).
pub fn valid_provider(raw: &str) -> Option<String> {
    let lowered = raw.trim().to_ascii_lowercase();
    let ok = !lowered.is_empty()
        && lowered.len() <= 32
        && lowered
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    // Other tools' names for the same providers (Exlogare says `gitlab_ci`): one job is one
    // job however its sender names its CI.
    let canonical = match lowered.as_str() {
        "gitlab_ci" | "gitlab-ci" | "gitlabci" => "gitlab".to_string(),
        "github_actions" | "github-actions" | "githubactions" | "gha" => "github".to_string(),
        _ => lowered,
    };
    ok.then_some(canonical)
}

#[cfg(test)]
mod provider_tests {
    use super::valid_provider;

    #[test]
    fn other_tools_names_of_a_provider_are_the_provider() {
        for (raw, provider) in [
            ("gitlab_ci", "gitlab"),
            ("GitLab-CI", "gitlab"),
            ("github_actions", "github"),
            ("jenkins", "jenkins"),
        ] {
            assert_eq!(valid_provider(raw).as_deref(), Some(provider), "{raw}");
        }
        assert_eq!(valid_provider("git lab"), None);
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    pub provider: String,
    pub repo: RepoPath,
    pub project_id: Option<String>,
    pub pipeline_id: String,
    pub name: Option<String>,
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    pub sha: Option<String>,
    pub source: Option<String>,
    pub status: BuildStatus,
    /// The status as the provider spelled it (`failed`, `completed/failure`).
    pub provider_status: String,
    pub created_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<u64>,
    pub user: Option<Person>,
    pub commit: Option<CommitInfo>,
    pub url: Option<String>,
    /// The merge request (GitLab's `iid`) or pull request (GitHub's number) it ran for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_request: Option<u64>,
    /// Re-runs of the same pipeline id count up (GitHub's `run_attempt`); 1 otherwise.
    pub attempt: u32,
    /// The latest event time the report carries: what orders reports of one attempt.
    pub observed_at: DateTime<Utc>,
    pub first_seen: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub provider: String,
    pub repo: RepoPath,
    pub project_id: Option<String>,
    pub job_id: String,
    /// The pipeline it belongs to, when known; a job may arrive before its pipeline.
    pub pipeline_id: Option<String>,
    pub name: String,
    pub stage: Option<String>,
    pub status: BuildStatus,
    pub provider_status: String,
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    pub sha: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<u64>,
    pub queued_duration_ms: Option<u64>,
    pub failure_reason: Option<String>,
    pub allow_failure: Option<bool>,
    pub runner: Option<Runner>,
    pub labels: Vec<String>,
    pub steps: Vec<Step>,
    /// The first step that failed, where the provider reports steps.
    pub failing_step: Option<String>,
    pub url: Option<String>,
    pub user: Option<Person>,
    pub attempt: u32,
    pub observed_at: DateTime<Utc>,
    pub first_seen: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The ordering rule for provider events: a later attempt wins; within one attempt the report
/// with the later event time wins (a retried GitLab pipeline goes from failed back to running
/// with newer times, while a delayed delivery of an old `running` carries older ones); reports
/// with the same time are ordered by lifecycle rank.
fn decide_by_observation<R: Record>(
    stored: (&R, u32, DateTime<Utc>),
    incoming: (&R, u32, DateTime<Utc>),
    advanced: impl FnOnce() -> R,
) -> Decision<R> {
    let (stored_record, stored_attempt, stored_seen) = stored;
    let (incoming_record, incoming_attempt, incoming_seen) = incoming;
    let refuse = || {
        Decision::Refuse(
            if stored_record.status().is_terminal() && incoming_record.status().is_terminal() {
                RefuseReason::AlreadyFinished
            } else {
                RefuseReason::Regression
            },
        )
    };
    if incoming_attempt != stored_attempt {
        return if incoming_attempt > stored_attempt {
            Decision::Advance(Box::new(advanced()))
        } else {
            refuse()
        };
    }
    if incoming_seen != stored_seen {
        return if incoming_seen > stored_seen {
            Decision::Advance(Box::new(advanced()))
        } else if incoming_record.status() == stored_record.status() {
            Decision::Unchanged
        } else {
            refuse()
        };
    }
    let (was, now) = (stored_record.status(), incoming_record.status());
    if was == now {
        Decision::Unchanged
    } else if now.rank() > was.rank() {
        Decision::Advance(Box::new(advanced()))
    } else {
        refuse()
    }
}

fn or<T: Clone>(new: &Option<T>, old: &Option<T>) -> Option<T> {
    new.clone().or_else(|| old.clone())
}

impl Pipeline {
    fn merged_onto(&self, stored: &Pipeline) -> Pipeline {
        Pipeline {
            project_id: or(&self.project_id, &stored.project_id),
            name: or(&self.name, &stored.name),
            git_ref: or(&self.git_ref, &stored.git_ref),
            sha: or(&self.sha, &stored.sha),
            source: or(&self.source, &stored.source),
            created_at: or(&self.created_at, &stored.created_at),
            user: or(&self.user, &stored.user),
            commit: or(&self.commit, &stored.commit),
            url: or(&self.url, &stored.url),
            first_seen: stored.first_seen,
            ..self.clone()
        }
    }

    pub fn sort_key(&self) -> String {
        keys::pipeline_sort_key(&self.provider, &self.pipeline_id)
    }
}

impl Job {
    /// A job known only by its key, to look the stored one up with (`RecordStore::get` reads
    /// the provider, repo and id alone).
    pub fn key_of(provider: &str, repo: &RepoPath, job_id: &str) -> Job {
        let epoch = DateTime::<Utc>::UNIX_EPOCH;
        Job {
            provider: provider.to_string(),
            repo: repo.clone(),
            project_id: None,
            job_id: job_id.to_string(),
            pipeline_id: None,
            name: String::new(),
            stage: None,
            status: BuildStatus::Pending,
            provider_status: String::new(),
            git_ref: None,
            sha: None,
            created_at: None,
            started_at: None,
            finished_at: None,
            duration_ms: None,
            queued_duration_ms: None,
            failure_reason: None,
            allow_failure: None,
            runner: None,
            labels: Vec::new(),
            steps: Vec::new(),
            failing_step: None,
            url: None,
            user: None,
            attempt: 1,
            observed_at: epoch,
            first_seen: epoch,
            updated_at: epoch,
        }
    }

    fn merged_onto(&self, stored: &Job) -> Job {
        Job {
            project_id: or(&self.project_id, &stored.project_id),
            pipeline_id: or(&self.pipeline_id, &stored.pipeline_id),
            stage: or(&self.stage, &stored.stage),
            git_ref: or(&self.git_ref, &stored.git_ref),
            sha: or(&self.sha, &stored.sha),
            created_at: or(&self.created_at, &stored.created_at),
            runner: or(&self.runner, &stored.runner),
            url: or(&self.url, &stored.url),
            user: or(&self.user, &stored.user),
            labels: if self.labels.is_empty() {
                stored.labels.clone()
            } else {
                self.labels.clone()
            },
            steps: if self.steps.is_empty() {
                stored.steps.clone()
            } else {
                self.steps.clone()
            },
            failing_step: or(&self.failing_step, &stored.failing_step),
            first_seen: stored.first_seen,
            ..self.clone()
        }
    }
}

/// Pipelines and jobs follow the same lifecycle rules; only their identity and the counters
/// they feed differ.
macro_rules! provider_record {
    ($type:ty, $kind:literal, $id:ident, $family:expr, $recent:expr) => {
        impl Record for $type {
            const KIND: &'static str = $kind;

            fn repo(&self) -> &RepoPath {
                &self.repo
            }

            fn id(&self) -> String {
                format!("{}:{}", self.provider, self.$id)
            }

            fn status(&self) -> BuildStatus {
                self.status
            }

            fn first_seen(&self) -> DateTime<Utc> {
                self.first_seen
            }

            fn contribution(&self) -> Contribution {
                Contribution {
                    family: $family,
                    status: self.status,
                    duration_ms: self.duration_ms,
                }
            }

            fn decide(&self, stored: &Self) -> Decision<Self> {
                let decision = decide_by_observation(
                    (stored, stored.attempt, stored.observed_at),
                    (self, self.attempt, self.observed_at),
                    || self.merged_onto(stored),
                );
                match decision {
                    // A newer report that says nothing new (a repeated push) changes nothing.
                    Decision::Advance(next) if next.same_content_as(stored) => Decision::Unchanged,
                    other => other,
                }
            }

            fn recent_run(&self) -> Option<crate::summary::RecentRun> {
                let recent: fn(&Self) -> Option<crate::summary::RecentRun> = $recent;
                recent(self)
            }
        }

        impl $type {
            /// Equal but for when it was observed and received.
            fn same_content_as(&self, other: &Self) -> bool {
                let mut this = self.clone();
                this.observed_at = other.observed_at;
                this.updated_at = other.updated_at;
                this == *other
            }
        }
    };
}

provider_record!(
    Pipeline,
    "pipeline",
    pipeline_id,
    CounterFamily::Runs,
    |pipeline| Some(crate::summary::RecentRun::of_pipeline(pipeline))
);
provider_record!(Job, "job", job_id, CounterFamily::Jobs, |_| None);

/// The latest of the given times, or `fallback` when there is none.
pub fn latest(times: &[Option<DateTime<Utc>>], fallback: DateTime<Utc>) -> DateTime<Utc> {
    times.iter().flatten().max().copied().unwrap_or(fallback)
}
