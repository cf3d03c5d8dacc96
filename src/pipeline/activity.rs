//! Per-object activity aggregation: records counted per hour and per
//! (account, region, service, action, principal, source IP, user-agent
//! family, error code, read-only).
//!
//! The hot path hashes the borrowed field values and only allocates when a
//! key is seen for the first time in the object; a delivery file of 1,000
//! records typically has a few dozen distinct keys.

use std::collections::HashMap;
use std::hash::BuildHasher;

use simd_json::prelude::*;

use super::{account_id, event_time};
use crate::decode::Record;

/// One aggregate row: an hour and a key, with counts. `hour` is the first 13
/// characters of the ISO 8601 event time (`2026-10-05T14`), empty when the
/// record has no usable time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ActivityRow {
    pub hour: String,
    pub account_id: String,
    pub aws_region: String,
    pub event_source: String,
    pub event_name: String,
    pub principal_type: String,
    pub principal_arn: String,
    pub source_ip: String,
    pub user_agent_family: String,
    /// Empty when the call succeeded.
    pub error_code: String,
    pub read_only: Option<bool>,
    pub events: u64,
    /// Earliest and latest `eventTime` (ISO 8601 text) seen for the key.
    pub first_seen: String,
    pub last_seen: String,
}

/// The product token of a user agent: `aws-cli/2.15 Python/3.11 ...` →
/// `aws-cli`, `[S3Console/0.4, aws-internal/3]` → `S3Console`,
/// `console.amazonaws.com` stays as it is. Keeps the cardinality low while
/// telling tools apart.
pub fn user_agent_family(ua: &str) -> &str {
    let ua = ua.trim_start_matches(['[', ' ']);
    let end = ua.find(['/', ' ', ',', ']', '(']).unwrap_or(ua.len());
    &ua[..end]
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

struct Fields<'a> {
    hour: &'a str,
    account_id: &'a str,
    aws_region: &'a str,
    event_source: &'a str,
    event_name: &'a str,
    principal_type: &'a str,
    principal_arn: &'a str,
    source_ip: &'a str,
    ua_family: &'a str,
    error_code: &'a str,
    read_only: Option<bool>,
    time: &'a str,
}

impl<'a> Fields<'a> {
    fn of(rec: &Record<'a>) -> Fields<'a> {
        let time = event_time(rec).unwrap_or_default();
        let read_only = rec.value().get("readOnly").and_then(|v| {
            v.as_bool().or_else(|| match v.into_string() {
                Some(s) if s.eq_ignore_ascii_case("true") => Some(true),
                Some(s) if s.eq_ignore_ascii_case("false") => Some(false),
                _ => None,
            })
        });
        Fields {
            hour: hour_of(time),
            account_id: account_id(rec).unwrap_or_default(),
            aws_region: rec.str("awsRegion").unwrap_or_default(),
            event_source: rec.str("eventSource").unwrap_or_default(),
            event_name: rec.str("eventName").unwrap_or_default(),
            principal_type: rec.str_at(&["userIdentity", "type"]).unwrap_or_default(),
            principal_arn: rec.str_at(&["userIdentity", "arn"]).unwrap_or_default(),
            source_ip: rec.str("sourceIPAddress").unwrap_or_default(),
            ua_family: user_agent_family(rec.str("userAgent").unwrap_or_default()),
            error_code: rec.str("errorCode").unwrap_or_default(),
            read_only,
            time,
        }
    }

    fn key(&self) -> impl std::hash::Hash + '_ {
        (
            self.hour,
            self.account_id,
            self.aws_region,
            self.event_source,
            self.event_name,
            self.principal_type,
            self.principal_arn,
            self.source_ip,
            self.ua_family,
            self.error_code,
            self.read_only,
        )
    }

    fn same_key(&self, r: &ActivityRow) -> bool {
        self.hour == r.hour
            && self.event_name == r.event_name
            && self.principal_arn == r.principal_arn
            && self.source_ip == r.source_ip
            && self.event_source == r.event_source
            && self.account_id == r.account_id
            && self.aws_region == r.aws_region
            && self.principal_type == r.principal_type
            && self.ua_family == r.user_agent_family
            && self.error_code == r.error_code
            && self.read_only == r.read_only
    }

    fn to_row(&self) -> ActivityRow {
        ActivityRow {
            hour: self.hour.to_owned(),
            account_id: self.account_id.to_owned(),
            aws_region: self.aws_region.to_owned(),
            event_source: self.event_source.to_owned(),
            event_name: self.event_name.to_owned(),
            principal_type: self.principal_type.to_owned(),
            principal_arn: self.principal_arn.to_owned(),
            source_ip: self.source_ip.to_owned(),
            user_agent_family: self.ua_family.to_owned(),
            error_code: self.error_code.to_owned(),
            read_only: self.read_only,
            events: 0,
            first_seen: self.time.to_owned(),
            last_seen: self.time.to_owned(),
        }
    }
}

/// Aggregates the records of one object.
#[derive(Default)]
pub struct ActivityAgg {
    hasher: foldhash::fast::FixedState,
    /// Hash of the key → indices into `rows` (a list, for collisions).
    index: HashMap<u64, Vec<u32>>,
    rows: Vec<ActivityRow>,
}

impl ActivityAgg {
    pub fn add(&mut self, rec: &Record<'_>) {
        let f = Fields::of(rec);
        let h = self.hasher.hash_one(f.key());
        let slot = self.index.entry(h).or_default();
        let found = slot.iter().copied().find(|&i| f.same_key(&self.rows[i as usize]));
        let i = match found {
            Some(i) => i as usize,
            None => {
                self.rows.push(f.to_row());
                slot.push((self.rows.len() - 1) as u32);
                self.rows.len() - 1
            }
        };
        let row = &mut self.rows[i];
        row.events += 1;
        if !f.time.is_empty() {
            if f.time < row.first_seen.as_str() || row.first_seen.is_empty() {
                row.first_seen.clear();
                row.first_seen.push_str(f.time);
            }
            if f.time > row.last_seen.as_str() {
                row.last_seen.clear();
                row.last_seen.push_str(f.time);
            }
        }
    }

    /// The rows so far; the aggregator is empty afterwards.
    pub fn take(&mut self) -> Vec<ActivityRow> {
        self.index.clear();
        std::mem::take(&mut self.rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
