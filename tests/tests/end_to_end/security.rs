//! The holes an attacker's probe found, each closed: webhook deliveries deduplicated on id and
//! body with one winner under concurrency, headers checked before bodies are read, and input
//! that used to slip through (empty event names, ancient timestamps, gzip with garbage behind
//! it, ids that are not whole numbers, bytes that are not UTF-8, too short system prompts,
//! GitHub repos of three segments) refused with a 4xx that writes nothing.

use axum::body::Body;
use buildlore_core::compression::gzip;
use buildlore_core::webhooks::secret::signature_header;
use buildlore_tests::stack::secrets;
use buildlore_tests::{TestStack, fixtures, keys};
use http::{Method, Request, StatusCode};
use serde_json::{Value, json};

const WORKFLOW_RUN: &str = "webhooks/github/workflow_run/completed.payload.json";

#[tokio::test]
async fn a_reused_delivery_id_with_another_signed_body_is_processed() {
    let stack = TestStack::new().await;
    let payload = fixtures::bytes(WORKFLOW_RUN);
    let (status, first) = stack.github_hook("workflow_run", "d-1", &payload).await;
    assert_eq!(
        (status, first["status"].as_str()),
        (StatusCode::OK, Some("processed"))
    );
    // The same id, a different (validly signed) body: not a duplicate.
    let mut other: Value = serde_json::from_slice(&payload).unwrap();
    other["workflow_run"]["id"] = json!(987_654_321_u64);
    let other = serde_json::to_vec(&other).unwrap();
    let (status, second) = stack.github_hook("workflow_run", "d-1", &other).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["status"], "processed", "{second}");
    assert_eq!(second["results"][0]["result"], "created", "{second}");
    // The same id and body again: a duplicate, nothing written.
    let before = stack.items().await;
    let (_, third) = stack.github_hook("workflow_run", "d-1", &other).await;
    assert_eq!(third["status"], "duplicate");
    assert_eq!(stack.items().await, before);
}

#[tokio::test]
async fn of_concurrent_copies_of_one_delivery_exactly_one_is_processed() {
    let stack = TestStack::new().await;
    let payload = fixtures::bytes(WORKFLOW_RUN);
    let copies = (0..20).map(|_| stack.github_hook("workflow_run", "d-concurrent", &payload));
    let answers = futures_util::future::join_all(copies).await;
    let processed = answers
        .iter()
        .filter(|(status, body)| *status == StatusCode::OK && body["status"] == "processed")
        .count();
    let duplicates = answers
        .iter()
        .filter(|(status, body)| *status == StatusCode::OK && body["status"] == "duplicate")
        .count();
    assert_eq!((processed, duplicates), (1, 19), "{answers:?}");
}

#[tokio::test]
async fn an_empty_event_header_is_a_bad_request() {
    let stack = TestStack::new().await;
    let payload = fixtures::bytes(WORKFLOW_RUN);
    let signature = signature_header(secrets::GITHUB.as_bytes(), &payload);
    let (status, body) = stack
        .deliver(
            "/webhooks/github",
            &[("x-github-event", ""), ("x-hub-signature-256", &signature)],
            payload,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().unwrap().contains("X-GitHub-Event"));
    let (status, _) = stack
        .deliver(
            "/webhooks/gitlab",
            &[("x-gitlab-event", " "), ("x-gitlab-token", secrets::GITLAB)],
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(stack.items().await.is_empty());
}

#[tokio::test]
async fn a_gitlab_token_is_checked_before_the_body_is_read() {
    let stack = TestStack::new().await;
    // Larger than any webhook body: read first, it would be 413; unread, it is 401.
    let huge = vec![b' '; 6 * 1024 * 1024];
    let (status, body) = stack
        .deliver(
            "/webhooks/gitlab",
            &[
                ("x-gitlab-event", "Pipeline Hook"),
                ("x-gitlab-token", "not-the-token"),
            ],
            huge,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn input_that_used_to_slip_through_is_refused_and_nothing_is_written() {
    let stack = TestStack::with_analysis_queue().await;
    // A build from year 0.
    let (status, body) = stack
        .post_build(
            &json!({"build_id": "1", "repo": "team/app", "branch": "main",
                            "status": "success", "timestamp": "0000-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("timestamp"),
        "{body}"
    );

    // A gzip push with garbage after the stream.
    let mut packed = gzip(b"$ make\nerror: boom\n");
    packed.extend_from_slice(b"trailing garbage");
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/ingest/log?provider=gitlab&project=team/app&job_id=5&job_name=build&status=failed")
        .header("authorization", format!("Bearer {}", keys::INGEST))
        .header("content-type", "text/plain")
        .header("content-encoding", "gzip")
        .body(Body::from(packed))
        .unwrap();
    let (status, _, body) = stack.send(request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().unwrap().contains("gzip"), "{body}");

    // Job ids that are bytes that are not UTF-8: refused, not decoded to the same U+FFFD.
    for job in ["%FF", "%C3%28"] {
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("/api/ingest/log?provider=gitlab&project=team/app&job_id={job}&job_name=build&status=failed"))
            .header("authorization", format!("Bearer {}", keys::INGEST))
            .header("content-type", "text/plain")
            .body(Body::from("$ make\nerror: boom\n"))
            .unwrap();
        let (status, _, body) = stack.send(request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{job}: {body}");
        assert!(body["error"].as_str().unwrap().contains("UTF-8"), "{body}");
    }

    // An id that is a float is no id.
    let (status, body) = stack
        .post_json(
            "/api/ai/analyse",
            keys::READ,
            &json!({"projectId": "team/app", "jobId": 1e308}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().unwrap().contains("jobId"), "{body}");

    // A GitHub repo is owner/name.
    let (status, body) = stack
        .get("/api/jobtrace?provider=github&repo=a/b/c&jobId=1")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("owner/name"),
        "{body}"
    );

    assert!(stack.items().await.is_empty(), "nothing is written");
    assert!(stack.queued_messages().await.is_empty());
}

#[tokio::test]
async fn a_system_prompt_must_say_something() {
    let stack = TestStack::new().await;
    for prompt in ["a", "  too short  "] {
        let (status, _, body) = stack
            .call(
                Method::PUT,
                "/api/ai/system-prompt",
                Some(keys::ADMIN),
                Some(&json!({"prompt": prompt, "version": 0})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }
    let (_, prompt) = stack.get("/api/ai/system-prompt").await;
    assert_eq!(prompt["version"], 0, "{prompt}");
}

/// A request whose answer may be raw bytes (a trace), not JSON.
async fn raw(stack: &TestStack, request: Request<Body>) -> (StatusCode, http::HeaderMap, Vec<u8>) {
    let response = tower::ServiceExt::oneshot(stack.app.clone(), request)
        .await
        .unwrap_or_else(|never| match never {});
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .map(|collected| collected.to_bytes().to_vec())
        .unwrap_or_default();
    (status, headers, bytes)
}

fn trace_request(method: Method, path: &str, range: Option<&str>, body: Vec<u8>) -> Request<Body> {
    let key = if method == Method::GET {
        keys::READ
    } else {
        keys::INGEST
    };
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {key}"));
    if let Some(range) = range {
        builder = builder.header("content-range", range);
    }
    builder.body(Body::from(body)).unwrap()
}

#[tokio::test]
async fn a_trace_has_one_cap_however_it_arrives_and_reads_back_in_pages() {
    let stack = TestStack::with_config(|config| config.providers.max_bytes = 1_000).await;
    let path = "/api/v1/jobs/gitlab/team%2Fapp/9/trace";
    let (status, _, _) = stack
        .send(trace_request(
            Method::PATCH,
            path,
            Some("0-599"),
            vec![b'a'; 600],
        ))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _, body) = stack
        .send(trace_request(
            Method::PATCH,
            path,
            Some("600-1199"),
            vec![b'b'; 600],
        ))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("TRACE_MAX_BYTES"),
        "{body}"
    );
    let (_, headers, _) = raw(&stack, trace_request(Method::GET, path, None, Vec::new())).await;
    assert_eq!(
        headers["x-trace-length"], "600",
        "nothing of the refused part was kept"
    );

    // A pushed log over the cap: 413, nothing stored.
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/ingest/log?provider=gitlab&project=team/app&job_id=10&job_name=build&status=failed")
        .header("authorization", format!("Bearer {}", keys::INGEST))
        .header("content-type", "text/plain")
        .header("content-encoding", "gzip")
        .body(Body::from(gzip(&vec![b'x'; 5_000])))
        .unwrap();
    let (status, _, body) = stack.send(request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    let (status, _, _) = stack
        .send(trace_request(
            Method::GET,
            "/api/v1/jobs/gitlab/team%2Fapp/10/trace",
            None,
            Vec::new(),
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn reading_a_long_trace_without_a_limit_answers_one_page_and_where_the_next_starts() {
    let stack = TestStack::new().await;
    let log = vec![b'l'; 5 * 1024 * 1024];
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/ingest/log?provider=gitlab&project=team/app&job_id=11&job_name=build&status=success")
        .header("authorization", format!("Bearer {}", keys::INGEST))
        .header("content-type", "text/plain")
        .header("content-encoding", "gzip")
        .body(Body::from(gzip(&log)))
        .unwrap();
    let (status, _, body) = stack.send(request).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let path = "/api/v1/jobs/gitlab/team%2Fapp/11/trace";
    let (status, headers, _) =
        raw(&stack, trace_request(Method::GET, path, None, Vec::new())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers["x-trace-length"],
        (5 * 1024 * 1024).to_string().as_str()
    );
    assert_eq!(
        headers["x-trace-next-offset"],
        (4 * 1024 * 1024).to_string().as_str()
    );
    let next = format!("{path}?offset={}", 4 * 1024 * 1024);
    let (_, headers, _) = raw(&stack, trace_request(Method::GET, &next, None, Vec::new())).await;
    assert!(
        headers.get("x-trace-next-offset").is_none(),
        "the last page"
    );
    for bad in ["?limit=0", "?limit=99999999999"] {
        let (status, _, _) = stack
            .send(trace_request(
                Method::GET,
                &format!("{path}{bad}"),
                None,
                Vec::new(),
            ))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

/// Calls one Secrets Manager action on the emulator (which does not check signatures).
async fn secrets_manager(action: &str, body: Value) -> Value {
    buildlore_providers::install_crypto();
    reqwest::Client::new()
        .post(buildlore_tests::emulator::endpoint())
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", format!("secretsmanager.{action}"))
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=emulator/20261202/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(body.to_string())
        .send()
        .await
        .expect("the emulator answers")
        .json()
        .await
        .expect("JSON")
}

/// Creates a secret in the emulator's Secrets Manager and returns its ARN.
async fn create_secret(name: &str, value: &str) -> String {
    let answer =
        secrets_manager("CreateSecret", json!({"Name": name, "SecretString": value})).await;
    answer["ARN"].as_str().expect("an ARN").to_string()
}

#[tokio::test]
async fn keys_and_tokens_named_by_secret_arns_are_read_from_secrets_manager() {
    use buildlore_api::config::{Config, ConfigError, resolve_secrets};
    use buildlore_providers::secrets_manager::SecretsManager;
    let stack = TestStack::new().await;
    let name = buildlore_tests::stack::unique_name("read-key");
    let arn = create_secret(&name, "read-key-kept-in-secrets-manager").await;
    let endpoint = reqwest::Url::parse(buildlore_tests::emulator::endpoint()).unwrap();
    let manager = SecretsManager::new(
        "us-east-1",
        Some(endpoint),
        stack.clients.credentials.clone().unwrap(),
    )
    .unwrap();
    let read = |arn: String| {
        let manager = manager.clone();
        async move { manager.secret_string(&arn).await.map_err(|e| e.to_string()) }
    };

    let environment = |variable: &str| match variable {
        "TABLE_NAME" => Some("t".to_string()),
        "READ_API_KEY_SECRET_ARN" => Some(arn.clone()),
        _ => None,
    };
    let resolved = resolve_secrets(&environment, read).await.unwrap();
    assert_eq!(resolved["READ_API_KEY"], "read-key-kept-in-secrets-manager");
    let config =
        Config::from_lookup(|v| resolved.get(v).cloned().or_else(|| environment(v))).unwrap();
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "authorization",
        "Bearer read-key-kept-in-secrets-manager".parse().unwrap(),
    );
    assert!(
        config
            .keys
            .authorize(&headers, buildlore_api::auth::Scope::Read)
            .is_ok()
    );

    // Rotated in Secrets Manager and read again: the new key works for every holder of the
    // configuration, the old one no longer does.
    secrets_manager(
        "PutSecretValue",
        json!({"SecretId": arn, "SecretString": "read-key-rotated-in-secrets-manager"}),
    )
    .await;
    let held_by_a_handler = config.keys.clone();
    let resolved = resolve_secrets(&environment, read).await.unwrap();
    let fresh =
        Config::from_lookup(|v| resolved.get(v).cloned().or_else(|| environment(v))).unwrap();
    config.take_rotated_secrets(&fresh);
    let mut rotated = http::HeaderMap::new();
    rotated.insert(
        "authorization",
        "Bearer read-key-rotated-in-secrets-manager"
            .parse()
            .unwrap(),
    );
    assert!(
        held_by_a_handler
            .authorize(&rotated, buildlore_api::auth::Scope::Read)
            .is_ok()
    );
    assert!(
        held_by_a_handler
            .authorize(&headers, buildlore_api::auth::Scope::Read)
            .is_err()
    );

    // A secret that does not exist, or one given twice, stops the start-up with a clear error
    // that shows no secret value.
    let missing = |variable: &str| {
        (variable == "LLM_API_KEY_SECRET_ARN")
            .then(|| "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope".to_string())
    };
    match resolve_secrets(&missing, read).await {
        Err(ConfigError::Secret(variable, reason)) => {
            assert_eq!(variable, "LLM_API_KEY_SECRET_ARN");
            assert!(reason.contains("ResourceNotFound"), "{reason}");
        }
        other => panic!("expected a secret error, got {other:?}"),
    }
    let twice = |variable: &str| match variable {
        "READ_API_KEY_SECRET_ARN" => Some(arn.clone()),
        "READ_API_KEY" => Some("read-key-in-plain-sight-1".to_string()),
        _ => None,
    };
    assert!(matches!(
        resolve_secrets(&twice, read).await,
        Err(ConfigError::Conflict("READ_API_KEY", _))
    ));
}
