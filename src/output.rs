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

impl AlertOut<'_> {
    /// Appends the alert as one line of JSON, byte for byte what
    /// `serde_json::to_writer` writes for it (a test holds the two
    /// together). Written by hand because a full-pack scan prints hundreds
    /// of thousands of alerts, and serde_json's writer, a call per token
    /// and a byte-wise escape per string, was 2% of the scan.
    pub fn write_jsonl(&self, out: &mut Vec<u8>) {
        use trailwatch::decode::write_json_str;
        let mut first = true;
        let mut key = |out: &mut Vec<u8>, k: &str| {
            out.extend_from_slice(if first { b"{\"" } else { b",\"" });
            first = false;
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b"\":");
        };
        let opt = |out: &mut Vec<u8>, v: Option<&str>| match v {
            Some(v) => write_json_str(out, v),
            None => out.extend_from_slice(b"null"),
        };
        if let Some(id) = self.id {
            key(out, "id");
            out.extend_from_slice(itoa::Buffer::new().format(id).as_bytes());
        }
        for (k, v) in [
            ("rule", self.rule),
            ("rule_id", self.rule_id),
            ("title", self.title),
            ("severity", self.severity),
            ("event_id", self.event_id),
            ("event_time", self.event_time),
            ("event_name", self.event_name),
            ("event_source", self.event_source),
            ("account_id", self.account_id),
            ("aws_region", self.aws_region),
            ("principal_arn", self.principal_arn),
            ("principal_type", self.principal_type),
            ("source_ip", self.source_ip),
            ("user_agent", self.user_agent),
            ("object", self.object),
        ] {
            key(out, k);
            write_json_str(out, v);
        }
        for (k, v) in [
            ("group_key", self.group_key),
            ("window_start", self.window_start),
            ("window_end", self.window_end),
            ("contributing_events", self.contributing_events.as_deref()),
        ] {
            key(out, k);
            opt(out, v);
        }
        if let Some(d) = self.detected_at {
            key(out, "detected_at");
            write_json_str(out, d);
        }
        out.extend_from_slice(b"}\n");
    }
}

/// Writes alerts as they arrive (jsonl, csv) or all at once (table).
pub struct AlertWriter<W: Write> {
    sink: Sink<W>,
    pending: Vec<Alert>,
    /// A JSON line, reused.
    line: Vec<u8>,
}

#[expect(clippy::large_enum_variant, reason = "one per process")]
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
            line: Vec::new(),
        }
    }

    pub fn write(&mut self, a: &Alert) -> std::io::Result<()> {
        match &mut self.sink {
            Sink::Table(_) => self.pending.push(a.clone()),
            Sink::Jsonl(out) => {
                self.line.clear();
                AlertOut::from(a).write_jsonl(&mut self.line);
                out.write_all(&self.line)?;
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
            a.principal_type.as_str()
        } else {
            a.principal_arn.as_str()
        };
        let event = format!("{}:{}", a.event_source.trim_end_matches(".amazonaws.com"), a.event_name);
        t.add_row(
            [
                a.event_time.as_str(),
                a.severity.as_str(),
                a.rule_name.as_str(),
                a.account_id.as_str(),
                principal,
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
    use super::{AlertOut, terminal_safe, terminal_safe_lines};
    use trailwatch::pipeline::{Alert, CorrelationRef};
    use trailwatch::rules::Level;

    /// The hand-written JSON line is what serde_json writes for the same
    /// alert: every field (a field added to `AlertOut` and not to
    /// `write_jsonl` fails here), escapes, nulls, and the optional `id` and
    /// `detected_at`.
    #[test]
    fn jsonl_lines_are_what_serde_json_writes() {
        let nasty = "q\"b\\s\u{1}\u{1f}\n\t\r\u{8}\u{c}\u{7f} é€😀 </script>";
        let mut a = Alert {
            rule_name: "root_account_usage".into(),
            rule_id: "8f3d7c23".into(),
            title: nasty.into(),
            severity: Level::High,
            event_id: "e-1".into(),
            event_time: "2026-10-05T08:01:00Z".into(),
            event_name: "ConsoleLogin".into(),
            event_source: "signin.amazonaws.com".into(),
            aws_region: "us-east-1".into(),
            account_id: "111122223333".into(),
            principal_arn: "arn:aws:iam::111122223333:root".into(),
            principal_type: "Root".into(),
            source_ip: "203.0.113.7".into(),
            user_agent: nasty.into(),
            object: "s3://b/AWSLogs/x.json.gz".into(),
            raw_event: "{}".into(),
            correlation: None,
        };
        let mut lines = Vec::new();
        for with_correlation in [false, true] {
            if with_correlation {
                a.correlation = Some(CorrelationRef {
                    group_key: "userIdentity.arn=arn; sourceIPAddress=1.2.3.4".into(),
                    window_start: "2026-10-05T08:00:00Z".into(),
                    window_end: "2026-10-05T08:05:00Z".into(),
                    event_ids: vec!["e-1".into(), nasty.into()],
                });
            }
            for stored in [false, true] {
                let mut out = AlertOut::from(&a);
                if stored {
                    out.id = Some(-42);
                    out.detected_at = Some("2026-10-05T08:01:02Z");
                }
                let mut ours = Vec::new();
                out.write_jsonl(&mut ours);
                let theirs = serde_json::to_string(&out).unwrap() + "\n";
                assert_eq!(
                    String::from_utf8(ours).unwrap(),
                    theirs,
                    "correlation {with_correlation}, stored {stored}"
                );
                lines.push(theirs);
            }
        }
        assert!(lines[0].starts_with(
            r#"{"rule":"root_account_usage","rule_id":"8f3d7c23","title":"q\"b\\s\u0001\u001f\n\t\r\b\f"#
        ));
        assert!(
            lines[0].ends_with(
                "\"group_key\":null,\"window_start\":null,\"window_end\":null,\"contributing_events\":null}\n"
            )
        );
        assert!(lines[3].starts_with(r#"{"id":-42,"rule":"#));
        assert!(lines[3].ends_with(" é€😀 </script>\",\"detected_at\":\"2026-10-05T08:01:02Z\"}\n"));
    }

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
