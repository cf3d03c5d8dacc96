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
    let r = json_reason_of(s.as_bytes());
    assert!(r.starts_with("nesting deeper than 1024 levels at byte "), "{r}");
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

/// A compiled path reads what the same path given step by step reads:
/// through the field index when its first step is an indexed field, by
/// name otherwise, and the first of duplicated keys either way.
#[test]
fn compiled_paths_read_what_step_by_step_paths_read() {
    let doc = br#"{"Records":[
        {"eventName":"X","userIdentity":{"type":"Root","arn":"a"},"errorMessage":"denied","userIdentity":{"type":"IAMUser"},"tlsDetails":{"tlsVersion":"TLSv1.2"},"p":[{"c":1},{"c":true}]},
        {"eventName":"Y"}
    ]}"#;
    let mut buf = Vec::new();
    let len = read_object("o", &doc[..], 1 << 20, &mut buf).unwrap();
    let paths = [
        "userIdentity.type",
        "userIdentity",
        "errorMessage",
        "tlsDetails.tlsVersion",
        "p.c",
        "eventName",
        "missing.deeper",
        "userIdentity.missing",
    ];
    let text = |l: Leaf<'_>| match l {
        Leaf::Str(s) => s.to_owned(),
        Leaf::U64(n) => n.to_string(),
        Leaf::Bool(b) => b.to_string(),
        Leaf::Container(_) => "{..}".to_owned(),
        other => format!("{other:?}"),
    };
    let mut got = Vec::new();
    Decoder::default()
        .decode("o", &mut buf, len, |r| {
            for p in paths {
                let compiled = FieldPath::parse(p);
                let steps: Vec<&str> = p.split('.').collect();
                let (mut a, mut b) = (Vec::new(), Vec::new());
                r.any_at_path(&compiled, &mut |l| {
                    a.push(text(l));
                    false
                });
                r.any_at(&steps, &mut |l| {
                    b.push(text(l));
                    false
                });
                assert_eq!(a, b, "{p}");
                assert_eq!(r.exists_path(&compiled), !a.is_empty(), "{p}");
                got.push(a.join(","));
            }
        })
        .unwrap();
    assert_eq!(
        got,
        [
            "Root", "{..}", "denied", "TLSv1.2", "1,true", "X", "", "", //
            "", "", "", "", "", "Y", "", "",
        ]
    );
}

/// The reason text of a JSON failure.
fn json_reason_of(input: &[u8]) -> String {
    match ids(input) {
        Err(DecodeError::Json { reason, .. }) => reason,
        other => panic!("expected a JSON error, got {other:?}"),
    }
}

#[test]
fn json_errors_say_what_is_wrong_and_where() {
    // A raw control character inside a string (stage 1 of the parser, which
    // reports no position of its own).
    assert_eq!(
        json_reason_of(b"{\"eventName\":\"a\x00b\"}"),
        "unescaped control character U+0000 inside a string at byte 15 (JSON requires \\u0000)"
    );
    assert_eq!(
        json_reason_of(b"{\"eventName\":\"a\tb\"}"),
        "unescaped control character U+0009 inside a string at byte 15 (JSON requires \\u0009)"
    );
    assert_eq!(
        json_reason_of(b"{\"eventName\":\"abc}"),
        "unterminated string starting at byte 13"
    );
    // NUL padding after the document (a preallocated, partly written file).
    assert_eq!(
        json_reason_of(b"{\"eventName\":\"X\"}\x00\x00\x00"),
        "NUL byte (0x00) outside a string at byte 17"
    );
    assert_eq!(
        json_reason_of(b"{\"eventName\":\"\xff\xfe\"}"),
        "invalid UTF-8 at byte 14"
    );
    let r = json_reason_of(br#"{"eventName":"X","n":1e400}"#);
    assert!(
        r.starts_with("number out of range or malformed at byte ") && r.contains("`1e400`"),
        "{r}"
    );
    let r = json_reason_of(br#"{"eventName":"X","n":340282366920938463463374607431768211456}"#);
    assert!(r.contains("`340282366920938463463374607431768211456`"), "{r}");
    // Leading whitespace is counted: offsets are object offsets.
    assert_eq!(
        json_reason_of(b"  \n{\"eventName\":\"a\x01\"}"),
        "unescaped control character U+0001 inside a string at byte 18 (JSON requires \\u0001)"
    );
}

#[test]
fn numbers_within_128_bits_and_f64_are_accepted() {
    let doc = br#"{"eventName":"X","eventID":"n","a":340282366920938463463374607431768211455,"b":-170141183460469231731687303715884105728,"c":1e-400,"d":1.7976931348623157e308}"#;
    assert_eq!(ids(doc).unwrap().0, vec!["n"]);
}

#[test]
fn escaped_nul_is_valid_json_and_kept_in_the_value() {
    let mut buf = Vec::new();
    let doc = br#"{"eventName":"X","userAgent":"a\u0000b"}"#;
    let len = read_object("o", &doc[..], 1 << 20, &mut buf).unwrap();
    let mut ua = String::new();
    Decoder::default()
        .decode("o", &mut buf, len, |r| ua = r.str("userAgent").unwrap().to_owned())
        .unwrap();
    assert_eq!(ua, "a\0b");
}

#[test]
fn duplicate_keys_first_occurrence_wins() {
    // CloudTrail never writes duplicate keys; when a document has them,
    // every field lookup (rules, alerts, aggregates) sees the first one, so
    // the record view is deterministic.
    let mut buf = Vec::new();
    let doc = br#"{"eventName":"ListBuckets","eventID":"d","eventName":"ConsoleLogin"}"#;
    let len = read_object("o", &doc[..], 1 << 20, &mut buf).unwrap();
    let mut name = String::new();
    Decoder::default()
        .decode("o", &mut buf, len, |r| name = r.str("eventName").unwrap().to_owned())
        .unwrap();
    assert_eq!(name, "ListBuckets");
}

#[test]
fn ndjson_json_errors_locate_the_line() {
    let nd = b"{\"eventID\":\"a\",\"eventName\":\"X\"}\n{\"eventID\":\"b\",\"eventName\":\"Y\x00\"}\n";
    match ids(nd) {
        Err(DecodeError::Json {
            line: Some(2), reason, ..
        }) => assert_eq!(
            reason,
            "unescaped control character U+0000 inside a string at byte 29 (JSON requires \\u0000)"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn field_of_knows_every_indexed_name_and_nothing_else() {
    use Field::*;
    let all = [
        ("eventVersion", EventVersion),
        ("userIdentity", UserIdentity),
        ("eventTime", EventTime),
        ("eventSource", EventSource),
        ("eventName", EventName),
        ("awsRegion", AwsRegion),
        ("sourceIPAddress", SourceIpAddress),
        ("userAgent", UserAgent),
        ("errorCode", ErrorCode),
        ("requestParameters", RequestParameters),
        ("responseElements", ResponseElements),
        ("additionalEventData", AdditionalEventData),
        ("eventID", EventId),
        ("eventType", EventType),
        ("readOnly", ReadOnly),
        ("recipientAccountId", RecipientAccountId),
    ];
    for (name, field) in all {
        assert_eq!(Field::of(name), Some(field), "{name}");
        // One byte changed anywhere, the case of one letter, one byte more
        // or less: not the field.
        for i in 0..name.len() {
            let mut b = name.as_bytes().to_vec();
            b[i] ^= 0x01;
            let changed = String::from_utf8(b).unwrap();
            assert_eq!(Field::of(&changed), None, "{changed}");
        }
        assert_eq!(Field::of(&name.to_uppercase()), None, "{name}");
        assert_eq!(Field::of(&format!("{name}x")), None, "{name}x");
        assert_eq!(Field::of(&name[..name.len() - 1]), None, "{name} shortened");
    }
    for other in [
        "",
        "x",
        "requestID",
        "eventCategory",
        "sharedEventID",
        "tlsDetails",
        "errorMessage",
        "eventNames",
    ] {
        assert_eq!(Field::of(other), None, "{other}");
    }
}
