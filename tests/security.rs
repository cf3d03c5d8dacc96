//! Security of the tool itself (SECURITY.md): a private data directory,
//! read-only analyst commands, no credentials in logs, linear-time regexes,
//! and rule files that cannot reach other files.

mod common;
#[path = "common/moto.rs"]
mod moto;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn scan(data: &Path, paths: &[&Path]) -> std::process::Output {
    let mut c = bin();
    c.args(["scan", "--format", "jsonl", "--data-dir"]).arg(data);
    for p in paths {
        c.arg(p);
    }
    run(&mut c)
}

fn walk(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![root.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if out[i].is_dir() {
            let mut kids: Vec<_> = std::fs::read_dir(&out[i]).unwrap().map(|e| e.unwrap().path()).collect();
            kids.sort();
            out.extend(kids);
        }
        i += 1;
    }
    out
}

#[test]
fn the_data_directory_is_created_private_and_looser_modes_are_warned_about() {
    let parent = tempfile::tempdir().unwrap();
    let dd = parent.path().join("nested/data");
    let out = scan(&dd, &[&repo().join("sample-logs/AWSLogs/444455556666")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("accessible to group or others"),
        "{}",
        stderr(&out)
    );
    // Every directory 0700 and every file 0600: SQLite and its WAL/SHM, the
    // Parquet parts, their partition folders.
    let entries = walk(&dd);
    assert!(entries.iter().any(|p| p.extension().is_some_and(|e| e == "parquet")));
    for p in &entries {
        let want = if p.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(p), want, "{}", p.display());
    }
    assert_eq!(
        mode(&parent.path().join("nested")),
        0o700,
        "created parents are private too"
    );
    let jm: String = db(&dd).query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(jm, "wal");

    // Loosened by hand: every command that opens the store says so, naming
    // the path and the mode.
    std::fs::set_permissions(&dd, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(dd.join("alerts.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = scan(&dd, &[&repo().join("sample-logs/AWSLogs/444455556666")]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    for (path, m) in [(dd.clone(), "0755"), (dd.join("alerts.db"), "0644")] {
        let line = err
            .lines()
            .find(|l| l.contains("accessible to group or others") && l.contains(&format!("path={}", path.display())))
            .unwrap_or_else(|| panic!("no warning for {}:\n{err}", path.display()));
        assert!(line.contains("WARN"), "{line}");
        assert!(
            line.contains(&format!("mode=\"{m}\"")) || line.contains(&format!("mode={m}")),
            "{line}"
        );
    }
    for cmd in [&["alerts"][..], &["query", "SELECT COUNT(*) AS n FROM alerts"][..]] {
        let out = run(bin().args(cmd).arg("--data-dir").arg(&dd));
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("accessible to group or others"),
            "{cmd:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn the_library_creates_private_files_whatever_the_umask() {
    // The CLI sets umask 077, but the store does not rely on it: with a
    // wide-open umask, files still come out 0600 and directories 0700.
    // (The umask is process-wide; the other tests of this binary create
    // their folders with tempfile, which sets 0700 itself, and their
    // trailwatch children set their own.)
    use std::sync::Arc;
    use trailwatch::pipeline::{ObjectMeta, PipelineOptions, Worker};
    use trailwatch::rules::{LoadOptions, RuleSet};
    use trailwatch::store::{Aggregates, Store};
    let data = tempfile::tempdir().unwrap();
    let dd = data.path().join("d/e");
    let old = unsafe { libc::umask(0) };
    let result = std::panic::catch_unwind(|| {
        let mut store = Store::open(&dd).unwrap();
        let (rules, _) = RuleSet::embedded(&LoadOptions::default());
        let mut w = Worker::new(Arc::new(rules), PipelineOptions::default());
        let f = repo().join("tests/fixtures/bad/good-plain.json");
        let oc = w.process(
            ObjectMeta {
                name: f.display().to_string(),
                size: 1,
                mtime_ns: None,
                fingerprint: "x".into(),
                message_id: None,
            },
            std::fs::File::open(&f).unwrap(),
        );
        store.commit(&[oc], &[]).unwrap();
        Aggregates::new(&dd).flush(&mut store).unwrap();
        // While the connection is open, the WAL and shared-memory files exist.
        let modes: Vec<(std::path::PathBuf, bool, u32)> = walk(&data.path().join("d"))
            .into_iter()
            .map(|p| (p.clone(), p.is_dir(), mode(&p)))
            .collect();
        drop(store);
        modes
    });
    unsafe { libc::umask(old) };
    let entries = result.unwrap();
    assert!(
        entries
            .iter()
            .any(|(p, _, _)| p.extension().is_some_and(|e| e == "parquet"))
    );
    assert!(entries.iter().any(|(p, _, _)| p.ends_with("alerts.db-wal")));
    for (p, dir, m) in &entries {
        let want = if *dir { 0o700 } else { 0o600 };
        assert_eq!(*m, want, "{}", p.display());
    }
}

/// A hash of everything in the data directory.
fn fingerprint(dd: &Path) -> Vec<(String, Vec<u8>)> {
    walk(dd)
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect()
}

#[test]
fn query_and_alerts_cannot_modify_the_store() {
    let data = tempfile::tempdir().unwrap();
    let dd = data.path().join("d");
    assert!(
        scan(&dd, &[&repo().join("sample-logs/AWSLogs/444455556666")])
            .status
            .success()
    );
    let before = fingerprint(&dd);
    let alerts = count(&dd, "SELECT COUNT(*) FROM alerts");
    assert!(alerts > 0);
    let outside = data.path().join("outside");
    let o = outside.display().to_string();
    let statements = [
        "INSERT INTO alerts (id) VALUES (1)".to_string(),
        "INSERT INTO alerts SELECT * FROM alerts".to_string(),
        "REPLACE INTO alerts (id) VALUES (1)".to_string(),
        "UPDATE alerts SET severity = 'low'".to_string(),
        "DELETE FROM alerts".to_string(),
        "DROP TABLE alerts".to_string(),
        "ALTER TABLE alerts ADD COLUMN x INT".to_string(),
        "CREATE TABLE t AS SELECT * FROM alerts".to_string(),
        "CREATE TRIGGER t AFTER INSERT ON alerts BEGIN DELETE FROM alerts; END".to_string(),
        format!("ATTACH DATABASE '{o}.db' AS x"),
        "PRAGMA user_version = 99".to_string(),
        "PRAGMA journal_mode = DELETE".to_string(),
        "PRAGMA writable_schema = ON".to_string(),
        format!("COPY alerts TO '{o}.csv'"),
        format!("COPY (SELECT * FROM alerts) TO '{o}.parquet'"),
        format!("VACUUM INTO '{o}.db'"),
        "SELECT 1; DELETE FROM alerts".to_string(),
        "DELETE FROM alerts; SELECT 1".to_string(),
        "TRUNCATE TABLE alerts".to_string(),
    ];
    for sql in &statements {
        let out = run(bin().args(["query", "--data-dir"]).arg(&dd).arg(sql));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{sql} was not refused: {err}");
        assert!(
            err.contains("queries are read-only") || err.contains("cannot parse the SQL"),
            "{sql}: {err}"
        );
    }
    // Nor does `query` read other files (polars SQL's table functions).
    std::fs::write(data.path().join("secret.csv"), "a,b\n1,2\n").unwrap();
    let q = format!("SELECT * FROM read_csv('{}')", data.path().join("secret.csv").display());
    let out = run(bin().args(["query", "--data-dir"]).arg(&dd).arg(&q));
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("table function `read_csv(…)` is not allowed"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_file(data.path().join("secret.csv")).unwrap();

    // Every filter of `alerts` is a bound parameter: SQL in them is data.
    for (flag, value) in [
        ("--rule", "x'); DELETE FROM alerts; --"),
        ("--account", "1' OR '1'='1'; DROP TABLE alerts; --"),
        ("--principal", "%'; UPDATE alerts SET severity='low'; --"),
    ] {
        let out = run(bin()
            .args(["alerts", "--format", "jsonl", flag, value, "--data-dir"])
            .arg(&dd));
        assert!(out.status.success(), "{flag}: {}", stderr(&out));
        assert_eq!(stdout(&out), "", "{flag} {value} matched something");
    }
    let out = run(bin()
        .args(["alerts", "--since", "2026-01-01'; DELETE FROM alerts; --", "--data-dir"])
        .arg(&dd));
    assert_eq!(out.status.code(), Some(2), "an unparseable time is refused, not run");
    let out = run(bin()
        .args(["alerts", "show", "1; DELETE FROM alerts", "--data-dir"])
        .arg(&dd));
    assert_eq!(out.status.code(), Some(1));

    assert_eq!(count(&dd, "SELECT COUNT(*) FROM alerts"), alerts);
    assert!(fingerprint(&dd) == before, "the data directory changed");
    let stray: Vec<_> = std::fs::read_dir(data.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "d")
        .collect();
    assert!(stray.is_empty(), "files written by refused statements: {stray:?}");
}

// ---------------------------------------------------------------------------
// Credentials never reach the logs.

const KEY_ID: &str = "AKIAQUOKKASECRETID77";
const SECRET: &str = "wJalrXUtnFEMIK7MDENGbPxRfiCYsecretKEY9Z";
const TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLEsessionTOKENqHvXq2mPz7";

fn with_fake_credentials(c: &mut Command) -> &mut Command {
    c.env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_SESSION_TOKEN", TOKEN)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_LOG", "trace")
        .env("NO_COLOR", "1")
        .env_remove("TRAILWATCH_DATA_DIR")
}

fn assert_no_secret(what: &str, text: &str) {
    assert!(
        text.contains("DEBUG") || text.contains("TRACE"),
        "{what}: debug logging was not on:\n{text}"
    );
    for (name, v) in [
        ("AWS_ACCESS_KEY_ID", KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_SESSION_TOKEN", TOKEN),
    ] {
        // Also a fragment, in case a value is cut or wrapped.
        for needle in [v, &v[..16]] {
            if let Some(i) = text.find(needle) {
                let line = text[..i].rsplit('\n').next().unwrap_or("");
                panic!(
                    "{what}: {name} appears in the output: {line}{}",
                    &text[i..(i + 80).min(text.len())]
                );
            }
        }
    }
}

#[test]
fn credentials_from_the_environment_never_appear_in_logs_or_errors() {
    let moto = moto::Moto::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (s3, sqs) = (moto.s3(), moto.sqs());
    let key = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/10/05/111122223333_CloudTrail_us-east-1_20261005T1000Z_a.json.gz";
    let queue_url = rt.block_on(async {
        s3.create_bucket().bucket("trail").send().await.unwrap();
        s3.put_object()
            .bucket("trail")
            .key(key)
            .body(std::fs::read(repo().join("tests/fixtures/bad/good-gzip.json.gz")).unwrap().into())
            .send()
            .await
            .unwrap();
        let q = sqs.create_queue().queue_name("trail-events").send().await.unwrap();
        let url = q.queue_url().unwrap().to_owned();
        // One good object, one missing (an S3 error path), one foreign body.
        for k in [key, "AWSLogs/111122223333/CloudTrail/us-east-1/2026/10/05/missing.json.gz"] {
            let body = serde_json::json!({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "trail"}, "object": {"key": k}}}]});
            sqs.send_message().queue_url(&url).message_body(body.to_string()).send().await.unwrap();
        }
        sqs.send_message().queue_url(&url).message_body("not json").send().await.unwrap();
        url
    });
    let work = tempfile::tempdir().unwrap();

    // scan (no AWS at all, but the environment holds the credentials).
    let out = run(with_fake_credentials(&mut bin())
        .args(["-vv", "scan", "--data-dir"])
        .arg(work.path().join("scan"))
        .arg(repo().join("tests/fixtures/bad/good-plain.json"))
        .arg(repo().join("tests/fixtures/bad/truncated.json.gz")));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_no_secret("scan", &format!("{}{}", stdout(&out), stderr(&out)));

    // backfill, including a bucket that does not exist (an error path).
    for uri in ["s3://trail", "s3://no-such-bucket"] {
        let out = run(with_fake_credentials(&mut bin())
            .args([
                "-vv",
                "backfill",
                uri,
                "--endpoint-url",
                &moto.endpoint(),
                "--force-path-style",
            ])
            .args(["--format", "jsonl"])
            .arg("--data-dir")
            .arg(work.path().join("backfill")));
        let text = format!("{}{}", stdout(&out), stderr(&out));
        if uri == "s3://trail" {
            assert_eq!(out.status.code(), Some(0), "{text}");
            assert!(text.contains("bad-corpus-good-gzip"), "{text}");
        } else {
            assert_ne!(out.status.code(), Some(0), "{text}");
        }
        assert_no_secret(&format!("backfill {uri}"), &text);
    }

    // daemon, until it has processed the good object and recorded the rest.
    let dd = work.path().join("daemon");
    let child = with_fake_credentials(&mut Command::new(env!("CARGO_BIN_EXE_trailwatch")))
        .args([
            "-vv",
            "daemon",
            "--queue-url",
            &queue_url,
            "--endpoint-url",
            &moto.endpoint(),
        ])
        .args(["--force-path-style", "--wait-time-secs", "1", "--data-dir"])
        .arg(&dd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read the logs as they come (trace output would fill a pipe).
    let drain = |r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut r = r;
            let mut v = Vec::new();
            r.read_to_end(&mut v).unwrap();
            v
        })
    };
    let mut child = child;
    use std::io::Read as _;
    let o = drain(Box::new(child.stdout.take().unwrap()));
    let e = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(120);
    while !(dd.join("alerts.db").exists()
        && count(&dd, "SELECT COUNT(*) FROM objects WHERE status = 'ok'") == 1
        && count(&dd, "SELECT COUNT(DISTINCT object) FROM failures") == 2)
    {
        assert!(Instant::now() < deadline, "daemon did not finish its work");
        std::thread::sleep(Duration::from_millis(250));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.join().unwrap()),
        String::from_utf8_lossy(&e.join().unwrap())
    );
    assert_eq!(status.code(), Some(0), "{}", &text[text.len().saturating_sub(3000)..]);
    assert!(text.contains("TRACE"), "trace logging was not on");
    assert_no_secret("daemon", &text);
}

// ---------------------------------------------------------------------------
// Rules: linear-time regexes, no file access.

fn rules_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(d.path().join(name), text).unwrap();
    }
    d
}

#[test]
fn a_hostile_regex_over_a_hostile_field_finishes() {
    // `(a+)+$` over "aaaa…a!" is exponential for a backtracking engine; the
    // regex crate runs it in linear time, as it does every wildcard pattern.
    // No timing assertion: the test finishing is the proof.
    let rules = rules_dir(&[(
        "hostile.yml",
        "title: hostile\nname: hostile_regex\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  \
         re:\n    userAgent|re: '(a+)+$'\n  glob:\n    userAgent: '*a*a*a*a*a*a*a*a*a*a*b'\n  condition: re or glob\n",
    )]);
    let logs = tempfile::tempdir().unwrap();
    let hostile = "a".repeat(100_000) + "!";
    let rec = |id: &str, ua: &str| {
        format!(
            r#"{{"eventVersion":"1.08","eventID":"{id}","eventName":"ListBuckets","eventSource":"s3.amazonaws.com","userAgent":"{ua}"}}"#
        )
    };
    std::fs::write(
        logs.path().join("hostile.json"),
        format!(
            "{{\"Records\":[{},{},{}]}}",
            rec("hostile-no-match", &hostile),
            rec("hostile-regex-match", &format!("{hostile}aaa")),
            rec("hostile-glob-match", &format!("{hostile}b")),
        ),
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let out = run(bin()
        .args(["scan", "--format", "jsonl", "--rules"])
        .arg(rules.path())
        .arg("--data-dir")
        .arg(data.path())
        .arg(logs.path()));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        query_pairs(data.path(), "SELECT rule_name, event_id FROM alerts ORDER BY 2"),
        vec![
            ("hostile_regex".to_string(), "hostile-glob-match".to_string()),
            ("hostile_regex".to_string(), "hostile-regex-match".to_string()),
        ]
    );
}

#[test]
fn a_rule_file_cannot_make_trailwatch_read_other_files() {
    // Sigma allows custom top-level attributes, and trailwatch ignores the
    // ones it does not know: `include:`/`path:` are inert data, YAML tags
    // are not resolved, and nothing in a rule names a file to open. Here an
    // "included" file holds a rule that would fire on everything.
    let elsewhere = tempfile::tempdir().unwrap();
    let included = elsewhere.path().join("everything.yml");
    std::fs::write(
        &included,
        "title: included\nname: included_rule\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    eventVersion|exists: true\n  condition: sel\n",
    )
    .unwrap();
    let inc = included.display().to_string();
    let rules = rules_dir(&[(
        "innocent.yml",
        &format!(
            "title: innocent\nname: innocent\ninclude: {inc}\npath: {inc}\nimport: [{inc}]\n\
             logsource: {{product: aws, service: cloudtrail}}\ndetection:\n  sel:\n    eventName: NeverCalled\n  condition: sel\n"
        ),
    )]);
    let out = run(bin().args(["rules", "list", "--rules"]).arg(rules.path()));
    assert!(out.status.success(), "{}", stderr(&out));
    let listed = stdout(&out);
    assert!(
        listed.contains("innocent") && !listed.contains("included_rule"),
        "{listed}"
    );

    // A YAML tag is not an include directive either: the value is refused.
    let tagged = rules_dir(&[(
        "tagged.yml",
        &format!(
            "title: tagged\nname: tagged\nlogsource: {{product: aws, service: cloudtrail}}\ndetection:\n  sel:\n    eventName: !include {inc}\n  condition: sel\n"
        ),
    )]);
    let out = run(bin().args(["rules", "lint"]).arg(tagged.path()));
    assert_ne!(
        out.status.code(),
        Some(0),
        "a tagged value must not load: {}",
        stdout(&out)
    );
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(text.contains("tagged.yml"), "{text}");

    // Scanning with the innocent rule: nothing fires, nothing was read.
    let data = tempfile::tempdir().unwrap();
    let out = run(bin()
        .args(["scan", "--format", "jsonl", "--rules"])
        .arg(rules.path())
        .arg("--data-dir")
        .arg(data.path())
        .arg(repo().join("tests/fixtures/bad/good-plain.json")));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
}
