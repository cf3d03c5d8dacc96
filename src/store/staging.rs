//! Staged activity in a compact form: the rows of a whole commit batch
//! merged by key, with their key strings interned, encoded as one blob.
//! (First/last-seen times are strings of their row: nearly all are
//! distinct, so interning them only cost hashes. The blob format is the
//! same; a string id simply appears once.)
//!
//! Why: a delivery file of 1,000 records has a few hundred distinct
//! activity keys, and staging them as one SQLite row each cost more than
//! parsing the file (the committing thread spent its time in B-tree inserts
//! and WAL writes). Merged over a batch of objects and stored as one blob
//! per transaction, staging costs a hash probe per row and a single insert.
//! The blob goes in the same transaction as the objects' ledger rows, so the
//! exactness argument of `store::aggregates` is unchanged.
//!
//! A flush writes each blob's rows to Parquet as they are ([`decode_blob`]):
//! a key may then have a row per batch in a part, which readers sum anyway.
//!
//! Blob layout (little-endian): `TWA1`, `u32` string count, then each
//! string as `u32` length + UTF-8 bytes; `u32` row count, then each row as
//! 10 `u32` string ids (the key columns), a `u8` read-only flag (0 unknown,
//! 1 false, 2 true), a `u64` event count and two `u32` string ids (first
//! and last seen).

use std::hash::BuildHasher;

use crate::pipeline::activity::{ActivityRows, RowRef};

const MAGIC: &[u8; 4] = b"TWA1";
const NONE: u32 = u32::MAX;

use crate::pipeline::activity::{ByHash, key_fingerprint, short_eq};

#[derive(Debug, Clone, Copy)]
struct Row {
    key: [u32; 10],
    read_only: Option<bool>,
    events: u64,
    first: u32,
    last: u32,
}

/// Activity rows merged by key (sum of events, min first seen, max last
/// seen), key strings interned.
pub struct ActivityTable {
    /// Seeded per table: interned strings are log content.
    hasher: foldhash::fast::RandomState,
    text: String,
    /// (start, len) of string `id` in `text`.
    strings: Vec<(u32, u32)>,
    str_index: ByHash,
    str_next: Vec<u32>,
    rows: Vec<Row>,
    row_index: ByHash,
    row_next: Vec<u32>,
    /// The id each key column interned last. Rows come an object at a
    /// time, and within one most columns (hour, account, region...) repeat
    /// the previous row's value: comparing with it first skips most hashes.
    last: [u32; 10],
}

impl Default for ActivityTable {
    fn default() -> Self {
        ActivityTable {
            hasher: Default::default(),
            text: String::new(),
            strings: Vec::new(),
            str_index: Default::default(),
            str_next: Vec::new(),
            rows: Vec::new(),
            row_index: Default::default(),
            row_next: Vec::new(),
            last: [NONE; 10],
        }
    }
}

/// Why a staged blob could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("staged activity blob is corrupt: {0}")]
pub struct BlobError(pub &'static str);

impl ActivityTable {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Empties the table, keeping its allocations.
    pub fn clear(&mut self) {
        self.text.clear();
        self.strings.clear();
        self.str_index.clear();
        self.str_next.clear();
        self.rows.clear();
        self.row_index.clear();
        self.row_next.clear();
        self.last = [NONE; 10];
    }

    fn s(&self, id: u32) -> &str {
        let (start, len) = self.strings[id as usize];
        &self.text[start as usize..(start + len) as usize]
    }

    /// [`intern`](Self::intern) for key column `c`, trying the column's
    /// previous value first.
    #[inline]
    fn intern_column(&mut self, c: usize, s: &str) -> u32 {
        let last = self.last[c];
        if last != NONE && short_eq(self.s(last).as_bytes(), s.as_bytes()) {
            return last;
        }
        let id = self.intern(s);
        self.last[c] = id;
        id
    }

    /// A time string, owned by one row: stored without looking for an
    /// equal one. Nearly every first/last-seen time of a batch is distinct,
    /// so hashing them to share equal ones cost more than it saved.
    fn push_time(&mut self, s: &str) -> u32 {
        let id = self.strings.len() as u32;
        self.strings.push((self.text.len() as u32, s.len() as u32));
        self.text.push_str(s);
        // Keeps `str_next` indexed by string id.
        self.str_next.push(NONE);
        id
    }

    /// Replaces a row's time: in place when the length is the same (the
    /// usual case: one format throughout), else as a new string.
    fn set_time(&mut self, id: u32, s: &str) -> u32 {
        let (start, len) = self.strings[id as usize];
        if len as usize == s.len() {
            let at = start as usize;
            self.text.replace_range(at..at + s.len(), s);
            id
        } else {
            self.push_time(s)
        }
    }

    fn intern(&mut self, s: &str) -> u32 {
        let h = self.hasher.hash_one(s);
        let mut at = self.str_index.get(&h).copied().unwrap_or(NONE);
        while at != NONE {
            if self.s(at) == s {
                return at;
            }
            at = self.str_next[at as usize];
        }
        let id = self.strings.len() as u32;
        self.strings.push((self.text.len() as u32, s.len() as u32));
        self.text.push_str(s);
        self.str_next.push(self.str_index.insert(h, id).unwrap_or(NONE));
        id
    }

    /// Adds one row, merging it into the row with the same key if any.
    pub fn add_row(&mut self, r: RowRef<'_>) {
        self.add_hashed(key_fingerprint(&r.key, r.read_only), r)
    }

    /// [`add_row`](Self::add_row) for a row whose [`key_fingerprint`] is
    /// `h`: the worker computed it already, and a second hash of the key
    /// was a fifth of the merge's cost.
    fn add_hashed(&mut self, h: u64, r: RowRef<'_>) {
        debug_assert_eq!(h, key_fingerprint(&r.key, r.read_only));
        let mut at = self.row_index.get(&h).copied().unwrap_or(NONE);
        while at != NONE {
            let row = &self.rows[at as usize];
            if row.read_only == r.read_only
                && row
                    .key
                    .iter()
                    .zip(&r.key)
                    .all(|(&id, s)| short_eq(self.s(id).as_bytes(), s.as_bytes()))
            {
                break;
            }
            at = self.row_next[at as usize];
        }
        if at == NONE {
            let mut key = [NONE; 10];
            for (c, s) in r.key.iter().enumerate() {
                key[c] = self.intern_column(c, s);
            }
            let first = self.push_time(r.first_seen);
            let last = self.push_time(r.last_seen);
            let id = self.rows.len() as u32;
            self.row_next.push(self.row_index.insert(h, id).unwrap_or(NONE));
            self.rows.push(Row {
                key,
                read_only: r.read_only,
                events: r.events,
                first,
                last,
            });
            return;
        }
        let i = at as usize;
        self.rows[i].events += r.events;
        // An empty time means "no usable time"; it never wins.
        let first = self.s(self.rows[i].first);
        if !r.first_seen.is_empty() && (first.is_empty() || r.first_seen < first) {
            self.rows[i].first = self.set_time(self.rows[i].first, r.first_seen);
        }
        if r.last_seen > self.s(self.rows[i].last) {
            self.rows[i].last = self.set_time(self.rows[i].last, r.last_seen);
        }
    }

    /// Adds every row of an object.
    pub fn add(&mut self, rows: &ActivityRows) {
        for (h, r) in rows.iter_hashed() {
            self.add_hashed(h, r);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = RowRef<'_>> + '_ {
        self.rows.iter().map(|r| RowRef {
            key: r.key.map(|id| self.s(id)),
            read_only: r.read_only,
            events: r.events,
            first_seen: self.s(r.first),
            last_seen: self.s(r.last),
        })
    }

    /// The table as a blob (see the module documentation).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// [`encode`](Self::encode) into a reused buffer (cleared first).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.clear();
        out.reserve(12 + self.text.len() + 4 * self.strings.len() + 57 * self.rows.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.strings.len() as u32).to_le_bytes());
        for &(start, len) in &self.strings {
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&self.text.as_bytes()[start as usize..(start + len) as usize]);
        }
        out.extend_from_slice(&(self.rows.len() as u32).to_le_bytes());
        for r in &self.rows {
            for id in r.key {
                out.extend_from_slice(&id.to_le_bytes());
            }
            out.push(match r.read_only {
                None => 0,
                Some(false) => 1,
                Some(true) => 2,
            });
            out.extend_from_slice(&r.events.to_le_bytes());
            out.extend_from_slice(&r.first.to_le_bytes());
            out.extend_from_slice(&r.last.to_le_bytes());
        }
    }

    /// Merges the rows of a blob written by [`encode`](Self::encode).
    pub fn add_blob(&mut self, blob: &[u8]) -> Result<usize, BlobError> {
        decode_blob(blob, |r| self.add_row(r))
    }
}

/// Calls `f` with every row of a blob written by [`ActivityTable::encode`],
/// strings borrowed from the blob; returns the row count. A corrupt blob is
/// an error (rows before the damage may have been handed out).
pub fn decode_blob<'a>(blob: &'a [u8], mut f: impl FnMut(RowRef<'a>)) -> Result<usize, BlobError> {
    let mut rd = Reader(blob);
    if rd.take(4)? != MAGIC {
        return Err(BlobError("unknown format"));
    }
    let n = rd.u32()? as usize;
    let mut strings = Vec::with_capacity(n.min(blob.len() / 4));
    for _ in 0..n {
        let len = rd.u32()? as usize;
        let s = std::str::from_utf8(rd.take(len)?).map_err(|_| BlobError("string is not UTF-8"))?;
        strings.push(s);
    }
    let rows = rd.u32()? as usize;
    let s = |id: u32| {
        strings
            .get(id as usize)
            .copied()
            .ok_or(BlobError("string id out of range"))
    };
    for _ in 0..rows {
        let mut key = [""; 10];
        for k in &mut key {
            *k = s(rd.u32()?)?;
        }
        let read_only = match rd.take(1)?[0] {
            0 => None,
            1 => Some(false),
            2 => Some(true),
            _ => return Err(BlobError("bad read-only flag")),
        };
        let events = u64::from_le_bytes(rd.take(8)?.try_into().expect("8 bytes"));
        let first_seen = s(rd.u32()?)?;
        let last_seen = s(rd.u32()?)?;
        f(RowRef {
            key,
            read_only,
            events,
            first_seen,
            last_seen,
        });
    }
    if !rd.0.is_empty() {
        return Err(BlobError("trailing bytes"));
    }
    Ok(rows)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BlobError> {
        if self.0.len() < n {
            return Err(BlobError("truncated"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }

    fn u32(&mut self) -> Result<u32, BlobError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row<'a>(name: &'a str, events: u64, first: &'a str, last: &'a str) -> RowRef<'a> {
        RowRef {
            key: [
                "2026-10-05T14",
                "111122223333",
                "eu-west-1",
                "s3.amazonaws.com",
                name,
                "IAMUser",
                "arn:aws:iam::111122223333:user/alice",
                "192.0.2.1",
                "aws-cli",
                "",
            ],
            read_only: Some(true),
            events,
            first_seen: first,
            last_seen: last,
        }
    }

    fn sorted(t: &ActivityTable) -> Vec<(String, u64, String, String)> {
        let mut v: Vec<_> = t
            .iter()
            .map(|r| {
                (
                    r.key[4].to_owned(),
                    r.events,
                    r.first_seen.to_owned(),
                    r.last_seen.to_owned(),
                )
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn rows_merge_by_key_and_survive_a_round_trip() {
        let mut t = ActivityTable::default();
        t.add_row(row("GetObject", 2, "2026-10-05T14:10:00Z", "2026-10-05T14:20:00Z"));
        t.add_row(row("PutObject", 1, "2026-10-05T14:11:00Z", "2026-10-05T14:11:00Z"));
        t.add_row(row("GetObject", 3, "2026-10-05T14:05:00Z", "2026-10-05T14:15:00Z"));
        t.add_row(row("GetObject", 1, "", ""));
        let want = vec![
            (
                "GetObject".to_owned(),
                6,
                "2026-10-05T14:05:00Z".to_owned(),
                "2026-10-05T14:20:00Z".to_owned(),
            ),
            (
                "PutObject".to_owned(),
                1,
                "2026-10-05T14:11:00Z".to_owned(),
                "2026-10-05T14:11:00Z".to_owned(),
            ),
        ];
        assert_eq!(sorted(&t), want);

        let blob = t.encode();
        let mut back = ActivityTable::default();
        assert_eq!(back.add_blob(&blob), Ok(2));
        assert_eq!(sorted(&back), want);
        // A second blob merges into the same rows.
        assert_eq!(back.add_blob(&blob), Ok(2));
        assert_eq!(back.len(), 2);
        assert_eq!(back.iter().map(|r| r.events).sum::<u64>(), 14);
    }

    /// Merging agrees with a plain map on rows whose columns alternate
    /// (the per-column last-value cache must not reuse a stale id) and whose
    /// times change length (a time is overwritten in place only when it
    /// keeps its length), through a blob round trip as well.
    #[test]
    fn merged_rows_match_a_plain_map_whatever_the_order_and_time_lengths() {
        use std::collections::BTreeMap;
        let hours = ["2026-10-05T14", "2026-10-05T15"];
        let names = ["GetObject", "PutObject", "ListBuckets"];
        let ips = ["192.0.2.1", "198.51.100.7", ""];
        let times = [
            "",
            "2026-10-05T14:10:00Z",
            "2026-10-05T14:09:59.123Z",
            "2026-10-05T14:30:00Z",
            "2026-10-05T14:00:01.5Z",
        ];
        let mut rng = fastrand::Rng::with_seed(7);
        let mut t = ActivityTable::default();
        type Key = (Vec<String>, Option<bool>);
        let mut want: BTreeMap<Key, (u64, String, String)> = BTreeMap::new();
        for _ in 0..2_000 {
            let mut r = row(names[rng.usize(..3)], rng.u64(1..4), times[rng.usize(..5)], "");
            r.key[0] = hours[rng.usize(..2)];
            r.key[7] = ips[rng.usize(..3)];
            r.last_seen = times[rng.usize(..5)];
            r.read_only = [None, Some(true)][rng.usize(..2)];
            t.add_row(r);
            let e = want
                .entry((r.key.iter().map(|s| s.to_string()).collect(), r.read_only))
                .or_insert((0, r.first_seen.to_owned(), r.last_seen.to_owned()));
            e.0 += r.events;
            if !r.first_seen.is_empty() && (e.1.is_empty() || r.first_seen < e.1.as_str()) {
                e.1 = r.first_seen.to_owned();
            }
            if r.last_seen > e.2.as_str() {
                e.2 = r.last_seen.to_owned();
            }
        }
        let got = |t: &ActivityTable| -> BTreeMap<Key, (u64, String, String)> {
            t.iter()
                .map(|r| {
                    (
                        (r.key.iter().map(|s| s.to_string()).collect(), r.read_only),
                        (r.events, r.first_seen.to_owned(), r.last_seen.to_owned()),
                    )
                })
                .collect()
        };
        assert_eq!(t.len(), want.len());
        assert_eq!(got(&t), want);
        let mut back = ActivityTable::default();
        back.add_blob(&t.encode()).unwrap();
        assert_eq!(got(&back), want);
    }

    /// The committing thread merges an object's rows under the worker's
    /// fingerprints, and a staged blob's rows under fingerprints computed
    /// again from their strings: the two must agree, or the same key would
    /// get two rows in one table.
    #[test]
    fn rows_from_a_worker_and_from_a_blob_merge_into_one_row_per_key() {
        let doc = r#"{"Records":[
            {"eventTime":"2026-10-05T14:10:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"eu-west-1","recipientAccountId":"111122223333","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/alice"},"sourceIPAddress":"192.0.2.1","userAgent":"aws-cli/2.15","readOnly":true},
            {"eventTime":"2026-10-05T14:20:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"eu-west-1","recipientAccountId":"111122223333","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/alice"},"sourceIPAddress":"192.0.2.1","userAgent":"aws-cli/2.15","readOnly":true},
            {"eventTime":"2026-10-05T14:11:00Z","eventSource":"s3.amazonaws.com","eventName":"PutObject","awsRegion":"eu-west-1","recipientAccountId":"111122223333","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/alice"},"sourceIPAddress":"192.0.2.1","userAgent":"aws-cli/2.15","readOnly":false}
        ]}"#;
        let mut buf = doc.as_bytes().to_vec();
        let len = buf.len();
        buf.resize(len + simd_json::INPUT_PADDING, 0);
        let mut agg = crate::pipeline::activity::ActivityAgg::default();
        crate::decode::Decoder::default()
            .decode("t", &mut buf, len, |rec| agg.add(rec))
            .unwrap();
        let rows = agg.take();
        assert_eq!(rows.len(), 2);

        let mut t = ActivityTable::default();
        t.add(&rows);
        let blob = t.encode();
        t.add_blob(&blob).unwrap();
        t.add(&rows);
        let got: Vec<_> = {
            let mut v: Vec<_> = t
                .iter()
                .map(|r| (r.key[4], r.read_only, r.events, r.first_seen, r.last_seen))
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            got,
            vec![
                (
                    "GetObject",
                    Some(true),
                    6,
                    "2026-10-05T14:10:00Z",
                    "2026-10-05T14:20:00Z"
                ),
                (
                    "PutObject",
                    Some(false),
                    3,
                    "2026-10-05T14:11:00Z",
                    "2026-10-05T14:11:00Z"
                ),
            ]
        );
    }

    #[test]
    fn corrupt_blobs_are_errors_not_panics() {
        let mut t = ActivityTable::default();
        t.add_row(row("GetObject", 2, "2026-10-05T14:10:00Z", "2026-10-05T14:20:00Z"));
        let blob = t.encode();
        for cut in 0..blob.len() {
            assert!(ActivityTable::default().add_blob(&blob[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = blob.clone();
        bad[0] = b'X';
        assert_eq!(
            ActivityTable::default().add_blob(&bad),
            Err(BlobError("unknown format"))
        );
        let mut long = blob;
        long.push(0);
        assert_eq!(
            ActivityTable::default().add_blob(&long),
            Err(BlobError("trailing bytes"))
        );
    }
}
