//! `trailwatch rules ...` and rule loading through the binary.

mod common;

use common::*;

#[test]
fn rules_test_runs_every_embedded_case() {
    let out = run(bin().args(["rules", "test"]));
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    for name in [
        "root_account_usage",
        "console_login_without_mfa",
        "kms_key_deletion",
        "security_group_opened_to_world",
    ] {
        assert!(text.lines().any(|l| l.starts_with(name) && l.ends_with("ok")), "{text}");
    }
    assert!(text.contains("4 rules, 30 cases, 0 failed, 0 load errors"), "{text}");
}

#[test]
fn rules_test_reports_a_failing_case() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wrong.yml"),
        "title: wrong\nname: wrong\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    eventName: A\n  condition: sel\n\
         tests:\n  true_positives:\n    - {eventName: B, eventSource: x}\n  true_negatives:\n    - {eventName: C, eventSource: x}\n",
    )
    .unwrap();
    let out = run(bin().args(["rules", "test"]).arg(dir.path()));
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("wrong") && text.contains("FAILED") && text.contains("true_positive #0: rule did not fire"),
        "{text}"
    );
}

#[test]
fn sigmahq_cloudtrail_rules_all_load() {
    let out = run(bin()
        .args(["rules", "lint"])
        .arg(shared().join("sigma/rules/cloud/aws/cloudtrail")));
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("57 loaded, 0 errors"), "{}", stdout(&out));
}

#[test]
fn lint_reports_every_problem_in_one_pass() {
    let dir = tempfile::tempdir().unwrap();
    let head = "logsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n";
    std::fs::write(
        dir.path().join("a.yml"),
        format!("title: a\n{head}    eventName|nosuch: X\n  condition: sel\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.yml"),
        format!("title: b\n{head}    eventName: X\n  condition: sel and nope\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("c.yml"),
        format!("title: c\n{head}    eventName: X\n  condition: sel\n"),
    )
    .unwrap();
    let out = run(bin().args(["rules", "lint"]).arg(dir.path()));
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("a.yml:5:") && text.contains("unknown modifier `nosuch`"),
        "{text}"
    );
    assert!(text.contains("b.yml:6:") && text.contains("`nope`"), "{text}");
    assert!(text.contains("1 loaded, 2 errors"), "{text}");

    // A scan with such a rule set does not start.
    let data = tempfile::tempdir().unwrap();
    let scan = run(bin()
        .args(["scan", "--rules"])
        .arg(dir.path())
        .arg("--data-dir")
        .arg(data.path())
        .arg(repo().join("sample-logs")));
    assert_eq!(scan.status.code(), Some(2));
    assert!(stderr(&scan).contains("a.yml:5:"), "{}", stderr(&scan));
}

#[test]
fn rules_list_shows_fields_and_dispatch() {
    let out = run(bin().args(["rules", "list"]));
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(
        text.contains("kms_key_deletion") && text.contains("eventSource, eventName, errorCode"),
        "{text}"
    );
    assert!(
        stderr(&out).contains("4 rules: 3 dispatched by eventName"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn scan_csv_output_has_a_header_and_one_row_per_alert() {
    let data = tempfile::tempdir().unwrap();
    let out = run(bin()
        .args(["scan", "--format", "csv", "--data-dir"])
        .arg(data.path())
        .arg(repo().join("sample-logs")));
    assert!(out.status.success());
    let text = stdout(&out);
    let mut lines = text.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("rule,rule_id,title,severity,event_id,event_time")
    );
    assert_eq!(lines.count(), 14);
}
