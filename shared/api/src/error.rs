//! The one API error type: a status code and a message that says what to fix, rendered as
//! `{"error": "...", "statusCode": N, "timestamp": "..."}`. Internals go to the logs only.

use axum::Json;
use axum::response::{IntoResponse, Response};
use buildlore_core::ask_followup::AskFollowUpError;
use buildlore_core::deliver_webhook::DeliveryError;
use buildlore_core::fetch_trace::FetchTraceError;
use buildlore_core::job_analysis::{AnalyseError, FollowUpError, LlmError};
use buildlore_core::ports::StoreError;
use buildlore_core::record::RecordError;
use buildlore_core::request_analysis::RequestAnalysisError;
use buildlore_core::system_prompt::ReplacePromptError;
use buildlore_providers::FetchError;
use http::StatusCode;
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Seconds after which a retry may succeed (sent as `Retry-After`).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// Retryable: the caller should try again shortly.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// Something is wrong on our side. The cause is logged with its chain; the client gets a
    /// generic message.
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        let mut chain = cause.to_string();
        let mut source = cause.source();
        while let Some(next) = source {
            chain.push_str(": ");
            chain.push_str(&next.to_string());
            source = next.source();
        }
        tracing::error!(error = %chain, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error; it has been logged",
        )
    }

    pub fn body(&self) -> serde_json::Value {
        json!({
            "error": self.message,
            "statusCode": self.status.as_u16(),
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        })
    }
}

impl From<buildlore_core::budget::BudgetError> for ApiError {
    fn from(error: buildlore_core::budget::BudgetError) -> Self {
        use buildlore_core::budget::BudgetError;
        match error {
            BudgetError::Spent {
                which,
                limit,
                retry_after,
            } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "the {which} budget of {limit} LLM requests per hour is spent; retry after {retry_after} s (stored analyses are still answered)"
                ),
            )
            .with_retry_after(retry_after),
            BudgetError::Store(error) => store_failure(error),
        }
    }
}

/// Seconds a client is told to wait before retrying a request that met busy storage.
pub const RETRY_AFTER_BUSY_SECONDS: u64 = 1;

/// A storage failure as the client sees it: throttling and outages are retryable (503 with
/// `Retry-After`), the rest is ours (500, cause logged).
pub fn store_failure(error: StoreError) -> ApiError {
    match error {
        StoreError::Unavailable(_) => {
            tracing::warn!(error = %error, "storage unavailable");
            ApiError::unavailable("storage is busy; retry in a moment")
                .with_retry_after(RETRY_AFTER_BUSY_SECONDS)
        }
        other => ApiError::internal(&other),
    }
}

/// A path parameter that does not parse: the router's own message says which.
impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::PathRejection) -> Self {
        ApiError::bad_request(rejection.body_text())
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        store_failure(error)
    }
}

impl From<RecordError> for ApiError {
    fn from(error: RecordError) -> Self {
        match error {
            RecordError::Regression { .. } | RecordError::AlreadyFinished { .. } => {
                ApiError::conflict(error.to_string())
            }
            RecordError::Contended(_) => {
                tracing::warn!(error = %error, "write deferred");
                ApiError::unavailable("storage is busy; retry in a moment")
                    .with_retry_after(RETRY_AFTER_BUSY_SECONDS)
            }
            RecordError::Store(store) => store_failure(store),
        }
    }
}

impl From<DeliveryError> for ApiError {
    fn from(error: DeliveryError) -> Self {
        match error {
            DeliveryError::Store(error) => error.into(),
            DeliveryError::Record(error) => error.into(),
        }
    }
}

impl From<RequestAnalysisError> for ApiError {
    fn from(error: RequestAnalysisError) -> Self {
        match error {
            RequestAnalysisError::JobSucceeded(_) => ApiError::conflict(error.to_string()),
            RequestAnalysisError::NoQueue => ApiError::unavailable(error.to_string()),
            RequestAnalysisError::Budget(error) => error.into(),
            RequestAnalysisError::NotQueued(cause) => {
                tracing::warn!(error = %cause, "analysis request not queued");
                ApiError::unavailable("the analysis queue is busy; retry in a moment")
                    .with_retry_after(RETRY_AFTER_BUSY_SECONDS)
            }
            RequestAnalysisError::Triage(AnalyseError::Store(error))
            | RequestAnalysisError::Store(error) => store_failure(error),
            RequestAnalysisError::Triage(retryable) => ApiError::internal(&retryable),
        }
    }
}

impl From<FollowUpError> for ApiError {
    fn from(error: FollowUpError) -> Self {
        match error {
            FollowUpError::NoAnalysis(job_id) => ApiError::not_found(format!(
                "job {job_id} has no finished analysis to ask about; POST /api/ai/analyse first"
            )),
            FollowUpError::Llm(LlmError::Retryable(detail)) => {
                tracing::warn!(%detail, "follow-up LLM call failed");
                ApiError::unavailable("the LLM is busy; ask again in a moment")
            }
            FollowUpError::Llm(LlmError::Permanent(detail)) => {
                tracing::error!(%detail, "follow-up LLM call failed");
                ApiError::new(StatusCode::BAD_GATEWAY, "the LLM refused the question")
            }
            FollowUpError::Store(StoreError::Conflict) => {
                ApiError::conflict("too many follow-up questions on this job at once; ask again")
            }
            FollowUpError::Store(other) => store_failure(other),
        }
    }
}

impl From<AskFollowUpError> for ApiError {
    fn from(error: AskFollowUpError) -> Self {
        match error {
            AskFollowUpError::NoLlm => ApiError::conflict(error.to_string()),
            AskFollowUpError::Budget(error) => error.into(),
            AskFollowUpError::TimedOut => ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "the LLM did not answer in time; ask again",
            ),
            AskFollowUpError::Answer(error) => error.into(),
            AskFollowUpError::NoQueue => ApiError::unavailable(error.to_string()),
            AskFollowUpError::NotQueued(cause) => {
                tracing::warn!(error = %cause, "follow-up not queued");
                ApiError::unavailable("the analysis queue is busy; ask again in a moment")
                    .with_retry_after(RETRY_AFTER_BUSY_SECONDS)
            }
            AskFollowUpError::Store(error) => store_failure(error),
        }
    }
}

impl From<FetchTraceError<FetchError>> for ApiError {
    fn from(error: FetchTraceError<FetchError>) -> Self {
        match error {
            FetchTraceError::NoFetching => {
                ApiError::new(StatusCode::BAD_GATEWAY, error.to_string())
            }
            FetchTraceError::Fetch {
                provider,
                project,
                job_id,
                error,
            } => fetch_failure(error, &provider, &project, &job_id),
            FetchTraceError::Store(error) => store_failure(error),
        }
    }
}

/// A provider's failure to deliver a job's log, as the caller sees it.
fn fetch_failure(error: FetchError, provider: &str, project: &str, job_id: &str) -> ApiError {
    let name = if provider == "github" {
        "GitHub"
    } else {
        "GitLab"
    };
    match error {
        FetchError::NotFound => ApiError::not_found(format!(
            "{name} has no job {job_id} in {project}, and no trace is stored for it"
        )),
        FetchError::Expired => ApiError::new(
            StatusCode::GONE,
            format!(
                "{name} no longer keeps the log of job {job_id} (it expired), and no copy is stored"
            ),
        ),
        FetchError::NoToken(_) => ApiError::not_found(format!(
            "no trace is stored for job {job_id}, and no {name} token is configured to fetch it"
        )),
        FetchError::Rejected(status) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!("{name} rejected this deployment's token (HTTP {status}); check its scopes"),
        ),
        FetchError::ForeignRedirect(host) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!(
                "{name} redirected the log download to {host}, which is not an allowed log host"
            ),
        ),
        FetchError::RateLimited(seconds) => ApiError::unavailable(format!(
            "{name}'s API rate limit for this deployment's token is used up; retry in {seconds} s"
        ))
        .with_retry_after(seconds),
        FetchError::Unavailable(detail) => {
            tracing::warn!(%detail, "log fetch failed");
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                format!("{name} did not deliver the log; retry later"),
            )
        }
    }
}

impl From<ReplacePromptError> for ApiError {
    fn from(error: ReplacePromptError) -> Self {
        match error {
            ReplacePromptError::Length(_) => ApiError::bad_request(error.to_string()),
            ReplacePromptError::EditedOlderVersion { .. }
            | ReplacePromptError::ChangedMeanwhile => ApiError::conflict(error.to_string()),
            ReplacePromptError::Store(error) => store_failure(error),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, http::HeaderValue::from(seconds));
        }
        response
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}
