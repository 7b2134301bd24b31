//! The scan: one pass over the log that numbers its lines, keeps the lines the prefilter
//! lets through, scores them and sorts them into evidence, step starts, failing step ends and
//! test reports. Everything after the scan reads only what it found and the lines around.

use super::lines::{LineIndex, visible_text};
use super::prefilter::{KeptLine, lines_to_read};
use super::scoring::line_signals;
use super::steps::{FailureEnd, Step, failure_start, is_failure_end, step_name};
use super::text::holds;

/// A line whose words make it evidence of the failure.
#[derive(Debug, Clone)]
pub(super) struct Candidate {
    pub start: usize,
    pub end: usize,
    pub line: usize,
    pub score: i32,
}

pub(super) struct Scan<'a> {
    pub index: LineIndex<'a>,
    /// Evidence lines, in log order.
    pub candidates: Vec<Candidate>,
    pub steps: Vec<Step>,
    pub failure_ends: Vec<FailureEnd>,
    /// Lines that may belong to a test runner's report of a failed test.
    pub test_reports: Vec<KeptLine>,
}

impl Scan<'_> {
    pub fn total_lines(&self) -> usize {
        self.index.total_lines()
    }

    /// The line of the first step (0 when the log names none).
    pub fn first_step_line(&self) -> usize {
        self.steps.first().map_or(0, |step| step.line)
    }
}

pub(super) fn scan(log: &[u8]) -> Scan<'_> {
    let index = LineIndex::new(log);
    let kept = lines_to_read(log, &index);
    let signals = line_signals(log, kept.iter().map(|kept| (kept.start, kept.end)));
    let mut scan = Scan {
        index,
        candidates: Vec::new(),
        steps: Vec::new(),
        failure_ends: Vec::new(),
        test_reports: Vec::new(),
    };
    for (&kept, signals) in kept.iter().zip(signals) {
        let KeptLine { start, end, line } = kept;
        if signals.test_report {
            scan.test_reports.push(kept);
        }
        // Fast path: a line is decoded only when its words say it may end or start a step.
        if signals.failure_end || signals.step {
            let text = visible_text(&log[start..end]);
            if signals.failure_end && is_failure_end(&text) {
                let (line, start) = failure_start(log, &text, line, start);
                scan.failure_ends.push(FailureEnd {
                    line,
                    start,
                    retried: holds(&text, "Retrying"),
                });
                continue;
            }
            if signals.step && step_name(&text).is_some() {
                scan.steps.push(Step { line, start, end });
                continue;
            }
        }
        if signals.score > 0 {
            scan.candidates.push(Candidate {
                start,
                end,
                line,
                score: signals.score,
            });
        }
    }
    scan
}
