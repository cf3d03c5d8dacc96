//! Subcommands, one file each. This is the only layer that uses `anyhow`:
//! library errors are typed; here they become messages and exit codes.
//!
//! Exit codes (documented in the README):
//! * 0: everything processed;
//! * 1: the run finished, but some objects failed (see stderr and the
//!   `failures` table), or some rule tests failed, or `alerts show` found
//!   no alert or one whose stored raw event no longer parses;
//! * 2: the run could not start or was aborted (bad arguments, rules that do
//!   not load, an unusable data directory).

mod alerts;
mod backfill;
mod bench_floor;
mod committer;
mod compact;
mod daemon;
mod gen_corpus;
mod progress;
mod query;
mod redact;
mod rules_cmd;
mod scan;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use trailwatch::rules::{CorrelationLimits, LoadOptions, RuleError, RuleSet};

/// CloudTrail anomaly detection: Sigma rules over CloudTrail logs, alerts in
/// SQLite.
#[derive(Debug, Parser)]
#[command(name = "trailwatch", version, about, propagate_version = true)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "TRAILWATCH_LOG_FORMAT")]
    log_format: LogFormat,
    /// More logging (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Scan local CloudTrail files and folders, store and print new alerts.
    Scan(scan::ScanArgs),
    /// Process historical CloudTrail from S3 (by day, account, region), resumably.
    Backfill(backfill::BackfillArgs),
    /// Ingest CloudTrail objects announced on an SQS queue, until stopped.
    Daemon(daemon::DaemonArgs),
    /// List stored alerts (newest first), or show one with its raw event.
    Alerts(alerts::AlertsArgs),
    /// Run read-only SQL over the `alerts` and `activity` tables.
    Query(query::QueryArgs),
    /// Merge each aggregate partition's Parquet parts into one file.
    Compact(compact::CompactArgs),
    /// List, test and lint Sigma rules.
    Rules(rules_cmd::RulesArgs),
    /// Write a deterministic benchmark corpus of CloudTrail delivery files with planted alerts.
    GenCorpus(gen_corpus::GenCorpusArgs),
    /// Measure the gunzip (and simd-json parse) floor on one thread (for benches/compare).
    #[command(hide = true)]
    BenchFloor(bench_floor::BenchFloorArgs),
}

/// Where rules come from; shared by every subcommand that evaluates rules.
#[derive(Debug, Clone, clap::Args)]
pub struct RuleArgs {
    /// Load Sigma rules from this folder instead of the built-in set. Repeat
    /// to load several folders into one set. Default: $TRAILWATCH_RULES
    /// (folders separated by `,` or `:`), else the built-in rules.
    #[arg(long = "rules", value_name = "DIR")]
    pub rules: Vec<PathBuf>,
    /// Values for `|expand` placeholders: a YAML (or, if it ends in .toml,
    /// TOML) file mapping each placeholder name to a list of strings.
    #[arg(long, value_name = "FILE", env = "TRAILWATCH_PLACEHOLDERS")]
    pub placeholders: Option<PathBuf>,
}

/// `TRAILWATCH_RULES`: rule folders separated by commas or colons.
pub fn rules_from_env() -> Vec<PathBuf> {
    std::env::var_os("TRAILWATCH_RULES")
        .map(|v| {
            v.to_string_lossy()
                .split([',', ':'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Compiles the rule set from `dirs` (the built-in rules when empty) and
/// reports every error at once.
pub fn load_rules(dirs: &[PathBuf], placeholders: trailwatch::rules::Placeholders) -> (RuleSet, Vec<RuleError>) {
    let opts = LoadOptions { placeholders };
    if dirs.is_empty() {
        RuleSet::embedded(&opts)
    } else {
        RuleSet::load_dirs(dirs, &opts)
    }
}

/// Like [`load_rules`], but any error aborts (exit 2) after listing all.
pub fn load_rules_or_fail(dirs: &[PathBuf], placeholders: trailwatch::rules::Placeholders) -> anyhow::Result<RuleSet> {
    let (set, errors) = load_rules(dirs, placeholders);
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("error: {e}");
        }
        anyhow::bail!("{} rule error(s); nothing was scanned", errors.len());
    }
    Ok(set)
}

impl RuleArgs {
    /// The folders to load: the flags, else `TRAILWATCH_RULES`.
    pub fn dirs(&self) -> Vec<PathBuf> {
        if self.rules.is_empty() {
            rules_from_env()
        } else {
            self.rules.clone()
        }
    }

    /// The configured placeholder values (none without `--placeholders`).
    pub fn placeholders(&self) -> Result<trailwatch::rules::Placeholders, RuleError> {
        match &self.placeholders {
            Some(p) => trailwatch::rules::placeholders::load(p),
            None => Ok(Default::default()),
        }
    }

    /// Compiles the rule set, collecting every error (including an unusable
    /// placeholders file).
    pub fn load_all(&self) -> (RuleSet, Vec<RuleError>) {
        match self.placeholders() {
            Ok(ph) => load_rules(&self.dirs(), ph),
            Err(e) => (RuleSet::default(), vec![e]),
        }
    }

    /// Loads the rule set; any load error aborts (exit 2) after listing all.
    pub fn load(&self) -> anyhow::Result<RuleSet> {
        let placeholders = self.placeholders().map_err(|e| anyhow::anyhow!("{e}"))?;
        load_rules_or_fail(&self.dirs(), placeholders)
    }

    pub fn describe(&self) -> String {
        let dirs = self.dirs();
        if dirs.is_empty() {
            "built-in rules".into()
        } else {
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        }
    }
}

/// Bounds of the correlation windows (scan and backfill; the daemon has the
/// same keys in its configuration).
#[derive(Debug, Clone, clap::Args)]
pub struct CorrelationArgs {
    /// How late, in event time, an event may arrive and still count in a
    /// correlation window.
    #[arg(long, value_name = "SECS", env = "TRAILWATCH_CORRELATION_LATENESS_SECS", default_value_t = CorrelationLimits::default().lateness_secs)]
    pub correlation_lateness_secs: u64,
    /// Groups kept per correlation rule; the least recently updated are evicted.
    #[arg(long, value_name = "N", env = "TRAILWATCH_CORRELATION_MAX_GROUPS", default_value_t = CorrelationLimits::default().max_groups)]
    pub correlation_max_groups: usize,
    /// Events kept per correlation group; the oldest are dropped.
    #[arg(long, value_name = "N", env = "TRAILWATCH_CORRELATION_MAX_EVENTS_PER_GROUP", default_value_t = CorrelationLimits::default().max_events_per_group)]
    pub correlation_max_events_per_group: usize,
}

impl CorrelationArgs {
    pub fn limits(&self) -> CorrelationLimits {
        CorrelationLimits {
            lateness_secs: self.correlation_lateness_secs,
            max_groups: self.correlation_max_groups,
            max_events_per_group: self.correlation_max_events_per_group,
        }
    }
}

/// The data directory, shared by every command that touches the store.
#[derive(Debug, Clone, clap::Args)]
pub struct DataDirArgs {
    /// Where alerts.db (and aggregates) live; created 0700.
    #[arg(
        long,
        value_name = "DIR",
        env = "TRAILWATCH_DATA_DIR",
        default_value = "./trailwatch-data"
    )]
    pub data_dir: PathBuf,
}

/// How a batch run (scan, backfill) writes the Parquet aggregates.
#[derive(Debug, Clone, clap::Args)]
pub struct AggregateArgs {
    /// Staged aggregate rows that trigger a flush to Parquet.
    #[arg(long, value_name = "ROWS", default_value_t = 100_000, hide = true)]
    pub flush_rows: u64,
    /// Also write each alert's raw event into the Parquet alert parts
    /// (`raw_event` is null there otherwise; alerts.db always has it).
    #[arg(long, env = "TRAILWATCH_PARQUET_RAW_EVENTS")]
    pub parquet_raw_events: bool,
}

impl AggregateArgs {
    /// The Parquet side of `data_dir`, set up as asked.
    pub fn open(&self, data_dir: &std::path::Path) -> trailwatch::store::Aggregates {
        trailwatch::store::Aggregates::new(data_dir).with_alert_raw_events(self.parquet_raw_events)
    }
}

/// Ctrl-C sets `stop` (the run finishes in-flight work and commits it); a
/// second Ctrl-C exits at once, which is safe: nothing unfinished was
/// acknowledged or recorded as done.
pub fn stop_on_interrupt(what: &'static str) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    use std::sync::atomic::Ordering;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("trailwatch: interrupted; finishing in-flight {what} (Ctrl-C again to quit now)");
    });
    stop
}

/// Errors that abort a command with exit code 2.
fn fatal(e: anyhow::Error) -> ExitCode {
    // Each cause once: `{:#}` printed a layer error's source twice
    // (`…/data: File exists (os error 17): File exists (os error 17)`).
    eprintln!("trailwatch: {}", trailwatch::error_text::chain_text(e.as_ref()));
    ExitCode::from(2)
}

fn init_logging(format: LogFormat, verbose: u8) {
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::{EnvFilter, filter::filter_fn, fmt};
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Whatever RUST_LOG says, the SDK's internals never log at trace: they
    // print identities and signed requests there (see redact.rs).
    let no_sdk_trace = filter_fn(|m| !(*m.level() == tracing::Level::TRACE && redact::is_capped(m.target())));
    let writer = redact::RedactingStderr::new(redact::secrets_from_env());
    let registry = tracing_subscriber::registry().with(filter);
    // Colours only on a terminal: a pipe or a file (CI, journald,
    // `2> scan.log`) gets plain text. NO_COLOR (no-color.org) turns them off
    // everywhere.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    match format {
        LogFormat::Text => registry
            .with(
                fmt::layer()
                    .with_ansi(ansi)
                    .with_target(false)
                    .with_writer(writer)
                    .with_filter(no_sdk_trace),
            )
            .init(),
        LogFormat::Json => registry
            .with(fmt::layer().json().with_writer(writer).with_filter(no_sdk_trace))
            .init(),
    }
}

pub fn main() -> ExitCode {
    // Everything trailwatch creates is private to its owner.
    // SAFETY: umask is process-wide and set before any thread starts.
    unsafe {
        libc::umask(0o077);
    }
    let cli = Cli::parse();
    // Analysts pipe these into `head` and `less`. Rust ignores SIGPIPE, so a
    // reader that went away made `alerts show` panic in `println!` and the
    // others report "Broken pipe" and exit 2; now they end as `cat` and
    // `grep` do, silently, by the signal. Only commands that do no network
    // I/O: with the default action, a socket write without MSG_NOSIGNAL
    // anywhere in the AWS SDK's stack would kill a scan or the daemon
    // instead of giving it a retriable error. (`scan` keeps its error,
    // "writing alerts to stdout: Broken pipe", and its exit code 2: it
    // stopped before its end, which a script should see.)
    if matches!(cli.command, Command::Alerts(_) | Command::Query(_) | Command::Rules(_)) {
        // SAFETY: no thread has started yet; this only restores the
        // default action of one signal.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    init_logging(cli.log_format, cli.verbose);
    let result = match cli.command {
        Command::Scan(args) => scan::run(args),
        Command::Backfill(args) => backfill::run(args),
        Command::Daemon(args) => daemon::run(args),
        Command::Alerts(args) => alerts::run(args),
        Command::Query(args) => query::run(args),
        Command::Compact(args) => compact::run(args),
        Command::Rules(args) => rules_cmd::run(args),
        Command::GenCorpus(args) => gen_corpus::run(args),
        Command::BenchFloor(args) => bench_floor::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => fatal(e),
    }
}

/// Formats one rule error for listings.
pub fn rule_error_line(e: &RuleError) -> String {
    format!("error: {e}")
}
