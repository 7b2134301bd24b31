//! A fresh table on the emulator per test, the full router over it, and request helpers.

use crate::emulator;
use aws_sdk_dynamodb::types::AttributeValue;
use axum::Router;
use axum::body::Body;
use buildlore_api::auth::ApiKeys;
use buildlore_api::config::EventTiming;
use buildlore_api::{AppState, Config, function_app, routes};
use buildlore_aws::AwsClients;
use buildlore_aws::bootstrap::{ensure_queues, ensure_table};
use buildlore_core::table::TABLE;
use buildlore_core::webhooks::secret::{WebhookSecrets, signature_header};
use http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tower::ServiceExt;

pub mod keys {
    pub const INGEST: &str = "test-ingest-key-000000000001";
    pub const READ: &str = "test-read-key-0000000000001";
    pub const ADMIN: &str = "test-admin-key-000000000001";
}

pub mod secrets {
    pub const GITLAB: &str = "gitlab-webhook-token-current";
    /// Still accepted during a rotation.
    pub const GITLAB_PREVIOUS: &str = "gitlab-webhook-token-previous";
    pub const GITHUB: &str = "github-webhook-secret";
}

pub type Item = HashMap<String, AttributeValue>;

pub struct TestStack {
    pub state: AppState,
    pub app: Router,
    pub table: String,
    pub clients: AwsClients,
}

/// A table name no other test (or test process) uses.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn test_config(table: &str) -> Config {
    Config {
        table_name: table.to_string(),
        analysis_queue_url: None,
        keys: ApiKeys::from_lists(keys::INGEST, keys::READ, keys::ADMIN)
            .expect("test keys are long"),
        build_retention_days: None,
        trace_cache_days: buildlore_api::config::DEFAULT_TRACE_CACHE_DAYS,
        llm: None,
        analysis_reuse_days: 14,
        analysis_budget: buildlore_core::budget::BudgetLimits::default(),
        secrets_refresh: Duration::from_secs(300),
        cors_allowed_origins: Vec::new(),
        avatar_hosts: Vec::new(),
        dashboard_url: None,
        notify_allow_loopback_http: false,
        gitlab_webhook_secrets: WebhookSecrets::from_list(&format!(
            "{},{}",
            secrets::GITLAB,
            secrets::GITLAB_PREVIOUS
        )),
        github_webhook_secrets: WebhookSecrets::from_list(secrets::GITHUB),
        events: EventTiming {
            poll: Duration::from_millis(100),
            heartbeat: Duration::from_millis(300),
            max: Duration::from_secs(20),
            max_streams_per_key: buildlore_api::config::DEFAULT_MAX_STREAMS_PER_KEY,
        },
        providers: Config::from_lookup(|name| (name == "TABLE_NAME").then(|| table.to_string()))
            .expect("defaults are valid")
            .providers,
        test_reports: Default::default(),
    }
}

impl TestStack {
    pub async fn new() -> Self {
        Self::build(false, |_| {}).await
    }

    /// With configuration adjusted by `adjust` (e.g. providers pointing at fake servers).
    pub async fn with_config(adjust: impl FnOnce(&mut Config)) -> Self {
        Self::build(false, adjust).await
    }

    /// With an analysis queue (and its dead-letter queue) of its own.
    pub async fn with_analysis_queue() -> Self {
        Self::build(true, |_| {}).await
    }

    /// With an analysis queue and configuration adjusted by `adjust` (e.g. an LLM).
    pub async fn with_analysis_queue_and_config(adjust: impl FnOnce(&mut Config)) -> Self {
        Self::build(true, adjust).await
    }

    async fn build(with_queue: bool, adjust: impl FnOnce(&mut Config)) -> Self {
        let clients = AwsClients::for_emulator(emulator::endpoint()).await;
        let table = unique_name("buildlore-test");
        ensure_table(&clients.dynamodb, &table, &TABLE)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut config = test_config(&table);
        if with_queue {
            let queues = ensure_queues(&clients.sqs, &unique_name("analysis"))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            config.analysis_queue_url = Some(queues.analysis);
        }
        adjust(&mut config);
        let state = AppState::new(config, clients.clone());
        let app = function_app(routes::table::ALL, state.clone());
        TestStack {
            state,
            app,
            table,
            clients,
        }
    }

    /// Sends a request through the router as API Gateway would deliver it.
    pub async fn send(&self, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
        let response = self
            .app
            .clone()
            .oneshot(request)
            .await
            .unwrap_or_else(|never| match never {});
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map(|collected| collected.to_bytes())
            .unwrap_or_default();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!("response is not JSON: {}", String::from_utf8_lossy(&bytes))
            })
        };
        (status, headers, body)
    }

    /// A JSON request with an optional bearer key.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(key) = key {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        let body = match body {
            Some(value) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Body::from(serde_json::to_vec(value).unwrap_or_default())
            }
            None => Body::empty(),
        };
        self.send(
            builder
                .body(body)
                .unwrap_or_else(|e| panic!("bad test request: {e}")),
        )
        .await
    }

    /// POSTs a JSON body with a bearer key; the status and the JSON answer.
    pub async fn post_json(&self, path: &str, key: &str, body: &Value) -> (StatusCode, Value) {
        let (status, _, answer) = self.call(Method::POST, path, Some(key), Some(body)).await;
        (status, answer)
    }

    pub async fn post_build(&self, build: &Value) -> (StatusCode, Value) {
        self.post_json("/api/v1/builds", keys::INGEST, build).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (status, _, body) = self.call(Method::GET, path, Some(keys::READ), None).await;
        (status, body)
    }

    /// Sends raw bytes with the given headers.
    pub async fn deliver(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let mut builder = Request::builder().method(Method::POST).uri(path);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder
            .body(Body::from(body))
            .unwrap_or_else(|e| panic!("bad test request: {e}"));
        let (status, _, body) = self.send(request).await;
        (status, body)
    }

    /// A GitLab webhook delivery with the current token.
    pub async fn gitlab_hook(&self, event: &str, body: &[u8]) -> (StatusCode, Value) {
        self.deliver(
            "/webhooks/gitlab",
            &[
                ("x-gitlab-event", event),
                ("x-gitlab-token", secrets::GITLAB),
                ("content-type", "application/json"),
            ],
            body.to_vec(),
        )
        .await
    }

    /// A signed GitHub webhook delivery.
    pub async fn github_hook(
        &self,
        event: &str,
        delivery: &str,
        body: &[u8],
    ) -> (StatusCode, Value) {
        let signature = signature_header(secrets::GITHUB.as_bytes(), body);
        self.deliver(
            "/webhooks/github",
            &[
                ("x-github-event", event),
                ("x-github-delivery", delivery),
                ("x-hub-signature-256", &signature),
                ("content-type", "application/json"),
            ],
            body.to_vec(),
        )
        .await
    }

    /// The stored JSON of a pipeline or job (`sort_key` like `PIPELINE#gitlab#31`).
    pub async fn record_json(&self, repo: &str, sort_key: &str) -> Option<Value> {
        let item = self
            .clients
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(format!("REPO#{repo}")))
            .key("sk", AttributeValue::S(sort_key.to_string()))
            .consistent_read(true)
            .send()
            .await
            .unwrap_or_else(|e| panic!("get item failed: {e:?}"))
            .item?;
        let data = item.get("data")?.as_s().ok()?;
        serde_json::from_str(data).ok()
    }

    /// Bodies of the messages waiting on the analysis queue (received, then made visible again).
    pub async fn queued_messages(&self) -> Vec<Value> {
        let url = self
            .state
            .config
            .analysis_queue_url
            .clone()
            .expect("a stack with a queue");
        let mut bodies = Vec::new();
        loop {
            let received = self
                .clients
                .sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .visibility_timeout(30)
                .send()
                .await
                .unwrap_or_else(|e| panic!("receive failed: {e:?}"));
            let messages = received.messages.unwrap_or_default();
            if messages.is_empty() {
                return bodies;
            }
            for message in messages {
                let body = message.body.unwrap_or_default();
                bodies.push(serde_json::from_str(&body).unwrap_or(Value::String(body)));
            }
        }
    }

    /// Delivers every queued message to the worker as SQS would: a message the worker
    /// reports as failed comes back (here at once), the others are deleted. Stops when the
    /// queue stays empty (a message queued with a delay is waited for while polls find
    /// nothing for about half a second); answers how many messages were delivered.
    pub async fn drain_queue(&self) -> usize {
        use aws_lambda_events::event::sqs::SqsMessage;
        let url = self
            .state
            .config
            .analysis_queue_url
            .clone()
            .expect("a stack with a queue");
        let sqs = &self.clients.sqs;
        let mut delivered = 0;
        let mut empty_polls = 0;
        while empty_polls < 3 {
            let messages = sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .visibility_timeout(30)
                .send()
                .await
                .unwrap_or_else(|e| panic!("receive failed: {e:?}"))
                .messages
                .unwrap_or_default();
            if messages.is_empty() {
                empty_polls += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            empty_polls = 0;
            let batch: Vec<SqsMessage> = messages
                .iter()
                .map(|message| {
                    let mut sqs_message = SqsMessage::default();
                    sqs_message.message_id = message.message_id.clone();
                    sqs_message.body = message.body.clone();
                    sqs_message
                })
                .collect();
            delivered += batch.len();
            let response = buildlore_api::worker::handle_batch(&self.state, batch).await;
            for message in &messages {
                let failed = response
                    .batch_item_failures
                    .iter()
                    .any(|failure| Some(&failure.item_identifier) == message.message_id.as_ref());
                let handle = message.receipt_handle.clone().unwrap_or_default();
                if failed {
                    sqs.change_message_visibility()
                        .queue_url(&url)
                        .receipt_handle(handle)
                        .visibility_timeout(0)
                        .send()
                        .await
                        .unwrap_or_else(|e| panic!("change visibility failed: {e:?}"));
                } else {
                    sqs.delete_message()
                        .queue_url(&url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .unwrap_or_else(|e| panic!("delete failed: {e:?}"));
                }
            }
        }
        delivered
    }

    /// Every item in the table, in key order.
    pub async fn items(&self) -> Vec<Item> {
        let mut items: Vec<Item> = self
            .clients
            .dynamodb
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .unwrap_or_else(|e| panic!("scan failed: {e:?}"));
        let key = |item: &Item| {
            let text = |name: &str| {
                item.get(name)
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default()
            };
            (text("pk"), text("sk"))
        };
        items.sort_by_key(key);
        items
    }

    /// The counters of one repo on one day (`YYYY-MM-DD`), as numbers.
    pub async fn counters(&self, repo: &str, day: &str) -> HashMap<String, i64> {
        let item = self
            .clients
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(format!("DAY#{day}")))
            .key("sk", AttributeValue::S(format!("REPO#{repo}")))
            .consistent_read(true)
            .send()
            .await
            .unwrap_or_else(|e| panic!("get counters failed: {e:?}"))
            .item
            .unwrap_or_default();
        item.into_iter()
            .filter_map(|(name, value)| {
                value
                    .as_n()
                    .ok()
                    .and_then(|n| n.parse().ok())
                    .map(|n| (name, n))
            })
            .collect()
    }
}
