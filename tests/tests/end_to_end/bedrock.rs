//! Analyses through Amazon Bedrock's Converse API: a local fake checks the SigV4 signature's
//! shape and the Converse request format, throttles once, then answers.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use buildlore_api::worker;
use buildlore_providers::Url;
use buildlore_providers::llm::LlmChoice;
use buildlore_tests::fake_server::serve;
use buildlore_tests::{TestStack, fixtures, keys};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const MODEL: &str = "anthropic.claude-3-haiku-20240307-v1:0";

#[derive(Clone, Default)]
struct FakeBedrock {
    calls: Arc<AtomicUsize>,
    problems: Arc<std::sync::Mutex<Vec<String>>>,
}

async fn converse(
    State(fake): State<FakeBedrock>,
    Path(model): Path<String>,
    headers: HeaderMap,
    Json(request): Json<Value>,
) -> Response {
    let mut problems = Vec::new();
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !authorization.starts_with("AWS4-HMAC-SHA256 Credential=emulator/")
        || !authorization.contains("/us-east-1/bedrock/aws4_request")
        || !authorization.contains("Signature=")
    {
        problems.push(format!("bad authorization: {authorization}"));
    }
    if !headers.contains_key("x-amz-date") {
        problems.push("no x-amz-date".into());
    }
    if model != MODEL {
        problems.push(format!("model {model}"));
    }
    let messages = request["messages"].as_array().cloned().unwrap_or_default();
    if messages.first().map(|m| m["role"].clone()) != Some(json!("user"))
        || request["system"][0]["text"].as_str().is_none()
        || messages[0]["content"][0]["text"].as_str().is_none()
    {
        problems.push(format!("not a Converse request: {request}"));
    }
    let call = fake.calls.fetch_add(1, Ordering::SeqCst);
    if !problems.is_empty() {
        fake.problems.lock().unwrap().extend(problems);
        return (StatusCode::FORBIDDEN, Json(json!({"message": "rejected"}))).into_response();
    }
    if call == 0 {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({"message": "Too many requests, please wait before trying again."})),
        )
            .into_response();
    }
    let follow_up = request["system"][0]["text"]
        .as_str()
        .is_some_and(|text| text.contains("follow-up"));
    let answer = if follow_up {
        // Converse takes alternating roles: the client joins the context and the question.
        let text = messages.last().unwrap()["content"][0]["text"]
            .as_str()
            .unwrap_or_default();
        let asked = text.rsplit("\n\n").next().unwrap_or_default();
        json!(format!(
            "About {asked:?}: the UUID parser rejects upper-case hex."
        ))
    } else {
        json!({
            "root_cause": "A unit test failed", "explanation": "x", "fix": "y",
            "severity": "low", "confidence": 0.5, "category": "test", "evidence_lines": [1],
        })
    };
    let answer = answer
        .as_str()
        .map_or_else(|| answer.to_string(), str::to_string);
    Json(json!({
        "output": {"message": {"role": "assistant", "content": [{"text": answer}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 10, "outputTokens": 20, "totalTokens": 30},
    }))
    .into_response()
}

#[tokio::test]
async fn the_worker_asks_bedrock_with_a_signed_converse_request() {
    let fake = FakeBedrock::default();
    let router = Router::new()
        .route("/model/{model}/converse", post(converse))
        .with_state(fake.clone());
    let port = serve(router).await;
    let stack = TestStack::with_analysis_queue_and_config(move |config| {
        config.llm = Some(LlmChoice::Bedrock {
            model_id: MODEL.into(),
            endpoint: Some(Url::parse(&format!("http://127.0.0.1:{port}")).unwrap()),
            timeout: Duration::from_secs(5),
        });
    })
    .await;
    let log = String::from_utf8_lossy(&fixtures::bytes(
        "ci-logs/github-actions/maven/2397394521-orig.log",
    ))
    .to_string();
    let push = json!({
        "provider": "gitlab", "project": "team/app", "pipeline_id": 5, "job_id": 50,
        "job_name": "test", "status": "failed", "branch": "main", "commit_sha": "abc",
        "pipeline_url": "https://gitlab.example.com/p/5", "log": log,
    });
    let (status, body) = stack
        .post_json("/api/ingest/log", keys::INGEST, &push)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let url = stack.state.config.analysis_queue_url.clone().unwrap();
    while worker::poll_once(&stack.state, &url, 0, Some(0))
        .await
        .unwrap()
        > 0
    {}
    assert_eq!(*fake.problems.lock().unwrap(), Vec::<String>::new());
    let (status, analysis) = stack
        .get("/api/ai/cache?projectId=team%2Fapp&jobId=50")
        .await;
    assert_eq!(status, StatusCode::OK, "{analysis}");
    assert_eq!(analysis["source"], "llm", "{analysis}");
    assert_eq!(analysis["model"], MODEL);
    assert_eq!(analysis["result"]["root_cause"], "A unit test failed");
    assert_eq!(
        fake.calls.load(Ordering::SeqCst),
        2,
        "one throttle, one answer"
    );

    // A follow-up: only the worker may call Bedrock, so the API queues it and answers 202.
    let ask = |question: &str, wait: u64| json!({"projectId": "team/app", "jobId": 50, "question": question, "wait": wait});
    let (status, queued) = stack
        .post_json("/api/ai/followup", keys::READ, &ask("Which test?", 0))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    assert_eq!(queued["status"], "queued");
    assert!(
        queued["poll"].as_str().unwrap().contains("jobId=50"),
        "{queued}"
    );
    assert_eq!(
        fake.calls.load(Ordering::SeqCst),
        2,
        "the API called no LLM"
    );
    while worker::poll_once(&stack.state, &url, 0, Some(0))
        .await
        .unwrap()
        > 0
    {}
    let (_, analysis) = stack
        .get("/api/ai/cache?projectId=team%2Fapp&jobId=50")
        .await;
    assert_eq!(
        analysis["conversation"].as_array().map(Vec::len),
        Some(1),
        "{analysis}"
    );
    assert_eq!(analysis["conversation"][0]["question"], "Which test?");
    assert_eq!(
        analysis["conversation"][0]["answer"],
        "About \"Which test?\": the UUID parser rejects upper-case hex."
    );
    assert!(analysis["conversation"][0]["timestamp"].is_string());

    // A secret in a question is redacted before it is queued, and the answer still finds it.
    let (status, _) = stack
        .post_json(
            "/api/ai/followup",
            keys::READ,
            &ask("Is password=hunter2-hunter2 the cause?", 0),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let queued = stack
        .clients
        .sqs
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(queued.len(), 1);
    let body = queued[0].body.as_deref().unwrap();
    assert!(!body.contains("hunter2"), "{body}");
    assert!(body.contains("\"version\":2"), "{body}");

    // With `wait`, the answer comes back in the same call once the worker has stored it.
    let state = stack.state.clone();
    let queue = url.clone();
    let worker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            worker::poll_once(&state, &queue, 0, Some(0)).await.unwrap();
        }
    });
    let (status, answered) = stack
        .post_json("/api/ai/followup", keys::READ, &ask("And the fix?", 10))
        .await;
    worker.abort();
    assert_eq!(status, StatusCode::OK, "{answered}");
    assert_eq!(
        answered["answer"],
        "About \"And the fix?\": the UUID parser rejects upper-case hex."
    );
    assert_eq!(answered["conversation"].as_array().unwrap().len(), 6);
    assert!(!answered.to_string().contains("hunter2"), "{answered}");
    assert_eq!(*fake.problems.lock().unwrap(), Vec::<String>::new());
}
