//! Telling a team what changed, where it listens (a Slack-compatible incoming webhook or any
//! HTTPS endpoint, signed): a default branch turning red and green again, a failure that
//! starts recurring, a test turning flaky. Each event becomes one queued message per target,
//! so ingest never waits on a receiver and a failing receiver is retried alone.

use crate::notifications::{
    Notification, NotificationEvent, NotificationSender, NotificationTarget, NotifyError,
    TargetFormat,
};
use crate::ports::{Markers, StoreError};
use crate::repo::RepoPath;
use crate::runs::Pipeline;
use crate::status::BuildStatus;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::future::Future;

/// Targets a deployment may have.
pub const MAX_TARGETS: usize = 10;
/// A failure is "recurring" at its second occurrence in a repository.
pub const RECURRING_AT: u64 = 2;
/// How long "this recurring failure was announced" is remembered.
const ANNOUNCED_MEMORY_DAYS: i64 = 90;

/// A receiver as stored: its id names it in queued messages (which never carry its URL or
/// secret).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTarget {
    pub id: String,
    pub url: String,
    pub format: TargetFormat,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// Debug output shows what a listing shows: never the URL's path or the secret.
impl std::fmt::Debug for StoredTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoredTarget({})", self.shown())
    }
}

impl StoredTarget {
    pub fn target(&self) -> NotificationTarget {
        NotificationTarget {
            url: self.url.clone(),
            format: self.format,
            secret: self
                .secret
                .as_ref()
                .map(|secret| secret.as_bytes().to_vec()),
        }
    }

    /// How a listing shows it: scheme and host only (a Slack URL's path is its secret), and
    /// whether requests are signed.
    pub fn shown(&self) -> Value {
        let host = self
            .url
            .split_once("://")
            .map(|(scheme, rest)| {
                let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
                let host = host.rsplit('@').next().unwrap_or_default();
                format!("{scheme}://{host}/…")
            })
            .unwrap_or_default();
        serde_json::json!({
            "id": self.id,
            "url": host,
            "format": self.format,
            "signed": self.secret.is_some(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetsError {
    #[error(
        "the body must be {{\"targets\": [{{\"url\": \"https://…\", \"format\": \"slack\" | \"json\", \"secret\": \"…\" (optional)}}]}}"
    )]
    Shape,
    #[error("at most {MAX_TARGETS} targets")]
    TooMany,
    #[error("targets[{0}]: `url` must be an https:// URL without a user or password")]
    Url(usize),
    #[error("targets[{0}]: `format` must be slack or json")]
    Format(usize),
    #[error("targets[{0}]: `secret` must be a string of 16 to 256 characters")]
    Secret(usize),
    #[error("targets[{0}]: the same URL is listed twice")]
    Duplicate(usize),
}

/// Reads `{"targets": [...]}`; every target valid, or none is taken. `loopback_http` admits
/// `http://127.0.0.1` and `http://localhost` (a receiver on the same machine, for trials).
pub fn parse_targets(body: &Value, loopback_http: bool) -> Result<Vec<StoredTarget>, TargetsError> {
    let targets = body
        .get("targets")
        .and_then(Value::as_array)
        .ok_or(TargetsError::Shape)?;
    if targets.len() > MAX_TARGETS {
        return Err(TargetsError::TooMany);
    }
    let parsed: Vec<StoredTarget> = targets
        .iter()
        .enumerate()
        .map(|(index, target)| {
            let url = target
                .get("url")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|url| valid_url(url, loopback_http))
                .ok_or(TargetsError::Url(index))?;
            let format = match target.get("format").and_then(Value::as_str) {
                Some("slack") => TargetFormat::Slack,
                Some("json") | None => TargetFormat::Json,
                Some(_) => return Err(TargetsError::Format(index)),
            };
            let secret = match target.get("secret") {
                None | Some(Value::Null) => None,
                Some(Value::String(secret)) if (16..=256).contains(&secret.chars().count()) => {
                    Some(secret.clone())
                }
                Some(_) => return Err(TargetsError::Secret(index)),
            };
            Ok(StoredTarget {
                id: target_id(url),
                url: url.to_string(),
                format,
                secret,
            })
        })
        .collect::<Result<_, _>>()?;
    for (index, target) in parsed.iter().enumerate() {
        if parsed[..index]
            .iter()
            .any(|earlier| earlier.url == target.url)
        {
            return Err(TargetsError::Duplicate(index));
        }
    }
    Ok(parsed)
}

fn valid_url(url: &str, loopback_http: bool) -> bool {
    let rest = match url.strip_prefix("https://") {
        Some(rest) => rest,
        None if loopback_http => match url.strip_prefix("http://") {
            Some(rest) if is_loopback_authority(rest) => rest,
            _ => return false,
        },
        None => return false,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    !authority.is_empty()
        && !authority.contains('@')
        && url.len() <= 2048
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// `127.0.0.1[:port]` or `localhost[:port]`, exactly.
fn is_loopback_authority(rest: &str) -> bool {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.split(':').next().unwrap_or_default();
    matches!(host, "127.0.0.1" | "localhost")
}

fn target_id(url: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(url.as_bytes())[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Where the targets are kept.
pub trait NotificationTargets: Send + Sync {
    fn notification_targets(
        &self,
    ) -> impl Future<Output = Result<Vec<StoredTarget>, StoreError>> + Send;

    fn put_notification_targets(
        &self,
        targets: &[StoredTarget],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// One notification for one target, as queued. `kind` tells it apart from the other messages
/// on the queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedNotification {
    pub kind: String,
    pub target_id: String,
    pub notification: Notification,
}

pub const NOTIFICATION_KIND: &str = "notification";

#[derive(Debug, thiserror::Error)]
#[error("the work queue is unavailable: {0}")]
pub struct NotificationQueueError(pub String);

pub trait NotificationQueue: Send + Sync {
    fn send_notification(
        &self,
        queued: &QueuedNotification,
        delay_seconds: u64,
    ) -> impl Future<Output = Result<(), NotificationQueueError>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum AnnounceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] NotificationQueueError),
}

/// Queues `events` for every target; the number of messages queued.
pub async fn announce<S: NotificationTargets, Q: NotificationQueue>(
    store: &S,
    queue: &Q,
    events: Vec<NotificationEvent>,
    now: DateTime<Utc>,
) -> Result<usize, AnnounceError> {
    if events.is_empty() {
        return Ok(0);
    }
    let targets = store.notification_targets().await?;
    let mut queued = 0;
    for event in events {
        let notification = Notification::new(event, now);
        for target in &targets {
            let message = QueuedNotification {
                kind: NOTIFICATION_KIND.into(),
                target_id: target.id.clone(),
                notification: notification.clone(),
            };
            queue.send_notification(&message, 0).await?;
            queued += 1;
        }
    }
    Ok(queued)
}

#[derive(Debug, thiserror::Error)]
pub enum DeliverNotificationError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Worth trying again later (after the seconds given, when the receiver said).
    #[error("{error}")]
    Retry {
        error: NotifyError,
        after: Option<u64>,
    },
    /// The receiver refused (or the target is gone): retrying cannot help.
    #[error("{0}")]
    Refused(String),
}

/// Sends one queued notification to its target.
pub async fn deliver_notification<S: NotificationTargets, N: NotificationSender>(
    store: &S,
    sender: &N,
    queued: &QueuedNotification,
) -> Result<(), DeliverNotificationError> {
    let Some(target) = store
        .notification_targets()
        .await?
        .into_iter()
        .find(|target| target.id == queued.target_id)
    else {
        return Err(DeliverNotificationError::Refused(
            "the target was removed since the notification was queued".into(),
        ));
    };
    match sender.send(&target.target(), &queued.notification).await {
        Ok(()) => Ok(()),
        Err(error @ (NotifyError::Refused(_) | NotifyError::RefusedTarget(_))) => {
            Err(DeliverNotificationError::Refused(error.to_string()))
        }
        Err(NotifyError::RateLimited(seconds)) => Err(DeliverNotificationError::Retry {
            error: NotifyError::RateLimited(seconds),
            after: Some(seconds),
        }),
        Err(error) => Err(DeliverNotificationError::Retry { error, after: None }),
    }
}

/// The latest finished pipeline of each default branch, kept to see it change colour.
pub trait BranchColours: Send + Sync {
    /// Keeps `status` as the branch's colour when the pipeline is newer (by creation) than the
    /// one kept; answers the colour it replaced (`None` when there was none or this one is
    /// not newer).
    fn repaint_branch(
        &self,
        repo: &RepoPath,
        provider: &str,
        branch: &str,
        pipeline: &Pipeline,
    ) -> impl Future<Output = Result<Option<Repainted>, StoreError>> + Send;
}

/// A branch's colour replaced by a newer pipeline's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repainted {
    pub was: BuildStatus,
}

/// The events recorded pipelines call for: a default branch that turned red after a green
/// pipeline, or green after a red one (only finished pipelines, newest first wins).
pub async fn branch_events<S: BranchColours>(
    store: &S,
    pipelines: &[Pipeline],
    jobs: &[crate::runs::Job],
    default_branches: &[String],
) -> Result<Vec<NotificationEvent>, StoreError> {
    let mut events = Vec::new();
    for pipeline in pipelines {
        let Some(branch) = pipeline.git_ref.as_deref() else {
            continue;
        };
        let finished = matches!(pipeline.status, BuildStatus::Success | BuildStatus::Failure);
        if !finished || !default_branches.iter().any(|name| name == branch) {
            continue;
        }
        let Some(Repainted { was }) = store
            .repaint_branch(&pipeline.repo, &pipeline.provider, branch, pipeline)
            .await?
        else {
            continue;
        };
        let event = match (was, pipeline.status) {
            (BuildStatus::Success, BuildStatus::Failure) => NotificationEvent::BranchTurnedRed {
                repo: pipeline.repo.clone(),
                branch: branch.to_string(),
                pipeline_id: pipeline.pipeline_id.clone(),
                failing_jobs: jobs
                    .iter()
                    .filter(|job| {
                        job.pipeline_id.as_deref() == Some(pipeline.pipeline_id.as_str())
                            && job.status == BuildStatus::Failure
                    })
                    .map(|job| job.name.clone())
                    .collect(),
                url: pipeline.url.clone(),
            },
            (BuildStatus::Failure, BuildStatus::Success) => NotificationEvent::BranchTurnedGreen {
                repo: pipeline.repo.clone(),
                branch: branch.to_string(),
                pipeline_id: pipeline.pipeline_id.clone(),
                url: pipeline.url.clone(),
            },
            _ => continue,
        };
        events.push(event);
    }
    Ok(events)
}

/// How often a failure (fingerprint) has been seen in a repository.
pub trait FailureCounts: Send + Sync {
    fn failure_count(
        &self,
        repo: &RepoPath,
        fingerprint: &str,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// The marker of a recurring failure already announced.
pub fn recurring_marker(repo: &RepoPath, fingerprint: &str) -> String {
    format!("ANNOUNCED#recurring#{repo}#{fingerprint}")
}

/// The event of a failure that starts recurring: announced once, at its second occurrence
/// (concurrent analyses of it announce it once between them).
pub async fn recurring_failure_event<S: FailureCounts + Markers>(
    store: &S,
    analysis: &crate::job_analysis::JobAnalysis,
    job_url: Option<String>,
) -> Result<Option<NotificationEvent>, StoreError> {
    let Some(fingerprint) = analysis.fingerprint.as_deref() else {
        return Ok(None);
    };
    let occurrences = store.failure_count(&analysis.repo, fingerprint).await?;
    if occurrences < RECURRING_AT {
        return Ok(None);
    }
    let announced = recurring_marker(&analysis.repo, fingerprint);
    if !store
        .set_marker(&announced, Duration::days(ANNOUNCED_MEMORY_DAYS))
        .await?
    {
        return Ok(None);
    }
    Ok(Some(NotificationEvent::NewRecurringFailure {
        repo: analysis.repo.clone(),
        fingerprint: fingerprint.to_string(),
        category: analysis.category.clone(),
        job_name: analysis.job_name.clone(),
        occurrences,
        root_cause: analysis
            .result
            .as_ref()
            .map(|result| result.root_cause.to_string()),
        url: job_url,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn targets_are_https_with_a_known_format_and_listed_without_their_secrets() {
        let targets = parse_targets(
            &json!({"targets": [
            {"url": "https://hooks.slack.com/services/T0/B0/secretpath", "format": "slack"},
            {"url": "https://ci.example.com/buildlore", "secret": "0123456789abcdef"},
            ]}),
            false,
        )
        .unwrap();
        assert_eq!(targets.len(), 2);
        assert_eq!(targets[1].format, TargetFormat::Json);
        let shown = targets[0].shown().to_string();
        assert!(shown.contains("https://hooks.slack.com/…"), "{shown}");
        assert!(!shown.contains("secretpath"));
        assert!(!targets[1].shown().to_string().contains("0123456789abcdef"));
        assert_eq!(targets[1].shown()["signed"], true);
        for (body, error) in [
            (json!({}), TargetsError::Shape),
            (
                json!({"targets": [{"url": "http://x.example"}]}),
                TargetsError::Url(0),
            ),
            (
                json!({"targets": [{"url": "https://user:pw@x.example/"}]}),
                TargetsError::Url(0),
            ),
            (
                json!({"targets": [{"url": "https://x.example", "format": "teams"}]}),
                TargetsError::Format(0),
            ),
            (
                json!({"targets": [{"url": "https://x.example", "secret": "short"}]}),
                TargetsError::Secret(0),
            ),
        ] {
            assert_eq!(parse_targets(&body, false), Err(error), "{body}");
        }
        let loopback = json!({"targets": [{"url": "http://127.0.0.1:9/hook"}]});
        assert_eq!(parse_targets(&loopback, false), Err(TargetsError::Url(0)));
        assert!(parse_targets(&loopback, true).is_ok());
        let lookalike = json!({"targets": [{"url": "http://127.0.0.1.evil.example/hook"}]});
        assert_eq!(parse_targets(&lookalike, true), Err(TargetsError::Url(0)));
        let twice =
            json!({"targets": [{"url": "https://x.example/a"}, {"url": "https://x.example/a"}]});
        assert_eq!(
            parse_targets(&twice, false),
            Err(TargetsError::Duplicate(1))
        );
        let eleven: Vec<Value> = (0..11)
            .map(|n| json!({"url": format!("https://x{n}.example")}))
            .collect();
        assert_eq!(
            parse_targets(&json!({ "targets": eleven }), false),
            Err(TargetsError::TooMany)
        );
    }
}
