//! CloudTrail's S3 layout, and listing exactly the objects in a selection.
//!
//! Trails deliver to `<prefix>/AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/`
//! and organization trails to `<prefix>/AWSLogs/<o-id>/<account>/CloudTrail/...`.
//! Discovery lists with a `/` delimiter level by level (accounts, then
//! regions), so it never walks the bucket; with a date range, only the day
//! folders in range are listed. Digest (`CloudTrail-Digest/`) and Insights
//! (`CloudTrail-Insight/`) folders are never listed.
//!
//! Dates select day *folders*. A file in a day's folder can hold events from
//! shortly before that day (CloudTrail delivers about every 5 minutes, and a
//! file written just after midnight holds events from before it), so the
//! range starts `from_slack_hours` before `from` (1 hour by default).

use chrono::NaiveDate;
use tokio::sync::mpsc;

use super::notification::ObjectRef;
use super::s3::S3Error;

/// Which objects a backfill takes.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// Empty: every account.
    pub accounts: Vec<String>,
    /// Empty: every region.
    pub regions: Vec<String>,
    pub from_slack_hours: u32,
}

fn err(bucket: &str, prefix: &str, e: impl std::fmt::Display) -> S3Error {
    S3Error::Transient {
        uri: format!("s3://{bucket}/{prefix}"),
        reason: format!("listing failed: {e}"),
    }
}

/// The sub-folders directly below `prefix` (paginated).
pub async fn sub_folders(client: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Result<Vec<String>, S3Error> {
    let mut out = Vec::new();
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .delimiter("/")
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| err(bucket, prefix, aws_sdk_s3::error::DisplayErrorContext(e)))?;
        out.extend(
            page.common_prefixes()
                .iter()
                .filter_map(|p| p.prefix().map(str::to_owned)),
        );
    }
    Ok(out)
}

fn last_segment(p: &str) -> &str {
    p.trim_end_matches('/').rsplit('/').next().unwrap_or_default()
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// The folders to list for `sel` under `base` (the trail's key prefix,
/// or a prefix ending in `AWSLogs/`): one per account, region and day, or
/// one per account and region without a date range.
pub async fn discover(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    base: &str,
    sel: &Selection,
) -> Result<Vec<String>, S3Error> {
    let mut root = base.trim_start_matches('/').to_owned();
    if !root.is_empty() && !root.ends_with('/') {
        root.push('/');
    }
    if !root.ends_with("AWSLogs/") {
        root.push_str("AWSLogs/");
    }
    let mut account_prefixes = Vec::new();
    for top in sub_folders(client, bucket, &root).await? {
        let name = last_segment(&top);
        if is_account(name) {
            account_prefixes.push(top);
        } else if name.starts_with("o-") {
            for acct in sub_folders(client, bucket, &top).await? {
                if is_account(last_segment(&acct)) {
                    account_prefixes.push(acct);
                }
            }
        }
    }
    account_prefixes.retain(|p| sel.accounts.is_empty() || sel.accounts.iter().any(|a| a == last_segment(p)));
    let days: Option<Vec<NaiveDate>> = match (sel.from, sel.to) {
        (None, None) => None,
        (from, to) => {
            let to = to.unwrap_or_else(|| chrono::Utc::now().date_naive());
            let from = from
                .map(|f| {
                    (f.and_hms_opt(0, 0, 0).expect("midnight") - chrono::Duration::hours(sel.from_slack_hours as i64))
                        .date()
                })
                .unwrap_or(to - chrono::Duration::days(365 * 20));
            let mut v = Vec::new();
            let mut d = from;
            while d <= to {
                v.push(d);
                d = d.succ_opt().expect("date in range");
            }
            Some(v)
        }
    };
    let mut out = Vec::new();
    for acct in account_prefixes {
        for region in sub_folders(client, bucket, &format!("{acct}CloudTrail/")).await? {
            if !sel.regions.is_empty() && !sel.regions.iter().any(|r| r == last_segment(&region)) {
                continue;
            }
            match &days {
                None => out.push(region),
                Some(days) => out.extend(days.iter().map(|d| format!("{region}{}/", d.format("%Y/%m/%d")))),
            }
        }
    }
    Ok(out)
}

/// Lists every object under `prefix` (paginated) into `tx`. Returns the
/// count.
pub async fn list_objects(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    tx: &mpsc::Sender<ObjectRef>,
) -> Result<u64, S3Error> {
    let mut n = 0;
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| err(bucket, prefix, aws_sdk_s3::error::DisplayErrorContext(e)))?;
        for o in page.contents() {
            let Some(key) = o.key() else { continue };
            if key.ends_with('/') {
                continue;
            }
            let r = ObjectRef {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                size: o.size().map(|s| s.max(0) as u64),
                etag: o.e_tag().map(|e| e.trim_matches('"').to_owned()),
            };
            if tx.send(r).await.is_err() {
                return Ok(n);
            }
            n += 1;
        }
    }
    Ok(n)
}

/// Parses `s3://bucket[/prefix]`.
pub fn parse_s3_uri(uri: &str) -> Option<(String, String)> {
    let rest = uri.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return None;
    }
    Some((bucket.to_owned(), prefix.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_uris() {
        assert_eq!(parse_s3_uri("s3://b"), Some(("b".into(), "".into())));
        assert_eq!(parse_s3_uri("s3://b/trails/x"), Some(("b".into(), "trails/x".into())));
        assert_eq!(parse_s3_uri("b/x"), None);
        assert_eq!(parse_s3_uri("s3:///x"), None);
    }
}
