//! GitLab `Pipeline Hook`, `Job Hook` and the legacy `Build Hook`.

use super::json::{self, InvalidPayload};
use super::{Normalised, WebhookEvent};
use crate::repo::RepoPath;
use crate::runs::{CommitInfo, Job, Person, Pipeline, Runner, latest};
use crate::status::BuildStatus;
use chrono::{DateTime, Utc};
use serde_json::Value;

pub const PROVIDER: &str = "gitlab";

/// Every field the parsers below read, sorted; the rest of a payload is skipped while parsing.
pub const FIELDS: &[&str] = &[
    "allow_failure",
    "author",
    "avatar_url",
    "build_allow_failure",
    "build_created_at",
    "build_created_at_iso",
    "build_duration",
    "build_failure_reason",
    "build_finished_at",
    "build_finished_at_iso",
    "build_id",
    "build_name",
    "build_queued_duration",
    "build_stage",
    "build_started_at",
    "build_started_at_iso",
    "build_status",
    "builds",
    "commit",
    "created_at",
    "description",
    "duration",
    "email",
    "failure_reason",
    "finished_at",
    "git_http_url",
    "homepage",
    "id",
    "iid",
    "merge_request",
    "message",
    "name",
    "object_attributes",
    "object_kind",
    "path_with_namespace",
    "pipeline_id",
    "project",
    "project_id",
    "queued_duration",
    "ref",
    "repository",
    "runner",
    "sha",
    "source",
    "stage",
    "started_at",
    "status",
    "tags",
    "timestamp",
    "title",
    "url",
    "user",
    "username",
    "web_url",
];

/// Parses a delivery's raw body.
pub fn parse_bytes(
    event: &str,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<WebhookEvent, InvalidPayload> {
    parse(event, &super::pruned::parse_payload(body, FIELDS)?, now)
}

/// Parses one delivery by its `X-Gitlab-Event` header. `now` is the time of receipt.
pub fn parse(
    event: &str,
    body: &Value,
    now: DateTime<Utc>,
) -> Result<WebhookEvent, InvalidPayload> {
    if !body.is_object() {
        return Err(InvalidPayload("the payload must be a JSON object".into()));
    }
    let kind = json::text(body, &["object_kind"])?;
    parse_kind(event, kind.as_deref(), body, now)
}

fn parse_kind(
    event: &str,
    kind: Option<&str>,
    body: &Value,
    now: DateTime<Utc>,
) -> Result<WebhookEvent, InvalidPayload> {
    match (event, kind) {
        ("Pipeline Hook", Some("pipeline")) => {
            let (pipeline, jobs) = pipeline_hook(body, now)?;
            Ok(WebhookEvent::Records(Normalised {
                pipelines: vec![pipeline],
                jobs,
                builds: Vec::new(),
            }))
        }
        ("Job Hook" | "Build Hook", Some("build")) => match project_path(body)? {
            Some(repo) => Ok(WebhookEvent::Records(Normalised {
                jobs: vec![job_hook(body, repo, now)?],
                ..Normalised::default()
            })),
            // A real GitLab event we cannot use is acknowledged with the reason: GitLab
            // disables a hook whose deliveries keep failing.
            None => Ok(WebhookEvent::Ignored(format!(
                "this {event} names no project path (no `project.path_with_namespace` nor `repository.homepage`), so it cannot be recorded"
            ))),
        },
        ("Pipeline Hook" | "Job Hook" | "Build Hook", other) => Err(InvalidPayload(format!(
            "a {event} must have object_kind {:?}, got {:?}",
            if event == "Pipeline Hook" {
                "pipeline"
            } else {
                "build"
            },
            other.unwrap_or("nothing")
        ))),
        _ => Ok(WebhookEvent::Ignored(format!(
            "{event} events are not used; subscribe to pipeline and job events"
        ))),
    }
}

fn status(body: &Value, path: &[&str]) -> Result<(BuildStatus, String), InvalidPayload> {
    let raw = json::required_text(body, path)?;
    let status = BuildStatus::parse(&raw)
        .map_err(|e| InvalidPayload(format!("`{}`: {e}", path.join("."))))?;
    Ok((status, raw))
}

fn person(body: &Value, path: &[&str]) -> Result<Option<Person>, InvalidPayload> {
    let Some(user) = json::at(body, path) else {
        return Ok(None);
    };
    Ok(Some(Person {
        id: json::at(user, &["id"]).and_then(Value::as_u64),
        name: json::text(user, &["name"])?,
        username: json::text(user, &["username"])?,
        avatar_url: json::text(user, &["avatar_url"])?,
    }))
}

fn first_line(message: &Option<String>) -> Option<String> {
    message
        .as_deref()
        .and_then(|m| m.lines().next())
        .map(str::to_string)
        .filter(|line| !line.is_empty())
}

fn pipeline_hook(body: &Value, now: DateTime<Utc>) -> Result<(Pipeline, Vec<Job>), InvalidPayload> {
    if json::at(body, &["object_attributes"]).is_none() {
        return Err(InvalidPayload("`object_attributes` is required".into()));
    }
    let repo = json::repo(body, &["project", "path_with_namespace"])?;
    let project_id = json::id(body, &["project", "id"])?;
    let pipeline_id = json::required_id(body, &["object_attributes", "id"])?;
    let (status, provider_status) = status(body, &["object_attributes", "status"])?;
    let created_at = json::time(body, &["object_attributes", "created_at"])?;
    let finished_at = json::time(body, &["object_attributes", "finished_at"])?;
    let web_url = json::text(body, &["project", "web_url"])?;
    let url = json::text(body, &["object_attributes", "url"])?.or_else(|| {
        web_url
            .as_ref()
            .map(|web| format!("{web}/-/pipelines/{pipeline_id}"))
    });
    let message = json::message(body, &["commit", "message"])?;
    let commit = match json::at(body, &["commit"]) {
        None => None,
        Some(commit) => Some(CommitInfo {
            id: json::text(commit, &["id"])?,
            title: json::text(commit, &["title"])?.or_else(|| first_line(&message)),
            message,
            author_name: json::text(commit, &["author", "name"])?,
            author_email: json::text(commit, &["author", "email"])?,
            created_at: json::time(commit, &["timestamp"])?,
            url: json::text(commit, &["url"])?,
        }),
    };
    let context = JobContext {
        repo: repo.clone(),
        project_id: project_id.clone(),
        pipeline_id: Some(pipeline_id.clone()),
        git_ref: json::text(body, &["object_attributes", "ref"])?,
        sha: json::text(body, &["object_attributes", "sha"])?,
        web_url,
    };
    let mut jobs = Vec::new();
    let mut times = vec![created_at, finished_at];
    if let Some(builds) = json::at(body, &["builds"]) {
        let builds = builds
            .as_array()
            .ok_or_else(|| InvalidPayload("`builds` must be a list".into()))?;
        for (index, build) in builds.iter().enumerate() {
            let job = pipeline_build(build, &context, now)
                .map_err(|e| InvalidPayload(format!("builds[{index}]: {}", e.0)))?;
            times.extend([job.created_at, job.started_at, job.finished_at]);
            jobs.push(job);
        }
    }
    let started_at = jobs.iter().filter_map(|job| job.started_at).min();
    let pipeline = Pipeline {
        provider: PROVIDER.into(),
        repo,
        project_id,
        pipeline_id,
        name: json::text(body, &["object_attributes", "name"])?,
        git_ref: context.git_ref.clone(),
        sha: context.sha.clone(),
        source: json::text(body, &["object_attributes", "source"])?,
        status,
        provider_status,
        created_at,
        started_at,
        finished_at,
        duration_ms: json::seconds_as_ms(body, &["object_attributes", "duration"])?,
        user: person(body, &["user"])?,
        commit,
        url,
        merge_request: json::at(body, &["merge_request", "iid"]).and_then(Value::as_u64),
        attempt: 1,
        observed_at: latest(&times, now),
        first_seen: created_at.unwrap_or(now),
        updated_at: now,
    };
    Ok((pipeline, jobs))
}

/// What a job inherits from the hook it arrived in.
struct JobContext {
    repo: crate::repo::RepoPath,
    project_id: Option<String>,
    pipeline_id: Option<String>,
    git_ref: Option<String>,
    sha: Option<String>,
    web_url: Option<String>,
}

fn runner(body: &Value, path: &[&str]) -> Result<Option<Runner>, InvalidPayload> {
    let Some(runner) = json::at(body, path) else {
        return Ok(None);
    };
    Ok(Some(Runner {
        id: json::id(runner, &["id"])?,
        name: json::text(runner, &["description"])?,
        tags: json::strings(runner, &["tags"])?,
    }))
}

/// One entry of a Pipeline Hook's `builds`.
fn pipeline_build(
    build: &Value,
    context: &JobContext,
    now: DateTime<Utc>,
) -> Result<Job, InvalidPayload> {
    let job_id = json::required_id(build, &["id"])?;
    let (status, provider_status) = status(build, &["status"])?;
    let created_at = json::time(build, &["created_at"])?;
    let started_at = json::time(build, &["started_at"])?;
    let finished_at = json::time(build, &["finished_at"])?;
    Ok(Job {
        provider: PROVIDER.into(),
        repo: context.repo.clone(),
        project_id: context.project_id.clone(),
        url: context
            .web_url
            .as_ref()
            .map(|web| format!("{web}/-/jobs/{job_id}")),
        job_id,
        pipeline_id: context.pipeline_id.clone(),
        name: json::required_text(build, &["name"])?,
        stage: json::text(build, &["stage"])?,
        status,
        provider_status,
        git_ref: context.git_ref.clone(),
        sha: context.sha.clone(),
        created_at,
        started_at,
        finished_at,
        duration_ms: json::seconds_as_ms(build, &["duration"])?,
        queued_duration_ms: json::seconds_as_ms(build, &["queued_duration"])?,
        failure_reason: json::text(build, &["failure_reason"])?
            .filter(|_| status == BuildStatus::Failure),
        allow_failure: json::boolean(build, &["allow_failure"])?,
        runner: runner(build, &["runner"])?,
        labels: Vec::new(),
        steps: Vec::new(),
        failing_step: None,
        user: person(build, &["user"])?,
        attempt: 1,
        observed_at: latest(&[created_at, started_at, finished_at], now),
        first_seen: created_at.unwrap_or(now),
        updated_at: now,
    })
}

/// The project's path: `project.path_with_namespace`, or, in the job hooks of GitLab 15 and
/// earlier (which carry no `project` object), the path of `repository.homepage` (else of
/// `repository.git_http_url`).
fn project_path(body: &Value) -> Result<Option<RepoPath>, InvalidPayload> {
    if json::at(body, &["project", "path_with_namespace"]).is_some() {
        return json::repo(body, &["project", "path_with_namespace"]).map(Some);
    }
    for (path, suffix) in [
        (&["repository", "homepage"][..], ""),
        (&["repository", "git_http_url"][..], ".git"),
    ] {
        if let Some(url) = json::text(body, path)? {
            let after_host = url
                .split_once("://")
                .map_or(url.as_str(), |(_, rest)| rest)
                .split_once('/')
                .map_or("", |(_, path)| path);
            let trimmed = after_host.trim_end_matches('/');
            let trimmed = trimmed.strip_suffix(suffix).unwrap_or(trimmed);
            return RepoPath::parse(trimmed)
                .map(Some)
                .map_err(|e| InvalidPayload(format!("`{}` {e}", path.join("."))));
        }
    }
    Ok(None)
}

fn job_hook(body: &Value, repo: RepoPath, now: DateTime<Utc>) -> Result<Job, InvalidPayload> {
    let job_id = json::required_id(body, &["build_id"])?;
    let (status, provider_status) = status(body, &["build_status"])?;
    // Newer GitLab sends both forms; older only the first.
    let time = |name: &str| -> Result<Option<DateTime<Utc>>, InvalidPayload> {
        let iso = format!("{name}_iso");
        Ok(json::time(body, &[iso.as_str()])?.or(json::time(body, &[name])?))
    };
    let created_at = time("build_created_at")?;
    let started_at = time("build_started_at")?;
    let finished_at = time("build_finished_at")?;
    let web_url = json::text(body, &["project", "web_url"])?
        .or(json::text(body, &["repository", "homepage"])?);
    Ok(Job {
        provider: PROVIDER.into(),
        repo,
        project_id: json::id(body, &["project_id"])?.or(json::id(body, &["project", "id"])?),
        url: web_url.map(|web| format!("{web}/-/jobs/{job_id}")),
        job_id,
        pipeline_id: json::id(body, &["pipeline_id"])?,
        name: json::required_text(body, &["build_name"])?,
        stage: json::text(body, &["build_stage"])?,
        status,
        provider_status,
        git_ref: json::text(body, &["ref"])?,
        sha: json::text(body, &["sha"])?,
        created_at,
        started_at,
        finished_at,
        duration_ms: json::seconds_as_ms(body, &["build_duration"])?,
        queued_duration_ms: json::seconds_as_ms(body, &["build_queued_duration"])?,
        failure_reason: json::text(body, &["build_failure_reason"])?
            .filter(|_| status == BuildStatus::Failure),
        allow_failure: json::boolean(body, &["build_allow_failure"])?,
        runner: runner(body, &["runner"])?,
        labels: Vec::new(),
        steps: Vec::new(),
        failing_step: None,
        user: person(body, &["user"])?,
        attempt: 1,
        observed_at: latest(&[created_at, started_at, finished_at], now),
        first_seen: created_at.unwrap_or(now),
        updated_at: now,
    })
}
