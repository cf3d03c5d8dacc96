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
use moto::{Env, alert_pairs, objects_ok};
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
    let alerts = alert_pairs(data.path());
    let recs = records(data.path());
    (data, alerts, recs)
}

/// Asserts the store holds exactly the reference: every object once and ok,
/// the same alerts, none twice, activity counted once, nothing staged left
/// unaccounted, no failures unless `failures` says how many objects failed.
fn assert_complete(data: &Path, objects: usize, alerts: &[(String, String)], recs: i64, failed_objects: i64) {
    assert_eq!(objects_ok(data), objects as i64, "objects ok");
    assert_eq!(alert_pairs(data), alerts, "alerts");
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
    let mut d = Proc::spawn(&mut env.daemon_command_via(
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
    d.wait_until("every object committed", 180, || {
        objects_ok(data.path()) == keys.len() as i64
    });
    d.wait_until("an empty queue", 60, || env.queue_depth() == (0, 0));
    let e = d.terminate();
    assert_eq!(e.code, Some(0), "{}", e.stderr);
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
    let mut d = Proc::spawn(&mut env.daemon_command_via(
        &proxy.endpoint(),
        data.path(),
        &["--request-timeout-secs", "2", "--visibility-timeout-secs", "10"],
        &[],
    ));
    d.wait_until("every object committed", 180, || {
        objects_ok(data.path()) == keys.len() as i64
    });
    d.wait_until("an empty queue", 60, || env.queue_depth() == (0, 0));
    let e = d.terminate();
    assert_eq!(e.code, Some(0), "{}", e.stderr);
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
