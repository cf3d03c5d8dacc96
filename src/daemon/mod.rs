//! `trailwatch daemon`: SQS-notified ingestion of CloudTrail objects from
//! S3, at least once, nothing lost, nothing stored twice.
//!
//! # Design note
//!
//! Four kinds of task share the work:
//!
//! * the **receiver** long-polls SQS (up to 10 messages, 20 s wait) while
//!   fewer than `4 × concurrency` messages are in flight;
//! * the **coordinator** (this module's loop) owns every in-flight message's
//!   state: its receipt handle, how many of its objects are still pending,
//!   whether one failed for good (poison) or transiently, and its visibility
//!   deadline. It dispatches object jobs, extends visibility on a heartbeat,
//!   and deletes a message only when all its objects are committed;
//! * **object jobs** (at most `concurrency` at once) check the ledger, fetch
//!   with retries, and decode and evaluate on the blocking pool;
//! * the **store thread** owns the SQLite connection, commits outcomes in
//!   batches, flushes and compacts aggregates on timers, and only then
//!   reports each object as committed to the coordinator.
//!
//! So the order of durability is: object results committed (alerts, ledger
//! row and aggregate rows in one transaction) → message deleted. A crash
//! anywhere leads to redelivery, and the ledger makes redelivery harmless.
//! The heartbeat extends a message's visibility while any of its objects is
//! still in progress, so a slow object is never processed twice at once.

pub mod config;
pub mod events;
mod http;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc, watch};

pub use config::{DaemonConfig, PlaceholderSetting, PoisonPolicy};
use events::{
    InternalEvent, MessageDeleted, MessageLeft, MessageReceived, Metrics, ObjectFailed, ObjectSkipped, RuleLabels,
    VisibilityExtended,
};

use crate::ingest::{IngestResult, S3Ingest};
use crate::pipeline::{ObjectOutcome, Outcome, PipelineOptions};
use crate::rules::RuleSet;
use crate::sources::notification::{self, Notification, ObjectRef};
use crate::sources::s3::{self, AwsOptions};
use crate::sources::sqs::{self, Received};
use crate::store::{Aggregates, FailureRecord, Store, StoreError};
use crate::testhook;

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the store thread panicked (see the log); nothing it had not committed was acknowledged")]
    StorePanicked,
    #[error("metrics listener on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Totals reported when the daemon stops.
#[derive(Debug, Default, Clone)]
pub struct DaemonStats {
    pub messages_deleted: u64,
    pub objects_committed: u64,
    pub records: u64,
    pub new_alerts: u64,
}

struct MessageState {
    receipt: String,
    pending: usize,
    poisoned: bool,
    transient: bool,
    deadline: Instant,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// What finished for one object of one message.
struct Done {
    message_id: String,
    kind: DoneKind,
}

enum DoneKind {
    Committed { failed: bool },
    Skipped,
    Transient,
}

struct StoreJob {
    message_id: String,
    outcome: ObjectOutcome,
    started: Instant,
}

struct Shared {
    cfg: DaemonConfig,
    metrics: Arc<Metrics>,
    key_re: regex::Regex,
    ingest: Arc<S3Ingest>,
    store_tx: crossbeam_channel::Sender<StoreJob>,
    /// Messages refused before any object was fetched (a body that is not a
    /// notification, a bucket not allowed); the store thread records them in
    /// `failures`. Unbounded so that the coordinator never blocks on it.
    fail_tx: crossbeam_channel::Sender<FailureRecord>,
}

/// Runs until `shutdown` turns true, then drains in-flight work and returns.
pub async fn run(
    cfg: DaemonConfig,
    rules: Arc<RuleSet>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<DaemonStats, DaemonError> {
    if cfg.queue_url.is_empty() {
        return Err(DaemonError::Config(
            "queue_url is required (--queue-url or TRAILWATCH_QUEUE_URL)".into(),
        ));
    }
    let key_re = regex::Regex::new(&cfg.key_pattern)
        .map_err(|e| DaemonError::Config(format!("key_pattern `{}`: {e}", cfg.key_pattern)))?;
    let concurrency = cfg.concurrency.max(1);
    let request_timeout = Duration::from_secs(cfg.request_timeout_secs.max(1));
    let aws = AwsOptions {
        region: cfg.region.clone(),
        endpoint_url: cfg.endpoint_url.clone(),
        force_path_style: cfg.force_path_style,
        request_timeout: Some(request_timeout),
    };
    let sdk = s3::sdk_config(&aws).await;
    let s3c = s3::s3_client(&sdk, &aws);
    // A receive waits up to `wait_time_secs` for messages by design.
    let sqsc = sqs::sqs_client(&sdk, request_timeout + Duration::from_secs(cfg.wait_time_secs.min(20)));
    let metrics = Arc::new(Metrics::default());

    // The store thread.
    let store = Store::open(&cfg.data_dir)?;
    let (store_tx, store_rx) = crossbeam_channel::bounded::<StoreJob>(concurrency * 4);
    let (fail_tx, fail_rx) = crossbeam_channel::unbounded::<FailureRecord>();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
    let store_thread = {
        let done_tx = done_tx.clone();
        let metrics = metrics.clone();
        let cfg = cfg.clone();
        let rules = rules.clone();
        std::thread::Builder::new()
            .name("store".into())
            .spawn(move || store_loop(store, &cfg, &rules, store_rx, fail_rx, done_tx, &metrics))
            .map_err(|e| DaemonError::Config(format!("cannot start the store thread: {e}")))?
    };

    if let Some(addr) = cfg.metrics_addr {
        http::serve(addr, metrics.clone()).await?;
    }

    let opts = PipelineOptions {
        max_object_bytes: cfg.max_object_bytes,
        ..Default::default()
    };
    let ingest = Arc::new(S3Ingest::new(
        s3c,
        metrics.clone(),
        rules,
        opts,
        cfg.max_retries,
        &cfg.data_dir,
    ));
    let shared = Arc::new(Shared {
        ingest,
        cfg: cfg.clone(),
        metrics: metrics.clone(),
        key_re,
        store_tx,
        fail_tx,
    });

    // The receiver.
    let msg_slots = Arc::new(Semaphore::new(concurrency * 4));
    let (recv_tx, mut recv_rx) = mpsc::channel::<Vec<(Received, tokio::sync::OwnedSemaphorePermit)>>(1);
    let receiver = {
        let sqsc = sqsc.clone();
        let cfg = cfg.clone();
        let slots = msg_slots.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(500);
            loop {
                if *shutdown.borrow() {
                    break;
                }
                let first = tokio::select! {
                    p = slots.clone().acquire_owned() => p.expect("semaphore open"),
                    _ = shutdown.changed() => break,
                };
                let mut permits = vec![first];
                while permits.len() < 10 {
                    match slots.clone().try_acquire_owned() {
                        Ok(p) => permits.push(p),
                        Err(_) => break,
                    }
                }
                let got = tokio::select! {
                    r = sqs::receive(&sqsc, &cfg.queue_url, permits.len() as i32, cfg.wait_time_secs.min(20) as i32, cfg.visibility_timeout_secs as i32) => r,
                    _ = shutdown.changed() => break,
                };
                match got {
                    Ok(msgs) => {
                        backoff = Duration::from_millis(500);
                        let batch: Vec<_> = msgs.into_iter().zip(permits).collect();
                        if !batch.is_empty() && recv_tx.send(batch).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, retry_in_ms = backoff.as_millis() as u64, "receiving from SQS failed; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                }
            }
        })
    };

    // The coordinator.
    let vis = Duration::from_secs(cfg.visibility_timeout_secs.max(1));
    let mut states: HashMap<String, MessageState> = HashMap::new();
    let mut to_delete: Vec<(String, String)> = Vec::new();
    let mut heartbeat = tokio::time::interval(Duration::from_millis((vis.as_millis() as u64 / 4).clamp(200, 10_000)));
    let mut receiving = true;
    let mut shutting_down = *shutdown.borrow();
    let mut stats = DaemonStats::default();
    let object_slots = Arc::new(Semaphore::new(concurrency));
    loop {
        tokio::select! {
            batch = recv_rx.recv(), if receiving => match batch {
                Some(batch) => {
                    for (m, permit) in batch {
                        handle_message(&shared, &object_slots, &done_tx, &mut states, &mut to_delete, m, permit, vis);
                    }
                }
                None => receiving = false,
            },
            Some(done) = done_rx.recv() => {
                let finished = match states.get_mut(&done.message_id) {
                    Some(st) => {
                        st.pending -= 1;
                        match done.kind {
                            DoneKind::Committed { failed } => {
                                st.poisoned |= failed;
                                stats.objects_committed += 1;
                            }
                            DoneKind::Skipped => {}
                            DoneKind::Transient => st.transient = true,
                        }
                        st.pending == 0
                    }
                    None => false,
                };
                if finished {
                    let st = states.remove(&done.message_id).expect("present");
                    if st.transient {
                        MessageLeft { message_id: &done.message_id, reason: "transient", detail: "an object could not be fetched; SQS will redeliver it" }.emit(&metrics);
                    } else if st.poisoned && cfg.on_poison == PoisonPolicy::Leave {
                        MessageLeft { message_id: &done.message_id, reason: "poison", detail: "an object failed for good (see the failures table); left for the dead-letter queue" }.emit(&metrics);
                    } else {
                        to_delete.push((done.message_id.clone(), st.receipt));
                    }
                }
            },
            _ = heartbeat.tick() => {
                if store_thread.is_finished() && !shutting_down {
                    // Nothing can be committed any more: stop, and let the
                    // error it returned end the daemon.
                    tracing::error!(data_dir = %cfg.data_dir.display(), "the store thread stopped; shutting down");
                    shutting_down = true;
                }
                let now = Instant::now();
                for (id, st) in states.iter_mut() {
                    if st.pending > 0 && st.deadline.saturating_duration_since(now) < vis / 2 {
                        match sqs::extend_visibility(&sqsc, &cfg.queue_url, &st.receipt, vis.as_secs() as i32).await {
                            Ok(()) => {
                                st.deadline = now + vis;
                                VisibilityExtended { message_id: id, secs: vis.as_secs() }.emit(&metrics);
                            }
                            Err(e) => tracing::warn!(message_id = %id, error = %e, "could not extend visibility"),
                        }
                    }
                }
            },
            _ = shutdown.changed(), if !shutting_down => {
                shutting_down = true;
                tracing::info!(in_flight_messages = states.len(), "shutting down: no new messages; finishing in-flight objects");
            },
        }
        if !to_delete.is_empty() {
            testhook::hit("before_delete");
            let batch = std::mem::take(&mut to_delete);
            match sqs::delete_batch(&sqsc, &cfg.queue_url, &batch).await {
                Ok(failed) => {
                    for (id, _) in batch.iter().filter(|(id, _)| !failed.contains(id)) {
                        MessageDeleted { message_id: id }.emit(&metrics);
                        stats.messages_deleted += 1;
                    }
                    for id in failed {
                        tracing::warn!(message_id = %id, "delete failed; the message will be redelivered (harmless: already committed)");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, messages = batch.len(), "delete failed; the messages will be redelivered (harmless: already committed)")
                }
            }
        }
        if shutting_down && states.is_empty() {
            break;
        }
    }
    receiver.abort();
    drop(shared);
    drop(done_tx);
    let store_stats = match tokio::task::spawn_blocking(move || store_thread.join()).await {
        Ok(Ok(result)) => result?,
        _ => return Err(DaemonError::StorePanicked),
    };
    stats.records = store_stats.records;
    stats.new_alerts = store_stats.new_alerts;
    Ok(stats)
}

#[expect(
    clippy::too_many_arguments,
    reason = "the per-message task takes the daemon's shared handles one by one"
)]
fn handle_message(
    shared: &Arc<Shared>,
    object_slots: &Arc<Semaphore>,
    done_tx: &mpsc::UnboundedSender<Done>,
    states: &mut HashMap<String, MessageState>,
    to_delete: &mut Vec<(String, String)>,
    m: Received,
    permit: tokio::sync::OwnedSemaphorePermit,
    vis: Duration,
) {
    let metrics = &shared.metrics;
    MessageReceived {
        message_id: &m.message_id,
        receive_count: m.receive_count,
    }
    .emit(metrics);
    if states.contains_key(&m.message_id) {
        // Redelivered while still in progress (visibility lapsed): keep the
        // newest receipt so the heartbeat and the delete use it.
        if let Some(st) = states.get_mut(&m.message_id) {
            st.receipt = m.receipt_handle;
        }
        return;
    }
    let objects = match notification::parse(&m.body) {
        Ok(Notification::Test) => {
            tracing::info!(message_id = %m.message_id, "s3:TestEvent received; acknowledging");
            to_delete.push((m.message_id, m.receipt_handle));
            return;
        }
        Ok(Notification::Objects(objs)) => objs,
        Err(e) => {
            MessageLeft {
                message_id: &m.message_id,
                reason: "unknown_body",
                detail: &e.to_string(),
            }
            .emit(metrics);
            let _ = shared.fail_tx.send(FailureRecord {
                object: format!("sqs-message:{}", m.message_id),
                class: e.class().to_owned(),
                error: format!("SQS message {}: {e}", m.message_id),
                message_id: Some(m.message_id.clone()),
            });
            return;
        }
    };
    // A notification for a bucket outside the allow-list is refused whole,
    // before any request: the daemon's credentials are not lent to whoever
    // can write to the queue.
    let allowed = &shared.cfg.allowed_buckets;
    let refused: Vec<&ObjectRef> = objects
        .iter()
        .filter(|o| !allowed.is_empty() && !allowed.contains(&o.bucket))
        .collect();
    if let Some(first) = refused.first() {
        let detail = format!("bucket `{}` is not in allowed_buckets", first.bucket);
        MessageLeft {
            message_id: &m.message_id,
            reason: "bucket_not_allowed",
            detail: &detail,
        }
        .emit(metrics);
        for o in refused {
            let _ = shared.fail_tx.send(FailureRecord {
                object: o.uri(),
                class: "bucket_not_allowed".to_owned(),
                error: format!(
                    "{}: bucket `{}` is not in allowed_buckets ({}); message {} left for the dead-letter queue",
                    o.uri(),
                    o.bucket,
                    allowed.join(", "),
                    m.message_id
                ),
                message_id: Some(m.message_id.clone()),
            });
        }
        return;
    }
    let mut wanted = Vec::new();
    for o in objects {
        if shared.key_re.is_match(&o.key) {
            wanted.push(o);
        } else {
            ObjectSkipped {
                uri: &o.uri(),
                reason: "key_pattern",
            }
            .emit(metrics);
        }
    }
    if wanted.is_empty() {
        to_delete.push((m.message_id, m.receipt_handle));
        return;
    }
    states.insert(
        m.message_id.clone(),
        MessageState {
            receipt: m.receipt_handle,
            pending: wanted.len(),
            poisoned: false,
            transient: false,
            deadline: Instant::now() + vis,
            _permit: permit,
        },
    );
    for o in wanted {
        let shared = shared.clone();
        let slots = object_slots.clone();
        let done_tx = done_tx.clone();
        let message_id = m.message_id.clone();
        tokio::spawn(async move {
            let _slot = slots.acquire_owned().await.expect("semaphore open");
            shared.metrics.in_flight.inc();
            let kind = process_object(&shared, &message_id, o).await;
            shared.metrics.in_flight.dec();
            if let Some(kind) = kind {
                let _ = done_tx.send(Done { message_id, kind });
            }
        });
    }
}

/// Runs one object. Returns `None` when the outcome went to the store
/// thread (which reports the commit itself).
async fn process_object(shared: &Arc<Shared>, message_id: &str, o: ObjectRef) -> Option<DoneKind> {
    let started = Instant::now();
    let outcome = match shared.ingest.run(&o, Some(message_id), false).await {
        IngestResult::Skipped => return Some(DoneKind::Skipped),
        IngestResult::Transient(_) => return Some(DoneKind::Transient),
        IngestResult::Outcome(oc) => *oc,
    };
    if let Outcome::Failed(e) = &outcome.outcome {
        ObjectFailed {
            uri: &o.uri(),
            class: e.class(),
            error: &e.to_string(),
        }
        .emit(&shared.metrics);
    }
    let job = StoreJob {
        message_id: message_id.to_owned(),
        outcome,
        started,
    };
    let tx = shared.store_tx.clone();
    match tokio::task::spawn_blocking(move || tx.send(job).is_ok()).await {
        Ok(true) => None,
        _ => Some(DoneKind::Transient),
    }
}

#[derive(Default)]
struct StoreStats {
    records: u64,
    new_alerts: u64,
}

fn store_loop(
    mut store: Store,
    cfg: &DaemonConfig,
    rules: &RuleSet,
    rx: crossbeam_channel::Receiver<StoreJob>,
    fail_rx: crossbeam_channel::Receiver<FailureRecord>,
    done_tx: mpsc::UnboundedSender<Done>,
    metrics: &Metrics,
) -> Result<StoreStats, StoreError> {
    let aggregates = Aggregates::new(&cfg.data_dir).with_alert_raw_events(cfg.parquet_raw_events);
    // An interrupted flush that cannot be finished now (disk still full)
    // must not stop the store: commits do not depend on it (its rows stay
    // staged, readers skip its files), and every flush retries it first.
    if let Err(e) = aggregates.recover(&mut store) {
        tracing::error!(data_dir = %cfg.data_dir.display(), error = %e, "cannot finish the interrupted Parquet flush; committing goes on, and the next flush retries it");
    }
    // The correlation windows resume where the last commit left them.
    let mut correlator = store.correlator(rules, cfg.correlation_limits())?;
    let mut stats = StoreStats::default();
    let mut batch: Vec<StoreJob> = Vec::new();
    let mut last_flush = Instant::now();
    let mut last_compact = Instant::now();
    let flush_every = Duration::from_secs(cfg.flush_interval_secs.max(1));
    let compact_every = Duration::from_secs(cfg.compact_interval_secs.max(1));
    let mut open = true;
    while open || !batch.is_empty() {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(job) => {
                batch.push(job);
                while batch.len() < 64 {
                    match rx.try_recv() {
                        Ok(j) => batch.push(j),
                        Err(_) => break,
                    }
                }
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => open = false,
        }
        let refused: Vec<FailureRecord> = fail_rx.try_iter().collect();
        if !refused.is_empty() {
            // Best effort: the messages stay on the queue either way, and a
            // redelivery records them again.
            if let Err(e) = store.record_failures(&refused) {
                tracing::error!(error = %e, messages = refused.len(), "could not record refused messages in failures");
            }
        }
        if !batch.is_empty() {
            let (ids, mut outcomes): (Vec<(String, Instant)>, Vec<ObjectOutcome>) =
                batch.drain(..).map(|j| ((j.message_id, j.started), j.outcome)).unzip();
            // Correlate once; a retried commit writes the same alerts and
            // the same state changes.
            let state = crate::pipeline::correlate(rules, &mut correlator, &mut outcomes);
            // A failing commit (disk full, I/O error) acknowledges nothing:
            // the loop retries until it succeeds, and the heartbeat keeps
            // the messages invisible meanwhile.
            let mut failed_attempts = 0u64;
            let summary = loop {
                match store.commit(&outcomes, &state) {
                    Ok(s) => {
                        if failed_attempts > 0 {
                            tracing::warn!(data_dir = %cfg.data_dir.display(), failed_attempts, objects = outcomes.len(), "commit succeeded again; acknowledging the held messages");
                        }
                        break s;
                    }
                    Err(e) => {
                        failed_attempts += 1;
                        metrics.commit_failures.inc();
                        tracing::error!(data_dir = %cfg.data_dir.display(), error = %e, objects = outcomes.len(), attempt = failed_attempts, "COMMIT FAILED: results cannot be stored in the data directory; no message is acknowledged until they are; retrying in 5 s");
                        std::thread::sleep(Duration::from_secs(5));
                    }
                }
            };
            for (((message_id, started), oc), fresh) in ids.into_iter().zip(outcomes).zip(summary.new_alerts) {
                let failed = matches!(oc.outcome, Outcome::Failed(_));
                if let Outcome::Processed {
                    stats: st,
                    alerts,
                    activity,
                    ..
                } = &oc.outcome
                {
                    metrics.objects_processed.inc();
                    metrics.records.inc_by(st.records);
                    stats.records += st.records;
                    for i in fresh {
                        let a = &alerts[i];
                        tracing::info!(rule = %a.rule_name, severity = %a.severity, event_id = %a.event_id, object = %a.object, "new alert");
                        metrics
                            .alerts
                            .get_or_create(&RuleLabels {
                                rule: a.rule_name.clone(),
                                severity: a.severity.to_string(),
                            })
                            .inc();
                        stats.new_alerts += 1;
                    }
                    if let Some(newest) = activity.newest()
                        && let Some(ms) = crate::time::parse_ms(newest)
                        && ms > metrics.newest_event_ms.get()
                    {
                        metrics.newest_event_ms.set(ms);
                    }
                }
                metrics.processing_seconds.observe(started.elapsed().as_secs_f64());
                let _ = done_tx.send(Done {
                    message_id,
                    kind: DoneKind::Committed { failed },
                });
            }
            let newest = metrics.newest_event_ms.get();
            if newest > 0 {
                let lag = (chrono::Utc::now().timestamp_millis() - newest) as f64 / 1000.0;
                metrics.ingestion_lag_seconds.set(lag);
            }
        }
        if last_flush.elapsed() >= flush_every || !open {
            if let Err(e) = aggregates.flush(&mut store) {
                tracing::error!(data_dir = %cfg.data_dir.display(), error = %e, "aggregate flush failed; staged rows stay staged and are retried");
            }
            last_flush = Instant::now();
        }
        if last_compact.elapsed() >= compact_every {
            match aggregates.compact(&mut store) {
                Ok(s) if s.partitions > 0 => tracing::info!(
                    partitions = s.partitions,
                    files_before = s.files_before,
                    "aggregates compacted"
                ),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "compaction failed; will retry"),
            }
            last_compact = Instant::now();
        }
    }
    // Messages refused while the last batch was committed.
    let refused: Vec<FailureRecord> = fail_rx.try_iter().collect();
    if !refused.is_empty()
        && let Err(e) = store.record_failures(&refused)
    {
        tracing::error!(error = %e, messages = refused.len(), "could not record refused messages in failures");
    }
    Ok(stats)
}
