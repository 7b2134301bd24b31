//! Backfill against a fake GitLab that pages as GitLab does (`X-Next-Page`): a group's
//! projects (subgroups included, archived ones skipped), each project's pipelines over several
//! pages and each pipeline's jobs, driven through the real queue one step per message. A page
//! that fails part-way is read again when its message comes back, a project the token cannot
//! see is an error that does not stop the rest, and webhooks replayed afterwards (or the same
//! backfill again) count nothing twice.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use buildlore_providers::Url;
use buildlore_tests::fake_server::serve;
use buildlore_tests::{TestStack, keys};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

const TOKEN: &str = "glpat-backfill-test-0000001";

#[derive(Default)]
struct FakeGitLab {
    /// Answers of the second pipelines page of project 11 that fail before one succeeds.
    flaky_page_failures: AtomicU32,
    requests: AtomicU32,
}

type Params = Query<HashMap<String, String>>;

fn page_of(params: &Params) -> u32 {
    params.get("page").and_then(|p| p.parse().ok()).unwrap_or(1)
}

/// A page answer with GitLab's pagination headers.
fn paged(items: Value, next: Option<u32>) -> Response {
    let mut response = axum::Json(items).into_response();
    let next = next.map(|n| n.to_string()).unwrap_or_default();
    response
        .headers_mut()
        .insert("x-next-page", next.parse().unwrap());
    response
}

fn authorised(headers: &HeaderMap) -> bool {
    headers
        .get("private-token")
        .is_some_and(|value| value == TOKEN)
}

fn recent(hours_ago: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::hours(hours_ago))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

async fn group_projects(
    State(fake): State<Arc<FakeGitLab>>,
    Path(group): Path<String>,
    params: Params,
    headers: HeaderMap,
) -> Response {
    fake.requests.fetch_add(1, Ordering::SeqCst);
    assert!(authorised(&headers));
    assert_eq!(group, "acme");
    assert_eq!(
        params.get("include_subgroups").map(String::as_str),
        Some("true")
    );
    match page_of(&params) {
        1 => paged(
            json!([{"id": 11, "path_with_namespace": "acme/web", "archived": false}]),
            Some(2),
        ),
        _ => paged(
            json!([
                {"id": 12, "path_with_namespace": "acme/sub/api", "archived": false},
                {"id": 13, "path_with_namespace": "acme/old", "archived": true},
                {"id": 14, "path_with_namespace": "acme/secret", "archived": false},
            ]),
            None,
        ),
    }
}

fn pipeline(id: u64, project_id: u64, status: &str, hours_ago: i64) -> Value {
    json!({
        "id": id, "iid": id - 100, "project_id": project_id, "sha": "a1b2c3d4e5f6",
        "ref": "main", "status": status, "source": "push",
        "created_at": recent(hours_ago), "updated_at": recent(hours_ago - 1),
        "web_url": format!("https://gitlab.example.com/p/{project_id}/-/pipelines/{id}"),
    })
}

async fn pipelines(
    State(fake): State<Arc<FakeGitLab>>,
    Path(project): Path<String>,
    params: Params,
    headers: HeaderMap,
) -> Response {
    fake.requests.fetch_add(1, Ordering::SeqCst);
    assert!(authorised(&headers));
    assert!(params.contains_key("updated_after"), "{params:?}");
    match (project.as_str(), page_of(&params)) {
        ("11", 1) => paged(
            json!([
                pipeline(101, 11, "success", 30),
                pipeline(102, 11, "failed", 20)
            ]),
            Some(2),
        ),
        ("11", _) => {
            if fake
                .flaky_page_failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return (StatusCode::BAD_GATEWAY, "upstream").into_response();
            }
            paged(json!([pipeline(103, 11, "success", 10)]), None)
        }
        ("12", _) => paged(json!([pipeline(201, 12, "failed", 5)]), None),
        _ => (
            StatusCode::FORBIDDEN,
            axum::Json(json!({"message": "403 Forbidden"})),
        )
            .into_response(),
    }
}

async fn jobs(
    State(fake): State<Arc<FakeGitLab>>,
    Path((project, pipeline_id)): Path<(String, u64)>,
    headers: HeaderMap,
) -> Response {
    fake.requests.fetch_add(1, Ordering::SeqCst);
    assert!(authorised(&headers));
    let project_id: u64 = project.parse().unwrap();
    let job = |offset: u64, name: &str, status: &str| {
        json!({
            "id": pipeline_id * 10 + offset, "name": name, "stage": "test", "status": status,
            "created_at": recent(30), "started_at": recent(30), "finished_at": recent(29),
            "duration": 60.0, "ref": "main",
            "pipeline": {"id": pipeline_id, "project_id": project_id, "sha": "a1b2c3d4e5f6", "ref": "main"},
        })
    };
    paged(
        json!([job(1, "build", "success"), job(2, "test", "success")]),
        None,
    )
}

async fn admin(
    stack: &TestStack,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let (status, _, answer) = stack.call(method, path, Some(keys::ADMIN), body).await;
    (status, answer)
}

async fn totals(stack: &TestStack) -> HashMap<String, (u64, u64)> {
    let (status, summary) = stack.get("/api/pipelines/summary?since=7d").await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    summary["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|project| {
            (
                project["project_name"].as_str().unwrap().to_string(),
                (
                    project["total_pipelines"].as_u64().unwrap(),
                    project["failed"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_group_backfill_pages_through_everything_once() {
    let fake = Arc::new(FakeGitLab::default());
    // As many failures as the client tries within one step: the step itself fails once.
    fake.flaky_page_failures.store(2, Ordering::SeqCst);
    let router = Router::new()
        .route("/api/v4/groups/{group}/projects", get(group_projects))
        .route("/api/v4/projects/{project}/pipelines", get(pipelines))
        .route(
            "/api/v4/projects/{project}/pipelines/{pipeline}/jobs",
            get(jobs),
        )
        .with_state(fake.clone());
    let port = serve(router).await;
    let stack = TestStack::with_analysis_queue_and_config(move |config| {
        config.providers.gitlab_base = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        config.providers.gitlab_token = Some(TOKEN.into());
        config.providers.max_attempts = 2;
    })
    .await;

    let (status, started) = admin(
        &stack,
        Method::POST,
        "/api/v1/admin/backfill",
        Some(&json!({"provider": "gitlab", "group": "acme", "since": "7d"})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let progress_path = started["progress"].as_str().unwrap().to_string();
    assert_eq!(started["backfill"]["status"], "running");

    let delivered = stack.drain_queue().await;
    // 2 group pages, 3 projects' first pipeline pages, project 11's second page (twice: it
    // failed once), 4 pipelines' jobs.
    assert_eq!(delivered, 2 + 3 + 2 + 4, "messages delivered");

    let (status, progress) = admin(&stack, Method::GET, &progress_path, None).await;
    assert_eq!(status, StatusCode::OK, "{progress}");
    assert_eq!(progress["status"], "finished", "{progress}");
    assert_eq!(progress["projects"], 3, "{progress}");
    assert_eq!(progress["pipelines"], 4, "{progress}");
    assert_eq!(progress["jobs"], 8, "{progress}");
    assert_eq!(progress["errors"], 1, "{progress}");
    assert!(
        progress["last_error"]
            .as_str()
            .unwrap()
            .contains("acme/secret"),
        "{progress}"
    );

    let expected = HashMap::from([
        ("acme/web".to_string(), (3, 1)),
        ("acme/sub/api".to_string(), (1, 1)),
    ]);
    assert_eq!(totals(&stack).await, expected);

    // A pipeline hook for a backfilled pipeline, as GitLab would send it late: nothing new.
    let hook = json!({
        "object_kind": "pipeline",
        "object_attributes": {
            "id": 102, "iid": 2, "ref": "main", "sha": "a1b2c3d4e5f6", "status": "failed",
            "source": "push", "created_at": recent(20), "finished_at": recent(19),
            "duration": 600,
        },
        "project": {"id": 11, "path_with_namespace": "acme/web"},
    });
    let (status, body) = stack
        .gitlab_hook("Pipeline Hook", &serde_json::to_vec(&hook).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(totals(&stack).await, expected);

    // The same backfill again: every record is already there, and stays counted once.
    let (status, _) = admin(
        &stack,
        Method::POST,
        "/api/v1/admin/backfill",
        Some(&json!({"provider": "gitlab", "group": "acme", "since": "7d"})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    stack.drain_queue().await;
    assert_eq!(totals(&stack).await, expected);
}

#[tokio::test]
async fn bad_backfill_requests_are_refused_before_anything_is_queued() {
    let stack = TestStack::with_analysis_queue().await;
    for body in [
        json!({"provider": "gitlab"}),
        json!({"provider": "github", "group": "acme"}),
        json!({"provider": "gitlab", "project": "acme/web", "since": "1y"}),
        json!(["acme"]),
    ] {
        let (status, answer) =
            admin(&stack, Method::POST, "/api/v1/admin/backfill", Some(&body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
    }
    assert!(stack.queued_messages().await.is_empty());
    let (status, _) = admin(&stack, Method::GET, "/api/v1/admin/backfill/nope-123", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
