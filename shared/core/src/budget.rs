//! Budgets of requests that cost money: each analysis or follow-up that reaches the LLM spends
//! one unit of the caller's key budget and one of the deployment's, per hour. A key that would
//! overspend is refused until the hour ends, and nothing is queued or asked.

use crate::ports::StoreError;
use chrono::{DateTime, Duration, DurationRound, Utc};
use std::future::Future;

/// The length of a budget window.
pub const BUDGET_WINDOW: Duration = Duration::hours(1);

/// Units per window; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetLimits {
    /// `ANALYSIS_BUDGET_PER_KEY`: what one API key may spend per hour.
    pub per_key: Option<u64>,
    /// `ANALYSIS_BUDGET_PER_DEPLOYMENT`: what every key together may spend per hour.
    pub per_deployment: Option<u64>,
}

impl Default for BudgetLimits {
    fn default() -> Self {
        BudgetLimits {
            per_key: Some(DEFAULT_BUDGET_PER_KEY),
            per_deployment: Some(DEFAULT_BUDGET_PER_DEPLOYMENT),
        }
    }
}

pub const DEFAULT_BUDGET_PER_KEY: u64 = 60;
pub const DEFAULT_BUDGET_PER_DEPLOYMENT: u64 = 600;

/// Counters of spent units, one per budget and window.
pub trait BudgetCounters: Send + Sync {
    /// Adds one unit to the counter of `budget` in the window starting at `window_start`
    /// unless it already holds `limit`: `Ok(false)` then, and nothing changes.
    fn spend_one(
        &self,
        budget: &str,
        window_start: DateTime<Utc>,
        limit: u64,
        expires: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    #[error("the {which} budget of {limit} LLM requests per hour is spent")]
    Spent {
        which: &'static str,
        limit: u64,
        /// Seconds until the window ends.
        retry_after: u64,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Spends one unit for the key `key_id` (an opaque, non-secret id of the caller's key).
pub async fn spend<C: BudgetCounters>(
    counters: &C,
    limits: BudgetLimits,
    key_id: &str,
    now: DateTime<Utc>,
) -> Result<(), BudgetError> {
    let (window_start, retry_after) = window_of(now)?;
    let expires = window_start + BUDGET_WINDOW + Duration::days(1);
    let budgets = [
        ("key", format!("key#{key_id}"), limits.per_key),
        (
            "deployment",
            "deployment".to_string(),
            limits.per_deployment,
        ),
    ];
    for (which, budget, limit) in budgets {
        let Some(limit) = limit else { continue };
        if !counters
            .spend_one(&budget, window_start, limit, expires)
            .await?
        {
            return Err(BudgetError::Spent {
                which,
                limit,
                retry_after,
            });
        }
    }
    Ok(())
}

/// The start of the window holding `now`, and the whole seconds until it ends (at least 1).
fn window_of(now: DateTime<Utc>) -> Result<(DateTime<Utc>, u64), StoreError> {
    let start = now
        .duration_trunc(BUDGET_WINDOW)
        .map_err(|error| StoreError::Failed(error.to_string()))?;
    let left = (start + BUDGET_WINDOW - now).num_milliseconds();
    Ok((start, (left as u64).div_ceil(1000).max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("a time")
    }

    #[test]
    fn a_window_is_the_hour_and_retry_after_what_is_left_of_it() {
        let (start, left) = window_of(at("2026-12-02T10:59:00Z")).expect("a window");
        assert_eq!((start, left), (at("2026-12-02T10:00:00Z"), 60));
        let (start, left) = window_of(at("2026-12-02T11:00:00Z")).expect("a window");
        assert_eq!((start, left), (at("2026-12-02T11:00:00Z"), 3600));
        let (_, left) = window_of(at("2026-12-02T11:59:59.500Z")).expect("a window");
        assert_eq!(left, 1);
    }
}
