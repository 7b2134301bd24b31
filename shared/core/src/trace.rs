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

pub trait TraceStore: Send + Sync {
    /// Replaces the whole trace; returns its length.
    fn replace(
        &self,
        key: &TraceKey,
        bytes: &[u8],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

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
}
