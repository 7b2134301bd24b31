//! Recording reports of anything with a lifecycle (builds, pipelines, jobs) idempotently:
//! the first report creates the record, a later state advances it, a repeat changes nothing,
//! and an earlier state never overwrites a later one. Each write carries the counter changes
//! it causes, so a record is counted exactly once however many reports mention it.

use crate::counters::{Contribution, CounterDelta};
use crate::ports::StoreError;
use crate::repo::RepoPath;
use crate::status::BuildStatus;
use chrono::{DateTime, NaiveDate, Utc};
use std::future::Future;

/// How often a write is retried when another writer got there first.
const MAX_ATTEMPTS: usize = 8;

/// Something reported repeatedly as it moves through its lifecycle.
pub trait Record: Clone + Send + Sync + 'static {
    /// What kind of record this is, for messages ("build", "pipeline", "job").
    const KIND: &'static str;
    fn repo(&self) -> &RepoPath;
    /// Identifies the record within its repo (and provider, where there is one).
    fn id(&self) -> String;
    fn status(&self) -> BuildStatus;
    /// When the record was first seen; it is counted on that day.
    fn first_seen(&self) -> DateTime<Utc>;
    fn contribution(&self) -> Contribution;
    /// How this report applies to the stored record.
    fn decide(&self, stored: &Self) -> Decision<Self>;
    /// How the record shows in its repo's recent runs; `None` for records that are not runs
    /// of a project (jobs).
    fn recent_run(&self) -> Option<crate::summary::RecentRun> {
        None
    }
}

/// What to do with a report of a record that is already stored.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision<R> {
    Unchanged,
    Advance(Box<R>),
    Refuse(RefuseReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefuseReason {
    /// The report describes an earlier state than the stored one.
    Regression,
    /// The record already finished with another outcome.
    AlreadyFinished,
}

/// The lifecycle rule for reports that carry no ordering of their own: status only moves
/// forward (pending, running, finished) and a finished record never changes again.
pub fn decide_by_status<R: Record>(
    stored: &R,
    incoming: &R,
    advanced: impl FnOnce() -> R,
) -> Decision<R> {
    if incoming.status() == stored.status() {
        return Decision::Unchanged;
    }
    if stored.status().is_terminal() {
        return Decision::Refuse(if incoming.status().is_terminal() {
            RefuseReason::AlreadyFinished
        } else {
            RefuseReason::Regression
        });
    }
    if incoming.status().rank() < stored.status().rank() {
        return Decision::Refuse(RefuseReason::Regression);
    }
    Decision::Advance(Box::new(advanced()))
}

/// A stored record with what the store needs to update it safely.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored<R> {
    pub record: R,
    /// The day its counters were recorded on.
    pub counted_on: NaiveDate,
    /// Incremented by every write; an update applies only to the revision it was decided on.
    pub revision: u64,
}

pub trait RecordStore<R: Record>: Send + Sync {
    /// Stores a record that must not exist yet, with its counters (and its repo's kept recent
    /// runs, for a run), atomically. `Conflict` if it already exists.
    fn insert(
        &self,
        record: &R,
        counters: &CounterDelta,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Replaces the stored record if it is still at `expected.revision`, with its counters
    /// (and its repo's kept recent runs, for a run), atomically. `Conflict` if it changed
    /// meanwhile.
    fn advance(
        &self,
        record: &R,
        expected: &Stored<R>,
        counters: &CounterDelta,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The stored record with the same repo and id as `like`.
    fn get(&self, like: &R) -> impl Future<Output = Result<Option<Stored<R>>, StoreError>> + Send;
}

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
pub enum RecordError {
    #[error(
        "{kind} {id:?} is already {current}; {incoming} is an earlier state and was not applied"
    )]
    Regression {
        kind: &'static str,
        id: String,
        current: BuildStatus,
        incoming: BuildStatus,
    },
    #[error(
        "{kind} {id:?} already finished as {current}; a finished {kind} cannot become {incoming} (report a re-run under a new id)"
    )]
    AlreadyFinished {
        kind: &'static str,
        id: String,
        current: BuildStatus,
        incoming: BuildStatus,
    },
    #[error("{0} is being updated by many writers at once; retry")]
    Contended(String),
    #[error(transparent)]
    Store(StoreError),
}

impl RecordError {
    /// A report that lost to a later one: stale, not a failure of the sender.
    pub fn is_stale(&self) -> bool {
        matches!(
            self,
            RecordError::Regression { .. } | RecordError::AlreadyFinished { .. }
        )
    }
}

/// Records one report; returns what happened and the record as now stored.
pub async fn record<R: Record, S: RecordStore<R>>(
    store: &S,
    incoming: R,
) -> Result<(RecordOutcome, R), RecordError> {
    for _ in 0..MAX_ATTEMPTS {
        let first = CounterDelta::first_sighting(
            incoming.contribution(),
            incoming.first_seen().date_naive(),
        );
        match store.insert(&incoming, &first).await {
            Ok(()) => return Ok((RecordOutcome::Created, incoming)),
            Err(StoreError::Conflict) => {}
            Err(other) => return Err(RecordError::Store(other)),
        }
        let Some(stored) = store.get(&incoming).await.map_err(RecordError::Store)? else {
            // Expired between the two calls: try creating it again.
            continue;
        };
        match incoming.decide(&stored.record) {
            Decision::Unchanged => return Ok((RecordOutcome::Unchanged, stored.record)),
            Decision::Refuse(reason) => {
                let (kind, id, current, incoming) = (
                    R::KIND,
                    stored.record.id(),
                    stored.record.status(),
                    incoming.status(),
                );
                return Err(match reason {
                    RefuseReason::Regression => RecordError::Regression {
                        kind,
                        id,
                        current,
                        incoming,
                    },
                    RefuseReason::AlreadyFinished => RecordError::AlreadyFinished {
                        kind,
                        id,
                        current,
                        incoming,
                    },
                });
            }
            Decision::Advance(advanced) => {
                let delta = CounterDelta::transition(
                    stored.record.contribution(),
                    advanced.contribution(),
                    stored.counted_on,
                );
                match store.advance(&advanced, &stored, &delta).await {
                    Ok(()) => {
                        let from = stored.record.status();
                        return Ok((RecordOutcome::Advanced { from }, *advanced));
                    }
                    Err(StoreError::Conflict) => continue,
                    Err(other) => return Err(RecordError::Store(other)),
                }
            }
        }
    }
    Err(RecordError::Contended(format!(
        "{} {:?}",
        R::KIND,
        incoming.id()
    )))
}
