//! [`Record`]: a borrowed, `Copy` view of one CloudTrail record inside the
//! parsed tape.
//!
//! Field access walks the tape; nothing is allocated or copied. Dotted paths
//! cross arrays: `requestParameters.ipPermissions.items.ipRanges.items.cidrIp`
//! reaches every `cidrIp` of every item, and a matcher succeeds if any of
//! them matches.
//!
//! A tape object finds a key by comparing it with every key before it, and
//! the decoder, the rule dispatch, the rules and the activity aggregate
//! together look up a dozen top-level fields per record. So the view is made
//! with one pass over the record's keys that notes where the [`Field`]s
//! everyone reads are; looking one of them up afterwards is an array read.

use simd_json::prelude::*;
use simd_json::tape::Value as TapeValue;

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

impl Field {
    /// The field named `key`, if it is one of the indexed ones. Dispatches on
    /// the length first, so a key costs one switch and a comparison or two.
    #[inline]
    pub fn of(key: &str) -> Option<Field> {
        use Field::*;
        match key.len() {
            7 => (key == "eventID").then_some(EventId),
            8 => (key == "readOnly").then_some(ReadOnly),
            9 => match key {
                "eventTime" => Some(EventTime),
                "eventName" => Some(EventName),
                "awsRegion" => Some(AwsRegion),
                "userAgent" => Some(UserAgent),
                "errorCode" => Some(ErrorCode),
                "eventType" => Some(EventType),
                _ => None,
            },
            11 => (key == "eventSource").then_some(EventSource),
            12 => match key {
                "eventVersion" => Some(EventVersion),
                "userIdentity" => Some(UserIdentity),
                _ => None,
            },
            15 => (key == "sourceIPAddress").then_some(SourceIpAddress),
            16 => (key == "responseElements").then_some(ResponseElements),
            17 => (key == "requestParameters").then_some(RequestParameters),
            18 => (key == "recipientAccountId").then_some(RecipientAccountId),
            19 => (key == "additionalEventData").then_some(AdditionalEventData),
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
    root: TapeValue<'a, 'a>,
    /// The first occurrence of each [`Field`] (as a keyed lookup finds it).
    fields: [Option<TapeValue<'a, 'a>>; FIELDS],
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
    Container(TapeValue<'a, 'a>),
}

impl<'a> Leaf<'a> {
    pub fn of(v: TapeValue<'a, 'a>) -> Leaf<'a> {
        if let Some(s) = v.into_string() {
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
    pub fn new<'t, 'i: 't>(root: TapeValue<'t, 'i>) -> Record<'t>
    where
        'i: 't,
    {
        let mut fields = [None; FIELDS];
        let obj = root.as_object();
        let is_object = obj.is_some();
        if let Some(obj) = obj {
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
    pub fn field(&self, f: Field) -> Option<TapeValue<'a, 'a>> {
        self.fields[f as usize]
    }

    /// A top-level field by name (indexed or not).
    #[inline]
    pub fn get(&self, key: &str) -> Option<TapeValue<'a, 'a>> {
        match Field::of(key) {
            Some(f) => self.fields[f as usize],
            None => self.root.get(key),
        }
    }

    /// The record as a tape value.
    pub fn value(&self) -> TapeValue<'a, 'a> {
        self.root
    }

    /// A top-level string field.
    pub fn str(&self, key: &str) -> Option<&'a str> {
        self.get(key).and_then(|v| v.into_string())
    }

    /// The first string reached by a dotted path given as segments.
    pub fn str_at(&self, path: &[&str]) -> Option<&'a str> {
        let (first, rest) = path.split_first()?;
        let mut cur = self.get(first)?;
        for seg in rest {
            cur = cur.get(*seg)?;
        }
        cur.into_string()
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
                    None => self.root.get(&**first),
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
                Some(v) => v.into_string().map_or(PathValue::Other, PathValue::Str),
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

fn visit<'a, S: AsRef<str>>(v: TapeValue<'a, 'a>, path: &[S], f: &mut dyn FnMut(Leaf<'a>) -> bool) -> bool {
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
pub(crate) fn any_scalar<'a>(v: TapeValue<'a, 'a>, f: &mut dyn FnMut(Leaf<'a>) -> bool) -> bool {
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
