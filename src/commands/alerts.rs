//! `trailwatch alerts [filters]` and `trailwatch alerts show <id|event_id>`.
//! The store is opened read-only; every filter is a bound parameter.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use comfy_table::{ContentArrangement, Table, presets};
use trailwatch::rules::Level;
use trailwatch::store::{AlertFilter, Store, StoredAlert};

use super::DataDirArgs;
use crate::output::{AlertFormat, AlertOut, terminal_safe, terminal_safe_lines};

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AlertsArgs {
    #[command(subcommand)]
    show: Option<ShowCommand>,
    /// Only these rules (repeatable).
    #[arg(long = "rule", value_name = "NAME")]
    rules: Vec<String>,
    /// Severity: `high` for exactly high, `high+` for high and above.
    #[arg(long, value_name = "LEVEL[+]")]
    severity: Option<String>,
    /// Only this account.
    #[arg(long, value_name = "ID")]
    account: Option<String>,
    /// Principal ARN contains this text (case-insensitive).
    #[arg(long, value_name = "SUBSTR")]
    principal: Option<String>,
    /// Events at or after T: RFC 3339, a date, or relative (30m, 24h, 7d, 2w).
    #[arg(long, value_name = "T")]
    since: Option<String>,
    /// Events before T (same forms as --since).
    #[arg(long, value_name = "T")]
    until: Option<String>,
    /// At most N alerts.
    #[arg(long, value_name = "N", default_value_t = 100)]
    limit: usize,
    #[arg(long, value_enum, default_value_t = AlertFormat::Table)]
    format: AlertFormat,
    #[command(flatten)]
    data: DataDirArgs,
}

#[derive(Debug, clap::Subcommand)]
enum ShowCommand {
    /// Print one alert (by store id or eventID) with its raw event.
    Show {
        key: String,
        #[command(flatten)]
        data: DataDirArgs,
    },
}

/// Parses RFC 3339, `YYYY-MM-DD`, or a relative age (`30m`, `24h`, `7d`,
/// `2w`) into the ISO 8601 text that `event_time` is compared with.
pub fn parse_time(s: &str, now: chrono::DateTime<chrono::Utc>) -> anyhow::Result<String> {
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let s = s.trim();
    if let Some(unit) = s.chars().last().filter(|c| c.is_ascii_alphabetic())
        && let Ok(n) = s[..s.len() - 1].parse::<i64>()
    {
        let d = match unit {
            's' => chrono::Duration::seconds(n),
            'm' => chrono::Duration::minutes(n),
            'h' => chrono::Duration::hours(n),
            'd' => chrono::Duration::days(n),
            'w' => chrono::Duration::weeks(n),
            _ => bail!("`{s}`: unknown unit `{unit}` (use s, m, h, d or w)"),
        };
        return Ok(fmt(now - d));
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(fmt(t.with_timezone(&chrono::Utc)));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(fmt(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc()));
    }
    bail!("`{s}` is not a time: use RFC 3339 (2026-10-05T14:00:00Z), a date (2026-10-05) or an age (24h, 7d)")
}

fn parse_severity(s: &str) -> anyhow::Result<(Option<Level>, Option<Level>)> {
    let (name, at_least) = match s.strip_suffix('+') {
        Some(n) => (n, true),
        None => (s, false),
    };
    let level: Level = name.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    Ok(if at_least {
        (Some(level), None)
    } else {
        (None, Some(level))
    })
}

pub fn run(args: AlertsArgs) -> anyhow::Result<ExitCode> {
    if let Some(ShowCommand::Show { key, data }) = args.show {
        let store = Store::open_read_only(&data.data_dir)?;
        let found = store.find_alerts(&key)?;
        if found.is_empty() {
            eprintln!("trailwatch: no alert with id or eventID `{key}`");
            return Ok(ExitCode::from(1));
        }
        let mut damaged = false;
        for a in &found {
            damaged |= !print_one(a)?;
        }
        // Like a run with failed objects: finished, but not everything was
        // as trailwatch stored it.
        return Ok(if damaged { ExitCode::from(1) } else { ExitCode::SUCCESS });
    }
    let now = chrono::Utc::now();
    let (min_severity, severity) = match &args.severity {
        Some(s) => parse_severity(s)?,
        None => (None, None),
    };
    let filter = AlertFilter {
        rules: args.rules,
        min_severity,
        severity,
        account: args.account,
        principal: args.principal,
        since: args.since.as_deref().map(|s| parse_time(s, now)).transpose()?,
        until: args.until.as_deref().map(|s| parse_time(s, now)).transpose()?,
        limit: Some(args.limit),
    };
    let store = Store::open_read_only(&args.data.data_dir)?;
    let alerts = store.list_alerts(&filter).context("listing alerts")?;
    let mut out = std::io::stdout().lock();
    write_list(&mut out, args.format, &alerts)?;
    Ok(ExitCode::SUCCESS)
}

fn row(s: &StoredAlert) -> AlertOut<'_> {
    let mut out = AlertOut::from(&s.alert);
    out.id = Some(s.id);
    out.detected_at = Some(&s.detected_at);
    out
}

fn write_list(out: &mut impl std::io::Write, format: AlertFormat, alerts: &[StoredAlert]) -> anyhow::Result<()> {
    match format {
        AlertFormat::Jsonl => {
            let mut line = Vec::new();
            for a in alerts {
                line.clear();
                row(a).write_jsonl(&mut line);
                out.write_all(&line)?;
            }
        }
        AlertFormat::Csv => {
            let mut w = csv::Writer::from_writer(out);
            for a in alerts {
                w.serialize(row(a))?;
            }
            w.flush()?;
        }
        AlertFormat::Table => {
            let mut t = Table::new();
            t.load_preset(presets::NOTHING)
                .set_content_arrangement(ContentArrangement::Dynamic)
                .set_header([
                    "ID",
                    "TIME",
                    "SEVERITY",
                    "RULE",
                    "ACCOUNT",
                    "PRINCIPAL",
                    "SOURCE IP",
                    "EVENT",
                ]);
            for s in alerts {
                let a = &s.alert;
                t.add_row(
                    [
                        s.id.to_string(),
                        a.event_time.to_string(),
                        a.severity.to_string(),
                        a.rule_name.clone(),
                        a.account_id.to_string(),
                        if a.principal_arn.is_empty() {
                            a.principal_type.to_string()
                        } else {
                            a.principal_arn.clone()
                        },
                        a.source_ip.to_string(),
                        format!("{}:{}", a.event_source.trim_end_matches(".amazonaws.com"), a.event_name),
                    ]
                    .map(|c| terminal_safe(&c).into_owned()),
                );
            }
            writeln!(out, "{t}")?;
        }
    }
    Ok(())
}

/// Prints one alert; false when its raw event was damaged.
fn print_one(s: &StoredAlert) -> anyhow::Result<bool> {
    let a = &s.alert;
    // A raw event that no longer parses (the database edited or damaged
    // by hand) does not hide the rest of the alert: it is printed as
    // stored, with a message naming the alert.
    let raw = serde_json::from_str::<serde_json::Value>(&a.raw_event);
    let raw_text = match &raw {
        Ok(v) => serde_json::to_string_pretty(v)?,
        Err(_) => a.raw_event.clone(),
    };
    let t = |s: &str| terminal_safe(s).into_owned();
    println!("id:            {}", s.id);
    println!("rule:          {} ({})", t(&a.rule_name), t(&a.rule_id));
    println!("title:         {}", t(&a.title));
    println!("severity:      {}", a.severity);
    println!(
        "event:         {} {} at {}",
        t(&a.event_source),
        t(&a.event_name),
        t(&a.event_time)
    );
    println!("event id:      {}", t(&a.event_id));
    println!("account:       {} ({})", t(&a.account_id), t(&a.aws_region));
    println!("principal:     {} ({})", t(&a.principal_arn), t(&a.principal_type));
    println!("source ip:     {}", t(&a.source_ip));
    println!("user agent:    {}", t(&a.user_agent));
    println!("object:        {}", t(&a.object));
    println!("detected at:   {}", s.detected_at);
    // JSON escapes C0 controls itself; C1 controls (U+0080..U+009F) it
    // leaves raw, so they are escaped here too.
    if let Some(c) = &a.correlation {
        // The alert key is the event that completed the window; the window's
        // events are listed so that an analyst can pull each one up.
        println!("group:         {}", t(&c.group_key));
        println!("window:        {} .. {}", t(&c.window_start), t(&c.window_end));
        println!("events ({}):", c.event_ids.len());
        for id in &c.event_ids {
            println!("  {}", t(id));
        }
        println!("correlation:\n{}", terminal_safe_lines(&raw_text));
    } else {
        println!("raw event:\n{}", terminal_safe_lines(&raw_text));
    }
    if let Err(e) = &raw {
        eprintln!(
            "trailwatch: alert {}: the stored raw event is not JSON ({e}); printed as stored",
            s.id
        );
    }
    Ok(raw.is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-27T12:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(parse_time("24h", now).unwrap(), "2026-11-26T12:00:00Z");
        assert_eq!(parse_time("7d", now).unwrap(), "2026-11-20T12:00:00Z");
        assert_eq!(parse_time("2026-10-05", now).unwrap(), "2026-10-05T00:00:00Z");
        assert_eq!(
            parse_time("2026-10-05T14:00:00+02:00", now).unwrap(),
            "2026-10-05T12:00:00Z"
        );
        assert!(parse_time("yesterday", now).is_err());
    }

    #[test]
    fn severities() {
        assert_eq!(parse_severity("high+").unwrap(), (Some(Level::High), None));
        assert_eq!(parse_severity("low").unwrap(), (None, Some(Level::Low)));
        assert!(parse_severity("urgent").is_err());
    }
}
