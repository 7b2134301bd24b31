//! Failure-log push and incremental trace upload end to end on the emulator.

use buildlore_tests::{TestStack, fixtures, keys};
use flate2::Compression;
use flate2::write::GzEncoder;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use std::io::Write;

const LOG_FIXTURE: &str = "ci-logs/github-actions/maven/2003301608-orig.log";

fn push(status: &str, job_id: u64, log: &str) -> Value {
    json!({
        "provider": "gitlab", "project": "team/sub/service", "pipeline_id": 900, "job_id": job_id,
        "job_name": "unit-tests", "status": status, "branch": "main", "commit_sha": "deadbeef",
        "pipeline_url": "https://gitlab.example.com/team/sub/service/-/pipelines/900", "log": log,
    })
}

async fn push_log(stack: &TestStack, body: Vec<u8>, extra: &[(&str, &str)]) -> (StatusCode, Value) {
    let bearer = format!("Bearer {}", keys::INGEST);
    let mut headers = vec![
        ("authorization", bearer.as_str()),
        ("content-type", "application/json"),
    ];
    headers.extend_from_slice(extra);
    stack.deliver("/api/ingest/log", &headers, body).await
}

async fn read_trace(stack: &TestStack, path: &str) -> (StatusCode, Vec<u8>) {
    let request = http::Request::builder()
        .uri(path)
        .header("authorization", format!("Bearer {}", keys::READ))
        .body(axum::body::Body::empty())
        .expect("request");
    let response = tower::ServiceExt::oneshot(stack.app.clone(), request)
        .await
        .expect("response");
    let status = response.status();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("body")
        .to_bytes();
    (status, bytes.to_vec())
}

/// A whole trace, page after page as `X-Trace-Next-Offset` says.
async fn read_whole_trace(stack: &TestStack, path: &str) -> Vec<u8> {
    let mut whole = Vec::new();
    let mut next = Some(0u64);
    while let Some(offset) = next {
        let request = http::Request::builder()
            .uri(format!("{path}?offset={offset}"))
            .header("authorization", format!("Bearer {}", keys::READ))
            .body(axum::body::Body::empty())
            .expect("request");
        let response = tower::ServiceExt::oneshot(stack.app.clone(), request)
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::OK);
        next = response
            .headers()
            .get("x-trace-next-offset")
            .and_then(|v| v.to_str().ok()?.parse().ok());
        let bytes = http_body_util::BodyExt::collect(response.into_body())
            .await
            .expect("body")
            .to_bytes();
        assert!(
            bytes.len() <= 4 * 1024 * 1024,
            "a page of {} bytes",
            bytes.len()
        );
        whole.extend_from_slice(&bytes);
    }
    whole
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

#[tokio::test]
async fn a_failed_job_log_is_stored_and_queues_one_analysis() {
    let stack = TestStack::with_analysis_queue().await;
    let log = String::from_utf8_lossy(&fixtures::bytes(LOG_FIXTURE)).to_string();
    let body = serde_json::to_vec(&push("failed", 4711, &log)).unwrap();
    let (status, answer) = push_log(&stack, body.clone(), &[]).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["job_key"], "gitlab/team/sub/service/4711");
    assert_eq!(answer["job"], "created");
    assert_eq!(answer["analysis_queued"], true);
    assert_eq!(answer["trace_length"], log.len());

    let (status, stored) = read_trace(&stack, answer["trace_url"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stored, log.as_bytes());
    let job = stack
        .record_json("team/sub/service", "JOB#gitlab#4711")
        .await
        .expect("job stored");
    assert_eq!(job["status"], "FAILURE");
    assert_eq!(job["name"], "unit-tests");
    assert_eq!(job["pipeline_id"], "900");
    assert_eq!(job["ref"], "main");
    assert_eq!(job["sha"], "deadbeef");

    // The same push again: the log is replaced, no second analysis is queued.
    let (status, again) = push_log(&stack, body, &[]).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(again["job"], "unchanged");
    assert_eq!(again["analysis_queued"], false);
    let messages = stack.queued_messages().await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["version"], 1);
    assert_eq!(messages[0]["provider"], "gitlab");
    assert_eq!(messages[0]["repo"], "team/sub/service");
    assert_eq!(messages[0]["job_id"], "4711");
    assert_eq!(messages[0]["origin"], "log_push");

    // A passing job's log is stored without an analysis.
    let (status, passed) = push_log(
        &stack,
        serde_json::to_vec(&push("success", 4712, "ok\n")).unwrap(),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(passed["analysis_queued"], false);
}

#[tokio::test]
async fn a_gzip_encoded_log_of_six_megabytes_round_trips() {
    let stack = TestStack::new().await;
    let fixture = String::from_utf8_lossy(&fixtures::bytes(LOG_FIXTURE)).to_string();
    let mut log = String::new();
    let mut line = 0u64;
    while log.len() < 6 * 1024 * 1024 {
        // Numbered so a lost or repeated chunk cannot go unnoticed.
        line += 1;
        log.push_str(&format!("{line:08} "));
        log.push_str(&fixture[..fixture.len().min(4000)]);
    }
    let body = gzip(&serde_json::to_vec(&push("failed", 1, &log)).unwrap());
    assert!(body.len() < 6 * 1024 * 1024);
    let (status, answer) = push_log(&stack, body, &[("content-encoding", "gzip")]).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["trace_length"], log.len());
    assert_eq!(answer["analysis"], "no analysis queue is configured");
    let stored = read_whole_trace(&stack, answer["trace_url"].as_str().unwrap()).await;
    assert!(
        stored == log.as_bytes(),
        "the stored log differs from the pushed one"
    );
    let (_, middle) = read_trace(
        &stack,
        &format!(
            "{}?offset=300000&limit=1000",
            answer["trace_url"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(middle, &log.as_bytes()[300_000..301_000]);
    for item in stack.items().await {
        let size: usize = item
            .values()
            .map(|v| v.as_b().map_or(0, |b| b.as_ref().len()))
            .sum();
        assert!(size < 400 * 1024, "an item is {size} bytes");
    }
}

#[tokio::test]
async fn oversized_corrupt_and_badly_encoded_pushes_are_refused() {
    let stack = TestStack::with_analysis_queue().await;
    let too_big = serde_json::to_vec(&push("failed", 2, &"x".repeat(7 * 1024 * 1024))).unwrap();
    let (status, answer) = push_log(&stack, too_big, &[]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    let bomb =
        gzip(&serde_json::to_vec(&push("failed", 3, &"a".repeat(65 * 1024 * 1024))).unwrap());
    let (status, answer) = push_log(&stack, bomb, &[("content-encoding", "gzip")]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("decompressed"));
    let (status, _) = push_log(
        &stack,
        b"not gzip at all".to_vec(),
        &[("content-encoding", "gzip")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = push_log(&stack, b"{}".to_vec(), &[("content-encoding", "br")]).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, answer) = push_log(
        &stack,
        serde_json::to_vec(&json!({"provider": "gitlab"})).unwrap(),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        answer["error"].as_str().unwrap().contains("`project`"),
        "{answer}"
    );
    let (status, _) = stack
        .post_json("/api/ingest/log", keys::READ, &push("failed", 4, "x"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(stack.items().await.is_empty());
    assert!(stack.queued_messages().await.is_empty());
}

async fn append(
    stack: &TestStack,
    path: &str,
    range: Option<&str>,
    part: &[u8],
) -> (StatusCode, http::HeaderMap, Value) {
    let mut request = http::Request::builder()
        .method(Method::PATCH)
        .uri(path)
        .header("authorization", format!("Bearer {}", keys::INGEST));
    if let Some(range) = range {
        request = request.header("content-range", range);
    }
    stack
        .send(
            request
                .body(axum::body::Body::from(part.to_vec()))
                .expect("request"),
        )
        .await
}

#[tokio::test]
async fn trace_parts_append_with_gitlab_range_semantics() {
    let stack = TestStack::new().await;
    let path = "/api/v1/jobs/gitlab/team%2Fsub%2Fservice/77/trace";
    let (status, headers, _) = append(&stack, path, Some("0-5"), b"hello ").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(headers.get("range").unwrap(), "0-6");
    assert_eq!(headers.get("build-status").unwrap(), "unknown");
    let (status, headers, _) = append(&stack, path, Some("6-11"), b"world\n").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(headers.get("range").unwrap(), "0-12");

    // A part that does not start at the current length: 416 and where to continue.
    for wrong in ["0-5", "6-11", "20-30"] {
        let (status, headers, body) = append(&stack, path, Some(wrong), b"again!").await;
        assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE, "{wrong}");
        assert_eq!(headers.get("range").unwrap(), "0-12");
        assert!(
            body["error"].as_str().unwrap().contains("starts at 12"),
            "{body}"
        );
    }
    let (status, _, body) = append(&stack, path, None, b"x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("Content-Range"));
    let (status, _, _) = append(&stack, path, Some("12-13"), &vec![b'x'; 2 * 1024 * 1024]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    let (status, bytes) = read_trace(&stack, path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bytes, b"hello world\n");
    let (_, tail) = read_trace(&stack, &format!("{path}?offset=6")).await;
    assert_eq!(tail, b"world\n");
    let (status, _) = read_trace(&stack, "/api/v1/jobs/gitlab/team%2Fsub%2Fservice/78/trace").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Non-UTF-8 bytes are kept exactly.
    let (status, _, _) = append(&stack, path, Some("12-14"), &[0xff, 0xfe, 0x00]).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, bytes) = read_trace(&stack, path).await;
    assert_eq!(&bytes[12..], &[0xff, 0xfe, 0x00]);
}

#[tokio::test]
async fn concurrent_appends_never_lose_or_duplicate_bytes() {
    let stack = TestStack::new().await;
    let path = "/api/v1/jobs/github/octo%2Frepo/5/trace";
    let mut expected = Vec::new();
    for round in 0..5u8 {
        let start = expected.len();
        let parts: Vec<Vec<u8>> = (0..6u8)
            .map(|writer| vec![b'a' + writer; 10 + round as usize])
            .collect();
        let range = format!("{start}-{}", start + 9);
        let results = futures_util::future::join_all(
            parts
                .iter()
                .map(|part| append(&stack, path, Some(&range), part)),
        )
        .await;
        let winners: Vec<usize> = results
            .iter()
            .enumerate()
            .filter(|(_, (status, _, _))| *status == StatusCode::ACCEPTED)
            .map(|(index, _)| index)
            .collect();
        assert_eq!(winners.len(), 1, "exactly one part may start at {start}");
        assert!(
            results
                .iter()
                .all(|(s, _, _)| *s == StatusCode::ACCEPTED
                    || *s == StatusCode::RANGE_NOT_SATISFIABLE)
        );
        expected.extend_from_slice(&parts[winners[0]]);
    }
    let (_, bytes) = read_trace(&stack, path).await;
    assert_eq!(bytes, expected);
}

#[tokio::test]
async fn reads_from_any_offset_find_the_right_chunks_of_an_appended_trace() {
    let stack = TestStack::new().await;
    let path = "/api/v1/jobs/gitlab/team%2Fsub%2Fservice/79/trace";
    // Parts of uneven sizes, one over a chunk long, so chunks start at irregular offsets.
    let mut expected = Vec::new();
    for (index, size) in [1000usize, 300_000, 7, 70_000, 262_144, 5]
        .iter()
        .enumerate()
    {
        let part: Vec<u8> = (0..*size).map(|i| ((i * 31 + index) % 251) as u8).collect();
        let range = format!("{}-{}", expected.len(), expected.len() + size - 1);
        let (status, _, body) = append(&stack, path, Some(&range), &part).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        expected.extend_from_slice(&part);
    }
    for offset in [
        0usize, 999, 1000, 1001, 262_143, 301_000, 301_007, 371_007, 633_150, 633_156,
    ] {
        let (status, bytes) = read_trace(&stack, &format!("{path}?offset={offset}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            bytes,
            &expected[offset.min(expected.len())..],
            "offset {offset}"
        );
    }
}
