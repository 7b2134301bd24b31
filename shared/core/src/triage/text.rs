//! Small helpers over one line's text, shared by the parts of the triage.

use super::lines::{line_bounds, visible_text};

/// Where `needle` first occurs in a line. Lines are short: the places holding its first byte
/// are checked in turn, which costs less than building a substring searcher for every line.
pub(super) fn find_in(text: &str, needle: &str) -> Option<usize> {
    let (&first, _) = needle.as_bytes().split_first()?;
    memchr::memchr_iter(first, text.as_bytes())
        .find(|&at| text.as_bytes()[at..].starts_with(needle.as_bytes()))
}

pub(super) fn holds(text: &str, needle: &str) -> bool {
    find_in(text, needle).is_some()
}

/// The line holding byte `at`, as (start, end, visible text).
pub(super) fn line_at(log: &[u8], at: usize) -> (usize, usize, String) {
    let (start, end) = line_bounds(log, at);
    (start, end, visible_text(&log[start..end]))
}
