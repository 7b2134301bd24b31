//! Configuration from environment variables, read once at start-up.

use crate::auth::{ApiKeys, WeakKey};
use buildlore_core::webhooks::secret::WebhookSecrets;
use buildlore_providers::secrets_manager::SecretsManager;
use buildlore_providers::{DEFAULT_GITHUB_LOG_HOSTS, ProviderConfig};
use std::collections::HashMap;

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
    /// `NOTIFY_ALLOW_LOOPBACK_HTTP`: lets notifications go to `http://127.0.0.1` (a receiver on
    /// the same machine, for local trials); targets are HTTPS only otherwise.
    pub notify_allow_loopback_http: bool,
    /// `DASHBOARD_URL`: where people open the dashboard (`https://buildlore.example.com`), for
    /// links in merge request comments; without it the comments link to no job page.
    pub dashboard_url: Option<String>,
    /// `AVATAR_HOSTS`: hosts `/api/avatar` fetches avatars from besides the GitLab host
    /// (comma-separated; default Gravatar's and GitHub's).
    pub avatar_hosts: Vec<String>,
    /// `CORS_ALLOWED_ORIGINS`: other origins whose pages may call the API (comma-separated,
    /// such as `https://dash.example.com`); none by default (the dashboard is same-origin).
    pub cors_allowed_origins: Vec<String>,
    /// `SECRETS_REFRESH_SECONDS`: how often secrets named by `<NAME>_SECRET_ARN` are read
    /// again, so a rotated API key or webhook secret takes effect without a redeploy
    /// (default 300).
    pub secrets_refresh: std::time::Duration,
    /// Where job logs are fetched from (`GITLAB_BASE_URL`, `GITLAB_TOKEN`, `GITHUB_API_URL`,
    /// `GITHUB_TOKEN`, `GITHUB_LOG_HOSTS`, `TRACE_MAX_BYTES`: the longest log stored, however it
    /// arrives).
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
    /// `EVENTS_MAX_STREAMS_PER_KEY`: live streams one API key may hold at once (default 5).
    pub max_streams_per_key: u32,
}

impl Default for EventTiming {
    fn default() -> Self {
        EventTiming {
            poll: std::time::Duration::from_secs(5),
            heartbeat: std::time::Duration::from_secs(15),
            max: std::time::Duration::from_secs(840),
            max_streams_per_key: DEFAULT_MAX_STREAMS_PER_KEY,
        }
    }
}

pub const DEFAULT_MAX_STREAMS_PER_KEY: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set; it must name {1}")]
    Missing(&'static str, &'static str),
    #[error("environment variable {0} must be {1}")]
    Invalid(&'static str, &'static str),
    #[error(transparent)]
    WeakKey(#[from] WeakKey),
    #[error("{0} and {1} are both set; give the secret one way")]
    Conflict(&'static str, String),
    #[error("the secret named by {0} could not be read: {1}")]
    Secret(String, String),
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
    // One cap for every way a log enters: pushed, appended or fetched. The older name
    // `TRACE_FETCH_MAX_BYTES` still works.
    let max_bytes = match lookup("TRACE_MAX_BYTES").or_else(|| lookup("TRACE_FETCH_MAX_BYTES")) {
        None => DEFAULT_TRACE_MAX_BYTES,
        Some(text) => match text.trim().parse() {
            Ok(bytes) if bytes > 0 => bytes,
            _ => {
                return Err(ConfigError::Invalid(
                    "TRACE_MAX_BYTES",
                    "a whole number of bytes above 0",
                ));
            }
        },
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

/// The longest log kept: a push, the appended parts of a trace, or a fetch.
pub const DEFAULT_TRACE_MAX_BYTES: usize = 64 * 1024 * 1024;

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

/// The variables that hold secrets. On AWS each is given as `<NAME>_SECRET_ARN`, a Secrets
/// Manager secret read at start-up, so the value never appears in the function's
/// configuration; locally the plain variable works too.
pub const SECRET_VARIABLES: &[&str] = &[
    "INGEST_API_KEY",
    "READ_API_KEY",
    "ADMIN_API_KEY",
    "GITLAB_WEBHOOK_SECRET",
    "GITHUB_WEBHOOK_SECRET",
    "GITLAB_TOKEN",
    "GITHUB_TOKEN",
    "LLM_API_KEY",
    "SESSION_SECRET",
];

/// Reads the secrets named by `<NAME>_SECRET_ARN` variables through `read_secret`, returning
/// each as `NAME` (a plain `NAME` beside its ARN is an error: which would win is unclear).
pub async fn resolve_secrets<F, Fut>(
    lookup: &impl Fn(&str) -> Option<String>,
    read_secret: F,
) -> Result<HashMap<String, String>, ConfigError>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<String, String>>,
{
    let mut resolved = HashMap::new();
    for &name in SECRET_VARIABLES {
        let arn_variable = format!("{name}_SECRET_ARN");
        let Some(arn) = lookup(&arn_variable).filter(|arn| !arn.trim().is_empty()) else {
            continue;
        };
        if lookup(name).is_some_and(|value| !value.trim().is_empty()) {
            return Err(ConfigError::Conflict(name, arn_variable));
        }
        let value = read_secret(arn.trim().to_string())
            .await
            .map_err(|reason| ConfigError::Secret(arn_variable.clone(), reason))?;
        resolved.insert(name.to_string(), value);
    }
    Ok(resolved)
}

fn cors_origins(lookup: &impl Fn(&str) -> Option<String>) -> Result<Vec<String>, ConfigError> {
    let mut origins = Vec::new();
    for origin in lookup("CORS_ALLOWED_ORIGINS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
    {
        let url = reqwest_url(origin).filter(|url| url.path() == "/" && !origin.ends_with('/'));
        if url.is_none() {
            return Err(ConfigError::Invalid(
                "CORS_ALLOWED_ORIGINS",
                "origins such as https://dash.example.com (scheme, host and port; no path), comma-separated",
            ));
        }
        origins.push(origin.to_string());
    }
    Ok(origins)
}

/// Whether any secret is named by a `<NAME>_SECRET_ARN` variable.
pub fn uses_secret_arns(lookup: &impl Fn(&str) -> Option<String>) -> bool {
    SECRET_VARIABLES
        .iter()
        .any(|name| lookup(&format!("{name}_SECRET_ARN")).is_some_and(|arn| !arn.trim().is_empty()))
}

impl Config {
    /// Takes the API keys and webhook secrets of `fresh` (read again from their store) for
    /// every handler at once. Provider and LLM tokens are read at start-up only.
    pub fn take_rotated_secrets(&self, fresh: &Config) {
        self.keys.replace_with(&fresh.keys);
        self.gitlab_webhook_secrets
            .replace_with(&fresh.gitlab_webhook_secrets);
        self.github_webhook_secrets
            .replace_with(&fresh.github_webhook_secrets);
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The configuration from the environment, with the secrets that `<NAME>_SECRET_ARN`
    /// variables name read from Secrets Manager.
    pub async fn from_env_and_secrets(
        clients: &buildlore_aws::AwsClients,
    ) -> Result<Self, ConfigError> {
        let environment = |name: &str| std::env::var(name).ok();
        if !uses_secret_arns(&environment) {
            return Self::from_env();
        }
        let region = clients.region.clone().ok_or(ConfigError::Missing(
            "AWS_REGION",
            "the region of the Secrets Manager secrets",
        ))?;
        let credentials = clients.credentials.clone().ok_or(ConfigError::Missing(
            "AWS_ACCESS_KEY_ID",
            "credentials to read Secrets Manager (the function's role provides them on AWS)",
        ))?;
        let endpoint = environment("AWS_ENDPOINT_URL_SECRETS_MANAGER")
            .or_else(|| environment("AWS_ENDPOINT_URL"))
            .and_then(|url| reqwest_url(&url));
        let manager = SecretsManager::new(&region, endpoint, credentials)
            .map_err(|e| ConfigError::Secret("SecretsManager".into(), e.to_string()))?;
        let resolved = resolve_secrets(&environment, |arn| {
            let manager = manager.clone();
            async move { manager.secret_string(&arn).await.map_err(|e| e.to_string()) }
        })
        .await?;
        Self::from_lookup(|name| resolved.get(name).cloned().or_else(|| environment(name)))
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
        )?
        .with_digests(
            &lookup("INGEST_API_KEY_SHA256").unwrap_or_default(),
            &lookup("READ_API_KEY_SHA256").unwrap_or_default(),
            &lookup("ADMIN_API_KEY_SHA256").unwrap_or_default(),
        )?
        .with_session_secret(lookup("SESSION_SECRET").as_deref())
        .map_err(|_| {
            ConfigError::Invalid(
                "SESSION_SECRET",
                "at least 32 characters (it signs dashboard sessions)",
            )
        })?;
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
            )
            .with_token_digests(&lookup("GITLAB_WEBHOOK_SECRET_SHA256").unwrap_or_default())
            .ok_or(ConfigError::Invalid(
                "GITLAB_WEBHOOK_SECRET_SHA256",
                "SHA-256 digests of tokens: 64 hex digits each, comma-separated",
            ))?,
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
                max_streams_per_key: match lookup("EVENTS_MAX_STREAMS_PER_KEY") {
                    None => DEFAULT_MAX_STREAMS_PER_KEY,
                    Some(text) => match text.trim().parse::<u32>() {
                        Ok(max) if max > 0 => max,
                        _ => {
                            return Err(ConfigError::Invalid(
                                "EVENTS_MAX_STREAMS_PER_KEY",
                                "a whole number of streams above 0",
                            ));
                        }
                    },
                },
            },
            providers: provider_config(&lookup)?,
            secrets_refresh: seconds(&lookup, "SECRETS_REFRESH_SECONDS", 300)?,
            cors_allowed_origins: cors_origins(&lookup)?,
            notify_allow_loopback_http: lookup("NOTIFY_ALLOW_LOOPBACK_HTTP")
                .is_some_and(|value| value.trim().eq_ignore_ascii_case("true")),
            dashboard_url: lookup("DASHBOARD_URL")
                .map(|url| url.trim().trim_end_matches('/').to_string())
                .filter(|url| url.starts_with("https://") || url.starts_with("http://")),
            avatar_hosts: match lookup("AVATAR_HOSTS") {
                Some(list) => list
                    .split(',')
                    .map(|host| host.trim().to_ascii_lowercase())
                    .filter(|host| !host.is_empty())
                    .collect(),
                None => buildlore_providers::avatar::DEFAULT_AVATAR_HOSTS
                    .iter()
                    .map(|host| host.to_string())
                    .collect(),
            },
            test_reports: crate::test_report_config::from_lookup(&lookup)?,
        })
    }
}

impl Config {
    /// How analyses are made and paid for here: the reuse window (`ANALYSIS_REUSE_DAYS`), the
    /// default branches whose last green run stands in for a branch's own
    /// (`TEST_DEFAULT_BRANCHES`), how flaky tests are counted, and the LLM budgets.
    pub fn analysis_policy(&self) -> buildlore_core::request_analysis::AnalysisPolicy {
        let flaky = self.test_reports.flaky.clone();
        buildlore_core::request_analysis::AnalysisPolicy {
            settings: buildlore_core::job_analysis::AnalysisSettings {
                reuse_within: chrono::Duration::days(i64::from(self.analysis_reuse_days)),
                default_branches: flaky.default_branches.clone(),
                ..Default::default()
            },
            flaky,
            budget: self.analysis_budget,
        }
    }
}
