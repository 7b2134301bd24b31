//! Backfill: reading a project's (or a GitLab group's) recent pipelines and jobs from the
//! provider's API into the same records webhooks make, so a new deployment does not start
//! empty. The work is split into steps of one page each, each step one queue message, so no
//! function runs long, a crash resumes at the step it stopped in, and a provider's rate limit
//! delays the step that met it. Backfilled records and webhook deliveries meet in the store's
//! newer-state-wins rule: neither double-counts the other.

use crate::deliver_webhook::{DeliveryError, DeliveryStore, record_delivery};
use crate::ports::{Markers, StoreError};
use crate::provider_actions::{
    Forge, ForgeProject, HistoryError, HistoryPage, PageCursor, PipelineHistory,
};
use crate::repo::RepoPath;
use crate::webhooks::Normalised;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::future::Future;

/// The longest window a backfill reads.
pub const MAX_BACKFILL_DAYS: i64 = 90;
/// The longest a step waits for a provider's rate limit (SQS's longest message delay).
pub const MAX_STEP_DELAY_SECONDS: u64 = 900;
/// How long a finished step is remembered (so a redelivered message is not counted twice).
const STEP_MEMORY_DAYS: i64 = 14;

/// What to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BackfillTarget {
    /// A GitLab project (path or numeric id) or a GitHub repository (owner/name).
    Project { project: ForgeProject },
    /// A GitLab group, its subgroups' projects included.
    Group { group: String },
}

/// A backfill as asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillRequest {
    pub forge: Forge,
    pub target: BackfillTarget,
    pub since: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackfillRequestError {
    #[error(
        "the body must be a JSON object: {{\"provider\": \"gitlab\", \"project\": \"group/app\" | \"group\": \"group\", \"since\": \"7d\"}} or {{\"provider\": \"github\", \"repo\": \"owner/name\", \"since\": \"7d\"}}"
    )]
    NotAnObject,
    #[error("`provider` must be gitlab or github")]
    Provider,
    #[error("name exactly one of `project` or `group` (GitLab), or `repo` (GitHub)")]
    Target,
    #[error("GitHub has no groups: name a `repo` (owner/name)")]
    GitHubGroup,
    #[error("`{field}` {reason}")]
    BadPath { field: &'static str, reason: String },
    #[error("`since` must be a window such as 1d, 7d or 30d, at most {MAX_BACKFILL_DAYS}d")]
    Since,
}

impl BackfillRequest {
    /// Reads `{"provider", "project" | "group" | "repo", "since"}`.
    pub fn parse(body: &Value, now: DateTime<Utc>) -> Result<Self, BackfillRequestError> {
        let object = body.as_object().ok_or(BackfillRequestError::NotAnObject)?;
        let text = |name: &str| object.get(name).and_then(Value::as_str).map(str::trim);
        let forge = text("provider")
            .and_then(Forge::of_provider)
            .ok_or(BackfillRequestError::Provider)?;
        let named: Vec<(&str, &str)> = ["project", "group", "repo"]
            .into_iter()
            .filter_map(|field| text(field).map(|value| (field, value)))
            .collect();
        let [(field, value)] = named[..] else {
            return Err(BackfillRequestError::Target);
        };
        let path = |field: &'static str| {
            RepoPath::parse(value).map_err(|error| BackfillRequestError::BadPath {
                field,
                reason: error.to_string(),
            })
        };
        let target = match (forge, field) {
            (Forge::GitHub, "group") => return Err(BackfillRequestError::GitHubGroup),
            (Forge::GitLab, "group") => BackfillTarget::Group {
                group: path("group")?.to_string(),
            },
            (Forge::GitLab, "project") | (Forge::GitHub, "repo") => {
                let path = path(if forge == Forge::GitHub {
                    "repo"
                } else {
                    "project"
                })?;
                if forge == Forge::GitHub && path.as_str().split('/').count() != 2 {
                    return Err(BackfillRequestError::BadPath {
                        field: "repo",
                        reason: "must be owner/name".into(),
                    });
                }
                BackfillTarget::Project {
                    project: ForgeProject {
                        forge,
                        path,
                        id: None,
                    },
                }
            }
            _ => return Err(BackfillRequestError::Target),
        };
        let since = match object.get("since") {
            None | Some(Value::Null) => "7d",
            Some(Value::String(since)) => since.trim(),
            Some(_) => return Err(BackfillRequestError::Since),
        };
        let days = since
            .strip_suffix('d')
            .and_then(|days| days.parse::<i64>().ok())
            .filter(|days| (1..=MAX_BACKFILL_DAYS).contains(days))
            .ok_or(BackfillRequestError::Since)?;
        Ok(BackfillRequest {
            forge,
            target,
            since: now - Duration::days(days),
        })
    }
}

/// One page of work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum BackfillStep {
    GroupProjects {
        group: String,
        page: PageCursor,
    },
    Pipelines {
        project: ForgeProject,
        page: PageCursor,
    },
    Jobs {
        project: ForgeProject,
        pipeline_id: String,
        page: PageCursor,
    },
}

impl BackfillStep {
    /// Identifies the step within its backfill (for "done once").
    fn identity(&self) -> String {
        match self {
            BackfillStep::GroupProjects { group, page } => format!("G#{group}#{}", page.page),
            BackfillStep::Pipelines { project, page } => {
                format!("P#{}#{}", project.path, page.page)
            }
            BackfillStep::Jobs {
                project,
                pipeline_id,
                page,
            } => format!("J#{}#{pipeline_id}#{}", project.path, page.page),
        }
    }
}

/// The queue message of one step. `kind` tells it apart from analysis requests on the same
/// queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillMessage {
    pub kind: String,
    pub backfill_id: String,
    pub forge: Forge,
    pub since: DateTime<Utc>,
    #[serde(flatten)]
    pub step: BackfillStep,
}

pub const BACKFILL_MESSAGE_KIND: &str = "backfill";

/// How far a backfill got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillProgress {
    pub id: String,
    pub request: BackfillRequest,
    pub started_at: DateTime<Utc>,
    pub projects: u64,
    pub pages: u64,
    pub pipelines: u64,
    pub jobs: u64,
    /// Steps queued and not yet done; the backfill is finished at 0.
    pub pending: i64,
    pub errors: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl BackfillProgress {
    pub fn finished(&self) -> bool {
        self.pending <= 0
    }
}

/// What one step adds to a backfill's progress.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProgressDelta {
    pub projects: u64,
    pub pages: u64,
    pub pipelines: u64,
    pub jobs: u64,
    pub pending: i64,
    pub error: Option<String>,
}

pub trait BackfillLog: Send + Sync {
    fn start_backfill(
        &self,
        progress: &BackfillProgress,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Adds `delta` to the counters (atomically: steps run concurrently).
    fn add_progress(
        &self,
        backfill_id: &str,
        delta: &ProgressDelta,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn backfill(
        &self,
        backfill_id: &str,
    ) -> impl Future<Output = Result<Option<BackfillProgress>, StoreError>> + Send;
}

#[derive(Debug, thiserror::Error)]
#[error("the work queue is unavailable: {0}")]
pub struct StepQueueError(pub String);

pub trait BackfillQueue: Send + Sync {
    /// Queues a step, delivered after `delay_seconds` (at most 900).
    fn send_step(
        &self,
        message: &BackfillMessage,
        delay_seconds: u64,
    ) -> impl Future<Output = Result<(), StepQueueError>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum StartBackfillError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] StepQueueError),
}

/// Records a new backfill and queues its first step.
pub async fn start_backfill<L: BackfillLog, Q: BackfillQueue>(
    log: &L,
    queue: &Q,
    request: BackfillRequest,
    backfill_id: String,
    now: DateTime<Utc>,
) -> Result<BackfillProgress, StartBackfillError> {
    let step = match &request.target {
        BackfillTarget::Group { group } => BackfillStep::GroupProjects {
            group: group.clone(),
            page: PageCursor::FIRST,
        },
        BackfillTarget::Project { project } => BackfillStep::Pipelines {
            project: project.clone(),
            page: PageCursor::FIRST,
        },
    };
    let progress = BackfillProgress {
        id: backfill_id.clone(),
        started_at: now,
        projects: u64::from(matches!(request.target, BackfillTarget::Project { .. })),
        pages: 0,
        pipelines: 0,
        jobs: 0,
        pending: 1,
        errors: 0,
        last_error: None,
        updated_at: now,
        request: request.clone(),
    };
    log.start_backfill(&progress).await?;
    let message = BackfillMessage {
        kind: BACKFILL_MESSAGE_KIND.into(),
        backfill_id,
        forge: request.forge,
        since: request.since,
        step,
    };
    queue.send_step(&message, 0).await?;
    Ok(progress)
}

#[derive(Debug, thiserror::Error)]
pub enum BackfillStepError {
    /// Retried by the queue (then dead-lettered).
    #[error("the provider is unavailable: {0}")]
    ProviderUnavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Record(#[from] DeliveryError),
    #[error(transparent)]
    Queue(#[from] StepQueueError),
}

/// Everything a step reads and writes in the table.
pub trait BackfillStore: DeliveryStore + BackfillLog + Markers {}
impl<S> BackfillStore for S where S: DeliveryStore + BackfillLog + Markers {}

/// Does one step: reads its page, records what it holds, queues the steps it leads to, and
/// counts it once.
pub async fn run_backfill_step<S, H, Q>(
    store: &S,
    history: &H,
    queue: &Q,
    message: &BackfillMessage,
    now: DateTime<Utc>,
) -> Result<(), BackfillStepError>
where
    S: BackfillStore,
    H: PipelineHistory,
    Q: BackfillQueue,
{
    let done_marker = format!(
        "BACKFILLSTEP#{}#{}",
        message.backfill_id,
        message.step.identity()
    );
    if store.has_marker(&done_marker).await? {
        return Ok(());
    }
    let outcome = read_page(store, history, message).await;
    let (children, mut delta) = match outcome {
        Ok(read) => read,
        Err(HistoryError::RateLimited(seconds)) => {
            // The same step again once the limit resets; this delivery is done.
            queue
                .send_step(message, seconds.clamp(1, MAX_STEP_DELAY_SECONDS))
                .await?;
            return Ok(());
        }
        Err(HistoryError::Unavailable(reason)) => {
            return Err(BackfillStepError::ProviderUnavailable(reason));
        }
        Err(error) => (
            Vec::new(),
            ProgressDelta {
                error: Some(format!("{}: {error}", describe(&message.step))),
                ..ProgressDelta::default()
            },
        ),
    };
    // Counted once, before the steps it leads to are queued (so `pending` never reaches 0
    // while they are), by whichever delivery of this step marks it counted first.
    delta.pending = i64::try_from(children.len()).unwrap_or(i64::MAX) - 1;
    let counted_marker = format!("{done_marker}#COUNTED");
    if store
        .set_marker(&counted_marker, Duration::days(STEP_MEMORY_DAYS))
        .await?
        && let Err(error) = store.add_progress(&message.backfill_id, &delta, now).await
    {
        // Not counted after all: the redelivered step counts it.
        store.clear_marker(&counted_marker).await?;
        return Err(error.into());
    }
    for step in &children {
        let child = BackfillMessage {
            kind: BACKFILL_MESSAGE_KIND.into(),
            backfill_id: message.backfill_id.clone(),
            forge: message.forge,
            since: message.since,
            step: step.clone(),
        };
        queue.send_step(&child, 0).await?;
    }
    // Done: a later delivery of this message does nothing.
    store
        .set_marker(&done_marker, Duration::days(STEP_MEMORY_DAYS))
        .await?;
    Ok(())
}

fn describe(step: &BackfillStep) -> String {
    match step {
        BackfillStep::GroupProjects { group, page } => {
            format!("group {group}, page {}", page.page)
        }
        BackfillStep::Pipelines { project, page } => {
            format!("pipelines of {}, page {}", project.path, page.page)
        }
        BackfillStep::Jobs {
            project,
            pipeline_id,
            page,
        } => format!(
            "jobs of pipeline {pipeline_id} of {}, page {}",
            project.path, page.page
        ),
    }
}

/// Reads the step's page and records it: the steps it leads to, and what it adds.
async fn read_page<S: DeliveryStore, H: PipelineHistory>(
    store: &S,
    history: &H,
    message: &BackfillMessage,
) -> Result<(Vec<BackfillStep>, ProgressDelta), HistoryError> {
    let recorded = |error: DeliveryError| HistoryError::Unavailable(format!("recording: {error}"));
    match &message.step {
        BackfillStep::GroupProjects { group, page } => {
            let HistoryPage { items, next, .. } = history
                .group_projects_page(message.forge, group, *page)
                .await?;
            let mut children: Vec<BackfillStep> = items
                .iter()
                .filter(|project| !project.archived)
                .map(|project| BackfillStep::Pipelines {
                    project: ForgeProject {
                        forge: message.forge,
                        path: project.path.clone(),
                        id: Some(project.id.clone()),
                    },
                    page: PageCursor::FIRST,
                })
                .collect();
            let projects = children.len() as u64;
            children.extend(next.map(|page| BackfillStep::GroupProjects {
                group: group.clone(),
                page,
            }));
            Ok((
                children,
                ProgressDelta {
                    projects,
                    pages: 1,
                    ..ProgressDelta::default()
                },
            ))
        }
        BackfillStep::Pipelines { project, page } => {
            let HistoryPage {
                items,
                next,
                skipped,
            } = history
                .pipelines_page(project, message.since, *page)
                .await?;
            let mut children: Vec<BackfillStep> = items
                .iter()
                .map(|pipeline| BackfillStep::Jobs {
                    project: ForgeProject {
                        forge: message.forge,
                        path: pipeline.repo.clone(),
                        id: pipeline.project_id.clone().or_else(|| project.id.clone()),
                    },
                    pipeline_id: pipeline.pipeline_id.clone(),
                    page: PageCursor::FIRST,
                })
                .collect();
            let pipelines = items.len() as u64;
            record_delivery(
                store,
                &Normalised {
                    pipelines: items,
                    jobs: Vec::new(),
                    builds: Vec::new(),
                },
            )
            .await
            .map_err(recorded)?;
            children.extend(next.map(|page| BackfillStep::Pipelines {
                project: project.clone(),
                page,
            }));
            Ok((
                children,
                ProgressDelta {
                    pages: 1,
                    pipelines,
                    error: skipped.first().cloned(),
                    ..ProgressDelta::default()
                },
            ))
        }
        BackfillStep::Jobs {
            project,
            pipeline_id,
            page,
        } => {
            let HistoryPage {
                items,
                next,
                skipped,
            } = history.jobs_page(project, pipeline_id, *page).await?;
            let jobs = items.len() as u64;
            record_delivery(
                store,
                &Normalised {
                    pipelines: Vec::new(),
                    jobs: items,
                    builds: Vec::new(),
                },
            )
            .await
            .map_err(recorded)?;
            let children = next
                .map(|page| BackfillStep::Jobs {
                    project: project.clone(),
                    pipeline_id: pipeline_id.clone(),
                    page,
                })
                .into_iter()
                .collect();
            Ok((
                children,
                ProgressDelta {
                    pages: 1,
                    jobs,
                    error: skipped.first().cloned(),
                    ..ProgressDelta::default()
                },
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        "2026-12-02T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn requests_name_one_target_of_their_provider() {
        let gitlab = BackfillRequest::parse(
            &json!({"provider": "gitlab", "project": "group/app", "since": "7d"}),
            now(),
        )
        .unwrap();
        assert_eq!(gitlab.since, now() - Duration::days(7));
        let BackfillTarget::Project { project } = &gitlab.target else {
            panic!("{gitlab:?}");
        };
        assert_eq!(project.path.as_str(), "group/app");
        let group = BackfillRequest::parse(&json!({"provider": "gitlab", "group": "group"}), now())
            .unwrap();
        assert_eq!(
            group.target,
            BackfillTarget::Group {
                group: "group".into()
            }
        );
        assert_eq!(group.since, now() - Duration::days(7));
        let github =
            BackfillRequest::parse(&json!({"provider": "github", "repo": "octo/shop"}), now())
                .unwrap();
        assert_eq!(github.forge, Forge::GitHub);
        for (body, error) in [
            (json!("x"), BackfillRequestError::NotAnObject),
            (
                json!({"provider": "jenkins", "project": "a/b"}),
                BackfillRequestError::Provider,
            ),
            (json!({"provider": "gitlab"}), BackfillRequestError::Target),
            (
                json!({"provider": "gitlab", "project": "a/b", "group": "a"}),
                BackfillRequestError::Target,
            ),
            (
                json!({"provider": "github", "group": "a"}),
                BackfillRequestError::GitHubGroup,
            ),
            (
                json!({"provider": "github", "project": "a/b"}),
                BackfillRequestError::Target,
            ),
            (
                json!({"provider": "gitlab", "project": "a/b", "since": "91d"}),
                BackfillRequestError::Since,
            ),
            (
                json!({"provider": "gitlab", "project": "a/b", "since": "week"}),
                BackfillRequestError::Since,
            ),
            (
                json!({"provider": "gitlab", "project": "a/b", "since": 7}),
                BackfillRequestError::Since,
            ),
        ] {
            assert_eq!(BackfillRequest::parse(&body, now()), Err(error), "{body}");
        }
    }
}
