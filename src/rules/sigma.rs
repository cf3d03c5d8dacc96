//! Sigma YAML → [`Rule`]: metadata, searches and condition, plus the rule's
//! own test events.
//!
//! Parsing goes YAML → `serde_yaml_ng::Value` → typed rule. Anything the
//! engine does not understand is an error that names the construct; nothing
//! is ignored, so a rule never silently matches less than its author meant.

use serde_yaml_ng::{Mapping, Value as Yaml};

use super::condition::{self, Cond};
use super::matcher::{self, FieldCond, Placeholders, Search};
use super::{Level, Rule, RuleError, RuleTests};

/// 1-based number of the first line of `text` containing `needle`.
pub(crate) fn line_of(text: &str, needle: &str) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    // Prefer a line where the construct is a YAML key (`needle:`, quoted or
    // as a list item), so that a short field name is not found inside an
    // earlier line that merely contains it.
    let is_key = |l: &str| {
        let t = l.trim_start().trim_start_matches("- ").trim_start_matches(['\'', '"']);
        t.strip_prefix(needle)
            .is_some_and(|rest| rest.trim_start_matches(['\'', '"']).starts_with(':'))
    };
    text.lines()
        .position(is_key)
        .or_else(|| text.lines().position(|l| l.contains(needle)))
        .map(|i| i + 1)
}

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn invalid(&self, construct: &str, reason: impl Into<String>) -> RuleError {
        RuleError::Invalid {
            file: self.file.to_owned(),
            line: line_of(self.text, construct),
            construct: construct.to_owned(),
            reason: reason.into(),
        }
    }
}

fn get<'a>(m: &'a Mapping, key: &str) -> Option<&'a Yaml> {
    m.get(Yaml::String(key.to_owned()))
}

fn get_str(m: &Mapping, key: &str) -> Option<String> {
    match get(m, key)? {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn get_list(m: &Mapping, key: &str) -> Vec<String> {
    match get(m, key) {
        Some(Yaml::Sequence(items)) => items
            .iter()
            .filter_map(|v| match v {
                Yaml::String(s) => Some(s.clone()),
                Yaml::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        Some(Yaml::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn key_text(k: &Yaml) -> Option<String> {
    match k {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Parses one YAML document of a rule file. `default_name` is used when the
/// rule has no `name`.
pub(crate) fn parse_rule(
    file: &str,
    text: &str,
    doc: &Yaml,
    default_name: &str,
    placeholders: &Placeholders,
) -> Result<Rule, RuleError> {
    let cx = Ctx { file, text };
    let Some(m) = doc.as_mapping() else {
        return Err(cx.invalid("", "a rule document must be a YAML mapping"));
    };
    debug_assert!(
        get(m, "correlation").is_none(),
        "correlations are parsed by correlation.rs"
    );
    if let Some(action) = get_str(m, "action") {
        return Err(cx.invalid(
            "action:",
            format!("Sigma collection action `{action}` is not supported; write self-contained rules"),
        ));
    }
    let title = get_str(m, "title").ok_or_else(|| cx.invalid("title", "a rule needs a `title`"))?;
    let ls = get(m, "logsource")
        .and_then(Yaml::as_mapping)
        .ok_or_else(|| cx.invalid("logsource", "a rule needs a `logsource` mapping"))?;
    let product = get_str(ls, "product").unwrap_or_default();
    let service = get_str(ls, "service").unwrap_or_default();
    if !product.eq_ignore_ascii_case("aws") || !service.eq_ignore_ascii_case("cloudtrail") {
        return Err(cx.invalid(
            "logsource",
            format!("logsource is product `{product}`, service `{service}`; trailwatch runs only `product: aws, service: cloudtrail`"),
        ));
    }
    let level = match get_str(m, "level") {
        None => Level::Medium,
        Some(l) => l
            .parse()
            .map_err(|_| cx.invalid("level:", format!("unknown level `{l}`")))?,
    };
    let det = get(m, "detection")
        .and_then(Yaml::as_mapping)
        .ok_or_else(|| cx.invalid("detection", "a rule needs a `detection` mapping"))?;

    let mut names = Vec::new();
    let mut searches = Vec::new();
    let mut conditions = Vec::new();
    let mut timeframe = None;
    for (k, v) in det {
        let Some(k) = key_text(k) else {
            return Err(cx.invalid("detection", "detection keys must be strings"));
        };
        match k.as_str() {
            "condition" => {
                conditions = match v {
                    Yaml::String(s) => vec![s.clone()],
                    Yaml::Sequence(items) => items.iter().filter_map(key_text).collect(),
                    _ => {
                        return Err(cx.invalid("condition:", "`condition` must be a string or a list of strings"));
                    }
                };
            }
            "timeframe" => timeframe = key_text(v),
            _ => {
                searches.push(compile_search(&cx, &k, v, placeholders)?);
                names.push(k);
            }
        }
    }
    if conditions.is_empty() {
        return Err(cx.invalid("detection", "the detection has no `condition`"));
    }
    let name = get_str(m, "name").unwrap_or_else(|| default_name.to_owned());
    // The deprecated Sigma v1 aggregations (`| count() by x > n`, `| near`,
    // `timeframe`) are refused with the correlation rule to write instead:
    // running them with guessed semantics would silently differ from what
    // their authors' backends did.
    let stem = std::path::Path::new(file)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let shipped = match super::shipped_translation(&stem) {
        Some(p) => format!("trailwatch ships this translation as {p}"),
        None => "trailwatch ships translations of SigmaHQ's deprecated AWS rules in rules/correlations/sigmahq/".into(),
    };
    if let Some(c) = conditions.iter().find(|c| c.contains('|')) {
        let suggestion = super::correlation::suggest_for_v1(&name, c, timeframe.as_deref())
            .map(|s| format!("; write a correlation rule instead: `{s}`"))
            .unwrap_or_else(|| "; write a Sigma correlation rule instead".into());
        return Err(cx.invalid(
            c,
            format!(
                "the aggregation `{}` is deprecated Sigma v1 syntax{suggestion} ({shipped})",
                c.split_once('|').map(|x| x.1.trim()).unwrap_or(c)
            ),
        ));
    }
    if let Some(tf) = &timeframe {
        return Err(cx.invalid(
            "timeframe:",
            format!("`timeframe: {tf}` is deprecated Sigma v1 syntax (a condition over several events); write a correlation rule instead: `correlation: {{type: temporal, rules: [<one rule per selection>], group-by: [userIdentity.arn], timespan: {tf}}}` ({shipped})"),
        ));
    }
    let mut conds = Vec::new();
    for c in &conditions {
        let expr = condition::parse(c).map_err(|e| cx.invalid(c, e.0))?;
        conds.push(condition::resolve(&expr, &names).map_err(|e| cx.invalid(c, e.0))?);
    }
    let cond = if conds.len() == 1 {
        conds.pop().expect("one")
    } else {
        Cond::Or(conds)
    };

    let tests = match get(m, "tests") {
        None => RuleTests::default(),
        Some(t) => parse_tests(&cx, t)?,
    };
    Ok(Rule {
        name,
        id: get_str(m, "id").unwrap_or_default(),
        title,
        level,
        status: get_str(m, "status").unwrap_or_else(|| "experimental".into()),
        description: get_str(m, "description").unwrap_or_default(),
        tags: get_list(m, "tags"),
        references: get_list(m, "references"),
        falsepositives: get_list(m, "falsepositives"),
        source: file.to_owned(),
        searches,
        cond,
        tests,
        generate: true,
        feeds: Vec::new(),
    })
}

fn compile_search(cx: &Ctx<'_>, name: &str, v: &Yaml, placeholders: &Placeholders) -> Result<Search, RuleError> {
    let map_conds = |m: &Mapping| -> Result<Vec<FieldCond>, RuleError> {
        if m.is_empty() {
            // An empty AND would match every record.
            return Err(cx.invalid(name, "an empty search map matches everything; give it fields"));
        }
        m.iter()
            .map(|(k, v)| {
                let k = key_text(k).ok_or_else(|| cx.invalid(name, "field names must be strings"))?;
                matcher::compile_field(&k, v, placeholders).map_err(|e| cx.invalid(&e.construct, e.reason))
            })
            .collect()
    };
    match v {
        Yaml::Mapping(m) => {
            // A map whose only key is `|mods` (no field) is a keyword list
            // with modifiers, e.g. `keywords: {'|all': [a, b]}`.
            if m.len() == 1 {
                let (k, val) = m.iter().next().expect("one");
                if let Some(k) = key_text(k)
                    && let Some(mods) = k.strip_prefix('|')
                {
                    let mods: Vec<&str> = mods.split('|').collect();
                    let all = mods.iter().any(|m| m.eq_ignore_ascii_case("all"));
                    let items: Vec<&Yaml> = match val {
                        Yaml::Sequence(s) => s.iter().collect(),
                        other => vec![other],
                    };
                    let mut matchers = Vec::new();
                    for it in items {
                        matchers.extend(
                            matcher::compile_keyword(&k, &mods, it).map_err(|e| cx.invalid(&e.construct, e.reason))?,
                        );
                    }
                    return Ok(Search::Keywords { matchers, all });
                }
            }
            Ok(Search::Maps(vec![map_conds(m)?]))
        }
        Yaml::Sequence(items) if items.iter().all(|i| i.is_mapping()) && !items.is_empty() => Ok(Search::Maps(
            items
                .iter()
                .map(|i| map_conds(i.as_mapping().expect("checked")))
                .collect::<Result<_, _>>()?,
        )),
        Yaml::Sequence(items) if items.iter().all(|i| !i.is_mapping() && !i.is_sequence()) && !items.is_empty() => {
            let mut matchers = Vec::new();
            for it in items {
                matchers
                    .extend(matcher::compile_keyword(name, &[], it).map_err(|e| cx.invalid(&e.construct, e.reason))?);
            }
            Ok(Search::Keywords { matchers, all: false })
        }
        Yaml::String(_) | Yaml::Number(_) => Ok(Search::Keywords {
            matchers: matcher::compile_keyword(name, &[], v).map_err(|e| cx.invalid(&e.construct, e.reason))?,
            all: false,
        }),
        _ => Err(cx.invalid(
            name,
            "a search must be a map of fields, a list of such maps, or a list of keywords (mixed lists are not Sigma)",
        )),
    }
}

fn parse_tests(cx: &Ctx<'_>, t: &Yaml) -> Result<RuleTests, RuleError> {
    let Some(m) = t.as_mapping() else {
        return Err(cx.invalid(
            "tests:",
            "`tests` must map `true_positives`/`true_negatives` to lists of events",
        ));
    };
    let mut out = RuleTests::default();
    for (k, v) in m {
        let key = key_text(k).unwrap_or_default();
        let target = match key.as_str() {
            "true_positives" => &mut out.true_positives,
            "true_negatives" => &mut out.true_negatives,
            other => {
                return Err(cx.invalid(
                    other,
                    "unknown key under `tests` (expected true_positives, true_negatives)",
                ));
            }
        };
        let Some(items) = v.as_sequence() else {
            return Err(cx.invalid(&key, "must be a list of events"));
        };
        for it in items {
            let json = serde_json::to_string(it)
                .map_err(|e| cx.invalid(&key, format!("event is not JSON-representable: {e}")))?;
            target.push(json);
        }
    }
    Ok(out)
}
