//! The per-object pipeline shared by `scan`, `backfill` and `daemon`:
//! bytes → [`decode`](crate::decode) → [`rules`](crate::rules) → an
//! [`ObjectOutcome`] that a store commits atomically.
//!
//! A [`Worker`] owns reusable buffers and a decoder; it does no store I/O.
//! Alerts copy the few fields the store needs out of the borrowed record,
//! and only for records that matched.

pub mod activity;

use compact_str::CompactString;
use std::io::{BufRead, Read};
use std::sync::Arc;

use activity::{ActivityAgg, ActivityRows};

use crate::decode::{self, DecodeError, DecodeOptions, Decoder, DocumentStats, Record};
use crate::rules::{Correlation, Correlator, Firing, Hit, Level, Rule, RuleSet, StateRow};
use crate::sources::SourceError;
use crate::sources::s3::S3Error;

/// Identity of one source object, as recorded in the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// A local path or an `s3://bucket/key` URI.
    pub name: String,
    /// Stored (compressed) size in bytes.
    pub size: u64,
    /// Modification time (local files), nanoseconds since the epoch.
    pub mtime_ns: Option<i64>,
    /// Content fingerprint: `blake3:<hex>` of the stored bytes, or the S3 ETag.
    pub fingerprint: String,
    /// The SQS message that announced the object, if any.
    pub message_id: Option<String>,
}

/// One stored alert, owned (copied out of the record that fired).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub rule_name: String,
    pub rule_id: String,
    pub title: String,
    pub severity: Level,
    pub event_id: String,
    pub event_time: CompactString,
    pub event_name: CompactString,
    pub event_source: CompactString,
    pub aws_region: CompactString,
    pub account_id: CompactString,
    pub principal_arn: String,
    pub principal_type: CompactString,
    pub source_ip: CompactString,
    pub user_agent: String,
    pub object: String,
    pub raw_event: String,
    /// Set for alerts raised by a correlation rule.
    pub correlation: Option<CorrelationRef>,
}

/// What a correlation alert links to: its group, its window in event time,
/// and the events that made it fire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrelationRef {
    pub group_key: String,
    pub window_start: String,
    pub window_end: String,
    pub event_ids: Vec<String>,
}

/// A match of a rule that feeds a correlation: the hit for the correlator,
/// and the matching record's context for the alert it may complete.
#[derive(Debug, Clone)]
pub struct CorrHit {
    pub hit: Hit,
    /// An alert without rule fields or raw event (filled in if it fires).
    pub context: Alert,
}

impl Alert {
    /// Heap bytes held, roughly (for memory budgets).
    pub fn approx_bytes(&self) -> usize {
        let c = self.correlation.as_ref().map_or(0, |c| {
            c.group_key.len()
                + c.window_start.len()
                + c.window_end.len()
                + c.event_ids.iter().map(|e| e.len() + 24).sum::<usize>()
        });
        std::mem::size_of::<Alert>()
            + self.rule_name.len()
            + self.rule_id.len()
            + self.title.len()
            + self.event_id.len()
            + self.event_time.len()
            + self.event_name.len()
            + self.event_source.len()
            + self.aws_region.len()
            + self.account_id.len()
            + self.principal_arn.len()
            + self.principal_type.len()
            + self.source_ip.len()
            + self.user_agent.len()
            + self.object.len()
            + self.raw_event.len()
            + c
    }

    /// Builds an alert from the rule and the record that matched it.
    pub fn new(rule: &Rule, rec: &Record<'_>, object: &str) -> Alert {
        let raw_event = rec.to_json();
        let mut a = Alert::context(rec, object, Some(&raw_event));
        a.rule_name = rule.name.clone();
        a.rule_id = rule.id.clone();
        a.title = rule.title.clone();
        a.severity = rule.level;
        a.raw_event = raw_event;
        a
    }

    /// The record's fields as an alert carries them, without rule fields.
    /// `raw` is the record's JSON if already rendered (used to key records
    /// that lack an eventID).
    fn context(rec: &Record<'_>, object: &str, raw: Option<&str>) -> Alert {
        let s = |k: &str| rec.str(k).unwrap_or_default().to_owned();
        let c = |v: Option<&str>| CompactString::from(v.unwrap_or_default());
        Alert {
            rule_name: String::new(),
            rule_id: String::new(),
            title: String::new(),
            severity: Level::Informational,
            event_id: record_key(rec, raw),
            event_time: c(event_time(rec)),
            event_name: c(rec.str("eventName")),
            event_source: c(rec.str("eventSource")),
            aws_region: c(rec.str("awsRegion")),
            account_id: c(account_id(rec)),
            principal_arn: rec.str_at(&["userIdentity", "arn"]).unwrap_or_default().to_owned(),
            principal_type: c(rec.str_at(&["userIdentity", "type"])),
            source_ip: c(rec.str("sourceIPAddress")),
            user_agent: s("userAgent"),
            object: object.to_owned(),
            raw_event: String::new(),
            correlation: None,
        }
    }

    /// The alert of a correlation that fired. `trigger` is the context of the
    /// event that completed the window, when one did (windows closed by the
    /// watermark have none).
    pub fn from_correlation(c: &Correlation, f: &Firing, trigger: Option<&Alert>, object: &str) -> Alert {
        let window_start = fmt_ms(f.window_start_ms);
        let window_end = fmt_ms(f.window_end_ms);
        let raw_event = serde_json::json!({
            "correlation": c.name,
            "type": c.kind.as_str(),
            "rules": c.rule_refs,
            "group": f.group,
            "timespan": c.timespan_text,
            "condition": c.condition.to_string(),
            "window_start": window_start,
            "window_end": window_end,
            "events": f.event_ids,
        })
        .to_string();
        let mut a = match trigger {
            Some(t) => t.clone(),
            None => Alert {
                rule_name: String::new(),
                rule_id: String::new(),
                title: String::new(),
                severity: Level::Informational,
                event_id: String::new(),
                event_time: window_end.as_str().into(),
                event_name: CompactString::default(),
                event_source: CompactString::default(),
                aws_region: CompactString::default(),
                account_id: CompactString::default(),
                principal_arn: String::new(),
                principal_type: CompactString::default(),
                source_ip: CompactString::default(),
                user_agent: String::new(),
                object: object.to_owned(),
                raw_event: String::new(),
                correlation: None,
            },
        };
        a.rule_name = c.name.clone();
        a.rule_id = c.id.clone();
        a.title = c.title.clone();
        a.severity = c.level;
        a.event_id = f.trigger_id.clone();
        a.raw_event = raw_event;
        a.correlation = Some(CorrelationRef {
            group_key: f.group.clone(),
            window_start,
            window_end,
            event_ids: f.event_ids.clone(),
        });
        a
    }
}

/// The record's eventID; records without one (some exports) are keyed by a
/// hash of their content so that de-duplication still works.
fn record_key(rec: &Record<'_>, raw: Option<&str>) -> String {
    match rec.str("eventID") {
        Some(id) => id.to_owned(),
        None => {
            let owned;
            let raw = match raw {
                Some(r) => r,
                None => {
                    owned = rec.to_json();
                    &owned
                }
            };
            format!("sha:{}", &blake3::hash(raw.as_bytes()).to_hex()[..32])
        }
    }
}

/// Milliseconds since the epoch as CloudTrail writes times.
fn fmt_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// Runs the batch's correlation hits through `correlator` in batch order,
/// appends each alert to the outcome whose event completed the window, and
/// returns the state changes, which must be committed with the batch.
pub fn correlate(rules: &RuleSet, correlator: &mut Correlator, batch: &mut [ObjectOutcome]) -> Vec<StateRow> {
    if correlator.is_empty() {
        return Vec::new();
    }
    let corrs = rules.correlations();
    let mut last_processed = None;
    for (i, oc) in batch.iter_mut().enumerate() {
        if let Outcome::Processed { alerts, corr_hits, .. } = &mut oc.outcome {
            last_processed = Some(i);
            for h in corr_hits.iter() {
                for f in correlator.apply(&h.hit) {
                    alerts.push(Alert::from_correlation(
                        &corrs[f.corr],
                        &f,
                        Some(&h.context),
                        &oc.meta.name,
                    ));
                }
            }
        }
    }
    // Windows closed by the watermark belong to the newest object: its
    // events moved the watermark. Without a processed object in the batch
    // nothing moved, so nothing can close.
    if let Some(i) = last_processed {
        let name = batch[i].meta.name.clone();
        if let Outcome::Processed { alerts, .. } = &mut batch[i].outcome {
            for f in correlator.close_windows() {
                alerts.push(Alert::from_correlation(&corrs[f.corr], &f, None, &name));
            }
        }
    }
    correlator.take_changes()
}

/// The correlation hit of a record matched by the rule at `pos` of
/// correlation `c`; `None` when the record has no usable event time (a
/// window in event time cannot place it).
fn corr_hit(corr: &Correlation, c: usize, pos: usize, rec: &Record<'_>, object: &str) -> Option<CorrHit> {
    let time_ms = event_time(rec).and_then(crate::time::parse_ms)?;
    let context = Alert::context(rec, object, None);
    Some(CorrHit {
        hit: Hit {
            corr: c,
            pos,
            time_ms,
            event_id: context.event_id.clone(),
            group: corr.group_key(pos, rec),
            value: corr.value(pos, rec),
        },
        context,
    })
}

/// `eventTime`, or `@timestamp` for records exported through Logstash.
pub fn event_time<'a>(rec: &Record<'a>) -> Option<&'a str> {
    rec.str("eventTime").or_else(|| rec.str("@timestamp"))
}

/// The account the event belongs to: the trail's `recipientAccountId`,
/// else the caller's account.
pub fn account_id<'a>(rec: &Record<'a>) -> Option<&'a str> {
    rec.str("recipientAccountId")
        .or_else(|| rec.str_at(&["userIdentity", "accountId"]))
}

/// Why one object failed: it could not be read, or not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    S3(#[from] S3Error),
    /// A bug: processing panicked. Contained to this object (see
    /// [`Worker::process`]).
    #[error("{object}: internal error while processing this object (a trailwatch bug; please report it): {message}")]
    Panic { object: String, message: String },
}

impl ObjectError {
    /// Stable failure class for the `failures` table and metrics.
    pub fn class(&self) -> &'static str {
        match self {
            ObjectError::Source(e) => e.class(),
            ObjectError::Decode(e) => e.class(),
            ObjectError::S3(e) => e.class(),
            ObjectError::Panic { .. } => "panic",
        }
    }
}

/// What processing one object produced.
#[derive(Debug)]
pub enum Outcome {
    Processed {
        stats: DocumentStats,
        alerts: Vec<Alert>,
        /// The object's contribution to the hourly activity aggregates.
        activity: ActivityRows,
        /// Matches that feed correlation rules, in record order.
        corr_hits: Vec<CorrHit>,
    },
    Failed(ObjectError),
}

#[derive(Debug)]
pub struct ObjectOutcome {
    pub meta: ObjectMeta,
    pub outcome: Outcome,
}

impl ObjectOutcome {
    /// Heap bytes held, roughly: what an outcome waiting to be committed
    /// costs (a broad rule pack makes it hundreds of KB, with raw events).
    pub fn approx_bytes(&self) -> usize {
        let m = &self.meta;
        let meta = m.name.len() + m.fingerprint.len() + m.message_id.as_ref().map_or(0, String::len);
        let body = match &self.outcome {
            Outcome::Processed {
                alerts,
                activity,
                corr_hits,
                ..
            } => {
                alerts.iter().map(Alert::approx_bytes).sum::<usize>()
                    + activity.approx_bytes()
                    + corr_hits
                        .iter()
                        .map(|h| {
                            h.context.approx_bytes()
                                + h.hit.event_id.len()
                                + h.hit.group.len()
                                + h.hit.value.as_ref().map_or(0, String::len)
                        })
                        .sum::<usize>()
            }
            Outcome::Failed(e) => 256 + e.to_string().len(),
        };
        std::mem::size_of::<ObjectOutcome>() + meta + body
    }
}

/// Pipeline settings.
#[derive(Debug, Clone, Copy)]
pub struct PipelineOptions {
    pub max_object_bytes: u64,
    pub decode: DecodeOptions,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        PipelineOptions {
            max_object_bytes: decode::DEFAULT_MAX_OBJECT_BYTES,
            decode: DecodeOptions::default(),
        }
    }
}

/// Processes objects one at a time with reused buffers. One per thread.
pub struct Worker {
    rules: Arc<RuleSet>,
    decoder: Decoder,
    buf: Vec<u8>,
    activity: ActivityAgg,
    opts: PipelineOptions,
}

impl Worker {
    pub fn new(rules: Arc<RuleSet>, opts: PipelineOptions) -> Worker {
        Worker {
            rules,
            decoder: Decoder::new(opts.decode),
            buf: Vec::new(),
            activity: ActivityAgg::default(),
            opts,
        }
    }

    /// Decodes and evaluates one object read from `reader`.
    ///
    /// Log content is untrusted, so a bug that panics on some input must
    /// cost that object only, not the run (a scan worker thread, the
    /// daemon's blocking task): the panic is caught here and becomes the
    /// object's failure, class `panic`, and the worker's state is rebuilt.
    pub fn process<R: Read>(&mut self, meta: ObjectMeta, reader: R) -> ObjectOutcome {
        self.process_buffered(meta, std::io::BufReader::with_capacity(64 * 1024, reader))
    }

    /// [`process`](Self::process) for a buffered source, such as the bytes
    /// of a file read whole: nothing is copied on the way to the decompressor.
    /// Panics are contained the same way.
    pub fn process_buffered<R: BufRead>(&mut self, meta: ObjectMeta, reader: R) -> ObjectOutcome {
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.run(&meta.name, reader)));
        let outcome = match run {
            Ok(Ok((stats, alerts, corr_hits))) => Outcome::Processed {
                stats,
                alerts,
                activity: self.activity.take(),
                corr_hits,
            },
            Ok(Err(e)) => Outcome::Failed(e.into()),
            Err(payload) => {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".into());
                self.decoder = Decoder::new(self.opts.decode);
                self.activity = ActivityAgg::default();
                self.buf = Vec::new();
                Outcome::Failed(ObjectError::Panic {
                    object: meta.name.clone(),
                    message,
                })
            }
        };
        // Do not keep a huge buffer around after an unusually large object.
        if self.buf.capacity() > 256 << 20 {
            self.buf = Vec::new();
        }
        ObjectOutcome { meta, outcome }
    }

    fn run<R: BufRead>(
        &mut self,
        name: &str,
        reader: R,
    ) -> Result<(DocumentStats, Vec<Alert>, Vec<CorrHit>), DecodeError> {
        crate::testhook::panic_on_object(name);
        let len = decode::read_object_buffered(name, reader, self.opts.max_object_bytes, &mut self.buf)?;
        let rules = &*self.rules;
        let activity = &mut self.activity;
        activity.clear();
        let mut alerts = Vec::new();
        let mut first = true;
        let mut hits = Vec::new();
        let stats = self.decoder.decode(name, &mut self.buf, len, |rec| {
            rules.evaluate(rec, |rule| {
                if rule.generate {
                    alerts.push(Alert::new(rule, rec, name));
                }
                for &(c, pos) in &rule.feeds {
                    if let Some(h) = corr_hit(&rules.correlations()[c], c, pos, rec, name) {
                        hits.push(h);
                    }
                }
            });
            activity.add(rec);
            if first {
                first = false;
                crate::testhook::hit("mid_decode");
            }
        })?;
        Ok((stats, alerts, hits))
    }
}
