//! Delivering notifications to admin-configured targets: a Slack-compatible incoming webhook
//! or any HTTPS endpoint. HTTPS only (plain http to the loopback only when the configuration
//! allows it, for tests); no redirects followed; each attempt is signed afresh (a new
//! timestamp) when the target has a secret; 429 and 5xx are retried through [`crate::retry`]
//! with the same delivery id, so a receiver can drop a duplicate.

use crate::install_crypto;
use crate::retry::{RetryFailure, RetryPolicy, send_with_retries};
use buildlore_core::notifications::{
    DELIVERY_HEADER, EVENT_HEADER, Notification, NotificationSender, NotificationTarget,
    NotifyError, SIGNATURE_HEADER, TIMESTAMP_HEADER, body, signature,
};
use reqwest::Url;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct NotifierConfig {
    pub connect_timeout: Duration,
    /// The whole request, answer included: a receiver is not waited on for long.
    pub timeout: Duration,
    pub max_attempts: u32,
    /// Allows `http://127.0.0.1`, `http://localhost` and `http://[::1]` targets: for tests only.
    pub allow_loopback_http: bool,
}

#[derive(Clone)]
pub struct WebhookNotifier {
    http: reqwest::Client,
    config: NotifierConfig,
}

impl WebhookNotifier {
    pub fn new(config: NotifierConfig) -> Result<Self, NotifyError> {
        install_crypto();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .user_agent(concat!("buildlore/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| NotifyError::Unavailable(crate::without_url(e)))?;
        Ok(WebhookNotifier { http, config })
    }

    /// The target's URL, if it may be sent to.
    fn allowed(&self, raw: &str) -> Result<Url, NotifyError> {
        let refused = || NotifyError::RefusedTarget(shown(raw));
        let url = Url::parse(raw).map_err(|_| refused())?;
        let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        let ok = url.host_str().is_some()
            && url.username().is_empty()
            && url.password().is_none()
            && (url.scheme() == "https"
                || (url.scheme() == "http" && loopback && self.config.allow_loopback_http));
        if ok { Ok(url) } else { Err(refused()) }
    }
}

/// A target as an error message may show it: scheme and host only (a Slack webhook's path is
/// its secret).
fn shown(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(url) => format!("{}://{}", url.scheme(), url.host_str().unwrap_or("?")),
        Err(_) => "an unparseable URL".into(),
    }
}

impl NotificationSender for WebhookNotifier {
    async fn send(
        &self,
        target: &NotificationTarget,
        notification: &Notification,
    ) -> Result<(), NotifyError> {
        let url = self.allowed(&target.url)?;
        let payload = body(notification, target.format);
        let policy = RetryPolicy::idempotent(self.config.max_attempts);
        let response = send_with_retries(&policy, || {
            let mut request = self
                .http
                .post(url.clone())
                .header("Content-Type", "application/json")
                .header(EVENT_HEADER, notification.event.name())
                .header(DELIVERY_HEADER, notification.delivery_id.as_str());
            if let Some(secret) = &target.secret {
                let timestamp = chrono::Utc::now().timestamp();
                request = request
                    .header(TIMESTAMP_HEADER, timestamp.to_string())
                    .header(SIGNATURE_HEADER, signature(secret, timestamp, &payload));
            }
            let request = request.body(payload.clone());
            async move { Ok::<_, std::convert::Infallible>(request) }
        })
        .await
        .map_err(|failure| match failure {
            RetryFailure::Build(never) => match never {},
            RetryFailure::RateLimited(seconds) => NotifyError::RateLimited(seconds),
            RetryFailure::Unavailable(detail) => {
                NotifyError::Unavailable(format!("{}: {detail}", shown(&target.url)))
            }
        })?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(NotifyError::Refused(status.as_u16()))
        }
    }
}
