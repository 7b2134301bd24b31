//! The test-report use cases: ingest one uploaded JUnit document for a job, read a job's
//! merged report, list a repo's tests, and quarantine a test.
//!
//! Writes per upload: one conditional put of the upload (its totals and failing tests), one
//! update of the repo's tracked-test set, and one conditional put per failing, flaky or
//! tracked test; passing tests that never failed cost nothing. A retried upload of the same
//! bytes is recognised by its digest and changes nothing.

use super::history::{Applied, FlakySettings, Quarantine, RunContext, TestState, apply_run};
use super::parse::{JunitError, parse_gzip_report, parse_report_bytes};
use super::{FailureDetail, Outcome, ParsedReport, TestResult, Totals, test_id};
use crate::ports::StoreError;
use crate::repo::RepoPath;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::future::Future;

/// Failing and flaky tests an upload keeps with their details (the totals count them all).
pub const MAX_LISTED_TESTS: usize = 100;
/// States written at once.
const WRITE_CONCURRENCY: usize = 16;
/// Attempts to write one state when concurrent uploads update the same test.
const CONFLICT_ATTEMPTS: u32 = 5;
/// Hex digits of the digest that name an upload in a test's history.
const UPLOAD_KEY_DIGITS: usize = 16;

/// Which job a report belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobKey {
    pub provider: String,
    pub repo: RepoPath,
    pub job_id: String,
}

/// A failing or flaky test as an upload lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListedTest {
    pub id: String,
    pub suite: String,
    pub name: String,
    pub outcome: Outcome,
    #[serde(flatten)]
    pub detail: FailureDetail,
}

impl ListedTest {
    fn of(test: &TestResult) -> Self {
        ListedTest {
            id: test.id(),
            suite: test.suite.clone(),
            name: test.name.clone(),
            outcome: test.outcome,
            detail: test.failure.clone().unwrap_or_default(),
        }
    }
}

/// One stored upload of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredUpload {
    pub digest: String,
    pub uploaded_at: DateTime<Utc>,
    pub bytes: u64,
    pub totals: Totals,
    pub infrastructure_failure: bool,
    #[serde(flatten)]
    pub run: RunContext,
    /// Failed and errored tests, at most [`MAX_LISTED_TESTS`].
    pub failed_tests: Vec<ListedTest>,
    pub flaky_tests: Vec<ListedTest>,
    /// Tests of the report that had no room in the lists.
    #[serde(default)]
    pub omitted_tests: u64,
}

/// What the store keeps per repo besides the tests: the tracked ids and report counts.
pub trait TestReportStore: Send + Sync {
    fn find_upload(
        &self,
        job: &JobKey,
        digest: &str,
    ) -> impl Future<Output = Result<Option<StoredUpload>, StoreError>> + Send;

    /// Stores an upload unless one with its digest exists (`Ok(false)`), and adds
    /// `newly_tracked` to the repo's tracked ids.
    fn record_upload(
        &self,
        job: &JobKey,
        upload: &StoredUpload,
        newly_tracked: &[String],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn job_uploads(
        &self,
        job: &JobKey,
    ) -> impl Future<Output = Result<Vec<StoredUpload>, StoreError>> + Send;

    /// Ids of the repo's tracked tests (some may have expired since).
    fn tracked_tests(
        &self,
        repo: &RepoPath,
    ) -> impl Future<Output = Result<HashSet<String>, StoreError>> + Send;

    /// The states of these tests that exist, with their revisions.
    fn load_states(
        &self,
        repo: &RepoPath,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<(TestState, u64)>, StoreError>> + Send;

    /// Writes a state if its revision is still `revision` (`None`: if it does not exist);
    /// `Conflict` otherwise.
    fn save_state(
        &self,
        repo: &RepoPath,
        state: &TestState,
        revision: Option<u64>,
        settings: &FlakySettings,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn all_states(
        &self,
        repo: &RepoPath,
    ) -> impl Future<Output = Result<Vec<TestState>, StoreError>> + Send;

    /// Adds one test to the repo's tracked set (a quarantined test is tracked from then on).
    fn track(
        &self,
        repo: &RepoPath,
        id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes ids whose state expired from the tracked set.
    fn untrack(
        &self,
        repo: &RepoPath,
        ids: &[String],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Where the job's commit, branch and pipeline are known from webhooks.
    fn job_context(
        &self,
        job: &JobKey,
    ) -> impl Future<Output = Result<Option<RunContext>, StoreError>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum IngestReportError {
    #[error(transparent)]
    Report(#[from] JunitError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An upload as received.
#[derive(Debug, Clone, Copy)]
pub struct ReportUpload<'a> {
    pub body: &'a [u8],
    pub gzip: bool,
    /// The largest document accepted, decompressed.
    pub limit: u64,
}

/// The query's context; missing fields are taken from the job's webhook record.
#[derive(Debug, Clone, Default)]
pub struct ContextHints {
    pub commit: Option<String>,
    pub branch: Option<String>,
    pub pipeline_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IngestOutcome {
    pub upload: StoredUpload,
    /// The same bytes were already uploaded for this job: nothing changed.
    pub duplicate: bool,
    /// Test states written.
    pub states_written: usize,
    /// Tests this upload made flaky (they were not before), by name.
    pub turned_flaky: Vec<String>,
}

fn parse(upload: ReportUpload<'_>) -> Result<ParsedReport, JunitError> {
    if upload.gzip {
        parse_gzip_report(upload.body, upload.limit)
    } else {
        parse_report_bytes(upload.body, upload.limit)
    }
}

fn listed(report: &ParsedReport) -> (Vec<ListedTest>, Vec<ListedTest>, u64) {
    let mut failed = Vec::new();
    let mut flaky = Vec::new();
    let mut omitted = 0;
    for test in &report.tests {
        let list = match test.outcome {
            Outcome::Failed | Outcome::Error => &mut failed,
            Outcome::Flaky => &mut flaky,
            _ => continue,
        };
        if list.len() < MAX_LISTED_TESTS {
            list.push(ListedTest::of(test));
        } else {
            omitted += 1;
        }
    }
    (failed, flaky, omitted)
}

/// Parses an upload and records it with its effect on the repo's tests.
pub async fn ingest_report<S: TestReportStore>(
    store: &S,
    job: &JobKey,
    upload: ReportUpload<'_>,
    hints: ContextHints,
    settings: &FlakySettings,
    now: DateTime<Utc>,
) -> Result<IngestOutcome, IngestReportError> {
    let report = parse(upload)?;
    Ok(ingest_parsed(store, job, report, hints, settings, now).await?)
}

/// Records a report already parsed (an uploaded file, or a suite of GitLab's pipeline test
/// report) with its effect on the repo's tests.
pub async fn ingest_parsed<S: TestReportStore>(
    store: &S,
    job: &JobKey,
    report: ParsedReport,
    hints: ContextHints,
    settings: &FlakySettings,
    now: DateTime<Utc>,
) -> Result<IngestOutcome, StoreError> {
    if let Some(existing) = store.find_upload(job, &report.digest).await? {
        return Ok(IngestOutcome {
            upload: existing,
            duplicate: true,
            states_written: 0,
            turned_flaky: Vec::new(),
        });
    }
    let known = if hints.commit.is_none() || hints.branch.is_none() || hints.pipeline_id.is_none() {
        store.job_context(job).await?.unwrap_or_default()
    } else {
        RunContext::default()
    };
    let run = RunContext {
        provider: job.provider.clone(),
        job_id: job.job_id.clone(),
        pipeline_id: hints.pipeline_id.or(known.pipeline_id),
        commit: hints.commit.or(known.commit),
        branch: hints.branch.or(known.branch),
    };
    let infrastructure_failure = settings.is_infrastructure_failure(&report.totals);
    let (failed_tests, flaky_tests, omitted_tests) = listed(&report);
    let mut newly_tracked = Vec::new();
    let mut states_written = 0;
    let mut turned_flaky = Vec::new();
    if !infrastructure_failure {
        let tracked = store.tracked_tests(&job.repo).await?;
        let relevant: Vec<&TestResult> = report
            .tests
            .iter()
            .filter(|test| test.outcome != Outcome::Skipped)
            .filter(|test| test.outcome != Outcome::Passed || tracked.contains(&test.id()))
            .collect();
        newly_tracked = relevant
            .iter()
            .map(|test| test.id())
            .filter(|id| !tracked.contains(id))
            .collect();
        let upload_key = &report.digest[..UPLOAD_KEY_DIGITS.min(report.digest.len())];
        let this_run = ThisRun {
            run: &run,
            upload_key,
            now,
            settings,
        };
        (states_written, turned_flaky) =
            apply_tests(store, &job.repo, &relevant, &tracked, &this_run).await?;
    }
    let upload = StoredUpload {
        digest: report.digest.clone(),
        uploaded_at: now,
        bytes: report.bytes,
        totals: report.totals,
        infrastructure_failure,
        run,
        failed_tests,
        flaky_tests,
        omitted_tests,
    };
    let created = store.record_upload(job, &upload, &newly_tracked).await?;
    if !created {
        // A concurrent retry of the same upload got there first; the states were applied
        // once either way (each knows the upload).
        if let Some(existing) = store.find_upload(job, &report.digest).await? {
            return Ok(IngestOutcome {
                upload: existing,
                duplicate: true,
                states_written,
                turned_flaky,
            });
        }
    }
    Ok(IngestOutcome {
        upload,
        duplicate: false,
        states_written,
        turned_flaky,
    })
}

/// What every test of one upload is applied with.
#[derive(Clone, Copy)]
struct ThisRun<'a> {
    run: &'a RunContext,
    upload_key: &'a str,
    now: DateTime<Utc>,
    settings: &'a FlakySettings,
}

/// Applies the run to every relevant test's state, concurrently; a state another upload
/// changed meanwhile is read again and the run applied to the new state. Answers the states
/// written and the names of the tests the run made flaky.
async fn apply_tests<S: TestReportStore>(
    store: &S,
    repo: &RepoPath,
    tests: &[&TestResult],
    tracked: &HashSet<String>,
    this_run: &ThisRun<'_>,
) -> Result<(usize, Vec<String>), StoreError> {
    let ids: Vec<String> = tests
        .iter()
        .map(|test| test.id())
        .filter(|id| tracked.contains(id))
        .collect();
    let mut existing: std::collections::HashMap<String, (TestState, u64)> = store
        .load_states(repo, &ids)
        .await?
        .into_iter()
        .map(|(state, revision)| (state.id.clone(), (state, revision)))
        .collect();
    // Tracked ids whose state expired: forget them, so later uploads skip their passes.
    let expired: Vec<String> = ids
        .into_iter()
        .filter(|id| !existing.contains_key(id))
        .collect();
    if !expired.is_empty() {
        // Best effort: a stale id costs one wasted key in a later read, nothing more.
        store.untrack(repo, &expired).await.ok();
    }
    let work: Vec<(TestResult, Option<(TestState, u64)>)> = tests
        .iter()
        .map(|test| ((*test).clone(), existing.remove(&test.id())))
        .collect();
    let results: Vec<Result<Written, StoreError>> = futures_util::stream::iter(work)
        .map(|(test, current)| apply_one(store, repo, test, current, this_run))
        .buffer_unordered(WRITE_CONCURRENCY)
        .collect()
        .await;
    let mut written = 0;
    let mut turned_flaky = Vec::new();
    for result in results {
        match result? {
            Written::Unchanged => {}
            Written::Changed => written += 1,
            Written::TurnedFlaky(name) => {
                written += 1;
                turned_flaky.push(name);
            }
        }
    }
    Ok((written, turned_flaky))
}

/// What applying a run did to a test's state.
enum Written {
    Unchanged,
    Changed,
    /// Changed, and the test is flaky now where it was not before.
    TurnedFlaky(String),
}

/// Applies the run to one test and writes its state.
async fn apply_one<S: TestReportStore>(
    store: &S,
    repo: &RepoPath,
    test: TestResult,
    mut current: Option<(TestState, u64)>,
    this_run: &ThisRun<'_>,
) -> Result<Written, StoreError> {
    let ThisRun {
        run,
        upload_key,
        now,
        settings,
    } = *this_run;
    for _ in 0..CONFLICT_ATTEMPTS {
        let (state, revision) = match &current {
            Some((state, revision)) => (Some(state), Some(*revision)),
            None => (None, None),
        };
        let next = match apply_run(state, &test, run, upload_key, now, settings) {
            Applied::Unchanged => return Ok(Written::Unchanged),
            Applied::Updated(next) => next,
        };
        let was_flaky = state.is_some_and(|state| state.is_flaky(now, settings));
        match store.save_state(repo, &next, revision, settings).await {
            Ok(()) if !was_flaky && next.is_flaky(now, settings) => {
                return Ok(Written::TurnedFlaky(next.name.clone()));
            }
            Ok(()) => return Ok(Written::Changed),
            Err(StoreError::Conflict) => {
                current = store
                    .load_states(repo, std::slice::from_ref(&next.id))
                    .await?
                    .into_iter()
                    .next();
            }
            Err(other) => return Err(other),
        }
    }
    Err(StoreError::Unavailable(
        "a test's state kept changing under concurrent uploads".into(),
    ))
}

/// A job's report over all its uploads.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobReport {
    pub uploads: usize,
    pub totals: Totals,
    pub infrastructure_failures: usize,
    pub failed_tests: Vec<ListedTest>,
    pub flaky_tests: Vec<ListedTest>,
}

/// Merges a job's uploads (one per module): totals add up, the lists are concatenated.
pub fn merge_uploads(uploads: &[StoredUpload]) -> JobReport {
    let mut report = JobReport {
        uploads: uploads.len(),
        totals: Totals::default(),
        infrastructure_failures: 0,
        failed_tests: Vec::new(),
        flaky_tests: Vec::new(),
    };
    for upload in uploads {
        report.totals.add(&upload.totals);
        report.infrastructure_failures += usize::from(upload.infrastructure_failure);
        report
            .failed_tests
            .extend(upload.failed_tests.iter().cloned());
        report
            .flaky_tests
            .extend(upload.flaky_tests.iter().cloned());
    }
    report
}

#[derive(Debug, thiserror::Error)]
pub enum QuarantineError {
    #[error(
        "no test with id {0} has been reported for this repo; upload a report that contains it, or send its `suite` and `name`"
    )]
    UnknownTest(String),
    #[error("`suite` and `name` do not match test id {0}")]
    IdMismatch(String),
    #[error("no test with id {0} is quarantined in this repo")]
    NotQuarantined(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a quarantine request says.
#[derive(Debug, Clone)]
pub struct QuarantineRequest {
    pub reason: String,
    pub owner: String,
    pub expires_at: Option<DateTime<Utc>>,
    /// For a test no report has shown yet.
    pub suite: Option<String>,
    pub name: Option<String>,
}

/// Quarantines a test (replacing an earlier quarantine of it).
pub async fn quarantine_test<S: TestReportStore>(
    store: &S,
    repo: &RepoPath,
    id: &str,
    request: QuarantineRequest,
    settings: &FlakySettings,
    now: DateTime<Utc>,
) -> Result<TestState, QuarantineError> {
    for _ in 0..CONFLICT_ATTEMPTS {
        let current = store
            .load_states(repo, &[id.to_string()])
            .await?
            .into_iter()
            .next();
        let (mut state, revision) = match current {
            Some((state, revision)) => (state, Some(revision)),
            None => {
                let (Some(suite), Some(name)) = (&request.suite, &request.name) else {
                    return Err(QuarantineError::UnknownTest(id.to_string()));
                };
                if test_id(suite, name) != id {
                    return Err(QuarantineError::IdMismatch(id.to_string()));
                }
                let test = TestResult {
                    suite: suite.clone(),
                    name: name.clone(),
                    outcome: Outcome::Passed,
                    duration_seconds: 0.0,
                    failure: None,
                };
                (TestState::new(&test, now), None)
            }
        };
        state.quarantine = Some(Quarantine {
            reason: request.reason.clone(),
            owner: request.owner.clone(),
            since: now,
            expires_at: request.expires_at,
        });
        // The lift rule counts passes from the quarantine on.
        state.default_branch_pass_streak = 0;
        match store.save_state(repo, &state, revision, settings).await {
            Ok(()) => {
                if revision.is_none() {
                    store.track(repo, &state.id).await?;
                }
                return Ok(state);
            }
            Err(StoreError::Conflict) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(StoreError::Unavailable("the test's state kept changing".into()).into())
}

/// Lifts a quarantine; the test's results and history stay.
pub async fn lift_quarantine<S: TestReportStore>(
    store: &S,
    repo: &RepoPath,
    id: &str,
    settings: &FlakySettings,
) -> Result<TestState, QuarantineError> {
    for _ in 0..CONFLICT_ATTEMPTS {
        let Some((mut state, revision)) = store
            .load_states(repo, &[id.to_string()])
            .await?
            .into_iter()
            .next()
        else {
            return Err(QuarantineError::NotQuarantined(id.to_string()));
        };
        if state.quarantine.take().is_none() {
            return Err(QuarantineError::NotQuarantined(id.to_string()));
        }
        match store
            .save_state(repo, &state, Some(revision), settings)
            .await
        {
            Ok(()) => return Ok(state),
            Err(StoreError::Conflict) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(StoreError::Unavailable("the test's state kept changing".into()).into())
}
