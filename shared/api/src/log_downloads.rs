//! GitLab's and GitHub's log downloads as the core's [`LogDownloads`] port.

use buildlore_core::fetch_trace::{LogDownload, LogDownloads};
use buildlore_providers::{FetchError, ProviderClient};

/// The deployment's provider client, fetching logs with its tokens.
pub struct ProviderLogs<'a>(pub &'a ProviderClient);

/// One log coming from GitLab or GitHub.
pub struct ProviderLogDownload(buildlore_providers::LogDownload);

impl LogDownload for ProviderLogDownload {
    type Piece = bytes::Bytes;
    type Error = FetchError;

    fn complete(&self) -> bool {
        self.0.complete
    }

    async fn next_piece(&mut self) -> Result<Option<bytes::Bytes>, FetchError> {
        self.0.next_piece().await
    }

    fn truncated(&self) -> bool {
        self.0.truncated()
    }
}

impl LogDownloads for ProviderLogs<'_> {
    type Error = FetchError;
    type Download = ProviderLogDownload;

    async fn download(
        &self,
        provider: &str,
        project: &str,
        job_id: &str,
    ) -> Result<ProviderLogDownload, FetchError> {
        let download = match provider {
            "github" => self.0.github_job_log_download(project, job_id).await,
            _ => self.0.gitlab_trace_download(project, job_id).await,
        };
        download.map(ProviderLogDownload)
    }
}
