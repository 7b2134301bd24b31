//! Reading provider payloads: optional fields are tolerated, present fields of the wrong
//! shape are reported, and every string is bounded and cleaned of control characters.

use crate::repo::RepoPath;
use crate::time::parse_provider_time;
use chrono::{DateTime, Utc};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidPayload(pub String);

/// Longest name, ref or label kept; longer ones are cut.
pub const MAX_NAME_CHARS: usize = 1024;
/// Longest commit message kept.
pub const MAX_MESSAGE_CHARS: usize = 16 * 1024;

pub fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter()
        .try_fold(value, |current, key| current.get(key))
        .filter(|found| !found.is_null())
}

fn dotted(path: &[&str]) -> String {
    path.join(".")
}

/// Control characters dropped (newlines and tabs kept when `multiline`), cut to `max` chars.
pub fn clean(text: &str, max: usize, multiline: bool) -> String {
    text.chars()
        .filter(|c| !c.is_control() || (multiline && (*c == '\n' || *c == '\t')))
        .take(max)
        .collect()
}

/// A string (or a number, as some fields are either); `None` when absent, null or blank.
pub fn text(value: &Value, path: &[&str]) -> Result<Option<String>, InvalidPayload> {
    bounded_text(value, path, MAX_NAME_CHARS, false)
}

pub fn message(value: &Value, path: &[&str]) -> Result<Option<String>, InvalidPayload> {
    bounded_text(value, path, MAX_MESSAGE_CHARS, true)
}

fn bounded_text(
    value: &Value,
    path: &[&str],
    max: usize,
    multiline: bool,
) -> Result<Option<String>, InvalidPayload> {
    match at(value, path) {
        None => Ok(None),
        Some(Value::String(s)) => {
            let cleaned = clean(s.trim(), max, multiline);
            Ok((!cleaned.is_empty()).then_some(cleaned))
        }
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(InvalidPayload(format!(
            "`{}` must be a string",
            dotted(path)
        ))),
    }
}

pub fn required_text(value: &Value, path: &[&str]) -> Result<String, InvalidPayload> {
    text(value, path)?.ok_or_else(|| InvalidPayload(format!("`{}` is required", dotted(path))))
}

/// An id: a whole number or a non-empty string.
pub fn id(value: &Value, path: &[&str]) -> Result<Option<String>, InvalidPayload> {
    match at(value, path) {
        None => Ok(None),
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => Ok(Some(n.to_string())),
        Some(Value::String(s))
            if !s.trim().is_empty() && s.len() <= 128 && !s.chars().any(char::is_control) =>
        {
            Ok(Some(s.trim().to_string()))
        }
        Some(_) => Err(InvalidPayload(format!(
            "`{}` must be a whole number or a short string",
            dotted(path)
        ))),
    }
}

pub fn required_id(value: &Value, path: &[&str]) -> Result<String, InvalidPayload> {
    id(value, path)?.ok_or_else(|| InvalidPayload(format!("`{}` is required", dotted(path))))
}

pub fn time(value: &Value, path: &[&str]) -> Result<Option<DateTime<Utc>>, InvalidPayload> {
    match at(value, path) {
        None => Ok(None),
        Some(Value::String(s)) => parse_provider_time(s).map(Some).ok_or_else(|| {
            InvalidPayload(format!(
                "`{}` is not a timestamp: {:?}",
                dotted(path),
                clean(s, 64, false)
            ))
        }),
        Some(_) => Err(InvalidPayload(format!(
            "`{}` must be a timestamp string",
            dotted(path)
        ))),
    }
}

/// Seconds (GitLab sends fractions) as whole milliseconds.
pub fn seconds_as_ms(value: &Value, path: &[&str]) -> Result<Option<u64>, InvalidPayload> {
    match at(value, path) {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(seconds) if seconds >= 0.0 && seconds.is_finite() => {
                Ok(Some((seconds * 1000.0).round() as u64))
            }
            _ => Err(InvalidPayload(format!(
                "`{}` must not be negative",
                dotted(path)
            ))),
        },
        Some(_) => Err(InvalidPayload(format!(
            "`{}` must be a number of seconds",
            dotted(path)
        ))),
    }
}

pub fn boolean(value: &Value, path: &[&str]) -> Result<Option<bool>, InvalidPayload> {
    match at(value, path) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(InvalidPayload(format!(
            "`{}` must be true or false",
            dotted(path)
        ))),
    }
}

pub fn strings(value: &Value, path: &[&str]) -> Result<Vec<String>, InvalidPayload> {
    match at(value, path) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(items
            .iter()
            .filter_map(Value::as_str)
            .map(|s| clean(s, MAX_NAME_CHARS, false))
            .filter(|s| !s.is_empty())
            .take(100)
            .collect()),
        Some(_) => Err(InvalidPayload(format!(
            "`{}` must be a list of strings",
            dotted(path)
        ))),
    }
}

pub fn repo(value: &Value, path: &[&str]) -> Result<RepoPath, InvalidPayload> {
    let raw = required_text(value, path)?;
    RepoPath::parse(&raw).map_err(|e| InvalidPayload(format!("`{}` {e}", dotted(path))))
}

/// Milliseconds between two times, when both are known and in order.
pub fn elapsed_ms(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Option<u64> {
    let (from, to) = (from?, to?);
    u64::try_from((to - from).num_milliseconds()).ok()
}
