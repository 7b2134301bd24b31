//! An OpenAI-compatible chat-completions client (OpenAI, Azure OpenAI's compatible endpoint,
//! Ollama, vLLM, LiteLLM): `POST {base}/chat/completions` with a bearer key. 429 and 5xx are
//! retried with backoff (honouring `Retry-After`), then reported retryable; a rejected key, an
//! unknown model or an answer without content is permanent.

use crate::retry::{RetryFailure, RetryPolicy, send_with_retries};
use buildlore_core::explain::ChatMessage;
use buildlore_core::job_analysis::{Llm, LlmError};
use reqwest::{StatusCode, Url};
use serde_json::json;
use std::time::Duration;

/// The longest LLM answer read (a chat completion of a few thousand tokens is a few KB).
pub const MAX_LLM_ANSWER_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct LlmConfig {
    /// Up to and including the version path, e.g. `https://api.openai.com/v1`.
    pub base_url: Url,
    pub model: String,
    pub api_key: Option<String>,
    pub timeout: Duration,
    pub max_attempts: u32,
}

/// Sends the request `build` makes (afresh for each attempt, so a signature stays current)
/// through the crate's retry loop: timeouts, refused connections, 429 and 5xx are retried
/// with backoff (or the `Retry-After` it asks for, up to 20 s, when `honour_retry_after`);
/// after `max_attempts`, or when asked to wait longer, they are a retryable error naming `who`.
pub(crate) async fn send_until_answered<F, Fut>(
    who: &str,
    max_attempts: u32,
    honour_retry_after: bool,
    build: F,
) -> Result<reqwest::Response, LlmError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<reqwest::RequestBuilder, LlmError>>,
{
    let policy = RetryPolicy {
        longest_wait: Duration::from_secs(20),
        honour_server_wait: honour_retry_after,
        ..RetryPolicy::idempotent(max_attempts)
    };
    send_with_retries(&policy, build)
        .await
        .map_err(|failure| match failure {
            RetryFailure::Build(error) => error,
            RetryFailure::RateLimited(seconds) => {
                LlmError::Retryable(format!("{who} asks to wait {seconds} s"))
            }
            RetryFailure::Unavailable(detail) => {
                LlmError::Retryable(format!("{who} did not answer: {detail}"))
            }
        })
}

#[derive(Clone)]
pub struct OpenAiCompatible {
    http: reqwest::Client,
    config: LlmConfig,
}

impl OpenAiCompatible {
    pub fn new(config: LlmConfig) -> Result<Self, LlmError> {
        crate::install_crypto();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(config.timeout)
            .user_agent(concat!("buildlore/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| LlmError::Permanent(crate::without_url(e)))?;
        Ok(OpenAiCompatible { http, config })
    }

    fn endpoint(&self) -> Result<Url, LlmError> {
        let base = self.config.base_url.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}/chat/completions"))
            .map_err(|e| LlmError::Permanent(format!("LLM_BASE_URL: {e}")))
    }
}

impl Llm for OpenAiCompatible {
    fn model(&self) -> &str {
        &self.config.model
    }

    async fn complete(&self, messages: &[ChatMessage]) -> Result<String, LlmError> {
        let url = self.endpoint()?;
        let body = json!({
            "model": self.config.model,
            "messages": messages,
            "temperature": 0,
            "response_format": {"type": "json_object"},
        });
        let response = send_until_answered("the LLM", self.config.max_attempts, true, || async {
            let mut request = self.http.post(url.clone()).json(&body);
            if let Some(key) = &self.config.api_key {
                request = request.bearer_auth(key);
            }
            Ok(request)
        })
        .await?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(LlmError::Permanent(format!(
                "the LLM rejected this deployment's key (HTTP {})",
                status.as_u16()
            )));
        }
        if !status.is_success() {
            return Err(LlmError::Permanent(format!(
                "the LLM refused the request (HTTP {})",
                status.as_u16()
            )));
        }
        let answer = crate::json_capped(response, MAX_LLM_ANSWER_BYTES)
            .await
            .map_err(|e| LlmError::Permanent(format!("the LLM's response was refused: {e}")))?;
        answer["choices"][0]["message"]["content"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| LlmError::Permanent("the LLM's response has no message content".into()))
    }
}

/// Which LLM answers, as configured.
#[derive(Debug, Clone)]
pub enum LlmChoice {
    OpenAi(LlmConfig),
    /// Amazon Bedrock's Converse API with the function's IAM role; `endpoint` overrides
    /// `https://bedrock-runtime.{region}.amazonaws.com`.
    Bedrock {
        model_id: String,
        endpoint: Option<Url>,
        timeout: Duration,
    },
}

/// The configured LLM client.
#[derive(Clone)]
pub enum ConfiguredLlm {
    OpenAi(OpenAiCompatible),
    Bedrock(crate::bedrock::BedrockConverse),
}

impl ConfiguredLlm {
    /// Builds the client; Bedrock needs the AWS region and credentials of the function.
    pub fn new(
        choice: LlmChoice,
        region: Option<&str>,
        credentials: Option<aws_credential_types::provider::SharedCredentialsProvider>,
    ) -> Result<Self, LlmError> {
        match choice {
            LlmChoice::OpenAi(config) => Ok(ConfiguredLlm::OpenAi(OpenAiCompatible::new(config)?)),
            LlmChoice::Bedrock {
                model_id,
                endpoint,
                timeout,
            } => {
                let region = region.ok_or_else(|| {
                    LlmError::Permanent("Bedrock needs an AWS region (AWS_REGION)".into())
                })?;
                let credentials = credentials.ok_or_else(|| {
                    LlmError::Permanent(
                        "Bedrock needs AWS credentials (the function's role)".into(),
                    )
                })?;
                let endpoint = match endpoint {
                    Some(endpoint) => endpoint,
                    None => Url::parse(&format!("https://bedrock-runtime.{region}.amazonaws.com"))
                        .map_err(|e| LlmError::Permanent(e.to_string()))?,
                };
                let config = crate::bedrock::BedrockConfig {
                    endpoint,
                    region: region.to_string(),
                    model_id,
                    timeout,
                    max_attempts: 3,
                };
                Ok(ConfiguredLlm::Bedrock(
                    crate::bedrock::BedrockConverse::new(config, credentials)?,
                ))
            }
        }
    }
}

impl ConfiguredLlm {
    /// Whether only the analysis worker may call this LLM: Bedrock is invoked with the
    /// function's role, and only the worker's role is allowed to (the API queues its
    /// follow-up questions instead).
    pub fn worker_only(&self) -> bool {
        matches!(self, ConfiguredLlm::Bedrock(_))
    }
}

impl Llm for ConfiguredLlm {
    fn model(&self) -> &str {
        match self {
            ConfiguredLlm::OpenAi(client) => client.model(),
            ConfiguredLlm::Bedrock(client) => client.model(),
        }
    }

    async fn complete(&self, messages: &[ChatMessage]) -> Result<String, LlmError> {
        match self {
            ConfiguredLlm::OpenAi(client) => client.complete(messages).await,
            ConfiguredLlm::Bedrock(client) => client.complete(messages).await,
        }
    }
}
