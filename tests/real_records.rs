//! Checks against every record of the shared real datasets.

mod common;

use std::path::{Path, PathBuf};

use common::{repo, shared};
use simd_json::prelude::*;
use trailwatch::decode::{Decoder, Record, read_object};
use trailwatch::rules::{LoadOptions, RuleSet};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|e| e == "json" || e == "gz" || e == "jsonl") {
            out.push(p);
        }
    }
}

/// Calls `on_object` with each object of the shared datasets (its name and
/// decompressed text, before decoding), then `f` with each of its records;
/// returns (objects decoded, objects that failed to decode, records).
fn for_each_real_record(
    mut on_object: impl FnMut(&str, &[u8]),
    mut f: impl FnMut(&str, &Record<'_>),
) -> (usize, usize, usize) {
    let mut paths = Vec::new();
    files(&shared().join("datasets"), &mut paths);
    let (mut records, mut objects, mut failed) = (0usize, 0usize, 0usize);
    let mut buf = Vec::new();
    let mut decoder = Decoder::default();
    for p in &paths {
        let name = p.display().to_string();
        let len = read_object(&name, std::fs::File::open(p).unwrap(), 1 << 30, &mut buf).unwrap();
        on_object(&name, &buf[..len]);
        let r = decoder.decode(&name, &mut buf, len, |rec| {
            f(&name, rec);
            records += 1;
        });
        match r {
            Ok(_) => objects += 1,
            Err(_) => failed += 1,
        }
    }
    (objects, failed, records)
}

/// The counts pin both tests to the whole of the shared datasets (files
/// that are not CloudTrail or not valid JSON fail to decode).
const ALL: (usize, usize, usize) = (1137, 1, 20_794);

/// simd-json's own reading of an object, as the reference: the compact
/// JSON (`encode()`) of every value that could be a record, in document
/// order. A delivery document gives its `Records`, any other document
/// itself, and a text that is not one document is read line by line.
fn reference_renders(text: &[u8]) -> Vec<String> {
    fn document(doc: &[u8], out: &mut Vec<String>) -> bool {
        let mut doc = doc.to_vec();
        let Ok(tape) = simd_json::to_tape(&mut doc) else {
            return false;
        };
        let root = tape.as_value();
        match root.get("Records").and_then(|r| r.as_array()) {
            Some(records) => out.extend(records.iter().map(|r| r.encode())),
            None => out.push(root.encode()),
        }
        true
    }
    let mut out = Vec::new();
    if !document(text, &mut out) {
        for line in text.split(|&b| b == b'\n') {
            if line.iter().any(|b| !b.is_ascii_whitespace()) {
                document(line, &mut out);
            }
        }
    }
    out
}

/// An alert's raw event is the record's compact JSON, rendered by our own
/// writer (`decode::render`) from our own view of the tape
/// (`decode::view`); records without an eventID are keyed by its hash, so
/// it must be byte for byte what simd-json's `encode()` writes for the
/// record, read through simd-json's own API.
#[test]
fn every_real_record_renders_as_simd_json_renders_it() {
    use std::cell::{Cell, RefCell};
    let reference = RefCell::new(Vec::new());
    let next = Cell::new(0);
    let counts = for_each_real_record(
        |_, text| {
            *reference.borrow_mut() = reference_renders(text);
            next.set(0);
        },
        |name, rec| {
            // Ours are the records among the reference's values (digests,
            // foreign objects and Insights events are skipped), in order.
            let ours = rec.to_json();
            let reference = reference.borrow();
            let found = reference[next.get()..].iter().position(|r| *r == ours);
            let Some(at) = found else {
                panic!("a record of {name} is not rendered as simd-json renders it:\n{ours}");
            };
            next.set(next.get() + at + 1);
        },
    );
    assert_eq!(counts, ALL);
}

/// Dispatch only skips rules that cannot match: on every real record, the
/// rules the indexed set reports are exactly the rules whose condition
/// holds. For the full pack (rules/ and the SigmaHQ CloudTrail rules:
/// dispatch by eventName, eventSource, userIdentity.type, userAgent and by
/// errorCode's presence) and for the fuzz harness's broad rules.
#[test]
fn dispatch_reports_exactly_the_rules_that_match_every_real_record() {
    let opts = LoadOptions::default();
    let (full, errs) = RuleSet::load_dirs(
        &[repo().join("rules"), shared().join("sigma/rules/cloud/aws/cloudtrail")],
        &opts,
    );
    assert!(errs.is_empty(), "{errs:?}");
    let (broad, errs) = RuleSet::compile(
        [("broad.yml".to_string(), trailwatch::fuzz_harness::BROAD_RULES)],
        &opts,
    );
    assert!(errs.is_empty(), "{errs:?}");
    let mut matched = [0usize; 2];
    let counts = for_each_real_record(
        |_, _| {},
        |name, rec| {
            for (set, n) in [&full, &broad].into_iter().zip(&mut matched) {
                let (got, want) = trailwatch::fuzz_harness::dispatched_and_matching(set, rec);
                assert_eq!(got, want, "a record of {name}");
                *n += got.len();
            }
        },
    );
    assert_eq!(counts, ALL);
    assert_eq!(
        matched,
        [4_166, 32_490],
        "matches of the full pack and of the broad rules"
    );
}
