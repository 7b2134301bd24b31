//! The OpenAPI document against the code: every `.route(...)` of the routers is described with
//! the same methods, nothing else is, and the document is served without a key.

use buildlore_api::openapi::{Access, OPERATIONS};
use buildlore_tests::TestStack;
use http::StatusCode;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// (method, path) of every route in the routers' sources.
fn routes_in_code() -> BTreeSet<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/api/src/routes");
    let mut routes = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("the routes folder") {
        let source = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for call in source.split(".route(").skip(1) {
            let Some(path) = call.split('"').nth(1) else {
                continue;
            };
            // The arguments of this `.route(`: up to its closing parenthesis.
            let mut depth = 1;
            let end = call
                .char_indices()
                .find(|&(_, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map_or(call.len(), |(at, _)| at);
            let body = &call[..end];
            for method in ["get", "post", "put", "patch", "delete"] {
                if body.contains(&format!("{method}(")) {
                    // A catch-all (`{*group}`, a path with slashes) is a plain parameter in
                    // OpenAPI.
                    routes.insert((method.to_string(), path.replace("{*", "{")));
                }
            }
        }
    }
    routes
}

#[test]
fn every_route_is_described_and_nothing_else() {
    let documented: BTreeSet<(String, String)> = OPERATIONS
        .iter()
        .map(|op| (op.method.to_string(), op.path.to_string()))
        .collect();
    let in_code = routes_in_code();
    assert!(in_code.len() >= 25, "{in_code:?}");
    let undocumented: Vec<_> = in_code.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&in_code).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the document: {undocumented:?}"
    );
    assert!(
        stale.is_empty(),
        "documented routes the code lacks: {stale:?}"
    );
}

#[tokio::test]
async fn the_document_is_served_and_says_who_may_call_what() {
    let stack = TestStack::new().await;
    let request = http::Request::builder()
        .uri("/api/openapi.json")
        .body(axum::body::Body::empty())
        .unwrap();
    let (status, _, document) = stack.send(request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(
        document["paths"]["/api/ai/system-prompt"]["put"]["security"][0]["bearer"][0],
        "admin"
    );
    assert_eq!(
        document["paths"]["/api/v1/builds"]["post"]["x-scope"],
        "ingest"
    );
    assert_eq!(
        document["paths"]["/api/v1/repos/{repo}/builds/{build_id}"]["get"]["parameters"][1]["name"],
        "build_id"
    );
    // Every public operation answers without a key; every other one refuses.
    for op in OPERATIONS
        .iter()
        .filter(|op| op.method == "get" && !op.path.contains('{'))
    {
        let request = http::Request::builder()
            .uri(op.path)
            .body(axum::body::Body::empty())
            .unwrap();
        let response = tower::ServiceExt::oneshot(stack.app.clone(), request)
            .await
            .unwrap();
        if op.access == Access::Public {
            assert_eq!(response.status(), StatusCode::OK, "{}", op.path);
        } else {
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{}", op.path);
        }
    }
}
