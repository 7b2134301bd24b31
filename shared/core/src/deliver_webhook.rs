//! Delivering a webhook: once its sender is authenticated and its body parsed, record every
//! pipeline, job and build it mentions. Deliveries are idempotent: a delivery id seen before
//! (with the same body) is a duplicate, and a report older than what is stored is stale — an
//! answer, not an error, because a provider counts a non-2xx as a failed delivery and may
//! disable the hook.

use crate::Build;
use crate::BuildStatus;
use crate::keys;
use crate::last_green::{GreenRunStore, RecordedJob, keep_if_green};
use crate::ports::{Markers, StoreError};
use crate::record::{Record, RecordError, RecordStore, record};
use crate::repo::RepoPath;
use crate::runs::{Job, Pipeline};
use crate::trace::{TraceKey, TraceStore};
use crate::webhooks::{Normalised, WebhookEvent};
use futures_util::StreamExt;
use std::future::Future;

/// How long a processed delivery id is remembered.
const DELIVERY_MEMORY_DAYS: i64 = 7;
/// Records of one delivery written at once.
const RECORD_CONCURRENCY: usize = 8;

/// Which repo a provider's numeric project id names (GitLab sends both; other routes are
/// called with either).
pub trait ProjectAliases: Send + Sync {
    fn remember_project_alias(
        &self,
        provider: &str,
        project_id: &str,
        repo: &RepoPath,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Everything delivering a webhook reads and writes.
pub trait DeliveryStore:
    Markers
    + ProjectAliases
    + RecordStore<Pipeline>
    + RecordStore<Job>
    + RecordStore<Build>
    + TraceStore
    + GreenRunStore
{
}

impl<S> DeliveryStore for S where
    S: Markers
        + ProjectAliases
        + RecordStore<Pipeline>
        + RecordStore<Job>
        + RecordStore<Build>
        + TraceStore
        + GreenRunStore
{
}

/// A delivery as the provider identifies it: its id (GitLab's `X-Gitlab-Event-UUID`,
/// GitHub's `X-GitHub-Delivery`) and a digest of its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryId(String);

impl DeliveryId {
    /// The same delivery only with the same id *and* the same body: a different, validly
    /// signed body under a reused id is processed, not dropped as a duplicate. Ids that are
    /// empty or longer than 128 bytes are not remembered.
    pub fn of(id: &str, body: &[u8]) -> Option<Self> {
        use sha2::{Digest, Sha256};
        if id.is_empty() || id.len() > 128 {
            return None;
        }
        let digest = Sha256::digest(body);
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        Some(DeliveryId(format!("{id}#{hex}")))
    }
}

/// What became of a delivery.
#[derive(Debug)]
pub enum Delivered {
    /// A ping (GitHub's hook check): nothing to record.
    Pong,
    /// An event we do not record, and why.
    Ignored(String),
    /// The same delivery was processed before.
    Duplicate,
    /// Every record, in the order pipelines, jobs, builds, with what happened to it; and the
    /// records themselves, for what follows a delivery.
    Processed {
        results: Vec<RecordResult>,
        records: Normalised,
    },
}

/// What happened to one record of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordResult {
    pub kind: &'static str,
    pub id: String,
    pub applied: Applied,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Created, updated or unchanged (the outcome's word), and the status now stored.
    Recorded {
        outcome: &'static str,
        status: BuildStatus,
    },
    /// An earlier state than the stored one, acknowledged and not applied.
    Stale { detail: String },
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A record could not be written (contended); the delivery may be retried whole.
    #[error(transparent)]
    Record(#[from] RecordError),
}

/// Records a parsed delivery from `provider`. The delivery's marker is taken before anything
/// is written (a conditional put: of concurrent copies of one delivery exactly one gets it)
/// and released if a record fails, so the provider's retry is processed.
pub async fn deliver_webhook<S: DeliveryStore>(
    store: &S,
    provider: &str,
    delivery: Option<DeliveryId>,
    event: WebhookEvent,
) -> Result<Delivered, DeliveryError> {
    let records = match event {
        WebhookEvent::Ping => return Ok(Delivered::Pong),
        WebhookEvent::Ignored(reason) => return Ok(Delivered::Ignored(reason)),
        WebhookEvent::Records(records) => records,
    };
    let marker = delivery.map(|DeliveryId(key)| keys::delivery(provider, &key));
    if let Some(marker) = &marker
        && !store
            .set_marker(marker, chrono::Duration::days(DELIVERY_MEMORY_DAYS))
            .await?
    {
        return Ok(Delivered::Duplicate);
    }
    match record_delivery(store, &records).await {
        Ok(results) => {
            keep_green_logs(store, &records.jobs).await;
            Ok(Delivered::Processed { results, records })
        }
        Err(error) => {
            if let Some(marker) = &marker
                && let Err(release) = store.clear_marker(marker).await
            {
                tracing::error!(%release, "a failed delivery's marker could not be released");
            }
            Err(error)
        }
    }
}

/// Records every pipeline, job and build of a delivery (pipelines first, so a job's pipeline
/// exists when the job is counted); one result per record.
pub async fn record_delivery<S: DeliveryStore>(
    store: &S,
    records: &Normalised,
) -> Result<Vec<RecordResult>, DeliveryError> {
    for pipeline in &records.pipelines {
        if let Some(project_id) = &pipeline.project_id {
            store
                .remember_project_alias(&pipeline.provider, project_id, &pipeline.repo)
                .await?;
        }
    }
    let mut results = record_all(store, &records.pipelines).await?;
    results.extend(record_all(store, &records.jobs).await?);
    results.extend(record_all(store, &records.builds).await?);
    Ok(results)
}

async fn record_all<R, S>(store: &S, items: &[R]) -> Result<Vec<RecordResult>, DeliveryError>
where
    R: Record,
    S: RecordStore<R>,
{
    let outcomes: Vec<Result<RecordResult, DeliveryError>> =
        futures_util::stream::iter(items.iter().cloned())
            .map(|item| async move {
                let id = item.id();
                let applied = match record(store, item).await {
                    Ok((outcome, stored)) => Applied::Recorded {
                        outcome: outcome.as_str(),
                        status: stored.status(),
                    },
                    Err(error) if error.is_stale() => Applied::Stale {
                        detail: error.to_string(),
                    },
                    Err(error) => return Err(error.into()),
                };
                Ok(RecordResult {
                    kind: R::KIND,
                    id,
                    applied,
                })
            })
            .buffered(RECORD_CONCURRENCY)
            .collect()
            .await;
    outcomes.into_iter().collect()
}

/// A job reported successful whose log is stored already (uploaded part by part before its
/// status arrived) keeps that log as the last green log of its job name and branch. Best
/// effort: not keeping it costs only the comparison of a later failure, and the delivery was
/// recorded.
async fn keep_green_logs<S: TraceStore + GreenRunStore>(store: &S, jobs: &[Job]) {
    for job in jobs.iter().filter(|job| job.status == BuildStatus::Success) {
        let key = TraceKey {
            provider: job.provider.clone(),
            repo: job.repo.clone(),
            job_id: job.job_id.clone(),
        };
        let recorded = RecordedJob {
            name: job.name.clone(),
            branch: job.git_ref.clone(),
            status: job.status,
            finished_at: job.finished_at,
            updated_at: job.updated_at,
        };
        let kept = match store.length(&key).await {
            Ok(Some(_)) => keep_if_green(store, &key, &recorded).await,
            Ok(None) => Ok(false),
            Err(error) => Err(error),
        };
        if let Err(error) = kept {
            tracing::warn!(%error, job_id = %job.job_id, "a stored trace was not kept as the last green log");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DeliveryId;

    #[test]
    fn a_delivery_is_its_id_and_its_body() {
        let first = DeliveryId::of("abc", b"{}");
        assert_eq!(first, DeliveryId::of("abc", b"{}"));
        assert_ne!(first, DeliveryId::of("abc", b"{\"x\":1}"));
        assert_ne!(first, DeliveryId::of("abd", b"{}"));
        assert_eq!(DeliveryId::of("", b"{}"), None);
        assert_eq!(DeliveryId::of(&"x".repeat(129), b"{}"), None);
    }
}
