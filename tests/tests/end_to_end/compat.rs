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

#[tokio::test]
async fn leliel_s_client_may_put_the_repo_path_in_the_url_as_it_is() {
    let stack = TestStack::new().await;
    let (status, body) = stack
        .post_build(&json!({"build_id": "b-1", "repo": "my-org/my-repo", "branch": "main", "status": "failed"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for path in [
        "/api/v1/repos/my-org/my-repo/analysis",
        "/api/v1/repos/my-org%2Fmy-repo/analysis",
    ] {
        let (status, analysis) = stack.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {analysis}");
    }
    let (status, build) = stack.get("/api/v1/repos/my-org/my-repo/builds/b-1").await;
    assert_eq!(status, StatusCode::OK, "{build}");
    assert_eq!(build["build_id"], "b-1");
}

#[tokio::test]
async fn a_numeric_project_id_names_the_same_trace_as_the_path_and_a_push_keeps_the_ending() {
    let stack = TestStack::new().await;
    // A webhook names GitLab project 1 (gitlab-org/gitlab-test) and reports job 378 failed,
    // job 376 succeeded.
    let (status, _) = stack
        .gitlab_hook(
            "Pipeline Hook",
            &fixtures::bytes("webhooks/gitlab/pipeline_hook.json"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let part = |range: &str, body: &str| {
        http::Request::builder()
            .method(http::Method::PATCH)
            .uri("/api/v1/jobs/gitlab/1/1/trace")
            .header("authorization", format!("Bearer {}", keys::INGEST))
            .header("content-range", range)
            .body(axum::body::Body::from(body.to_string()))
            .unwrap()
    };
    let (status, _, body) = stack.send(part("0-5", "hello\n")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, trace) = stack
        .get("/api/jobtrace?projectId=gitlab-org%2Fgitlab-test&jobId=1")
        .await;
    assert_eq!(status, StatusCode::OK, "{trace}");
    assert_eq!(trace["trace"], "hello\n");
    let request = http::Request::builder()
        .uri("/api/v1/jobs/gitlab/gitlab-org%2Fgitlab-test/1/trace")
        .header("authorization", format!("Bearer {}", keys::READ))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(stack.app.clone(), request)
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the part sent by id is the path's trace"
    );
    // An id no webhook named is not a place to put a trace.
    let unknown = http::Request::builder()
        .method(http::Method::PATCH)
        .uri("/api/v1/jobs/gitlab/987654/1/trace")
        .header("authorization", format!("Bearer {}", keys::INGEST))
        .header("content-range", "0-1")
        .body(axum::body::Body::from("x"))
        .unwrap();
    let (status, _, body) = stack.send(unknown).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // A push that says `failed` for a job GitLab reported as a success keeps the success.
    let (status, body) = stack
        .post_json(
            "/api/ingest/log",
            keys::INGEST,
            &json!({"provider": "gitlab", "project": "gitlab-org/gitlab-test", "job_id": "376",
                    "job_name": "build-image", "status": "failed", "log": "$ build\nerror\n"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["analysis_queued"], false, "{body}");
    let job = stack
        .record_json("gitlab-org/gitlab-test", "JOB#gitlab#376")
        .await
        .unwrap();
    assert_eq!(job["status"], "SUCCESS", "{job}");

    // A page of nothing would loop a paging client forever.
    let (status, body) = stack
        .get("/api/jobtrace?projectId=gitlab-org%2Fgitlab-test&jobId=376&limit=0")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn an_analysis_request_for_a_recorded_job_uses_the_record() {
    let stack = TestStack::with_analysis_queue().await;
    let (status, _) = stack
        .gitlab_hook(
            "Pipeline Hook",
            &fixtures::bytes("webhooks/gitlab/pipeline_hook.json"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let log = "$ make\nsrc/a.c:3: error: 'x' undeclared\nThe command \"make\" exited with 2.\n";
    // Job 376 succeeded: nothing to analyse, nothing stored.
    let (status, body) = stack
        .post_json(
            "/api/ai/analyse",
            keys::ADMIN,
            &json!({"projectId": 1, "jobId": 376, "jobName": "whatever", "log": log}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // Job 378 failed: analysed under its recorded name, not the one the request gives.
    let (status, body) = stack
        .post_json(
            "/api/ai/analyse",
            keys::ADMIN,
            &json!({"projectId": 1, "jobId": 378, "jobName": "whatever", "log": log}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["jobName"], "test-build", "{body}");
    assert_eq!(body["pipelineId"], 31, "{body}");
}

#[tokio::test]
async fn only_configured_origins_may_call_from_their_pages() {
    let stack = TestStack::with_config(|config| {
        config.cors_allowed_origins = vec!["https://dash.example.com".into()];
    })
    .await;
    let preflight = |origin: &str| {
        http::Request::builder()
            .method(http::Method::OPTIONS)
            .uri("/api/pipelines/summary")
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let allowed =
        tower::ServiceExt::oneshot(stack.app.clone(), preflight("https://dash.example.com"))
            .await
            .unwrap();
    assert_eq!(
        allowed
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap()),
        Some("https://dash.example.com")
    );
    let other = tower::ServiceExt::oneshot(stack.app.clone(), preflight("https://evil.example"))
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    // And without configuration, no origin at all.
    let plain = TestStack::new().await;
    let none = tower::ServiceExt::oneshot(plain.app.clone(), preflight("https://dash.example.com"))
        .await
        .unwrap();
    assert!(none.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn avatars_come_only_from_allowed_hosts_and_only_as_images() {
    use axum::response::IntoResponse;
    use axum::routing::get;
    let png: &'static [u8] = b"\x89PNG\r\n\x1a\n fake image bytes";
    let router = axum::Router::new()
        .route(
            "/a.png",
            get(move || async move { ([("content-type", "image/png")], png).into_response() }),
        )
        .route(
            "/x.svg",
            get(|| async {
                (
                    [("content-type", "image/svg+xml")],
                    "<svg onload=alert(1)/>",
                )
                    .into_response()
            }),
        )
        .route(
            "/big.png",
            get(|| async { ([("content-type", "image/png")], vec![0u8; 2 << 20]).into_response() }),
        )
        .route(
            "/moved",
            get(|| async {
                (
                    StatusCode::FOUND,
                    [("location", "https://evil.example/a.png")],
                )
                    .into_response()
            }),
        );
    let port = buildlore_tests::fake_server::serve(router).await;
    let stack = TestStack::with_config(move |config| {
        config.providers.gitlab_base =
            buildlore_providers::Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
    })
    .await;
    let avatar = |path: &str| {
        http::Request::builder()
            .uri(format!(
                "/api/avatar?url={}",
                buildlore_providers::percent_encode(&format!("http://127.0.0.1:{port}{path}"))
            ))
            .header("authorization", format!("Bearer {}", keys::READ))
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let response = tower::ServiceExt::oneshot(stack.app.clone(), avatar("/a.png"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert!(
        response.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(&bytes[..], png);
    for (path, expected) in [
        ("/x.svg", StatusCode::BAD_GATEWAY),
        ("/big.png", StatusCode::BAD_GATEWAY),
        ("/moved", StatusCode::BAD_GATEWAY),
    ] {
        let response = tower::ServiceExt::oneshot(stack.app.clone(), avatar(path))
            .await
            .unwrap();
        assert_eq!(response.status(), expected, "{path}");
    }
    for (url, expected) in [
        ("https%3A%2F%2Fevil.example%2Fa.png", StatusCode::FORBIDDEN),
        ("file%3A%2F%2F%2Fetc%2Fpasswd", StatusCode::BAD_REQUEST),
    ] {
        let (status, body) = stack.get(&format!("/api/avatar?url={url}")).await;
        assert_eq!(status, expected, "{url}: {body}");
    }
}

#[tokio::test]
async fn groups_are_derived_from_the_projects_seen() {
    let stack = TestStack::new().await;
    for repo in ["team/app", "team/infra/terraform", "other/x"] {
        let (status, body) = stack
            .post_build(
                &json!({"build_id": "1", "repo": repo, "branch": "main", "status": "success"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, team) = stack.get("/api/groups/team").await;
    assert_eq!(status, StatusCode::OK, "{team}");
    assert_eq!(team["full_path"], "team");
    assert_eq!(team["id"], Value::Null);
    assert_eq!(team["projects"].as_array().map(Vec::len), Some(2), "{team}");
    let (status, subgroups) = stack.get("/api/groups/team/subgroups").await;
    assert_eq!(status, StatusCode::OK, "{subgroups}");
    assert_eq!(subgroups[0]["full_path"], "team/infra", "{subgroups}");
    let (status, nested) = stack.get("/api/groups/team%2Finfra").await;
    assert_eq!(status, StatusCode::OK, "{nested}");
    for path in [
        "/api/groups/nobody",
        "/api/groups/123",
        "/api/groups/parent/7",
    ] {
        let (status, body) = stack.get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert!(body["error"].is_string());
    }
}
