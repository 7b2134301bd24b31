//! Fetching job logs from GitLab and GitHub. Requests go only to the configured GitLab base
//! URL, the GitHub API, and an allowlist of GitHub's log-storage hosts (a redirect anywhere
//! else is refused); tokens never follow a redirect; 429 and 5xx are retried with backoff and
//! jitter, honouring `Retry-After` and the providers' rate-limit reset headers; bodies arrive
//! gzip-compressed when the provider offers it, are read piece by piece and capped.

pub mod avatar;
pub mod bedrock;
pub mod forge;
mod gitlab_test_report;
pub mod llm;
pub mod notify;
pub mod retry;
pub mod secrets_manager;
mod sigv4;

use reqwest::StatusCode;
pub use reqwest::Url;
use retry::{RetryFailure, RetryPolicy, send_with_retries};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub gitlab_base: Url,
    pub gitlab_token: Option<String>,
    pub github_api: Url,
    pub github_token: Option<String>,
    /// Hosts (exact, or `.suffix`) GitHub may redirect a log download to.
    pub github_log_hosts: Vec<String>,
    /// Longest log fetched; the rest is cut with a marker.
    pub max_bytes: usize,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub max_attempts: u32,
}

/// The hosts GitHub documents for Actions log downloads: its own results hosts and the
/// `productionresultssa0`–`19` storage accounts (not every Azure storage account).
pub const DEFAULT_GITHUB_LOG_HOSTS: &[&str] = &[
    ".actions.githubusercontent.com",
    "productionresultssa0.blob.core.windows.net",
    "productionresultssa1.blob.core.windows.net",
    "productionresultssa2.blob.core.windows.net",
    "productionresultssa3.blob.core.windows.net",
    "productionresultssa4.blob.core.windows.net",
    "productionresultssa5.blob.core.windows.net",
    "productionresultssa6.blob.core.windows.net",
    "productionresultssa7.blob.core.windows.net",
    "productionresultssa8.blob.core.windows.net",
    "productionresultssa9.blob.core.windows.net",
    "productionresultssa10.blob.core.windows.net",
    "productionresultssa11.blob.core.windows.net",
    "productionresultssa12.blob.core.windows.net",
    "productionresultssa13.blob.core.windows.net",
    "productionresultssa14.blob.core.windows.net",
    "productionresultssa15.blob.core.windows.net",
    "productionresultssa16.blob.core.windows.net",
    "productionresultssa17.blob.core.windows.net",
    "productionresultssa18.blob.core.windows.net",
    "productionresultssa19.blob.core.windows.net",
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FetchError {
    #[error("the provider has no such job or project")]
    NotFound,
    #[error("the provider no longer keeps this log (it expired)")]
    Expired,
    #[error("the provider rejected this deployment's token (HTTP {0})")]
    Rejected(u16),
    #[error("no token is configured for {0}")]
    NoToken(&'static str),
    #[error("refused to follow a redirect to {0}, which is not an allowed log host")]
    ForeignRedirect(String),
    #[error("the provider's rate limit is exhausted for another {0} s")]
    RateLimited(u64),
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
}

impl<E> From<RetryFailure<E>> for FetchError
where
    E: std::fmt::Display,
{
    fn from(failure: RetryFailure<E>) -> Self {
        match failure {
            RetryFailure::Build(error) => FetchError::Unavailable(error.to_string()),
            RetryFailure::RateLimited(seconds) => FetchError::RateLimited(seconds),
            RetryFailure::Unavailable(detail) => FetchError::Unavailable(detail),
        }
    }
}

/// A fetched log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub truncated: bool,
    /// Whether the job has finished (its log will not grow).
    pub complete: bool,
}

pub const TRUNCATION_MARKER: &[u8] =
    b"\n[buildlore: log truncated here; it is longer than the configured limit]\n";

/// A client error as words, without the URL it was about: a Slack webhook's path or a signed
/// log-download URL is a secret, and these words reach logs and answers.
pub(crate) fn without_url(error: reqwest::Error) -> String {
    error.without_url().to_string()
}

/// Makes rustls use ring (no C toolchain, the same on x86_64 and arm64) for every HTTPS
/// client in the process. Calling it again is harmless.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[derive(Clone)]
pub struct ProviderClient {
    http: reqwest::Client,
    config: ProviderConfig,
}

impl ProviderClient {
    pub fn new(config: ProviderConfig) -> Result<Self, FetchError> {
        install_crypto();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .user_agent(concat!("buildlore/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FetchError::Unavailable(crate::without_url(e)))?;
        Ok(ProviderClient { http, config })
    }

    fn allowed_redirect(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let host = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        url.scheme() == "https"
            && self
                .config
                .github_log_hosts
                .iter()
                .any(|allowed| allowed_host(allowed, &host))
            || self
                .config
                .github_log_hosts
                .iter()
                .any(|allowed| allowed == &format!("http://{host}"))
    }

    /// GET with retries; follows redirects only to allowed log hosts, without the token.
    async fn get(
        &self,
        url: Url,
        auth: Option<(&'static str, String)>,
    ) -> Result<reqwest::Response, FetchError> {
        let mut url = url;
        let mut auth = auth;
        for _redirect in 0..3 {
            let response = self.get_once_with_retries(&url, auth.as_ref()).await?;
            if response.status().is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| url.join(v).ok())
                    .ok_or_else(|| {
                        FetchError::Unavailable("a redirect without a usable Location".into())
                    })?;
                if !self.allowed_redirect(&location) {
                    return Err(FetchError::ForeignRedirect(
                        location.host_str().unwrap_or("?").to_string(),
                    ));
                }
                url = location;
                auth = None;
                continue;
            }
            return Ok(response);
        }
        Err(FetchError::Unavailable("too many redirects".into()))
    }

    async fn get_once_with_retries(
        &self,
        url: &Url,
        auth: Option<&(&'static str, String)>,
    ) -> Result<reqwest::Response, FetchError> {
        let policy = RetryPolicy {
            longest_wait: MAX_RATE_LIMIT_WAIT,
            ..RetryPolicy::idempotent(self.config.max_attempts)
        };
        let response = send_with_retries(&policy, || async {
            let mut request = self.http.get(url.clone());
            if let Some((name, value)) = auth {
                request = request.header(*name, value);
            }
            Ok::<_, std::convert::Infallible>(request)
        })
        .await
        .map_err(FetchError::from)?;
        classify(response.status())?;
        Ok(response)
    }

    /// A GitLab job's trace; `project` is a numeric id or a path.
    pub async fn gitlab_trace(&self, project: &str, job_id: &str) -> Result<Fetched, FetchError> {
        self.gitlab_trace_download(project, job_id)
            .await?
            .collect()
            .await
    }

    /// A GitHub Actions job's log, whole (up to the byte cap).
    pub async fn github_job_log(&self, repo: &str, job_id: &str) -> Result<Fetched, FetchError> {
        self.github_job_log_download(repo, job_id)
            .await?
            .collect()
            .await
    }

    /// A GitLab job's trace as it arrives; `project` is a numeric id or a path.
    pub async fn gitlab_trace_download(
        &self,
        project: &str,
        job_id: &str,
    ) -> Result<LogDownload, FetchError> {
        let token = self
            .config
            .gitlab_token
            .clone()
            .ok_or(FetchError::NoToken("GitLab"))?;
        // GitLab's job ids are numbers; nothing else goes into its URL.
        if !buildlore_core::job_id::is_provider_job_id(job_id) {
            return Err(FetchError::NotFound);
        }
        let project = percent_encode(project);
        let base = self.config.gitlab_base.as_str().trim_end_matches('/');
        let job_url = Url::parse(&format!("{base}/api/v4/projects/{project}/jobs/{job_id}"))
            .map_err(|e| FetchError::Unavailable(e.to_string()))?;
        let trace_url = Url::parse(&format!("{job_url}/trace"))
            .map_err(|e| FetchError::Unavailable(e.to_string()))?;
        let job = self
            .get(job_url, Some(("PRIVATE-TOKEN", token.clone())))
            .await?;
        let job = json_capped(job, MAX_METADATA_BYTES)
            .await
            .map_err(FetchError::Unavailable)?;
        let status = job.get("status").and_then(|s| s.as_str()).unwrap_or("");
        let complete = matches!(
            status,
            "success" | "failed" | "canceled" | "skipped" | "manual"
        );
        let response = self.get(trace_url, Some(("PRIVATE-TOKEN", token))).await?;
        Ok(LogDownload::new(response, complete, self.config.max_bytes))
    }

    /// A GitHub Actions job's log as it arrives (a 302 to short-lived storage, followed
    /// without the token).
    pub async fn github_job_log_download(
        &self,
        repo: &str,
        job_id: &str,
    ) -> Result<LogDownload, FetchError> {
        let token = self
            .config
            .github_token
            .clone()
            .ok_or(FetchError::NoToken("GitHub"))?;
        // GitHub's job ids are numbers; nothing else goes into its URL.
        if !buildlore_core::job_id::is_provider_job_id(job_id) {
            return Err(FetchError::NotFound);
        }
        let base = self.config.github_api.as_str().trim_end_matches('/');
        let url = Url::parse(&format!("{base}/repos/{repo}/actions/jobs/{job_id}/logs"))
            .map_err(|e| FetchError::Unavailable(e.to_string()))?;
        let response = self
            .get(url, Some(("Authorization", format!("Bearer {token}"))))
            .await?;
        // GitHub serves logs of finished jobs.
        Ok(LogDownload::new(response, true, self.config.max_bytes))
    }
}

/// A log being downloaded: read it piece by piece, so no more than a piece is in memory.
/// Past the byte cap the log ends with [`TRUNCATION_MARKER`].
pub struct LogDownload {
    response: reqwest::Response,
    /// Whether the job has finished (its log will not grow).
    pub complete: bool,
    room: usize,
    truncated: bool,
    done: bool,
}

impl LogDownload {
    fn new(response: reqwest::Response, complete: bool, max_bytes: usize) -> Self {
        LogDownload {
            response,
            complete,
            room: max_bytes,
            truncated: false,
            done: false,
        }
    }

    /// The next piece of the log (decompressed when the provider sent it gzipped); `None` at
    /// the end.
    pub async fn next_piece(&mut self) -> Result<Option<bytes::Bytes>, FetchError> {
        if self.done {
            return Ok(None);
        }
        let piece = self
            .response
            .chunk()
            .await
            .map_err(|e| FetchError::Unavailable(format!("the download broke off: {e}")))?;
        let Some(piece) = piece else {
            self.done = true;
            return Ok(None);
        };
        if piece.len() > self.room {
            let mut last = piece.slice(..self.room).to_vec();
            last.extend_from_slice(TRUNCATION_MARKER);
            self.room = 0;
            self.truncated = true;
            self.done = true;
            return Ok(Some(last.into()));
        }
        self.room -= piece.len();
        Ok(Some(piece))
    }

    /// Whether the log was cut at the byte cap (known once the last piece was read).
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// The whole log in memory.
    pub async fn collect(mut self) -> Result<Fetched, FetchError> {
        let mut bytes = Vec::new();
        while let Some(piece) = self.next_piece().await? {
            bytes.extend_from_slice(&piece);
        }
        Ok(Fetched {
            bytes,
            truncated: self.truncated,
            complete: self.complete,
        })
    }
}

fn allowed_host(allowed: &str, host: &str) -> bool {
    match allowed.strip_prefix('.') {
        Some(suffix) => host.ends_with(&format!(".{suffix}")),
        None => allowed == host,
    }
}

fn classify(status: StatusCode) -> Result<(), FetchError> {
    match status.as_u16() {
        200..=399 => Ok(()),
        401 | 403 => Err(FetchError::Rejected(status.as_u16())),
        404 => Err(FetchError::NotFound),
        410 => Err(FetchError::Expired),
        other => Err(FetchError::Unavailable(format!("HTTP {other}"))),
    }
}

/// The longest wait for a rate limit to reset before giving up with [`FetchError::RateLimited`].
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(10);

/// The longest job-metadata answer read (GitLab's job JSON is a few KB).
pub const MAX_METADATA_BYTES: usize = 1024 * 1024;

/// A JSON answer read piece by piece and refused once longer than `cap` bytes: a provider or
/// a proxy in front of it that answers with hundreds of megabytes costs at most `cap`.
pub async fn json_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<serde_json::Value, String> {
    if response
        .content_length()
        .is_some_and(|length| length > cap as u64)
    {
        return Err(format!("the answer is longer than {cap} bytes"));
    }
    let mut body = Vec::new();
    while let Some(piece) = response.chunk().await.map_err(crate::without_url)? {
        if body.len() + piece.len() > cap {
            return Err(format!("the answer is longer than {cap} bytes"));
        }
        body.extend_from_slice(&piece);
    }
    serde_json::from_slice(&body).map_err(|e| format!("the answer is not JSON: {e}"))
}

pub use buildlore_core::percent::encode_component as percent_encode;

#[cfg(test)]
mod tests {
    use super::{DEFAULT_GITHUB_LOG_HOSTS, allowed_host};

    fn allowed_by_default(host: &str) -> bool {
        DEFAULT_GITHUB_LOG_HOSTS
            .iter()
            .any(|allowed| allowed_host(allowed, host))
    }

    #[test]
    fn github_log_redirects_go_only_to_the_hosts_github_documents() {
        for host in [
            "pipelines.actions.githubusercontent.com",
            "results-receiver.actions.githubusercontent.com",
            "productionresultssa0.blob.core.windows.net",
            "productionresultssa19.blob.core.windows.net",
        ] {
            assert!(allowed_by_default(host), "{host}");
        }
        for host in [
            "attacker.blob.core.windows.net",
            "productionresultssa20.blob.core.windows.net",
            "actions.githubusercontent.com.evil.example",
            "evilactions.githubusercontent.com",
        ] {
            assert!(!allowed_by_default(host), "{host}");
        }
    }
}
