//! The bad-input corpus (`tests/fixtures/bad/`, described by its
//! `expected.tsv`) through the real binary: every bad object fails alone with
//! its class and a message that names it, the good objects beside it are
//! processed with exactly their alerts, nothing panics, and memory stays
//! bounded (peak RSS of the child, from wait4).
//!
//! Local files go through `scan`; SQS message bodies through the daemon
//! against moto_server, which also fetches S3 keys that look like paths.

mod common;
#[path = "common/moto.rs"]
mod moto;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A generous memory bound for one scan of the corpus with a 64 MiB cap:
/// the point is "bounded by the cap", not a tight budget.
const RSS_BOUND_KIB: u64 = 400 * 1024;

#[derive(Debug, Clone)]
struct Entry {
    file: String,
    via: String,
    expect: String,
    fragment: String,
    alerts: Vec<(String, String)>,
}

fn fixtures() -> PathBuf {
    repo().join("tests/fixtures/bad")
}

/// The four mandatory rules only: their names are an interface, so the
/// expected alerts do not change when the built-in set grows.
fn mandatory_rules() -> PathBuf {
    repo().join("rules/mandatory")
}

fn manifest() -> Vec<Entry> {
    let text = std::fs::read_to_string(fixtures().join("expected.tsv")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(cols.len(), 5, "expected.tsv: five tab-separated columns: {l}");
            let alerts = if cols[4] == "-" {
                Vec::new()
            } else {
                cols[4]
                    .split(',')
                    .map(|p| {
                        let (r, id) = p.split_once(':').unwrap();
                        (r.to_owned(), id.to_owned())
                    })
                    .collect()
            };
            Entry {
                file: cols[0].to_owned(),
                via: cols[1].to_owned(),
                expect: cols[2].to_owned(),
                fragment: cols[3].to_owned(),
                alerts,
            }
        })
        .collect()
}

fn is_failure(e: &Entry) -> bool {
    !matches!(e.expect.as_str(), "ok" | "digest")
}

fn file_name(object: &str) -> String {
    object.rsplit('/').next().unwrap().to_owned()
}

#[test]
fn the_manifest_covers_every_fixture_and_at_least_fifteen_kinds() {
    let listed: BTreeSet<String> = manifest().into_iter().map(|e| e.file).collect();
    let present: BTreeSet<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "expected.tsv" && n != "generate.py")
        .collect();
    assert_eq!(listed, present, "expected.tsv and the fixture folder disagree");
    let bad = manifest().iter().filter(|e| !e.file.starts_with("good-")).count();
    assert!(bad >= 15, "{bad} kinds");
    for f in &present {
        let len = std::fs::metadata(fixtures().join(f)).unwrap().len();
        assert!(
            len < 1 << 20,
            "{f} is {len} bytes: generate large inputs, or store them compressed"
        );
    }
}

#[test]
fn every_bad_file_fails_alone_with_its_class_and_the_good_ones_alert() {
    let entries: Vec<Entry> = manifest().into_iter().filter(|e| e.via == "scan").collect();
    let data = tempfile::tempdir().unwrap();
    let (out, peak_kib) = run_measured(
        bin()
            .args([
                "scan",
                "--format",
                "jsonl",
                "--max-object-bytes",
                "64MiB",
                "--threads",
                "2",
                "--rules",
            ])
            .arg(mandatory_rules())
            .arg("--data-dir")
            .arg(data.path())
            .arg(fixtures()),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    eprintln!("peak RSS, whole corpus: {} MiB", peak_kib / 1024);
    assert!(peak_kib < RSS_BOUND_KIB, "peak RSS {} MiB", peak_kib / 1024);

    // Failures: exactly the bad files, each once, with its class, naming
    // the object, and saying why.
    let rows: Vec<(String, String, String)> = {
        let c = db(data.path());
        let mut st = c.prepare("SELECT object, error_class, error FROM failures").unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let got: BTreeMap<String, String> = rows.iter().map(|(o, c, _)| (file_name(o), c.clone())).collect();
    assert_eq!(got.len(), rows.len(), "an object failed twice: {rows:?}");
    let want: BTreeMap<String, String> = entries
        .iter()
        .filter(|e| is_failure(e))
        .map(|e| (e.file.clone(), e.expect.clone()))
        .collect();
    assert_eq!(got, want);
    for (object, _, error) in &rows {
        let e = entries.iter().find(|e| e.file == file_name(object)).unwrap();
        assert!(error.starts_with(object.as_str()), "does not name the object: {error}");
        assert!(
            error.contains(&e.fragment),
            "{}: `{error}` lacks `{}`",
            e.file,
            e.fragment
        );
        assert!(err.contains(error.as_str()), "stderr lacks `{error}`:\n{err}");
    }

    // The rest was processed, digests recognised as such.
    let status: BTreeMap<String, String> = query_pairs(data.path(), "SELECT name, status FROM objects")
        .into_iter()
        .map(|(o, s)| (file_name(&o), s))
        .collect();
    for e in &entries {
        let want = match e.expect.as_str() {
            "ok" => "ok",
            "digest" => "digest",
            _ => "failed",
        };
        assert_eq!(status.get(&e.file).map(String::as_str), Some(want), "{}", e.file);
    }

    // Exactly the expected alerts, printed and stored.
    let mut want: Vec<(String, String)> = entries.iter().flat_map(|e| e.alerts.clone()).collect();
    want.sort();
    let mut printed: Vec<(String, String)> = printed_alert_pairs(&stdout(&out));
    printed.sort();
    assert_eq!(printed, want);
    assert_eq!(
        query_pairs(data.path(), "SELECT rule_name, event_id FROM alerts ORDER BY 1, 2"),
        want
    );
    assert!(
        err.contains(&format!("{} failed", entries.iter().filter(|e| is_failure(e)).count())),
        "{err}"
    );
}

/// Scans one fixture alone and returns the output and the peak RSS in MiB.
fn scan_alone(file: &str, cap: &str) -> (std::process::Output, u64) {
    let data = tempfile::tempdir().unwrap();
    let (out, kib) = run_measured(
        bin()
            .args(["scan", "--format", "jsonl", "--max-object-bytes", cap, "--rules"])
            .arg(mandatory_rules())
            .arg("--data-dir")
            .arg(data.path())
            .arg(fixtures().join(file)),
    );
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    (out, kib / 1024)
}

#[test]
fn gzip_bomb_costs_at_most_the_cap() {
    // 130 KB on disk, 128 MiB inflated; the cap stops it at 64 MiB.
    let (out, mib) = scan_alone("bomb.json.gz", "64MiB");
    eprintln!("peak RSS, gzip bomb (cap 64 MiB): {mib} MiB");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("decompressed size exceeds the cap of 67108864 bytes"),
        "{}",
        stderr(&out)
    );
    assert!(mib * 1024 < RSS_BOUND_KIB, "{mib} MiB");
    // With a smaller cap, less memory: the cost follows the cap, not the
    // inflated size.
    let (_, small) = scan_alone("bomb.json.gz", "8MiB");
    eprintln!("peak RSS, gzip bomb (cap 8 MiB): {small} MiB");
    assert!(small < mib, "{small} MiB with an 8 MiB cap, {mib} MiB with 64 MiB");
}

#[test]
fn deep_nesting_is_refused_without_a_stack_overflow() {
    let (out, mib) = scan_alone("deep-nesting.json.gz", "1GiB");
    eprintln!("peak RSS, 100,000-deep nesting: {mib} MiB");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nesting deeper than 1024 levels"),
        "{}",
        stderr(&out)
    );
    assert!(mib * 1024 < RSS_BOUND_KIB, "{mib} MiB");
}

#[test]
fn a_fifty_megabyte_string_is_processed_in_bounded_memory() {
    let (out, mib) = scan_alone("huge-string.json.gz", "1GiB");
    eprintln!("peak RSS, 50 MB string field: {mib} MiB");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("bad-corpus-huge-string"));
    assert!(mib * 1024 < RSS_BOUND_KIB, "{mib} MiB");
}

#[test]
fn terminal_control_sequences_in_log_fields_are_not_printed_raw() {
    // The user agent holds OSC (set window title), CSI (clear screen) and a
    // C1 CSI. Table output and `alerts show` must show them escaped.
    let data = tempfile::tempdir().unwrap();
    let out = run(bin()
        .args(["scan", "--rules"])
        .arg(mandatory_rules())
        .arg("--data-dir")
        .arg(data.path())
        .arg(fixtures().join("terminal-escapes.json")));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let raw_controls = |s: &str| s.chars().any(|c| c.is_control() && c != '\n');
    assert!(!raw_controls(&stdout(&out)), "{:?}", stdout(&out));
    let show = run(bin()
        .args(["alerts", "show", "bad-corpus-terminal-escapes", "--data-dir"])
        .arg(data.path()));
    assert_eq!(show.status.code(), Some(0), "{}", stderr(&show));
    let text = stdout(&show);
    assert!(!raw_controls(&text), "{text:?}");
    assert!(
        text.contains(r"user agent:    \u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}X"),
        "{text}"
    );
    let list = run(bin().args(["alerts", "--data-dir"]).arg(data.path()));
    assert!(!raw_controls(&stdout(&list)));
    // Log lines too: a file (or S3 key) named with control sequences is
    // shown escaped in the error that names it.
    let dir = tempfile::tempdir().unwrap();
    let hostile = dir.path().join("evil\u{1b}]0;pwned\u{7}\u{1b}[2J.json");
    std::fs::write(&hostile, b"not json").unwrap();
    let out = run(bin()
        .args(["scan", "--data-dir"])
        .arg(dir.path().join("d"))
        .arg(&hostile));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!raw_controls(&err), "{err:?}");
    assert!(err.contains(r"evil\u{1b}]0;pwned\u{7}\u{1b}[2J.json"), "{err}");
    // Machine formats keep the exact value (JSON escapes it).
    let jsonl = run(bin()
        .args(["alerts", "--format", "jsonl", "--data-dir"])
        .arg(data.path()));
    let v: serde_json::Value = serde_json::from_str(stdout(&jsonl).lines().next().unwrap()).unwrap();
    assert_eq!(v["user_agent"], "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}X");
}

// ---------------------------------------------------------------------------
// SQS bodies and S3 keys, through the daemon and moto_server.

fn put(rt: &tokio::runtime::Runtime, s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: Vec<u8>) {
    rt.block_on(s3.put_object().bucket(bucket).key(key).body(body.into()).send())
        .unwrap();
}

fn root_record_file(event_id: &str) -> Vec<u8> {
    gzip(format!(r#"{{"Records":[{{"eventVersion":"1.08","eventID":"{event_id}","eventTime":"2026-10-05T10:00:00Z","eventName":"ListBuckets","eventSource":"s3.amazonaws.com","awsRegion":"us-east-1","recipientAccountId":"111122223333","userIdentity":{{"type":"Root","arn":"arn:aws:iam::111122223333:root","accountId":"111122223333"}}}}]}}"#).as_bytes())
}

/// Every file below `root`, relative to it.
fn tree(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.insert(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

#[test]
fn bad_notifications_are_recorded_and_left_and_path_like_keys_stay_s3_keys() {
    let entries: Vec<Entry> = manifest().into_iter().filter(|e| e.via == "sqs").collect();
    let moto = moto::Moto::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (s3, sqs) = (moto.s3(), moto.sqs());
    let queue_url = rt.block_on(async {
        for b in ["trail", "someone-elses-bucket"] {
            s3.create_bucket().bucket(b).send().await.unwrap();
        }
        let q = sqs.create_queue().queue_name("trail-events").send().await.unwrap();
        q.queue_url().unwrap().to_owned()
    });
    // The other bucket holds an object that would alert: it must never be
    // fetched.
    let other: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("sqs-other-bucket.sqs")).unwrap()).unwrap();
    let other_key = other["Records"][0]["s3"]["object"]["key"].as_str().unwrap();
    put(
        &rt,
        &s3,
        "someone-elses-bucket",
        other_key,
        root_record_file("bad-corpus-foreign"),
    );
    // The path-like keys exist in the bucket, as S3 keys.
    let paths: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("sqs-path-keys.sqs")).unwrap()).unwrap();
    let path_keys: Vec<String> = paths["s3ObjectKey"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    for (i, k) in path_keys.iter().enumerate() {
        put(
            &rt,
            &s3,
            "trail",
            k,
            root_record_file(&format!("bad-corpus-s3-key-{}", i + 1)),
        );
    }
    for e in &entries {
        let body = std::fs::read_to_string(fixtures().join(&e.file)).unwrap();
        rt.block_on(sqs.send_message().queue_url(&queue_url).message_body(body).send())
            .unwrap();
    }

    // The daemon runs in an empty working directory beside its data
    // directory, so that any file written outside the data directory (a key
    // used as a local path, relative or absolute) would show up.
    let work = tempfile::tempdir().unwrap();
    let (cwd, data) = (work.path().join("cwd"), work.path().join("data"));
    std::fs::create_dir(&cwd).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .current_dir(&cwd)
        .args(["daemon", "--queue-url", &queue_url, "--endpoint-url", &moto.endpoint()])
        .args([
            "--force-path-style",
            "--wait-time-secs",
            "1",
            "--visibility-timeout-secs",
            "60",
        ])
        .args(["--allowed-buckets", "trail", "--rules"])
        .arg(mandatory_rules())
        .arg("--data-dir")
        .arg(&data)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .env_remove("TRAILWATCH_DATA_DIR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let failing = entries.iter().filter(|e| is_failure(e)).count() as i64;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = data.join("alerts.db").exists()
            && count(&data, "SELECT COUNT(*) FROM objects WHERE status = 'ok'") == path_keys.len() as i64
            && count(&data, "SELECT COUNT(DISTINCT object) FROM failures") == failing;
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "timed out waiting for the daemon");
        std::thread::sleep(Duration::from_millis(250));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(!log.contains("panicked"), "{log}");

    // Each refused message: recorded with its class, message id and reason.
    let rows: Vec<(String, String, String, Option<String>)> = {
        let c = db(&data);
        let mut st = c
            .prepare("SELECT object, error_class, error, message_id FROM failures ORDER BY id")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    for e in entries.iter().filter(|e| is_failure(e)) {
        let row = rows
            .iter()
            .find(|r| r.1 == e.expect)
            .unwrap_or_else(|| panic!("{}: no `{}` failure in {rows:?}", e.file, e.expect));
        assert!(row.2.contains(&e.fragment), "{}: {}", e.file, row.2);
        let id = row.3.as_deref().expect("message id recorded");
        assert!(
            row.2.contains(id) || row.0.contains(id),
            "{row:?} does not name its message"
        );
        assert!(log.contains(id), "the log does not name message {id}:\n{log}");
    }
    let refused = rows.iter().find(|r| r.1 == "bucket_not_allowed").unwrap();
    assert_eq!(refused.0, format!("s3://someone-elses-bucket/{other_key}"));

    // The path-like keys were fetched as the S3 keys they are, and named so.
    let mut want: Vec<(String, String)> = entries.iter().flat_map(|e| e.alerts.clone()).collect();
    want.sort();
    assert_eq!(
        query_pairs(&data, "SELECT rule_name, event_id FROM alerts ORDER BY 1, 2"),
        want
    );
    let names: BTreeSet<String> = query_pairs(&data, "SELECT name, status FROM objects")
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let expected_names: BTreeSet<String> = path_keys.iter().map(|k| format!("s3://trail/{k}")).collect();
    assert_eq!(names, expected_names, "the other bucket was fetched, or a key changed");

    // Nothing was written outside the data directory.
    let outside: Vec<String> = tree(work.path())
        .into_iter()
        .filter(|p| p != "cwd" && p != "data" && !p.starts_with("data/"))
        .collect();
    assert!(outside.is_empty(), "written outside the data directory: {outside:?}");
    for k in &path_keys {
        let name = k.rsplit('/').next().unwrap();
        assert!(!Path::new("/").join(name).exists() && !Path::new("/tmp").join(name).exists());
    }
    // The refused messages are still on the queue (for the dead-letter
    // queue), the processed one is gone.
    let depth = rt.block_on(async {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let a = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap();
        let a = a.attributes().unwrap();
        let n = |k: &A| a.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        n(&A::ApproximateNumberOfMessages) + n(&A::ApproximateNumberOfMessagesNotVisible)
    });
    assert_eq!(depth, failing, "{log}");
}

#[test]
fn a_panic_on_one_object_is_recorded_as_its_failure_and_the_run_goes_on() {
    // Regression: a panic in a scan worker (as the multi-byte eventTime cut
    // once caused) killed the thread; its object was silently lost and the
    // scan exited 0. Now the worker contains it. A test hook stands in for
    // the next such bug.
    let data = tempfile::tempdir().unwrap();
    let out = run(bin()
        .env("TRAILWATCH_TEST_PANIC_OBJECT", "good-plain.json")
        .args(["scan", "--format", "jsonl", "--threads", "1", "--rules"])
        .arg(mandatory_rules())
        .arg("--data-dir")
        .arg(data.path())
        .arg(fixtures().join("good-plain.json"))
        .arg(fixtures().join("good-gzip.json.gz"))
        .arg(fixtures().join("nul-escaped.json")));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let failures = query_pairs(data.path(), "SELECT object, error_class FROM failures");
    assert_eq!(
        failures,
        vec![(
            fixtures().join("good-plain.json").display().to_string(),
            "panic".to_string()
        )]
    );
    assert!(
        err.contains("internal error while processing this object (a trailwatch bug; please report it): test hook"),
        "{err}"
    );
    // The same worker thread went on with the next objects.
    assert_eq!(
        query_pairs(data.path(), "SELECT rule_name, event_id FROM alerts ORDER BY 2"),
        vec![
            ("root_account_usage".to_string(), "bad-corpus-good-gzip".to_string()),
            ("root_account_usage".to_string(), "bad-corpus-nul-escaped".to_string()),
        ]
    );
}

/// `--data-dir` naming a file printed "cannot open the alert store:
/// …: File exists (os error 17): File exists (os error 17)": mkdir's word,
/// which reads as if all were well, and the cause twice (each error layer
/// puts its source in its message and in `source()`, and the chain
/// printed both).
#[test]
fn a_data_dir_that_is_a_file_was_reported_as_file_exists_twice() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alerts-data");
    std::fs::write(&file, b"not a directory").unwrap();
    let out = run(bin()
        .args(["scan", "--data-dir"])
        .arg(&file)
        .arg(repo().join("sample-logs")));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!(
            "trailwatch: cannot open the alert store: {}: exists and is not a directory\n",
            file.display()
        )
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"not a directory");
}
