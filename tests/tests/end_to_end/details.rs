//! Pipeline details: the pipeline with its user, commit and jobs.

use buildlore_tests::{TestStack, fixtures};
use http::StatusCode;
use serde_json::json;

#[tokio::test]
async fn details_of_a_gitlab_pipeline_by_id_or_path() {
    let stack = TestStack::new().await;
    let (status, _) = stack
        .gitlab_hook(
            "Pipeline Hook",
            &fixtures::bytes("webhooks/gitlab/pipeline_hook.json"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // A job hook for the same pipeline adds to (and never duplicates) its jobs.
    let mut job = fixtures::json("webhooks/gitlab/job_hook.cleaned.json");
    job["pipeline_id"] = json!(31);
    job["project"]["path_with_namespace"] = json!("gitlab-org/gitlab-test");
    let (status, _) = stack
        .gitlab_hook("Job Hook", &serde_json::to_vec(&job).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, details) = stack.get("/api/pipelines/1/details/31").await;
    assert_eq!(status, StatusCode::OK, "{details}");
    // gitlab-summary's flat shape: integer ids, GitLab's status words.
    assert_eq!(details["pipeline_id"], 31);
    assert_eq!(details["project_id"], 1);
    assert_eq!(details["status"], "success");
    assert_eq!(details["normalised_status"], "SUCCESS");
    assert_eq!(details["ref"], "master");
    assert_eq!(details["source"], "merge_request_event");
    assert_eq!(details["duration"], 63.0);
    assert_eq!(details["created_at"], "2016-08-12T15:23:28.000Z");
    assert_eq!(
        details["user"],
        json!({"id": 1, "username": "root", "name": "Administrator",
               "avatar_url": "http://www.gravatar.com/avatar/e32bd13e2add097461cb96824b7a829c?s=80&d=identicon"})
    );
    assert_eq!(
        details["commit"]["id"],
        "bcbb5ec396a2c0f828686f14fac9b80b780504f2"
    );
    assert_eq!(details["commit"]["short_id"], "bcbb5ec3");
    assert_eq!(details["commit"]["title"], "test");
    assert_eq!(details["commit"]["author_name"], "User");
    assert_eq!(details["commit"]["author_email"], "user@gitlab.com");
    assert!(details["commit"]["created_at"].is_string(), "{details}");
    let jobs = details["jobs"].as_array().expect("jobs");
    let mut ids: Vec<u64> = jobs.iter().map(|j| j["id"].as_u64().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, [376, 377, 378, 379, 380, 1977]);
    let failed = jobs.iter().find(|j| j["id"] == 378).unwrap();
    assert_eq!(failed["name"], "test-build");
    assert_eq!(failed["stage"], "test");
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["duration"], 17.0);
    assert_eq!(failed["failure_reason"], "script_failure");
    assert_eq!(failed["started_at"], "2016-08-12T15:26:12.000Z");

    let (status, by_path) = stack
        .get("/api/pipelines/gitlab-org%2Fgitlab-test/details/31")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_path, details);

    for (path, expected) in [
        ("/api/pipelines/999/details/31", StatusCode::NOT_FOUND),
        ("/api/pipelines/1/details/32", StatusCode::NOT_FOUND),
        ("/api/pipelines/abc/details/31", StatusCode::BAD_REQUEST),
        ("/api/pipelines/1/details/x1", StatusCode::BAD_REQUEST),
        (
            "/api/pipelines/1/details/31?provider=no%20such",
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (status, body) = stack.get(path).await;
        assert_eq!(status, expected, "{path}: {body}");
        assert!(body["error"].is_string());
    }
}
