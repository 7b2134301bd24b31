//! Drop-in compatibility: what users switching from Exlogare, Leliel, gitlab-summary and older
//! GitLab versions send works unchanged, and a few data paths that orphaned or double-counted.

use buildlore_tests::{TestStack, fixtures, keys};
use http::StatusCode;
use serde_json::{Value, json};

/// A GitLab 15-era job hook: no `project` object, the path only in `repository.homepage`.
fn gitlab_15_job_hook() -> Value {
    let mut hook = fixtures::json("webhooks/gitlab/job_hook.cleaned.json");
    let object = hook.as_object_mut().expect("an object");
    object.remove("project");
    hook["repository"]["homepage"] = json!("https://gitlab.example.com/legacy/group/service");
    hook["project_id"] = json!(4242);
    hook
}

#[tokio::test]
async fn job_hooks_without_a_project_object_are_recorded_under_the_repository_path() {
    let stack = TestStack::new().await;
    let (status, body) = stack
        .gitlab_hook(
            "Job Hook",
            &serde_json::to_vec(&gitlab_15_job_hook()).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "processed");
    let job = stack
        .record_json("legacy/group/service", "JOB#gitlab#1977")
        .await
        .expect("the job is stored under the path of repository.homepage");
    assert_eq!(job["project_id"], "4242");

    // Without even a repository: a valid GitLab event we cannot use is acknowledged with the
    // reason (GitLab disables hooks that keep failing), and nothing is written.
    let mut pathless = gitlab_15_job_hook();
    pathless.as_object_mut().unwrap().remove("repository");
    let before = stack.items().await;
    let (status, body) = stack
        .gitlab_hook("Build Hook", &serde_json::to_vec(&pathless).unwrap())
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "ignored");
    assert!(body["reason"].as_str().unwrap().contains("path"), "{body}");
    assert_eq!(stack.items().await, before);
}

#[tokio::test]
async fn exlogare_s_provider_name_is_gitlab() {
    let stack = TestStack::new().await;
    let push = |provider: &str| {
        json!({"provider": provider, "project": "team/app", "job_id": "71", "job_name": "test",
               "status": "failed", "log": "$ make\nerror: boom\n"})
    };
    for provider in ["gitlab_ci", "gitlab"] {
        let (status, body) = stack
            .post_json("/api/ingest/log", keys::INGEST, &push(provider))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["job_key"], "gitlab/team/app/71", "{body}");
    }
    // One job, readable where gitlab-summary's clients look for it.
    let (status, trace) = stack
        .get("/api/jobtrace?projectId=team%2Fapp&jobId=71")
        .await;
    assert_eq!(status, StatusCode::OK, "{trace}");
    assert!(trace["trace"].as_str().unwrap().contains("error: boom"));
}
