//! Replays the inputs that fuzzing found (or that pin a bug it is meant to
//! find) through the fuzz targets' own bodies, `trailwatch::fuzz_harness`,
//! so a plain `cargo test` runs them. One folder per target under
//! `tests/fuzz_regressions/`; file names say which bug each input pins.
//! fuzz/README.md explains how to add one.

use std::path::PathBuf;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_regressions")
        .join(target);
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let all = inputs(target);
    for (name, data) in &all {
        let r = std::panic::catch_unwind(|| run(data));
        assert!(r.is_ok(), "{target}/{name} fails again");
    }
    all.len()
}

#[test]
fn decode_rules_regressions() {
    assert!(replay("decode_rules", trailwatch::fuzz_harness::decode_rules) > 0);
}

#[test]
fn notification_regressions() {
    assert!(replay("notification", trailwatch::fuzz_harness::notification) > 0);
}

#[test]
fn rule_loader_regressions() {
    assert!(replay("rule_loader", trailwatch::fuzz_harness::rule_loader) > 0);
}
