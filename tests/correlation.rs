//! Correlation rules end to end through `trailwatch scan`: windows in event
//! time across files delivered out of order, state persisted between runs,
//! lateness and bounds, and the alert's links to its events.

mod common;

use std::path::Path;

use common::*;

/// A failed console sign-in from `ip` at 2026-10-05T14:MM:SS.
fn failed_login(id: &str, ip: &str, min: u32, sec: u32) -> serde_json::Value {
    serde_json::json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice", "accountId": "111122223333", "userName": "alice"},
        "eventTime": format!("2026-10-05T14:{min:02}:{sec:02}Z"),
        "eventSource": "signin.amazonaws.com",
        "eventName": "ConsoleLogin",
        "awsRegion": "us-east-1",
        "sourceIPAddress": ip,
        "userAgent": "Mozilla/5.0",
        "errorMessage": "Failed authentication",
        "responseElements": {"ConsoleLogin": "Failure"},
        "additionalEventData": {"MFAUsed": "No"},
        "eventID": id,
        "eventType": "AwsConsoleSignIn",
        "recipientAccountId": "111122223333"
    })
}

/// Writes one delivery file of `records` under `root` (CloudTrail layout).
fn deliver(root: &Path, name: &str, records: Vec<serde_json::Value>) {
    let dir = root.join("AWSLogs/111122223333/CloudTrail/us-east-1/2026/10/05");
    std::fs::create_dir_all(&dir).unwrap();
    let body = serde_json::to_vec(&serde_json::json!({ "Records": records })).unwrap();
    std::fs::write(
        dir.join(format!(
            "111122223333_CloudTrail_us-east-1_20261005T14{name}Z_abc.json.gz"
        )),
        gzip(&body),
    )
    .unwrap();
}

fn scan(logs: &Path, data: &Path, extra: &[&str]) -> std::process::Output {
    let out = run(bin()
        .args(["scan", "--format", "jsonl", "--data-dir"])
        .arg(data)
        .args(extra)
        .arg(logs));
    assert!(out.status.success(), "scan failed: {}", stderr(&out));
    out
}

fn corr_alerts(data: &Path) -> Vec<(String, String)> {
    query_pairs(
        data,
        "SELECT rule_name, event_id || ' ' || group_key || ' ' || window_start || ' ' || window_end || ' ' || contributing_events \
         FROM alerts WHERE group_key IS NOT NULL ORDER BY 1, 2",
    )
}

#[test]
fn burst_split_across_files_out_of_order_fires_once_with_its_window_and_events() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    // Six failures from one IP within 4 minutes, in two files; the later
    // file holds the earlier events (delivered out of order). A seventh
    // failure from another IP must not join the group.
    deliver(
        &logs,
        "0500",
        vec![
            failed_login("f-4", "203.0.113.77", 3, 0),
            failed_login("f-5", "203.0.113.77", 3, 30),
            failed_login("other-ip", "198.51.100.1", 3, 40),
        ],
    );
    deliver(
        &logs,
        "0510",
        vec![
            failed_login("f-1", "203.0.113.77", 0, 0),
            failed_login("f-2", "203.0.113.77", 1, 0),
            failed_login("f-3", "203.0.113.77", 2, 0),
            failed_login("f-6", "203.0.113.77", 3, 50),
        ],
    );
    let data = tmp.path().join("data");
    // One thread: files in name order, so which event completes the window
    // is fixed (f-3: the fifth of the group to arrive).
    let out = scan(&logs, &data, &["--threads", "1"]);
    assert_eq!(
        corr_alerts(&data),
        vec![(
            "failed_console_logins_from_one_ip".to_owned(),
            "f-3 sourceIPAddress=203.0.113.77 2026-10-05T14:00:00Z 2026-10-05T14:03:30Z [\"f-1\",\"f-2\",\"f-3\",\"f-4\",\"f-5\"]"
                .to_owned()
        )]
    );
    // The base rule raises no alert of its own (generate: false), and the
    // alert went to stdout with its links.
    assert_eq!(
        count(
            &data,
            "SELECT COUNT(*) FROM alerts WHERE rule_name = 'console_login_failure'"
        ),
        0
    );
    let line = stdout(&out)
        .lines()
        .find(|l| l.contains("failed_console_logins_from_one_ip"))
        .expect("alert on stdout")
        .to_owned();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["group_key"], "sourceIPAddress=203.0.113.77");
    assert_eq!(v["contributing_events"], "f-1 f-2 f-3 f-4 f-5");
    assert_eq!(v["source_ip"], "203.0.113.77");

    // `alerts show` by the key lists the window and every event.
    let out = run(bin().args(["alerts", "show", "f-3", "--data-dir"]).arg(&data));
    let text = stdout(&out);
    assert!(text.contains("group:         sourceIPAddress=203.0.113.77"), "{text}");
    assert!(
        text.contains("window:        2026-10-05T14:00:00Z .. 2026-10-05T14:03:30Z"),
        "{text}"
    );
    for id in ["f-1", "f-2", "f-3", "f-4", "f-5"] {
        assert!(text.contains(&format!("\n  {id}\n")), "{text}");
    }
    // `query` exposes the links too.
    let out = run(bin()
        .args(["query", "--format", "csv", "--data-dir"])
        .arg(&data)
        .arg("SELECT rule_name, group_key, window_start, contributing_events FROM alerts WHERE group_key IS NOT NULL"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("failed_console_logins_from_one_ip,sourceIPAddress=203.0.113.77,2026-10-05T14:00:00Z,"),
        "{}",
        stdout(&out)
    );
    // The sixth failure stays in the window state for a next burst.
    assert_eq!(
        query_pairs(
            &data,
            "SELECT correlation, group_key FROM correlation_state ORDER BY 1, 2"
        ),
        vec![
            (
                "failed_console_logins_from_one_ip".to_owned(),
                "sourceIPAddress=198.51.100.1".to_owned()
            ),
            (
                "failed_console_logins_from_one_ip".to_owned(),
                "sourceIPAddress=203.0.113.77".to_owned()
            ),
        ]
    );

    // Re-running over the same files (ledger) or reprocessing them adds
    // nothing twice.
    scan(&logs, &data, &["--threads", "1"]);
    scan(&logs, &data, &["--threads", "1", "--reprocess"]);
    assert_eq!(
        count(
            &data,
            "SELECT COUNT(*) FROM alerts WHERE rule_name = 'failed_console_logins_from_one_ip'"
        ),
        1
    );
}

#[test]
fn window_state_persists_between_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let first = tmp.path().join("first");
    deliver(
        &first,
        "0500",
        (1..=3)
            .map(|i| failed_login(&format!("p-{i}"), "203.0.113.9", 0, i * 10))
            .collect(),
    );
    scan(&first, &data, &[]);
    assert_eq!(corr_alerts(&data), vec![]);
    let state = query_pairs(&data, "SELECT group_key, state FROM correlation_state");
    assert_eq!(state.len(), 1);
    assert!(state[0].1.contains("\"p-3\""), "{state:?}");

    // A separate run (a restart) with the next two failures completes it.
    let second = tmp.path().join("second");
    deliver(
        &second,
        "0505",
        (4..=5)
            .map(|i| failed_login(&format!("p-{i}"), "203.0.113.9", 1, i))
            .collect(),
    );
    scan(&second, &data, &[]);
    let alerts = corr_alerts(&data);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(
        alerts[0].1.ends_with("[\"p-1\",\"p-2\",\"p-3\",\"p-4\",\"p-5\"]"),
        "{alerts:?}"
    );
}

#[test]
fn events_later_than_the_allowed_lateness_do_not_count() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    // Four failures at 14:30, then four at 14:00 delivered after them: with
    // 10 minutes of lateness the old ones are too late to join a window.
    deliver(
        &logs,
        "0500",
        (0..4)
            .map(|i| failed_login(&format!("new-{i}"), "203.0.113.5", 30, i))
            .collect(),
    );
    deliver(
        &logs,
        "0510",
        (0..4)
            .map(|i| failed_login(&format!("old-{i}"), "203.0.113.5", 0, i))
            .collect(),
    );
    let data = tmp.path().join("data");
    scan(&logs, &data, &["--threads", "1", "--correlation-lateness-secs", "600"]);
    assert_eq!(corr_alerts(&data), vec![]);

    // With an hour of lateness the old failures count: with a fifth one
    // delivered later still, the old window reaches five.
    let data2 = tmp.path().join("data2");
    deliver(&logs, "0520", vec![failed_login("old-4", "203.0.113.5", 0, 30)]);
    scan(
        &logs,
        &data2,
        &["--threads", "1", "--correlation-lateness-secs", "3600"],
    );
    let alerts = corr_alerts(&data2);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(alerts[0].1.starts_with("old-4 "), "{alerts:?}");
}

#[test]
fn correlation_state_is_bounded_by_group_count() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    deliver(
        &logs,
        "0500",
        (0..30)
            .map(|i| failed_login(&format!("ip-{i}"), &format!("203.0.113.{i}"), 0, i))
            .collect(),
    );
    let data = tmp.path().join("data");
    scan(&logs, &data, &["--correlation-max-groups", "10"]);
    let groups = count(
        &data,
        "SELECT COUNT(*) FROM correlation_state WHERE correlation = 'failed_console_logins_from_one_ip'",
    );
    assert!((1..=10).contains(&groups), "{groups} groups kept");
}

#[test]
fn regression_correlation_alerts_do_not_depend_on_the_thread_count() {
    // Workers finish out of order; scan commits in listing order, so the
    // windows see events in the same order with 1 or 2 threads.
    let logs = shared().join("datasets/grycap_cloudtrail-tracker");
    let tmp = tempfile::tempdir().unwrap();
    let mut sets = Vec::new();
    for threads in ["1", "2"] {
        let data = tmp.path().join(threads);
        scan(&logs, &data, &["--threads", threads]);
        sets.push(query_pairs(
            &data,
            "SELECT rule_name, event_id || ' ' || group_key || ' ' || contributing_events FROM alerts \
             WHERE group_key IS NOT NULL ORDER BY 1, 2",
        ));
    }
    assert_eq!(sets[0].len(), 33);
    assert_eq!(sets[0], sets[1]);
}
