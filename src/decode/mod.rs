//! Decoding: raw object bytes → decompressed JSON → records borrowed from one
//! parse.
//!
//! An object goes through three steps, each with its own failure class:
//!
//! 1. [`read_object`] reads from any [`std::io::Read`] into a reused buffer,
//!    gunzipping when the first two bytes are the gzip magic (whatever the
//!    name says) and stopping at a decompressed-size cap, so that a gzip bomb
//!    costs at most `max_object_bytes` of memory.
//! 2. [`Decoder::decode`] parses the document once with simd-json into a
//!    tape. It recognises a CloudTrail delivery file (`{"Records":[...]}`),
//!    NDJSON (one record, or one delivery document, per line), a single
//!    record, and a digest file. Every record is checked before any is
//!    handed out, so an object either yields all its records or fails whole:
//!    that keeps the ledger's "processed exactly once" simple.
//! 3. Each record is handed to the caller as a [`Record`], a `Copy` view into
//!    the tape. Nothing is copied out of the buffer unless a rule fires.

mod record;
mod render;
mod view;

pub use render::write_json_str;

pub(crate) use record::any_scalar as record_any_scalar;
pub use record::{Field, FieldPath, Leaf, PathValue, Record};
pub use view::{Array, Object, Value};

use std::io::{BufRead, BufReader, Read};

use flate2::bufread::MultiGzDecoder;
use simd_json::prelude::*;
use simd_json::tape::Tape;
use simd_json::{Buffers, INPUT_PADDING};

/// Default cap on the decompressed size of one object (1 GiB).
pub const DEFAULT_MAX_OBJECT_BYTES: u64 = 1 << 30;

/// Why one object could not be decoded. Every variant names the object.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("{object}: read failed: {source}")]
    Read {
        object: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{object}: corrupt gzip stream: {source}")]
    Gzip {
        object: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{object}: decompressed size exceeds the cap of {limit} bytes (--max-object-bytes)")]
    TooLarge { object: String, limit: u64 },
    #[error("{object}: empty object (no JSON document)")]
    Empty { object: String },
    #[error("{object}: invalid JSON{}: {reason}", line.map(|l| format!(" on line {l}")).unwrap_or_default())]
    Json {
        object: String,
        line: Option<usize>,
        reason: String,
    },
    #[error("{object}: top-level JSON {found}; expected an object with \"Records\", or NDJSON records")]
    NotAnObject { object: String, found: &'static str },
    #[error("{object}: \"Records\" is a JSON {found}, not an array")]
    RecordsNotArray { object: String, found: &'static str },
    #[error("{object}: record #{index} is a JSON {found}, not an object")]
    RecordNotObject {
        object: String,
        index: usize,
        found: &'static str,
    },
}

impl DecodeError {
    /// A short, stable name for the failure class; stored in the `failures`
    /// table and used by tests and metrics.
    pub fn class(&self) -> &'static str {
        match self {
            DecodeError::Read { .. } => "read",
            DecodeError::Gzip { .. } => "gzip",
            DecodeError::TooLarge { .. } => "too_large",
            DecodeError::Empty { .. } => "empty",
            DecodeError::Json { .. } => "json",
            DecodeError::NotAnObject { .. } => "not_an_object",
            DecodeError::RecordsNotArray { .. } => "records_not_array",
            DecodeError::RecordNotObject { .. } => "record_not_object",
        }
    }
}

/// Reads `reader` into `out`, gunzipping if the stream starts with the gzip
/// magic. Multi-member gzip is read to the end. Fails with
/// [`DecodeError::TooLarge`] as soon as more than `limit` bytes come out; at
/// most `limit + 1` bytes are ever held.
///
/// On success `out[..len]` holds the document and the [`INPUT_PADDING`]
/// bytes after it are zero, which lets the parser skip its own padded copy;
/// the document length `len` is returned. `out` may be longer: it keeps its
/// length from one object to the next, so that it stays initialized and is
/// never zero-filled again before being written.
pub fn read_object<R: Read>(object: &str, reader: R, limit: u64, out: &mut Vec<u8>) -> Result<usize, DecodeError> {
    read_object_buffered(object, BufReader::with_capacity(64 * 1024, reader), limit, out)
}

/// [`read_object`] for a source that is buffered already, such as a byte
/// slice: nothing is copied on the way to the decompressor.
pub fn read_object_buffered<R: BufRead>(
    object: &str,
    mut reader: R,
    limit: u64,
    out: &mut Vec<u8>,
) -> Result<usize, DecodeError> {
    let head = reader.fill_buf().map_err(|source| DecodeError::Read {
        object: object.to_owned(),
        source,
    })?;
    let gzipped = head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b;
    let result = if gzipped {
        read_capped(MultiGzDecoder::new(reader), limit, out).map_err(|source| DecodeError::Gzip {
            object: object.to_owned(),
            source,
        })
    } else {
        read_capped(reader, limit, out).map_err(|source| DecodeError::Read {
            object: object.to_owned(),
            source,
        })
    };
    let len = result?;
    if len as u64 > limit {
        out.clear();
        out.shrink_to(1 << 20);
        return Err(DecodeError::TooLarge {
            object: object.to_owned(),
            limit,
        });
    }
    if out.len() < len + INPUT_PADDING {
        out.resize(len + INPUT_PADDING, 0);
    }
    out[len..len + INPUT_PADDING].fill(0);
    Ok(len)
}

/// Reads everything (at most `limit + 1` bytes) into `out` from its start,
/// in large reads, growing `out` by doubling. Only the grown part is ever
/// zero-filled. Returns the number of bytes read.
fn read_capped<R: Read>(mut src: R, limit: u64, out: &mut Vec<u8>) -> std::io::Result<usize> {
    let cap = usize::try_from(limit.saturating_add(1)).unwrap_or(usize::MAX);
    let mut len = 0;
    loop {
        if len == out.len() {
            if len >= cap {
                return Ok(len);
            }
            let grown = (out.len() * 2).clamp(256 * 1024, cap.max(1));
            out.resize(grown.max(len + 1), 0);
        }
        let end = out.len().min(cap);
        if len == end {
            return Ok(len);
        }
        match src.read(&mut out[len..end]) {
            Ok(0) => return Ok(len),
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// What one decoded object contained, besides the records handed out.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DocumentStats {
    /// Records handed to the caller.
    pub records: u64,
    /// Insights records (`eventType: AwsCloudTrailInsight`), skipped.
    pub insights_skipped: u64,
    /// JSON objects with none of the CloudTrail record fields, skipped.
    pub foreign_skipped: u64,
    /// The object is a CloudTrail digest file; it holds no records.
    pub digest: bool,
}

impl DocumentStats {
    pub fn skipped(&self) -> u64 {
        self.insights_skipped + self.foreign_skipped
    }
}

/// Decoding options.
#[derive(Debug, Clone, Copy, Default)]
pub struct DecodeOptions {
    /// Hand Insights records to the caller instead of skipping them.
    pub include_insights: bool,
}

/// A reusable parser: owns the simd-json scratch buffers and the tape
/// allocation, so that steady-state decoding allocates nothing per object.
pub struct Decoder {
    buffers: Buffers,
    tape: Option<Tape<'static>>,
    options: DecodeOptions,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(DecodeOptions::default())
    }
}

impl Decoder {
    pub fn new(options: DecodeOptions) -> Self {
        Decoder {
            buffers: Buffers::new(1 << 16),
            tape: Some(Tape::null().reset()),
            options,
        }
    }

    /// Parses the document in `buf[..len]` (followed by [`INPUT_PADDING`]
    /// bytes, as [`read_object`] leaves it) and calls `on_record` for every
    /// record. Strings are unescaped in place, so `buf` is modified.
    ///
    /// Either every record is handed out and `Ok` returned, or none is and
    /// the object fails.
    pub fn decode<F>(
        &mut self,
        object: &str,
        buf: &mut [u8],
        len: usize,
        mut on_record: F,
    ) -> Result<DocumentStats, DecodeError>
    where
        F: FnMut(&Record<'_>),
    {
        debug_assert!(buf.len() >= len + INPUT_PADDING);
        let mut stats = DocumentStats::default();
        let body = &buf[..len];
        let Some(start) = body.iter().position(|b| !b.is_ascii_whitespace()) else {
            return Err(DecodeError::Empty {
                object: object.to_owned(),
            });
        };
        let start = if body[start..].starts_with(b"\xEF\xBB\xBF") {
            start + 3
        } else {
            start
        };
        if is_ndjson(&body[start..]) {
            // One record (or one delivery document) per line.
            return self.decode_ndjson(object, buf, start, len, &mut stats, &mut on_record);
        }
        let mut tape = self.take_tape();
        let parsed = simd_json::fill_tape_padded(&mut buf[start..], len - start, &mut self.buffers, &mut tape);
        if let Err(e) = parsed {
            self.tape = Some(tape.reset());
            return Err(json_error(object, None, &buf[start..len], start, &e));
        }
        let root = Value::root(&tape);
        let result = handle_document(object, root, self.options, &mut stats, &mut on_record, 0);
        self.tape = Some(tape.reset());
        result.map(|()| stats)
    }

    fn decode_ndjson<F>(
        &mut self,
        object: &str,
        buf: &mut [u8],
        start: usize,
        len: usize,
        stats: &mut DocumentStats,
        on_record: &mut F,
    ) -> Result<DocumentStats, DecodeError>
    where
        F: FnMut(&Record<'_>),
    {
        // Line spans first (a line never contains a raw newline in JSON).
        let mut spans = Vec::new();
        let mut pos = start;
        let mut line_no = 1 + memchr::memchr_iter(b'\n', &buf[..start]).count();
        while pos < len {
            let end = memchr::memchr(b'\n', &buf[pos..len]).map_or(len, |i| pos + i);
            let line = &buf[pos..end];
            if line.iter().any(|b| !b.is_ascii_whitespace()) {
                spans.push((line_no, pos, end));
            }
            pos = end + 1;
            line_no += 1;
        }
        // Parsing unescapes strings in place, so a line cannot be parsed
        // twice. To keep "all records or none", every line is first checked
        // on a scratch copy, then parsed for real. Lines are small (one
        // record), so the copy is cheap next to losing atomicity.
        let mut scratch: Vec<u8> = Vec::new();
        let mut tape = self.take_tape();
        for &(line_no, s, e_) in &spans {
            scratch.clear();
            scratch.extend_from_slice(&buf[s..e_]);
            let n = scratch.len();
            scratch.resize(n + INPUT_PADDING, 0);
            let mut t = tape.reset();
            let res = simd_json::fill_tape_padded(&mut scratch, n, &mut self.buffers, &mut t);
            let checked = match res {
                Err(e) => {
                    self.tape = Some(t.reset());
                    // The scratch copy may be partly unescaped; the line in
                    // `buf` is intact, and offsets are the same.
                    return Err(json_error(object, Some(line_no), &buf[s..e_], 0, &e));
                }
                Ok(()) => validate_document(object, Value::root(&t)),
            };
            tape = t.reset();
            if let Err(e) = checked {
                self.tape = Some(tape.reset());
                return Err(with_line(e, line_no));
            }
        }
        for &(_, s, e) in &spans {
            let mut t = tape.reset();
            let res = simd_json::fill_tape_padded(&mut buf[s..], e - s, &mut self.buffers, &mut t);
            if let Ok(()) = res {
                // Validated above; cannot fail now.
                let _ = handle_document(object, Value::root(&t), self.options, stats, on_record, 0);
            }
            tape = t.reset();
        }
        self.tape = Some(tape.reset());
        Ok(*stats)
    }

    fn take_tape<'a>(&mut self) -> Tape<'a> {
        self.tape.take().unwrap_or_else(|| Tape::null().reset()).reset()
    }
}

/// A document is NDJSON when its first line is a complete JSON object and
/// more non-blank content follows. A pretty-printed delivery file starts with
/// `{` alone or `{"Records": [` on its first line, so it never qualifies.
fn is_ndjson(body: &[u8]) -> bool {
    let Some(nl) = memchr::memchr(b'\n', body) else {
        return false;
    };
    let first = body[..nl].trim_ascii();
    if first.len() < 2 || first[0] != b'{' || first[first.len() - 1] != b'}' {
        return false;
    }
    body[nl + 1..].iter().any(|b| !b.is_ascii_whitespace())
}

fn with_line(e: DecodeError, line_no: usize) -> DecodeError {
    match e {
        DecodeError::RecordsNotArray { object, found } => DecodeError::Json {
            object,
            line: Some(line_no),
            reason: format!("\"Records\" is a JSON {found}, not an array"),
        },
        DecodeError::RecordNotObject { object, index, found } => DecodeError::Json {
            object,
            line: Some(line_no),
            reason: format!("record #{index} is a JSON {found}, not an object"),
        },
        DecodeError::NotAnObject { object, found } => DecodeError::Json {
            object,
            line: Some(line_no),
            reason: format!("line holds a JSON {found}, not an object"),
        },
        other => other,
    }
}

/// `doc` is the document (or NDJSON line) as it was handed to the parser;
/// `base` is its offset in the object, so that positions are object offsets.
fn json_error(object: &str, line: Option<usize>, doc: &[u8], base: usize, e: &simd_json::Error) -> DecodeError {
    DecodeError::Json {
        object: object.to_owned(),
        line,
        reason: json_reason(doc, base, e),
    }
}

/// A JSON parse failure in plain words, with the byte offset where it is
/// known. simd-json's own messages name parser states ("Syntax at
/// character 0" for a raw control character in a string, "InternalError"
/// for a stray NUL); an operator needs the cause.
///
/// simd-json validates in two stages: stage 1 (structure, UTF-8, control
/// characters in strings) reads the input without changing it; stage 2
/// unescapes strings in place, left to right, and stops at the first error.
/// So for stage-1 errors the whole document is intact, and for stage-2
/// errors everything from the error position on is.
fn json_reason(doc: &[u8], base: usize, e: &simd_json::Error) -> String {
    use simd_json::ErrorType as T;
    let at = e.index();
    match e.error() {
        T::InvalidUtf8 => match std::str::from_utf8(doc) {
            Err(u) => format!("invalid UTF-8 at byte {}", base + u.valid_up_to()),
            Ok(_) => "invalid UTF-8".into(),
        },
        // Stage 1 reports string problems without a position.
        T::Syntax if at == 0 => string_problem(doc, base).unwrap_or_else(|| "syntax error".into()),
        T::DepthLimitExceeded => format!(
            "nesting deeper than {} levels at byte {}",
            simd_json::DEFAULT_MAX_DEPTH,
            base + at
        ),
        T::InvalidNumber | T::InvalidExponent => format!(
            "number out of range or malformed at byte {}: `{}` (numbers must fit a 128-bit integer or a 64-bit float)",
            base + at,
            number_text(doc, at)
        ),
        T::Eof => "unexpected end of the document".into(),
        other => {
            if let Some(p) = doc.get(at..).and_then(|rest| memchr::memchr(0, rest)) {
                return format!("NUL byte (0x00) outside a string at byte {}", base + at + p);
            }
            // simd-json's catch-all for a character that fits nowhere.
            let what = match other {
                T::InternalError => "UnexpectedCharacter".to_owned(),
                other => format!("{other:?}"),
            };
            let mut words = String::new();
            for (i, c) in what.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    words.push(' ');
                }
                words.push(c.to_ascii_lowercase());
            }
            match e.character() {
                Some(c) => format!("{words} at byte {} ({c:?})", base + at),
                None => format!("{words} at byte {}", base + at),
            }
        }
    }
}

/// The first unescaped control character inside a string, or an
/// unterminated string, described; `None` if neither is found.
fn string_problem(doc: &[u8], base: usize) -> Option<String> {
    let (mut in_string, mut escaped, mut opened) = (false, false, 0);
    for (i, &b) in doc.iter().enumerate() {
        if !in_string {
            if b == b'"' {
                in_string = true;
                opened = i;
            }
        } else if escaped {
            escaped = false;
        } else if b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            in_string = false;
        } else if b < 0x20 {
            return Some(format!(
                "unescaped control character U+{b:04X} inside a string at byte {} (JSON requires \\u{b:04x})",
                base + i
            ));
        }
    }
    in_string.then(|| format!("unterminated string starting at byte {}", base + opened))
}

/// The number around byte `at`, as written (at most 40 characters).
fn number_text(doc: &[u8], at: usize) -> String {
    let is_num = |b: &u8| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E');
    let at = at.min(doc.len());
    let start = doc[..at].iter().rposition(|b| !is_num(b)).map_or(0, |p| p + 1);
    let end = doc[at..].iter().position(|b| !is_num(b)).map_or(doc.len(), |p| at + p);
    let text = String::from_utf8_lossy(&doc[start..end]);
    if text.len() > 40 {
        format!("{}…", &text[..40])
    } else {
        text.into_owned()
    }
}

pub(crate) fn type_name(v: Value<'_>) -> &'static str {
    match v.value_type() {
        ValueType::Null => "null",
        ValueType::Bool => "boolean",
        ValueType::String => "string",
        ValueType::Array => "array",
        ValueType::Object => "object",
        _ => "number",
    }
}

/// Checks the shape of a document without handing out records.
fn validate_document(object: &str, root: Value<'_>) -> Result<(), DecodeError> {
    let Some(obj) = root.as_object() else {
        return Err(DecodeError::NotAnObject {
            object: object.to_owned(),
            found: type_name(root),
        });
    };
    if let Some(records) = obj.get("Records") {
        let Some(arr) = records.as_array() else {
            return Err(DecodeError::RecordsNotArray {
                object: object.to_owned(),
                found: type_name(records),
            });
        };
        for (index, rec) in arr.iter().enumerate() {
            if !rec.is_object() {
                return Err(DecodeError::RecordNotObject {
                    object: object.to_owned(),
                    index,
                    found: type_name(rec),
                });
            }
        }
    }
    Ok(())
}

fn handle_document<F>(
    object: &str,
    root: Value<'_>,
    options: DecodeOptions,
    stats: &mut DocumentStats,
    on_record: &mut F,
    _depth: usize,
) -> Result<(), DecodeError>
where
    F: FnMut(&Record<'_>),
{
    validate_document(object, root)?;
    let obj = root.as_object().expect("validated");
    if let Some(records) = obj.get("Records") {
        for rec in records.as_array().expect("validated").iter() {
            handle_record(&Record::new(rec), options, stats, on_record);
        }
    } else if obj.get("digestStartTime").is_some() {
        stats.digest = true;
    } else {
        handle_record(&Record::new(root), options, stats, on_record);
    }
    Ok(())
}

fn handle_record<F>(rec: &Record<'_>, options: DecodeOptions, stats: &mut DocumentStats, on_record: &mut F)
where
    F: FnMut(&Record<'_>),
{
    if !rec.looks_like_cloudtrail() {
        stats.foreign_skipped += 1;
        return;
    }
    if !options.include_insights && rec.field(Field::EventType).and_then(|v| v.as_str()) == Some("AwsCloudTrailInsight")
    {
        stats.insights_skipped += 1;
        return;
    }
    stats.records += 1;
    on_record(rec);
}

#[cfg(test)]
mod tests;
