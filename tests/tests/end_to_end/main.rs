//! Every end-to-end test of the workspace in one test binary: one link instead of one per
//! file, and one emulator for all of them when the tests start their own.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed expectation is the test failing"
)]

mod ai;
mod analysis;
mod auto_retry;
mod backfill;
mod bad_input;
mod bedrock;
mod builds;
mod compat;
mod contracts;
mod dashboard_browser;
mod dashboard_session;
mod details;
mod event_order;
mod events;
mod jobtrace;
mod junit_fixtures;
mod last_green;
mod llm_client;
mod logs;
mod merge_request_comments;
mod notifications;
mod openapi;
mod provider_actions;
mod provider_fetch;
mod readme_snippets;
mod security;
mod summary;
mod template;
mod test_reports;
mod triage;
mod webhooks;
mod worker;
