//! Pipelines and jobs as DynamoDB items: keys and index attributes for the access patterns,
//! the record itself as JSON.

use crate::build_item::{Item, text};
use crate::record_store::ItemCodec;
use aws_sdk_dynamodb::types::AttributeValue;
use buildlore_core::keys;
use buildlore_core::ports::StoreError;
use buildlore_core::runs::{Job, Pipeline};
use buildlore_core::table::{BY_BRANCH_TIME, BY_REPO_TIME, PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE};
use buildlore_core::time::sortable;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;

const DATA: &str = "data";

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn key(partition: String, sort: String) -> Item {
    HashMap::from([
        (PARTITION_KEY.to_string(), s(partition)),
        (SORT_KEY.to_string(), s(sort)),
    ])
}

fn with_data<R: Serialize>(
    mut item: Item,
    entity: &str,
    record: &R,
    status: &str,
    happened: DateTime<Utc>,
    retention: Option<Duration>,
) -> Item {
    item.insert("entity".into(), s(entity));
    item.insert("status".into(), s(status));
    item.insert(
        DATA.into(),
        s(serde_json::to_string(record).unwrap_or_default()),
    );
    if let Some(retention) = retention {
        let expires = (happened + retention).timestamp();
        item.insert(TTL_ATTRIBUTE.into(), AttributeValue::N(expires.to_string()));
    }
    item
}

/// The by-time index entry of a repo's pipelines or jobs: newest first when read backwards.
fn index_by_time(
    item: &mut Item,
    partition: String,
    first_seen: DateTime<Utc>,
    provider: &str,
    id: &str,
) {
    item.insert(BY_REPO_TIME.key.partition.into(), s(partition));
    item.insert(
        BY_REPO_TIME.key.sort.into(),
        s(format!("{}#{provider}#{id}", sortable(first_seen))),
    );
}

fn from_data<R: DeserializeOwned>(item: &Item, entity: &str) -> Result<R, StoreError> {
    serde_json::from_str(text(item, DATA)?)
        .map_err(|e| StoreError::Corrupt(format!("{entity} item data: {e}")))
}

impl ItemCodec for Pipeline {
    fn key(&self) -> Item {
        key(keys::repo_partition(&self.repo), self.sort_key())
    }

    fn to_item(&self, retention: Option<Duration>) -> Item {
        let mut item = ItemCodec::key(self);
        index_by_time(
            &mut item,
            keys::pipelines_by_repo(&self.repo),
            self.first_seen,
            &self.provider,
            &self.pipeline_id,
        );
        with_data(
            item,
            "pipeline",
            self,
            self.status.as_str(),
            self.first_seen,
            retention,
        )
    }

    fn from_item(item: &Item) -> Result<Self, StoreError> {
        from_data(item, "pipeline")
    }
}

impl ItemCodec for Job {
    fn key(&self) -> Item {
        key(
            keys::repo_partition(&self.repo),
            keys::job_sort_key(&self.provider, &self.job_id),
        )
    }

    fn to_item(&self, retention: Option<Duration>) -> Item {
        let mut item = ItemCodec::key(self);
        index_by_time(
            &mut item,
            keys::jobs_by_repo(&self.repo),
            self.first_seen,
            &self.provider,
            &self.job_id,
        );
        if let Some(pipeline_id) = &self.pipeline_id {
            item.insert(
                BY_BRANCH_TIME.key.partition.into(),
                s(keys::jobs_of_pipeline(
                    &self.provider,
                    &self.repo,
                    pipeline_id,
                )),
            );
            item.insert(
                BY_BRANCH_TIME.key.sort.into(),
                s(format!("{}#{}", sortable(self.first_seen), self.job_id)),
            );
        }
        with_data(
            item,
            "job",
            self,
            self.status.as_str(),
            self.first_seen,
            retention,
        )
    }

    fn from_item(item: &Item) -> Result<Self, StoreError> {
        from_data(item, "job")
    }
}
