//! The buildlore core: the domain model of builds, how submissions are validated, how state
//! moves forward, what the daily counters hold, and the ports the adapters implement.
//! Nothing here knows about AWS or HTTP.

pub mod analysis;
pub mod analysis_request;
pub mod analysis_wait;
pub mod ask_followup;
pub mod auto_retry;
pub mod backfill;
pub mod budget;
pub mod build;
pub mod compression;
pub mod counters;
pub mod cursor;
pub mod deliver_webhook;
pub mod details;
pub mod explain;
pub mod fetch_trace;
pub mod fields;
pub mod groups;
pub mod job_analysis;
pub mod job_id;
pub mod junit;
pub mod keys;
pub mod last_green;
pub mod list_builds;
pub mod log_clean;
pub mod log_push;
pub mod log_source;
pub mod merge_request_comment;
pub mod notifications;
pub mod notify;
pub mod ports;
pub mod provider_actions;
pub mod record;
pub mod record_batch;
pub mod recorded_actions;
pub mod redact;
pub mod repo;
pub mod repo_settings;
pub mod request_analysis;
pub mod retry_after_analysis;
pub mod review_comment;
pub mod runs;
pub mod settings;
pub mod status;
pub mod stream_slots;
pub mod summary;
pub mod system_prompt;
pub mod table;
pub mod time;
pub mod trace;
pub mod triage;
pub mod webhooks;

pub use build::{Build, BuildSubmission};
pub use repo::RepoPath;
pub use status::BuildStatus;
