//! `trailwatch daemon`: the long-running SQS → S3 ingester. This file only
//! assembles the configuration (flags > environment > TOML file >
//! defaults) and wires signals; the loop is `trailwatch::daemon`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use trailwatch::daemon::{self, DaemonConfig, PoisonPolicy};

use super::scan::parse_bytes;

#[derive(Debug, clap::Args)]
pub struct DaemonArgs {
    /// TOML file with any of the settings below (snake_case keys).
    #[arg(long, value_name = "FILE", env = "TRAILWATCH_CONFIG")]
    config: Option<PathBuf>,
    /// SQS queue URL receiving S3 object-created notifications.
    #[arg(long, env = "TRAILWATCH_QUEUE_URL")]
    queue_url: Option<String>,
    /// Objects processed at the same time [default: 4].
    #[arg(long, env = "TRAILWATCH_CONCURRENCY")]
    concurrency: Option<usize>,
    /// Data directory [default: ./trailwatch-data].
    #[arg(long, env = "TRAILWATCH_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Sigma rule folder; repeat for several [default: $TRAILWATCH_RULES
    /// (separated by `,` or `:`), else the built-in rules].
    #[arg(long = "rules", value_name = "DIR")]
    rules: Vec<PathBuf>,
    /// YAML or TOML file of `|expand` placeholder values (replaces the
    /// configuration's `placeholders`).
    #[arg(long, value_name = "FILE", env = "TRAILWATCH_PLACEHOLDERS")]
    placeholders: Option<PathBuf>,
    /// Serve /metrics and /healthz here (e.g. 127.0.0.1:9464).
    #[arg(long, env = "TRAILWATCH_METRICS_ADDR")]
    metrics_addr: Option<SocketAddr>,
    /// AWS region [default: from the standard chain].
    #[arg(long, env = "TRAILWATCH_REGION")]
    region: Option<String>,
    /// Endpoint for S3 and SQS (AWS_ENDPOINT_URL is honoured too).
    #[arg(long, env = "TRAILWATCH_ENDPOINT_URL")]
    endpoint_url: Option<String>,
    /// Path-style S3 addressing.
    #[arg(long, env = "TRAILWATCH_FORCE_PATH_STYLE", num_args = 0..=1, default_missing_value = "true")]
    force_path_style: Option<bool>,
    /// Visibility timeout, and each heartbeat extension [default: 300].
    #[arg(long, env = "TRAILWATCH_VISIBILITY_TIMEOUT_SECS")]
    visibility_timeout_secs: Option<u64>,
    /// Long-poll wait per receive, at most 20 [default: 20].
    #[arg(long, env = "TRAILWATCH_WAIT_TIME_SECS")]
    wait_time_secs: Option<u64>,
    /// Cap on an object's size [default: 1GiB].
    #[arg(long, env = "TRAILWATCH_MAX_OBJECT_BYTES", value_parser = parse_bytes)]
    max_object_bytes: Option<u64>,
    /// Regex that keys must match to be processed.
    #[arg(long, env = "TRAILWATCH_KEY_PATTERN")]
    key_pattern: Option<String>,
    /// Comma-separated buckets to accept (default: any).
    #[arg(long, env = "TRAILWATCH_ALLOWED_BUCKETS", value_delimiter = ',')]
    allowed_buckets: Option<Vec<String>>,
    /// Messages whose objects failed for good: delete, or leave for the DLQ [default: leave].
    #[arg(long, env = "TRAILWATCH_ON_POISON", value_enum)]
    on_poison: Option<PoisonPolicy>,
    /// Attempts for transient S3 errors [default: 5].
    #[arg(long, env = "TRAILWATCH_MAX_RETRIES")]
    max_retries: Option<u32>,
    /// Time limit on one attempt of an S3 or SQS request [default: 30].
    #[arg(long, env = "TRAILWATCH_REQUEST_TIMEOUT_SECS")]
    request_timeout_secs: Option<u64>,
    /// Aggregate flush interval [default: 60].
    #[arg(long, env = "TRAILWATCH_FLUSH_INTERVAL_SECS")]
    flush_interval_secs: Option<u64>,
    /// Aggregate compaction interval [default: 3600].
    #[arg(long, env = "TRAILWATCH_COMPACT_INTERVAL_SECS")]
    compact_interval_secs: Option<u64>,
    /// Also write each alert's raw event into the Parquet alert parts [default: false].
    #[arg(long, env = "TRAILWATCH_PARQUET_RAW_EVENTS", num_args = 0..=1, default_missing_value = "true")]
    parquet_raw_events: Option<bool>,
    /// Lateness allowed to events in correlation windows [default: 900].
    #[arg(long, env = "TRAILWATCH_CORRELATION_LATENESS_SECS")]
    correlation_lateness_secs: Option<u64>,
    /// Groups kept per correlation rule [default: 10000].
    #[arg(long, env = "TRAILWATCH_CORRELATION_MAX_GROUPS")]
    correlation_max_groups: Option<usize>,
    /// Events kept per correlation group [default: 256].
    #[arg(long, env = "TRAILWATCH_CORRELATION_MAX_EVENTS_PER_GROUP")]
    correlation_max_events_per_group: Option<usize>,
}

impl DaemonArgs {
    fn config(self) -> anyhow::Result<DaemonConfig> {
        let mut c = match &self.config {
            Some(p) => {
                let text = std::fs::read_to_string(p).with_context(|| format!("{}", p.display()))?;
                toml::from_str(&text).with_context(|| format!("{}: invalid configuration", p.display()))?
            }
            None => DaemonConfig::default(),
        };
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { c.$f = v; } )* };
        }
        set!(
            queue_url,
            concurrency,
            data_dir,
            visibility_timeout_secs,
            wait_time_secs,
            max_object_bytes,
            key_pattern,
            allowed_buckets,
            on_poison,
            max_retries,
            request_timeout_secs,
            flush_interval_secs,
            compact_interval_secs,
            parquet_raw_events,
            force_path_style,
            correlation_lateness_secs,
            correlation_max_groups,
            correlation_max_events_per_group
        );
        let env_rules = super::rules_from_env();
        if !self.rules.is_empty() {
            c.rules = self.rules;
        } else if !env_rules.is_empty() {
            c.rules = env_rules;
        }
        if let Some(p) = self.placeholders {
            c.placeholders = Some(daemon::PlaceholderSetting::File(p));
        }
        if self.metrics_addr.is_some() {
            c.metrics_addr = self.metrics_addr;
        }
        if self.region.is_some() {
            c.region = self.region;
        }
        if self.endpoint_url.is_some() {
            c.endpoint_url = self.endpoint_url;
        }
        Ok(c)
    }
}

pub fn run(args: DaemonArgs) -> anyhow::Result<ExitCode> {
    let cfg = args.config()?;
    let placeholders = match &cfg.placeholders {
        Some(p) => p.resolve().map_err(|e| anyhow::anyhow!("{e}"))?,
        None => Default::default(),
    };
    let rules = super::load_rules_or_fail(&cfg.rules, placeholders)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
                return;
            };
            let mut first = true;
            loop {
                tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
                if !first {
                    // Safe: nothing is deleted before it is committed.
                    eprintln!("trailwatch: second signal; exiting now");
                    std::process::exit(130);
                }
                first = false;
                let _ = tx.send(true);
            }
        });
        tracing::info!(queue = %cfg.queue_url, concurrency = cfg.concurrency, data_dir = %cfg.data_dir.display(), rules = rules.len(), "daemon starting");
        let stats = daemon::run(cfg, Arc::new(rules), rx).await?;
        tracing::info!(
            messages_deleted = stats.messages_deleted,
            objects = stats.objects_committed,
            records = stats.records,
            new_alerts = stats.new_alerts,
            "daemon stopped"
        );
        Ok(ExitCode::SUCCESS)
    })
}
