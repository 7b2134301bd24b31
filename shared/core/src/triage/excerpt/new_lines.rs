//! The failing step's tail when the last green run of the job is known: the lines the green
//! run did not print, from the line that says the step failed up, across the few lines both
//! runs printed between them (a tool's banner between its report and its verdict), until a
//! longer stretch of lines the green run printed too.

use super::Span;
use crate::triage::last_success::{Comparison, News};
use crate::triage::scan::{Candidate, Scan};
use crate::triage::{LineRange, Tuning};

/// The new lines above the failure ending at `end_line` (past the log's last line when the
/// log stops without saying a step failed), within the failing step; `None` when no line of
/// it but the failure's own is new.
pub(super) fn new_lines_tail(
    scan: &Scan<'_>,
    comparison: &Comparison,
    end_line: usize,
    tuning: &Tuning,
) -> Option<Span> {
    let total = scan.total_lines();
    // The walk stops at the step's own start and at an earlier failure.
    let floor = scan
        .steps
        .iter()
        .map(|step| step.line)
        .chain(scan.failure_ends.iter().map(|end| end.line))
        .filter(|&line| line < end_line)
        .max()
        .unwrap_or(0);
    // The failure's own line closes the range; a log that just stops ends at its last line
    // that shows something.
    let last = if end_line <= total {
        end_line
    } else {
        (1..=total)
            .rev()
            .find(|&line| comparison.news(line) != News::Blank)?
    };
    // The line saying the step failed is new in nearly every failed run: it does not count.
    let from = if end_line <= total { last - 1 } else { last };
    let reach = last.saturating_sub(tuning.tail_reach_lines);
    let first = new_lines_edge(comparison, (floor.max(reach) + 1..=from).rev(), tuning);
    let first = first?;
    Some(Span {
        lines: LineRange {
            start_line: first,
            end_line: last,
        },
        start: scan.index.line_start(first),
    })
}

/// Widens the tail up through the evidence lines above it that the green run did not print,
/// each fewer than `tail_reach_gap` lines above the part reached before (a tool's report of
/// each failure above its summary). Each is shown with the new lines around it; the lines
/// both runs printed between such parts (the tests that passed) are left out.
pub(super) fn reach_up_through_new_evidence(
    scan: &Scan<'_>,
    comparison: &Comparison,
    tail: &Span,
    candidates: &[Candidate],
    tuning: &Tuning,
) -> Vec<Span> {
    let origin = tail.lines.start_line;
    let mut top = origin;
    let mut reached = Vec::new();
    let mut above = candidates.partition_point(|c| c.line < top);
    while let Some(candidate) = above.checked_sub(1).map(|at| &candidates[at]) {
        if candidate.line + tuning.tail_reach_gap < top
            || candidate.line + tuning.tail_reach_lines < origin
        {
            break;
        }
        let ceiling = origin.saturating_sub(tuning.tail_reach_lines);
        let first = new_lines_edge(comparison, (ceiling.max(1)..candidate.line).rev(), tuning)
            .unwrap_or(candidate.line);
        let last =
            new_lines_edge(comparison, candidate.line + 1..top, tuning).unwrap_or(candidate.line);
        reached.push(Span {
            lines: LineRange {
                start_line: first,
                end_line: last,
            },
            start: scan.index.line_start(first),
        });
        top = first;
        above = candidates.partition_point(|c| c.line < top);
    }
    reached
}

/// The farthest new line along `lines` before more than `seen_gap` lines the green run also
/// printed come in a row.
fn new_lines_edge(
    comparison: &Comparison,
    lines: impl Iterator<Item = usize>,
    tuning: &Tuning,
) -> Option<usize> {
    let mut edge = None;
    let mut seen_run = 0;
    for line in lines {
        match comparison.news(line) {
            News::Blank => {}
            News::New => {
                edge = Some(line);
                seen_run = 0;
            }
            News::Seen => {
                seen_run += 1;
                if seen_run > tuning.seen_gap {
                    break;
                }
            }
        }
    }
    edge
}
