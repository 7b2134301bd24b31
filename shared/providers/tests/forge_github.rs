//! The GitHub side of the forge client against a fake GitHub speaking its REST formats.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed expectation is the test failing"
)]

mod support;

use buildlore_core::provider_actions::{
    ActionError, CommentError, Forge, ForgeProject, PageCursor, PipelineHistory, ProviderAction,
    ProviderActions, ReviewComments, ReviewThread, TokenScope,
};
use buildlore_core::repo::RepoPath;
use buildlore_core::review_comment::{CommentedPipeline, failing_comment, passing_again_comment};
use buildlore_core::status::BuildStatus;
use buildlore_providers::forge::ForgeClient;
use serde_json::json;
use support::*;

fn project() -> ForgeProject {
    ForgeProject {
        forge: Forge::GitHub,
        path: RepoPath::parse("octo/app").unwrap(),
        id: Some("1296269".into()),
    }
}

fn client(fake: &Fake) -> ForgeClient {
    ForgeClient::new(config("http://127.0.0.1:9", &fake.base)).unwrap()
}

fn assert_github_headers(seen: &Seen) {
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {GITHUB_TOKEN}").as_str())
    );
    assert_eq!(seen.header("accept"), Some("application/vnd.github+json"));
    assert_eq!(seen.header("x-github-api-version"), Some("2022-11-28"));
    assert_eq!(seen.header("private-token"), None);
}

fn run(id: u64, conclusion: Option<&str>) -> serde_json::Value {
    json!({
        "id": id, "name": "CI", "head_branch": "main", "head_sha": format!("sha{id}"),
        "event": "push", "status": if conclusion.is_some() { "completed" } else { "in_progress" },
        "conclusion": conclusion, "run_attempt": 1,
        "created_at": "2026-11-29T08:00:00Z", "updated_at": "2026-11-29T08:04:00Z",
        "run_started_at": "2026-11-29T08:00:03Z",
        "html_url": format!("https://github.com/octo/app/actions/runs/{id}"),
        "repository": {"id": 1296269, "full_name": "octo/app"}
    })
}

#[tokio::test]
async fn workflow_runs_are_read_over_several_pages_following_the_link_header() {
    let github = fake(move |seen, _| {
        assert_eq!(seen.path, "/repos/octo/app/actions/runs");
        let page: u64 = seen.param("page").unwrap().parse().unwrap();
        let base = "https://api.github.com/repositories/1296269/actions/runs?created=%3E%3D2026-11-23T00%3A00%3A00Z&per_page=100";
        let link = match page {
            1 => format!("<{base}&page=2>; rel=\"next\", <{base}&page=3>; rel=\"last\""),
            2 => format!("<{base}&page=1>; rel=\"prev\", <{base}&page=3>; rel=\"next\", <{base}&page=3>; rel=\"last\", <{base}&page=1>; rel=\"first\""),
            _ => format!("<{base}&page=2>; rel=\"prev\", <{base}&page=1>; rel=\"first\""),
        };
        json_with(
            200,
            json!({"total_count": 3, "workflow_runs": [run(page, if page == 2 { None } else { Some("failure") })]}),
            &[("link", link)],
        )
    })
    .await;
    let client = client(&github);
    let since = "2026-11-23T00:00:00Z".parse().unwrap();
    let mut cursor = Some(PageCursor::FIRST);
    let mut runs = Vec::new();
    while let Some(page) = cursor {
        let answer = client
            .pipelines_page(&project(), since, page)
            .await
            .unwrap();
        runs.extend(answer.items);
        cursor = answer.next;
    }
    let ids: Vec<&str> = runs.iter().map(|r| r.pipeline_id.as_str()).collect();
    assert_eq!(ids, ["1", "2", "3"]);
    assert_eq!(runs[0].status, BuildStatus::Failure);
    assert_eq!(runs[1].status, BuildStatus::Running);
    assert_eq!(runs[0].project_id.as_deref(), Some("1296269"));
    let seen = github.seen();
    assert_eq!(seen.len(), 3);
    for request in &seen {
        assert_github_headers(request);
        assert_eq!(
            request.param("created").as_deref(),
            Some(">=2026-11-23T00:00:00Z")
        );
        assert_eq!(request.param("per_page").as_deref(), Some("100"));
    }
}

#[tokio::test]
async fn a_runs_jobs_become_the_records_workflow_job_webhooks_make() {
    let github = fake(|seen, _| {
        assert_eq!(seen.path, "/repos/octo/app/actions/runs/30433642/jobs");
        assert_eq!(seen.param("filter").as_deref(), Some("latest"));
        json(200, json!({"total_count": 1, "jobs": [{
            "id": 399444496, "run_id": 30433642, "run_attempt": 1, "name": "test",
            "workflow_name": "CI", "head_branch": "main", "head_sha": "acb5820c",
            "status": "completed", "conclusion": "failure",
            "created_at": "2026-11-29T08:00:10Z", "started_at": "2026-11-29T08:00:20Z",
            "completed_at": "2026-11-29T08:03:00Z", "labels": ["ubuntu-latest"],
            "steps": [{"name": "Run tests", "status": "completed", "conclusion": "failure", "number": 3}],
            "html_url": "https://github.com/octo/app/actions/runs/30433642/job/399444496"
        }]}))
    })
    .await;
    let page = client(&github)
        .jobs_page(&project(), "30433642", PageCursor::FIRST)
        .await
        .unwrap();
    assert_eq!(page.next, None);
    let job = &page.items[0];
    assert_eq!(job.job_id, "399444496");
    assert_eq!(job.pipeline_id.as_deref(), Some("30433642"));
    assert_eq!(job.project_id.as_deref(), Some("1296269"));
    assert_eq!(job.failing_step.as_deref(), Some("Run tests"));
    assert_eq!(job.status, BuildStatus::Failure);
}

#[tokio::test]
async fn the_primary_rate_limit_is_waited_out_when_it_resets_soon() {
    let github = fake(|_, nth| {
        if nth == 0 {
            // GitHub's primary rate limit: 403 with nothing remaining until the reset.
            return json_with(
                403,
                json!({"message": "API rate limit exceeded"}),
                &[
                    ("x-ratelimit-limit", "5000".into()),
                    ("x-ratelimit-remaining", "0".into()),
                    ("x-ratelimit-reset", (unix_now() + 1).to_string()),
                ],
            );
        }
        json(200, json!({"total_count": 0, "workflow_runs": []}))
    })
    .await;
    let since = "2026-11-23T00:00:00Z".parse().unwrap();
    let page = client(&github)
        .pipelines_page(&project(), since, PageCursor::FIRST)
        .await
        .unwrap();
    assert!(page.items.is_empty());
    assert_eq!(github.seen().len(), 2);
}

#[tokio::test]
async fn rerun_and_cancel_hit_the_actions_endpoints() {
    let github = fake(|seen, _| {
        assert_eq!(seen.method, "POST");
        assert_github_headers(seen);
        match seen.path.as_str() {
            "/repos/octo/app/actions/jobs/399444496/rerun" => empty(201),
            "/repos/octo/app/actions/runs/30433642/rerun-failed-jobs" => json(201, json!({})),
            "/repos/octo/app/actions/runs/30433642/cancel" => empty(202),
            "/repos/octo/app/actions/runs/1/cancel" => json(
                409,
                json!({"message": "Cannot cancel a workflow run that is completed."}),
            ),
            "/repos/octo/app/actions/runs/2/rerun-failed-jobs" => json(
                403,
                json!({"message": "Resource not accessible by integration"}),
            ),
            "/repos/octo/app/actions/runs/404/cancel" => json(404, json!({"message": "Not Found"})),
            other => panic!("unexpected {other}"),
        }
    })
    .await;
    let client = client(&github);
    let project = project();
    let job = client
        .act(
            &project,
            &ProviderAction::RetryJob {
                job_id: "399444496".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!((job.resulting_id.as_str(), job.status), ("399444496", None));
    client
        .act(
            &project,
            &ProviderAction::RetryPipeline {
                pipeline_id: "30433642".into(),
            },
        )
        .await
        .unwrap();
    client
        .act(
            &project,
            &ProviderAction::CancelPipeline {
                pipeline_id: "30433642".into(),
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        client.act(&project, &ProviderAction::CancelPipeline { pipeline_id: "1".into() }).await,
        Err(ActionError::NotPossible(message)) if message.contains("409") && message.contains("completed")
    ));
    assert_eq!(
        client
            .act(
                &project,
                &ProviderAction::RetryPipeline {
                    pipeline_id: "2".into()
                }
            )
            .await,
        Err(ActionError::Rejected {
            status: 403,
            needs: TokenScope::GitHubActionsWrite
        })
    );
    assert_eq!(
        client
            .act(
                &project,
                &ProviderAction::CancelPipeline {
                    pipeline_id: "404".into()
                }
            )
            .await,
        Err(ActionError::NotFound)
    );
    let before = github.seen().len();
    assert!(matches!(
        client
            .act(
                &project,
                &ProviderAction::CancelJob {
                    job_id: "399444496".into()
                }
            )
            .await,
        Err(ActionError::Unsupported(_))
    ));
    assert_eq!(
        github.seen().len(),
        before,
        "an unsupported action sends nothing"
    );
    assert_eq!(before, 6);
}

#[tokio::test]
async fn a_pull_request_comment_is_created_then_patched() {
    let github = fake(|seen, _| {
        assert_github_headers(seen);
        match (seen.method.as_str(), seen.path.as_str()) {
            ("POST", "/repos/octo/app/issues/7/comments") => json(
                201,
                json!({
                    "id": 1_500_000_001u64, "body": seen.json()["body"],
                    "html_url": "https://github.com/octo/app/pull/7#issuecomment-1500000001"
                }),
            ),
            ("PATCH", "/repos/octo/app/issues/comments/1500000001") => json(
                200,
                json!({
                    "id": 1_500_000_001u64, "body": seen.json()["body"],
                    "html_url": "https://github.com/octo/app/pull/7#issuecomment-1500000001"
                }),
            ),
            ("PATCH", "/repos/octo/app/issues/comments/5") => {
                json(404, json!({"message": "Not Found"}))
            }
            ("POST", "/repos/octo/app/issues/8/comments") => json(
                403,
                json!({"message": "Resource not accessible by integration"}),
            ),
            other => panic!("unexpected {other:?}"),
        }
    })
    .await;
    let client = client(&github);
    let thread = |number| ReviewThread {
        project: project(),
        number,
    };
    let pipeline = CommentedPipeline {
        forge: Forge::GitHub,
        pipeline_id: "30433642",
        url: Some("https://github.com/octo/app/actions/runs/30433642"),
        sha: Some("acb5820c"),
        dashboard_origin: "https://buildlore.example.com",
    };
    let failing = failing_comment(&pipeline, &[]);
    let posted = client.create_comment(&thread(7), &failing).await.unwrap();
    assert_eq!(posted.id, "1500000001");
    assert_eq!(
        posted.url.as_deref(),
        Some("https://github.com/octo/app/pull/7#issuecomment-1500000001")
    );
    let passing = passing_again_comment(&pipeline);
    client
        .update_comment(&thread(7), &posted.id, &passing)
        .await
        .unwrap();
    let seen = github.seen();
    assert_eq!(seen[0].json(), json!({"body": failing.as_str()}));
    assert_eq!(seen[1].method, "PATCH");
    assert_eq!(seen[1].json(), json!({"body": passing.as_str()}));
    // A deleted comment is NotFound, so the caller posts a new one.
    assert_eq!(
        client.update_comment(&thread(7), "5", &passing).await,
        Err(CommentError::NotFound)
    );
    assert_eq!(
        client.create_comment(&thread(8), &failing).await,
        Err(CommentError::Rejected {
            status: 403,
            needs: TokenScope::GitHubPullRequestsWrite
        })
    );
}
