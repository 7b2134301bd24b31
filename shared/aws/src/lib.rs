//! AWS adapters: the DynamoDB build store, SQS queues, the table bootstrap, and the SDK
//! clients they share.

pub mod bootstrap;
pub mod build_item;
pub mod build_store;
pub mod call_stats;
pub mod clients;
pub mod errors;

pub use build_store::DynamoBuildStore;
pub use call_stats::CallStats;
pub use clients::AwsClients;
