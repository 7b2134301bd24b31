//! Notifications delivered to a fake receiver that checks our signature.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed expectation is the test failing"
)]

mod support;

use buildlore_core::notifications::{
    DELIVERY_HEADER, EVENT_HEADER, Notification, NotificationEvent, NotificationSender,
    NotificationTarget, NotifyError, SIGNATURE_HEADER, TIMESTAMP_HEADER, TargetFormat, verify,
};
use buildlore_core::repo::RepoPath;
use buildlore_providers::notify::{NotifierConfig, WebhookNotifier};
use serde_json::json;
use std::time::Duration;
use support::*;

const SECRET: &[u8] = b"receiver-shared-secret";

fn notifier(allow_loopback_http: bool) -> WebhookNotifier {
    WebhookNotifier::new(NotifierConfig {
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(5),
        max_attempts: 4,
        allow_loopback_http,
    })
    .unwrap()
}

fn green() -> Notification {
    Notification::new(
        NotificationEvent::BranchTurnedGreen {
            repo: RepoPath::parse("group/app").unwrap(),
            branch: "main".into(),
            pipeline_id: "32".into(),
            url: None,
        },
        "2026-11-30T12:00:00Z".parse().unwrap(),
    )
}

#[tokio::test]
async fn a_signed_notification_is_retried_on_5xx_and_verifies_at_the_receiver() {
    let receiver = fake(|_, nth| if nth < 2 { empty(503) } else { empty(204) }).await;
    let target = NotificationTarget {
        url: format!("{}/hooks/buildlore", receiver.base),
        format: TargetFormat::Json,
        secret: Some(SECRET.to_vec()),
    };
    let notification = green();
    notifier(true).send(&target, &notification).await.unwrap();
    let seen = receiver.seen();
    assert_eq!(seen.len(), 3);
    for request in &seen {
        assert_eq!(request.method, "POST");
        assert_eq!(request.header(EVENT_HEADER), Some("branch_turned_green"));
        // The same delivery id on every attempt: the receiver can drop duplicates.
        assert_eq!(
            request.header(DELIVERY_HEADER),
            Some(notification.delivery_id.as_str())
        );
        let verified = verify(
            SECRET,
            request.header(TIMESTAMP_HEADER).unwrap(),
            request.header(SIGNATURE_HEADER).unwrap(),
            request.body.as_bytes(),
            chrono::Utc::now(),
        );
        assert_eq!(verified, Ok(()));
        assert!(
            verify(
                b"wrong",
                request.header(TIMESTAMP_HEADER).unwrap(),
                request.header(SIGNATURE_HEADER).unwrap(),
                request.body.as_bytes(),
                chrono::Utc::now()
            )
            .is_err()
        );
        assert_eq!(request.json()["event"], "branch_turned_green");
        assert_eq!(
            request.json()["delivery_id"],
            notification.delivery_id.as_str()
        );
    }
}

#[tokio::test]
async fn a_slack_target_gets_only_text_and_a_refusal_is_not_retried() {
    let receiver = fake(|seen, _| {
        if seen.path == "/services/gone" {
            return empty(404);
        }
        json(200, json!("ok"))
    })
    .await;
    let slack = NotificationTarget {
        url: format!("{}/services/T000/B000/XXX", receiver.base),
        format: TargetFormat::Slack,
        secret: None,
    };
    notifier(true).send(&slack, &green()).await.unwrap();
    let request = &receiver.seen()[0];
    assert_eq!(
        request.json(),
        json!({"text": "group/app: main is green again (pipeline 32)."})
    );
    assert_eq!(request.header(SIGNATURE_HEADER), None);
    let gone = NotificationTarget {
        url: format!("{}/services/gone", receiver.base),
        ..slack
    };
    assert_eq!(
        notifier(true).send(&gone, &green()).await,
        Err(NotifyError::Refused(404))
    );
    assert_eq!(receiver.seen().len(), 2);
}

#[tokio::test]
async fn only_https_targets_are_sent_to_unless_a_test_allows_the_loopback() {
    let receiver = fake(|_, _| empty(200)).await;
    let loopback = NotificationTarget {
        url: format!("{}/hook", receiver.base),
        format: TargetFormat::Json,
        secret: None,
    };
    let refused = notifier(false).send(&loopback, &green()).await.unwrap_err();
    assert!(
        matches!(refused, NotifyError::RefusedTarget(_)),
        "{refused:?}"
    );
    for url in [
        "http://example.com/hook",
        "ftp://example.com/x",
        "https://user:pw@example.com/",
        "not a url",
    ] {
        let target = NotificationTarget {
            url: url.into(),
            ..loopback.clone()
        };
        assert!(
            matches!(
                notifier(true).send(&target, &green()).await,
                Err(NotifyError::RefusedTarget(_))
            ),
            "{url}"
        );
    }
    assert!(receiver.seen().is_empty());
}
