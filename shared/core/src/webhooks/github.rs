//! GitHub `workflow_run`, `workflow_job`, `check_run`, `check_suite`, `status` and `ping`.

use super::json::{self, InvalidPayload};
use super::{Normalised, WebhookEvent};
use crate::build::{Build, MAX_BUILD_ID_LEN};
use crate::runs::{CommitInfo, Job, Person, Pipeline, Runner, Step, latest};
use crate::status::BuildStatus;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

pub const PROVIDER: &str = "github";

/// Every field the parsers below read, sorted; the rest of a payload is skipped while parsing.
pub const FIELDS: &[&str] = &[
    "actor",
    "app",
    "author",
    "avatar_url",
    "branches",
    "check_run",
    "check_suite",
    "completed_at",
    "conclusion",
    "context",
    "created_at",
    "description",
    "details_url",
    "display_title",
    "email",
    "event",
    "full_name",
    "head_branch",
    "head_commit",
    "head_sha",
    "html_url",
    "id",
    "labels",
    "login",
    "message",
    "name",
    "number",
    "pull_requests",
    "repository",
    "run_attempt",
    "run_id",
    "run_started_at",
    "runner_id",
    "runner_name",
    "sender",
    "sha",
    "started_at",
    "state",
    "status",
    "steps",
    "target_url",
    "timestamp",
    "triggering_actor",
    "updated_at",
    "workflow",
    "workflow_job",
    "workflow_name",
    "workflow_run",
];

/// Parses a delivery's raw body.
pub fn parse_bytes(
    event: &str,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<WebhookEvent, InvalidPayload> {
    parse(event, &super::pruned::parse_payload(body, FIELDS)?, now)
}

/// Parses one delivery by its `X-GitHub-Event` header. `now` is the time of receipt.
pub fn parse(
    event: &str,
    body: &Value,
    now: DateTime<Utc>,
) -> Result<WebhookEvent, InvalidPayload> {
    if !body.is_object() {
        return Err(InvalidPayload("the payload must be a JSON object".into()));
    }
    let records = match event {
        "ping" => return Ok(WebhookEvent::Ping),
        "workflow_run" => Normalised {
            pipelines: vec![workflow_run(body, now)?],
            ..Normalised::default()
        },
        "workflow_job" => Normalised {
            jobs: vec![workflow_job(body, now)?],
            ..Normalised::default()
        },
        "check_run" => Normalised {
            builds: vec![check(body, "check_run", now)?],
            ..Normalised::default()
        },
        "check_suite" => Normalised {
            builds: vec![check(body, "check_suite", now)?],
            ..Normalised::default()
        },
        "status" => Normalised {
            builds: vec![commit_status(body, now)?],
            ..Normalised::default()
        },
        other => {
            return Ok(WebhookEvent::Ignored(format!(
                "{other} events are not used; subscribe to workflow runs and jobs (or check runs and suites)"
            )));
        }
    };
    Ok(WebhookEvent::Records(records))
}

/// GitHub's `status` + `conclusion` pair as one status.
pub fn status_of(
    status: &str,
    conclusion: Option<&str>,
) -> Result<(BuildStatus, String), InvalidPayload> {
    let status = status.to_ascii_lowercase();
    if status != "completed" {
        let normalised = match status.as_str() {
            "in_progress" => BuildStatus::Running,
            "queued" | "requested" | "waiting" | "pending" => BuildStatus::Pending,
            other => {
                return Err(InvalidPayload(format!(
                    "unknown GitHub status {:?}",
                    json::clean(other, 32, false)
                )));
            }
        };
        return Ok((normalised, status));
    }
    let conclusion = conclusion.unwrap_or("").to_ascii_lowercase();
    let normalised = match conclusion.as_str() {
        "success" => BuildStatus::Success,
        "failure" | "timed_out" | "startup_failure" | "action_required" => BuildStatus::Failure,
        "cancelled" | "stale" => BuildStatus::Canceled,
        "skipped" | "neutral" => BuildStatus::Skipped,
        other => {
            return Err(InvalidPayload(format!(
                "unknown GitHub conclusion {:?} for a completed run",
                json::clean(other, 32, false)
            )));
        }
    };
    Ok((normalised, format!("completed/{conclusion}")))
}

fn status_at(body: &Value, object: &str) -> Result<(BuildStatus, String), InvalidPayload> {
    let status = json::required_text(body, &[object, "status"])?;
    let conclusion = json::text(body, &[object, "conclusion"])?;
    status_of(&status, conclusion.as_deref())
}

fn actor(body: &Value, path: &[&str]) -> Result<Option<Person>, InvalidPayload> {
    let Some(user) = json::at(body, path) else {
        return Ok(None);
    };
    Ok(Some(Person {
        id: json::at(user, &["id"]).and_then(Value::as_u64),
        name: json::text(user, &["name"])?,
        username: json::text(user, &["login"])?,
        avatar_url: json::text(user, &["avatar_url"])?,
    }))
}

fn attempt(body: &Value, path: &[&str]) -> Result<u32, InvalidPayload> {
    match json::at(body, path) {
        None => Ok(1),
        Some(value) => value
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| InvalidPayload(format!("`{}` must be a whole number", path.join(".")))),
    }
}

fn workflow_run(body: &Value, now: DateTime<Utc>) -> Result<Pipeline, InvalidPayload> {
    if json::at(body, &["workflow_run"]).is_none() {
        return Err(InvalidPayload("`workflow_run` is required".into()));
    }
    let (status, provider_status) = status_at(body, "workflow_run")?;
    let created_at = json::time(body, &["workflow_run", "created_at"])?;
    let started_at = json::time(body, &["workflow_run", "run_started_at"])?;
    let updated_at = json::time(body, &["workflow_run", "updated_at"])?;
    let finished_at = updated_at.filter(|_| status.is_terminal());
    let message = json::message(body, &["workflow_run", "head_commit", "message"])?;
    let commit = match json::at(body, &["workflow_run", "head_commit"]) {
        None => None,
        Some(head) => Some(CommitInfo {
            id: json::text(head, &["id"])?,
            title: json::text(body, &["workflow_run", "display_title"])?.or_else(|| {
                message
                    .as_deref()
                    .and_then(|m| m.lines().next())
                    .map(str::to_string)
            }),
            message,
            author_name: json::text(head, &["author", "name"])?,
            author_email: json::text(head, &["author", "email"])?,
            created_at: json::time(head, &["timestamp"])?,
            url: None,
        }),
    };
    Ok(Pipeline {
        provider: PROVIDER.into(),
        repo: json::repo(body, &["repository", "full_name"])?,
        project_id: json::id(body, &["repository", "id"])?,
        pipeline_id: json::required_id(body, &["workflow_run", "id"])?,
        name: json::text(body, &["workflow_run", "name"])?
            .or(json::text(body, &["workflow", "name"])?),
        git_ref: json::text(body, &["workflow_run", "head_branch"])?,
        sha: json::text(body, &["workflow_run", "head_sha"])?,
        source: json::text(body, &["workflow_run", "event"])?,
        status,
        provider_status,
        created_at,
        started_at,
        finished_at,
        duration_ms: json::elapsed_ms(started_at.or(created_at), finished_at),
        user: actor(body, &["workflow_run", "triggering_actor"])?
            .or(actor(body, &["workflow_run", "actor"])?)
            .or(actor(body, &["sender"])?),
        commit,
        url: json::text(body, &["workflow_run", "html_url"])?,
        merge_request: json::at(body, &["workflow_run", "pull_requests"])
            .and_then(Value::as_array)
            .and_then(|requests| requests.first())
            .and_then(|request| request.get("number"))
            .and_then(Value::as_u64),
        attempt: attempt(body, &["workflow_run", "run_attempt"])?,
        observed_at: latest(&[created_at, started_at, updated_at], now),
        first_seen: created_at.unwrap_or(now),
        updated_at: now,
    })
}

fn workflow_job(body: &Value, now: DateTime<Utc>) -> Result<Job, InvalidPayload> {
    if json::at(body, &["workflow_job"]).is_none() {
        return Err(InvalidPayload("`workflow_job` is required".into()));
    }
    let (status, provider_status) = status_at(body, "workflow_job")?;
    let created_at = json::time(body, &["workflow_job", "created_at"])?;
    let started_at = json::time(body, &["workflow_job", "started_at"])?;
    let finished_at =
        json::time(body, &["workflow_job", "completed_at"])?.filter(|_| status.is_terminal());
    let labels = json::strings(body, &["workflow_job", "labels"])?;
    let mut steps = Vec::new();
    if let Some(list) = json::at(body, &["workflow_job", "steps"]) {
        let list = list
            .as_array()
            .ok_or_else(|| InvalidPayload("`workflow_job.steps` must be a list".into()))?;
        for step in list {
            let step_status = json::required_text(step, &["status"])?;
            let conclusion = json::text(step, &["conclusion"])?;
            steps.push(Step {
                number: step.get("number").and_then(Value::as_u64),
                name: json::required_text(step, &["name"])?,
                status: status_of(&step_status, conclusion.as_deref())?.0,
            });
        }
    }
    let failing_step = steps
        .iter()
        .find(|step| step.status == BuildStatus::Failure)
        .map(|step| step.name.clone());
    let runner_name = json::text(body, &["workflow_job", "runner_name"])?;
    let runner = match (json::id(body, &["workflow_job", "runner_id"])?, runner_name) {
        (None, None) => None,
        (id, name) => Some(Runner {
            id,
            name,
            tags: labels.clone(),
        }),
    };
    Ok(Job {
        provider: PROVIDER.into(),
        repo: json::repo(body, &["repository", "full_name"])?,
        project_id: json::id(body, &["repository", "id"])?,
        job_id: json::required_id(body, &["workflow_job", "id"])?,
        pipeline_id: json::id(body, &["workflow_job", "run_id"])?,
        name: json::required_text(body, &["workflow_job", "name"])?,
        stage: json::text(body, &["workflow_job", "workflow_name"])?,
        status,
        provider_status,
        git_ref: json::text(body, &["workflow_job", "head_branch"])?,
        sha: json::text(body, &["workflow_job", "head_sha"])?,
        created_at,
        started_at,
        finished_at,
        duration_ms: json::elapsed_ms(started_at, finished_at),
        queued_duration_ms: json::elapsed_ms(created_at, started_at),
        failure_reason: failing_step
            .as_ref()
            .map(|step| format!("step failed: {step}"))
            .filter(|_| status == BuildStatus::Failure),
        allow_failure: None,
        runner,
        labels,
        steps,
        failing_step,
        url: json::text(body, &["workflow_job", "html_url"])?,
        user: actor(body, &["sender"])?,
        attempt: attempt(body, &["workflow_job", "run_attempt"])?,
        observed_at: latest(&[created_at, started_at, finished_at], now),
        first_seen: created_at.or(started_at).unwrap_or(now),
        updated_at: now,
    })
}

/// A check run or check suite as a build of its head commit.
fn check(body: &Value, object: &str, now: DateTime<Utc>) -> Result<Build, InvalidPayload> {
    let check = json::at(body, &[object])
        .ok_or_else(|| InvalidPayload(format!("`{object}` is required")))?;
    let (status, _) = status_at(body, object)?;
    let id = json::required_id(check, &["id"])?;
    let suite = if object == "check_suite" {
        Some(check)
    } else {
        json::at(check, &["check_suite"])
    };
    let branch = match suite {
        Some(suite) => json::text(suite, &["head_branch"])?,
        None => None,
    };
    let started_at = json::time(check, &["started_at"])?.or(json::time(check, &["created_at"])?);
    let completed_at = json::time(check, &["completed_at"])?.or(if status.is_terminal() {
        json::time(check, &["updated_at"])?
    } else {
        None
    });
    let mut extra = Map::new();
    for (key, path) in [
        ("name", vec!["name"]),
        ("app", vec!["app", "name"]),
        ("html_url", vec!["html_url"]),
        ("details_url", vec!["details_url"]),
    ] {
        if let Some(value) = json::text(check, &path)? {
            extra.insert(key.into(), json!(value));
        }
    }
    Ok(Build {
        repo: json::repo(body, &["repository", "full_name"])?,
        build_id: format!("{object}:{id}"),
        branch: branch.unwrap_or_else(|| "(detached)".into()),
        status,
        commit: json::text(check, &["head_sha"])?,
        priority: None,
        build_type: Some(object.into()),
        change_id: None,
        duration_ms: json::elapsed_ms(started_at, completed_at.filter(|_| status.is_terminal())),
        timestamp: started_at.filter(|at| *at <= now).unwrap_or(now),
        received_at: now,
        updated_at: now,
        extra_data: (!extra.is_empty()).then_some(extra),
    })
}

/// A commit status (`context` on a commit) as a build.
fn commit_status(body: &Value, now: DateTime<Utc>) -> Result<Build, InvalidPayload> {
    let state = json::required_text(body, &["state"])?;
    let status = match state.to_ascii_lowercase().as_str() {
        "pending" => BuildStatus::Pending,
        "success" => BuildStatus::Success,
        "failure" | "error" => BuildStatus::Failure,
        other => {
            return Err(InvalidPayload(format!(
                "unknown commit status state {:?}",
                json::clean(other, 32, false)
            )));
        }
    };
    let sha = json::required_text(body, &["sha"])?;
    let context = json::text(body, &["context"])?.unwrap_or_else(|| "default".into());
    let build_id: String = format!("status:{context}@{sha}")
        .chars()
        .take(MAX_BUILD_ID_LEN)
        .collect();
    let branch = json::at(body, &["branches"])
        .and_then(Value::as_array)
        .and_then(|branches| branches.first())
        .and_then(|branch| branch.get("name"))
        .and_then(Value::as_str)
        .map(|name| json::clean(name, 255, false))
        .filter(|name| !name.is_empty());
    let created_at = json::time(body, &["created_at"])?;
    let mut extra = Map::new();
    extra.insert("context".into(), json!(context));
    if let Some(url) = json::text(body, &["target_url"])? {
        extra.insert("target_url".into(), json!(url));
    }
    if let Some(description) = json::text(body, &["description"])? {
        extra.insert("description".into(), json!(description));
    }
    Ok(Build {
        repo: json::repo(body, &["repository", "full_name"])?,
        build_id,
        branch: branch.unwrap_or_else(|| "(detached)".into()),
        status,
        commit: Some(sha),
        priority: None,
        build_type: Some("status".into()),
        change_id: None,
        duration_ms: None,
        timestamp: created_at.filter(|at| *at <= now).unwrap_or(now),
        received_at: now,
        updated_at: now,
        extra_data: Some(extra),
    })
}
