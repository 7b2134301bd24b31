//! The automatic retry, end to end: a repository that opted in has a job lost to its runner
//! retried once through a fake GitLab (never twice, however often the analysis is processed),
//! a test failure is never retried, and both analyses say why.

use aws_lambda_events::event::sqs::SqsMessage;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use buildlore_api::worker::handle_batch;
use buildlore_providers::Url;
use buildlore_tests::fake_server::serve;
use buildlore_tests::{TestStack, fixtures, keys};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

const TOKEN: &str = "glpat-auto-retry-test-000001";
const PROJECT: &str = "gitlab-org/gitlab-test";

const RUNNER_LOST_LOG: &str = "Running with gitlab-runner 16.5.0 (853330f9)\n  on docker-runner-7 abc123\nPreparing the \"docker\" executor\nUsing Docker executor with image ruby:3.2 ...\n$ bundle exec rake spec\nERROR: Job failed (system failure): error during connect: Post \"http://docker:2375/v1.43/containers/create\": dial tcp: lookup docker on 10.0.0.2:53: no such host\n";

const TEST_FAILURE_LOG: &str = "Running with gitlab-runner 16.5.0 (853330f9)\n$ bundle exec rspec\n..F\n\nFailures:\n\n  1) Cart#total adds the prices\n     Failure/Error: expect(cart.total).to eq(30)\n\n       expected: 30\n            got: 20\n\n     # ./spec/cart_spec.rb:12:in `block (2 levels) in <top (required)>'\n\nFinished in 0.01 seconds (files took 0.1 seconds to load)\n3 examples, 1 failure\n\nFailed examples:\n\nrspec ./spec/cart_spec.rb:10 # Cart#total adds the prices\nERROR: Job failed: exit code 1\n";

#[derive(Default)]
struct FakeGitLab {
    retries: Mutex<Vec<String>>,
}

async fn trace(Path((_, job)): Path<(String, String)>) -> String {
    if job == "1977" || job == "5000" {
        RUNNER_LOST_LOG.to_string()
    } else {
        TEST_FAILURE_LOG.to_string()
    }
}

/// GitLab's `GET /projects/:id/jobs/:job_id`: the log fetch asks whether the job finished.
async fn job(Path((_, job)): Path<(String, u64)>) -> axum::Json<Value> {
    axum::Json(json!({"id": job, "status": "failed"}))
}

async fn retry(
    State(fake): State<Arc<FakeGitLab>>,
    Path((project, job)): Path<(String, String)>,
    headers: HeaderMap,
) -> (StatusCode, axum::Json<Value>) {
    assert_eq!(headers["private-token"], TOKEN);
    fake.retries
        .lock()
        .unwrap()
        .push(format!("/projects/{project}/jobs/{job}/retry"));
    (
        StatusCode::CREATED,
        axum::Json(json!({"id": 5000, "name": "test", "status": "pending"})),
    )
}

/// A GitLab Job Hook for `job_id`, failed for `reason`.
fn failed_job_hook(job_id: u64, name: &str, reason: &str) -> Vec<u8> {
    let mut hook = fixtures::json("webhooks/gitlab/job_hook.cleaned.json");
    hook["build_id"] = json!(job_id);
    hook["build_name"] = json!(name);
    hook["build_status"] = json!("failed");
    hook["build_failure_reason"] = json!(reason);
    hook["build_started_at"] = json!("2021-02-23 02:42:00 UTC");
    hook["build_finished_at"] = json!("2021-02-23 02:45:00 UTC");
    hook["build_duration"] = json!(180.0);
    serde_json::to_vec(&hook).unwrap()
}

fn analysis_message(job_id: &str, name: &str) -> SqsMessage {
    let mut message = SqsMessage::default();
    message.message_id = Some(format!("analyse-{job_id}"));
    message.body = Some(
        json!({
            "version": 1, "provider": "gitlab", "repo": PROJECT, "job_id": job_id,
            "pipeline_id": "2366", "job_name": name, "requested_at": "2021-02-23T02:45:01Z",
            "origin": "webhook",
        })
        .to_string(),
    );
    message
}

async fn analysis_of(stack: &TestStack, job_id: &str) -> Value {
    let (status, body) = stack
        .get(&format!(
            "/api/ai/cache?projectId=gitlab-org%2Fgitlab-test&jobId={job_id}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn an_infrastructure_failure_is_retried_once_and_a_test_failure_never() {
    let fake = Arc::new(FakeGitLab::default());
    let router = Router::new()
        .route("/api/v4/projects/{project}/jobs/{job}", get(job))
        .route("/api/v4/projects/{project}/jobs/{job}/trace", get(trace))
        .route("/api/v4/projects/{project}/jobs/{job}/retry", post(retry))
        .with_state(fake.clone());
    let port = serve(router).await;
    let stack = TestStack::with_analysis_queue_and_config(move |config| {
        config.providers.gitlab_base = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        config.providers.gitlab_token = Some(TOKEN.into());
    })
    .await;

    // Not opted in: analysed, not retried, and the analysis says nothing about retries.
    let (status, body) = stack
        .gitlab_hook(
            "Job Hook",
            &failed_job_hook(1977, "test", "runner_system_failure"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    handle_batch(&stack.state, vec![analysis_message("1977", "test")]).await;
    assert!(fake.retries.lock().unwrap().is_empty());
    assert_eq!(analysis_of(&stack, "1977").await["auto_retry"], Value::Null);

    let (status, _, answer) = stack
        .call(
            Method::PUT,
            "/api/v1/repos/gitlab-org%2Fgitlab-test/settings",
            Some(keys::ADMIN),
            Some(&json!({"auto_retry": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    // Opted in: the runner's failure is retried, once, however often the message comes.
    for _ in 0..3 {
        let response = handle_batch(&stack.state, vec![analysis_message("1977", "test")]).await;
        assert!(response.batch_item_failures.is_empty());
    }
    assert_eq!(
        *fake.retries.lock().unwrap(),
        ["/projects/380/jobs/1977/retry"]
    );
    let analysis = analysis_of(&stack, "1977").await;
    assert_eq!(analysis["auto_retry"]["retried"], true, "{analysis}");
    assert_eq!(analysis["auto_retry"]["new_job_id"], "5000");
    assert!(
        analysis["auto_retry"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("Retried automatically because GitLab reports a runner system failure"),
        "{analysis}"
    );

    // The retry (a new job of the same name in the same pipeline) fails the same way: not
    // retried again.
    stack
        .gitlab_hook(
            "Job Hook",
            &failed_job_hook(5000, "test", "runner_system_failure"),
        )
        .await;
    handle_batch(&stack.state, vec![analysis_message("5000", "test")]).await;
    assert_eq!(fake.retries.lock().unwrap().len(), 1);
    let analysis = analysis_of(&stack, "5000").await;
    assert_eq!(analysis["auto_retry"]["retried"], false, "{analysis}");
    assert!(
        analysis["auto_retry"]["reason"]
            .as_str()
            .unwrap()
            .contains("already retried once"),
        "{analysis}"
    );

    // A test failure in the same repository: not retried, and the analysis says why.
    stack
        .gitlab_hook(
            "Job Hook",
            &failed_job_hook(1978, "rspec", "script_failure"),
        )
        .await;
    handle_batch(&stack.state, vec![analysis_message("1978", "rspec")]).await;
    assert_eq!(fake.retries.lock().unwrap().len(), 1);
    let analysis = analysis_of(&stack, "1978").await;
    assert_eq!(analysis["auto_retry"]["retried"], false, "{analysis}");
    assert!(
        analysis["auto_retry"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("Not retried automatically"),
        "{analysis}"
    );

    // The retry is in the audit list, by the automatic retry, with its reason.
    let (status, _, audit) = stack
        .call(
            Method::GET,
            "/api/v1/admin/actions",
            Some(keys::ADMIN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let actions = audit["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 1, "{audit}");
    assert_eq!(actions[0]["actor"]["kind"], "auto_retry");
    assert_eq!(actions[0]["outcome"]["resulting_id"], "5000");
    assert!(
        actions[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("Retried automatically because GitLab reports a runner system failure"),
        "{audit}"
    );
}
