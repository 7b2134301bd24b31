//! Fetching a job's log (`GET /api/jobtrace`): the stored trace (pushed, uploaded, or fetched
//! before) when there is one, else downloaded from GitLab or GitHub. A finished job's download
//! is copied into the store as it arrives, so the provider is asked once, and the log is never
//! held whole in memory.

use crate::last_green::{GreenRunStore, keep_if_recorded_green};
use crate::ports::{JobStatuses, StoreError};
use crate::repo::RepoPath;
use crate::trace::{
    ChunkBuffer, Replacement, TraceKey, TraceSlice, TraceStore, Window, WindowCollector,
};
use std::future::Future;

/// Whole chunks written to the cache per batch while a log downloads.
const CHUNKS_PER_CACHE_WRITE: usize = 8;

/// A job's log coming from its provider, piece by piece.
pub trait LogDownload: Send {
    type Piece: AsRef<[u8]> + Send;
    type Error: std::error::Error + Send + Sync + 'static;

    /// Whether the job has finished (its log will not grow).
    fn complete(&self) -> bool;

    /// The next piece; `None` at the end.
    fn next_piece(
        &mut self,
    ) -> impl Future<Output = Result<Option<Self::Piece>, Self::Error>> + Send;

    /// Whether the log was cut at the configured limit (what arrived is not the whole log).
    fn truncated(&self) -> bool;
}

/// Where a log not stored here comes from: the provider's API.
pub trait LogDownloads: Send + Sync {
    type Error: std::error::Error + Send + Sync + 'static;
    type Download: LogDownload<Error = Self::Error>;

    /// Starts downloading the log of `job_id` in `project` (as the provider names it).
    fn download(
        &self,
        provider: &str,
        project: &str,
        job_id: &str,
    ) -> impl Future<Output = Result<Self::Download, Self::Error>> + Send;
}

/// Everything fetching a trace reads and writes.
pub trait TraceFetchStore: TraceStore + JobStatuses + GreenRunStore {}

impl<S> TraceFetchStore for S where S: TraceStore + JobStatuses + GreenRunStore {}

/// Which bytes of the log are wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceWindow {
    /// Up to `limit` bytes from `start`.
    Range { start: u64, limit: u64 },
    /// The log's end: from `bytes` before it, at most `limit` bytes of a stored log.
    End { bytes: u64, limit: u64 },
}

/// A job whose log is wanted.
#[derive(Debug, Clone)]
pub struct WantedTrace<'a> {
    pub provider: &'a str,
    /// Our key for the project; `None` for a GitLab numeric id no webhook has named.
    pub repo: Option<&'a RepoPath>,
    /// How the provider's API names the project.
    pub provider_project: &'a str,
    pub job_id: &'a str,
    pub window: TraceWindow,
}

/// The bytes found, and whether the log is whole (its job finished).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedTrace {
    pub slice: TraceSlice,
    pub complete: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchTraceError<E: std::error::Error + 'static> {
    /// No trace is stored, and this deployment cannot fetch one.
    #[error("log fetching is not configured on this deployment")]
    NoFetching,
    /// The provider did not deliver the log.
    #[error("fetching the log of job {job_id} in {project} from {provider} failed: {error}")]
    Fetch {
        provider: String,
        project: String,
        job_id: String,
        #[source]
        error: E,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The wanted part of the job's log (see the module's documentation). `cache_for` is how long
/// a fetched log is kept.
pub async fn fetch_trace<S, D>(
    store: &S,
    downloads: Option<&D>,
    cache_for: chrono::Duration,
    wanted: WantedTrace<'_>,
) -> Result<FetchedTrace, FetchTraceError<D::Error>>
where
    S: TraceFetchStore,
    D: LogDownloads,
{
    let key = cache_key(&wanted);
    if let Some(key) = &key
        && let Some(stored) = read_stored(store, key, wanted.window).await?
    {
        return Ok(stored);
    }
    let downloads = downloads.ok_or(FetchTraceError::NoFetching)?;
    let explain = |error| FetchTraceError::Fetch {
        provider: wanted.provider.to_string(),
        project: wanted.provider_project.to_string(),
        job_id: wanted.job_id.to_string(),
        error,
    };
    let mut download = downloads
        .download(wanted.provider, wanted.provider_project, wanted.job_id)
        .await
        .map_err(explain)?;
    let complete = download.complete();
    let mut cache = match key.filter(|_| complete) {
        Some(key) => CacheCopy::begin(store, key, cache_for).await,
        None => None,
    };
    let mut collector = WindowCollector::new(match wanted.window {
        TraceWindow::Range { start, limit } => Window::Range {
            start,
            limit: Some(limit),
        },
        TraceWindow::End { bytes, .. } => Window::Last { bytes },
    });
    loop {
        let piece = match download.next_piece().await {
            Ok(Some(piece)) => piece,
            Ok(None) => break,
            Err(error) => {
                if let Some(copy) = cache {
                    copy.discard(store).await;
                }
                return Err(explain(error));
            }
        };
        collector.push(piece.as_ref());
        if let Some(copy) = cache.take() {
            cache = copy.push(store, piece.as_ref()).await;
        }
    }
    if let Some(copy) = cache {
        copy.finish(store, download.truncated()).await;
    }
    Ok(FetchedTrace {
        slice: collector.finish(),
        complete,
    })
}

/// Where the job's log is stored: under our repo key, or for a GitLab project known only by
/// its numeric id (no webhook named its path yet), under the id.
fn cache_key(wanted: &WantedTrace<'_>) -> Option<TraceKey> {
    let repo = match wanted.repo {
        Some(repo) => repo.clone(),
        None if wanted.provider == "gitlab"
            && wanted.provider_project.bytes().all(|b| b.is_ascii_digit()) =>
        {
            RepoPath::parse(&format!("_gitlab-project-id/{}", wanted.provider_project)).ok()?
        }
        None => return None,
    };
    Some(TraceKey {
        provider: wanted.provider.to_string(),
        repo,
        job_id: wanted.job_id.to_string(),
    })
}

/// The wanted bytes of the stored trace, and whether it is whole: a job not recorded here, or
/// recorded as finished, has its whole log stored.
async fn read_stored<S: TraceFetchStore>(
    store: &S,
    key: &TraceKey,
    window: TraceWindow,
) -> Result<Option<FetchedTrace>, StoreError> {
    let (offset, limit) = match window {
        TraceWindow::Range { start, limit } => (start, limit),
        TraceWindow::End { bytes, limit } => {
            // The last lines live in the last bytes: read the end of a long log.
            let length = store.length(key).await?.unwrap_or(0);
            (length.saturating_sub(bytes), limit)
        }
    };
    let Some(slice) = store.read(key, offset, Some(limit)).await? else {
        return Ok(None);
    };
    let complete = store
        .job_status(&key.provider, &key.repo, &key.job_id)
        .await?
        .is_none_or(|status| status.is_terminal());
    Ok(Some(FetchedTrace { slice, complete }))
}

/// A fetched log being copied into the store as it arrives. Best effort throughout: a copy
/// that fails is dropped (logged), and the caller still gets the log.
struct CacheCopy {
    key: TraceKey,
    replacement: Replacement,
    buffer: ChunkBuffer,
}

impl CacheCopy {
    async fn begin<S: TraceStore>(
        store: &S,
        key: TraceKey,
        keep: chrono::Duration,
    ) -> Option<CacheCopy> {
        match store.begin_replacement(&key, Some(keep)).await {
            Ok(replacement) => Some(CacheCopy {
                key,
                replacement,
                buffer: ChunkBuffer::new(CHUNKS_PER_CACHE_WRITE),
            }),
            Err(error) => {
                tracing::warn!(%error, "a fetched trace will not be cached");
                None
            }
        }
    }

    /// Adds a piece, writing the whole chunks it completes; `None` when the copy failed.
    async fn push<S: TraceStore>(mut self, store: &S, piece: &[u8]) -> Option<CacheCopy> {
        self.buffer.push(piece);
        let Some((offset, bytes)) = self.buffer.ready() else {
            return Some(self);
        };
        match store
            .write_replacement(&self.key, &self.replacement, offset, &bytes)
            .await
        {
            Ok(()) => Some(self),
            Err(error) => {
                tracing::warn!(%error, "a fetched trace was not cached");
                self.discard(store).await;
                None
            }
        }
    }

    async fn discard<S: TraceStore>(self, store: &S) {
        store.discard_replacement(&self.key, self.replacement).await;
    }

    /// Commits a complete copy; a truncated one is dropped (the cache holds only whole logs).
    async fn finish<S: TraceStore + GreenRunStore>(self, store: &S, truncated: bool) {
        let CacheCopy {
            key,
            replacement,
            buffer,
        } = self;
        if truncated {
            store.discard_replacement(&key, replacement).await;
            return;
        }
        let (offset, rest) = buffer.finish();
        let length = offset + rest.len() as u64;
        let result = async {
            store
                .write_replacement(&key, &replacement, offset, &rest)
                .await?;
            store.commit_replacement(&key, replacement, length).await
        }
        .await;
        match result {
            Ok(()) => {
                // A successful job's fetched log is its green log (best effort, as the copy).
                if let Err(error) = keep_if_recorded_green(store, &key).await {
                    tracing::warn!(%error, "a fetched trace was not kept as the last green log");
                }
            }
            // Someone stored this trace meanwhile (a log push, another fetch): theirs stays.
            Err(StoreError::Conflict) => {}
            Err(error) => {
                tracing::warn!(%error, "a fetched trace was not cached");
                store.discard_replacement(&key, replacement).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted<'a>(
        repo: Option<&'a RepoPath>,
        provider: &'a str,
        project: &'a str,
    ) -> WantedTrace<'a> {
        WantedTrace {
            provider,
            repo,
            provider_project: project,
            job_id: "7",
            window: TraceWindow::Range {
                start: 0,
                limit: 10,
            },
        }
    }

    #[test]
    fn a_log_is_cached_under_the_repo_or_a_gitlab_projects_numeric_id() {
        let repo = RepoPath::parse("team/app").unwrap();
        let key = cache_key(&wanted(Some(&repo), "gitlab", "42")).unwrap();
        assert_eq!(key.repo, repo);
        let key = cache_key(&wanted(None, "gitlab", "42")).unwrap();
        assert_eq!(key.repo.as_str(), "_gitlab-project-id/42");
        assert_eq!(
            (key.provider.as_str(), key.job_id.as_str()),
            ("gitlab", "7")
        );
        assert!(cache_key(&wanted(None, "github", "42")).is_none());
        assert!(cache_key(&wanted(None, "gitlab", "team%2Fapp")).is_none());
    }
}
