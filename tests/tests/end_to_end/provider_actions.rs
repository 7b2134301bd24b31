//! Retry and cancel through buildlore against fake GitLab and GitHub servers that answer as the
//! providers document: the right call with the token, the provider's answer passed on, every
//! attempt (refusals too) in the audit list with the key's id and never the key; and a
//! repository's opt-ins.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use buildlore_providers::Url;
use buildlore_tests::fake_server::serve;
use buildlore_tests::{TestStack, keys};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

const GITLAB_TOKEN: &str = "glpat-actions-test-token-0001";
const GITHUB_TOKEN: &str = "ghp_actionstesttoken000000000000000001";

#[derive(Default)]
struct Fake {
    /// (method, path, the token header it carried)
    calls: Mutex<Vec<(String, String, String)>>,
}

impl Fake {
    fn note(&self, method: &str, path: String, headers: &HeaderMap, token_header: &str) {
        let token = headers
            .get(token_header)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string();
        self.calls
            .lock()
            .unwrap()
            .push((method.to_string(), path, token));
    }

    fn calls(&self) -> Vec<(String, String, String)> {
        self.calls.lock().unwrap().clone()
    }
}

type Shared = State<Arc<Fake>>;

/// GitLab's `POST /projects/:id/jobs/:job_id/retry` answers 201 with the new job; a job that
/// cannot be retried answers 403 `{"message": "403 Forbidden - Job is not retryable"}`.
async fn gitlab_job_retry(
    State(fake): Shared,
    Path((project, job)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    fake.note(
        "POST",
        format!("/projects/{project}/jobs/{job}/retry"),
        &headers,
        "private-token",
    );
    if job == "13" {
        return (
            StatusCode::FORBIDDEN,
            axum::Json(json!({"message": "403 Forbidden - Job is not retryable"})),
        )
            .into_response();
    }
    let new_id: u64 = job.parse::<u64>().unwrap() + 1000;
    (
        StatusCode::CREATED,
        axum::Json(json!({"id": new_id, "name": "test", "status": "pending", "stage": "test"})),
    )
        .into_response()
}

async fn gitlab_pipeline_cancel(
    State(fake): Shared,
    Path((project, pipeline)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    fake.note(
        "POST",
        format!("/projects/{project}/pipelines/{pipeline}/cancel"),
        &headers,
        "private-token",
    );
    (
        StatusCode::OK,
        axum::Json(json!({"id": pipeline.parse::<u64>().unwrap(), "status": "canceled"})),
    )
        .into_response()
}

/// GitHub's re-run endpoints answer 201 with no body.
async fn github_rerun_failed(
    State(fake): Shared,
    Path((owner, repo, run)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> StatusCode {
    fake.note(
        "POST",
        format!("/repos/{owner}/{repo}/actions/runs/{run}/rerun-failed-jobs"),
        &headers,
        "authorization",
    );
    StatusCode::CREATED
}

async fn fake_providers() -> (Arc<Fake>, u16) {
    let fake = Arc::new(Fake::default());
    let router = Router::new()
        .route(
            "/api/v4/projects/{project}/jobs/{job}/retry",
            post(gitlab_job_retry),
        )
        .route(
            "/api/v4/projects/{project}/pipelines/{pipeline}/cancel",
            post(gitlab_pipeline_cancel),
        )
        .route(
            "/repos/{owner}/{repo}/actions/runs/{run}/rerun-failed-jobs",
            post(github_rerun_failed),
        )
        .with_state(fake.clone());
    let port = serve(router).await;
    (fake, port)
}

async fn stack_for(port: u16, with_tokens: bool) -> TestStack {
    TestStack::with_config(move |config| {
        let url = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        config.providers.gitlab_base = url.clone();
        config.providers.github_api = url;
        if with_tokens {
            config.providers.gitlab_token = Some(GITLAB_TOKEN.into());
            config.providers.github_token = Some(GITHUB_TOKEN.into());
        }
    })
    .await
}

async fn admin_post(stack: &TestStack, path: &str) -> (StatusCode, Value) {
    let (status, _, body) = stack
        .call(Method::POST, path, Some(keys::ADMIN), None)
        .await;
    (status, body)
}

async fn audit_list(stack: &TestStack, query: &str) -> Value {
    let (status, _, body) = stack
        .call(
            Method::GET,
            &format!("/api/v1/admin/actions{query}"),
            Some(keys::ADMIN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn actions_reach_the_provider_and_every_attempt_is_audited() {
    let (fake, port) = fake_providers().await;
    let stack = stack_for(port, true).await;

    // GitLab: a job retried makes a new job.
    let (status, body) = admin_post(&stack, "/api/v1/jobs/gitlab/group%2Fapp/41/retry").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["done"], true);
    assert_eq!(body["action"]["action"], "retry_job");
    assert_eq!(body["action"]["outcome"]["resulting_id"], "1041");
    assert_eq!(body["action"]["outcome"]["provider_status"], "pending");

    // A job GitLab will not retry: its refusal, said as a conflict, and recorded.
    let (status, body) = admin_post(&stack, "/api/v1/jobs/gitlab/group%2Fapp/13/retry").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["done"], false);
    assert!(
        body["error"].as_str().unwrap().contains("not retryable"),
        "{body}"
    );

    // A pipeline cancelled.
    let (status, body) =
        admin_post(&stack, "/api/v1/pipelines/gitlab/group%2Fapp/700/cancel").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["action"]["outcome"]["provider_status"], "canceled");
    assert_eq!(body["action"]["outcome"]["status"], "CANCELED");

    // GitHub: a run's failed jobs re-run in place.
    let (status, body) =
        admin_post(&stack, "/api/v1/pipelines/github/octo%2Fshop/9001/retry").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["action"]["outcome"]["resulting_id"], "9001");

    let calls = fake.calls();
    assert_eq!(
        calls,
        vec![
            (
                "POST".into(),
                "/projects/group/app/jobs/41/retry".into(),
                GITLAB_TOKEN.into()
            ),
            (
                "POST".into(),
                "/projects/group/app/jobs/13/retry".into(),
                GITLAB_TOKEN.into()
            ),
            (
                "POST".into(),
                "/projects/group/app/pipelines/700/cancel".into(),
                GITLAB_TOKEN.into()
            ),
            (
                "POST".into(),
                "/repos/octo/shop/actions/runs/9001/rerun-failed-jobs".into(),
                format!("Bearer {GITHUB_TOKEN}")
            ),
        ]
    );

    // The audit list: newest first, who (the key's id, never the key), what, the answer.
    let audit = audit_list(&stack, "").await;
    let actions = audit["actions"].as_array().unwrap();
    let described: Vec<&str> = actions
        .iter()
        .map(|action| action["description"].as_str().unwrap())
        .collect();
    assert_eq!(
        described,
        [
            "retry the failed jobs of pipeline 9001",
            "cancel pipeline 700",
            "retry job 13",
            "retry job 41",
        ]
    );
    assert_eq!(actions[0]["provider"], "github");
    assert_eq!(actions[0]["repo"], "octo/shop");
    assert_eq!(actions[2]["outcome"], Value::Null);
    assert!(
        actions[2]["error"]
            .as_str()
            .unwrap()
            .contains("not retryable")
    );
    let key_id = actions[3]["actor"]["key_id"].as_str().unwrap();
    assert_eq!(key_id.len(), 16);
    assert_eq!(actions[3]["actor"]["kind"], "key");
    assert!(!audit.to_string().contains(keys::ADMIN));
    assert!(!audit.to_string().contains(GITLAB_TOKEN));

    // Paged: two, then the rest from `next`.
    let first = audit_list(&stack, "?limit=2").await;
    assert_eq!(first["actions"].as_array().unwrap().len(), 2);
    let next = first["next"].as_str().unwrap();
    let rest = audit_list(&stack, &format!("?limit=2&before={}", urlencode(next))).await;
    let rest: Vec<&str> = rest["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|action| action["description"].as_str().unwrap())
        .collect();
    assert_eq!(rest, ["retry job 13", "retry job 41"]);
}

fn urlencode(text: &str) -> String {
    buildlore_providers::percent_encode(text)
}

#[tokio::test]
async fn without_a_token_nothing_is_sent_and_the_answer_says_what_to_configure() {
    let (fake, port) = fake_providers().await;
    let stack = stack_for(port, false).await;
    let (status, body) = admin_post(&stack, "/api/v1/jobs/gitlab/group%2Fapp/41/retry").await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{body}");
    assert!(body["error"].as_str().unwrap().contains("token"), "{body}");
    assert!(fake.calls().is_empty());

    // Bad targets: never sent.
    for (path, expected) in [
        (
            "/api/v1/jobs/gitlab/group%2Fapp/not-a-number/retry",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/jobs/jenkins/group%2Fapp/41/retry",
            StatusCode::BAD_REQUEST,
        ),
        // A numeric project no webhook introduced.
        ("/api/v1/jobs/gitlab/4242/41/cancel", StatusCode::NOT_FOUND),
    ] {
        let (status, body) = admin_post(&stack, path).await;
        assert_eq!(status, expected, "{path}: {body}");
    }
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn repo_settings_are_off_by_default_and_change_field_by_field() {
    let stack = TestStack::new().await;
    let path = "/api/v1/repos/group%2Fapp/settings";
    let (status, body) = stack.get(path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["settings"],
        json!({"merge_request_comments": false, "auto_retry": false, "auto_retry_daily_cap": 5})
    );
    let put = |body: Value, key: &'static str| {
        let stack = &stack;
        async move {
            let (status, _, answer) = stack.call(Method::PUT, path, Some(key), Some(&body)).await;
            (status, answer)
        }
    };
    let (status, answer) = put(json!({"auto_retry": true}), keys::ADMIN).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, answer) = put(json!({"auto_retry_daily_cap": 2}), keys::ADMIN).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // Invalid changes are refused whole; a read key may not change anything.
    let (status, answer) = put(
        json!({"merge_request_comments": true, "auto_retry_daily_cap": 0}),
        keys::ADMIN,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("auto_retry_daily_cap")
    );
    let (status, _) = put(json!({"auto_retry": false}), keys::READ).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The raw repo path (Leliel's form) names the same settings.
    let (_, body) = stack.get("/api/v1/repos/group/app/settings").await;
    assert_eq!(
        body["settings"],
        json!({"merge_request_comments": false, "auto_retry": true, "auto_retry_daily_cap": 2})
    );
}
