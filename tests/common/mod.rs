//! Helpers shared by the integration tests: the binary, the shared
//! datasets, and store inspection.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_trailwatch"));
    c.env_remove("TRAILWATCH_DATA_DIR")
        .env_remove("TRAILWATCH_RULES")
        .env("NO_COLOR", "1");
    c
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared` beside the checkout (or `TRAILWATCH_SHARED`). Tests that need
/// it fail loudly when it is absent rather than pass vacuously.
pub fn shared() -> PathBuf {
    let p = std::env::var_os("TRAILWATCH_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared"));
    assert!(
        p.join("datasets").is_dir(),
        "{} is missing: the shared datasets must sit beside the checkout",
        p.display()
    );
    p
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run trailwatch")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Opens the store of a data dir for assertions.
pub fn db(data_dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(data_dir.join("alerts.db")).expect("open alerts.db")
}

pub fn query_pairs(data_dir: &Path, sql: &str) -> Vec<(String, String)> {
    let c = db(data_dir);
    let mut st = c.prepare(sql).unwrap();
    st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

pub fn count(data_dir: &Path, sql: &str) -> i64 {
    db(data_dir).query_row(sql, [], |r| r.get(0)).unwrap()
}

/// The planted alerts of sample-logs: (rule_name, event_id), sorted.
pub fn expected_sample_alerts() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo().join("sample-logs/expected-alerts.tsv")).unwrap();
    let mut v: Vec<(String, String)> = text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (a, b) = l.split_once('\t').unwrap();
            (a.to_owned(), b.to_owned())
        })
        .collect();
    v.sort();
    v
}

/// The (rule, eventID) pairs of alerts printed as JSON Lines, in order.
pub fn printed_alert_pairs(jsonl: &str) -> Vec<(String, String)> {
    jsonl
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["rule"].as_str().unwrap().to_owned(),
                v["event_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Every YAML document of the rules shipped in rules/, with the file it
/// came from.
pub fn shipped_rule_docs() -> Vec<(std::path::PathBuf, serde_yaml_ng::Value)> {
    let mut docs = Vec::new();
    let mut stack = vec![repo().join("rules")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yml") {
                let text = std::fs::read_to_string(&p).unwrap();
                for doc in serde_yaml_ng::Deserializer::from_str(&text) {
                    docs.push((p.clone(), serde::Deserialize::deserialize(doc).unwrap()));
                }
            }
        }
    }
    docs
}

/// Names of the correlation rules shipped in rules/ (YAML documents with a
/// `correlation` key), read from the YAML itself.
pub fn shipped_correlation_names() -> Vec<String> {
    let mut names: Vec<String> = shipped_rule_docs()
        .into_iter()
        .filter(|(_, v)| v.get("correlation").is_some())
        .map(|(_, v)| v["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// The planted single-event alerts of sample-logs: expected-alerts.tsv
/// without its correlation alerts (what one worker finds on its own, and
/// what does not depend on the order objects are committed in).
pub fn expected_sample_single_event_alerts() -> Vec<(String, String)> {
    let corr = shipped_correlation_names();
    expected_sample_alerts()
        .into_iter()
        .filter(|(rule, _)| !corr.contains(rule))
        .collect()
}

/// The stored single-event alerts of a data dir: (rule_name, event_id), sorted.
pub fn single_event_alert_pairs(data: &Path) -> Vec<(String, String)> {
    query_pairs(
        data,
        "SELECT rule_name, event_id FROM alerts WHERE group_key IS NULL ORDER BY 1, 2",
    )
}

/// What holds for correlation alerts whatever the commit order: each alert's
/// key event is one of its contributing events, and no event contributes to
/// two alerts of one correlation.
pub fn assert_correlation_alert_invariants(data: &Path) {
    let orphan = query_pairs(
        data,
        "SELECT rule_name, event_id FROM alerts a WHERE group_key IS NOT NULL AND NOT EXISTS \
         (SELECT 1 FROM json_each(a.contributing_events) j WHERE j.value = a.event_id)",
    );
    assert!(
        orphan.is_empty(),
        "key events not among the contributing events: {orphan:?}"
    );
    let twice = query_pairs(
        data,
        "SELECT a.rule_name, j.value FROM alerts a, json_each(a.contributing_events) j \
         WHERE a.group_key IS NOT NULL GROUP BY 1, 2 HAVING COUNT(*) > 1",
    );
    assert!(twice.is_empty(), "events counted in two correlation alerts: {twice:?}");
}

/// The sample-logs alerts of a run that does not commit in listing order
/// (the daemon takes objects in SQS's order, backfill as downloads finish):
/// the single-event alerts exactly; for the correlations, which event
/// completes a window depends on arrival order (a burst split across two
/// files completes on whichever file comes second), so: per correlation as
/// many alerts as expected-alerts.tsv lists (the generator checks that no
/// arrival order changes that), plus the invariants.
pub fn assert_sample_alerts_any_order(data: &Path) {
    assert_eq!(single_event_alert_pairs(data), expected_sample_single_event_alerts());
    let corr = shipped_correlation_names();
    let mut want: Vec<(String, String)> = Vec::new();
    for (rule, _) in expected_sample_alerts().into_iter().filter(|(r, _)| corr.contains(r)) {
        match want.iter_mut().find(|(r, _)| *r == rule) {
            Some((_, n)) => *n = (n.parse::<u32>().unwrap() + 1).to_string(),
            None => want.push((rule, "1".to_owned())),
        }
    }
    want.sort();
    let got = query_pairs(
        data,
        "SELECT rule_name, CAST(COUNT(*) AS TEXT) FROM alerts WHERE group_key IS NOT NULL GROUP BY 1 ORDER BY 1",
    );
    assert_eq!(got, want, "correlation alerts per rule");
    assert_correlation_alert_invariants(data);
}

/// One expected sample alert with what the alert filters look at, derived
/// from expected-alerts.tsv, the rules' `level` and the planted record
/// itself (a correlation alert carries its completing event's fields).
#[derive(Debug, Clone)]
pub struct SampleAlert {
    pub rule: String,
    pub event_id: String,
    /// 0 informational .. 4 critical.
    pub severity_rank: u8,
    pub event_time: String,
    pub account_id: String,
    pub principal_arn: String,
}

pub fn sample_alert_facts() -> Vec<SampleAlert> {
    use std::collections::HashMap;
    use std::io::Read;
    let mut levels: HashMap<String, u8> = HashMap::new();
    for (p, v) in shipped_rule_docs() {
        let name = v["name"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| p.file_stem().unwrap().to_string_lossy().into_owned());
        let rank = ["informational", "low", "medium", "high", "critical"]
            .iter()
            .position(|l| Some(*l) == v["level"].as_str())
            .unwrap_or_else(|| panic!("{}: {name} has no known level", p.display()));
        levels.insert(name, rank as u8);
    }
    let mut records: HashMap<String, serde_json::Value> = HashMap::new();
    for p in log_files(&repo().join("sample-logs")) {
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(&p).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        for r in doc.get("Records").and_then(|r| r.as_array()).into_iter().flatten() {
            records.insert(r["eventID"].as_str().unwrap().to_owned(), r.clone());
        }
    }
    expected_sample_alerts()
        .into_iter()
        .map(|(rule, event_id)| {
            let r = &records[&event_id];
            let account = r["recipientAccountId"]
                .as_str()
                .or(r["userIdentity"]["accountId"].as_str())
                .unwrap_or_default();
            SampleAlert {
                severity_rank: levels[&rule],
                event_time: r["eventTime"].as_str().unwrap().to_owned(),
                account_id: account.to_owned(),
                principal_arn: r["userIdentity"]["arn"].as_str().unwrap_or_default().to_owned(),
                rule,
                event_id,
            }
        })
        .collect()
}

/// How many records the sample-logs delivery files hold, counted here from
/// the files themselves (gunzip + JSON), independently of trailwatch.
pub fn sample_records() -> i64 {
    use std::io::Read;
    let mut n = 0;
    for p in log_files(&repo().join("sample-logs")) {
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(&p).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        if let Some(records) = doc.get("Records") {
            n += records.as_array().unwrap().len() as i64;
        }
    }
    n
}

/// How many alerts a scan of sample-logs must produce (expected-alerts.tsv).
pub fn sample_alert_count() -> i64 {
    expected_sample_alerts().len() as i64
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Every `.json.gz` file below `root`, sorted.
pub fn log_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".json.gz") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// SUM(events) over `activity`, through trailwatch's own query.
pub fn activity_total(data: &Path) -> i64 {
    let out = run(bin()
        .args(["query", "--format", "csv", "--data-dir"])
        .arg(data)
        .arg("SELECT SUM(events) AS n FROM activity"));
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).lines().nth(1).unwrap().trim().parse().unwrap_or(0)
}

/// A canonical dump of the activity table (through `trailwatch query`) for
/// exact comparisons.
pub fn activity_dump(data: &Path) -> String {
    let out = run(bin().args(["query", "--format", "csv", "--data-dir"]).arg(data).arg(
        "SELECT hour, account_id, aws_region, event_source, event_name, principal_arn, source_ip, user_agent_family, \
         error_code, read_only, events, first_seen, last_seen FROM activity \
         ORDER BY hour, account_id, aws_region, event_source, event_name, principal_arn, source_ip, user_agent_family, error_code, read_only",
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

/// Records of the objects the ledger has as processed.
pub fn records(data: &Path) -> i64 {
    count(
        data,
        "SELECT COALESCE(SUM(records), 0) FROM objects WHERE status = 'ok'",
    )
}

/// Runs a Python script (DuckDB, pyarrow: second readers of the Parquet
/// files) and returns its trimmed stdout.
pub fn duckdb(script: &str) -> String {
    let out = Command::new("python3").arg("-c").arg(script).output().expect("python3");
    assert!(
        out.status.success(),
        "duckdb script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Polls `f` every 250 ms until it holds; panics after `secs`.
pub fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A child process whose stdout and stderr are collected as they come (so
/// a chatty process never blocks on a full pipe, and a test can look at the
/// log while it runs).
pub struct Proc {
    pub child: Child,
    out: Arc<Mutex<String>>,
    err: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// How a [`Proc`] ended.
#[derive(Debug)]
pub struct Ended {
    /// The exit code; `None` when a signal ended it (SIGKILL, abort).
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Proc {
    pub fn spawn(cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let out = Arc::new(Mutex::new(String::new()));
        let err = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        type Pipe<'a> = (Box<dyn std::io::Read + Send>, &'a Arc<Mutex<String>>);
        let pipes: [Pipe<'_>; 2] = [
            (Box::new(child.stdout.take().unwrap()), &out),
            (Box::new(child.stderr.take().unwrap()), &err),
        ];
        for (pipe, buf) in pipes {
            let buf = buf.clone();
            readers.push(std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    let mut b = buf.lock().unwrap();
                    b.push_str(&line);
                    b.push('\n');
                }
            }));
        }
        Proc {
            child,
            out,
            err,
            readers,
        }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The log (stderr) so far.
    pub fn log(&self) -> String {
        self.err.lock().unwrap().clone()
    }

    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Like [`wait_until`], but a timeout shows the end of the log.
    pub fn wait_until(&mut self, what: &str, secs: u64, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !f() {
            if Instant::now() >= deadline || !self.running() {
                let log = self.log();
                let _ = std::fs::write("/tmp/proc-debug.log", &log);
                let tail: Vec<&str> = log.lines().rev().take(60).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                let how = if self.running() {
                    "timed out"
                } else {
                    "the process ended"
                };
                panic!("{how} waiting for {what}; the log ends with:\n{}", tail.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Waits up to `secs` for `needle` to appear in the log.
    pub fn wait_for_log(&mut self, needle: &str, secs: u64) {
        let err = self.err.clone();
        self.wait_until(&format!("`{needle}` in the log"), secs, || {
            err.lock().unwrap().contains(needle)
        });
    }

    /// Waits up to `secs` for `needle` to appear in the log more than
    /// `than` times.
    pub fn wait_for_more(&mut self, needle: &str, than: usize, secs: u64) {
        let err = self.err.clone();
        self.wait_until(&format!("`{needle}` more than {than} times in the log"), secs, || {
            err.lock().unwrap().matches(needle).count() > than
        });
    }

    pub fn signal(&self, sig: i32) {
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// SIGKILL, then the outcome.
    pub fn kill(mut self) -> Ended {
        let _ = self.child.kill();
        self.wait()
    }

    /// SIGTERM, then the outcome.
    pub fn terminate(self) -> Ended {
        self.signal(libc::SIGTERM);
        self.wait()
    }

    /// Waits for the process to end on its own.
    pub fn wait(mut self) -> Ended {
        use std::os::unix::process::ExitStatusExt;
        let status = self.child.wait().unwrap();
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        Ended {
            code: status.code(),
            signal: status.signal(),
            stdout: self.out.lock().unwrap().clone(),
            stderr: self.err.lock().unwrap().clone(),
        }
    }

    /// Waits up to `d` for the process to end; `None` if it is still running.
    pub fn wait_timeout(&mut self, d: Duration) -> Option<()> {
        let deadline = Instant::now() + d;
        while Instant::now() < deadline {
            if !self.running() {
                return Some(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        (!self.running()).then_some(())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `cmd` to completion and returns its output with the peak resident
/// set size of that child alone, in KiB (from wait4's rusage; getrusage's
/// RUSAGE_CHILDREN would mix in every other child of the test binary).
pub fn run_measured(cmd: &mut Command) -> (Output, u64) {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    #[expect(
        clippy::zombie_processes,
        reason = "reaped by wait4 below, which also gives its rusage"
    )]
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run trailwatch");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            r.read_to_end(&mut v).unwrap();
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    assert_eq!(r, pid, "wait4: {}", std::io::Error::last_os_error());
    let output = Output {
        status: std::process::ExitStatus::from_raw(status),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    (output, ru.ru_maxrss as u64)
}
