//! gitlab-summary's contract, endpoint by endpoint: every field of the reference's example
//! answer (`tests/fixtures/contracts/gitlab-summary/`) is in ours, at the same place, with the
//! same JSON type. A dashboard or script written for gitlab-summary reads our answers.

use axum::routing::post;
use axum::{Json, Router};
use buildlore_api::worker;
use buildlore_providers::Url;
use buildlore_providers::llm::{LlmChoice, LlmConfig};
use buildlore_tests::fake_server::serve;
use buildlore_tests::{TestStack, fixtures, keys};
use chrono::{Duration, Utc};
use http::{Method, StatusCode};
use serde_json::{Value, json};

/// Where `ours` lacks a field of `example` or has it with another JSON type. `null` in the
/// example stands for any value; an example array's first element is the shape of each of ours.
fn mismatches(example: &Value, ours: &Value, at: &str, found: &mut Vec<String>) {
    match example {
        Value::Null => {}
        Value::Object(fields) => match ours.as_object() {
            None => found.push(format!("{at}: an object expected, got {ours}")),
            Some(object) => {
                for (name, value) in fields {
                    match object.get(name) {
                        None => found.push(format!("{at}.{name} is missing")),
                        Some(ours) => mismatches(value, ours, &format!("{at}.{name}"), found),
                    }
                }
            }
        },
        Value::Array(items) => match (ours.as_array(), items.first()) {
            (None, _) => found.push(format!("{at}: an array expected, got {ours}")),
            (Some(ours), Some(shape)) => {
                if ours.is_empty() {
                    found.push(format!("{at}: empty, so its elements' shape is unchecked"));
                }
                for (index, item) in ours.iter().enumerate() {
                    mismatches(shape, item, &format!("{at}[{index}]"), found);
                }
            }
            (Some(_), None) => {}
        },
        Value::Number(number) => {
            let integer = number.is_u64() || number.is_i64();
            match ours {
                Value::Number(n) if !integer || n.is_u64() || n.is_i64() => {}
                _ => found.push(format!(
                    "{at}: {} expected, got {ours}",
                    if integer { "an integer" } else { "a number" }
                )),
            }
        }
        Value::String(_) if ours.is_string() => {}
        Value::Bool(_) if ours.is_boolean() => {}
        _ => found.push(format!("{at}: {example} expected, got {ours}")),
    }
}

fn assert_conforms(document: &str, ours: &Value) {
    let example = fixtures::json(&format!("contracts/gitlab-summary/{document}.json"));
    let mut found = Vec::new();
    mismatches(&example, ours, document, &mut found);
    assert!(found.is_empty(), "{document}: {found:#?}\nours: {ours:#}");
}

async fn completions(Json(_request): Json<Value>) -> Json<Value> {
    let answer = json!({
        "root_cause": "test-build fails: the build script exits with 1",
        "explanation": "The job's script failed.", "fix": "Fix the build script.",
        "severity": "medium", "confidence": 0.6, "category": "compile", "evidence_lines": [2],
    });
    Json(
        json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": answer.to_string()}}]}),
    )
}

fn gitlab_time(at: chrono::DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

#[tokio::test]
async fn every_gitlab_summary_endpoint_answers_in_its_documented_shape() {
    let port = serve(Router::new().route("/v1/chat/completions", post(completions))).await;
    let stack = TestStack::with_analysis_queue_and_config(move |config| {
        config.llm = Some(LlmChoice::OpenAi(LlmConfig {
            base_url: Url::parse(&format!("http://127.0.0.1:{port}/v1")).unwrap(),
            model: "fake-model".into(),
            api_key: Some("sk-contract-test-key-0000".into()),
            timeout: std::time::Duration::from_secs(5),
            max_attempts: 1,
        }));
    })
    .await;
    // GitLab's documented pipeline hook, moved into the last hour.
    let mut hook = fixtures::json("webhooks/gitlab/pipeline_hook.json");
    let started = Utc::now() - Duration::hours(1);
    hook["object_attributes"]["created_at"] = json!(gitlab_time(started));
    hook["object_attributes"]["finished_at"] = json!(gitlab_time(started + Duration::seconds(63)));
    let (status, _) = stack
        .gitlab_hook("Pipeline Hook", &serde_json::to_vec(&hook).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);

    let (_, health) = stack.get("/api/health").await;
    assert_conforms("health", &health);
    let (_, version) = stack.get("/api/version").await;
    assert_conforms("version", &version);
    let (_, summary) = stack.get("/api/pipelines/summary?since=1d").await;
    assert_conforms("summary", &summary);
    let (_, details) = stack.get("/api/pipelines/1/details/31").await;
    assert_conforms("details", &details);
    let (_, _, changed) = stack
        .call(
            Method::POST,
            "/api/settings",
            Some(keys::ADMIN),
            Some(&json!({"group": "team", "since": "30d"})),
        )
        .await;
    assert_conforms("settings-post", &changed);
    let (_, settings) = stack.get("/api/settings").await;
    assert_conforms("settings", &settings);

    // An analysis of the failed job, then a follow-up.
    let ask = json!({"projectId": 1, "jobId": 378, "pipelineId": 31, "jobName": "test-build",
                     "log": "$ make\nsrc/a.c:3: error: 'x' undeclared\nThe command \"make\" exited with 1.\n"});
    let (status, queued) = stack.post_json("/api/ai/analyse", keys::ADMIN, &ask).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let url = stack.state.config.analysis_queue_url.clone().unwrap();
    while worker::poll_once(&stack.state, &url, 0, Some(0))
        .await
        .unwrap()
        > 0
    {}
    let (status, analysis) = stack
        .post_json(
            "/api/ai/analyse",
            keys::READ,
            &json!({"projectId": 1, "jobId": 378}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{analysis}");
    assert_conforms("analyse", &analysis);
    let (status, answer) = stack
        .post_json(
            "/api/ai/followup",
            keys::READ,
            &json!({"projectId": 1, "jobId": 378, "question": "Why?"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_conforms("followup", &answer);
    let (_, analyzed) = stack.get("/api/ai/analyzed?projectId=1").await;
    assert_conforms("analyzed", &analyzed);
    let (_, cached) = stack.get("/api/ai/cache?projectId=1&jobId=378").await;
    assert_conforms("cache", &cached);
    let (_, history) = stack.get("/api/ai/history").await;
    assert_conforms("history", &history);
    let (_, _, prompt) = stack
        .call(
            Method::PUT,
            "/api/ai/system-prompt",
            Some(keys::ADMIN),
            Some(&json!({"prompt": "You analyse CI failures. Answer with the JSON object asked for."})),
        )
        .await;
    assert_conforms("system-prompt-put", &prompt);
    let (_, _, forgotten) = stack
        .call(
            Method::DELETE,
            "/api/ai/cache?projectId=1&jobId=378",
            Some(keys::ADMIN),
            None,
        )
        .await;
    assert_conforms("cache-delete", &forgotten);
    let (status, error) = stack.get("/api/v1/builds").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_conforms("error", &error);
}

#[test]
fn the_shape_check_finds_what_differs() {
    let example = json!({"a": 1, "b": {"c": "x"}, "d": [{"e": 1.5}], "f": null});
    let mut found = Vec::new();
    mismatches(
        &example,
        &json!({"a": "1", "b": {}, "d": [{"e": 2}, {"e": "no"}], "f": [1]}),
        "doc",
        &mut found,
    );
    assert_eq!(
        found,
        [
            "doc.a: an integer expected, got \"1\"",
            "doc.b.c is missing",
            "doc.d[1].e: a number expected, got \"no\"",
        ]
    );
}
