//! GitLab's REST API (v4): jobs and pipelines API, pipelines and jobs listings with offset
//! pagination (`X-Next-Page`), a group's projects, merge request notes. The token goes in
//! `PRIVATE-TOKEN`; projects are named by numeric id when known, else by URL-encoded path.

use super::{
    Answer, CommentWrite, ForgeClient, PER_PAGE, action_error, history_error, next_page,
    normalise_page, retry_policy, write_comment,
};
use crate::percent_encode;
use buildlore_core::provider_actions::{
    ActionError, ActionOutcome, CommentError, Forge, ForgeProject, GroupProject, HistoryError,
    HistoryPage, PageCursor, PostedComment, ProviderAction, ReviewThread, TokenScope,
};
use buildlore_core::repo::RepoPath;
use buildlore_core::review_comment::CommentBody;
use buildlore_core::runs::{Job, Pipeline};
use buildlore_core::status::BuildStatus;
use buildlore_core::webhooks::from_api;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::Method;
use serde_json::Value;

fn project_segment(project: &ForgeProject) -> String {
    match &project.id {
        Some(id) if buildlore_core::job_id::is_provider_job_id(id) => id.clone(),
        _ => percent_encode(project.path.as_str()),
    }
}

fn with_page(url: &mut reqwest::Url, page: PageCursor, extra: &[(&str, &str)]) {
    let mut query = url.query_pairs_mut();
    for (name, value) in extra {
        query.append_pair(name, value);
    }
    query
        .append_pair("per_page", &PER_PAGE.to_string())
        .append_pair("page", &page.page.max(1).to_string());
}

fn list(answer: &Answer) -> Result<&Vec<Value>, HistoryError> {
    answer
        .body
        .as_array()
        .ok_or_else(|| HistoryError::InvalidAnswer("GitLab sent no list".into()))
}

pub(super) async fn act(
    client: &ForgeClient,
    project: &ForgeProject,
    action: &ProviderAction,
    target: &str,
) -> Result<ActionOutcome, ActionError> {
    let project_segment = project_segment(project);
    let path = match action {
        ProviderAction::RetryJob { .. } => {
            format!("projects/{project_segment}/jobs/{target}/retry")
        }
        ProviderAction::CancelJob { .. } => {
            format!("projects/{project_segment}/jobs/{target}/cancel")
        }
        ProviderAction::RetryPipeline { .. } => {
            format!("projects/{project_segment}/pipelines/{target}/retry")
        }
        ProviderAction::CancelPipeline { .. } => {
            format!("projects/{project_segment}/pipelines/{target}/cancel")
        }
    };
    let needs = TokenScope::GitLabApi;
    let url = client
        .url(Forge::GitLab, &path)
        .map_err(|f| action_error(f, needs))?;
    let answer = client
        .call(
            Forge::GitLab,
            Method::POST,
            url,
            None,
            retry_policy(&client.config, false),
        )
        .await
        .map_err(|f| action_error(f, needs))?;
    // GitLab answers with the job (a new one for a retry) or the pipeline.
    let resulting_id = answer
        .body
        .get("id")
        .and_then(|id| id.as_u64().map(|n| n.to_string()))
        .unwrap_or_else(|| target.to_string());
    let provider_status = answer
        .body
        .get("status")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(ActionOutcome {
        action: action.clone(),
        resulting_id,
        status: provider_status
            .as_deref()
            .and_then(|s| BuildStatus::parse(s).ok()),
        provider_status,
    })
}

pub(super) async fn pipelines_page(
    client: &ForgeClient,
    project: &ForgeProject,
    since: DateTime<Utc>,
    page: PageCursor,
) -> Result<HistoryPage<Pipeline>, HistoryError> {
    let needs = TokenScope::GitLabReadApi;
    let mut url = client
        .url(
            Forge::GitLab,
            &format!("projects/{}/pipelines", project_segment(project)),
        )
        .map_err(|f| history_error(f, needs))?;
    // Oldest first: pipelines created during the walk join its end instead of shifting the
    // pages still to read.
    with_page(
        &mut url,
        page,
        &[
            (
                "updated_after",
                &since.to_rfc3339_opts(SecondsFormat::Secs, true),
            ),
            ("order_by", "id"),
            ("sort", "asc"),
        ],
    );
    let answer = client
        .call(
            Forge::GitLab,
            Method::GET,
            url,
            None,
            retry_policy(&client.config, true),
        )
        .await
        .map_err(|f| history_error(f, needs))?;
    let now = Utc::now();
    Ok(normalise_page(
        list(&answer)?,
        "pipeline",
        next_page(&answer.headers),
        |item| {
            let mut pipeline =
                from_api::gitlab_pipeline(&project.path, item, now).map_err(|e| e.0)?;
            if pipeline.project_id.is_none() {
                pipeline.project_id = project.id.clone();
            }
            Ok(pipeline)
        },
    ))
}

pub(super) async fn jobs_page(
    client: &ForgeClient,
    project: &ForgeProject,
    pipeline_id: &str,
    page: PageCursor,
) -> Result<HistoryPage<Job>, HistoryError> {
    let needs = TokenScope::GitLabReadApi;
    let mut url = client
        .url(
            Forge::GitLab,
            &format!(
                "projects/{}/pipelines/{pipeline_id}/jobs",
                project_segment(project)
            ),
        )
        .map_err(|f| history_error(f, needs))?;
    with_page(&mut url, page, &[]);
    let answer = client
        .call(
            Forge::GitLab,
            Method::GET,
            url,
            None,
            retry_policy(&client.config, true),
        )
        .await
        .map_err(|f| history_error(f, needs))?;
    let now = Utc::now();
    Ok(normalise_page(
        list(&answer)?,
        "job",
        next_page(&answer.headers),
        |item| from_api::gitlab_job(&project.path, item, now).map_err(|e| e.0),
    ))
}

pub(super) async fn group_projects_page(
    client: &ForgeClient,
    group: &str,
    page: PageCursor,
) -> Result<HistoryPage<GroupProject>, HistoryError> {
    let needs = TokenScope::GitLabReadApi;
    let mut url = client
        .url(
            Forge::GitLab,
            &format!(
                "groups/{}/projects",
                percent_encode(group.trim_matches('/'))
            ),
        )
        .map_err(|f| history_error(f, needs))?;
    // Projects shared into the group from elsewhere are not its own.
    with_page(
        &mut url,
        page,
        &[
            ("include_subgroups", "true"),
            ("with_shared", "false"),
            ("archived", "false"),
            ("order_by", "id"),
            ("sort", "asc"),
        ],
    );
    let answer = client
        .call(
            Forge::GitLab,
            Method::GET,
            url,
            None,
            retry_policy(&client.config, true),
        )
        .await
        .map_err(|f| history_error(f, needs))?;
    Ok(normalise_page(
        list(&answer)?,
        "project",
        next_page(&answer.headers),
        |item| {
            let id = item
                .get("id")
                .and_then(Value::as_u64)
                .ok_or("no numeric `id`")?;
            let path = item
                .get("path_with_namespace")
                .and_then(Value::as_str)
                .ok_or("no `path_with_namespace`")?;
            Ok(GroupProject {
                id: id.to_string(),
                path: RepoPath::parse(path).map_err(|e| e.to_string())?,
                web_url: item
                    .get("web_url")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                archived: item
                    .get("archived")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            })
        },
    ))
}

pub(super) async fn comment(
    client: &ForgeClient,
    thread: &ReviewThread,
    note_id: Option<&str>,
    body: &CommentBody,
) -> Result<PostedComment, CommentError> {
    let notes = format!(
        "projects/{}/merge_requests/{}/notes",
        project_segment(&thread.project),
        thread.number
    );
    let (method, path) = match note_id {
        None => (Method::POST, notes),
        Some(id) => (Method::PUT, format!("{notes}/{id}")),
    };
    let write = CommentWrite {
        forge: Forge::GitLab,
        method,
        path,
        existing_id: note_id,
        needs: TokenScope::GitLabApi,
        url_field: None,
    };
    write_comment(client, write, body).await
}
