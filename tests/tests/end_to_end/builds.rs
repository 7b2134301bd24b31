//! Build ingest and query end to end on the emulator.

use buildlore_tests::{TestStack, keys};
use http::{Method, StatusCode};
use serde_json::{Value, json};

fn build(id: &str, status: &str, timestamp: &str) -> Value {
    json!({
        "build_id": id, "repo": "group/sub/app", "branch": "main", "status": status,
        "commit": "0123abcd", "duration_ms": 61_000, "timestamp": timestamp,
        "extra_data": {"runner": "r-1", "tags": ["linux", "x64"]},
    })
}

#[tokio::test]
async fn ingest_then_query_round_trip() {
    let stack = TestStack::new().await;
    let (status, body) = stack
        .post_build(&build("101", "success", "2026-11-20T10:00:00Z"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["result"], "created");
    assert_eq!(body["build"]["status"], "SUCCESS");

    let (status, one) = stack
        .get("/api/v1/repos/group%2Fsub%2Fapp/builds/101")
        .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["build_id"], "101");
    assert_eq!(one["repo"], "group/sub/app");
    assert_eq!(one["commit"], "0123abcd");
    assert_eq!(one["duration_ms"], 61_000);
    assert_eq!(one["timestamp"], "2026-11-20T10:00:00.000Z");
    assert_eq!(one["extra_data"]["tags"], json!(["linux", "x64"]));

    let (status, same) = stack.get("/api/v1/builds/101?repo=group/sub/app").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(same, one);

    let (status, list) = stack.get("/api/v1/builds?repo=group/sub/app").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["count"], 1);
    assert_eq!(list["builds"][0], one);
    assert_eq!(list["next_cursor"], Value::Null);

    let (status, missing) = stack
        .get("/api/v1/repos/group%2Fsub%2Fapp/builds/999")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        missing["error"]
            .as_str()
            .unwrap_or_default()
            .contains("999")
    );
    assert_eq!(missing["statusCode"], 404);
    assert!(missing["timestamp"].is_string());
}

#[tokio::test]
async fn listing_is_newest_first_with_cursor_and_filters() {
    let stack = TestStack::new().await;
    for n in 0..25 {
        let status = if n % 5 == 0 { "failed" } else { "success" };
        let branch = if n % 2 == 0 { "main" } else { "dev" };
        let mut record = build(
            &format!("b{n:02}"),
            status,
            &format!("2026-10-{:02}T08:00:{n:02}Z", 1 + n),
        );
        record["branch"] = json!(branch);
        let (code, body) = stack.post_build(&record).await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
    }
    // Default page is 20, newest first; the cursor continues without overlap.
    let (_, first) = stack.get("/api/v1/builds?repo=group/sub/app").await;
    let ids = |page: &Value| -> Vec<String> {
        page["builds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["build_id"].as_str().unwrap().to_string())
            .collect()
    };
    let first_ids = ids(&first);
    assert_eq!(first_ids.len(), 20);
    assert_eq!(first_ids[0], "b24");
    assert_eq!(first_ids[19], "b05");
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a second page exists")
        .to_string();
    let (status, second) = stack
        .get(&format!(
            "/api/v1/builds?repo=group/sub/app&cursor={cursor}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(ids(&second), ["b04", "b03", "b02", "b01", "b00"]);
    assert_eq!(second["next_cursor"], Value::Null);

    // Status filter across pages.
    let (_, failed) = stack
        .get("/api/v1/builds?repo=group/sub/app&status=FAILURE&limit=3")
        .await;
    assert_eq!(ids(&failed), ["b20", "b15", "b10"]);
    let cursor = failed["next_cursor"]
        .as_str()
        .expect("more failures")
        .to_string();
    let (_, failed_rest) = stack
        .get(&format!(
            "/api/v1/builds?repo=group/sub/app&status=failure&limit=3&cursor={cursor}"
        ))
        .await;
    assert_eq!(ids(&failed_rest), ["b05", "b00"]);

    // Branch and since.
    let (_, dev) = stack
        .get("/api/v1/builds?repo=group/sub/app&branch=dev&limit=100")
        .await;
    assert_eq!(dev["count"], 12);
    assert!(
        dev["builds"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["branch"] == "dev")
    );
    let (_, recent) = stack
        .get("/api/v1/builds?repo=group/sub/app&since=2026-10-23T00:00:00Z")
        .await;
    assert_eq!(ids(&recent), ["b24", "b23", "b22"]);

    // A cursor from another listing is refused.
    let (status, body) = stack
        .get(&format!(
            "/api/v1/builds?repo=group/sub/app&branch=main&cursor={cursor}"
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Another repo sees none of them.
    let (_, other) = stack.get("/api/v1/builds?repo=group/other").await;
    assert_eq!(other["count"], 0);
}

#[tokio::test]
async fn states_move_forward_once_and_counters_follow() {
    let stack = TestStack::new().await;
    let at = "2026-11-21T23:59:00Z";
    let (status, _) = stack.post_build(&build("7", "running", at)).await;
    assert_eq!(status, StatusCode::CREATED);
    let counters = stack.counters("group/sub/app", "2026-11-21").await;
    assert_eq!(counters.get("total"), Some(&1));
    assert_eq!(counters.get("status_running"), Some(&1));
    assert_eq!(counters.get("duration_count"), None);

    // Identical repeat: nothing changes.
    let before = stack.items().await;
    let (status, body) = stack.post_build(&build("7", "RUNNING", at)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["result"], "unchanged");
    assert_eq!(stack.items().await, before);

    // Later state: updates, moves the counter, counts the duration once. Reported a day
    // later, it is still counted on the day the build was first seen.
    let (status, body) = stack
        .post_build(&build("7", "failed", "2026-11-22T00:10:00Z"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"], "updated");
    assert_eq!(body["build"]["timestamp"], "2026-11-21T23:59:00.000Z");
    let counters = stack.counters("group/sub/app", "2026-11-21").await;
    assert_eq!(counters.get("total"), Some(&1));
    assert_eq!(counters.get("status_running"), Some(&0));
    assert_eq!(counters.get("status_failure"), Some(&1));
    assert_eq!(counters.get("duration_count"), Some(&1));
    assert_eq!(counters.get("duration_sum_ms"), Some(&61_000));
    assert_eq!(counters.get("duration_bucket_07"), Some(&1));
    assert!(
        stack
            .counters("group/sub/app", "2026-11-22")
            .await
            .is_empty()
    );

    // Earlier state after a terminal one, or a second ending: refused, nothing written.
    let before = stack.items().await;
    for late in ["running", "pending", "success"] {
        let (status, body) = stack.post_build(&build("7", late, at)).await;
        assert_eq!(status, StatusCode::CONFLICT, "{late}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap_or_default()
                .contains("FAILURE")
        );
    }
    assert_eq!(stack.items().await, before);
    let (_, stored) = stack.get("/api/v1/builds/7?repo=group/sub/app").await;
    assert_eq!(stored["status"], "FAILURE");
}

#[tokio::test]
async fn twenty_concurrent_posts_of_one_build_store_it_once() {
    let stack = TestStack::new().await;
    let record = build("concurrent-1", "success", "2026-11-20T12:00:00Z");
    let posts = (0..20).map(|_| stack.post_build(&record));
    let results = futures_util::future::join_all(posts).await;
    let created = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let unchanged = results
        .iter()
        .filter(|(s, b)| *s == StatusCode::OK && b["result"] == "unchanged")
        .count();
    assert_eq!((created, unchanged), (1, 19), "{results:?}");
    let counters = stack.counters("group/sub/app", "2026-11-20").await;
    assert_eq!(counters.get("total"), Some(&1));
    assert_eq!(counters.get("status_success"), Some(&1));
    assert_eq!(counters.get("duration_count"), Some(&1));
    let builds = stack.items().await.into_iter().filter(|item| {
        item.get("sk")
            .and_then(|v| v.as_s().ok())
            .is_some_and(|sk| sk.starts_with("BUILD#"))
    });
    assert_eq!(builds.count(), 1);
}

#[tokio::test]
async fn concurrent_transitions_count_each_state_once() {
    let stack = TestStack::new().await;
    let at = "2026-11-19T12:00:00Z";
    let reports: Vec<Value> = [
        "pending", "running", "success", "running", "pending", "success",
    ]
    .iter()
    .cycle()
    .take(24)
    .map(|status| build("race", status, at))
    .collect();
    futures_util::future::join_all(reports.iter().map(|r| stack.post_build(r))).await;
    let (_, stored) = stack.get("/api/v1/builds/race?repo=group/sub/app").await;
    assert_eq!(stored["status"], "SUCCESS");
    let counters = stack.counters("group/sub/app", "2026-11-19").await;
    assert_eq!(counters.get("total"), Some(&1));
    assert_eq!(counters.get("status_success"), Some(&1));
    assert_eq!(counters.get("status_pending").copied().unwrap_or(0), 0);
    assert_eq!(counters.get("status_running").copied().unwrap_or(0), 0);
    assert_eq!(counters.get("duration_count"), Some(&1));
}

#[tokio::test]
async fn batch_answers_per_record_in_order() {
    let stack = TestStack::new().await;
    let at = "2026-11-18T09:00:00Z";
    let batch = json!([
        build("x1", "running", at),
        build("x1", "success", at),
        {"build_id": "x2", "repo": "group/sub/app", "branch": "main", "status": "nonsense"},
        build("x3", "failed", at),
        build("x1", "running", at),
    ]);
    let (status, body) = stack
        .post_json("/api/v1/builds/batch", keys::INGEST, &batch)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let codes: Vec<u64> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["statusCode"].as_u64().unwrap())
        .collect();
    assert_eq!(codes, [201, 200, 400, 201, 409]);
    assert_eq!(body["results"][1]["result"], "updated");
    assert!(
        body["results"][2]["error"]
            .as_str()
            .unwrap()
            .contains("status")
    );
    assert_eq!(
        (
            body["created"].as_u64(),
            body["updated"].as_u64(),
            body["failed"].as_u64()
        ),
        (Some(2), Some(1), Some(2))
    );
    let counters = stack.counters("group/sub/app", "2026-11-18").await;
    assert_eq!(counters.get("total"), Some(&2));
    assert_eq!(counters.get("status_success"), Some(&1));
    assert_eq!(counters.get("status_failure"), Some(&1));

    let wrapped = json!({"builds": [build("x4", "success", at)]});
    let (status, body) = stack
        .post_json("/api/v1/builds/batch", keys::INGEST, &wrapped)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["created"], 1);
}

#[tokio::test]
async fn health_and_version_need_no_key() {
    let stack = TestStack::new().await;
    let (status, _, health) = stack.call(Method::GET, "/api/health", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["status"], "healthy");
    let (status, _, version) = stack.call(Method::GET, "/api/version", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(version["version"], env!("CARGO_PKG_VERSION"));
    assert!(version["gitCommit"].as_str().is_some_and(|c| !c.is_empty()));
    assert!(version["buildDate"].as_str().is_some_and(|d| d.len() == 10));
}
