//! The one retry loop of the crate: every outbound request (logs, provider API calls,
//! notifications, the LLM) is sent through [`send_with_retries`]. Refused connections,
//! timeouts, 429 and 5xx are retried with exponential backoff and jitter; a wait the server
//! asks for (`Retry-After` in seconds or as an HTTP date, GitLab's `RateLimit-Reset` or
//! GitHub's `x-ratelimit-reset` once the remaining budget is zero) is honoured, and a wait
//! longer than the caller can afford ends with [`RetryFailure::RateLimited`] saying when to
//! come back.

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How a request is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least one is made).
    pub max_attempts: u32,
    /// The longest wait for a rate limit to reset; a longer one gives up with
    /// [`RetryFailure::RateLimited`] instead of outlasting the caller.
    pub longest_wait: Duration,
    /// Whether the server's asked-for wait is used; when not, backoff only.
    pub honour_server_wait: bool,
    /// Whether a request that may have reached the server (it timed out, or answered 5xx) is
    /// sent again. Off for requests whose repetition has effects (retrying a job twice);
    /// refused connections and rate-limit answers are always retried, as nothing was done.
    pub resend_after_possible_delivery: bool,
}

impl RetryPolicy {
    /// For reads and for writes that are safe to repeat (PUT, PATCH, signed deliveries).
    pub fn idempotent(max_attempts: u32) -> Self {
        RetryPolicy {
            max_attempts,
            longest_wait: DEFAULT_LONGEST_WAIT,
            honour_server_wait: true,
            resend_after_possible_delivery: true,
        }
    }

    /// For writes that must not happen twice (create a comment, retry a job).
    pub fn not_repeatable(max_attempts: u32) -> Self {
        RetryPolicy {
            resend_after_possible_delivery: false,
            ..RetryPolicy::idempotent(max_attempts)
        }
    }
}

/// The longest rate-limit wait by default: longer ones are reported to the caller (an SQS
/// message comes back later rather than holding a Lambda).
pub const DEFAULT_LONGEST_WAIT: Duration = Duration::from_secs(10);

/// Why no usable answer came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryFailure<E> {
    /// Building the request failed (signing, say).
    Build(E),
    /// The rate limit is exhausted for this many more seconds (at least 1).
    RateLimited(u64),
    /// No answer, or only 5xx, after the attempts allowed; says what happened.
    Unavailable(String),
}

/// Sends the request `build` makes (afresh for each attempt, so a signature stays current)
/// until the server answers with something other than a retryable failure, and returns that
/// answer, whatever its status: the caller decides what 4xx mean.
pub async fn send_with_retries<F, Fut, E>(
    policy: &RetryPolicy,
    mut build: F,
) -> Result<reqwest::Response, RetryFailure<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<reqwest::RequestBuilder, E>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        let last = attempt >= policy.max_attempts;
        let response = match build().await.map_err(RetryFailure::Build)?.send().await {
            Ok(response) => response,
            Err(error) if error.is_connect() || error.is_timeout() => {
                let repeatable = error.is_connect() || policy.resend_after_possible_delivery;
                if last || !repeatable {
                    return Err(RetryFailure::Unavailable(format!(
                        "{} after {attempt} attempts",
                        if error.is_timeout() {
                            "timed out"
                        } else {
                            "no connection"
                        }
                    )));
                }
                tokio::time::sleep(backoff(attempt)).await;
                continue;
            }
            Err(error) => return Err(RetryFailure::Unavailable(crate::without_url(error))),
        };
        let status = response.status();
        let limited = is_rate_limited(status, response.headers());
        if !limited && !status.is_server_error() {
            return Ok(response);
        }
        if !limited && !policy.resend_after_possible_delivery {
            return Err(RetryFailure::Unavailable(format!(
                "HTTP {} (not sent again: the request may have taken effect)",
                status.as_u16()
            )));
        }
        let wait = policy
            .honour_server_wait
            .then(|| server_wait(response.headers(), SystemTime::now()))
            .flatten();
        if let Some(wait) = wait.filter(|wait| *wait > policy.longest_wait) {
            return Err(RetryFailure::RateLimited(wait.as_secs().max(1)));
        }
        if last {
            return Err(match wait {
                Some(wait) if limited => RetryFailure::RateLimited(wait.as_secs().max(1)),
                _ => RetryFailure::Unavailable(format!(
                    "HTTP {} after {attempt} attempts",
                    status.as_u16()
                )),
            });
        }
        tokio::time::sleep(wait.unwrap_or_else(|| backoff(attempt))).await;
    }
}

/// A 429, or a 403 that is a rate limit (GitHub's primary limit says
/// `x-ratelimit-remaining: 0`; its secondary limit sends `Retry-After`).
pub fn is_rate_limited(status: StatusCode, headers: &HeaderMap) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::FORBIDDEN
            && (number(headers, "x-ratelimit-remaining") == Some(0)
                || headers.contains_key(RETRY_AFTER)))
}

/// How long the server asks us to wait: `Retry-After` (seconds or an HTTP date), else the
/// reset time of GitLab's `RateLimit-Reset` or GitHub's `x-ratelimit-reset` (Unix seconds)
/// when the remaining budget is zero.
pub fn server_wait(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let now_secs = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    if let Some(raw) = headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()) {
        let raw = raw.trim();
        if let Ok(seconds) = raw.parse::<u64>() {
            return Some(Duration::from_secs(seconds));
        }
        if let Ok(at) = chrono::DateTime::parse_from_rfc2822(raw) {
            let at = u64::try_from(at.timestamp()).unwrap_or(0);
            return Some(Duration::from_secs(at.saturating_sub(now_secs)));
        }
    }
    let remaining =
        number(headers, "ratelimit-remaining").or_else(|| number(headers, "x-ratelimit-remaining"));
    if remaining != Some(0) {
        return None;
    }
    let reset =
        number(headers, "ratelimit-reset").or_else(|| number(headers, "x-ratelimit-reset"))?;
    Some(Duration::from_secs(reset.saturating_sub(now_secs).max(1)))
}

fn number(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// Exponential backoff with jitter: 100 ms, 200 ms, 400 ms… (at most 5 s) plus up to 25%.
pub fn backoff(attempt: u32) -> Duration {
    let base = 100u64 << attempt.clamp(1, 7).saturating_sub(1);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::from(d.subsec_nanos()))
        .unwrap_or(0);
    let base = base.min(5_000);
    Duration::from_millis(base + nanos % (base / 4 + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn at(unix: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(unix)
    }

    #[test]
    fn retry_after_in_seconds_or_as_an_http_date() {
        let now = at(1_445_412_470); // Wed, 21 Oct 2015 07:27:50 GMT
        assert_eq!(
            server_wait(&headers(&[("retry-after", "7")]), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            server_wait(
                &headers(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")]),
                now
            ),
            Some(Duration::from_secs(10))
        );
        // A date already past asks for no wait at all.
        assert_eq!(
            server_wait(
                &headers(&[("retry-after", "Wed, 21 Oct 2015 07:00:00 GMT")]),
                now
            ),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn reset_headers_count_only_once_the_budget_is_spent() {
        let now = at(1_000);
        let gitlab = headers(&[("ratelimit-remaining", "0"), ("ratelimit-reset", "1030")]);
        assert_eq!(server_wait(&gitlab, now), Some(Duration::from_secs(30)));
        let github = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1005"),
        ]);
        assert_eq!(server_wait(&github, now), Some(Duration::from_secs(5)));
        let left = headers(&[
            ("x-ratelimit-remaining", "12"),
            ("x-ratelimit-reset", "1005"),
        ]);
        assert_eq!(server_wait(&left, now), None);
        // A reset in the past still waits a second rather than hammering.
        let stale = headers(&[("ratelimit-remaining", "0"), ("ratelimit-reset", "900")]);
        assert_eq!(server_wait(&stale, now), Some(Duration::from_secs(1)));
    }

    #[test]
    fn a_403_is_a_rate_limit_only_when_the_headers_say_so() {
        assert!(is_rate_limited(
            StatusCode::TOO_MANY_REQUESTS,
            &HeaderMap::new()
        ));
        assert!(is_rate_limited(
            StatusCode::FORBIDDEN,
            &headers(&[("x-ratelimit-remaining", "0")])
        ));
        assert!(is_rate_limited(
            StatusCode::FORBIDDEN,
            &headers(&[("retry-after", "60")])
        ));
        assert!(!is_rate_limited(StatusCode::FORBIDDEN, &HeaderMap::new()));
        assert!(!is_rate_limited(
            StatusCode::FORBIDDEN,
            &headers(&[("x-ratelimit-remaining", "4999")])
        ));
    }

    #[test]
    fn backoff_doubles_with_at_most_a_quarter_of_jitter_and_is_capped() {
        for attempt in 1..=10 {
            let base = (100u64 << (attempt.min(7) - 1)).min(5_000);
            let wait = backoff(attempt).as_millis() as u64;
            assert!(wait >= base && wait <= base + base / 4, "{attempt}: {wait}");
        }
    }
}
