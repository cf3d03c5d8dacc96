//! String patterns: Sigma wildcards, case folding and the string modifiers
//! compiled into the cheapest matcher that implements them.
//!
//! Every Sigma string value becomes a token list (literal runs, `*`, `?`).
//! `contains`/`startswith`/`endswith` only add stars, so a single compiler
//! handles them and plain wildcards alike, and picks an exact / prefix /
//! suffix / substring test when the stars allow, falling back to an
//! anchored regex otherwise. Case-insensitive tests on ASCII needles avoid
//! any allocation on the hot path.

use aho_corasick::AhoCorasick;
use regex::Regex;

/// One token of a Sigma string value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    Lit(String),
    Star,
    Question,
    /// `windash`: any of `-`, `/`, en dash, em dash, horizontal bar.
    Dash,
}

/// The characters a `windash` switch prefix may be written with.
pub const WINDASH_CHARS: [char; 5] = ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'];

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Byte offsets of the `-` and `/` in `s` that start a word, as pySigma's
/// `windash` finds them (`\B[-/]\b`): not preceded by a word character,
/// followed by one.
pub fn windash_positions(s: &str) -> Vec<usize> {
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    chars
        .iter()
        .enumerate()
        .filter(|&(i, &(_, c))| {
            let before_ok = i == 0 || !is_word(chars[i - 1].1);
            let after_ok = chars.get(i + 1).is_some_and(|&(_, n)| is_word(n));
            matches!(c, '-' | '/') && before_ok && after_ok
        })
        .map(|(_, &(at, _))| at)
        .collect()
}

/// `windash` on a token list: every switch prefix in a literal run becomes
/// [`Token::Dash`]. Each literal run is looked at on its own, as pySigma does
/// with the plain parts of a string.
pub fn windash(tokens: Vec<Token>) -> Vec<Token> {
    let mut out = Vec::with_capacity(tokens.len());
    for t in tokens {
        let Token::Lit(s) = t else {
            out.push(t);
            continue;
        };
        let mut last = 0;
        for at in windash_positions(&s) {
            if at > last {
                out.push(Token::Lit(s[last..at].to_owned()));
            }
            out.push(Token::Dash);
            last = at + 1;
        }
        if last < s.len() {
            out.push(Token::Lit(s[last..].to_owned()));
        }
    }
    out
}

/// Splits a Sigma string into tokens. `*` and `?` are wildcards; `\*`, `\?`
/// and `\\` escape them; a backslash before anything else is literal (as the
/// specification says, so Windows paths need no doubling).
pub fn tokenize(s: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some('*') | Some('?') | Some('\\') => {
                    lit.push(chars.next().expect("peeked"));
                }
                _ => lit.push('\\'),
            },
            '*' | '?' => {
                if !lit.is_empty() {
                    out.push(Token::Lit(std::mem::take(&mut lit)));
                }
                let tok = if c == '*' { Token::Star } else { Token::Question };
                // `**` is the same as `*`.
                if !(tok == Token::Star && out.last() == Some(&Token::Star)) {
                    out.push(tok);
                }
            }
            _ => lit.push(c),
        }
    }
    if !lit.is_empty() {
        out.push(Token::Lit(lit));
    }
    out
}

/// A literal token list (no wildcards) from raw text, for values whose
/// wildcards must not be interpreted (for example base64 output).
pub fn literal(s: &str) -> Vec<Token> {
    if s.is_empty() {
        Vec::new()
    } else {
        vec![Token::Lit(s.to_owned())]
    }
}

#[derive(Debug, Clone)]
enum Kind {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(Box<AhoCorasick>, usize),
    /// Matches everything (`*`).
    Any,
    Regex(Regex),
    /// A user regex with a literal that every match contains: the literal is
    /// searched for first (see [`required_literal`]).
    RegexAfter(Box<memchr::memmem::Finder<'static>>, Regex),
}

/// A compiled string test.
#[derive(Debug, Clone)]
pub struct StrPattern {
    kind: Kind,
    /// Case-insensitive on ASCII (the needle is stored lowercased). Non-ASCII
    /// case-insensitive needles go through a `(?i)` regex instead.
    ascii_ci: bool,
}

impl StrPattern {
    /// Compiles tokens; `cased` disables Sigma's default case-insensitivity.
    pub fn compile(tokens: &[Token], cased: bool) -> Result<StrPattern, regex::Error> {
        let lits: String = tokens
            .iter()
            .filter_map(|t| if let Token::Lit(s) = t { Some(s.as_str()) } else { None })
            .collect();
        let ascii_ci = !cased;
        let simple = cased || lits.is_ascii();
        let norm = |s: &str| {
            if cased { s.to_owned() } else { s.to_ascii_lowercase() }
        };
        let kind = match tokens {
            _ if !simple => Kind::Regex(glob_regex(tokens, cased)?),
            [] => Kind::Exact(String::new()),
            [Token::Star] => Kind::Any,
            [Token::Lit(s)] => Kind::Exact(norm(s)),
            [Token::Lit(s), Token::Star] => Kind::Prefix(norm(s)),
            [Token::Star, Token::Lit(s)] => Kind::Suffix(norm(s)),
            [Token::Star, Token::Lit(s), Token::Star] => {
                let ac = AhoCorasick::builder()
                    .ascii_case_insensitive(!cased)
                    .build([s.as_str()])
                    .map_err(|e| regex::Error::Syntax(e.to_string()))?;
                Kind::Contains(Box::new(ac), s.len())
            }
            _ => Kind::Regex(glob_regex(tokens, cased)?),
        };
        Ok(StrPattern {
            kind,
            ascii_ci: ascii_ci && simple,
        })
    }

    /// Compiles a user regular expression (`|re`). The `regex` crate runs in
    /// linear time, so no rule can hang the pipeline.
    /// `flags` are the builder's (case-insensitive, multi-line, dot matches
    /// newline), so that the literal analysis parses what the regex does.
    pub fn regex(re: Regex, flags: (bool, bool, bool)) -> StrPattern {
        let kind = match required_literal(re.as_str(), flags) {
            Some(lit) => Kind::RegexAfter(Box::new(memchr::memmem::Finder::new(&lit).into_owned()), re),
            None => Kind::Regex(re),
        };
        StrPattern { kind, ascii_ci: false }
    }

    pub fn is_match(&self, hay: &str) -> bool {
        let ci = self.ascii_ci;
        match &self.kind {
            Kind::Any => true,
            Kind::Exact(n) => {
                if ci {
                    hay.eq_ignore_ascii_case(n)
                } else {
                    hay == n
                }
            }
            Kind::Prefix(n) => {
                hay.len() >= n.len() && {
                    let h = &hay.as_bytes()[..n.len()];
                    if ci {
                        h.eq_ignore_ascii_case(n.as_bytes())
                    } else {
                        h == n.as_bytes()
                    }
                }
            }
            Kind::Suffix(n) => {
                hay.len() >= n.len() && {
                    let h = &hay.as_bytes()[hay.len() - n.len()..];
                    if ci {
                        h.eq_ignore_ascii_case(n.as_bytes())
                    } else {
                        h == n.as_bytes()
                    }
                }
            }
            Kind::Contains(ac, n) => hay.len() >= *n && ac.is_match(hay),
            Kind::Regex(re) => re.is_match(hay),
            Kind::RegexAfter(lit, re) => lit.find(hay.as_bytes()).is_some() && re.is_match(hay),
        }
    }

    /// The exact (lowercased when case-insensitive) value, if this pattern is
    /// a plain equality test. Used to build the dispatch index.
    pub fn exact_value(&self) -> Option<&str> {
        match &self.kind {
            Kind::Exact(s) if self.ascii_ci => Some(s),
            _ => None,
        }
    }
}

/// The longest literal that every match of the regex `re` contains, when its
/// top level is a concatenation holding one (`.+:assumed-role/aws:.+`).
///
/// Why: SigmaHQ's `|re` values are mostly a literal between `.*`/`.+`, and
/// the `regex` crate runs its lazy DFA over the whole value for them (a
/// leading `.+` defeats its own literal prefilter): 92 ns per ARN against
/// 13 ns for a substring search, on a rule that tests every record. A
/// literal node of a top-level concatenation must appear, contiguously, in
/// any match, so searching for it first never changes a result. Anything
/// less plain (alternations, classes, case-insensitive groups, which parse
/// to classes) gives `None` and the regex alone.
fn required_literal(re: &str, (ci, multi_line, dot_nl): (bool, bool, bool)) -> Option<Vec<u8>> {
    use regex_syntax::hir::{Hir, HirKind};
    fn unwrap(h: &Hir) -> &Hir {
        match h.kind() {
            HirKind::Capture(c) => unwrap(&c.sub),
            _ => h,
        }
    }
    let hir = regex_syntax::ParserBuilder::new()
        .case_insensitive(ci)
        .multi_line(multi_line)
        .dot_matches_new_line(dot_nl)
        .build()
        .parse(re)
        .ok()?;
    let lit = |h: &Hir| match unwrap(h).kind() {
        HirKind::Literal(l) => Some(l.0.to_vec()),
        _ => None,
    };
    match unwrap(&hir).kind() {
        HirKind::Concat(parts) => parts.iter().filter_map(lit).max_by_key(Vec::len),
        _ => lit(&hir),
    }
}

fn glob_regex(tokens: &[Token], cased: bool) -> Result<Regex, regex::Error> {
    let mut re = String::from(if cased { "(?s)^" } else { "(?is)^" });
    for t in tokens {
        match t {
            Token::Lit(s) => re.push_str(&regex::escape(s)),
            Token::Star => re.push_str(".*"),
            Token::Question => re.push('.'),
            Token::Dash => {
                re.push('[');
                for c in WINDASH_CHARS {
                    re.push_str(&regex::escape(&c.to_string()));
                }
                re.push(']');
            }
        }
    }
    re.push('$');
    Regex::new(&re)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(s: &str, cased: bool) -> StrPattern {
        StrPattern::compile(&tokenize(s), cased).unwrap()
    }

    #[test]
    fn tokenize_handles_escapes_and_plain_backslashes() {
        assert_eq!(tokenize(r"a\*b"), vec![Token::Lit("a*b".into())]);
        assert_eq!(tokenize(r"C:\Windows\*"), vec![Token::Lit(r"C:\Windows*".into())]);
        assert_eq!(
            tokenize(r"C:\Windows\\*"),
            vec![Token::Lit(r"C:\Windows\".into()), Token::Star]
        );
        assert_eq!(
            tokenize("a**b?"),
            vec![
                Token::Lit("a".into()),
                Token::Star,
                Token::Lit("b".into()),
                Token::Question
            ]
        );
    }

    #[test]
    fn exact_is_case_insensitive_by_default() {
        assert!(pat("ConsoleLogin", false).is_match("consolelogin"));
        assert!(!pat("ConsoleLogin", true).is_match("consolelogin"));
        assert!(!pat("DisableKey", false).is_match("DisableKeyRotation"));
    }

    #[test]
    fn wildcard_shapes() {
        assert!(pat("Disable*", false).is_match("disablekeyrotation"));
        assert!(pat("*/0", false).is_match("0.0.0.0/0"));
        assert!(!pat("*/0", false).is_match("10.0.0.0/10"));
        assert!(pat("*SSO_*", false).is_match("arn:aws:sts::1:assumed-role/AWSReservedSSO_Admin/x"));
        assert!(pat("a?c", false).is_match("ABC"));
        assert!(!pat("a?c", false).is_match("abbc"));
        assert!(pat("*", false).is_match(""));
        assert!(pat("a*b*c", false).is_match("aXXbYYc"));
        assert!(pat(r"\*lit", false).is_match("*LIT"));
        assert!(!pat(r"\*lit", false).is_match("xlit"));
    }

    #[test]
    fn non_ascii_case_folding_uses_unicode() {
        assert!(pat("ÄRGER", false).is_match("ärger"));
        assert!(pat("*ÄR*", false).is_match("xxärxx"));
    }

    const NO_FLAGS: (bool, bool, bool) = (false, false, false);

    #[test]
    fn required_literal_is_taken_only_from_a_plain_concatenation() {
        let lit = |re: &str, flags| required_literal(re, flags).map(|l| String::from_utf8(l).unwrap());
        assert_eq!(
            lit(".+:assumed-role/aws:.+", NO_FLAGS).as_deref(),
            Some(":assumed-role/aws:")
        );
        assert_eq!(lit("^abc$", NO_FLAGS).as_deref(), Some("abc"));
        assert_eq!(lit("(ab)x*cde", NO_FLAGS).as_deref(), Some("cde"));
        assert_eq!(lit("foo(?i)bar", NO_FLAGS).as_deref(), Some("foo"));
        // Not required, or not one byte string.
        assert_eq!(lit("foo|bar", NO_FLAGS), None);
        assert_eq!(lit("(?:foo)?bar", NO_FLAGS).as_deref(), Some("bar"));
        assert_eq!(lit("(?:foo)?", NO_FLAGS), None);
        assert_eq!(lit("(?i)foo", NO_FLAGS), None);
        assert_eq!(lit(".+foo.+", (true, false, false)), None);
        assert_eq!(lit("[ab]+", NO_FLAGS), None);
    }

    #[test]
    fn user_regexes_search_their_required_literal_first_with_the_same_results() {
        let hays = [
            "arn:aws:sts::111122223333:assumed-role/aws:ec2-instance/i-0abc",
            "arn:aws:sts::111122223333:assumed-role/AWS:ec2-instance/i-0abc",
            ":assumed-role/aws:x",
            "x:assumed-role/aws:",
            "x:assumed-role/aws:\ny",
            "arn:aws:iam::111122223333:user/alice",
            "",
        ];
        for (re, flags) in [
            (".+:assumed-role/aws:.+", NO_FLAGS),
            (".+:assumed-role/aws:.+", (true, false, false)),
            (".+:assumed-role/aws:.+", (false, false, true)),
            ("^arn:.*user/", (false, true, false)),
        ] {
            let built = regex::RegexBuilder::new(re)
                .case_insensitive(flags.0)
                .multi_line(flags.1)
                .dot_matches_new_line(flags.2)
                .build()
                .unwrap();
            let p = StrPattern::regex(built.clone(), flags);
            // Case-insensitive, only caseless characters (`:`, `-`, `/`)
            // stay literals; they are required all the same.
            assert!(matches!(p.kind, Kind::RegexAfter(..)), "{re} {flags:?}");
            for h in hays {
                assert_eq!(p.is_match(h), built.is_match(h), "{re} {flags:?} on {h:?}");
            }
        }
        let p = StrPattern::regex(regex::Regex::new(".+:assumed-role/aws:.+").unwrap(), NO_FLAGS);
        assert!(p.is_match(hays[0]));
        assert!(!p.is_match(hays[1]));
        assert!(!p.is_match(hays[2]));
    }
}
