//! Crash consistency: `daemon`, `backfill` and `scan` are killed (SIGKILL at
//! random moments, and aborts at the test hooks that sit in the windows that
//! matter) again and again over a corpus of 240 objects, restarted each
//! time until the work is done, and the final store is compared with the
//! store of one clean, uninterrupted run over the same objects: the same
//! alerts, none twice, every object in the ledger exactly once, the same
//! activity table, and an exactly-once Parquet copy of the alerts. After
//! every kill, `trailwatch query` must already give exact totals.
//!
//! The kill schedule is random but seeded: the seed is printed, and
//! `TRAILWATCH_CRASH_SEED=<n>` replays it.

mod common;
#[path = "common/moto.rs"]
mod moto;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;
use moto::{Env, objects_ok};

/// Random-moment SIGKILLs per command.
const TIMED_KILLS: usize = 20;
/// Objects in the corpus.
const OBJECTS: usize = 240;
/// Per-object delay (ms) that keeps objects in flight when a kill lands, and
/// work left for every round (240 objects, 2 at a time: about 70 s of work,
/// more than the rounds get through; the run after the kills goes at full
/// speed).
const SLOW_MS: &str = "600";

fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| {
        let seed = match std::env::var("TRAILWATCH_CRASH_SEED") {
            Ok(s) => s.trim().parse().expect("TRAILWATCH_CRASH_SEED must be a number"),
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64,
        };
        eprintln!("crash tests: seed {seed} (TRAILWATCH_CRASH_SEED={seed} replays this run)");
        seed
    })
}

/// A per-test random stream from the shared seed.
fn rng(salt: &str) -> fastrand::Rng {
    fastrand::Rng::with_seed(seed() ^ u64::from_str_radix(&blake3::hash(salt.as_bytes()).to_hex()[..16], 16).unwrap())
}

// ---------------------------------------------------------------------------
// The corpus

struct Corpus {
    /// (key, gzipped `{"Records":[...]}`), sorted by key.
    objects: Vec<(String, Vec<u8>)>,
    records: i64,
}

fn read_records(text: &str) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    v["Records"].as_array().cloned().unwrap()
}

fn gunzip(data: &[u8]) -> String {
    use std::io::Read;
    let mut s = String::new();
    flate2::read::MultiGzDecoder::new(data).read_to_string(&mut s).unwrap();
    s
}

/// 240 small CloudTrail objects, the same on every run: the records of
/// sample-logs (with its planted alerts) and of the invictus-ir attack
/// simulation (accounts rewritten to fictional ones), shuffled and cut into
/// delivery files laid out as a trail writes them.
fn corpus() -> &'static Corpus {
    static CORPUS: OnceLock<Corpus> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let mut pool: Vec<String> = Vec::new();
        for f in log_files(&repo().join("sample-logs")) {
            if f.to_string_lossy().contains("Digest") {
                continue;
            }
            let text = gunzip(&std::fs::read(&f).unwrap());
            pool.extend(read_records(&text).iter().map(|r| r.to_string()));
        }
        let invictus = shared().join("datasets/invictus-ir_aws_dataset");
        let mut files: Vec<PathBuf> = walkdir(&invictus)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        assert!(files.len() > 40, "invictus-ir dataset missing under {}", invictus.display());
        let fictional = ["444455556666", "111122223333", "555566667777", "777788889999"];
        let mut accounts: Vec<String> = Vec::new();
        let mut records = Vec::new();
        for f in files {
            for r in read_records(&std::fs::read_to_string(&f).unwrap()) {
                for a in [&r["recipientAccountId"], &r["userIdentity"]["accountId"]] {
                    if let Some(a) = a.as_str()
                        && a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()) && !accounts.iter().any(|x| x == a) {
                            accounts.push(a.to_owned());
                        }
                }
                records.push(r.to_string());
            }
        }
        assert!(accounts.len() <= fictional.len(), "{} accounts", accounts.len());
        for mut r in records {
            for (real, fake) in accounts.iter().zip(fictional) {
                r = r.replace(real.as_str(), fake);
            }
            pool.push(r);
        }
        // One record per eventID, so that every alert has one source object.
        let mut seen = std::collections::HashSet::new();
        pool.retain(|r| {
            let v: serde_json::Value = serde_json::from_str(r).unwrap();
            seen.insert(v["eventID"].as_str().unwrap_or_default().to_owned())
        });
        fastrand::Rng::with_seed(0x7a11_c0de).shuffle(&mut pool);
        let n = pool.len();
        let mut objects = Vec::new();
        for i in 0..OBJECTS {
            let chunk = &pool[i * n / OBJECTS..(i + 1) * n / OBJECTS];
            let body = format!("{{\"Records\":[{}]}}", chunk.join(","));
            let acct = ["111122223333", "444455556666"][i % 2];
            let region = ["us-east-1", "eu-west-1"][(i / 2) % 2];
            let day = 1 + (i / 4) % 6;
            let (hh, mm) = ((i * 7) % 24, (i * 13) % 60);
            let key = format!(
                "AWSLogs/{acct}/CloudTrail/{region}/2026/10/{day:02}/{acct}_CloudTrail_{region}_202610{day:02}T{hh:02}{mm:02}Z_c{i:04}.json.gz"
            );
            objects.push((key, gzip(body.as_bytes())));
        }
        objects.sort();
        Corpus {
            objects,
            records: n as i64,
        }
    })
}

fn walkdir(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn keys() -> Vec<String> {
    corpus().objects.iter().map(|(k, _)| k.clone()).collect()
}

/// The corpus as files under `root` (for `scan`).
fn write_corpus(root: &Path) {
    for (key, body) in &corpus().objects {
        let p = root.join(key);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
}

// ---------------------------------------------------------------------------
// What a store holds, for comparisons

fn ro(data: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(data.join("alerts.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

fn rows(data: &Path, sql: &str) -> Vec<String> {
    let c = ro(data);
    let mut st = c.prepare(sql).unwrap();
    let n = st.column_count();
    st.query_map([], |r| {
        let mut cols = Vec::with_capacity(n);
        for i in 0..n {
            cols.push(match r.get_ref(i)? {
                rusqlite::types::ValueRef::Null => "NULL".to_owned(),
                rusqlite::types::ValueRef::Integer(v) => v.to_string(),
                rusqlite::types::ValueRef::Real(v) => v.to_string(),
                rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                rusqlite::types::ValueRef::Blob(b) => format!("{b:?}"),
            });
        }
        Ok(cols.join("|"))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Everything that must come out the same whether or not the runs were
/// interrupted.
#[derive(Debug, PartialEq)]
struct Snapshot {
    /// The whole alerts table but its row id and detection time, for
    /// single-event rules. Correlation alerts depend on the order events
    /// arrive in (the daemon's is SQS's), so two clean runs may already
    /// differ; what must hold for them after crashes is that no event is
    /// counted twice (`correlation_double_counted`).
    alerts: Vec<String>,
    /// (correlation, eventID) pairs that contributed to more than one alert.
    correlation_double_counted: Vec<String>,
    /// (rule, eventID) pairs stored more than once.
    duplicate_alerts: Vec<String>,
    /// The ledger: name, status, records, alerts, size, fingerprint.
    objects: Vec<String>,
    failures: Vec<String>,
    /// `trailwatch query` over activity, every row.
    activity: String,
    activity_total: i64,
    /// The Parquet copy of the alerts: (rule|eventID, copies).
    parquet_alerts: Vec<String>,
    staged_rows: Vec<String>,
}

fn snapshot(data: &Path) -> Snapshot {
    let root = data.join("aggregates/alerts");
    let correlations = rows(
        data,
        "SELECT DISTINCT rule_name FROM alerts WHERE group_key IS NOT NULL",
    );
    let parquet_alerts = if root.exists() {
        duckdb(&format!(
            "import duckdb\n\
             for k, n in duckdb.sql(\"SELECT rule_name || '|' || event_id, COUNT(*) FROM read_parquet('{}/*/*.parquet') GROUP BY 1 ORDER BY 1\").fetchall(): print(k + '|' + str(n))",
            root.display()
        ))
        .lines()
        .filter(|l| !correlations.iter().any(|c| l.starts_with(&format!("{c}|"))))
        .map(str::to_owned)
        .collect()
    } else {
        Vec::new()
    };
    Snapshot {
        alerts: rows(
            data,
            "SELECT rule_name, event_id, rule_id, title, severity, event_time, event_name, event_source, aws_region, \
             account_id, principal_arn, principal_type, source_ip, user_agent, object, raw_event FROM alerts \
             WHERE group_key IS NULL ORDER BY 1, 2",
        ),
        correlation_double_counted: rows(
            data,
            "SELECT a.rule_name, j.value FROM alerts a, json_each(a.contributing_events) j \
             WHERE a.group_key IS NOT NULL GROUP BY 1, 2 HAVING COUNT(*) > 1",
        ),
        duplicate_alerts: rows(
            data,
            "SELECT rule_name, event_id FROM alerts GROUP BY 1, 2 HAVING COUNT(*) > 1",
        ),
        objects: rows(
            data,
            "SELECT name, status, records, alerts, size, fingerprint FROM objects ORDER BY name",
        ),
        failures: rows(data, "SELECT object, error FROM failures ORDER BY 1"),
        activity: activity_dump(data),
        activity_total: activity_total(data),
        parquet_alerts,
        staged_rows: rows(data, "SELECT COUNT(*) FROM activity_staging"),
    }
}

/// Asserts two stores hold the same, field by field, with small messages.
fn assert_same(what: &str, clean: &Snapshot, crashed: &Snapshot) {
    fn diff(a: &[String], b: &[String]) -> String {
        let only_a: Vec<_> = a.iter().filter(|x| !b.contains(x)).take(5).collect();
        let only_b: Vec<_> = b.iter().filter(|x| !a.contains(x)).take(5).collect();
        format!(
            "{} vs {} rows; only in the clean run: {only_a:?}; only after crashes: {only_b:?}",
            a.len(),
            b.len()
        )
    }
    assert!(
        crashed.duplicate_alerts.is_empty(),
        "{what}: duplicate alerts {:?}",
        crashed.duplicate_alerts
    );
    assert!(
        crashed.correlation_double_counted.is_empty(),
        "{what}: events counted in two correlation alerts {:?}",
        crashed.correlation_double_counted
    );
    assert!(
        clean.alerts == crashed.alerts,
        "{what}: alerts differ: {}",
        diff(&clean.alerts, &crashed.alerts)
    );
    assert!(
        clean.objects == crashed.objects,
        "{what}: ledgers differ: {}",
        diff(&clean.objects, &crashed.objects)
    );
    assert_eq!(clean.failures, crashed.failures, "{what}: failures differ");
    assert_eq!(
        clean.activity_total, crashed.activity_total,
        "{what}: activity totals differ"
    );
    assert!(
        clean.activity == crashed.activity,
        "{what}: activity tables differ: {}",
        diff(
            &clean.activity.lines().map(str::to_owned).collect::<Vec<_>>(),
            &crashed.activity.lines().map(str::to_owned).collect::<Vec<_>>()
        )
    );
    assert!(
        clean.parquet_alerts == crashed.parquet_alerts,
        "{what}: Parquet alert copies differ: {}",
        diff(&clean.parquet_alerts, &crashed.parquet_alerts)
    );
    assert_eq!(crashed.staged_rows, vec!["0".to_string()], "{what}: rows left staged");
}

/// What a clean run must give on its own terms: every object once and ok,
/// every record counted once, the planted alerts found, each alert once in
/// Parquet.
fn check_clean(what: &str, s: &Snapshot, object_name: impl Fn(&str) -> String) {
    let c = corpus();
    let names: Vec<String> = s
        .objects
        .iter()
        .map(|r| r.split('|').next().unwrap().to_owned())
        .collect();
    let mut want: Vec<String> = c.objects.iter().map(|(k, _)| object_name(k)).collect();
    want.sort();
    assert_eq!(names, want, "{what}: the ledger is not the corpus");
    assert!(s.objects.iter().all(|r| r.split('|').nth(1) == Some("ok")), "{what}");
    assert!(s.failures.is_empty(), "{what}: {:?}", s.failures);
    assert_eq!(s.activity_total, c.records, "{what}: activity total");
    let pairs: Vec<String> = s
        .alerts
        .iter()
        .map(|r| r.splitn(3, '|').take(2).collect::<Vec<_>>().join("|"))
        .collect();
    // The corpus shuffles sample-logs' records, so its planted correlation
    // scenarios fall apart; their single-event alerts must all be there.
    for (rule, id) in expected_sample_single_event_alerts() {
        assert!(
            pairs.contains(&format!("{rule}|{id}")),
            "{what}: planted alert {rule} {id} missing"
        );
    }
    assert!(pairs.len() > 14, "{what}: only {} alerts", pairs.len());
    let once: Vec<String> = pairs.iter().map(|p| format!("{p}|1")).collect();
    assert_eq!(s.parquet_alerts, once, "{what}: Parquet alerts");
    assert_eq!(s.staged_rows, vec!["0".to_string()]);
}

/// After a kill, before anything recovers: readers must already see exact
/// totals (committed objects' records, each once), and no alert twice.
fn check_after_kill(what: &str, data: &Path) {
    if !data.join("alerts.db").exists()
        || rows(
            data,
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'activity_staging'",
        ) != ["1"]
    {
        return;
    }
    let out = run(bin()
        .args(["query", "--format", "csv", "--data-dir"])
        .arg(data)
        .arg("SELECT COALESCE(SUM(events), 0) AS n FROM activity"));
    assert!(out.status.success(), "{what}: query after a kill: {}", stderr(&out));
    let total: i64 = stdout(&out).lines().nth(1).unwrap().trim().parse().unwrap_or(0);
    let recs: i64 = rows(
        data,
        "SELECT COALESCE(SUM(records), 0) FROM objects WHERE status = 'ok'",
    )[0]
    .parse()
    .unwrap();
    assert_eq!(total, recs, "{what}: activity seen by a reader right after the kill");
}

// ---------------------------------------------------------------------------
// The kill schedule

#[derive(Debug, Clone)]
enum Kill {
    /// SIGKILL this long after the start.
    At(Duration),
    /// Abort at the n-th time the hook point is reached.
    Hook(&'static str, u32),
}

/// `TIMED_KILLS` random moments and one abort per hook point, shuffled;
/// `late` hooks (those that need earlier rounds' output, or end a run) are
/// kept for the second half.
fn schedule(rng: &mut fastrand::Rng, early: &[&'static str], late: &[&'static str]) -> Vec<Kill> {
    let mut first = Vec::new();
    let mut second = Vec::new();
    for i in 0..TIMED_KILLS {
        let k = Kill::At(Duration::from_millis(rng.u64(150..2500)));
        if i < TIMED_KILLS / 2 {
            first.push(k)
        } else {
            second.push(k)
        }
    }
    for h in early {
        first.push(Kill::Hook(h, rng.u32(1..=3)));
    }
    for h in late {
        second.push(Kill::Hook(h, 1));
    }
    rng.shuffle(&mut first);
    rng.shuffle(&mut second);
    first.extend(second);
    first
}

/// Tally of what the kills hit.
#[derive(Default, Debug)]
struct Tally {
    timed: usize,
    hooks: BTreeMap<&'static str, usize>,
    /// Timed kills that found the process already finished.
    missed: usize,
}

impl Tally {
    fn report(&self, what: &str, started: Instant, left: i64) {
        eprintln!(
            "{what}: seed {}: {} SIGKILLs at random moments ({} found it already done), hook aborts {:?}; \
             {left} of {OBJECTS} objects left for the run after the kills; same end state as the clean run; {:.1} s",
            seed(),
            self.timed,
            self.missed,
            self.hooks,
            started.elapsed().as_secs_f64()
        );
    }
}

/// Runs one round: starts the process, kills it as scheduled. Returns true
/// when the process was killed (or aborted at its hook).
fn round(what: &str, kill: &Kill, mut cmd: Command, tally: &mut Tally, finished: impl Fn(&Ended) -> bool) -> bool {
    if let Kill::Hook(point, n) = kill {
        cmd.env("TRAILWATCH_TEST_ABORT_AT", format!("{point}:{n}"));
    }
    let mut p = Proc::spawn(&mut cmd);
    match kill {
        Kill::At(d) => {
            if p.wait_timeout(*d).is_some() {
                let e = p.wait();
                assert!(finished(&e), "{what}: ended by itself before its kill: {e:?}");
                tally.missed += 1;
                return false;
            }
            let e = p.kill();
            assert_eq!(e.signal, Some(libc::SIGKILL), "{what}: {e:?}");
            tally.timed += 1;
            true
        }
        Kill::Hook(point, _) => {
            // A hook round runs until the hook fires (or the work is done).
            let timeout = Duration::from_secs(120);
            if p.wait_timeout(timeout).is_none() {
                let e = p.kill();
                panic!("{what}: hook {point} did not fire within {timeout:?}: {}", e.stderr);
            }
            let e = p.wait();
            if e.stderr.contains(&format!("test hook: aborting at {point}")) {
                assert_eq!(e.signal, Some(libc::SIGABRT), "{what}: {e:?}");
                *tally.hooks.entry(point).or_default() += 1;
                true
            } else {
                assert!(finished(&e), "{what}: hook {point}: {e:?}");
                false
            }
        }
    }
}

// ---------------------------------------------------------------------------
// daemon

#[test]
fn daemon_killed_again_and_again_ends_like_a_clean_run() {
    let started = Instant::now();
    let mut rng = rng("daemon");
    let c = corpus();
    let env = Env::new(2, false);
    for (k, body) in &c.objects {
        env.put(k, body.clone());
    }
    let daemon_args = [
        "--concurrency",
        "2",
        "--visibility-timeout-secs",
        "2",
        "--flush-interval-secs",
        "1",
        "--compact-interval-secs",
        "1",
    ];

    // The clean run.
    let clean = tempfile::tempdir().unwrap();
    env.notify(&keys());
    let d = env.start_daemon(clean.path(), &daemon_args, &[]);
    wait_until("the clean run", 300, || objects_ok(clean.path()) == OBJECTS as i64);
    wait_until("an empty queue", 60, || env.queue_depth() == (0, 0));
    let e = d.terminate();
    assert_eq!(e.code, Some(0), "{}", e.stderr);
    let clean_snap = snapshot(clean.path());
    check_clean("daemon clean run", &clean_snap, |k| format!("s3://trail/{k}"));

    // The same notifications again, for the run that is killed.
    let data = tempfile::tempdir().unwrap();
    env.notify(&keys());
    let kills = schedule(
        &mut rng,
        &[
            "mid_download",
            "mid_decode",
            "before_commit",
            "after_commit",
            "before_delete",
            "flush_begun",
            "flush_written",
        ],
        &["compact_begun", "compact_written"],
    );
    let mut tally = Tally::default();
    for (i, kill) in kills.iter().enumerate() {
        let what = format!("daemon round {i} ({kill:?})");
        let cmd = env.daemon_command_via(
            &env.moto.endpoint(),
            data.path(),
            &daemon_args,
            &[("TRAILWATCH_TEST_SLOW_OBJECT_MS", SLOW_MS)],
        );
        // The daemon never ends by itself.
        round(&what, kill, cmd, &mut tally, |_| false);
        check_after_kill(&what, data.path());
    }
    let left = OBJECTS as i64 - objects_ok(data.path());
    // Restarted once more, it drains the queue.
    let d = env.start_daemon(data.path(), &daemon_args, &[]);
    wait_until("the queue drained after the kills", 300, || {
        objects_ok(data.path()) == OBJECTS as i64 && env.queue_depth() == (0, 0)
    });
    let e = d.terminate();
    assert_eq!(e.code, Some(0), "{}", e.stderr);
    assert_eq!(tally.timed, TIMED_KILLS, "{tally:?}");
    assert_eq!(tally.hooks.len(), 9, "every hook point fired: {tally:?}");
    assert_same("daemon", &clean_snap, &snapshot(data.path()));
    tally.report("daemon", started, left);
}

// ---------------------------------------------------------------------------
// backfill

fn backfill_command(env: &Env, data: &Path, env_vars: &[(&str, &str)]) -> Command {
    let mut c = bin();
    c.args([
        "backfill",
        "s3://trail",
        "--endpoint-url",
        &env.moto.endpoint(),
        "--force-path-style",
        "--format",
        "jsonl",
        "--concurrency",
        "2",
        "--flush-rows",
        "200",
    ])
    .arg("--data-dir")
    .arg(data)
    .env("AWS_ACCESS_KEY_ID", "testing")
    .env("AWS_SECRET_ACCESS_KEY", "testing")
    .env("AWS_REGION", "us-east-1")
    .env("AWS_EC2_METADATA_DISABLED", "true");
    for (k, v) in env_vars {
        c.env(k, v);
    }
    c
}

#[test]
fn backfill_killed_again_and_again_ends_like_a_clean_run() {
    let started = Instant::now();
    let mut rng = rng("backfill");
    let c = corpus();
    let env = Env::new(30, false);
    for (k, body) in &c.objects {
        env.put(k, body.clone());
    }
    let clean = tempfile::tempdir().unwrap();
    let out = run(&mut backfill_command(&env, clean.path(), &[]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let clean_snap = snapshot(clean.path());
    check_clean("backfill clean run", &clean_snap, |k| format!("s3://trail/{k}"));

    let data = tempfile::tempdir().unwrap();
    let kills = schedule(
        &mut rng,
        &[
            "mid_download",
            "mid_decode",
            "before_commit",
            "after_commit",
            "flush_begun",
            "flush_written",
        ],
        &[],
    );
    let mut tally = Tally::default();
    let done = |e: &Ended| e.code == Some(0);
    for (i, kill) in kills.iter().enumerate() {
        let what = format!("backfill round {i} ({kill:?})");
        let cmd = backfill_command(&env, data.path(), &[("TRAILWATCH_TEST_SLOW_OBJECT_MS", SLOW_MS)]);
        round(&what, kill, cmd, &mut tally, done);
        check_after_kill(&what, data.path());
    }
    // Resumed once more, it finishes.
    let left = OBJECTS as i64 - objects_ok(data.path());
    let out = run(&mut backfill_command(&env, data.path(), &[]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(tally.hooks.len(), 6, "every hook point fired: {tally:?}");
    assert_eq!(tally.timed, TIMED_KILLS, "{tally:?}");
    assert_same("backfill", &clean_snap, &snapshot(data.path()));
    tally.report("backfill", started, left);
}

// ---------------------------------------------------------------------------
// scan

#[test]
fn scan_killed_again_and_again_ends_like_a_clean_run() {
    let started = Instant::now();
    let mut rng = rng("scan");
    let logs = tempfile::tempdir().unwrap();
    write_corpus(logs.path());
    // Small batches and flushes, so that kills land in flushes too.
    let scan = |data: &Path, slow: bool| {
        let mut c = bin();
        c.args([
            "scan",
            "--format",
            "jsonl",
            "--threads",
            "2",
            "--batch-objects",
            "8",
            "--flush-rows",
            "200",
            "--data-dir",
        ])
        .arg(data)
        .arg(logs.path());
        if slow {
            c.env("TRAILWATCH_TEST_SLOW_OBJECT_MS", SLOW_MS);
        }
        c
    };
    let clean = tempfile::tempdir().unwrap();
    let out = run(&mut scan(clean.path(), false));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let clean_snap = snapshot(clean.path());
    let root = logs.path().to_path_buf();
    check_clean("scan clean run", &clean_snap, |k| root.join(k).display().to_string());

    let data = tempfile::tempdir().unwrap();
    let kills = schedule(
        &mut rng,
        &[
            "mid_decode",
            "before_commit",
            "after_commit",
            "flush_begun",
            "flush_written",
        ],
        &[],
    );
    let mut tally = Tally::default();
    for (i, kill) in kills.iter().enumerate() {
        let what = format!("scan round {i} ({kill:?})");
        round(&what, kill, scan(data.path(), true), &mut tally, |e| e.code == Some(0));
        check_after_kill(&what, data.path());
    }
    let left = OBJECTS as i64 - objects_ok(data.path());
    let out = run(&mut scan(data.path(), false));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(tally.hooks.len(), 5, "every hook point fired: {tally:?}");
    assert_eq!(tally.timed, TIMED_KILLS, "{tally:?}");
    assert_same("scan", &clean_snap, &snapshot(data.path()));
    tally.report("scan", started, left);
}
