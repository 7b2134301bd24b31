//! template.yaml, the bootstrap and the code agree: one table definition, the queue
//! settings, one function per folder, and every API route is one the routers serve.

use buildlore_api::routes::table::{Function, ServedBy, table};
use buildlore_aws::bootstrap::{MAX_RECEIVE_COUNT, VISIBILITY_TIMEOUT_SECONDS};
use buildlore_core::table::{TABLE, TableSpec};
use buildlore_tests::{TestStack, keys};
use http::{Method, StatusCode};
use serde_yaml::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn template() -> Value {
    let text =
        std::fs::read_to_string(root().join("template.yaml")).expect("template.yaml is readable");
    serde_yaml::from_str(&text).expect("template.yaml is YAML")
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => format!("{other:?}"),
    }
}

/// (attribute name, HASH or RANGE) pairs of a key schema.
type KeyPairs = Vec<(String, String)>;

/// (attribute, type) definitions, key schema and indexes of a table as plain strings.
#[derive(Debug, PartialEq, Eq)]
struct Shape {
    attributes: BTreeSet<(String, String)>,
    key: KeyPairs,
    indexes: BTreeSet<(String, KeyPairs, String)>,
}

fn spec_shape(spec: &TableSpec) -> Shape {
    let pair = |p: &str, s: &str| {
        vec![
            (p.to_string(), "HASH".to_string()),
            (s.to_string(), "RANGE".to_string()),
        ]
    };
    Shape {
        attributes: spec
            .key_attributes()
            .into_iter()
            .map(|(name, _)| (name.to_string(), "S".to_string()))
            .collect(),
        key: pair(spec.key.partition, spec.key.sort),
        indexes: spec
            .indexes
            .iter()
            .map(|i| {
                (
                    i.name.to_string(),
                    pair(i.key.partition, i.key.sort),
                    "ALL".to_string(),
                )
            })
            .collect(),
    }
}

fn yaml_keys(schema: &Value) -> Vec<(String, String)> {
    schema
        .as_sequence()
        .expect("KeySchema is a list")
        .iter()
        .map(|k| (text(&k["AttributeName"]), text(&k["KeyType"])))
        .collect()
}

#[test]
fn template_table_matches_the_code() {
    let template = template();
    let table = &template["Resources"]["Table"]["Properties"];
    let shape = Shape {
        attributes: table["AttributeDefinitions"]
            .as_sequence()
            .expect("AttributeDefinitions")
            .iter()
            .map(|a| (text(&a["AttributeName"]), text(&a["AttributeType"])))
            .collect(),
        key: yaml_keys(&table["KeySchema"]),
        indexes: table["GlobalSecondaryIndexes"]
            .as_sequence()
            .expect("GlobalSecondaryIndexes")
            .iter()
            .map(|i| {
                (
                    text(&i["IndexName"]),
                    yaml_keys(&i["KeySchema"]),
                    text(&i["Projection"]["ProjectionType"]),
                )
            })
            .collect(),
    };
    assert_eq!(shape, spec_shape(&TABLE));
    assert_eq!(text(&table["BillingMode"]), "PAY_PER_REQUEST");
    assert_eq!(
        text(&table["TimeToLiveSpecification"]["AttributeName"]),
        TABLE.ttl_attribute
    );
    assert_eq!(text(&table["TimeToLiveSpecification"]["Enabled"]), "true");
    assert_eq!(
        text(&table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]),
        "true"
    );
}

#[tokio::test]
async fn bootstrapped_table_matches_the_code() {
    let stack = TestStack::new().await;
    let described = stack
        .clients
        .dynamodb
        .describe_table()
        .table_name(&stack.table)
        .send()
        .await
        .expect("describe the test table")
        .table
        .expect("table description");
    let keys = |schema: &[aws_sdk_dynamodb::types::KeySchemaElement]| -> Vec<(String, String)> {
        schema
            .iter()
            .map(|k| {
                (
                    k.attribute_name().to_string(),
                    k.key_type().as_str().to_string(),
                )
            })
            .collect()
    };
    let shape = Shape {
        attributes: described
            .attribute_definitions()
            .iter()
            .map(|a| {
                (
                    a.attribute_name().to_string(),
                    a.attribute_type().as_str().to_string(),
                )
            })
            .collect(),
        key: keys(described.key_schema()),
        indexes: described
            .global_secondary_indexes()
            .iter()
            .map(|i| {
                let projection = i
                    .projection()
                    .and_then(|p| p.projection_type())
                    .map(|p| p.as_str().to_string());
                (
                    i.index_name().unwrap_or_default().to_string(),
                    keys(i.key_schema()),
                    projection.unwrap_or_default(),
                )
            })
            .collect(),
    };
    assert_eq!(shape, spec_shape(&TABLE));
    let ttl = stack
        .clients
        .dynamodb
        .describe_time_to_live()
        .table_name(&stack.table)
        .send()
        .await
        .expect("describe TTL");
    let ttl = ttl.time_to_live_description().expect("TTL description");
    assert_eq!(ttl.attribute_name(), Some(TABLE.ttl_attribute));
}

#[test]
fn queue_settings_match_the_bootstrap() {
    let template = template();
    let queue = &template["Resources"]["AnalysisQueue"]["Properties"];
    assert_eq!(
        text(&queue["VisibilityTimeout"]),
        VISIBILITY_TIMEOUT_SECONDS.to_string()
    );
    assert_eq!(
        text(&queue["RedrivePolicy"]["maxReceiveCount"]),
        MAX_RECEIVE_COUNT.to_string()
    );
    let worker_timeout: u32 =
        text(&template["Resources"]["AnalyzeWorkerFunction"]["Properties"]["Timeout"])
            .parse()
            .expect("worker timeout is a number");
    assert!(VISIBILITY_TIMEOUT_SECONDS >= 6 * worker_timeout);
}

fn functions(template: &Value) -> Vec<(String, Value)> {
    template["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| text(&r["Type"]) == "AWS::Serverless::Function")
        .map(|(name, r)| (text(name), r.clone()))
        .collect()
}

#[test]
fn one_function_per_folder_with_a_matching_binary() {
    let template = template();
    let binaries: BTreeSet<String> = functions(&template)
        .iter()
        .map(|(_, f)| {
            assert_eq!(text(&f["Metadata"]["BuildMethod"]), "rust-cargolambda");
            assert_eq!(text(&f["Properties"]["CodeUri"]), ".");
            text(&f["Metadata"]["BuildProperties"]["Binary"])
        })
        .collect();
    let folders: BTreeSet<String> = std::fs::read_dir(root().join("functions"))
        .expect("functions/")
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(binaries, folders);
    let globals = &template["Globals"]["Function"];
    assert_eq!(text(&globals["Runtime"]), "provided.al2023");
    assert_eq!(globals["Architectures"][0].as_str(), Some("arm64"));
}

#[test]
fn no_secret_is_a_plain_parameter() {
    let template = template();
    for (name, _) in template["Parameters"].as_mapping().expect("Parameters") {
        let name = text(name).to_ascii_lowercase();
        assert!(
            !["key", "secret", "token", "password"]
                .iter()
                .any(|word| name.contains(word)),
            "{name}"
        );
    }
    for (name, function) in functions(&template) {
        let properties = &function["Properties"];
        let shown_policies = serde_yaml::to_string(&properties["Policies"]).unwrap_or_default();
        let variables = &properties["Environment"]["Variables"];
        for (variable, value) in variables.as_mapping().into_iter().flatten() {
            let variable_name = text(variable);
            let shown = serde_yaml::to_string(value).unwrap_or_default();
            // No secret value reaches a function's configuration, resolved or not.
            assert!(
                !shown.contains("{{resolve:"),
                "{name}: {variable_name} carries a secret's value: {shown}"
            );
            let sensitive = ["_API_KEY", "_SECRET", "_TOKEN"]
                .iter()
                .any(|suffix| variable_name.ends_with(suffix));
            assert!(
                !sensitive,
                "{name}: {variable_name} holds a secret in plain sight"
            );
            // A secret is named by its ARN, and the function may read that secret (only).
            if let Some(secret) = variable_name.strip_suffix("_SECRET_ARN") {
                assert!(
                    buildlore_api::config::SECRET_VARIABLES.contains(&secret),
                    "{name}: {variable_name} names no secret the functions read"
                );
                let referenced = shown
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .filter(|word| word.ends_with("Secret") || word.ends_with("CredentialArn"))
                    .collect::<Vec<_>>();
                assert!(!referenced.is_empty(), "{name}: {variable_name} is {shown}");
                for secret in referenced {
                    assert!(
                        shown_policies.contains(&format!("SecretArn: !Ref {secret}"))
                            || shown_policies.contains(&format!("!Ref {secret}")),
                        "{name} may not read {secret}: {shown_policies}"
                    );
                }
            }
        }
    }
    // Functions that answer no API request hold no API key.
    let worker =
        &template["Resources"]["AnalyzeWorkerFunction"]["Properties"]["Environment"]["Variables"];
    for (variable, _) in worker.as_mapping().into_iter().flatten() {
        let variable = text(variable);
        assert!(
            !["INGEST_API_KEY", "READ_API_KEY", "ADMIN_API_KEY"]
                .iter()
                .any(|key| variable.starts_with(key)),
            "{variable}"
        );
    }
}

#[tokio::test]
async fn every_api_route_in_the_template_is_served() {
    let stack = TestStack::new().await;
    let template = template();
    let mut checked = 0;
    for (name, function) in functions(&template) {
        for (_, event) in function["Properties"]["Events"]
            .as_mapping()
            .into_iter()
            .flatten()
        {
            if text(&event["Type"]) != "HttpApi" {
                continue;
            }
            let path = text(&event["Properties"]["Path"])
                .replace("{proxy+}", "history")
                .replace("{repo}", "group%2Fapp")
                .replace("{project}", "group%2Fapp")
                .replace("{provider}", "gitlab")
                .replace("{action}", "retry")
                .replace(['{', '}'], "");
            let method = match text(&event["Properties"]["Method"]).as_str() {
                "ANY" => Method::GET,
                other => Method::from_bytes(other.as_bytes()).expect("a method"),
            };
            // The dashboard's pages answer HTML, so the body is read as text.
            let request = http::Request::builder()
                .method(method.clone())
                .uri(&path)
                .header("authorization", format!("Bearer {}", keys::ADMIN))
                .body(axum::body::Body::empty())
                .expect("a request");
            let response = tower::ServiceExt::oneshot(stack.app.clone(), request)
                .await
                .unwrap_or_else(|never| match never {});
            let status = response.status();
            let bytes = http_body_util::BodyExt::collect(response.into_body())
                .await
                .map(|collected| collected.to_bytes())
                .unwrap_or_default();
            let body: serde_json::Value =
                serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
            let unrouted = status == StatusCode::NOT_FOUND
                && body["error"]
                    .as_str()
                    .is_some_and(|e| e.starts_with("no route"));
            assert!(
                !unrouted && status != StatusCode::METHOD_NOT_ALLOWED,
                "{name}: {method} {path} is not served: {body}"
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 15,
        "only {checked} routes found in template.yaml"
    );
}

/// Whether an HttpApi event's path (`{proxy+}` greedy) and method (`ANY`) take a route.
fn event_takes(event_method: &str, event_path: &str, method: &str, path: &str) -> bool {
    if event_method != "ANY" && !event_method.eq_ignore_ascii_case(method) {
        return false;
    }
    let path = path.replace("{*", "{");
    let event_segments: Vec<&str> = event_path.split('/').collect();
    let segments: Vec<&str> = path.split('/').collect();
    for (index, event_segment) in event_segments.iter().enumerate() {
        if event_segment.ends_with("+}") {
            return segments.len() > index;
        }
        let Some(segment) = segments.get(index) else {
            return false;
        };
        // An event's parameter takes any segment; a route's parameter only a parameter.
        if !event_segment.starts_with('{') && event_segment != segment {
            return false;
        }
    }
    event_segments.len() == segments.len()
}

#[test]
fn api_gateway_sends_each_route_to_the_function_that_serves_it() {
    let template = template();
    let mut routed = 0;
    for &function in Function::ALL {
        // The events function is reached through its Function URL, not the HTTP API.
        if function == Function::Events {
            continue;
        }
        let resource = &template["Resources"][function.template_name()];
        let events: Vec<(String, String)> = resource["Properties"]["Events"]
            .as_mapping()
            .into_iter()
            .flatten()
            .filter(|(_, event)| text(&event["Type"]) == "HttpApi")
            .map(|(_, event)| {
                (
                    text(&event["Properties"]["Method"]),
                    text(&event["Properties"]["Path"]),
                )
            })
            .collect();
        let served: Vec<_> = table()
            .iter()
            .filter(|route| route.served_by == ServedBy::Only(function))
            .collect();
        for route in &served {
            assert!(
                events.iter().any(|(method, path)| event_takes(
                    method,
                    path,
                    route.verb.name(),
                    route.path
                )),
                "{}: {} {} has no HttpApi event",
                function.template_name(),
                route.verb.name(),
                route.path
            );
            routed += 1;
        }
        for (method, path) in &events {
            let takes_one = served
                .iter()
                .any(|route| event_takes(method, path, route.verb.name(), route.path))
                || table().iter().any(|route| {
                    route.served_by == ServedBy::Every
                        && event_takes(method, path, route.verb.name(), route.path)
                });
            assert!(
                takes_one,
                "{}: the event {method} {path} reaches no route it serves",
                function.template_name()
            );
        }
    }
    assert!(routed >= 40, "{routed}");
    // Health, version and the document are served by every function; the API sends them to one.
    let all_events: Vec<(String, String)> = functions(&template)
        .iter()
        .flat_map(|(_, resource)| {
            resource["Properties"]["Events"]
                .as_mapping()
                .into_iter()
                .flatten()
                .map(|(_, event)| {
                    (
                        text(&event["Properties"]["Method"]),
                        text(&event["Properties"]["Path"]),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    for route in table()
        .iter()
        .filter(|route| route.served_by == ServedBy::Every)
    {
        assert!(
            all_events.iter().any(|(method, path)| event_takes(
                method,
                path,
                route.verb.name(),
                route.path
            )),
            "{} has no HttpApi event",
            route.path
        );
    }
}
