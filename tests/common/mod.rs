//! Helpers shared by the integration tests: the binary, the shared
//! datasets, and store inspection.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_trailwatch"));
    c.env_remove("TRAILWATCH_DATA_DIR")
        .env_remove("TRAILWATCH_RULES")
        .env("NO_COLOR", "1");
    c
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared` beside the checkout (or `TRAILWATCH_SHARED`). Tests that need
/// it fail loudly when it is absent rather than pass vacuously.
pub fn shared() -> PathBuf {
    let p = std::env::var_os("TRAILWATCH_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared"));
    assert!(
        p.join("datasets").is_dir(),
        "{} is missing: the shared datasets must sit beside the checkout",
        p.display()
    );
    p
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run trailwatch");
    out
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Opens the store of a data dir for assertions.
pub fn db(data_dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(data_dir.join("alerts.db")).expect("open alerts.db")
}

pub fn query_pairs(data_dir: &Path, sql: &str) -> Vec<(String, String)> {
    let c = db(data_dir);
    let mut st = c.prepare(sql).unwrap();
    st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

pub fn count(data_dir: &Path, sql: &str) -> i64 {
    db(data_dir).query_row(sql, [], |r| r.get(0)).unwrap()
}

/// The planted alerts of sample-logs: (rule_name, event_id), sorted.
pub fn expected_sample_alerts() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo().join("sample-logs/expected-alerts.tsv")).unwrap();
    let mut v: Vec<(String, String)> = text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (a, b) = l.split_once('\t').unwrap();
            (a.to_owned(), b.to_owned())
        })
        .collect();
    v.sort();
    v
}

/// How many records the sample-logs delivery files hold, counted here from
/// the files themselves (gunzip + JSON), independently of trailwatch.
pub fn sample_records() -> i64 {
    use std::io::Read;
    let mut n = 0;
    for p in log_files(&repo().join("sample-logs")) {
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(&p).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        if let Some(records) = doc.get("Records") {
            n += records.as_array().unwrap().len() as i64;
        }
    }
    n
}

/// How many alerts a scan of sample-logs must produce (expected-alerts.tsv).
pub fn sample_alert_count() -> i64 {
    expected_sample_alerts().len() as i64
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Every `.json.gz` file below `root`, sorted.
pub fn log_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".json.gz") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
