//! One S3 object through the pipeline: ledger check, fetch with retries,
//! decode and evaluate on the blocking pool. Shared by the daemon and
//! backfill; committing is the caller's business.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::daemon::events::{InternalEvent, Metrics, ObjectSkipped, S3RetryScheduled};
use crate::pipeline::{ObjectError, ObjectMeta, ObjectOutcome, Outcome, PipelineOptions, Worker};
use crate::rules::RuleSet;
use crate::sources::notification::ObjectRef;
use crate::sources::s3::{self, S3Error};
use crate::store::Store;

/// What became of one object.
pub enum IngestResult {
    /// In the ledger already (same ETag): nothing to do.
    Skipped,
    /// Processed, or failed for good: to be committed.
    Outcome(Box<ObjectOutcome>),
    /// Transient S3 failure after every retry: try again later.
    Transient(S3Error),
}

/// Reusable state for ingesting S3 objects.
pub struct S3Ingest {
    pub s3: aws_sdk_s3::Client,
    pub metrics: Arc<Metrics>,
    rules: Arc<RuleSet>,
    opts: PipelineOptions,
    max_retries: u32,
    workers: Mutex<Vec<Worker>>,
    ledgers: Mutex<Vec<Store>>,
    data_dir: std::path::PathBuf,
}

impl S3Ingest {
    pub fn new(
        s3: aws_sdk_s3::Client,
        metrics: Arc<Metrics>,
        rules: Arc<RuleSet>,
        opts: PipelineOptions,
        max_retries: u32,
        data_dir: &std::path::Path,
    ) -> S3Ingest {
        S3Ingest {
            s3,
            metrics,
            rules,
            opts,
            max_retries: max_retries.max(1),
            workers: Mutex::new(Vec::new()),
            ledgers: Mutex::new(Vec::new()),
            data_dir: data_dir.to_owned(),
        }
    }

    fn in_ledger(&self, uri: &str, etag: Option<&str>) -> bool {
        let ledger = self.ledgers.lock().expect("ledger pool").pop();
        let ledger = match ledger {
            Some(l) => l,
            None => match Store::open_read_only(&self.data_dir) {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the ledger; processing the object");
                    return false;
                }
            },
        };
        let hit = ledger
            .ledger_entry(uri)
            .ok()
            .flatten()
            .is_some_and(|e| e.status == "ok" && etag.is_none_or(|t| t.trim_matches('"') == e.fingerprint));
        self.ledgers.lock().expect("ledger pool").push(ledger);
        hit
    }

    /// Runs one object. `reprocess` ignores the ledger.
    pub async fn run(self: &Arc<Self>, o: &ObjectRef, message_id: Option<&str>, reprocess: bool) -> IngestResult {
        let uri = o.uri();
        if !reprocess {
            let me = self.clone();
            let (u, etag) = (uri.clone(), o.etag.clone());
            let hit = tokio::task::spawn_blocking(move || me.in_ledger(&u, etag.as_deref()))
                .await
                .unwrap_or(false);
            if hit {
                ObjectSkipped {
                    uri: &uri,
                    reason: "already_processed",
                }
                .emit(&self.metrics);
                return IngestResult::Skipped;
            }
        }
        let mut attempt = 0;
        loop {
            let r = self.fetch_and_process(o, &uri, message_id).await;
            match r {
                Err(e) if e.is_transient() && attempt + 1 < self.max_retries => {
                    attempt += 1;
                    let base = 200u64 << attempt.min(8);
                    let delay = base / 2 + fastrand::u64(0..=base / 2);
                    S3RetryScheduled {
                        uri: &uri,
                        attempt,
                        delay_ms: delay,
                        error: &e.to_string(),
                    }
                    .emit(&self.metrics);
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                }
                Err(e) if e.is_transient() => {
                    tracing::error!(object = %uri, attempts = attempt + 1, "giving up on this attempt: {e}");
                    return IngestResult::Transient(e);
                }
                Err(e) => {
                    return IngestResult::Outcome(Box::new(ObjectOutcome {
                        meta: ObjectMeta {
                            name: uri.clone(),
                            size: o.size.unwrap_or(0),
                            mtime_ns: None,
                            fingerprint: o.etag.clone().unwrap_or_default().trim_matches('"').to_owned(),
                            message_id: message_id.map(str::to_owned),
                        },
                        outcome: Outcome::Failed(ObjectError::S3(e)),
                    }));
                }
                Ok(oc) => return IngestResult::Outcome(Box::new(oc)),
            }
        }
    }

    /// Streams the object straight into the decoder: gunzip and the
    /// decompressed-size cap apply as bytes arrive, and nothing but the
    /// decoder's own buffer holds the object. A network error while reading
    /// is transient (the whole object is retried), not a decode failure.
    async fn fetch_and_process(
        self: &Arc<Self>,
        o: &ObjectRef,
        uri: &str,
        message_id: Option<&str>,
    ) -> Result<ObjectOutcome, S3Error> {
        let (body, fetched) = s3::open_object(&self.s3, &o.bucket, &o.key, self.opts.max_object_bytes).await?;
        if let Some(d) = crate::testhook::slow_object() {
            // Test-only: stands in for a huge object.
            tokio::time::sleep(d).await;
        }
        let meta = ObjectMeta {
            name: uri.to_owned(),
            size: fetched.size,
            mtime_ns: None,
            fingerprint: fetched.etag,
            message_id: message_id.map(str::to_owned),
        };
        let reader = tokio_util::io::SyncIoBridge::new(body.into_async_read());
        let me = self.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let mut net = NetReader {
                inner: reader,
                bytes: 0,
                failed: None,
            };
            let w = me.workers.lock().expect("worker pool").pop();
            let mut w = w.unwrap_or_else(|| Worker::new(me.rules.clone(), me.opts));
            let oc = w.process(meta, &mut net);
            me.workers.lock().expect("worker pool").push(w);
            (oc, net.bytes, net.failed)
        })
        .await;
        match joined {
            Ok((_, _, Some(reason))) => Err(S3Error::Transient {
                uri: uri.to_owned(),
                reason: format!("reading the body: {reason}"),
            }),
            Ok((oc, bytes, None)) => {
                self.metrics.bytes.inc_by(bytes);
                Ok(oc)
            }
            Err(e) => Err(S3Error::Transient {
                uri: uri.to_owned(),
                reason: format!("processing panicked: {e}"),
            }),
        }
    }
}

/// Remembers whether the network side of the stream failed, so that a cut
/// connection is retried rather than reported as a corrupt object.
struct NetReader<R> {
    inner: R,
    bytes: u64,
    failed: Option<String>,
}

impl<R: std::io::Read> std::io::Read for NetReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                if self.bytes == 0 && n > 0 {
                    crate::testhook::hit("mid_download");
                }
                self.bytes += n as u64;
                Ok(n)
            }
            Err(e) => {
                // The whole chain: "streaming error" alone does not say
                // whether the connection was cut or the stream stalled.
                self.failed = Some(crate::error_text::chain_text(&e));
                Err(e)
            }
        }
    }
}
