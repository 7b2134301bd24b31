//! The HTTP side of buildlore: the error type and JSON shape every route shares, scoped API
//! keys, body reading with limits, configuration, and one router per Lambda function.

pub mod app;
pub mod auth;
pub mod body;
pub mod config;
pub mod dashboard;
pub mod error;
pub mod lambda;
pub mod log_downloads;
pub mod openapi;
pub mod params;
pub mod routes;
pub mod session;
pub mod state;
pub mod telemetry;
pub mod test_report_config;
pub mod version;
pub mod worker;

pub use app::function_app;
pub use config::Config;
pub use error::ApiError;
pub use state::AppState;
