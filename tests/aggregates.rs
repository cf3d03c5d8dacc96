//! Aggregates and the analyst interface, end to end: exact totals across
//! re-runs and crashes, Parquet read back by DuckDB, the analyst commands
//! (their read-only guarantees are in security.rs).

mod common;

use common::*;
use std::path::Path;

fn scan(data: &Path, paths: &[&Path], extra: &[&str]) -> std::process::Output {
    let mut c = bin();
    c.arg("scan")
        .args(extra)
        .arg("--format")
        .arg("jsonl")
        .arg("--data-dir")
        .arg(data);
    for p in paths {
        c.arg(p);
    }
    run(&mut c)
}

#[test]
fn activity_events_equal_records_and_survive_rescans() {
    let data = tempfile::tempdir().unwrap();
    let logs = repo().join("sample-logs");
    assert!(scan(data.path(), &[&logs], &[]).status.success());
    assert_eq!(records(data.path()), sample_records());
    assert_eq!(activity_total(data.path()), sample_records());
    let before = activity_dump(data.path());
    assert!(scan(data.path(), &[&logs], &[]).status.success());
    assert!(scan(data.path(), &[&logs], &["--reprocess"]).status.success());
    assert_eq!(activity_dump(data.path()), before, "a re-scan changed the aggregates");
    assert_eq!(activity_total(data.path()), sample_records());
}

#[test]
fn grycap_totals_and_duckdb_cross_read() {
    let data = tempfile::tempdir().unwrap();
    let g = shared().join("datasets/grycap_cloudtrail-tracker");
    let out = scan(data.path(), &[&g], &["--flush-rows", "2000"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let n = records(data.path());
    assert!(n > 17_000, "{n}");
    assert_eq!(activity_total(data.path()), n);
    // Several flushes happened, so partitions hold several parts.
    let flushes = count(data.path(), "SELECT COUNT(*) FROM flushes WHERE state = 'done'");
    assert!(flushes > 1, "{flushes}");
    let alerts = count(data.path(), "SELECT COUNT(*) FROM alerts");
    let q = run(bin()
        .args(["query", "--format", "csv", "--data-dir"])
        .arg(data.path())
        .arg("SELECT COUNT(*) AS n FROM alerts"));
    assert_eq!(
        stdout(&q).lines().nth(1).unwrap().trim().parse::<i64>().unwrap(),
        alerts,
        "trailwatch query alert count"
    );
    let root = data.path().join("aggregates");
    let dd = duckdb(&format!(
        "import duckdb; c = duckdb.connect(); \
         a = c.sql(\"SELECT SUM(events) FROM read_parquet('{r}/activity/*/*.parquet', hive_partitioning = true)\").fetchall()[0][0]; \
         b = c.sql(\"SELECT COUNT(*) FROM read_parquet('{r}/alerts/*/*.parquet', hive_partitioning = true)\").fetchall()[0][0]; \
         d = c.sql(\"SELECT COUNT(DISTINCT date) FROM read_parquet('{r}/activity/*/*.parquet', hive_partitioning = true)\").fetchall()[0][0]; \
         print(a, b, d)",
        r = root.display()
    ));
    let parts: Vec<i64> = dd.split_whitespace().map(|x| x.parse().unwrap()).collect();
    assert_eq!(parts[0], n, "DuckDB activity total");
    assert_eq!(parts[1], alerts, "DuckDB alert count");
    assert!(parts[2] > 10, "days: {}", parts[2]);

    // Compaction leaves one part per partition and the same totals.
    let dump = activity_dump(data.path());
    let out = run(bin().args(["compact", "--data-dir"]).arg(data.path()));
    assert!(out.status.success(), "{}", stderr(&out));
    for table in ["activity", "alerts"] {
        for part in std::fs::read_dir(root.join(table)).unwrap() {
            let files = std::fs::read_dir(part.unwrap().path()).unwrap().count();
            assert_eq!(files, 1);
        }
    }
    assert_eq!(activity_dump(data.path()), dump);
    let again = duckdb(&format!(
        "import duckdb; print(duckdb.sql(\"SELECT SUM(events) FROM read_parquet('{}/activity/*/*.parquet', hive_partitioning = true)\").fetchall()[0][0])",
        root.display()
    ));
    assert_eq!(again.parse::<i64>().unwrap(), n);
    // pyarrow, a third reader, agrees on the alerts.
    let pa = duckdb(&format!(
        "import pyarrow.dataset as ds; print(ds.dataset('{}/alerts', format='parquet', partitioning='hive').count_rows())",
        root.display()
    ));
    assert_eq!(pa.parse::<i64>().unwrap(), alerts);
}

/// Runs a scan that aborts at a test hook, then a clean re-run, and checks
/// the totals equal those of one uninterrupted run.
fn crash_then_rerun(hook: &str, extra: &[&str], clean_dump: &str) {
    let data = tempfile::tempdir().unwrap();
    let logs = repo().join("sample-logs");
    let mut args = vec!["--threads", "1", "--batch-objects", "5", "--flush-rows", "300"];
    args.extend_from_slice(extra);
    let crashed = run(bin()
        .env("TRAILWATCH_TEST_ABORT_AT", hook)
        .args(["scan", "--format", "jsonl", "--data-dir"])
        .arg(data.path())
        .args(&args)
        .arg(&logs));
    assert!(
        !crashed.status.success(),
        "{hook}: the hook did not fire: {}",
        stderr(&crashed)
    );
    assert!(stderr(&crashed).contains("test hook: aborting"), "{}", stderr(&crashed));
    let rerun = scan(data.path(), &[&logs], &args);
    assert!(rerun.status.success(), "{hook}: {}", stderr(&rerun));
    assert_eq!(
        activity_dump(data.path()),
        clean_dump,
        "{hook}: totals differ from a clean run"
    );
    assert_eq!(
        count(data.path(), "SELECT COUNT(*) FROM alerts"),
        sample_alert_count(),
        "{hook}"
    );
    assert_eq!(count(data.path(), "SELECT COUNT(*) FROM objects"), 102, "{hook}");
    assert_eq!(records(data.path()), sample_records(), "{hook}");
    // The Parquet files alone (no staged rows are left after a finished run)
    // hold the exact totals too.
    assert_eq!(count(data.path(), "SELECT COUNT(*) FROM activity_staging"), 0);
    let dd = duckdb(&format!(
        "import duckdb; print(duckdb.sql(\"SELECT SUM(events) FROM read_parquet('{}/aggregates/activity/*/*.parquet')\").fetchall()[0][0])",
        data.path().display()
    ));
    assert_eq!(dd, sample_records().to_string(), "{hook}");
}

#[test]
fn a_crash_at_any_step_then_a_rerun_gives_the_clean_totals() {
    let clean = tempfile::tempdir().unwrap();
    assert!(scan(clean.path(), &[&repo().join("sample-logs")], &[]).status.success());
    let dump = activity_dump(clean.path());
    for hook in ["after_commit:3", "before_commit:4", "flush_begun:2", "flush_written:2"] {
        crash_then_rerun(hook, &[], &dump);
    }
}

#[test]
fn a_crash_during_compaction_loses_and_duplicates_nothing() {
    let data = tempfile::tempdir().unwrap();
    let logs = repo().join("sample-logs");
    assert!(
        scan(
            data.path(),
            &[&logs],
            &["--flush-rows", "300", "--batch-objects", "5", "--threads", "1"]
        )
        .status
        .success()
    );
    let dump = activity_dump(data.path());
    let crashed = run(bin()
        .env("TRAILWATCH_TEST_ABORT_AT", "compact_written:2")
        .args(["compact", "--data-dir"])
        .arg(data.path()));
    assert!(!crashed.status.success());
    // Readers between the crash and recovery see the new file or the old
    // ones, never both; recovery (any command that opens the store for
    // writing) finishes the deletion.
    assert_eq!(
        activity_total(data.path()),
        sample_records(),
        "a reader before recovery"
    );
    assert!(activity_dump(data.path()) == dump, "a reader before recovery");
    let out = run(bin().args(["compact", "--data-dir"]).arg(data.path()));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(activity_dump(data.path()), dump);
}

#[test]
fn alerts_listing_filters_and_show() {
    let data = tempfile::tempdir().unwrap();
    assert!(scan(data.path(), &[&repo().join("sample-logs")], &[]).status.success());
    let list = |extra: &[&str]| -> Vec<serde_json::Value> {
        let out = run(bin()
            .args(["alerts", "--format", "jsonl", "--data-dir"])
            .arg(data.path())
            .args(extra));
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let all = list(&["--limit", "100000"]);
    assert_eq!(all.len() as i64, sample_alert_count());
    let times: Vec<&str> = all.iter().map(|a| a["event_time"].as_str().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");
    // The expected counts come from expected-alerts.tsv, the rules' levels
    // and the planted records (see sample_alert_facts), not from a run.
    let facts = sample_alert_facts();
    let n = |f: &dyn Fn(&SampleAlert) -> bool| {
        let n = facts.iter().filter(|a| f(a)).count();
        assert!(
            n > 0 && n < facts.len(),
            "a filter case that selects nothing or everything"
        );
        n
    };
    let lim = ["--limit", "100000"];
    let list_all = |extra: &[&str]| list(&[extra, &lim[..]].concat());
    assert_eq!(
        list_all(&["--rule", "kms_key_deletion"]).len(),
        n(&|a| a.rule == "kms_key_deletion")
    );
    assert_eq!(list_all(&["--severity", "medium"]).len(), n(&|a| a.severity_rank == 2));
    assert_eq!(list_all(&["--severity", "medium+"]).len(), n(&|a| a.severity_rank >= 2));
    assert_eq!(list_all(&["--severity", "high+"]).len(), n(&|a| a.severity_rank >= 3));
    assert_eq!(
        list_all(&["--account", "444455556666"]).len(),
        n(&|a| a.account_id == "444455556666")
    );
    assert_eq!(
        list_all(&["--principal", "ROOT"]).len(),
        n(&|a| a.principal_arn.to_lowercase().contains("root"))
    );
    assert_eq!(
        list_all(&["--since", "2026-10-07"]).len(),
        n(&|a| a.event_time.as_str() >= "2026-10-07")
    );
    assert_eq!(
        list_all(&["--since", "2026-10-06", "--until", "2026-10-07"]).len(),
        n(&|a| a.event_time.as_str() >= "2026-10-06" && a.event_time.as_str() < "2026-10-07")
    );
    assert_eq!(list(&[]).len(), 100.min(facts.len()), "at most 100 by default");
    assert_eq!(list(&["--limit", "3"]).len(), 3);
    assert_eq!(list(&["--since", "1h"]).len(), 0, "sample data is older than an hour");
    // A quote in a filter is data, not SQL.
    assert_eq!(list(&["--principal", "x' OR '1'='1"]).len(), 0);

    let id = all[0]["id"].as_i64().unwrap().to_string();
    let event_id = all[0]["event_id"].as_str().unwrap().to_owned();
    for key in [&id, &event_id] {
        let out = run(bin().args(["alerts", "show", key, "--data-dir"]).arg(data.path()));
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        assert!(text.contains(&format!("event id:      {event_id}")), "{text}");
        assert!(text.contains("raw event:\n{\n  \""), "{text}");
    }
    let out = run(bin()
        .args(["alerts", "show", "no-such-event", "--data-dir"])
        .arg(data.path()));
    assert_eq!(out.status.code(), Some(1));
}

/// `trailwatch alerts show 1 | head -3` panicked ("failed printing to
/// stdout: Broken pipe", with a backtrace), and `alerts --format jsonl` and
/// `query` piped into `head` printed "trailwatch: Broken pipe" and exited 2.
/// Into a pipe nobody reads they now end as `cat` does: killed by SIGPIPE,
/// nothing on stderr.
#[test]
fn analyst_commands_into_a_closed_pipe_end_quietly_instead_of_panicking() {
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::process::ExitStatusExt;
    let data = tempfile::tempdir().unwrap();
    assert!(scan(data.path(), &[&repo().join("sample-logs")], &[]).status.success());
    let data_dir = data.path().to_str().unwrap();
    for args in [
        &["alerts", "show", "1", "--data-dir", data_dir][..],
        &["alerts", "--format", "jsonl", "--data-dir", data_dir],
        &["alerts", "--data-dir", data_dir],
        &["query", "SELECT * FROM alerts", "--data-dir", data_dir],
        &["rules", "list"],
    ] {
        // A pipe whose read end is closed before the command starts: its
        // first write fails, however little it prints.
        let mut fds = [0; 2];
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: both descriptors were just made by pipe(2) and are owned
        // here only.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        drop(read);
        let out = bin()
            .args(args)
            .env("RUST_BACKTRACE", "1")
            .stdout(std::process::Stdio::from(write))
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGPIPE),
            "{args:?}: {:?} {err}",
            out.status
        );
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{args:?}: {err}"
        );
    }
}

/// `alerts show` on an alert whose raw event had been damaged in the
/// database printed only `stored raw event is not JSON`: not which alert,
/// and none of its other fields.
#[test]
fn alerts_show_prints_an_alert_whose_raw_event_is_damaged_and_names_it() {
    let data = tempfile::tempdir().unwrap();
    assert!(scan(data.path(), &[&repo().join("sample-logs")], &[]).status.success());
    let event_id: String = db(data.path())
        .query_row("SELECT event_id FROM alerts WHERE id = 1", [], |r| r.get(0))
        .unwrap();
    db(data.path())
        .execute(
            "UPDATE alerts SET raw_event = '{\"eventVersion\": \"1.0' WHERE id = 1",
            [],
        )
        .unwrap();
    let out = run(bin().args(["alerts", "show", "1", "--data-dir"]).arg(data.path()));
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains(&format!("event id:      {event_id}\n")), "{text}");
    assert!(text.ends_with("raw event:\n{\"eventVersion\": \"1.0\n"), "{text}");
    // (Above it, the warning that the test's temporary directory is 0755.)
    assert_eq!(
        stderr(&out).lines().last(),
        Some(
            "trailwatch: alert 1: the stored raw event is not JSON (EOF while parsing a string at line 1 column 21); printed as stored"
        )
    );
}

#[test]
fn readme_queries_work_as_written() {
    let data = tempfile::tempdir().unwrap();
    assert!(scan(data.path(), &[&repo().join("sample-logs")], &[]).status.success());
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let lines: Vec<&str> = readme.lines().collect();
    // Every `trailwatch query "..."` line of the README runs, and prints
    // exactly the output block that follows it (a README edited by hand, or
    // left behind when sample-logs change, fails here).
    let mut checked = 0;
    for (i, line) in lines.iter().enumerate() {
        let Some(q) = line.strip_prefix("trailwatch query \"") else {
            continue;
        };
        if q.contains("<SQL>") {
            continue;
        }
        let q = q.trim_end().trim_end_matches('"');
        assert_eq!(
            lines[i + 1..i + 3],
            ["```", "```"],
            "{q}: no output block after the command"
        );
        let block: Vec<&str> = lines[i + 3..].iter().copied().take_while(|l| *l != "```").collect();
        let out = run(bin().args(["query", "--data-dir"]).arg(data.path()).arg(q));
        assert!(out.status.success(), "{q}: {}", stderr(&out));
        let got = stdout(&out);
        let got: Vec<&str> = got.lines().map(str::trim_end).collect();
        let want: Vec<&str> = block.iter().map(|l| l.trim_end()).collect();
        assert!(got.len() >= 2, "{q}: no rows");
        assert_eq!(got, want, "{q}: README output block differs from a real run");
        checked += 1;
    }
    assert!(checked >= 3, "{checked}");
}

/// `trailwatch compact --data-dir <a mistyped path>` created an empty store
/// there and reported "compacted 0 partitions" with exit code 0, as if the
/// real store had been compacted.
#[test]
fn compact_on_a_mistyped_data_dir_reported_success_and_made_an_empty_store() {
    let parent = tempfile::tempdir().unwrap();
    let missing = parent.path().join("trailwatch-dta");
    let out = run(bin().args(["compact", "--data-dir"]).arg(&missing));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out).trim_end(),
        format!(
            "trailwatch: cannot open the store: {}: no trailwatch store here (run `trailwatch scan` first, or pass --data-dir)",
            missing.join("alerts.db").display()
        )
    );
    assert!(!missing.exists(), "compact made {}", missing.display());
    // A real store still compacts.
    let data = tempfile::tempdir().unwrap();
    assert!(scan(data.path(), &[&repo().join("sample-logs")], &[]).status.success());
    let out = run(bin().args(["compact", "--data-dir"]).arg(data.path()));
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn compaction_recorded_without_its_file_name_deleted_every_part() {
    // Bug: the pending compaction row was inserted and given its file name
    // in two separate autocommits. A crash between them left a row whose
    // `new_file` was empty, and recovery, seeing `dir.join("")` (the
    // partition directory itself) exist, deleted every old part.
    let data = tempfile::tempdir().unwrap();
    let logs = repo().join("sample-logs");
    let out = scan(
        data.path(),
        &[&logs],
        &["--flush-rows", "300", "--batch-objects", "5", "--threads", "1"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let dump = activity_dump(data.path());
    let crashed = run(bin()
        .env("TRAILWATCH_TEST_ABORT_AT", "compact_begun:1")
        .args(["compact", "--data-dir"])
        .arg(data.path()));
    assert!(
        stderr(&crashed).contains("test hook: aborting at compact_begun"),
        "{}",
        stderr(&crashed)
    );
    let out = run(bin().args(["compact", "--data-dir"]).arg(data.path()));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(activity_total(data.path()), sample_records(), "parts were lost");
    assert!(activity_dump(data.path()) == dump, "the activity table changed");
}

#[test]
fn a_reader_right_after_a_crash_mid_flush_counted_the_flushed_rows_twice() {
    // Bug: between a flush's Parquet files being written and its staged rows
    // being deleted (and after a crash there, until a writer recovered),
    // `query` added the new files to the still-staged rows: double counts.
    let logs = repo().join("sample-logs");
    for hook in ["flush_begun:2", "flush_written:2"] {
        let data = tempfile::tempdir().unwrap();
        let crashed = run(bin()
            .env("TRAILWATCH_TEST_ABORT_AT", hook)
            .args(["scan", "--format", "jsonl", "--threads", "1", "--batch-objects", "5"])
            .args(["--flush-rows", "300", "--data-dir"])
            .arg(data.path())
            .arg(&logs));
        assert!(stderr(&crashed).contains("test hook: aborting"), "{}", stderr(&crashed));
        let committed = records(data.path());
        assert!(committed > 0 && committed < sample_records(), "{hook}: {committed}");
        assert_eq!(
            activity_total(data.path()),
            committed,
            "{hook}: a reader after the crash"
        );
    }
}

#[test]
fn an_object_that_failed_after_it_was_counted_was_counted_again() {
    // Bug: an object counted in the ledger as ok that later failed to read
    // (changed on disk, or missing when backfilled again) was downgraded to
    // `failed` with 0 records while its activity stayed counted; when it
    // read fine again, its activity was staged a second time.
    let logs = tempfile::tempdir().unwrap();
    let src = repo().join("sample-logs/AWSLogs/444455556666/CloudTrail/us-east-1/2026/10/05");
    let files = log_files(&src);
    for f in &files {
        std::fs::copy(f, logs.path().join(f.file_name().unwrap())).unwrap();
    }
    let data = tempfile::tempdir().unwrap();
    assert!(scan(data.path(), &[logs.path()], &[]).status.success());
    let total = records(data.path());
    assert!(total > 0);
    assert_eq!(activity_total(data.path()), total);
    let victim = logs.path().join(files[0].file_name().unwrap());
    let good = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, b"\x1f\x8b\x08\x00truncated").unwrap();
    let out = scan(data.path(), &[logs.path()], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(activity_total(data.path()), records(data.path()), "after the failure");
    std::fs::write(&victim, good).unwrap();
    let out = scan(data.path(), &[logs.path()], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(records(data.path()), total);
    assert_eq!(activity_total(data.path()), total, "counted twice");
    assert_eq!(count(data.path(), "SELECT COUNT(*) FROM failures"), 1);
}

/// Parquet alert parts leave the raw event out (null) unless
/// `--parquet-raw-events` asks for it; with it they carry exactly the raw
/// events of alerts.db. Parts written both ways share one schema, so a
/// partition holding both reads and compacts as one table.
#[test]
fn parquet_alert_parts_carry_the_raw_event_only_when_asked() {
    let data = tempfile::tempdir().unwrap();
    let logs = repo().join("sample-logs");
    let one_region = logs.join("AWSLogs/111122223333/CloudTrail/eu-west-1");
    let out = scan(data.path(), &[&one_region], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let without = count(data.path(), "SELECT COUNT(*) FROM alerts");
    let out = scan(data.path(), &[&logs], &["--parquet-raw-events"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let total = count(data.path(), "SELECT COUNT(*) FROM alerts");
    assert!(without > 0 && total > without, "{without} then {total}");
    let first_run = "/111122223333/CloudTrail/eu-west-1/";
    assert_eq!(
        count(
            data.path(),
            &format!("SELECT COUNT(*) FROM alerts WHERE instr(object, '{first_run}') > 0")
        ),
        without
    );

    // DuckDB reads (id, raw_event) from every part; the non-null raw events
    // must be exactly those of the second run's alerts, byte for byte.
    let check = |when: &str| {
        let report = duckdb(&format!(
            "import duckdb, sqlite3\n\
             parts = dict(duckdb.sql(\"SELECT id, raw_event FROM read_parquet('{r}/aggregates/alerts/*/*.parquet', hive_partitioning = true)\").fetchall())\n\
             db = sqlite3.connect('file:{r}/alerts.db?mode=ro', uri=True)\n\
             stored = {{i: (o, e) for i, o, e in db.execute('SELECT id, object, raw_event FROM alerts')}}\n\
             assert set(parts) == set(stored), 'ids differ'\n\
             bad = [i for i, (o, e) in stored.items() if parts[i] != (None if '{first_run}' in o else e)]\n\
             print(len(parts), sum(v is None for v in parts.values()), len(bad))",
            r = data.path().display()
        ));
        let n: Vec<i64> = report.split_whitespace().map(|x| x.parse().unwrap()).collect();
        assert_eq!(n, vec![total, without, 0], "{when}: parts, null raw events, mismatches");
    };
    check("after the two scans");
    let out = run(bin().args(["compact", "--data-dir"]).arg(data.path()));
    assert!(out.status.success(), "{}", stderr(&out));
    check("after compaction");
    // `query` reads alerts.db, so it has every raw event either way.
    let q = run(bin()
        .args(["query", "--format", "csv", "--data-dir"])
        .arg(data.path())
        .arg("SELECT COUNT(raw_event) AS n FROM alerts"));
    assert_eq!(stdout(&q).lines().nth(1).unwrap().trim().parse::<i64>().unwrap(), total);
}
