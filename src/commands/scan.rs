//! `trailwatch scan PATH...`: local files and folders through the pipeline.
//!
//! Threads: one walks the paths and consults the ledger, N workers read and
//! decode files and evaluate rules, and this thread commits outcomes to
//! SQLite in batches and prints new alerts. Channels are bounded, so memory
//! does not grow with the number of files.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use crossbeam_channel::{RecvTimeoutError, bounded};
use trailwatch::decode::{DEFAULT_MAX_OBJECT_BYTES, DecodeOptions};
use trailwatch::pipeline::{ObjectError, ObjectMeta, ObjectOutcome, Outcome, PipelineOptions, Worker};
use trailwatch::sources::SourceError;
use trailwatch::sources::local::{self, LocalFile};
use trailwatch::store::Store;

use super::committer::{BatchLimits, Committer};
use super::progress::Progress;
use super::{AggregateArgs, CorrelationArgs, DataDirArgs, RuleArgs};
use crate::output::{AlertFormat, AlertWriter};

#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// CloudTrail files or folders (recursive): `{"Records":[...]}` as .json
    /// or .json.gz, or NDJSON. Gzip is detected from the content.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    rules: RuleArgs,
    #[command(flatten)]
    correlation: CorrelationArgs,
    #[command(flatten)]
    data: DataDirArgs,
    /// Output format of the new alerts on stdout.
    #[arg(long, value_enum, default_value_t = AlertFormat::Table)]
    format: AlertFormat,
    /// Cap on the decompressed size of one object (e.g. 1GiB, 64MiB, 1000000).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_OBJECT_BYTES, value_parser = parse_bytes, env = "TRAILWATCH_MAX_OBJECT_BYTES")]
    max_object_bytes: u64,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Process files again even if the ledger has them unchanged.
    #[arg(long)]
    reprocess: bool,
    /// Evaluate Insights records too (skipped by default).
    #[arg(long)]
    include_insights: bool,
    /// Objects committed per SQLite transaction (at most; a batch is also
    /// committed every 500 ms).
    #[arg(long, value_name = "N", default_value_t = 256, hide = true)]
    batch_objects: usize,
    /// Longest time between two commits, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 500, hide = true)]
    commit_interval_ms: u64,
    #[command(flatten)]
    aggregates: AggregateArgs,
}

/// Parses `1GiB`, `64MiB`, `10KB`, `1000`.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size such as 1GiB or 1000000"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        other => return Err(format!("unknown size unit `{other}`")),
    };
    Ok((n * mult as f64) as u64)
}

/// What the walker and workers send to the committing thread.
/// Releases outcomes in sequence order. Past `MAX_HELD` held outcomes (one
/// object far slower than the rest) it releases the oldest held anyway:
/// memory stays bounded, at the cost of ordering in that rare case.
#[derive(Default)]
struct Reorder {
    next: u64,
    held: std::collections::BTreeMap<u64, ObjectOutcome>,
}

impl Reorder {
    const MAX_HELD: usize = 1024;

    fn put(&mut self, seq: u64, oc: ObjectOutcome) -> Vec<ObjectOutcome> {
        self.held.insert(seq, oc);
        let mut out = Vec::new();
        while let Some(oc) = self.held.remove(&self.next) {
            out.push(oc);
            self.next += 1;
        }
        while self.held.len() > Self::MAX_HELD {
            let (seq, oc) = self.held.pop_first().expect("non-empty");
            tracing::debug!(seq, waiting_for = self.next, "releasing an outcome out of order");
            out.push(oc);
            self.next = self.next.max(seq + 1);
        }
        out
    }
}

#[expect(
    clippy::large_enum_variant,
    reason = "nearly every message is an `Object`: boxing it would cost an allocation per object to shrink the rare ones"
)]
enum Done {
    /// A processed file, its position in the listing, and its weight in
    /// the [`InFlight`] budget.
    Object(u64, ObjectOutcome, usize),
    /// A digest file, skipped without reading.
    Digest,
    /// In the ledger with the same size and mtime: not read again.
    Unchanged,
    /// Could not even be listed.
    SourceFailed(SourceError),
}

/// Outcomes the workers may finish ahead of the committing thread...
const DONE_QUEUE_OBJECTS: usize = 256;
/// ...and their weight: with a broad rule pack an outcome carries hundreds
/// of alerts with their raw events, and 256 of them would be 150 MB.
const DONE_QUEUE_BYTES: usize = 48 << 20;

/// The bytes of the outcomes sent to the committing thread and not yet
/// received: a worker waits before sending while the budget is spent,
/// unless nothing is in flight (an outcome larger than the budget still
/// goes through). The committing thread frees an outcome's bytes as soon
/// as it receives it, so a worker never waits on outcomes that are held
/// for ordering, and the two cannot deadlock.
struct InFlight {
    used: std::sync::Mutex<usize>,
    freed: std::sync::Condvar,
    cap: usize,
}

impl InFlight {
    fn new(cap: usize) -> InFlight {
        InFlight {
            used: std::sync::Mutex::new(0),
            freed: std::sync::Condvar::new(),
            cap,
        }
    }

    fn acquire(&self, bytes: usize) {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        while *used > 0 && *used + bytes > self.cap {
            used = self.freed.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used += bytes;
    }

    fn release(&self, bytes: usize) {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        *used = used.saturating_sub(bytes);
        self.freed.notify_all();
    }
}

pub fn run(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let rules = Arc::new(args.rules.load()?);
    let store = Store::open(&args.data.data_dir).context("cannot open the alert store")?;
    tracing::info!(rules = rules.len(), source = %args.rules.describe(), data_dir = %args.data.data_dir.display(), "scan starting");

    let stop = super::stop_on_interrupt("files");

    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let (todo_tx, todo_rx) = bounded::<(u64, LocalFile)>(threads * 4);
    // Deep enough that the workers keep going while this thread is busy
    // with a commit or a Parquet flush (a few hundred ms at most): a
    // shallow queue stalls every worker for the length of each flush. An
    // outcome holds an object's alerts and activity rows, tens of KB.
    let (done_tx, done_rx) = bounded::<Done>(DONE_QUEUE_OBJECTS);

    // Walker: lists files, skips digests and unchanged ones.
    let found = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let walk_done = Arc::new(AtomicBool::new(false));
    let walker = {
        let found = found.clone();
        let walk_done = walk_done.clone();
        let done_tx = done_tx.clone();
        let paths = args.paths.clone();
        let stop = stop.clone();
        let reprocess = args.reprocess;
        let ledger = Store::open_read_only(&args.data.data_dir).context("cannot open the ledger")?;
        std::thread::Builder::new().name("walk".into()).spawn(move || {
            let mut seq = 0u64;
            for item in local::walk(&paths) {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                found.fetch_add(1, Ordering::Relaxed);
                let msg = match item {
                    Err(e) => Done::SourceFailed(e),
                    Ok(f) if f.digest => Done::Digest,
                    Ok(f) => {
                        let name = f.path.display().to_string();
                        let unchanged = !reprocess
                            && matches!(ledger.ledger_entry(&name), Ok(Some(e))
                                if e.size == f.size && e.mtime_ns == f.mtime_ns && e.status != "failed");
                        if unchanged {
                            Done::Unchanged
                        } else {
                            if todo_tx.send((seq, f)).is_err() {
                                break;
                            }
                            seq += 1;
                            continue;
                        }
                    }
                };
                if done_tx.send(msg).is_err() {
                    break;
                }
            }
            walk_done.store(true, Ordering::SeqCst);
        })?
    };

    let opts = PipelineOptions {
        max_object_bytes: args.max_object_bytes,
        decode: DecodeOptions {
            include_insights: args.include_insights,
        },
    };
    let in_flight = Arc::new(InFlight::new(DONE_QUEUE_BYTES));
    let mut workers = Vec::new();
    for i in 0..threads {
        let todo_rx = todo_rx.clone();
        let done_tx = done_tx.clone();
        let rules = rules.clone();
        let stop = stop.clone();
        let in_flight = in_flight.clone();
        workers.push(std::thread::Builder::new().name(format!("worker-{i}")).spawn(move || {
            let mut worker = Worker::new(rules, opts);
            let mut raw = Vec::new();
            for (seq, f) in todo_rx {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let outcome = process_file(&mut worker, &mut raw, f);
                let bytes = outcome.approx_bytes();
                in_flight.acquire(bytes);
                if done_tx.send(Done::Object(seq, outcome, bytes)).is_err() {
                    break;
                }
            }
        })?);
    }
    drop(done_tx);
    drop(todo_rx);

    let writer = AlertWriter::stdout(args.format);
    let mut committer = Committer::new(
        store,
        args.aggregates.open(&args.data.data_dir),
        writer,
        args.aggregates.flush_rows,
        rules.clone(),
        args.correlation.limits(),
    )?
    .with_limits(BatchLimits {
        max_objects: args.batch_objects,
        max_wait: Duration::from_millis(args.commit_interval_ms),
        ..BatchLimits::default()
    });
    let mut progress = Progress::new();
    let mut listed = 0;
    // Outcomes are committed in listing order, whatever order the workers
    // finish in, so that correlation windows (which consume events in
    // arrival order) give the same alerts with any number of threads, and a
    // resumed scan continues exactly where the interrupted one stopped.
    let mut in_order = Reorder::default();
    loop {
        let f = found.load(Ordering::Relaxed);
        if f > listed {
            progress.add_total(f - listed);
            listed = f;
        }
        if walk_done.load(Ordering::SeqCst) {
            progress.listing_finished();
        }
        progress.update(&committer.totals);
        match done_rx.recv_timeout(Duration::from_millis(200)) {
            Ok(Done::Object(seq, oc, bytes)) => {
                in_flight.release(bytes);
                for oc in in_order.put(seq, oc) {
                    committer.push(oc);
                }
            }
            Ok(Done::Digest) => {
                committer.totals.objects += 1;
                committer.totals.digests += 1;
            }
            Ok(Done::Unchanged) => {
                committer.totals.objects += 1;
                committer.totals.unchanged += 1;
            }
            Ok(Done::SourceFailed(e)) => {
                let meta = ObjectMeta {
                    name: e.object(),
                    size: 0,
                    mtime_ns: None,
                    fingerprint: String::new(),
                    message_id: None,
                };
                committer.push(ObjectOutcome {
                    meta,
                    outcome: Outcome::Failed(ObjectError::Source(e)),
                });
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                // Interrupted: outcomes behind an object that never finished
                // are not committed, so that the next run processes them in
                // order (nothing is lost: they are not in the ledger).
                let held = in_order.held.len();
                if held > 0 {
                    tracing::info!(
                        objects = held,
                        "not committing objects that finished after an unfinished one; the next run processes them"
                    );
                }
                break;
            }
        }
        if committer.due() {
            committer.commit()?;
        }
    }
    let (store, totals) = committer.finish()?;
    progress.finish();
    let _ = walker.join();
    for w in workers {
        let _ = w.join();
    }

    let total_alerts = store.alert_count()?;
    totals.report("scanned", "unchanged", total_alerts, started.elapsed().as_secs_f64());
    // "scanned 0 objects" alone reads like success; a path one level off,
    // or an empty mount, should be visible.
    if totals.objects == 0 && !stop.load(Ordering::SeqCst) {
        tracing::warn!(paths = ?args.paths, "found no files to scan under these paths");
    }
    if stop.load(Ordering::SeqCst) {
        eprintln!("trailwatch: interrupted; run the same command again to continue");
        return Ok(ExitCode::from(130));
    }
    Ok(if totals.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn process_file(worker: &mut Worker, raw: &mut Vec<u8>, f: LocalFile) -> ObjectOutcome {
    let name = f.path.display().to_string();
    raw.clear();
    let read = std::fs::File::open(&f.path).and_then(|mut file| file.read_to_end(raw));
    let mut meta = ObjectMeta {
        name,
        size: f.size,
        mtime_ns: f.mtime_ns,
        fingerprint: String::new(),
        message_id: None,
    };
    if let Err(source) = read {
        return ObjectOutcome {
            meta,
            outcome: Outcome::Failed(ObjectError::Source(SourceError::Io { path: f.path, source })),
        };
    }
    if let Some(d) = trailwatch::testhook::slow_object() {
        // Test-only: stands in for a huge file.
        std::thread::sleep(d);
    }
    meta.fingerprint = format!("blake3:{}", blake3::hash(raw).to_hex());
    worker.process_buffered(meta, &raw[..])
}

#[cfg(test)]
mod tests {
    use super::{InFlight, parse_bytes};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn in_flight_lets_an_outcome_larger_than_the_budget_through_alone_and_holds_the_next() {
        let budget = Arc::new(InFlight::new(10));
        // Nothing in flight: an outcome over the whole budget still goes.
        budget.acquire(100);
        let (tx, rx) = std::sync::mpsc::channel();
        let waiting = {
            let budget = budget.clone();
            std::thread::spawn(move || {
                budget.acquire(1);
                tx.send(()).unwrap();
            })
        };
        // The budget is spent: the second one waits (for as long as it
        // takes; this only looks for a while)...
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(200)),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout)
        );
        // ...until the committing thread receives the first.
        budget.release(100);
        rx.recv_timeout(Duration::from_secs(30)).unwrap();
        waiting.join().unwrap();
        assert_eq!(*budget.used.lock().unwrap(), 1);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_bytes("64MiB"), Ok(64 << 20));
        assert_eq!(parse_bytes("1000"), Ok(1000));
        assert!(parse_bytes("ten").is_err());
    }
}
