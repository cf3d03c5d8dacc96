//! Internal events: each `<Noun><Verb>` both logs (tracing, structured
//! fields) and counts (Prometheus metrics), so logs and metrics never
//! disagree about what happened.

use std::sync::atomic::{AtomicI64, AtomicU64};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    pub rule: String,
    pub severity: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

/// The daemon's metrics.
pub struct Metrics {
    pub registry: Registry,
    pub messages_received: Counter,
    pub messages_deleted: Counter,
    pub messages_left: Family<ReasonLabels, Counter>,
    pub objects_processed: Counter,
    pub objects_skipped: Family<ReasonLabels, Counter>,
    pub objects_failed: Family<ReasonLabels, Counter>,
    pub bytes: Counter,
    pub records: Counter,
    pub alerts: Family<RuleLabels, Counter>,
    pub in_flight: Gauge,
    pub processing_seconds: Histogram,
    pub visibility_extended: Counter,
    pub s3_retries: Counter,
    /// Store commits that failed (disk full, I/O errors) and were retried.
    pub commit_failures: Counter,
    /// Now minus the newest eventTime processed, in seconds.
    pub ingestion_lag_seconds: Gauge<f64, AtomicU64>,
    pub newest_event_ms: Gauge<i64, AtomicI64>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("trailwatch");
        let m = Metrics {
            messages_received: Counter::default(),
            messages_deleted: Counter::default(),
            messages_left: Family::default(),
            objects_processed: Counter::default(),
            objects_skipped: Family::default(),
            objects_failed: Family::default(),
            bytes: Counter::default(),
            records: Counter::default(),
            alerts: Family::default(),
            in_flight: Gauge::default(),
            processing_seconds: Histogram::new(exponential_buckets(0.005, 2.0, 16)),
            visibility_extended: Counter::default(),
            s3_retries: Counter::default(),
            commit_failures: Counter::default(),
            ingestion_lag_seconds: Gauge::default(),
            newest_event_ms: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "messages_received",
            "SQS messages received",
            m.messages_received.clone(),
        );
        registry.register(
            "messages_deleted",
            "SQS messages deleted after commit",
            m.messages_deleted.clone(),
        );
        registry.register(
            "messages_left",
            "SQS messages left for redelivery or the DLQ",
            m.messages_left.clone(),
        );
        registry.register("objects_processed", "Objects committed", m.objects_processed.clone());
        registry.register(
            "objects_skipped",
            "Objects skipped without download",
            m.objects_skipped.clone(),
        );
        registry.register("objects_failed", "Objects that failed", m.objects_failed.clone());
        registry.register("bytes", "Stored bytes downloaded", m.bytes.clone());
        registry.register("records", "CloudTrail records evaluated", m.records.clone());
        registry.register("alerts", "New alerts stored", m.alerts.clone());
        registry.register("in_flight_objects", "Objects being processed", m.in_flight.clone());
        registry.register(
            "processing_seconds",
            "Time from download start to commit",
            m.processing_seconds.clone(),
        );
        registry.register(
            "visibility_extended",
            "Heartbeat visibility extensions",
            m.visibility_extended.clone(),
        );
        registry.register("s3_retries", "Transient S3 errors retried", m.s3_retries.clone());
        registry.register(
            "commit_failures",
            "Store commits that failed and were retried (nothing acknowledged meanwhile)",
            m.commit_failures.clone(),
        );
        registry.register(
            "ingestion_lag_seconds",
            "Now minus the newest eventTime processed",
            m.ingestion_lag_seconds.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// An event the daemon reports.
pub trait InternalEvent {
    fn emit(self, m: &Metrics);
}

pub struct MessageReceived<'a> {
    pub message_id: &'a str,
    pub receive_count: u32,
}
impl InternalEvent for MessageReceived<'_> {
    fn emit(self, m: &Metrics) {
        tracing::debug!(
            message_id = self.message_id,
            receive_count = self.receive_count,
            "message received"
        );
        m.messages_received.inc();
    }
}

pub struct MessageDeleted<'a> {
    pub message_id: &'a str,
}
impl InternalEvent for MessageDeleted<'_> {
    fn emit(self, m: &Metrics) {
        tracing::debug!(message_id = self.message_id, "message deleted");
        m.messages_deleted.inc();
    }
}

pub struct MessageLeft<'a> {
    pub message_id: &'a str,
    pub reason: &'a str,
    pub detail: &'a str,
}
impl InternalEvent for MessageLeft<'_> {
    fn emit(self, m: &Metrics) {
        tracing::warn!(
            message_id = self.message_id,
            reason = self.reason,
            "message left on the queue: {}",
            self.detail
        );
        m.messages_left
            .get_or_create(&ReasonLabels {
                reason: self.reason.to_owned(),
            })
            .inc();
    }
}

pub struct ObjectSkipped<'a> {
    pub uri: &'a str,
    pub reason: &'static str,
}
impl InternalEvent for ObjectSkipped<'_> {
    fn emit(self, m: &Metrics) {
        tracing::debug!(object = self.uri, reason = self.reason, "object skipped");
        m.objects_skipped
            .get_or_create(&ReasonLabels {
                reason: self.reason.to_owned(),
            })
            .inc();
    }
}

pub struct ObjectFailed<'a> {
    pub uri: &'a str,
    pub class: &'a str,
    pub error: &'a str,
}
impl InternalEvent for ObjectFailed<'_> {
    fn emit(self, m: &Metrics) {
        tracing::error!(object = self.uri, class = self.class, "{}", self.error);
        m.objects_failed
            .get_or_create(&ReasonLabels {
                reason: self.class.to_owned(),
            })
            .inc();
    }
}

pub struct VisibilityExtended<'a> {
    pub message_id: &'a str,
    pub secs: u64,
}
impl InternalEvent for VisibilityExtended<'_> {
    fn emit(self, m: &Metrics) {
        tracing::info!(
            message_id = self.message_id,
            secs = self.secs,
            "visibility extended: objects still in progress"
        );
        m.visibility_extended.inc();
    }
}

pub struct S3RetryScheduled<'a> {
    pub uri: &'a str,
    pub attempt: u32,
    pub delay_ms: u64,
    pub error: &'a str,
}
impl InternalEvent for S3RetryScheduled<'_> {
    fn emit(self, m: &Metrics) {
        tracing::warn!(
            object = self.uri,
            attempt = self.attempt,
            delay_ms = self.delay_ms,
            "transient S3 error, retrying: {}",
            self.error
        );
        m.s3_retries.inc();
    }
}
