//! Excerpt building: which line ranges of the log to show. The first failing step's tail
//! (see [`tail`]), the best-ranked block of evidence lines and the first failed test's report
//! (see [`blocks`]), and a few lines of runner-up blocks; ranges close together are joined.

mod blocks;
mod new_lines;
mod tail;

use super::last_success::Comparison;
use super::scan::{Candidate, Scan};
use super::{LineRange, Tuning};
use blocks::{Expansion, RUNNER_UP_SHARE, choose_blocks, expand};
use new_lines::{new_lines_tail, reach_up_through_new_evidence};
use std::borrow::Cow;
use tail::{failing_step_tail, reach_up_through_evidence};

/// A range being chosen, with the byte offset where its first line starts (known wherever a
/// range is made, so its text is read without counting lines again).
#[derive(Debug, Clone, Copy)]
pub(super) struct Span {
    pub lines: LineRange,
    pub start: usize,
}

/// The failing steps whose last lines are shown (a job may run on after a failure).
const FAILING_STEPS_SHOWN: usize = 1;
/// Ranges closer than this are shown as one (the lines between belong to the report).
const MERGE_GAP: usize = 8;

/// The excerpt of a scanned log, in log order, from its evidence lines (see [`evidence`]).
/// `names_failed_tests`: the log names failed tests, whose first report is then always shown.
/// With the last green run's `comparison`, the failing step's tail is the new lines above the
/// failure.
pub(super) fn build(
    log: &[u8],
    scan: &Scan<'_>,
    candidates: &[Candidate],
    names_failed_tests: bool,
    comparison: Option<&Comparison>,
    tuning: &Tuning,
) -> Vec<Span> {
    let total_lines = scan.total_lines();
    let failure_ends: Vec<usize> = scan.failure_ends.iter().map(|end| end.line).collect();
    // Output before the first step (machine and tool banners) rarely says why a job failed.
    let mut excerpt_blocks = choose_blocks(
        candidates,
        &failure_ends,
        total_lines,
        scan.first_step_line(),
    );
    // A failed test's report is always shown, however far from the step's end it is (a test
    // run's summary at the end names the test but not why it failed).
    let mut always_shown = 1;
    if names_failed_tests
        // The first report in the log: later ones are usually the run's summary.
        && let Some(at) = scan.test_reports.iter().find_map(|report| {
            excerpt_blocks
                .iter()
                .position(|block| (block.first..=block.last).contains(&report.line))
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
        &excerpt_blocks,
        &Expansion {
            log,
            candidates,
            failure_ends: &failure_ends,
            total: total_lines,
            always_shown,
            line_budget: if comparison.is_some() {
                tuning.block_lines_with_last_success
            } else {
                tuning.block_lines
            },
        },
    );
    for (end_line, end_start) in failing_step_ends(log, scan) {
        let new_lines = comparison.and_then(|comparison| {
            new_lines_tail(scan, comparison, end_line, tuning).map(|tail| (comparison, tail))
        });
        if let Some((comparison, tail)) = new_lines {
            excerpt.extend(reach_up_through_new_evidence(
                scan, comparison, &tail, candidates, tuning,
            ));
            excerpt.push(tail);
        } else if let Some(mut tail) =
            failing_step_tail(log, &scan.steps, end_line, end_start, total_lines, tuning)
        {
            reach_up_through_evidence(log, &mut tail, candidates, tuning);
            excerpt.push(tail);
        }
    }
    merge(excerpt)
}

/// The evidence lines: those the scan found, less those the green run printed too.
pub(super) fn evidence<'a>(
    scan: &'a Scan<'_>,
    comparison: Option<&Comparison>,
) -> Cow<'a, [Candidate]> {
    match comparison {
        None => Cow::Borrowed(&scan.candidates),
        Some(comparison) => scan
            .candidates
            .iter()
            .filter(|candidate| comparison.is_new(candidate.line))
            .cloned()
            .collect(),
    }
}

/// Where the failing steps whose tails are shown end, as (line, start).
fn failing_step_ends(log: &[u8], scan: &Scan<'_>) -> Vec<(usize, usize)> {
    // A log with errors that stops without saying a step failed (a killed or truncated job)
    // ends where its last step failed.
    if scan.failure_ends.is_empty() && !scan.candidates.is_empty() {
        return vec![(scan.total_lines() + 1, log.len())];
    }
    // A retried command fails again: its attempts are shown up to the last one.
    let mut shown = 0;
    let mut ends = Vec::new();
    for end in &scan.failure_ends {
        if shown == FAILING_STEPS_SHOWN {
            break;
        }
        ends.push((end.line, end.start));
        shown += usize::from(!end.retried);
    }
    ends
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
