//! The category of a failure (compile, test, lint, dependency, infrastructure,
//! configuration), from the groups of words its excerpt holds.

use super::Category;
use super::excerpt::Span;
use super::lines::{LineIndex, next_line_start};
use super::vocabulary::CATEGORY_WORDS;
use super::words::WordSet;
use crate::redact::Redacted;
use std::borrow::Cow;
use std::sync::OnceLock;

/// Which groups of category words the excerpt holds, read from its bytes: at most 64 KB,
/// taken from its end (where the job failed) when the excerpt is longer. The words are plain
/// ASCII without line breaks, so a line break ends any word in progress and the text is
/// walked in four pieces cut at line breaks, at once, without being cut into lines; only
/// pieces holding colour codes are copied, without them.
///
/// Fast path: the pieces go through the word automaton four at a time, like the scored lines,
/// instead of the excerpt being cut into lines and each decoded (part of a 1.09x round).
pub(super) fn category_words_in(
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
pub(super) fn categorise(
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
