//! The bodies of the fuzz targets (`fuzz/`), kept in the library so that the
//! inputs fuzzing found are replayed by a plain `cargo test`
//! (`tests/fuzz_regressions.rs`) through exactly the same checks.
//!
//! Each function takes arbitrary bytes and panics only when an invariant
//! breaks; a clean error for bad input is the expected outcome, never a
//! failure. Not part of the supported API.

use std::sync::{Arc, OnceLock};

use crate::pipeline::{ObjectMeta, Outcome, PipelineOptions, Worker};
use crate::rules::correlation::{CorrelationLimits, Correlator};
use crate::rules::{LoadOptions, RuleSet};
use crate::sources::notification::{self, Notification};

/// Decompressed-size cap for fuzzed objects: small, so that a gzip bomb the
/// fuzzer builds hits the cap instead of the fuzzer's memory limit.
pub const FUZZ_MAX_OBJECT_BYTES: u64 = 1 << 20;

/// Rules that exercise every matcher kind (wildcards, modifiers, numbers,
/// CIDR, base64, field references, keywords, conditions), evaluated on every
/// fuzzed record next to the embedded rules.
pub const BROAD_RULES: &str = r#"
title: fuzz strings
name: fuzz_strings
logsource: {product: aws, service: cloudtrail}
detection:
  sel_prefix:
    eventName|startswith: Get
    userIdentity.arn|contains|all: [':', 'arn']
  sel_glob:
    eventSource: '*.amazon?ws.com'
    eventName|endswith: Login
  sel_cased:
    eventName|cased: ConsoleLogin
  sel_re:
    requestParameters|re|i: '^a.*b$'
  sel_null:
    errorCode: null
    eventType: AwsApiCall
  keywords:
    - 'evil*'
    - '?ad\*x'
  condition: 1 of sel_* or keywords
---
title: fuzz encodings
name: fuzz_encodings
logsource: {product: aws, service: cloudtrail}
detection:
  sel_b64:
    userAgent|base64offset|contains: curl
  sel_b64plain:
    requestParameters.data|base64: secret
  sel_windash:
    requestParameters.commandLine|windash|contains: ' -enc '
  condition: sel_b64 or sel_b64plain or sel_windash
---
title: fuzz numbers and networks
name: fuzz_numbers
logsource: {product: aws, service: cloudtrail}
detection:
  sel_cidr:
    sourceIPAddress|cidr:
      - 192.0.2.0/24
      - 2001:db8::/32
  sel_num:
    requestParameters.maxResults|gt: 5
    responseElements.count|lte: 1e300
  sel_ref:
    userIdentity.accountId|fieldref: recipientAccountId
  sel_exists:
    additionalEventData|exists: true
  filter:
    readOnly: true
  condition: (sel_cidr or all of sel_n* or sel_ref) and not filter or sel_exists
"#;

fn rule_sets() -> &'static (Arc<RuleSet>, Arc<RuleSet>) {
    static SETS: OnceLock<(Arc<RuleSet>, Arc<RuleSet>)> = OnceLock::new();
    SETS.get_or_init(|| {
        let opts = LoadOptions::default();
        let (embedded, errs) = RuleSet::embedded(&opts);
        assert!(errs.is_empty(), "embedded rules: {errs:?}");
        let (broad, errs) = RuleSet::compile([("fuzz-broad.yml".to_string(), BROAD_RULES)], &opts);
        assert!(errs.is_empty(), "broad rules: {errs:?}");
        (Arc::new(embedded), Arc::new(broad))
    })
}

/// The rules that indexed dispatch reports for `rec`, and the rules whose
/// condition holds when every rule is run (both sorted by name). Dispatch
/// must only skip rules that cannot match, so the two are equal; the fuzz
/// target and the real-records test check it.
pub fn dispatched_and_matching<'r>(
    rules: &'r RuleSet,
    rec: &crate::decode::Record<'_>,
) -> (Vec<&'r str>, Vec<&'r str>) {
    let mut got: Vec<&str> = Vec::new();
    rules.evaluate(rec, |r| got.push(&r.name));
    got.sort_unstable();
    let mut want: Vec<&str> = rules
        .rules()
        .iter()
        .filter(|r| r.matches(rec))
        .map(|r| r.name.as_str())
        .collect();
    want.sort_unstable();
    (got, want)
}

/// Target `decode_rules`: bytes → gunzip/size cap → decoder → every record
/// through the embedded and the broad rule sets, alert construction, the
/// activity aggregation and the correlations, exactly as `scan` runs an
/// object.
///
/// Invariants: no panic (not even one the worker contains); a failure
/// names the object; rule dispatch reports exactly the rules whose
/// condition holds on each record; every alert's
/// `raw_event` is JSON that `trailwatch alerts show` can parse back; an
/// object's activity rows count exactly its records.
pub fn decode_rules(data: &[u8]) {
    let (embedded, broad) = rule_sets();
    for rules in [embedded, broad] {
        let mut w = Worker::new(
            rules.clone(),
            PipelineOptions {
                max_object_bytes: FUZZ_MAX_OBJECT_BYTES,
                ..Default::default()
            },
        );
        let meta = ObjectMeta {
            name: "fuzz-object".into(),
            size: data.len() as u64,
            mtime_ns: None,
            fingerprint: String::new(),
            message_id: None,
        };
        let mut oc = w.process(meta, data);
        // Dispatch only skips rules that cannot match: on every record, the
        // rules the indexed set reports are exactly those whose condition
        // holds (odd values at dispatch fields, such as arrays or numbers,
        // run the whole index).
        let mut buf = Vec::new();
        if let Ok(len) = crate::decode::read_object("fuzz-object", data, FUZZ_MAX_OBJECT_BYTES, &mut buf) {
            let _ = crate::decode::Decoder::default().decode("fuzz-object", &mut buf, len, |rec| {
                let (got, want) = dispatched_and_matching(rules, rec);
                assert_eq!(got, want, "rule dispatch changed a result");
            });
        }
        // Correlations too, as the committer runs them (a fresh correlator:
        // each input is a stream of its own; windows it completes or closes
        // become alerts on this outcome).
        let mut correlator = Correlator::new(rules.correlations(), CorrelationLimits::default());
        let _ = crate::pipeline::correlate(rules, &mut correlator, std::slice::from_mut(&mut oc));
        match oc.outcome {
            Outcome::Failed(e) => {
                // A panic is contained by the worker, but it is still a bug.
                assert_ne!(e.class(), "panic", "{e}");
                assert!(
                    e.to_string().contains("fuzz-object"),
                    "error does not name the object: {e}"
                );
            }
            Outcome::Processed {
                stats,
                alerts,
                activity,
                ..
            } => {
                for a in &alerts {
                    if let Err(e) = serde_json::from_str::<serde_json::Value>(&a.raw_event) {
                        panic!("raw_event of alert {} is not JSON ({e}): {}", a.rule_name, a.raw_event);
                    }
                    // What the store derives from an alert: its partition.
                    let _ = crate::pipeline::activity::day_of(&a.event_time);
                }
                let counted: u64 = activity.iter().map(|r| r.events).sum();
                assert_eq!(counted, stats.records, "activity rows must count every record once");
            }
        }
    }
}

/// Target `notification`: an SQS message body → the objects it announces.
///
/// Invariants: no panic; a body either names at least one object with a
/// valid bucket name and a non-empty key of at most 1024 bytes, is a test
/// event, or is an error.
pub fn notification(data: &[u8]) {
    let Ok(body) = std::str::from_utf8(data) else {
        // SQS bodies are Unicode text; the SDK hands out `String`s.
        return;
    };
    if let Ok(Notification::Objects(objs)) = notification::parse(body) {
        assert!(!objs.is_empty(), "an announcement of no object must be an error");
        for o in &objs {
            assert!(
                notification::valid_bucket_name(&o.bucket),
                "invalid bucket name accepted: {:?}",
                o.bucket
            );
            assert!(notification::valid_key(&o.key), "invalid key accepted: {:?}", o.key);
            assert!(o.uri().starts_with("s3://"));
        }
    }
    let _ = notification::decode_s3_key(body);
}

/// Target `rule_loader`: YAML text → `RuleSet::compile`, and every rule that
/// compiles evaluated on a few records.
///
/// Invariants: no panic; a rule that loads is usable.
pub fn rule_loader(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (set, errors) = RuleSet::compile([("fuzz.yml".to_string(), text)], &LoadOptions::default());
    for e in &errors {
        assert!(e.to_string().contains("fuzz.yml"), "error does not name the file: {e}");
    }
    if set.is_empty() {
        return;
    }
    const RECORDS: &[u8] = br#"{"Records":[
{"eventVersion":"1.08","eventName":"ConsoleLogin","eventSource":"signin.amazonaws.com","sourceIPAddress":"192.0.2.7","userIdentity":{"type":"Root","arn":"arn:aws:iam::111122223333:root","accountId":"111122223333"},"recipientAccountId":"111122223333","requestParameters":{"a":[1,2.5,true,null,"x"],"b":{"c":"d"}},"eventTime":"2026-10-05T10:00:00Z"},
{"eventVersion":"1.08","eventName":"GetObject","eventSource":"s3.amazonaws.com","sourceIPAddress":"2001:db8::1","userAgent":"[aws-cli/2.0]","errorCode":"AccessDenied","requestParameters":null,"additionalEventData":{"x":-1}},
{"eventName":"","p":[[[]]],"q":{},"n":18446744073709551615,"m":-9223372036854775808,"f":1e300}
]}"#;
    let mut buf = Vec::new();
    let len = crate::decode::read_object("fuzz-records", RECORDS, 1 << 20, &mut buf).expect("fixed records");
    let mut decoder = crate::decode::Decoder::default();
    decoder
        .decode("fuzz-records", &mut buf, len, |rec| {
            set.evaluate(rec, |_| {});
            for rule in set.rules() {
                let _ = rule.matches(rec);
            }
        })
        .expect("fixed records decode");
}
