//! The committing end shared by the commands that process objects: batches
//! outcomes into SQLite transactions, prints the alerts that were new,
//! keeps the run's totals, and flushes aggregates to Parquet when enough
//! rows are staged.

use std::io::Write;

use anyhow::Context as _;
use std::sync::Arc;

use trailwatch::pipeline::{self, ObjectOutcome, Outcome};
use trailwatch::rules::{CorrelationLimits, Correlator, RuleSet};
use trailwatch::store::{Aggregates, Store};

use crate::output::AlertWriter;

/// Counts for the end-of-run summary.
#[derive(Debug, Default, Clone)]
pub struct Totals {
    pub objects: u64,
    pub ok: u64,
    pub digests: u64,
    pub unchanged: u64,
    pub failed: u64,
    pub records: u64,
    pub skipped: u64,
    pub new_alerts: u64,
    /// Stored (compressed) bytes of the processed objects.
    pub bytes: u64,
    /// New alerts per rule.
    pub alerts_by_rule: std::collections::BTreeMap<String, u64>,
}

impl Totals {
    /// The end-of-run summary on stderr, shared by `scan` and `backfill`:
    /// counts, alerts new/total, elapsed time and rates, then the new alerts
    /// per rule. `unchanged` names objects the ledger already had.
    pub fn report(&self, verb: &str, unchanged: &str, total_alerts: u64, secs: f64) {
        let secs_nz = secs.max(1e-9);
        eprintln!(
            "{verb} {} objects ({} ok, {} digest, {} {unchanged}, {} failed): {} records, {} skipped; \
             alerts: {} new, {total_alerts} total; {secs:.2} s, {:.1} objects/s, {:.0} records/s",
            self.objects,
            self.ok,
            self.digests,
            self.unchanged,
            self.failed,
            self.records,
            self.skipped,
            self.new_alerts,
            (self.ok + self.failed) as f64 / secs_nz,
            self.records as f64 / secs_nz,
        );
        for (rule, n) in &self.alerts_by_rule {
            eprintln!("  {rule}: {n} new");
        }
    }
}

/// How many staged activity rows an alert awaiting export counts as.
const ALERT_WEIGHT: u64 = 10;

/// When a batch is committed: at `max_objects` objects, at `max_bytes` of
/// outcomes (with a broad rule pack an object carries hundreds of raw
/// events), or once its oldest outcome has waited `max_wait`, whichever
/// comes first.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    pub max_objects: usize,
    pub max_bytes: usize,
    pub max_wait: std::time::Duration,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_objects: 256,
            max_bytes: 48 << 20,
            max_wait: std::time::Duration::from_millis(500),
        }
    }
}

pub struct Committer<W: Write> {
    pub store: Store,
    aggregates: Aggregates,
    writer: AlertWriter<W>,
    pub totals: Totals,
    batch: Vec<ObjectOutcome>,
    /// [`ObjectOutcome::approx_bytes`] of `batch`.
    batch_bytes: usize,
    /// When the first outcome of `batch` was queued.
    batch_since: Option<std::time::Instant>,
    limits: BatchLimits,
    staged: u64,
    flush_rows: u64,
    rules: Arc<RuleSet>,
    correlator: Correlator,
}

impl<W: Write> Committer<W> {
    /// Wraps an open store; finishes any interrupted flush first and
    /// restores the correlation windows that the store persisted.
    pub fn new(
        mut store: Store,
        aggregates: Aggregates,
        writer: AlertWriter<W>,
        flush_rows: u64,
        rules: Arc<RuleSet>,
        limits: CorrelationLimits,
    ) -> anyhow::Result<Self> {
        aggregates
            .recover(&mut store)
            .context("recovering the Parquet aggregates")?;
        let staged = store.staged_rows()?;
        let correlator = store
            .correlator(&rules, limits)
            .context("restoring correlation state")?;
        Ok(Committer {
            store,
            aggregates,
            writer,
            totals: Totals::default(),
            batch: Vec::new(),
            batch_bytes: 0,
            batch_since: None,
            limits: BatchLimits::default(),
            staged,
            flush_rows,
            rules,
            correlator,
        })
    }

    /// Queues one outcome (logging failures) for the next commit.
    pub fn push(&mut self, oc: ObjectOutcome) {
        let t = &mut self.totals;
        t.objects += 1;
        match &oc.outcome {
            Outcome::Processed { stats, .. } => {
                if stats.digest {
                    t.digests += 1;
                } else {
                    t.ok += 1;
                }
                t.records += stats.records;
                t.skipped += stats.skipped();
                t.bytes += oc.meta.size;
            }
            Outcome::Failed(e) => {
                t.failed += 1;
                tracing::error!(object = %oc.meta.name, class = e.class(), "{e}");
            }
        }
        self.batch_bytes += oc.approx_bytes();
        self.batch_since.get_or_insert_with(std::time::Instant::now);
        self.batch.push(oc);
    }

    /// Replaces the default [`BatchLimits`].
    pub fn with_limits(mut self, limits: BatchLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Whether the queued outcomes have reached a [`BatchLimits`] limit.
    pub fn due(&self) -> bool {
        let l = &self.limits;
        self.batch.len() >= l.max_objects
            || self.batch_bytes >= l.max_bytes
            || self.batch_since.is_some_and(|t| t.elapsed() >= l.max_wait)
    }

    /// Commits the queued outcomes in one transaction, prints new alerts,
    /// and flushes aggregates if enough rows are staged.
    pub fn commit(&mut self) -> anyhow::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let state = pipeline::correlate(&self.rules, &mut self.correlator, &mut self.batch);
        let summary = self
            .store
            .commit(&self.batch, &state)
            .context("committing to the alert store")?;
        for (oc, fresh) in self.batch.iter().zip(&summary.new_alerts) {
            if let Outcome::Processed { alerts, .. } = &oc.outcome {
                for &i in fresh {
                    *self
                        .totals
                        .alerts_by_rule
                        .entry(alerts[i].rule_name.clone())
                        .or_default() += 1;
                    self.writer.write(&alerts[i]).context("writing alerts to stdout")?;
                }
            }
        }
        self.writer.flush().context("writing alerts to stdout")?;
        self.totals.new_alerts += summary.new_alert_count as u64;
        // A flush exports the staged activity rows and the alerts stored
        // since the last one, holding both in memory: an alert (with its raw
        // event) weighs about as much as ten activity rows. Counting alerts
        // too keeps a run that fires a lot (a broad rule pack) in bounded
        // memory.
        self.staged += summary.staged_rows + ALERT_WEIGHT * summary.new_alert_count as u64;
        self.batch.clear();
        self.batch_bytes = 0;
        self.batch_since = None;
        if self.staged >= self.flush_rows {
            self.flush_aggregates()?;
        }
        Ok(())
    }

    pub fn flush_aggregates(&mut self) -> anyhow::Result<()> {
        self.aggregates
            .flush(&mut self.store)
            .context("flushing aggregates to Parquet")?;
        self.staged = 0;
        Ok(())
    }

    /// Commits what is left, flushes the aggregates and the alert output.
    pub fn finish(mut self) -> anyhow::Result<(Store, Totals)> {
        self.commit()?;
        self.flush_aggregates()?;
        self.writer.finish().context("writing alerts to stdout")?;
        Ok((self.store, self.totals))
    }
}
