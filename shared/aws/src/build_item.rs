//! A build as a DynamoDB item, and back.

use crate::record_store::ItemCodec;
use aws_sdk_dynamodb::types::AttributeValue;
use buildlore_core::keys;
use buildlore_core::ports::StoreError;
use buildlore_core::table::{BY_BRANCH_TIME, BY_REPO_TIME, PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE};
use buildlore_core::{Build, BuildStatus, RepoPath};
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;

pub type Item = HashMap<String, AttributeValue>;

pub const ENTITY_BUILD: &str = "build";

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

impl ItemCodec for Build {
    fn key(&self) -> Item {
        build_key(&self.repo, &self.build_id)
    }

    fn to_item(&self, retention: Option<Duration>) -> Item {
        build_to_item(self, retention)
    }

    fn from_item(item: &Item) -> Result<Self, StoreError> {
        item_to_build(item)
    }
}

pub fn build_key(repo: &RepoPath, build_id: &str) -> Item {
    HashMap::from([
        (PARTITION_KEY.to_string(), s(keys::repo_partition(repo))),
        (SORT_KEY.to_string(), s(keys::build_sort_key(build_id))),
    ])
}

fn build_to_item(build: &Build, retention: Option<Duration>) -> Item {
    let mut item = build_key(&build.repo, &build.build_id);
    let time_key = keys::builds_time_key(build.timestamp, &build.build_id);
    item.insert(
        BY_REPO_TIME.key.partition.into(),
        s(keys::builds_by_repo(&build.repo)),
    );
    item.insert(BY_REPO_TIME.key.sort.into(), s(time_key.clone()));
    item.insert(
        BY_BRANCH_TIME.key.partition.into(),
        s(keys::builds_by_branch(&build.repo, &build.branch)),
    );
    item.insert(BY_BRANCH_TIME.key.sort.into(), s(time_key));
    item.insert("entity".into(), s(ENTITY_BUILD));
    item.insert("repo".into(), s(build.repo.as_str()));
    item.insert("build_id".into(), s(&build.build_id));
    item.insert("branch".into(), s(&build.branch));
    item.insert("status".into(), s(build.status.as_str()));
    let optional = [
        ("commit", &build.commit),
        ("priority", &build.priority),
        ("build_type", &build.build_type),
        ("change_id", &build.change_id),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            item.insert(name.into(), s(value));
        }
    }
    if let Some(duration) = build.duration_ms {
        item.insert(
            "duration_ms".into(),
            AttributeValue::N(duration.to_string()),
        );
    }
    item.insert("timestamp".into(), s(build.timestamp.to_rfc3339()));
    item.insert("received_at".into(), s(build.received_at.to_rfc3339()));
    item.insert("updated_at".into(), s(build.updated_at.to_rfc3339()));
    if let Some(extra) = &build.extra_data {
        item.insert(
            "extra_data".into(),
            s(serde_json::to_string(extra).unwrap_or_default()),
        );
    }
    if let Some(retention) = retention {
        let expires = (build.timestamp + retention).timestamp();
        item.insert(TTL_ATTRIBUTE.into(), AttributeValue::N(expires.to_string()));
    }
    item
}

pub(crate) fn text<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Ok(value),
        _ => Err(StoreError::Corrupt(format!(
            "build item lacks string `{name}`"
        ))),
    }
}

fn optional_text(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Some(value.clone()),
        _ => None,
    }
}

fn time(item: &Item, name: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text(item, name)?)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| StoreError::Corrupt(format!("build item has a bad `{name}`")))
}

fn item_to_build(item: &Item) -> Result<Build, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("build item has a bad `{what}`"));
    let repo = RepoPath::parse(text(item, "repo")?).map_err(|_| corrupt("repo"))?;
    let status = BuildStatus::parse(text(item, "status")?).map_err(|_| corrupt("status"))?;
    let duration_ms = match item.get("duration_ms") {
        Some(AttributeValue::N(number)) => {
            Some(number.parse().map_err(|_| corrupt("duration_ms"))?)
        }
        _ => None,
    };
    let extra_data = match optional_text(item, "extra_data") {
        Some(json) => Some(serde_json::from_str(&json).map_err(|_| corrupt("extra_data"))?),
        None => None,
    };
    Ok(Build {
        repo,
        build_id: text(item, "build_id")?.to_string(),
        branch: text(item, "branch")?.to_string(),
        status,
        commit: optional_text(item, "commit"),
        priority: optional_text(item, "priority"),
        build_type: optional_text(item, "build_type"),
        change_id: optional_text(item, "change_id"),
        duration_ms,
        timestamp: time(item, "timestamp")?,
        received_at: time(item, "received_at")?,
        updated_at: time(item, "updated_at")?,
        extra_data,
    })
}
