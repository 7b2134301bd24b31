//! Opaque pagination cursors: the key of the last item returned, encoded so clients treat it
//! as a token and cannot forge a key of another partition unnoticed.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::collections::BTreeMap;

pub const MAX_CURSOR_LEN: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub key: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`cursor` is not one this service issued; pass `next_cursor` from the previous page unchanged"
)]
pub struct InvalidCursor;

impl Cursor {
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(&self.key).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    pub fn decode(raw: &str) -> Result<Self, InvalidCursor> {
        if raw.is_empty() || raw.len() > MAX_CURSOR_LEN {
            return Err(InvalidCursor);
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| InvalidCursor)?;
        let key: BTreeMap<String, String> =
            serde_json::from_slice(&bytes).map_err(|_| InvalidCursor)?;
        if key.is_empty() {
            return Err(InvalidCursor);
        }
        Ok(Cursor { key })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_junk() {
        let cursor = Cursor {
            key: BTreeMap::from([("pk".to_string(), "REPO#a/b".to_string())]),
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Ok(cursor));
        for junk in ["", "!!!", "bm90IGpzb24", "e30", &"A".repeat(5000)] {
            assert_eq!(Cursor::decode(junk), Err(InvalidCursor), "{junk}");
        }
    }
}
