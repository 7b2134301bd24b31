//! Amazon Bedrock's Converse API (`POST /model/{modelId}/converse`), signed with SigV4 using the
//! function's IAM role (no API key). Throttling and 5xx are retried with backoff, then reported
//! retryable; access denied, an unknown model or a validation error is permanent.

use aws_credential_types::provider::SharedCredentialsProvider;
use buildlore_core::explain::ChatMessage;
use buildlore_core::job_analysis::{Llm, LlmError};
use reqwest::Url;
use serde_json::{Value, json};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct BedrockConfig {
    /// `https://bedrock-runtime.{region}.amazonaws.com` unless overridden.
    pub endpoint: Url,
    pub region: String,
    pub model_id: String,
    pub timeout: Duration,
    pub max_attempts: u32,
}

#[derive(Clone)]
pub struct BedrockConverse {
    http: reqwest::Client,
    config: BedrockConfig,
    credentials: SharedCredentialsProvider,
}

impl BedrockConverse {
    pub fn new(
        config: BedrockConfig,
        credentials: SharedCredentialsProvider,
    ) -> Result<Self, LlmError> {
        crate::install_crypto();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(config.timeout)
            .user_agent(concat!("buildlore/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| LlmError::Permanent(crate::without_url(e)))?;
        Ok(BedrockConverse {
            http,
            config,
            credentials,
        })
    }

    fn url(&self) -> Result<Url, LlmError> {
        let base = self.config.endpoint.as_str().trim_end_matches('/');
        let model = buildlore_core::percent::encode_component(&self.config.model_id);
        Url::parse(&format!("{base}/model/{model}/converse"))
            .map_err(|e| LlmError::Permanent(format!("Bedrock endpoint: {e}")))
    }

    /// The request's headers with a SigV4 signature for the `bedrock` service.
    async fn signed_headers(
        &self,
        url: &Url,
        body: &[u8],
    ) -> Result<Vec<(String, String)>, LlmError> {
        crate::sigv4::signed_post_headers(
            &self.credentials,
            &self.config.region,
            "bedrock",
            url,
            &[("content-type", "application/json")],
            body,
        )
        .await
        .map_err(LlmError::Permanent)
    }
}

/// Converse's shape: system prompts apart, then user and assistant turns alternating (two
/// turns of one role in a row are joined).
pub fn converse_body(messages: &[ChatMessage]) -> Value {
    let system: Vec<Value> = messages
        .iter()
        .filter(|m| m.role == "system")
        .map(|m| json!({"text": m.content}))
        .collect();
    let mut turns: Vec<(String, String)> = Vec::new();
    for message in messages.iter().filter(|m| m.role != "system") {
        let role = if message.role == "assistant" {
            "assistant"
        } else {
            "user"
        };
        match turns.last_mut() {
            Some((last_role, text)) if last_role == role => {
                text.push_str("\n\n");
                text.push_str(&message.content);
            }
            _ => turns.push((role.to_string(), message.content.clone())),
        }
    }
    json!({
        "system": system,
        "messages": turns
            .into_iter()
            .map(|(role, text)| json!({"role": role, "content": [{"text": text}]}))
            .collect::<Vec<_>>(),
        "inferenceConfig": {"temperature": 0, "maxTokens": 2048},
    })
}

impl Llm for BedrockConverse {
    fn model(&self) -> &str {
        &self.config.model_id
    }

    async fn complete(&self, messages: &[ChatMessage]) -> Result<String, LlmError> {
        let url = self.url()?;
        let body = serde_json::to_vec(&converse_body(messages))
            .map_err(|e| LlmError::Permanent(e.to_string()))?;
        let response =
            crate::llm::send_until_answered("Bedrock", self.config.max_attempts, false, || async {
                let mut request = self.http.post(url.clone()).body(body.clone());
                for (name, value) in self.signed_headers(&url, &body).await? {
                    request = request.header(name, value);
                }
                Ok(request)
            })
            .await?;
        let status = response.status();
        if !status.is_success() {
            let detail = crate::json_capped(response, crate::llm::MAX_LLM_ANSWER_BYTES)
                .await
                .unwrap_or(Value::Null);
            return Err(LlmError::Permanent(format!(
                "Bedrock refused the request (HTTP {}): {}",
                status.as_u16(),
                detail["message"].as_str().unwrap_or("no message")
            )));
        }
        let answer = crate::json_capped(response, crate::llm::MAX_LLM_ANSWER_BYTES)
            .await
            .map_err(|e| LlmError::Permanent(format!("Bedrock's response was refused: {e}")))?;
        let text: String = answer["output"]["message"]["content"]
            .as_array()
            .map(|blocks| {
                blocks
                    .iter()
                    .filter_map(|block| block["text"].as_str())
                    .collect::<Vec<_>>()
                    .join("")
            })
            .unwrap_or_default();
        if text.is_empty() {
            return Err(LlmError::Permanent(
                "Bedrock's response has no text content".into(),
            ));
        }
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(role: &str, content: &str) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }

    #[test]
    fn converse_turns_alternate_and_system_stands_apart() {
        let body = converse_body(&[
            message("system", "rules"),
            message("user", "context"),
            message("user", "earlier question"),
            message("assistant", "earlier answer"),
            message("user", "new question"),
        ]);
        assert_eq!(body["system"], json!([{"text": "rules"}]));
        let roles: Vec<&str> = body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["user", "assistant", "user"]);
        assert_eq!(
            body["messages"][0]["content"][0]["text"],
            "context\n\nearlier question"
        );
    }
}
