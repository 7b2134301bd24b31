//! The route handlers, one module per area, and the one table ([`table`]) that says which
//! function serves each, who may call it, and what it does. Each function's binary serves its
//! own routes; `buildlore dev` serves them all on one port.

pub mod actions;
pub mod analyze;
pub mod events;
pub mod health;
pub mod ingest;
pub mod logs;
pub(crate) mod project;
pub mod query;
pub mod settings;
pub mod table;
pub mod test_reports;
pub mod trace;
pub mod webhooks;

pub use table::Function;
