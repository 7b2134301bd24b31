//! Notifications end to end: targets set by an admin (listed without their secrets), a default
//! branch turning red and green again announced once each — not by a late, older pipeline —
//! a failure that starts recurring announced once, each delivered through the queue to every
//! target, signed so the receiver can verify it, and retried when a receiver fails.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::post;
use buildlore_core::notifications::verify;
use buildlore_tests::fake_server::serve;
use buildlore_tests::{TestStack, fixtures, keys};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

const SECRET: &str = "receiver-shared-secret-01";

#[derive(Default)]
struct Receiver {
    /// (target, headers of interest, body)
    received: Mutex<Vec<(String, HeaderMap, Value)>>,
    /// Answers of target `flaky` that fail before one succeeds.
    failures_left: AtomicU32,
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    Path(target): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    if target == "flaky"
        && receiver
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    if target == "signed" {
        let timestamp: i64 = headers["x-buildlore-timestamp"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let signature = headers["x-buildlore-signature-256"].to_str().unwrap();
        verify(
            SECRET.as_bytes(),
            &timestamp.to_string(),
            signature,
            &body,
            chrono::Utc::now(),
        )
        .unwrap_or_else(|error| panic!("the signature does not verify: {error:?}"));
    }
    let value: Value = serde_json::from_slice(&body).unwrap();
    receiver
        .received
        .lock()
        .unwrap()
        .push((target, headers, value));
    StatusCode::OK
}

impl Receiver {
    fn events(&self, target: &str) -> Vec<String> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|(name, _, _)| name == target)
            .map(|(_, headers, _)| headers["x-buildlore-event"].to_str().unwrap().to_string())
            .collect()
    }
}

/// A pipeline hook on `main` of the fixture's project, created `minute` minutes after noon.
fn main_pipeline(id: u64, status: &str, minute: u32) -> Vec<u8> {
    let mut hook = fixtures::json("webhooks/gitlab/pipeline_hook.json");
    hook["object_attributes"]["id"] = json!(id);
    hook["object_attributes"]["ref"] = json!("main");
    hook["object_attributes"]["status"] = json!(status);
    hook["object_attributes"]["created_at"] = json!(format!("2026-11-30 12:{minute:02}:00 UTC"));
    hook["object_attributes"]["finished_at"] = json!(format!("2026-11-30 12:{minute:02}:30 UTC"));
    hook["merge_request"] = Value::Null;
    hook["builds"] = json!([]);
    serde_json::to_vec(&hook).unwrap()
}

#[tokio::test]
async fn changes_worth_telling_reach_every_target_once_signed_and_retried() {
    let receiver = Arc::new(Receiver::default());
    receiver.failures_left.store(1, Ordering::SeqCst);
    let port = serve(
        Router::new()
            .route("/{target}", post(receive))
            .with_state(receiver.clone()),
    )
    .await;
    let stack = TestStack::with_analysis_queue_and_config(|config| {
        config.notify_allow_loopback_http = true;
    })
    .await;

    // Targets: a Slack-format one, a signed JSON one, and one that fails once.
    let targets = json!({"targets": [
        {"url": format!("http://127.0.0.1:{port}/slack"), "format": "slack"},
        {"url": format!("http://127.0.0.1:{port}/signed"), "format": "json", "secret": SECRET},
        {"url": format!("http://127.0.0.1:{port}/flaky"), "format": "json"},
    ]});
    let (status, _, answer) = stack
        .call(
            Method::PUT,
            "/api/v1/admin/notifications",
            Some(keys::ADMIN),
            Some(&targets),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (_, _, listed) = stack
        .call(
            Method::GET,
            "/api/v1/admin/notifications",
            Some(keys::ADMIN),
            None,
        )
        .await;
    assert_eq!(listed["targets"].as_array().unwrap().len(), 3);
    assert!(!listed.to_string().contains(SECRET));
    assert!(!listed.to_string().contains("/slack"), "{listed}");
    assert_eq!(listed["targets"][1]["signed"], true);
    // Bad targets are refused whole.
    let (status, _, _) = stack
        .call(
            Method::PUT,
            "/api/v1/admin/notifications",
            Some(keys::ADMIN),
            Some(&json!({"targets": [{"url": "ftp://x.example"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // main: green first (nothing to tell), then red, then a late report of an older green
    // pipeline (not news), then green again.
    for (id, status, minute) in [
        (1, "success", 0),
        (2, "failed", 10),
        (0, "success", 5),
        (3, "success", 20),
    ] {
        let (code, body) = stack
            .gitlab_hook("Pipeline Hook", &main_pipeline(id, status, minute))
            .await;
        assert_eq!(code, StatusCode::OK, "{body}");
    }
    stack.drain_queue().await;
    assert_eq!(
        receiver.events("signed"),
        ["branch_turned_red", "branch_turned_green"]
    );
    assert_eq!(
        receiver.events("slack"),
        ["branch_turned_red", "branch_turned_green"]
    );
    // The failing target got both, the first after a retry.
    assert_eq!(
        receiver.events("flaky"),
        ["branch_turned_red", "branch_turned_green"]
    );
    let received = receiver.received.lock().unwrap().clone();
    let slack = &received
        .iter()
        .find(|(target, _, _)| target == "slack")
        .unwrap()
        .2;
    assert!(slack["text"].as_str().unwrap().contains("main"), "{slack}");
    let signed = &received
        .iter()
        .find(|(target, _, _)| target == "signed")
        .unwrap()
        .2;
    assert_eq!(signed["event"], "branch_turned_red", "{signed}");
    assert_eq!(signed["repo"], "gitlab-org/gitlab-test", "{signed}");
    assert_eq!(signed["pipeline_id"], "2", "{signed}");

    // A failure seen twice in the repository: announced once (not at the first, not again at
    // the third).
    let log = "$ cargo test\nerror[E0432]: unresolved import `crate::missing`\n --> src/lib.rs:1:5\nerror: could not compile `app` (lib) due to 1 previous error\nERROR: Job failed: exit code 101\n";
    for job in ["71", "72", "73"] {
        let (status, body) = stack
            .post_json(
                "/api/ingest/log",
                keys::INGEST,
                &json!({"provider": "gitlab", "project": "gitlab-org/gitlab-test", "job_id": job,
                    "job_name": "build", "status": "failed", "branch": "feature", "log": log}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        stack.drain_queue().await;
    }
    let recurring: Vec<String> = receiver
        .events("signed")
        .into_iter()
        .filter(|event| event == "new_recurring_failure")
        .collect();
    assert_eq!(recurring.len(), 1, "{:?}", receiver.events("signed"));

    // A test turning flaky (Surefire reran it within the run): announced once, not again by
    // the same report of another job.
    let surefire = fixtures::bytes(
        "junit/action-junit-report/test_results/maven_surefire_flaky/surefire-report.xml",
    );
    for job in ["81", "82"] {
        let request = http::Request::builder()
            .method(Method::POST)
            .uri(format!(
                "/api/v1/jobs/gitlab/gitlab-org%2Fgitlab-test/{job}/reports/junit?commit=abc&branch=main"
            ))
            .header("authorization", format!("Bearer {}", keys::INGEST))
            .header("content-type", "application/xml")
            .body(axum::body::Body::from(surefire.clone()))
            .unwrap();
        let (status, _, body) = stack.send(request).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    stack.drain_queue().await;
    let received = receiver.received.lock().unwrap().clone();
    let flaky: Vec<&Value> = received
        .iter()
        .filter(|(target, _, body)| target == "signed" && body["event"] == "test_turned_flaky")
        .map(|(_, _, body)| body)
        .collect();
    assert_eq!(flaky.len(), 1, "{flaky:?}");
    assert_eq!(flaky[0]["test"], "createWebhook", "{}", flaky[0]);
}
