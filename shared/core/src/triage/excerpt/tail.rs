//! The failing step's tail: the last lines before a step failed, which is where most tools
//! print why, reaching up through the error lines of a report that runs far above them.

use super::Span;
use crate::triage::lines::previous_line_start;
use crate::triage::scan::Candidate;
use crate::triage::steps::{Step, is_boundary};
use crate::triage::text::line_at;
use crate::triage::{LineRange, Tuning};

/// The end of the first failing step's output: the last lines before it failed, which is
/// where most tools print why (even in words no keyword list knows, such as a linter's
/// `README.md:12: Line longer than 80 characters`). A short step is shown whole.
pub(super) fn failing_step_tail(
    log: &[u8],
    steps: &[Step],
    end_line: usize,
    end_start: usize,
    total: usize,
    tuning: &Tuning,
) -> Option<Span> {
    let (step_line, step_start) = steps
        .iter()
        .rev()
        .find(|step| step.line < end_line)
        .map_or((0, 0), |step| (step.line, step.start));
    let whole_step = end_line - step_line <= tuning.short_step_lines;
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
            if last_content.is_some() && boundary && content >= tuning.step_tail_lines {
                break;
            }
            continue;
        }
        last_content.get_or_insert(line);
        first_content = (line, at);
        content += 1;
        // A short step is shown from its command: once it has shown any output, the rest of
        // the walk would change nothing.
        if (!whole_step && content >= tuning.step_tail_lines) || (whole_step && step_line > 0) {
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
/// fewer than `tail_reach_gap` lines above the last: a tool's report of why it failed often
/// runs far above its last lines (each failed test's details, then the run's summary), and
/// while error lines keep coming, the report goes on. A quiet stretch ends it. A report
/// reached this way is shown with the line that heads it (the test case or suite above its
/// first failure, up to three blank lines between included).
pub(super) fn reach_up_through_evidence(
    log: &[u8],
    tail: &mut Span,
    candidates: &[Candidate],
    tuning: &Tuning,
) {
    let reached_from = tail.lines.start_line;
    let mut above = candidates.partition_point(|c| c.line < tail.lines.start_line);
    loop {
        let next = above.checked_sub(1).map(|at| &candidates[at]);
        let within_reach = |line: usize| {
            line + tuning.tail_reach_gap >= tail.lines.start_line
                && line + tuning.tail_reach_lines >= reached_from
        };
        match next {
            Some(candidate) if within_reach(candidate.line) => {
                tail.lines.start_line = candidate.line;
                tail.start = candidate.start;
                above -= 1;
            }
            // A stack trace right above is part of the report, however long: the walk goes
            // on from its top (its exception line is evidence).
            _ if tuning.reach_over_stack_traces
                && tail.lines.start_line + tuning.tail_reach_lines > reached_from
                && climb_stack_trace(log, tail) => {}
            _ => break,
        }
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

/// Moves the span's start up over the stack frames right above it; whether there were any.
fn climb_stack_trace(log: &[u8], span: &mut Span) -> bool {
    let mut climbed = false;
    while let Some(previous) = previous_line_start(log, span.start) {
        let (_, _, text) = line_at(log, previous);
        if !is_stack_frame(&text) {
            break;
        }
        span.start = previous;
        span.lines.start_line -= 1;
        climbed = true;
    }
    climbed
}

/// A line of a stack trace: Java's and JavaScript's `at …`, Python's `File "…", line …`,
/// Ruby's `from …:in`, a chained cause, `... 12 more`.
fn is_stack_frame(text: &str) -> bool {
    let trimmed = text.trim_start();
    trimmed.starts_with("at ")
        || trimmed.starts_with("File \"")
        || trimmed.starts_with("Caused by")
        || (trimmed.starts_with("from ") && trimmed.contains(":in "))
        || (trimmed.starts_with("... ") && trimmed.trim_end().ends_with("more"))
}
