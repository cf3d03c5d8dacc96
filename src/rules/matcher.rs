//! Compiled Sigma searches: field conditions with their value matchers, and
//! their evaluation against a borrowed [`Record`].
//!
//! Evaluation is pure: it reads the record and nothing else.

use std::net::IpAddr;

use base64::Engine as _;
use ipnet::IpNet;
use regex::RegexBuilder;
use serde_yaml_ng::Value as Yaml;

use super::pattern::{self, StrPattern, Token};
use crate::decode::{Leaf, Record};

/// A field path split on dots.
pub type Path = Vec<Box<str>>;

/// One value test.
#[derive(Debug, Clone)]
pub enum ValueMatcher {
    /// The field is absent or `null` (Sigma `field: null`).
    Null,
    /// `|exists: true|false`.
    Exists(bool),
    Str(StrPattern),
    /// `|lt`, `|lte`, `|gt`, `|gte` against numbers (or numeric strings).
    Num(NumOp, f64),
    /// `|cidr`: the value is an IP address inside the network.
    Cidr(IpNet),
    /// `|fieldref`: equal to the value of another field of the same record.
    FieldRef(Path),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumOp {
    Lt,
    Lte,
    Gt,
    Gte,
}

/// `field|modifiers: values` — the values are ORed, or ANDed with `|all`.
#[derive(Debug, Clone)]
pub struct FieldCond {
    /// The field as written in the rule (for listings and messages).
    pub field: String,
    pub path: Path,
    pub matchers: Vec<ValueMatcher>,
    pub all: bool,
}

/// A search identifier's body.
#[derive(Debug, Clone)]
pub enum Search {
    /// A list of maps: any map matches (each map ANDs its fields). A single
    /// map is a list of one.
    Maps(Vec<Vec<FieldCond>>),
    /// A fieldless keyword list: any scalar anywhere in the record matches
    /// any keyword (substring, case-insensitive unless `|cased`), or all of
    /// them with `|all`.
    Keywords { matchers: Vec<StrPattern>, all: bool },
}

/// Why a field condition could not be compiled; the caller adds the file.
#[derive(Debug, Clone)]
pub struct CompileError {
    /// The construct, as written (for example `eventName|base65`).
    pub construct: String,
    pub reason: String,
}

fn err(construct: &str, reason: impl Into<String>) -> CompileError {
    CompileError {
        construct: construct.to_owned(),
        reason: reason.into(),
    }
}

/// Placeholder values for `|expand` (`%name%` → values), from configuration.
pub type Placeholders = std::collections::HashMap<String, Vec<String>>;

fn scalar_text(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Compiles `key: value` of a detection map. `key` is `field|mod|mod...`.
pub fn compile_field(key: &str, value: &Yaml, placeholders: &Placeholders) -> Result<FieldCond, CompileError> {
    let mut parts = key.split('|');
    let field = parts.next().unwrap_or_default().to_owned();
    let mods: Vec<&str> = parts.collect();
    if field.is_empty() {
        return Err(err(
            key,
            "a field name is required before the modifiers (keyword lists use a YAML list, not a map)",
        ));
    }
    let path: Path = field.split('.').map(Box::from).collect();
    let values: Vec<&Yaml> = match value {
        Yaml::Sequence(items) => items.iter().collect(),
        other => vec![other],
    };
    if values.is_empty() {
        return Err(err(
            key,
            "an empty value list matches nothing; remove the field or give values",
        ));
    }
    let spec = Modifiers::parse(key, &mods)?;
    let mut matchers = Vec::new();
    for v in values {
        compile_value(key, &spec, v, placeholders, &mut matchers)?;
    }
    Ok(FieldCond {
        field,
        path,
        matchers,
        all: spec.all,
    })
}

/// Compiles one keyword (fieldless) value.
pub fn compile_keyword(construct: &str, mods: &[&str], value: &Yaml) -> Result<Vec<StrPattern>, CompileError> {
    let spec = Modifiers::parse(construct, mods)?;
    if spec.other.is_some() || spec.placement.is_some() {
        return Err(err(
            construct,
            "keyword searches support only the string modifiers `contains`, `all` and `cased`",
        ));
    }
    let Some(text) = scalar_text(value) else {
        return Err(err(construct, "keywords must be strings or numbers"));
    };
    let mut tokens = pattern::tokenize(&text);
    tokens.insert(0, Token::Star);
    tokens.push(Token::Star);
    let p = StrPattern::compile(&tokens, spec.cased).map_err(|e| err(construct, e.to_string()))?;
    Ok(vec![p])
}

#[derive(Debug, Default)]
struct Modifiers {
    placement: Option<&'static str>, // contains / startswith / endswith
    all: bool,
    cased: bool,
    /// A modifier that replaces string matching (re, cidr, exists, lt...).
    other: Option<String>,
    re_flags: (bool, bool, bool), // i, m, s
    base64: Option<&'static str>, // base64 / base64offset
    windash: bool,
    expand: bool,
}

impl Modifiers {
    fn parse(key: &str, mods: &[&str]) -> Result<Modifiers, CompileError> {
        let mut m = Modifiers::default();
        for raw in mods {
            let md = raw.to_ascii_lowercase();
            match md.as_str() {
                "contains" | "startswith" | "endswith" => {
                    if m.placement.is_some() {
                        return Err(err(key, "only one of contains/startswith/endswith may be given"));
                    }
                    m.placement = Some(match md.as_str() {
                        "contains" => "contains",
                        "startswith" => "startswith",
                        _ => "endswith",
                    });
                }
                "all" => m.all = true,
                "cased" => m.cased = true,
                "re" | "cidr" | "exists" | "fieldref" | "lt" | "lte" | "gt" | "gte" => {
                    if let Some(prev) = &m.other {
                        return Err(err(key, format!("`{md}` cannot be combined with `{prev}`")));
                    }
                    m.other = Some(md.clone());
                }
                "i" | "ignorecase" => m.re_flags.0 = true,
                "m" | "multiline" => m.re_flags.1 = true,
                "s" | "dotall" => m.re_flags.2 = true,
                "base64" => m.base64 = Some("base64"),
                "base64offset" => m.base64 = Some("base64offset"),
                "windash" => m.windash = true,
                "expand" => m.expand = true,
                "wide" | "utf16le" | "utf16be" | "utf16" => {
                    return Err(err(
                        key,
                        format!(
                            "the `{md}` encoding modifier targets Windows binary logs and is not supported for CloudTrail JSON"
                        ),
                    ));
                }
                _ => return Err(err(key, format!("unknown modifier `{raw}`"))),
            }
        }
        if (m.re_flags.0 || m.re_flags.1 || m.re_flags.2) && m.other.as_deref() != Some("re") {
            return Err(err(key, "the i/m/s sub-modifiers only go with `re`"));
        }
        if m.other.is_some() && (m.placement.is_some() || m.base64.is_some() || m.windash) {
            return Err(err(
                key,
                format!(
                    "`{}` cannot be combined with string-shaping modifiers",
                    m.other.as_deref().unwrap_or_default()
                ),
            ));
        }
        if m.base64 == Some("base64offset") && m.placement != Some("contains") {
            return Err(err(key, "`base64offset` must be followed by `contains` (Sigma spec)"));
        }
        Ok(m)
    }
}

fn compile_value(
    key: &str,
    m: &Modifiers,
    v: &Yaml,
    placeholders: &Placeholders,
    out: &mut Vec<ValueMatcher>,
) -> Result<(), CompileError> {
    if let Some(kind) = &m.other {
        return compile_special(key, kind, m, v, out);
    }
    if v.is_null() {
        out.push(ValueMatcher::Null);
        return Ok(());
    }
    let Some(text) = scalar_text(v) else {
        return Err(err(
            key,
            "values must be strings, numbers, booleans or null (nested maps are not Sigma)",
        ));
    };
    // `expand`: substitute placeholders first, each giving a list of values.
    let texts: Vec<String> = if m.expand {
        expand(key, &text, placeholders)?
    } else {
        vec![text]
    };
    for text in texts {
        let variants: Vec<String> = if m.windash { windash_variants(&text) } else { vec![text] };
        for t in variants {
            let bodies: Vec<Vec<Token>> = match m.base64 {
                None => vec![pattern::tokenize(&t)],
                Some("base64") => vec![pattern::literal(
                    &base64::engine::general_purpose::STANDARD.encode(t.as_bytes()),
                )],
                Some(_) => base64_offsets(t.as_bytes())
                    .iter()
                    .map(|s| pattern::literal(s))
                    .collect(),
            };
            for mut tokens in bodies {
                match m.placement {
                    Some("contains") => {
                        tokens.insert(0, Token::Star);
                        tokens.push(Token::Star);
                    }
                    Some("startswith") => tokens.push(Token::Star),
                    Some(_) => tokens.insert(0, Token::Star),
                    None => {}
                }
                // `**` collapses when a value already had a star at that end.
                tokens.dedup_by(|a, b| *a == Token::Star && *b == Token::Star);
                // base64 output is case-sensitive by nature.
                let cased = m.cased || m.base64.is_some();
                let p = StrPattern::compile(&tokens, cased).map_err(|e| err(key, e.to_string()))?;
                out.push(ValueMatcher::Str(p));
            }
        }
    }
    Ok(())
}

fn compile_special(
    key: &str,
    kind: &str,
    m: &Modifiers,
    v: &Yaml,
    out: &mut Vec<ValueMatcher>,
) -> Result<(), CompileError> {
    match kind {
        "exists" => match v {
            Yaml::Bool(b) => out.push(ValueMatcher::Exists(*b)),
            Yaml::String(s) if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") => {
                out.push(ValueMatcher::Exists(s.eq_ignore_ascii_case("true")))
            }
            _ => return Err(err(key, "`exists` takes true or false")),
        },
        "re" => {
            let Some(text) = scalar_text(v) else {
                return Err(err(key, "`re` takes a string"));
            };
            let re = RegexBuilder::new(&text)
                .case_insensitive(m.re_flags.0)
                .multi_line(m.re_flags.1)
                .dot_matches_new_line(m.re_flags.2)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| err(key, format!("invalid regular expression: {e}")))?;
            out.push(ValueMatcher::Str(StrPattern::regex(re)));
        }
        "cidr" => {
            let Some(text) = scalar_text(v) else {
                return Err(err(key, "`cidr` takes a network such as 10.0.0.0/8"));
            };
            let net: IpNet = text
                .parse()
                .map_err(|_| err(key, format!("`{text}` is not a CIDR network")))?;
            out.push(ValueMatcher::Cidr(net));
        }
        "fieldref" => {
            let Some(text) = scalar_text(v) else {
                return Err(err(key, "`fieldref` takes a field name"));
            };
            out.push(ValueMatcher::FieldRef(text.split('.').map(Box::from).collect()));
        }
        op => {
            let n = match v {
                Yaml::Number(n) => n.as_f64(),
                Yaml::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            };
            let Some(n) = n else {
                return Err(err(key, format!("`{op}` takes a number")));
            };
            let op = match op {
                "lt" => NumOp::Lt,
                "lte" => NumOp::Lte,
                "gt" => NumOp::Gt,
                _ => NumOp::Gte,
            };
            out.push(ValueMatcher::Num(op, n));
        }
    }
    Ok(())
}

fn expand(key: &str, text: &str, placeholders: &Placeholders) -> Result<Vec<String>, CompileError> {
    // Each `%name%` is replaced by each of its values (cartesian product).
    let mut results = vec![String::new()];
    let mut rest = text;
    while let Some(start) = rest.find('%') {
        let Some(len) = rest[start + 1..].find('%') else {
            break;
        };
        let name = &rest[start + 1..start + 1 + len];
        let Some(values) = placeholders.get(name) else {
            return Err(err(
                key,
                format!(
                    "placeholder `%{name}%` has no value: supply it in the configuration (placeholders.{name} = [...])"
                ),
            ));
        };
        let prefix = &rest[..start];
        results = results
            .iter()
            .flat_map(|r| values.iter().map(move |v| format!("{r}{prefix}{v}")))
            .collect();
        rest = &rest[start + len + 2..];
    }
    for r in &mut results {
        r.push_str(rest);
    }
    Ok(results)
}

/// `windash`: every `-` that starts a word is also tried as `/`, en dash, em
/// dash and horizontal bar.
fn windash_variants(s: &str) -> Vec<String> {
    let starts_word = |i: usize| i == 0 || s[..i].ends_with(' ');
    if !s.char_indices().any(|(i, c)| c == '-' && starts_word(i)) {
        return vec![s.to_owned()];
    }
    ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}']
        .iter()
        .map(|rep| {
            s.char_indices()
                .map(|(i, c)| if c == '-' && starts_word(i) { *rep } else { c })
                .collect()
        })
        .collect()
}

/// The three base64 encodings of `value` at byte offsets 0, 1 and 2 of the
/// containing data, trimmed to the characters that do not depend on the
/// surrounding bytes (as pySigma does).
fn base64_offsets(value: &[u8]) -> Vec<String> {
    let eng = &base64::engine::general_purpose::STANDARD;
    let start = [0usize, 2, 3];
    let end_trim = [0usize, 3, 2];
    (0..3)
        .map(|i| {
            let mut data = vec![b' '; i];
            data.extend_from_slice(value);
            let enc = eng.encode(&data);
            let trim = end_trim[(value.len() + i) % 3];
            let s = start[i].min(enc.len());
            let e = enc.len().saturating_sub(trim).max(s);
            enc[s..e].to_owned()
        })
        .collect()
}

// ---------------------------------------------------------------- evaluation

/// Formats a number leaf the way Sigma rules write it (`443`, `1.5`).
fn with_leaf_text<R>(leaf: Leaf<'_>, f: impl FnOnce(&str) -> R) -> Option<R> {
    match leaf {
        Leaf::Str(s) => Some(f(s)),
        Leaf::Bool(b) => Some(f(if b { "true" } else { "false" })),
        Leaf::I64(n) => Some(f(itoa::Buffer::new().format(n))),
        Leaf::U64(n) => Some(f(itoa::Buffer::new().format(n))),
        Leaf::F64(n) => Some(f(&n.to_string())),
        Leaf::Null | Leaf::Container(_) => None,
    }
}

fn leaf_number(leaf: Leaf<'_>) -> Option<f64> {
    match leaf {
        Leaf::I64(n) => Some(n as f64),
        Leaf::U64(n) => Some(n as f64),
        Leaf::F64(n) => Some(n),
        Leaf::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl ValueMatcher {
    /// Tests one leaf. Containers are searched value by value.
    fn matches_leaf(&self, leaf: Leaf<'_>, rec: &Record<'_>) -> bool {
        if let Leaf::Container(v) = leaf {
            return crate::decode::record_any_scalar(v, &mut |l| self.matches_leaf(l, rec));
        }
        match self {
            ValueMatcher::Null => matches!(leaf, Leaf::Null),
            ValueMatcher::Exists(_) => true,
            ValueMatcher::Str(p) => with_leaf_text(leaf, |t| p.is_match(t)).unwrap_or(false),
            ValueMatcher::Num(op, n) => leaf_number(leaf).is_some_and(|x| match op {
                NumOp::Lt => x < *n,
                NumOp::Lte => x <= *n,
                NumOp::Gt => x > *n,
                NumOp::Gte => x >= *n,
            }),
            ValueMatcher::Cidr(net) => {
                with_leaf_text(leaf, |t| t.parse::<IpAddr>().is_ok_and(|ip| net.contains(&ip))).unwrap_or(false)
            }
            ValueMatcher::FieldRef(path) => with_leaf_text(leaf, |t| {
                rec.any_at(path, &mut |other| {
                    with_leaf_text(other, |o| o.eq_ignore_ascii_case(t)).unwrap_or(false)
                })
            })
            .unwrap_or(false),
        }
    }

    fn matches(&self, path: &[Box<str>], rec: &Record<'_>) -> bool {
        match self {
            ValueMatcher::Null => !rec.exists(path) || rec.any_at(path, &mut |l| matches!(l, Leaf::Null)),
            ValueMatcher::Exists(want) => rec.exists(path) == *want,
            _ => rec.any_at(path, &mut |l| self.matches_leaf(l, rec)),
        }
    }
}

impl FieldCond {
    pub fn matches(&self, rec: &Record<'_>) -> bool {
        if self.all {
            self.matchers.iter().all(|m| m.matches(&self.path, rec))
        } else {
            self.matchers.iter().any(|m| m.matches(&self.path, rec))
        }
    }

    /// The exact lowercased values this condition requires, if it is a plain
    /// (OR of) equality test; used by the dispatch index.
    pub fn exact_values(&self) -> Option<Vec<String>> {
        if self.all && self.matchers.len() > 1 {
            return None;
        }
        self.matchers
            .iter()
            .map(|m| match m {
                ValueMatcher::Str(p) => p.exact_value().map(str::to_owned),
                _ => None,
            })
            .collect()
    }
}

impl Search {
    pub fn matches(&self, rec: &Record<'_>) -> bool {
        match self {
            Search::Maps(maps) => maps.iter().any(|conds| conds.iter().all(|c| c.matches(rec))),
            Search::Keywords { matchers, all } => {
                let hit =
                    |p: &StrPattern| rec.any_scalar(&mut |l| with_leaf_text(l, |t| p.is_match(t)).unwrap_or(false));
                if *all {
                    matchers.iter().all(hit)
                } else {
                    matchers.iter().any(hit)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64offset_matches_pysigma_reference() {
        // pySigma's documented example for "/bin/bash".
        assert_eq!(
            base64_offsets(b"/bin/bash"),
            vec!["L2Jpbi9iYXNo", "9iaW4vYmFza", "vYmluL2Jhc2"]
        );
    }

    #[test]
    fn windash_variants_only_touch_word_starts() {
        let v = windash_variants("-foo a-b");
        assert_eq!(v.len(), 5);
        assert!(v.contains(&"/foo a-b".to_string()));
        assert_eq!(windash_variants("a-b"), vec!["a-b".to_string()]);
    }

    #[test]
    fn expand_substitutes_and_reports_missing_placeholder() {
        let mut ph = Placeholders::new();
        ph.insert("admins".into(), vec!["alice".into(), "bob".into()]);
        assert_eq!(
            expand("k", "user/%admins%", &ph).unwrap(),
            vec!["user/alice", "user/bob"]
        );
        let e = expand("k", "%nope%", &ph).unwrap_err();
        assert!(e.reason.contains("placeholder `%nope%`"));
    }
}
