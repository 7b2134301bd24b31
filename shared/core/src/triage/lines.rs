//! Lines of a raw job log, as the triage numbers them: 1-based, a line ends at `\r\n`, a lone
//! `\r` or `\n`. Nothing here builds an index of every line: the triage asks for the line
//! around a byte offset, and the line number of offsets in increasing order.
#![allow(
    clippy::expect_used,
    reason = "slice-to-array conversions of lengths the loops around them guarantee"
)]

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
/// Fast path: explicit vectors instead of a byte loop (see below for why it is worth it).
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
    let mut breaks = 0usize;
    let mut at = from;
    // Whole vectors inside the span whose next byte is in the log too: each is read as 17
    // bytes, the vector and the same shifted by one.
    let vectors_end = to.min(log.len() - 1);
    while at + 16 <= vectors_end {
        // Per-lane counters, summed every 255 vectors before they could overflow.
        let mut counts = u8x16::ZERO;
        let run_end = vectors_end.min(at + 255 * 16);
        while at + 16 <= run_end {
            let window: &[u8; 17] = log[at..at + 17].try_into().expect("17 bytes");
            let here = u8x16::from(*window.first_chunk::<16>().expect("16 of 17 bytes"));
            let next = u8x16::from(*window.last_chunk::<16>().expect("16 of 17 bytes"));
            // A matching lane is all ones (-1): subtracting it adds one.
            counts -= break_lanes(here, next);
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

/// The lanes of `here` that end a line (all ones), given the 16 bytes that follow each lane.
fn break_lanes(here: u8x16, next: u8x16) -> u8x16 {
    let lone_return = here.simd_eq(u8x16::splat(b'\r')) & !next.simd_eq(u8x16::splat(b'\n'));
    here.simd_eq(u8x16::splat(b'\n')) | lone_return
}

/// Whether the `$` at `at` starts a shell step: `$ command` at a line's start, after a colour
/// code (`…m$ `) or after GitLab's and Travis's `\x1b[0K`.
fn starts_shell_step(log: &[u8], at: usize) -> bool {
    log.get(at + 1) == Some(&b' ') && (at == 0 || matches!(log[at - 1], b'\n' | b'K' | b'm'))
}

/// Bytes per block of the line index.
const BLOCK: usize = 256;

/// The line numbers of a log and where its shell steps start, from one pass over it.
///
/// Fast path: this one pass replaced a line count between the prefilter's matches and a
/// separate search for `$`; with the four-lane word walk it made the triage 1.24x faster.
///
/// The pass counts line breaks (see [`count_breaks`]) and notes every `$` that starts a
/// shell step, 16 bytes at a time; the breaks before each 256-byte block are kept, so the
/// line number of any offset is a lookup and a count of less than one block.
pub struct LineIndex<'a> {
    log: &'a [u8],
    /// Line breaks before each block.
    breaks_before: Vec<usize>,
    breaks: usize,
    shell_steps: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(log: &'a [u8]) -> Self {
        let dollar = u8x16::splat(b'$');
        let mut breaks_before = Vec::with_capacity(log.len() / BLOCK + 1);
        let mut shell_steps = Vec::new();
        let mut note_shell_steps = |from: usize, to: usize| {
            let found = memchr::memchr_iter(b'$', &log[from..to]).map(|offset| from + offset);
            shell_steps.extend(found.filter(|&at| starts_shell_step(log, at)));
        };
        let mut breaks = 0;
        let mut at = 0;
        // Whole blocks followed by at least one byte: each vector is read as 17 bytes, itself
        // and the same shifted by one (a `\r` is a break unless a `\n` follows).
        while at + BLOCK < log.len() {
            breaks_before.push(breaks);
            // Per-lane counters: at most 16 per lane in a block.
            let mut counts = u8x16::ZERO;
            let mut dollars = u8x16::ZERO;
            let block = &log[at..at + BLOCK];
            let shifted = &log[at + 1..at + BLOCK + 1];
            for (here, next) in block.chunks_exact(16).zip(shifted.chunks_exact(16)) {
                let here = u8x16::from(<[u8; 16]>::try_from(here).expect("16 bytes"));
                let next = u8x16::from(<[u8; 16]>::try_from(next).expect("16 bytes"));
                // A matching lane is all ones (-1): subtracting it adds one.
                counts -= break_lanes(here, next);
                dollars |= here.simd_eq(dollar);
            }
            // `$` is rare: a block holding one is read again for it.
            if dollars.any() {
                note_shell_steps(at, at + BLOCK);
            }
            // Each half's eight lanes summed by one multiplication (the sum is at most 128).
            let lanes = counts.to_array();
            let halves = [&lanes[..8], &lanes[8..]].map(|half| {
                let half = u64::from_le_bytes(half.try_into().expect("8 lanes"));
                (half.wrapping_mul(0x0101_0101_0101_0101) >> 56) as usize
            });
            breaks += halves[0] + halves[1];
            at += BLOCK;
        }
        // The last block.
        breaks_before.push(breaks);
        breaks += count_breaks(log, at, log.len());
        note_shell_steps(at, log.len());
        LineIndex {
            log,
            breaks_before,
            breaks,
            shell_steps,
        }
    }

    /// The 1-based number of the line starting at `start`.
    pub fn line_of(&self, start: usize) -> usize {
        let block = (start / BLOCK).min(self.breaks_before.len() - 1);
        let from = block * BLOCK;
        // Less than a block to count: 16 bytes at a time, each vector's breaks as a bit mask,
        // where the 16 bytes after `start` are in the log too (its end is counted whole).
        let in_block = if start + 16 <= self.log.len() {
            let mut breaks = 0;
            let mut at = from;
            while at < start {
                let window: &[u8; 17] = self.log[at..at + 17].try_into().expect("17 bytes");
                let here = u8x16::from(*window.first_chunk::<16>().expect("16 of 17 bytes"));
                let next = u8x16::from(*window.last_chunk::<16>().expect("16 of 17 bytes"));
                let mut lanes = break_lanes(here, next).to_bitmask();
                if start - at < 16 {
                    lanes &= (1 << (start - at)) - 1;
                }
                breaks += lanes.count_ones() as usize;
                at += 16;
            }
            breaks
        } else {
            count_breaks(self.log, from, start)
        };
        1 + self.breaks_before[block] + in_block
    }

    /// Where 1-based line `line` ends, its terminator excluded (the log's end for the last
    /// line): found from the block where its break is, without reading the lines before.
    pub fn line_end(&self, line: usize) -> usize {
        // The last block with fewer breaks before it than `line` holds the line's break.
        let block = self
            .breaks_before
            .partition_point(|&before| before < line)
            .saturating_sub(1);
        let mut left = line - self.breaks_before[block];
        let from = block * BLOCK;
        for at in memchr::memchr2_iter(b'\n', b'\r', &self.log[from..]).map(|at| from + at) {
            // A `\r` directly before `\n` is part of the `\n`'s break.
            if self.log[at] == b'\r' && self.log.get(at + 1) == Some(&b'\n') {
                continue;
            }
            left -= 1;
            if left == 0 {
                let pair = self.log[at] == b'\n' && at > 0 && self.log[at - 1] == b'\r';
                return at - usize::from(pair);
            }
        }
        self.log.len()
    }

    /// Where 1-based line `line` starts.
    pub fn line_start(&self, line: usize) -> usize {
        if line <= 1 {
            0
        } else {
            next_line_start(self.log, self.line_end(line - 1))
        }
    }

    /// How many lines the log has (a last line without a terminator counts).
    pub fn total_lines(&self) -> usize {
        self.breaks + usize::from(!matches!(self.log.last(), None | Some(b'\n' | b'\r')))
    }

    /// Where shell steps start, in log order.
    pub fn shell_steps(&self) -> &[usize] {
        &self.shell_steps
    }
}

/// The text of a line without ANSI escapes or a GitHub Actions timestamp prefix, lossily
/// decoded: what a reader sees.
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

    /// Breaks counted one byte at a time: a `\n`, or a `\r` not followed by `\n`.
    fn naive_breaks(log: &[u8], from: usize, to: usize) -> usize {
        (from..to)
            .filter(|&i| log[i] == b'\n' || (log[i] == b'\r' && log.get(i + 1) != Some(&b'\n')))
            .count()
    }

    #[test]
    fn every_terminator_ends_a_line() {
        let log = b"one\r\ntwo\rthree\nfour";
        assert_eq!(count_breaks(log, 0, log.len()), 3);
        // A span ending inside a `\r\n` pair does not count its `\r`.
        assert_eq!(count_breaks(log, 0, 4), 0);
        assert_eq!(count_breaks(log, 0, 5), 1);
        let index = LineIndex::new(log);
        assert_eq!(index.line_of(0), 1);
        assert_eq!(index.line_of(5), 2);
        assert_eq!(index.line_of(9), 3);
        assert_eq!(index.line_of(15), 4);
        assert_eq!(index.total_lines(), 4);
        assert_eq!(line_bounds(log, 10), (9, 14));
        assert_eq!(next_line_start(log, 3), 5);
        assert_eq!(previous_line_start(log, 5), Some(0));
        assert_eq!(previous_line_start(log, 9), Some(5));
        assert_eq!(previous_line_start(log, 0), None);
    }

    #[test]
    fn breaks_are_counted_like_a_line_walk_at_every_cut() {
        // Every terminator mix, so 16-byte vectors end inside `\r\n` pairs.
        let log: Vec<u8> = (0..600u32)
            .map(|i| match (i * 7 + i / 13) % 5 {
                0 => b'\r',
                1 => b'\n',
                _ => b'x',
            })
            .collect();
        for from in [0, 1, 15, 16, 17, 254, 255, 256] {
            for to in [
                from,
                from + 1,
                from + 16,
                from + 17,
                255,
                256,
                510,
                511,
                599,
                600,
            ] {
                if to >= from && to <= log.len() {
                    assert_eq!(
                        count_breaks(&log, from, to),
                        naive_breaks(&log, from, to),
                        "{from}..{to}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_index_numbers_every_line_and_finds_every_shell_step() {
        // Lines of every length and terminator, some starting a shell step, so that blocks
        // and vectors end anywhere, inside `\r\n` pairs and between `$` and its space.
        let terminators: [&[u8]; 3] = [b"\r\n", b"\r", b"\n"];
        let prefixes: [&[u8]; 5] = [
            b"",
            b"$ make",
            b"\x1b[0K$ npm test",
            b"x $ y",
            b"\x1b[32;1m$ go",
        ];
        let mut log = Vec::new();
        let mut starts = Vec::new();
        let mut ends = Vec::new();
        let mut steps = Vec::new();
        for i in 0..3_000usize {
            starts.push(log.len());
            let prefix = prefixes[i % 5];
            // `$ ` starts a step after `\n` or an escape sequence (not after a lone `\r`).
            let after_newline = i == 0 || terminators[(i - 1) % 3].ends_with(b"\n");
            if let Some(dollar) = prefix.iter().position(|&b| b == b'$')
                && i % 5 != 3
                && (dollar > 0 || after_newline)
            {
                steps.push(log.len() + dollar);
            }
            log.extend_from_slice(prefix);
            log.extend(std::iter::repeat_n(b'-', (i * 37) % 300));
            ends.push(log.len());
            log.extend_from_slice(terminators[i % 3]);
        }
        for len in [
            log.len(),
            log.len() - 1,
            4_096,
            4_097,
            257,
            256,
            255,
            17,
            1,
            0,
        ] {
            let log = &log[..len];
            let index = LineIndex::new(log);
            for (line, &start) in starts.iter().enumerate().filter(|(_, s)| **s < len) {
                assert_eq!(
                    index.line_of(start),
                    line + 1,
                    "line {} of {len} bytes",
                    line + 1
                );
                assert_eq!(
                    index.line_start(line + 1),
                    start,
                    "the start of line {}",
                    line + 1
                );
                assert_eq!(
                    index.line_end(line + 1),
                    ends[line].min(len),
                    "the end of line {} of {len} bytes",
                    line + 1
                );
            }
            let lines = naive_breaks(log, 0, len)
                + usize::from(!matches!(log.last(), None | Some(b'\n' | b'\r')));
            assert_eq!(index.total_lines(), lines, "{len} bytes");
            let expected: Vec<usize> = steps
                .iter()
                .copied()
                .filter(|&step| step + 1 < len)
                .collect();
            assert_eq!(index.shell_steps(), expected, "{len} bytes");
        }
    }

    #[test]
    fn long_spans_are_counted_whole() {
        // Nothing but breaks: every lane of every vector counts, across many runs of 255
        // vectors (a per-lane counter kept longer would wrap).
        let newlines = vec![b'\n'; 50_000];
        assert_eq!(count_breaks(&newlines, 0, newlines.len()), 50_000);
        let returns = vec![b'\r'; 50_000];
        assert_eq!(count_breaks(&returns, 3, returns.len()), 49_997);
        // Lines with every terminator, cut anywhere.
        let terminators: [&[u8]; 3] = [b"\r\n", b"\r", b"\n"];
        let mixed: Vec<u8> = (0..20_000)
            .flat_map(|i: usize| {
                let mut line = format!("l{i}").into_bytes();
                line.extend_from_slice(terminators[i % 3]);
                line
            })
            .collect();
        assert_eq!(count_breaks(&mixed, 0, mixed.len()), 20_000);
        for (from, to) in [
            (0, 4_081),
            (1, 65_537),
            (4_079, 4_081),
            (7, mixed.len() - 1),
        ] {
            assert_eq!(
                count_breaks(&mixed, from, to),
                naive_breaks(&mixed, from, to)
            );
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
