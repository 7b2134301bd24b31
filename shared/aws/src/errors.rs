//! Translating SDK errors into the core's `StoreError` at the boundary.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use buildlore_core::ports::StoreError;
use std::error::Error as StdError;

/// Error codes that mean "try again later".
const RETRYABLE_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionInProgressException",
];

/// The full cause chain of an error, for logs.
pub fn cause_chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

pub fn store_error<E, R>(error: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + StdError + 'static,
    R: std::fmt::Debug + 'static,
{
    let retryable = match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => service
            .err()
            .code()
            .is_some_and(|code| RETRYABLE_CODES.contains(&code)),
        _ => false,
    };
    let detail = match error.code() {
        Some(code) => format!("{code}: {}", cause_chain(&error)),
        None => cause_chain(&error),
    };
    if retryable {
        StoreError::Unavailable(detail)
    } else {
        StoreError::Failed(detail)
    }
}

/// A conditional write's outcome: `Ok(true)` when it was written, `Ok(false)` when its
/// condition did not hold (`ConditionalCheckFailed`), any other failure translated.
pub fn written<O, E, R>(result: Result<O, SdkError<E, R>>) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + StdError + 'static,
    R: std::fmt::Debug + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(error)
            if error.as_service_error().and_then(|e| e.code())
                == Some("ConditionalCheckFailedException") =>
        {
            Ok(false)
        }
        Err(error) => Err(store_error(error)),
    }
}
