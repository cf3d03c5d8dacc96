//! Log output that cannot carry the process's AWS credentials.
//!
//! Two layers, because either alone leaves a gap:
//! * the AWS SDK's internals log identities and signed requests at `trace`
//!   (the access key id in "resolved identity", signing parameters), so
//!   their trace events are dropped whatever `RUST_LOG` or `-vv` say;
//! * every line written to stderr is checked for the values of
//!   `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`
//!   (and the legacy `AWS_SECURITY_TOKEN`) taken from the environment at
//!   start-up, which are replaced by `** redacted **` wherever they appear,
//!   whichever crate logged them.
//!
//! The same writer also escapes control characters that log content
//! brought in (an S3 key, a file name, an error quoting a field):
//! tracing-subscriber escapes messages but prints `%` fields as they are, so
//! a key holding `ESC ] 0 ;` could retitle the operator's terminal. Only
//! colour sequences (`ESC [ digits ; m`, which the formatter itself writes
//! on a terminal) pass; every other control character is shown as `\u{..}`.
//!
//! `tracing_subscriber::fmt` formats an event completely before one write,
//! so a value is never split across two writes.

use std::io::Write;
use std::sync::Arc;

/// Whether `target` is (inside) one of [`CAPPED_TARGETS`].
pub fn is_capped(target: &str) -> bool {
    CAPPED_TARGETS.iter().any(|t| {
        target
            .strip_prefix(t)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

/// SDK targets that log credentials or signed requests at `trace`.
pub const CAPPED_TARGETS: &[&str] = &[
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_sigv4",
    "aws_config",
    "aws_credential_types",
    "aws_runtime",
    "hyper",
    "hyper_util",
    "h2",
];

/// The secret values to mask, from the environment. Values shorter than
/// 8 characters are not secrets worth the mangled logs (and not real keys).
pub fn secrets_from_env() -> Vec<String> {
    [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
    ]
    .iter()
    .filter_map(|k| std::env::var(k).ok())
    .filter(|v| v.len() >= 8)
    .collect()
}

/// A `MakeWriter` for stderr that masks `secrets`.
#[derive(Clone)]
pub struct RedactingStderr {
    secrets: Arc<Vec<String>>,
}

impl RedactingStderr {
    pub fn new(secrets: Vec<String>) -> Self {
        RedactingStderr {
            secrets: Arc::new(secrets),
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactingStderr {
    type Writer = Redacting<std::io::Stderr>;

    fn make_writer(&'a self) -> Self::Writer {
        Redacting {
            inner: std::io::stderr(),
            secrets: self.secrets.clone(),
        }
    }
}

/// A writer that replaces every occurrence of a secret before writing.
pub struct Redacting<W> {
    inner: W,
    secrets: Arc<Vec<String>>,
}

impl<W: Write> Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut text = escape_controls(buf);
        for s in self.secrets.iter() {
            if memchr::memmem::find(&text, s.as_bytes()).is_some() {
                text = std::borrow::Cow::Owned(replace_all(&text, s.as_bytes(), b"** redacted **"));
            }
        }
        self.inner.write_all(&text)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Control characters as `\u{..}`, except line feeds, tabs and colour
/// (SGR) sequences.
fn escape_controls(buf: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let is_c1 = |i: usize| buf[i] == 0xC2 && buf.get(i + 1).is_some_and(|b| (0x80..=0x9F).contains(b));
    let needs = |i: usize| {
        let b = buf[i];
        (b < 0x20 && b != b'\n' && b != b'\t') || b == 0x7F || is_c1(i)
    };
    if !(0..buf.len()).any(needs) {
        return std::borrow::Cow::Borrowed(buf);
    }
    let mut out = Vec::with_capacity(buf.len() + 16);
    let mut i = 0;
    while i < buf.len() {
        let b = buf[i];
        if b == 0x1B {
            // A colour sequence: ESC [ (digits | ;)* m.
            let end = buf[i + 1..]
                .iter()
                .position(|c| !(c.is_ascii_digit() || *c == b';' || *c == b'['))
                .map(|p| i + 1 + p);
            if buf.get(i + 1) == Some(&b'[') && end.is_some_and(|e| buf[e] == b'm' && !buf[i + 2..e].contains(&b'[')) {
                let e = end.expect("checked");
                out.extend_from_slice(&buf[i..=e]);
                i = e + 1;
                continue;
            }
        }
        if is_c1(i) {
            out.extend_from_slice(format!("\\u{{{:x}}}", buf[i + 1] as u32).as_bytes());
            i += 2;
        } else if needs(i) {
            out.extend_from_slice(format!("\\u{{{b:x}}}").as_bytes());
            i += 1;
        } else {
            out.push(b);
            i += 1;
        }
    }
    std::borrow::Cow::Owned(out)
}

fn replace_all(hay: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut last = 0;
    for i in memchr::memmem::find_iter(hay, needle) {
        if i < last {
            continue;
        }
        out.extend_from_slice(&hay[last..i]);
        out.extend_from_slice(with);
        last = i + needle.len();
    }
    out.extend_from_slice(&hay[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_targets_are_capped_by_prefix() {
        assert!(is_capped("aws_smithy_runtime::client::orchestrator::auth"));
        assert!(is_capped("aws_sigv4"));
        assert!(!is_capped("aws_sigv4x"));
        assert!(!is_capped("trailwatch::daemon"));
    }

    #[test]
    fn control_characters_from_log_content_are_escaped_but_colours_pass() {
        let e = |s: &[u8]| String::from_utf8(escape_controls(s).into_owned()).unwrap();
        assert_eq!(e(b"plain line\n"), "plain line\n");
        assert_eq!(
            e(b"\x1b[2mtime\x1b[0m \x1b[31mERROR\x1b[0m\n"),
            "\x1b[2mtime\x1b[0m \x1b[31mERROR\x1b[0m\n"
        );
        assert_eq!(
            e(b"object=s3://b/k\x1b]0;pwned\x07\x1b[2J\xc2\x9bX\r\n"),
            "object=s3://b/k\\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\u{9b}X\\u{d}\n"
        );
        assert_eq!(e("é €".as_bytes()), "é €");
    }

    #[test]
    fn secrets_are_masked_wherever_they_appear() {
        let mut out = Vec::new();
        let mut w = Redacting {
            inner: &mut out,
            secrets: Arc::new(vec!["AKIAEXAMPLEKEY12".into(), "s3cr3t/v+lue==".into()]),
        };
        writeln!(w, "id=AKIAEXAMPLEKEY12 x=s3cr3t/v+lue==s3cr3t/v+lue== ok").unwrap();
        w.write_all(b"nothing here\n").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "id=** redacted ** x=** redacted **** redacted ** ok\nnothing here\n"
        );
    }
}
