//! One router per Lambda function. Each function's binary serves its own; `buildlore dev`
//! merges them all on one port.

pub mod analyze;
pub mod events;
pub mod health;
pub mod ingest;
pub mod logs;
pub(crate) mod project;
pub mod query;
pub mod settings;
pub mod test_reports;
pub mod trace;
pub mod webhooks;

use crate::state::AppState;
use axum::Router;

/// Every function's routes together, as `buildlore dev` and the end-to-end tests serve them.
pub fn all() -> Router<AppState> {
    ingest::routes()
        .merge(query::routes())
        .merge(trace::routes())
        .merge(analyze::routes())
        .merge(events::routes())
}
