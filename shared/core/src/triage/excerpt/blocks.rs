//! Blocks of evidence lines: lines that hold error words close together form a block,
//! ranked by their words and by how close they end to a failing step's end; the best blocks
//! are widened to the report they belong to (its header above, its stack trace below).

use super::Span;
use crate::triage::LineRange;
use crate::triage::lines::{next_line_start, previous_line_start};
use crate::triage::scan::Candidate;
use crate::triage::steps::is_boundary;
use crate::triage::text::line_at;

/// A group of evidence lines close together.
#[derive(Debug, Clone, Copy)]
pub(super) struct Block {
    pub first: usize,
    pub last: usize,
    /// Index range into the candidates.
    from: usize,
    to: usize,
    pub rank: f64,
}

/// Evidence lines at most this many lines apart form one block.
const BLOCK_GAP: usize = 3;
/// A block beside the best one must rank at least this share of it.
pub(super) const RUNNER_UP_SHARE: f64 = 0.1;
/// Plain (unindented) lines that may follow a runner-up block in its paragraph.
const RUNNER_UP_PLAIN_LINES: usize = 3;

pub(super) fn choose_blocks(
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

/// How ranked blocks are widened into ranges.
pub(super) struct Expansion<'a> {
    pub log: &'a [u8],
    pub candidates: &'a [Candidate],
    /// The lines that say a step failed.
    pub failure_ends: &'a [usize],
    pub total: usize,
    /// The first blocks, shown whatever their size.
    pub always_shown: usize,
    /// The other blocks are shown while fewer lines than this are (each at most 10 past it).
    pub line_budget: usize,
}

/// The ranges shown for the ranked blocks.
pub(super) fn expand(blocks: &[Block], how: &Expansion<'_>) -> Vec<Span> {
    let Expansion {
        log,
        candidates,
        failure_ends,
        total,
        always_shown,
        line_budget,
    } = *how;
    let mut ranges: Vec<Span> = Vec::new();
    let mut used = 0usize;
    for (rank, block) in blocks.iter().enumerate() {
        if rank >= always_shown && used >= line_budget {
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
        if rank >= always_shown && used + size > line_budget + 10 {
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
    super::merge(ranges)
}
