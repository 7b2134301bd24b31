//! `GET /api/jobtrace` over traces stored by log push.

use buildlore_tests::{TestStack, fixtures, keys};
use http::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn stored_traces_are_served_raw_clean_sliced_and_tailed() {
    let stack = TestStack::new().await;
    // The pipeline hook tells us GitLab project 1 is gitlab-org/gitlab-test and job 378 failed.
    let (status, _) = stack
        .gitlab_hook(
            "Pipeline Hook",
            &fixtures::bytes("webhooks/gitlab/pipeline_hook.json"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let log = "\u{1b}[0Ksection_start:1:build_script\r\u{1b}[0KRunning tests\n\u{1b}[31mFAILED\u{1b}[0m test_a\r\nsummary: 1 failed\n";
    let push = json!({"provider": "gitlab", "project": "gitlab-org/gitlab-test", "job_id": 378,
                      "job_name": "test-build", "status": "failed", "log": log});
    let (status, body) = stack
        .post_json("/api/ingest/log", keys::INGEST, &push)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    let (status, raw) = stack.get("/api/jobtrace?projectId=1&jobId=378").await;
    assert_eq!(status, StatusCode::OK, "{raw}");
    assert_eq!(raw["trace"], log);
    assert_eq!(raw["complete"], true);
    assert_eq!(raw["lossless"], true);
    let (_, by_path) = stack
        .get("/api/jobtrace?projectId=gitlab-org%2Fgitlab-test&jobId=378")
        .await;
    assert_eq!(by_path, raw);

    let (_, clean) = stack
        .get("/api/jobtrace?projectId=1&jobId=378&clean=true")
        .await;
    assert_eq!(
        clean["trace"],
        "Running tests\nFAILED test_a\nsummary: 1 failed\n"
    );
    let (_, tail) = stack
        .get("/api/jobtrace?projectId=1&jobId=378&clean=true&tail=1")
        .await;
    assert_eq!(tail["trace"], "summary: 1 failed\n");
    let (_, sliced) = stack
        .get("/api/jobtrace?projectId=1&jobId=378&offset=4&limit=5")
        .await;
    assert_eq!(sliced["trace"], &log[4..9]);
    assert_eq!(sliced["total_length"], log.len());

    for (path, expected) in [
        ("/api/jobtrace?projectId=1&jobId=999", StatusCode::NOT_FOUND),
        (
            "/api/jobtrace?projectId=77&jobId=378",
            StatusCode::NOT_FOUND,
        ),
        ("/api/jobtrace?projectId=1", StatusCode::BAD_REQUEST),
        ("/api/jobtrace?jobId=378", StatusCode::BAD_REQUEST),
        // Any printable id is a job id (log pushes store under such ids); this one is not stored.
        (
            "/api/jobtrace?projectId=1&jobId=..%2F..",
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/jobtrace?projectId=1&jobId=37%0A8",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/jobtrace?projectId=1&jobId=378&tail=-1",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/jobtrace?provider=github&jobId=1",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/jobtrace?provider=bitbucket&jobId=1",
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (status, body) = stack.get(path).await;
        assert_eq!(status, expected, "{path}: {body}");
    }
    let (status, _, _) = stack
        .call(
            Method::GET,
            "/api/jobtrace?projectId=1&jobId=378",
            Some(keys::INGEST),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn long_logs_are_paged_and_tailed_from_the_end() {
    let stack = TestStack::new().await;
    let log: String = (0..150_000)
        .map(|n| format!("line {n:08} of a long build log\n"))
        .collect();
    assert!(log.len() > 4 * 1024 * 1024);
    let push = json!({"provider": "gitlab", "project": "big/app", "job_id": 1,
                      "job_name": "build", "status": "success", "log": log});
    let (status, body) = stack
        .post_json("/api/ingest/log", keys::INGEST, &push)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    let (_, first) = stack.get("/api/jobtrace?projectId=big%2Fapp&jobId=1").await;
    let page = first["trace"].as_str().unwrap().len();
    assert_eq!(page, 4 * 1024 * 1024);
    assert_eq!(first["next_offset"], page);
    assert_eq!(first["total_length"], log.len());
    let (_, second) = stack
        .get(&format!(
            "/api/jobtrace?projectId=big%2Fapp&jobId=1&offset={page}"
        ))
        .await;
    assert_eq!(second["next_offset"], serde_json::Value::Null);
    let joined = format!(
        "{}{}",
        first["trace"].as_str().unwrap(),
        second["trace"].as_str().unwrap()
    );
    assert!(joined == log, "two pages rebuild the log");
    let (_, tail) = stack
        .get("/api/jobtrace?projectId=big%2Fapp&jobId=1&tail=2")
        .await;
    assert_eq!(
        tail["trace"],
        "line 00149998 of a long build log\nline 00149999 of a long build log\n"
    );
}
