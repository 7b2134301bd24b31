//! Query-string parameters, read once into a map, with errors that say what to fix.

use crate::error::ApiError;
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use std::collections::HashMap;

/// The query string as an extractor that never rejects on its own.
pub type QueryParams = Result<Query<HashMap<String, String>>, QueryRejection>;

pub fn query_params(query: QueryParams) -> Result<HashMap<String, String>, ApiError> {
    let params = query
        .map(|Query(map)| map)
        .map_err(|_| ApiError::bad_request("the query string is not valid URL encoding"))?;
    // The decoder replaces bytes that are not UTF-8 (`%FF`) with U+FFFD, which would make
    // different invalid values the same: refuse them instead.
    if let Some(name) = params
        .iter()
        .find(|(name, value)| name.contains('\u{FFFD}') || value.contains('\u{FFFD}'))
        .map(|(name, _)| name)
    {
        return Err(ApiError::bad_request(format!(
            "query parameter `{}` holds percent-encoded bytes that are not UTF-8 (such as %FF); percent-encode UTF-8 text",
            name.chars().take(64).collect::<String>()
        )));
    }
    Ok(params)
}

/// A parameter that is present and not empty.
pub fn non_empty<'a>(params: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    params
        .get(name)
        .map(String::as_str)
        .filter(|value| !value.is_empty())
}

/// An optional whole-number parameter of at most `max`.
pub fn whole_number(
    params: &HashMap<String, String>,
    name: &str,
    max: u64,
) -> Result<Option<u64>, ApiError> {
    params
        .get(name)
        .filter(|value| !value.is_empty())
        .map(|value| match value.parse::<u64>() {
            Ok(n) if n <= max => Ok(n),
            _ if max == u64::MAX => Err(ApiError::bad_request(format!(
                "`{name}` must be a whole number"
            ))),
            _ => Err(ApiError::bad_request(format!(
                "`{name}` must be a whole number up to {max}"
            ))),
        })
        .transpose()
}
