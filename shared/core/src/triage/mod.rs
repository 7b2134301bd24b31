//! Failure triage without any LLM: which lines of a raw job log say why the job failed, what
//! kind of failure it is, which tests failed, in which step, and a fingerprint that stays the
//! same when the same failure happens again.
//!
//! Speed comes from a case-sensitive multi-literal prefilter (Aho-Corasick over the whole log,
//! SIMD-accelerated): only lines holding one of the literals are scored, four at a time, and
//! decoded only when they matter. Besides that search, the log is read once more, 16 bytes at
//! a time, to count its lines and find its shell steps (see [`lines::LineIndex`]).
//!
//! How the excerpt is chosen: a job fails at the end of a step (`The command "…" exited with
//! 1.`, `Process completed with exit code 1`, `ERROR: Job failed`), and the failing command's
//! output is where tools say why — so the first failing step is shown whole when it printed
//! up to 40 lines, else its last 24 lines, through the line that says it failed; from there
//! the excerpt reaches up through error lines fewer than 40 lines apart (a test run's report
//! of each failure above its summary), until a quiet stretch, and takes in the line heading
//! the report so reached. A retried
//! command is shown through its last attempt; a command echoed over several lines fails where
//! its echo starts; a log with errors that stops without saying a step failed (a killed or
//! truncated job) fails at its end. Lines that hold error words are grouped into blocks,
//! ranked by their words and by how close they end to a failing step's end; the best block
//! and the first failed test's report (each widened to its header above and its
//! stack-trace-like lines below) and a few lines of runner-up blocks complete the excerpt, and
//! ranges less than 8 lines apart are joined.

mod failed_tests;
pub mod lines;
mod words;

use crate::redact::Redacted;
use aho_corasick::AhoCorasick;
use lines::{LineIndex, line_bounds, next_line_start, previous_line_start};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::sync::OnceLock;
use words::WordSet;

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

/// A range being chosen, with the byte offset where its first line starts (known wherever a
/// range is made, so its text is read without counting lines again).
#[derive(Debug, Clone, Copy)]
struct Span {
    lines: LineRange,
    start: usize,
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
}

impl Triage {
    /// Whether the excerpt shows 1-based line `line`.
    pub fn shows(&self, line: usize) -> bool {
        self.excerpt.iter().any(|range| range.contains(line))
    }
}

/// The literals of the prefilter: a line is looked at only when it holds one of them (or
/// starts a shell step, found apart: see [`LineIndex`]). Case-sensitive on purpose (a
/// case-insensitive multi-pattern search is several times slower); the variants cover the
/// spellings logs use. Each is at least 4 bytes long: the SIMD search fingerprints that many,
/// and shorter literals made it match (and verify) far more often. A literal starts where its
/// first four bytes are rare in logs, as the search checks every place they occur: `med out`,
/// not `timed out` (`time` is on every Travis timing line), `_fold:start:`, not
/// `travis_fold:start:` (Travis's `travis_time:` lines), `xited wi` and `xit code`, not `exit`.
pub const PREFILTER: &[&str] = &[
    "rror",
    "RROR",
    "FAIL",
    "Fail",
    "fail",
    "atal",
    "ATAL",
    "xception",
    "Traceback",
    "ERR!",
    "\u{2715} ",
    "\u{2716} ",
    "\u{274c} ",
    "\u{2717} ",
    "\u{25cf} ",
    "panicked",
    "egmentation",
    "Killed",
    "abort",
    "No such",
    "ot found",
    "annot ",
    "ould not",
    "nable to",
    "denied",
    "med out",
    "imeout",
    "ssert",
    "ndefined",
    "xpected",
    "xited wi",
    "xit code",
    "arning",
    "Severity",
    "violation",
    "##[group]Run ",
    "on_start:",
    "_fold:start:",
];

/// How many prefilter matches a log has (for measuring the literal search alone).
pub fn prefilter_matches(log: &[u8]) -> usize {
    prefilter().every_match(log).count()
}

/// The search for the prefilter's literals: the SIMD literal searcher (Teddy) itself where the
/// processor has it, else an Aho-Corasick automaton.
enum Prefilter {
    Packed(aho_corasick::packed::Searcher),
    Automaton(AhoCorasick),
}

impl Prefilter {
    /// The first match at or after `from`, as (start, end).
    fn find_from(&self, log: &[u8], from: usize) -> Option<(usize, usize)> {
        if from >= log.len() {
            return None;
        }
        let found = match self {
            Prefilter::Packed(searcher) => {
                searcher.find_in(log, aho_corasick::Span::from(from..log.len()))
            }
            Prefilter::Automaton(automaton) => {
                automaton.find(aho_corasick::Input::new(log).span(from..log.len()))
            }
        };
        found.map(|found| (found.start(), found.end()))
    }

    /// Every match, one after another, as (start, end).
    fn every_match<'a>(&'a self, log: &'a [u8]) -> impl Iterator<Item = (usize, usize)> + 'a {
        let mut from = 0;
        std::iter::from_fn(move || {
            let (start, end) = self.find_from(log, from)?;
            from = end;
            Some((start, end))
        })
    }
}

fn prefilter() -> &'static Prefilter {
    static PREFILTER_SEARCH: OnceLock<Prefilter> = OnceLock::new();
    PREFILTER_SEARCH.get_or_init(|| {
        let packed = aho_corasick::packed::Config::new()
            .match_kind(aho_corasick::packed::MatchKind::LeftmostFirst)
            .builder()
            .extend(PREFILTER)
            .build();
        packed
            .map(Prefilter::Packed)
            .unwrap_or_else(automaton_prefilter)
    })
}

fn automaton_prefilter() -> Prefilter {
    // Leftmost-first lets the automaton use a SIMD search where it can; the standard match
    // semantics do not, and run about 3.5 times slower here.
    Prefilter::Automaton(
        AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostFirst)
            .build(PREFILTER)
            .expect("the literals are valid"),
    )
}

/// Words that make a line evidence of the failure, with their weight.
const EVIDENCE: &[(&str, i32)] = &[
    ("Traceback (most recent call last)", 8),
    ("BUILD FAILURE", 4),
    ("<<< FAILURE!", 6),
    ("<<< ERROR!", 6),
    ("--- FAIL", 6),
    ("FAIL:", 6),
    ("FAILED", 5),
    ("FAIL ", 4),
    ("Tests in error", 6),
    ("Failed tests", 6),
    ("npm ERR!", 1),
    ("error[E", 7),
    ("fatal error", 7),
    ("Exception in thread", 7),
    ("AssertionError", 7),
    ("Assertion", 4),
    ("assert", 2),
    ("make: ***", 3),
    ("error TS", 7),
    ("SyntaxError", 7),
    ("failing", 5),
    ("rake aborted", 6),
    ("aborted", 3),
    ("panicked", 7),
    ("Segmentation fault", 7),
    ("Killed", 4),
    ("ERROR", 5),
    ("Error:", 6),
    ("error:", 6),
    ("Error", 4),
    ("error", 3),
    ("FATAL", 6),
    ("Fatal", 5),
    ("fatal", 5),
    ("Exception", 5),
    ("exception", 2),
    ("Failure", 4),
    ("failure", 3),
    ("Failed", 4),
    ("failed", 4),
    ("\u{2715}", 6),
    ("\u{2716}", 6),
    ("\u{274c}", 6),
    ("\u{2717}", 5),
    ("\u{25cf} ", 5),
    ("No such file or directory", 5),
    ("No such", 3),
    ("fail:", 4),
    ("stack traceback", 5),
    ("command not found", 6),
    ("not found", 4),
    ("Cannot", 4),
    ("cannot", 4),
    ("Could not", 4),
    ("could not", 4),
    ("Unable to", 4),
    ("unable to", 4),
    ("denied", 4),
    ("timed out", 4),
    ("Timeout", 3),
    ("timeout", 3),
    ("Errno", 4),
    ("undefined", 3),
    ("Undefined", 3),
    ("expected", 2),
    ("Expected", 2),
    ("Warning:", 1),
    ("warning:", 1),
    ("Severity", 2),
    ("violation", 3),
];

/// Lines that mention an error word without reporting one.
const NOT_EVIDENCE: &[&str] = &[
    "0 errors",
    "errors: 0",
    "Errors: 0",
    "error: 0",
    "0 failed",
    "failed: 0",
    "Failures: 0, Errors: 0",
    "0 failures",
    // A compiler flag, not GHC's `Failing due to -Werror.`
    "-Werror ",
    "-Werror=",
    "error_reporting",
    "npm WARN",
    "DEPRECAT",
    "deprecat",
    "Permanently added",
    "--fail",
    "ignore-error",
    "ignore_error",
    "allow_failure",
    "onerror",
    "error.h",
    "errors.go",
    "Error.java",
    "Downloading",
    "Downloaded",
    "Collecting",
    "Requirement already",
    "Installing",
    "Compiling",
    "Fetching",
    "Progress (",
    "Receiving objects",
    "Resolving deltas",
    " PASSED",
    " passed",
    "XFAIL",
    "xfail",
    "Test-Failure",
    "continue-on-error",
    "set -e",
];

#[derive(Debug, Clone)]
struct Candidate {
    start: usize,
    end: usize,
    line: usize,
    score: i32,
}

#[derive(Debug, Clone)]
struct Step {
    line: usize,
    start: usize,
    /// Where the line ends: its name is read again only for the step that failed.
    end: usize,
}

fn failure_end_markers() -> &'static AhoCorasick {
    static MARKERS: OnceLock<AhoCorasick> = OnceLock::new();
    MARKERS.get_or_init(|| {
        AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostFirst)
            .build(FAILURE_END_MARKERS)
            .expect("the markers are valid")
    })
}

/// Where `needle` first occurs in a line. Lines are short: the places holding its first byte
/// are checked in turn, which costs less than building a substring searcher for every line.
fn find_in(text: &str, needle: &str) -> Option<usize> {
    let (&first, _) = needle.as_bytes().split_first()?;
    memchr::memchr_iter(first, text.as_bytes())
        .find(|&at| text.as_bytes()[at..].starts_with(needle.as_bytes()))
}

fn holds(text: &str, needle: &str) -> bool {
    find_in(text, needle).is_some()
}

/// Lines that end a failing step, with the step's exit.
fn is_failure_end(text: &str) -> bool {
    // Most lines hold none of the markers: one automaton pass rules them out.
    if !failure_end_markers().is_match(text) {
        return false;
    }
    let nonzero_after = |marker: &str| {
        find_in(text, marker).is_some_and(|at| {
            text[at + marker.len()..]
                .trim_start()
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_digit() && b != b'0')
        })
    };
    (holds(text, "The command \"") && nonzero_after("exited with"))
        || text.starts_with("Done. Your build exited with") && nonzero_after("exited with")
        || nonzero_after("Process completed with exit code")
        || (text.trim_start().starts_with("\" exited with") && nonzero_after("exited with"))
        || text.starts_with("ERROR: Job failed")
        || (holds(text, "The command \"") && holds(text, "\" failed"))
        || holds(text, "No output has been received in the last")
        || holds(text, "The job exceeded the maximum time limit")
}

/// The line that opens the echo of a failed command of several lines (`The command "…`),
/// as (line, start), looking back at most 300 lines from the echo's last line.
fn command_echo_start(log: &[u8], line: usize, start: usize) -> Option<(usize, usize)> {
    let mut at = start;
    for back in 1..=300 {
        at = previous_line_start(log, at)?;
        let (_, _, text) = line_at(log, at);
        if holds(&text, "The command \"") {
            return Some((line - back, at));
        }
    }
    None
}

fn step_name(text: &str) -> Option<&str> {
    let name = if let Some(command) = text.strip_prefix("$ ") {
        command
    } else if let Some(at) = find_in(text, "##[group]Run ") {
        &text[at + "##[group]Run ".len()..]
    } else if let Some(at) = find_in(text, "section_start:") {
        // section_start:<time>:<name>[collapsed=true]\r\x1b[0K<title>
        let rest = &text[at + "section_start:".len()..];
        let name = rest.split(':').nth(1)?;
        name.split(['[', '\r']).next()?
    } else if let Some(at) = find_in(text, "travis_fold:start:") {
        &text[at + "travis_fold:start:".len()..]
    } else {
        return None;
    };
    let name = name.trim();
    (!name.is_empty()).then_some(name)
}

/// Markers that make a line worth decoding: the end of a failing step, a step's start, a
/// test runner's report.
const FAILURE_END_MARKERS: &[&str] = &[
    "exited with",
    "exit code",
    "Job failed",
    "No output has been received",
    "maximum time limit",
    "\" failed",
];
const STEP_MARKERS: &[&str] = &[
    "$ ",
    "##[group]Run ",
    "section_start:",
    "travis_fold:start:",
];
const TEST_MARKERS: &[&str] = &[
    "FAIL",
    "Failing tests:",
    "Failure:",
    "Test Case '",
    "\u{2715}",
    "\u{25cf} ",
    "<<< ",
    "failing",
    "ERROR: ",
    "--- FAIL",
];

/// What one look at a line's raw bytes tells.
#[derive(Debug, Default, Clone, Copy)]
struct LineSignals {
    score: i32,
    failure_end: bool,
    step: bool,
    test_report: bool,
}

/// Every word list in one automaton, so a line is read once.
struct Scorer {
    words: WordSet,
    evidence: usize,
    noise: usize,
    failure_end: usize,
    step: usize,
}

fn scorer() -> &'static Scorer {
    static SCORER: OnceLock<Scorer> = OnceLock::new();
    SCORER.get_or_init(|| {
        let words: Vec<&str> = EVIDENCE
            .iter()
            .map(|(word, _)| *word)
            .chain(NOT_EVIDENCE.iter().copied())
            .chain(FAILURE_END_MARKERS.iter().copied())
            .chain(STEP_MARKERS.iter().copied())
            .chain(TEST_MARKERS.iter().copied())
            .collect();
        let evidence = EVIDENCE.len();
        let noise = evidence + NOT_EVIDENCE.len();
        let failure_end = noise + FAILURE_END_MARKERS.len();
        let step = failure_end + STEP_MARKERS.len();
        Scorer {
            words: WordSet::new(&words),
            evidence,
            noise,
            failure_end,
            step,
        }
    })
}

/// What the words of each line tell (lines given as byte ranges of the log). Lines longer
/// than 4,000 bytes (minified code, data dumps) are not read: they tell nothing.
fn line_signals(log: &[u8], lines: impl Iterator<Item = (usize, usize)>) -> Vec<LineSignals> {
    const LONGEST_LINE: usize = 4_000;
    let scorer = scorer();
    let haystacks: Vec<&[u8]> = lines
        .map(|(start, end)| {
            if end - start > LONGEST_LINE {
                &[][..]
            } else {
                &log[start..end]
            }
        })
        .collect();
    let mut signals = vec![LineSignals::default(); haystacks.len()];
    // The evidence words each line holds (a word counts once however often it occurs).
    let mut evidence = vec![0u128; haystacks.len()];
    let mut noisy = vec![false; haystacks.len()];
    scorer.words.each_word_in_all(&haystacks, |line, id| {
        if id < scorer.evidence {
            evidence[line] |= 1 << id;
        } else if id < scorer.noise {
            noisy[line] = true;
        } else if id < scorer.failure_end {
            signals[line].failure_end = true;
        } else if id < scorer.step {
            signals[line].step = true;
        } else {
            signals[line].test_report = true;
        }
    });
    for ((signals, mut words), noisy) in signals.iter_mut().zip(evidence).zip(noisy) {
        let (mut sum, mut strongest) = (0, 0);
        while words != 0 {
            let weight = EVIDENCE[words.trailing_zeros() as usize].1;
            sum += weight;
            strongest = strongest.max(weight);
            words &= words - 1;
        }
        // Several words on one line add up, but one strong word decides most.
        signals.score = strongest + (sum - strongest).min(4) - if noisy { 6 } else { 0 };
    }
    signals
}

/// Triage of a raw job log.
pub fn triage(log: &[u8]) -> Triage {
    let prefilter = prefilter();
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut steps: Vec<Step> = Vec::new();
    let mut failure_ends: Vec<usize> = Vec::new();
    let mut failure_end_starts: Vec<usize> = Vec::new();
    // Failure ends after which the runner retried the command.
    let mut retried: Vec<bool> = Vec::new();
    let index = LineIndex::new(log);
    let mut test_lines: Vec<(usize, usize)> = Vec::new();
    let mut test_line_numbers: Vec<usize> = Vec::new();
    // The lines to look at: those holding a prefilter literal or starting a shell step, in
    // log order, as (start, end, line number).
    let mut looked_at: Vec<(usize, usize, usize)> = Vec::new();
    let mut current_end = 0usize;
    // The prefilter's next match from a position on. Once a line is taken, the search goes
    // on from its end: other matches on the same line would change nothing.
    let match_from = |from: usize| prefilter.find_from(log, from).map(|(start, _)| start);
    let mut next_match = match_from(0);
    let mut steps_at = index.shell_steps().iter().copied().peekable();
    loop {
        // The prefilter's matches and the shell steps, in log order.
        let at = match (next_match, steps_at.peek()) {
            (Some(found), Some(&step)) if found <= step => next_match.take(),
            (_, Some(_)) => steps_at.next(),
            (Some(_), None) => next_match.take(),
            (None, None) => break,
        };
        let Some(at) = at else { break };
        if looked_at.is_empty() || at >= current_end {
            let (start, end) = line_bounds(log, at);
            current_end = end.max(start + 1);
            looked_at.push((start, end, index.line_of(start)));
        }
        if next_match.is_none_or(|found| found < current_end) {
            next_match = match_from(current_end);
        }
    }
    let signals = line_signals(log, looked_at.iter().map(|&(start, end, _)| (start, end)));
    for (&(start, end, line), signals) in looked_at.iter().zip(signals) {
        if signals.test_report {
            test_lines.push((start, end));
            test_line_numbers.push(line);
        }
        if signals.failure_end || signals.step {
            let text = lines::visible_text(&log[start..end]);
            if signals.failure_end && is_failure_end(&text) {
                // A command of several lines is echoed whole before `" exited with 1.`: its
                // failure starts at `The command "`.
                let (line, start) = if text.trim_start().starts_with('"') {
                    command_echo_start(log, line, start).unwrap_or((line, start))
                } else {
                    (line, start)
                };
                failure_ends.push(line);
                failure_end_starts.push(start);
                retried.push(holds(&text, "Retrying"));
                continue;
            }
            if signals.step && step_name(&text).is_some() {
                steps.push(Step { line, start, end });
                continue;
            }
        }
        if signals.score > 0 {
            candidates.push(Candidate {
                start,
                end,
                line,
                score: signals.score,
            });
        }
    }
    let total_lines = index.total_lines();
    // Output before the first step (machine and tool banners) rarely says why a job failed.
    let first_step = steps.first().map_or(0, |step| step.line);
    let mut excerpt_blocks = choose_blocks(&candidates, &failure_ends, total_lines, first_step);
    let failed_tests = Redacted::lines(failed_tests::failed_tests(log, &test_lines));
    // A failed test's report is always shown, however far from the step's end it is (a test
    // run's summary at the end names the test but not why it failed).
    let mut always_shown = 1;
    if !failed_tests.is_empty()
        // The first report in the log: later ones are usually the run's summary.
        && let Some(at) = test_line_numbers.iter().find_map(|&line| {
            excerpt_blocks
                .iter()
                .position(|block| (block.first..=block.last).contains(&line))
        })
        && at > 0
    {
        let block = excerpt_blocks.remove(at);
        excerpt_blocks.insert(1, block);
        always_shown = 2;
    }
    // Beside those, only blocks nearly as telling as the best.
    let bar = excerpt_blocks
        .first()
        .map_or(0.0, |best| best.rank * RUNNER_UP_SHARE);
    let mut place = 0;
    excerpt_blocks.retain(|block| {
        place += 1;
        place <= always_shown || block.rank >= bar
    });
    let mut excerpt = expand(
        log,
        &candidates,
        &excerpt_blocks,
        always_shown,
        &failure_ends,
        total_lines,
    );
    // A log with errors that stops without saying a step failed (a killed or truncated job)
    // ends where its last step failed.
    let step_ends: Vec<(usize, usize)> = if failure_ends.is_empty() && !candidates.is_empty() {
        vec![(total_lines + 1, log.len())]
    } else {
        // A retried command fails again: its attempts are shown up to the last one.
        let mut shown = 0;
        let mut ends = Vec::new();
        for ((&line, &start), &again) in failure_ends.iter().zip(&failure_end_starts).zip(&retried)
        {
            if shown == FAILING_STEPS_SHOWN {
                break;
            }
            ends.push((line, start));
            shown += usize::from(!again);
        }
        ends
    };
    for (end_line, end_start) in step_ends {
        if let Some(mut tail) = failing_step_tail(log, &steps, end_line, end_start, total_lines) {
            reach_up_through_evidence(log, &mut tail, &candidates);
            excerpt.push(tail);
        }
    }
    let spans = merge(excerpt);
    let excerpt: Vec<LineRange> = spans.iter().map(|span| span.lines).collect();
    let key = key_lines(log, &candidates, &excerpt);
    let failing_step = excerpt.first().and_then(|first| {
        steps
            .iter()
            .rev()
            .find(|step| step.line <= first.start_line)
            .and_then(|step| {
                let text = lines::visible_text(&log[step.start..step.end]);
                step_name(&text)
                    .map(|name| Redacted::new(&name.chars().take(200).collect::<String>()))
            })
    });
    let (category, infrastructure) =
        categorise(&category_words_in(log, &index, &spans), &failed_tests);
    Triage {
        fingerprint: fingerprint(&key, category),
        excerpt,
        category,
        infrastructure,
        failed_tests,
        failing_step,
        key_lines: key.into_iter().take(5).collect(),
        total_lines,
    }
}

/// Lines shown from the end of the failing step's output.
const STEP_TAIL_LINES: usize = 24;
/// The failing steps whose last lines are shown (a job may run on after a failure).
const FAILING_STEPS_SHOWN: usize = 1;
/// A failing step's output up to this long is shown whole.
const SHORT_STEP_LINES: usize = 40;
/// The failing step's tail reaches up through error lines fewer than this many lines apart.
const TAIL_REACH_GAP: usize = 40;
/// ... and at most this far above where it started (a bound for logs full of error words;
/// the longest labelled LogChunks report reached this way runs about 3,000 lines).
const TAIL_REACH_LINES: usize = 5_000;

/// The end of the first failing step's output: the last lines before it failed, which is
/// where most tools print why (even in words no keyword list knows, such as a linter's
/// `README.md:12: Line longer than 80 characters`). A short step is shown whole.
fn failing_step_tail(
    log: &[u8],
    steps: &[Step],
    end_line: usize,
    end_start: usize,
    total: usize,
) -> Option<Span> {
    let (step_line, step_start) = steps
        .iter()
        .rev()
        .find(|step| step.line < end_line)
        .map_or((0, 0), |step| (step.line, step.start));
    let whole_step = end_line - step_line <= SHORT_STEP_LINES;
    let mut at = end_start;
    let mut line = end_line;
    let mut last_content: Option<usize> = None;
    let mut first_content = (end_line, end_start);
    let mut content = 0;
    while let Some(previous) = previous_line_start(log, at) {
        line -= 1;
        at = previous;
        if line <= step_line {
            break;
        }
        let (_, _, text) = line_at(log, at);
        let blank = text.trim().is_empty();
        let boundary = !blank && is_boundary(&text);
        if blank || boundary {
            if last_content.is_some() && boundary && content >= STEP_TAIL_LINES {
                break;
            }
            continue;
        }
        last_content.get_or_insert(line);
        first_content = (line, at);
        content += 1;
        // A short step is shown from its command: once it has shown any output, the rest of
        // the walk would change nothing.
        if (!whole_step && content >= STEP_TAIL_LINES) || (whole_step && step_line > 0) {
            break;
        }
    }
    // A short step is shown with its command, which often names what failed.
    if whole_step && step_line > 0 {
        first_content = (step_line, step_start);
    }
    // The failure's own line (`The command "…" exited with 1.`) closes the range.
    let last = if end_line <= total {
        end_line
    } else {
        last_content?
    };
    last_content.map(|_| Span {
        lines: LineRange {
            start_line: first_content.0,
            end_line: last,
        },
        start: first_content.1,
    })
}

/// Widens a failing step's tail up through the error lines above it, as long as each is
/// fewer than `TAIL_REACH_GAP` lines above the last: a tool's report of why it failed often
/// runs far above its last lines (each failed test's details, then the run's summary), and
/// while error lines keep coming, the report goes on. A quiet stretch ends it. A report
/// reached this way is shown with the line that heads it (the test case or suite above its
/// first failure, up to three blank lines between included).
fn reach_up_through_evidence(log: &[u8], tail: &mut Span, candidates: &[Candidate]) {
    let reached_from = tail.lines.start_line;
    let mut above = candidates.partition_point(|c| c.line < tail.lines.start_line);
    while let Some(candidate) = above.checked_sub(1).map(|at| &candidates[at]) {
        if candidate.line + TAIL_REACH_GAP < tail.lines.start_line
            || candidate.line + TAIL_REACH_LINES < reached_from
        {
            break;
        }
        tail.lines.start_line = candidate.line;
        tail.start = candidate.start;
        above -= 1;
    }
    if tail.lines.start_line == reached_from {
        return;
    }
    let (mut line, mut at) = (tail.lines.start_line, tail.start);
    // Over a few blank lines at most.
    for _ in 0..4 {
        let Some(previous) = previous_line_start(log, at) else {
            break;
        };
        let (_, _, text) = line_at(log, previous);
        if is_boundary(&text) {
            break;
        }
        (line, at) = (line - 1, previous);
        if !text.trim().is_empty() {
            tail.lines.start_line = line;
            tail.start = at;
            break;
        }
    }
}

/// A group of evidence lines close together.
#[derive(Debug, Clone, Copy)]
struct Block {
    first: usize,
    last: usize,
    /// Index range into the candidates.
    from: usize,
    to: usize,
    rank: f64,
}

const BLOCK_GAP: usize = 3;
/// A block beside the best one must rank at least this share of it.
const RUNNER_UP_SHARE: f64 = 0.1;
/// Lines of error blocks shown beside the best block and the failing step.
const LINE_BUDGET: usize = 5;
/// Ranges closer than this are shown as one (the lines between belong to the report).
const MERGE_GAP: usize = 8;
/// Plain (unindented) lines that may follow a runner-up block in its paragraph.
const RUNNER_UP_PLAIN_LINES: usize = 3;

fn choose_blocks(
    candidates: &[Candidate],
    failure_ends: &[usize],
    total: usize,
    first_step: usize,
) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    for (index, candidate) in candidates.iter().enumerate() {
        match blocks.last_mut() {
            Some(block)
                if candidate.line <= block.last + BLOCK_GAP
                    && !failure_ends
                        .iter()
                        .any(|&end| end > block.last && end < candidate.line) =>
            {
                block.last = candidate.line;
                block.to = index + 1;
            }
            _ => blocks.push(Block {
                first: candidate.line,
                last: candidate.line,
                from: index,
                to: index + 1,
                rank: 0.0,
            }),
        }
    }
    for block in &mut blocks {
        let lines = &candidates[block.from..block.to];
        let best = lines.iter().map(|c| c.score).max().unwrap_or(0) as f64;
        let sum: f64 = lines.iter().map(|c| c.score.min(8) as f64).sum();
        let words = best * 3.0 + sum.min(15.0);
        // Where the failing step ends: the first failure end after the block, else the log's end.
        let end = failure_ends
            .iter()
            .copied()
            .find(|&end| end > block.last)
            .unwrap_or(total + 1);
        let distance = end.saturating_sub(block.last) as f64;
        let closeness = 1.0 / (1.0 + distance / 25.0);
        // Blocks after the last failure end are clean-up output, rarely the cause.
        let after_all = failure_ends.last().is_some_and(|&last| block.first > last);
        let before_steps = block.last < first_step;
        block.rank = words * (0.25 + closeness) * if after_all || before_steps { 0.2 } else { 1.0 };
    }
    let mut ranked = blocks;
    ranked.sort_by(|a, b| b.rank.total_cmp(&a.rank));
    ranked
}

/// Lines that continue a report: stack frames, indented detail, carets.
fn continues(text: &str) -> bool {
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return false;
    }
    text.starts_with([' ', '\t'])
        || trimmed.starts_with("at ")
        || trimmed.starts_with("Caused by")
        || trimmed.starts_with("...")
        || trimmed.starts_with('|')
        || trimmed.starts_with('^')
        || trimmed.starts_with('~')
        || trimmed.starts_with("File \"")
        || trimmed.starts_with("E ")
        || trimmed.starts_with('>')
}

/// Lines that close a step or section: an excerpt does not run past them.
fn is_boundary(text: &str) -> bool {
    let trimmed = text.trim();
    trimmed.starts_with("travis_time:end")
        || trimmed.starts_with("travis_fold:end")
        || trimmed.starts_with("travis_fold:start")
        || trimmed.starts_with("travis_time:start")
        || holds_section_marker(trimmed)
        || trimmed.starts_with("##[endgroup]")
        || trimmed.starts_with("##[group]")
        || trimmed.starts_with("$ ")
        || is_failure_end(trimmed)
}

/// Whether a line holds GitLab's `section_start:` or `section_end:`.
fn holds_section_marker(text: &str) -> bool {
    static SECTION: OnceLock<memchr::memmem::Finder<'static>> = OnceLock::new();
    let finder = SECTION.get_or_init(|| memchr::memmem::Finder::new("section_"));
    finder.find_iter(text.as_bytes()).any(|at| {
        let rest = &text.as_bytes()[at + "section_".len()..];
        rest.starts_with(b"end:") || rest.starts_with(b"start:")
    })
}

/// Lines read forward or backward from a position, as (start, end, visible text).
fn line_at(log: &[u8], at: usize) -> (usize, usize, String) {
    let (start, end) = line_bounds(log, at);
    (start, end, lines::visible_text(&log[start..end]))
}

/// The ranges shown for the ranked blocks: the first `always_shown` whatever their size, the
/// rest within the line budget.
fn expand(
    log: &[u8],
    candidates: &[Candidate],
    blocks: &[Block],
    always_shown: usize,
    failure_ends: &[usize],
    total: usize,
) -> Vec<Span> {
    let mut ranges: Vec<Span> = Vec::new();
    let mut used = 0usize;
    for (rank, block) in blocks.iter().enumerate() {
        if rank >= always_shown && used >= LINE_BUDGET {
            break;
        }
        let stop = failure_ends
            .iter()
            .copied()
            .find(|&end| end > block.last)
            .unwrap_or(total + 1);
        // Backward: the report's header above indented detail (a test's title above its
        // error, an exception above its frames), then one line of lead-in.
        let mut first = block.first;
        let mut start = candidates[block.from].start;
        let mut lead_in = 1;
        let mut steps_back = 0;
        let mut text = line_at(log, start).2;
        loop {
            let indented = continues(&text);
            let Some(previous) = previous_line_start(log, start) else {
                break;
            };
            let (p_start, _, p_text) = line_at(log, previous);
            if p_text.trim().is_empty() || is_boundary(&p_text) || steps_back >= 30 {
                break;
            }
            if !indented {
                if lead_in == 0 {
                    break;
                }
                lead_in -= 1;
            }
            start = p_start;
            text = p_text;
            first -= 1;
            steps_back += 1;
        }
        // Forward: to the end of the failing step when it is near, else through the
        // stack-trace-like lines that follow.
        let near_end = stop.saturating_sub(block.last) <= if rank < always_shown { 40 } else { 15 };
        let budget = if rank < always_shown { 150 } else { 15 };
        let mut last = block.last;
        let mut at = next_line_start(log, candidates[block.to - 1].end);
        let mut trailing_blank = 0;
        // Plain lines of the same paragraph (no two blank lines in a row) also follow a
        // runner-up block, a few.
        let mut plain_left = if rank < always_shown {
            0
        } else {
            RUNNER_UP_PLAIN_LINES
        };
        for _ in 0..budget {
            if at >= log.len() || last + 1 >= stop {
                break;
            }
            let (_, l_end, text) = line_at(log, at);
            if is_boundary(&text) {
                break;
            }
            if text.trim().is_empty() {
                trailing_blank += 1;
                if trailing_blank > 1 && !near_end {
                    break;
                }
            } else if near_end || continues(&text) {
                trailing_blank = 0;
            } else if plain_left > 0 {
                plain_left -= 1;
                trailing_blank = 0;
            } else {
                break;
            }
            last += 1;
            at = next_line_start(log, l_end);
        }
        last -= trailing_blank.min(last - block.last);
        let size = last - first + 1;
        if rank >= always_shown && used + size > LINE_BUDGET + 10 {
            continue;
        }
        used += size;
        ranges.push(Span {
            lines: LineRange {
                start_line: first,
                end_line: last,
            },
            start,
        });
    }
    merge(ranges)
}

/// Ranges in log order, those less than `MERGE_GAP` lines apart joined.
fn merge(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_by_key(|span| span.lines.start_line);
    let mut merged: Vec<Span> = Vec::new();
    for span in spans {
        match merged.last_mut() {
            Some(last) if span.lines.start_line <= last.lines.end_line + MERGE_GAP => {
                last.lines.end_line = last.lines.end_line.max(span.lines.end_line);
            }
            _ => merged.push(span),
        }
    }
    merged
}

/// The highest-scoring evidence lines inside the excerpt, in log order.
fn key_lines(log: &[u8], candidates: &[Candidate], excerpt: &[LineRange]) -> Vec<Redacted> {
    let mut inside: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| excerpt.iter().any(|range| range.contains(c.line)))
        .collect();
    inside.sort_by(|a, b| b.score.cmp(&a.score).then(a.line.cmp(&b.line)));
    inside.truncate(5);
    inside.sort_by_key(|c| c.line);
    let texts = inside
        .iter()
        .map(|c| lines::visible_text(&log[c.start..c.end]).trim().to_string())
        .collect();
    Redacted::lines(texts)
}

/// Which groups of category words the excerpt holds, read from its bytes: at most 64 KB,
/// taken from its end (where the job failed) when the excerpt is longer. The words are plain
/// ASCII without line breaks, so a line break ends any word in progress and the text is
/// walked in four pieces cut at line breaks, at once, without being cut into lines; only
/// pieces holding colour codes are copied, without them.
fn category_words_in(
    log: &[u8],
    index: &LineIndex,
    excerpt: &[Span],
) -> [bool; CATEGORY_WORDS.len()] {
    const BUDGET: usize = 64 * 1024;
    let (finder, groups) = category_finder();
    // The spans' bytes, from the last span backwards, within the budget.
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    let mut left = BUDGET;
    for span in excerpt.iter().rev() {
        let end = index.line_end(span.lines.end_line).max(span.start);
        // Over budget: only the lines that end in the last `left` bytes.
        let start = if end - span.start > left {
            let cut = end - left;
            memchr::memchr2(b'\n', b'\r', &log[cut..end])
                .map_or(end, |at| next_line_start(log, cut + at).min(end))
        } else {
            span.start
        };
        ranges.push((start, end));
        left -= end - start;
        if left == 0 || start > span.start {
            break;
        }
    }
    // Four pieces of about the same size (at least 512 bytes), one for each lane of the walk.
    let piece = (BUDGET - left).div_ceil(4).max(512);
    let mut pieces: Vec<&[u8]> = Vec::new();
    for (mut from, end) in ranges {
        while end - from > piece {
            let cut = from + piece;
            let Some(at) = memchr::memchr2(b'\n', b'\r', &log[cut..end]) else {
                break;
            };
            pieces.push(&log[from..cut + at]);
            from = cut + at;
        }
        pieces.push(&log[from..end]);
    }
    // Colour codes can split a word (`test result: \x1b[31mFAILED`): a piece holding any
    // is read without them.
    let texts: Vec<Cow<[u8]>> = pieces
        .into_iter()
        .map(|piece| {
            if memchr::memchr(0x1b, piece).is_some() {
                Cow::Owned(crate::log_clean::strip_ansi(piece))
            } else {
                Cow::Borrowed(piece)
            }
        })
        .collect();
    let haystacks: Vec<&[u8]> = texts.iter().map(|text| text.as_ref()).collect();
    let mut present = [false; CATEGORY_WORDS.len()];
    finder.each_word_in_all(&haystacks, |_, word| present[groups[word]] = true);
    present
}

/// Words that decide a failure's category, tried in this order (failed tests, when the log
/// names any, decide before the dependency words).
const CATEGORY_WORDS: &[(Category, Option<&str>, &[&str])] = &[
    (
        Category::Infrastructure,
        Some("timeout"),
        &[
            "No output has been received in the last",
            "exceeded the maximum time limit",
            "timed out after",
            "Job's timeout",
            "execution took longer than",
        ],
    ),
    (
        Category::Infrastructure,
        Some("oom"),
        &[
            "OutOfMemoryError",
            "out of memory",
            "Out of memory",
            "Cannot allocate memory",
            "exit code 137",
            "Killed",
            "JavaScript heap out of memory",
            "No space left on device",
        ],
    ),
    (
        Category::Infrastructure,
        Some("runner"),
        &[
            "runner system failure",
            "The runner has received a shutdown signal",
            "lost communication with the server",
            "The operation was canceled",
            "Cannot connect to the Docker daemon",
        ],
    ),
    (
        Category::Dependency,
        None,
        &[
            "Could not resolve",
            "Connection refused",
            "Connection reset",
            "Could not connect",
            "Could not create connection",
            "certificate",
            "ETIMEDOUT",
            "ECONNRESET",
            "ENOTFOUND",
            "EAI_AGAIN",
            "getaddrinfo",
            "Temporary failure in name resolution",
            "Could not find a version that satisfies",
            "No matching distribution",
            "Failed to download",
            "unable to access",
            "Could not resolve dependencies",
            "Could not find artifact",
            "npm ERR! 404",
            "npm ERR! code E404",
            "Cannot find module",
            "ModuleNotFoundError",
            "No module named",
            "Unable to locate package",
            "Could not fetch",
            "failed to fetch",
            "version solving failed",
            "dependency",
        ],
    ),
    (
        Category::Test,
        None,
        &[
            "<<< FAILURE!",
            "Tests in error",
            "Failed tests",
            "--- FAIL",
            "AssertionError",
            "Assertion",
            " failing",
            "test result: FAILED",
            "FAILURES!",
            "Tests failed",
            "tests failed",
        ],
    ),
    (
        Category::Compile,
        None,
        &[
            "error[E",
            "error TS",
            "cannot find symbol",
            "COMPILATION ERROR",
            "Compilation failed",
            "compilation failed",
            "SyntaxError",
            "undefined reference",
            "fatal error:",
            "Unable to compile",
            "could not compile",
            "error: expected",
            "does not compile",
            "Build failed",
            "make: ***",
            "was not declared",
            "is not a member",
            "unknown attribute",
            // GHC, when warnings are errors.
            "Failing due to -Werror",
        ],
    ),
    (
        Category::Lint,
        None,
        &[
            "eslint",
            "ESLint",
            "rubocop",
            "RuboCop",
            "flake8",
            "pylint",
            "pycodestyle",
            "Line longer",
            "line too long",
            "standard:",
            "checkstyle",
            "Checkstyle",
            "prettier",
            "clippy",
            "lint",
            "Lint",
            "Severity:",
            "gofmt",
            "is not formatted",
            "Code style",
            "code style",
        ],
    ),
    (
        Category::Configuration,
        None,
        &[
            "command not found",
            "No such file or directory",
            "No Rakefile found",
            "Invalid workflow",
            "is not a valid",
            "Unknown option",
            "unknown option",
            "not recognized",
            "Missing required",
            "yaml",
            "YAML",
            "configuration",
            "environment variable",
            "Permission denied",
        ],
    ),
];

/// One automaton over every category word; each word's pattern id maps to its group.
fn category_finder() -> &'static (WordSet, Vec<usize>) {
    static FINDER: OnceLock<(WordSet, Vec<usize>)> = OnceLock::new();
    FINDER.get_or_init(|| {
        let mut words = Vec::new();
        let mut groups = Vec::new();
        for (group, (_, _, group_words)) in CATEGORY_WORDS.iter().enumerate() {
            words.extend_from_slice(group_words);
            groups.extend(std::iter::repeat_n(group, group_words.len()));
        }
        (WordSet::new(&words), groups)
    })
}

/// The category of a failure from the groups of words its excerpt holds: the first group present.
fn categorise(
    present: &[bool; CATEGORY_WORDS.len()],
    failed_tests: &[Redacted],
) -> (Category, Option<&'static str>) {
    for (group, &(category, detail, _)) in CATEGORY_WORDS.iter().enumerate() {
        if category == Category::Dependency && !failed_tests.is_empty() {
            return (Category::Test, None);
        }
        if present[group] {
            return (category, detail);
        }
    }
    (Category::Unknown, None)
}

/// A line with what varies between runs of the same failure masked: numbers (times,
/// durations, ids, line numbers), hex strings (hashes, addresses), temporary paths.
pub fn normalise_line(text: &str) -> String {
    let text = text.trim();
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    // Byte by byte, copying runs: every byte looked at is ASCII, and a multi-byte character
    // never holds an ASCII byte, so each run starts and ends on a character boundary.
    while at < bytes.len() {
        let start = at;
        let byte = bytes[at];
        at += 1;
        if byte.is_ascii_digit() {
            // A number, maybe with decimals or hex digits: one `#`.
            while at < bytes.len()
                && matches!(bytes[at], b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' | b'.' | b':')
            {
                at += 1;
            }
            out.push('#');
        } else if byte.is_ascii_hexdigit() {
            // A hex run of 7+ characters with a digit is a hash.
            while at < bytes.len() && bytes[at].is_ascii_alphanumeric() {
                at += 1;
            }
            let word = &bytes[start..at];
            if word.len() >= 7
                && word.iter().all(u8::is_ascii_hexdigit)
                && word.iter().any(u8::is_ascii_digit)
            {
                out.push('#');
            } else {
                out.push_str(&text[start..at]);
            }
        } else {
            while at < bytes.len() && !bytes[at].is_ascii_hexdigit() {
                at += 1;
            }
            out.push_str(&text[start..at]);
        }
    }
    // Temporary directories differ per run (no path, nothing to look for).
    let paths = if out.contains(['/', '\\']) {
        &["/tmp/", "/var/folders/", "/private/var/", "C:\\Users\\"][..]
    } else {
        &[]
    };
    for prefix in paths {
        while let Some(at) = out.find(prefix) {
            let end = out[at..]
                .find([' ', '\'', '"', ':', ')', ','])
                .map_or(out.len(), |e| at + e);
            out.replace_range(at..end, "<tmp>");
        }
    }
    out
}

/// Stable across re-runs of the same failure, different for different failures.
fn fingerprint(key: &[Redacted], category: Category) -> String {
    let mut hasher = Sha256::new();
    hasher.update(category.as_str().as_bytes());
    for line in key.iter().take(5) {
        hasher.update(b"\n");
        hasher.update(normalise_line(line).as_bytes());
    }
    let digest = hasher.finalize();
    digest[..10].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the excerpt holds the line.
    #[test]
    fn a_failing_command_is_found_and_numbered() {
        let log = b"$ npm install\r\nadded 10 packages\r\n$ npm test\r\n\r\n  1) suite\r\n     Error: boom\r\n       at thing (a.js:1:2)\r\n\r\nThe command \"npm test\" exited with 1.\r\nDone. Your build exited with 1.\r\n";
        let triage = triage(log);
        // The failing step is short: shown whole, from its command to the line saying it failed.
        assert_eq!(
            triage.excerpt,
            vec![LineRange {
                start_line: 3,
                end_line: 9
            }]
        );
        assert_eq!(triage.failing_step.as_deref(), Some("npm test"));
        assert_eq!(triage.total_lines, 10);
    }

    #[test]
    fn fingerprints_ignore_what_varies_between_runs() {
        let first = triage(
            b"$ make\nbuild 1234 at 2024-01-02 10:11:12\nsrc/a.c:10:3: error: 'x' undeclared\nmake: *** [all] Error 1\n",
        );
        let again = triage(
            b"$ make\nbuild 9876 at 2024-03-04 01:02:03\nsrc/a.c:12:5: error: 'x' undeclared\nmake: *** [all] Error 2\n",
        );
        let other = triage(
            b"$ make\nbuild 1234 at 2024-01-02 10:11:12\nsrc/a.c:10:3: error: 'y' undeclared\nmake: *** [all] Error 1\n",
        );
        assert_eq!(first.fingerprint, again.fingerprint);
        assert_ne!(first.fingerprint, other.fingerprint);
        assert_eq!(first.category, Category::Compile);
        assert_eq!(
            normalise_line("took 12.5s in /tmp/pytest-of-x/abc123/f.py, sha deadbeef01"),
            "took #s in <tmp>, sha #"
        );
    }

    #[test]
    fn a_retried_command_is_shown_through_its_last_attempt() {
        let mut log =
            String::from("$ make setup\nready\n$ git clone https://example.test/app.git\n");
        for attempt in 2..=3 {
            log.push_str("Cloning into 'app'...\nfatal: Remote branch topic not found in upstream origin\n\n");
            log.push_str(&format!(
                "The command \"eval git clone https://example.test/app.git\" failed. Retrying, {attempt} of 3.\n\n"
            ));
        }
        log.push_str(
            "Cloning into 'app'...\nfatal: Remote branch topic not found in upstream origin\n\n",
        );
        log.push_str(
            "The command \"eval git clone https://example.test/app.git\" failed 3 times.\n\n",
        );
        log.push_str("Done. Your build exited with 1.\n");
        let triage = triage(log.as_bytes());
        // From the clone's command to the line saying it failed for the last time.
        assert_eq!(
            triage.excerpt,
            vec![LineRange {
                start_line: 3,
                end_line: 17
            }]
        );
    }

    #[test]
    fn a_command_echoed_over_several_lines_fails_where_its_echo_starts() {
        let mut log = String::from("$ ./ci.sh\n");
        for module in 0..40 {
            log.push_str(&format!("[{module} of 40] Compiling Module{module}\n"));
        }
        // Lines 42-44: the reason, 32 lines above the end of the command's echo.
        log.push_str("src/Module40.hs:94:10: error:\n    No instance for (Monoid Notebook)\nFailing due to -Werror.\n");
        log.push_str("The command \"case $MODE in\n");
        for line in 0..30 {
            log.push_str(&format!("  mode{line}) cabal build --flag={line} ;;\n"));
        }
        log.push_str("esac\n\" exited with 1.\n\nDone. Your build exited with 1.\n");
        let triage = triage(log.as_bytes());
        let shown = |line: usize| triage.shows(line);
        assert!((42..=44).all(shown), "{:?}", triage.excerpt);
        assert!(
            !shown(55),
            "the command's echo is not output: {:?}",
            triage.excerpt
        );
    }

    #[test]
    fn category_words_split_by_colour_codes_still_count() {
        // cargo test colours its verdict: `test result: FAILED` is a test failure.
        let mut log = String::from("$ cargo test\n");
        for case in 0..30 {
            log.push_str(&format!("test case_{case} ... ok\n"));
        }
        log.push_str("\ntest result: \x1b[31mFAILED\x1b(B\x1b[m. 30 passed; 1 failed\n\n");
        log.push_str("The command \"cargo test\" exited with 101.\n");
        let triage = triage(log.as_bytes());
        assert_eq!(triage.category, Category::Test, "{triage:?}");
        // A long excerpt, walked in four pieces: the words are found in whichever holds them.
        let mut long = String::from("$ ./lint.sh\n");
        for line in 0..600 {
            long.push_str(&format!(
                "src/module_{line}.rs:1: \x1b[33mLine longer\x1b[0m than 80 characters\n"
            ));
        }
        long.push_str("The command \"./lint.sh\" exited with 1.\n");
        assert_eq!(triage_category(&long), Category::Lint);
    }

    fn triage_category(log: &str) -> Category {
        triage(log.as_bytes()).category
    }

    #[test]
    fn a_log_that_stops_after_errors_is_shown_to_its_end() {
        let mut log = String::from("$ ./build-otp\n");
        for line in 0..400 {
            log.push_str(&format!("compiling unit {line}\n"));
        }
        // Lines 402-418: a crash, the crash dump being written, the errors of make; then the
        // log stops.
        log.push_str(
            "System process terminated: {bad_lib,\"Function not found prim_file:read/1\"}\n\n\n\n",
        );
        for part in 0..10 {
            log.push_str(&format!("writing erl_crash.dump part {part}\n"));
        }
        log.push_str("\nmake[1]: *** [emulator] Error 2\n*** Failed ***\n");
        let triage = triage(log.as_bytes());
        let shown = |line: usize| triage.shows(line);
        assert!((402..=418).all(shown), "{:?}", triage.excerpt);
        assert_eq!(triage.total_lines, 418);
    }

    #[test]
    fn a_failed_tests_stack_trace_is_shown_whole() {
        let mut log = String::from("$ mvn test\nRunning app.OtherTest\n");
        for line in 0..200 {
            log.push_str(&format!("INFO: request {line} served\n"));
        }
        // Line 203: the report; 204-243: its stack trace.
        log.push_str("raw(app.RawTest)  Time elapsed: 0.05 sec  <<< ERROR!\njava.lang.NullPointerException\n");
        for frame in 0..39 {
            log.push_str(&format!(
                "\tat app.Frame{frame}.call(Frame{frame}.java:{frame})\n"
            ));
        }
        log.push('\n');
        for line in 0..200 {
            log.push_str(&format!("INFO: request {line} served\n"));
        }
        log.push_str("Tests in error:\n  RawTest.raw:46 NullPointer\n\nThe command \"mvn test\" exited with 1.\n");
        let triage = triage(log.as_bytes());
        let shown = |line: usize| triage.shows(line);
        assert!((203..=243).all(shown), "{:?}", triage.excerpt);
    }

    #[test]
    fn werror_is_noise_as_a_flag_and_evidence_as_a_verdict() {
        let mut log = String::from("$ cabal build --ghc-options=\"-Wall -Werror -O2\"\n");
        for module in 0..200 {
            log.push_str(&format!("[{module} of 400] Compiling Mod{module}\n"));
        }
        // Lines 202-206: GHC's warning and its verdict, far above the step's end.
        log.push_str("\nsrc/Text/Ipynb.hs:94:10: Warning:\n    No explicit implementation for\n\n");
        log.push_str("<no location info>: \nFailing due to -Werror.\n");
        for module in 200..400 {
            log.push_str(&format!("[{module} of 400] Compiling Mod{module}\n"));
        }
        log.push_str("The command \"cabal build\" exited with 1.\n");
        let triage = triage(log.as_bytes());
        assert!(triage.shows(206), "{:?}", triage.excerpt);
        assert!(
            triage
                .key_lines
                .iter()
                .any(|line| line == "Failing due to -Werror."),
            "{:?}",
            triage.key_lines
        );
        assert!(!triage.key_lines.iter().any(|line| line.contains("-O2")));
        assert_eq!(triage.category, Category::Compile);
    }

    #[test]
    fn the_tail_reaches_up_through_a_report_to_its_header() {
        let mut log = String::from("$ xcodebuild test\n");
        for file in 0..100 {
            log.push_str(&format!("Compiling file{file}.swift\n"));
        }
        // Line 102 heads the report; failures at 104 and 119, the run's summary at 151, far
        // above the 24 lines before the step fails at 177.
        log.push_str("MathTests\n\n  testAdd, XCTAssertEqual failed: (1) is not equal to (2)\n");
        for line in 0..14 {
            log.push_str(&format!("context {line}\n"));
        }
        log.push_str("  testSub, XCTAssertEqual failed: (3) is not equal to (4)\n");
        for line in 0..31 {
            log.push_str(&format!("context {line}\n"));
        }
        log.push_str("Executed 2 tests, with 2 failures\n");
        for line in 0..24 {
            log.push_str(&format!("cleanup {line}\n"));
        }
        log.push_str("** TEST FAILED **\nThe command \"xcodebuild test\" exited with 65.\n");
        let triage = triage(log.as_bytes());
        assert!(
            (102..=177).all(|line| triage.shows(line)),
            "{:?}",
            triage.excerpt
        );
        // The quiet stretch above the report is not.
        assert!(!triage.shows(100), "{:?}", triage.excerpt);
    }

    #[test]
    fn a_long_excerpt_is_categorised_by_its_end() {
        let mut log = String::from("$ make\nwarning: Connection refused by mirror, retrying\n");
        // 3,000 error lines (over 64 KB) between, then the compiler's verdict.
        for unit in 0..3_000 {
            log.push_str(&format!(
                "src/unit{unit}.c:1: error: unknown type name 'foo_{unit}'\n"
            ));
        }
        log.push_str("make: *** [all] Error 2\nThe command \"make\" exited with 2.\n");
        let triage = triage(log.as_bytes());
        assert!(triage.shows(2), "{:?}", triage.excerpt);
        assert_eq!(triage.category, Category::Compile);
    }

    #[test]
    fn both_prefilter_searches_find_the_same_literals() {
        // Every literal, some overlapping others, between ordinary text.
        let mut log = Vec::new();
        for (i, literal) in PREFILTER.iter().enumerate() {
            log.extend_from_slice(format!("line {i}: {literal} and {literal}rror\n").as_bytes());
        }
        log.extend_from_slice("FAILED Error: \u{2715} Killed travis_fold:start:x\n".as_bytes());
        let matches: Vec<(usize, usize)> = prefilter().every_match(&log).collect();
        assert!(matches.len() > PREFILTER.len() * 2, "{}", matches.len());
        let automaton = automaton_prefilter();
        assert_eq!(matches, automaton.every_match(&log).collect::<Vec<_>>());
    }

    #[test]
    fn shell_steps_are_found_by_their_dollar() {
        let log = b"$ make\nprice: 5$ each\n\x1b[0K$ npm test\n\x1b[32;1m$ ./deploy\nx $ y\n";
        assert_eq!(LineIndex::new(log).shell_steps(), [0, 26, 44]);
        let triage = triage(b"$ npm test\nError: boom\nThe command \"npm test\" exited with 1.\n");
        assert_eq!(triage.failing_step.as_deref(), Some("npm test"));
    }

    #[test]
    fn what_the_triage_tells_about_a_log_holds_no_secret() {
        let log = "$ git clone https://oauth2:glpat-abcdefghijklmnopqrst@gitlab.com/g/app.git\n\
                   $ export GITHUB_TOKEN=ghp_1234567890abcdefghijklmnopqrstuvwxyzAB && docker login -u ci -p S3cretRegistryPw reg.example.com\n\
                   Error response from daemon: Get https://reg.example.com/v2/: unauthorized: incorrect username or password\n\
                   error: Cookie: session=8f14e45fceea167a5a36dedd4bea2543 rejected\n\
                   The command \"export GITHUB_TOKEN=ghp_1234567890abcdefghijklmnopqrstuvwxyzAB && docker login -u ci -p S3cretRegistryPw reg.example.com\" exited with 1.\n";
        let triage = triage(log.as_bytes());
        let step = triage.failing_step.as_deref().unwrap_or_default();
        assert!(step.starts_with("export GITHUB_TOKEN=[REDACTED:"), "{step}");
        let told = serde_json::to_string(&triage).expect("serialises");
        for secret in [
            "ghp_1234567890",
            "S3cretRegistryPw",
            "8f14e45fceea167a5a36dedd4bea2543",
            "glpat-abcdefghijklmnopqrst",
        ] {
            assert!(!told.contains(secret), "{secret} in {told}");
        }
        assert!(!triage.key_lines.is_empty(), "{told}");
    }

    #[test]
    fn an_empty_or_quiet_log_is_unknown() {
        let empty = triage(b"");
        assert!(empty.excerpt.is_empty());
        assert_eq!(empty.category, Category::Unknown);
        let quiet = triage(b"all good\nnothing to see\n");
        assert!(quiet.excerpt.is_empty());
    }
}
