//! Job logs (traces): stored compressed in chunks under DynamoDB's item limit, replaced whole
//! by a log push or appended to part by part with the GitLab runner's range semantics.

use crate::ports::StoreError;
use crate::repo::RepoPath;
use std::future::Future;

/// Raw bytes per stored chunk: compressed, a chunk stays under the 400 KB item limit even
/// when the bytes do not compress at all.
pub const CHUNK_RAW_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceKey {
    pub provider: String,
    pub repo: RepoPath,
    pub job_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    /// The part was stored; the trace is now this long.
    Appended { length: u64 },
    /// The part does not start at the end of the stored trace, which is this long.
    OutOfRange { length: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceSlice {
    pub bytes: Vec<u8>,
    pub offset: u64,
    pub total_length: u64,
}

/// A replacement being written piece by piece: its chunks stay invisible to readers until
/// it is committed, and a discarded one leaves the stored trace as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replacement {
    /// Unique to this replacement, so two writers never share chunks.
    pub generation: u64,
    /// The generation readers see now (`None` when no trace is stored).
    pub previous: Option<u64>,
    /// When the written items expire (Unix seconds); `None` keeps them.
    pub expires_at: Option<i64>,
}

pub trait TraceStore: Send + Sync {
    /// Replaces the whole trace; returns its length.
    fn replace(
        &self,
        key: &TraceKey,
        bytes: &[u8],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Starts a replacement written in pieces (for logs too long to hold in memory). `keep`
    /// overrides the store's retention for the new trace.
    fn begin_replacement(
        &self,
        key: &TraceKey,
        keep: Option<chrono::Duration>,
    ) -> impl Future<Output = Result<Replacement, StoreError>> + Send;

    /// Writes the bytes at `offset` of a replacement; offsets must be multiples of
    /// [`CHUNK_RAW_BYTES`] and pieces must follow each other.
    fn write_replacement(
        &self,
        key: &TraceKey,
        replacement: &Replacement,
        offset: u64,
        bytes: &[u8],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Makes a replacement of `length` bytes the stored trace. `Conflict` when another writer
    /// changed the trace since it began (the replacement is then discarded).
    fn commit_replacement(
        &self,
        key: &TraceKey,
        replacement: Replacement,
        length: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Drops a replacement's chunks (best effort; left-overs expire with the trace's TTL).
    fn discard_replacement(
        &self,
        key: &TraceKey,
        replacement: Replacement,
    ) -> impl Future<Output = ()> + Send;

    /// Appends `part` if `start` is the current length (0 for a trace not stored yet).
    fn append(
        &self,
        key: &TraceKey,
        start: u64,
        part: &[u8],
    ) -> impl Future<Output = Result<AppendOutcome, StoreError>> + Send;

    /// The stored length; `None` when there is no trace.
    fn length(
        &self,
        key: &TraceKey,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send;

    /// Up to `limit` bytes from `offset`; `None` when there is no trace.
    fn read(
        &self,
        key: &TraceKey,
        offset: u64,
        limit: Option<u64>,
    ) -> impl Future<Output = Result<Option<TraceSlice>, StoreError>> + Send;
}

/// Gathers a replacement's bytes into whole chunks, so a log of any length is written with a
/// bounded buffer: push pieces as they arrive, write what [`ChunkBuffer::ready`] hands out.
#[derive(Debug)]
pub struct ChunkBuffer {
    pending: Vec<u8>,
    pending_offset: u64,
    flush_at: usize,
}

impl ChunkBuffer {
    /// Hands out bytes once `chunks_per_write` whole chunks are pending.
    pub fn new(chunks_per_write: usize) -> Self {
        let flush_at = CHUNK_RAW_BYTES * chunks_per_write.max(1);
        ChunkBuffer {
            pending: Vec::with_capacity(flush_at),
            pending_offset: 0,
            flush_at,
        }
    }

    pub fn push(&mut self, piece: &[u8]) {
        self.pending.extend_from_slice(piece);
    }

    /// Whole chunks to write now, with their offset; `None` while fewer are pending.
    pub fn ready(&mut self) -> Option<(u64, Vec<u8>)> {
        if self.pending.len() < self.flush_at {
            return None;
        }
        let rest = self.pending.split_off(self.flush_at);
        let ready = std::mem::replace(&mut self.pending, rest);
        let offset = self.pending_offset;
        self.pending_offset += ready.len() as u64;
        Some((offset, ready))
    }

    /// The last bytes (possibly empty) and their offset; the total length is their end.
    pub fn finish(self) -> (u64, Vec<u8>) {
        (self.pending_offset, self.pending)
    }
}

/// Which bytes of a log read front to back a caller wants, kept without holding the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// `limit` bytes (all when `None`) from `start`.
    Range { start: u64, limit: Option<u64> },
    /// The last `bytes` bytes.
    Last { bytes: u64 },
}

#[derive(Debug)]
pub struct WindowCollector {
    window: Window,
    seen: u64,
    kept: Vec<u8>,
    kept_from: u64,
}

impl WindowCollector {
    pub fn new(window: Window) -> Self {
        WindowCollector {
            window,
            seen: 0,
            kept: Vec::new(),
            kept_from: 0,
        }
    }

    pub fn push(&mut self, piece: &[u8]) {
        let at = self.seen;
        self.seen += piece.len() as u64;
        match self.window {
            Window::Range { start, limit } => {
                let end = limit.map_or(u64::MAX, |limit| start.saturating_add(limit));
                let from = start.max(at);
                let to = end.min(self.seen);
                if from < to {
                    if self.kept.is_empty() {
                        self.kept_from = from;
                    }
                    self.kept
                        .extend_from_slice(&piece[(from - at) as usize..(to - at) as usize]);
                }
            }
            Window::Last { bytes } => {
                self.kept.extend_from_slice(piece);
                // Trim now and then, not on every piece: amortised, at most twice the window.
                if self.kept.len() as u64 > bytes.saturating_mul(2).max(64 * 1024) {
                    self.trim_to(bytes);
                }
            }
        }
    }

    fn trim_to(&mut self, bytes: u64) {
        let excess = (self.kept.len() as u64).saturating_sub(bytes) as usize;
        self.kept.drain(..excess);
        self.kept_from = self.seen - self.kept.len() as u64;
    }

    /// The kept bytes, where they start, and how many bytes were seen in all.
    pub fn finish(mut self) -> TraceSlice {
        match self.window {
            Window::Last { bytes } => self.trim_to(bytes),
            Window::Range { start, .. } if self.kept.is_empty() => {
                self.kept_from = start.min(self.seen)
            }
            Window::Range { .. } => {}
        }
        TraceSlice {
            bytes: self.kept,
            offset: self.kept_from,
            total_length: self.seen,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Content-Range must be `start-end` in bytes (for example `0-1023`), got {0:?}")]
pub struct InvalidContentRange(pub String);

/// The start of a `Content-Range: start-end` header. Like GitLab, the end is not trusted:
/// the part is the request body, wherever the sender thinks it ends.
pub fn content_range_start(header: &str) -> Result<u64, InvalidContentRange> {
    let bad = || InvalidContentRange(header.chars().take(64).collect());
    let range = header.trim();
    let range = range.strip_prefix("bytes ").unwrap_or(range);
    let (start, end) = range.split_once('-').ok_or_else(bad)?;
    let start: u64 = start.trim().parse().map_err(|_| bad())?;
    let end = end.split('/').next().unwrap_or_default().trim();
    if !end.is_empty() {
        let end: u64 = end.parse().map_err(|_| bad())?;
        if end < start {
            return Err(bad());
        }
    }
    Ok(start)
}

/// Splits a log into chunk-sized slices with their offsets.
pub fn chunks(bytes: &[u8], first_offset: u64) -> impl Iterator<Item = (u64, &[u8])> {
    bytes
        .chunks(CHUNK_RAW_BYTES)
        .scan(first_offset, |offset, chunk| {
            let at = *offset;
            *offset += chunk.len() as u64;
            Some((at, chunk))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(content_range_start("0-1023"), Ok(0));
        assert_eq!(content_range_start("2048-4095"), Ok(2048));
        assert_eq!(content_range_start("bytes 10-20/*"), Ok(10));
        assert_eq!(content_range_start("5-"), Ok(5));
        for bad in ["", "abc", "-5", "10-5", "1.5-3", "x-1"] {
            assert!(content_range_start(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn chunking_covers_every_byte_once() {
        let log = vec![7u8; CHUNK_RAW_BYTES * 2 + 10];
        let parts: Vec<(u64, usize)> = chunks(&log, 100).map(|(at, c)| (at, c.len())).collect();
        assert_eq!(
            parts,
            vec![
                (100, CHUNK_RAW_BYTES),
                (100 + CHUNK_RAW_BYTES as u64, CHUNK_RAW_BYTES),
                (100 + 2 * CHUNK_RAW_BYTES as u64, 10)
            ]
        );
        assert_eq!(chunks(&[], 0).count(), 0);
    }

    #[test]
    fn chunk_buffer_hands_out_whole_chunks_in_order() {
        let mut buffer = ChunkBuffer::new(2);
        let mut written = Vec::new();
        let piece = vec![1u8; 100_000];
        for _ in 0..12 {
            buffer.push(&piece);
            while let Some((offset, bytes)) = buffer.ready() {
                assert_eq!(offset % CHUNK_RAW_BYTES as u64, 0);
                assert_eq!(bytes.len(), 2 * CHUNK_RAW_BYTES);
                written.push((offset, bytes.len()));
            }
        }
        let (offset, rest) = buffer.finish();
        let pair = 2 * CHUNK_RAW_BYTES;
        assert_eq!(written, vec![(0, pair), (pair as u64, pair)]);
        assert_eq!(offset, 2 * pair as u64);
        assert_eq!(offset + rest.len() as u64, 1_200_000);
    }

    fn collect(window: Window, log: &[u8], piece: usize) -> TraceSlice {
        let mut collector = WindowCollector::new(window);
        for part in log.chunks(piece) {
            collector.push(part);
        }
        collector.finish()
    }

    #[test]
    fn windows_keep_exactly_the_wanted_bytes() {
        let log: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        for piece in [1, 7, 4096, 300_000] {
            let range = collect(
                Window::Range {
                    start: 1000,
                    limit: Some(5000),
                },
                &log,
                piece,
            );
            assert_eq!(range.bytes, &log[1000..6000], "piece {piece}");
            assert_eq!((range.offset, range.total_length), (1000, 200_000));
            let open = collect(
                Window::Range {
                    start: 150_000,
                    limit: None,
                },
                &log,
                piece,
            );
            assert_eq!(open.bytes, &log[150_000..]);
            let last = collect(Window::Last { bytes: 70_000 }, &log, piece);
            assert_eq!(last.bytes, &log[130_000..], "piece {piece}");
            assert_eq!(last.offset, 130_000);
        }
        let beyond = collect(
            Window::Range {
                start: 500_000,
                limit: Some(10),
            },
            &log,
            4096,
        );
        assert_eq!((beyond.bytes.len(), beyond.offset), (0, 200_000));
        let short = collect(Window::Last { bytes: 1_000_000 }, &log[..10], 3);
        assert_eq!((short.bytes.len(), short.offset), (10, 0));
    }
}
