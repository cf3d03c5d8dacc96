//! Conformance with the public SigmaHQ CloudTrail rules, run unmodified.
//!
//! The rules are read from `../shared/sigma/rules/cloud/aws/cloudtrail/` at
//! test time (never copied into the repository). For each rule,
//! `tests/sigma_conformance/<rule stem>.json` holds CloudTrail events written
//! for it: `true_positives` the rule must fire on and `true_negatives`
//! (near misses: same event with the wrong value, or the filtered case) it
//! must not. Every event goes through the real decoder and the whole
//! indexed rule set, so dispatch bugs show up as well.
//!
//! The last test reads the rule YAML itself, lists every modifier, value
//! form and condition form the corpus uses, and fails when one is not
//! covered: by a rule with both kinds of case here, and by a named unit test
//! in `src/rules/tests.rs`. A new corpus release that uses a new construct
//! therefore fails until that construct is tested.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::{repo, shared};
use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;
use trailwatch::decode::{Decoder, read_object};
use trailwatch::rules::{LoadOptions, RuleSet};

const CORPUS_RULES: usize = 57;

fn corpus() -> PathBuf {
    shared().join("sigma/rules/cloud/aws/cloudtrail")
}

fn cases_dir() -> PathBuf {
    repo().join("tests/sigma_conformance")
}

fn yml_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yml") || n.ends_with(".yaml"))
        .collect();
    v.sort();
    v
}

struct Cases {
    true_positives: Vec<Json>,
    true_negatives: Vec<Json>,
}

/// Case files keyed by the rule file name they name.
fn load_cases() -> BTreeMap<String, Cases> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(cases_dir()).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: Json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let obj = doc
            .as_object()
            .unwrap_or_else(|| panic!("{}: not an object", path.display()));
        for k in obj.keys() {
            assert!(
                ["rule", "comment", "true_positives", "true_negatives"].contains(&k.as_str()),
                "{}: unknown key `{k}`",
                path.display()
            );
        }
        let rule = obj["rule"].as_str().unwrap().to_owned();
        let stem = path.file_stem().unwrap().to_string_lossy();
        assert_eq!(
            Path::new(&rule).file_stem().unwrap().to_string_lossy(),
            stem,
            "{}: a case file is named after its rule",
            path.display()
        );
        let list = |k: &str| obj.get(k).and_then(Json::as_array).cloned().unwrap_or_default();
        let c = Cases {
            true_positives: list("true_positives"),
            true_negatives: list("true_negatives"),
        };
        assert!(out.insert(rule.clone(), c).is_none(), "{rule}: two case files");
    }
    out
}

fn load_corpus() -> RuleSet {
    let (set, errors) = RuleSet::load_dir(&corpus(), &LoadOptions::default());
    assert!(errors.is_empty(), "{errors:#?}");
    set
}

/// The names of the rules that fire on `event`, through the decoder and the
/// indexed set.
fn fired(set: &RuleSet, label: &str, event: &Json) -> Vec<String> {
    let text = serde_json::to_string(event).unwrap();
    let mut buf = Vec::new();
    let len = read_object(label, text.as_bytes(), 1 << 24, &mut buf).unwrap();
    let mut records = 0;
    let mut names = Vec::new();
    Decoder::default()
        .decode(label, &mut buf, len, |rec| {
            records += 1;
            set.evaluate(rec, |r| names.push(r.name.clone()));
        })
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    assert_eq!(records, 1, "{label}: expected exactly one CloudTrail record");
    names
}

#[test]
fn all_57_sigmahq_cloudtrail_rules_load_unmodified() {
    let set = load_corpus();
    assert_eq!(set.len(), CORPUS_RULES);
    assert_eq!(yml_files(&corpus()).len(), CORPUS_RULES);
}

#[test]
fn every_corpus_rule_gives_the_exact_verdict_on_its_cases() {
    let set = load_corpus();
    let cases = load_cases();
    let files: BTreeSet<String> = yml_files(&corpus()).into_iter().collect();
    let with_cases: BTreeSet<String> = cases.keys().cloned().collect();
    assert_eq!(
        files.difference(&with_cases).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "corpus rules without a case file in tests/sigma_conformance/"
    );
    assert_eq!(
        with_cases.difference(&files).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "case files naming no corpus rule"
    );
    let mut failures = Vec::new();
    let mut checked = 0;
    for (file, c) in &cases {
        assert!(
            !c.true_positives.is_empty() && !c.true_negatives.is_empty(),
            "{file}: needs at least one true positive and one true negative"
        );
        let rule = set
            .rules()
            .iter()
            .find(|r| Path::new(&r.source).file_name().unwrap().to_string_lossy() == *file)
            .unwrap_or_else(|| panic!("{file}: not loaded"));
        let kinds = [
            ("true_positive", &c.true_positives, true),
            ("true_negative", &c.true_negatives, false),
        ];
        for (kind, events, expect) in kinds {
            for (i, ev) in events.iter().enumerate() {
                let label = format!("{file} {kind} #{i}");
                let hit = fired(&set, &label, ev).contains(&rule.name);
                checked += 1;
                if hit != expect {
                    failures.push(format!(
                        "{label}: rule {} (expected {})",
                        if hit { "fired" } else { "did not fire" },
                        if expect { "a match" } else { "no match" }
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} verdicts wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked >= 2 * CORPUS_RULES);
}

// ------------------------------------------------------------ constructs

/// Every construct the engine supports, with the unit test in
/// `src/rules/tests.rs` that pins its semantics. A construct the corpus uses
/// that is missing here fails the coverage test.
const UNIT_TESTED: &[(&str, &[&str])] = &[
    (
        "modifier contains",
        &["startswith_endswith_and_contains_anchor_as_named"],
    ),
    (
        "modifier startswith",
        &["startswith_endswith_and_contains_anchor_as_named"],
    ),
    (
        "modifier endswith",
        &["startswith_endswith_and_contains_anchor_as_named"],
    ),
    (
        "modifier all",
        &[
            "contains_all_needs_every_value",
            "contains_all_requires_each_value_not_each_alternative",
        ],
    ),
    (
        "modifier re",
        &[
            "re_cidr_exists_and_numeric_comparisons",
            "re_sub_modifiers_i_m_s",
            "hostile_regex_runs_in_linear_time",
        ],
    ),
    ("modifier i", &["re_sub_modifiers_i_m_s"]),
    ("modifier m", &["re_sub_modifiers_i_m_s"]),
    ("modifier s", &["re_sub_modifiers_i_m_s"]),
    (
        "modifier cased",
        &[
            "cased_makes_matching_case_sensitive",
            "fieldref_cased_is_applied_not_ignored",
        ],
    ),
    ("modifier cidr", &["cidr_handles_ipv4_and_ipv6"]),
    (
        "modifier exists",
        &[
            "re_cidr_exists_and_numeric_comparisons",
            "null_in_value_lists_and_exists",
        ],
    ),
    (
        "modifier fieldref",
        &["fieldref_compares_two_fields", "fieldref_cased_is_applied_not_ignored"],
    ),
    ("modifier base64", &["base64_and_base64offset"]),
    (
        "modifier base64offset",
        &[
            "base64_and_base64offset",
            "contains_all_requires_each_value_not_each_alternative",
        ],
    ),
    (
        "modifier windash",
        &[
            "windash_accepts_every_dash_form",
            "windash_treats_slash_and_non_space_word_starts",
        ],
    ),
    ("modifier lt", &["numeric_comparisons_lt_lte_gt_gte"]),
    ("modifier lte", &["numeric_comparisons_lt_lte_gt_gte"]),
    ("modifier gt", &["numeric_comparisons_lt_lte_gt_gte"]),
    ("modifier gte", &["numeric_comparisons_lt_lte_gt_gte"]),
    (
        "modifier expand",
        &[
            "expand_substitutes_placeholders_from_configuration",
            "expand_with_cidr_and_re_substitutes_placeholders",
        ],
    ),
    (
        "modifier chain",
        &["contains_all_needs_every_value", "re_sub_modifiers_i_m_s"],
    ),
    ("field map (AND)", &["map_is_and_list_is_or_case_insensitive"]),
    ("list of maps (OR)", &["list_of_maps_is_an_or_of_ands"]),
    ("value list (OR)", &["map_is_and_list_is_or_case_insensitive"]),
    (
        "value null",
        &[
            "null_matches_missing_or_null_and_not_empty_string",
            "null_in_value_lists_and_exists",
        ],
    ),
    ("value wildcard", &["wildcards_and_their_escapes"]),
    ("value escaped wildcard", &["wildcards_and_their_escapes"]),
    (
        "value number",
        &[
            "numbers_and_booleans_match_their_string_forms",
            "numeric_rule_value_matches_a_float_record_number",
        ],
    ),
    (
        "value boolean",
        &["json_typing_quoted_rule_values_match_numbers_and_booleans"],
    ),
    (
        "value 'true'/'false' text",
        &["json_typing_quoted_rule_values_match_numbers_and_booleans"],
    ),
    ("dotted field path", &["dotted_path_crosses_arrays_at_every_level"]),
    (
        "keywords",
        &["keywords_search_every_string", "keywords_with_all_and_cased"],
    ),
    ("condition identifier", &["map_is_and_list_is_or_case_insensitive"]),
    (
        "condition and",
        &[
            "conditions_not_and_quantifiers",
            "parentheses_and_every_quantifier_form",
        ],
    ),
    ("condition or", &["parentheses_and_every_quantifier_form"]),
    (
        "condition not",
        &[
            "conditions_not_and_quantifiers",
            "parentheses_and_every_quantifier_form",
        ],
    ),
    ("condition parentheses", &["parentheses_and_every_quantifier_form"]),
    (
        "condition 1 of X*",
        &[
            "conditions_not_and_quantifiers",
            "parentheses_and_every_quantifier_form",
        ],
    ),
    (
        "condition all of X*",
        &[
            "conditions_not_and_quantifiers",
            "parentheses_and_every_quantifier_form",
        ],
    ),
    ("condition 1 of them", &["parentheses_and_every_quantifier_form"]),
    ("condition all of them", &["parentheses_and_every_quantifier_form"]),
    ("condition list", &["condition_list_is_an_or"]),
];

fn has_unescaped_wildcard(s: &str) -> (bool, bool) {
    let (mut wild, mut escaped) = (false, false);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if matches!(chars.peek(), Some('*' | '?')) => {
                chars.next();
                escaped = true;
            }
            '\\' if chars.peek() == Some(&'\\') => {
                chars.next();
            }
            '*' | '?' => wild = true,
            _ => {}
        }
    }
    (wild, escaped)
}

fn value_forms(v: &Yaml, out: &mut BTreeSet<String>) {
    match v {
        Yaml::Null => {
            out.insert("value null".into());
        }
        Yaml::Bool(_) => {
            out.insert("value boolean".into());
        }
        Yaml::Number(_) => {
            out.insert("value number".into());
        }
        Yaml::String(s) => {
            let (wild, escaped) = has_unescaped_wildcard(s);
            if wild {
                out.insert("value wildcard".into());
            }
            if escaped {
                out.insert("value escaped wildcard".into());
            }
            if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") {
                out.insert("value 'true'/'false' text".into());
            }
        }
        Yaml::Sequence(items) => {
            out.insert("value list (OR)".into());
            for i in items {
                value_forms(i, out);
            }
        }
        _ => {}
    }
}

fn field_forms(key: &str, v: &Yaml, out: &mut BTreeSet<String>) {
    let mut parts = key.split('|');
    let field = parts.next().unwrap_or_default();
    let mods: Vec<&str> = parts.collect();
    if field.is_empty() {
        out.insert("keywords".into());
    } else if field.contains('.') {
        out.insert("dotted field path".into());
    }
    for m in &mods {
        out.insert(format!("modifier {}", m.to_ascii_lowercase()));
    }
    if mods.len() > 1 {
        out.insert("modifier chain".into());
    }
    // Values of string-free modifiers are not Sigma strings.
    let typed = mods.iter().any(|m| {
        matches!(
            m.to_ascii_lowercase().as_str(),
            "re" | "cidr" | "exists" | "fieldref" | "lt" | "lte" | "gt" | "gte"
        )
    });
    if !typed {
        value_forms(v, out);
    } else if v.is_sequence() {
        out.insert("value list (OR)".into());
    }
}

fn search_forms(v: &Yaml, out: &mut BTreeSet<String>) {
    match v {
        Yaml::Mapping(m) => {
            out.insert("field map (AND)".into());
            for (k, val) in m {
                field_forms(k.as_str().unwrap_or_default(), val, out);
            }
        }
        Yaml::Sequence(items) if items.iter().all(Yaml::is_mapping) => {
            out.insert("list of maps (OR)".into());
            for i in items {
                search_forms(i, out);
            }
        }
        other => {
            out.insert("keywords".into());
            value_forms(other, out);
        }
    }
}

fn condition_forms(cond: &str, out: &mut BTreeSet<String>) {
    let spaced = cond.replace('(', " ( ").replace(')', " ) ");
    let words: Vec<&str> = spaced.split_whitespace().collect();
    if words.len() == 1 {
        out.insert("condition identifier".into());
    }
    for (i, w) in words.iter().enumerate() {
        match w.to_ascii_lowercase().as_str() {
            "and" | "or" | "not" => {
                out.insert(format!("condition {}", w.to_ascii_lowercase()));
            }
            "(" => {
                out.insert("condition parentheses".into());
            }
            "of" => {
                let quant = if words[i - 1] == "1" { "1" } else { "all" };
                let target = words.get(i + 1).copied().unwrap_or_default();
                let form = if target == "them" {
                    format!("condition {quant} of them")
                } else if target.contains('*') {
                    format!("condition {quant} of X*")
                } else {
                    format!("condition {quant} of X")
                };
                out.insert(form);
            }
            _ => {}
        }
    }
}

/// The constructs one rule file uses.
fn rule_forms(text: &str) -> BTreeSet<String> {
    let doc: Yaml = serde_yaml_ng::from_str(text).unwrap();
    let det = doc["detection"].as_mapping().expect("detection");
    let mut out = BTreeSet::new();
    for (k, v) in det {
        match k.as_str().unwrap_or_default() {
            "condition" => match v {
                Yaml::String(c) => condition_forms(c, &mut out),
                Yaml::Sequence(cs) => {
                    out.insert("condition list".into());
                    for c in cs.iter().filter_map(Yaml::as_str) {
                        condition_forms(c, &mut out);
                    }
                }
                _ => panic!("condition is neither a string nor a list"),
            },
            _ => search_forms(v, &mut out),
        }
    }
    out
}

#[test]
fn every_construct_the_corpus_uses_is_covered() {
    let cases = load_cases();
    let unit_tests = std::fs::read_to_string(repo().join("src/rules/tests.rs")).unwrap();
    let mut by_form: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in yml_files(&corpus()) {
        let text = std::fs::read_to_string(corpus().join(&file)).unwrap();
        for f in rule_forms(&text) {
            by_form.entry(f).or_default().push(file.clone());
        }
    }
    // The corpus README counts these; a parse that finds fewer is broken.
    for expected in [
        "modifier contains",
        "modifier startswith",
        "modifier re",
        "modifier all",
        "modifier fieldref",
        "value null",
        "value list (OR)",
        "condition and",
        "condition not",
        "condition 1 of X*",
    ] {
        assert!(by_form.contains_key(expected), "{expected} not found in the corpus");
    }
    let mut problems = Vec::new();
    let mut report = String::new();
    for (form, rules) in &by_form {
        let covering: Vec<&String> = rules
            .iter()
            .filter(|r| {
                cases
                    .get(*r)
                    .is_some_and(|c| !c.true_positives.is_empty() && !c.true_negatives.is_empty())
            })
            .collect();
        if covering.is_empty() {
            problems.push(format!(
                "{form}: used by {rules:?}, none of which has a true positive and a true negative"
            ));
        }
        match UNIT_TESTED.iter().find(|(f, _)| f == form) {
            None => problems.push(format!(
                "{form}: used by {rules:?} but not in UNIT_TESTED; add a unit test to src/rules/tests.rs and list it"
            )),
            Some((_, tests)) => {
                for t in *tests {
                    if !unit_tests.contains(&format!("fn {t}()")) {
                        problems.push(format!("{form}: unit test `{t}` is not in src/rules/tests.rs"));
                    }
                }
            }
        }
        report.push_str(&format!(
            "{form:<28} {:>2} rules, e.g. {}\n",
            rules.len(),
            covering.first().map_or("-", |s| s.as_str())
        ));
    }
    eprintln!("constructs used by the corpus:\n{report}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
