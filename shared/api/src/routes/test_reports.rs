//! Test reports: JUnit upload per job (`POST .../reports/junit`, ingest), the job's merged
//! report (`GET .../reports`), a repo's tests by state with their history, and quarantine
//! (`PUT`/`DELETE` admin, `GET` read, as JSON or one test per line).

use crate::body::{gzip_encoded, parse_json, read_bytes};
use crate::error::{ApiError, store_failure};
use crate::params::{QueryParams, non_empty, query_params};
use crate::routes::ingest::percent_encode;
use crate::state::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use buildlore_core::RepoPath;
use buildlore_core::details::DetailsSource;
use buildlore_core::junit::gitlab::parse_pipeline_test_report;
use buildlore_core::junit::history::{FlakySettings, TestState, TestStateName, repo_test_figures};
use buildlore_core::junit::ingest::{
    ContextHints, IngestReportError, JobKey, QuarantineError, QuarantineRequest, ReportUpload,
    StoredUpload, TestReportStore, ingest_parsed, ingest_report, lift_quarantine, merge_uploads,
    quarantine_test,
};
use buildlore_core::junit::{JunitError, MAX_REPORT_BYTES, is_test_id};
use buildlore_core::keys;
use buildlore_core::ports::Markers;
use buildlore_core::runs::valid_provider;
use buildlore_core::webhooks::Normalised;
use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Value, json};

/// History entries a test's page shows.
const HISTORY_SHOWN: usize = 20;
/// Longest `commit`, `branch` or `pipeline_id` accepted from the query.
const MAX_HINT_CHARS: usize = 255;

/// The per-test figures of a repo analysis (`tests` in `GET /api/v1/repos/{repo}/analysis`).
pub(crate) async fn repo_figures(
    state: &AppState,
    repo: &RepoPath,
    now: DateTime<Utc>,
) -> Result<Value, ApiError> {
    let states = state.store.all_states(repo).await?;
    Ok(json!(repo_test_figures(
        &states,
        now,
        &state.config.test_reports.flaky
    )))
}

/// How long the "fetched once" marker of a pipeline's test report is kept.
const FETCH_MARKER_DAYS: i64 = 30;

/// When `GITLAB_TEST_REPORT_FETCH` is on: fetches the test report of every finished GitLab
/// pipeline of a delivery, once, and records each suite under the job it is named after.
/// Best effort: a failure is logged and never fails the delivery (a fetch that failed is
/// tried again on a later delivery of a finished pipeline).
pub(crate) async fn fetch_gitlab_reports(state: &AppState, records: &Normalised) {
    let config = &state.config.test_reports;
    if !config.fetch_from_gitlab {
        return;
    }
    let Some(client) = state.providers() else {
        return;
    };
    let finished = records
        .pipelines
        .iter()
        .filter(|p| p.provider == "gitlab" && p.status.is_terminal());
    for pipeline in finished {
        let marker = keys::junit_fetch_marker("gitlab", &pipeline.repo, &pipeline.pipeline_id);
        let keep = chrono::Duration::days(FETCH_MARKER_DAYS);
        match state.store.set_marker(&marker, keep).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(error) => {
                tracing::warn!(%error, "test report not fetched");
                continue;
            }
        }
        let project = pipeline
            .project_id
            .clone()
            .unwrap_or_else(|| pipeline.repo.to_string());
        let retry_later = || async {
            if let Err(error) = state.store.clear_marker(&marker).await {
                tracing::warn!(%error, "a test report fetch will not be retried");
            }
        };
        let fetched = match client
            .gitlab_pipeline_test_report(&project, &pipeline.pipeline_id)
            .await
        {
            Ok(fetched) if !fetched.truncated => fetched,
            Ok(_) => {
                tracing::warn!(pipeline = %pipeline.pipeline_id, "GitLab's test report is larger than TRACE_FETCH_MAX_BYTES; not stored");
                continue;
            }
            Err(error) => {
                tracing::warn!(%error, pipeline = %pipeline.pipeline_id, "GitLab's test report was not fetched");
                retry_later().await;
                continue;
            }
        };
        let suites = match parse_pipeline_test_report(&fetched.bytes) {
            Ok(suites) => suites,
            Err(error) => {
                tracing::warn!(%error, pipeline = %pipeline.pipeline_id, "GitLab's test report was not read");
                continue;
            }
        };
        for suite in suites {
            // GitLab names a suite after its job; the newest job of that name in the pipeline.
            let named = records
                .jobs
                .iter()
                .filter(|job| job.pipeline_id.as_deref() == Some(pipeline.pipeline_id.as_str()))
                .filter(|job| job.name == suite.job_name)
                .max_by_key(|job| job.job_id.parse::<u64>().unwrap_or(0))
                .map(|job| job.job_id.clone());
            let job_id = named.or_else(|| {
                buildlore_core::job_id::parse_job_id(&format!(
                    "pipeline-{}-{}",
                    pipeline.pipeline_id, suite.job_name
                ))
            });
            let Some(job_id) = job_id else {
                continue;
            };
            let job = JobKey {
                provider: "gitlab".into(),
                repo: pipeline.repo.clone(),
                job_id,
            };
            let hints = ContextHints {
                commit: pipeline.sha.clone(),
                branch: pipeline.git_ref.clone(),
                pipeline_id: Some(pipeline.pipeline_id.clone()),
            };
            let stored = ingest_parsed(
                &state.store,
                &job,
                suite.report,
                hints,
                &config.flaky,
                Utc::now(),
            )
            .await;
            match stored {
                Ok(outcome) => announce_flaky_tests(state, &job, &outcome.turned_flaky).await,
                Err(error) => {
                    tracing::warn!(%error, job_id = %job.job_id, "a fetched test report was not stored");
                    retry_later().await;
                }
            }
        }
    }
}

type JobPath = Result<Path<(String, String, String)>, PathRejection>;

/// The job a path names: `{project}` is a URL-encoded path, or a numeric id that a webhook
/// has told us about (or that `?repo=` names).
async fn job_key(
    state: &AppState,
    path: JobPath,
    params: &std::collections::HashMap<String, String>,
) -> Result<JobKey, ApiError> {
    let Path((provider, project, job_id)) = path?;
    let provider = valid_provider(&provider).ok_or_else(|| {
        ApiError::bad_request("provider must be a CI name such as gitlab or github")
    })?;
    let job_id = buildlore_core::job_id::parse_job_id(&job_id).ok_or_else(|| {
        ApiError::bad_request(format!(
            "job id must be {}",
            buildlore_core::job_id::JOB_ID_RULE
        ))
    })?;
    let numeric =
        !project.is_empty() && project.len() <= 20 && project.bytes().all(|b| b.is_ascii_digit());
    let repo = if numeric {
        let known = state.store.resolve_project(&provider, &project).await?;
        match (known, non_empty(params, "repo")) {
            (Some(repo), _) => repo,
            (None, Some(repo)) => {
                RepoPath::parse(repo).map_err(|e| ApiError::bad_request(format!("`repo` {e}")))?
            }
            (None, None) => {
                return Err(ApiError::not_found(format!(
                    "{provider} project {project} is not known yet (no webhook named it): use its URL-encoded path (group%2Fproject) or add ?repo=group/project"
                )));
            }
        }
    } else {
        RepoPath::parse(&project).map_err(|e| {
            ApiError::bad_request(format!("project (URL-encode its slashes as %2F) {e}"))
        })?
    };
    Ok(JobKey {
        provider,
        repo,
        job_id,
    })
}

fn test_id_of(raw: &str) -> Result<String, ApiError> {
    if is_test_id(raw) {
        Ok(raw.to_string())
    } else {
        Err(ApiError::bad_request(format!(
            "test id must be the 16 hex digits listed as `id` by GET /api/v1/repos/{{repo}}/tests, got {:?}",
            raw.chars().take(40).collect::<String>()
        )))
    }
}

/// A short text from the query: trimmed, bounded.
fn hint(
    params: &std::collections::HashMap<String, String>,
    name: &str,
) -> Result<Option<String>, ApiError> {
    match non_empty(params, name).map(str::trim) {
        None | Some("") => Ok(None),
        Some(text)
            if text.chars().count() > MAX_HINT_CHARS || text.chars().any(char::is_control) =>
        {
            Err(ApiError::bad_request(format!(
                "`{name}` must be at most {MAX_HINT_CHARS} printable characters"
            )))
        }
        Some(text) => Ok(Some(text.to_string())),
    }
}

/// Refuses a content type that is present and not XML.
fn require_xml(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let text = value.to_str().unwrap_or_default().to_ascii_lowercase();
    let essence = text
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let xml = matches!(
        essence.as_str(),
        "application/xml"
            | "text/xml"
            | "application/octet-stream"
            | "application/gzip"
            | "application/x-gzip"
    ) || essence.ends_with("+xml");
    if xml {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Type must be application/xml or text/xml (a JUnit XML report), got {:?}",
                essence.chars().take(64).collect::<String>()
            ),
        ))
    }
}

fn report_error(error: IngestReportError) -> ApiError {
    match error {
        IngestReportError::Store(error) => store_failure(error),
        IngestReportError::Report(error) => {
            let status = match &error {
                JunitError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                JunitError::NotJunit { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::BAD_REQUEST,
            };
            ApiError::new(status, error.to_string())
        }
    }
}

fn reports_url(job: &JobKey) -> String {
    format!(
        "/api/v1/jobs/{}/{}/{}/reports",
        job.provider,
        percent_encode(job.repo.as_str()),
        percent_encode(&job.job_id)
    )
}

fn upload_view(job: &JobKey, upload: &StoredUpload, duplicate: bool) -> Value {
    let totals = &upload.totals;
    json!({
        "job_key": format!("{}/{}/{}", job.provider, job.repo, job.job_id),
        "digest": upload.digest,
        "duplicate": duplicate,
        "tests": totals.tests,
        "passed": totals.passed,
        "failed": totals.failed,
        "errors": totals.errors,
        "skipped": totals.skipped,
        "flaky": totals.flaky,
        "infrastructure_failure": upload.infrastructure_failure,
        "failed_tests": upload.failed_tests,
        "flaky_tests": upload.flaky_tests,
        "omitted_tests": upload.omitted_tests,
        "commit": upload.run.commit,
        "branch": upload.run.branch,
        "pipeline_id": upload.run.pipeline_id,
        "reports_url": reports_url(job),
    })
}

pub(crate) async fn upload_junit(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: JobPath,
    query: QueryParams,
    body: Body,
) -> Result<Response, ApiError> {
    let params = query_params(query)?;
    let job = job_key(&state, path, &params).await?;
    require_xml(&headers)?;
    let gzip = gzip_encoded(&headers)?;
    let hints = ContextHints {
        commit: hint(&params, "commit")?,
        branch: hint(&params, "branch")?,
        pipeline_id: hint(&params, "pipeline_id")?,
    };
    let body = read_bytes(body, MAX_REPORT_BYTES as usize).await?;
    let upload = ReportUpload {
        body: &body,
        gzip,
        limit: MAX_REPORT_BYTES,
    };
    let outcome = ingest_report(
        &state.store,
        &job,
        upload,
        hints,
        &state.config.test_reports.flaky,
        Utc::now(),
    )
    .await
    .map_err(report_error)?;
    tracing::info!(
        provider = %job.provider, repo = %job.repo, job_id = %job.job_id,
        tests = outcome.upload.totals.tests, failing = outcome.upload.totals.failing(),
        duplicate = outcome.duplicate, states_written = outcome.states_written,
        "test report stored"
    );
    announce_flaky_tests(&state, &job, &outcome.turned_flaky).await;
    let status = if outcome.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(upload_view(&job, &outcome.upload, outcome.duplicate)),
    )
        .into_response())
}

pub(crate) async fn job_report(
    State(state): State<AppState>,
    path: JobPath,
    query: QueryParams,
) -> Result<Json<Value>, ApiError> {
    let params = query_params(query)?;
    let job = job_key(&state, path, &params).await?;
    let uploads = state.store.job_uploads(&job).await?;
    if uploads.is_empty() {
        return Err(ApiError::not_found(format!(
            "no test report was uploaded for {} job {} of {}",
            job.provider, job.job_id, job.repo
        )));
    }
    let merged = merge_uploads(&uploads);
    let totals = &merged.totals;
    Ok(Json(json!({
        "job_key": format!("{}/{}/{}", job.provider, job.repo, job.job_id),
        "uploads": merged.uploads,
        "tests": totals.tests,
        "passed": totals.passed,
        "failed": totals.failed,
        "errors": totals.errors,
        "skipped": totals.skipped,
        "flaky": totals.flaky,
        "infrastructure_failures": merged.infrastructure_failures,
        "failed_tests": merged.failed_tests,
        "flaky_tests": merged.flaky_tests,
    })))
}

fn test_view(test: &TestState, now: DateTime<Utc>, settings: &FlakySettings) -> Value {
    json!({
        "id": test.id,
        "name": test.name,
        "suite": test.suite,
        "state": test.state(now, settings),
        "flaky": test.is_flaky(now, settings),
        "flaky_evidence": test.flaky_evidence,
        "runs": test.runs,
        "failures": test.failures,
        "flaky_runs": test.flaky_runs,
        "flake_rate": (test.flake_rate() * 1000.0).round() / 1000.0,
        "first_seen": test.first_seen,
        "last_run_at": test.last_run_at,
        "last_outcome": test.last_outcome,
        "last_failed_at": test.last_failed_at,
        "last_flaky_at": test.last_flaky_at,
        "last_job": test.last_job,
        "time_lost_to_flakes_seconds": test.time_lost_to_flakes_seconds,
        "quarantine": test.quarantine.as_ref().filter(|q| q.active(now)),
        "lift_candidate": test.lift_candidate(now, settings),
    })
}

pub(crate) async fn list_tests(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: QueryParams,
) -> Result<Json<Value>, ApiError> {
    let Path(repo) = path?;
    let repo = super::project::repo_path_param(&repo)?;
    let params = query_params(query)?;
    let wanted = match non_empty(&params, "state") {
        None => None,
        Some(raw) => Some(TestStateName::parse(raw).ok_or_else(|| {
            ApiError::bad_request("`state` must be flaky, failing, quarantined or passing")
        })?),
    };
    let now = Utc::now();
    let settings = &state.config.test_reports.flaky;
    let mut tests = state.store.all_states(&repo).await?;
    tests.retain(|test| wanted.is_none_or(|wanted| test.matches(wanted, now, settings)));
    // Worst first: most flaky runs, then most failures, then most recent failure.
    tests.sort_by(|a, b| {
        b.flaky_runs
            .cmp(&a.flaky_runs)
            .then(b.failures.cmp(&a.failures))
            .then(b.last_failed_at.cmp(&a.last_failed_at))
            .then(a.id.cmp(&b.id))
    });
    let views: Vec<Value> = tests.iter().map(|t| test_view(t, now, settings)).collect();
    Ok(Json(json!({
        "repo": repo,
        "state": wanted,
        "count": views.len(),
        "tests": views,
    })))
}

pub(crate) async fn one_test(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path((repo, id)) = path?;
    let repo = super::project::repo_path_param(&repo)?;
    let id = test_id_of(&id)?;
    let (test, _) = state
        .store
        .load_states(&repo, std::slice::from_ref(&id))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no tracked test {id} in {repo}: tests are tracked from their first failure or flake"
            ))
        })?;
    let now = Utc::now();
    let mut view = test_view(&test, now, &state.config.test_reports.flaky);
    view["history"] = json!(
        test.history
            .iter()
            .take(HISTORY_SHOWN)
            .map(|entry| json!({
                "at": entry.at,
                "job": format!("{}/{}", entry.provider, entry.job_id),
                "pipeline_id": entry.pipeline_id,
                "commit": entry.commit,
                "branch": entry.branch,
                "outcome": entry.outcome,
            }))
            .collect::<Vec<_>>()
    );
    Ok(Json(view))
}

fn quarantine_error(error: QuarantineError) -> ApiError {
    match error {
        QuarantineError::UnknownTest(_) | QuarantineError::NotQuarantined(_) => {
            ApiError::not_found(error.to_string())
        }
        QuarantineError::IdMismatch(_) => ApiError::bad_request(error.to_string()),
        QuarantineError::Store(error) => store_failure(error),
    }
}

/// Longest `reason` or `owner`.
const MAX_QUARANTINE_TEXT: usize = 500;

fn quarantine_request(body: &Value, now: DateTime<Utc>) -> Result<QuarantineRequest, ApiError> {
    let text = |name: &str, required: bool| -> Result<Option<String>, ApiError> {
        match body.get(name) {
            None | Some(Value::Null) if !required => Ok(None),
            Some(Value::String(text)) if !text.trim().is_empty() => {
                if text.chars().count() > MAX_QUARANTINE_TEXT {
                    Err(ApiError::bad_request(format!(
                        "`{name}` must be at most {MAX_QUARANTINE_TEXT} characters"
                    )))
                } else {
                    Ok(Some(text.trim().to_string()))
                }
            }
            _ => Err(ApiError::bad_request(format!(
                "`{name}` must be a non-empty string{}",
                if required { " (it is required)" } else { "" }
            ))),
        }
    };
    let expires_at = match text("expires_at", false)? {
        None => None,
        Some(raw) => {
            let at = DateTime::parse_from_rfc3339(&raw)
                .map(|at| at.with_timezone(&Utc))
                .map_err(|e| {
                    ApiError::bad_request(format!(
                        "`expires_at` must be an ISO 8601 time such as 2030-01-31T00:00:00Z: {e}"
                    ))
                })?;
            if at <= now {
                return Err(ApiError::bad_request("`expires_at` must be in the future"));
            }
            Some(at)
        }
    };
    Ok(QuarantineRequest {
        reason: text("reason", true)?.unwrap_or_default(),
        owner: text("owner", true)?.unwrap_or_default(),
        expires_at,
        suite: text("suite", false)?,
        name: text("name", false)?,
    })
}

pub(crate) async fn quarantine(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let Path((repo, id)) = path?;
    let repo = super::project::repo_path_param(&repo)?;
    let id = test_id_of(&id)?;
    crate::body::require_json_content_type(&headers)?;
    let body = parse_json(&read_bytes(body, 16 * 1024).await?)?;
    let now = Utc::now();
    let request = quarantine_request(&body, now)?;
    let settings = &state.config.test_reports.flaky;
    let test = quarantine_test(&state.store, &repo, &id, request, settings, now)
        .await
        .map_err(quarantine_error)?;
    Ok(Json(test_view(&test, now, settings)))
}

pub(crate) async fn lift(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path((repo, id)) = path?;
    let repo = super::project::repo_path_param(&repo)?;
    let id = test_id_of(&id)?;
    let settings = &state.config.test_reports.flaky;
    let test = lift_quarantine(&state.store, &repo, &id, settings)
        .await
        .map_err(quarantine_error)?;
    Ok(Json(test_view(&test, Utc::now(), settings)))
}

/// Whether the caller asked for plain text (`?format=text` or `Accept: text/plain`).
fn wants_text(headers: &HeaderMap, params: &std::collections::HashMap<String, String>) -> bool {
    match non_empty(params, "format") {
        Some(format) => format == "text",
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| {
                let accept = accept.to_ascii_lowercase();
                accept.contains("text/plain") && !accept.contains("application/json")
            }),
    }
}

pub(crate) async fn quarantine_list(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let Path(repo) = path?;
    let repo = super::project::repo_path_param(&repo)?;
    let params = query_params(query)?;
    let now = Utc::now();
    let settings = &state.config.test_reports.flaky;
    let mut tests = state.store.all_states(&repo).await?;
    tests.retain(|test| test.is_quarantined(now));
    tests.sort_by(|a, b| (&a.suite, &a.name).cmp(&(&b.suite, &b.name)));
    if wants_text(&headers, &params) {
        // One test per line, for skip lists: the name (default), `suite.name` or the id.
        let line = non_empty(&params, "line").unwrap_or("name");
        let render: fn(&TestState) -> String = match line {
            "name" => |t| t.name.clone(),
            "qualified" => |t| {
                if t.suite.is_empty() {
                    t.name.clone()
                } else {
                    format!("{}.{}", t.suite, t.name)
                }
            },
            "id" => |t| t.id.clone(),
            _ => {
                return Err(ApiError::bad_request(
                    "`line` must be name, qualified (suite.name) or id",
                ));
            }
        };
        let mut text = String::new();
        for test in &tests {
            // A line break inside a name would split one test into two lines.
            text.push_str(&render(test).replace(['\n', '\r'], " "));
            text.push('\n');
        }
        let mut response = (StatusCode::OK, text).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return Ok(response);
    }
    let views: Vec<Value> = tests.iter().map(|t| test_view(t, now, settings)).collect();
    Ok(Json(json!({"repo": repo, "count": views.len(), "tests": views})).into_response())
}

/// Tests an upload made flaky are announced to the notification targets (queued; best
/// effort: the upload is stored either way).
async fn announce_flaky_tests(state: &AppState, job: &JobKey, tests: &[String]) {
    use buildlore_core::notifications::NotificationEvent;
    use buildlore_core::notify::announce;
    let Some(queue) = state.analysis_queue.as_ref() else {
        return;
    };
    if tests.is_empty() {
        return;
    }
    let events = tests
        .iter()
        .map(|test| NotificationEvent::TestTurnedFlaky {
            repo: job.repo.clone(),
            test: test.clone(),
            job_name: None,
            url: state.config.dashboard_url.as_deref().map(|origin| {
                format!(
                    "{origin}/repo?repo={}",
                    buildlore_providers::percent_encode(job.repo.as_str())
                )
            }),
        })
        .collect();
    if let Err(error) = announce(&state.store, queue, events, Utc::now()).await {
        tracing::warn!(%error, "tests turned flaky were not announced");
    }
}
