//! The daemon's configuration. Every field can be given in the TOML file
//! named by `--config`, as an environment variable `TRAILWATCH_<FIELD>`
//! (upper case), or as the flag `--<field-with-dashes>`. Flags win over the
//! environment, which wins over the file, which wins over the defaults.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

use crate::rules::RuleError;
use crate::rules::placeholders::{self, PlaceholderValues, Placeholders};

/// Where `|expand` placeholder values come from: a YAML/TOML file
/// (`placeholders = "placeholders.yml"`), or a table in the configuration
/// itself (`[placeholders]` with `Name = ["value", ...]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum PlaceholderSetting {
    File(PathBuf),
    Values(HashMap<String, PlaceholderValues>),
}

impl PlaceholderSetting {
    /// The values, reading the file if the setting names one.
    pub fn resolve(&self) -> Result<Placeholders, RuleError> {
        match self {
            PlaceholderSetting::File(p) => placeholders::load(p),
            PlaceholderSetting::Values(v) => Ok(placeholders::from_config(v.clone())),
        }
    }
}

/// `rules = "dir"` or `rules = ["dir", ...]`.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PathBuf>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(PathBuf),
        Many(Vec<PathBuf>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(p) => vec![p],
        OneOrMany::Many(v) => v,
    })
}

/// What to do with a message whose object failed for good (missing,
/// access denied after retries, corrupt, over the size cap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PoisonPolicy {
    /// Delete the message once the failure is recorded.
    Delete,
    /// Leave it: SQS redelivers it and, after maxReceiveCount, its redrive
    /// policy moves it to the dead-letter queue.
    Leave,
}

/// Settings of `trailwatch daemon`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaemonConfig {
    /// URL of the SQS queue that receives S3 object-created notifications.
    pub queue_url: String,
    /// Objects downloaded and processed at the same time.
    pub concurrency: usize,
    /// Data directory (alerts.db and aggregates).
    pub data_dir: PathBuf,
    /// Sigma rule folders, loaded into one set; the built-in rules when
    /// empty. A single string is a list of one.
    #[serde(deserialize_with = "one_or_many")]
    pub rules: Vec<PathBuf>,
    /// Values for `|expand` placeholders: a file name, or a table.
    pub placeholders: Option<PlaceholderSetting>,
    /// Address for `/metrics` (Prometheus text) and `/healthz`.
    pub metrics_addr: Option<SocketAddr>,
    /// AWS region; from the standard chain when unset.
    pub region: Option<String>,
    /// Endpoint override for S3 and SQS (S3-compatible stores, tests).
    pub endpoint_url: Option<String>,
    /// Path-style S3 addressing.
    pub force_path_style: bool,
    /// Visibility timeout asked for on receive, and granted again by each
    /// heartbeat while an object of the message is still in progress.
    pub visibility_timeout_secs: u64,
    /// Long-poll wait of each ReceiveMessage (at most 20).
    pub wait_time_secs: u64,
    /// Cap on an object's stored and decompressed size.
    pub max_object_bytes: u64,
    /// Regular expression that object keys must match to be processed;
    /// others are acknowledged without download.
    pub key_pattern: String,
    /// Buckets the daemon accepts notifications for (empty: any).
    pub allowed_buckets: Vec<String>,
    /// Messages whose objects failed for good.
    pub on_poison: PoisonPolicy,
    /// Attempts for a transient S3 error before the message is left for
    /// redelivery.
    pub max_retries: u32,
    /// Time limit on one attempt of an S3 or SQS request, up to its response
    /// headers (plus the long-poll wait for a receive). A stalled connection
    /// is then retried instead of holding an object, or the receiver, for good.
    pub request_timeout_secs: u64,
    /// How often staged aggregates are flushed to Parquet.
    pub flush_interval_secs: u64,
    /// How often aggregate partitions are compacted.
    pub compact_interval_secs: u64,
    /// Also write each alert's raw event into the Parquet alert parts
    /// (`raw_event` is null there otherwise; alerts.db always has it).
    pub parquet_raw_events: bool,
    /// How late (in event time) an event may arrive and still count in a
    /// correlation window. CloudTrail delivers nearly all files within 15
    /// minutes.
    pub correlation_lateness_secs: u64,
    /// Groups kept per correlation rule (least recently updated evicted).
    pub correlation_max_groups: usize,
    /// Events kept per correlation group (oldest dropped).
    pub correlation_max_events_per_group: usize,
}

impl DaemonConfig {
    pub fn correlation_limits(&self) -> crate::rules::CorrelationLimits {
        crate::rules::CorrelationLimits {
            lateness_secs: self.correlation_lateness_secs,
            max_groups: self.correlation_max_groups,
            max_events_per_group: self.correlation_max_events_per_group,
        }
    }
}

/// Keys under `CloudTrail/` ending in `.json.gz` (or `.json`); digest and
/// Insights files live under `CloudTrail-Digest/` and `CloudTrail-Insight/`
/// and do not match.
pub const DEFAULT_KEY_PATTERN: &str = r"(^|/)CloudTrail/.*\.json(\.gz)?$";

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            queue_url: String::new(),
            concurrency: 4,
            data_dir: PathBuf::from("./trailwatch-data"),
            rules: Vec::new(),
            placeholders: None,
            metrics_addr: None,
            region: None,
            endpoint_url: None,
            force_path_style: false,
            visibility_timeout_secs: 300,
            wait_time_secs: 20,
            max_object_bytes: crate::decode::DEFAULT_MAX_OBJECT_BYTES,
            key_pattern: DEFAULT_KEY_PATTERN.to_owned(),
            allowed_buckets: Vec::new(),
            on_poison: PoisonPolicy::Leave,
            max_retries: 5,
            request_timeout_secs: 30,
            flush_interval_secs: 60,
            compact_interval_secs: 3600,
            parquet_raw_events: false,
            correlation_lateness_secs: crate::rules::CorrelationLimits::default().lateness_secs,
            correlation_max_groups: crate::rules::CorrelationLimits::default().max_groups,
            correlation_max_events_per_group: crate::rules::CorrelationLimits::default().max_events_per_group,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_file_overrides_defaults_and_rejects_unknown_keys() {
        let c: DaemonConfig = toml::from_str(
            "queue_url = \"http://q\"\nconcurrency = 8\nvisibility_timeout_secs = 60\non_poison = \"delete\"\nallowed_buckets = [\"a\"]\n",
        )
        .unwrap();
        assert_eq!(c.queue_url, "http://q");
        assert_eq!(c.concurrency, 8);
        assert_eq!(c.visibility_timeout_secs, 60);
        assert_eq!(c.on_poison, PoisonPolicy::Delete);
        assert_eq!(c.wait_time_secs, 20);
        assert!(toml::from_str::<DaemonConfig>("visibility_timeout = 5").is_err());
    }

    #[test]
    fn rules_take_one_folder_or_a_list_and_placeholders_a_file_or_a_table() {
        let c: DaemonConfig = toml::from_str("rules = \"rules\"\nplaceholders = \"ph.yml\"\n").unwrap();
        assert_eq!(c.rules, vec![PathBuf::from("rules")]);
        assert_eq!(c.placeholders, Some(PlaceholderSetting::File("ph.yml".into())));
        let c: DaemonConfig = toml::from_str(
            "rules = [\"rules\", \"/srv/sigma\"]\n[placeholders]\nLegitimate_Countries = [\"DE\", \"FR\"]\nOffice = \"192.0.2.*\"\n",
        )
        .unwrap();
        assert_eq!(c.rules, vec![PathBuf::from("rules"), PathBuf::from("/srv/sigma")]);
        let ph = c.placeholders.unwrap().resolve().unwrap();
        assert_eq!(ph["Legitimate_Countries"], vec!["DE", "FR"]);
        assert_eq!(ph["Office"], vec!["192.0.2.*"]);
        let missing = PlaceholderSetting::File("/nonexistent/ph.yml".into())
            .resolve()
            .unwrap_err();
        assert!(missing.to_string().starts_with("/nonexistent/ph.yml:"), "{missing}");
    }

    #[test]
    fn default_key_pattern_takes_logs_only() {
        let re = regex::Regex::new(DEFAULT_KEY_PATTERN).unwrap();
        assert!(re.is_match("AWSLogs/1/CloudTrail/us-east-1/2026/10/05/1_CloudTrail_us-east-1_x.json.gz"));
        assert!(re.is_match("AWSLogs/o-abc/1/CloudTrail/us-east-1/2026/10/05/x.json.gz"));
        assert!(!re.is_match("AWSLogs/1/CloudTrail-Digest/us-east-1/2026/10/05/x.json.gz"));
        assert!(!re.is_match("AWSLogs/1/CloudTrail-Insight/us-east-1/2026/10/05/x.json.gz"));
        assert!(!re.is_match("AWSLogs/1/elasticloadbalancing/x.log.gz"));
    }
}
