//! The events Lambda function: live pipeline summaries as Server-Sent Events, served through
//! a Function URL in response-streaming mode.

#[tokio::main]
async fn main() -> Result<(), buildlore_api::lambda::BoxError> {
    buildlore_api::lambda::serve_streaming(buildlore_api::routes::table::EVENTS).await
}
