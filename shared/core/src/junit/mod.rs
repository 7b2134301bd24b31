//! JUnit XML test reports: a streaming, tolerant parser ([`parse`]), the counting rules that
//! turn test cases into per-test results, per-test history and flakiness ([`history`]), and
//! the ingest use case ([`ingest`]).
//!
//! Counting, as the widely used publish-unit-test-result action counts: a test is one
//! (classname, or the enclosing suite's name when there is none; name) pair. When a document
//! holds several cases for one pair, the pair's result is the worst of them (error > failure >
//! flaky > passed > skipped). A case whose failures were rerun and that finally passed
//! (Surefire's `flakyFailure`/`flakyError`) is *flaky*; a case with `rerunFailure`s and a
//! `failure` failed on every rerun. `status="disabled"` (and googletest's `notrun`) count as
//! skipped. A document with suites but no cases takes its totals from the suite attributes.

pub mod evidence;
pub mod gitlab;
pub mod history;
pub mod ingest;
pub mod parse;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use parse::{JunitError, MAX_REPORT_BYTES, parse_report, parse_report_bytes};

/// The outcome of one test in one report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Skipped,
    Passed,
    /// Failed, then passed when the framework reran it within the same run.
    Flaky,
    Failed,
    Error,
}

impl Outcome {
    /// How bad an outcome is, for "the worst of the cases" of one test.
    fn severity(self) -> u8 {
        match self {
            Outcome::Skipped => 0,
            Outcome::Passed => 1,
            Outcome::Flaky => 2,
            Outcome::Failed => 3,
            Outcome::Error => 4,
        }
    }

    pub fn worst(self, other: Outcome) -> Outcome {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }

    /// Failed or errored: evidence against the test.
    pub fn is_failure(self) -> bool {
        matches!(self, Outcome::Failed | Outcome::Error)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Skipped => "skipped",
            Outcome::Passed => "passed",
            Outcome::Flaky => "flaky",
            Outcome::Failed => "failed",
            Outcome::Error => "error",
        }
    }
}

/// Counts of tests by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub tests: u64,
    pub passed: u64,
    pub failed: u64,
    pub errors: u64,
    pub skipped: u64,
    pub flaky: u64,
}

impl Totals {
    pub fn count(&mut self, outcome: Outcome) {
        self.tests += 1;
        match outcome {
            Outcome::Skipped => self.skipped += 1,
            Outcome::Passed => self.passed += 1,
            Outcome::Flaky => self.flaky += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::Error => self.errors += 1,
        }
    }

    pub fn add(&mut self, other: &Totals) {
        self.tests += other.tests;
        self.passed += other.passed;
        self.failed += other.failed;
        self.errors += other.errors;
        self.skipped += other.skipped;
        self.flaky += other.flaky;
    }

    /// Failed plus errored tests.
    pub fn failing(&self) -> u64 {
        self.failed + self.errors
    }
}

/// What a failure said: its message, type and the first lines of its text, redacted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The first lines of the failure's text (stack trace, assertion output).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
}

/// One test of a report: the worst of its cases.
#[derive(Debug, Clone, PartialEq)]
pub struct TestResult {
    /// The classname, or the enclosing suite's name when the case has none.
    pub suite: String,
    pub name: String,
    pub outcome: Outcome,
    /// Seconds, summed over the test's cases (missing or unreadable times count as 0).
    pub duration_seconds: f64,
    /// For failed, errored and flaky tests.
    pub failure: Option<FailureDetail>,
}

impl TestResult {
    pub fn id(&self) -> String {
        test_id(&self.suite, &self.name)
    }
}

/// A stable id of a test within a repo: 16 hex digits of SHA-256 over its suite and name
/// (short enough for URLs and skip lists; a collision among a repo's tests is negligible).
pub fn test_id(suite: &str, name: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(suite.as_bytes());
    hasher.update([0x1f]);
    hasher.update(name.as_bytes());
    hasher.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `raw` has the shape of a [`test_id`].
pub fn is_test_id(raw: &str) -> bool {
    raw.len() == 16
        && raw
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Gathers a document's cases into tests: one per (suite, name), the worst case winning.
#[derive(Debug, Default)]
pub(crate) struct TestCollector {
    tests: Vec<TestResult>,
    index: std::collections::HashMap<(String, String), usize>,
}

impl TestCollector {
    pub(crate) fn add(&mut self, case: TestResult) {
        let key = (case.suite.clone(), case.name.clone());
        match self.index.get(&key) {
            Some(&at) => {
                let test = &mut self.tests[at];
                test.duration_seconds += case.duration_seconds;
                if case.outcome.worst(test.outcome) != test.outcome {
                    test.outcome = case.outcome;
                    test.failure = case.failure;
                }
            }
            None => {
                self.index.insert(key, self.tests.len());
                self.tests.push(case);
            }
        }
    }

    /// The totals of the tests, and the tests in document order.
    pub(crate) fn finish(self) -> (Totals, Vec<TestResult>) {
        let mut totals = Totals::default();
        for test in &self.tests {
            totals.count(test.outcome);
        }
        (totals, self.tests)
    }
}

/// One parsed document.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedReport {
    pub totals: Totals,
    /// Every test, in document order (empty when the totals came from suite attributes).
    pub tests: Vec<TestResult>,
    /// SHA-256 (hex) of the document's bytes (decompressed), which makes a retried upload of
    /// the same file recognisable.
    pub digest: String,
    /// Bytes of XML read.
    pub bytes: u64,
}

impl ParsedReport {
    /// Failed and errored tests, in document order.
    pub fn failing_tests(&self) -> impl Iterator<Item = &TestResult> {
        self.tests.iter().filter(|test| test.outcome.is_failure())
    }
}
