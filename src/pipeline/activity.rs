//! Per-object activity aggregation: records counted per hour and per
//! (account, region, service, action, principal, source IP, user-agent
//! family, error code, read-only).
//!
//! This runs on every record, so it is built not to allocate per record:
//!
//! * the fields are read through the record view's index of top-level
//!   fields (rather than one linear key search per field);
//! * the key's borrowed strings are hashed once and compared against rows
//!   already seen in the object; a hit only bumps counts and, when the time
//!   moves, overwrites the stored time in place (ISO times of one format
//!   have one length);
//! * a new key appends its strings to one arena, sized from the previous
//!   object, so even a miss rarely allocates.
//!
//! The result, [`ActivityRows`], is that string arena and a row table,
//! handed over without a copy: two allocations per object however many keys
//! it has. The store merges the rows of a whole commit batch before staging
//! them (see `store::staging`).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::decode::{Field, Record};

/// The key columns of an activity row, in [`ActivityRow::key`] order (the
/// eleventh key column, `read_only`, is [`ActivityRow::read_only`]).
pub const KEY_COLUMNS: [&str; 10] = [
    "hour",
    "account_id",
    "aws_region",
    "event_source",
    "event_name",
    "principal_type",
    "principal_arn",
    "source_ip",
    "user_agent_family",
    "error_code",
];

/// A string inside an [`ActivityRows`] arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    start: u32,
    len: u32,
}

/// One aggregate row of an object. Strings are spans into the owning
/// [`ActivityRows`]; read them through [`ActivityRows::iter`].
#[derive(Debug, Clone, Copy)]
pub struct ActivityRow {
    /// [`key_fingerprint`] of the key, computed once by the worker and
    /// reused by the committing thread's merge (`store::staging`).
    hash: u64,
    key: [Span; 10],
    read_only: Option<bool>,
    events: u64,
    first: Span,
    last: Span,
}

/// A row with its strings, as consumers see it. `hour` is the first 13
/// characters of the ISO 8601 event time (`2026-10-05T14`), empty when the
/// record has no usable time; `first_seen`/`last_seen` are the earliest and
/// latest `eventTime` texts of the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RowRef<'a> {
    /// Values of [`KEY_COLUMNS`], in order.
    pub key: [&'a str; 10],
    pub read_only: Option<bool>,
    pub events: u64,
    pub first_seen: &'a str,
    pub last_seen: &'a str,
}

impl<'a> RowRef<'a> {
    pub fn hour(&self) -> &'a str {
        self.key[0]
    }
}

/// An object's contribution to the hourly activity aggregates.
#[derive(Debug, Clone, Default)]
pub struct ActivityRows {
    text: String,
    rows: Vec<ActivityRow>,
}

impl ActivityRows {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Heap bytes held, roughly (for memory budgets).
    pub fn approx_bytes(&self) -> usize {
        self.text.capacity() + self.rows.capacity() * std::mem::size_of::<ActivityRow>()
    }

    fn s(&self, sp: Span) -> &str {
        &self.text[sp.start as usize..(sp.start + sp.len) as usize]
    }

    pub fn iter(&self) -> impl Iterator<Item = RowRef<'_>> + '_ {
        self.iter_hashed().map(|(_, r)| r)
    }

    /// [`iter`](Self::iter) with each row's [`key_fingerprint`].
    pub fn iter_hashed(&self) -> impl Iterator<Item = (u64, RowRef<'_>)> + '_ {
        self.rows.iter().map(|r| {
            (
                r.hash,
                RowRef {
                    key: r.key.map(|sp| self.s(sp)),
                    read_only: r.read_only,
                    events: r.events,
                    first_seen: self.s(r.first),
                    last_seen: self.s(r.last),
                },
            )
        })
    }

    /// The latest event time of the object (ISO 8601 text), if any.
    pub fn newest(&self) -> Option<&str> {
        self.rows.iter().map(|r| self.s(r.last)).filter(|s| !s.is_empty()).max()
    }

    /// Total records counted.
    pub fn events(&self) -> u64 {
        self.rows.iter().map(|r| r.events).sum()
    }
}

/// The product token of a user agent: `aws-cli/2.15 Python/3.11 ...` →
/// `aws-cli`, `[S3Console/0.4, aws-internal/3]` → `S3Console`,
/// `console.amazonaws.com` stays as it is. Keeps the cardinality low while
/// telling tools apart.
pub fn user_agent_family(ua: &str) -> &str {
    // A byte scan (every delimiter is ASCII, so a cut at one is on a
    // character boundary) rather than `str::find` with a set of chars,
    // which decodes UTF-8: this runs on every record.
    let b = ua.as_bytes();
    let start = b.iter().position(|&c| c != b'[' && c != b' ').unwrap_or(b.len());
    let len = b[start..]
        .iter()
        .position(|&c| matches!(c, b'/' | b' ' | b',' | b']' | b'('))
        .unwrap_or(b.len() - start);
    &ua[start..start + len]
}

fn word(s: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(s[i..i + 8].try_into().expect("8 bytes"))
}

fn half(s: &[u8], i: usize) -> u64 {
    u64::from(u32::from_le_bytes(s[i..i + 4].try_into().expect("4 bytes")))
}

/// Byte equality of two short strings, inlined: a word compare or two per
/// 8 bytes instead of a call into libc's `memcmp` per string (the key has
/// ten, compared on every record).
#[inline(always)]
pub(crate) fn short_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        _ => (0..n / 8).all(|i| word(a, 8 * i) == word(b, 8 * i)) && word(a, n - 8) == word(b, n - 8),
    }
}

/// A 64-bit hash of an activity key for the per-object table: every
/// 8-byte word of every string (the last one overlapping), with its length,
/// through a multiply-rotate mix. It reads whole words instead of feeding
/// `foldhash` string by string (about 150 bytes per record; with the other
/// changes of commit 4b1bf7c, run 3 of benches/compare got 1-2% faster).
/// It covers every byte, so log content that differs anywhere, such as
/// role session names inside ARNs, does not pile up in one chain. Rows that
/// share a hash are told apart by comparing their strings.
///
/// The committing thread merges a whole batch's rows under these hashes
/// too, and log content is chosen by whoever makes the API calls (a user
/// agent is any string), so the mix starts from a seed drawn once per
/// process: keys crafted offline to collide, which would make every merge
/// walk one long chain, do not collide here. Nothing stores a hash.
#[inline]
pub(crate) fn key_fingerprint(key: &[&str; 10], read_only: Option<bool>) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let mix = |h: u64, v: u64| (h ^ v).wrapping_mul(K).rotate_left(31);
    let seed = *SEED.get_or_init(|| fastrand::u64(..));
    let mut h = mix(
        seed,
        match read_only {
            None => 1,
            Some(false) => 2,
            Some(true) => 3,
        },
    );
    for s in key {
        let b = s.as_bytes();
        let n = b.len();
        h = mix(h, n as u64);
        match n {
            0 => {}
            1..=3 => {
                h = mix(
                    h,
                    u64::from(b[0]) | u64::from(b[n / 2]) << 8 | u64::from(b[n - 1]) << 16,
                )
            }
            4..=7 => h = mix(h, half(b, 0) | half(b, n - 4) << 32),
            _ => {
                for i in 0..(n - 1) / 8 {
                    h = mix(h, word(b, 8 * i));
                }
                h = mix(h, word(b, n - 8));
            }
        }
    }
    // Fold the high half in: the table takes its bucket from the low bits
    // and its tag from the top ones.
    let wide = u128::from(h) * u128::from(K);
    (wide as u64) ^ ((wide >> 64) as u64)
}

/// Whether `t` starts with `YYYY-MM-DD`, all ASCII: then slicing it at
/// byte 10 (or 13 after `THH`) is on a character boundary. Log content picks
/// `eventTime`; checking only the dashes let a multi-byte character straddle
/// the cut and panic (see tests/fuzz_regressions/decode_rules/).
fn dated(b: &[u8]) -> bool {
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    b.len() >= 10 && b[4] == b'-' && b[7] == b'-' && digits(0..4) && digits(5..7) && digits(8..10)
}

/// `YYYY-MM-DDTHH` of an ISO 8601 time, or `""` when `t` does not start so.
pub fn hour_of(t: &str) -> &str {
    let b = t.as_bytes();
    if dated(b) && b.len() >= 13 && (b[10] == b'T' || b[10] == b' ') && b[11..13].iter().all(u8::is_ascii_digit) {
        &t[..13]
    } else {
        ""
    }
}

/// `YYYY-MM-DD` of an ISO 8601 time (the aggregates' partition), or `None`.
pub fn day_of(t: &str) -> Option<&str> {
    dated(t.as_bytes()).then(|| &t[..10])
}

/// The fields of one record that the aggregate reads.
struct Fields<'a> {
    key: [&'a str; 10],
    read_only: Option<bool>,
    time: &'a str,
}

impl<'a> Fields<'a> {
    /// Reads the fields through the record's index of top-level fields and
    /// one pass over `userIdentity`, with the same outcome as reading field
    /// by field: `eventTime` else `@timestamp`; `recipientAccountId` else
    /// `userIdentity.accountId`; the first occurrence of a duplicated key (a
    /// non-string one reads as absent).
    fn of(rec: &Record<'a>) -> Fields<'a> {
        let s = |f: Field| rec.field(f).and_then(|v| v.as_str());
        let time = s(Field::EventTime)
            .or_else(|| rec.str("@timestamp"))
            .unwrap_or_default();
        // Outer None: key not seen yet; Some(None): seen, not a string.
        let mut ui = [None::<Option<&'a str>>; 3];
        if let Some(obj) = rec.field(Field::UserIdentity).and_then(|v| v.as_object()) {
            let mut missing = 3;
            for (k, v) in obj.iter() {
                let slot = match k {
                    "type" => 0,
                    "arn" => 1,
                    "accountId" => 2,
                    _ => continue,
                };
                if ui[slot].is_none() {
                    ui[slot] = Some(v.as_str());
                    missing -= 1;
                    // The rest (sessionContext...) is not needed: a later
                    // duplicate of a key found would not count anyway.
                    if missing == 0 {
                        break;
                    }
                }
            }
        }
        let read_only = rec.field(Field::ReadOnly).and_then(|v| {
            v.as_bool().or_else(|| match v.as_str() {
                Some(s) if s.eq_ignore_ascii_case("true") => Some(true),
                Some(s) if s.eq_ignore_ascii_case("false") => Some(false),
                _ => None,
            })
        });
        Fields {
            key: [
                hour_of(time),
                s(Field::RecipientAccountId).or(ui[2].flatten()).unwrap_or_default(),
                s(Field::AwsRegion).unwrap_or_default(),
                s(Field::EventSource).unwrap_or_default(),
                s(Field::EventName).unwrap_or_default(),
                ui[0].flatten().unwrap_or_default(),
                ui[1].flatten().unwrap_or_default(),
                s(Field::SourceIpAddress).unwrap_or_default(),
                user_agent_family(s(Field::UserAgent).unwrap_or_default()),
                s(Field::ErrorCode).unwrap_or_default(),
            ],
            read_only,
            time,
        }
    }
}

/// A hasher for keys that are already hashes (shared with the staging
/// codec in `store::staging`).
#[derive(Default)]
pub(crate) struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

pub(crate) type ByHash = HashMap<u64, u32, BuildHasherDefault<IdentityHasher>>;

const NO_ROW: u32 = u32::MAX;

/// Aggregates the records of one object at a time; reused across objects.
#[derive(Default)]
pub struct ActivityAgg {
    /// Key fingerprint → first row with it; `next` chains rows sharing a hash.
    index: ByHash,
    next: Vec<u32>,
    rows: Vec<ActivityRow>,
    /// Strings of the rows. Bytes, so that a time can be overwritten in place.
    text: Vec<u8>,
}

impl ActivityAgg {
    fn push_str(&mut self, s: &str) -> Span {
        let sp = Span {
            start: self.text.len() as u32,
            len: s.len() as u32,
        };
        self.text.extend_from_slice(s.as_bytes());
        sp
    }

    fn bytes(&self, sp: Span) -> &[u8] {
        &self.text[sp.start as usize..(sp.start + sp.len) as usize]
    }

    /// Replaces the time in `sp`: in place when the length is the same.
    fn set_time(&mut self, sp: Span, t: &str) -> Span {
        if sp.len as usize == t.len() {
            self.text[sp.start as usize..(sp.start + sp.len) as usize].copy_from_slice(t.as_bytes());
            sp
        } else {
            self.push_str(t)
        }
    }

    pub fn add(&mut self, rec: &Record<'_>) {
        let f = Fields::of(rec);
        let h = key_fingerprint(&f.key, f.read_only);
        self.add_fields(&f, h);
    }

    /// Counts a record whose key fingerprints to `h`.
    #[inline]
    fn add_fields(&mut self, f: &Fields<'_>, h: u64) {
        let mut at = self.index.get(&h).copied().unwrap_or(NO_ROW);
        while at != NO_ROW {
            let r = &self.rows[at as usize];
            if r.read_only == f.read_only
                && r.key
                    .iter()
                    .zip(&f.key)
                    .all(|(sp, s)| short_eq(self.bytes(*sp), s.as_bytes()))
            {
                break;
            }
            at = self.next[at as usize];
        }
        if at == NO_ROW {
            let key = f.key.map(|s| self.push_str(s));
            let first = self.push_str(f.time);
            let last = self.push_str(f.time);
            let i = self.rows.len() as u32;
            self.next.push(self.index.insert(h, i).unwrap_or(NO_ROW));
            self.rows.push(ActivityRow {
                hash: h,
                key,
                read_only: f.read_only,
                events: 1,
                first,
                last,
            });
            return;
        }
        let i = at as usize;
        self.rows[i].events += 1;
        if f.time.is_empty() {
            return;
        }
        let (first, last) = (self.rows[i].first, self.rows[i].last);
        if first.len == 0 || f.time.as_bytes() < self.bytes(first) {
            self.rows[i].first = self.set_time(first, f.time);
        }
        if f.time.as_bytes() > self.bytes(last) {
            self.rows[i].last = self.set_time(last, f.time);
        }
    }

    /// The rows so far; the aggregator is empty afterwards.
    pub fn take(&mut self) -> ActivityRows {
        // The buffers are handed over rather than copied (a copy was 90
        // instructions a record), and the next object starts with buffers of
        // this one's size, so it rarely grows them.
        let (text_len, rows_len) = (self.text.len(), self.rows.len());
        let text = std::mem::replace(&mut self.text, Vec::with_capacity(text_len));
        let rows = std::mem::replace(&mut self.rows, Vec::with_capacity(rows_len));
        self.clear();
        // Every span was written from a whole &str, so the arena is UTF-8.
        let text = String::from_utf8(text).expect("arena holds whole UTF-8 strings");
        ActivityRows { text, rows }
    }

    /// Forgets the rows so far (after a failed object).
    pub fn clear(&mut self) {
        self.index.clear();
        self.next.clear();
        self.rows.clear();
        self.text.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Decoder;

    #[test]
    fn hour_and_day_of_a_time_with_a_multibyte_character_at_the_cut_are_empty_not_a_panic() {
        // Regression: `hour_of` sliced at byte 13 after checking only the
        // dashes, and `partition_of` (now `day_of`) at byte 10, so `é` or
        // `€` across the cut panicked a worker (or the flush, every run).
        assert_eq!(hour_of("2026-10-05T1é:00Z"), "");
        assert_eq!(hour_of("2026-10-05Té:00Z"), "");
        assert_eq!(day_of("2026-10-€X"), None);
        assert_eq!(day_of("2026-1€-05"), None);
        assert_eq!(hour_of("2026-10-05T14:03:00Z"), "2026-10-05T14");
        assert_eq!(hour_of("2026-10-05 14:03:00"), "2026-10-05 14");
        assert_eq!(day_of("2026-10-05T14:03:00Z"), Some("2026-10-05"));
        assert_eq!(hour_of("2026-10-05"), "");
        assert_eq!(day_of("short"), None);
    }

    #[test]
    fn user_agent_families() {
        assert_eq!(user_agent_family("aws-cli/2.15.0 Python/3.11.6 Linux/6"), "aws-cli");
        assert_eq!(
            user_agent_family("[S3Console/0.4, aws-internal/3 aws-sdk-java/1.12]"),
            "S3Console"
        );
        assert_eq!(user_agent_family("console.amazonaws.com"), "console.amazonaws.com");
        assert_eq!(user_agent_family("Boto3/1.26.0 Python/3.9"), "Boto3");
        assert_eq!(user_agent_family(""), "");
    }

    #[test]
    fn hours() {
        assert_eq!(hour_of("2017-06-01T00:05:12Z"), "2017-06-01T00");
        assert_eq!(hour_of("garbage"), "");
    }

    /// A row as the tests compare it: key, read-only, events, first and
    /// last seen.
    type Row = (Vec<String>, Option<bool>, u64, String, String);

    fn aggregate(doc: &str) -> Vec<Row> {
        let mut buf = doc.as_bytes().to_vec();
        let len = buf.len();
        buf.resize(len + simd_json::INPUT_PADDING, 0);
        let mut agg = ActivityAgg::default();
        Decoder::default()
            .decode("t", &mut buf, len, |rec| agg.add(rec))
            .unwrap();
        let rows = agg.take();
        let mut out: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    r.key.iter().map(|s| s.to_string()).collect(),
                    r.read_only,
                    r.events,
                    r.first_seen.to_owned(),
                    r.last_seen.to_owned(),
                )
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn rows_count_per_key_with_first_and_last_seen() {
        let doc = r#"{"Records":[
          {"eventTime":"2026-10-05T14:10:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"eu-west-1","recipientAccountId":"111122223333","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/alice","accountId":"444455556666"},"sourceIPAddress":"192.0.2.1","userAgent":"aws-cli/2.15 Python/3.11","readOnly":true},
          {"eventTime":"2026-10-05T14:01:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"eu-west-1","recipientAccountId":"111122223333","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/alice"},"sourceIPAddress":"192.0.2.1","userAgent":"aws-cli/2.16 Python/3.12","readOnly":"TRUE"},
          {"eventTime":"2026-10-05T14:59:59.123Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"eu-west-1","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/alice","accountId":"111122223333"},"sourceIPAddress":"192.0.2.1","userAgent":"aws-cli/2","readOnly":true},
          {"@timestamp":"2026-10-05T15:00:00Z","eventSource":"kms.amazonaws.com","eventName":"Decrypt","errorCode":"AccessDenied","eventTime":7,"userIdentity":{"type":"AWSService","invokedBy":"x"}}
        ]}"#;
        let rows = aggregate(doc);
        let k = |v: [&str; 10]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            rows,
            vec![
                (
                    k([
                        "2026-10-05T14",
                        "111122223333",
                        "eu-west-1",
                        "s3.amazonaws.com",
                        "GetObject",
                        "IAMUser",
                        "arn:aws:iam::111122223333:user/alice",
                        "192.0.2.1",
                        "aws-cli",
                        ""
                    ]),
                    Some(true),
                    3,
                    "2026-10-05T14:01:00Z".into(),
                    "2026-10-05T14:59:59.123Z".into()
                ),
                // A non-string eventTime falls back to @timestamp.
                (
                    k([
                        "2026-10-05T15",
                        "",
                        "",
                        "kms.amazonaws.com",
                        "Decrypt",
                        "AWSService",
                        "",
                        "",
                        "",
                        "AccessDenied"
                    ]),
                    None,
                    1,
                    "2026-10-05T15:00:00Z".into(),
                    "2026-10-05T15:00:00Z".into()
                ),
            ]
        );
    }

    #[test]
    fn first_occurrence_of_a_duplicated_key_wins() {
        let doc = r#"{"eventTime":"2026-10-05T14:10:00Z","eventName":"A","eventName":"B","awsRegion":5,"awsRegion":"us-east-1"}"#;
        let rows = aggregate(doc);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].0[4], "A");
        assert_eq!(rows[0].0[2], "", "a non-string first occurrence reads as absent");
    }

    #[test]
    fn the_aggregator_is_empty_after_take_and_reusable() {
        let mut agg = ActivityAgg::default();
        let doc = r#"{"eventTime":"2026-10-05T14:10:00Z","eventName":"A"}"#;
        for _ in 0..2 {
            let mut buf = doc.as_bytes().to_vec();
            let len = buf.len();
            buf.resize(len + simd_json::INPUT_PADDING, 0);
            Decoder::default()
                .decode("t", &mut buf, len, |rec| agg.add(rec))
                .unwrap();
            let rows = agg.take();
            assert_eq!(rows.len(), 1);
            assert_eq!(rows.events(), 1);
            assert_eq!(rows.newest(), Some("2026-10-05T14:10:00Z"));
        }
    }

    #[test]
    fn keys_that_differ_only_mid_string_hash_apart() {
        // Role session names sit in the middle of assumed-role ARNs.
        let a = "arn:aws:sts::111122223333:assumed-role/Ops/alice-session-0001-x";
        let b = "arn:aws:sts::111122223333:assumed-role/Ops/alice-session-0002-x";
        let key = |arn| {
            [
                "2026-10-05T14",
                "111122223333",
                "",
                "",
                "",
                "AssumedRole",
                arn,
                "",
                "",
                "",
            ]
        };
        assert_ne!(key_fingerprint(&key(a), None), key_fingerprint(&key(b), None));
        assert_ne!(key_fingerprint(&key(a), None), key_fingerprint(&key(a), Some(true)));
        // Moving a character from one string to the next changes the hash.
        let mut moved = key(a);
        moved[0] = "2026-10-05T1";
        moved[1] = "4111122223333";
        assert_ne!(key_fingerprint(&key(a), None), key_fingerprint(&moved, None));
    }

    #[test]
    fn rows_that_share_a_hash_stay_apart() {
        let doc = r#"{"Records":[
            {"eventTime":"2026-10-05T14:10:00Z","eventName":"A"},
            {"eventTime":"2026-10-05T14:11:00Z","eventName":"B"},
            {"eventTime":"2026-10-05T14:12:00Z","eventName":"A"}]}"#;
        let mut buf = doc.as_bytes().to_vec();
        let len = buf.len();
        buf.resize(len + simd_json::INPUT_PADDING, 0);
        let mut agg = ActivityAgg::default();
        // Every record under one hash, as if all keys collided.
        Decoder::default()
            .decode("t", &mut buf, len, |rec| agg.add_fields(&Fields::of(rec), 42))
            .unwrap();
        let rows = agg.take();
        let mut counts: Vec<(&str, u64)> = rows.iter().map(|r| (r.key[4], r.events)).collect();
        counts.sort();
        assert_eq!(counts, vec![("A", 2), ("B", 1)]);
    }

    #[test]
    fn short_eq_agrees_with_slice_equality_at_every_length() {
        for n in 0..40usize {
            let a: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
            assert!(short_eq(&a, &a.clone()), "len {n}");
            for i in 0..n {
                let mut b = a.clone();
                b[i] ^= 0x20;
                assert!(!short_eq(&a, &b), "len {n}, byte {i} differs");
            }
            let mut longer = a.clone();
            longer.push(b'z');
            assert!(!short_eq(&a, &longer), "len {n} against {}", n + 1);
        }
    }
}
