//! Fault injection against the daemon: S3 and SQS throttling, 5xx and cut
//! connections (through a fault-injecting proxy in front of moto_server), an
//! object deleted between its notification and its download, a slow object
//! whose visibility the heartbeat cannot extend, duplicate notifications,
//! moto_server lost and restarted, and the data directory's disk full. In
//! every case the end state is complete and duplicate-free, and the log says
//! what happened.

mod common;
#[path = "common/moto.rs"]
mod moto;
#[path = "common/proxy.rs"]
mod proxy;

use std::path::Path;
use std::time::Duration;

use common::*;
use moto::{Env, objects_ok};
use proxy::{Action, Proxy};

/// Uploads the sample objects under `sub` (a key prefix) and returns the
/// keys of the log files (digests, which the daemon skips, are uploaded too).
fn upload(env: &Env, sub: &str) -> Vec<String> {
    env.upload_under(&repo().join("sample-logs"), sub)
        .into_iter()
        .filter(|k| !k.contains("CloudTrail-Digest"))
        .collect()
}

/// Scans the sample objects under `sub` locally: the reference end state.
fn reference(sub: &str) -> (tempfile::TempDir, Vec<(String, String)>, i64) {
    let data = tempfile::tempdir().unwrap();
    let out = run(bin()
        .args(["scan", "--format", "jsonl", "--data-dir"])
        .arg(data.path())
        .arg(repo().join("sample-logs").join(sub)));
    assert!(out.status.success(), "{}", stderr(&out));
    let alerts = alert_summary(data.path());
    let recs = records(data.path());
    (data, alerts, recs)
}

/// The alerts of a store, compared between runs: the single-event alerts
/// exactly, and for each correlation how many alerts it raised. The daemon
/// commits in arrival order, which faults change (a retried download comes
/// later), and which event completes a correlation window depends on that
/// order: a burst split across two files completes on whichever comes
/// second.
fn alert_summary(data: &Path) -> Vec<(String, String)> {
    let mut pairs = single_event_alert_pairs(data);
    pairs.extend(query_pairs(
        data,
        "SELECT rule_name, COUNT(*) || ' correlation alerts' FROM alerts WHERE group_key IS NOT NULL GROUP BY 1 ORDER BY 1",
    ));
    pairs
}

/// Waits (up to `secs`) until the store has `objects` objects ok and the
/// queue is empty, then stops the daemon, which must exit cleanly.
fn drain(mut d: Proc, env: &Env, data: &Path, objects: usize, secs: u64) -> Ended {
    d.wait_until("every object committed", secs, || objects_ok(data) == objects as i64);
    d.wait_until("an empty queue", 60, || env.queue_depth() == (0, 0));
    let e = d.terminate();
    assert_eq!(e.code, Some(0), "{}", e.stderr);
    e
}

/// Asserts the store holds exactly the reference: every object once and ok,
/// the same alerts, none twice, activity counted once, nothing staged left
/// unaccounted, no failures unless `failures` says how many objects failed.
fn assert_complete(data: &Path, objects: usize, alerts: &[(String, String)], recs: i64, failed_objects: i64) {
    assert_eq!(objects_ok(data), objects as i64, "objects ok");
    assert_eq!(alert_summary(data), alerts, "alerts");
    assert_correlation_alert_invariants(data);
    assert_eq!(
        count(
            data,
            "SELECT COUNT(*) FROM (SELECT 1 FROM alerts GROUP BY rule_name, event_id HAVING COUNT(*) > 1)"
        ),
        0,
        "duplicate alerts"
    );
    assert_eq!(records(data), recs, "records in the ledger");
    assert_eq!(activity_total(data), recs, "activity total");
    assert_eq!(
        count(data, "SELECT COUNT(DISTINCT object) FROM failures"),
        failed_objects,
        "failed objects"
    );
}

// ---------------------------------------------------------------------------
// Throttling, 5xx, cut bodies, dropped connections

#[test]
fn throttling_5xx_and_cut_connections_are_retried_and_nothing_is_lost() {
    let sub = "AWSLogs/111122223333";
    let (_ref, alerts, recs) = reference(sub);
    let env = Env::new(30, false);
    let keys = upload(&env, sub);
    let proxy = Proxy::start(env.moto.port);
    let get = "get /trail/awslogs/";
    // In order: the first GetObjects are throttled, then fail with 500,
    // then have their body cut, then their connection dropped; SQS
    // receives are throttled and deletes fail at first.
    let slow_down = proxy.add(get, 12, Action::s3_slow_down());
    let internal = proxy.add(get, 6, Action::s3_internal_error());
    let cut = proxy.add(get, 3, Action::CutBody);
    let dropped = proxy.add(get, 2, Action::Drop);
    let recv_throttled = proxy.add(
        "amazonsqs.receivemessage",
        3,
        Action::sqs_error(400, "ThrottlingException"),
    );
    let delete_failed = proxy.add(
        "amazonsqs.deletemessagebatch",
        2,
        Action::sqs_error(500, "InternalFailure"),
    );
    env.notify(&keys);
    let data = tempfile::tempdir().unwrap();
    let d = Proc::spawn(&mut env.daemon_command_via(
        &proxy.endpoint(),
        data.path(),
        &[
            "--concurrency",
            "4",
            "--visibility-timeout-secs",
            "5",
            "--max-retries",
            "6",
            "--request-timeout-secs",
            "5",
        ],
        &[],
    ));
    let e = drain(d, &env, data.path(), keys.len(), 180);
    for (name, id, n) in [
        ("SlowDown", slow_down, 12),
        ("InternalError", internal, 6),
        ("cut body", cut, 3),
        ("dropped connection", dropped, 2),
        ("ReceiveMessage throttled", recv_throttled, 3),
        ("DeleteMessageBatch failed", delete_failed, 2),
    ] {
        assert_eq!(proxy.hits(id), n, "{name} was not injected as planned");
    }
    assert_complete(data.path(), keys.len(), &alerts, recs, 0);
    let log = e.stderr;
    // The daemon's own retries say which object and why; the SDK retried
    // the rest below it.
    assert!(log.contains("transient S3 error, retrying"), "{log}");
    assert!(log.contains("HTTP 503 SlowDown"), "{log}");
    assert!(log.contains("reading the body"), "{log}");
    assert!(log.contains("object=s3://trail/AWSLogs/111122223333/"), "{log}");
    // The only errors: receives that stayed throttled through the SDK's
    // own attempts, named as such.
    let errors: Vec<&str> = log.lines().filter(|l| l.contains(" ERROR ")).collect();
    assert!(!errors.is_empty(), "{log}");
    assert!(
        errors
            .iter()
            .all(|l| l.contains("receiving from SQS failed; retrying") && l.contains("ThrottlingException")),
        "{errors:#?}"
    );
}

// ---------------------------------------------------------------------------
// Stalled connections

#[test]
fn a_stalled_connection_stopped_the_daemon_for_good() {
    // Bug: no request had a time limit. One ReceiveMessage whose connection
    // stalled stopped the receiver for good; one GetObject that never
    // answered held its object (and, through the heartbeat, its message)
    // for good. Now each attempt is limited (--request-timeout-secs) and
    // retried, and a body that stalls midway is cut by the SDK.
    let sub = "AWSLogs/444455556666/CloudTrail/us-east-1";
    let (_ref, alerts, recs) = reference(sub);
    let env = Env::new(30, false);
    let keys = upload(&env, sub);
    let proxy = Proxy::start(env.moto.port);
    // Every attempt the SDK makes (3) stalls, so the daemon sees the error.
    let receive_hung = proxy.add("amazonsqs.receivemessage", 3, Action::Hang);
    let get_hung = proxy.add(&format!("get /trail/{}", keys[0].to_ascii_lowercase()), 3, Action::Hang);
    let body_stalled = proxy.add(
        &format!("get /trail/{}", keys[1].to_ascii_lowercase()),
        1,
        Action::StallBody(Duration::from_secs(120)),
    );
    env.notify(&keys);
    let data = tempfile::tempdir().unwrap();
    let d = Proc::spawn(&mut env.daemon_command_via(
        &proxy.endpoint(),
        data.path(),
        &["--request-timeout-secs", "2", "--visibility-timeout-secs", "10"],
        &[],
    ));
    let e = drain(d, &env, data.path(), keys.len(), 180);
    assert_eq!(proxy.hits(receive_hung), 3);
    assert_eq!(proxy.hits(get_hung), 3);
    assert_eq!(proxy.hits(body_stalled), 1);
    assert_complete(data.path(), keys.len(), &alerts, recs, 0);
    let log = e.stderr;
    assert!(log.contains("receiving from SQS failed; retrying"), "{log}");
    assert!(log.contains("ReceiveMessage failed: request has timed out"), "{log}");
    let hung = log
        .lines()
        .find(|l| l.contains("transient S3 error, retrying") && l.contains(&keys[0]))
        .unwrap_or_else(|| panic!("no retry logged for the hung GetObject: {log}"));
    assert!(hung.contains("timeout"), "{hung}");
    let stalled = log
        .lines()
        .find(|l| l.contains("transient S3 error, retrying") && l.contains(&keys[1]))
        .unwrap_or_else(|| panic!("no retry logged for the stalled body: {log}"));
    assert!(
        stalled.contains("reading the body") && stalled.contains("throughput of 0 B/s"),
        "{stalled}"
    );
}

// ---------------------------------------------------------------------------
// moto_server lost and restarted

#[test]
fn moto_killed_and_restarted_mid_run_loses_nothing() {
    let (_ref, alerts, recs) = reference("");
    let mut env = Env::new(30, true);
    let root = repo().join("sample-logs");
    env.upload_under(&root, "AWSLogs/111122223333");
    let data = tempfile::tempdir().unwrap();
    let mut d = env.start_daemon(
        data.path(),
        &[
            "--concurrency",
            "2",
            "--max-retries",
            "3",
            "--request-timeout-secs",
            "5",
        ],
        &[("TRAILWATCH_TEST_SLOW_OBJECT_MS", "100")],
    );
    d.wait_until("some objects committed", 120, || objects_ok(data.path()) >= 5);
    // Outage: everything moto held (bucket, queue, messages) is gone.
    env.moto.kill();
    d.wait_for_log("receiving from SQS failed; retrying", 60);
    env.moto.restart();
    let (s3, sqs, url) = Env::setup(&env.moto, &env.rt, 30, true);
    assert_eq!(url, env.queue_url);
    env.s3 = s3;
    env.sqs = sqs;
    // The operator replays every object (as a re-upload or a backfill would):
    // what was committed before the outage is recognised, the rest processed.
    let keys = upload(&env, "");
    let e = drain(d, &env, data.path(), keys.len(), 240);
    // Objects in flight when moto went away were retried against the empty
    // new server and found missing: recorded as failures (with the reason)
    // at the time; the replay then processed them, so the ledger has every
    // object, once, ok.
    let failed = count(data.path(), "SELECT COUNT(DISTINCT object) FROM failures");
    assert!(failed <= 2 * 4, "at most the messages in flight: {failed}");
    assert_eq!(
        count(
            data.path(),
            "SELECT COUNT(*) FROM failures WHERE error_class <> 'no_such_key' OR object NOT IN (SELECT name FROM objects WHERE status = 'ok')"
        ),
        0
    );
    assert_complete(data.path(), keys.len(), &alerts, recs, failed);
    assert_eq!(count(data.path(), "SELECT COUNT(*) FROM objects"), keys.len() as i64);
    // The log names the outage: the receiver's failures and retries.
    let outage = e
        .stderr
        .lines()
        .find(|l| l.contains("receiving from SQS failed; retrying"))
        .unwrap();
    assert!(outage.contains("ReceiveMessage failed"), "{outage}");
}

// ---------------------------------------------------------------------------
// An object deleted between its notification and its download

/// Notifies `keys` plus one object that is deleted before the daemon starts.
fn with_a_deleted_object(env: &Env, sub: &str) -> (Vec<String>, String) {
    let keys = upload(env, sub);
    let gone = format!("{sub}/2026/10/05/111122223333_CloudTrail_us-east-1_20261005T2359Z_deletedObject01.json.gz");
    env.put(&gone, gzip(br#"{"Records":[]}"#));
    env.delete_object(&gone);
    let mut all = keys.clone();
    all.push(gone.clone());
    env.notify(&all);
    (keys, gone)
}

#[test]
fn an_object_deleted_before_its_download_is_recorded_and_its_message_dead_lettered() {
    let sub = "AWSLogs/111122223333/CloudTrail/us-east-1";
    let (_ref, alerts, recs) = reference(sub);
    let env = Env::new(1, false);
    let dlq = env.add_dead_letter_queue(2);
    let (keys, gone) = with_a_deleted_object(&env, sub);
    let data = tempfile::tempdir().unwrap();
    let mut d = env.start_daemon(data.path(), &["--visibility-timeout-secs", "1"], &[]);
    d.wait_until("the message in the dead-letter queue", 120, || {
        env.queue_depth_of(&dlq) == (1, 0)
    });
    d.wait_until("every other object committed", 120, || {
        objects_ok(data.path()) == keys.len() as i64
    });
    d.wait_until("an empty queue", 60, || env.queue_depth() == (0, 0));
    let e = d.terminate();
    assert_eq!(e.code, Some(0), "{}", e.stderr);
    // Policy `leave`: each delivery (maxReceiveCount = 2) tried the object,
    // recorded the failure and left the message; SQS then dead-lettered it.
    let uri = format!("s3://trail/{gone}");
    let failures = query_pairs(
        data.path(),
        "SELECT object || ' ' || bucket || ' ' || key || ' ' || error_class, error FROM failures WHERE message_id IS NOT NULL",
    );
    assert_eq!(failures.len(), 2, "{failures:?}");
    for (what, error) in &failures {
        assert_eq!(what, &format!("{uri} trail {gone} no_such_key"));
        assert_eq!(error, &format!("{uri}: no such object"));
    }
    assert_eq!(
        query_pairs(
            data.path(),
            &format!("SELECT status, name FROM objects WHERE name = '{uri}'")
        ),
        vec![("failed".to_string(), uri.clone())]
    );
    assert_complete(data.path(), keys.len(), &alerts, recs, 1);
    let log = e.stderr;
    let failed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(&format!("{uri}: no such object")))
        .collect();
    assert_eq!(failed.len(), 2, "{log}");
    assert!(
        failed
            .iter()
            .all(|l| l.contains("ERROR") && l.contains("class=\"no_such_key\"")),
        "{failed:?}"
    );
    assert_eq!(log.matches("reason=\"poison\"").count(), 2, "{log}");
}

#[test]
fn an_object_deleted_before_its_download_with_on_poison_delete_is_recorded_once() {
    let sub = "AWSLogs/111122223333/CloudTrail/us-east-1";
    let (_ref, alerts, recs) = reference(sub);
    let env = Env::new(30, false);
    let (keys, gone) = with_a_deleted_object(&env, sub);
    let data = tempfile::tempdir().unwrap();
    let d = env.start_daemon(data.path(), &["--on-poison", "delete"], &[]);
    let e = drain(d, &env, data.path(), keys.len(), 120);
    assert_complete(data.path(), keys.len(), &alerts, recs, 1);
    assert_eq!(
        query_pairs(data.path(), "SELECT object, error_class FROM failures"),
        vec![(format!("s3://trail/{gone}"), "no_such_key".to_string())]
    );
    assert!(
        e.stderr.contains(&format!("s3://trail/{gone}: no such object")),
        "{}",
        e.stderr
    );
    assert!(!e.stderr.contains("poison"), "{}", e.stderr);
}

// ---------------------------------------------------------------------------
// Visibility: a heartbeat that cannot extend, duplicate notifications

#[test]
fn a_slow_object_whose_heartbeat_fails_is_redelivered_and_still_stored_once() {
    let key = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/10/05/111122223333_CloudTrail_us-east-1_20261005T1541Z_EsnA5csfLZwb0K2k.json.gz";
    let (_ref, alerts, recs) = reference(key);
    assert!(!alerts.is_empty());
    let env = Env::new(2, false);
    env.put(key, std::fs::read(repo().join("sample-logs").join(key)).unwrap());
    let keys = vec![key.to_string()];
    let proxy = Proxy::start(env.moto.port);
    // Every ChangeMessageVisibility fails: the heartbeat cannot step in.
    let refused = proxy.add(
        "amazonsqs.changemessagevisibility",
        usize::MAX,
        Action::sqs_error(500, "InternalFailure"),
    );
    env.notify(&keys);
    let data = tempfile::tempdir().unwrap();
    let mut d = Proc::spawn(&mut env.daemon_command_via(
        &proxy.endpoint(),
        data.path(),
        &["--visibility-timeout-secs", "2", "--request-timeout-secs", "5"],
        &[
            ("TRAILWATCH_TEST_SLOW_OBJECT_MS", "7000"),
            ("RUST_LOG", "info,trailwatch::daemon::events=debug"),
        ],
    ));
    d.wait_until("the object committed", 120, || objects_ok(data.path()) == 1);
    d.wait_until("an empty queue", 60, || env.queue_depth() == (0, 0));
    let e = d.terminate();
    assert_eq!(e.code, Some(0), "{}", e.stderr);
    assert!(proxy.hits(refused) > 0);
    let log = e.stderr;
    assert!(log.contains("could not extend visibility"), "{log}");
    // The message came back while its object was still in progress...
    let received: Vec<&str> = log.lines().filter(|l| l.contains("message received")).collect();
    assert!(received.len() >= 2, "{received:#?}");
    assert!(received.iter().any(|l| l.contains("receive_count=2")), "{received:#?}");
    // ...and the daemon, which still had it in hand, did not start it
    // again: one download, one commit, and the newest receipt deleted it.
    let gets = proxy.seen().iter().filter(|r| r.starts_with("GET /trail/")).count();
    assert_eq!(gets, 1, "{:#?}", proxy.seen());
    assert_complete(data.path(), 1, &alerts, recs, 0);
}

#[test]
fn duplicate_notifications_process_an_object_twice_and_store_it_once() {
    // S3 event notifications are delivered at least once: the same object
    // can be announced by two messages, processed by both at once, and
    // committed twice. The ledger and the alert key keep one copy.
    let sub = "AWSLogs/444455556666/CloudTrail/eu-west-1/2026/10/06";
    let (_ref, alerts, recs) = reference(sub);
    let env = Env::new(30, false);
    let keys = upload(&env, sub);
    let proxy = Proxy::start(env.moto.port);
    let twice: Vec<String> = keys.iter().flat_map(|k| [k.clone(), k.clone()]).collect();
    env.notify(&twice);
    let data = tempfile::tempdir().unwrap();
    let d = Proc::spawn(&mut env.daemon_command_via(
        &proxy.endpoint(),
        data.path(),
        &["--concurrency", "4"],
        &[("TRAILWATCH_TEST_SLOW_OBJECT_MS", "1000")],
    ));
    drain(d, &env, data.path(), keys.len(), 120);
    // Both copies of the first announcement were in flight together.
    let first = format!("GET /trail/{} ", keys[0]);
    let gets = proxy
        .seen()
        .iter()
        .filter(|r| r.replace("?x-id=GetObject", "").starts_with(&first))
        .count();
    assert_eq!(gets, 2, "{:#?}", proxy.seen());
    assert_complete(data.path(), keys.len(), &alerts, recs, 0);
}

// ---------------------------------------------------------------------------
// The data directory's disk full

/// A small disk for the data directory: a 32 MiB tmpfs when this process may
/// mount one (root, or CAP_SYS_ADMIN), filled with a filler file; otherwise
/// a plain directory whose commits fail with ENOSPC while the
/// `TRAILWATCH_TEST_FAIL_WRITES` flag file exists.
struct SmallDisk {
    root: tempfile::TempDir,
    mounted: bool,
}

impl SmallDisk {
    fn new(may_mount: bool) -> SmallDisk {
        let root = tempfile::tempdir().unwrap();
        let mounted = may_mount
            && std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", "size=32m,mode=0700", "tmpfs"])
                .arg(root.path())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
        eprintln!(
            "disk full: {}",
            if mounted {
                "a 32 MiB tmpfs, filled up"
            } else {
                "cannot mount here; injected ENOSPC at the store"
            }
        );
        SmallDisk { root, mounted }
    }

    fn data(&self) -> std::path::PathBuf {
        self.root.path().join("data")
    }

    fn flag(&self) -> std::path::PathBuf {
        self.root.path().join("disk-full.flag")
    }

    /// Environment for the daemon (the injected variant's switch).
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![("TRAILWATCH_TEST_FAIL_WRITES", self.flag().display().to_string())]
    }

    fn fill(&self) {
        if self.mounted {
            use std::io::Write;
            let mut f = std::fs::File::create(self.root.path().join("filler")).unwrap();
            let chunk = vec![0u8; 1 << 16];
            loop {
                match f.write(&chunk) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                    Err(e) => panic!("filling the tmpfs: {e}"),
                }
            }
            // The last partial chunk, byte by byte.
            while f.write(&[0]).is_ok_and(|n| n == 1) {}
        } else {
            std::fs::write(self.flag(), b"").unwrap();
        }
    }

    fn free(&self) {
        let _ = std::fs::remove_file(self.root.path().join("filler"));
        let _ = std::fs::remove_file(self.flag());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        if self.mounted {
            let _ = std::process::Command::new("umount").arg(self.root.path()).status();
        }
    }
}

#[test]
fn disk_full_stops_acknowledging_says_so_and_recovers_when_space_returns() {
    disk_full(true);
}

/// The same through the store's injected ENOSPC, which runs everywhere.
#[test]
fn injected_disk_full_stops_acknowledging_says_so_and_recovers() {
    disk_full(false);
}

fn disk_full(may_mount: bool) {
    let sub = "AWSLogs/444455556666";
    let (_ref, alerts, recs) = reference(sub);
    let env = Env::new(3, false);
    let keys = upload(&env, sub);
    let (before, during) = keys.split_at(20);
    let disk = SmallDisk::new(may_mount);
    let data = disk.data();
    let vars = disk.env();
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.notify(before);
    let mut d = env.start_daemon(
        &data,
        &["--visibility-timeout-secs", "3", "--flush-interval-secs", "1"],
        &vars,
    );
    d.wait_until("the first objects committed", 120, || {
        objects_ok(&data) == before.len() as i64
    });
    d.wait_until("their messages deleted", 60, || env.queue_depth() == (0, 0));

    disk.fill();
    env.notify(during);
    d.wait_for_log("COMMIT FAILED", 120);
    // Loud, and names the data directory and the reason.
    let log = d.log();
    let failure = log.lines().find(|l| l.contains("COMMIT FAILED")).unwrap();
    assert!(failure.contains(" ERROR "), "{failure}");
    assert!(failure.contains(&format!("data_dir={}", data.display())), "{failure}");
    assert!(
        failure.contains("database or disk is full") || failure.contains("No space left on device"),
        "{failure}"
    );
    // Nothing acknowledged that was not stored: every message of the
    // second batch is still on the queue (in flight or waiting), and the
    // store holds exactly the first batch, through several retries.
    for round in 0..2 {
        let (visible, in_flight) = env.queue_depth();
        assert_eq!(visible + in_flight, during.len() as u64, "round {round}");
        assert_eq!(objects_ok(&data), before.len() as i64, "round {round}");
        let failures = d.log().matches("COMMIT FAILED").count();
        d.wait_for_more("COMMIT FAILED", failures, 30);
    }

    disk.free();
    let e = drain(d, &env, &data, keys.len(), 120);
    assert!(
        e.stderr
            .contains("commit succeeded again; acknowledging the held messages"),
        "{}",
        e.stderr
    );
    assert_complete(&data, keys.len(), &alerts, recs, 0);
    assert_eq!(
        count(&data, "SELECT COUNT(*) FROM activity_staging"),
        0,
        "flushed at the end"
    );
    let integrity: String = db(&data).query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(integrity, "ok");
}

#[test]
fn a_failed_recovery_at_start_stopped_the_store_thread_silently() {
    // Bug: the daemon's store thread finished an interrupted Parquet flush
    // before anything else, and returned when that failed (disk still
    // full): from then on every object was downloaded and dropped as
    // "transient", its message left, nothing said why until shutdown.
    let sub = "AWSLogs/111122223333/CloudTrail/eu-west-1";
    let (_ref, alerts, recs) = reference(sub);
    let env = Env::new(3, false);
    let keys = upload(&env, sub);
    let (before, after) = keys.split_at(10);
    let disk = SmallDisk::new(false);
    let data = disk.data();
    let vars = disk.env();
    let mut vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // A daemon dies between writing a flush's files and finishing it.
    env.notify(before);
    vars.push(("TRAILWATCH_TEST_ABORT_AT", "flush_written:1"));
    let d = env.start_daemon(
        &data,
        &["--flush-interval-secs", "1", "--visibility-timeout-secs", "3"],
        &vars,
    );
    let e = d.wait();
    assert!(
        e.stderr.contains("test hook: aborting at flush_written"),
        "{}",
        e.stderr
    );
    vars.pop();
    assert!(count(&data, "SELECT COUNT(*) FROM flushes WHERE state = 'pending'") == 1);
    // It restarts on a full disk.
    disk.fill();
    env.notify(after);
    let mut d = env.start_daemon(
        &data,
        &["--flush-interval-secs", "1", "--visibility-timeout-secs", "3"],
        &vars,
    );
    d.wait_for_log("COMMIT FAILED", 60);
    let log = d.log();
    let recovery = log
        .lines()
        .find(|l| l.contains("cannot finish the interrupted Parquet flush"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        recovery.contains(" ERROR ") && recovery.contains(&format!("data_dir={}", data.display())),
        "{recovery}"
    );
    assert!(!log.contains("an object could not be fetched"), "{log}");
    let committed = objects_ok(&data);
    let (visible, in_flight) = env.queue_depth();
    assert_eq!(
        committed + (visible + in_flight) as i64,
        keys.len() as i64,
        "acknowledged but not stored"
    );
    disk.free();
    drain(d, &env, &data, keys.len(), 120);
    assert_complete(&data, keys.len(), &alerts, recs, 0);
    assert_eq!(count(&data, "SELECT COUNT(*) FROM flushes WHERE state = 'pending'"), 0);
}
