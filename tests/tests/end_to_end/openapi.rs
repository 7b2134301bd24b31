//! The route table against the running service: every route is served, its scope is checked
//! in front of its handler (no key: 401; a key of another scope: 403), and the OpenAPI
//! document written from the table is served without a key.

use buildlore_api::routes::table::{Access, Route, Verb, table};
use buildlore_tests::{TestStack, keys};
use http::{Method, StatusCode};

/// A request path for a route, its parameters filled with plausible values.
fn concrete_path(route: &Route) -> String {
    route
        .path
        .replace("{repo}", "group%2Fapp")
        .replace("{project}", "group%2Fapp")
        .replace("{provider}", "gitlab")
        .replace("{*group}", "group")
        .replace(['{', '}'], "")
}

fn method(verb: Verb) -> Method {
    match verb {
        Verb::Get => Method::GET,
        Verb::Post => Method::POST,
        Verb::Put => Method::PUT,
        Verb::Patch => Method::PATCH,
        Verb::Delete => Method::DELETE,
    }
}

async fn answer(stack: &TestStack, route: &Route, key: Option<&str>) -> (StatusCode, String) {
    let mut request = http::Request::builder()
        .method(method(route.verb))
        .uri(concrete_path(route))
        .header("origin", "http://localhost");
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let request = request.body(axum::body::Body::empty()).unwrap();
    let response = tower::ServiceExt::oneshot(stack.app.clone(), request)
        .await
        .unwrap();
    let status = response.status();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test]
async fn every_route_is_served_behind_the_scope_the_table_gives_it() {
    let stack = TestStack::new().await;
    let table = table();
    assert!(table.len() >= 40, "{}", table.len());
    for route in table {
        let name = format!("{} {}", route.verb.name(), route.path);
        let (status, error) = answer(&stack, route, None).await;
        assert!(
            !(status == StatusCode::NOT_FOUND && error.starts_with("no route"))
                && status != StatusCode::METHOD_NOT_ALLOWED,
            "{name} is not served: {status} {error}"
        );
        let keyed = !matches!(
            route.access,
            Access::Public | Access::Page | Access::Webhook
        );
        if keyed {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{name} without a key");
            assert!(error.starts_with("missing API key"), "{name}: {error}");
        } else {
            assert!(!error.starts_with("missing API key"), "{name}: {error}");
        }
        // A key of a scope the route does not take is refused before the handler runs.
        let other_scope = match route.access {
            Access::Admin => Some(keys::READ),
            Access::Read => Some(keys::INGEST),
            Access::Ingest => Some(keys::READ),
            _ => None,
        };
        if let Some(key) = other_scope {
            let (status, error) = answer(&stack, route, Some(key)).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{name}: {error}");
            assert!(error.contains("scope"), "{name}: {error}");
        }
    }
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
    // A catch-all parameter is a plain one in the document.
    assert_eq!(
        document["paths"]["/api/groups/{group}"]["get"]["parameters"][0]["name"],
        "group"
    );
    // Every route of the table is in the document, and nothing else.
    let documented: usize = document["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|methods| methods.as_object().unwrap().len())
        .sum();
    assert_eq!(documented, table().len());
    for route in table() {
        assert_eq!(
            document["paths"][route.documented_path()][route.verb.name()]["summary"],
            route.summary,
            "{}",
            route.path
        );
    }
}
