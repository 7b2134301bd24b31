//! GitLab's and GitHub's REST APIs beyond logs: retry and cancel jobs and pipelines, read
//! pipelines and jobs a page at a time, list a GitLab group's projects, and write comments on
//! merge and pull requests. The ports are the core's (`provider_actions`); this is their
//! HTTP side, with the log fetch's hygiene: connect and read timeouts, answers read piece by
//! piece and capped, no redirects followed (the token goes only to the configured host and
//! every URL is built from it), the token marked sensitive and never logged, retries through
//! [`crate::retry`], and writes that must not happen twice never re-sent after a possible
//! delivery.

mod github;
mod gitlab;

use crate::retry::{RetryFailure, RetryPolicy, send_with_retries};
use crate::{ProviderConfig, Url, install_crypto};
use buildlore_core::provider_actions::{
    ActionError, ActionOutcome, CommentError, Forge, ForgeProject, GroupProject, HistoryError,
    HistoryPage, PageCursor, PipelineHistory, PostedComment, ProviderAction, ProviderActions,
    ReviewComments, ReviewThread, TokenScope,
};
use buildlore_core::review_comment::CommentBody;
use buildlore_core::runs::{Job, Pipeline};
use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The longest answer read: a page of 100 GitHub workflow runs is about 2 MB.
pub const MAX_PAGE_BYTES: usize = 8 * 1024 * 1024;

/// Items asked for per page (both providers' maximum).
pub const PER_PAGE: u32 = 100;

#[derive(Debug, thiserror::Error)]
#[error("the HTTP client could not be built: {0}")]
pub struct ClientBuildError(String);

/// The client for GitLab's and GitHub's APIs; built once, at start-up.
#[derive(Clone)]
pub struct ForgeClient {
    http: reqwest::Client,
    config: ProviderConfig,
}

/// What the provider answered, read whole (and capped).
struct Answer {
    headers: HeaderMap,
    body: Value,
}

/// What went wrong with one call, before it is said in a use case's error.
#[derive(Debug)]
enum CallFailure {
    NoToken(Forge),
    /// An answer other than 2xx, 429 or 5xx, with the provider's `message` when it sent one.
    Status(StatusCode, String),
    RateLimited(u64),
    Unavailable(String),
}

impl ForgeClient {
    pub fn new(config: ProviderConfig) -> Result<Self, ClientBuildError> {
        install_crypto();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .user_agent(concat!("buildlore/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientBuildError(e.to_string()))?;
        Ok(ForgeClient { http, config })
    }

    /// The token's header for a forge, marked sensitive so no debug output shows it.
    fn auth_header(&self, forge: Forge) -> Result<(&'static str, HeaderValue), CallFailure> {
        let (name, value) = match forge {
            Forge::GitLab => (
                "PRIVATE-TOKEN",
                self.config.gitlab_token.clone().unwrap_or_default(),
            ),
            Forge::GitHub => (
                "Authorization",
                self.config
                    .github_token
                    .as_ref()
                    .map(|token| format!("Bearer {token}"))
                    .unwrap_or_default(),
            ),
        };
        if value.is_empty() {
            return Err(CallFailure::NoToken(forge));
        }
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            CallFailure::Unavailable("the configured token is not a valid header".into())
        })?;
        value.set_sensitive(true);
        Ok((name, value))
    }

    /// `{base}/api/v4/{path}` or `{api}/{path}`: every URL starts at the configured host.
    fn url(&self, forge: Forge, path: &str) -> Result<Url, CallFailure> {
        let joined = match forge {
            Forge::GitLab => format!(
                "{}/api/v4/{path}",
                self.config.gitlab_base.as_str().trim_end_matches('/')
            ),
            Forge::GitHub => format!(
                "{}/{path}",
                self.config.github_api.as_str().trim_end_matches('/')
            ),
        };
        Url::parse(&joined).map_err(|e| CallFailure::Unavailable(e.to_string()))
    }

    async fn call(
        &self,
        forge: Forge,
        method: Method,
        url: Url,
        body: Option<&Value>,
        policy: RetryPolicy,
    ) -> Result<Answer, CallFailure> {
        let (auth_name, auth_value) = self.auth_header(forge)?;
        let response = send_with_retries(&policy, || {
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .header(auth_name, auth_value.clone());
            if forge == Forge::GitHub {
                request = request
                    .header("Accept", "application/vnd.github+json")
                    .header("X-GitHub-Api-Version", "2022-11-28");
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            async move { Ok::<_, std::convert::Infallible>(request) }
        })
        .await
        .map_err(|failure| match failure {
            RetryFailure::Build(never) => match never {},
            RetryFailure::RateLimited(seconds) => CallFailure::RateLimited(seconds),
            RetryFailure::Unavailable(detail) => CallFailure::Unavailable(detail),
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        if status.is_redirection() {
            // Never followed: the token would go with it, and these APIs do not redirect.
            return Err(CallFailure::Unavailable(format!(
                "the provider answered a redirect (HTTP {}), which is not followed",
                status.as_u16()
            )));
        }
        let bytes = read_capped(response, MAX_PAGE_BYTES)
            .await
            .map_err(CallFailure::Unavailable)?;
        // 201, 202 and 204 may come without a body; an error answer may not be JSON, and its
        // status then says enough.
        let body = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            match serde_json::from_slice(&bytes) {
                Ok(value) => value,
                Err(_) if !status.is_success() => Value::Null,
                Err(error) => {
                    return Err(CallFailure::Unavailable(format!(
                        "the answer is not JSON: {error}"
                    )));
                }
            }
        };
        if !status.is_success() {
            let message = body
                .get("message")
                .or_else(|| body.get("error"))
                .map(|m| match m {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                })
                .unwrap_or_default()
                .chars()
                .filter(|c| !c.is_control())
                .take(300)
                .collect();
            return Err(CallFailure::Status(status, message));
        }
        Ok(Answer { headers, body })
    }
}

/// The answer's bytes, read piece by piece and refused once longer than `cap`.
async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, String> {
    if response
        .content_length()
        .is_some_and(|length| length > cap as u64)
    {
        return Err(format!("the answer is longer than {cap} bytes"));
    }
    let mut body = Vec::new();
    while let Some(piece) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + piece.len() > cap {
            return Err(format!("the answer is longer than {cap} bytes"));
        }
        body.extend_from_slice(&piece);
    }
    Ok(body)
}

/// A numeric id as it goes into a URL; anything else is no such thing on the provider.
fn numeric(id: &str) -> Option<&str> {
    buildlore_core::job_id::is_provider_job_id(id).then_some(id)
}

/// Where the listing continues: GitLab's `X-Next-Page` (empty on the last page), else the
/// `page` of the `rel="next"` link GitHub (and GitLab) send.
fn next_page(headers: &HeaderMap) -> Option<PageCursor> {
    if let Some(next) = headers.get("x-next-page").and_then(|v| v.to_str().ok()) {
        return next.trim().parse().ok().map(|page| PageCursor { page });
    }
    let link = headers.get("link")?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|param| param.trim().replace(' ', "") == "rel=\"next\"");
        if !is_next {
            return None;
        }
        let url = Url::parse(target.trim().trim_start_matches('<').trim_end_matches('>')).ok()?;
        url.query_pairs()
            .find(|(name, _)| name == "page")
            .and_then(|(_, value)| value.parse().ok())
            .map(|page| PageCursor { page })
    })
}

fn description(failure_message: &str, status: StatusCode) -> String {
    if failure_message.is_empty() {
        format!("HTTP {}", status.as_u16())
    } else {
        format!("HTTP {}: {failure_message}", status.as_u16())
    }
}

fn action_error(failure: CallFailure, needs: TokenScope) -> ActionError {
    match failure {
        CallFailure::NoToken(forge) => ActionError::NoToken(forge),
        CallFailure::RateLimited(seconds) => ActionError::RateLimited(seconds),
        CallFailure::Unavailable(detail) => ActionError::Unavailable(detail),
        // GitLab answers 403 for a job that cannot be retried or canceled in its state.
        CallFailure::Status(StatusCode::FORBIDDEN, message)
            if message.contains("not retryable") || message.contains("not cancelable") =>
        {
            ActionError::NotPossible(message)
        }
        CallFailure::Status(status @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN), _) => {
            ActionError::Rejected {
                status: status.as_u16(),
                needs,
            }
        }
        CallFailure::Status(StatusCode::NOT_FOUND, _) => ActionError::NotFound,
        CallFailure::Status(status, message) if status.is_client_error() => {
            ActionError::NotPossible(description(&message, status))
        }
        CallFailure::Status(status, message) => {
            ActionError::Unavailable(description(&message, status))
        }
    }
}

fn history_error(failure: CallFailure, needs: TokenScope) -> HistoryError {
    match failure {
        CallFailure::NoToken(forge) => HistoryError::NoToken(forge),
        CallFailure::RateLimited(seconds) => HistoryError::RateLimited(seconds),
        CallFailure::Unavailable(detail) => HistoryError::Unavailable(detail),
        CallFailure::Status(status @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN), _) => {
            HistoryError::Rejected {
                status: status.as_u16(),
                needs,
            }
        }
        CallFailure::Status(StatusCode::NOT_FOUND, _) => HistoryError::NotFound,
        CallFailure::Status(status, message) => {
            HistoryError::Unavailable(description(&message, status))
        }
    }
}

/// Where a comment is written and how: the request to make, and the id it already has (an
/// update) or not (a new comment).
pub(super) struct CommentWrite<'a> {
    pub forge: Forge,
    pub method: Method,
    pub path: String,
    pub existing_id: Option<&'a str>,
    pub needs: TokenScope,
    /// The field of the provider's answer that links to the comment, if it has one.
    pub url_field: Option<&'static str>,
}

/// Creates or updates a comment: a new one is never sent twice (a 5xx may mean it was
/// posted), an update may be.
pub(super) async fn write_comment(
    client: &ForgeClient,
    write: CommentWrite<'_>,
    body: &CommentBody,
) -> Result<PostedComment, CommentError> {
    let needs = write.needs;
    let url = client
        .url(write.forge, &write.path)
        .map_err(|f| comment_error(f, needs))?;
    let answer = client
        .call(
            write.forge,
            write.method,
            url,
            Some(&json!({"body": body.as_str()})),
            retry_policy(&client.config, write.existing_id.is_some()),
        )
        .await
        .map_err(|f| comment_error(f, needs))?;
    let id = answer
        .body
        .get("id")
        .and_then(Value::as_u64)
        .map(|id| id.to_string())
        .or_else(|| write.existing_id.map(str::to_string))
        .ok_or_else(|| {
            CommentError::Unavailable(format!("{}'s answer names no comment id", write.forge))
        })?;
    let url = write
        .url_field
        .and_then(|field| answer.body.get(field))
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(PostedComment { id, url })
}

fn comment_error(failure: CallFailure, needs: TokenScope) -> CommentError {
    match failure {
        CallFailure::NoToken(forge) => CommentError::NoToken(forge),
        CallFailure::RateLimited(seconds) => CommentError::RateLimited(seconds),
        CallFailure::Unavailable(detail) => CommentError::Unavailable(detail),
        CallFailure::Status(status @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN), _) => {
            CommentError::Rejected {
                status: status.as_u16(),
                needs,
            }
        }
        CallFailure::Status(StatusCode::NOT_FOUND, _) => CommentError::NotFound,
        CallFailure::Status(status, message) if status.is_client_error() => {
            CommentError::Refused(description(&message, status))
        }
        CallFailure::Status(status, message) => {
            CommentError::Unavailable(description(&message, status))
        }
    }
}

/// The items of a page normalised one by one; those that fail are skipped with the reason.
fn normalise_page<T>(
    items: &[Value],
    what: &str,
    next: Option<PageCursor>,
    normalise: impl Fn(&Value) -> Result<T, String>,
) -> HistoryPage<T> {
    let mut page = HistoryPage {
        items: Vec::with_capacity(items.len()),
        next,
        skipped: Vec::new(),
    };
    for item in items {
        match normalise(item) {
            Ok(record) => page.items.push(record),
            Err(reason) => {
                let id = item.get("id").map(Value::to_string).unwrap_or_default();
                page.skipped.push(format!("{what} {id}: {reason}"));
            }
        }
    }
    page
}

fn retry_policy(config: &ProviderConfig, repeatable: bool) -> RetryPolicy {
    if repeatable {
        RetryPolicy::idempotent(config.max_attempts)
    } else {
        RetryPolicy::not_repeatable(config.max_attempts)
    }
}

impl ProviderActions for ForgeClient {
    async fn act(
        &self,
        project: &ForgeProject,
        action: &ProviderAction,
    ) -> Result<ActionOutcome, ActionError> {
        let Some(target) = numeric(action.target_id()) else {
            return Err(ActionError::NotFound);
        };
        match project.forge {
            Forge::GitLab => gitlab::act(self, project, action, target).await,
            Forge::GitHub => github::act(self, project, action, target).await,
        }
    }
}

impl PipelineHistory for ForgeClient {
    async fn pipelines_page(
        &self,
        project: &ForgeProject,
        since: DateTime<Utc>,
        page: PageCursor,
    ) -> Result<HistoryPage<Pipeline>, HistoryError> {
        match project.forge {
            Forge::GitLab => gitlab::pipelines_page(self, project, since, page).await,
            Forge::GitHub => github::runs_page(self, project, since, page).await,
        }
    }

    async fn jobs_page(
        &self,
        project: &ForgeProject,
        pipeline_id: &str,
        page: PageCursor,
    ) -> Result<HistoryPage<Job>, HistoryError> {
        let Some(pipeline_id) = numeric(pipeline_id) else {
            return Err(HistoryError::NotFound);
        };
        match project.forge {
            Forge::GitLab => gitlab::jobs_page(self, project, pipeline_id, page).await,
            Forge::GitHub => github::jobs_page(self, project, pipeline_id, page).await,
        }
    }

    async fn group_projects_page(
        &self,
        forge: Forge,
        group: &str,
        page: PageCursor,
    ) -> Result<HistoryPage<GroupProject>, HistoryError> {
        match forge {
            Forge::GitLab => gitlab::group_projects_page(self, group, page).await,
            Forge::GitHub => Err(HistoryError::Unsupported(
                "GitHub has no groups: backfill each repository",
            )),
        }
    }
}

impl ReviewComments for ForgeClient {
    async fn create_comment(
        &self,
        thread: &ReviewThread,
        body: &CommentBody,
    ) -> Result<PostedComment, CommentError> {
        match thread.project.forge {
            Forge::GitLab => gitlab::comment(self, thread, None, body).await,
            Forge::GitHub => github::comment(self, thread, None, body).await,
        }
    }

    async fn update_comment(
        &self,
        thread: &ReviewThread,
        comment_id: &str,
        body: &CommentBody,
    ) -> Result<PostedComment, CommentError> {
        let Some(comment_id) = numeric(comment_id) else {
            return Err(CommentError::NotFound);
        };
        match thread.project.forge {
            Forge::GitLab => gitlab::comment(self, thread, Some(comment_id), body).await,
            Forge::GitHub => github::comment(self, thread, Some(comment_id), body).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn the_next_page_comes_from_x_next_page_or_the_next_link() {
        assert_eq!(
            next_page(&headers(&[("x-next-page", "3")])),
            Some(PageCursor { page: 3 })
        );
        assert_eq!(next_page(&headers(&[("x-next-page", "")])), None);
        let link = r#"<https://api.github.com/repositories/1/actions/runs?per_page=100&page=2>; rel="next", <https://api.github.com/repositories/1/actions/runs?per_page=100&page=9>; rel="last""#;
        assert_eq!(
            next_page(&headers(&[("link", link)])),
            Some(PageCursor { page: 2 })
        );
        let last = r#"<https://api.github.com/x?page=1>; rel="prev", <https://api.github.com/x?page=1>; rel="first""#;
        assert_eq!(next_page(&headers(&[("link", last)])), None);
    }
}
