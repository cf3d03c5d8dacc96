//! The per-object pipeline shared by `scan`, `backfill` and `daemon`:
//! bytes → [`decode`](crate::decode) → [`rules`](crate::rules) → an
//! [`ObjectOutcome`] that a store commits atomically.
//!
//! A [`Worker`] owns reusable buffers and a decoder; it does no store I/O.
//! Alerts copy the few fields the store needs out of the borrowed record,
//! and only for records that matched.

pub mod activity;

use std::io::Read;
use std::sync::Arc;

use activity::{ActivityAgg, ActivityRow};

use crate::decode::{self, DecodeError, DecodeOptions, Decoder, DocumentStats, Record};
use crate::rules::{Level, Rule, RuleSet};
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
    pub event_time: String,
    pub event_name: String,
    pub event_source: String,
    pub aws_region: String,
    pub account_id: String,
    pub principal_arn: String,
    pub principal_type: String,
    pub source_ip: String,
    pub user_agent: String,
    pub object: String,
    pub raw_event: String,
}

impl Alert {
    /// Builds an alert from the rule and the record that matched it.
    pub fn new(rule: &Rule, rec: &Record<'_>, object: &str) -> Alert {
        let s = |k: &str| rec.str(k).unwrap_or_default().to_owned();
        let raw_event = rec.to_json();
        // Records without an eventID (some exports) still need a stable key
        // for de-duplication: hash their content.
        let event_id = rec
            .str("eventID")
            .map(str::to_owned)
            .unwrap_or_else(|| format!("sha:{}", &blake3::hash(raw_event.as_bytes()).to_hex()[..32]));
        Alert {
            rule_name: rule.name.clone(),
            rule_id: rule.id.clone(),
            title: rule.title.clone(),
            severity: rule.level,
            event_id,
            event_time: event_time(rec).unwrap_or_default().to_owned(),
            event_name: s("eventName"),
            event_source: s("eventSource"),
            aws_region: s("awsRegion"),
            account_id: account_id(rec).unwrap_or_default().to_owned(),
            principal_arn: rec.str_at(&["userIdentity", "arn"]).unwrap_or_default().to_owned(),
            principal_type: rec.str_at(&["userIdentity", "type"]).unwrap_or_default().to_owned(),
            source_ip: s("sourceIPAddress"),
            user_agent: s("userAgent"),
            object: object.to_owned(),
            raw_event,
        }
    }
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
}

impl ObjectError {
    /// Stable failure class for the `failures` table and metrics.
    pub fn class(&self) -> &'static str {
        match self {
            ObjectError::Source(e) => e.class(),
            ObjectError::Decode(e) => e.class(),
            ObjectError::S3(e) => e.class(),
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
        activity: Vec<ActivityRow>,
    },
    Failed(ObjectError),
}

#[derive(Debug)]
pub struct ObjectOutcome {
    pub meta: ObjectMeta,
    pub outcome: Outcome,
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
    pub fn process<R: Read>(&mut self, meta: ObjectMeta, reader: R) -> ObjectOutcome {
        let outcome = match self.run(&meta.name, reader) {
            Ok((stats, alerts)) => Outcome::Processed {
                stats,
                alerts,
                activity: self.activity.take(),
            },
            Err(e) => Outcome::Failed(e.into()),
        };
        // Do not keep a huge buffer around after an unusually large object.
        if self.buf.capacity() > 256 << 20 {
            self.buf = Vec::new();
        }
        ObjectOutcome { meta, outcome }
    }

    fn run<R: Read>(&mut self, name: &str, reader: R) -> Result<(DocumentStats, Vec<Alert>), DecodeError> {
        let len = decode::read_object(name, reader, self.opts.max_object_bytes, &mut self.buf)?;
        let rules = &*self.rules;
        let activity = &mut self.activity;
        activity.take();
        let mut alerts = Vec::new();
        let mut first = true;
        let stats = self.decoder.decode(name, &mut self.buf, len, |rec| {
            rules.evaluate(&rec, |rule| alerts.push(Alert::new(rule, &rec, name)));
            activity.add(&rec);
            if first {
                first = false;
                crate::testhook::hit("mid_decode");
            }
        })?;
        Ok((stats, alerts))
    }
}
