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
        if !self
            .secrets
            .iter()
            .any(|s| memchr::memmem::find(buf, s.as_bytes()).is_some())
        {
            self.inner.write_all(buf)?;
            return Ok(buf.len());
        }
        let mut text = buf.to_vec();
        for s in self.secrets.iter() {
            text = replace_all(&text, s.as_bytes(), b"** redacted **");
        }
        self.inner.write_all(&text)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
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
    fn secrets_are_masked_wherever_they_appear() {
        let mut out = Vec::new();
        let mut w = Redacting {
            inner: &mut out,
            secrets: Arc::new(vec!["AKIAEXAMPLEKEY12".into(), "s3cr3t/v+lue==".into()]),
        };
        write!(w, "id=AKIAEXAMPLEKEY12 x=s3cr3t/v+lue==s3cr3t/v+lue== ok\n").unwrap();
        w.write_all(b"nothing here\n").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "id=** redacted ** x=** redacted **** redacted ** ok\nnothing here\n"
        );
    }
}
