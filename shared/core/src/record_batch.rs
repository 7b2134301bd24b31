//! Recording a batch of builds (`POST /api/v1/builds/batch`): every valid build is recorded,
//! reports of the same build in the order the batch gives them (a `running` then a `success`
//! ends as `success`), different builds in parallel. One build's failure fails only that build.

use crate::build::{Build, InvalidBuild};
use crate::record::{RecordError, RecordOutcome, RecordStore, record};
use futures_util::StreamExt;
use std::collections::BTreeMap;

/// Distinct builds of one batch written at once.
const BATCH_CONCURRENCY: usize = 16;

/// What became of one entry of a batch.
#[derive(Debug)]
pub enum BatchEntry {
    /// The entry is not a valid build; nothing was written for it.
    Invalid(InvalidBuild),
    /// Recorded: what happened, and the build as now stored.
    Recorded(RecordOutcome, Box<Build>),
    /// A valid build (its id as parsed) that could not be recorded: refused as an earlier
    /// state, or contended.
    Failed {
        build_id: String,
        error: RecordError,
    },
}

/// Records the valid builds of a batch; one entry per submission, in the batch's order.
pub async fn record_batch<S: RecordStore<Build>>(
    store: &S,
    submissions: Vec<Result<Build, InvalidBuild>>,
) -> Vec<BatchEntry> {
    let mut entries: Vec<Option<BatchEntry>> = Vec::with_capacity(submissions.len());
    let mut builds_in_order: BTreeMap<(String, String), Vec<(usize, Build)>> = BTreeMap::new();
    for (index, submission) in submissions.into_iter().enumerate() {
        match submission {
            Ok(build) => {
                builds_in_order
                    .entry((build.repo.to_string(), build.build_id.clone()))
                    .or_default()
                    .push((index, build));
                entries.push(None);
            }
            Err(invalid) => entries.push(Some(BatchEntry::Invalid(invalid))),
        }
    }
    let recorded: Vec<Vec<(usize, BatchEntry)>> =
        futures_util::stream::iter(builds_in_order.into_values())
            .map(|reports| record_in_order(store, reports))
            .buffer_unordered(BATCH_CONCURRENCY)
            .collect()
            .await;
    for (index, entry) in recorded.into_iter().flatten() {
        entries[index] = Some(entry);
    }
    // Every index was filled above: by its parse error, or by its build's recording.
    entries.into_iter().flatten().collect()
}

/// Records the reports of one build one after the other.
async fn record_in_order<S: RecordStore<Build>>(
    store: &S,
    reports: Vec<(usize, Build)>,
) -> Vec<(usize, BatchEntry)> {
    let mut entries = Vec::with_capacity(reports.len());
    for (index, build) in reports {
        let build_id = build.build_id.clone();
        let entry = match record(store, build).await {
            Ok((outcome, stored)) => BatchEntry::Recorded(outcome, Box::new(stored)),
            Err(error) => BatchEntry::Failed { build_id, error },
        };
        entries.push((index, entry));
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::BuildSubmission;
    use crate::counters::CounterDelta;
    use crate::ports::StoreError;
    use crate::record::{Record, Stored};
    use crate::status::BuildStatus;
    use serde_json::json;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// Builds kept in memory by repo and id, with revisions: just enough of a store for the
    /// order in which a batch records.
    #[derive(Default)]
    struct KeptBuilds(Mutex<HashMap<(String, String), Stored<Build>>>);

    fn key(build: &Build) -> (String, String) {
        (build.repo.to_string(), build.id())
    }

    impl RecordStore<Build> for KeptBuilds {
        async fn insert(&self, record: &Build, _: &CounterDelta) -> Result<(), StoreError> {
            let mut kept = self.0.lock().unwrap();
            if kept.contains_key(&key(record)) {
                return Err(StoreError::Conflict);
            }
            let stored = Stored {
                record: record.clone(),
                counted_on: record.first_seen().date_naive(),
                revision: 1,
            };
            kept.insert(key(record), stored);
            Ok(())
        }

        async fn advance(
            &self,
            record: &Build,
            expected: &Stored<Build>,
            _: &CounterDelta,
        ) -> Result<(), StoreError> {
            let mut kept = self.0.lock().unwrap();
            let stored = kept.get_mut(&key(record)).ok_or(StoreError::Conflict)?;
            if stored.revision != expected.revision {
                return Err(StoreError::Conflict);
            }
            stored.record = record.clone();
            stored.revision += 1;
            Ok(())
        }

        async fn get(&self, like: &Build) -> Result<Option<Stored<Build>>, StoreError> {
            Ok(self.0.lock().unwrap().get(&key(like)).cloned())
        }
    }

    fn submitted(build_id: &str, status: &str) -> Result<Build, InvalidBuild> {
        let body =
            json!({"build_id": build_id, "repo": "team/app", "branch": "main", "status": status});
        BuildSubmission::parse(&body, chrono::Utc::now())
    }

    #[tokio::test]
    async fn reports_of_one_build_apply_in_order_and_each_entry_keeps_its_place() {
        let store = KeptBuilds::default();
        let batch = vec![
            submitted("b1", "running"),
            submitted("", "success"),
            submitted("b2", "failed"),
            submitted("b1", "success"),
            submitted("b1", "running"),
        ];
        let entries = record_batch(&store, batch).await;
        assert_eq!(entries.len(), 5);
        assert!(matches!(
            &entries[0],
            BatchEntry::Recorded(RecordOutcome::Created, build) if build.build_id == "b1"
        ));
        assert!(matches!(&entries[1], BatchEntry::Invalid(_)));
        assert!(matches!(
            &entries[2],
            BatchEntry::Recorded(RecordOutcome::Created, build) if build.build_id == "b2"
        ));
        assert!(matches!(
            &entries[3],
            BatchEntry::Recorded(RecordOutcome::Advanced { from: BuildStatus::Running }, build)
                if build.status == BuildStatus::Success
        ));
        // A `running` after the `success` is an earlier state: refused, not applied.
        assert!(matches!(
            &entries[4],
            BatchEntry::Failed { build_id, error } if build_id == "b1" && error.is_stale()
        ));
    }
}
