//! A deterministic benchmark corpus: the real CloudTrail records of the shared
//! datasets replayed as CloudTrail delivery files, with planted detections.
//!
//! # What it writes
//!
//! `AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<rand>.json.gz`
//! files, each a gzipped `{"Records":[...]}` document of about
//! `records_per_file` records (±25 %), as AWS delivers them. Every record is
//! a real record of the grycap and invictus datasets with a fresh `eventID`,
//! `requestID` and `eventTime`, the file's region as `awsRegion`, and the
//! file's fictional account wherever the source account appeared (ARNs,
//! `accountId`, `recipientAccountId`, principal ids, bucket names...). Files
//! are spread over 4 fictional accounts × 4 regions, one file per stream
//! every 5 minutes from 2026-10-01T00:00:00Z.
//!
//! # Why the expected alerts are exact
//!
//! The real records contain detections of their own (console logins without
//! MFA, security groups opened to the world, root use). Rather than guessing
//! how many times each would be replayed, those seed records are *left out*:
//! every seed is rendered once and evaluated with the four mandatory rules,
//! and only seeds that fire none of them join the replay pool. Positives are
//! then *planted* from fixed, fictional templates (every variant the rules
//! cover: nested/IPv6/legacy/ModifySecurityGroupRules world ingress, root
//! console and API use, logins with MFA missing or "No", key deletion and
//! disabling), together with near misses that must not fire (root used by a
//! service, MFA "YES", SAML and Identity Center logins, failed calls,
//! egress, private ranges, DisableKeyRotation...). Each template is checked
//! against the rules when the generator starts: a positive must fire exactly
//! its rule, a near miss none. So the manifest's expected count per rule is
//! exact by construction, and `benches/compare` checks independent
//! implementations (DuckDB SQL, Python) against the same planted set.
//!
//! # Determinism and size
//!
//! File `i` is a pure function of (seed, i, the datasets): its random stream
//! is derived from both, so files can be rendered on any number of threads
//! and the output is byte-identical for the same seed. `size` counts the
//! compressed bytes written under `AWSLogs/`; files are added in index order
//! while the total stays within `size`, so the corpus is at most `size` and
//! short of it by less than one file.

use std::collections::{BTreeMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::Value;

use crate::decode::{self, Decoder};
use crate::rules::{LoadOptions, RuleSet};

/// The dataset folders whose records are replayed, relative to the datasets root.
pub const SEED_DATASETS: [&str; 2] = ["grycap_cloudtrail-tracker", "invictus-ir_aws_dataset"];

/// Fictional accounts (AWS documentation examples) the corpus is spread over.
pub const ACCOUNTS: [&str; 4] = ["111122223333", "444455556666", "123456789012", "777788889999"];

/// Regions the corpus is spread over.
pub const REGIONS: [&str; 4] = ["us-east-1", "eu-west-1", "us-west-2", "ap-southeast-2"];

/// The four mandatory rules, in manifest order.
pub const MANDATORY_RULES: [&str; 4] = [
    "root_account_usage",
    "console_login_without_mfa",
    "kms_key_deletion",
    "security_group_opened_to_world",
];

const MANDATORY_SOURCES: [(&str, &str); 4] = [
    (
        "rules/mandatory/root_account_usage.yml",
        include_str!("../rules/mandatory/root_account_usage.yml"),
    ),
    (
        "rules/mandatory/console_login_without_mfa.yml",
        include_str!("../rules/mandatory/console_login_without_mfa.yml"),
    ),
    (
        "rules/mandatory/kms_key_deletion.yml",
        include_str!("../rules/mandatory/kms_key_deletion.yml"),
    ),
    (
        "rules/mandatory/security_group_opened_to_world.yml",
        include_str!("../rules/mandatory/security_group_opened_to_world.yml"),
    ),
];

/// 2026-10-01T00:00:00Z: where the corpus' clock starts.
const EPOCH_START: i64 = 1_790_812_800;
/// CloudTrail delivers a file per region about every 5 minutes.
const WINDOW_SECS: i64 = 300;

/// Why the corpus could not be generated. Every variant names the file or
/// template concerned.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: cannot use as seed data: {reason}")]
    Dataset { path: PathBuf, reason: String },
    #[error("{dir}: no CloudTrail records found in {datasets:?}", datasets = SEED_DATASETS)]
    NoSeeds { dir: PathBuf },
    #[error("planted template {name}: {reason}")]
    Template { name: String, reason: String },
    #[error("{path}: output directory is not empty; choose a new one")]
    OutNotEmpty { path: PathBuf },
    #[error("--size {size} is smaller than the first file ({first} bytes)")]
    TooSmall { size: u64, first: u64 },
}

// ------------------------------------------------------------------ random

/// SplitMix64: tiny, fast, and fixed forever, so a seed means the same
/// corpus whatever version of a random crate is in the tree.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0); the modulo bias is irrelevant here.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A random UUID (version 4 layout), lowercase.
    fn uuid(&mut self, out: &mut Vec<u8>) {
        let a = self.next_u64();
        let b = self.next_u64();
        let a = (a & !0xF000) | 0x4000; // version nibble
        let b = (b & !(0xC << 60)) | (0x8 << 60); // variant bits
        let hex = format!("{a:016x}{b:016x}");
        let h = hex.as_bytes();
        out.extend_from_slice(&h[0..8]);
        out.push(b'-');
        out.extend_from_slice(&h[8..12]);
        out.push(b'-');
        out.extend_from_slice(&h[12..16]);
        out.push(b'-');
        out.extend_from_slice(&h[16..20]);
        out.push(b'-');
        out.extend_from_slice(&h[20..32]);
    }
}

/// The random stream of file `index`: independent of every other file's.
fn file_rng(seed: u64, index: u64) -> Rng {
    let mut r = Rng::new(seed ^ 0x5EED_C0DE_0000_0000);
    let k = r.next_u64();
    let mut r = Rng::new(k ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03));
    r.next_u64();
    r
}

// ------------------------------------------------------------------- time

/// `YYYY-MM-DDTHH:MM:SSZ` of a Unix time (proleptic Gregorian, UTC).
fn iso_time(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

/// Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

// -------------------------------------------------------------- templates

/// What a hole in a record template is filled with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hole {
    EventId,
    RequestId,
    EventTime,
    Region,
    Account,
}

#[derive(Debug, Clone)]
enum Piece {
    Lit(Box<[u8]>),
    Hole(Hole),
}

/// One record as compact JSON text with holes for the values that change
/// on every replay.
#[derive(Debug, Clone)]
pub struct Template {
    pieces: Vec<Piece>,
}

/// The values for one rendering of a template.
struct Fill<'a> {
    event_id: &'a [u8],
    request_id: &'a [u8],
    event_time: &'a [u8],
    region: &'a [u8],
    account: &'a [u8],
}

impl Template {
    /// Builds a template from a record: the top-level `eventID`,
    /// `requestID`, `eventTime` and `awsRegion` strings become holes, and
    /// so does every occurrence of one of `accounts` (as a whole 12-digit
    /// number) in any string.
    fn from_record(rec: &Value, accounts: &[String]) -> Template {
        let mut b = Builder {
            pieces: Vec::new(),
            lit: Vec::new(),
            accounts,
        };
        b.record(rec);
        b.finish()
    }

    fn render(&self, fill: &Fill<'_>, out: &mut Vec<u8>) {
        for p in &self.pieces {
            match p {
                Piece::Lit(s) => out.extend_from_slice(s),
                Piece::Hole(h) => out.extend_from_slice(match h {
                    Hole::EventId => fill.event_id,
                    Hole::RequestId => fill.request_id,
                    Hole::EventTime => fill.event_time,
                    Hole::Region => fill.region,
                    Hole::Account => fill.account,
                }),
            }
        }
    }
}

struct Builder<'a> {
    pieces: Vec<Piece>,
    lit: Vec<u8>,
    accounts: &'a [String],
}

impl Builder<'_> {
    fn hole(&mut self, h: Hole) {
        if !self.lit.is_empty() {
            self.pieces.push(Piece::Lit(std::mem::take(&mut self.lit).into()));
        }
        self.pieces.push(Piece::Hole(h));
    }

    fn finish(mut self) -> Template {
        if !self.lit.is_empty() {
            self.pieces.push(Piece::Lit(std::mem::take(&mut self.lit).into()));
        }
        Template { pieces: self.pieces }
    }

    fn record(&mut self, rec: &Value) {
        let Some(obj) = rec.as_object() else {
            return self.value(rec);
        };
        self.lit.push(b'{');
        for (i, (k, v)) in obj.iter().enumerate() {
            if i > 0 {
                self.lit.push(b',');
            }
            self.string(k);
            self.lit.push(b':');
            let hole = match (k.as_str(), v) {
                ("eventID", Value::String(_)) => Some(Hole::EventId),
                ("requestID", Value::String(_)) => Some(Hole::RequestId),
                ("eventTime", Value::String(_)) => Some(Hole::EventTime),
                ("awsRegion", Value::String(_)) => Some(Hole::Region),
                _ => None,
            };
            match hole {
                Some(h) => {
                    self.lit.push(b'"');
                    self.hole(h);
                    self.lit.push(b'"');
                }
                None => self.value(v),
            }
        }
        self.lit.push(b'}');
    }

    fn value(&mut self, v: &Value) {
        match v {
            Value::Object(obj) => {
                self.lit.push(b'{');
                for (i, (k, v)) in obj.iter().enumerate() {
                    if i > 0 {
                        self.lit.push(b',');
                    }
                    self.string(k);
                    self.lit.push(b':');
                    self.value(v);
                }
                self.lit.push(b'}');
            }
            Value::Array(arr) => {
                self.lit.push(b'[');
                for (i, v) in arr.iter().enumerate() {
                    if i > 0 {
                        self.lit.push(b',');
                    }
                    self.value(v);
                }
                self.lit.push(b']');
            }
            Value::String(s) => self.string(s),
            other => self.lit.extend_from_slice(other.to_string().as_bytes()),
        }
    }

    /// A JSON string, with every occurrence of a source account turned into
    /// a hole: inside ARNs, URL-encoded policies, longer numbers alike, so
    /// that no source account survives. Escaping never touches digits, so
    /// searching the escaped text finds them all.
    fn string(&mut self, s: &str) {
        let text = serde_json::to_string(s).expect("strings serialize");
        let bytes = text.as_bytes();
        let mut from = 0;
        let mut i = 0;
        while i + 12 <= bytes.len() {
            if bytes[i].is_ascii_digit() && self.accounts.iter().any(|a| a.as_bytes() == &bytes[i..i + 12]) {
                self.lit.extend_from_slice(&bytes[from..i]);
                self.hole(Hole::Account);
                i += 12;
                from = i;
            } else {
                i += 1;
            }
        }
        self.lit.extend_from_slice(&bytes[from..]);
    }
}

// ------------------------------------------------------------ plantings

/// The account written in planted templates; replaced like a seed account.
const PLANT_ACCOUNT: &str = "000000000000";

/// Planted records: (rule that must fire, or "" for a near miss that must
/// not, a short name, the record). All values are fictional: documentation
/// IP ranges, the placeholder account.
const PLANTS: &[(&str, &str, &str)] = &[
    // root_account_usage
    (
        "root_account_usage",
        "root-console-login",
        r#"{"eventVersion":"1.08","userIdentity":{"type":"Root","principalId":"000000000000","arn":"arn:aws:iam::000000000000:root","accountId":"000000000000","accessKeyId":""},"eventTime":"T","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"R","sourceIPAddress":"203.0.113.7","userAgent":"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0","requestParameters":null,"responseElements":{"ConsoleLogin":"Success"},"additionalEventData":{"LoginTo":"https://console.aws.amazon.com/console/home","MobileVersion":"No","MFAUsed":"Yes"},"eventID":"E","readOnly":false,"eventType":"AwsConsoleSignIn","managementEvent":true,"recipientAccountId":"000000000000","eventCategory":"Management"}"#,
    ),
    (
        "root_account_usage",
        "root-api-call",
        r#"{"eventVersion":"1.08","userIdentity":{"type":"Root","principalId":"000000000000","arn":"arn:aws:iam::000000000000:root","accountId":"000000000000","accessKeyId":"ASIAEXAMPLEROOTKEY01"},"eventTime":"T","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","awsRegion":"R","sourceIPAddress":"198.51.100.23","userAgent":"aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0 exe/x86_64","requestParameters":{"Host":"s3.amazonaws.com"},"responseElements":null,"requestID":"Q","eventID":"E","readOnly":true,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"000000000000","eventCategory":"Management"}"#,
    ),
    (
        "root_account_usage",
        "root-v101-no-eventtype",
        r#"{"eventVersion":"1.01","userIdentity":{"type":"Root","principalId":"000000000000","arn":"arn:aws:iam::000000000000:root","accountId":"000000000000","accessKeyId":"AKIAEXAMPLEROOTKEY02"},"eventTime":"T","eventSource":"iam.amazonaws.com","eventName":"CreateAccessKey","awsRegion":"R","sourceIPAddress":"203.0.113.50","userAgent":"console.amazonaws.com","requestParameters":null,"responseElements":{"accessKey":{"accessKeyId":"AKIAEXAMPLENEWKEY003","status":"Active","userName":"root","createDate":"Oct 1, 2026 9:00:00 AM"}},"requestID":"Q","eventID":"E"}"#,
    ),
    // console_login_without_mfa
    (
        "console_login_without_mfa",
        "login-mfa-no",
        r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLEALICE0001","arn":"arn:aws:iam::000000000000:user/alice","accountId":"000000000000","userName":"alice"},"eventTime":"T","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"R","sourceIPAddress":"198.51.100.4","userAgent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36","requestParameters":null,"responseElements":{"ConsoleLogin":"Success"},"additionalEventData":{"LoginTo":"https://console.aws.amazon.com/console/home","MobileVersion":"No","MFAUsed":"No"},"eventID":"E","readOnly":false,"eventType":"AwsConsoleSignIn","managementEvent":true,"recipientAccountId":"000000000000","eventCategory":"Management"}"#,
    ),
    (
        "console_login_without_mfa",
        "login-mfa-field-missing",
        r#"{"eventVersion":"1.05","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLEBOB000002","arn":"arn:aws:iam::000000000000:user/bob","accountId":"000000000000","userName":"bob"},"eventTime":"T","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"R","sourceIPAddress":"192.0.2.77","userAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Safari/605.1.15","requestParameters":null,"responseElements":{"ConsoleLogin":"Success"},"additionalEventData":{"LoginTo":"https://console.aws.amazon.com/console/home","MobileVersion":"No"},"eventID":"E","eventType":"AwsConsoleSignIn","recipientAccountId":"000000000000"}"#,
    ),
    (
        "console_login_without_mfa",
        "login-switch-role-no-mfa",
        r#"{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLEOPS000003:carol","arn":"arn:aws:sts::000000000000:assumed-role/OpsAdmin/carol","accountId":"000000000000","sessionContext":{"sessionIssuer":{"type":"Role","principalId":"AROAEXAMPLEOPS000003","arn":"arn:aws:iam::000000000000:role/OpsAdmin","accountId":"000000000000","userName":"OpsAdmin"},"attributes":{"creationDate":"2026-10-01T08:00:00Z","mfaAuthenticated":"false"}}},"eventTime":"T","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"R","sourceIPAddress":"203.0.113.88","userAgent":"Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0","requestParameters":null,"responseElements":{"ConsoleLogin":"Success"},"additionalEventData":{"MobileVersion":"No","MFAUsed":"No"},"eventID":"E","readOnly":false,"eventType":"AwsConsoleSignIn","managementEvent":true,"recipientAccountId":"000000000000","eventCategory":"Management"}"#,
    ),
    // kms_key_deletion
    (
        "kms_key_deletion",
        "kms-schedule-deletion",
        r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLEDAVE00004","arn":"arn:aws:iam::000000000000:user/dave","accountId":"000000000000","accessKeyId":"AKIAEXAMPLEDAVEKEY04","userName":"dave"},"eventTime":"T","eventSource":"kms.amazonaws.com","eventName":"ScheduleKeyDeletion","awsRegion":"R","sourceIPAddress":"198.51.100.61","userAgent":"aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0 exe/x86_64","requestParameters":{"keyId":"1234abcd-12ab-34cd-56ef-1234567890ab","pendingWindowInDays":7},"responseElements":{"keyId":"arn:aws:kms:eu-west-1:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab","deletionDate":"Oct 8, 2026, 9:00:00 AM","keyState":"PendingDeletion","pendingWindowInDays":7},"requestID":"Q","eventID":"E","readOnly":false,"resources":[{"accountId":"000000000000","type":"AWS::KMS::Key","ARN":"arn:aws:kms:eu-west-1:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab"}],"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"000000000000","eventCategory":"Management"}"#,
    ),
    (
        "kms_key_deletion",
        "kms-disable-key",
        r#"{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLEAUTO00005:deploy","arn":"arn:aws:sts::000000000000:assumed-role/DeployRole/deploy","accountId":"000000000000","sessionContext":{"attributes":{"creationDate":"2026-10-01T07:55:00Z","mfaAuthenticated":"false"}}},"eventTime":"T","eventSource":"kms.amazonaws.com","eventName":"DisableKey","awsRegion":"R","sourceIPAddress":"192.0.2.140","userAgent":"Boto3/1.34.0 Python/3.12.1 Linux/6.1","requestParameters":{"keyId":"0987dcba-09fe-87dc-65ba-ab0987654321"},"responseElements":null,"requestID":"Q","eventID":"E","readOnly":false,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"000000000000","eventCategory":"Management"}"#,
    ),
    // security_group_opened_to_world
    (
        "security_group_opened_to_world",
        "sg-ipv4-second-item",
        r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLEERIN00006","arn":"arn:aws:iam::000000000000:user/erin","accountId":"000000000000","userName":"erin"},"eventTime":"T","eventSource":"ec2.amazonaws.com","eventName":"AuthorizeSecurityGroupIngress","awsRegion":"R","sourceIPAddress":"198.51.100.9","userAgent":"aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0 exe/x86_64","requestParameters":{"groupId":"sg-0123456789abcdef0","ipPermissions":{"items":[{"ipProtocol":"tcp","fromPort":443,"toPort":443,"groups":{},"ipRanges":{"items":[{"cidrIp":"10.0.0.0/8"}]},"ipv6Ranges":{},"prefixListIds":{}},{"ipProtocol":"tcp","fromPort":22,"toPort":22,"groups":{},"ipRanges":{"items":[{"cidrIp":"0.0.0.0/0"}]},"ipv6Ranges":{},"prefixListIds":{}}]}},"responseElements":{"_return":true},"requestID":"Q","eventID":"E","readOnly":false,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"000000000000","eventCategory":"Management"}"#,
    ),
    (
        "security_group_opened_to_world",
        "sg-ipv6",
        r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLEERIN00006","arn":"arn:aws:iam::000000000000:user/erin","accountId":"000000000000","userName":"erin"},"eventTime":"T","eventSource":"ec2.amazonaws.com","eventName":"AuthorizeSecurityGroupIngress","awsRegion":"R","sourceIPAddress":"198.51.100.9","userAgent":"console.ec2.amazonaws.com","requestParameters":{"groupId":"sg-0fedcba9876543210","ipPermissions":{"items":[{"ipProtocol":"tcp","fromPort":3389,"toPort":3389,"groups":{},"ipRanges":{},"ipv6Ranges":{"items":[{"cidrIpv6":"::/0"}]},"prefixListIds":{}}]}},"responseElements":{"_return":true},"requestID":"Q","eventID":"E","readOnly":false,"eventType":"AwsApiCall","recipientAccountId":"000000000000"}"#,
    ),
    (
        "security_group_opened_to_world",
        "sg-legacy-flat",
        r#"{"eventVersion":"1.05","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLEFRANK0007","arn":"arn:aws:iam::000000000000:user/frank","accountId":"000000000000","userName":"frank"},"eventTime":"T","eventSource":"ec2.amazonaws.com","eventName":"AuthorizeSecurityGroupIngress","awsRegion":"R","sourceIPAddress":"203.0.113.21","userAgent":"aws-sdk-go/1.44.0 (go1.20; linux; amd64)","requestParameters":{"groupId":"sg-00aa11bb22cc33dd4","ipPermissions":{},"ipProtocol":"tcp","fromPort":22,"toPort":22,"cidrIp":"0.0.0.0/0"},"responseElements":{"_return":true},"requestID":"Q","eventID":"E","eventType":"AwsApiCall","recipientAccountId":"000000000000"}"#,
    ),
    (
        "security_group_opened_to_world",
        "sg-modify-rule",
        r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLEERIN00006","arn":"arn:aws:iam::000000000000:user/erin","accountId":"000000000000","userName":"erin"},"eventTime":"T","eventSource":"ec2.amazonaws.com","eventName":"ModifySecurityGroupRules","awsRegion":"R","sourceIPAddress":"198.51.100.9","userAgent":"console.ec2.amazonaws.com","requestParameters":{"ModifySecurityGroupRulesRequest":{"GroupId":"sg-0123456789abcdef0","SecurityGroupRule":{"SecurityGroupRuleId":"sgr-0abc1234def567890","SecurityGroupRule":{"IpProtocol":"tcp","FromPort":22,"ToPort":22,"CidrIpv4":"0.0.0.0/0"}}}},"responseElements":{"ModifySecurityGroupRulesResponse":{"return":true}},"requestID":"Q","eventID":"E","readOnly":false,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"000000000000","eventCategory":"Management"}"#,
    ),
    (
        "security_group_opened_to_world",
        "sg-modify-rule-list",
        r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLEERIN00006","arn":"arn:aws:iam::000000000000:user/erin","accountId":"000000000000","userName":"erin"},"eventTime":"T","eventSource":"ec2.amazonaws.com","eventName":"ModifySecurityGroupRules","awsRegion":"R","sourceIPAddress":"198.51.100.9","userAgent":"console.ec2.amazonaws.com","requestParameters":{"ModifySecurityGroupRulesRequest":{"GroupId":"sg-0123456789abcdef0","SecurityGroupRule":[{"SecurityGroupRuleId":"sgr-0abc","SecurityGroupRule":{"IpProtocol":"tcp","FromPort":80,"ToPort":80,"CidrIpv4":"10.1.0.0/16"}},{"SecurityGroupRuleId":"sgr-0def","SecurityGroupRule":{"IpProtocol":"tcp","FromPort":22,"ToPort":22,"CidrIpv6":"::/0"}}]}},"responseElements":{"ModifySecurityGroupRulesResponse":{"return":true}},"requestID":"Q","eventID":"E","readOnly":false,"eventType":"AwsApiCall","recipientAccountId":"000000000000"}"#,
    ),
    // Near misses: each must fire none of the four rules.
    (
        "",
        "root-invoked-by-service",
        r#"{"eventVersion":"1.05","userIdentity":{"type":"Root","principalId":"000000000000","arn":"arn:aws:iam::000000000000:root","accountId":"000000000000","invokedBy":"autoscaling.amazonaws.com"},"eventTime":"T","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","awsRegion":"R","sourceIPAddress":"autoscaling.amazonaws.com","userAgent":"autoscaling.amazonaws.com","requestParameters":{"instancesSet":{"items":[{"imageId":"ami-0abcdef1234567890","minCount":1,"maxCount":1}]}},"responseElements":null,"requestID":"Q","eventID":"E","eventType":"AwsApiCall","recipientAccountId":"000000000000"}"#,
    ),
    (
        "",
        "root-service-event",
        r#"{"eventVersion":"1.08","userIdentity":{"type":"Root","principalId":"000000000000","arn":"arn:aws:iam::000000000000:root","accountId":"000000000000"},"eventTime":"T","eventSource":"health.amazonaws.com","eventName":"AWSHealthEvent","awsRegion":"R","sourceIPAddress":"health.amazonaws.com","userAgent":"health.amazonaws.com","requestParameters":null,"responseElements":null,"eventID":"E","readOnly":true,"eventType":"AwsServiceEvent","managementEvent":true,"recipientAccountId":"000000000000","eventCategory":"Management"}"#,
    ),
    (
        "",
        "iam-user-named-root",
        r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLEROOTUSER8","arn":"arn:aws:iam::000000000000:user/root","accountId":"000000000000","userName":"root"},"eventTime":"T","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","awsRegion":"R","sourceIPAddress":"192.0.2.10","userAgent":"aws-cli/2.15.30","requestParameters":{"Host":"s3.amazonaws.com"},"responseElements":null,"requestID":"Q","eventID":"E","readOnly":true,"eventType":"AwsApiCall","recipientAccountId":"000000000000"}"#,
    ),
    (
        "",
        "login-mfa-upper-yes",
        r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLEALICE0001","arn":"arn:aws:iam::000000000000:user/alice","accountId":"000000000000","userName":"alice"},"eventTime":"T","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"R","sourceIPAddress":"198.51.100.4","userAgent":"Mozilla/5.0 Firefox/128.0","requestParameters":null,"responseElements":{"ConsoleLogin":"Success"},"additionalEventData":{"MobileVersion":"No","MFAUsed":"YES"},"eventID":"E","eventType":"AwsConsoleSignIn","recipientAccountId":"000000000000"}"#,
    ),
    (
        "",
        "login-failed",
        r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLEBOB000002","arn":"arn:aws:iam::000000000000:user/bob","accountId":"000000000000","userName":"bob"},"eventTime":"T","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"R","sourceIPAddress":"203.0.113.200","userAgent":"Mozilla/5.0 Chrome/124.0","errorMessage":"Failed authentication","requestParameters":null,"responseElements":{"ConsoleLogin":"Failure"},"additionalEventData":{"MobileVersion":"No","MFAUsed":"No"},"eventID":"E","eventType":"AwsConsoleSignIn","recipientAccountId":"000000000000"}"#,
    ),
    (
        "",
        "login-saml",
        r#"{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLEOKTA00009:jane@example.com","arn":"arn:aws:sts::000000000000:assumed-role/Okta-Admin/jane@example.com","accountId":"000000000000"},"eventTime":"T","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"R","sourceIPAddress":"192.0.2.33","userAgent":"Mozilla/5.0 Chrome/124.0","requestParameters":null,"responseElements":{"ConsoleLogin":"Success"},"additionalEventData":{"MobileVersion":"No","MFAUsed":"No","SamlProviderArn":"arn:aws:iam::000000000000:saml-provider/Okta"},"eventID":"E","eventType":"AwsConsoleSignIn","recipientAccountId":"000000000000"}"#,
    ),
    (
        "",
        "login-identity-center",
        r#"{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLESSO000010:jane","arn":"arn:aws:sts::000000000000:assumed-role/AWSReservedSSO_AdministratorAccess_0123456789abcdef/jane","accountId":"000000000000"},"eventTime":"T","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"R","sourceIPAddress":"192.0.2.34","userAgent":"Mozilla/5.0 Chrome/124.0","requestParameters":null,"responseElements":{"ConsoleLogin":"Success"},"additionalEventData":{"MobileVersion":"No","MFAUsed":"No"},"eventID":"E","eventType":"AwsConsoleSignIn","recipientAccountId":"000000000000"}"#,
    ),
    (
        "",
        "login-mfa-session",
        r#"{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLEADM000011:jane","arn":"arn:aws:sts::000000000000:assumed-role/Admin/jane","accountId":"000000000000","sessionContext":{"attributes":{"mfaAuthenticated":"true","creationDate":"2026-10-01T08:00:00Z"}}},"eventTime":"T","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"R","sourceIPAddress":"192.0.2.35","userAgent":"Mozilla/5.0 Chrome/124.0","requestParameters":null,"responseElements":{"ConsoleLogin":"Success"},"additionalEventData":{"MobileVersion":"No","MFAUsed":"No"},"eventID":"E","eventType":"AwsConsoleSignIn","recipientAccountId":"000000000000"}"#,
    ),
    (
        "",
        "kms-disable-key-rotation",
        r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLEDAVE00004","arn":"arn:aws:iam::000000000000:user/dave","accountId":"000000000000","userName":"dave"},"eventTime":"T","eventSource":"kms.amazonaws.com","eventName":"DisableKeyRotation","awsRegion":"R","sourceIPAddress":"198.51.100.61","userAgent":"aws-cli/2.15.30","requestParameters":{"keyId":"1234abcd-12ab-34cd-56ef-1234567890ab"},"responseElements":null,"requestID":"Q","eventID":"E","eventType":"AwsApiCall","recipientAccountId":"000000000000"}"#,
    ),
    (
        "",
        "kms-schedule-denied",
        r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLEDAVE00004","arn":"arn:aws:iam::000000000000:user/dave","accountId":"000000000000","userName":"dave"},"eventTime":"T","eventSource":"kms.amazonaws.com","eventName":"ScheduleKeyDeletion","awsRegion":"R","sourceIPAddress":"198.51.100.61","userAgent":"aws-cli/2.15.30","errorCode":"AccessDenied","errorMessage":"User: arn:aws:iam::000000000000:user/dave is not authorized to perform: kms:ScheduleKeyDeletion","requestParameters":null,"responseElements":null,"requestID":"Q","eventID":"E","eventType":"AwsApiCall","recipientAccountId":"000000000000"}"#,
    ),
    (
        "",
        "sg-egress-world",
        r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLEERIN00006","arn":"arn:aws:iam::000000000000:user/erin","accountId":"000000000000","userName":"erin"},"eventTime":"T","eventSource":"ec2.amazonaws.com","eventName":"AuthorizeSecurityGroupEgress","awsRegion":"R","sourceIPAddress":"198.51.100.9","userAgent":"aws-cli/2.15.30","requestParameters":{"groupId":"sg-0123456789abcdef0","ipPermissions":{"items":[{"ipProtocol":"-1","groups":{},"ipRanges":{"items":[{"cidrIp":"0.0.0.0/0"}]},"ipv6Ranges":{},"prefixListIds":{}}]}},"responseElements":{"_return":true},"requestID":"Q","eventID":"E","eventType":"AwsApiCall","recipientAccountId":"000000000000"}"#,
    ),
    (
        "",
        "sg-ingress-failed",
        r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLEERIN00006","arn":"arn:aws:iam::000000000000:user/erin","accountId":"000000000000","userName":"erin"},"eventTime":"T","eventSource":"ec2.amazonaws.com","eventName":"AuthorizeSecurityGroupIngress","awsRegion":"R","sourceIPAddress":"198.51.100.9","userAgent":"aws-cli/2.15.30","errorCode":"Client.InvalidPermission.Duplicate","errorMessage":"the specified rule already exists","requestParameters":{"groupId":"sg-0123456789abcdef0","ipPermissions":{"items":[{"ipProtocol":"tcp","fromPort":22,"toPort":22,"groups":{},"ipRanges":{"items":[{"cidrIp":"0.0.0.0/0"}]},"ipv6Ranges":{},"prefixListIds":{}}]}},"responseElements":null,"requestID":"Q","eventID":"E","eventType":"AwsApiCall","recipientAccountId":"000000000000"}"#,
    ),
    (
        "",
        "sg-ingress-private-described-world",
        r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLEERIN00006","arn":"arn:aws:iam::000000000000:user/erin","accountId":"000000000000","userName":"erin"},"eventTime":"T","eventSource":"ec2.amazonaws.com","eventName":"AuthorizeSecurityGroupIngress","awsRegion":"R","sourceIPAddress":"198.51.100.9","userAgent":"aws-cli/2.15.30","requestParameters":{"groupId":"sg-0123456789abcdef0","ipPermissions":{"items":[{"ipProtocol":"tcp","fromPort":5432,"toPort":5432,"groups":{"items":[{"groupId":"sg-0fedcba9876543210","description":"allow 0.0.0.0/0 later"}]},"ipRanges":{"items":[{"cidrIp":"10.0.0.0/8","description":"not 0.0.0.0/0"}]},"ipv6Ranges":{},"prefixListIds":{}}]}},"responseElements":{"_return":true},"requestID":"Q","eventID":"E","eventType":"AwsApiCall","recipientAccountId":"000000000000"}"#,
    ),
    (
        "",
        "sg-modify-private",
        r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLEERIN00006","arn":"arn:aws:iam::000000000000:user/erin","accountId":"000000000000","userName":"erin"},"eventTime":"T","eventSource":"ec2.amazonaws.com","eventName":"ModifySecurityGroupRules","awsRegion":"R","sourceIPAddress":"198.51.100.9","userAgent":"console.ec2.amazonaws.com","requestParameters":{"ModifySecurityGroupRulesRequest":{"GroupId":"sg-0123456789abcdef0","SecurityGroupRule":{"SecurityGroupRuleId":"sgr-0abc","SecurityGroupRule":{"IpProtocol":"tcp","FromPort":22,"ToPort":22,"CidrIpv4":"10.0.0.0/16"}}}},"responseElements":{"ModifySecurityGroupRulesResponse":{"return":true}},"requestID":"Q","eventID":"E","eventType":"AwsApiCall","recipientAccountId":"000000000000"}"#,
    ),
];

struct Plant {
    /// Index into [`MANDATORY_RULES`], or `None` for a near miss.
    rule: Option<usize>,
    template: Template,
}

// ------------------------------------------------------------- generator

/// One rendered delivery file.
#[derive(Debug, Clone)]
pub struct CorpusFile {
    /// Path relative to the corpus root (`AWSLogs/...json.gz`).
    pub key: String,
    /// The decompressed document.
    pub json: Vec<u8>,
    /// Records in it.
    pub records: u64,
    /// Planted positives: (index into [`MANDATORY_RULES`], eventID).
    pub planted: Vec<(usize, String)>,
    /// Planted near misses.
    pub near_misses: u64,
}

impl CorpusFile {
    /// The file as stored: gzip (default level, no name, mtime 0).
    pub fn gzip(&self) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::with_capacity(self.json.len() / 6), Compression::default());
        e.write_all(&self.json).expect("writing to a Vec");
        e.finish().expect("writing to a Vec")
    }
}

/// The seed pool and planted templates, ready to render files.
pub struct Generator {
    seed: u64,
    records_per_file: usize,
    pool: Vec<Template>,
    plants: Vec<Plant>,
    /// Seed records read, and how many were left out because they fire a
    /// mandatory rule.
    pub seed_records: usize,
    pub seeds_left_out: usize,
}

/// The four mandatory rules, compiled from the copies built into the binary.
pub fn mandatory_rules() -> RuleSet {
    let (set, errors) = RuleSet::compile(
        MANDATORY_SOURCES.iter().map(|(f, t)| ((*f).to_owned(), *t)),
        &LoadOptions::default(),
    );
    assert!(errors.is_empty(), "built-in mandatory rules fail to load: {errors:?}");
    set
}

/// Which mandatory rules (indices into [`MANDATORY_RULES`]) fire on one
/// record given as JSON text.
fn fired(rules: &RuleSet, decoder: &mut Decoder, json: &[u8]) -> Result<Vec<usize>, String> {
    let mut buf = json.to_vec();
    let len = buf.len();
    buf.resize(len + simd_json::INPUT_PADDING, 0);
    let mut out = Vec::new();
    decoder
        .decode("template", &mut buf, len, |rec| {
            rules.evaluate(rec, |r| {
                if let Some(i) = MANDATORY_RULES.iter().position(|n| *n == r.name) {
                    out.push(i);
                }
            })
        })
        .map_err(|e| e.to_string())?;
    out.sort_unstable();
    Ok(out)
}

const PROBE: Fill<'static> = Fill {
    event_id: b"00000000-0000-4000-8000-000000000000",
    request_id: b"00000000-0000-4000-8000-000000000001",
    event_time: b"2026-10-01T00:00:00Z",
    region: b"us-east-1",
    account: b"111122223333",
};

fn read_seed_file(path: &Path) -> Result<Vec<Value>, CorpusError> {
    let file = std::fs::File::open(path).map_err(|source| CorpusError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut buf = Vec::new();
    let len = decode::read_object(
        &path.display().to_string(),
        file,
        decode::DEFAULT_MAX_OBJECT_BYTES,
        &mut buf,
    )
    .map_err(|e| CorpusError::Dataset {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let doc: Value = serde_json::from_slice(&buf[..len]).map_err(|e| CorpusError::Dataset {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    match doc {
        Value::Object(mut m) => match m.remove("Records") {
            Some(Value::Array(recs)) => Ok(recs),
            _ => Ok(Vec::new()),
        },
        _ => Ok(Vec::new()),
    }
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

impl Generator {
    /// Loads the seed records below `datasets` (its [`SEED_DATASETS`]
    /// folders, sorted by path, de-duplicated by eventID), leaves out those
    /// that fire a mandatory rule, and checks the planted templates.
    pub fn new(datasets: &Path, seed: u64, records_per_file: usize) -> Result<Generator, CorpusError> {
        let mut paths = Vec::new();
        for d in SEED_DATASETS {
            let dir = datasets.join(d);
            if !dir.is_dir() {
                return Err(CorpusError::Dataset {
                    path: dir,
                    reason: "no such directory".into(),
                });
            }
            for e in walkdir::WalkDir::new(&dir).sort_by_file_name() {
                let e = e.map_err(|e| CorpusError::Dataset {
                    path: dir.clone(),
                    reason: e.to_string(),
                })?;
                let name = e.file_name().to_string_lossy();
                if e.file_type().is_file() && (name.ends_with(".json") || name.ends_with(".json.gz")) {
                    paths.push(e.into_path());
                }
            }
        }
        let mut records = Vec::new();
        let mut seen = HashSet::new();
        for p in &paths {
            for rec in read_seed_file(p)? {
                if !rec.is_object() {
                    continue;
                }
                if let Some(id) = rec.get("eventID").and_then(Value::as_str)
                    && !seen.insert(id.to_owned())
                {
                    continue;
                }
                records.push(rec);
            }
        }
        if records.is_empty() {
            return Err(CorpusError::NoSeeds {
                dir: datasets.to_owned(),
            });
        }
        // The source accounts: whoever owns or makes the calls.
        let mut accounts: Vec<String> = records
            .iter()
            .flat_map(|r| {
                [
                    r.get("recipientAccountId").and_then(Value::as_str),
                    r.pointer("/userIdentity/accountId").and_then(Value::as_str),
                ]
            })
            .flatten()
            .filter(|s| is_account(s))
            .map(str::to_owned)
            .collect();
        accounts.sort();
        accounts.dedup();

        let rules = mandatory_rules();
        let mut decoder = Decoder::default();
        let mut text = Vec::new();
        let seed_records = records.len();
        let mut pool = Vec::with_capacity(records.len());
        for rec in &records {
            let t = Template::from_record(rec, &accounts);
            text.clear();
            t.render(&PROBE, &mut text);
            match fired(&rules, &mut decoder, &text) {
                Ok(f) if f.is_empty() => pool.push(t),
                // A seed that fires (or that the decoder would not hand
                // out) is left out, so that every alert is a planted one.
                _ => {}
            }
        }
        let seeds_left_out = seed_records - pool.len();

        let plant_accounts = [PLANT_ACCOUNT.to_owned()];
        let mut plants = Vec::new();
        for (rule, name, json) in PLANTS {
            let v: Value = serde_json::from_str(json).map_err(|e| CorpusError::Template {
                name: (*name).into(),
                reason: e.to_string(),
            })?;
            let template = Template::from_record(&v, &plant_accounts);
            text.clear();
            template.render(&PROBE, &mut text);
            let want: Vec<usize> = MANDATORY_RULES.iter().position(|r| r == rule).into_iter().collect();
            let got = fired(&rules, &mut decoder, &text).map_err(|reason| CorpusError::Template {
                name: (*name).into(),
                reason,
            })?;
            if got != want {
                return Err(CorpusError::Template {
                    name: (*name).into(),
                    reason: format!(
                        "fires {:?}, expected {:?}",
                        got.iter().map(|&i| MANDATORY_RULES[i]).collect::<Vec<_>>(),
                        want.iter().map(|&i| MANDATORY_RULES[i]).collect::<Vec<_>>()
                    ),
                });
            }
            plants.push(Plant {
                rule: want.first().copied(),
                template,
            });
        }
        Ok(Generator {
            seed,
            records_per_file: records_per_file.max(1),
            pool,
            plants,
            seed_records,
            seeds_left_out,
        })
    }

    /// Renders file `index`: a pure function of the seed and the index.
    pub fn file(&self, index: u64) -> CorpusFile {
        let mut rng = file_rng(self.seed, index);
        let streams = (ACCOUNTS.len() * REGIONS.len()) as u64;
        let stream = (index % streams) as usize;
        let account = ACCOUNTS[stream % ACCOUNTS.len()];
        let region = REGIONS[stream / ACCOUNTS.len()];
        let t0 = EPOCH_START + (index / streams) as i64 * WINDOW_SECS;

        // About records_per_file records (±25 %), like real deliveries.
        let n = self.records_per_file;
        let spread = (n / 2) as u64;
        let n = (n - n / 4 + rng.below(spread + 1) as usize).max(1);

        // Which record is what: runs of consecutive seeds (real files hold
        // bursts of related calls), with plants at random positions.
        let mut slots: Vec<Option<usize>> = Vec::with_capacity(n); // None = seed
        let positives = rng.below(3) as usize;
        let misses = rng.below(2) as usize;
        let positive_plants: Vec<usize> = (0..self.plants.len())
            .filter(|&i| self.plants[i].rule.is_some())
            .collect();
        let miss_plants: Vec<usize> = (0..self.plants.len())
            .filter(|&i| self.plants[i].rule.is_none())
            .collect();
        let mut chosen = Vec::new();
        for _ in 0..positives.min(n) {
            chosen.push(positive_plants[rng.below(positive_plants.len() as u64) as usize]);
        }
        for _ in 0..misses.min(n - chosen.len()) {
            chosen.push(miss_plants[rng.below(miss_plants.len() as u64) as usize]);
        }
        slots.resize(n - chosen.len(), None);
        for p in chosen {
            let at = rng.below(slots.len() as u64 + 1) as usize;
            slots.insert(at, Some(p));
        }

        let mut json = Vec::with_capacity(n * 1100 + 32);
        json.extend_from_slice(b"{\"Records\":[");
        let mut planted = Vec::new();
        let mut near_misses = 0;
        let (mut seed_at, mut run_left) = (0usize, 0u64);
        let mut event_id = Vec::with_capacity(36);
        let mut request_id = Vec::with_capacity(36);
        for (i, slot) in slots.iter().enumerate() {
            if i > 0 {
                json.push(b',');
            }
            event_id.clear();
            rng.uuid(&mut event_id);
            request_id.clear();
            rng.uuid(&mut request_id);
            let time = iso_time(t0 + (i as i64 * WINDOW_SECS) / n as i64);
            let fill = Fill {
                event_id: &event_id,
                request_id: &request_id,
                event_time: time.as_bytes(),
                region: region.as_bytes(),
                account: account.as_bytes(),
            };
            let template = match slot {
                Some(p) => {
                    let plant = &self.plants[*p];
                    match plant.rule {
                        Some(r) => planted.push((r, String::from_utf8(event_id.clone()).expect("ascii"))),
                        None => near_misses += 1,
                    }
                    &plant.template
                }
                None => {
                    if run_left == 0 {
                        seed_at = rng.below(self.pool.len() as u64) as usize;
                        run_left = 1 + rng.below(64);
                    }
                    let t = &self.pool[seed_at % self.pool.len()];
                    seed_at += 1;
                    run_left -= 1;
                    t
                }
            };
            template.render(&fill, &mut json);
        }
        json.extend_from_slice(b"]}");

        let end = iso_time(t0 + WINDOW_SECS);
        let (date, hm) = (&end[..10], &end[11..16]);
        let stamp = format!("{}T{}Z", date.replace('-', ""), hm.replace(':', ""));
        const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let suffix: String = (0..16)
            .map(|_| ALNUM[rng.below(ALNUM.len() as u64) as usize] as char)
            .collect();
        let key = format!(
            "AWSLogs/{account}/CloudTrail/{region}/{}/{account}_CloudTrail_{region}_{stamp}_{suffix}.json.gz",
            date.replace('-', "/")
        );
        CorpusFile {
            key,
            json,
            records: n as u64,
            planted,
            near_misses,
        }
    }

    /// Seed records in the replay pool.
    pub fn pool_len(&self) -> usize {
        self.pool.len()
    }
}

// --------------------------------------------------------------- writing

/// What a generated corpus holds; written as `MANIFEST` (JSON) beside
/// `AWSLogs/`. The file has no `.json` extension so that scanning the
/// corpus folder does not read it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub generator: String,
    pub seed: u64,
    pub size_target: u64,
    pub records_per_file: usize,
    pub files: u64,
    pub records: u64,
    /// Bytes on disk under `AWSLogs/` (what `size` bounds).
    pub compressed_bytes: u64,
    /// Bytes of JSON after gunzip.
    pub decompressed_bytes: u64,
    /// Exact alerts each mandatory rule must produce.
    pub expected_alerts: BTreeMap<String, u64>,
    pub near_misses: u64,
    pub seed_records: usize,
    pub seeds_left_out: usize,
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    pub first_event_time: String,
    pub last_event_time: String,
}

/// Name of the manifest file in the corpus root.
pub const MANIFEST_FILE: &str = "MANIFEST";
/// Name of the planted-alert list (`rule<TAB>eventID`, sorted) in the corpus root.
pub const PLANTED_FILE: &str = "planted-alerts.tsv";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CorpusError + '_ {
    move |source| CorpusError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes files `0, 1, 2...` of `generator` under `out` while their total
/// compressed size stays within `size`, rendering on `threads` threads;
/// then the manifest and the planted list. `progress` is called with the
/// bytes written so far.
pub fn write_corpus(
    generator: &Generator,
    out: &Path,
    size: u64,
    threads: usize,
    mut progress: impl FnMut(u64),
) -> Result<Manifest, CorpusError> {
    if out.exists() {
        let mut rd = std::fs::read_dir(out).map_err(io(out))?;
        if rd.next().is_some() {
            return Err(CorpusError::OutNotEmpty { path: out.to_owned() });
        }
    }
    std::fs::create_dir_all(out).map_err(io(out))?;
    let threads = threads.max(1);
    let batch = (threads * 4) as u64;
    let mut m = Manifest {
        generator: format!("trailwatch gen-corpus {}", env!("CARGO_PKG_VERSION")),
        seed: generator.seed,
        size_target: size,
        records_per_file: generator.records_per_file,
        files: 0,
        records: 0,
        compressed_bytes: 0,
        decompressed_bytes: 0,
        expected_alerts: MANDATORY_RULES.iter().map(|r| ((*r).to_owned(), 0)).collect(),
        near_misses: 0,
        seed_records: generator.seed_records,
        seeds_left_out: generator.seeds_left_out,
        accounts: ACCOUNTS.iter().map(|s| (*s).to_owned()).collect(),
        regions: REGIONS.iter().map(|s| (*s).to_owned()).collect(),
        first_event_time: String::new(),
        last_event_time: String::new(),
    };
    let mut planted: Vec<(&str, String)> = Vec::new();
    let mut next = 0u64;
    let mut dirs_made = HashSet::new();
    'outer: loop {
        let indices: Vec<u64> = (next..next + batch).collect();
        let rendered: Vec<(CorpusFile, Vec<u8>)> = std::thread::scope(|s| {
            let chunks: Vec<_> = indices
                .chunks(indices.len().div_ceil(threads))
                .map(|chunk| {
                    s.spawn(move || {
                        chunk
                            .iter()
                            .map(|&i| {
                                let f = generator.file(i);
                                let gz = f.gzip();
                                (f, gz)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            chunks
                .into_iter()
                .flat_map(|h| h.join().expect("corpus render thread panicked"))
                .collect()
        });
        for (f, gz) in rendered {
            if m.compressed_bytes + gz.len() as u64 > size {
                if m.files == 0 {
                    return Err(CorpusError::TooSmall {
                        size,
                        first: gz.len() as u64,
                    });
                }
                break 'outer;
            }
            let path = out.join(&f.key);
            let dir = path.parent().expect("keys have folders");
            if dirs_made.insert(dir.to_owned()) {
                std::fs::create_dir_all(dir).map_err(io(dir))?;
            }
            std::fs::write(&path, &gz).map_err(io(&path))?;
            m.files += 1;
            m.records += f.records;
            m.compressed_bytes += gz.len() as u64;
            m.decompressed_bytes += f.json.len() as u64;
            m.near_misses += f.near_misses;
            for (r, id) in f.planted {
                *m.expected_alerts.get_mut(MANDATORY_RULES[r]).expect("known rule") += 1;
                planted.push((MANDATORY_RULES[r], id));
            }
            progress(m.compressed_bytes);
        }
        next += batch;
    }
    // Files are written in time order per stream; the corpus spans from
    // the first window to the end of the last one.
    let streams = (ACCOUNTS.len() * REGIONS.len()) as u64;
    m.first_event_time = iso_time(EPOCH_START);
    m.last_event_time = iso_time(EPOCH_START + ((m.files - 1) / streams + 1) as i64 * WINDOW_SECS - 1);

    planted.sort();
    let mut tsv = String::from("rule\tevent_id\n");
    for (r, id) in &planted {
        tsv.push_str(r);
        tsv.push('\t');
        tsv.push_str(id);
        tsv.push('\n');
    }
    let p = out.join(PLANTED_FILE);
    std::fs::write(&p, tsv).map_err(io(&p))?;
    let p = out.join(MANIFEST_FILE);
    let mut text = serde_json::to_string_pretty(&m).expect("manifest serializes");
    text.push('\n');
    std::fs::write(&p, text).map_err(io(&p))?;
    Ok(m)
}

/// Reads the manifest of a corpus folder.
pub fn read_manifest(dir: &Path) -> Result<Manifest, CorpusError> {
    let p = dir.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&p).map_err(io(&p))?;
    serde_json::from_str(&text).map_err(|e| CorpusError::Dataset {
        path: p.clone(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_times() {
        assert_eq!(iso_time(EPOCH_START), "2026-10-01T00:00:00Z");
        assert_eq!(iso_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_time(951_782_400 + 3661), "2000-02-29T01:01:01Z");
    }

    #[test]
    fn uuids_have_the_v4_shape() {
        let mut r = Rng::new(7);
        let mut out = Vec::new();
        r.uuid(&mut out);
        let s = String::from_utf8(out).unwrap();
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "4");
        assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"), "{s}");
    }

    #[test]
    fn every_occurrence_of_a_source_account_becomes_a_hole() {
        let accts = ["210987654321".to_owned()];
        let v: Value = serde_json::from_str(
            r#"{"eventID":"x","a":"arn:aws:iam::210987654321:root","b":"%22AWS%22%3A%22210987654321%22","c":"210987654321","d":"1210987654321"}"#,
        )
        .unwrap();
        let t = Template::from_record(&v, &accts);
        let mut out = Vec::new();
        t.render(&PROBE, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"eventID":"00000000-0000-4000-8000-000000000000","a":"arn:aws:iam::111122223333:root","b":"%22AWS%22%3A%22111122223333%22","c":"111122223333","d":"1111122223333"}"#
        );
    }
}
