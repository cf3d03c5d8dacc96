//! Sigma 2.0 correlation rules: `event_count`, `value_count`, `temporal`
//! and `temporal_ordered`, parsed from YAML and evaluated by a
//! [`Correlator`] that keeps per-group windows in event time.
//!
//! # Design note
//!
//! *Where it runs.* Single-event rules run in the parallel workers; a worker
//! turns every match of a rule that feeds a correlation into a small owned
//! hit (time, eventID, group key, value). The correlator itself runs on the
//! one thread that commits to the store, just before each commit, so that
//! its state changes are written in the same SQLite transaction as the
//! objects whose events caused them. A crash therefore loses state changes
//! only together with the objects that will be reprocessed, and a restart
//! resumes the windows where the last commit left them.
//!
//! *Event time.* Windows are measured on `eventTime`, never on arrival.
//! CloudTrail delivers files minutes late and out of order, so each group
//! keeps every event newer than `newest - timespan - lateness`; an event
//! older than that horizon is *late* and counted, not used.
//!
//! *Firing.* For `gt`/`gte` conditions (and for temporal rules) the
//! condition is checked whenever an event arrives, over every window of
//! length `timespan` that contains it. When one holds, an alert fires and
//! the window's events are consumed, so a sustained burst yields one alert
//! per burst of N events instead of one per event. A condition with an upper
//! bound (`lt`, `lte`, `eq`) can only be decided once a window is over: such
//! windows are tumbling, start at the group's oldest event, and close when
//! the correlation's watermark (its newest event time minus the lateness)
//! passes their end.
//!
//! A group that fired stays quiet until the end of the fired window
//! (`window start + timespan`): events in that span belong to the burst
//! already reported and are absorbed, so an attack that keeps going yields
//! one alert per timespan, not one per N events.
//!
//! *Order.* Which event completes a window depends on arrival order; `scan`
//! commits outcomes in listing order, so its results do not depend on the
//! number of threads and a resumed run continues where it stopped.
//!
//! *Idempotence.* A group remembers the eventIDs it holds, so the same event
//! applied twice (a redelivered message) counts once. An alert's key is the
//! eventID of the event that completed the window, so a re-fire after a
//! reprocess is de-duplicated by the store.
//!
//! *Bounds.* At most `max_groups` groups per correlation (the least recently
//! updated are evicted first) and `max_events_per_group` events per group
//! (the oldest are dropped). Both are counted in [`CorrelatorStats`].
//!
//! The correlator does no I/O: the caller persists [`StateRow`]s.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_yaml_ng::{Mapping, Value as Yaml};

use super::sigma::line_of;
use super::{Level, RuleError};
use crate::decode::{FieldPath, Leaf, Record};

/// What a correlation counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorrKind {
    /// Number of matching events in the window.
    EventCount,
    /// Number of distinct values of `field` in the window.
    ValueCount { field: String },
    /// Number of distinct referenced rules that matched in the window
    /// (`ordered`: in the order the rules are listed).
    Temporal { ordered: bool },
}

impl CorrKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            CorrKind::EventCount => "event_count",
            CorrKind::ValueCount { .. } => "value_count",
            CorrKind::Temporal { ordered: false } => "temporal",
            CorrKind::Temporal { ordered: true } => "temporal_ordered",
        }
    }
}

/// A comparison of the correlation condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Gt,
    Gte,
    Lt,
    Lte,
    Eq,
}

/// All comparisons must hold (`{gte: 5, lt: 10}` is a range).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Threshold {
    pub checks: Vec<(CmpOp, u64)>,
}

impl Threshold {
    pub fn holds(&self, n: u64) -> bool {
        self.checks.iter().all(|&(op, v)| match op {
            CmpOp::Gt => n > v,
            CmpOp::Gte => n >= v,
            CmpOp::Lt => n < v,
            CmpOp::Lte => n <= v,
            CmpOp::Eq => n == v,
        })
    }

    /// Whether the condition has an upper bound, which can only be decided
    /// once the window is over.
    pub fn decided_at_close(&self) -> bool {
        self.checks
            .iter()
            .any(|(op, _)| matches!(op, CmpOp::Lt | CmpOp::Lte | CmpOp::Eq))
    }
}

impl std::fmt::Display for Threshold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (op, v)) in self.checks.iter().enumerate() {
            if i > 0 {
                f.write_str(" and ")?;
            }
            let s = match op {
                CmpOp::Gt => ">",
                CmpOp::Gte => ">=",
                CmpOp::Lt => "<",
                CmpOp::Lte => "<=",
                CmpOp::Eq => "==",
            };
            write!(f, "{s} {v}")?;
        }
        Ok(())
    }
}

/// Scenarios a correlation carries: each is a list of events that must
/// (true positive) or must not (true negative) make it fire.
#[derive(Debug, Clone, Default)]
pub struct CorrelationTests {
    pub true_positives: Vec<Vec<String>>,
    pub true_negatives: Vec<Vec<String>>,
}

/// One compiled correlation rule.
#[derive(Debug, Clone)]
pub struct Correlation {
    pub name: String,
    pub id: String,
    pub title: String,
    pub level: Level,
    pub status: String,
    pub description: String,
    pub tags: Vec<String>,
    pub references: Vec<String>,
    pub falsepositives: Vec<String>,
    pub source: String,
    pub kind: CorrKind,
    /// The referenced rules as written (names or ids).
    pub rule_refs: Vec<String>,
    /// Resolved indices into the rule set, parallel to `rule_refs`.
    pub(crate) rules: Vec<usize>,
    pub group_by: Vec<String>,
    /// `aliases`: alias → (rule reference → field in that rule's events).
    pub aliases: Vec<(String, Vec<(String, String)>)>,
    pub timespan_ms: i64,
    pub timespan_text: String,
    pub condition: Threshold,
    /// Whether the referenced rules also raise their own alerts.
    pub generate: bool,
    pub tests: CorrelationTests,
    /// Per referenced rule, per group-by field: the path to read.
    pub(crate) group_paths: Vec<Vec<FieldPath>>,
    /// Per referenced rule: the path of the `value_count` field.
    pub(crate) value_paths: Vec<Option<FieldPath>>,
}

impl Correlation {
    /// The group key of a record matched by the rule at `pos`:
    /// `field=value` pairs joined by `; ` (a missing field has an empty value).
    pub fn group_key(&self, pos: usize, rec: &Record<'_>) -> String {
        let mut key = String::new();
        for (i, (name, path)) in self.group_by.iter().zip(&self.group_paths[pos]).enumerate() {
            if i > 0 {
                key.push_str("; ");
            }
            key.push_str(name);
            key.push('=');
            if let Some(v) = first_text(rec, path) {
                // Escape the separator so that two groups never share a key.
                // Both are ASCII, so a byte scan finds them on character
                // boundaries, and the text between is copied whole (a char
                // at a time was a third of the cost of a correlation hit).
                let mut rest = v.as_str();
                while let Some(i) = rest.bytes().position(|b| b == b';' || b == b'\\') {
                    key.push_str(&rest[..i]);
                    key.push('\\');
                    key.push(char::from(rest.as_bytes()[i]));
                    rest = &rest[i + 1..];
                }
                key.push_str(rest);
            }
        }
        key
    }

    /// The `value_count` field of a record matched by the rule at `pos`.
    pub fn value(&self, pos: usize, rec: &Record<'_>) -> Option<String> {
        first_text(rec, self.value_paths.get(pos)?.as_ref()?)
    }

    /// The fields the correlation reads (group-by, then the counted field).
    pub fn fields(&self) -> Vec<String> {
        let mut out = self.group_by.clone();
        if let CorrKind::ValueCount { field } = &self.kind {
            out.push(field.clone());
        }
        out
    }
}

/// The first scalar at `path`, as text (numbers and booleans in their JSON
/// form); `None` if absent or null.
fn first_text(rec: &Record<'_>, path: &FieldPath) -> Option<String> {
    let mut out = None;
    rec.any_at_path(path, &mut |leaf| {
        out = match leaf {
            Leaf::Str(s) => Some(s.to_owned()),
            Leaf::I64(n) => Some(n.to_string()),
            Leaf::U64(n) => Some(n.to_string()),
            Leaf::F64(n) => Some(n.to_string()),
            Leaf::Bool(b) => Some(b.to_string()),
            Leaf::Null | Leaf::Container(_) => None,
        };
        out.is_some()
    });
    out
}

fn get<'a>(m: &'a Mapping, key: &str) -> Option<&'a Yaml> {
    m.get(Yaml::String(key.to_owned()))
}

fn text(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn list(v: Option<&Yaml>) -> Option<Vec<String>> {
    match v? {
        Yaml::Sequence(items) => items.iter().map(text).collect(),
        other => text(other).map(|s| vec![s]),
    }
}

/// Parses a Sigma timespan (`30s`, `5m`, `1h`, `2d`, `1w`) into milliseconds.
pub fn parse_timespan(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: i64 = num
        .parse()
        .map_err(|_| format!("timespan `{s}` must be a number followed by s, m, h, d or w"))?;
    let mult = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return Err(format!("timespan `{s}` has unit `{unit}`; use s, m, h, d or w")),
    };
    if n <= 0 {
        return Err(format!("timespan `{s}` must be positive"));
    }
    n.checked_mul(mult)
        .ok_or_else(|| format!("timespan `{s}` is too large"))
}

/// Parses one correlation document. References are resolved later, by
/// [`super::RuleSet::compile`], once every file is loaded.
pub(crate) fn parse_correlation(
    file: &str,
    text_src: &str,
    doc: &Mapping,
    default_name: &str,
) -> Result<Correlation, RuleError> {
    let invalid = |construct: &str, reason: String| RuleError::Invalid {
        file: file.to_owned(),
        line: line_of(text_src, construct),
        construct: construct.to_owned(),
        reason,
    };
    let title = get(doc, "title")
        .and_then(text)
        .ok_or_else(|| invalid("title", "a correlation rule needs a `title`".into()))?;
    let Some(Yaml::Mapping(c)) = get(doc, "correlation") else {
        return Err(invalid("correlation:", "`correlation` must be a mapping".into()));
    };
    for (k, _) in c {
        let k = text(k).unwrap_or_default();
        if !matches!(
            k.as_str(),
            "type" | "rules" | "group-by" | "timespan" | "condition" | "aliases" | "generate"
        ) {
            return Err(invalid(
                &k,
                format!(
                    "unknown key `{k}` under `correlation` (expected type, rules, group-by, timespan, condition, aliases, generate)"
                ),
            ));
        }
    }
    let kind_text = get(c, "type")
        .and_then(text)
        .ok_or_else(|| invalid("correlation:", "a correlation needs a `type`".into()))?;
    let rule_refs = list(get(c, "rules")).unwrap_or_default();
    if rule_refs.is_empty() {
        return Err(invalid(
            "rules:",
            "a correlation needs `rules`: the names or ids of the rules it correlates".into(),
        ));
    }
    let group_by = match get(c, "group-by") {
        None => Vec::new(),
        Some(v) => list(Some(v)).ok_or_else(|| invalid("group-by", "`group-by` must be a list of fields".into()))?,
    };
    let timespan_text = get(c, "timespan")
        .and_then(text)
        .ok_or_else(|| invalid("timespan", "a correlation needs a `timespan` (e.g. 5m)".into()))?;
    let timespan_ms = parse_timespan(&timespan_text).map_err(|e| invalid("timespan", e))?;

    let mut checks = Vec::new();
    let mut field = None;
    match get(c, "condition") {
        None => {}
        Some(Yaml::Mapping(m)) => {
            for (k, v) in m {
                let k = text(k).unwrap_or_default();
                if k == "field" {
                    field = Some(
                        text(v).ok_or_else(|| invalid("field:", "`condition.field` must be a field name".into()))?,
                    );
                    continue;
                }
                let op = match k.as_str() {
                    "gt" => CmpOp::Gt,
                    "gte" => CmpOp::Gte,
                    "lt" => CmpOp::Lt,
                    "lte" => CmpOp::Lte,
                    "eq" => CmpOp::Eq,
                    other => {
                        return Err(invalid(
                            "condition:",
                            format!("unknown condition operator `{other}` (gt, gte, lt, lte, eq, field)"),
                        ));
                    }
                };
                let n = v
                    .as_u64()
                    .ok_or_else(|| invalid("condition:", format!("`{k}` needs a non-negative integer")))?;
                checks.push((op, n));
            }
        }
        Some(_) => {
            return Err(invalid(
                "condition:",
                "`condition` must be a mapping such as {gte: 5}".into(),
            ));
        }
    }
    let kind = match kind_text.as_str() {
        "event_count" => CorrKind::EventCount,
        "value_count" => CorrKind::ValueCount {
            field: field
                .take()
                .ok_or_else(|| invalid("condition:", "a value_count correlation needs `condition.field`".into()))?,
        },
        "temporal" => CorrKind::Temporal { ordered: false },
        "temporal_ordered" => CorrKind::Temporal { ordered: true },
        other => {
            return Err(invalid(
                "type:",
                format!(
                    "correlation type `{other}` is not supported (event_count, value_count, temporal, temporal_ordered)"
                ),
            ));
        }
    };
    if field.is_some() {
        return Err(invalid(
            "field:",
            "`condition.field` only applies to value_count correlations".into(),
        ));
    }
    if checks.is_empty() {
        match kind {
            CorrKind::Temporal { .. } => checks.push((CmpOp::Gte, rule_refs.len() as u64)),
            _ => {
                return Err(invalid(
                    "condition",
                    format!("a {kind_text} correlation needs a `condition` such as {{gte: 5}}"),
                ));
            }
        }
    }
    let mut aliases = Vec::new();
    match get(c, "aliases") {
        None => {}
        Some(Yaml::Mapping(m)) => {
            for (alias, map) in m {
                let alias = text(alias).unwrap_or_default();
                let Some(map) = map.as_mapping() else {
                    return Err(invalid(&alias, "an alias maps each rule to its field".into()));
                };
                let mut per_rule = Vec::new();
                for (r, f) in map {
                    match (text(r), text(f)) {
                        (Some(r), Some(f)) => per_rule.push((r, f)),
                        _ => return Err(invalid(&alias, "an alias maps rule names to field names".into())),
                    }
                }
                aliases.push((alias, per_rule));
            }
        }
        Some(_) => return Err(invalid("aliases:", "`aliases` must be a mapping".into())),
    }
    let generate = match get(c, "generate").or_else(|| get(doc, "generate")) {
        None => false,
        Some(Yaml::Bool(b)) => *b,
        Some(_) => return Err(invalid("generate:", "`generate` must be true or false".into())),
    };
    let level = match get(doc, "level").and_then(text) {
        None => Level::Medium,
        Some(l) => l.parse().map_err(|e: String| invalid("level:", e))?,
    };
    let tests = match get(doc, "tests") {
        None => CorrelationTests::default(),
        Some(Yaml::Mapping(t)) => {
            let mut out = CorrelationTests::default();
            for (k, v) in t {
                let k = text(k).unwrap_or_default();
                let target = match k.as_str() {
                    "true_positives" => &mut out.true_positives,
                    "true_negatives" => &mut out.true_negatives,
                    other => {
                        return Err(invalid(
                            other,
                            "unknown key under `tests` (expected true_positives, true_negatives)".into(),
                        ));
                    }
                };
                let Some(scenarios) = v.as_sequence() else {
                    return Err(invalid(
                        &k,
                        "must be a list of scenarios (each a list of events)".into(),
                    ));
                };
                for s in scenarios {
                    let Some(events) = s.as_sequence() else {
                        return Err(invalid(
                            &k,
                            "a correlation test scenario is a list of events, not a single event".into(),
                        ));
                    };
                    let mut evs = Vec::new();
                    for e in events {
                        evs.push(
                            serde_json::to_string(e)
                                .map_err(|e| invalid(&k, format!("event is not JSON-representable: {e}")))?,
                        );
                    }
                    target.push(evs);
                }
            }
            out
        }
        Some(_) => return Err(invalid("tests:", "`tests` must be a mapping".into())),
    };
    let s = |k: &str| get(doc, k).and_then(text).unwrap_or_default();
    let l = |k: &str| list(get(doc, k)).unwrap_or_default();
    Ok(Correlation {
        name: get(doc, "name")
            .and_then(text)
            .unwrap_or_else(|| default_name.to_owned()),
        id: s("id"),
        title,
        level,
        status: get(doc, "status")
            .and_then(text)
            .unwrap_or_else(|| "experimental".into()),
        description: s("description"),
        tags: l("tags"),
        references: l("references"),
        falsepositives: l("falsepositives"),
        source: file.to_owned(),
        kind,
        rule_refs,
        rules: Vec::new(),
        group_by,
        aliases,
        timespan_ms,
        timespan_text,
        condition: Threshold { checks },
        generate,
        tests,
        group_paths: Vec::new(),
        value_paths: Vec::new(),
    })
}

impl Correlation {
    /// Computes the per-rule field paths once references are resolved;
    /// `names` are the referenced rules' names and ids, parallel to `rules`.
    pub(crate) fn bind_fields(&mut self, names: &[(String, String)]) -> Result<(), String> {
        let resolve = |field: &str, pos: usize| -> Result<FieldPath, String> {
            if let Some((_, per_rule)) = self.aliases.iter().find(|(a, _)| a == field) {
                let (name, id) = &names[pos];
                let hit = per_rule.iter().find(|(r, _)| r == name || (!id.is_empty() && r == id));
                return match hit {
                    Some((_, f)) => Ok(FieldPath::parse(f)),
                    None => Err(format!(
                        "alias `{field}` does not say which field of rule `{name}` to use"
                    )),
                };
            }
            Ok(FieldPath::parse(field))
        };
        let mut group_paths = Vec::new();
        let mut value_paths = Vec::new();
        for pos in 0..self.rules.len() {
            group_paths.push(
                self.group_by
                    .iter()
                    .map(|g| resolve(g, pos))
                    .collect::<Result<Vec<_>, _>>()?,
            );
            value_paths.push(match &self.kind {
                CorrKind::ValueCount { field } => Some(resolve(field, pos)?),
                _ => None,
            });
        }
        self.group_paths = group_paths;
        self.value_paths = value_paths;
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------

/// Limits on correlation state (per correlation rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CorrelationLimits {
    /// How late (in event time) an event may arrive and still count.
    pub lateness_secs: u64,
    /// Groups kept per correlation; the least recently updated are evicted.
    pub max_groups: usize,
    /// Events kept per group; the oldest are dropped.
    pub max_events_per_group: usize,
}

impl Default for CorrelationLimits {
    fn default() -> Self {
        // CloudTrail delivers most files within 5 minutes and nearly all
        // within 15.
        CorrelationLimits {
            lateness_secs: 900,
            max_groups: 10_000,
            max_events_per_group: 256,
        }
    }
}

/// One event that matched a rule feeding a correlation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Index of the correlation in the rule set.
    pub corr: usize,
    /// Position of the matched rule in the correlation's `rules`.
    pub pos: usize,
    pub time_ms: i64,
    pub event_id: String,
    pub group: String,
    pub value: Option<String>,
}

/// A correlation that fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firing {
    pub corr: usize,
    pub group: String,
    pub window_start_ms: i64,
    pub window_end_ms: i64,
    /// The contributing events, oldest first.
    pub event_ids: Vec<String>,
    /// The event that completed the window (the alert's key).
    pub trigger_id: String,
}

/// One group's persisted state (a changed group, or `state: None` when
/// the group was removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRow {
    pub correlation: String,
    pub group: String,
    pub state: Option<String>,
}

/// Counters of what the bounds and the lateness discarded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CorrelatorStats {
    pub late_events: u64,
    pub dropped_events: u64,
    pub evicted_groups: u64,
    pub duplicate_events: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Ev {
    t: i64,
    id: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    p: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    v: Option<String>,
    /// Already part of a fired (or closed) window: kept until it ages out
    /// so that the same event delivered again is recognised, never counted
    /// again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    c: bool,
}

fn is_zero(p: &u16) -> bool {
    *p == 0
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Group {
    ev: Vec<Ev>,
    max_t: i64,
    touch: u64,
    /// End (event time) of the last fired window: events up to it belong to
    /// a burst already alerted on and are absorbed silently.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    quiet_until: Option<i64>,
}

#[derive(Debug, Clone)]
struct Spec {
    name: String,
    kind: CorrKind,
    span: i64,
    nrules: usize,
    threshold: Threshold,
}

#[derive(Debug, Default)]
struct CorrState {
    groups: HashMap<String, Group>,
    /// Newest event time seen (for closing upper-bound windows).
    max_t: i64,
    changed: HashSet<String>,
}

/// Stateful evaluator of a rule set's correlations. Pure: the caller feeds
/// hits and persists the [`StateRow`]s it returns.
#[derive(Debug)]
pub struct Correlator {
    specs: Vec<Spec>,
    states: Vec<CorrState>,
    limits: CorrelationLimits,
    seq: u64,
    pub stats: CorrelatorStats,
}

impl Correlator {
    pub fn new(correlations: &[Correlation], limits: CorrelationLimits) -> Correlator {
        let specs: Vec<Spec> = correlations
            .iter()
            .map(|c| Spec {
                name: c.name.clone(),
                kind: c.kind.clone(),
                span: c.timespan_ms,
                nrules: c.rules.len(),
                threshold: c.condition.clone(),
            })
            .collect();
        let states = specs.iter().map(|_| CorrState::default()).collect();
        Correlator {
            specs,
            states,
            limits: CorrelationLimits {
                max_groups: limits.max_groups.max(1),
                max_events_per_group: limits.max_events_per_group.max(1),
                ..limits
            },
            seq: 0,
            stats: CorrelatorStats::default(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// Number of groups currently held, over all correlations.
    pub fn group_count(&self) -> usize {
        self.states.iter().map(|s| s.groups.len()).sum()
    }

    /// Restores persisted groups. Rows of correlations that no longer exist
    /// are returned so that the caller can delete them.
    pub fn restore(&mut self, rows: impl IntoIterator<Item = (String, String, String)>) -> Vec<StateRow> {
        let mut stale = Vec::new();
        for (corr, group, state) in rows {
            let idx = self.specs.iter().position(|s| s.name == corr);
            let parsed: Option<Group> = serde_json::from_str(&state).ok();
            match (idx, parsed) {
                (Some(i), Some(g)) => {
                    self.seq = self.seq.max(g.touch);
                    let st = &mut self.states[i];
                    st.max_t = st.max_t.max(g.max_t);
                    st.groups.insert(group, g);
                }
                _ => stale.push(StateRow {
                    correlation: corr,
                    group,
                    state: None,
                }),
            }
        }
        stale
    }

    /// Applies one hit; returns what fired.
    pub fn apply(&mut self, hit: &Hit) -> Vec<Firing> {
        let mut out = Vec::new();
        let Some(spec) = self.specs.get(hit.corr) else {
            return out;
        };
        let lateness = self.limits.lateness_secs as i64 * 1000;
        self.seq += 1;
        let st = &mut self.states[hit.corr];
        let g = st.groups.entry(hit.group.clone()).or_insert_with(|| Group {
            ev: Vec::new(),
            max_t: hit.time_ms,
            touch: 0,
            quiet_until: None,
        });
        if g.ev.iter().any(|e| e.id == hit.event_id) {
            self.stats.duplicate_events += 1;
            return out;
        }
        if hit.time_ms < g.max_t - spec.span - lateness {
            self.stats.late_events += 1;
            if g.ev.is_empty() {
                st.groups.remove(&hit.group);
            }
            return out;
        }
        let at = g.ev.partition_point(|e| e.t <= hit.time_ms);
        g.ev.insert(
            at,
            Ev {
                t: hit.time_ms,
                id: hit.event_id.clone(),
                p: hit.pos as u16,
                v: hit.value.clone(),
                c: g.quiet_until.is_some_and(|q| hit.time_ms <= q),
            },
        );
        g.max_t = g.max_t.max(hit.time_ms);
        g.touch = self.seq;
        st.max_t = st.max_t.max(hit.time_ms);
        st.changed.insert(hit.group.clone());

        let at_close = spec.threshold.decided_at_close();
        if !at_close && let Some((lo, hi)) = find_window(spec, &g.ev, hit.time_ms) {
            let window = consume(&mut g.ev[lo..hi]);
            let f = firing(hit.corr, &hit.group, &window, hit.event_id.clone());
            g.quiet_until = Some(f.window_start_ms + spec.span);
            out.push(f);
        }
        prune(g, spec.span + lateness, at_close);
        if g.ev.len() > self.limits.max_events_per_group {
            let extra = g.ev.len() - self.limits.max_events_per_group;
            g.ev.drain(..extra);
            self.stats.dropped_events += extra as u64;
        }
        if g.ev.is_empty() {
            st.groups.remove(&hit.group);
        }
        if st.groups.len() > self.limits.max_groups {
            // Evict down to 90% at once so that a flood of new groups does
            // not pay a full scan per event.
            let keep = self.limits.max_groups * 9 / 10;
            let mut by_touch: Vec<(u64, String)> = st.groups.iter().map(|(k, g)| (g.touch, k.clone())).collect();
            by_touch.sort_unstable();
            let n = by_touch.len() - keep;
            for (_, k) in by_touch.into_iter().take(n) {
                st.groups.remove(&k);
                st.changed.insert(k);
            }
            self.stats.evicted_groups += n as u64;
        }
        out
    }

    /// Closes the tumbling windows of upper-bound conditions (`lt`, `lte`,
    /// `eq`) that the watermark has passed, and returns what fired.
    pub fn close_windows(&mut self) -> Vec<Firing> {
        let lateness = self.limits.lateness_secs as i64 * 1000;
        let mut out = Vec::new();
        for (ci, (spec, st)) in self.specs.iter().zip(&mut self.states).enumerate() {
            if !spec.threshold.decided_at_close() {
                continue;
            }
            let watermark = st.max_t - lateness;
            let mut emptied = Vec::new();
            for (key, g) in st.groups.iter_mut() {
                let mut touched = false;
                while let Some(first) = g.ev.iter().position(|e| !e.c) {
                    let start = g.ev[first].t;
                    if start + spec.span >= watermark {
                        break;
                    }
                    let end = g.ev.partition_point(|e| e.t <= start + spec.span);
                    let n = measure(spec, &g.ev[first..end]);
                    let window = consume(&mut g.ev[first..end]);
                    touched = true;
                    if spec.threshold.holds(n) {
                        let trigger = window.last().map(|e| e.id.clone()).unwrap_or_default();
                        out.push(firing(ci, key, &window, trigger));
                    }
                }
                if touched {
                    prune(g, spec.span + lateness, true);
                    st.changed.insert(key.clone());
                    if g.ev.is_empty() {
                        emptied.push(key.clone());
                    }
                }
            }
            for k in emptied {
                st.groups.remove(&k);
            }
        }
        out
    }

    /// The groups changed since the last call, to persist with the commit.
    pub fn take_changes(&mut self) -> Vec<StateRow> {
        let mut rows = Vec::new();
        for (spec, st) in self.specs.iter().zip(&mut self.states) {
            for key in st.changed.drain() {
                let state = st
                    .groups
                    .get(&key)
                    .map(|g| serde_json::to_string(g).expect("group state serializes"));
                rows.push(StateRow {
                    correlation: spec.name.clone(),
                    group: key,
                    state,
                });
            }
        }
        rows.sort_by(|a, b| (&a.correlation, &a.group).cmp(&(&b.correlation, &b.group)));
        rows
    }
}

/// Marks the window's live events consumed and returns them.
fn consume(window: &mut [Ev]) -> Vec<Ev> {
    let mut out = Vec::new();
    for e in window.iter_mut().filter(|e| !e.c) {
        e.c = true;
        out.push(e.clone());
    }
    out
}

/// Drops events older than the group's horizon (`keep_ms` before its newest
/// event). Live events of upper-bound correlations wait for their window to
/// close instead.
fn prune(g: &mut Group, keep_ms: i64, at_close: bool) {
    let horizon = g.max_t - keep_ms;
    g.ev.retain(|e| e.t >= horizon || (at_close && !e.c));
}

/// The measure a correlation compares with its threshold, over the live
/// (not yet consumed) events of `window`.
fn measure(spec: &Spec, window: &[Ev]) -> u64 {
    let live = || window.iter().filter(|e| !e.c);
    match &spec.kind {
        CorrKind::EventCount => live().count() as u64,
        CorrKind::ValueCount { .. } => {
            let distinct: HashSet<&str> = live().filter_map(|e| e.v.as_deref()).collect();
            distinct.len() as u64
        }
        CorrKind::Temporal { ordered: false } => {
            let mut seen = vec![false; spec.nrules];
            for e in live() {
                if let Some(s) = seen.get_mut(e.p as usize) {
                    *s = true;
                }
            }
            seen.iter().filter(|s| **s).count() as u64
        }
        CorrKind::Temporal { ordered: true } => {
            // Longest prefix of the rule list matched in time order.
            let mut next = 0usize;
            for e in live() {
                if e.p as usize == next {
                    next += 1;
                    if next == spec.nrules {
                        break;
                    }
                }
            }
            next as u64
        }
    }
}

/// The first window of length `span` that contains an event at `t` and
/// satisfies the threshold, as a range of `ev` (sorted by time).
fn find_window(spec: &Spec, ev: &[Ev], t: i64) -> Option<(usize, usize)> {
    let first = ev.partition_point(|e| e.t < t - spec.span);
    let mut i = first;
    while i < ev.len() && ev[i].t <= t {
        if ev[i].c {
            i += 1;
            continue;
        }
        let start = ev[i].t;
        let end = ev.partition_point(|e| e.t <= start + spec.span);
        if spec.threshold.holds(measure(spec, &ev[i..end])) {
            return Some((i, end));
        }
        // Windows starting at equal times are the same window.
        while i < ev.len() && ev[i].t == start {
            i += 1;
        }
    }
    None
}

fn firing(corr: usize, group: &str, window: &[Ev], trigger_id: String) -> Firing {
    Firing {
        corr,
        group: group.to_owned(),
        window_start_ms: window.first().map(|e| e.t).unwrap_or_default(),
        window_end_ms: window.last().map(|e| e.t).unwrap_or_default(),
        event_ids: window.iter().map(|e| e.id.clone()).collect(),
        trigger_id,
    }
}

/// The deprecated Sigma v1 aggregation (`| count() by x > n` with
/// `timeframe`), as the correlation to write instead.
pub(crate) fn suggest_for_v1(name: &str, condition: &str, timeframe: Option<&str>) -> Option<String> {
    let (_, agg) = condition.split_once('|')?;
    let agg = agg.trim();
    let span = timeframe.unwrap_or("<timespan>");
    if let Some(rest) = agg.strip_prefix("near") {
        let other = rest.trim();
        return Some(format!(
            "correlation: {{type: temporal, rules: [{name}, <rule for `{other}`>], group-by: [userIdentity.arn], timespan: {span}}}"
        ));
    }
    let rest = agg.strip_prefix("count(")?;
    let (field, rest) = rest.split_once(')')?;
    let rest = rest.trim();
    let (group, cmp) = match rest.strip_prefix("by") {
        Some(r) => {
            let r = r.trim();
            let split = r
                .find(|c: char| c.is_whitespace() || "<>=".contains(c))
                .unwrap_or(r.len());
            (Some(r[..split].to_owned()), r[split..].trim().to_owned())
        }
        None => (None, rest.to_owned()),
    };
    let (op, n) = if let Some(n) = cmp.strip_prefix(">=") {
        ("gte", n)
    } else if let Some(n) = cmp.strip_prefix("<=") {
        ("lte", n)
    } else if let Some(n) = cmp.strip_prefix('>') {
        ("gt", n)
    } else if let Some(n) = cmp.strip_prefix('<') {
        ("lt", n)
    } else if let Some(n) = cmp.strip_prefix('=') {
        ("eq", n.trim_start_matches('='))
    } else {
        return None;
    };
    let n = n.trim();
    let group = group.map(|g| format!(", group-by: [{g}]")).unwrap_or_default();
    let field = field.trim();
    Some(if field.is_empty() {
        format!(
            "correlation: {{type: event_count, rules: [{name}]{group}, timespan: {span}, condition: {{{op}: {n}}}}}"
        )
    } else {
        format!(
            "correlation: {{type: value_count, rules: [{name}]{group}, timespan: {span}, condition: {{field: {field}, {op}: {n}}}}}"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_corr(kind: CorrKind, span_ms: i64, checks: Vec<(CmpOp, u64)>, nrules: usize) -> Correlation {
        Correlation {
            name: "c".into(),
            id: String::new(),
            title: "c".into(),
            level: Level::High,
            status: "test".into(),
            description: String::new(),
            tags: vec![],
            references: vec![],
            falsepositives: vec![],
            source: "t.yml".into(),
            kind,
            rule_refs: (0..nrules).map(|i| format!("r{i}")).collect(),
            rules: (0..nrules).collect(),
            group_by: vec!["g".into()],
            aliases: vec![],
            timespan_ms: span_ms,
            timespan_text: String::new(),
            condition: Threshold { checks },
            generate: false,
            tests: CorrelationTests::default(),
            group_paths: vec![],
            value_paths: vec![],
        }
    }

    fn hit(t_s: i64, id: &str, pos: usize, group: &str, value: Option<&str>) -> Hit {
        Hit {
            corr: 0,
            pos,
            time_ms: t_s * 1000,
            event_id: id.into(),
            group: group.into(),
            value: value.map(Into::into),
        }
    }

    fn limits() -> CorrelationLimits {
        CorrelationLimits {
            lateness_secs: 60,
            max_groups: 100,
            max_events_per_group: 100,
        }
    }

    #[test]
    fn event_count_fires_once_per_burst_and_consumes_the_window() {
        let c = spec_corr(CorrKind::EventCount, 300_000, vec![(CmpOp::Gte, 3)], 1);
        let mut k = Correlator::new(&[c], limits());
        assert!(k.apply(&hit(0, "a", 0, "ip=1", None)).is_empty());
        assert!(k.apply(&hit(10, "b", 0, "ip=1", None)).is_empty());
        assert!(k.apply(&hit(5, "x", 0, "ip=2", None)).is_empty(), "another group");
        let f = k.apply(&hit(20, "c", 0, "ip=1", None));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].event_ids, vec!["a", "b", "c"]);
        assert_eq!(f[0].trigger_id, "c");
        assert_eq!((f[0].window_start_ms, f[0].window_end_ms), (0, 20_000));
        assert_eq!(f[0].group, "ip=1");
        // The burst was consumed, and the group stays quiet until 0 + 300 s:
        // three more events inside that span raise nothing.
        for (t, id) in [(30, "d"), (100, "e"), (290, "f")] {
            assert!(k.apply(&hit(t, id, 0, "ip=1", None)).is_empty());
        }
        // After it, a new burst of three fires again.
        k.apply(&hit(400, "g", 0, "ip=1", None));
        k.apply(&hit(410, "h", 0, "ip=1", None));
        let f = k.apply(&hit(420, "i", 0, "ip=1", None));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].event_ids, vec!["g", "h", "i"]);
    }

    #[test]
    fn regression_reprocessed_burst_does_not_fire_again_with_another_trigger() {
        let c = spec_corr(CorrKind::EventCount, 300_000, vec![(CmpOp::Gte, 3)], 1);
        let mut k = Correlator::new(&[c], limits());
        for (t, id) in [(0, "a"), (10, "b"), (20, "c")] {
            k.apply(&hit(t, id, 0, "g", None));
        }
        k.apply(&hit(25, "d", 0, "g", None));
        // The same events again (a reprocessed object): none counts twice,
        // so "d" and the replayed "a", "b" cannot form a second burst.
        for (t, id) in [(0, "a"), (10, "b"), (20, "c")] {
            assert!(k.apply(&hit(t, id, 0, "g", None)).is_empty());
        }
        assert_eq!(k.stats.duplicate_events, 3);
    }

    #[test]
    fn event_count_ignores_events_outside_the_timespan() {
        let c = spec_corr(CorrKind::EventCount, 60_000, vec![(CmpOp::Gte, 3)], 1);
        let mut k = Correlator::new(&[c], limits());
        k.apply(&hit(0, "a", 0, "g", None));
        k.apply(&hit(50, "b", 0, "g", None));
        assert!(
            k.apply(&hit(100, "c", 0, "g", None)).is_empty(),
            "a and c are 100 s apart"
        );
        assert_eq!(k.apply(&hit(105, "d", 0, "g", None)).len(), 1, "b, c, d within 60 s");
    }

    #[test]
    fn out_of_order_events_complete_earlier_windows() {
        let c = spec_corr(CorrKind::EventCount, 60_000, vec![(CmpOp::Gt, 2)], 1);
        let lim = CorrelationLimits {
            lateness_secs: 600,
            ..limits()
        };
        let mut k = Correlator::new(&[c], lim);
        k.apply(&hit(100, "late1", 0, "g", None));
        k.apply(&hit(200, "new", 0, "g", None));
        // Arrives last but happened first: window [60, 120] now has 3.
        let f = k.apply(&hit(60, "early", 0, "g", None));
        assert!(f.is_empty(), "only 2 events within 60 s of each other");
        let f = k.apply(&hit(110, "mid", 0, "g", None));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].event_ids, vec!["early", "late1", "mid"]);
    }

    #[test]
    fn events_older_than_the_lateness_are_counted_late_not_used() {
        let c = spec_corr(CorrKind::EventCount, 60_000, vec![(CmpOp::Gte, 2)], 1);
        let mut k = Correlator::new(&[c], limits());
        k.apply(&hit(1000, "now", 0, "g", None));
        assert!(k.apply(&hit(800, "old", 0, "g", None)).is_empty());
        assert_eq!(k.stats.late_events, 1);
    }

    #[test]
    fn duplicate_event_ids_count_once() {
        let c = spec_corr(CorrKind::EventCount, 60_000, vec![(CmpOp::Gte, 2)], 1);
        let mut k = Correlator::new(&[c], limits());
        k.apply(&hit(0, "a", 0, "g", None));
        assert!(k.apply(&hit(0, "a", 0, "g", None)).is_empty());
        assert_eq!(k.stats.duplicate_events, 1);
    }

    #[test]
    fn value_count_counts_distinct_values() {
        let c = spec_corr(
            CorrKind::ValueCount { field: "f".into() },
            60_000,
            vec![(CmpOp::Gte, 3)],
            1,
        );
        let mut k = Correlator::new(&[c], limits());
        k.apply(&hit(0, "a", 0, "g", Some("x")));
        k.apply(&hit(1, "b", 0, "g", Some("x")));
        assert!(k.apply(&hit(2, "c", 0, "g", Some("y"))).is_empty());
        let f = k.apply(&hit(3, "d", 0, "g", Some("z")));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].event_ids.len(), 4);
    }

    #[test]
    fn temporal_needs_every_rule_and_ordered_needs_the_order() {
        let c = spec_corr(CorrKind::Temporal { ordered: false }, 60_000, vec![(CmpOp::Gte, 2)], 2);
        let mut k = Correlator::new(&[c], limits());
        assert!(k.apply(&hit(10, "b1", 1, "g", None)).is_empty());
        assert!(k.apply(&hit(11, "b2", 1, "g", None)).is_empty(), "same rule twice");
        assert_eq!(k.apply(&hit(20, "a1", 0, "g", None)).len(), 1);

        let c = spec_corr(CorrKind::Temporal { ordered: true }, 60_000, vec![(CmpOp::Gte, 2)], 2);
        let mut k = Correlator::new(&[c], limits());
        assert!(k.apply(&hit(10, "b1", 1, "g", None)).is_empty());
        assert!(k.apply(&hit(20, "a1", 0, "g", None)).is_empty(), "b before a");
        let f = k.apply(&hit(30, "b2", 1, "g", None));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].trigger_id, "b2");
    }

    #[test]
    fn upper_bound_conditions_fire_when_the_window_closes() {
        let c = spec_corr(CorrKind::EventCount, 60_000, vec![(CmpOp::Lt, 3)], 1);
        let mut k = Correlator::new(&[c], limits());
        assert!(k.apply(&hit(0, "a", 0, "g", None)).is_empty());
        assert!(k.apply(&hit(10, "b", 0, "g", None)).is_empty());
        assert!(k.close_windows().is_empty(), "window not over");
        // Another group's event moves the watermark past 0 + 60 s + 60 s.
        k.apply(&hit(200, "z", 0, "h", None));
        let f = k.close_windows();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].event_ids, vec!["a", "b"]);
        assert_eq!(f[0].group, "g");
    }

    #[test]
    fn state_is_bounded_and_survives_a_restore() {
        let c = spec_corr(CorrKind::EventCount, 60_000, vec![(CmpOp::Gte, 3)], 1);
        let lim = CorrelationLimits {
            lateness_secs: 60,
            max_groups: 10,
            max_events_per_group: 2,
        };
        let mut k = Correlator::new(std::slice::from_ref(&c), lim);
        for i in 0..20 {
            k.apply(&hit(i, &format!("e{i}"), 0, &format!("g{i}"), None));
        }
        assert!(k.group_count() <= 10);
        assert!(k.stats.evicted_groups >= 10);

        // Two events persist; a restored correlator completes the window.
        let mut k = Correlator::new(std::slice::from_ref(&c), lim);
        k.apply(&hit(0, "a", 0, "g", None));
        k.apply(&hit(1, "b", 0, "g", None));
        let rows = k.take_changes();
        assert_eq!(rows.len(), 1);
        let mut k2 = Correlator::new(std::slice::from_ref(&c), lim);
        let stale = k2.restore(
            rows.into_iter()
                .map(|r| (r.correlation, r.group, r.state.unwrap()))
                .chain([("gone".to_owned(), "g".to_owned(), "{}".to_owned())]),
        );
        assert_eq!(stale.len(), 1, "state of a removed correlation is reported");
        assert_eq!(k2.apply(&hit(2, "c", 0, "g", None)).len(), 1);
    }

    #[test]
    fn timespans_parse_with_units() {
        assert_eq!(parse_timespan("5m"), Ok(300_000));
        assert_eq!(parse_timespan("1h"), Ok(3_600_000));
        assert_eq!(parse_timespan("30s"), Ok(30_000));
        assert!(parse_timespan("5x").is_err());
        assert!(parse_timespan("m").is_err());
        assert!(parse_timespan("0m").is_err());
    }

    #[test]
    fn v1_aggregations_get_a_correlation_suggestion() {
        assert_eq!(
            suggest_for_v1("r", "selection | count() by sourceIPAddress > 5", Some("10m")).unwrap(),
            "correlation: {type: event_count, rules: [r], group-by: [sourceIPAddress], timespan: 10m, condition: {gt: 5}}"
        );
        assert_eq!(
            suggest_for_v1("r", "sel | count(eventName) > 10", Some("30m")).unwrap(),
            "correlation: {type: value_count, rules: [r], timespan: 30m, condition: {field: eventName, gt: 10}}"
        );
        assert!(
            suggest_for_v1("r", "selection1 | near selection2", None)
                .unwrap()
                .contains("type: temporal")
        );
    }

    const BASE: &str = "title: Denied\nname: denied\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    errorCode: AccessDenied\n  condition: sel\n";

    /// The group key of each event, decoded as a record of the rule at
    /// position `pos` in the correlation's rule list.
    fn group_keys(c: &Correlation, events: &[(usize, &str)]) -> Vec<String> {
        let mut d = crate::decode::Decoder::default();
        let mut keys = Vec::new();
        for &(pos, ev) in events {
            let mut buf = Vec::new();
            let len = crate::decode::read_object("t", ev.as_bytes(), 1 << 20, &mut buf).unwrap();
            d.decode("t", &mut buf, len, |rec| keys.push(c.group_key(pos, rec)))
                .unwrap();
        }
        keys
    }

    fn compile(files: &[(&str, &str)]) -> (crate::rules::RuleSet, Vec<String>) {
        let (set, errs) = crate::rules::RuleSet::compile(
            files.iter().map(|(f, t)| (f.to_string(), *t)),
            &crate::rules::LoadOptions::default(),
        );
        (set, errs.iter().map(|e| e.to_string()).collect())
    }

    fn corr_doc(body: &str) -> String {
        format!("title: C\nname: c\ncorrelation:\n{body}")
    }

    #[test]
    fn correlation_and_rules_load_from_one_file_or_from_separate_files() {
        let one = format!(
            "{BASE}---\n{}",
            corr_doc(
                "  type: event_count\n  rules: [denied]\n  group-by: [userIdentity.arn]\n  timespan: 10m\n  condition: {gte: 20}\n"
            )
        );
        let (set, errs) = compile(&[("one.yml", &one)]);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(set.correlations().len(), 1);
        assert_eq!(set.correlations()[0].rules, vec![0]);
        assert!(!set.rules()[0].generate, "a correlated rule is silent by default");

        let corr = corr_doc(
            "  type: event_count\n  rules: [denied]\n  timespan: 10m\n  condition: {gte: 20}\n  generate: true\n",
        );
        let (set, errs) = compile(&[("c.yml", &corr), ("base.yml", BASE)]);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(set.rules()[0].feeds, vec![(0, 0)]);
        assert!(set.rules()[0].generate, "generate: true keeps the rule's own alerts");
    }

    #[test]
    fn correlation_load_errors_name_the_file_and_the_construct() {
        let cases = [
            (
                "  type: event_count\n  rules: [nope]\n  timespan: 5m\n  condition: {gte: 2}\n",
                "references `nope`",
            ),
            (
                "  type: event_sum\n  rules: [denied]\n  timespan: 5m\n  condition: {gte: 2}\n",
                "correlation type `event_sum` is not supported",
            ),
            (
                "  type: value_count\n  rules: [denied]\n  timespan: 5m\n  condition: {gte: 2}\n",
                "needs `condition.field`",
            ),
            (
                "  type: event_count\n  rules: [denied]\n  timespan: 5 minutes\n  condition: {gte: 2}\n",
                "timespan",
            ),
            (
                "  type: event_count\n  rules: [denied]\n  timespan: 5m\n",
                "needs a `condition`",
            ),
            (
                "  type: event_count\n  rules: [denied]\n  timespan: 5m\n  condition: {above: 2}\n",
                "unknown condition operator `above`",
            ),
            (
                "  type: event_count\n  rules: [denied]\n  timespan: 5m\n  condition: {gte: 2}\n  group_by: [x]\n",
                "unknown key `group_by`",
            ),
        ];
        for (body, want) in cases {
            let (set, errs) = compile(&[("base.yml", BASE), ("bad.yml", &corr_doc(body))]);
            assert_eq!(errs.len(), 1, "{body}: {errs:?}");
            assert!(
                errs[0].starts_with("bad.yml") && errs[0].contains(want),
                "{body}: {}",
                errs[0]
            );
            assert!(set.correlations().is_empty());
            assert!(
                set.rules()[0].generate,
                "the base rule still alerts when its correlation failed"
            );
        }
        // Chaining: a correlation over a correlation.
        let chain = "title: D\nname: d\ncorrelation:\n  type: event_count\n  rules: [c]\n  timespan: 1h\n  condition: {gte: 2}\n";
        let ok = corr_doc("  type: event_count\n  rules: [denied]\n  timespan: 5m\n  condition: {gte: 2}\n");
        let (_, errs) = compile(&[("base.yml", BASE), ("c.yml", &ok), ("d.yml", chain)]);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].contains("chaining correlations is not supported"),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn aliases_group_events_of_different_rules_by_their_own_fields() {
        let files = [
            (
                "a.yml",
                "title: A\nname: key_created\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    eventName: CreateAccessKey\n  condition: sel\n",
            ),
            (
                "b.yml",
                "title: B\nname: policy_attached\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    eventName: AttachUserPolicy\n  condition: sel\n",
            ),
            (
                "c.yml",
                "title: C\nname: c\ncorrelation:\n  type: temporal\n  rules: [key_created, policy_attached]\n  group-by: [target]\n  aliases:\n    target:\n      key_created: responseElements.accessKey.userName\n      policy_attached: requestParameters.userName\n  timespan: 15m\n",
            ),
        ];
        let (set, errs) = compile(&files);
        assert!(errs.is_empty(), "{errs:?}");
        let keys = group_keys(
            &set.correlations()[0],
            &[
                (
                    0,
                    r#"{"eventName":"CreateAccessKey","eventTime":"2026-10-05T14:00:00Z","responseElements":{"accessKey":{"userName":"bob"}}}"#,
                ),
                (
                    1,
                    r#"{"eventName":"AttachUserPolicy","eventTime":"2026-10-05T14:01:00Z","requestParameters":{"userName":"bob"}}"#,
                ),
            ],
        );
        assert_eq!(keys, vec!["target=bob", "target=bob"]);
    }

    /// A group key escapes its separator and the escape character in every
    /// value, whatever surrounds them (multi-byte text included), so two
    /// groups never share a key; the key text is stored in
    /// `correlation_state`, so its form must not change.
    #[test]
    fn group_keys_escape_separators_and_backslashes_exactly() {
        let files = [
            (
                "a.yml",
                "title: A\nname: a\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    eventName: X\n  condition: sel\n",
            ),
            (
                "c.yml",
                "title: C\nname: c\ncorrelation:\n  type: event_count\n  rules: [a]\n  group-by: [sourceIPAddress, userAgent]\n  timespan: 15m\n  condition: {gte: 2}\n",
            ),
        ];
        let (set, errs) = compile(&files);
        assert!(errs.is_empty(), "{errs:?}");
        let keys = group_keys(
            &set.correlations()[0],
            &[
                (
                    0,
                    r#"{"eventName":"X","sourceIPAddress":"192.0.2.1","userAgent":"a;b\\c é;"}"#,
                ),
                (0, r#"{"eventName":"X","sourceIPAddress":";","userAgent":"\\\\;;"}"#),
                (0, r#"{"eventName":"X","userAgent":"plain"}"#),
                (0, r#"{"eventName":"X","sourceIPAddress":"€;€","userAgent":7}"#),
            ],
        );
        assert_eq!(
            keys,
            vec![
                r"sourceIPAddress=192.0.2.1; userAgent=a\;b\\c é\;",
                r"sourceIPAddress=\;; userAgent=\\\\\;\;",
                "sourceIPAddress=; userAgent=plain",
                r"sourceIPAddress=€\;€; userAgent=7",
            ]
        );
    }
}
