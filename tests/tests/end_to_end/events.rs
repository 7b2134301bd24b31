//! Live pipeline summaries as Server-Sent Events.

use axum::body::Body;
use buildlore_tests::{TestStack, keys};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::time::Duration;

/// Reads SSE frames until `count` events have arrived; returns (event, data) pairs.
async fn read_events(body: &mut Body, buffer: &mut String, count: usize) -> Vec<(String, Value)> {
    let mut events = Vec::new();
    while events.len() < count {
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|line| line.strip_prefix(&format!("{name}:")))
                    .map(|v| v.trim().to_string())
            };
            if let Some(event) = field("event") {
                let data = field("data").unwrap_or_default();
                events.push((
                    event,
                    serde_json::from_str(&data).unwrap_or(Value::String(data)),
                ));
            }
        }
        if events.len() >= count {
            break;
        }
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("an event within 10 s")
            .expect("the stream stays open")
            .expect("a frame");
        if let Ok(data) = frame.into_data() {
            buffer.push_str(&String::from_utf8_lossy(&data));
        }
    }
    events
}

#[tokio::test]
async fn updates_arrive_in_order_with_heartbeats() {
    let stack = TestStack::new().await;
    let request = Request::builder()
        .uri("/api/events/pipelines?since=1d")
        .header("authorization", format!("Bearer {}", keys::READ))
        .body(Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(stack.app.clone(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers().get("content-type").unwrap(),
        "text/event-stream"
    );
    let mut body = response.into_body();
    let mut buffer = String::new();

    let first = read_events(&mut body, &mut buffer, 1).await;
    assert_eq!(first[0].0, "pipeline-update");
    assert_eq!(first[0].1["summary"]["total_pipelines"], 0);

    // Nothing changes: only heartbeats.
    let quiet = read_events(&mut body, &mut buffer, 2).await;
    assert!(
        quiet.iter().all(|(event, _)| event == "heartbeat"),
        "{quiet:?}"
    );
    // A heartbeat's data is JSON, as `JSON.parse` in a browser expects.
    assert!(
        quiet[0].1["timestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{quiet:?}"
    );

    let (status, _) = stack
        .post_build(&json!({"build_id": "live-1", "repo": "live/app", "branch": "main", "status": "failed"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let mut update = None;
    for _ in 0..20 {
        let (event, data) = read_events(&mut body, &mut buffer, 1).await.remove(0);
        if event == "pipeline-update" {
            update = Some(data);
            break;
        }
    }
    let update = update.expect("an update after the new build");
    assert_eq!(update["summary"]["total_pipelines"], 1);
    assert_eq!(update["summary"]["failed"], 1);
    assert_eq!(update["projects"][0]["project_name"], "live/app");
}

#[tokio::test]
async fn the_stream_needs_a_read_key_and_a_valid_window() {
    let stack = TestStack::new().await;
    let (status, _, _) = stack
        .call(http::Method::GET, "/api/events/pipelines", None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, body) = stack
        .call(
            http::Method::GET,
            "/api/events/pipelines?since=never",
            Some(keys::READ),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

async fn open_stream(stack: &TestStack, key: &str) -> http::Response<Body> {
    let request = Request::builder()
        .uri("/api/events/pipelines?since=1d")
        .header("authorization", format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap();
    tower::ServiceExt::oneshot(stack.app.clone(), request)
        .await
        .unwrap()
}

#[tokio::test]
async fn one_key_holds_a_limited_number_of_live_streams() {
    let stack = TestStack::with_config(|config| config.events.max_streams_per_key = 2).await;
    let mut open = Vec::new();
    for _ in 0..2 {
        let response = open_stream(&stack, keys::READ).await;
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = response.into_body();
        let mut buffer = String::new();
        read_events(&mut body, &mut buffer, 1).await;
        open.push(body);
    }
    let refused = open_stream(&stack, keys::READ).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    // Another key has slots of its own.
    assert_eq!(
        open_stream(&stack, keys::ADMIN).await.status(),
        StatusCode::OK
    );
    // A client that leaves gives its slot back.
    open.pop();
    let mut reopened = None;
    for _ in 0..50 {
        let response = open_stream(&stack, keys::READ).await;
        if response.status() == StatusCode::OK {
            reopened = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        reopened.is_some(),
        "the slot of the closed stream was not released"
    );
}
