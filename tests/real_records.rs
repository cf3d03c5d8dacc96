//! Checks against every record of the shared real datasets.

mod common;

use std::path::{Path, PathBuf};

use common::shared;
use simd_json::prelude::*;
use trailwatch::decode::{Decoder, read_object};

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

/// An alert's raw event is the record's compact JSON, rendered by our own
/// writer (`decode::render`); records without an eventID are keyed by its
/// hash, so it must be byte for byte what simd-json's `encode()` writes.
#[test]
fn every_real_record_renders_as_simd_json_renders_it() {
    let mut paths = Vec::new();
    files(&shared().join("datasets"), &mut paths);
    let (mut records, mut objects, mut failed) = (0usize, 0usize, 0usize);
    let mut buf = Vec::new();
    let mut decoder = Decoder::default();
    for p in &paths {
        let name = p.display().to_string();
        let len = read_object(&name, std::fs::File::open(p).unwrap(), 1 << 30, &mut buf).unwrap();
        let r = decoder.decode(&name, &mut buf, len, |rec| {
            assert_eq!(rec.to_json(), rec.value().encode(), "a record of {name}");
            records += 1;
        });
        match r {
            Ok(_) => objects += 1,
            Err(_) => failed += 1,
        }
    }
    // The counts pin the test to the whole of the shared datasets (files
    // that are not CloudTrail or not valid JSON fail to decode).
    assert_eq!((objects, failed, records), (1137, 1, 20_794));
}
