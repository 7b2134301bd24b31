//! What every handler shares, built once per process (per Lambda cold start).

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
    /// GitLab and GitHub log fetching.
    pub providers: Option<buildlore_providers::ProviderClient>,
    /// The configured LLM; `None` makes analyses from the triage alone.
    pub llm: Option<buildlore_providers::llm::ConfiguredLlm>,
    pub clients: AwsClients,
    /// Webhook bodies read before their signature can be checked (GitHub's HMAC covers the
    /// whole body) take one of these permits, so unauthenticated senders can hold at most
    /// `WEBHOOK_BODIES_IN_FLIGHT` bodies in memory at once.
    pub webhook_bodies: Arc<tokio::sync::Semaphore>,
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
        let providers = match buildlore_providers::ProviderClient::new(config.providers.clone()) {
            Ok(client) => Some(client),
            Err(error) => {
                tracing::error!(%error, "log fetching from GitLab and GitHub is off");
                None
            }
        };
        let llm = config.llm.clone().and_then(|choice| {
            buildlore_providers::llm::ConfiguredLlm::new(
                choice,
                clients.region.as_deref(),
                clients.credentials.clone(),
            )
            .map_err(|error| tracing::error!(%error, "the LLM client could not be built"))
            .ok()
        });
        AppState {
            webhook_bodies: Arc::new(tokio::sync::Semaphore::new(WEBHOOK_BODIES_IN_FLIGHT)),
            llm,
            providers,
            analysis_queue,
            config: Arc::new(config),
            store,
            clients,
        }
    }

    pub async fn from_env() -> Result<Self, crate::config::ConfigError> {
        let clients = AwsClients::from_env().await;
        let config = Config::from_env_and_secrets(&clients).await?;
        Ok(Self::new(config, clients))
    }
}
