//! The OpenAPI 3.1 description of every route, served at `GET /api/openapi.json`, written
//! from the route table the routers are built from.

use crate::routes::table::{Access, Route, Verb, table};
use crate::version::VERSION;
use serde_json::{Map, Value, json};

fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
        })
        .collect()
}

fn operation_body(operation: &Route) -> Value {
    let (scope, security) = match operation.access {
        Access::Public => ("none", json!([])),
        Access::Page => ("page", json!([{"sessionCookie": []}, {}])),
        Access::Ingest => ("ingest", json!([{"bearer": ["ingest"]}])),
        Access::Read => ("read", json!([{"bearer": ["read"]}])),
        Access::ReadOrIngest => (
            "read or ingest",
            json!([{"bearer": ["read"]}, {"bearer": ["ingest"]}]),
        ),
        Access::Admin => ("admin", json!([{"bearer": ["admin"]}])),
        Access::Webhook => (
            "webhook",
            json!([{"gitlabToken": []}, {"githubSignature": []}]),
        ),
    };
    let error = json!({"description": "An error that says what to fix",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let mut responses = Map::new();
    responses.insert("200".into(), json!({"description": "Success"}));
    responses.insert("400".into(), error.clone());
    if !matches!(operation.access, Access::Public | Access::Page) {
        responses.insert("401".into(), error.clone());
        responses.insert("403".into(), error.clone());
    }
    let mut body = json!({
        "summary": operation.summary,
        "operationId": format!("{}{}", operation.verb.name(), operation.path.replace(['/', '{', '}', '*', '.', '-'], "_")),
        "security": security,
        "x-scope": scope,
        "responses": responses,
    });
    let parameters = path_parameters(&operation.documented_path());
    if !parameters.is_empty() {
        body["parameters"] = Value::Array(parameters);
    }
    if matches!(operation.verb, Verb::Post | Verb::Put | Verb::Patch) {
        body["requestBody"] = json!({"required": true, "content": {"application/json": {}}});
    }
    body
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for operation in table() {
        let entry = paths
            .entry(operation.documented_path())
            .or_insert_with(|| json!({}));
        entry[operation.verb.name()] = operation_body(operation);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "buildlore",
            "version": VERSION.version,
            "description": "CI build knowledge: builds, pipelines, job logs and root-cause analysis.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                    "description": "A key of the ingest, read or admin scope (admin may do everything)"},
                "gitlabToken": {"type": "apiKey", "in": "header", "name": "X-Gitlab-Token"},
                "githubSignature": {"type": "apiKey", "in": "header", "name": "X-Hub-Signature-256"},
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "buildlore_session",
                    "description": "A dashboard session, started at POST /session"},
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "statusCode", "timestamp"],
                    "properties": {
                        "error": {"type": "string"},
                        "statusCode": {"type": "integer"},
                        "timestamp": {"type": "string", "format": "date-time"},
                    },
                },
            },
        },
    })
}
