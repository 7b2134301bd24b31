//! The log fetch keeps its retry behaviour now that it goes through the crate's retry helper.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed expectation is the test failing"
)]

mod support;

use buildlore_providers::{FetchError, ProviderClient};
use serde_json::json;
use support::*;

#[tokio::test]
async fn a_429_storm_is_waited_out_and_a_long_rate_limit_is_reported() {
    let gitlab = fake(|seen, nth| {
        assert_eq!(seen.header("private-token"), Some(GITLAB_TOKEN));
        match seen.path.as_str() {
            "/api/v4/projects/group%2Fapp/jobs/5" | "/api/v4/projects/group%2Fapp/jobs/6" => {
                json(200, json!({"id": 5, "status": "failed"}))
            }
            "/api/v4/projects/group%2Fapp/jobs/5/trace" if nth < 2 => json_with(
                429,
                json!({"message": "Retry later"}),
                &[("retry-after", "0".into())],
            ),
            "/api/v4/projects/group%2Fapp/jobs/5/trace" => {
                axum::response::IntoResponse::into_response("line 1\nline 2\n")
            }
            "/api/v4/projects/group%2Fapp/jobs/6/trace" => json_with(
                429,
                json!({"message": "Retry later"}),
                &[
                    ("ratelimit-remaining", "0".into()),
                    ("ratelimit-reset", (unix_now() + 3_600).to_string()),
                ],
            ),
            other => panic!("unexpected {other}"),
        }
    })
    .await;
    let client = ProviderClient::new(config(&gitlab.base, "http://127.0.0.1:9")).unwrap();
    let log = client.gitlab_trace("group/app", "5").await.unwrap();
    assert_eq!(log.bytes, b"line 1\nline 2\n");
    assert!(log.complete);
    let traces = |job: &str| {
        gitlab
            .seen()
            .iter()
            .filter(|s| s.path == format!("/api/v4/projects/group%2Fapp/jobs/{job}/trace"))
            .count()
    };
    assert_eq!(traces("5"), 3);
    match client.gitlab_trace("group/app", "6").await {
        Err(FetchError::RateLimited(seconds)) => assert!(seconds > 3_500, "{seconds}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(traces("6"), 1);
}
