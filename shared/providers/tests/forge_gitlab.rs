//! The GitLab side of the forge client against a fake GitLab speaking its REST formats.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed expectation is the test failing"
)]

mod support;

use buildlore_core::provider_actions::{
    ActionError, CommentError, Forge, ForgeProject, HistoryError, PageCursor, PipelineHistory,
    ProviderAction, ProviderActions, ReviewComments, ReviewThread, TokenScope,
};
use buildlore_core::repo::RepoPath;
use buildlore_core::review_comment::{CommentedPipeline, passing_again_comment};
use buildlore_core::status::BuildStatus;
use buildlore_providers::forge::ForgeClient;
use serde_json::json;
use support::*;

fn project(id: Option<&str>) -> ForgeProject {
    ForgeProject {
        forge: Forge::GitLab,
        path: RepoPath::parse("group/sub/app").unwrap(),
        id: id.map(str::to_string),
    }
}

fn client(fake: &Fake) -> ForgeClient {
    ForgeClient::new(config(&fake.base, "http://127.0.0.1:9")).unwrap()
}

fn api_pipeline(id: u64, status: &str) -> serde_json::Value {
    json!({
        "id": id, "iid": id % 100 + 1, "project_id": 7, "sha": format!("sha{id}"), "ref": "main",
        "status": status, "source": "push",
        "created_at": "2026-11-29T08:00:00.000Z", "updated_at": "2026-11-29T08:05:00.000Z",
        "web_url": format!("https://gitlab.example.com/group/sub/app/-/pipelines/{id}")
    })
}

#[tokio::test]
async fn pipelines_are_read_page_by_page_following_x_next_page() {
    let gitlab = fake(|seen, _| {
        assert!(seen.path.ends_with("/pipelines"), "{}", seen.path);
        let page: u64 = seen.param("page").unwrap().parse().unwrap();
        let next = if page < 3 {
            (page + 1).to_string()
        } else {
            String::new()
        };
        let mut items = vec![
            api_pipeline(100 + page * 2, "success"),
            api_pipeline(101 + page * 2, "failed"),
        ];
        if page == 2 {
            // A pipeline that cannot be normalised is skipped, not fatal.
            items.push(json!({"id": 999, "status": "no-such-status"}));
        }
        json_with(
            200,
            json!(items),
            &[
                ("x-next-page", next),
                ("x-page", page.to_string()),
                ("x-total-pages", "3".into()),
                ("x-per-page", "100".into()),
            ],
        )
    })
    .await;
    let client = client(&gitlab);
    let since = "2026-11-23T00:00:00Z".parse().unwrap();
    let mut cursor = Some(PageCursor::FIRST);
    let mut pipelines = Vec::new();
    let mut skipped = Vec::new();
    while let Some(page) = cursor {
        let answer = client
            .pipelines_page(&project(None), since, page)
            .await
            .unwrap();
        pipelines.extend(answer.items);
        skipped.extend(answer.skipped);
        cursor = answer.next;
    }
    let ids: Vec<&str> = pipelines.iter().map(|p| p.pipeline_id.as_str()).collect();
    assert_eq!(ids, ["102", "103", "104", "105", "106", "107"]);
    assert_eq!(pipelines[1].status, BuildStatus::Failure);
    assert_eq!(pipelines[0].repo.as_str(), "group/sub/app");
    assert_eq!(pipelines[0].provider, "gitlab");
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert!(skipped[0].contains("999"), "{skipped:?}");

    let seen = gitlab.seen();
    assert_eq!(seen.len(), 3);
    for request in &seen {
        // The project by its encoded path, the token in PRIVATE-TOKEN and nowhere else.
        assert_eq!(request.path, "/api/v4/projects/group%2Fsub%2Fapp/pipelines");
        assert_eq!(request.header("private-token"), Some(GITLAB_TOKEN));
        assert_eq!(request.header("authorization"), None);
        assert_eq!(
            request.param("updated_after").as_deref(),
            Some("2026-11-23T00:00:00Z")
        );
        assert_eq!(request.param("per_page").as_deref(), Some("100"));
        assert_eq!(request.param("order_by").as_deref(), Some("id"));
        assert_eq!(request.param("sort").as_deref(), Some("asc"));
    }
}

#[tokio::test]
async fn a_pipelines_jobs_follow_the_link_header_and_become_job_records() {
    let gitlab = fake(|seen, _| {
        let page: u64 = seen.param("page").unwrap().parse().unwrap();
        let job = json!({
            "id": 1000 + page, "name": format!("rspec {page}/2"), "stage": "test",
            "status": if page == 1 { "failed" } else { "success" },
            "failure_reason": if page == 1 { json!("script_failure") } else { json!(null) },
            "ref": "main", "allow_failure": false,
            "created_at": "2026-11-29T08:00:00.000Z", "started_at": "2026-11-29T08:00:10.000Z",
            "finished_at": "2026-11-29T08:03:10.000Z", "duration": 180.2,
            "pipeline": {"id": 31, "project_id": 7, "sha": "bcbb5ec3", "ref": "main"},
            "web_url": format!("https://gitlab.example.com/group/sub/app/-/jobs/{}", 1000 + page)
        });
        // Only a Link header, as GitLab sends when it leaves out the X- headers.
        let link = if page == 1 {
            vec![("link", "<https://gitlab.example.com/api/v4/projects/7/pipelines/31/jobs?page=2&per_page=100>; rel=\"next\", <https://gitlab.example.com/api/v4/projects/7/pipelines/31/jobs?page=1&per_page=100>; rel=\"first\"".to_string())]
        } else {
            vec![("link", "<https://gitlab.example.com/api/v4/projects/7/pipelines/31/jobs?page=1&per_page=100>; rel=\"first\"".to_string())]
        };
        json_with(200, json!([job]), &link)
    })
    .await;
    let client = client(&gitlab);
    let first = client
        .jobs_page(&project(Some("7")), "31", PageCursor::FIRST)
        .await
        .unwrap();
    assert_eq!(first.next, Some(PageCursor { page: 2 }));
    let second = client
        .jobs_page(&project(Some("7")), "31", first.next.unwrap())
        .await
        .unwrap();
    assert_eq!(second.next, None);
    let job = &first.items[0];
    assert_eq!(job.job_id, "1001");
    assert_eq!(job.pipeline_id.as_deref(), Some("31"));
    assert_eq!(job.project_id.as_deref(), Some("7"));
    assert_eq!(job.status, BuildStatus::Failure);
    assert_eq!(job.failure_reason.as_deref(), Some("script_failure"));
    assert_eq!(job.duration_ms, Some(180_200));
    assert_eq!(
        job.url.as_deref(),
        Some("https://gitlab.example.com/group/sub/app/-/jobs/1001")
    );
    assert_eq!(second.items[0].status, BuildStatus::Success);
    // A known numeric id names the project.
    assert!(
        gitlab
            .seen()
            .iter()
            .all(|s| s.path == "/api/v4/projects/7/pipelines/31/jobs")
    );
    // Ids that are not numbers never reach GitLab.
    assert_eq!(
        client
            .jobs_page(&project(Some("7")), "31/../../x", PageCursor::FIRST)
            .await,
        Err(HistoryError::NotFound)
    );
    assert_eq!(gitlab.seen().len(), 2);
}

#[tokio::test]
async fn a_groups_projects_include_its_subgroups() {
    let gitlab = fake(|seen, _| {
        assert_eq!(seen.path, "/api/v4/groups/group/projects");
        json_with(
            200,
            json!([
                {"id": 7, "path_with_namespace": "group/app", "web_url": "https://gitlab.example.com/group/app", "archived": false},
                {"id": 8, "path_with_namespace": "group/sub/lib", "web_url": "https://gitlab.example.com/group/sub/lib"}
            ]),
            &[("x-next-page", String::new()), ("x-total-pages", "1".into())],
        )
    })
    .await;
    let page = client(&gitlab)
        .group_projects_page(Forge::GitLab, "group", PageCursor::FIRST)
        .await
        .unwrap();
    let paths: Vec<&str> = page.items.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["group/app", "group/sub/lib"]);
    assert_eq!(page.items[1].id, "8");
    assert_eq!(page.next, None);
    let request = &gitlab.seen()[0];
    assert_eq!(request.param("include_subgroups").as_deref(), Some("true"));
    assert_eq!(request.param("with_shared").as_deref(), Some("false"));
    assert_eq!(
        client(&gitlab)
            .group_projects_page(Forge::GitHub, "group", PageCursor::FIRST)
            .await,
        Err(HistoryError::Unsupported(
            "GitHub has no groups: backfill each repository"
        ))
    );
}

#[tokio::test]
async fn a_429_is_waited_out_and_a_long_reset_is_reported_with_when_to_come_back() {
    let gitlab = fake(|seen, nth| {
        if seen.path.contains("/projects/7/") {
            // GitLab's rate limit: 429, then fine.
            if nth == 0 {
                return json_with(
                    429,
                    json!({"message": "Retry later"}),
                    &[
                        ("retry-after", "1".into()),
                        ("ratelimit-remaining", "0".into()),
                        ("ratelimit-reset", (unix_now() + 1).to_string()),
                    ],
                );
            }
            return json(200, json!([api_pipeline(40, "running")]));
        }
        json_with(
            429,
            json!({"message": "Retry later"}),
            &[
                ("ratelimit-remaining", "0".into()),
                ("ratelimit-reset", (unix_now() + 3_600).to_string()),
            ],
        )
    })
    .await;
    let client = client(&gitlab);
    let since = "2026-11-23T00:00:00Z".parse().unwrap();
    let started = std::time::Instant::now();
    let page = client
        .pipelines_page(&project(Some("7")), since, PageCursor::FIRST)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    assert_eq!(gitlab.seen().len(), 2);

    let limited = client
        .pipelines_page(&project(Some("8")), since, PageCursor::FIRST)
        .await;
    match limited {
        Err(HistoryError::RateLimited(seconds)) => {
            assert!((3_590..=3_600).contains(&seconds), "{seconds}")
        }
        other => panic!("{other:?}"),
    }
    // Not retried: the wait outlasts the caller.
    assert_eq!(gitlab.seen().len(), 3);
}

#[tokio::test]
async fn not_found_and_rejected_tokens_say_which_scope_is_needed() {
    let gitlab = fake(|seen, _| match seen.path.as_str() {
        "/api/v4/projects/404/pipelines" => json(404, json!({"message": "404 Project Not Found"})),
        "/api/v4/projects/401/pipelines" => json(401, json!({"message": "401 Unauthorized"})),
        "/api/v4/projects/7/jobs/1/retry" => json(403, json!({"message": "403 Forbidden"})),
        "/api/v4/projects/7/jobs/2/retry" => json(
            403,
            json!({"message": "403 Forbidden - Job is not retryable"}),
        ),
        "/api/v4/projects/7/merge_requests/5/notes" => {
            json(403, json!({"message": "403 Forbidden"}))
        }
        other => panic!("unexpected {other}"),
    })
    .await;
    let client = client(&gitlab);
    let since = "2026-11-23T00:00:00Z".parse().unwrap();
    assert_eq!(
        client
            .pipelines_page(&project(Some("404")), since, PageCursor::FIRST)
            .await,
        Err(HistoryError::NotFound)
    );
    assert_eq!(
        client
            .pipelines_page(&project(Some("401")), since, PageCursor::FIRST)
            .await,
        Err(HistoryError::Rejected {
            status: 401,
            needs: TokenScope::GitLabReadApi
        })
    );
    let retry = |job: &str| ProviderAction::RetryJob { job_id: job.into() };
    assert_eq!(
        client.act(&project(Some("7")), &retry("1")).await,
        Err(ActionError::Rejected {
            status: 403,
            needs: TokenScope::GitLabApi
        })
    );
    assert!(matches!(
        client.act(&project(Some("7")), &retry("2")).await,
        Err(ActionError::NotPossible(message)) if message.contains("not retryable")
    ));
    let thread = ReviewThread {
        project: project(Some("7")),
        number: 5,
    };
    let body = passing_again_comment(&CommentedPipeline {
        forge: Forge::GitLab,
        pipeline_id: "31",
        url: None,
        sha: None,
        dashboard_origin: "https://buildlore.example.com",
    });
    let rejected = client.create_comment(&thread, &body).await.unwrap_err();
    assert_eq!(
        rejected,
        CommentError::Rejected {
            status: 403,
            needs: TokenScope::GitLabApi
        }
    );
    assert!(rejected.to_string().contains("`api` scope"));
    assert!(!format!("{rejected:?}{rejected}").contains(GITLAB_TOKEN));
    // Without a token nothing is sent.
    let before = gitlab.seen().len();
    let mut no_token = config(&gitlab.base, "http://127.0.0.1:9");
    no_token.gitlab_token = None;
    let anonymous = ForgeClient::new(no_token).unwrap();
    assert_eq!(
        anonymous.act(&project(Some("7")), &retry("3")).await,
        Err(ActionError::NoToken(Forge::GitLab))
    );
    assert_eq!(gitlab.seen().len(), before);
}

#[tokio::test]
async fn retry_and_cancel_call_the_jobs_and_pipelines_api() {
    let gitlab = fake(|seen, _| {
        assert_eq!(seen.method, "POST");
        assert_eq!(seen.header("private-token"), Some(GITLAB_TOKEN));
        match seen.path.as_str() {
            "/api/v4/projects/7/jobs/1234/retry" => json(
                201,
                json!({"id": 1240, "status": "pending", "name": "rspec"}),
            ),
            "/api/v4/projects/7/jobs/1234/cancel" => {
                json(201, json!({"id": 1234, "status": "canceled"}))
            }
            "/api/v4/projects/7/pipelines/31/retry" => {
                json(201, json!({"id": 31, "status": "pending"}))
            }
            "/api/v4/projects/7/pipelines/31/cancel" => {
                json(200, json!({"id": 31, "status": "canceled"}))
            }
            // A retry that fails on GitLab's side may still have started a job.
            "/api/v4/projects/7/jobs/99/retry" => json(502, json!({"message": "502 Bad Gateway"})),
            other => panic!("unexpected {other}"),
        }
    })
    .await;
    let client = client(&gitlab);
    let project = project(Some("7"));
    let retried = client
        .act(
            &project,
            &ProviderAction::RetryJob {
                job_id: "1234".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(retried.resulting_id, "1240");
    assert_eq!(retried.status, Some(BuildStatus::Pending));
    let canceled = client
        .act(
            &project,
            &ProviderAction::CancelJob {
                job_id: "1234".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(canceled.provider_status.as_deref(), Some("canceled"));
    assert_eq!(canceled.status, Some(BuildStatus::Canceled));
    let pipeline = client
        .act(
            &project,
            &ProviderAction::RetryPipeline {
                pipeline_id: "31".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (pipeline.resulting_id.as_str(), pipeline.status),
        ("31", Some(BuildStatus::Pending))
    );
    client
        .act(
            &project,
            &ProviderAction::CancelPipeline {
                pipeline_id: "31".into(),
            },
        )
        .await
        .unwrap();
    let failed = client
        .act(
            &project,
            &ProviderAction::RetryJob {
                job_id: "99".into(),
            },
        )
        .await;
    assert!(
        matches!(failed, Err(ActionError::Unavailable(_))),
        "{failed:?}"
    );
    let calls: Vec<String> = gitlab.seen().iter().map(|s| s.path.clone()).collect();
    assert_eq!(
        calls,
        [
            "/api/v4/projects/7/jobs/1234/retry",
            "/api/v4/projects/7/jobs/1234/cancel",
            "/api/v4/projects/7/pipelines/31/retry",
            "/api/v4/projects/7/pipelines/31/cancel",
            // Sent once: not repeated after a 502.
            "/api/v4/projects/7/jobs/99/retry",
        ]
    );
}

#[tokio::test]
async fn a_merge_request_note_is_created_then_updated_in_place() {
    let gitlab = fake(
        |seen, nth| match (seen.method.as_str(), seen.path.as_str()) {
            ("POST", "/api/v4/projects/group%2Fsub%2Fapp/merge_requests/12/notes") => json(
                201,
                json!({"id": 3001, "body": seen.json()["body"], "noteable_iid": 12}),
            ),
            ("PUT", "/api/v4/projects/group%2Fsub%2Fapp/merge_requests/12/notes/3001") => {
                // A first 503 is retried: an update is safe to repeat.
                if nth == 0 {
                    json(503, json!({"message": "unavailable"}))
                } else {
                    json(200, json!({"id": 3001, "body": seen.json()["body"]}))
                }
            }
            other => panic!("unexpected {other:?}"),
        },
    )
    .await;
    let client = client(&gitlab);
    let thread = ReviewThread {
        project: project(None),
        number: 12,
    };
    let pipeline = |id| CommentedPipeline {
        forge: Forge::GitLab,
        pipeline_id: id,
        url: None,
        sha: None,
        dashboard_origin: "https://buildlore.example.com",
    };
    let first = buildlore_core::review_comment::failing_comment(&pipeline("31"), &[]);
    let posted = client.create_comment(&thread, &first).await.unwrap();
    assert_eq!(posted.id, "3001");
    let second = passing_again_comment(&pipeline("32"));
    let updated = client
        .update_comment(&thread, &posted.id, &second)
        .await
        .unwrap();
    assert_eq!(updated.id, "3001");
    let seen = gitlab.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0].json(), json!({"body": first.as_str()}));
    assert_eq!(seen[2].method, "PUT");
    assert_eq!(seen[2].json(), json!({"body": second.as_str()}));
    assert_eq!(seen[2].header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn a_redirect_is_not_followed_so_the_token_stays_with_gitlab() {
    let elsewhere = fake(|_, _| json(200, json!([]))).await;
    let target = format!("{}/api/v4/projects/7/pipelines", elsewhere.base);
    let gitlab = fake(move |_, _| {
        let mut response = empty(302);
        response
            .headers_mut()
            .insert("location", target.parse().unwrap());
        response
    })
    .await;
    let since = "2026-11-23T00:00:00Z".parse().unwrap();
    let result = client(&gitlab)
        .pipelines_page(&project(Some("7")), since, PageCursor::FIRST)
        .await;
    assert!(
        matches!(result, Err(HistoryError::Unavailable(ref m)) if m.contains("redirect")),
        "{result:?}"
    );
    assert!(elsewhere.seen().is_empty());
}

#[tokio::test]
async fn an_oversized_page_is_refused_not_read_whole() {
    let gitlab = fake(|_, _| {
        let huge = "x".repeat(9 * 1024 * 1024);
        json(200, json!([{"id": 1, "name": huge}]))
    })
    .await;
    let since = "2026-11-23T00:00:00Z".parse().unwrap();
    let result = client(&gitlab)
        .pipelines_page(&project(Some("7")), since, PageCursor::FIRST)
        .await;
    assert!(
        matches!(result, Err(HistoryError::Unavailable(ref m)) if m.contains("longer than")),
        "{result:?}"
    );
}
