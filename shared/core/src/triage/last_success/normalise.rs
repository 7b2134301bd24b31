//! A line as the comparison with the last green run sees it: what differs between two runs of
//! the same job without saying anything about the failure is masked, so the same line of two
//! runs reads the same.
//!
//! The rules, each with a test below that fails without it:
//! - colour codes and GitHub's timestamp prefix are dropped, runs of spaces and tabs become one
//!   space, and a run of one punctuation character (a ruler, dots that align a column) is
//!   shortened to three;
//! - numbers become `#` (times, dates, counters, sizes, line numbers, ports, versions),
//!   except that a plain zero stays `0`: `Failures: 0` and `Failures: 2` differ;
//! - a duration or a size, a number with its unit, becomes `#` whatever the unit (`23.2 s`,
//!   `01:51 min`, `5m32s`, `4.1 kB`, `346M`);
//! - hex strings of 7 or more characters with a digit (commit and image hashes, addresses)
//!   and UUIDs become `#`;
//! - month and weekday names next to a number or to each other (`Tue Sep 28`) become `#`;
//! - temporary paths (`/tmp/…`, `/var/folders/…`, GitHub's `_temp`, Windows' `\Temp\`) become
//!   `<tmp>` up to the end of the path.

use crate::log_clean::escape_end;

/// What each byte is, for the rules.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Other,
    Space,
    Digit,
    Letter,
    /// Characters whose runs are shortened (rulers).
    Ruler,
    Escape,
    /// `/` and `\`: a temporary path may start here.
    Slash,
}

const fn classes() -> [Class; 256] {
    let mut table = [Class::Other; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = match b {
            b' ' | b'\t' => Class::Space,
            b'0'..=b'9' => Class::Digit,
            b'a'..=b'z' | b'A'..=b'Z' => Class::Letter,
            b'-' | b'=' | b'*' | b'.' | b'#' | b'~' | b'_' | b'+' => Class::Ruler,
            0x1b => Class::Escape,
            b'/' | b'\\' => Class::Slash,
            _ => Class::Other,
        };
        byte += 1;
    }
    table
}

static CLASSES: [Class; 256] = classes();

/// Runs of one ruler character longer than this are shortened to it.
const RULER_KEPT: usize = 3;

/// Writes the normalised form of one line (without its terminator) into `out`, which is
/// cleared first; an empty `out` means the line shows nothing.
pub(super) fn normalise_into(line: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.reserve(line.len());
    let line = strip_timestamp_prefix(line);
    let mut at = 0;
    // Whether a space is owed before the next byte written (runs of blanks become one, and
    // none is written at the start or the end).
    let mut space = false;
    while at < line.len() {
        let byte = line[at];
        let class = CLASSES[usize::from(byte)];
        if class == Class::Space {
            space = !out.is_empty();
            at += 1;
            continue;
        }
        if class == Class::Escape {
            at = escape_end(line, at);
            continue;
        }
        if space {
            out.push(b' ');
            space = false;
        }
        at = match class {
            Class::Letter => word(line, at, out),
            Class::Digit => match uuid_end(line, at) {
                Some(end) => {
                    out.push(b'#');
                    end
                }
                None => number(line, at, out),
            },
            // A single punctuation character (`org.example`) is no ruler.
            Class::Ruler if line.get(at + 1) != Some(&byte) => {
                out.push(byte);
                at + 1
            }
            Class::Ruler => ruler(line, at, out),
            Class::Slash => temporary_path(line, at, out).unwrap_or_else(|| {
                out.push(byte);
                at + 1
            }),
            Class::Other | Class::Space | Class::Escape => {
                out.push(byte);
                at + 1
            }
        };
    }
}

/// GitHub Actions' `2022-06-01T15:41:55.1104930Z ` before every line.
fn strip_timestamp_prefix(line: &[u8]) -> &[u8] {
    let stamped = line.len() > 20
        && line[4] == b'-'
        && line[7] == b'-'
        && line[10] == b'T'
        && line[..4].iter().all(u8::is_ascii_digit);
    if !stamped {
        return line;
    }
    match memchr::memchr(b' ', line) {
        Some(space) if line[space - 1] == b'Z' => &line[space + 1..],
        _ => line,
    }
}

/// A word from a letter on: its letters, copied (a digit after them starts a number of its
/// own: `test12` is `test#`), unless the word is a hash (7 or more hex characters with a
/// digit: `cafe01d`), a UUID, or a month or weekday name in a date.
fn word(line: &[u8], at: usize, out: &mut Vec<u8>) -> usize {
    // The letters are copied as they are read (most words are plain), and taken back when
    // the word turns out to be masked.
    let written = out.len();
    let mut letters_end = at;
    while let Some(&byte) = line.get(letters_end) {
        if !byte.is_ascii_alphabetic() {
            break;
        }
        out.push(byte);
        letters_end += 1;
    }
    let starts_word = at == 0 || !line[at - 1].is_ascii_alphanumeric();
    // Only letters that go on with a digit or a dash may be a hash or a UUID.
    if starts_word
        && matches!(line.get(letters_end), Some(b'0'..=b'9' | b'-'))
        && let Some(end) = uuid_end(line, at).or_else(|| hash_end(line, at))
    {
        out.truncate(written);
        out.push(b'#');
        return end;
    }
    if letters_end - at == 3
        && line[at].is_ascii_uppercase()
        && is_date_name(&line[at..letters_end])
        && in_a_date(line, at, letters_end, &out[..written])
    {
        out.truncate(written);
        out.push(b'#');
    }
    letters_end
}

/// Where a hash starting at `at` ends: a run of 7 or more hex characters with a digit.
fn hash_end(line: &[u8], at: usize) -> Option<usize> {
    let end = at
        + line[at..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
    let word = &line[at..end];
    let hash = word.len() >= 7
        && word.iter().all(u8::is_ascii_hexdigit)
        && word.iter().any(u8::is_ascii_digit);
    hash.then_some(end)
}

/// A number from a digit on: digits with the hex letters, points, colons and commas between
/// them (`12`, `0.25`, `10:41:03`, `1,024`, `7f3a`, `0x7ffe`) becomes `#`, a plain zero `0`.
fn number(line: &[u8], at: usize, out: &mut Vec<u8>) -> usize {
    let mut end = at;
    let mut zeros_only = true;
    // `0x` opens a hex number.
    if line[at..].starts_with(b"0x") && line.get(at + 2).is_some_and(u8::is_ascii_hexdigit) {
        end += 2;
        zeros_only = false;
    }
    while end < line.len() {
        let byte = line[end];
        if byte.is_ascii_hexdigit() {
            zeros_only &= byte == b'0';
        } else if matches!(byte, b'.' | b':' | b',')
            && line.get(end + 1).is_some_and(u8::is_ascii_digit)
        {
            zeros_only = false;
        } else {
            break;
        }
        end += 1;
    }
    if let Some(unit_end) = unit_end(line, end) {
        out.push(b'#');
        return unit_end;
    }
    out.push(if zeros_only { b'0' } else { b'#' });
    end
}

/// Where a unit of time or size right after a number (past one space) ends.
fn unit_end(line: &[u8], at: usize) -> Option<usize> {
    let from = if line.get(at) == Some(&b' ') {
        at + 1
    } else {
        at
    };
    // Fast path: after most numbers comes no letter that starts a unit.
    if !matches!(
        line.get(from),
        Some(
            b'n' | b'u'
                | b'm'
                | b's'
                | b'h'
                | b'd'
                | b'B'
                | b'b'
                | b'K'
                | b'k'
                | b'M'
                | b'G'
                | b'T'
        )
    ) {
        return None;
    }
    let length = line[from..]
        .iter()
        .take_while(|b| b.is_ascii_alphabetic())
        .count();
    let unit = matches!(
        &line[from..from + length],
        b"ns"
            | b"us"
            | b"ms"
            | b"s"
            | b"sec"
            | b"secs"
            | b"second"
            | b"seconds"
            | b"m"
            | b"min"
            | b"mins"
            | b"minute"
            | b"minutes"
            | b"h"
            | b"hr"
            | b"hrs"
            | b"hour"
            | b"hours"
            | b"d"
            | b"days"
            | b"B"
            | b"bytes"
            | b"K"
            | b"k"
            | b"KB"
            | b"kB"
            | b"KiB"
            | b"M"
            | b"MB"
            | b"MiB"
            | b"G"
            | b"GB"
            | b"GiB"
            | b"TB"
    );
    unit.then_some(from + length)
}

/// `8-4-4-4-12` hex digits.
fn uuid_end(line: &[u8], at: usize) -> Option<usize> {
    // Fast path: most words are not eight characters and a dash.
    if line.get(at + 8) != Some(&b'-') {
        return None;
    }
    let candidate = line.get(at..at + 36)?;
    let shaped = candidate.iter().enumerate().all(|(i, b)| match i {
        8 | 13 | 18 | 23 => *b == b'-',
        _ => b.is_ascii_hexdigit(),
    });
    let ends_there = line.get(at + 36).is_none_or(|b| !b.is_ascii_alphanumeric());
    (shaped && ends_there).then_some(at + 36)
}

fn is_date_name(word: &[u8]) -> bool {
    const NAMES: [&[u8]; 19] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec", b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun",
    ];
    NAMES.contains(&word)
}

/// Whether the name at `start..end` stands in a date: a number or another date name right
/// after it (past one space), or a number right before it.
fn in_a_date(line: &[u8], start: usize, end: usize, out: &[u8]) -> bool {
    let after = line[end..].strip_prefix(b" ").unwrap_or(&line[end..]);
    let number_after = after.first().is_some_and(u8::is_ascii_digit);
    let name_after = after.len() >= 3
        && is_date_name(&after[..3])
        && after.get(3).is_none_or(|b| !b.is_ascii_alphabetic());
    let separated = start == 0 || !line[start - 1].is_ascii_alphanumeric();
    let number_before = out.strip_suffix(b" ").unwrap_or(out).ends_with(b"#");
    separated && (number_after || name_after || number_before)
}

/// A run of one punctuation character, at most [`RULER_KEPT`] of it written.
fn ruler(line: &[u8], at: usize, out: &mut Vec<u8>) -> usize {
    let byte = line[at];
    let run = line[at..].iter().take_while(|&&b| b == byte).count();
    out.extend(std::iter::repeat_n(byte, run.min(RULER_KEPT)));
    at + run
}

/// At a `/` or `\`: a temporary directory's path, written as `<tmp>`, returning where it
/// ends; `None` when none starts here.
fn temporary_path(line: &[u8], at: usize, out: &mut Vec<u8>) -> Option<usize> {
    const TEMPORARY: [&[u8]; 6] = [
        b"/tmp/",
        b"/var/tmp/",
        b"/var/folders/",
        b"/private/var/folders/",
        b"/_temp/",
        b"\\Temp\\",
    ];
    let rest = &line[at..];
    // Fast path: most path separators are not followed by the start of a temporary one.
    if !matches!(rest.get(1), Some(b't' | b'v' | b'p' | b'_' | b'T')) {
        return None;
    }
    TEMPORARY.iter().find(|prefix| rest.starts_with(prefix))?;
    let length = rest
        .iter()
        .position(|b| {
            matches!(
                b,
                b' ' | b'\t' | b'\'' | b'"' | b':' | b')' | b',' | b']' | b'>'
            )
        })
        .unwrap_or(rest.len());
    out.extend_from_slice(b"<tmp>");
    Some(at + length)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normal(line: &str) -> String {
        let mut out = Vec::new();
        normalise_into(line.as_bytes(), &mut out);
        String::from_utf8(out).expect("normalised text stays UTF-8")
    }

    /// Two lines of two runs that should read the same.
    fn same(first: &str, second: &str) {
        assert_eq!(normal(first), normal(second), "{first:?} vs {second:?}");
    }

    fn differ(first: &str, second: &str) {
        assert_ne!(normal(first), normal(second), "{first:?} vs {second:?}");
    }

    #[test]
    fn colour_codes_prefixes_blanks_and_rulers_do_not_count() {
        same(
            "\x1b[1;31m[ERROR]\x1b[0m Tests run: 3",
            "[ERROR] Tests run:   3",
        );
        same(
            "2022-05-30T09:11:02.8574149Z BUILD SUCCESS",
            "2022-06-16T13:41:36.0262878Z BUILD SUCCESS",
        );
        same(
            "[INFO] --------< se.kth:sorald >---------",
            "[INFO] -----------< se.kth:sorald >------------",
        );
        same(
            "Sorald-API 0.0.1 .......... SUCCESS [  6.945 s]",
            "Sorald-API 0.0.2 ................ SUCCESS [ 16.9 s]",
        );
        assert_eq!(normal("2022-05-30T09:11:02.8574149Z "), "");
        assert_eq!(normal("  \t "), "");
    }

    #[test]
    fn timestamps_and_dates_are_masked() {
        same(
            "[INFO] Finished at: 2021-09-28T19:34:41+02:00",
            "[INFO] Finished at: 2022-04-04T12:28:14+02:00",
        );
        same(
            "Build started Tue Sep 28 19:34:41 CEST 2021",
            "Build started Mon Oct 3 08:02:11 CEST 2022",
        );
        // A name that is not in a date stays.
        differ("Sep is a word", "Oct is a word");
    }

    #[test]
    fn durations_and_sizes_are_masked_whatever_their_unit() {
        same("Total time:  23.253 s", "Total time:  01:51 min");
        same("took 5m32s", "took 12m3s");
        same("BUILD FAILED in 13s", "BUILD FAILED in 2 minutes");
        same("Final Memory: 25M/346M", "Final Memory: 31M/1024M");
        differ("waited 3 s", "waited 3 steps");
    }

    #[test]
    fn counters_and_ports_are_masked() {
        same("Tests run: 29, Failures: 0", "Tests run: 31, Failures: 0");
        same("Progress (1): 1.8/1.8 MB", "Progress (1): 4.1 kB/1.8 MB");
        same(
            "Listening on http://localhost:43817/",
            "Listening on http://localhost:38211/",
        );
    }

    #[test]
    fn a_zero_count_is_not_a_nonzero_one() {
        differ("Tests run: 29, Failures: 0", "Tests run: 29, Failures: 2");
        differ("0 errors", "3 errors");
        same("Time elapsed: 0.000 s", "Time elapsed: 0.421 s");
    }

    #[test]
    fn hashes_addresses_and_uuids_are_masked() {
        same(
            "HEAD is now at deadbeefcafe01 Merge",
            "HEAD is now at fa11ed1234567 Merge",
        );
        same("at 0x7ffe3a2c", "at 0x55d1f00d");
        same("at 0xdeadbeef", "at 0x55d1f00d");
        same(
            "overriding HOME='/home/runner/work/x/fb6e140d-2af7-45d7-b407-9d916f21e9a9'",
            "overriding HOME='/home/runner/work/x/df99e90f-cb97-4b55-ba34-2585fd34af5b'",
        );
        // Words made of hex letters stay.
        differ("decade", "facade");
    }

    #[test]
    fn temporary_paths_are_masked() {
        same(
            "created /tmp/tmpk3j_x9q/setup.py: ok",
            "created /tmp/tmpzz81lma/setup.py: ok",
        );
        same(
            "HOME=/home/runner/work/_temp/abc_def then",
            "HOME=/home/runner/work/_temp/xyz_uvw then",
        );
        same(
            "cache at /var/folders/zq/kd8s_q/T/x",
            "cache at /var/folders/ab/mmhj_w/T/x",
        );
        differ("/src/app/main.rs", "/src/lib/main.rs");
    }
}
