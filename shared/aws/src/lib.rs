//! AWS adapters: the DynamoDB build store, SQS queues, the table bootstrap, and the SDK
//! clients they share.

pub mod action_log;
pub mod analysis_queue;
pub mod analysis_store;
pub mod backfill_log;
pub mod bootstrap;
pub mod budget_counters;
pub mod build_item;
pub mod call_stats;
pub mod clients;
pub mod errors;
pub mod green_run_store;
mod json_items;
pub mod kept_comments;
pub mod markers;
pub mod notification_store;
mod pages;
pub mod recent_runs_item;
pub mod record_store;
pub mod repo_settings_store;
pub mod run_items;
pub mod settings_store;
pub mod stream_slots;
pub mod summary_source;
pub mod system_prompt_store;
pub mod test_report_store;
pub mod trace_store;

pub use call_stats::CallStats;
pub use clients::AwsClients;
pub use record_store::DynamoStore;
