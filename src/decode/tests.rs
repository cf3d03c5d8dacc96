use super::*;
use std::io::Write;

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Decodes `input` and returns the eventIDs handed out, or the error.
fn ids(input: &[u8]) -> Result<(Vec<String>, DocumentStats), DecodeError> {
    let mut buf = Vec::new();
    let len = read_object("obj", input, 1 << 20, &mut buf)?;
    let mut out = Vec::new();
    let stats = Decoder::default().decode("obj", &mut buf, len, |r| {
        out.push(r.str("eventID").unwrap_or("-").to_owned());
    })?;
    Ok((out, stats))
}

const DOC: &[u8] = br#"{"Records":[{"eventVersion":"1.08","eventID":"a","eventName":"X"},{"eventVersion":"1.01","eventID":"b","eventName":"Y"}]}"#;

#[test]
fn delivery_file_plain_and_gzipped() {
    assert_eq!(ids(DOC).unwrap().0, vec!["a", "b"]);
    assert_eq!(ids(&gz(DOC)).unwrap().0, vec!["a", "b"]);
}

#[test]
fn multi_member_gzip_reads_every_member() {
    let mut two = gz(br#"{"eventID":"a","eventName":"X"}"#);
    two.extend(gz(b"\n{\"eventID\":\"b\",\"eventName\":\"Y\"}\n"));
    assert_eq!(ids(&two).unwrap().0, vec!["a", "b"]);
}

#[test]
fn ndjson_records_and_documents_per_line() {
    let nd = b"{\"eventID\":\"a\",\"eventName\":\"X\"}\n\n{\"Records\":[{\"eventID\":\"b\",\"eventName\":\"Y\"}]}\n";
    assert_eq!(ids(nd).unwrap().0, vec!["a", "b"]);
}

#[test]
fn ndjson_bad_line_fails_whole_object_with_line_number() {
    let nd = b"{\"eventID\":\"a\",\"eventName\":\"X\"}\n{\"eventID\":\"b\" \"eventName\":\"Y\"}\n";
    match ids(nd) {
        Err(DecodeError::Json { line: Some(2), .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn digest_and_insights_and_foreign_objects_are_counted() {
    let (got, st) = ids(br#"{"awsAccountId":"1","digestStartTime":"2026-01-01T00:00:00Z","logFiles":[]}"#).unwrap();
    assert!(got.is_empty() && st.digest);
    let (got, st) =
        ids(br#"{"Records":[{"eventID":"i","eventName":"X","eventType":"AwsCloudTrailInsight"},{"rule_id":"x"}]}"#)
            .unwrap();
    assert!(got.is_empty());
    assert_eq!((st.insights_skipped, st.foreign_skipped), (1, 1));
}

#[test]
fn bad_inputs_name_their_reason() {
    assert!(matches!(ids(b""), Err(DecodeError::Empty { .. })));
    assert!(matches!(ids(b"  \n "), Err(DecodeError::Empty { .. })));
    assert!(matches!(
        ids(b"[1,2]"),
        Err(DecodeError::NotAnObject { found: "array", .. })
    ));
    assert!(matches!(
        ids(br#"{"Records":{}}"#),
        Err(DecodeError::RecordsNotArray { found: "object", .. })
    ));
    assert!(matches!(
        ids(br#"{"Records":[{"eventName":"X"},42]}"#),
        Err(DecodeError::RecordNotObject { index: 1, .. })
    ));
    assert!(matches!(ids(br#"{"Records":[{"a":1}"#), Err(DecodeError::Json { .. })));
    let mut truncated = gz(DOC);
    truncated.truncate(truncated.len() / 2);
    assert!(matches!(ids(&truncated), Err(DecodeError::Gzip { .. })));
    assert!(matches!(
        ids(b"{\"eventName\":\"\xff\xfe\"}"),
        Err(DecodeError::Json { .. })
    ));
}

#[test]
fn gzip_bomb_stops_at_the_cap_without_holding_more() {
    // 64 MiB of zeros compress to ~64 KiB; the cap is 1 MiB.
    let zeros = vec![0u8; 64 << 20];
    let bomb = gz(&zeros);
    drop(zeros);
    let mut buf = Vec::new();
    let err = read_object("bomb.json.gz", &bomb[..], 1 << 20, &mut buf).unwrap_err();
    assert!(
        matches!(err, DecodeError::TooLarge { limit, .. } if limit == 1 << 20),
        "{err}"
    );
    assert!(err.to_string().contains("bomb.json.gz"));
    assert!(buf.capacity() <= 4 << 20, "buffer grew to {}", buf.capacity());
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let mut s = String::from("{\"eventName\":\"X\",\"a\":");
    s.push_str(&"[".repeat(100_000));
    s.push_str(&"]".repeat(100_000));
    s.push('}');
    assert!(matches!(ids(s.as_bytes()), Err(DecodeError::Json { .. })));
}

#[test]
fn record_paths_cross_arrays() {
    let doc = br#"{"Records":[{"eventName":"X","p":{"items":[{"r":{"items":[{"c":"10.0.0.0/8"}]}},{"r":{"items":[{"c":"0.0.0.0/0"}]}}]}}]}"#;
    let mut buf = Vec::new();
    let len = read_object("o", &doc[..], 1 << 20, &mut buf).unwrap();
    let mut seen = Vec::new();
    Decoder::default()
        .decode("o", &mut buf, len, |r| {
            r.any_at(&["p", "items", "r", "items", "c"], &mut |l| {
                if let Leaf::Str(s) = l {
                    seen.push(s.to_owned());
                }
                false
            });
        })
        .unwrap();
    assert_eq!(seen, vec!["10.0.0.0/8", "0.0.0.0/0"]);
}
