//! The prefilter: which lines the triage reads at all. A line is read when it holds one of
//! the [`PREFILTER`] literals or starts a shell step; every other line is passed over at the
//! speed of a SIMD literal search.

use super::lines::{LineIndex, line_bounds};
use super::vocabulary::PREFILTER;
use aho_corasick::AhoCorasick;
use std::sync::OnceLock;

/// A line the prefilter kept: where it starts and ends (its terminator excluded) and its
/// 1-based number.
#[derive(Debug, Clone, Copy)]
pub(super) struct KeptLine {
    pub start: usize,
    pub end: usize,
    pub line: usize,
}

/// How many prefilter matches a log has (for measuring the literal search alone).
pub fn prefilter_matches(log: &[u8]) -> usize {
    prefilter().every_match(log).count()
}

/// The lines holding a prefilter literal or starting a shell step, in log order.
pub(super) fn lines_to_read(log: &[u8], index: &LineIndex<'_>) -> Vec<KeptLine> {
    let prefilter = prefilter();
    let mut kept: Vec<KeptLine> = Vec::new();
    let mut current_end = 0usize;
    // Fast path: once a line is taken, the search goes on from its end instead of reporting
    // every other match on the same line, which would change nothing.
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
        if kept.is_empty() || at >= current_end {
            let (start, end) = line_bounds(log, at);
            current_end = end.max(start + 1);
            kept.push(KeptLine {
                start,
                end,
                line: index.line_of(start),
            });
        }
        if next_match.is_none_or(|found| found < current_end) {
            next_match = match_from(current_end);
        }
    }
    kept
}

/// The search for the prefilter's literals: the SIMD literal searcher (Teddy) itself where the
/// processor has it, else an Aho-Corasick automaton.
enum Prefilter {
    /// Fast path: calling the packed searcher directly skips the automaton's own dispatch,
    /// which measurably slowed a search that runs over every byte of every log.
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

#[allow(
    clippy::expect_used,
    reason = "the literal lists are constants an automaton is always built from"
)]
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_line_is_kept_once_however_many_literals_it_holds() {
        let log = b"ok\nError: FAILED fatal\n$ make\nfine\nKilled\n";
        let index = LineIndex::new(log);
        let kept: Vec<usize> = lines_to_read(log, &index)
            .iter()
            .map(|kept| kept.line)
            .collect();
        assert_eq!(kept, [2, 3, 5]);
    }
}
