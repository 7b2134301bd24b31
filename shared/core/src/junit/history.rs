//! Per-test state in a repo: how often a test ran and failed, its recent history, and the
//! flakiness monitors a user can reason about:
//! 1. the same commit saw the test both fail and pass (across jobs, retries or re-runs);
//! 2. the test failed then passed within one run (the framework's rerun elements);
//! 3. on a default branch, its outcome flipped more than N times in the last M runs there.
//!
//! Only *tracked* tests have a state: a test becomes tracked when it fails or flakes (or is
//! quarantined) and stays tracked for `track_days` after its last such evidence, so the writes
//! per report grow with failing, flaky and tracked tests, not with the number of tests.

use super::{Outcome, TestResult};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Runs kept in a test's history (newest first).
pub const HISTORY_KEPT: usize = 20;

/// The monitors' knobs (environment: `TEST_FLIP_RUNS`, `TEST_FLIP_THRESHOLD`,
/// `TEST_DEFAULT_BRANCHES`, `TEST_LIFT_AFTER_PASSES`, `TEST_TRACK_DAYS`,
/// `TEST_INFRA_FAILURE_RATIO`, `TEST_INFRA_MIN_TESTS`).
#[derive(Debug, Clone, PartialEq)]
pub struct FlakySettings {
    /// M: runs on a default branch looked at by monitor 3 (at most [`HISTORY_KEPT`]).
    pub flip_runs: usize,
    /// N: more flips than this in the last M runs make a test flaky.
    pub flip_threshold: usize,
    /// Branches whose runs monitor 3 and the lift rule look at.
    pub default_branches: Vec<String>,
    /// A quarantined test that passed this many runs in a row on a default branch is a
    /// candidate to lift.
    pub lift_after_passes: u32,
    /// A test stays tracked (and flaky) this long after its last failure or flake.
    pub track_days: u32,
    /// A report where more than this share of its tests fail is one infrastructure failure,
    /// not evidence against each test.
    pub infra_failure_ratio: f64,
    /// ... when it holds at least this many tests.
    pub infra_min_tests: u64,
}

impl Default for FlakySettings {
    fn default() -> Self {
        FlakySettings {
            flip_runs: 10,
            flip_threshold: 2,
            default_branches: vec!["main".into(), "master".into()],
            lift_after_passes: 20,
            track_days: 30,
            infra_failure_ratio: 0.8,
            infra_min_tests: 10,
        }
    }
}

impl FlakySettings {
    pub fn is_default_branch(&self, branch: Option<&str>) -> bool {
        branch.is_some_and(|branch| self.default_branches.iter().any(|b| b == branch))
    }

    /// Whether a report with these totals is an infrastructure failure.
    pub fn is_infrastructure_failure(&self, totals: &super::Totals) -> bool {
        let counted = totals.tests - totals.skipped;
        counted >= self.infra_min_tests.max(1)
            && totals.failing() as f64 > self.infra_failure_ratio * counted as f64
    }
}

/// Where and when a report's tests ran.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunContext {
    pub provider: String,
    pub job_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
}

/// One run of a test, as its history keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    pub provider: String,
    pub job_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    pub outcome: Outcome,
    /// The first hex digits of the upload's digest: a retried upload is applied once.
    pub upload: String,
    /// How long the test ran (its reruns included).
    #[serde(default)]
    pub seconds: f64,
    /// A failure that a pass on the same commit showed to be a flake (its time is counted as
    /// lost once).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flake: bool,
}

/// Which monitor last found a test flaky.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlakyEvidence {
    /// Monitor 1: failed and passed on the same commit.
    SameCommit,
    /// Monitor 2: failed, then passed on a rerun within one run.
    RerunWithinRun,
    /// Monitor 3: flipped between pass and fail too often on a default branch.
    Flips,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantine {
    pub reason: String,
    pub owner: String,
    pub since: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl Quarantine {
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|until| until > now)
    }
}

/// The state of one tracked test of a repo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestState {
    pub id: String,
    pub suite: String,
    pub name: String,
    pub runs: u64,
    pub failures: u64,
    /// Runs that a monitor counted as a flake.
    pub flaky_runs: u64,
    pub first_seen: DateTime<Utc>,
    #[serde(default)]
    pub last_run_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_outcome: Option<Outcome>,
    #[serde(default)]
    pub last_failed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_flaky_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub flaky_evidence: Option<FlakyEvidence>,
    #[serde(default)]
    pub last_job: Option<String>,
    /// Passes in a row on a default branch (the quarantine lift rule).
    #[serde(default)]
    pub default_branch_pass_streak: u32,
    /// Seconds lost to failed runs later found flaky.
    #[serde(default)]
    pub time_lost_to_flakes_seconds: f64,
    #[serde(default)]
    pub quarantine: Option<Quarantine>,
    /// Newest first, at most [`HISTORY_KEPT`].
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
}

/// What a listing shows for a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TestStateName {
    Quarantined,
    Flaky,
    Failing,
    Passing,
}

impl TestStateName {
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "quarantined" => TestStateName::Quarantined,
            "flaky" => TestStateName::Flaky,
            "failing" => TestStateName::Failing,
            "passing" => TestStateName::Passing,
            _ => return None,
        })
    }
}

/// The result of applying one run to a test.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// Nothing to write: an untracked test that did not fail, a skip, or a run already applied.
    Unchanged,
    Updated(Box<TestState>),
}

impl TestState {
    pub fn new(test: &TestResult, now: DateTime<Utc>) -> Self {
        TestState {
            id: test.id(),
            suite: test.suite.clone(),
            name: test.name.clone(),
            runs: 0,
            failures: 0,
            flaky_runs: 0,
            first_seen: now,
            last_run_at: None,
            last_outcome: None,
            last_failed_at: None,
            last_flaky_at: None,
            flaky_evidence: None,
            last_job: None,
            default_branch_pass_streak: 0,
            time_lost_to_flakes_seconds: 0.0,
            quarantine: None,
            history: Vec::new(),
        }
    }

    pub fn flake_rate(&self) -> f64 {
        if self.runs == 0 {
            0.0
        } else {
            self.flaky_runs as f64 / self.runs as f64
        }
    }

    pub fn is_quarantined(&self, now: DateTime<Utc>) -> bool {
        self.quarantine.as_ref().is_some_and(|q| q.active(now))
    }

    /// Flaky while a monitor's last finding is within the tracking window.
    pub fn is_flaky(&self, now: DateTime<Utc>, settings: &FlakySettings) -> bool {
        self.last_flaky_at
            .is_some_and(|at| now - at <= Duration::days(i64::from(settings.track_days)))
    }

    pub fn is_failing(&self) -> bool {
        self.last_outcome.is_some_and(Outcome::is_failure)
    }

    pub fn state(&self, now: DateTime<Utc>, settings: &FlakySettings) -> TestStateName {
        if self.is_quarantined(now) {
            TestStateName::Quarantined
        } else if self.is_flaky(now, settings) {
            TestStateName::Flaky
        } else if self.is_failing() {
            TestStateName::Failing
        } else {
            TestStateName::Passing
        }
    }

    /// Whether a listing filtered by `wanted` shows this test (a quarantined flaky test is
    /// both).
    pub fn matches(&self, wanted: TestStateName, now: DateTime<Utc>, s: &FlakySettings) -> bool {
        match wanted {
            TestStateName::Quarantined => self.is_quarantined(now),
            TestStateName::Flaky => self.is_flaky(now, s),
            TestStateName::Failing => self.is_failing(),
            TestStateName::Passing => self.state(now, s) == TestStateName::Passing,
        }
    }

    /// A quarantined test that passed long enough on a default branch.
    pub fn lift_candidate(&self, now: DateTime<Utc>, settings: &FlakySettings) -> bool {
        self.is_quarantined(now) && self.default_branch_pass_streak >= settings.lift_after_passes
    }

    /// Until when the state is kept: `track_days` after the last failure or flake, and while
    /// a quarantine lasts (`None`: kept).
    pub fn tracked_until(&self, settings: &FlakySettings) -> Option<DateTime<Utc>> {
        if let Some(quarantine) = &self.quarantine {
            quarantine.expires_at?;
        }
        let evidence = [
            self.last_failed_at,
            self.last_flaky_at,
            Some(self.first_seen),
        ]
        .into_iter()
        .flatten()
        .max()?;
        let tracked = evidence + Duration::days(i64::from(settings.track_days));
        let quarantined = self.quarantine.as_ref().and_then(|q| q.expires_at);
        Some(quarantined.map_or(tracked, |until| until.max(tracked)))
    }

    fn mark_flaky(&mut self, evidence: FlakyEvidence, at: DateTime<Utc>) {
        self.last_flaky_at = Some(at);
        self.flaky_evidence = Some(evidence);
    }
}

/// Pass or fail, for the monitors (a flaky run passed in the end).
fn failed(outcome: Outcome) -> bool {
    outcome.is_failure()
}

/// Applies one run of `test` to its state (`None`: not tracked yet). Pure: the store
/// decides nothing, so every rule is tested here.
pub fn apply_run(
    state: Option<&TestState>,
    test: &TestResult,
    run: &RunContext,
    upload: &str,
    now: DateTime<Utc>,
    settings: &FlakySettings,
) -> Applied {
    let outcome = test.outcome;
    if outcome == Outcome::Skipped {
        return Applied::Unchanged;
    }
    let mut state = match state {
        Some(state) => state.clone(),
        None if outcome == Outcome::Passed => return Applied::Unchanged,
        None => TestState::new(test, now),
    };
    let already = state
        .history
        .iter()
        .any(|entry| entry.upload == upload && entry.job_id == run.job_id);
    if already {
        return Applied::Unchanged;
    }
    state.runs += 1;
    state.last_run_at = Some(now);
    state.last_outcome = Some(outcome);
    state.last_job = Some(format!("{}/{}", run.provider, run.job_id));
    let on_default = settings.is_default_branch(run.branch.as_deref());
    if outcome.is_failure() {
        state.failures += 1;
        state.last_failed_at = Some(now);
    }
    let mut flaky_now = false;
    let mut this_run_is_a_flake = false;
    // Monitor 2: the framework reran a failure and it passed; the run's time went to it.
    if outcome == Outcome::Flaky {
        state.mark_flaky(FlakyEvidence::RerunWithinRun, now);
        state.time_lost_to_flakes_seconds += test.duration_seconds;
        flaky_now = true;
    }
    // Monitor 1: this commit already went the other way.
    if let Some(commit) = run.commit.as_deref() {
        let same_commit =
            |e: &HistoryEntry| e.commit.as_deref() == Some(commit) && e.outcome != Outcome::Skipped;
        let contradicted = state
            .history
            .iter()
            .any(|e| same_commit(e) && failed(e.outcome) != failed(outcome));
        if contradicted {
            state.mark_flaky(FlakyEvidence::SameCommit, now);
            flaky_now = true;
            if failed(outcome) {
                this_run_is_a_flake = true;
                state.time_lost_to_flakes_seconds += test.duration_seconds;
            } else {
                // The commit's earlier failures were flakes: their time was lost, once.
                for entry in state.history.iter_mut() {
                    if same_commit(entry) && failed(entry.outcome) && !entry.flake {
                        entry.flake = true;
                        state.time_lost_to_flakes_seconds += entry.seconds;
                    }
                }
            }
        }
    }
    state.history.insert(
        0,
        HistoryEntry {
            at: now,
            provider: run.provider.clone(),
            job_id: run.job_id.clone(),
            pipeline_id: run.pipeline_id.clone(),
            commit: run.commit.clone(),
            branch: run.branch.clone(),
            outcome,
            upload: upload.to_string(),
            seconds: test.duration_seconds,
            flake: this_run_is_a_flake,
        },
    );
    state.history.truncate(HISTORY_KEPT);
    // Monitor 3: flips among the last M runs on a default branch.
    if on_default {
        let outcomes: Vec<bool> = state
            .history
            .iter()
            .filter(|e| settings.is_default_branch(e.branch.as_deref()))
            .filter(|e| e.outcome != Outcome::Skipped)
            .take(settings.flip_runs.min(HISTORY_KEPT))
            .map(|e| failed(e.outcome))
            .collect();
        let flips = outcomes.windows(2).filter(|w| w[0] != w[1]).count();
        if flips > settings.flip_threshold {
            state.mark_flaky(FlakyEvidence::Flips, now);
            flaky_now = true;
        }
        state.default_branch_pass_streak = if outcome == Outcome::Passed {
            state.default_branch_pass_streak.saturating_add(1)
        } else {
            0
        };
    }
    if flaky_now {
        state.flaky_runs += 1;
    }
    Applied::Updated(Box::new(state))
}

/// Tests named in a repo analysis's lists.
pub const TOP_TESTS: usize = 5;

/// A test as a repo analysis lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestFigure {
    pub id: String,
    pub suite: String,
    pub name: String,
    pub runs: u64,
    pub failures: u64,
    pub flaky_runs: u64,
    pub flake_rate: f64,
}

/// The per-test part of a repo analysis, over the repo's tracked tests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RepoTestFigures {
    pub tracked: usize,
    pub failing: usize,
    pub flaky: usize,
    pub quarantined: usize,
    pub top_failing_tests: Vec<TestFigure>,
    pub top_flaky_tests: Vec<TestFigure>,
    /// Seconds of failed runs that a pass on the same commit showed to be flakes.
    pub time_lost_to_flaky_failures_seconds: f64,
}

pub fn repo_test_figures(
    states: &[TestState],
    now: DateTime<Utc>,
    settings: &FlakySettings,
) -> RepoTestFigures {
    let figure = |t: &TestState| TestFigure {
        id: t.id.clone(),
        suite: t.suite.clone(),
        name: t.name.clone(),
        runs: t.runs,
        failures: t.failures,
        flaky_runs: t.flaky_runs,
        flake_rate: (t.flake_rate() * 1000.0).round() / 1000.0,
    };
    let mut by_failures: Vec<&TestState> = states.iter().filter(|t| t.failures > 0).collect();
    by_failures.sort_by(|a, b| b.failures.cmp(&a.failures).then(a.id.cmp(&b.id)));
    let mut by_flakes: Vec<&TestState> = states.iter().filter(|t| t.flaky_runs > 0).collect();
    by_flakes.sort_by(|a, b| b.flaky_runs.cmp(&a.flaky_runs).then(a.id.cmp(&b.id)));
    RepoTestFigures {
        tracked: states.len(),
        failing: states.iter().filter(|t| t.is_failing()).count(),
        flaky: states.iter().filter(|t| t.is_flaky(now, settings)).count(),
        quarantined: states.iter().filter(|t| t.is_quarantined(now)).count(),
        top_failing_tests: by_failures
            .into_iter()
            .take(TOP_TESTS)
            .map(figure)
            .collect(),
        top_flaky_tests: by_flakes.into_iter().take(TOP_TESTS).map(figure).collect(),
        time_lost_to_flaky_failures_seconds: states
            .iter()
            .map(|t| t.time_lost_to_flakes_seconds)
            .sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test(outcome: Outcome) -> TestResult {
        TestResult {
            suite: "com.example.CartTest".into(),
            name: "adds_items".into(),
            outcome,
            duration_seconds: 2.0,
            failure: None,
        }
    }

    fn run(job: &str, commit: &str, branch: &str) -> RunContext {
        RunContext {
            provider: "gitlab".into(),
            job_id: job.into(),
            pipeline_id: Some("7".into()),
            commit: Some(commit.into()),
            branch: Some(branch.into()),
        }
    }

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + minute * 60, 0).unwrap()
    }

    fn step(
        state: Option<TestState>,
        outcome: Outcome,
        run: &RunContext,
        minute: i64,
    ) -> Option<TestState> {
        let settings = FlakySettings::default();
        let upload = format!("u{minute}");
        match apply_run(
            state.as_ref(),
            &test(outcome),
            run,
            &upload,
            at(minute),
            &settings,
        ) {
            Applied::Updated(next) => Some(*next),
            Applied::Unchanged => state,
        }
    }

    #[test]
    fn a_passing_untracked_test_writes_nothing_and_a_failure_starts_tracking() {
        let settings = FlakySettings::default();
        let r = run("1", "abc", "feature");
        let passed = apply_run(None, &test(Outcome::Passed), &r, "u", at(0), &settings);
        assert_eq!(passed, Applied::Unchanged);
        let skipped = apply_run(None, &test(Outcome::Skipped), &r, "u", at(0), &settings);
        assert_eq!(skipped, Applied::Unchanged);
        let state = step(None, Outcome::Failed, &r, 0).unwrap();
        assert_eq!((state.runs, state.failures, state.flaky_runs), (1, 1, 0));
        assert_eq!(state.state(at(1), &settings), TestStateName::Failing);
        assert_eq!(state.last_job.as_deref(), Some("gitlab/1"));
        assert_eq!(state.id, test(Outcome::Failed).id());
    }

    #[test]
    fn the_same_upload_applies_once() {
        let settings = FlakySettings::default();
        let r = run("1", "abc", "feature");
        let state = step(None, Outcome::Failed, &r, 0).unwrap();
        let again = apply_run(
            Some(&state),
            &test(Outcome::Failed),
            &r,
            "u0",
            at(5),
            &settings,
        );
        assert_eq!(again, Applied::Unchanged);
        // The same file in another job is another run.
        let other = run("2", "abc", "feature");
        let Applied::Updated(next) = apply_run(
            Some(&state),
            &test(Outcome::Failed),
            &other,
            "u0",
            at(5),
            &settings,
        ) else {
            panic!("another job's run counts");
        };
        assert_eq!(next.runs, 2);
    }

    #[test]
    fn monitor_one_same_commit_failed_and_passed() {
        let settings = FlakySettings::default();
        let state = step(None, Outcome::Failed, &run("1", "abc", "feature"), 0);
        let state = state.unwrap();
        assert!(!state.is_flaky(at(1), &settings));
        // A pass on another commit is no evidence.
        let state = step(Some(state), Outcome::Passed, &run("2", "def", "feature"), 1).unwrap();
        assert!(!state.is_flaky(at(2), &settings));
        // The retry of the first job's commit passes: flaky.
        let state = step(Some(state), Outcome::Passed, &run("3", "abc", "feature"), 2).unwrap();
        assert!(state.is_flaky(at(3), &settings));
        assert_eq!(state.flaky_evidence, Some(FlakyEvidence::SameCommit));
        assert_eq!((state.runs, state.failures, state.flaky_runs), (3, 1, 1));
        assert!((state.flake_rate() - 1.0 / 3.0).abs() < 1e-9);
        assert!((state.time_lost_to_flakes_seconds - 2.0).abs() < 1e-9);
        assert!(state.history[2].flake, "the failure is marked as a flake");
        // Another pass of the same commit finds no new lost time.
        let state = step(Some(state), Outcome::Passed, &run("4", "abc", "feature"), 3).unwrap();
        assert!((state.time_lost_to_flakes_seconds - 2.0).abs() < 1e-9);
        assert_eq!(state.flaky_runs, 2);
        assert_eq!(state.state(at(3), &settings), TestStateName::Flaky);
        // The flag ends `track_days` after the last evidence.
        let later = at(3) + Duration::days(31);
        assert!(!state.is_flaky(later, &settings));
    }

    #[test]
    fn monitor_two_rerun_within_run() {
        let settings = FlakySettings::default();
        let state = step(None, Outcome::Flaky, &run("1", "abc", "main"), 0).unwrap();
        assert_eq!(state.flaky_evidence, Some(FlakyEvidence::RerunWithinRun));
        assert_eq!((state.runs, state.failures, state.flaky_runs), (1, 0, 1));
        assert!(state.matches(TestStateName::Flaky, at(1), &settings));
        assert!(!state.matches(TestStateName::Failing, at(1), &settings));
    }

    #[test]
    fn monitor_three_flips_on_the_default_branch_only() {
        let settings = FlakySettings::default();
        let outcomes = [
            Outcome::Failed,
            Outcome::Passed,
            Outcome::Failed,
            Outcome::Passed,
        ];
        // Each run on its own commit, so monitor 1 stays silent.
        let mut feature = None;
        let mut main = None;
        for (minute, outcome) in outcomes.iter().enumerate() {
            let commit = format!("c{minute}");
            feature = step(
                feature,
                *outcome,
                &run("f", &commit, "feature"),
                minute as i64,
            );
            main = step(main, *outcome, &run("m", &commit, "main"), minute as i64);
        }
        let (feature, main) = (feature.unwrap(), main.unwrap());
        // Three flips is more than the default threshold of two, on main only.
        assert!(!feature.is_flaky(at(5), &settings));
        assert!(main.is_flaky(at(5), &settings));
        assert_eq!(main.flaky_evidence, Some(FlakyEvidence::Flips));
        // Two flips are not enough.
        let mut two = None;
        for (minute, outcome) in outcomes[..3].iter().enumerate() {
            two = step(
                two,
                *outcome,
                &run("m", &format!("c{minute}"), "main"),
                minute as i64,
            );
        }
        assert!(!two.unwrap().is_flaky(at(5), &settings));
    }

    #[test]
    fn quarantine_lift_candidate_after_passes_in_a_row_on_main() {
        let settings = FlakySettings {
            lift_after_passes: 3,
            ..FlakySettings::default()
        };
        let mut state = step(None, Outcome::Failed, &run("0", "c0", "main"), 0).unwrap();
        state.quarantine = Some(Quarantine {
            reason: "flaky network".into(),
            owner: "team-a".into(),
            since: at(0),
            expires_at: None,
        });
        assert_eq!(
            state.tracked_until(&settings),
            None,
            "kept while quarantined"
        );
        let mut state = Some(state);
        for minute in 1..=2 {
            state = step(
                state,
                Outcome::Passed,
                &run("j", &format!("c{minute}"), "main"),
                minute,
            );
        }
        // Passes on other branches do not count.
        state = step(state, Outcome::Passed, &run("x", "c9", "feature"), 3);
        let state_now = state.clone().unwrap();
        assert_eq!(state_now.default_branch_pass_streak, 2);
        assert!(!state_now.lift_candidate(at(4), &settings));
        let state = step(state, Outcome::Passed, &run("j", "c4", "main"), 4).unwrap();
        assert!(state.lift_candidate(at(5), &settings));
        assert_eq!(state.state(at(5), &settings), TestStateName::Quarantined);
        // Its results are still recorded.
        assert_eq!(state.runs, 5);
        assert_eq!(state.history.len(), 5);
        assert_eq!(state.history[0].job_id, "j");
    }

    #[test]
    fn repo_figures_rank_failing_and_flaky_tests() {
        let settings = FlakySettings::default();
        let a = step(None, Outcome::Failed, &run("1", "c1", "feature"), 0);
        let a = step(a, Outcome::Passed, &run("2", "c1", "feature"), 1).unwrap();
        let mut b = TestState::new(&test(Outcome::Failed), at(0));
        b.id = "b".into();
        b.failures = 3;
        b.runs = 3;
        b.last_outcome = Some(Outcome::Failed);
        let figures = repo_test_figures(&[a.clone(), b], at(2), &settings);
        assert_eq!((figures.tracked, figures.failing, figures.flaky), (2, 1, 1));
        assert_eq!(figures.top_failing_tests[0].id, "b");
        assert_eq!(figures.top_flaky_tests.len(), 1);
        assert_eq!(figures.top_flaky_tests[0].id, a.id);
        assert!((figures.time_lost_to_flaky_failures_seconds - 2.0).abs() < 1e-9);
    }

    #[test]
    fn history_is_bounded_newest_first() {
        let mut state = None;
        for minute in 0..(HISTORY_KEPT as i64 + 5) {
            state = step(
                state,
                Outcome::Failed,
                &run(&minute.to_string(), "c", "b"),
                minute,
            );
        }
        let state = state.unwrap();
        assert_eq!(state.history.len(), HISTORY_KEPT);
        assert_eq!(state.history[0].job_id, (HISTORY_KEPT + 4).to_string());
        assert_eq!(state.runs, HISTORY_KEPT as u64 + 5);
    }

    #[test]
    fn infrastructure_failure_guard() {
        let settings = FlakySettings::default();
        let totals = |tests, failed| super::super::Totals {
            tests,
            failed,
            passed: tests - failed,
            ..Default::default()
        };
        assert!(settings.is_infrastructure_failure(&totals(100, 81)));
        assert!(!settings.is_infrastructure_failure(&totals(100, 80)));
        // A tiny report is not judged.
        assert!(!settings.is_infrastructure_failure(&totals(3, 3)));
    }
}
