//! The daemon against a real moto_server: S3 notifications delivered to SQS,
//! objects fetched from S3, messages deleted only after commit.

mod common;
#[path = "common/moto.rs"]
mod moto;

use std::time::{Duration, Instant};

use common::*;
use moto::{Env, objects_ok, stop};

#[test]
fn notifications_drain_to_exactly_the_scan_alerts() {
    let env = Env::new(30, true);
    let keys = env.upload(&repo().join("sample-logs"));
    assert_eq!(keys.len(), 103);
    let data = tempfile::tempdir().unwrap();
    let child = env.daemon(
        data.path(),
        &["--concurrency", "4", "--metrics-addr", "127.0.0.1:0"],
        &[],
    );
    wait_until("102 objects committed", 180, || objects_ok(data.path()) == 102);
    wait_until("an empty queue", 60, || env.queue_depth() == (0, 0));
    let (code, log) = stop(child);
    assert_eq!(code, Some(0), "{log}");
    assert_sample_alerts_any_order(data.path());
    assert!(log.contains("s3:TestEvent received"), "{log}");
    assert_eq!(count(data.path(), "SELECT COUNT(*) FROM failures"), 0);
    // The digest was skipped without download (key pattern), not failed.
    assert_eq!(
        count(data.path(), "SELECT COUNT(*) FROM objects WHERE name LIKE '%Digest%'"),
        0
    );
    // Aggregates flushed on shutdown: totals exact.
    assert_eq!(count(data.path(), "SELECT COUNT(*) FROM activity_staging"), 0);
    assert_eq!(count(data.path(), "SELECT SUM(records) FROM objects"), sample_records());
}

#[test]
fn wrapped_bodies_give_the_same_alerts_and_unknown_bodies_stay() {
    let env = Env::new(30, false);
    let root = repo().join("sample-logs");
    let keys: Vec<String> = env
        .upload(&root)
        .into_iter()
        .filter(|k| !k.contains("Digest"))
        .collect();
    let (a, rest) = keys.split_at(34);
    let (b, c) = rest.split_at(34);
    // SNS-wrapped S3 events, one object each, keys URL-encoded.
    for k in a {
        let s3 = serde_json::json!({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "trail"}, "object": {"key": k.replace('/', "%2F")}}}]});
        env.send(&serde_json::json!({"Type": "Notification", "MessageId": "m", "Message": s3.to_string()}).to_string());
    }
    // EventBridge.
    for k in b {
        env.send(&serde_json::json!({"version": "0", "detail-type": "Object Created", "source": "aws.s3", "detail": {"bucket": {"name": "trail"}, "object": {"key": k}}}).to_string());
    }
    // CloudTrail's own SNS notification: several keys in one message.
    for chunk in c.chunks(5) {
        let ct = serde_json::json!({"s3Bucket": "trail", "s3ObjectKey": chunk});
        env.send(&serde_json::json!({"Type": "Notification", "Message": ct.to_string()}).to_string());
    }
    env.send("this is not json");
    env.send(r#"{"hello": "world"}"#);
    let data = tempfile::tempdir().unwrap();
    let child = env.daemon(data.path(), &["--visibility-timeout-secs", "30"], &[]);
    wait_until("102 objects committed", 180, || objects_ok(data.path()) == 102);
    // Only the two unknown bodies remain (in flight: received, not deleted).
    wait_until("only the unknown bodies left", 60, || {
        let (v, nv) = env.queue_depth();
        v + nv == 2
    });
    let (code, log) = stop(child);
    assert_eq!(code, Some(0), "{log}");
    assert_sample_alerts_any_order(data.path());
    assert!(log.contains("unknown_body"), "{log}");
    assert_eq!(env.queue_depth().0 + env.queue_depth().1, 2);
}

#[test]
fn killed_between_commit_and_delete_then_redelivered_without_duplicates() {
    let env = Env::new(1, true);
    let data = tempfile::tempdir().unwrap();
    env.upload_under(&repo().join("sample-logs"), "AWSLogs/111122223333");
    // The first run aborts right before its first delete: objects are
    // committed, their messages are not deleted.
    let child = env.daemon(
        data.path(),
        &["--visibility-timeout-secs", "1"],
        &[("TRAILWATCH_TEST_ABORT_AT", "before_delete:2")],
    );
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("test hook: aborting at before_delete"), "{log}");
    let committed_before = objects_ok(data.path());
    assert!(committed_before > 0);
    let child = env.daemon(data.path(), &["--visibility-timeout-secs", "1"], &[]);
    wait_until("50 objects committed", 180, || objects_ok(data.path()) == 50);
    wait_until("an empty queue", 60, || env.queue_depth() == (0, 0));
    let (code, log) = stop(child);
    assert_eq!(code, Some(0), "{log}");
    // Only account 111122223333's objects: its planted single-event alerts,
    // each once; correlation alerts depend on the order of redelivery.
    let got = single_event_alert_pairs(data.path());
    let expected: Vec<_> = expected_sample_single_event_alerts()
        .into_iter()
        .filter(|(_, id)| got.iter().any(|(_, x)| x == id))
        .collect();
    assert_eq!(got, expected, "duplicates or losses");
    assert_correlation_alert_invariants(data.path());
    let dupes = count(
        data.path(),
        "SELECT COUNT(*) FROM (SELECT rule_name, event_id FROM alerts GROUP BY 1, 2 HAVING COUNT(*) > 1)",
    );
    assert_eq!(dupes, 0);
    assert_eq!(count(data.path(), "SELECT COUNT(*) FROM objects"), 50);
    // Redelivered objects were recognised in the ledger, not re-counted.
    let events: i64 = count(data.path(), "SELECT SUM(records) FROM objects");
    let staged_or_flushed = {
        let out = run(bin()
            .args(["query", "--format", "csv", "--data-dir"])
            .arg(data.path())
            .arg("SELECT SUM(events) AS n FROM activity"));
        stdout(&out).lines().nth(1).unwrap().trim().parse::<i64>().unwrap()
    };
    assert_eq!(staged_or_flushed, events);
}

#[test]
fn slow_object_keeps_its_message_invisible_through_the_heartbeat() {
    let env = Env::new(2, false);
    let data = tempfile::tempdir().unwrap();
    let root = repo().join("sample-logs");
    let key = env.upload(&root).into_iter().find(|k| !k.contains("Digest")).unwrap();
    env.send(&serde_json::json!({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "trail"}, "object": {"key": key}}}]}).to_string());
    let child = env.daemon(
        data.path(),
        &["--visibility-timeout-secs", "2"],
        &[
            ("TRAILWATCH_TEST_SLOW_OBJECT_MS", "7000"),
            ("RUST_LOG", "info,trailwatch::daemon::events=debug"),
        ],
    );
    wait_until("the object committed", 60, || objects_ok(data.path()) == 1);
    wait_until("an empty queue", 30, || env.queue_depth() == (0, 0));
    let (code, log) = stop(child);
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("visibility extended"), "{log}");
    // Received once, though it took 3.5 visibility timeouts: the heartbeat
    // kept it from being redelivered.
    let received: Vec<&str> = log.lines().filter(|l| l.contains("message received")).collect();
    assert_eq!(received.len(), 1, "{log}");
    assert!(received[0].contains("receive_count=1"), "{log}");
    assert_eq!(count(data.path(), "SELECT COUNT(*) FROM objects"), 1);
}

#[test]
fn poison_objects_are_recorded_and_left_and_the_rest_proceeds() {
    let env = Env::new(30, false);
    let data = tempfile::tempdir().unwrap();
    let root = repo().join("sample-logs");
    let good = env.upload_under(&root, "AWSLogs/444455556666/CloudTrail/us-east-1/2026/10/05");
    let corrupt = "AWSLogs/1/CloudTrail/us-east-1/2026/10/05/corrupt.json.gz";
    env.put(corrupt, b"\x1f\x8b\x08\x00garbage".to_vec());
    let big = "AWSLogs/1/CloudTrail/us-east-1/2026/10/05/big.json.gz";
    env.put(big, vec![b' '; 3 << 20]);
    let missing = "AWSLogs/1/CloudTrail/us-east-1/2026/10/05/missing.json.gz";
    for key in good.iter().map(String::as_str).chain([corrupt, big, missing]) {
        env.send(&serde_json::json!({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "trail"}, "object": {"key": key}}}]}).to_string());
    }
    let child = env.daemon(
        data.path(),
        &["--max-object-bytes", "2MiB", "--metrics-addr", "127.0.0.1:0"],
        &[],
    );
    wait_until("three failures recorded", 120, || {
        data.path().join("alerts.db").exists() && count(data.path(), "SELECT COUNT(DISTINCT object) FROM failures") == 3
    });
    wait_until("good objects committed", 60, || {
        objects_ok(data.path()) == good.len() as i64
    });
    let (code, log) = stop(child);
    assert_eq!(code, Some(0), "{log}");
    let classes = query_pairs(
        data.path(),
        "SELECT DISTINCT object, error_class FROM failures ORDER BY 1",
    );
    assert_eq!(
        classes,
        vec![
            (format!("s3://trail/{big}"), "too_large".to_string()),
            (format!("s3://trail/{corrupt}"), "gzip".to_string()),
            (format!("s3://trail/{missing}"), "no_such_key".to_string()),
        ]
    );
    assert_eq!(
        count(data.path(), "SELECT COUNT(*) FROM failures WHERE message_id IS NULL"),
        0
    );
    // Policy `leave`: the three poison messages are still on the queue.
    let (v, nv) = env.queue_depth();
    assert_eq!(v + nv, 3, "{log}");
    assert!(log.contains("poison"), "{log}");
}

#[test]
fn metrics_endpoint_shows_counters_moving() {
    let env = Env::new(30, true);
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = env.daemon(data.path(), &["--metrics-addr", &addr], &[]);
    let scrape = |path: &str| -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    wait_until("the metrics listener", 60, || {
        std::net::TcpStream::connect(&addr).is_ok()
    });
    assert!(scrape("/healthz").contains("ok"));
    let before = scrape("/metrics");
    assert!(before.contains("trailwatch_objects_processed_total 0"), "{before}");
    env.upload_under(&repo().join("sample-logs"), "AWSLogs/444455556666/CloudTrail/eu-west-1");
    wait_until("objects committed", 120, || objects_ok(data.path()) >= 20);
    wait_until("an empty queue", 60, || env.queue_depth() == (0, 0));
    let after = scrape("/metrics");
    let value = |text: &str, name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    assert_eq!(
        value(&after, "trailwatch_objects_processed_total"),
        objects_ok(data.path()) as f64,
        "{after}"
    );
    assert!(value(&after, "trailwatch_records_total") > 0.0);
    assert!(value(&after, "trailwatch_messages_deleted_total") >= 20.0);
    assert!(after.contains("trailwatch_alerts_total{"), "{after}");
    assert!(after.contains("trailwatch_processing_seconds_bucket"), "{after}");
    assert!(after.contains("trailwatch_ingestion_lag_seconds"), "{after}");
    let (code, log) = stop(child);
    assert_eq!(code, Some(0), "{log}");
}

/// An AccessDenied by `mallory` at 2026-10-05T15:MM:SS.
fn denied(i: u32, min: u32) -> serde_json::Value {
    serde_json::json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/mallory", "accountId": "111122223333", "userName": "mallory"},
        "eventTime": format!("2026-10-05T15:{min:02}:{:02}Z", i % 60),
        "eventSource": "iam.amazonaws.com",
        "eventName": "ListUsers",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.50",
        "errorCode": "AccessDenied",
        "errorMessage": "User is not authorized to perform: iam:ListUsers",
        "eventID": format!("deny-{i:02}"),
        "recipientAccountId": "111122223333"
    })
}

#[test]
fn a_restart_does_not_reset_correlation_windows() {
    let env = Env::new(30, true);
    let key = |n: u32| {
        format!(
            "AWSLogs/111122223333/CloudTrail/us-east-1/2026/10/05/111122223333_CloudTrail_us-east-1_20261005T15{n:02}Z_x.json.gz"
        )
    };
    let body = |ids: std::ops::Range<u32>, min: u32| {
        gzip(
            &serde_json::to_vec(&serde_json::json!({"Records": ids.map(|i| denied(i, min)).collect::<Vec<_>>()}))
                .unwrap(),
        )
    };
    let data = tempfile::tempdir().unwrap();
    // 12 denials, then a restart, then 8 more within the same 10 minutes.
    let child = env.daemon(data.path(), &[], &[]);
    env.put(&key(5), body(0..12, 1));
    wait_until("the first object", 60, || objects_ok(data.path()) == 1);
    let (code, log) = stop(child);
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(
        count(
            data.path(),
            "SELECT COUNT(*) FROM correlation_state WHERE correlation = 'access_denied_burst_by_principal'"
        ),
        1
    );
    assert_eq!(
        count(data.path(), "SELECT COUNT(*) FROM alerts WHERE group_key IS NOT NULL"),
        0
    );

    // The stopped daemon's last long poll (1 s) outlives it inside moto and
    // would take the next message for the whole visibility timeout, as a
    // real SQS would: let it expire first.
    std::thread::sleep(Duration::from_secs(2));
    let child = env.daemon(data.path(), &[], &[]);
    env.put(&key(10), body(12..20, 4));
    let deadline = Instant::now() + Duration::from_secs(60);
    while objects_ok(data.path()) < 2 {
        if Instant::now() > deadline {
            let (_, log) = stop(child);
            panic!("timed out waiting for the second object: {:?} {log}", env.queue_depth());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let (code, log) = stop(child);
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(
        query_pairs(
            data.path(),
            "SELECT rule_name, group_key || ' ' || json_array_length(contributing_events) FROM alerts \
             WHERE group_key IS NOT NULL"
        ),
        vec![(
            "access_denied_burst_by_principal".to_owned(),
            "userIdentity.arn=arn:aws:iam::111122223333:user/mallory 20".to_owned()
        )]
    );
    assert!(log.contains("rule=access_denied_burst_by_principal"), "{log}");
}
