//! Making a raw job log readable: ANSI escape sequences removed, GitLab's collapsible-section
//! markers and GitHub's `##[group]`/`##[endgroup]` markers removed, and carriage-return
//! progress lines collapsed to what a terminal would finally show. Works on bytes, so logs
//! that are not UTF-8 survive.

/// Returns the cleaned log.
pub fn clean_log(raw: &[u8]) -> Vec<u8> {
    let without_escapes = strip_ansi(raw);
    let mut out = Vec::with_capacity(without_escapes.len());
    let mut lines = without_escapes.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let last = lines.peek().is_none();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = strip_gitlab_sections(line);
        // What remains visible after the last carriage return.
        let visible = match line.iter().rposition(|&b| b == b'\r') {
            Some(at) => &line[at + 1..],
            None => &line[..],
        };
        let visible = match visible.strip_prefix(b"##[group]") {
            Some(title) => title,
            None => visible,
        };
        if visible == b"##[endgroup]" {
            continue;
        }
        out.extend_from_slice(visible);
        if !last {
            out.push(b'\n');
        }
    }
    out
}

/// Where the escape sequence starting at `at` (an `ESC`) ends: CSI (`ESC [ … final`), OSC
/// (`ESC ] … BEL | ESC \\`), character set selections (`ESC ( B`) and two-byte escapes.
pub(crate) fn escape_end(raw: &[u8], at: usize) -> usize {
    match raw.get(at + 1) {
        Some(b'[') => {
            let mut j = at + 2;
            while j < raw.len() && !(0x40..=0x7e).contains(&raw[j]) {
                j += 1;
            }
            j + 1
        }
        Some(b']') => {
            let mut j = at + 2;
            while j < raw.len() {
                if raw[j] == 0x07 {
                    return j + 1;
                }
                if raw[j] == 0x1b && raw.get(j + 1) == Some(&b'\\') {
                    return j + 2;
                }
                j += 1;
            }
            j
        }
        // Character set and line attribute selections take one more byte: `ESC ( B`
        // (what `tput sgr0` prints before `ESC [ m`), `ESC # 8`, `ESC % G`.
        Some(b'(' | b')' | b'*' | b'+' | b'-' | b'.' | b'/' | b'#' | b'%') => at + 3,
        Some(_) => at + 2,
        None => at + 1,
    }
}

/// Removes CSI (`ESC [ … final`), OSC (`ESC ] … BEL | ESC \`), character set selections
/// (`ESC ( B`) and two-byte escapes.
pub fn strip_ansi(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] != 0x1b {
            // Copy the run up to the next escape in one go.
            let next = memchr_escape(&raw[i..]).map_or(raw.len(), |at| i + at);
            out.extend_from_slice(&raw[i..next]);
            i = next;
            continue;
        }
        i = escape_end(raw, i);
    }
    out
}

fn memchr_escape(bytes: &[u8]) -> Option<usize> {
    memchr::memchr(0x1b, bytes)
}

/// Removes `section_start:<time>:<name>[options]` and `section_end:<time>:<name>` markers (and
/// the carriage return that follows them).
fn strip_gitlab_sections(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        let rest = &line[i..];
        let marker = [&b"section_start:"[..], &b"section_end:"[..]]
            .into_iter()
            .find(|prefix| rest.starts_with(prefix));
        if let Some(prefix) = marker
            && let Some(length) = section_marker_length(rest, prefix.len())
        {
            i += length;
            if line.get(i) == Some(&b'\r') {
                i += 1;
            }
            continue;
        }
        out.push(line[i]);
        i += 1;
    }
    out
}

/// The length of a marker whose prefix is `prefix_len` long: digits, `:`, a name, optional
/// `[options]`. `None` when it is not a marker after all.
fn section_marker_length(rest: &[u8], prefix_len: usize) -> Option<usize> {
    let mut j = prefix_len;
    let digits_start = j;
    while rest.get(j).is_some_and(u8::is_ascii_digit) {
        j += 1;
    }
    if j == digits_start || rest.get(j) != Some(&b':') {
        return None;
    }
    j += 1;
    let name_start = j;
    while rest
        .get(j)
        .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        j += 1;
    }
    if j == name_start {
        return None;
    }
    if rest.get(j) == Some(&b'[') {
        let close = rest[j..].iter().position(|&b| b == b']')?;
        j += close + 1;
    }
    Some(j)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_colours_and_cursor_codes() {
        assert_eq!(
            strip_ansi(b"\x1b[31;1mERROR\x1b[0m done\x1b[0K"),
            b"ERROR done"
        );
        assert_eq!(strip_ansi(b"\x1b]0;title\x07text"), b"text");
        assert_eq!(strip_ansi(b"\x1b]8;;http://x\x1b\\link"), b"link");
        assert_eq!(strip_ansi(b"tail\x1b"), b"tail");
        assert_eq!(
            strip_ansi(b"test result: \x1b[31mFAILED\x1b(B\x1b[m. 1 failed"),
            b"test result: FAILED. 1 failed"
        );
        assert_eq!(strip_ansi(b"end\x1b("), b"end");
    }

    #[test]
    fn removes_gitlab_sections_and_keeps_headers() {
        let raw = b"\x1b[0Ksection_start:1560896352:prepare_script[collapsed=true]\r\x1b[0K\x1b[36;1mPreparing environment\x1b[0;m\nRunning on runner-1\n\x1b[0Ksection_end:1560896353:prepare_script\r\x1b[0K\n$ make test\n";
        assert_eq!(
            String::from_utf8(clean_log(raw)).unwrap(),
            "Preparing environment\nRunning on runner-1\n\n$ make test\n"
        );
        assert_eq!(clean_log(b"section_start:abc"), b"section_start:abc");
    }

    #[test]
    fn collapses_progress_and_github_groups() {
        let raw = b"Downloading 10%\r20%\r100%\r\n##[group]Run cargo test\ncargo test\n##[endgroup]\nok\r\n";
        assert_eq!(
            String::from_utf8(clean_log(raw)).unwrap(),
            "100%\nRun cargo test\ncargo test\nok\n"
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_survive() {
        assert_eq!(
            clean_log(b"caf\xe9 \x1b[1mbold\x1b[0m\xff"),
            b"caf\xe9 bold\xff"
        );
    }
}
