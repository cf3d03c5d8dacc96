//! [`Record`]: a borrowed, `Copy` view of one CloudTrail record inside the
//! parsed tape.
//!
//! Field access walks the tape (through `decode::view`); nothing is
//! allocated or copied. Dotted paths cross arrays:
//! `requestParameters.ipPermissions.items.ipRanges.items.cidrIp` reaches
//! every `cidrIp` of every item, and a matcher succeeds if any of them
//! matches.
//!
//! A tape object finds a key by comparing it with every key before it, and
//! the decoder, the rule dispatch, the rules and the activity aggregate
//! together look up a dozen top-level fields per record. So the view is made
//! with one pass over the record's keys that notes where the [`Field`]s
//! everyone reads are; looking one of them up afterwards is an array read.

use simd_json::prelude::*;

use super::view::Value;

/// The top-level fields found when a [`Record`] is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    EventVersion,
    UserIdentity,
    EventTime,
    EventSource,
    EventName,
    AwsRegion,
    SourceIpAddress,
    UserAgent,
    ErrorCode,
    RequestParameters,
    ResponseElements,
    AdditionalEventData,
    EventId,
    EventType,
    ReadOnly,
    RecipientAccountId,
}

const FIELDS: usize = 16;

/// Little-endian 8-byte word of `s` at `i`, at compile time (the names
/// [`Field::of`] compares keys with).
const fn word_at(s: &[u8], i: usize) -> u64 {
    let mut w = 0u64;
    let mut j = 0;
    while j < 8 {
        w |= (s[i + j] as u64) << (8 * j);
        j += 1;
    }
    w
}

/// A name of 8 to 24 bytes as the words [`Field::of`] compares: the first
/// 8 bytes, the last 8 (overlapping) and, past 16 bytes, the 8 from byte 8.
const fn name_words(k: &str) -> [u64; 3] {
    let b = k.as_bytes();
    let mid = if b.len() > 16 { word_at(b, 8) } else { 0 };
    [word_at(b, 0), word_at(b, b.len() - 8), mid]
}

impl Field {
    /// The field named `key`, if it is one of the indexed ones. This runs
    /// on every top-level key of every record, so it switches on the
    /// length and then compares the key as two or three 8-byte words with
    /// each name of that length: a third of what comparing byte slices cost.
    #[inline(always)]
    pub fn of(key: &str) -> Option<Field> {
        use Field::*;
        let b = key.as_bytes();
        let n = b.len();
        if n < 8 {
            return (key == "eventID").then_some(EventId);
        }
        if n > 24 {
            return None;
        }
        let w = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let (first, last) = (w(0), w(n - 8));
        macro_rules! names {
            ($($name:literal => $field:expr),+ $(,)?) => {{
                $(
                    const _: () = assert!($name.len() >= 8 && $name.len() <= 24);
                    let [f, l, m] = const { name_words($name) };
                    if first == f && last == l && ($name.len() <= 16 || w(8) == m) {
                        return Some($field);
                    }
                )+
                None
            }};
        }
        match n {
            8 => names!("readOnly" => ReadOnly),
            9 => names!(
                "eventTime" => EventTime,
                "eventName" => EventName,
                "awsRegion" => AwsRegion,
                "userAgent" => UserAgent,
                "errorCode" => ErrorCode,
                "eventType" => EventType,
            ),
            11 => names!("eventSource" => EventSource),
            12 => names!("eventVersion" => EventVersion, "userIdentity" => UserIdentity),
            15 => names!("sourceIPAddress" => SourceIpAddress),
            16 => names!("responseElements" => ResponseElements),
            17 => names!("requestParameters" => RequestParameters),
            18 => names!("recipientAccountId" => RecipientAccountId),
            19 => names!("additionalEventData" => AdditionalEventData),
            _ => None,
        }
    }
}

/// A dotted field path compiled once (by the rules and correlations): its
/// steps, and the indexed [`Field`] its first step names, if any. Reading
/// it then skips looking the first name up again on every record, which
/// was an eighth of the rule engine's cost with the full pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    steps: Box<[Box<str>]>,
    first: Option<Field>,
}

impl FieldPath {
    /// `a.b.c` → the steps `a`, `b`, `c`.
    pub fn parse(dotted: &str) -> FieldPath {
        let steps: Box<[Box<str>]> = dotted.split('.').map(Box::from).collect();
        let first = steps.first().and_then(|s| Field::of(s));
        FieldPath { steps, first }
    }

    /// Whether the path is one indexed top-level field: reading it is an
    /// array read.
    pub fn is_indexed_field(&self) -> bool {
        self.first.is_some() && self.steps.len() == 1
    }

    /// The path as written, dotted.
    pub fn dotted(&self) -> String {
        self.steps.join(".")
    }
}

/// What a path holds, as [`Record::dispatch_value`] sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathValue<'a> {
    Missing,
    Str(&'a str),
    Other,
}

/// One CloudTrail record, borrowed from the tape of its object.
#[derive(Clone, Copy)]
pub struct Record<'a> {
    root: Value<'a>,
    /// The first occurrence of each [`Field`] (as a keyed lookup finds it).
    fields: [Option<Value<'a>>; FIELDS],
    /// Whether `root` is an object (paths then start through `fields`).
    is_object: bool,
}

/// A value reached by a path, as the rule engine sees it.
#[derive(Clone, Copy, Debug)]
pub enum Leaf<'a> {
    Str(&'a str),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
    Null,
    /// An array or an object; matchers search its scalar values.
    Container(Value<'a>),
}

impl<'a> Leaf<'a> {
    pub fn of(v: Value<'a>) -> Leaf<'a> {
        if let Some(s) = v.as_str() {
            return Leaf::Str(s);
        }
        match v.value_type() {
            ValueType::Null => Leaf::Null,
            ValueType::Bool => Leaf::Bool(v.as_bool().unwrap_or(false)),
            ValueType::I64 => Leaf::I64(v.as_i64().unwrap_or(0)),
            ValueType::U64 => Leaf::U64(v.as_u64().unwrap_or(0)),
            ValueType::F64 => Leaf::F64(v.as_f64().unwrap_or(0.0)),
            _ => {
                // i128/u128 do not occur with simd-json's default features.
                if v.is_array() || v.is_object() {
                    Leaf::Container(v)
                } else {
                    Leaf::F64(v.as_f64().unwrap_or(f64::NAN))
                }
            }
        }
    }
}

impl<'a> Record<'a> {
    /// A record view over a parsed value (benchmarks and tools that hold a
    /// tape of their own; the pipeline gets records from [`Decoder`](super::Decoder)).
    pub fn new(root: Value<'a>) -> Record<'a> {
        let mut fields = [None; FIELDS];
        let obj = root.as_object();
        let is_object = obj.is_some();
        if let Some(obj) = obj {
            // The view's iterator inlines to a walk over the tape's nodes:
            // this runs on every key of every record.
            for (k, v) in obj.iter() {
                if let Some(f) = Field::of(k) {
                    let slot = &mut fields[f as usize];
                    if slot.is_none() {
                        *slot = Some(v);
                    }
                }
            }
        }
        Record {
            root,
            fields,
            is_object,
        }
    }

    /// An indexed top-level field.
    #[inline]
    pub fn field(&self, f: Field) -> Option<Value<'a>> {
        self.fields[f as usize]
    }

    /// A top-level field by name (indexed or not).
    #[inline]
    pub fn get(&self, key: &str) -> Option<Value<'a>> {
        match Field::of(key) {
            Some(f) => self.fields[f as usize],
            None => self.root.get(key),
        }
    }

    /// The record as a tape value.
    pub fn value(&self) -> Value<'a> {
        self.root
    }

    /// A top-level string field.
    pub fn str(&self, key: &str) -> Option<&'a str> {
        self.get(key).and_then(|v| v.as_str())
    }

    /// The first string reached by a dotted path given as segments.
    pub fn str_at(&self, path: &[&str]) -> Option<&'a str> {
        let (first, rest) = path.split_first()?;
        let mut cur = self.get(first)?;
        for seg in rest {
            cur = cur.get(seg)?;
        }
        cur.as_str()
    }

    /// Whether the record has at least one of the fields every CloudTrail
    /// record carries. Objects without any are not records (for example a
    /// test-case wrapper in an NDJSON file) and are skipped, not matched.
    pub fn looks_like_cloudtrail(&self) -> bool {
        [
            Field::EventName,
            Field::EventSource,
            Field::EventVersion,
            Field::EventTime,
        ]
        .iter()
        .any(|&f| self.fields[f as usize].is_some())
    }

    /// [`any_at_path`](Self::any_at_path) for a path given step by step,
    /// looking the first step up by name. Only the tests use it, as the
    /// reference a compiled path must agree with.
    #[cfg(test)]
    pub(crate) fn any_at<S: AsRef<str>>(&self, path: &[S], f: &mut dyn FnMut(Leaf<'a>) -> bool) -> bool {
        match path.split_first() {
            // The first step through the index (the root is an object).
            Some((first, rest)) if self.is_object => match self.get(first.as_ref()) {
                Some(v) => visit(v, rest, f),
                None => false,
            },
            _ => visit(self.root, path, f),
        }
    }

    /// Calls `f` on every value the path reaches, crossing arrays on the way,
    /// until `f` returns true. Returns whether it did. A missing field
    /// reaches nothing. The first step is read through the field index when
    /// it is an indexed field.
    pub fn any_at_path(&self, path: &FieldPath, f: &mut dyn FnMut(Leaf<'a>) -> bool) -> bool {
        match path.steps.split_first() {
            Some((first, rest)) if self.is_object => {
                let v = match path.first {
                    Some(field) => self.fields[field as usize],
                    None => self.root.get(first),
                };
                v.is_some_and(|v| visit(v, rest, f))
            }
            _ => visit(self.root, &path.steps, f),
        }
    }

    /// What the path holds, for rule dispatch: nothing, exactly one string
    /// (the common case), or anything else (several values, a number, a
    /// container...), which a matcher may still match by its text.
    pub fn dispatch_value(&self, path: &FieldPath) -> PathValue<'a> {
        if let (Some(field), [_], true) = (path.first, &*path.steps, self.is_object) {
            // A top-level indexed field: read it directly.
            return match self.fields[field as usize] {
                None => PathValue::Missing,
                Some(v) => v.as_str().map_or(PathValue::Other, PathValue::Str),
            };
        }
        let mut out = PathValue::Missing;
        self.any_at_path(path, &mut |leaf| {
            out = match (out, leaf) {
                (PathValue::Missing, Leaf::Str(s)) => PathValue::Str(s),
                _ => PathValue::Other,
            };
            matches!(out, PathValue::Other)
        });
        out
    }

    /// Whether the path reaches anything at all (even `null`).
    pub fn exists_path(&self, path: &FieldPath) -> bool {
        self.any_at_path(path, &mut |_| true)
    }

    /// Calls `f` on every scalar value in the record, depth first, until it
    /// returns true. Used by keyword (fieldless) searches.
    pub fn any_scalar(&self, f: &mut dyn FnMut(Leaf<'a>) -> bool) -> bool {
        any_scalar(self.root, f)
    }

    /// Compact JSON text of the record (allocates; only for alerts), byte
    /// for byte what simd-json's `encode()` writes (see `decode::render`).
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(2048);
        super::render::write_value(&mut out, self.root);
        // Tape strings are UTF-8 and escapes are ASCII.
        String::from_utf8(out).expect("rendered JSON is UTF-8")
    }
}

fn visit<'a, S: AsRef<str>>(v: Value<'a>, path: &[S], f: &mut dyn FnMut(Leaf<'a>) -> bool) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return match v.as_array() {
            // A leaf array: any element may match.
            Some(arr) if !arr.is_empty() => arr.iter().any(|e| f(Leaf::of(e))),
            _ => f(Leaf::of(v)),
        };
    };
    if let Some(obj) = v.as_object() {
        match obj.get(first.as_ref()) {
            Some(next) => visit(next, rest, f),
            None => false,
        }
    } else if let Some(arr) = v.as_array() {
        arr.iter().any(|e| visit(e, path, f))
    } else {
        false
    }
}

/// Iterative depth-first walk over scalars; containers nest at most
/// simd-json's depth limit (1024), but an explicit stack keeps us off the
/// call stack entirely.
pub(crate) fn any_scalar<'a>(v: Value<'a>, f: &mut dyn FnMut(Leaf<'a>) -> bool) -> bool {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        if let Some(obj) = v.as_object() {
            stack.extend(obj.iter().map(|(_, v)| v));
        } else if let Some(arr) = v.as_array() {
            stack.extend(arr.iter());
        } else if f(Leaf::of(v)) {
            return true;
        }
    }
    false
}
