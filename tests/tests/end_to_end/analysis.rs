//! Repository analysis against figures computed by hand.

use buildlore_tests::{TestStack, keys};
use chrono::{Duration, Utc};
use http::StatusCode;
use serde_json::json;

#[tokio::test]
async fn analysis_of_a_known_history() {
    let stack = TestStack::new().await;
    let now = Utc::now();
    let builds = [
        ("m1", "main", "success", 6 * 60, 60_000),
        ("m2", "main", "failed", 5 * 60, 60_000),
        ("m3", "main", "failed", 4 * 60, 60_000),
        ("m4", "main", "success", 2 * 60, 60_000),
        ("d1", "dev", "success", 3 * 60, 120_000),
        ("d2", "dev", "failed", 60, 120_000),
        ("p1", "main", "success", 10 * 24 * 60, 60_000),
        ("p2", "main", "success", 10 * 24 * 60 - 5, 60_000),
    ];
    for (id, branch, status, minutes_ago, duration) in builds {
        let (code, body) = stack
            .post_build(&json!({"build_id": id, "repo": "an/app", "branch": branch, "status": status,
                                "duration_ms": duration, "timestamp": (now - Duration::minutes(minutes_ago)).to_rfc3339()}))
            .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
    }
    // The same job on the same commit failed once and passed once: a flaky candidate.
    for (job_id, status) in [(1, "failed"), (2, "success")] {
        let push = json!({"provider": "gitlab", "project": "an/app", "job_id": job_id, "job_name": "unit",
                          "status": status, "commit_sha": "abc", "log": "..."});
        let (code, _, body) = stack
            .call(
                http::Method::POST,
                "/api/ingest/log",
                Some(keys::INGEST),
                Some(&push),
            )
            .await;
        assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    }

    let (status, analysis) = stack.get("/api/v1/repos/an%2Fapp/analysis?since=7d").await;
    assert_eq!(status, StatusCode::OK, "{analysis}");
    assert_eq!(analysis["total_runs"], 6);
    assert_eq!(analysis["success_rate"], 50.0);
    assert_eq!(analysis["previous_success_rate"], 100.0);
    assert_eq!(analysis["success_rate_change"], -50.0);
    assert_eq!(analysis["failures_by_branch"], json!({"main": 2, "dev": 1}));
    assert_eq!(analysis["duration_p50"], 60.0);
    assert_eq!(analysis["duration_p90"], 120.0);
    // main failed at m2's end and recovered at m4's end: three hours.
    assert_eq!(analysis["mttr"]["branch"], "main");
    assert_eq!(analysis["mttr"]["recoveries"], 1);
    assert_eq!(analysis["mttr"]["mean_seconds"], 3.0 * 3600.0);
    assert_eq!(analysis["red_branches"], json!(["dev"]));
    assert_eq!(
        analysis["flaky_candidates"],
        json!([{"job": "unit", "sha": "abc", "failed": 1, "passed": 1}])
    );
    assert_eq!(analysis["top_failures"], json!([]));

    let (status, _) = stack.get("/api/v1/repos/nobody%2Fhere/analysis").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for bad in [
        "/api/v1/repos/a%2F%2Fb/analysis",
        "/api/v1/repos/an%2Fapp/analysis?since=soon",
    ] {
        let (status, body) = stack.get(bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}
