//! What every handler shares, built once per process (per Lambda cold start). Outbound
//! clients are built on their first use, so a function pays only for those it uses.

use crate::config::Config;
use buildlore_aws::analysis_queue::SqsAnalysisQueue;
use buildlore_aws::{AwsClients, DynamoStore};
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: DynamoStore,
    /// `None` when no `ANALYSIS_QUEUE_URL` is configured.
    pub analysis_queue: Option<SqsAnalysisQueue>,
    pub clients: AwsClients,
    /// Webhook bodies read before their signature can be checked (GitHub's HMAC covers the
    /// whole body) take one of these permits, so unauthenticated senders can hold at most
    /// `WEBHOOK_BODIES_IN_FLIGHT` bodies in memory at once.
    pub webhook_bodies: Arc<tokio::sync::Semaphore>,
    /// `/api/avatar`'s client, built on its first use (only the query function serves it, so
    /// no other function pays for it at start-up).
    avatars: Arc<std::sync::OnceLock<Option<buildlore_providers::avatar::AvatarClient>>>,
    /// GitLab's and GitHub's APIs (retry, cancel, history, comments), built on first use.
    forge: Arc<std::sync::OnceLock<Option<buildlore_providers::forge::ForgeClient>>>,
    /// GitLab and GitHub log fetching, built on first use (by the functions that fetch logs).
    providers: Arc<std::sync::OnceLock<Option<buildlore_providers::ProviderClient>>>,
    /// The configured LLM, built on first use; `None` makes analyses from the triage alone.
    llm: Arc<std::sync::OnceLock<Option<buildlore_providers::llm::ConfiguredLlm>>>,
    /// Sends notifications to their targets, built on first use (only the worker sends).
    notifier: Arc<std::sync::OnceLock<Option<buildlore_providers::notify::WebhookNotifier>>>,
}

/// The avatar client for the configured hosts and the GitLab host (fetched over plain http
/// only when GitLab itself is configured so, on a closed network).
fn avatar_client(config: &Config) -> Option<buildlore_providers::avatar::AvatarClient> {
    let gitlab = &config.providers.gitlab_base;
    let mut hosts = config.avatar_hosts.clone();
    let mut plain_http = Vec::new();
    if let Some(host) = gitlab.host_str() {
        let host = match gitlab.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        if gitlab.scheme() == "http" {
            plain_http.push(host.clone());
        }
        hosts.push(host);
    }
    buildlore_providers::avatar::AvatarClient::new(hosts, plain_http)
        .map_err(|error| tracing::error!(%error, "avatars are off"))
        .ok()
}

/// Webhook bodies being read at once (each at most 5 MB).
pub const WEBHOOK_BODIES_IN_FLIGHT: usize = 16;

impl AppState {
    pub fn new(config: Config, clients: AwsClients) -> Self {
        let store = DynamoStore::new(
            clients.dynamodb.clone(),
            config.table_name.clone(),
            config.build_retention_days,
        );
        let analysis_queue = config
            .analysis_queue_url
            .as_ref()
            .map(|url| SqsAnalysisQueue::new(clients.sqs.clone(), url.clone()));
        AppState {
            avatars: Arc::default(),
            forge: Arc::default(),
            notifier: Arc::default(),
            webhook_bodies: Arc::new(tokio::sync::Semaphore::new(WEBHOOK_BODIES_IN_FLIGHT)),
            llm: Arc::default(),
            providers: Arc::default(),
            analysis_queue,
            config: Arc::new(config),
            store,
            clients,
        }
    }

    /// The log fetcher of GitLab and GitHub; `None` when it could not be built.
    pub fn providers(&self) -> Option<&buildlore_providers::ProviderClient> {
        self.providers
            .get_or_init(|| {
                buildlore_providers::ProviderClient::new(self.config.providers.clone())
                    .map_err(|error| {
                        tracing::error!(%error, "log fetching from GitLab and GitHub is off")
                    })
                    .ok()
            })
            .as_ref()
    }

    /// The configured LLM; `None` when none is configured or it could not be built.
    pub fn llm(&self) -> Option<&buildlore_providers::llm::ConfiguredLlm> {
        self.llm
            .get_or_init(|| {
                let choice = self.config.llm.clone()?;
                buildlore_providers::llm::ConfiguredLlm::new(
                    choice,
                    self.clients.region.as_deref(),
                    self.clients.credentials.clone(),
                )
                .map_err(|error| tracing::error!(%error, "the LLM client could not be built"))
                .ok()
            })
            .as_ref()
    }

    /// The avatar client for the configured hosts; `None` when it could not be built.
    pub fn avatars(&self) -> Option<&buildlore_providers::avatar::AvatarClient> {
        self.avatars
            .get_or_init(|| avatar_client(&self.config))
            .as_ref()
    }

    /// The client of GitLab's and GitHub's APIs; `None` when it could not be built.
    pub fn forge(&self) -> Option<&buildlore_providers::forge::ForgeClient> {
        self.forge
            .get_or_init(|| {
                buildlore_providers::forge::ForgeClient::new(self.config.providers.clone())
                    .map_err(|error| tracing::error!(%error, "acting on GitLab and GitHub is off"))
                    .ok()
            })
            .as_ref()
    }

    /// The notification sender; `None` when it could not be built.
    pub fn notifier(&self) -> Option<&buildlore_providers::notify::WebhookNotifier> {
        self.notifier
            .get_or_init(|| {
                buildlore_providers::notify::WebhookNotifier::new(
                    buildlore_providers::notify::NotifierConfig {
                        connect_timeout: std::time::Duration::from_secs(5),
                        timeout: std::time::Duration::from_secs(10),
                        max_attempts: 3,
                        allow_loopback_http: self.config.notify_allow_loopback_http,
                    },
                )
                .map_err(|error| tracing::error!(%error, "notifications are off"))
                .ok()
            })
            .as_ref()
    }

    pub async fn from_env() -> Result<Self, crate::config::ConfigError> {
        let clients = AwsClients::from_env().await;
        let config = Config::from_env_and_secrets(&clients).await?;
        let state = Self::new(config, clients);
        state.keep_secrets_fresh();
        Ok(state)
    }

    /// When secrets come from Secrets Manager, reads them again every `secrets_refresh`, so
    /// a rotated key or webhook secret takes effect without a redeploy. (On Lambda the task
    /// runs while the environment is running invocations; a frozen one catches up when thawed.)
    pub fn keep_secrets_fresh(&self) {
        let environment = |name: &str| std::env::var(name).ok();
        if !crate::config::uses_secret_arns(&environment) {
            return;
        }
        let (config, clients) = (self.config.clone(), self.clients.clone());
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(config.secrets_refresh);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                match Config::from_env_and_secrets(&clients).await {
                    Ok(fresh) => config.take_rotated_secrets(&fresh),
                    Err(error) => tracing::warn!(
                        %error,
                        "secrets were not read again; the ones read before stay in use"
                    ),
                }
            }
        });
    }
}
