//! Merge request comments against a fake GitLab speaking its notes API: one comment posted
//! when a merge request's pipeline fails and its analyses are ready, updated by later
//! failures and when a pipeline passes again, never a second one — not even when analyses
//! finish at the same moment — and nothing at all for a repository that did not opt in.

use aws_lambda_events::event::sqs::SqsMessage;
use axum::Router;
use axum::extract::{Json, Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post, put};
use buildlore_api::worker::handle_batch;
use buildlore_core::RepoPath;
use buildlore_core::merge_request_comment::{
    CommentOutcome, MergeRequestCommentError, refresh_merge_request_comment,
};
use buildlore_providers::Url;
use buildlore_tests::fake_server::serve;
use buildlore_tests::{TestStack, fixtures, keys};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

const TOKEN: &str = "glpat-comments-test-00000001";
const REPO: &str = "gitlab-org/gitlab-test";

const LOG: &str = "Running with gitlab-runner 16.5.0\n$ bundle exec rspec\n..F\n\nFailures:\n\n  1) Cart#total adds the prices\n     Failure/Error: expect(cart.total).to eq(30)\n\n       expected: 30\n            got: 20\n\n     # ./spec/cart_spec.rb:12:in `block (2 levels) in <top (required)>'\n\n3 examples, 1 failure\n\nFailed examples:\n\nrspec ./spec/cart_spec.rb:10 # Cart#total adds the prices\nERROR: Job failed: exit code 1\n";

#[derive(Default)]
struct FakeGitLab {
    /// (method, path, body) of every notes call.
    notes: Mutex<Vec<(String, String, String)>>,
}

impl FakeGitLab {
    fn calls(&self) -> Vec<(String, String, String)> {
        self.notes.lock().unwrap().clone()
    }
}

type Shared = State<Arc<FakeGitLab>>;

async fn job(Path((_, job)): Path<(String, u64)>) -> Json<Value> {
    Json(json!({"id": job, "status": "failed"}))
}

async fn trace() -> &'static str {
    LOG
}

async fn create_note(
    State(fake): Shared,
    Path((project, iid)): Path<(String, u64)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    assert_eq!(headers["private-token"], TOKEN);
    // Slow, as a real API is: concurrent writers overlap.
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let text = body["body"].as_str().unwrap().to_string();
    let mut notes = fake.notes.lock().unwrap();
    let id = 9000 + notes.len() as u64;
    notes.push((
        "POST".into(),
        format!("/projects/{project}/merge_requests/{iid}/notes"),
        text.clone(),
    ));
    (StatusCode::CREATED, Json(json!({"id": id, "body": text})))
}

async fn update_note(
    State(fake): Shared,
    Path((project, iid, note)): Path<(String, u64, u64)>,
    Json(body): Json<Value>,
) -> Json<Value> {
    let text = body["body"].as_str().unwrap().to_string();
    fake.notes.lock().unwrap().push((
        "PUT".into(),
        format!("/projects/{project}/merge_requests/{iid}/notes/{note}"),
        text.clone(),
    ));
    Json(json!({"id": note, "body": text}))
}

async fn fake_gitlab() -> (Arc<FakeGitLab>, u16) {
    let fake = Arc::new(FakeGitLab::default());
    let router = Router::new()
        .route("/api/v4/projects/{project}/jobs/{job}", get(job))
        .route("/api/v4/projects/{project}/jobs/{job}/trace", get(trace))
        .route(
            "/api/v4/projects/{project}/merge_requests/{iid}/notes",
            post(create_note),
        )
        .route(
            "/api/v4/projects/{project}/merge_requests/{iid}/notes/{note}",
            put(update_note),
        )
        .with_state(fake.clone());
    let port = serve(router).await;
    (fake, port)
}

/// A pipeline hook of merge request 1 (the fixture's): `status`, and its `test` jobs.
fn pipeline_hook(pipeline_id: u64, status: &str, jobs: &[(u64, &str, &str)]) -> Vec<u8> {
    let mut hook = fixtures::json("webhooks/gitlab/pipeline_hook.json");
    hook["object_attributes"]["id"] = json!(pipeline_id);
    hook["object_attributes"]["status"] = json!(status);
    hook["object_attributes"]["finished_at"] = json!("2016-08-12 15:26:29 UTC");
    let template = hook["builds"][0].clone();
    hook["builds"] = jobs
        .iter()
        .map(|(id, name, status)| {
            let mut build = template.clone();
            build["id"] = json!(id);
            build["name"] = json!(name);
            build["stage"] = json!("test");
            build["status"] = json!(status);
            build["manual"] = json!(false);
            build["when"] = json!("on_success");
            build["started_at"] = json!("2016-08-12 15:24:00 UTC");
            build["finished_at"] = json!("2016-08-12 15:26:00 UTC");
            build
        })
        .collect();
    serde_json::to_vec(&hook).unwrap()
}

fn analysis_message(job_id: u64, pipeline_id: u64) -> SqsMessage {
    let mut message = SqsMessage::default();
    message.message_id = Some(format!("analyse-{job_id}"));
    message.body = Some(
        json!({
            "version": 1, "provider": "gitlab", "repo": REPO, "job_id": job_id.to_string(),
            "pipeline_id": pipeline_id.to_string(), "requested_at": "2016-08-12T15:26:30Z",
            "origin": "webhook",
        })
        .to_string(),
    );
    message
}

async fn stack_for(port: u16) -> TestStack {
    TestStack::with_analysis_queue_and_config(move |config| {
        config.providers.gitlab_base = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        config.providers.gitlab_token = Some(TOKEN.into());
        config.dashboard_url = Some("https://buildlore.example.com".into());
    })
    .await
}

async fn opt_in(stack: &TestStack) {
    let (status, _, answer) = stack
        .call(
            Method::PUT,
            "/api/v1/repos/gitlab-org%2Fgitlab-test/settings",
            Some(keys::ADMIN),
            Some(&json!({"merge_request_comments": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

/// Delivers the queued messages to the worker once.
async fn run_queued(stack: &TestStack) {
    let bodies = stack.queued_messages().await;
    let messages: Vec<SqsMessage> = bodies
        .iter()
        .enumerate()
        .map(|(index, body)| {
            let mut message = SqsMessage::default();
            message.message_id = Some(format!("queued-{index}"));
            message.body = Some(body.to_string());
            message
        })
        .collect();
    handle_batch(&stack.state, messages).await;
}

#[tokio::test]
async fn one_comment_per_merge_request_posted_updated_and_passing_again() {
    let (fake, port) = fake_gitlab().await;
    let stack = stack_for(port).await;

    // Not opted in: analysed, no comment.
    stack
        .gitlab_hook(
            "Pipeline Hook",
            &pipeline_hook(31, "failed", &[(501, "rspec", "failed")]),
        )
        .await;
    handle_batch(&stack.state, vec![analysis_message(501, 31)]).await;
    assert!(fake.calls().is_empty());

    opt_in(&stack).await;
    // A new pipeline of the merge request fails in two jobs; their analyses finish.
    let (status, body) = stack
        .gitlab_hook(
            "Pipeline Hook",
            &pipeline_hook(
                32,
                "failed",
                &[
                    (601, "rspec", "failed"),
                    (602, "rubocop", "failed"),
                    (603, "build", "success"),
                ],
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    handle_batch(&stack.state, vec![analysis_message(601, 32)]).await;
    handle_batch(&stack.state, vec![analysis_message(602, 32)]).await;
    let calls = fake.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0].0, "POST");
    assert_eq!(calls[0].1, "/projects/1/merge_requests/1/notes");
    assert_eq!(calls[1].0, "PUT");
    assert_eq!(calls[1].1, "/projects/1/merge_requests/1/notes/9000");
    let latest = &calls[1].2;
    assert!(latest.contains("<!-- buildlore:pipeline-comment -->"));
    assert!(
        latest.contains("rspec") && latest.contains("rubocop"),
        "{latest}"
    );
    assert!(
        !latest.contains("`build`"),
        "a passing job is not listed: {latest}"
    );
    assert!(
        latest.contains("https://buildlore.example.com/job?"),
        "{latest}"
    );

    // The merge request's next pipeline passes: the comment says so (through the queue).
    stack
        .gitlab_hook(
            "Pipeline Hook",
            &pipeline_hook(33, "success", &[(701, "rspec", "success")]),
        )
        .await;
    run_queued(&stack).await;
    let calls = fake.calls();
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(calls[2].1, "/projects/1/merge_requests/1/notes/9000");
    assert!(calls[2].2.to_lowercase().contains("pass"), "{}", calls[2].2);
    // The same news again changes nothing.
    stack
        .gitlab_hook(
            "Pipeline Hook",
            &pipeline_hook(33, "success", &[(701, "rspec", "success")]),
        )
        .await;
    run_queued(&stack).await;
    assert_eq!(fake.calls().len(), 3);
    // A late refresh of the older failing pipeline leaves the comment about the newer one.
    let repo = RepoPath::parse(REPO).unwrap();
    let late = refresh_merge_request_comment(
        &stack.state.store,
        stack.state.forge().unwrap(),
        "gitlab",
        &repo,
        "32",
        "https://buildlore.example.com",
    )
    .await
    .unwrap();
    assert_eq!(late, CommentOutcome::NothingToSay);
    assert_eq!(fake.calls().len(), 3);
}

#[tokio::test]
async fn an_expired_marker_is_unset_before_the_table_deletes_it() {
    use buildlore_core::ports::Markers;
    let stack = TestStack::new().await;
    let store = &stack.state.store;
    assert!(
        store
            .set_marker("LOCK#a", chrono::Duration::seconds(-5))
            .await
            .unwrap()
    );
    assert!(!store.has_marker("LOCK#a").await.unwrap());
    assert!(
        store
            .set_marker("LOCK#a", chrono::Duration::minutes(5))
            .await
            .unwrap()
    );
    assert!(store.has_marker("LOCK#a").await.unwrap());
    assert!(
        !store
            .set_marker("LOCK#a", chrono::Duration::minutes(5))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn concurrent_refreshes_post_one_comment() {
    let (fake, port) = fake_gitlab().await;
    let stack = stack_for(port).await;
    opt_in(&stack).await;
    stack
        .gitlab_hook(
            "Pipeline Hook",
            &pipeline_hook(41, "failed", &[(801, "rspec", "failed")]),
        )
        .await;
    handle_batch(&stack.state, vec![analysis_message(801, 41)]).await;
    assert_eq!(fake.calls().len(), 1);
    let repo = RepoPath::parse(REPO).unwrap();
    // A second merge request pipeline: five writers at once.
    stack
        .gitlab_hook(
            "Pipeline Hook",
            &pipeline_hook(42, "failed", &[(802, "rspec", "failed")]),
        )
        .await;
    handle_batch(&stack.state, vec![analysis_message(802, 42)]).await;
    let forge = stack.state.forge().unwrap();
    let refresh = || {
        refresh_merge_request_comment(
            &stack.state.store,
            forge,
            "gitlab",
            &repo,
            "42",
            "https://buildlore.example.com",
        )
    };
    let outcomes = futures_util::future::join_all((0..5).map(|_| refresh())).await;
    for outcome in &outcomes {
        assert!(
            matches!(outcome, Ok(CommentOutcome::Updated(_))),
            "{outcome:?}"
        );
    }
    let posts = fake
        .calls()
        .iter()
        .filter(|(method, _, _)| method == "POST")
        .count();
    assert_eq!(posts, 1, "{:?}", fake.calls());

    // No comment yet on another merge request: of writers racing to post the first, one posts
    // and the others are told to come back (then they update).
    let mut hook: Value =
        serde_json::from_slice(&pipeline_hook(51, "failed", &[(901, "rspec", "failed")])).unwrap();
    hook["merge_request"]["iid"] = json!(2);
    stack
        .gitlab_hook("Pipeline Hook", &serde_json::to_vec(&hook).unwrap())
        .await;
    // The analysis, without its own comment refresh: a worker of a repository not yet opted in.
    let (status, _, _) = stack
        .call(
            Method::PUT,
            "/api/v1/repos/gitlab-org%2Fgitlab-test/settings",
            Some(keys::ADMIN),
            Some(&json!({"merge_request_comments": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    handle_batch(&stack.state, vec![analysis_message(901, 51)]).await;
    opt_in(&stack).await;
    let racing = futures_util::future::join_all((0..5).map(|_| {
        refresh_merge_request_comment(
            &stack.state.store,
            forge,
            "gitlab",
            &repo,
            "51",
            "https://buildlore.example.com",
        )
    }))
    .await;
    let created = racing
        .iter()
        .filter(|outcome| matches!(outcome, Ok(CommentOutcome::Created(_))))
        .count();
    let told_to_wait = racing
        .iter()
        .filter(|outcome| matches!(outcome, Err(MergeRequestCommentError::Busy)))
        .count();
    assert_eq!((created, told_to_wait), (1, 4), "{racing:?}");
    let posts_to_second = fake
        .calls()
        .iter()
        .filter(|(method, path, _)| method == "POST" && path.contains("/merge_requests/2/"))
        .count();
    assert_eq!(posts_to_second, 1);
}
