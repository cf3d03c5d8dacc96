//! The rule engine: Sigma rules compiled into matchers, indexed for
//! dispatch, and evaluated against borrowed records.
//!
//! * [`sigma`] parses YAML into typed rules, [`condition`] the condition
//!   expressions, [`matcher`] and [`pattern`] the field and value tests.
//! * [`RuleSet`] holds the compiled rules and a dispatch index: a rule whose
//!   condition requires particular `eventName` values (or, failing that,
//!   `eventSource` values) is only evaluated on records carrying one of
//!   them. Rules that pin neither run on every record.
//! * Evaluation does no I/O and allocates nothing per record.

pub mod condition;
pub mod correlation;
pub mod matcher;
pub mod pattern;
pub mod placeholders;
mod selftest;
pub mod sigma;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use condition::Cond;
pub use correlation::{Correlation, CorrelationLimits, Correlator, Firing, Hit, StateRow};
use include_dir::{Dir, include_dir};
pub use matcher::Placeholders;
use matcher::Search;
pub use selftest::{TestOutcome, run_rule_tests};

use crate::decode::{FieldPath, PathValue, Record};

/// The rules shipped in `rules/`, embedded at build time as the default set.
static EMBEDDED: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/rules");

/// Sigma severity levels, in increasing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Informational => "informational",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "informational" | "info" => Level::Informational,
            "low" => Level::Low,
            "medium" => Level::Medium,
            "high" => Level::High,
            "critical" => Level::Critical,
            other => {
                return Err(format!(
                    "unknown level `{other}` (informational, low, medium, high, critical)"
                ));
            }
        })
    }
}

/// A rule's embedded test events (JSON text), kept with the rule so that
/// the rule and its evidence travel together.
#[derive(Debug, Clone, Default)]
pub struct RuleTests {
    pub true_positives: Vec<String>,
    pub true_negatives: Vec<String>,
}

/// One compiled single-event rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Stable identifier used as the alert key (`name`, else the file stem).
    pub name: String,
    pub id: String,
    pub title: String,
    pub level: Level,
    pub status: String,
    pub description: String,
    pub tags: Vec<String>,
    pub references: Vec<String>,
    pub falsepositives: Vec<String>,
    /// The file the rule came from.
    pub source: String,
    pub(crate) searches: Vec<Search>,
    pub(crate) cond: Cond,
    pub tests: RuleTests,
    /// Whether a match raises an alert of its own. False for rules that
    /// only feed correlations that do not set `generate: true`.
    pub generate: bool,
    /// The correlations this rule feeds: (correlation index, position of
    /// this rule in the correlation's `rules`).
    pub feeds: Vec<(usize, usize)>,
}

impl Rule {
    /// Whether the record satisfies the rule's condition.
    pub fn matches(&self, rec: &Record<'_>) -> bool {
        self.eval(&self.cond, rec)
    }

    fn eval(&self, c: &Cond, rec: &Record<'_>) -> bool {
        match c {
            Cond::Search(i) => self.searches[*i].matches(rec),
            Cond::Not(x) => !self.eval(x, rec),
            Cond::And(xs) => xs.iter().all(|x| self.eval(x, rec)),
            Cond::Or(xs) => xs.iter().any(|x| self.eval(x, rec)),
        }
    }

    /// The distinct fields the rule reads, in order of appearance.
    pub fn fields(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in &self.searches {
            match s {
                Search::Maps(maps) => {
                    for c in maps.iter().flatten() {
                        for f in std::iter::once(c.field.clone()).chain(c.referenced_fields()) {
                            if !out.contains(&f) {
                                out.push(f);
                            }
                        }
                    }
                }
                Search::Keywords { .. } => {
                    if !out.iter().any(|f| f == "<keywords>") {
                        out.push("<keywords>".into());
                    }
                }
            }
        }
        out
    }

    /// Values of `field` (lowercased) that the condition requires, or `None`
    /// when the rule may match a record with any value of it.
    fn required_values(&self, field: &str) -> Option<Vec<String>> {
        self.required(&self.cond, field)
    }

    /// Whether the condition can only hold on a record where `field`
    /// reaches some value: every way to satisfy it tests that field's
    /// leaves (`errorCode|startswith: AccessDenied`).
    fn requires_field(&self, c: &Cond, field: &str) -> bool {
        match c {
            Cond::Search(i) => match &self.searches[*i] {
                Search::Maps(maps) => maps
                    .iter()
                    .all(|conds| conds.iter().any(|fc| fc.field == field && fc.needs_a_value())),
                Search::Keywords { .. } => false,
            },
            Cond::Not(_) => false,
            Cond::And(xs) => xs.iter().any(|x| self.requires_field(x, field)),
            Cond::Or(xs) => xs.iter().all(|x| self.requires_field(x, field)),
        }
    }

    fn required(&self, c: &Cond, field: &str) -> Option<Vec<String>> {
        match c {
            Cond::Search(i) => match &self.searches[*i] {
                Search::Maps(maps) => {
                    let mut union = Vec::new();
                    for conds in maps {
                        // Within a map (AND), any equality on the field pins it.
                        let mut pinned: Option<Vec<String>> = None;
                        for fc in conds.iter().filter(|fc| fc.field == field) {
                            if let Some(v) = fc.exact_values() {
                                pinned = Some(match pinned {
                                    None => v,
                                    Some(p) => p.into_iter().filter(|x| v.contains(x)).collect(),
                                });
                            }
                        }
                        union.extend(pinned?);
                    }
                    Some(union)
                }
                Search::Keywords { .. } => None,
            },
            Cond::Not(_) => None,
            Cond::And(xs) => {
                let sets: Vec<Vec<String>> = xs.iter().filter_map(|x| self.required(x, field)).collect();
                let mut it = sets.into_iter();
                let first = it.next()?;
                Some(it.fold(first, |acc, s| acc.into_iter().filter(|x| s.contains(x)).collect()))
            }
            Cond::Or(xs) => {
                let mut union = Vec::new();
                for x in xs {
                    union.extend(self.required(x, field)?);
                }
                Some(union)
            }
        }
    }
}

/// Why a rule file could not be loaded. Every variant names the file.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RuleError {
    #[error("{path}: cannot read: {reason}")]
    Io { path: String, reason: String },
    #[error("{file}{}: invalid YAML: {reason}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Yaml {
        file: String,
        line: Option<usize>,
        reason: String,
    },
    #[error("{file}{}: {reason} (in `{construct}`)", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Invalid {
        file: String,
        line: Option<usize>,
        construct: String,
        reason: String,
    },
    #[error("rule name `{name}` is defined twice: {first} and {second}")]
    DuplicateName {
        name: String,
        first: String,
        second: String,
    },
    #[error("{dir}: no rule files (*.yml, *.yaml) found")]
    NoRules { dir: String },
    #[error("{path}: invalid placeholders file: {reason}")]
    Placeholders { path: String, reason: String },
}

/// Options that shape compilation.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Values for `|expand` placeholders.
    pub placeholders: Placeholders,
}

/// A dispatch index's map: ASCII-lowercased values of the rules, as bytes →
/// rule indices. Probed on every record, so a record's value is lowercased
/// into a stack buffer and looked up without a UTF-8 check (see [`lower`]),
/// with a fast non-cryptographic hasher (the keys come from the rules, not
/// from log content).
type DispatchIndex = HashMap<Box<[u8]>, Vec<usize>, foldhash::fast::FixedState>;

/// The rules that require one field to equal one of some exact values
/// (case-insensitively), by value.
///
/// A record whose field is one string runs the rules of that value only;
/// one without the field runs none of them, since each requires it. Any
/// other value (an array, a number...) runs them all: a matcher can still
/// match an element, or a number by its text, and dispatch must never
/// change a result.
#[derive(Debug, Clone)]
struct Dispatch {
    field: String,
    path: FieldPath,
    by_value: DispatchIndex,
    /// `key_lens[n]` when some key is `n` bytes long: a value of any other
    /// length is not lowercased and looked up at all. User agents are
    /// long, and the one rule keyed on them wants `TruffleHog`.
    key_lens: [bool; DISPATCH_KEY_MAX + 1],
    /// Every rule of the index, in rule order.
    all: Vec<usize>,
}

impl Dispatch {
    fn new(field: &str) -> Dispatch {
        Dispatch {
            field: field.to_owned(),
            path: FieldPath::parse(field),
            by_value: DispatchIndex::default(),
            key_lens: [false; DISPATCH_KEY_MAX + 1],
            all: Vec::new(),
        }
    }

    /// The rules for a record whose field is the string `v`.
    fn rules_for(&self, v: &str, buf: &mut [u8; DISPATCH_KEY_MAX]) -> Option<&[usize]> {
        if self.key_lens.get(v.len()) != Some(&true) {
            return None;
        }
        self.by_value.get(lower(v, buf)?).map(Vec::as_slice)
    }
}

/// The fields tried first for a rule's dispatch: every CloudTrail record
/// has both, and they split the rules best.
const DISPATCH_FIRST: [&str; 2] = ["eventName", "eventSource"];

/// The longest dispatch key, in bytes (a record's value is lowercased into a
/// stack buffer of this size).
const DISPATCH_KEY_MAX: usize = 128;

/// A compiled, indexed rule set.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    correlations: Vec<Correlation>,
    /// eventName, eventSource, then any other field that some rule pins.
    dispatch: Vec<Dispatch>,
    /// Rules that pin no field to exact values but need an indexed
    /// top-level one to be there (prefix, suffix, substring tests on
    /// `errorCode`): run only on records that have it.
    by_presence: Vec<(String, FieldPath, Vec<usize>)>,
    unindexed: Vec<usize>,
}

/// How a rule set is dispatched (`trailwatch rules list` prints it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexStats {
    /// Per dispatch field, in probing order: how many rules it dispatches.
    pub by_field: Vec<(String, usize)>,
    /// Per field: how many rules run only on records that have it.
    pub by_presence: Vec<(String, usize)>,
    /// Rules run on every record.
    pub always: usize,
}

impl IndexStats {
    /// How many rules `field` dispatches (0 when it is not a dispatch field).
    pub fn by(&self, field: &str) -> usize {
        self.by_field.iter().find(|(f, _)| f == field).map_or(0, |(_, n)| *n)
    }
}

impl RuleSet {
    /// Compiles `(file name, YAML text)` pairs. Returns the set of rules that
    /// loaded and every error found (all files are tried).
    pub fn compile<'a>(
        files: impl IntoIterator<Item = (String, &'a str)>,
        opts: &LoadOptions,
    ) -> (RuleSet, Vec<RuleError>) {
        let mut rules: Vec<Rule> = Vec::new();
        let mut correlations: Vec<Correlation> = Vec::new();
        let mut errors = Vec::new();
        for (file, text) in files {
            let stem = Path::new(&file)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| file.clone());
            let mut docs = Vec::new();
            for doc in serde_yaml_ng::Deserializer::from_str(text) {
                match serde::Deserialize::deserialize(doc) {
                    Ok(serde_yaml_ng::Value::Null) => {}
                    Ok(v) => docs.push(v),
                    Err(e) => {
                        errors.push(RuleError::Yaml {
                            file: file.clone(),
                            line: e.location().map(|l| l.line()),
                            reason: e.to_string(),
                        });
                        docs.clear();
                        break;
                    }
                }
            }
            let multi = docs.len() > 1;
            for (i, doc) in docs.iter().enumerate() {
                let default_name = if multi {
                    format!("{stem}_{}", i + 1)
                } else {
                    stem.clone()
                };
                let is_corr = doc
                    .as_mapping()
                    .is_some_and(|m| m.contains_key(serde_yaml_ng::Value::String("correlation".into())));
                let (name, source) = if is_corr {
                    match correlation::parse_correlation(&file, text, doc.as_mapping().expect("checked"), &default_name)
                    {
                        Ok(c) => {
                            let ns = (c.name.clone(), c.source.clone());
                            correlations.push(c);
                            ns
                        }
                        Err(e) => {
                            errors.push(e);
                            continue;
                        }
                    }
                } else {
                    match sigma::parse_rule(&file, text, doc, &default_name, &opts.placeholders) {
                        Ok(rule) => {
                            let ns = (rule.name.clone(), rule.source.clone());
                            rules.push(rule);
                            ns
                        }
                        Err(e) => {
                            errors.push(e);
                            continue;
                        }
                    }
                };
                // Rule and correlation names share one namespace: both key alerts.
                let earlier = rules
                    .iter()
                    .map(|r| (&r.name, &r.source))
                    .chain(correlations.iter().map(|c| (&c.name, &c.source)))
                    .filter(|(n, _)| **n == name)
                    .map(|(_, s)| s.clone())
                    .collect::<Vec<_>>();
                if earlier.len() > 1 {
                    errors.push(RuleError::DuplicateName {
                        name: name.clone(),
                        first: earlier[0].clone(),
                        second: source,
                    });
                    if is_corr {
                        correlations.pop();
                    } else {
                        rules.pop();
                    }
                }
            }
        }
        let correlations = resolve_correlations(&mut rules, correlations, &mut errors);
        (RuleSet::from_rules(rules, correlations), errors)
    }

    /// Loads every `*.yml`/`*.yaml` below `dir` (recursively, sorted).
    pub fn load_dir(dir: &Path, opts: &LoadOptions) -> (RuleSet, Vec<RuleError>) {
        RuleSet::load_dirs(&[dir.to_path_buf()], opts)
    }

    /// Loads several folders into one set, as one compilation: rule names
    /// share one namespace (a name defined in two files is an error naming
    /// both), and rules may refer to rules of another folder.
    pub fn load_dirs(dirs: &[PathBuf], opts: &LoadOptions) -> (RuleSet, Vec<RuleError>) {
        let mut errors = Vec::new();
        let mut texts = Vec::new();
        for dir in dirs {
            if !dir.exists() {
                errors.push(RuleError::Io {
                    path: dir.display().to_string(),
                    reason: "no such directory".into(),
                });
                continue;
            }
            let mut files: Vec<PathBuf> = walkdir::WalkDir::new(dir)
                .sort_by_file_name()
                .into_iter()
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_file())
                .map(|e| e.into_path())
                .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml")))
                .collect();
            files.sort();
            let before = texts.len();
            let mut unreadable = false;
            for p in files {
                match std::fs::read_to_string(&p) {
                    Ok(t) => texts.push((p.display().to_string(), t)),
                    Err(e) => {
                        unreadable = true;
                        errors.push(RuleError::Io {
                            path: p.display().to_string(),
                            reason: e.to_string(),
                        })
                    }
                }
            }
            if texts.len() == before && !unreadable {
                errors.push(RuleError::NoRules {
                    dir: dir.display().to_string(),
                });
            }
        }
        let (set, mut errs) = RuleSet::compile(texts.iter().map(|(f, t)| (f.clone(), t.as_str())), opts);
        errors.append(&mut errs);
        (set, errors)
    }

    /// The rule set shipped in `rules/`, compiled from the binary.
    pub fn embedded(opts: &LoadOptions) -> (RuleSet, Vec<RuleError>) {
        let mut files = Vec::new();
        collect_embedded(&EMBEDDED, &mut files);
        files.sort_by(|a, b| a.0.cmp(&b.0));
        RuleSet::compile(files.into_iter().map(|(p, t)| (format!("rules/{p}"), t)), opts)
    }

    fn from_rules(rules: Vec<Rule>, correlations: Vec<Correlation>) -> RuleSet {
        let mut set = RuleSet {
            rules,
            correlations,
            ..RuleSet::default()
        };
        set.dispatch = DISPATCH_FIRST.iter().map(|f| Dispatch::new(f)).collect();
        for (i, r) in set.rules.iter().enumerate() {
            // eventName, else eventSource, else the first field of the rule
            // that it pins to exact values (`userIdentity.type: Root`). Not
            // by a value longer than `lower` takes: no record would find it.
            let pinned = DISPATCH_FIRST
                .iter()
                .map(|f| (*f).to_owned())
                .chain(r.fields())
                .find_map(|f| {
                    let values = r.required_values(&f)?;
                    values
                        .iter()
                        .all(|v| v.len() <= DISPATCH_KEY_MAX)
                        .then_some((f, values))
                });
            let Some((field, values)) = pinned else {
                // Only on an indexed top-level field (`errorCode`): looking
                // a nested one up on every record costs about what running
                // the rule does.
                let present = |f: &String| FieldPath::parse(f).is_indexed_field() && r.requires_field(&r.cond, f);
                match r.fields().into_iter().find(present) {
                    Some(f) => match set.by_presence.iter_mut().find(|(name, ..)| *name == f) {
                        Some((.., ids)) => ids.push(i),
                        None => {
                            let path = FieldPath::parse(&f);
                            set.by_presence.push((f, path, vec![i]));
                        }
                    },
                    None => set.unindexed.push(i),
                }
                continue;
            };
            let d = match set.dispatch.iter().position(|d| d.field == field) {
                Some(d) => d,
                None => {
                    set.dispatch.push(Dispatch::new(&field));
                    set.dispatch.len() - 1
                }
            };
            let d = &mut set.dispatch[d];
            for v in dedup(values) {
                if let Some(l) = d.key_lens.get_mut(v.len()) {
                    *l = true;
                }
                d.by_value.entry(v.into_bytes().into()).or_default().push(i);
            }
            d.all.push(i);
        }
        set
    }

    /// The correlation rules, in load order (their index is a hit's `corr`).
    pub fn correlations(&self) -> &[Correlation] {
        &self.correlations
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// How many rules each dispatch field dispatches, and how many run on
    /// every record.
    pub fn index_stats(&self) -> IndexStats {
        IndexStats {
            by_field: self.dispatch.iter().map(|d| (d.field.clone(), d.all.len())).collect(),
            by_presence: self
                .by_presence
                .iter()
                .map(|(f, _, ids)| (f.clone(), ids.len()))
                .collect(),
            always: self.unindexed.len(),
        }
    }

    /// Calls `on_match` with every rule that matches `rec`, in rule order
    /// within each dispatch bucket. Pure: no I/O, no allocation.
    pub fn evaluate<'s>(&'s self, rec: &Record<'_>, mut on_match: impl FnMut(&'s Rule)) {
        let mut buf = [0u8; DISPATCH_KEY_MAX];
        let mut run = |ids: &[usize]| {
            for &i in ids {
                if self.rules[i].matches(rec) {
                    on_match(&self.rules[i]);
                }
            }
        };
        for d in &self.dispatch {
            if d.all.is_empty() {
                continue;
            }
            match rec.dispatch_value(&d.path) {
                PathValue::Missing => {}
                PathValue::Str(v) => {
                    if let Some(ids) = d.rules_for(v, &mut buf) {
                        run(ids);
                    }
                }
                PathValue::Other => run(&d.all),
            }
        }
        for (_, path, ids) in &self.by_presence {
            if rec.dispatch_value(path) != PathValue::Missing {
                run(ids);
            }
        }
        run(&self.unindexed);
    }
}

/// Resolves each correlation's `rules` (by name, else by id) and marks the
/// rules it feeds. A correlation with a dangling reference, or one that
/// references another correlation, is an error and is dropped.
fn resolve_correlations(
    rules: &mut [Rule],
    correlations: Vec<Correlation>,
    errors: &mut Vec<RuleError>,
) -> Vec<Correlation> {
    let mut out: Vec<Correlation> = Vec::new();
    'corr: for mut c in correlations {
        let mut idx = Vec::new();
        for r in &c.rule_refs {
            let found = rules
                .iter()
                .position(|x| x.name == *r)
                .or_else(|| rules.iter().position(|x| !x.id.is_empty() && x.id == *r));
            match found {
                Some(i) => idx.push(i),
                None => {
                    let is_corr = out.iter().any(|o| o.name == *r || (!o.id.is_empty() && o.id == *r));
                    errors.push(RuleError::Invalid {
                        file: c.source.clone(),
                        line: None,
                        construct: format!("rules: {r}"),
                        reason: if is_corr {
                            format!(
                                "correlation `{}` references correlation `{r}`; chaining correlations is not supported",
                                c.name
                            )
                        } else {
                            format!(
                                "correlation `{}` references `{r}`, which is not a loaded rule (name or id)",
                                c.name
                            )
                        },
                    });
                    continue 'corr;
                }
            }
        }
        c.rules = idx;
        let names: Vec<(String, String)> = c
            .rules
            .iter()
            .map(|&i| (rules[i].name.clone(), rules[i].id.clone()))
            .collect();
        if let Err(reason) = c.bind_fields(&names) {
            errors.push(RuleError::Invalid {
                file: c.source.clone(),
                line: None,
                construct: "aliases".into(),
                reason,
            });
            continue;
        }
        out.push(c);
    }
    // A rule referenced only by correlations without `generate: true` stops
    // raising alerts of its own (Sigma's default for correlated rules).
    for (ci, c) in out.iter().enumerate() {
        for (pos, &ri) in c.rules.iter().enumerate() {
            rules[ri].feeds.push((ci, pos));
        }
    }
    for r in rules.iter_mut() {
        if !r.feeds.is_empty() {
            r.generate = r.feeds.iter().any(|&(ci, _)| out[ci].generate);
        }
    }
    out
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

/// ASCII-lowercases `s` into `buf`, as bytes; `None` if it does not fit.
/// A dispatch key is an ASCII-lowercased rule value made of ASCII only, so
/// a value with other characters finds no key, as it should: an exact,
/// case-insensitive Sigma match compares ASCII case-insensitively. (This
/// runs on every record; checking ASCII and UTF-8 first cost as much as
/// the lookup.)
fn lower<'b>(s: &str, buf: &'b mut [u8; DISPATCH_KEY_MAX]) -> Option<&'b [u8]> {
    let b = s.as_bytes();
    let out = buf.get_mut(..b.len())?;
    for (o, &c) in out.iter_mut().zip(b) {
        *o = c.to_ascii_lowercase();
    }
    Some(out)
}

/// The shipped correlation translating a deprecated SigmaHQ v1 rule file
/// (by file stem), if there is one.
pub(crate) fn shipped_translation(stem: &str) -> Option<String> {
    let path = format!("correlations/sigmahq/{stem}.yml");
    EMBEDDED.get_file(&path).map(|_| format!("rules/{path}"))
}

fn collect_embedded<'a>(dir: &'a Dir<'a>, out: &mut Vec<(String, &'a str)>) {
    for f in dir.files() {
        let p = f.path();
        if matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml"))
            && let Some(t) = f.contents_utf8()
        {
            out.push((p.display().to_string(), t));
        }
    }
    for d in dir.dirs() {
        collect_embedded(d, out);
    }
}

#[cfg(test)]
mod tests;
