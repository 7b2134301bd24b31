//! Key lines and the fingerprint made from them: the evidence lines that weighed most inside
//! the excerpt, and a hash of them with what varies between runs masked, so that a re-run of
//! the same failure keeps its fingerprint.

use super::lines::visible_text;
use super::scan::Candidate;
use super::{Category, LineRange};
use crate::redact::Redacted;
use sha2::{Digest, Sha256};

/// The highest-scoring evidence lines inside the excerpt, in log order.
pub(super) fn key_lines(
    log: &[u8],
    candidates: &[Candidate],
    excerpt: &[LineRange],
) -> Vec<Redacted> {
    let mut inside: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| excerpt.iter().any(|range| range.contains(c.line)))
        .collect();
    inside.sort_by(|a, b| b.score.cmp(&a.score).then(a.line.cmp(&b.line)));
    inside.truncate(5);
    inside.sort_by_key(|c| c.line);
    let texts = inside
        .iter()
        .map(|c| visible_text(&log[c.start..c.end]).trim().to_string())
        .collect();
    Redacted::lines(texts)
}

/// A line with what varies between runs of the same failure masked: numbers (times,
/// durations, ids, line numbers), hex strings (hashes, addresses), temporary paths.
pub fn normalise_line(text: &str) -> String {
    let text = text.trim();
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    // Byte by byte, copying runs: every byte looked at is ASCII, and a multi-byte character
    // never holds an ASCII byte, so each run starts and ends on a character boundary.
    while at < bytes.len() {
        let start = at;
        let byte = bytes[at];
        at += 1;
        if byte.is_ascii_digit() {
            // A number, maybe with decimals or hex digits: one `#`.
            while at < bytes.len()
                && matches!(bytes[at], b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' | b'.' | b':')
            {
                at += 1;
            }
            out.push('#');
        } else if byte.is_ascii_hexdigit() {
            // A hex run of 7+ characters with a digit is a hash.
            while at < bytes.len() && bytes[at].is_ascii_alphanumeric() {
                at += 1;
            }
            let word = &bytes[start..at];
            if word.len() >= 7
                && word.iter().all(u8::is_ascii_hexdigit)
                && word.iter().any(u8::is_ascii_digit)
            {
                out.push('#');
            } else {
                out.push_str(&text[start..at]);
            }
        } else {
            while at < bytes.len() && !bytes[at].is_ascii_hexdigit() {
                at += 1;
            }
            out.push_str(&text[start..at]);
        }
    }
    // Temporary directories differ per run. Fast path: a line without a path separator has
    // none, and skips the four searches.
    let paths = if out.contains(['/', '\\']) {
        &["/tmp/", "/var/folders/", "/private/var/", "C:\\Users\\"][..]
    } else {
        &[]
    };
    for prefix in paths {
        while let Some(at) = out.find(prefix) {
            let end = out[at..]
                .find([' ', '\'', '"', ':', ')', ','])
                .map_or(out.len(), |e| at + e);
            out.replace_range(at..end, "<tmp>");
        }
    }
    out
}

/// Stable across re-runs of the same failure, different for different failures.
pub(super) fn fingerprint(key: &[Redacted], category: Category) -> String {
    let mut hasher = Sha256::new();
    hasher.update(category.as_str().as_bytes());
    for line in key.iter().take(5) {
        hasher.update(b"\n");
        hasher.update(normalise_line(line).as_bytes());
    }
    let digest = hasher.finalize();
    digest[..10].iter().map(|b| format!("{b:02x}")).collect()
}
