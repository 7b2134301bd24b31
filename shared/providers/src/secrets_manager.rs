//! Secrets read from AWS Secrets Manager (`GetSecretValue`) at start-up, so API keys, webhook
//! secrets and provider or LLM tokens never sit in a function's configuration, where anyone
//! with `lambda:GetFunctionConfiguration` could read them.

use aws_credential_types::provider::SharedCredentialsProvider;
use reqwest::Url;
use serde_json::json;
use std::time::Duration;

/// The longest secret value read.
const MAX_SECRET_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("Secrets Manager is not reachable: {0}")]
    Unavailable(String),
    #[error("Secrets Manager refused to read {secret}: {reason}")]
    Refused { secret: String, reason: String },
    #[error("secret {0} holds no text (SecretString)")]
    NotText(String),
}

#[derive(Clone)]
pub struct SecretsManager {
    http: reqwest::Client,
    endpoint: Url,
    region: String,
    credentials: SharedCredentialsProvider,
}

impl SecretsManager {
    /// `endpoint` overrides `https://secretsmanager.{region}.amazonaws.com` (an emulator).
    pub fn new(
        region: &str,
        endpoint: Option<Url>,
        credentials: SharedCredentialsProvider,
    ) -> Result<Self, SecretError> {
        crate::install_crypto();
        let endpoint = match endpoint {
            Some(endpoint) => endpoint,
            None => Url::parse(&format!("https://secretsmanager.{region}.amazonaws.com/"))
                .map_err(|e| SecretError::Unavailable(e.to_string()))?,
        };
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| SecretError::Unavailable(e.to_string()))?;
        Ok(SecretsManager {
            http,
            endpoint,
            region: region.to_string(),
            credentials,
        })
    }

    /// The text of a secret (its current version), by ARN or name.
    pub async fn secret_string(&self, secret_id: &str) -> Result<String, SecretError> {
        let body = serde_json::to_vec(&json!({"SecretId": secret_id}))
            .map_err(|e| SecretError::Unavailable(e.to_string()))?;
        let headers = crate::sigv4::signed_post_headers(
            &self.credentials,
            &self.region,
            "secretsmanager",
            &self.endpoint,
            &[
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", "secretsmanager.GetSecretValue"),
            ],
            &body,
        )
        .await
        .map_err(SecretError::Unavailable)?;
        let mut request = self.http.post(self.endpoint.clone()).body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request
            .send()
            .await
            .map_err(|e| SecretError::Unavailable(e.to_string()))?;
        let status = response.status();
        let answer = crate::json_capped(response, MAX_SECRET_BYTES)
            .await
            .map_err(SecretError::Unavailable)?;
        if !status.is_success() {
            // The error's type and message, never anything of a secret's value.
            let kind = answer["__type"].as_str().unwrap_or("error");
            let message = answer["message"]
                .as_str()
                .or_else(|| answer["Message"].as_str())
                .unwrap_or("");
            let refused = SecretError::Refused {
                secret: secret_id.to_string(),
                reason: format!("HTTP {}: {kind} {message}", status.as_u16()),
            };
            return Err(if status.is_server_error() {
                SecretError::Unavailable(refused.to_string())
            } else {
                refused
            });
        }
        answer["SecretString"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| SecretError::NotText(secret_id.to_string()))
    }
}
