//! The last green run of the same job, as evidence: a line of the failed log that also
//! occurs in the last successful run's log (once both are normalised, see [`normalise`]) says
//! nothing about why this run failed, and the new lines near the failure are where it says
//! why. The green log's normalised lines are hashed once into a set; the failed log's lines
//! are then looked up one by one, so the comparison costs time linear in both logs.

mod normalise;
#[cfg(test)]
mod tests;

use normalise::normalise_into;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// The last successful run's log, ready to compare against: the hashes of its lines.
#[derive(Debug, Clone, Default)]
pub struct LastSuccess {
    lines: HashSet<u64, BuildHasherDefault<AlreadyHashed>>,
}

impl LastSuccess {
    /// Reads the green run's log (raw bytes; lines end at `\r\n`, a lone `\r` or `\n`).
    pub fn from_log(log: &[u8]) -> Self {
        let mut lines = HashSet::default();
        let mut buffer = Vec::with_capacity(256);
        // Fast path: a line the log printed before, byte for byte (progress bars, rulers,
        // the same message again), is not normalised again: over a third of a build log's
        // bytes are such repeats, and hashing raw bytes costs a fraction of normalising them.
        let mut raw_lines: HashSet<u64, BuildHasherDefault<AlreadyHashed>> = HashSet::default();
        for line in split_lines(log) {
            if !raw_lines.insert(hash_bytes(line)) {
                continue;
            }
            if let Some(hash) = line_hash(line, &mut buffer) {
                lines.insert(hash);
            }
        }
        LastSuccess { lines }
    }

    /// How many different lines (once normalised) the green log holds.
    pub fn distinct_lines(&self) -> usize {
        self.lines.len()
    }
}

/// What the green run tells about one line of the failed log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum News {
    /// Nothing visible (blank, or only a timestamp).
    Blank,
    /// The green run printed the same line.
    Seen,
    New,
}

/// The failed log's lines compared with the green run's.
#[derive(Debug, Clone)]
pub(super) struct Comparison {
    /// By 1-based line number (index 0 is unused).
    news: Vec<News>,
    seen: usize,
    new: usize,
}

impl Comparison {
    pub fn new(log: &[u8], green: &LastSuccess) -> Self {
        let mut news = vec![News::Blank];
        let (mut seen, mut new) = (0, 0);
        let mut buffer = Vec::with_capacity(256);
        // Fast path: lines repeated byte for byte are looked up once (see `from_log`).
        let mut repeated: HashMap<u64, News, BuildHasherDefault<AlreadyHashed>> =
            HashMap::default();
        for line in split_lines(log) {
            let line_news = *repeated.entry(hash_bytes(line)).or_insert_with(|| {
                match line_hash(line, &mut buffer) {
                    None => News::Blank,
                    Some(hash) if green.lines.contains(&hash) => News::Seen,
                    Some(_) => News::New,
                }
            });
            match line_news {
                News::Blank => {}
                News::Seen => seen += 1,
                News::New => new += 1,
            }
            news.push(line_news);
        }
        Comparison { news, seen, new }
    }

    /// What the green run tells about 1-based line `line` (past the end: blank).
    pub fn news(&self, line: usize) -> News {
        self.news.get(line).copied().unwrap_or(News::Blank)
    }

    pub fn is_new(&self, line: usize) -> bool {
        self.news(line) == News::New
    }

    /// Lines with something visible that the green run also printed, and those it did not.
    pub fn seen_and_new(&self) -> (usize, usize) {
        (self.seen, self.new)
    }
}

/// The lines of a log without their terminators, as the triage numbers them.
fn split_lines(log: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= log.len() {
            return None;
        }
        let end = memchr::memchr2(b'\n', b'\r', &log[at..]).map_or(log.len(), |p| at + p);
        let line = &log[at..end];
        at = super::lines::next_line_start(log, end);
        Some(line)
    })
}

/// The hash of a line's normalised form; `None` when it shows nothing.
fn line_hash(line: &[u8], buffer: &mut Vec<u8>) -> Option<u64> {
    normalise_into(line, buffer);
    (!buffer.is_empty()).then(|| hash_bytes(buffer))
}

/// A 64-bit hash of a short text, eight bytes at a time (collisions between a log's few
/// thousand distinct lines are vanishingly rare at 64 bits).
fn hash_bytes(bytes: &[u8]) -> u64 {
    const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut hash = bytes.len() as u64;
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let word = u64::from_le_bytes(word.try_into().unwrap_or_default());
        hash = (hash ^ word).wrapping_mul(MULTIPLIER).rotate_left(29);
    }
    let mut last = [0u8; 8];
    last[..words.remainder().len()].copy_from_slice(words.remainder());
    hash = (hash ^ u64::from_le_bytes(last)).wrapping_mul(MULTIPLIER);
    // The finaliser of MurmurHash3, so every input bit reaches every output bit.
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

/// The set's keys are hashes already: hashing them again would only cost time.
#[derive(Debug, Clone, Copy, Default)]
struct AlreadyHashed(u64);

impl Hasher for AlreadyHashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 << 8) | u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

#[cfg(test)]
mod comparison_tests {
    use super::*;

    #[test]
    fn lines_are_numbered_as_the_triage_numbers_them() {
        let green = LastSuccess::from_log(b"a\r\nb\rc\n");
        let compared = Comparison::new(b"a\r\nx\r\n\rc", &green);
        assert_eq!(
            (1..=5).map(|line| compared.news(line)).collect::<Vec<_>>(),
            [News::Seen, News::New, News::Blank, News::Seen, News::Blank]
        );
        assert_eq!(compared.seen_and_new(), (2, 1));
        assert_eq!(green.distinct_lines(), 3);
    }

    #[test]
    fn the_hash_tells_texts_apart() {
        let texts: Vec<String> = (0..10_000)
            .map(|i| format!("line {i:x} of the log"))
            .collect();
        let hashes: HashSet<u64> = texts.iter().map(|t| hash_bytes(t.as_bytes())).collect();
        assert_eq!(hashes.len(), texts.len());
        assert_ne!(hash_bytes(b"ab"), hash_bytes(b"ab\0"));
    }
}
