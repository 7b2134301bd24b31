//! Bad input is normal input: every case gets a 4xx JSON error that says what to fix, and
//! nothing in the table changes.

use axum::body::Body;
use buildlore_tests::{TestStack, keys};
use http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};

struct Case {
    name: &'static str,
    method: Method,
    path: &'static str,
    key: Option<&'static str>,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: StatusCode,
    /// A fragment the error message must contain.
    says: &'static str,
}

fn valid() -> Value {
    json!({"build_id": "ok-1", "repo": "group/app", "branch": "main", "status": "success"})
}

fn with(field: &str, value: Value) -> Vec<u8> {
    let mut build = valid();
    build[field] = value;
    serde_json::to_vec(&build).unwrap_or_default()
}

fn without(field: &str) -> Vec<u8> {
    let mut build = valid();
    build.as_object_mut().map(|o| o.remove(field));
    serde_json::to_vec(&build).unwrap_or_default()
}

fn case(name: &'static str, body: Vec<u8>, status: StatusCode, says: &'static str) -> Case {
    Case {
        name,
        method: Method::POST,
        path: "/api/v1/builds",
        key: Some(keys::INGEST),
        content_type: Some("application/json"),
        body,
        status,
        says,
    }
}

fn cases() -> Vec<Case> {
    let bad = StatusCode::BAD_REQUEST;
    let batch_of = |n: usize| {
        let records: Vec<Value> = (0..n)
            .map(|i| json!({"build_id": format!("b{i}"), "repo": "group/app", "branch": "main", "status": "success"}))
            .collect();
        serde_json::to_vec(&records).unwrap_or_default()
    };
    let mut cases = vec![
        case(
            "malformed JSON",
            b"{\"build_id\": ".to_vec(),
            bad,
            "not valid JSON",
        ),
        case("trailing garbage", b"{} x".to_vec(), bad, "not valid JSON"),
        case("empty body", Vec::new(), bad, "empty"),
        case(
            "array instead of object",
            b"[1,2]".to_vec(),
            bad,
            "JSON object",
        ),
        case("string body", b"\"build\"".to_vec(), bad, "JSON object"),
        case(
            "missing build_id",
            without("build_id"),
            bad,
            "`build_id` is required",
        ),
        case("missing repo", without("repo"), bad, "`repo` is required"),
        case(
            "missing branch",
            without("branch"),
            bad,
            "`branch` is required",
        ),
        case(
            "missing status",
            without("status"),
            bad,
            "`status` is required",
        ),
        case(
            "empty build_id",
            with("build_id", json!("  ")),
            bad,
            "`build_id` must not be empty",
        ),
        case(
            "null status",
            with("status", Value::Null),
            bad,
            "`status` is required",
        ),
        case(
            "numeric branch",
            with("branch", json!(12)),
            bad,
            "`branch` must be a string",
        ),
        case(
            "boolean build_id",
            with("build_id", json!(true)),
            bad,
            "`build_id` must be a string or a whole number",
        ),
        case(
            "unknown status",
            with("status", json!("exploded")),
            bad,
            "unknown status",
        ),
        case(
            "bad timestamp",
            with("timestamp", json!("22/11/2026")),
            bad,
            "RFC 3339",
        ),
        case(
            "timestamp in the far future",
            with("timestamp", json!("2099-01-01T00:00:00Z")),
            bad,
            "future",
        ),
        case(
            "negative duration",
            with("duration_ms", json!(-1)),
            bad,
            "negative",
        ),
        case(
            "fractional duration",
            with("duration_ms", json!(1.5)),
            bad,
            "whole number",
        ),
        case(
            "duration as text",
            with("duration_ms", json!("60")),
            bad,
            "got a string",
        ),
        case(
            "extra_data not an object",
            with("extra_data", json!([1])),
            bad,
            "`extra_data` must be a JSON object",
        ),
        case(
            "oversized extra_data",
            with("extra_data", json!({"blob": "x".repeat(70_000)})),
            bad,
            "64 KB",
        ),
        case(
            "hostile repo",
            with("repo", json!("../../etc/passwd")),
            bad,
            "`repo`",
        ),
        case(
            "repo with key separator",
            with("repo", json!("group#x/app")),
            bad,
            "`repo`",
        ),
        case(
            "control characters in branch",
            with("branch", json!("main\u{0}\r\n")),
            bad,
            "control",
        ),
        case(
            "overlong build_id",
            with("build_id", json!("x".repeat(500))),
            bad,
            "at most 128",
        ),
        case(
            "oversized body",
            with("extra_data", json!({"blob": "x".repeat(200_000)})),
            StatusCode::PAYLOAD_TOO_LARGE,
            "limit",
        ),
        Case {
            content_type: Some("application/x-www-form-urlencoded"),
            ..case(
                "form content type",
                serde_json::to_vec(&valid()).unwrap_or_default(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "application/json",
            )
        },
        Case {
            content_type: Some("text/plain"),
            ..case(
                "text content type",
                serde_json::to_vec(&valid()).unwrap_or_default(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "application/json",
            )
        },
        Case {
            key: None,
            ..case(
                "no key",
                serde_json::to_vec(&valid()).unwrap_or_default(),
                StatusCode::UNAUTHORIZED,
                "Authorization: Bearer",
            )
        },
        Case {
            key: Some("not-a-key-we-know-at-all"),
            ..case(
                "unknown key",
                serde_json::to_vec(&valid()).unwrap_or_default(),
                StatusCode::UNAUTHORIZED,
                "not recognised",
            )
        },
        Case {
            key: Some(keys::READ),
            ..case(
                "read key cannot ingest",
                serde_json::to_vec(&valid()).unwrap_or_default(),
                StatusCode::FORBIDDEN,
                "ingest scope",
            )
        },
        Case {
            path: "/api/v1/builds/batch",
            ..case("batch over 100", batch_of(101), bad, "at most 100")
        },
        Case {
            path: "/api/v1/builds/batch",
            ..case("empty batch", b"[]".to_vec(), bad, "empty")
        },
        Case {
            path: "/api/v1/builds/batch",
            ..case(
                "batch not a list",
                b"{\"builds\": 3}".to_vec(),
                bad,
                "JSON array",
            )
        },
        Case {
            key: Some(keys::READ),
            path: "/api/v1/builds/batch",
            ..case(
                "read key cannot batch",
                batch_of(1),
                StatusCode::FORBIDDEN,
                "ingest scope",
            )
        },
        Case {
            method: Method::DELETE,
            ..case(
                "wrong method",
                Vec::new(),
                StatusCode::METHOD_NOT_ALLOWED,
                "not allowed",
            )
        },
    ];
    let read = |name, path, status, says| Case {
        method: Method::GET,
        path,
        key: Some(keys::READ),
        content_type: None,
        ..case(name, Vec::new(), status, says)
    };
    cases.extend([
        read(
            "list without repo",
            "/api/v1/builds",
            bad,
            "`repo` is required",
        ),
        read(
            "limit too large",
            "/api/v1/builds?repo=group/app&limit=100000",
            bad,
            "1 to 100",
        ),
        read(
            "limit not a number",
            "/api/v1/builds?repo=group/app&limit=ten",
            bad,
            "1 to 100",
        ),
        read(
            "bad status filter",
            "/api/v1/builds?repo=group/app&status=maybe",
            bad,
            "unknown status",
        ),
        read(
            "bad since",
            "/api/v1/builds?repo=group/app&since=lastweek",
            bad,
            "window",
        ),
        read(
            "since beyond retention",
            "/api/v1/builds?repo=group/app&since=5000d",
            bad,
            "retained",
        ),
        read(
            "forged cursor",
            "/api/v1/builds?repo=group/app&cursor=eyJwayI6IngifQ",
            bad,
            "cursor",
        ),
        read(
            "bad repo in path",
            "/api/v1/repos/a%2F%2Fb/builds/1",
            bad,
            "repo",
        ),
        read(
            "broken query encoding",
            "/api/v1/builds?repo=%ZZ",
            bad,
            "`repo` must be a path",
        ),
        read(
            "unknown route",
            "/api/v2/nothing",
            StatusCode::NOT_FOUND,
            "no route",
        ),
        Case {
            key: Some(keys::INGEST),
            ..read(
                "ingest key cannot read",
                "/api/v1/builds?repo=group/app",
                StatusCode::FORBIDDEN,
                "read scope",
            )
        },
        Case {
            key: None,
            ..read(
                "reading needs a key",
                "/api/v1/builds?repo=group/app",
                StatusCode::UNAUTHORIZED,
                "Authorization",
            )
        },
    ]);
    cases
}

#[tokio::test]
async fn every_bad_request_gets_a_clear_4xx_and_writes_nothing() {
    let stack = TestStack::new().await;
    // Something stored already, which must survive every bad request untouched.
    let (status, _) = stack.post_build(&json!({"build_id": "keep", "repo": "group/app", "branch": "main", "status": "running"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let before = stack.items().await;
    let cases = cases();
    assert!(cases.len() >= 25);
    for case in cases {
        let mut request = Request::builder()
            .method(case.method.clone())
            .uri(case.path);
        if let Some(key) = case.key {
            request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        if let Some(content_type) = case.content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let request = request
            .body(Body::from(case.body))
            .unwrap_or_else(|e| panic!("{e}"));
        let (status, _, body) = stack.send(request).await;
        assert_eq!(status, case.status, "{}: {body}", case.name);
        assert_eq!(body["statusCode"], case.status.as_u16(), "{}", case.name);
        assert!(body["timestamp"].is_string(), "{}", case.name);
        let message = body["error"].as_str().unwrap_or_default();
        assert!(
            message.contains(case.says),
            "{}: {message:?} should say {:?}",
            case.name,
            case.says
        );
    }
    assert_eq!(
        stack.items().await,
        before,
        "a bad request changed the table"
    );
}
