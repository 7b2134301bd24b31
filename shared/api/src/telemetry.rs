//! Logging: JSON lines when Lambda's JSON log format is configured (or `LOG_FORMAT=json`),
//! readable text otherwise. Level from `RUST_LOG`, else Lambda's own `AWS_LAMBDA_LOG_LEVEL`
//! (set by the function's logging configuration), else `info`.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| {
            // Lambda names its levels in capitals, and TRACE/DEBUG/INFO/WARN/ERROR/FATAL.
            let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")?.to_ascii_lowercase();
            let level = if level == "fatal" {
                "error".to_string()
            } else {
                level
            };
            Ok::<_, std::env::VarError>(EnvFilter::new(level))
        })
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"))
        || std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let result = if json {
        builder.json().flatten_event(true).without_time().try_init()
    } else {
        builder.try_init()
    };
    // Already initialised (tests, or a second call) is fine.
    drop(result);
}
