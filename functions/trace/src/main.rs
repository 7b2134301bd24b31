//! The trace Lambda function: serves its routes from buildlore-api behind API Gateway.

#[tokio::main]
async fn main() -> Result<(), buildlore_api::lambda::BoxError> {
    buildlore_api::lambda::serve(buildlore_api::routes::table::TRACE).await
}
