//! What every handler shares, built once per process (per Lambda cold start).

use crate::config::Config;
use buildlore_aws::{AwsClients, DynamoStore};
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: DynamoStore,
    pub clients: AwsClients,
}

impl AppState {
    pub fn new(config: Config, clients: AwsClients) -> Self {
        let store = DynamoStore::new(
            clients.dynamodb.clone(),
            config.table_name.clone(),
            config.build_retention_days,
        );
        AppState {
            config: Arc::new(config),
            store,
            clients,
        }
    }

    pub async fn from_env() -> Result<Self, crate::config::ConfigError> {
        let config = Config::from_env()?;
        Ok(Self::new(config, AwsClients::from_env().await))
    }
}
