//! The worker's batch contract: unreadable messages are dropped (retrying cannot help);
//! messages it cannot process yet are reported back so SQS keeps them.

use aws_lambda_events::event::sqs::SqsMessage;
use buildlore_api::worker::handle_batch;
use buildlore_tests::TestStack;

fn message(id: &str, body: &str) -> SqsMessage {
    let mut message = SqsMessage::default();
    message.message_id = Some(id.to_string());
    message.body = Some(body.to_string());
    message
}

#[tokio::test]
async fn reports_only_retryable_messages_as_failures() {
    let stack = TestStack::new().await;
    let response = handle_batch(
        &stack.state,
        vec![
            message("garbage", "not json"),
            message("no-version", "{\"job\": 1}"),
            message("future", "{\"version\": 99}"),
            // A follow-up question reaching a worker without an LLM cannot be answered later.
            message(
                "question",
                r#"{"version": 2, "provider": "gitlab", "repo": "team/app", "job_id": "7",
                    "pipeline_id": null, "job_name": null, "requested_at": "2026-11-22T07:00:00Z",
                    "origin": "followup", "question": "why?"}"#,
            ),
        ],
    )
    .await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["future"]);
}
