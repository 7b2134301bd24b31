//! Lines of a raw job log, as the triage numbers them: 1-based, a line ends at `\r\n`, a lone
//! `\r` or `\n`. Nothing here builds an index of every line: the triage asks for the line
//! around a byte offset, and the line number of offsets in increasing order.

use wide::u8x16;

/// Where the line holding `at` starts and ends (the end excludes the terminator).
pub fn line_bounds(log: &[u8], at: usize) -> (usize, usize) {
    let start = memchr::memrchr2(b'\n', b'\r', &log[..at]).map_or(0, |p| p + 1);
    let end = memchr::memchr2(b'\n', b'\r', &log[at..]).map_or(log.len(), |p| at + p);
    (start, end)
}

/// Where the line after the one ending at `end` starts (`log.len()` at the end).
pub fn next_line_start(log: &[u8], end: usize) -> usize {
    match log.get(end) {
        Some(b'\r') if log.get(end + 1) == Some(&b'\n') => end + 2,
        Some(_) => end + 1,
        None => end,
    }
}

/// Where the line before the one starting at `start` starts (`None` for the first line).
pub fn previous_line_start(log: &[u8], start: usize) -> Option<usize> {
    if start == 0 {
        return None;
    }
    // Step over the previous line's terminator (`\n`, `\r` or `\r\n`).
    let mut end = start - 1;
    if log[end] == b'\n' && end > 0 && log[end - 1] == b'\r' {
        end -= 1;
    }
    Some(memchr::memrchr2(b'\n', b'\r', &log[..end]).map_or(0, |p| p + 1))
}

/// Counts line breaks in `log[from..to]`, where a `\r\n` pair is one break.
///
/// A break is a `\n`, or a `\r` not directly followed by `\n` (looking past `to` when the span
/// ends in `\r`). Counted with explicit 16-byte vectors (SSE2 on x86-64, NEON on aarch64), so
/// it stays at memory speed whatever the optimiser does with the caller: an auto-vectorised
/// byte loop here ran five times slower once link-time optimisation re-optimised it for size,
/// and finding each `\r\n` with `memmem` cost more than all the rest.
pub fn count_breaks(log: &[u8], from: usize, to: usize) -> usize {
    let span = &log[from..to];
    if memchr::memchr(b'\r', span).is_none() {
        return bytecount::count(span, b'\n');
    }
    let newline = u8x16::splat(b'\n');
    let carriage_return = u8x16::splat(b'\r');
    let vector =
        |at: usize| u8x16::from(<[u8; 16]>::try_from(&log[at..at + 16]).expect("16 bytes"));
    let mut breaks = 0usize;
    let mut at = from;
    // Whole vectors inside the span whose next byte is in the log too.
    let vectors_end = to.min(log.len() - 1);
    while at + 16 <= vectors_end {
        // Per-lane counters, summed every 255 vectors before they could overflow.
        let mut counts = u8x16::ZERO;
        for _ in 0..255 {
            if at + 16 > vectors_end {
                break;
            }
            let here = vector(at);
            let lone_return = here.simd_eq(carriage_return) & !vector(at + 1).simd_eq(newline);
            // A matching lane is all ones (-1): subtracting it adds one.
            counts -= here.simd_eq(newline) | lone_return;
            at += 16;
        }
        breaks += counts
            .to_array()
            .iter()
            .map(|&count| usize::from(count))
            .sum::<usize>();
    }
    for (offset, &byte) in log[at..to].iter().enumerate() {
        let next = log.get(at + offset + 1);
        breaks += usize::from(byte == b'\n' || (byte == b'\r' && next != Some(&b'\n')));
    }
    breaks
}

/// Turns increasing byte offsets into line numbers, counting breaks only between them.
pub struct LineCounter<'a> {
    log: &'a [u8],
    at: usize,
    line: usize,
    /// Whether the log has any `\r` at all (most do not: then only `\n` is counted).
    has_returns: bool,
}

impl<'a> LineCounter<'a> {
    pub fn new(log: &'a [u8]) -> Self {
        LineCounter {
            log,
            at: 0,
            line: 1,
            has_returns: memchr::memchr(b'\r', log).is_some(),
        }
    }

    /// The 1-based line number of the line starting at `start` (offsets must not decrease).
    pub fn line_of(&mut self, start: usize) -> usize {
        debug_assert!(start >= self.at);
        self.line += if self.has_returns {
            count_breaks(self.log, self.at, start)
        } else {
            bytecount::count(&self.log[self.at..start], b'\n')
        };
        self.at = start;
        self.line
    }
}

/// Where 1-based line `line` starts (`log.len()` past the end). Counts line breaks in large
/// strides (never splitting a `\r\n`), so it runs at memory speed.
pub fn offset_of_line(log: &[u8], line: usize) -> usize {
    offset_of_line_from(log, (1, 0), line)
}

/// Where 1-based line `line` starts, counting from a known line start `(line, offset)` at or
/// before it. Strides start small (the line wanted is usually near) and double.
pub fn offset_of_line_from(log: &[u8], known: (usize, usize), line: usize) -> usize {
    const LONGEST_STRIDE: usize = 64 * 1024;
    let mut stride = 2 * 1024;
    let (mut current, mut at) = known;
    while at + stride < log.len() {
        let mut to = at + stride;
        stride = (stride * 2).min(LONGEST_STRIDE);
        if log[to - 1] == b'\r' && log[to] == b'\n' {
            to += 1;
        }
        let breaks = count_breaks(log, at, to);
        if current + breaks >= line {
            break;
        }
        current += breaks;
        at = to;
    }
    // `at` lies on line `current`: step line by line from there.
    while current < line && at < log.len() {
        let (_, end) = line_bounds(log, at);
        at = next_line_start(log, end);
        current += 1;
    }
    at.min(log.len())
}

/// How many lines the log has (a final terminator does not start another line).
pub fn line_count(log: &[u8]) -> usize {
    if log.is_empty() {
        return 0;
    }
    let breaks = count_breaks(log, 0, log.len());
    let ends_with_break = matches!(log.last(), Some(b'\n' | b'\r'));
    breaks + usize::from(!ends_with_break)
}

/// The text of a line without ANSI escapes, a GitHub Actions timestamp prefix or GitLab's
/// section markers, lossily decoded: what a reader sees.
pub fn visible_text(line: &[u8]) -> String {
    let clean = crate::log_clean::strip_ansi(line);
    // Valid UTF-8 (nearly every line) is taken over without another copy.
    let mut text = String::from_utf8(clean)
        .unwrap_or_else(|invalid| String::from_utf8_lossy(invalid.as_bytes()).into_owned());
    if let Some(rest) = strip_timestamp(&text) {
        let prefix = text.len() - rest.len();
        text.drain(..prefix);
    }
    text
}

/// `2022-06-01T15:41:55.1104930Z message` → `message`.
pub fn strip_timestamp(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    if bytes.len() > 20
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10] == b'T'
        && bytes[..4].iter().all(u8::is_ascii_digit)
    {
        let space = text.find(' ')?;
        if text[..space].ends_with('Z') {
            return Some(&text[space + 1..]);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_terminator_ends_a_line() {
        let log = b"one\r\ntwo\rthree\nfour";
        assert_eq!(line_count(log), 4);
        assert_eq!(line_count(b"a\n"), 1);
        assert_eq!(line_count(b"a\n\n"), 2);
        assert_eq!(line_count(b""), 0);
        let mut counter = LineCounter::new(log);
        assert_eq!(counter.line_of(0), 1);
        assert_eq!(counter.line_of(5), 2);
        assert_eq!(counter.line_of(9), 3);
        assert_eq!(counter.line_of(15), 4);
        assert_eq!(line_bounds(log, 10), (9, 14));
        assert_eq!(next_line_start(log, 3), 5);
        assert_eq!(previous_line_start(log, 5), Some(0));
        assert_eq!(previous_line_start(log, 9), Some(5));
        assert_eq!(previous_line_start(log, 0), None);
        assert_eq!(offset_of_line(log, 1), 0);
        assert_eq!(offset_of_line(log, 3), 9);
        assert_eq!(offset_of_line(log, 9), log.len());
        let long: Vec<u8> = (0..200_000)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        let at = offset_of_line(&long, 150_001);
        assert!(long[at..].starts_with(b"line 150000\n"));
        // Every terminator, with `\r\n` pairs falling across the 64 KB strides.
        let terminators: [&[u8]; 3] = [b"\r\n", b"\r", b"\n"];
        let mixed: Vec<u8> = (0..60_000)
            .flat_map(|i: usize| {
                let mut line = format!("l{i}").into_bytes();
                line.extend_from_slice(terminators[i % 3]);
                line
            })
            .collect();
        for wanted in [1, 2, 9_999, 10_000, 10_001, 33_333, 59_999, 60_000] {
            let at = offset_of_line(&mixed, wanted);
            let text = format!("l{}", wanted - 1);
            assert!(mixed[at..].starts_with(text.as_bytes()), "line {wanted}");
            assert!(
                matches!(mixed[at + text.len()], b'\n' | b'\r'),
                "line {wanted}"
            );
            assert!(
                at == 0 || matches!(mixed[at - 1], b'\n' | b'\r'),
                "line {wanted}"
            );
        }
        assert_eq!(offset_of_line(&mixed, 60_001), mixed.len());
    }

    #[test]
    fn breaks_are_counted_like_a_line_walk_at_every_cut() {
        // 600 bytes of every terminator mix, so runs of 255 bytes end inside `\r\n` pairs.
        let log: Vec<u8> = (0..600u32)
            .map(|i| match (i * 7 + i / 13) % 5 {
                0 => b'\r',
                1 => b'\n',
                _ => b'x',
            })
            .collect();
        let naive = |from: usize, to: usize| {
            (from..to)
                .filter(|&i| log[i] == b'\n' || (log[i] == b'\r' && log.get(i + 1) != Some(&b'\n')))
                .count()
        };
        for from in [0, 1, 254, 255, 256] {
            for to in [from, from + 1, 255, 256, 510, 511, 599, 600] {
                if to >= from {
                    assert_eq!(
                        count_breaks(&log, from, to),
                        naive(from, to),
                        "{from}..{to}"
                    );
                }
            }
        }
    }

    #[test]
    fn visible_text_drops_colour_and_timestamps() {
        assert_eq!(
            visible_text(b"2022-06-01T15:41:55.1104930Z \x1b[31mFAIL\x1b[0m: x"),
            "FAIL: x"
        );
        assert_eq!(visible_text(b"plain"), "plain");
    }
}
