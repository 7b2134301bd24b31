//! Recording a build report idempotently: the first report creates the build, a later state
//! advances it, a repeat changes nothing, and an earlier state never overwrites a later one.

use crate::build::Build;
use crate::counters::CounterDelta;
use crate::ports::{BuildStore, StoreError, StoredBuild};
use crate::status::BuildStatus;

/// How often a write is retried when another writer got there first.
const MAX_ATTEMPTS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOutcome {
    Created,
    Advanced { from: BuildStatus },
    Unchanged,
}

impl RecordOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordOutcome::Created => "created",
            RecordOutcome::Advanced { .. } => "updated",
            RecordOutcome::Unchanged => "unchanged",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecordBuildError {
    #[error(
        "build {build_id:?} is already {current}; {incoming} is an earlier state and was not applied"
    )]
    Regression {
        build_id: String,
        current: BuildStatus,
        incoming: BuildStatus,
    },
    #[error(
        "build {build_id:?} already finished as {current}; a finished build cannot become {incoming} (report a new build_id for a re-run)"
    )]
    AlreadyFinished {
        build_id: String,
        current: BuildStatus,
        incoming: BuildStatus,
    },
    #[error("build {0:?} is being updated by many writers at once; retry")]
    Contended(String),
    #[error(transparent)]
    Store(StoreError),
}

/// What to do with a report of a build that is already stored.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Unchanged,
    Advance(Box<Build>),
    Refuse(RefuseReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefuseReason {
    Regression,
    AlreadyFinished,
}

/// Decides how a report applies to the stored build. Pure, so the state machine is tested
/// without storage.
pub fn decide(stored: &Build, incoming: &Build) -> Decision {
    if incoming.status == stored.status {
        return Decision::Unchanged;
    }
    if stored.status.is_terminal() {
        return Decision::Refuse(if incoming.status.is_terminal() {
            RefuseReason::AlreadyFinished
        } else {
            RefuseReason::Regression
        });
    }
    if incoming.status.rank() < stored.status.rank() {
        return Decision::Refuse(RefuseReason::Regression);
    }
    Decision::Advance(Box::new(merge(stored, incoming)))
}

/// The advanced build keeps its identity and time of first sighting; fields the new report
/// leaves out keep their stored values.
fn merge(stored: &Build, incoming: &Build) -> Build {
    Build {
        repo: stored.repo.clone(),
        build_id: stored.build_id.clone(),
        branch: incoming.branch.clone(),
        status: incoming.status,
        commit: incoming.commit.clone().or_else(|| stored.commit.clone()),
        priority: incoming
            .priority
            .clone()
            .or_else(|| stored.priority.clone()),
        build_type: incoming
            .build_type
            .clone()
            .or_else(|| stored.build_type.clone()),
        change_id: incoming
            .change_id
            .clone()
            .or_else(|| stored.change_id.clone()),
        duration_ms: incoming.duration_ms.or(stored.duration_ms),
        timestamp: stored.timestamp,
        received_at: stored.received_at,
        updated_at: incoming.received_at,
        extra_data: incoming
            .extra_data
            .clone()
            .or_else(|| stored.extra_data.clone()),
    }
}

/// Records one build report; returns what happened and the build as now stored.
pub async fn record_build<S: BuildStore>(
    store: &S,
    incoming: Build,
) -> Result<(RecordOutcome, Build), RecordBuildError> {
    for _ in 0..MAX_ATTEMPTS {
        match store
            .insert_build(&incoming, &CounterDelta::first_sighting(&incoming))
            .await
        {
            Ok(()) => return Ok((RecordOutcome::Created, incoming)),
            Err(StoreError::Conflict) => {}
            Err(other) => return Err(RecordBuildError::Store(other)),
        }
        let Some(StoredBuild {
            build: stored,
            counted_on,
        }) = store
            .get_build(&incoming.repo, &incoming.build_id)
            .await
            .map_err(RecordBuildError::Store)?
        else {
            // Deleted (expired) between the two calls: try creating it again.
            continue;
        };
        match decide(&stored, &incoming) {
            Decision::Unchanged => return Ok((RecordOutcome::Unchanged, stored)),
            Decision::Refuse(reason) => {
                let (build_id, current, incoming) =
                    (stored.build_id, stored.status, incoming.status);
                return Err(match reason {
                    RefuseReason::Regression => RecordBuildError::Regression {
                        build_id,
                        current,
                        incoming,
                    },
                    RefuseReason::AlreadyFinished => RecordBuildError::AlreadyFinished {
                        build_id,
                        current,
                        incoming,
                    },
                });
            }
            Decision::Advance(advanced) => {
                let delta = CounterDelta::transition(stored.status, &advanced, counted_on);
                match store
                    .advance_build(&advanced, stored.status, counted_on, &delta)
                    .await
                {
                    Ok(()) => {
                        return Ok((
                            RecordOutcome::Advanced {
                                from: stored.status,
                            },
                            *advanced,
                        ));
                    }
                    Err(StoreError::Conflict) => continue,
                    Err(other) => return Err(RecordBuildError::Store(other)),
                }
            }
        }
    }
    Err(RecordBuildError::Contended(incoming.build_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::BuildSubmission;
    use chrono::{DateTime, Duration, Utc};
    use serde_json::json;

    fn report(status: &str, minutes_later: i64) -> Build {
        let now = DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + Duration::minutes(minutes_later);
        BuildSubmission::parse(
            &json!({"build_id": "7", "repo": "a/b", "branch": "main", "status": status}),
            now,
        )
        .unwrap()
    }

    #[test]
    fn repeats_change_nothing() {
        assert_eq!(
            decide(&report("running", 0), &report("running", 5)),
            Decision::Unchanged
        );
        assert_eq!(
            decide(&report("failed", 0), &report("FAILURE", 5)),
            Decision::Unchanged
        );
    }

    #[test]
    fn later_states_advance_and_keep_first_sighting() {
        let stored = report("pending", 0);
        let Decision::Advance(advanced) = decide(&stored, &report("running", 3)) else {
            panic!("pending → running must advance");
        };
        assert_eq!(advanced.status, BuildStatus::Running);
        assert_eq!(advanced.timestamp, stored.timestamp);
        assert_eq!(
            advanced.updated_at,
            stored.updated_at + Duration::minutes(3)
        );
        assert!(matches!(
            decide(&advanced, &report("success", 9)),
            Decision::Advance(_)
        ));
    }

    #[test]
    fn earlier_states_and_second_endings_are_refused() {
        assert_eq!(
            decide(&report("success", 0), &report("running", 1)),
            Decision::Refuse(RefuseReason::Regression)
        );
        assert_eq!(
            decide(&report("running", 0), &report("pending", 1)),
            Decision::Refuse(RefuseReason::Regression)
        );
        assert_eq!(
            decide(&report("success", 0), &report("failed", 1)),
            Decision::Refuse(RefuseReason::AlreadyFinished)
        );
    }
}
