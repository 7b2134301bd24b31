//! Failure triage without any LLM: which lines of a raw job log say why the job failed, what
//! kind of failure it is, which tests failed, in which step, and a fingerprint that stays the
//! same when the same failure happens again.
//!
//! The pipeline, one module per stage:
//! - [`scan`]: one pass numbers the lines ([`lines`]); the [`prefilter`] keeps the lines that
//!   hold one of its literals or start a shell step, and [`scoring`] reads the words of those
//!   ([`vocabulary`], found by the automaton of [`words`]); [`steps`] tells which start a step
//!   and which say a step failed.
//! - [`excerpt`]: the first failing step's tail, reaching up through the report above it, the
//!   best block of evidence lines and the first failed test's report.
//! - describe: the failed tests ([`failed_tests`]), the failing step, the [`category`], the
//!   key lines and the [`fingerprint`].
//!
//! Speed comes from the prefilter (a SIMD literal search over the whole log): only the lines
//! it keeps are scored, four at a time, and decoded only when they matter. Besides that search,
//! the log is read once more, 16 bytes at a time, to count its lines and find its shell steps.
//!
//! How the excerpt is chosen: a job fails at the end of a step (`The command "…" exited with
//! 1.`, `Process completed with exit code 1`, `ERROR: Job failed`), and the failing command's
//! output is where tools say why — so the first failing step is shown whole when it printed
//! up to 40 lines, else its last 24 lines, through the line that says it failed; from there
//! the excerpt reaches up through error lines fewer than 40 lines apart (a test run's report
//! of each failure above its summary), until a quiet stretch, and takes in the line heading
//! the report so reached. A retried command is shown through its last attempt; a command
//! echoed over several lines fails where its echo starts; a log with errors that stops without
//! saying a step failed (a killed or truncated job) fails at its end. Lines that hold error
//! words are grouped into blocks, ranked by their words and by how close they end to a failing
//! step's end; the best block and the first failed test's report (each widened to its header
//! above and its stack-trace-like lines below) and a few lines of runner-up blocks complete the
//! excerpt, and ranges less than 8 lines apart are joined.

mod category;
mod excerpt;
mod failed_tests;
mod fingerprint;
mod last_success;
pub mod lines;
mod prefilter;
mod scan;
mod scoring;
mod steps;
mod text;
mod tuning;
mod vocabulary;
mod words;

#[cfg(test)]
mod tests;

pub use fingerprint::normalise_line;
pub use last_success::LastSuccess;
pub use prefilter::prefilter_matches;
pub use tuning::Tuning;
pub use vocabulary::PREFILTER;

use crate::redact::Redacted;
use excerpt::Span;
use last_success::Comparison;
use scan::{Candidate, Scan};
use serde::Serialize;

/// A run of lines, 1-based and inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct LineRange {
    pub start_line: usize,
    pub end_line: usize,
}

impl LineRange {
    pub fn contains(&self, line: usize) -> bool {
        (self.start_line..=self.end_line).contains(&line)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Compile,
    Test,
    Lint,
    Dependency,
    Infrastructure,
    Configuration,
    Unknown,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Compile => "compile",
            Category::Test => "test",
            Category::Lint => "lint",
            Category::Dependency => "dependency",
            Category::Infrastructure => "infrastructure",
            Category::Configuration => "configuration",
            Category::Unknown => "unknown",
        }
    }
}

/// What the triage found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Triage {
    pub excerpt: Vec<LineRange>,
    pub category: Category,
    /// For infrastructure failures: `timeout`, `oom` or `runner`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub infrastructure: Option<&'static str>,
    pub failed_tests: Vec<Redacted>,
    /// The step or section that failed, when the log names it.
    pub failing_step: Option<Redacted>,
    pub fingerprint: String,
    /// The lines that weighed most, as a reader sees them (at most a few).
    pub key_lines: Vec<Redacted>,
    pub total_lines: usize,
    /// How the last green run of the job was used, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_success: Option<LastSuccessUse>,
}

/// What the comparison with the last green run did (counts only: nothing of either log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct LastSuccessUse {
    /// Whether it shaped the excerpt: not when the two logs have too little in common to
    /// be runs of the same job.
    pub used: bool,
    /// Lines of this log that show something and that the green run printed too.
    pub lines_seen: usize,
    /// Lines of this log that show something the green run did not print.
    pub lines_new: usize,
    /// Evidence lines left out because the green run printed them too.
    pub evidence_dropped: usize,
}

impl Triage {
    /// Whether the excerpt shows 1-based line `line`.
    pub fn shows(&self, line: usize) -> bool {
        self.excerpt.iter().any(|range| range.contains(line))
    }
}

/// Triage of a raw job log: scan, choose the excerpt, describe it.
pub fn triage(log: &[u8]) -> Triage {
    triage_tuned(log, None, &Tuning::default())
}

/// Triage of a failed job's log next to the log of the job's last successful run.
pub fn triage_with_last_success(log: &[u8], last_success: &LastSuccess) -> Triage {
    triage_tuned(log, Some(last_success), &Tuning::default())
}

/// The triage with its tuned constants given (see [`Tuning`]).
pub fn triage_tuned(log: &[u8], last_success: Option<&LastSuccess>, tuning: &Tuning) -> Triage {
    let scan = scan::scan(log);
    let report_lines: Vec<(usize, usize)> = scan
        .test_reports
        .iter()
        .map(|report| (report.start, report.end))
        .collect();
    let failed_tests = Redacted::lines(failed_tests::failed_tests(log, &report_lines));
    let names_failed_tests = !failed_tests.is_empty();
    let alone = |failed_tests| {
        let excerpt = excerpt::build(
            log,
            &scan,
            &scan.candidates,
            names_failed_tests,
            None,
            tuning,
        );
        describe(log, &scan, &scan.candidates, &excerpt, failed_tests)
    };
    let Some(green) = last_success else {
        return alone(failed_tests);
    };
    let (comparison, mut note) = compare(log, green, tuning);
    let Some(comparison) = comparison else {
        let mut triage = alone(failed_tests);
        triage.last_success = Some(note);
        return triage;
    };
    let evidence = excerpt::evidence(&scan, Some(&comparison));
    note.evidence_dropped = scan.candidates.len() - evidence.len();
    let excerpt = excerpt::build(
        log,
        &scan,
        &evidence,
        names_failed_tests,
        Some(&comparison),
        tuning,
    );
    let mut triage = describe(log, &scan, &evidence, &excerpt, failed_tests.clone());
    // The fingerprint is the one the log has alone, so that a failure keeps its fingerprint
    // whether or not a green run of its job is known (reuse and recurring failures go by it).
    triage.fingerprint = alone(failed_tests).fingerprint;
    triage.last_success = Some(note);
    triage
}

/// The comparison with the green run when the two logs have enough in common, and what it is.
fn compare(
    log: &[u8],
    green: &LastSuccess,
    tuning: &Tuning,
) -> (Option<Comparison>, LastSuccessUse) {
    let comparison = Comparison::new(log, green);
    let (seen, new) = comparison.seen_and_new();
    let used = seen > 0 && seen as f64 >= tuning.min_seen_share * (seen + new) as f64;
    let note = LastSuccessUse {
        used,
        lines_seen: seen,
        lines_new: new,
        evidence_dropped: 0,
    };
    (used.then_some(comparison), note)
}

/// What the excerpt tells: its failing step, category, key lines and fingerprint.
fn describe(
    log: &[u8],
    scan: &Scan<'_>,
    evidence: &[Candidate],
    spans: &[Span],
    failed_tests: Vec<Redacted>,
) -> Triage {
    let excerpt: Vec<LineRange> = spans.iter().map(|span| span.lines).collect();
    let key = fingerprint::key_lines(log, evidence, &excerpt);
    let failing_step = excerpt
        .first()
        .and_then(|first| failing_step_name(log, scan, first.start_line));
    let (category, infrastructure) = category::categorise(
        &category::category_words_in(log, &scan.index, spans),
        &failed_tests,
    );
    Triage {
        fingerprint: fingerprint::fingerprint(&key, category),
        excerpt,
        category,
        infrastructure,
        failed_tests,
        failing_step,
        key_lines: key.into_iter().take(5).collect(),
        total_lines: scan.total_lines(),
        last_success: None,
    }
}

/// The name of the step the excerpt starts in (at most 200 characters).
fn failing_step_name(log: &[u8], scan: &Scan<'_>, first_line: usize) -> Option<Redacted> {
    let step = scan
        .steps
        .iter()
        .rev()
        .find(|step| step.line <= first_line)?;
    let text = lines::visible_text(&log[step.start..step.end]);
    steps::step_name(&text).map(|name| Redacted::new(&name.chars().take(200).collect::<String>()))
}
