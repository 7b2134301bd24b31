//! Dashboard sessions over HTTP: sign-in with a read or admin key sets a signed, expiring,
//! HttpOnly SameSite=Strict cookie (never the key), which the API routes accept in place of
//! the Authorization header; state-changing requests with the cookie must come from the site
//! itself; sign-out clears it. The pages' headers and asset budget are checked here too.

use axum::body::Body;
use buildlore_api::auth::ApiKeys;
use buildlore_api::dashboard::{CONTENT_SECURITY_POLICY, assets};
use buildlore_tests::{TestStack, keys};
use http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use std::io::Write;
use tower::ServiceExt;

const SITE: &str = "127.0.0.1:3000";
const ORIGIN: &str = "http://127.0.0.1:3000";

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

async fn send(stack: &TestStack, request: Request<Body>) -> Answer {
    let response = stack
        .app
        .clone()
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn sign_in(stack: &TestStack, key: &str, origin: Option<&str>, next: &str) -> Answer {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri("/session")
        .header(header::HOST, SITE)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(origin) = origin {
        request = request.header(header::ORIGIN, origin);
    }
    let body = format!("key={}&next={}", form_encode(key), form_encode(next));
    send(stack, request.body(Body::from(body)).unwrap()).await
}

/// The `name=value` part of the session's Set-Cookie.
fn cookie_of(answer: &Answer) -> String {
    let set = answer.headers[header::SET_COOKIE].to_str().unwrap();
    set.split(';').next().unwrap().to_string()
}

async fn with_cookie(
    stack: &TestStack,
    method: Method,
    path: &str,
    cookie: &str,
    origin: Option<&str>,
    body: Option<&str>,
) -> Answer {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, SITE)
        .header(header::COOKIE, cookie);
    if let Some(origin) = origin {
        request = request.header(header::ORIGIN, origin);
    }
    if body.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    send(stack, request.body(body).unwrap()).await
}

#[tokio::test]
async fn a_read_key_starts_a_session_the_api_accepts() {
    let stack = TestStack::new().await;
    let answer = sign_in(&stack, keys::READ, Some(ORIGIN), "/failures?repo=a/b").await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.headers[header::LOCATION], "/failures?repo=a/b");
    let set_cookie = answer.headers[header::SET_COOKIE].to_str().unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain HTTP: {set_cookie}");
    assert!(
        !set_cookie.contains(keys::READ),
        "the key is never in the cookie"
    );
    let cookie = cookie_of(&answer);

    let summary = with_cookie(
        &stack,
        Method::GET,
        "/api/pipelines/summary",
        &cookie,
        None,
        None,
    )
    .await;
    assert_eq!(summary.status, StatusCode::OK, "{}", summary.body);
    let page = with_cookie(&stack, Method::GET, "/", &cookie, None, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(&assets::url("overview.js")));
    assert!(page.body.contains("read-only"));

    // A read session cannot do what needs admin.
    let purge = with_cookie(
        &stack,
        Method::DELETE,
        "/api/ai/cache?projectId=a/b&jobId=1",
        &cookie,
        Some(ORIGIN),
        None,
    )
    .await;
    assert_eq!(purge.status, StatusCode::FORBIDDEN, "{}", purge.body);

    // A tampered session is refused, and the sign-in page says so.
    let tampered = cookie.replace(".read.", ".admin.");
    let refused = with_cookie(
        &stack,
        Method::GET,
        "/api/pipelines/summary",
        &tampered,
        None,
        None,
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let page = with_cookie(&stack, Method::GET, "/", &tampered, None, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("sign in again"), "{}", page.body);
    assert!(page.body.contains(r#"type="password""#));

    // Behind HTTPS the cookie is Secure.
    let request = Request::builder()
        .method(Method::POST)
        .uri("/session")
        .header(header::HOST, "ci.example.com")
        .header(header::ORIGIN, "https://ci.example.com")
        .header("x-forwarded-proto", "https")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("key={}", keys::ADMIN)))
        .unwrap();
    let answer = send(&stack, request).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert!(
        answer.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .ends_with("; Secure")
    );
    assert_eq!(answer.headers[header::LOCATION], "/");
}

#[tokio::test]
async fn wrong_keys_and_foreign_sites_get_no_session() {
    let stack = TestStack::new().await;
    let wrong = sign_in(&stack, "not-a-key-of-this-service", Some(ORIGIN), "/").await;
    assert_eq!(
        wrong.status,
        StatusCode::OK,
        "the form again, with the error"
    );
    assert!(wrong.headers.get(header::SET_COOKIE).is_none());
    assert!(
        wrong.body.contains("That key is not valid here"),
        "{}",
        wrong.body
    );

    let ingest = sign_in(&stack, keys::INGEST, Some(ORIGIN), "/").await;
    assert!(ingest.body.contains("only the ingest scope"));
    assert!(ingest.headers.get(header::SET_COOKIE).is_none());

    for origin in [Some("https://evil.example"), None] {
        let answer = sign_in(&stack, keys::READ, origin, "/").await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{origin:?}");
        assert!(answer.headers.get(header::SET_COOKIE).is_none());
    }

    // After sign-in, only a local path is followed.
    let answer = sign_in(&stack, keys::READ, Some(ORIGIN), "https://evil.example/").await;
    assert_eq!(answer.headers[header::LOCATION], "/");

    // Without a session, pages show the sign-in form and the API refuses.
    let page = send(
        &stack,
        Request::get("/job?project=a/b&job=1")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(page.body.contains(r#"type="password""#));
    assert!(
        page.body
            .contains(r#"name="next" value="/job?project=a/b&amp;job=1""#),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn state_changes_with_the_cookie_must_come_from_the_site() {
    let stack = TestStack::new().await;
    let cookie = cookie_of(&sign_in(&stack, keys::ADMIN, Some(ORIGIN), "/").await);
    let question = r#"{"projectId": "team/app", "jobId": "7", "question": "why?"}"#;
    for origin in [Some("https://evil.example"), Some("null"), None] {
        let answer = with_cookie(
            &stack,
            Method::POST,
            "/api/ai/followup",
            &cookie,
            origin,
            Some(question),
        )
        .await;
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{origin:?}: {}",
            answer.body
        );
        assert!(answer.body.contains("Origin"), "{}", answer.body);
    }
    // From the site itself it goes through to the route (no LLM here: 409).
    let answer = with_cookie(
        &stack,
        Method::POST,
        "/api/ai/followup",
        &cookie,
        Some(ORIGIN),
        Some(question),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.body);
    // Behind CloudFront the viewer's host arrives as X-Forwarded-Host.
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/ai/followup")
        .header(header::HOST, "abc.execute-api.eu-west-1.amazonaws.com")
        .header("x-forwarded-host", "ci.example.com")
        .header(header::ORIGIN, "https://ci.example.com")
        .header(header::COOKIE, &cookie)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(question))
        .unwrap();
    assert_eq!(send(&stack, request).await.status, StatusCode::CONFLICT);
    // A client with a key is not a browser page: no Origin needed.
    let (status, _, _) = stack
        .call(
            Method::POST,
            "/api/ai/followup",
            Some(keys::READ),
            Some(&serde_json::from_str(question).unwrap()),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Sign-out from another site is refused; from the site it clears the cookie.
    let out = with_cookie(
        &stack,
        Method::POST,
        "/session/end",
        &cookie,
        Some("https://evil.example"),
        None,
    )
    .await;
    assert_eq!(out.status, StatusCode::FORBIDDEN);
    let out = with_cookie(
        &stack,
        Method::POST,
        "/session/end",
        &cookie,
        Some(ORIGIN),
        None,
    )
    .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let cleared = out.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cleared.starts_with("buildlore_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
}

#[tokio::test]
async fn a_session_ends_with_the_key_that_started_it() {
    let stack = TestStack::new().await;
    let cookie = cookie_of(&sign_in(&stack, keys::READ, Some(ORIGIN), "/").await);
    let rotated =
        ApiKeys::from_lists(keys::INGEST, "a-new-read-key-0000000001", keys::ADMIN).unwrap();
    stack.state.config.keys.replace_with(&rotated);
    let answer = with_cookie(
        &stack,
        Method::GET,
        "/api/pipelines/summary",
        &cookie,
        None,
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(answer.body.contains("no longer valid"), "{}", answer.body);
}

#[tokio::test]
async fn pages_and_assets_allow_only_this_origin_and_assets_are_cached_by_content() {
    let stack = TestStack::new().await;
    let page = send(&stack, Request::get("/").body(Body::empty()).unwrap()).await;
    assert_eq!(
        page.headers["content-security-policy"],
        CONTENT_SECURITY_POLICY
    );
    assert!(CONTENT_SECURITY_POLICY.starts_with("default-src 'self';"));
    assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
    assert!(!page.body.contains("http://") && !page.body.contains("https://"));

    for asset in assets::ASSETS {
        let answer = send(
            &stack,
            Request::get(assets::url(asset.name))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", asset.name);
        assert_eq!(
            answer.headers[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(answer.headers[header::CONTENT_TYPE], asset.content_type);
        // Nothing the page loads names another origin (links to providers' pages come from data).
        let text = String::from_utf8_lossy(asset.bytes);
        for line in text.lines() {
            assert!(
                !line.contains("https://")
                    || line.contains("xmlns")
                    || line.contains("http://www.w3.org/2000/svg"),
                "{}: {line}",
                asset.name
            );
        }
    }
    let stale = send(
        &stack,
        Request::get("/assets/0000/app.css")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(stale.status, StatusCode::OK);
    assert_eq!(stale.headers[header::CACHE_CONTROL], "no-cache");
    let missing = send(
        &stack,
        Request::get(assets::url("nope.js"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

/// The overview's JS and CSS, gzip-compressed as CloudFront serves them: at most 100 KB.
#[test]
fn the_overview_loads_at_most_100_kb_compressed() {
    let raw: usize = assets::page_files("overview")
        .iter()
        .map(|asset| asset.bytes.len())
        .sum();
    let compressed: usize = assets::page_files("overview")
        .iter()
        .map(|asset| {
            let mut one = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            one.write_all(asset.bytes).unwrap();
            one.finish().unwrap().len()
        })
        .sum();
    println!("overview assets: {raw} bytes, {compressed} bytes gzip-compressed (file by file)");
    assert!(compressed <= 100 * 1024, "{compressed} bytes");
}
