//! gzip for stored logs and gzip-encoded request bodies, with a cap against bombs.

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use std::io::{Read, Write};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GunzipError {
    #[error("the gzip data is corrupt or truncated")]
    Corrupt,
    #[error("the data is larger than {0} bytes once decompressed")]
    TooLarge(usize),
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(
        Vec::with_capacity(bytes.len() / 4 + 64),
        Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// Decompresses at most `cap` bytes; more is an error, never a larger allocation. Several
/// gzip members one after another are one stream (as `cat a.gz b.gz` makes); anything else
/// after the last member is corrupt data, not ignored.
pub fn gunzip_capped(bytes: &[u8], cap: usize) -> Result<Vec<u8>, GunzipError> {
    let mut out = Vec::new();
    let mut limited = MultiGzDecoder::new(bytes).take(cap as u64 + 1);
    limited
        .read_to_end(&mut out)
        .map_err(|_| GunzipError::Corrupt)?;
    if out.len() > cap {
        return Err(GunzipError::TooLarge(cap));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_caps() {
        let text = b"error: linker failed\n".repeat(1000);
        let packed = gzip(&text);
        assert!(packed.len() < text.len() / 10);
        assert_eq!(gunzip_capped(&packed, text.len()).unwrap(), text);
        assert_eq!(gunzip_capped(&packed, 100), Err(GunzipError::TooLarge(100)));
        assert_eq!(gunzip_capped(b"not gzip", 100), Err(GunzipError::Corrupt));
        assert_eq!(
            gunzip_capped(&packed[..packed.len() / 2], text.len()),
            Err(GunzipError::Corrupt)
        );
        let mut trailing = packed.clone();
        trailing.extend_from_slice(b"garbage after the gzip stream");
        assert_eq!(
            gunzip_capped(&trailing, text.len()),
            Err(GunzipError::Corrupt)
        );
        let mut two_members = packed.clone();
        two_members.extend_from_slice(&gzip(b"and more"));
        let mut both = text.clone();
        both.extend_from_slice(b"and more");
        assert_eq!(gunzip_capped(&two_members, both.len()).unwrap(), both);
    }
}
