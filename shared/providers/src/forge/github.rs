//! GitHub's REST API (version 2022-11-28): workflow run and job re-runs and cancel, the
//! runs and jobs listings (`Link` pagination), issue comments on pull requests.

use super::{
    Answer, CommentWrite, ForgeClient, PER_PAGE, action_error, history_error, next_page,
    normalise_page, retry_policy, write_comment,
};
use crate::percent_encode;
use buildlore_core::provider_actions::{
    ActionError, ActionOutcome, CommentError, Forge, ForgeProject, HistoryError, HistoryPage,
    PageCursor, PostedComment, ProviderAction, ReviewThread, TokenScope,
};
use buildlore_core::review_comment::CommentBody;
use buildlore_core::runs::{Job, Pipeline};
use buildlore_core::webhooks::from_api;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::Method;
use serde_json::Value;

/// `repos/{owner}/{name}`, each part encoded.
fn repo_path(project: &ForgeProject) -> String {
    let encoded: Vec<String> = project
        .path
        .as_str()
        .split('/')
        .map(percent_encode)
        .collect();
    format!("repos/{}", encoded.join("/"))
}

fn list<'a>(answer: &'a Answer, field: &str) -> Result<&'a Vec<Value>, HistoryError> {
    answer
        .body
        .get(field)
        .and_then(Value::as_array)
        .ok_or_else(|| HistoryError::InvalidAnswer(format!("GitHub sent no `{field}` list")))
}

pub(super) async fn act(
    client: &ForgeClient,
    project: &ForgeProject,
    action: &ProviderAction,
    target: &str,
) -> Result<ActionOutcome, ActionError> {
    let repo = repo_path(project);
    let path = match action {
        ProviderAction::RetryJob { .. } => format!("{repo}/actions/jobs/{target}/rerun"),
        ProviderAction::CancelJob { .. } => {
            return Err(ActionError::Unsupported(
                "GitHub cannot cancel one job: cancel its workflow run",
            ));
        }
        ProviderAction::RetryPipeline { .. } => {
            format!("{repo}/actions/runs/{target}/rerun-failed-jobs")
        }
        ProviderAction::CancelPipeline { .. } => format!("{repo}/actions/runs/{target}/cancel"),
    };
    let needs = TokenScope::GitHubActionsWrite;
    let url = client
        .url(Forge::GitHub, &path)
        .map_err(|f| action_error(f, needs))?;
    client
        .call(
            Forge::GitHub,
            Method::POST,
            url,
            None,
            retry_policy(&client.config, false),
        )
        .await
        .map_err(|f| action_error(f, needs))?;
    // 201 or 202 with no body: GitHub re-runs in place (a new attempt of the same run).
    Ok(ActionOutcome {
        action: action.clone(),
        resulting_id: target.to_string(),
        provider_status: None,
        status: None,
    })
}

pub(super) async fn runs_page(
    client: &ForgeClient,
    project: &ForgeProject,
    since: DateTime<Utc>,
    page: PageCursor,
) -> Result<HistoryPage<Pipeline>, HistoryError> {
    let needs = TokenScope::GitHubActionsRead;
    let mut url = client
        .url(
            Forge::GitHub,
            &format!("{}/actions/runs", repo_path(project)),
        )
        .map_err(|f| history_error(f, needs))?;
    url.query_pairs_mut()
        .append_pair(
            "created",
            &format!(">={}", since.to_rfc3339_opts(SecondsFormat::Secs, true)),
        )
        .append_pair("per_page", &PER_PAGE.to_string())
        .append_pair("page", &page.page.max(1).to_string());
    let answer = client
        .call(
            Forge::GitHub,
            Method::GET,
            url,
            None,
            retry_policy(&client.config, true),
        )
        .await
        .map_err(|f| history_error(f, needs))?;
    let now = Utc::now();
    Ok(normalise_page(
        list(&answer, "workflow_runs")?,
        "workflow run",
        next_page(&answer.headers),
        |item| from_api::github_run(&project.path, item, now).map_err(|e| e.0),
    ))
}

pub(super) async fn jobs_page(
    client: &ForgeClient,
    project: &ForgeProject,
    run_id: &str,
    page: PageCursor,
) -> Result<HistoryPage<Job>, HistoryError> {
    let needs = TokenScope::GitHubActionsRead;
    let mut url = client
        .url(
            Forge::GitHub,
            &format!("{}/actions/runs/{run_id}/jobs", repo_path(project)),
        )
        .map_err(|f| history_error(f, needs))?;
    url.query_pairs_mut()
        .append_pair("filter", "latest")
        .append_pair("per_page", &PER_PAGE.to_string())
        .append_pair("page", &page.page.max(1).to_string());
    let answer = client
        .call(
            Forge::GitHub,
            Method::GET,
            url,
            None,
            retry_policy(&client.config, true),
        )
        .await
        .map_err(|f| history_error(f, needs))?;
    let now = Utc::now();
    Ok(normalise_page(
        list(&answer, "jobs")?,
        "job",
        next_page(&answer.headers),
        |item| {
            from_api::github_job(&project.path, project.id.as_deref(), item, now).map_err(|e| e.0)
        },
    ))
}

pub(super) async fn comment(
    client: &ForgeClient,
    thread: &ReviewThread,
    comment_id: Option<&str>,
    body: &CommentBody,
) -> Result<PostedComment, CommentError> {
    let repo = repo_path(&thread.project);
    let (method, path) = match comment_id {
        None => (
            Method::POST,
            format!("{repo}/issues/{}/comments", thread.number),
        ),
        Some(id) => (Method::PATCH, format!("{repo}/issues/comments/{id}")),
    };
    let write = CommentWrite {
        forge: Forge::GitHub,
        method,
        path,
        existing_id: comment_id,
        needs: TokenScope::GitHubPullRequestsWrite,
        url_field: Some("html_url"),
    };
    write_comment(client, write, body).await
}
