//! A build record (the Leliel ingest contract) and how a submitted one is validated.

use crate::counters::{Contribution, CounterFamily};
use crate::fields::{FieldError, Fields, type_name};
use crate::record::{Decision, Record, decide_by_status};
use crate::repo::RepoPath;
use crate::status::BuildStatus;
use crate::time::{parse_timestamp, sortable};
use chrono::{DateTime, Utc};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

pub const MAX_BUILD_ID_LEN: usize = 128;
pub const MAX_BRANCH_LEN: usize = 255;
pub const MAX_COMMIT_LEN: usize = 128;
pub const MAX_LABEL_LEN: usize = 64;
pub const MAX_EXTRA_DATA_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct Build {
    pub repo: RepoPath,
    pub build_id: String,
    pub branch: String,
    pub status: BuildStatus,
    pub commit: Option<String>,
    pub priority: Option<String>,
    pub build_type: Option<String>,
    pub change_id: Option<String>,
    pub duration_ms: Option<u64>,
    /// When the build happened, as reported, or when it was first received.
    pub timestamp: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub extra_data: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidBuild {
    #[error("a build must be a JSON object, got {0}")]
    NotAnObject(&'static str),
    #[error("{0}")]
    Field(#[from] FieldError),
}

/// The fields a client may send, in the order they are documented.
pub const SUBMISSION_FIELDS: &[&str] = &[
    "build_id",
    "repo",
    "branch",
    "status",
    "commit",
    "priority",
    "build_type",
    "change_id",
    "duration_ms",
    "timestamp",
    "extra_data",
];

pub struct BuildSubmission;

impl BuildSubmission {
    /// Validates one submitted build. `now` is the time of receipt.
    pub fn parse(value: &Value, now: DateTime<Utc>) -> Result<Build, InvalidBuild> {
        let Value::Object(object) = value else {
            return Err(InvalidBuild::NotAnObject(type_name(value)));
        };
        let fields = Fields::new(object);
        let build_id = fields.required_identifier("build_id", MAX_BUILD_ID_LEN)?;
        let repo_raw = fields.required_string("repo", crate::repo::MAX_REPO_LEN + 1)?;
        let repo =
            RepoPath::parse(&repo_raw).map_err(|e| FieldError::new("repo", e.to_string()))?;
        let branch = fields
            .optional_string("branch", MAX_BRANCH_LEN)?
            .ok_or_else(|| {
                FieldError::new(
                    "branch",
                    "is required and may not be empty (GitLab leaves CI_COMMIT_BRANCH empty in merge-request and tag pipelines: send $CI_COMMIT_REF_NAME; GitHub Actions: $GITHUB_REF_NAME)",
                )
            })?;
        let status_raw = fields.required_string("status", MAX_LABEL_LEN)?;
        let status = BuildStatus::parse(&status_raw)
            .map_err(|e| FieldError::new("status", e.to_string()))?;
        let commit = fields.optional_string("commit", MAX_COMMIT_LEN)?;
        let priority = fields.optional_identifier("priority", MAX_LABEL_LEN)?;
        let build_type = fields.optional_string("build_type", MAX_LABEL_LEN)?;
        let change_id = fields.optional_identifier("change_id", MAX_BUILD_ID_LEN)?;
        let duration_ms = fields.optional_non_negative("duration_ms", "milliseconds")?;
        let timestamp = match fields.optional_string("timestamp", 64)? {
            Some(raw) => parse_timestamp(&raw, now)
                .map_err(|e| FieldError::new("timestamp", e.to_string()))?,
            None => now,
        };
        let extra_data = fields.optional_object("extra_data")?.cloned();
        if let Some(extra) = &extra_data {
            let size = serde_json::to_vec(extra)
                .map(|bytes| bytes.len())
                .unwrap_or(usize::MAX);
            if size > MAX_EXTRA_DATA_BYTES {
                return Err(FieldError::new(
                    "extra_data",
                    format!(
                        "is {size} bytes as JSON; the limit is {MAX_EXTRA_DATA_BYTES} bytes (64 KB)"
                    ),
                )
                .into());
            }
        }
        Ok(Build {
            repo,
            build_id,
            branch,
            status,
            commit,
            priority,
            build_type,
            change_id,
            duration_ms,
            timestamp,
            received_at: now,
            updated_at: now,
            extra_data,
        })
    }
}

impl Build {
    /// The advanced build keeps its identity and time of first sighting; fields the new
    /// report leaves out keep their stored values.
    fn merged_onto(&self, stored: &Build) -> Build {
        Build {
            repo: stored.repo.clone(),
            build_id: stored.build_id.clone(),
            branch: self.branch.clone(),
            status: self.status,
            commit: self.commit.clone().or_else(|| stored.commit.clone()),
            priority: self.priority.clone().or_else(|| stored.priority.clone()),
            build_type: self
                .build_type
                .clone()
                .or_else(|| stored.build_type.clone()),
            change_id: self.change_id.clone().or_else(|| stored.change_id.clone()),
            duration_ms: self.duration_ms.or(stored.duration_ms),
            timestamp: stored.timestamp,
            received_at: stored.received_at,
            updated_at: self.received_at,
            extra_data: self
                .extra_data
                .clone()
                .or_else(|| stored.extra_data.clone()),
        }
    }
}

impl Record for Build {
    const KIND: &'static str = "build";

    fn repo(&self) -> &RepoPath {
        &self.repo
    }

    fn id(&self) -> String {
        self.build_id.clone()
    }

    fn status(&self) -> BuildStatus {
        self.status
    }

    fn first_seen(&self) -> DateTime<Utc> {
        self.timestamp
    }

    fn contribution(&self) -> Contribution {
        Contribution {
            family: CounterFamily::Runs,
            status: self.status,
            duration_ms: self.duration_ms,
        }
    }

    fn decide(&self, stored: &Self) -> Decision<Self> {
        decide_by_status(stored, self, || self.merged_onto(stored))
    }

    fn recent_run(&self) -> Option<crate::summary::RecentRun> {
        Some(crate::summary::RecentRun::of_build(self))
    }
}

impl Serialize for Build {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("build_id", &self.build_id)?;
        map.serialize_entry("repo", self.repo.as_str())?;
        map.serialize_entry("branch", &self.branch)?;
        map.serialize_entry("status", self.status.as_str())?;
        map.serialize_entry("commit", &self.commit)?;
        map.serialize_entry("priority", &self.priority)?;
        map.serialize_entry("build_type", &self.build_type)?;
        map.serialize_entry("change_id", &self.change_id)?;
        map.serialize_entry("duration_ms", &self.duration_ms)?;
        map.serialize_entry("timestamp", &sortable(self.timestamp))?;
        map.serialize_entry("received_at", &sortable(self.received_at))?;
        map.serialize_entry("updated_at", &sortable(self.updated_at))?;
        map.serialize_entry("extra_data", &self.extra_data)?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RefuseReason;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn minimal() -> Value {
        json!({"build_id": "b1", "repo": "group/sub/app", "branch": "main", "status": "failed"})
    }

    #[test]
    fn minimal_build_defaults_timestamp_to_receipt() {
        let build = BuildSubmission::parse(&minimal(), now()).unwrap();
        assert_eq!(build.status, BuildStatus::Failure);
        assert_eq!(build.repo.as_str(), "group/sub/app");
        assert_eq!(build.timestamp, now());
        assert_eq!(build.extra_data, None);
    }

    #[test]
    fn full_build_keeps_every_field() {
        let value = json!({
            "build_id": 77, "repo": "octo/app", "branch": "feature/x", "status": "SUCCESS",
            "commit": "abc123", "priority": 2, "build_type": "nightly", "change_id": "I42",
            "duration_ms": 1500, "timestamp": "2026-11-22T10:00:00+01:00",
            "extra_data": {"runner": "r1", "nested": [1, 2]}
        });
        let build = BuildSubmission::parse(&value, now()).unwrap();
        assert_eq!(build.build_id, "77");
        assert_eq!(build.priority.as_deref(), Some("2"));
        assert_eq!(build.duration_ms, Some(1500));
        assert_eq!(sortable(build.timestamp), "2026-11-22T09:00:00.000Z");
        let shown = serde_json::to_value(&build).unwrap();
        assert_eq!(shown["extra_data"]["nested"], json!([1, 2]));
        assert_eq!(shown["status"], "SUCCESS");
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (json!([1]), "JSON object"),
            (
                json!({"repo": "a/b", "branch": "m", "status": "success"}),
                "`build_id` is required",
            ),
            (
                json!({"build_id": "1", "repo": "a b", "branch": "m", "status": "success"}),
                "`repo`",
            ),
            (
                json!({"build_id": "1", "repo": "a/b", "branch": "m", "status": "boom"}),
                "`status`",
            ),
            (
                json!({"build_id": "1", "repo": "a/b", "branch": "m", "status": "ok", "duration_ms": -5}),
                "negative",
            ),
            (
                json!({"build_id": "1", "repo": "a/b", "branch": "m", "status": "ok", "timestamp": "now"}),
                "RFC 3339",
            ),
            (
                json!({"build_id": "1", "repo": "a/b", "branch": "m", "status": "ok", "extra_data": "x"}),
                "JSON object",
            ),
            (
                json!({"build_id": "1", "repo": "a/b", "branch": 5, "status": "ok"}),
                "`branch` must be a string",
            ),
        ];
        for (value, expected) in cases {
            let message = BuildSubmission::parse(&value, now())
                .unwrap_err()
                .to_string();
            assert!(
                message.contains(expected),
                "{message} should contain {expected}"
            );
        }
    }

    fn report(status: &str, minutes_later: i64) -> Build {
        let at = now() + chrono::Duration::minutes(minutes_later);
        BuildSubmission::parse(
            &json!({"build_id": "7", "repo": "a/b", "branch": "main", "status": status}),
            at,
        )
        .unwrap()
    }

    #[test]
    fn repeats_change_nothing() {
        assert_eq!(
            report("running", 5).decide(&report("running", 0)),
            Decision::Unchanged
        );
        assert_eq!(
            report("FAILURE", 5).decide(&report("failed", 0)),
            Decision::Unchanged
        );
    }

    #[test]
    fn later_states_advance_and_keep_first_sighting() {
        let stored = report("pending", 0);
        let Decision::Advance(advanced) = report("running", 3).decide(&stored) else {
            panic!("pending → running must advance");
        };
        assert_eq!(advanced.status, BuildStatus::Running);
        assert_eq!(advanced.timestamp, stored.timestamp);
        assert_eq!(
            advanced.updated_at,
            stored.updated_at + chrono::Duration::minutes(3)
        );
        assert!(matches!(
            report("success", 9).decide(&advanced),
            Decision::Advance(_)
        ));
    }

    #[test]
    fn earlier_states_and_second_endings_are_refused() {
        let refused = |stored: &str, incoming: &str| report(incoming, 1).decide(&report(stored, 0));
        assert_eq!(
            refused("success", "running"),
            Decision::Refuse(RefuseReason::Regression)
        );
        assert_eq!(
            refused("running", "pending"),
            Decision::Refuse(RefuseReason::Regression)
        );
        assert_eq!(
            refused("success", "failed"),
            Decision::Refuse(RefuseReason::AlreadyFinished)
        );
    }

    #[test]
    fn extra_data_is_capped_at_64_kb() {
        let mut value = minimal();
        value["extra_data"] = json!({"blob": "x".repeat(MAX_EXTRA_DATA_BYTES)});
        let message = BuildSubmission::parse(&value, now())
            .unwrap_err()
            .to_string();
        assert!(message.contains("64 KB"), "{message}");
        value["extra_data"] = json!({"blob": "x".repeat(MAX_EXTRA_DATA_BYTES - 100)});
        assert!(BuildSubmission::parse(&value, now()).is_ok());
    }
}
