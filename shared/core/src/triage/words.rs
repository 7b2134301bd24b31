//! Sets of words found wherever they occur in a line, overlapping ones included (`Error:`
//! inside `AssertionError:`).
//!
//! An Aho-Corasick automaton compiled to one dense table: a byte costs a lookup of its column
//! and one transition, and a state at or past a threshold ends a word. The triage walks every
//! line it looks at through such a table, so the per-byte step is kept that small; and it
//! walks four lines at once, since a single walk waits for each lookup before the next.
//!
//! Fast paths, each measured when it was made (README, Performance): the dense table with its
//! per-byte column (the crate's own automata are general and slower for short lines), the
//! four-lane walk (1.24x for the whole triage with the line index), and the matching states
//! placed from a power of two so that one bit test covers all four lanes (+2%). The
//! `aho-corasick` crate's plain automaton checks this one in a differential test below.
#![allow(
    clippy::expect_used,
    reason = "the word sets are the triage's own constant lists, far inside every bound checked"
)]

use std::collections::VecDeque;

pub struct WordSet {
    /// Each byte's column in the table: bytes that no word holds share column 0.
    columns: [u8; 256],
    /// `table[state + column]` is the next state. States are row offsets (the row number
    /// times the row width), so a step is one addition and one load.
    table: Vec<u32>,
    /// Columns per row.
    width: u32,
    /// States from here on end at least one word: a power of two, the one bit that all of
    /// them have and no other state has.
    first_match: u32,
    /// For each state from `first_match` on: its range of `words_ending`.
    ending: Vec<(u32, u32)>,
    /// The indexes of the words ending at each matching state.
    words_ending: Vec<u16>,
}

const NO_CHILD: u32 = u32::MAX;

impl WordSet {
    pub fn new(words: &[&str]) -> Self {
        assert!(words.len() <= usize::from(u16::MAX), "too many words");
        let mut columns = [0u8; 256];
        let mut width = 1usize;
        for byte in words.iter().flat_map(|word| word.bytes()) {
            if columns[usize::from(byte)] == 0 {
                columns[usize::from(byte)] = u8::try_from(width).expect("at most 255 bytes");
                width += 1;
            }
        }
        // The trie of the words, then the failure links and every state's full transitions,
        // breadth first (a state's failure is shallower, so it is complete when needed).
        let mut children: Vec<Vec<u32>> = vec![vec![NO_CHILD; width]];
        let mut ends: Vec<Vec<u16>> = vec![Vec::new()];
        for (index, word) in words.iter().enumerate() {
            assert!(!word.is_empty(), "an empty word would match everywhere");
            let mut node = 0usize;
            for byte in word.bytes() {
                let column = usize::from(columns[usize::from(byte)]);
                if children[node][column] == NO_CHILD {
                    children[node][column] = index_u32(children.len());
                    children.push(vec![NO_CHILD; width]);
                    ends.push(Vec::new());
                }
                node = children[node][column] as usize;
            }
            ends[node].push(u16::try_from(index).expect("checked above"));
        }
        let states = children.len();
        let mut failure = vec![0usize; states];
        let mut next = vec![vec![0u32; width]; states];
        let mut queue = VecDeque::from([0usize]);
        while let Some(node) = queue.pop_front() {
            if node != 0 {
                let inherited = ends[failure[node]].clone();
                ends[node].extend(inherited);
            }
            for column in 0..width {
                let child = children[node][column];
                if child == NO_CHILD {
                    next[node][column] = if node == 0 {
                        0
                    } else {
                        next[failure[node]][column]
                    };
                } else {
                    let child = child as usize;
                    failure[child] = if node == 0 {
                        0
                    } else {
                        next[failure[node]][column] as usize
                    };
                    next[node][column] = index_u32(child);
                    queue.push_back(child);
                }
            }
        }
        // Renumbered so that the states ending a word come last (the root stays first).
        let mut order: Vec<usize> = (0..states).filter(|&s| ends[s].is_empty()).collect();
        let first_match_row = order.len();
        order.extend((0..states).filter(|&s| !ends[s].is_empty()));
        let mut row_of = vec![0usize; states];
        for (row, &state) in order.iter().enumerate() {
            row_of[state] = row;
        }
        // States ending a word start at a power of two, past every other state and at least
        // as far again from the end: a state ends a word exactly when it has that bit, so
        // four lanes are tested at once by one bit of their states joined by `|`.
        let matching = states - first_match_row;
        let first_match = (first_match_row * width)
            .max(matching * width)
            .next_power_of_two();
        let offset = |row: usize| {
            if row < first_match_row {
                row * width
            } else {
                first_match + (row - first_match_row) * width
            }
        };
        let mut table = vec![0u32; first_match + matching * width];
        let mut ending = Vec::new();
        let mut words_ending = Vec::new();
        for (row, &state) in order.iter().enumerate() {
            for column in 0..width {
                let target = row_of[next[state][column] as usize];
                table[offset(row) + column] = index_u32(offset(target));
            }
            if row >= first_match_row {
                let from = index_u32(words_ending.len());
                words_ending.extend_from_slice(&ends[state]);
                ending.push((from, index_u32(words_ending.len())));
            }
        }
        WordSet {
            columns,
            table,
            width: index_u32(width),
            first_match: index_u32(first_match),
            ending,
            words_ending,
        }
    }

    /// The state after `byte`.
    #[inline(always)]
    fn next(columns: &[u8; 256], table: &[u32], state: u32, byte: u8) -> u32 {
        table[(state + u32::from(columns[usize::from(byte)])) as usize]
    }

    /// Calls `found` with every word that ends at `state` (one at or past `first_match`).
    fn words_at(&self, state: u32, mut found: impl FnMut(usize)) {
        let (from, to) = self.ending[((state - self.first_match) / self.width) as usize];
        for &word in &self.words_ending[from as usize..to as usize] {
            found(usize::from(word));
        }
    }

    /// The state after `byte`, calling `found` with every word that ends there.
    #[cfg(test)]
    fn step(&self, state: u32, byte: u8, found: impl FnMut(usize)) -> u32 {
        let state = Self::next(&self.columns, &self.table, state, byte);
        if state >= self.first_match {
            self.words_at(state, found);
        }
        state
    }

    /// Calls `found(haystack, word)` for every word occurrence in each of `haystacks`.
    ///
    /// Four haystacks are walked at once, a byte of each in turn: a single walk waits for
    /// each table lookup before it can make the next, four independent walks overlap in the
    /// processor. Once fewer than four are left, the idle lanes walk zeros (a byte no word
    /// holds, which keeps them at the start state) beside the others, which go on at the
    /// same pace.
    pub fn each_word_in_all(&self, haystacks: &[&[u8]], mut found: impl FnMut(usize, usize)) {
        static IDLE: [u8; 4096] = [0; 4096];
        // The table's parts as locals, which the compiler keeps in registers.
        let (columns, table, first_match) =
            (&self.columns, self.table.as_slice(), self.first_match);
        // Each lane: which haystack, what is left of it, the walk's state.
        let mut lanes: [(usize, &[u8], u32); 4] = [(0, &[], 0); 4];
        let mut next = 0;
        loop {
            for lane in &mut lanes {
                if lane.1.is_empty() {
                    // Empty haystacks hold no word.
                    while next < haystacks.len() && haystacks[next].is_empty() {
                        next += 1;
                    }
                    if next < haystacks.len() {
                        *lane = (next, haystacks[next], 0);
                        next += 1;
                    }
                }
            }
            // The lanes with bytes left walk until the shortest ends.
            let Some(steps) = lanes
                .iter()
                .map(|lane| lane.1.len())
                .filter(|&left| left > 0)
                .min()
            else {
                break;
            };
            let steps = steps.min(IDLE.len());
            let bytes = lanes.map(|(_, bytes, _)| {
                if bytes.is_empty() {
                    &IDLE[..steps]
                } else {
                    &bytes[..steps]
                }
            });
            let [
                (h0, _, mut s0),
                (h1, _, mut s1),
                (h2, _, mut s2),
                (h3, _, mut s3),
            ] = lanes;
            let walked = bytes[0].iter().zip(bytes[1]).zip(bytes[2]).zip(bytes[3]);
            for (((&x0, &x1), &x2), &x3) in walked {
                s0 = Self::next(columns, table, s0, x0);
                s1 = Self::next(columns, table, s1, x1);
                s2 = Self::next(columns, table, s2, x2);
                s3 = Self::next(columns, table, s3, x3);
                // Fast path: words end at a small share of bytes, and one bit test covers the
                // four lanes (see `first_match`).
                if (s0 | s1 | s2 | s3) & first_match != 0 {
                    for (haystack, state) in [(h0, s0), (h1, s1), (h2, s2), (h3, s3)] {
                        if state >= first_match {
                            self.words_at(state, |word| found(haystack, word));
                        }
                    }
                }
            }
            for (lane, state) in lanes.iter_mut().zip([s0, s1, s2, s3]) {
                if !lane.1.is_empty() {
                    *lane = (lane.0, &lane.1[steps..], state);
                }
            }
        }
    }
}

fn index_u32(index: usize) -> u32 {
    u32::try_from(index).expect("word sets are small")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every (haystack, word, end) found by a plain substring search.
    fn naive(words: &[&str], haystacks: &[&[u8]]) -> Vec<(usize, usize, usize)> {
        let mut found = Vec::new();
        for (h, haystack) in haystacks.iter().enumerate() {
            for end in 1..=haystack.len() {
                for (w, word) in words.iter().enumerate() {
                    if haystack[..end].ends_with(word.as_bytes()) {
                        found.push((h, w, end));
                    }
                }
            }
        }
        found.sort();
        found
    }

    #[test]
    fn every_occurrence_is_found_overlapping_ones_included() {
        let words = [
            "Error",
            "Error:",
            "AssertionError",
            "rror",
            "error",
            "FAIL",
            "FAILED",
            "--- FAIL",
            "aaa",
            "aa",
            "\u{2715}",
            "$ ",
        ];
        let haystacks: Vec<&[u8]> = vec![
            b"AssertionError: Error: expected",
            b"",
            b"--- FAILED --- FAIL:",
            b"aaaaa",
            "\u{2715} fails $ make".as_bytes(),
            b"nothing here",
            b"error error",
            b"x",
            b"AssertionErrorAssertionError",
        ];
        let set = WordSet::new(&words);
        // Ends are found by walking each haystack alone, a byte at a time.
        let mut found = Vec::new();
        for (h, haystack) in haystacks.iter().enumerate() {
            let mut state = 0;
            for (at, &byte) in haystack.iter().enumerate() {
                state = set.step(state, byte, |word| found.push((h, word, at + 1)));
            }
        }
        found.sort();
        assert_eq!(found, naive(&words, &haystacks));
        // Walking four at a time finds the same words in the same haystacks.
        let mut together = Vec::new();
        set.each_word_in_all(&haystacks, |h, word| together.push((h, word)));
        together.sort();
        let mut expected: Vec<(usize, usize)> = naive(&words, &haystacks)
            .into_iter()
            .map(|(h, w, _)| (h, w))
            .collect();
        expected.sort();
        assert_eq!(together, expected);
    }

    /// The triage's own word lists, as the scorer and the category walk use them.
    fn vocabulary() -> Vec<Vec<&'static str>> {
        use crate::triage::vocabulary::*;
        let scored: Vec<&str> = EVIDENCE
            .iter()
            .map(|(word, _)| *word)
            .chain(NOT_EVIDENCE.iter().copied())
            .chain(FAILURE_END_MARKERS.iter().copied())
            .chain(STEP_MARKERS.iter().copied())
            .chain(TEST_MARKERS.iter().copied())
            .collect();
        let category: Vec<&str> = CATEGORY_WORDS
            .iter()
            .flat_map(|(_, _, words)| words.iter().copied())
            .collect();
        vec![scored, category]
    }

    /// Text made of pieces of the words (so that words start, break off and overlap), other
    /// bytes, line breaks and escapes, from a fixed-seed generator.
    fn haystacks(words: &[&str], count: usize, seed: u64) -> Vec<Vec<u8>> {
        let mut state = seed;
        let mut next = move |below: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 33) as usize) % below.max(1)
        };
        (0..count)
            .map(|_| {
                let mut haystack = Vec::new();
                let pieces = next(12);
                for _ in 0..pieces {
                    match next(4) {
                        0 | 1 => {
                            let word = words[next(words.len())].as_bytes();
                            let from = if next(3) == 0 { next(word.len()) } else { 0 };
                            let to = if next(3) == 0 {
                                from + next(word.len() - from) + 1
                            } else {
                                word.len()
                            };
                            haystack.extend_from_slice(&word[from..to]);
                        }
                        2 => haystack.extend(
                            (0..next(6)).map(|_| b" \t:.\"'[]()0123456789\x1b\x00\xff"[next(22)]),
                        ),
                        _ => haystack.extend((0..next(5)).map(|_| b'a' + next(26) as u8)),
                    }
                }
                haystack
            })
            .collect()
    }

    /// Differential test: the dense table walked four lanes at a time finds exactly the
    /// occurrences the `aho-corasick` crate's plain (non-contiguous NFA) automaton reports,
    /// overlapping ones included, over the triage's own word lists.
    #[test]
    fn the_word_automaton_agrees_with_the_aho_corasick_crate() {
        use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
        for (list, words) in vocabulary().iter().enumerate() {
            let set = WordSet::new(words);
            let reference = AhoCorasick::builder()
                .kind(Some(AhoCorasickKind::NoncontiguousNFA))
                .match_kind(MatchKind::Standard)
                .build(words)
                .expect("the words are valid");
            for round in 0..20u64 {
                let texts = haystacks(
                    words,
                    1 + (round as usize * 7) % 40,
                    round * 31 + list as u64,
                );
                let haystacks: Vec<&[u8]> = texts.iter().map(Vec::as_slice).collect();
                let mut found = Vec::new();
                set.each_word_in_all(&haystacks, |haystack, word| found.push((haystack, word)));
                found.sort_unstable();
                let mut expected: Vec<(usize, usize)> = haystacks
                    .iter()
                    .enumerate()
                    .flat_map(|(h, haystack)| {
                        reference
                            .find_overlapping_iter(*haystack)
                            .map(move |found| (h, found.pattern().as_usize()))
                    })
                    .collect();
                expected.sort_unstable();
                assert!(
                    !expected.is_empty() || round == 0,
                    "the text should hold words"
                );
                assert_eq!(found, expected, "list {list}, round {round}");
            }
        }
    }
}
