//! A pushed log read as a stream of pieces, so a push that decodes to tens of megabytes costs
//! a few chunks of memory, not the decoded size: the body (at most a few MB as sent) is
//! decompressed piece by piece, and from a JSON body only the `log` string's content is
//! emitted, unescaped as it goes, while the other fields (small) are collected.
//!
//! The JSON scanner knows only what the Exlogare contract needs: one object whose values are
//! any JSON; it checks the syntax it walks (strings, escapes, nesting, UTF-8) and leaves the
//! fields' values to `serde_json`.

use flate2::read::MultiGzDecoder;
use serde_json::{Map, Value};
use std::io::Read;

/// Decoded bytes handed out at a time.
pub const PIECE_BYTES: usize = 256 * 1024;
/// Longest value of a field other than `log`, as JSON text.
pub const MAX_FIELD_JSON_BYTES: usize = 64 * 1024;
/// Longest field name.
pub const MAX_FIELD_NAME_BYTES: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidLog {
    #[error("the body is not valid gzip (Content-Encoding: gzip)")]
    Gzip,
    #[error("the log is larger than {0} bytes (TRACE_MAX_BYTES)")]
    TooLarge(usize),
    #[error("the body is not valid JSON: {0}")]
    Json(String),
    #[error("the log is empty: push the job's output")]
    Empty,
    #[error("field `{0}` is longer than {MAX_FIELD_JSON_BYTES} bytes")]
    FieldTooLong(String),
    #[error("a field name is longer than {MAX_FIELD_NAME_BYTES} bytes")]
    FieldNameTooLong,
}

/// The body's bytes as sent, decompressed piece by piece when gzip-encoded, at most `max`
/// decoded bytes in all.
pub struct Decoded<'a> {
    reader: Box<dyn Read + Send + 'a>,
    total: usize,
    max: usize,
    done: bool,
}

impl<'a> Decoded<'a> {
    pub fn new(raw: &'a [u8], gzip: bool, max: usize) -> Self {
        let reader: Box<dyn Read + Send + 'a> = if gzip {
            Box::new(MultiGzDecoder::new(raw))
        } else {
            Box::new(raw)
        };
        Decoded {
            reader,
            total: 0,
            max,
            done: false,
        }
    }
}

impl Iterator for Decoded<'_> {
    type Item = Result<Vec<u8>, InvalidLog>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut piece = vec![0u8; PIECE_BYTES];
        let mut filled = 0;
        while filled < piece.len() {
            match self.reader.read(&mut piece[filled..]) {
                Ok(0) => {
                    self.done = true;
                    break;
                }
                Ok(read) => filled += read,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.done = true;
                    return Some(Err(InvalidLog::Gzip));
                }
            }
        }
        piece.truncate(filled);
        self.total += filled;
        if self.total > self.max {
            self.done = true;
            return Some(Err(InvalidLog::TooLarge(self.max)));
        }
        (filled > 0).then_some(Ok(piece))
    }
}

/// What the body said about `log`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogShape {
    Absent,
    /// A string of this many bytes once unescaped.
    Text(u64),
    /// A JSON value of another type (`null`, a number, …), named.
    Other(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before the opening brace.
    Start,
    /// After `{` or `,`: a key, or `}` right after `{`.
    KeyOrEnd,
    Key,
    Colon,
    ValueStart,
    /// A value other than the log string, copied as JSON text.
    Value,
    /// The content of the log string.
    LogText,
    /// After a value: `,` or `}`.
    CommaOrEnd,
    /// After the closing brace: only white space.
    Done,
}

/// How the raw JSON string being read continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    /// After a backslash.
    Backslash,
    /// Inside `\uXXXX`: the digits so far and their value.
    Unicode(u8, u32),
    /// After a high surrogate, a `\` must follow, then `u`, then its low half.
    WantLowBackslash(u32),
    WantLowU(u32),
    Low(u32, u8, u32),
}

/// Walks an Exlogare push body: collects every field but `log` (as parsed JSON), and hands
/// the log string's unescaped bytes to a sink.
pub struct PushScanner {
    phase: Phase,
    key: Vec<u8>,
    key_escape: Escape,
    value: Vec<u8>,
    value_depth: usize,
    value_in_string: bool,
    value_escaped: bool,
    log_escape: Escape,
    log_length: u64,
    log: LogShape,
    fields: Map<String, Value>,
    /// Bytes of a UTF-8 sequence cut at the end of the last piece.
    utf8_carry: Vec<u8>,
}

impl Default for PushScanner {
    fn default() -> Self {
        Self::new()
    }
}

fn json_error(what: impl Into<String>) -> InvalidLog {
    InvalidLog::Json(what.into())
}

fn push_utf8(out: &mut Vec<u8>, code: u32) -> Result<(), InvalidLog> {
    let c = char::from_u32(code).ok_or_else(|| json_error("an escape names no character"))?;
    let mut buffer = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
    Ok(())
}

/// One byte of a string's raw text: appends what it stands for to `out`; `Ok(true)` at the
/// closing quote.
fn string_byte(escape: &mut Escape, byte: u8, out: &mut Vec<u8>) -> Result<bool, InvalidLog> {
    let hex = |byte: u8| char::from(byte).to_digit(16);
    match *escape {
        Escape::None => match byte {
            b'"' => return Ok(true),
            b'\\' => *escape = Escape::Backslash,
            0..=0x1f => return Err(json_error("a control character inside a string")),
            _ => out.push(byte),
        },
        Escape::Backslash => {
            *escape = Escape::None;
            match byte {
                b'"' => out.push(b'"'),
                b'\\' => out.push(b'\\'),
                b'/' => out.push(b'/'),
                b'b' => out.push(0x08),
                b'f' => out.push(0x0c),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'u' => *escape = Escape::Unicode(0, 0),
                _ => return Err(json_error("an invalid escape inside a string")),
            }
        }
        Escape::Unicode(count, value) => {
            let digit = hex(byte).ok_or_else(|| json_error("an invalid \\u escape"))?;
            let value = value * 16 + digit;
            if count < 3 {
                *escape = Escape::Unicode(count + 1, value);
            } else if (0xd800..0xdc00).contains(&value) {
                *escape = Escape::WantLowBackslash(value);
            } else if (0xdc00..0xe000).contains(&value) {
                return Err(json_error("a lone low surrogate escape"));
            } else {
                *escape = Escape::None;
                push_utf8(out, value)?;
            }
        }
        Escape::WantLowBackslash(high) if byte == b'\\' => *escape = Escape::WantLowU(high),
        Escape::WantLowU(high) if byte == b'u' => *escape = Escape::Low(high, 0, 0),
        Escape::WantLowBackslash(_) | Escape::WantLowU(_) => {
            return Err(json_error("a lone high surrogate escape"));
        }
        Escape::Low(high, count, value) => {
            let digit = hex(byte).ok_or_else(|| json_error("an invalid \\u escape"))?;
            let value = value * 16 + digit;
            if count < 3 {
                *escape = Escape::Low(high, count + 1, value);
            } else if (0xdc00..0xe000).contains(&value) {
                *escape = Escape::None;
                push_utf8(out, 0x10000 + ((high - 0xd800) << 10) + (value - 0xdc00))?;
            } else {
                return Err(json_error("a high surrogate escape without its low half"));
            }
        }
    }
    Ok(false)
}

impl PushScanner {
    pub fn new() -> Self {
        PushScanner {
            phase: Phase::Start,
            key: Vec::new(),
            key_escape: Escape::None,
            value: Vec::new(),
            value_depth: 0,
            value_in_string: false,
            value_escaped: false,
            log_escape: Escape::None,
            log_length: 0,
            log: LogShape::Absent,
            fields: Map::new(),
            utf8_carry: Vec::new(),
        }
    }

    /// Checks that the pieces so far are UTF-8, keeping a sequence cut at the piece's end for
    /// the next one.
    fn check_utf8(&mut self, piece: &[u8]) -> Result<(), InvalidLog> {
        let mut joined;
        let text: &[u8] = if self.utf8_carry.is_empty() {
            piece
        } else {
            joined = std::mem::take(&mut self.utf8_carry);
            joined.extend_from_slice(piece);
            &joined
        };
        match std::str::from_utf8(text) {
            Ok(_) => Ok(()),
            Err(error) if error.error_len().is_none() => {
                self.utf8_carry = text[error.valid_up_to()..].to_vec();
                Ok(())
            }
            Err(_) => Err(json_error("the body is not UTF-8")),
        }
    }

    /// Reads the next piece of the body; the log's bytes in it go to `log_out`.
    pub fn feed(&mut self, piece: &[u8], log_out: &mut Vec<u8>) -> Result<(), InvalidLog> {
        self.check_utf8(piece)?;
        for &byte in piece {
            self.step(byte, log_out)?;
        }
        Ok(())
    }

    fn step(&mut self, byte: u8, log_out: &mut Vec<u8>) -> Result<(), InvalidLog> {
        let space = matches!(byte, b' ' | b'\t' | b'\n' | b'\r');
        match self.phase {
            Phase::Start if space => {}
            Phase::Start if byte == b'{' => self.phase = Phase::KeyOrEnd,
            Phase::Start => {
                return Err(json_error("a log push must be a JSON object"));
            }
            Phase::KeyOrEnd
            | Phase::Colon
            | Phase::ValueStart
            | Phase::CommaOrEnd
            | Phase::Done
                if space => {}
            Phase::KeyOrEnd if byte == b'"' => {
                self.key.clear();
                self.phase = Phase::Key;
            }
            Phase::KeyOrEnd
                if byte == b'}' && self.fields.is_empty() && self.log == LogShape::Absent =>
            {
                self.phase = Phase::Done;
            }
            Phase::KeyOrEnd => return Err(json_error("expected a field name")),
            Phase::Key => {
                let mut key = std::mem::take(&mut self.key);
                let closed = string_byte(&mut self.key_escape, byte, &mut key)?;
                if key.len() > MAX_FIELD_NAME_BYTES {
                    return Err(InvalidLog::FieldNameTooLong);
                }
                self.key = key;
                if closed {
                    self.phase = Phase::Colon;
                }
            }
            Phase::Colon if byte == b':' => self.phase = Phase::ValueStart,
            Phase::Colon => return Err(json_error("expected `:` after a field name")),
            Phase::ValueStart => {
                if self.key == b"log" {
                    if self.log != LogShape::Absent {
                        return Err(json_error("`log` is given twice"));
                    }
                    if byte == b'"' {
                        self.log = LogShape::Text(0);
                        self.log_length = 0;
                        self.phase = Phase::LogText;
                        return Ok(());
                    }
                }
                self.value.clear();
                self.value_depth = 0;
                self.value_in_string = false;
                self.value_escaped = false;
                self.phase = Phase::Value;
                return self.value_byte(byte);
            }
            Phase::Value => return self.value_byte(byte),
            Phase::LogText => {
                let before = log_out.len();
                let closed = string_byte(&mut self.log_escape, byte, log_out)?;
                self.log_length += (log_out.len() - before) as u64;
                if closed {
                    self.log = LogShape::Text(self.log_length);
                    self.phase = Phase::CommaOrEnd;
                }
            }
            Phase::CommaOrEnd if byte == b',' => self.phase = Phase::KeyOrEnd,
            Phase::CommaOrEnd if byte == b'}' => self.phase = Phase::Done,
            Phase::CommaOrEnd => return Err(json_error("expected `,` or `}` after a value")),
            Phase::Done => return Err(json_error("text after the object's end")),
        }
        Ok(())
    }

    /// One byte of a field's value, copied until the value ends (at a `,` or `}` outside any
    /// string and nesting).
    fn value_byte(&mut self, byte: u8) -> Result<(), InvalidLog> {
        if self.value_in_string {
            if self.value_escaped {
                self.value_escaped = false;
            } else if byte == b'\\' {
                self.value_escaped = true;
            } else if byte == b'"' {
                self.value_in_string = false;
            }
        } else {
            match byte {
                b'"' => self.value_in_string = true,
                b'{' | b'[' => self.value_depth += 1,
                b'}' | b']' if self.value_depth > 0 => self.value_depth -= 1,
                b',' | b'}' if self.value_depth == 0 => {
                    self.finish_value()?;
                    self.phase = if byte == b',' {
                        Phase::KeyOrEnd
                    } else {
                        Phase::Done
                    };
                    return Ok(());
                }
                _ => {}
            }
        }
        self.value.push(byte);
        if self.value.len() > MAX_FIELD_JSON_BYTES {
            return Err(InvalidLog::FieldTooLong(
                String::from_utf8_lossy(&self.key).into_owned(),
            ));
        }
        Ok(())
    }

    fn finish_value(&mut self) -> Result<(), InvalidLog> {
        let value: Value = serde_json::from_slice(&self.value).map_err(|e| {
            json_error(format!(
                "field `{}`: {e}",
                String::from_utf8_lossy(&self.key)
            ))
        })?;
        let key = String::from_utf8_lossy(&self.key).into_owned();
        if key == "log" {
            self.log = LogShape::Other(crate::fields::type_name(&value));
        } else {
            self.fields.insert(key, value);
        }
        Ok(())
    }

    /// The fields other than `log` and what `log` was; an error if the body ended early.
    pub fn finish(self) -> Result<(Map<String, Value>, LogShape), InvalidLog> {
        if self.phase != Phase::Done {
            return Err(json_error("the body ends before the object does"));
        }
        if !self.utf8_carry.is_empty() {
            return Err(json_error("the body is not UTF-8"));
        }
        Ok((self.fields, self.log))
    }
}

/// Reads a JSON push body through: its fields other than `log`, and what `log` was. The log
/// itself is only measured, not kept.
pub fn scan_push_fields(
    raw: &[u8],
    gzip: bool,
    max: usize,
) -> Result<(Map<String, Value>, LogShape), InvalidLog> {
    let mut scanner = PushScanner::new();
    let mut discarded = Vec::new();
    for piece in Decoded::new(raw, gzip, max) {
        scanner.feed(&piece?, &mut discarded)?;
        discarded.clear();
    }
    scanner.finish()
}

/// Where a pushed log's bytes come from: its pieces can be read any number of times (a
/// store that must write again reads them again).
pub trait LogSource: Send + Sync {
    fn pieces(&self) -> Box<dyn Iterator<Item = Result<Vec<u8>, InvalidLog>> + Send + '_>;
}

/// The body is the log (`text/plain`), maybe gzip-encoded.
pub struct PlainLog<'a> {
    pub raw: &'a [u8],
    pub gzip: bool,
    pub max: usize,
}

impl LogSource for PlainLog<'_> {
    fn pieces(&self) -> Box<dyn Iterator<Item = Result<Vec<u8>, InvalidLog>> + Send + '_> {
        Box::new(Decoded::new(self.raw, self.gzip, self.max))
    }
}

/// The body is an Exlogare JSON push, maybe gzip-encoded: the log is its `log` string.
pub struct JsonLog<'a> {
    pub raw: &'a [u8],
    pub gzip: bool,
    pub max: usize,
}

impl LogSource for JsonLog<'_> {
    fn pieces(&self) -> Box<dyn Iterator<Item = Result<Vec<u8>, InvalidLog>> + Send + '_> {
        let mut scanner = PushScanner::new();
        let mut decoded = Decoded::new(self.raw, self.gzip, self.max);
        let mut finished = false;
        Box::new(std::iter::from_fn(move || {
            loop {
                if finished {
                    return None;
                }
                match decoded.next() {
                    Some(Ok(piece)) => {
                        let mut log = Vec::new();
                        if let Err(error) = scanner.feed(&piece, &mut log) {
                            finished = true;
                            return Some(Err(error));
                        }
                        if !log.is_empty() {
                            return Some(Ok(log));
                        }
                    }
                    Some(Err(error)) => {
                        finished = true;
                        return Some(Err(error));
                    }
                    None => {
                        finished = true;
                        let scanner = std::mem::take(&mut scanner);
                        return scanner.finish().err().map(Err);
                    }
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compression::gzip;
    use serde_json::json;

    /// The fields, the log's shape and the log's bytes of a body fed in pieces of `piece`.
    type Scanned = (Map<String, Value>, LogShape, Vec<u8>);

    fn scan(text: &[u8], piece: usize) -> Result<Scanned, InvalidLog> {
        let mut scanner = PushScanner::new();
        let mut log = Vec::new();
        for part in text.chunks(piece.max(1)) {
            scanner.feed(part, &mut log)?;
        }
        let (fields, shape) = scanner.finish()?;
        Ok((fields, shape, log))
    }

    #[test]
    fn the_log_and_the_fields_read_as_serde_json_reads_them_in_pieces_of_any_size() {
        let log = "caf\u{e9} \u{1F600}\n\t\"quoted\" \\ back\u{1}slash \u{2028} end\r\n".repeat(3);
        let body = json!({"provider": "gitlab", "job_id": 7, "nested": {"a": [1, "x,}"]},
                          "log": log, "status": "failed", "n": null});
        let text = serde_json::to_vec(&body).unwrap();
        // Also escaped the way other encoders do: every character as \uXXXX.
        let ascii: String = serde_json::to_string(&body)
            .unwrap()
            .chars()
            .flat_map(|c| {
                if c.is_ascii() {
                    vec![c.to_string()]
                } else {
                    c.encode_utf16(&mut [0; 2])
                        .iter()
                        .map(|u| format!("\\u{u:04x}"))
                        .collect()
                }
            })
            .collect();
        for text in [text, ascii.into_bytes()] {
            for piece in [1, 2, 3, 7, 64, text.len()] {
                let (fields, shape, got) = scan(&text, piece).expect("valid");
                assert_eq!(String::from_utf8(got).unwrap(), log, "piece {piece}");
                assert_eq!(shape, LogShape::Text(log.len() as u64));
                assert_eq!(fields["job_id"], 7);
                assert_eq!(fields["nested"], json!({"a": [1, "x,}"]}));
                assert_eq!(fields["n"], Value::Null);
                assert!(!fields.contains_key("log"));
            }
        }
    }

    #[test]
    fn what_serde_json_refuses_is_refused() {
        for bad in [
            &b"{\"log\": \"a\nb\"}"[..],
            b"{\"log\": \"\\x\"}",
            b"{\"log\": \"\\ud800\"}",
            b"{\"log\": \"\\udc00\"}",
            b"{\"log\": \"abc\"",
            b"{\"log\": \"abc\"} x",
            b"{\"log\": \"a\", \"log\": \"b\"}",
            b"{\"a\": 1,}",
            b"{\"a\" 1}",
            b"{\"a\": tru}",
            b"{\"log\": \"\xff\"}",
        ] {
            assert!(scan(bad, 3).is_err(), "{:?}", String::from_utf8_lossy(bad));
            assert!(
                serde_json::from_slice::<Value>(bad).is_err()
                    || bad.windows(5).filter(|w| w == b"\"log\"").count() > 1,
                "serde_json accepts {:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn a_body_that_is_not_an_object_is_refused() {
        for bad in [&b"[1]"[..], b"\"log\"", b"", b"   "] {
            assert!(scan(bad, 2).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn a_log_of_another_type_or_none_is_named() {
        let (_, shape, _) = scan(br#"{"log": null, "a": 1}"#, 4).unwrap();
        assert_eq!(shape, LogShape::Other("null"));
        let (_, shape, _) = scan(br#"{"log": 5}"#, 4).unwrap();
        assert_eq!(shape, LogShape::Other("a number"));
        let (_, shape, _) = scan(br#"{"a": "b"}"#, 4).unwrap();
        assert_eq!(shape, LogShape::Absent);
        let (fields, shape, _) = scan(b" {} ", 1).unwrap();
        assert_eq!((fields.len(), shape), (0, LogShape::Absent));
    }

    #[test]
    fn decoding_is_capped_and_gzip_checked() {
        let text = vec![b'a'; 3 * PIECE_BYTES + 5];
        let packed = gzip(&text);
        let decoded: Vec<u8> = Decoded::new(&packed, true, text.len())
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
            .concat();
        assert_eq!(decoded, text);
        let capped: Result<Vec<_>, _> = Decoded::new(&packed, true, text.len() - 1).collect();
        assert_eq!(capped, Err(InvalidLog::TooLarge(text.len() - 1)));
        let mut trailing = packed.clone();
        trailing.extend_from_slice(b"junk");
        let corrupt: Result<Vec<_>, _> = Decoded::new(&trailing, true, usize::MAX).collect();
        assert_eq!(corrupt, Err(InvalidLog::Gzip));
    }

    #[test]
    fn a_json_source_yields_the_log_again_each_time() {
        let log = "line\n".repeat(100_000);
        let body = gzip(&serde_json::to_vec(&json!({"job_id": 1, "log": log})).unwrap());
        let source = JsonLog {
            raw: &body,
            gzip: true,
            max: 10 << 20,
        };
        for _ in 0..2 {
            let got: Vec<u8> = source
                .pieces()
                .collect::<Result<Vec<_>, _>>()
                .unwrap()
                .concat();
            assert_eq!(got, log.as_bytes());
        }
        let (fields, shape) = scan_push_fields(&body, true, 10 << 20).unwrap();
        assert_eq!(
            (fields["job_id"].clone(), shape),
            (json!(1), LogShape::Text(log.len() as u64))
        );
    }
}
