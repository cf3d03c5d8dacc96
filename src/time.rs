//! CloudTrail event times as milliseconds since the epoch.
//!
//! One parser for every place that needs an event time as a number: the
//! correlation windows, the Parquet export's datetime columns, the daemon's
//! freshness metric. CloudTrail writes one format, `2026-10-05T14:03:00Z`,
//! and it is read here without chrono's general parser (the export reads
//! three times per activity row, and the general parser was a fifth of a
//! flush's instructions). Anything else (fractions, offsets, a missing `Z`,
//! leap seconds, impossible dates) takes the general path.

/// Milliseconds since the epoch of an RFC 3339 time, or of one without its
/// `Z` (exports that drop it); `None` if it is neither.
pub fn parse_ms(t: &str) -> Option<i64> {
    plain_utc_ms(t).or_else(|| general_ms(t))
}

/// `2026-10-05T14` (or `2026-10-05 14`), an activity row's hour, as the
/// milliseconds of its start; `None` for anything else, an impossible date
/// or hour included.
pub fn hour_start_ms(b: &[u8]) -> Option<i64> {
    if b.len() != 13 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b' ') {
        return None;
    }
    let date = chrono::NaiveDate::from_ymd_opt(digits(&b[..4])? as i32, digits(&b[5..7])?, digits(&b[8..10])?)?;
    Some(
        date.and_hms_opt(digits(&b[11..13])?, 0, 0)?
            .and_utc()
            .timestamp_millis(),
    )
}

/// CloudTrail's own format, `2026-10-05T14:03:00Z`, or `None`.
fn plain_utc_ms(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    if b.len() != 20 || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'Z' {
        return None;
    }
    let hour = hour_start_ms(&b[..13])?;
    let (min, sec) = (digits(&b[14..16])?, digits(&b[17..19])?);
    (min < 60 && sec < 60).then(|| hour + i64::from(min * 60 + sec) * 1000)
}

fn general_ms(t: &str) -> Option<i64> {
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(t) {
        return Some(dt.timestamp_millis());
    }
    chrono::NaiveDateTime::parse_from_str(t.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc().timestamp_millis())
}

/// A run of ASCII digits as a number; `None` if any byte is not a digit.
fn digits(b: &[u8]) -> Option<u32> {
    b.iter()
        .try_fold(0u32, |n, &c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_utc_times_read_fast_give_what_chrono_gives() {
        for t in [
            "2026-10-05T14:03:00Z",
            "1970-01-01T00:00:00Z",
            "2024-02-29T23:59:59Z",
            "1969-12-31T23:59:59Z",
            // Invalid, or not the plain form: chrono decides.
            "2026-02-29T10:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-10-05T24:00:00Z",
            "2026-10-05T14:60:00Z",
            "2016-12-31T23:59:60Z",
            "2026-10-05T14:03:00.123Z",
            "2026-10-05 14:03:00Z",
            "2026-10-05T14:03:00+02:00",
            "2026-1a-05T14:03:00Z",
            "+026-10-05T14:03:00Z",
            "2026-10-05T14:03:00",
            "",
        ] {
            assert_eq!(parse_ms(t), general_ms(t), "{t}");
        }
        assert_eq!(parse_ms("2026-10-05T14:03:07Z"), Some(1_791_208_987_000));
        // Hours as `pipeline::activity::hour_of` cuts them.
        for h in [
            "2026-10-05T14",
            "2026-10-05 14",
            "2026-10-05T25",
            "2026-02-30T01",
            "1970-01-01T00",
        ] {
            assert_eq!(hour_start_ms(h.as_bytes()), general_ms(&format!("{h}:00:00Z")), "{h}");
        }
    }
}
