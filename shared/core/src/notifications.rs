//! Outgoing notifications: what happened (a new recurring failure, a default branch turning
//! red or green again, a test turning flaky), the JSON body for any HTTPS endpoint, the
//! Slack-compatible body (`{"text": …}`) for incoming webhooks, and the signature of our
//! requests.
//!
//! A request carries `X-Buildlore-Timestamp` (Unix seconds) and
//! `X-Buildlore-Signature-256: sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">` under the
//! target's secret, so a receiver can check both the body and its age (a replay of an old
//! request fails), and `X-Buildlore-Delivery`, the same on every retry of one notification,
//! so a receiver can drop a duplicate.

use crate::redact::redact;
use crate::repo::RepoPath;
use crate::webhooks::secret::{decode_hex, sign};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::future::Future;

pub const SIGNATURE_HEADER: &str = "X-Buildlore-Signature-256";
pub const TIMESTAMP_HEADER: &str = "X-Buildlore-Timestamp";
pub const DELIVERY_HEADER: &str = "X-Buildlore-Delivery";
pub const EVENT_HEADER: &str = "X-Buildlore-Event";

/// How old a signed request may be when it arrives (receivers' check, and ours in tests).
pub const SIGNATURE_TOLERANCE_SECONDS: i64 = 300;

/// Longest text of a notification (Slack shows about 4,000 characters of a message).
const MAX_TEXT_CHARS: usize = 3_000;

/// Something worth telling a team.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum NotificationEvent {
    /// A failure fingerprint seen for the first time keeps coming back.
    NewRecurringFailure {
        repo: RepoPath,
        fingerprint: String,
        category: String,
        job_name: Option<String>,
        occurrences: u64,
        root_cause: Option<String>,
        /// The latest failing job's page in the dashboard.
        url: Option<String>,
    },
    /// The default branch's latest pipeline failed after a passing one.
    BranchTurnedRed {
        repo: RepoPath,
        branch: String,
        pipeline_id: String,
        failing_jobs: Vec<String>,
        url: Option<String>,
    },
    /// The default branch passes again.
    BranchTurnedGreen {
        repo: RepoPath,
        branch: String,
        pipeline_id: String,
        url: Option<String>,
    },
    /// A test now passes and fails on the same code.
    TestTurnedFlaky {
        repo: RepoPath,
        test: String,
        job_name: Option<String>,
        url: Option<String>,
    },
}

impl NotificationEvent {
    /// The event's name (`branch_turned_red`), as in the JSON body and `X-Buildlore-Event`.
    pub fn name(&self) -> &'static str {
        match self {
            NotificationEvent::NewRecurringFailure { .. } => "new_recurring_failure",
            NotificationEvent::BranchTurnedRed { .. } => "branch_turned_red",
            NotificationEvent::BranchTurnedGreen { .. } => "branch_turned_green",
            NotificationEvent::TestTurnedFlaky { .. } => "test_turned_flaky",
        }
    }

    /// One message for people, redacted and bounded.
    pub fn text(&self) -> String {
        let link = |url: &Option<String>| {
            url.as_deref()
                .map(|url| format!(" {url}"))
                .unwrap_or_default()
        };
        let text = match self {
            NotificationEvent::NewRecurringFailure {
                repo,
                category,
                job_name,
                occurrences,
                root_cause,
                url,
                ..
            } => format!(
                "New recurring {category} failure in {repo}{}: seen {occurrences} times.{}{}",
                job_name
                    .as_deref()
                    .map(|name| format!(" ({name})"))
                    .unwrap_or_default(),
                root_cause
                    .as_deref()
                    .map(|cause| format!(" Root cause: {cause}"))
                    .unwrap_or_default(),
                link(url)
            ),
            NotificationEvent::BranchTurnedRed {
                repo,
                branch,
                pipeline_id,
                failing_jobs,
                url,
            } => format!(
                "{repo}: {branch} is red (pipeline {pipeline_id}){}.{}",
                if failing_jobs.is_empty() {
                    String::new()
                } else {
                    format!(", failing: {}", failing_jobs.join(", "))
                },
                link(url)
            ),
            NotificationEvent::BranchTurnedGreen {
                repo,
                branch,
                pipeline_id,
                url,
            } => format!(
                "{repo}: {branch} is green again (pipeline {pipeline_id}).{}",
                link(url)
            ),
            NotificationEvent::TestTurnedFlaky {
                repo,
                test,
                job_name,
                url,
            } => format!(
                "{repo}: test {test}{} turned flaky (it passes and fails on the same code).{}",
                job_name
                    .as_deref()
                    .map(|name| format!(" in {name}"))
                    .unwrap_or_default(),
                link(url)
            ),
        };
        let (redacted, _) = redact(&text);
        redacted
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_TEXT_CHARS)
            .collect()
    }
}

/// One notification: an event, when it happened, and a delivery id derived from both, the
/// same however often the notification is queued or retried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub delivery_id: String,
    pub occurred_at: DateTime<Utc>,
    pub event: NotificationEvent,
}

impl Notification {
    pub fn new(event: NotificationEvent, occurred_at: DateTime<Utc>) -> Self {
        let mut digest = Sha256::new();
        digest.update(serde_json::to_vec(&event).unwrap_or_default());
        digest.update(occurred_at.timestamp_millis().to_be_bytes());
        let delivery_id = digest
            .finalize()
            .iter()
            .take(16)
            .map(|byte| format!("{byte:02x}"))
            .collect();
        Notification {
            delivery_id,
            occurred_at,
            event,
        }
    }
}

/// What a target expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetFormat {
    /// The event as JSON, with `text` for people.
    Json,
    /// `{"text": …}`, what Slack's (and Mattermost's, Teams' workflow) incoming webhooks take.
    Slack,
}

/// An admin-configured receiver.
#[derive(Clone, PartialEq, Eq)]
pub struct NotificationTarget {
    /// HTTPS only (the sender refuses anything else unless told to allow a test's loopback).
    pub url: String,
    pub format: TargetFormat,
    /// Signs our requests when set; Slack's URLs are secret themselves and need none.
    pub secret: Option<Vec<u8>>,
}

/// Debug output names the target's format only: its URL and secret are secrets.
impl std::fmt::Debug for NotificationTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationTarget")
            .field("format", &self.format)
            .field("signed", &self.secret.is_some())
            .finish_non_exhaustive()
    }
}

/// The request body for a target of this format.
pub fn body(notification: &Notification, format: TargetFormat) -> Vec<u8> {
    let text = notification.event.text();
    let value = match format {
        TargetFormat::Slack => json!({"text": text}),
        TargetFormat::Json => {
            let mut value = serde_json::to_value(&notification.event).unwrap_or(json!({}));
            if let Some(object) = value.as_object_mut() {
                object.insert("delivery_id".into(), json!(notification.delivery_id));
                object.insert("occurred_at".into(), json!(notification.occurred_at));
                object.insert("text".into(), json!(text));
            }
            redact_strings(&mut value);
            value
        }
    };
    serde_json::to_vec(&value).unwrap_or_default()
}

/// Every string in the value redacted, one by one (redacting the serialised text could cut
/// through its quoting).
fn redact_strings(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(text) => *text = redact(text).0,
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_strings),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(redact_strings),
        _ => {}
    }
}

/// `sha256=<hex>` of `"{timestamp}.{body}"` under `secret`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    let mut out = String::from("sha256=");
    for byte in sign(secret, &signed) {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the timestamp or signature header is missing or malformed")]
    Malformed,
    #[error("the request is older than {SIGNATURE_TOLERANCE_SECONDS} s (or from the future)")]
    Stale,
    #[error("the signature does not match the body")]
    Mismatch,
}

/// A receiver's check of one of our requests, in constant time.
pub fn verify(
    secret: &[u8],
    timestamp_header: &str,
    signature_header: &str,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let timestamp: i64 = timestamp_header
        .trim()
        .parse()
        .map_err(|_| SignatureError::Malformed)?;
    if (now.timestamp() - timestamp).abs() > SIGNATURE_TOLERANCE_SECONDS {
        return Err(SignatureError::Stale);
    }
    let presented = signature_header
        .trim()
        .strip_prefix("sha256=")
        .and_then(|hex| decode_hex(hex.as_bytes()))
        .ok_or(SignatureError::Malformed)?;
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    if bool::from(subtle::ConstantTimeEq::ct_eq(
        &sign(secret, &signed)[..],
        &presented[..],
    )) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Why a notification was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    #[error("refused to send to {0}: targets must be HTTPS URLs")]
    RefusedTarget(String),
    /// A 4xx other than 429: sending again would not help (a revoked Slack URL answers 404).
    #[error("the target refused the notification (HTTP {0})")]
    Refused(u16),
    #[error("the target asks to wait another {0} s")]
    RateLimited(u64),
    #[error("the target is unavailable: {0}")]
    Unavailable(String),
}

/// Delivering notifications.
pub trait NotificationSender: Send + Sync {
    fn send(
        &self,
        target: &NotificationTarget,
        notification: &Notification,
    ) -> impl Future<Output = Result<(), NotifyError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-30T12:00:00Z".parse().unwrap()
    }

    fn red() -> NotificationEvent {
        NotificationEvent::BranchTurnedRed {
            repo: RepoPath::parse("group/app").unwrap(),
            branch: "main".into(),
            pipeline_id: "31".into(),
            failing_jobs: vec!["rspec".into(), "lint".into()],
            url: Some("https://buildlore.example.com/pipeline?id=31".into()),
        }
    }

    #[test]
    fn json_and_slack_bodies_carry_the_event() {
        let notification = Notification::new(red(), now());
        let json: serde_json::Value =
            serde_json::from_slice(&body(&notification, TargetFormat::Json)).unwrap();
        assert_eq!(json["event"], "branch_turned_red");
        assert_eq!(json["repo"], "group/app");
        assert_eq!(json["failing_jobs"][1], "lint");
        assert_eq!(json["delivery_id"], notification.delivery_id.as_str());
        let slack: serde_json::Value =
            serde_json::from_slice(&body(&notification, TargetFormat::Slack)).unwrap();
        assert_eq!(slack.as_object().unwrap().len(), 1);
        assert_eq!(
            slack["text"],
            "group/app: main is red (pipeline 31), failing: rspec, lint. https://buildlore.example.com/pipeline?id=31"
        );
    }

    #[test]
    fn the_delivery_id_is_stable_for_one_notification_and_differs_between_two() {
        assert_eq!(
            Notification::new(red(), now()).delivery_id,
            Notification::new(red(), now()).delivery_id
        );
        let green = NotificationEvent::BranchTurnedGreen {
            repo: RepoPath::parse("group/app").unwrap(),
            branch: "main".into(),
            pipeline_id: "32".into(),
            url: None,
        };
        assert_ne!(
            Notification::new(red(), now()).delivery_id,
            Notification::new(green, now()).delivery_id
        );
    }

    #[test]
    fn a_signature_verifies_and_any_change_or_delay_breaks_it() {
        let body = br#"{"event":"branch_turned_red"}"#;
        let at = now().timestamp();
        let header = signature(b"s3cret", at, body);
        assert!(header.starts_with("sha256=") && header.len() == 71);
        assert_eq!(
            verify(b"s3cret", &at.to_string(), &header, body, now()),
            Ok(())
        );
        assert_eq!(
            verify(b"other", &at.to_string(), &header, body, now()),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"s3cret", &at.to_string(), &header, b"{}", now()),
            Err(SignatureError::Mismatch)
        );
        // The timestamp is signed: moving it forward to pass the age check breaks the match.
        let later = now() + chrono::Duration::seconds(3_600);
        assert_eq!(
            verify(b"s3cret", &at.to_string(), &header, body, later),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(b"s3cret", &(at + 3_600).to_string(), &header, body, later),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"s3cret", "soon", &header, body, now()),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn notification_text_is_redacted() {
        let event = NotificationEvent::NewRecurringFailure {
            repo: RepoPath::parse("group/app").unwrap(),
            fingerprint: "f1".into(),
            category: "dependency".into(),
            job_name: Some("deploy".into()),
            occurrences: 3,
            root_cause: Some(
                "npm login with npm_abcdefghijklmnopqrstuvwxyz0123456789 failed".into(),
            ),
            url: None,
        };
        let text = event.text();
        assert!(text.contains("seen 3 times"), "{text}");
        assert!(
            !text.contains("npm_abcdefghijklmnopqrstuvwxyz0123456789"),
            "{text}"
        );
        let json = body(&Notification::new(event, now()), TargetFormat::Json);
        let json = String::from_utf8(json).unwrap();
        assert!(json.contains("[REDACTED"), "{json}");
        assert!(
            !json.contains("npm_abcdefghijklmnopqrstuvwxyz0123456789"),
            "{json}"
        );
    }
}
