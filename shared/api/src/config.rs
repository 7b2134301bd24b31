//! Configuration from environment variables, read once at start-up.

use crate::auth::{ApiKeys, WeakKey};
use buildlore_core::webhooks::secret::WebhookSecrets;
use buildlore_providers::{DEFAULT_GITHUB_LOG_HOSTS, ProviderConfig};

#[derive(Debug, Clone)]
pub struct Config {
    /// `TABLE_NAME`: the DynamoDB table.
    pub table_name: String,
    /// `ANALYSIS_QUEUE_URL`: the SQS queue of analysis requests.
    pub analysis_queue_url: Option<String>,
    /// `INGEST_API_KEY`, `READ_API_KEY`, `ADMIN_API_KEY`: comma-separated keys per scope.
    pub keys: ApiKeys,
    /// `BUILD_RETENTION_DAYS`: builds expire this long after they ran (default 400, 0 = never).
    pub build_retention_days: Option<u32>,
    /// `GITLAB_WEBHOOK_SECRET`: the `X-Gitlab-Token` values accepted, comma-separated.
    pub gitlab_webhook_secrets: WebhookSecrets,
    /// `GITHUB_WEBHOOK_SECRET`: the HMAC secrets accepted, comma-separated.
    pub github_webhook_secrets: WebhookSecrets,
    /// `TRACE_CACHE_DAYS`: how long a log fetched from GitLab or GitHub is kept (default 30).
    pub trace_cache_days: u32,
    /// `LLM_PROVIDER` (`none`, `openai` meaning any OpenAI-compatible API, or `bedrock`),
    /// `LLM_BASE_URL`, `LLM_MODEL`, `LLM_API_KEY`, `LLM_TIMEOUT_SECONDS`; `None` when no LLM is
    /// configured.
    pub llm: Option<buildlore_providers::llm::LlmChoice>,
    /// `ANALYSIS_REUSE_DAYS`: an analysis of the same failure this recent is reused (default 14).
    pub analysis_reuse_days: u32,
    /// `ANALYSIS_BUDGET_PER_KEY`, `ANALYSIS_BUDGET_PER_DEPLOYMENT`: LLM requests per hour
    /// (0 = unlimited).
    pub analysis_budget: buildlore_core::budget::BudgetLimits,
    /// Timing of the live pipeline events.
    pub events: EventTiming,
    /// Where job logs are fetched from (`GITLAB_BASE_URL`, `GITLAB_TOKEN`, `GITHUB_API_URL`,
    /// `GITHUB_TOKEN`, `GITHUB_LOG_HOSTS`, `TRACE_FETCH_MAX_BYTES`).
    pub providers: ProviderConfig,
    /// Test reports: the flakiness monitors, the infrastructure-failure guard and tracking
    /// (`TEST_*`, see `test_report_config`).
    pub test_reports: crate::test_report_config::TestReportConfig,
}

/// How the Server-Sent Events stream of summaries is paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTiming {
    /// `EVENTS_POLL_SECONDS`: how often the summary is recomputed (default 5).
    pub poll: std::time::Duration,
    /// `EVENTS_HEARTBEAT_SECONDS`: heartbeat interval (default 15).
    pub heartbeat: std::time::Duration,
    /// `EVENTS_MAX_SECONDS`: a stream ends after this long; clients reconnect (default 840,
    /// under Lambda's 15-minute limit).
    pub max: std::time::Duration,
}

impl Default for EventTiming {
    fn default() -> Self {
        EventTiming {
            poll: std::time::Duration::from_secs(5),
            heartbeat: std::time::Duration::from_secs(15),
            max: std::time::Duration::from_secs(840),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set; it must name {1}")]
    Missing(&'static str, &'static str),
    #[error("environment variable {0} must be {1}")]
    Invalid(&'static str, &'static str),
    #[error(transparent)]
    WeakKey(#[from] WeakKey),
}

pub const DEFAULT_RETENTION_DAYS: u32 = 400;

fn provider_config(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<ProviderConfig, ConfigError> {
    let url = |name: &'static str, default: &str| {
        let raw = lookup(name)
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| default.to_string());
        reqwest_url(&raw).ok_or(ConfigError::Invalid(name, "an http(s) URL"))
    };
    let secret = |name: &str| {
        lookup(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let hosts = match lookup("GITHUB_LOG_HOSTS") {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(String::from)
            .collect(),
        None => DEFAULT_GITHUB_LOG_HOSTS
            .iter()
            .map(|h| h.to_string())
            .collect(),
    };
    let max_bytes = match lookup("TRACE_FETCH_MAX_BYTES") {
        None => 64 * 1024 * 1024,
        Some(text) => text.trim().parse().map_err(|_| {
            ConfigError::Invalid("TRACE_FETCH_MAX_BYTES", "a whole number of bytes")
        })?,
    };
    Ok(ProviderConfig {
        gitlab_base: url("GITLAB_BASE_URL", "https://gitlab.com")?,
        gitlab_token: secret("GITLAB_TOKEN"),
        github_api: url("GITHUB_API_URL", "https://api.github.com")?,
        github_token: secret("GITHUB_TOKEN"),
        github_log_hosts: hosts,
        max_bytes,
        connect_timeout: std::time::Duration::from_secs(5),
        read_timeout: std::time::Duration::from_secs(20),
        max_attempts: 4,
    })
}

/// The Bedrock model used when `LLM_MODEL` is not set.
pub const DEFAULT_BEDROCK_MODEL: &str = "anthropic.claude-3-haiku-20240307-v1:0";

fn llm_config(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<Option<buildlore_providers::llm::LlmChoice>, ConfigError> {
    use buildlore_providers::llm::LlmChoice;
    let provider = lookup("LLM_PROVIDER").unwrap_or_default();
    match provider.trim().to_ascii_lowercase().as_str() {
        "" | "none" => Ok(None),
        "bedrock" => {
            let endpoint = match lookup("LLM_BASE_URL").filter(|u| !u.trim().is_empty()) {
                None => None,
                Some(url) => Some(reqwest_url(&url).ok_or(ConfigError::Invalid(
                    "LLM_BASE_URL",
                    "an http(s) URL (for Bedrock: a bedrock-runtime endpoint)",
                ))?),
            };
            Ok(Some(LlmChoice::Bedrock {
                model_id: lookup("LLM_MODEL")
                    .filter(|m| !m.trim().is_empty())
                    .unwrap_or_else(|| DEFAULT_BEDROCK_MODEL.into()),
                endpoint,
                timeout: seconds(lookup, "LLM_TIMEOUT_SECONDS", 60)?,
            }))
        }
        "openai" => {
            let base_url = match lookup("LLM_BASE_URL") {
                None => "https://api.openai.com/v1".to_string(),
                Some(url) => url,
            };
            let base_url = reqwest_url(&base_url).ok_or(ConfigError::Invalid(
                "LLM_BASE_URL",
                "an http(s) URL such as https://api.openai.com/v1",
            ))?;
            let timeout = seconds(lookup, "LLM_TIMEOUT_SECONDS", 60)?;
            Ok(Some(LlmChoice::OpenAi(
                buildlore_providers::llm::LlmConfig {
                    base_url,
                    model: lookup("LLM_MODEL")
                        .filter(|m| !m.trim().is_empty())
                        .unwrap_or_else(|| "gpt-4o-mini".into()),
                    api_key: lookup("LLM_API_KEY").filter(|k| !k.trim().is_empty()),
                    timeout,
                    max_attempts: 3,
                },
            )))
        }
        _ => Err(ConfigError::Invalid(
            "LLM_PROVIDER",
            "`none`, `openai` (any OpenAI-compatible API) or `bedrock`",
        )),
    }
}

fn reqwest_url(raw: &str) -> Option<buildlore_providers::Url> {
    let url = buildlore_providers::Url::parse(raw.trim()).ok()?;
    matches!(url.scheme(), "http" | "https").then_some(url)
}

/// How long fetched logs are kept unless `TRACE_CACHE_DAYS` says otherwise.
pub const DEFAULT_TRACE_CACHE_DAYS: u32 = 30;

fn seconds(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
) -> Result<std::time::Duration, ConfigError> {
    match lookup(name) {
        None => Ok(std::time::Duration::from_secs(default)),
        Some(text) => match text.trim().parse::<u64>() {
            Ok(n) if n > 0 => Ok(std::time::Duration::from_secs(n)),
            _ => Err(ConfigError::Invalid(
                name,
                "a whole number of seconds above 0",
            )),
        },
    }
}

/// A per-hour budget: a whole number, 0 for unlimited, `default` when unset.
fn budget(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
) -> Result<Option<u64>, ConfigError> {
    match lookup(name) {
        None => Ok(Some(default)),
        Some(text) => match text.trim().parse::<u64>() {
            Ok(0) => Ok(None),
            Ok(limit) => Ok(Some(limit)),
            Err(_) => Err(ConfigError::Invalid(
                name,
                "a whole number of requests per hour (0 = unlimited)",
            )),
        },
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup`, so tests can supply their own variables.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let table_name = lookup("TABLE_NAME")
            .filter(|name| !name.trim().is_empty())
            .ok_or(ConfigError::Missing("TABLE_NAME", "the DynamoDB table"))?;
        let analysis_queue_url = lookup("ANALYSIS_QUEUE_URL").filter(|url| !url.trim().is_empty());
        let keys = ApiKeys::from_lists(
            &lookup("INGEST_API_KEY").unwrap_or_default(),
            &lookup("READ_API_KEY").unwrap_or_default(),
            &lookup("ADMIN_API_KEY").unwrap_or_default(),
        )?;
        let build_retention_days = match lookup("BUILD_RETENTION_DAYS") {
            None => Some(DEFAULT_RETENTION_DAYS),
            Some(text) => match text.trim().parse::<u32>() {
                Ok(0) => None,
                Ok(days) => Some(days),
                Err(_) => {
                    return Err(ConfigError::Invalid(
                        "BUILD_RETENTION_DAYS",
                        "a whole number of days (0 keeps builds forever)",
                    ));
                }
            },
        };
        let trace_cache_days = match lookup("TRACE_CACHE_DAYS") {
            None => DEFAULT_TRACE_CACHE_DAYS,
            Some(text) => match text.trim().parse::<u32>() {
                Ok(days) if days > 0 => days,
                _ => {
                    return Err(ConfigError::Invalid(
                        "TRACE_CACHE_DAYS",
                        "a whole number of days above 0",
                    ));
                }
            },
        };
        let analysis_reuse_days = match lookup("ANALYSIS_REUSE_DAYS") {
            None => 14,
            Some(text) => text.trim().parse::<u32>().map_err(|_| {
                ConfigError::Invalid("ANALYSIS_REUSE_DAYS", "a whole number of days")
            })?,
        };
        Ok(Config {
            table_name,
            analysis_queue_url,
            keys,
            build_retention_days,
            trace_cache_days,
            llm: llm_config(&lookup)?,
            analysis_reuse_days,
            gitlab_webhook_secrets: WebhookSecrets::from_list(
                &lookup("GITLAB_WEBHOOK_SECRET").unwrap_or_default(),
            ),
            github_webhook_secrets: WebhookSecrets::from_list(
                &lookup("GITHUB_WEBHOOK_SECRET").unwrap_or_default(),
            ),
            analysis_budget: buildlore_core::budget::BudgetLimits {
                per_key: budget(
                    &lookup,
                    "ANALYSIS_BUDGET_PER_KEY",
                    buildlore_core::budget::DEFAULT_BUDGET_PER_KEY,
                )?,
                per_deployment: budget(
                    &lookup,
                    "ANALYSIS_BUDGET_PER_DEPLOYMENT",
                    buildlore_core::budget::DEFAULT_BUDGET_PER_DEPLOYMENT,
                )?,
            },
            events: EventTiming {
                poll: seconds(&lookup, "EVENTS_POLL_SECONDS", 5)?,
                heartbeat: seconds(&lookup, "EVENTS_HEARTBEAT_SECONDS", 15)?,
                max: seconds(&lookup, "EVENTS_MAX_SECONDS", 840)?,
            },
            providers: provider_config(&lookup)?,
            test_reports: crate::test_report_config::from_lookup(&lookup)?,
        })
    }
}
