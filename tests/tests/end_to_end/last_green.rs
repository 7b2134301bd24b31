//! The last green log of each job on the emulator: kept from a pushed, an uploaded and a
//! fetched log of a successful job, one per job name and branch, and used by the analysis of
//! a later failure of the same job (same branch, else the default branch), which says so.

use axum::Router;
use axum::extract::Path;
use axum::response::IntoResponse;
use axum::routing::get;
use buildlore_api::worker;
use buildlore_core::RepoPath;
use buildlore_core::last_green::{GreenRun, GreenRunStore, JobOnBranch};
use buildlore_core::trace::TraceKey;
use buildlore_core::triage::{LastSuccess, triage, triage_with_last_success};
use buildlore_providers::Url;
use buildlore_tests::fake_server::serve;
use buildlore_tests::{TestStack, fixtures, keys};
use chrono::{TimeZone, Utc};
use http::{Method, StatusCode};
use serde_json::{Value, json};

/// A real pair: the failed run of a job and its last green run (CiDiff's cidiff_57).
const PAIR: &str = "log-pairs/breakages__cidiff_57";

fn failed_log() -> String {
    String::from_utf8_lossy(&fixtures::bytes(&format!("{PAIR}/fail.log"))).to_string()
}

fn green_log() -> String {
    String::from_utf8_lossy(&fixtures::bytes(&format!("{PAIR}/pass.log"))).to_string()
}

fn repo() -> RepoPath {
    RepoPath::parse("team/app").expect("a repo path")
}

async fn push(stack: &TestStack, job_id: u64, name: &str, branch: &str, status: &str, log: &str) {
    let body = json!({
        "provider": "gitlab", "project": "team/app", "pipeline_id": 7, "job_id": job_id,
        "job_name": name, "status": status, "branch": branch, "commit_sha": "abc",
        "pipeline_url": "https://gitlab.example.com/team/app/-/pipelines/7", "log": log,
    });
    let (code, answer) = stack
        .post_json("/api/ingest/log", keys::INGEST, &body)
        .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{answer}");
}

/// Runs the worker over the queue until it is empty, as the event source would.
async fn drain(stack: &TestStack) {
    let url = stack
        .state
        .config
        .analysis_queue_url
        .clone()
        .expect("a queue");
    for _ in 0..20 {
        if worker::poll_once(&stack.state, &url, 0, Some(0))
            .await
            .expect("the queue answers")
            == 0
        {
            return;
        }
    }
}

async fn analysis(stack: &TestStack, project: &str, job_id: u64) -> Value {
    let (code, body) = stack
        .get(&format!("/api/ai/cache?projectId={project}&jobId={job_id}"))
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    body
}

fn green_run(job_id: &str, branch: &str, at_second: u32) -> GreenRun {
    GreenRun {
        provider: "gitlab".into(),
        repo: repo(),
        job_name: "unit#tests".into(),
        branch: branch.into(),
        job_id: job_id.into(),
        succeeded_at: Utc
            .with_ymd_and_hms(2026, 11, 22, 8, 0, at_second)
            .single()
            .expect("a time"),
    }
}

#[tokio::test]
async fn one_green_run_is_kept_per_job_name_and_branch_and_a_later_one_wins() {
    let stack = TestStack::new().await;
    let store = &stack.state.store;
    let repo = repo();
    let job = |branch| JobOnBranch {
        provider: "gitlab",
        repo: &repo,
        job_name: "unit#tests",
        branch,
    };
    assert_eq!(store.green_run(&job("main")).await.unwrap(), None);
    assert!(
        store
            .keep_green_run(&green_run("10", "main", 10))
            .await
            .unwrap()
    );
    // A later run replaces it; an earlier one, delivered late, and the same one again do not.
    assert!(
        store
            .keep_green_run(&green_run("12", "main", 12))
            .await
            .unwrap()
    );
    assert!(
        !store
            .keep_green_run(&green_run("11", "main", 11))
            .await
            .unwrap()
    );
    assert!(
        !store
            .keep_green_run(&green_run("12", "main", 12))
            .await
            .unwrap()
    );
    assert_eq!(
        store.green_run(&job("main")).await.unwrap(),
        Some(green_run("12", "main", 12))
    );
    // Another branch, and a name and branch whose `#` could run into each other, are apart.
    assert!(
        store
            .keep_green_run(&green_run("20", "dev", 1))
            .await
            .unwrap()
    );
    let mut tricky = green_run("30", "tests#main", 1);
    tricky.job_name = "unit".into();
    assert!(store.keep_green_run(&tricky).await.unwrap());
    assert_eq!(
        store
            .green_run(&job("main"))
            .await
            .unwrap()
            .map(|run| run.job_id),
        Some("12".into())
    );
    assert_eq!(
        store
            .green_run(&job("dev"))
            .await
            .unwrap()
            .map(|run| run.job_id),
        Some("20".into())
    );
    let green_items = stack
        .items()
        .await
        .into_iter()
        .filter(|item| item.get("entity").and_then(|e| e.as_s().ok()) == Some(&"green_run".into()))
        .count();
    assert_eq!(green_items, 3, "one item per job name and branch");
}

#[tokio::test]
async fn a_pushed_green_log_is_compared_with_a_later_failure_on_another_branch() {
    let stack = TestStack::with_analysis_queue().await;
    let (failed, green) = (failed_log(), green_log());
    // The job succeeded on the default branch, then failed on a feature branch.
    push(&stack, 101, "build", "main", "success", &green).await;
    push(&stack, 102, "build", "feature/parser", "failed", &failed).await;
    // Another job of the repo failed too, with no green run of its own.
    push(&stack, 103, "lint", "main", "failed", &failed).await;
    drain(&stack).await;

    let compared = analysis(&stack, "team%2Fapp", 102).await;
    let note = &compared["last_success"];
    assert_eq!(note["used"], true, "{compared}");
    assert_eq!(note["job_id"], "101");
    assert_eq!(note["branch"], "main");
    assert!(
        note["detail"].as_str().unwrap().contains("job 101"),
        "{note}"
    );
    // The excerpt is the one the triage makes next to that green log.
    let expected =
        triage_with_last_success(failed.as_bytes(), &LastSuccess::from_log(green.as_bytes()));
    assert_eq!(compared["excerpt"], json!(expected.excerpt));
    assert_ne!(expected.excerpt, triage(failed.as_bytes()).excerpt);

    let alone = analysis(&stack, "team%2Fapp", 103).await;
    assert_eq!(alone["last_success"]["used"], false, "{alone}");
    assert!(
        alone["last_success"]["detail"]
            .as_str()
            .unwrap()
            .contains("no green run"),
        "{alone}"
    );
    assert_eq!(alone["excerpt"], json!(triage(failed.as_bytes()).excerpt));
    // The same failure keeps its fingerprint, compared or not.
    assert_eq!(compared["fingerprint"], alone["fingerprint"]);
}

/// A GitLab job hook for job `id` of `team/app`, named `build` on `main`.
fn job_hook(id: u64, status: &str) -> Vec<u8> {
    let mut hook = fixtures::json("webhooks/gitlab/job_hook.cleaned.json");
    hook["build_id"] = json!(id);
    hook["build_name"] = json!("build");
    hook["build_status"] = json!(status);
    hook["ref"] = json!("main");
    hook["build_finished_at"] = json!("2026-11-22 08:00:00 UTC");
    hook["project_name"] = json!("team/app");
    hook["project"]["path_with_namespace"] = json!("team/app");
    hook["project"]["name"] = json!("app");
    hook["repository"]["homepage"] = json!("https://gitlab.example.com/team/app");
    serde_json::to_vec(&hook).expect("serialises")
}

async fn upload(stack: &TestStack, job_id: u64, log: &str) {
    let bytes = log.as_bytes();
    let middle = bytes.len() / 2;
    for (start, part) in [(0, &bytes[..middle]), (middle, &bytes[middle..])] {
        let path = format!("/api/v1/jobs/gitlab/team%2Fapp/{job_id}/trace");
        let range = format!("{start}-{}", start + part.len());
        let request = http::Request::builder()
            .method(Method::PATCH)
            .uri(&path)
            .header("authorization", format!("Bearer {}", keys::INGEST))
            .header("content-range", range)
            .body(axum::body::Body::from(part.to_vec()))
            .expect("request");
        let (code, _, body) = stack.send(request).await;
        assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    }
}

async fn kept_green_job(stack: &TestStack, branch: &str) -> Option<String> {
    let repo = repo();
    let job = JobOnBranch {
        provider: "gitlab",
        repo: &repo,
        job_name: "build",
        branch,
    };
    stack
        .state
        .store
        .green_run(&job)
        .await
        .expect("the store answers")
        .map(|run| run.job_id)
}

#[tokio::test]
async fn an_uploaded_log_is_kept_whether_the_success_arrives_before_or_after_it() {
    let stack = TestStack::with_analysis_queue().await;
    let green = green_log();
    let (code, body) = stack
        .gitlab_hook("Job Hook", &job_hook(201, "running"))
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    // Uploaded while running: not green yet.
    upload(&stack, 201, &green).await;
    assert_eq!(kept_green_job(&stack, "main").await, None);
    // The success arrives after the log.
    stack
        .gitlab_hook("Job Hook", &job_hook(201, "success"))
        .await;
    assert_eq!(kept_green_job(&stack, "main").await.as_deref(), Some("201"));
    // A later job's success arrives first, then its log.
    let mut later = job_hook(202, "success");
    let mut hook: Value = serde_json::from_slice(&later).unwrap();
    hook["build_finished_at"] = json!("2026-11-22 09:00:00 UTC");
    later = serde_json::to_vec(&hook).unwrap();
    stack.gitlab_hook("Job Hook", &later).await;
    assert_eq!(kept_green_job(&stack, "main").await.as_deref(), Some("201"));
    upload(&stack, 202, &green).await;
    assert_eq!(kept_green_job(&stack, "main").await.as_deref(), Some("202"));

    // A failure of the job is compared with the latest green log.
    push(&stack, 203, "build", "main", "failed", &failed_log()).await;
    drain(&stack).await;
    let compared = analysis(&stack, "team%2Fapp", 203).await;
    assert_eq!(compared["last_success"]["used"], true, "{compared}");
    assert_eq!(compared["last_success"]["job_id"], "202");
}

#[tokio::test]
async fn a_fetched_log_of_a_successful_job_is_kept() {
    let green = green_log();
    let served = green.clone();
    let provider = Router::new()
        .route(
            "/api/v4/projects/{project}/jobs/{job}",
            get(|Path((_p, job)): Path<(String, u64)>| async move {
                format!(r#"{{"id": {job}, "status": "success"}}"#)
            }),
        )
        .route(
            "/api/v4/projects/{project}/jobs/{job}/trace",
            get(move || {
                let served = served.clone();
                async move { served.into_response() }
            }),
        );
    let port = serve(provider).await;
    let stack = TestStack::with_analysis_queue_and_config(move |config| {
        config.providers.gitlab_base =
            Url::parse(&format!("http://127.0.0.1:{port}/")).expect("url");
        config.providers.gitlab_token = Some("glpat-test-token".into());
    })
    .await;
    stack
        .gitlab_hook("Job Hook", &job_hook(301, "success"))
        .await;
    let (code, body) = stack
        .get("/api/jobtrace?projectId=team%2Fapp&jobId=301")
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["complete"], true);
    assert_eq!(kept_green_job(&stack, "main").await.as_deref(), Some("301"));
    let stored = stack
        .state
        .store
        .recorded_job(&TraceKey {
            provider: "gitlab".into(),
            repo: repo(),
            job_id: "301".into(),
        })
        .await
        .unwrap()
        .expect("the job is recorded");
    assert_eq!(stored.name, "build");
}
