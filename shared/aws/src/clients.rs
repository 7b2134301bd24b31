//! SDK clients, built once at start-up. Endpoints, region and credentials come from the
//! standard AWS environment (`AWS_ENDPOINT_URL` points them at a local emulator).

use crate::call_stats::CallStats;
use aws_config::BehaviorVersion;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

#[derive(Debug, Clone)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub stats: CallStats,
    /// The region and credentials of the SDK configuration, for requests signed by hand
    /// (Bedrock's Converse API).
    pub region: Option<String>,
    pub credentials: Option<aws_credential_types::provider::SharedCredentialsProvider>,
}

fn loader() -> aws_config::ConfigLoader {
    // rustls with ring: no C toolchain needed, and the same on x86_64 and arm64.
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest()).http_client(http_client)
}

impl AwsClients {
    /// Clients configured from the standard AWS environment variables and profiles.
    pub async fn from_env() -> Self {
        Self::from_shared(&loader().load().await)
    }

    /// Clients for a local emulator at `endpoint`, with dummy credentials.
    pub async fn for_emulator(endpoint: &str) -> Self {
        let credentials = aws_sdk_dynamodb::config::Credentials::new(
            "emulator", "emulator", None, None, "emulator",
        );
        let shared = loader()
            .endpoint_url(endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(credentials)
            .load()
            .await;
        Self::from_shared(&shared)
    }

    fn from_shared(shared: &aws_config::SdkConfig) -> Self {
        let stats = CallStats::default();
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(shared)
                .interceptor(stats.clone())
                .build(),
        );
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(shared)
                .interceptor(stats.clone())
                .build(),
        );
        AwsClients {
            dynamodb,
            sqs,
            stats,
            region: shared.region().map(|r| r.to_string()),
            credentials: shared.credentials_provider(),
        }
    }
}
