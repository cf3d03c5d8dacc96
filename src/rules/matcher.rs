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
pub type Path = crate::decode::FieldPath;

/// One value test.
#[derive(Debug, Clone)]
pub enum ValueMatcher {
    /// The field is absent or `null` (Sigma `field: null`).
    Null,
    /// `|exists: true|false`.
    Exists(bool),
    Str(StrPattern),
    /// An unquoted YAML number: equal to a record number by value (`2`
    /// equals `2.0`), or to a string by its text.
    NumEq(f64, StrPattern),
    /// `|lt`, `|lte`, `|gt`, `|gte` against numbers (or numeric strings).
    Num(NumOp, f64),
    /// `|cidr`: the value is an IP address inside the network.
    Cidr(IpNet),
    /// `|fieldref`: equal to the value of another field of the same record
    /// (case-insensitively unless `|cased`).
    FieldRef(Path, bool),
    /// One rule value that stands for several alternatives (`windash`,
    /// `base64offset`, `expand`): any of them matches. Kept as one matcher
    /// so that `|all` requires each *value*, not each alternative.
    Any(Vec<ValueMatcher>),
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
    /// Whether the values are ORed and each one tests leaves only (no
    /// `null` or `exists`, which look at absence): then the path is walked
    /// once and every leaf tried against every value, instead of one walk
    /// per value (rules list several names under one field).
    one_walk: bool,
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
    let path = Path::parse(&field);
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
    let mut cond = FieldCond {
        field,
        path,
        matchers,
        all: spec.all,
        one_walk: false,
    };
    cond.one_walk = !cond.all && cond.needs_a_value();
    Ok(cond)
}

/// Compiles one keyword (fieldless) value. Keywords are substring searches
/// over every value of the record, so `contains` is implied; the other
/// string modifiers (`cased`, `all`, `base64`, `base64offset`, `windash`)
/// apply as they do to field values.
pub fn compile_keyword(construct: &str, mods: &[&str], value: &Yaml) -> Result<Vec<StrPattern>, CompileError> {
    let mut spec = Modifiers::parse(construct, mods)?;
    if let Some(other) = &spec.other {
        return Err(err(
            construct,
            format!(
                "`{other}` needs a field; keyword searches take only string modifiers (contains, all, cased, base64, base64offset, windash)"
            ),
        ));
    }
    if matches!(spec.placement, Some("startswith" | "endswith")) {
        return Err(err(
            construct,
            "keywords are substring searches over the whole record; `startswith`/`endswith` need a field",
        ));
    }
    if spec.expand {
        return Err(err(
            construct,
            "`expand` needs a field; keyword searches do not take placeholders",
        ));
    }
    if value.is_null() {
        return Err(err(construct, "a keyword cannot be null"));
    }
    spec.placement = Some("contains");
    let mut alts = Vec::new();
    compile_value(construct, &spec, value, &Placeholders::new(), &mut alts)?;
    let mut out = Vec::new();
    flatten_str(alts, &mut out);
    Ok(out)
}

/// Keyword alternatives are all string patterns; a keyword list is an OR
/// anyway, so nesting is dropped.
fn flatten_str(ms: Vec<ValueMatcher>, out: &mut Vec<StrPattern>) {
    for m in ms {
        match m {
            ValueMatcher::Str(p) | ValueMatcher::NumEq(_, p) => out.push(p),
            ValueMatcher::Any(inner) => flatten_str(inner, out),
            _ => {}
        }
    }
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
        if m.cased && m.other.as_deref().is_some_and(|o| !matches!(o, "re" | "fieldref")) {
            return Err(err(
                key,
                format!(
                    "`cased` applies to string matching and `fieldref`, not to `{}`",
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

/// Compiles one rule value into one matcher (an [`ValueMatcher::Any`] when
/// the modifiers turn it into several alternatives).
fn compile_value(
    key: &str,
    m: &Modifiers,
    v: &Yaml,
    placeholders: &Placeholders,
    out: &mut Vec<ValueMatcher>,
) -> Result<(), CompileError> {
    if v.is_null() && m.other.is_none() {
        out.push(ValueMatcher::Null);
        return Ok(());
    }
    let mut alts = Vec::new();
    // `expand`: substitute placeholders first, each giving a list of values.
    if m.expand {
        let Some(text) = scalar_text(v) else {
            return Err(err(key, "`expand` takes a string with %placeholders%"));
        };
        for t in expand(key, &text, placeholders)? {
            compile_one(key, m, &Yaml::String(t), &mut alts)?;
        }
    } else {
        compile_one(key, m, v, &mut alts)?;
    }
    out.push(if alts.len() == 1 {
        alts.pop().expect("one")
    } else {
        ValueMatcher::Any(alts)
    });
    Ok(())
}

/// Compiles one (placeholder-free) value into its alternatives.
fn compile_one(key: &str, m: &Modifiers, v: &Yaml, out: &mut Vec<ValueMatcher>) -> Result<(), CompileError> {
    if let Some(kind) = &m.other {
        return compile_special(key, kind, m, v, out);
    }
    let Some(text) = scalar_text(v) else {
        return Err(err(
            key,
            "values must be strings, numbers, booleans or null (nested maps are not Sigma)",
        ));
    };
    let bodies: Vec<Vec<Token>> = match m.base64 {
        None => {
            let tokens = pattern::tokenize(&text);
            vec![if m.windash { pattern::windash(tokens) } else { tokens }]
        }
        Some(kind) => {
            // The dash variants must exist before encoding, so `windash`
            // expands into texts here.
            let texts = if m.windash {
                windash_variants(key, &text)?
            } else {
                vec![text.clone()]
            };
            let eng = &base64::engine::general_purpose::STANDARD;
            texts
                .iter()
                .flat_map(|t| {
                    if kind == "base64" {
                        vec![eng.encode(t.as_bytes())]
                    } else {
                        base64_offsets(t.as_bytes())
                    }
                })
                .map(|s| pattern::literal(&s))
                .collect()
        }
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
        let plain = m.placement.is_none() && m.base64.is_none() && !m.windash;
        match v {
            Yaml::Number(n) if plain => out.push(ValueMatcher::NumEq(n.as_f64().unwrap_or(f64::NAN), p)),
            _ => out.push(ValueMatcher::Str(p)),
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
            out.push(ValueMatcher::Str(StrPattern::regex(re, m.re_flags)));
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
            out.push(ValueMatcher::FieldRef(Path::parse(&text), m.cased));
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
                    "placeholder `%{name}%` has no value: supply it with `--placeholders FILE` (a YAML or TOML mapping such as `{name}: [value, ...]`), or under `[placeholders]` in the daemon's configuration"
                ),
            ));
        };
        if values.is_empty() {
            return Err(err(
                key,
                format!("placeholder `%{name}%` is configured with no values; give it at least one"),
            ));
        }
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

/// `windash` as texts, for the encodings that need them (`base64`): every
/// switch prefix independently takes each dash form, as pySigma expands it.
/// Bounded, since the count is 5 to the number of switches.
fn windash_variants(key: &str, s: &str) -> Result<Vec<String>, CompileError> {
    let positions = pattern::windash_positions(s);
    if positions.len() > 4 {
        return Err(err(
            key,
            format!(
                "`windash` with `base64` on a value with {} switches would expand to {} encodings; split the value",
                positions.len(),
                5usize.pow(positions.len() as u32)
            ),
        ));
    }
    let mut out = vec![String::new()];
    let mut last = 0;
    for at in positions {
        let lit = &s[last..at];
        out = out
            .iter()
            .flat_map(|o| pattern::WINDASH_CHARS.iter().map(move |c| format!("{o}{lit}{c}")))
            .collect();
        last = at + 1;
    }
    for o in &mut out {
        o.push_str(&s[last..]);
    }
    Ok(out)
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
        // As YAML writes floats (ryu), so `2.0` in a rule is `2.0` here.
        Leaf::F64(n) if n.is_finite() => Some(f(ryu::Buffer::new().format_finite(n))),
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
    /// Whether [`matches`](Self::matches) is "some leaf at the path passes
    /// [`matches_leaf`](Self::matches_leaf)": true but for `null` and
    /// `exists`, which also look at whether the path reaches anything.
    fn tests_leaves_only(&self) -> bool {
        match self {
            ValueMatcher::Null | ValueMatcher::Exists(_) => false,
            ValueMatcher::Any(alts) => alts.iter().all(ValueMatcher::tests_leaves_only),
            _ => true,
        }
    }

    /// Tests one leaf. Containers are searched value by value.
    fn matches_leaf(&self, leaf: Leaf<'_>, rec: &Record<'_>) -> bool {
        if let Leaf::Container(v) = leaf {
            return crate::decode::record_any_scalar(v, &mut |l| self.matches_leaf(l, rec));
        }
        match self {
            ValueMatcher::Null => matches!(leaf, Leaf::Null),
            ValueMatcher::Exists(_) => true,
            ValueMatcher::Str(p) => with_leaf_text(leaf, |t| p.is_match(t)).unwrap_or(false),
            ValueMatcher::NumEq(n, p) => match leaf {
                Leaf::I64(_) | Leaf::U64(_) | Leaf::F64(_) => leaf_number(leaf) == Some(*n),
                _ => with_leaf_text(leaf, |t| p.is_match(t)).unwrap_or(false),
            },
            ValueMatcher::Any(alts) => alts.iter().any(|a| a.matches_leaf(leaf, rec)),
            ValueMatcher::Num(op, n) => leaf_number(leaf).is_some_and(|x| match op {
                NumOp::Lt => x < *n,
                NumOp::Lte => x <= *n,
                NumOp::Gt => x > *n,
                NumOp::Gte => x >= *n,
            }),
            ValueMatcher::Cidr(net) => {
                with_leaf_text(leaf, |t| t.parse::<IpAddr>().is_ok_and(|ip| net.contains(&ip))).unwrap_or(false)
            }
            ValueMatcher::FieldRef(path, cased) => with_leaf_text(leaf, |t| {
                rec.any_at_path(path, &mut |other| {
                    with_leaf_text(other, |o| if *cased { o == t } else { o.eq_ignore_ascii_case(t) }).unwrap_or(false)
                })
            })
            .unwrap_or(false),
        }
    }

    fn matches(&self, path: &Path, rec: &Record<'_>) -> bool {
        match self {
            ValueMatcher::Null => !rec.exists_path(path) || rec.any_at_path(path, &mut |l| matches!(l, Leaf::Null)),
            ValueMatcher::Exists(want) => rec.exists_path(path) == *want,
            ValueMatcher::Any(alts) => alts.iter().any(|a| a.matches(path, rec)),
            _ => rec.any_at_path(path, &mut |l| self.matches_leaf(l, rec)),
        }
    }
}

impl FieldCond {
    /// Whether the condition can only hold when its path reaches a value:
    /// every value it tests is a test of leaves (not `null`, not `exists`).
    pub fn needs_a_value(&self) -> bool {
        self.matchers.iter().all(ValueMatcher::tests_leaves_only)
    }

    pub fn matches(&self, rec: &Record<'_>) -> bool {
        if self.one_walk {
            return rec.any_at_path(&self.path, &mut |l| {
                self.matchers.iter().any(|m| m.matches_leaf(l, rec))
            });
        }
        if self.all {
            self.matchers.iter().all(|m| m.matches(&self.path, rec))
        } else {
            self.matchers.iter().any(|m| m.matches(&self.path, rec))
        }
    }

    /// Fields that `|fieldref` values read, besides [`FieldCond::field`].
    pub fn referenced_fields(&self) -> Vec<String> {
        fn walk(m: &ValueMatcher, out: &mut Vec<String>) {
            match m {
                ValueMatcher::FieldRef(path, _) => out.push(path.dotted()),
                ValueMatcher::Any(alts) => alts.iter().for_each(|a| walk(a, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        self.matchers.iter().for_each(|m| walk(m, &mut out));
        out
    }

    /// The exact lowercased values this condition requires, if it is a plain
    /// (OR of) equality test; used by the dispatch index.
    pub fn exact_values(&self) -> Option<Vec<String>> {
        if self.all && self.matchers.len() > 1 {
            return None;
        }
        fn exact(m: &ValueMatcher, out: &mut Vec<String>) -> Option<()> {
            match m {
                ValueMatcher::Str(p) => out.push(p.exact_value()?.to_owned()),
                ValueMatcher::Any(alts) => {
                    for a in alts {
                        exact(a, out)?;
                    }
                }
                _ => return None,
            }
            Some(())
        }
        let mut out = Vec::new();
        for m in &self.matchers {
            exact(m, &mut out)?;
        }
        Some(out)
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
    fn windash_variants_expand_each_switch() {
        let v = windash_variants("k", "-foo a-b /c").unwrap();
        assert_eq!(v.len(), 25);
        assert!(v.contains(&"/foo a-b -c".to_string()));
        assert!(v.contains(&"\u{2013}foo a-b \u{2015}c".to_string()));
        assert_eq!(windash_variants("k", "a-b").unwrap(), vec!["a-b".to_string()]);
        assert!(windash_variants("k", "-a -b -c -d -e").is_err());
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

    /// A condition whose values are ORed walks its path once and tries
    /// every value on every leaf; it must decide as one walk per value
    /// does, on strings, numbers, arrays, containers, absent fields and
    /// alternatives (`windash`, `|re`, `|fieldref`).
    #[test]
    fn one_walk_per_condition_decides_as_one_walk_per_value() {
        let conds = [
            ("eventName", "[GetObject, PutObject]"),
            ("requestParameters.items.cidrIp|contains", "['0.0.0.0', '::/0']"),
            (
                "requestParameters.items.cidrIp|cidr",
                "['10.0.0.0/8', '192.168.0.0/16']",
            ),
            ("requestParameters.port", "[22, 3389]"),
            ("requestParameters.port|gte", "1024"),
            ("requestParameters", "['*ssh*', x]"),
            ("tags|startswith", "[prod, stage]"),
            ("userAgent|windash|contains", "['-enc', '/c']"),
            ("eventSource|re", "['^s3\\.', '^ec2']"),
            ("sourceIPAddress|fieldref", "[userIdentity.ip, requestParameters.ip]"),
            ("missing.field", "[a, b]"),
        ];
        let docs = [
            r#"{"eventName":"GetObject","eventSource":"s3.amazonaws.com","sourceIPAddress":"1.2.3.4","userIdentity":{"ip":"1.2.3.4"},"userAgent":"cmd /c x"}"#,
            r#"{"eventName":"putobject","eventSource":"ec2.amazonaws.com","requestParameters":{"port":3389,"ip":"9.9.9.9","items":[{"cidrIp":"10.1.2.3"},{"cidrIp":"0.0.0.0/0"}]},"tags":["dev","stage-1"],"sourceIPAddress":"9.9.9.9"}"#,
            r#"{"eventName":["A","PutObject"],"requestParameters":{"port":"8080","items":[],"note":"an ssh key"},"tags":"production","userAgent":"x -enc y"}"#,
            r#"{"eventName":null,"requestParameters":{"port":22.0,"items":{"cidrIp":"192.168.1.1"}},"tags":[],"eventSource":"iam.amazonaws.com"}"#,
            r#"{"eventVersion":"1.08","other":1}"#,
        ];
        let yaml = |v: &str| serde_yaml_ng::from_str::<Yaml>(v).unwrap();
        let mut grid = Vec::new();
        for (key, values) in conds {
            let mut row = String::new();
            let fast = compile_field(key, &yaml(values), &Placeholders::new()).unwrap();
            assert!(fast.one_walk, "{key}");
            let slow = FieldCond {
                one_walk: false,
                ..fast.clone()
            };
            for doc in docs {
                let mut buf = doc.as_bytes().to_vec();
                let len = buf.len();
                buf.resize(len + simd_json::INPUT_PADDING, 0);
                crate::decode::Decoder::default()
                    .decode("t", &mut buf, len, |rec| {
                        let got = fast.matches(rec);
                        assert_eq!(got, slow.matches(rec), "{key}: {values} on {doc}");
                        row.push(if got { 'x' } else { '.' });
                    })
                    .unwrap();
            }
            grid.push(format!("{key}: {row}"));
        }
        // Which documents each condition matches.
        assert_eq!(
            grid,
            [
                "eventName: xxx..",
                "requestParameters.items.cidrIp|contains: .x...",
                "requestParameters.items.cidrIp|cidr: .x.x.",
                "requestParameters.port: .x.x.",
                "requestParameters.port|gte: .xx..",
                "requestParameters: ..x..",
                "tags|startswith: .xx..",
                "userAgent|windash|contains: x.x..",
                "eventSource|re: xx...",
                "sourceIPAddress|fieldref: xx...",
                "missing.field: .....",
            ]
        );
        // `null`, `exists` and `|all` keep one walk per value.
        for (key, values) in [("a", "[null, x]"), ("a|exists", "true"), ("a|all", "[x, y]")] {
            assert!(
                !compile_field(key, &yaml(values), &Placeholders::new())
                    .unwrap()
                    .one_walk,
                "{key}"
            );
        }
    }
}
