//! Line scoring: what the words of each line the prefilter kept tell — how strongly it
//! speaks of a failure, and whether it ends a failing step, starts a step or belongs to a
//! test runner's report.

use super::vocabulary::{EVIDENCE, FAILURE_END_MARKERS, NOT_EVIDENCE, STEP_MARKERS, TEST_MARKERS};
use super::words::WordSet;
use std::sync::OnceLock;

/// What one look at a line's raw bytes tells.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct LineSignals {
    pub score: i32,
    pub failure_end: bool,
    pub step: bool,
    pub test_report: bool,
}

/// Lines longer than this (minified code, data dumps) are not read: they tell nothing.
const LONGEST_LINE: usize = 4_000;

/// The evidence words a line holds are kept as the bits of one number.
const _: () = assert!(EVIDENCE.len() <= 128, "one bit per evidence word");

/// Every word list in one automaton, so a line is read once; the lists follow each other in
/// the automaton's numbering, so a word's number says which list it is from.
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

/// What the words of each line tell (lines given as byte ranges of the log).
pub(super) fn line_signals(
    log: &[u8],
    lines: impl Iterator<Item = (usize, usize)>,
) -> Vec<LineSignals> {
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
    // Fast path: all lines go through the automaton together, four at a time (see
    // `WordSet::each_word_in_all`), rather than one walk per line.
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
    for ((signals, words), noisy) in signals.iter_mut().zip(evidence).zip(noisy) {
        signals.score = score(words, noisy);
    }
    signals
}

/// A line's score from the evidence words it holds (one bit each) and whether it also holds
/// a word that says it reports nothing. Several words on one line add up, but one strong
/// word decides most.
fn score(mut words: u128, noisy: bool) -> i32 {
    let (mut sum, mut strongest) = (0, 0);
    while words != 0 {
        let weight = EVIDENCE[words.trailing_zeros() as usize].1;
        sum += weight;
        strongest = strongest.max(weight);
        words &= words - 1;
    }
    strongest + (sum - strongest).min(4) - if noisy { 6 } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(lines: &[&str]) -> Vec<i32> {
        let log = lines.join("\n");
        let mut at = 0;
        let ranges: Vec<(usize, usize)> = lines
            .iter()
            .map(|line| {
                let range = (at, at + line.len());
                at += line.len() + 1;
                range
            })
            .collect();
        line_signals(log.as_bytes(), ranges.into_iter())
            .iter()
            .map(|signals| signals.score)
            .collect()
    }

    #[test]
    fn one_strong_word_decides_and_noise_words_take_away() {
        let [plain, strong, several, noisy] = scores(&[
            "all good",
            "error[E0425]: cannot find value",
            "Error: FATAL failure",
            "npm WARN deprecated: error handling",
        ])[..] else {
            panic!("four lines");
        };
        assert_eq!(plain, 0);
        // `error[E` (7) with `error` (3) and `cannot` (4): 7 + at most 4 more.
        assert_eq!(strong, 11);
        assert!(several > 6 && several <= 10, "{several}");
        assert!(noisy <= 0, "{noisy}");
    }
}
