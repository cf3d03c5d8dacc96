//! An error and its causes as one line of text.
//!
//! The layers' errors (`StoreError`, `DecodeError`, `SourceError`...) put
//! their source in their own message, so that a logged error is whole, and
//! also expose it as `source()`; the AWS SDK's errors say little at the top
//! ("streaming error") and the rest in their causes. Walking the chain and
//! keeping only causes whose text is not already there gives both kinds in
//! full, each cause once.

/// `e` and its causes joined with `: `, leaving out a cause whose text the
/// line already contains.
pub fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{path}: {source}")]
    struct Repeats {
        path: &'static str,
        #[source]
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("streaming error")]
    struct Terse(#[source] std::io::Error);

    #[test]
    fn each_cause_appears_once_whether_or_not_the_message_repeats_it() {
        let cut = || std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset by peer");
        let repeats = Repeats {
            path: "/data",
            source: cut(),
        };
        assert_eq!(chain_text(&repeats), "/data: connection reset by peer");
        assert_eq!(chain_text(&Terse(cut())), "streaming error: connection reset by peer");
        let wrapped = anyhow::Error::new(repeats).context("cannot open the store");
        assert_eq!(
            chain_text(wrapped.as_ref()),
            "cannot open the store: /data: connection reset by peer"
        );
    }
}
