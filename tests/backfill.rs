//! `trailwatch backfill` against a real moto_server.

mod common;
#[path = "common/moto.rs"]
mod moto;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

struct Bucket {
    moto: moto::Moto,
    rt: tokio::runtime::Runtime,
    s3: aws_sdk_s3::Client,
}

impl Bucket {
    fn new() -> Bucket {
        let moto = moto::Moto::start();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let s3 = moto.s3();
        rt.block_on(s3.create_bucket().bucket("trail").send()).unwrap();
        Bucket { moto, rt, s3 }
    }

    fn put(&self, key: &str, body: Vec<u8>) {
        self.rt
            .block_on(self.s3.put_object().bucket("trail").key(key).body(body.into()).send())
            .unwrap();
    }

    fn backfill(&self, data: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_trailwatch"));
        c.args([
            "backfill",
            "s3://trail",
            "--endpoint-url",
            &self.moto.endpoint(),
            "--force-path-style",
            "--format",
            "jsonl",
        ])
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("NO_COLOR", "1")
        .env_remove("TRAILWATCH_DATA_DIR");
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    fn listed(&self, args: &[&str]) -> Vec<String> {
        let data = tempfile::tempdir().unwrap();
        let mut a = vec!["--list"];
        a.extend_from_slice(args);
        let out = self.backfill(data.path(), &a, &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out).lines().map(str::to_owned).collect()
    }
}

fn record_file(id: &str) -> Vec<u8> {
    gzip(format!(r#"{{"Records":[{{"eventVersion":"1.08","eventID":"{id}","eventName":"ListBuckets","eventSource":"s3.amazonaws.com","eventTime":"2026-10-01T12:00:00Z","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::1:user/a"}}}}]}}"#).as_bytes())
}

fn key(acct_path: &str, acct: &str, region: &str, day: u32) -> String {
    format!(
        "AWSLogs/{acct_path}CloudTrail/{region}/2026/10/{day:02}/{acct}_CloudTrail_{region}_202610{day:02}T1200Z_abcdefgh01234567.json.gz"
    )
}

#[test]
fn selection_lists_exactly_the_day_account_and_region_folders() {
    let b = Bucket::new();
    let mut all = Vec::new();
    for acct in ["111111111111", "222222222222"] {
        for region in ["us-east-1", "eu-west-1"] {
            for day in 1..=6 {
                let k = key(&format!("{acct}/"), acct, region, day);
                b.put(&k, record_file(&k));
                all.push(k);
            }
        }
        // Digest files are never listed.
        b.put(&format!("AWSLogs/{acct}/CloudTrail-Digest/us-east-1/2026/10/03/{acct}_CloudTrail-Digest_us-east-1_t_us-east-1_20261003T120000Z.json.gz"), b"{}".to_vec());
    }
    // An organization trail.
    for day in [2, 5] {
        let k = key("o-abc123def4/333333333333/", "333333333333", "us-east-1", day);
        b.put(&k, record_file(&k));
        all.push(k);
    }
    b.put(
        "AWSLogs/333333333333/CloudTrail-Insight/us-east-1/2026/10/03/x.json.gz",
        b"{}".to_vec(),
    );
    all.sort();

    assert_eq!(b.listed(&[]), all);
    let mut want = vec![
        key("111111111111/", "111111111111", "eu-west-1", 3),
        key("111111111111/", "111111111111", "eu-west-1", 4),
    ];
    want.sort();
    assert_eq!(
        b.listed(&[
            "--from",
            "2026-10-03",
            "--to",
            "2026-10-04",
            "--accounts",
            "111111111111",
            "--regions",
            "eu-west-1",
            "--from-slack-hours",
            "0"
        ]),
        want
    );
    // Slack (on by default) also lists the day folder before --from.
    let mut with_slack = want.clone();
    with_slack.push(key("111111111111/", "111111111111", "eu-west-1", 2));
    with_slack.sort();
    assert_eq!(
        b.listed(&[
            "--from",
            "2026-10-03",
            "--to",
            "2026-10-04",
            "--accounts",
            "111111111111",
            "--regions",
            "eu-west-1"
        ]),
        with_slack
    );
    // Organization-trail accounts are selectable like the others.
    let mut org = vec![
        key("o-abc123def4/333333333333/", "333333333333", "us-east-1", 2),
        key("o-abc123def4/333333333333/", "333333333333", "us-east-1", 5),
    ];
    org.sort();
    assert_eq!(b.listed(&["--accounts", "333333333333"]), org);
    // A backfill whose selection matches nothing says so (it printed only
    // "backfilled 0 objects" and exited 0).
    let data = tempfile::tempdir().unwrap();
    let out = b.backfill(data.path(), &["--accounts", "999999999999"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            " WARN found no CloudTrail log objects under this URI for the selected accounts, regions and dates uri=s3://trail"
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        b.listed(&[
            "--from",
            "2026-10-05",
            "--to",
            "2026-10-05",
            "--accounts",
            "333333333333",
            "--from-slack-hours",
            "0"
        ]),
        org[1..].to_vec()
    );
    // Two regions, one account, one day.
    assert_eq!(
        b.listed(&[
            "--from",
            "2026-10-06",
            "--to",
            "2026-10-06",
            "--accounts",
            "222222222222",
            "--from-slack-hours",
            "0"
        ])
        .len(),
        2
    );
}

fn sample_keys(b: &Bucket) -> Vec<PathBuf> {
    let root = repo().join("sample-logs");
    let files = log_files(&root);
    for p in &files {
        b.put(
            &p.strip_prefix(&root).unwrap().to_string_lossy(),
            std::fs::read(p).unwrap(),
        );
    }
    files
}

#[test]
fn interrupted_backfill_resumes_and_matches_scan_and_reprocess_adds_nothing() {
    let b = Bucket::new();
    sample_keys(&b);
    let data = tempfile::tempdir().unwrap();
    let first = b.backfill(
        data.path(),
        &["--concurrency", "2"],
        &[("TRAILWATCH_TEST_STOP_AFTER", "20")],
    );
    assert_eq!(first.status.code(), Some(130), "{}", stderr(&first));
    let done_first = count(data.path(), "SELECT COUNT(*) FROM objects");
    assert!((20..102).contains(&done_first), "{done_first}");

    let second = b.backfill(data.path(), &["--concurrency", "4"], &[]);
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    let err = stderr(&second);
    assert!(err.contains(&format!("{done_first} already done")), "{err}");
    // Every object exactly once, the same alerts as a local scan, exact totals.
    assert_eq!(
        count(data.path(), "SELECT COUNT(*) FROM objects WHERE status = 'ok'"),
        102
    );
    assert_sample_alerts_any_order(data.path());
    assert_eq!(activity_total(data.path()), sample_records());
    let names = query_pairs(data.path(), "SELECT name, status FROM objects ORDER BY 1 LIMIT 1");
    assert!(names[0].0.starts_with("s3://trail/AWSLogs/"), "{names:?}");

    let re = b.backfill(data.path(), &["--reprocess"], &[]);
    assert_eq!(re.status.code(), Some(0), "{}", stderr(&re));
    assert_eq!(stdout(&re), "", "no alert is new on --reprocess");
    assert_eq!(count(data.path(), "SELECT COUNT(*) FROM alerts"), sample_alert_count());
    assert_eq!(count(data.path(), "SELECT COUNT(*) FROM objects"), 102);
    assert_eq!(activity_total(data.path()), sample_records());
}

#[test]
fn a_bad_uri_and_a_bad_range_are_clear_errors() {
    let data = tempfile::tempdir().unwrap();
    let out = run(bin().args(["backfill", "trail/x", "--data-dir"]).arg(data.path()));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not an s3://BUCKET[/PREFIX] URI"),
        "{}",
        stderr(&out)
    );
    let out = run(bin()
        .args([
            "backfill",
            "s3://trail",
            "--from",
            "2026-10-05",
            "--to",
            "2026-10-01",
            "--data-dir",
        ])
        .arg(data.path()));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is after --to"), "{}", stderr(&out));
}
