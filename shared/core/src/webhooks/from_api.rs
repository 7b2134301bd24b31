//! Pipelines and jobs read from the providers' REST APIs (a backfill), normalised by the same
//! parsers as webhook deliveries: each API object is rearranged into the shape of the hook
//! that reports it and parsed as that hook. A pipeline or job read back from the API is the
//! same record its webhook makes, so the store's newer-state-wins rule dedups them and
//! neither is counted twice.
//!
//! GitHub's API objects are the hooks' own (`workflow_run`, `workflow_job`); GitLab's differ
//! (`Pipeline Hook`'s `object_attributes` against the API's flat pipeline, `Job Hook`'s
//! `build_*` fields against the API's job), and carry the project's id but not its path.

use super::json::InvalidPayload;
use super::{WebhookEvent, github, gitlab};
use crate::repo::RepoPath;
use crate::runs::{Job, Pipeline};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

/// The project part of a GitLab item's `web_url` (`https://host/group/app/-/jobs/7` →
/// `https://host/group/app`).
fn gitlab_project_url(item: &Value) -> Option<String> {
    let url = item.get("web_url")?.as_str()?;
    url.rfind("/-/").map(|at| url[..at].to_string())
}

fn copy(from: &Value, to: &mut Map<String, Value>, pairs: &[(&str, &str)]) {
    for (source, target) in pairs {
        if let Some(value) = from.get(*source).filter(|value| !value.is_null()) {
            to.insert((*target).to_string(), value.clone());
        }
    }
}

fn object(value: &Value, what: &str) -> Result<(), InvalidPayload> {
    if value.is_object() {
        Ok(())
    } else {
        Err(InvalidPayload(format!("a {what} must be a JSON object")))
    }
}

/// A pipeline of GitLab's `GET /projects/:id/pipelines` (or the single-pipeline endpoint,
/// which adds `user`, `started_at`, `finished_at` and `duration`), of the project at `repo`.
pub fn gitlab_pipeline(
    repo: &RepoPath,
    pipeline: &Value,
    now: DateTime<Utc>,
) -> Result<Pipeline, InvalidPayload> {
    object(pipeline, "pipeline")?;
    let mut attributes = Map::new();
    copy(
        pipeline,
        &mut attributes,
        &[
            ("id", "id"),
            ("iid", "iid"),
            ("name", "name"),
            ("ref", "ref"),
            ("sha", "sha"),
            ("status", "status"),
            ("source", "source"),
            ("created_at", "created_at"),
            ("finished_at", "finished_at"),
            ("duration", "duration"),
            ("web_url", "url"),
        ],
    );
    let hook = json!({
        "object_kind": "pipeline",
        "object_attributes": attributes,
        "project": {
            "id": pipeline.get("project_id"),
            "path_with_namespace": repo.as_str(),
            "web_url": gitlab_project_url(pipeline),
        },
        "user": pipeline.get("user"),
    });
    match gitlab::parse("Pipeline Hook", &hook, now)? {
        WebhookEvent::Records(mut records) if records.pipelines.len() == 1 => {
            let mut pipeline_record = records.pipelines.remove(0);
            // The hook takes a pipeline's start from its jobs; the single-pipeline endpoint
            // says it outright.
            if pipeline_record.started_at.is_none() {
                pipeline_record.started_at = super::json::time(pipeline, &["started_at"])?;
            }
            Ok(pipeline_record)
        }
        _ => Err(InvalidPayload(
            "the pipeline did not normalise to one pipeline".into(),
        )),
    }
}

/// A job of GitLab's `GET /projects/:id/pipelines/:pipeline_id/jobs` (or `/jobs/:id`), of the
/// project at `repo`.
pub fn gitlab_job(repo: &RepoPath, job: &Value, now: DateTime<Utc>) -> Result<Job, InvalidPayload> {
    object(job, "job")?;
    let mut hook = Map::new();
    copy(
        job,
        &mut hook,
        &[
            ("id", "build_id"),
            ("name", "build_name"),
            ("stage", "build_stage"),
            ("status", "build_status"),
            ("created_at", "build_created_at"),
            ("started_at", "build_started_at"),
            ("finished_at", "build_finished_at"),
            ("duration", "build_duration"),
            ("queued_duration", "build_queued_duration"),
            ("failure_reason", "build_failure_reason"),
            ("allow_failure", "build_allow_failure"),
            ("ref", "ref"),
            ("user", "user"),
        ],
    );
    hook.insert("object_kind".into(), json!("build"));
    let pipeline = job.get("pipeline");
    let field = |name: &str| pipeline.and_then(|p| p.get(name)).filter(|v| !v.is_null());
    if let Some(id) = field("id") {
        hook.insert("pipeline_id".into(), id.clone());
    }
    if let Some(project_id) = field("project_id") {
        hook.insert("project_id".into(), project_id.clone());
    }
    if let Some(sha) = field("sha").or_else(|| job.get("commit").and_then(|c| c.get("id"))) {
        hook.insert("sha".into(), sha.clone());
    }
    if let Some(runner) = job.get("runner").filter(|r| r.is_object()) {
        hook.insert(
            "runner".into(),
            json!({
                "id": runner.get("id"),
                "description": runner.get("description"),
                "tags": job.get("tag_list"),
            }),
        );
    }
    hook.insert(
        "project".into(),
        json!({
            "id": field("project_id"),
            "path_with_namespace": repo.as_str(),
            "web_url": gitlab_project_url(job),
        }),
    );
    match gitlab::parse("Job Hook", &Value::Object(hook), now)? {
        WebhookEvent::Records(mut records) if records.jobs.len() == 1 => Ok(records.jobs.remove(0)),
        _ => Err(InvalidPayload(
            "the job did not normalise to one job".into(),
        )),
    }
}

/// A workflow run of GitHub's `GET /repos/{o}/{r}/actions/runs`; `repo` stands in when the
/// run does not name its repository.
pub fn github_run(
    repo: &RepoPath,
    run: &Value,
    now: DateTime<Utc>,
) -> Result<Pipeline, InvalidPayload> {
    object(run, "workflow run")?;
    let repository = run
        .get("repository")
        .filter(|r| r.get("full_name").is_some())
        .cloned()
        .unwrap_or_else(|| json!({"full_name": repo.as_str()}));
    let hook = json!({"workflow_run": run, "repository": repository});
    match github::parse("workflow_run", &hook, now)? {
        WebhookEvent::Records(mut records) if records.pipelines.len() == 1 => {
            Ok(records.pipelines.remove(0))
        }
        _ => Err(InvalidPayload(
            "the run did not normalise to one pipeline".into(),
        )),
    }
}

/// A job of GitHub's `GET /repos/{o}/{r}/actions/runs/{id}/jobs`, of the repository at `repo`
/// (whose numeric id, when known, the webhook's records carry as `project_id`).
pub fn github_job(
    repo: &RepoPath,
    repository_id: Option<&str>,
    job: &Value,
    now: DateTime<Utc>,
) -> Result<Job, InvalidPayload> {
    object(job, "job")?;
    let id = repository_id.map(|id| match id.parse::<u64>() {
        Ok(number) => json!(number),
        Err(_) => json!(id),
    });
    let hook = json!({
        "workflow_job": job,
        "repository": {"full_name": repo.as_str(), "id": id},
    });
    match github::parse("workflow_job", &hook, now)? {
        WebhookEvent::Records(mut records) if records.jobs.len() == 1 => Ok(records.jobs.remove(0)),
        _ => Err(InvalidPayload(
            "the job did not normalise to one job".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::BuildStatus;

    fn now() -> DateTime<Utc> {
        "2026-11-30T12:00:00Z".parse().unwrap()
    }

    fn repo() -> RepoPath {
        RepoPath::parse("group/app").unwrap()
    }

    fn only_pipeline(event: WebhookEvent) -> Pipeline {
        match event {
            WebhookEvent::Records(mut records) => records.pipelines.remove(0),
            other => panic!("{other:?}"),
        }
    }

    fn only_job(event: WebhookEvent) -> Job {
        match event {
            WebhookEvent::Records(mut records) => records.jobs.remove(0),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_gitlab_api_pipeline_is_the_record_its_pipeline_hook_makes() {
        let hook = json!({
            "object_kind": "pipeline",
            "object_attributes": {
                "id": 31, "iid": 3, "name": "nightly", "ref": "main", "sha": "bcbb5ec3",
                "status": "failed", "source": "push", "created_at": "2026-11-29 10:00:00 UTC",
                "finished_at": "2026-11-29 10:06:40 UTC", "duration": 400,
                "url": "https://gitlab.example.com/group/app/-/pipelines/31"
            },
            "project": {"id": 7, "path_with_namespace": "group/app",
                         "web_url": "https://gitlab.example.com/group/app"},
            "user": {"id": 1, "name": "Administrator", "username": "root",
                     "avatar_url": "https://gitlab.example.com/a.png"}
        });
        // The single-pipeline endpoint's answer for the same pipeline.
        let api = json!({
            "id": 31, "iid": 3, "project_id": 7, "name": "nightly", "sha": "bcbb5ec3",
            "ref": "main", "status": "failed", "source": "push",
            "created_at": "2026-11-29T10:00:00.000Z", "updated_at": "2026-11-29T10:06:40.000Z",
            "finished_at": "2026-11-29T10:06:40.000Z", "duration": 400,
            "web_url": "https://gitlab.example.com/group/app/-/pipelines/31",
            "user": {"id": 1, "name": "Administrator", "username": "root",
                     "avatar_url": "https://gitlab.example.com/a.png"}
        });
        let from_hook = only_pipeline(gitlab::parse("Pipeline Hook", &hook, now()).unwrap());
        let from_api = gitlab_pipeline(&repo(), &api, now()).unwrap();
        assert_eq!(from_api, from_hook);
        assert_eq!(from_api.status, BuildStatus::Failure);
        assert_eq!(from_api.project_id.as_deref(), Some("7"));
    }

    #[test]
    fn a_listed_gitlab_pipeline_without_user_or_times_still_normalises() {
        let api = json!({
            "id": 47, "iid": 12, "project_id": 7, "status": "running", "source": "push",
            "ref": "new-pipeline", "sha": "a91957a8",
            "created_at": "2026-11-29T08:10:00.000Z", "updated_at": "2026-11-29T08:11:00.000Z",
            "web_url": "https://gitlab.example.com/group/app/-/pipelines/47"
        });
        let pipeline = gitlab_pipeline(&repo(), &api, now()).unwrap();
        assert_eq!(pipeline.pipeline_id, "47");
        assert_eq!(pipeline.status, BuildStatus::Running);
        assert_eq!(pipeline.user, None);
        assert_eq!(pipeline.finished_at, None);
        assert_eq!(
            pipeline.url.as_deref(),
            Some("https://gitlab.example.com/group/app/-/pipelines/47")
        );
    }

    #[test]
    fn a_gitlab_api_job_is_the_record_its_job_hook_makes() {
        let hook = json!({
            "object_kind": "build", "ref": "main", "sha": "bcbb5ec3",
            "build_id": 1234, "build_name": "rspec", "build_stage": "test",
            "build_status": "failed", "build_created_at": "2026-11-29 10:00:00 UTC",
            "build_started_at": "2026-11-29 10:01:00 UTC",
            "build_finished_at": "2026-11-29 10:05:00 UTC", "build_duration": 240.5,
            "build_queued_duration": 60.0, "build_failure_reason": "script_failure",
            "build_allow_failure": false, "pipeline_id": 31, "project_id": 7,
            "runner": {"id": 9, "description": "shared-runner-1", "tags": ["docker"]},
            "user": {"id": 1, "name": "Administrator", "username": "root"},
            "project": {"id": 7, "path_with_namespace": "group/app",
                         "web_url": "https://gitlab.example.com/group/app"}
        });
        let api = json!({
            "id": 1234, "name": "rspec", "stage": "test", "status": "failed", "ref": "main",
            "tag": false, "allow_failure": false, "failure_reason": "script_failure",
            "created_at": "2026-11-29T10:00:00.000Z", "started_at": "2026-11-29T10:01:00.000Z",
            "finished_at": "2026-11-29T10:05:00.000Z", "duration": 240.5,
            "queued_duration": 60.0, "tag_list": ["docker"],
            "commit": {"id": "bcbb5ec3", "title": "Fix"},
            "pipeline": {"id": 31, "project_id": 7, "ref": "main", "sha": "bcbb5ec3",
                          "status": "failed"},
            "runner": {"id": 9, "description": "shared-runner-1", "active": true},
            "user": {"id": 1, "name": "Administrator", "username": "root"},
            "web_url": "https://gitlab.example.com/group/app/-/jobs/1234"
        });
        let from_hook = only_job(gitlab::parse("Job Hook", &hook, now()).unwrap());
        let from_api = gitlab_job(&repo(), &api, now()).unwrap();
        assert_eq!(from_api, from_hook);
        assert_eq!(
            from_api.url.as_deref(),
            Some("https://gitlab.example.com/group/app/-/jobs/1234")
        );
        assert_eq!(from_api.failure_reason.as_deref(), Some("script_failure"));
    }

    #[test]
    fn a_gitlab_job_without_required_fields_is_refused_with_the_reason() {
        let error = gitlab_job(&repo(), &json!({"id": 5, "status": "failed"}), now()).unwrap_err();
        assert!(error.0.contains("build_name"), "{error}");
        assert!(gitlab_pipeline(&repo(), &json!([1]), now()).is_err());
    }

    #[test]
    fn github_api_runs_and_jobs_are_the_records_their_webhooks_make() {
        let run = json!({
            "id": 30433642, "name": "Build", "head_branch": "main", "head_sha": "acb5820c",
            "event": "push", "status": "completed", "conclusion": "failure", "run_attempt": 2,
            "created_at": "2026-11-29T10:00:00Z", "updated_at": "2026-11-29T10:04:00Z",
            "run_started_at": "2026-11-29T10:00:05Z",
            "html_url": "https://github.com/octo/app/actions/runs/30433642",
            "actor": {"id": 1, "login": "octocat"},
            "repository": {"id": 1296269, "full_name": "octo/app"}
        });
        let repo = RepoPath::parse("octo/app").unwrap();
        let webhook = json!({"action": "completed", "workflow_run": run,
                             "repository": {"id": 1296269, "full_name": "octo/app"}});
        let from_hook = only_pipeline(github::parse("workflow_run", &webhook, now()).unwrap());
        let from_api = github_run(&repo, &run, now()).unwrap();
        assert_eq!(from_api, from_hook);
        assert_eq!(from_api.attempt, 2);

        let job = json!({
            "id": 399444496, "run_id": 30433642, "run_attempt": 2, "name": "test",
            "workflow_name": "Build", "head_branch": "main", "head_sha": "acb5820c",
            "status": "completed", "conclusion": "failure",
            "created_at": "2026-11-29T10:00:10Z", "started_at": "2026-11-29T10:00:20Z",
            "completed_at": "2026-11-29T10:03:00Z", "labels": ["ubuntu-latest"],
            "runner_id": 2, "runner_name": "GitHub Actions 2",
            "steps": [{"name": "Run tests", "status": "completed", "conclusion": "failure",
                       "number": 3}],
            "html_url": "https://github.com/octo/app/actions/runs/30433642/job/399444496"
        });
        let webhook = json!({"action": "completed", "workflow_job": job,
                             "repository": {"id": 1296269, "full_name": "octo/app"}});
        let from_hook = only_job(github::parse("workflow_job", &webhook, now()).unwrap());
        let from_api = github_job(&repo, Some("1296269"), &job, now()).unwrap();
        assert_eq!(from_api, from_hook);
        assert_eq!(from_api.failing_step.as_deref(), Some("Run tests"));
    }

    #[test]
    fn a_github_run_without_its_repository_takes_the_one_listed() {
        let run = json!({"id": 5, "status": "in_progress", "head_branch": "main",
                         "created_at": "2026-11-29T10:00:00Z"});
        let pipeline = github_run(&RepoPath::parse("octo/app").unwrap(), &run, now()).unwrap();
        assert_eq!(pipeline.repo.as_str(), "octo/app");
        assert_eq!(pipeline.status, BuildStatus::Running);
    }
}
