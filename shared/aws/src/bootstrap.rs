//! Creating the table and queues from the one table description, idempotently. Used by
//! `buildlore bootstrap`, the local stack and the tests.

use crate::errors::cause_chain;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use buildlore_core::table::{self, TableSpec};
use std::collections::HashMap;

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("could not create table {table}: {detail}")]
    Table { table: String, detail: String },
    #[error("could not create queue {queue}: {detail}")]
    Queue { queue: String, detail: String },
}

fn key_schema(partition: &str, sort: &str) -> Vec<KeySchemaElement> {
    [(partition, KeyType::Hash), (sort, KeyType::Range)]
        .into_iter()
        .filter_map(|(name, kind)| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .ok()
        })
        .collect()
}

/// Creates the table described by `spec` unless it exists, and turns on TTL.
pub async fn ensure_table(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
    spec: &TableSpec,
) -> Result<(), BootstrapError> {
    let fail = |detail: String| BootstrapError::Table {
        table: name.to_string(),
        detail,
    };
    let attributes = spec
        .key_attributes()
        .into_iter()
        .map(|(attribute, table::KeyType::String)| {
            AttributeDefinition::builder()
                .attribute_name(attribute)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| fail(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let indexes = spec
        .indexes
        .iter()
        .map(|index| {
            GlobalSecondaryIndex::builder()
                .index_name(index.name)
                .set_key_schema(Some(key_schema(index.key.partition, index.key.sort)))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .map_err(|e| fail(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let created = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(attributes))
        .set_key_schema(Some(key_schema(spec.key.partition, spec.key.sort)))
        .set_global_secondary_indexes(Some(indexes))
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) => {}
        Err(error) => return Err(fail(cause_chain(&error))),
    }
    let ttl = TimeToLiveSpecification::builder()
        .attribute_name(spec.ttl_attribute)
        .enabled(true)
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let ttl_result = client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(ttl)
        .send()
        .await;
    if let Err(error) = ttl_result {
        let already = format!("{error:?}").contains("already enabled");
        if !already {
            return Err(fail(cause_chain(&error)));
        }
    }
    Ok(())
}

/// The analysis queue and its dead-letter queue, with the same settings as template.yaml.
#[derive(Debug, Clone)]
pub struct QueueUrls {
    pub analysis: String,
    pub dead_letter: String,
}

/// Receives before a message moves to the dead-letter queue (template.yaml agrees).
pub const MAX_RECEIVE_COUNT: u32 = 5;
/// Visibility timeout of the analysis queue, seconds: 6 × the worker's timeout.
pub const VISIBILITY_TIMEOUT_SECONDS: u32 = 900;

pub async fn ensure_queues(
    client: &aws_sdk_sqs::Client,
    analysis_queue: &str,
) -> Result<QueueUrls, BootstrapError> {
    let dead_letter_name = format!("{analysis_queue}-dlq");
    let fail = |queue: &str, detail: String| BootstrapError::Queue {
        queue: queue.to_string(),
        detail,
    };
    let dead_letter = client
        .create_queue()
        .queue_name(&dead_letter_name)
        .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
        .send()
        .await
        .map_err(|e| fail(&dead_letter_name, cause_chain(&e)))?
        .queue_url
        .unwrap_or_default();
    let dead_letter_arn = client
        .get_queue_attributes()
        .queue_url(&dead_letter)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| fail(&dead_letter_name, cause_chain(&e)))?
        .attributes
        .and_then(|attributes| attributes.get(&QueueAttributeName::QueueArn).cloned())
        .unwrap_or_default();
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dead_letter_arn,
        "maxReceiveCount": MAX_RECEIVE_COUNT.to_string(),
    })
    .to_string();
    let attributes = HashMap::from([
        (QueueAttributeName::RedrivePolicy, redrive),
        (
            QueueAttributeName::VisibilityTimeout,
            VISIBILITY_TIMEOUT_SECONDS.to_string(),
        ),
    ]);
    let analysis = client
        .create_queue()
        .queue_name(analysis_queue)
        .set_attributes(Some(attributes))
        .send()
        .await
        .map_err(|e| fail(analysis_queue, cause_chain(&e)))?
        .queue_url
        .unwrap_or_default();
    Ok(QueueUrls {
        analysis,
        dead_letter,
    })
}
