//! The OpenAI-compatible client against a local fake that answers in chat-completions form,
//! one behaviour per model name: an answer after a 503, a model that never answers in time,
//! a proxy's HTML page, JSON without a message, a rejected key.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use buildlore_core::explain::ChatMessage;
use buildlore_core::job_analysis::{Llm, LlmError};
use buildlore_providers::llm::{LlmConfig, OpenAiCompatible};
use buildlore_tests::fake_server::serve;
use http::{HeaderMap, StatusCode};
use reqwest::Url;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const KEY: &str = "sk-test-key";

/// A request as the fake saw it: its `Authorization` header and its JSON body.
type SeenRequest = (Option<String>, Value);

#[derive(Clone, Default)]
struct Fake {
    calls: Arc<AtomicUsize>,
    requests: Arc<std::sync::Mutex<Vec<SeenRequest>>>,
}

async fn completions(State(fake): State<Fake>, headers: HeaderMap, body: String) -> Response {
    let call = fake.calls.fetch_add(1, Ordering::SeqCst);
    let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    fake.requests
        .lock()
        .unwrap()
        .push((authorization.clone(), request.clone()));
    if authorization.as_deref() != Some(&format!("Bearer {KEY}")) {
        let error = json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"}});
        return (StatusCode::UNAUTHORIZED, Json(error)).into_response();
    }
    match request["model"].as_str().unwrap_or_default() {
        "flaky" if call == 0 => (StatusCode::SERVICE_UNAVAILABLE, "upstream busy").into_response(),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            (StatusCode::OK, "late").into_response()
        }
        "behind-a-proxy" => (
            StatusCode::OK,
            [("content-type", "text/html")],
            "<html><body>502 Bad Gateway</body></html>",
        )
            .into_response(),
        "empty" => Json(json!({"id": "chatcmpl-2", "object": "chat.completion", "choices": []}))
            .into_response(),
        model => Json(json!({
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": "{\"root_cause\": \"x\"}"},
                "finish_reason": "stop",
            }],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }))
        .into_response(),
    }
}

async fn fake() -> (Fake, Url) {
    let fake = Fake::default();
    let router = Router::new()
        .route("/v1/chat/completions", post(completions))
        .with_state(fake.clone());
    let port = serve(router).await;
    (
        fake,
        Url::parse(&format!("http://127.0.0.1:{port}/v1")).unwrap(),
    )
}

fn client(base_url: &Url, model: &str, key: &str) -> OpenAiCompatible {
    OpenAiCompatible::new(LlmConfig {
        base_url: base_url.clone(),
        model: model.into(),
        api_key: Some(key.into()),
        timeout: Duration::from_millis(400),
        max_attempts: 2,
    })
    .unwrap()
}

fn question() -> Vec<ChatMessage> {
    vec![
        ChatMessage {
            role: "system".into(),
            content: "Answer in JSON.".into(),
        },
        ChatMessage {
            role: "user".into(),
            content: "Why did the job fail?".into(),
        },
    ]
}

#[tokio::test]
async fn answers_after_a_server_error_and_sends_the_chat_completions_request() {
    let (fake, url) = fake().await;
    let answer = client(&url, "flaky", KEY)
        .complete(&question())
        .await
        .unwrap();
    assert_eq!(answer, "{\"root_cause\": \"x\"}");
    assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
    let (authorization, request) = fake.requests.lock().unwrap().last().unwrap().clone();
    assert_eq!(authorization.as_deref(), Some("Bearer sk-test-key"));
    assert_eq!(request["model"], "flaky");
    assert_eq!(request["messages"][1]["content"], "Why did the job fail?");
    assert_eq!(request["response_format"]["type"], "json_object");
}

#[tokio::test]
async fn a_model_that_does_not_answer_in_time_is_retryable() {
    let (fake, url) = fake().await;
    let started = Instant::now();
    let error = client(&url, "slow", KEY)
        .complete(&question())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, LlmError::Retryable(detail) if detail.contains("timed out")),
        "{error:?}"
    );
    assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
    // Two attempts of 0.4 s and a backoff, not the 5 s the model would take.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn answers_that_are_not_chat_completions_are_permanent() {
    let (_, url) = fake().await;
    let html = client(&url, "behind-a-proxy", KEY)
        .complete(&question())
        .await
        .unwrap_err();
    assert!(
        matches!(&html, LlmError::Permanent(detail) if detail.contains("not JSON")),
        "{html:?}"
    );
    let empty = client(&url, "empty", KEY)
        .complete(&question())
        .await
        .unwrap_err();
    assert!(
        matches!(&empty, LlmError::Permanent(detail) if detail.contains("no message content")),
        "{empty:?}"
    );
}

#[tokio::test]
async fn a_rejected_key_is_permanent_and_not_retried() {
    let (fake, url) = fake().await;
    let error = client(&url, "gpt-4o-mini", "sk-wrong")
        .complete(&question())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, LlmError::Permanent(detail) if detail.contains("rejected")),
        "{error:?}"
    );
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
}
