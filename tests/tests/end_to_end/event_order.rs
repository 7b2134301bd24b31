//! Deliveries arrive retried and out of order. Whatever the order, and however often each
//! arrives, the stored state and the counters end up as after the in-order stream.

use buildlore_tests::TestStack;
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn at(minute: u32) -> String {
    format!("2026-11-01 10:{minute:02}:00 UTC")
}

fn project() -> Value {
    json!({"id": 42, "path_with_namespace": "shuffle/app", "web_url": "https://gitlab.example.com/shuffle/app"})
}

/// A job as GitLab reports it at `minute`: (id, name, status, created, started, finished).
fn job_hook(
    id: u64,
    name: &str,
    status: &str,
    created: u32,
    started: Option<u32>,
    finished: Option<u32>,
) -> Value {
    json!({
        "object_kind": "build", "build_id": id, "build_name": name, "build_stage": "test",
        "build_status": status, "build_created_at": at(created),
        "build_started_at": started.map(at), "build_finished_at": finished.map(at),
        "build_duration": match (started, finished) { (Some(s), Some(f)) => json!((f - s) * 60), _ => Value::Null },
        "build_failure_reason": if status == "failed" { json!("script_failure") } else { Value::Null },
        "pipeline_id": 500, "project_id": 42, "ref": "main", "sha": "abc123", "project": project(),
    })
}

fn build_entry(
    id: u64,
    name: &str,
    status: &str,
    created: u32,
    started: Option<u32>,
    finished: Option<u32>,
) -> Value {
    json!({
        "id": id, "name": name, "stage": "test", "status": status, "created_at": at(created),
        "started_at": started.map(at), "finished_at": finished.map(at),
        "duration": match (started, finished) { (Some(s), Some(f)) => json!((f - s) * 60), _ => Value::Null },
    })
}

fn pipeline_hook(status: &str, finished: Option<u32>, builds: Vec<Value>) -> Value {
    json!({
        "object_kind": "pipeline",
        "object_attributes": {
            "id": 500, "ref": "main", "sha": "abc123", "source": "push", "status": status,
            "created_at": at(0), "finished_at": finished.map(at),
            "duration": finished.map(|f| f * 60),
        },
        "project": project(),
        "user": {"name": "Dev", "username": "dev"},
        "commit": {"id": "abc123", "message": "fix things\n", "author": {"name": "Dev"}},
        "builds": builds,
    })
}

fn workflow_run(attempt: u32, status: &str, conclusion: Option<&str>, updated: u32) -> Value {
    json!({
        "action": if status == "completed" { "completed" } else { "requested" },
        "repository": {"id": 7, "full_name": "shuffle/gh"},
        "workflow_run": {
            "id": 9001, "name": "CI", "head_branch": "main", "head_sha": "def456", "event": "push",
            "status": status, "conclusion": conclusion, "run_attempt": attempt,
            "created_at": "2026-11-01T10:00:00Z", "run_started_at": format!("2026-11-01T10:{:02}:00Z", (attempt - 1) * 20),
            "updated_at": format!("2026-11-01T10:{updated:02}:00Z"),
            "html_url": "https://github.com/shuffle/gh/actions/runs/9001",
        },
    })
}

/// The in-order stream: (provider, event, payload).
fn stream() -> Vec<(&'static str, &'static str, Value)> {
    let lint_done = build_entry(1, "lint", "success", 0, Some(1), Some(3));
    vec![
        (
            "gitlab",
            "Pipeline Hook",
            pipeline_hook(
                "pending",
                None,
                vec![build_entry(1, "lint", "pending", 0, None, None)],
            ),
        ),
        (
            "gitlab",
            "Job Hook",
            job_hook(1, "lint", "running", 0, Some(1), None),
        ),
        (
            "gitlab",
            "Job Hook",
            job_hook(2, "unit", "running", 0, Some(2), None),
        ),
        (
            "gitlab",
            "Pipeline Hook",
            pipeline_hook(
                "running",
                None,
                vec![build_entry(1, "lint", "running", 0, Some(1), None)],
            ),
        ),
        (
            "gitlab",
            "Job Hook",
            job_hook(1, "lint", "success", 0, Some(1), Some(3)),
        ),
        (
            "gitlab",
            "Job Hook",
            job_hook(2, "unit", "failed", 0, Some(2), Some(5)),
        ),
        (
            "gitlab",
            "Pipeline Hook",
            pipeline_hook(
                "failed",
                Some(5),
                vec![
                    lint_done.clone(),
                    build_entry(2, "unit", "failed", 0, Some(2), Some(5)),
                ],
            ),
        ),
        // The failed job is retried as a new job; the pipeline runs again.
        (
            "gitlab",
            "Job Hook",
            job_hook(3, "unit", "pending", 6, None, None),
        ),
        (
            "gitlab",
            "Pipeline Hook",
            pipeline_hook(
                "running",
                None,
                vec![
                    lint_done.clone(),
                    build_entry(3, "unit", "running", 6, Some(7), None),
                ],
            ),
        ),
        (
            "gitlab",
            "Job Hook",
            job_hook(3, "unit", "success", 6, Some(7), Some(9)),
        ),
        (
            "gitlab",
            "Pipeline Hook",
            pipeline_hook(
                "success",
                Some(9),
                vec![
                    lint_done,
                    build_entry(3, "unit", "success", 6, Some(7), Some(9)),
                ],
            ),
        ),
        ("github", "workflow_run", workflow_run(1, "queued", None, 0)),
        (
            "github",
            "workflow_run",
            workflow_run(1, "in_progress", None, 2),
        ),
        (
            "github",
            "workflow_run",
            workflow_run(1, "completed", Some("failure"), 8),
        ),
        (
            "github",
            "workflow_run",
            workflow_run(2, "queued", None, 20),
        ),
        (
            "github",
            "workflow_run",
            workflow_run(2, "completed", Some("success"), 25),
        ),
    ]
}

async fn deliver_all(stack: &TestStack, events: &[(usize, &(&str, &str, Value))]) {
    for (index, (provider, event, payload)) in events {
        let body = serde_json::to_vec(payload).unwrap();
        let (status, answer) = match *provider {
            "gitlab" => stack.gitlab_hook(event, &body).await,
            _ => {
                stack
                    .github_hook(event, &format!("delivery-{index}"), &body)
                    .await
            }
        };
        assert_eq!(status, http::StatusCode::OK, "{event}: {answer}");
    }
}

/// Every stored record (minus the time of receipt) and every counter.
async fn state(stack: &TestStack) -> BTreeMap<String, Value> {
    let mut state = BTreeMap::new();
    for item in stack.items().await {
        let text = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default()
        };
        let (pk, sk) = (text("pk"), text("sk"));
        if pk.starts_with("DELIVERY#") {
            continue;
        }
        let value = if let Some(data) = item.get("data").and_then(|v| v.as_s().ok()) {
            let mut record: Value = serde_json::from_str(data).unwrap();
            record.as_object_mut().unwrap().remove("updated_at");
            record
        } else {
            let numbers: BTreeMap<String, String> = item
                .iter()
                .filter_map(|(k, v)| v.as_n().ok().map(|n| (k.clone(), n.clone())))
                // A counter that went up and down again reads 0; one never touched is absent.
                .filter(|(k, n)| k != "revision" && n != "0")
                .collect();
            json!(numbers)
        };
        state.insert(format!("{pk} {sk}"), value);
    }
    state
}

/// A small deterministic generator, so a failing order can be reproduced from its seed.
fn shuffled<T: Clone>(items: &[T], seed: u64) -> Vec<T> {
    let mut state = seed;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize
    };
    let mut out: Vec<T> = items.iter().chain(items.iter()).cloned().collect();
    for i in (1..out.len()).rev() {
        out.swap(i, next() % (i + 1));
    }
    out
}

#[tokio::test]
async fn shuffled_and_repeated_deliveries_end_in_the_in_order_state() {
    let events = stream();
    let numbered: Vec<(usize, &(&str, &str, Value))> = events.iter().enumerate().collect();
    let in_order = TestStack::new().await;
    deliver_all(&in_order, &numbered).await;
    let expected = state(&in_order).await;

    let pipeline = &expected["REPO#shuffle/app PIPELINE#gitlab#500"];
    assert_eq!(pipeline["status"], "SUCCESS");
    assert_eq!(pipeline["duration_ms"], 540_000);
    let counters = &expected["DAY#2026-11-01 REPO#shuffle/app"];
    assert_eq!(counters["total"], "1");
    assert_eq!(counters["status_success"], "1");
    assert_eq!(counters.get("status_failure"), None);
    assert_eq!(counters["duration_count"], "1");
    assert_eq!(counters["job_total"], "3");
    assert_eq!(counters["job_status_success"], "2");
    assert_eq!(counters["job_status_failure"], "1");
    assert_eq!(
        expected["REPO#shuffle/gh PIPELINE#github#9001"]["attempt"],
        2
    );
    assert_eq!(
        expected["DAY#2026-11-01 REPO#shuffle/gh"]["status_success"],
        "1"
    );

    for seed in [1u64, 7, 42, 2026] {
        let stack = TestStack::new().await;
        deliver_all(&stack, &shuffled(&numbered, seed)).await;
        let actual = state(&stack).await;
        assert_eq!(actual, expected, "order from seed {seed} ended differently");
    }
}
