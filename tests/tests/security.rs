//! The holes an attacker's probe found, each closed: webhook deliveries deduplicated on id and
//! body with one winner under concurrency, headers checked before bodies are read, and input
//! that used to slip through (empty event names, ancient timestamps, gzip with garbage behind
//! it, ids that are not whole numbers, bytes that are not UTF-8, too short system prompts,
//! GitHub repos of three segments) refused with a 4xx that writes nothing.

use axum::body::Body;
use buildlore_core::compression::gzip;
use buildlore_core::webhooks::secret::signature_header;
use buildlore_tests::stack::secrets;
use buildlore_tests::{TestStack, fixtures, keys};
use http::{Method, Request, StatusCode};
use serde_json::{Value, json};

const WORKFLOW_RUN: &str = "webhooks/github/workflow_run/completed.payload.json";

#[tokio::test]
async fn a_reused_delivery_id_with_another_signed_body_is_processed() {
    let stack = TestStack::new().await;
    let payload = fixtures::bytes(WORKFLOW_RUN);
    let (status, first) = stack.github_hook("workflow_run", "d-1", &payload).await;
    assert_eq!(
        (status, first["status"].as_str()),
        (StatusCode::OK, Some("processed"))
    );
    // The same id, a different (validly signed) body: not a duplicate.
    let mut other: Value = serde_json::from_slice(&payload).unwrap();
    other["workflow_run"]["id"] = json!(987_654_321_u64);
    let other = serde_json::to_vec(&other).unwrap();
    let (status, second) = stack.github_hook("workflow_run", "d-1", &other).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["status"], "processed", "{second}");
    assert_eq!(second["results"][0]["result"], "created", "{second}");
    // The same id and body again: a duplicate, nothing written.
    let before = stack.items().await;
    let (_, third) = stack.github_hook("workflow_run", "d-1", &other).await;
    assert_eq!(third["status"], "duplicate");
    assert_eq!(stack.items().await, before);
}

#[tokio::test]
async fn of_concurrent_copies_of_one_delivery_exactly_one_is_processed() {
    let stack = TestStack::new().await;
    let payload = fixtures::bytes(WORKFLOW_RUN);
    let copies = (0..20).map(|_| stack.github_hook("workflow_run", "d-concurrent", &payload));
    let answers = futures_util::future::join_all(copies).await;
    let processed = answers
        .iter()
        .filter(|(status, body)| *status == StatusCode::OK && body["status"] == "processed")
        .count();
    let duplicates = answers
        .iter()
        .filter(|(status, body)| *status == StatusCode::OK && body["status"] == "duplicate")
        .count();
    assert_eq!((processed, duplicates), (1, 19), "{answers:?}");
}

#[tokio::test]
async fn an_empty_event_header_is_a_bad_request() {
    let stack = TestStack::new().await;
    let payload = fixtures::bytes(WORKFLOW_RUN);
    let signature = signature_header(secrets::GITHUB.as_bytes(), &payload);
    let (status, body) = stack
        .deliver(
            "/webhooks/github",
            &[("x-github-event", ""), ("x-hub-signature-256", &signature)],
            payload,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().unwrap().contains("X-GitHub-Event"));
    let (status, _) = stack
        .deliver(
            "/webhooks/gitlab",
            &[("x-gitlab-event", " "), ("x-gitlab-token", secrets::GITLAB)],
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(stack.items().await.is_empty());
}

#[tokio::test]
async fn a_gitlab_token_is_checked_before_the_body_is_read() {
    let stack = TestStack::new().await;
    // Larger than any webhook body: read first, it would be 413; unread, it is 401.
    let huge = vec![b' '; 6 * 1024 * 1024];
    let (status, body) = stack
        .deliver(
            "/webhooks/gitlab",
            &[
                ("x-gitlab-event", "Pipeline Hook"),
                ("x-gitlab-token", "not-the-token"),
            ],
            huge,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn input_that_used_to_slip_through_is_refused_and_nothing_is_written() {
    let stack = TestStack::with_analysis_queue().await;
    // A build from year 0.
    let (status, body) = stack
        .post_build(
            &json!({"build_id": "1", "repo": "team/app", "branch": "main",
                            "status": "success", "timestamp": "0000-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("timestamp"),
        "{body}"
    );

    // A gzip push with garbage after the stream.
    let mut packed = gzip(b"$ make\nerror: boom\n");
    packed.extend_from_slice(b"trailing garbage");
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/ingest/log?provider=gitlab&project=team/app&job_id=5&job_name=build&status=failed")
        .header("authorization", format!("Bearer {}", keys::INGEST))
        .header("content-type", "text/plain")
        .header("content-encoding", "gzip")
        .body(Body::from(packed))
        .unwrap();
    let (status, _, body) = stack.send(request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().unwrap().contains("gzip"), "{body}");

    // Job ids that are bytes that are not UTF-8: refused, not decoded to the same U+FFFD.
    for job in ["%FF", "%C3%28"] {
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("/api/ingest/log?provider=gitlab&project=team/app&job_id={job}&job_name=build&status=failed"))
            .header("authorization", format!("Bearer {}", keys::INGEST))
            .header("content-type", "text/plain")
            .body(Body::from("$ make\nerror: boom\n"))
            .unwrap();
        let (status, _, body) = stack.send(request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{job}: {body}");
        assert!(body["error"].as_str().unwrap().contains("UTF-8"), "{body}");
    }

    // An id that is a float is no id.
    let (status, body) = stack
        .post_json(
            "/api/ai/analyse",
            keys::READ,
            &json!({"projectId": "team/app", "jobId": 1e308}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().unwrap().contains("jobId"), "{body}");

    // A GitHub repo is owner/name.
    let (status, body) = stack
        .get("/api/jobtrace?provider=github&repo=a/b/c&jobId=1")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("owner/name"),
        "{body}"
    );

    assert!(stack.items().await.is_empty(), "nothing is written");
    assert!(stack.queued_messages().await.is_empty());
}

#[tokio::test]
async fn a_system_prompt_must_say_something() {
    let stack = TestStack::new().await;
    for prompt in ["a", "  too short  "] {
        let (status, _, body) = stack
            .call(
                Method::PUT,
                "/api/ai/system-prompt",
                Some(keys::ADMIN),
                Some(&json!({"prompt": prompt, "version": 0})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }
    let (_, prompt) = stack.get("/api/ai/system-prompt").await;
    assert_eq!(prompt["version"], 0, "{prompt}");
}
