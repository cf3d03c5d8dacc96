//! End-to-end tests of `trailwatch scan` through the real binary.

mod common;

use common::*;

#[test]
fn sample_logs_give_exactly_the_planted_alerts() {
    let data = tempfile::tempdir().unwrap();
    let out = run(bin()
        .args(["scan", "--format", "jsonl", "--data-dir"])
        .arg(data.path())
        .arg(repo().join("sample-logs")));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut got: Vec<(String, String)> = printed_alert_pairs(&stdout(&out));
    got.sort();
    assert_eq!(got, expected_sample_alerts());
    let stored = query_pairs(data.path(), "SELECT rule_name, event_id FROM alerts ORDER BY 1, 2");
    assert_eq!(stored, expected_sample_alerts());
    let err = stderr(&out);
    assert!(err.contains("1 digest"), "{err}");
    // Every object in the ledger once, all ok.
    assert_eq!(
        count(data.path(), "SELECT COUNT(*) FROM objects WHERE status = 'ok'"),
        102
    );
    assert_eq!(count(data.path(), "SELECT SUM(records) FROM objects"), sample_records());

    // Second run: nothing new, nothing read again.
    let again = run(bin()
        .args(["scan", "--format", "jsonl", "--data-dir"])
        .arg(data.path())
        .arg(repo().join("sample-logs")));
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(stdout(&again), "");
    assert!(stderr(&again).contains("102 unchanged"), "{}", stderr(&again));
    let total = format!("alerts: 0 new, {} total", sample_alert_count());
    assert!(stderr(&again).contains(&total), "{}", stderr(&again));

    // Forced re-processing stores nothing twice either.
    let re = run(bin()
        .args(["scan", "--reprocess", "--format", "jsonl", "--data-dir"])
        .arg(data.path())
        .arg(repo().join("sample-logs")));
    assert_eq!(re.status.code(), Some(0));
    assert_eq!(stdout(&re), "");
    assert_eq!(count(data.path(), "SELECT COUNT(*) FROM alerts"), sample_alert_count());
}

/// Logs written to a pipe or a file (CI, journald, `2> scan.log`) used to
/// carry the terminal's colour escapes around every level and field name.
/// (`bin()` sets `NO_COLOR`, which hid it from every other test.)
#[test]
fn logs_to_a_pipe_carry_no_ansi_escapes() {
    let data = tempfile::tempdir().unwrap();
    let out = run(bin()
        .env_remove("NO_COLOR")
        .args(["scan", "--format", "jsonl", "--data-dir"])
        .arg(data.path())
        .arg(repo().join("sample-logs")));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(" INFO scan starting rules=33 source=built-in rules"),
        "{err}"
    );
    assert!(!err.contains('\x1b'), "{err}");
}

/// A scan of a folder with no log files in it (a path one level off, an
/// empty mount) printed "scanned 0 objects" and exited 0, with nothing to
/// say that it found nothing.
#[test]
fn a_scan_that_finds_no_files_said_nothing_about_it() {
    let data = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let out = run(bin().args(["scan", "--data-dir"]).arg(data.path()).arg(empty.path()));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("scanned 0 objects"), "{err}");
    assert!(
        err.contains(&format!(
            " WARN found no files to scan under these paths paths=[{:?}]",
            empty.path()
        )),
        "{err}"
    );
    // A scan that finds files, even only ones it has seen, does not warn.
    for _ in 0..2 {
        let out = run(bin()
            .args(["scan", "--data-dir"])
            .arg(data.path())
            .arg(repo().join("sample-logs")));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(!stderr(&out).contains("found no files"), "{}", stderr(&out));
    }
}

#[test]
fn table_output_lists_the_planted_alerts() {
    let data = tempfile::tempdir().unwrap();
    let out = run(bin()
        .args(["scan", "--data-dir"])
        .arg(data.path())
        .arg(repo().join("sample-logs")));
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    let header = text.lines().next().unwrap();
    for col in ["TIME", "SEVERITY", "RULE", "ACCOUNT", "PRINCIPAL", "SOURCE IP", "EVENT"] {
        assert!(header.contains(col), "{header}");
    }
    assert_eq!(text.lines().count() as i64, 1 + sample_alert_count(), "{text}");
}

#[test]
fn all_shared_datasets_scan_without_crash_and_only_malformed_files_fail() {
    let data = tempfile::tempdir().unwrap();
    let out = run(bin()
        .args(["scan", "--format", "jsonl", "--data-dir"])
        .arg(data.path())
        .arg(shared().join("datasets")));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let failed = query_pairs(data.path(), "SELECT object, error_class FROM failures");
    let names: Vec<String> = failed
        .iter()
        .map(|(o, _)| o.rsplit('/').next().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        vec!["aws.execution.ec2-user-data.json".to_string()],
        "{failed:?}"
    );
    let records = count(data.path(), "SELECT SUM(records) FROM objects");
    assert!(records > 20_000, "{records}");
    assert!(err.contains("records"), "{err}");
}

#[test]
fn grycap_duplicate_logs_store_each_alert_once() {
    // The grycap folder holds the same log as .json and .json.gz.
    let data = tempfile::tempdir().unwrap();
    let g = shared().join("datasets/grycap_cloudtrail-tracker");
    // Find a log present both as .json and .json.gz (read from the shared
    // folder at test time; nothing of the dataset is copied here).
    let json = std::fs::read_dir(&g)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json") && p.with_extension("json.gz").exists())
        .expect("a log present as .json and .json.gz");
    let out = run(bin()
        .args(["scan", "--format", "jsonl", "--data-dir"])
        .arg(data.path())
        .arg(&json)
        .arg(json.with_extension("json.gz")));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let dupes = count(
        data.path(),
        "SELECT COUNT(*) FROM (SELECT rule_name, event_id FROM alerts GROUP BY 1, 2 HAVING COUNT(*) > 1)",
    );
    assert_eq!(dupes, 0);
    assert_eq!(count(data.path(), "SELECT COUNT(*) FROM objects"), 2);
}

#[test]
fn ctrl_c_stops_cleanly_and_the_same_command_resumes() {
    let data = tempfile::tempdir().unwrap();
    let g = shared().join("datasets/grycap_cloudtrail-tracker");
    let child = bin()
        .args([
            "scan",
            "--threads",
            "1",
            "--batch-objects",
            "8",
            "--format",
            "jsonl",
            "--data-dir",
        ])
        .arg(data.path())
        .arg(&g)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once some objects are committed. The file exists before its
    // tables do, so a failing query only means "not yet".
    let committed = || {
        db(data.path())
            .query_row("SELECT COUNT(*) FROM objects", [], |r| r.get::<_, i64>(0))
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !(data.path().join("alerts.db").exists() && committed() > 0) {
        assert!(std::time::Instant::now() < deadline, "nothing committed");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    let first = count(data.path(), "SELECT COUNT(*) FROM objects");
    if out.status.code() == Some(130) {
        assert!(err.contains("run the same command again to continue"), "{err}");
    } else {
        // The scan won the race; resuming must still be a no-op.
        assert_eq!(out.status.code(), Some(0), "{err}");
    }
    let again = run(bin()
        .args(["scan", "--format", "jsonl", "--data-dir"])
        .arg(data.path())
        .arg(&g));
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert!(
        stderr(&again).contains(&format!("{first} unchanged")),
        "{}",
        stderr(&again)
    );
    assert_eq!(
        count(data.path(), "SELECT COUNT(*) FROM objects WHERE status = 'ok'"),
        1071
    );
    assert_eq!(count(data.path(), "SELECT SUM(records) FROM objects"), 17_764);
    // The shipped pack (4 mandatory + 15 CIS rules) on grycap; the reference
    // evaluator in sample-logs/generate.py finds the same 313 (rule, event) pairs.
    assert_eq!(
        count(data.path(), "SELECT COUNT(*) FROM alerts WHERE group_key IS NULL"),
        313
    );
    // Correlations: scan commits in listing order, so an interrupted and
    // resumed scan raises exactly what an uninterrupted one does (33: the
    // SigmaHQ enumeration translations on grycap's console sessions).
    assert_eq!(
        count(data.path(), "SELECT COUNT(*) FROM alerts WHERE group_key IS NOT NULL"),
        33
    );
}
