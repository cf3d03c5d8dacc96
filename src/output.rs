//! Alert output for people (aligned tables fitted to the terminal) and for
//! pipes (JSON Lines, CSV with a header).

use std::io::Write;

use clap::ValueEnum;
use comfy_table::{ContentArrangement, Table, presets};
use serde::Serialize;
use trailwatch::pipeline::Alert;

/// `s` made safe for a terminal: control characters (C0, DEL, C1), which
/// log content may carry (a user agent is whatever the caller sent), are
/// shown as `\u{..}` escapes instead of being written raw, so that an alert
/// cannot move the cursor, rewrite the screen or set the window title of the
/// analyst reading it. Machine formats (jsonl, csv) are escaped by their own
/// writers and left alone.
pub fn terminal_safe(s: &str) -> std::borrow::Cow<'_, str> {
    escape_controls(s, false)
}

/// [`terminal_safe`] for multi-line text that trailwatch laid out itself
/// (a pretty-printed raw event): line feeds stay.
pub fn terminal_safe_lines(s: &str) -> std::borrow::Cow<'_, str> {
    escape_controls(s, true)
}

fn escape_controls(s: &str, keep_newlines: bool) -> std::borrow::Cow<'_, str> {
    let escape = |c: char| c.is_control() && !(keep_newlines && c == '\n');
    if !s.chars().any(escape) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if escape(c) {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AlertFormat {
    Table,
    Jsonl,
    Csv,
}

/// The machine-readable shape of an alert (jsonl and csv). `id` and
/// `detected_at` are present for stored alerts (`trailwatch alerts`).
#[derive(Serialize)]
pub struct AlertOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    rule: &'a str,
    rule_id: &'a str,
    title: &'a str,
    severity: &'a str,
    event_id: &'a str,
    event_time: &'a str,
    event_name: &'a str,
    event_source: &'a str,
    account_id: &'a str,
    aws_region: &'a str,
    principal_arn: &'a str,
    principal_type: &'a str,
    source_ip: &'a str,
    user_agent: &'a str,
    object: &'a str,
    /// Correlation alerts: the group, the window in event time, and the
    /// contributing eventIDs (space-separated); empty for single events.
    group_key: Option<&'a str>,
    window_start: Option<&'a str>,
    window_end: Option<&'a str>,
    contributing_events: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detected_at: Option<&'a str>,
}

impl<'a> From<&'a Alert> for AlertOut<'a> {
    fn from(a: &'a Alert) -> Self {
        AlertOut {
            id: None,
            detected_at: None,
            rule: &a.rule_name,
            rule_id: &a.rule_id,
            title: &a.title,
            severity: a.severity.as_str(),
            event_id: &a.event_id,
            event_time: &a.event_time,
            event_name: &a.event_name,
            event_source: &a.event_source,
            account_id: &a.account_id,
            aws_region: &a.aws_region,
            principal_arn: &a.principal_arn,
            principal_type: &a.principal_type,
            source_ip: &a.source_ip,
            user_agent: &a.user_agent,
            object: &a.object,
            group_key: a.correlation.as_ref().map(|c| c.group_key.as_str()),
            window_start: a.correlation.as_ref().map(|c| c.window_start.as_str()),
            window_end: a.correlation.as_ref().map(|c| c.window_end.as_str()),
            contributing_events: a.correlation.as_ref().map(|c| c.event_ids.join(" ")),
        }
    }
}

/// Writes alerts as they arrive (jsonl, csv) or all at once (table).
pub struct AlertWriter<W: Write> {
    sink: Sink<W>,
    pending: Vec<Alert>,
}

enum Sink<W: Write> {
    Table(W),
    Jsonl(W),
    Csv(csv::Writer<W>),
}

impl<W: Write> AlertWriter<W> {
    pub fn new(format: AlertFormat, out: W) -> Self {
        let sink = match format {
            AlertFormat::Table => Sink::Table(out),
            AlertFormat::Jsonl => Sink::Jsonl(out),
            AlertFormat::Csv => Sink::Csv(csv::Writer::from_writer(out)),
        };
        AlertWriter {
            sink,
            pending: Vec::new(),
        }
    }

    pub fn write(&mut self, a: &Alert) -> std::io::Result<()> {
        match &mut self.sink {
            Sink::Table(_) => self.pending.push(a.clone()),
            Sink::Jsonl(out) => {
                serde_json::to_writer(&mut *out, &AlertOut::from(a))?;
                out.write_all(b"\n")?;
            }
            Sink::Csv(w) => w.serialize(AlertOut::from(a)).map_err(std::io::Error::other)?,
        }
        Ok(())
    }

    /// Pushes what was written so far to the output. Writers are buffered
    /// (stdout is line-buffered, so a line was a system call: about 4% of a
    /// full-pack scan that stores 225,000 alerts, in perf), and the
    /// committer calls this once per commit: the alerts of a commit appear
    /// together, as soon as they are stored.
    pub fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.sink {
            Sink::Table(_) => Ok(()),
            Sink::Jsonl(out) => out.flush(),
            Sink::Csv(w) => w.flush(),
        }
    }

    /// Writes what is pending (the table) and flushes.
    pub fn finish(mut self) -> std::io::Result<()> {
        match &mut self.sink {
            Sink::Table(out) => {
                if !self.pending.is_empty() {
                    self.pending
                        .sort_by(|a, b| a.event_time.cmp(&b.event_time).then(a.rule_name.cmp(&b.rule_name)));
                    writeln!(out, "{}", alert_table(&self.pending))?;
                }
                out.flush()
            }
            Sink::Jsonl(out) => out.flush(),
            Sink::Csv(w) => w.flush(),
        }
    }
}

impl AlertWriter<std::io::BufWriter<std::io::StdoutLock<'static>>> {
    /// A writer to standard output, buffered (see [`AlertWriter::flush`]).
    pub fn stdout(format: AlertFormat) -> Self {
        AlertWriter::new(
            format,
            std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock()),
        )
    }
}

/// An aligned table: time, severity, rule, account, principal, source ip,
/// event.
pub fn alert_table(alerts: &[Alert]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(["TIME", "SEVERITY", "RULE", "ACCOUNT", "PRINCIPAL", "SOURCE IP", "EVENT"]);
    for a in alerts {
        let principal = if a.principal_arn.is_empty() {
            &a.principal_type
        } else {
            &a.principal_arn
        };
        let event = format!("{}:{}", a.event_source.trim_end_matches(".amazonaws.com"), a.event_name);
        t.add_row(
            [
                a.event_time.as_str(),
                a.severity.as_str(),
                a.rule_name.as_str(),
                a.account_id.as_str(),
                principal.as_str(),
                a.source_ip.as_str(),
                event.as_str(),
            ]
            .map(terminal_safe),
        );
    }
    t
}

#[cfg(test)]
mod tests {
    use super::{terminal_safe, terminal_safe_lines};

    #[test]
    fn control_characters_are_escaped_for_terminals() {
        assert_eq!(terminal_safe("aws-cli/2.0 é"), "aws-cli/2.0 é");
        assert_eq!(
            terminal_safe("\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}X\0"),
            "\\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\u{9b}X\\u{0}"
        );
        assert_eq!(terminal_safe("a\nb"), "a\\u{a}b");
        assert_eq!(
            terminal_safe_lines("{\n  \"a\": \"\u{9b}\"\n}"),
            "{\n  \"a\": \"\\u{9b}\"\n}"
        );
    }
}
