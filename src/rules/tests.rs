//! Engine semantics, checked record by record.

use super::*;
use crate::decode::{Decoder, read_object};

fn set(yaml: &str) -> RuleSet {
    let (s, errs) = RuleSet::compile([("t.yml".to_string(), yaml)], &LoadOptions::default());
    assert!(errs.is_empty(), "{errs:?}");
    s
}

fn rule(detection: &str) -> RuleSet {
    set(&format!(
        "title: t\nname: t\nlogsource: {{product: aws, service: cloudtrail}}\ndetection:\n{detection}\n"
    ))
}

fn fires(s: &RuleSet, json: &str) -> bool {
    let mut buf = Vec::new();
    let len = read_object("e", json.as_bytes(), 1 << 20, &mut buf).unwrap();
    let mut hit = false;
    Decoder::default()
        .decode("e", &mut buf, len, |r| s.evaluate(&r, |_| hit = true))
        .unwrap();
    hit
}

fn load_err(yaml: &str) -> String {
    let (_, errs) = RuleSet::compile([("bad.yml".to_string(), yaml)], &LoadOptions::default());
    assert_eq!(errs.len(), 1, "{errs:?}");
    errs[0].to_string()
}

#[test]
fn map_is_and_list_is_or_case_insensitive() {
    let s = rule(
        "  sel:\n    eventName: [ConsoleLogin, GetObject]\n    eventSource: signin.amazonaws.com\n  condition: sel",
    );
    assert!(fires(
        &s,
        r#"{"eventName":"consolelogin","eventSource":"signin.amazonaws.com"}"#
    ));
    assert!(!fires(
        &s,
        r#"{"eventName":"GetObject","eventSource":"s3.amazonaws.com"}"#
    ));
}

#[test]
fn null_matches_missing_or_null_and_not_empty_string() {
    let s = rule("  sel:\n    eventName: X\n    errorCode: null\n  condition: sel");
    assert!(fires(&s, r#"{"eventName":"X"}"#));
    assert!(fires(&s, r#"{"eventName":"X","errorCode":null}"#));
    assert!(!fires(&s, r#"{"eventName":"X","errorCode":"AccessDenied"}"#));
    assert!(!fires(&s, r#"{"eventName":"X","errorCode":""}"#));
}

#[test]
fn numbers_and_booleans_match_their_string_forms() {
    let s = rule("  sel:\n    eventName: X\n    p.port: 443\n    p.flag: 'true'\n  condition: sel");
    assert!(fires(&s, r#"{"eventName":"X","p":{"port":443,"flag":true}}"#));
    assert!(fires(&s, r#"{"eventName":"X","p":{"port":"443","flag":"TRUE"}}"#));
    assert!(!fires(&s, r#"{"eventName":"X","p":{"port":4430,"flag":true}}"#));
}

#[test]
fn modifiers_on_objects_search_their_values() {
    let s = rule("  sel:\n    requestParameters|contains: 'secret-bucket'\n  condition: sel");
    assert!(fires(
        &s,
        r#"{"eventName":"X","requestParameters":{"a":{"b":["x","my-SECRET-bucket-1"]}}}"#
    ));
    assert!(!fires(
        &s,
        r#"{"eventName":"X","requestParameters":{"secret-bucket":"key only"}}"#
    ));
}

#[test]
fn contains_all_needs_every_value() {
    let s = rule("  sel:\n    userAgent|contains|all: [aws-cli, linux]\n  condition: sel");
    assert!(fires(&s, r#"{"eventName":"X","userAgent":"aws-cli/2.0 Linux/5"}"#));
    assert!(!fires(&s, r#"{"eventName":"X","userAgent":"aws-cli/2.0 Darwin"}"#));
}

#[test]
fn conditions_not_and_quantifiers() {
    let s = rule(
        "  selection:\n    eventName: X\n  filter_a:\n    user: alice\n  filter_b:\n    user: bob\n  condition: selection and not 1 of filter_*",
    );
    assert!(fires(&s, r#"{"eventName":"X","user":"carol"}"#));
    assert!(!fires(&s, r#"{"eventName":"X","user":"Bob"}"#));
    let s = rule("  s1:\n    a: 1\n  s2:\n    b: 2\n  condition: all of s*");
    assert!(fires(&s, r#"{"eventName":"X","a":1,"b":2}"#));
    assert!(!fires(&s, r#"{"eventName":"X","a":1}"#));
}

#[test]
fn keywords_search_every_string() {
    let s = rule("  keywords:\n    - 'stratus-red-team'\n  condition: keywords");
    assert!(fires(
        &s,
        r#"{"eventName":"X","userAgent":"aws-sdk Stratus-Red-Team_1"}"#
    ));
    assert!(!fires(&s, r#"{"eventName":"X","userAgent":"aws-cli"}"#));
}

#[test]
fn re_cidr_exists_and_numeric_comparisons() {
    let s = rule("  sel:\n    sourceIPAddress|cidr: 10.0.0.0/8\n  condition: sel");
    assert!(fires(&s, r#"{"eventName":"X","sourceIPAddress":"10.2.3.4"}"#));
    assert!(!fires(&s, r#"{"eventName":"X","sourceIPAddress":"s3.amazonaws.com"}"#));
    let s = rule("  sel:\n    userAgent|re: '^Boto3/1\\.[0-9]+'\n  condition: sel");
    assert!(fires(&s, r#"{"eventName":"X","userAgent":"Boto3/1.26 Python"}"#));
    assert!(
        !fires(&s, r#"{"eventName":"X","userAgent":"boto3/1.26"}"#),
        "re is case-sensitive without |i"
    );
    let s = rule("  sel:\n    userAgent|re|i: '^boto3'\n  condition: sel");
    assert!(fires(&s, r#"{"eventName":"X","userAgent":"Boto3/1.26"}"#));
    let s = rule("  sel:\n    additionalEventData.SamlProviderArn|exists: true\n  condition: sel");
    assert!(fires(
        &s,
        r#"{"eventName":"X","additionalEventData":{"SamlProviderArn":"a"}}"#
    ));
    assert!(!fires(&s, r#"{"eventName":"X","additionalEventData":{}}"#));
    let s = rule("  sel:\n    requestParameters.pendingWindowInDays|lt: 8\n  condition: sel");
    assert!(fires(
        &s,
        r#"{"eventName":"X","requestParameters":{"pendingWindowInDays":7}}"#
    ));
    assert!(!fires(
        &s,
        r#"{"eventName":"X","requestParameters":{"pendingWindowInDays":30}}"#
    ));
}

#[test]
fn hostile_regex_runs_in_linear_time() {
    let s = rule("  sel:\n    userAgent|re: '(a+)+$'\n  condition: sel");
    let hostile = format!(r#"{{"eventName":"X","userAgent":"{}!"}}"#, "a".repeat(50_000));
    // Backtracking engines take exponential time here; `regex` does not.
    assert!(!fires(&s, &hostile));
    assert!(fires(&s, r#"{"eventName":"X","userAgent":"aaaa"}"#));
}

#[test]
fn fieldref_compares_two_fields() {
    let s = rule("  sel:\n    userIdentity.userName|fieldref: requestParameters.userName\n  condition: sel");
    assert!(fires(
        &s,
        r#"{"eventName":"X","userIdentity":{"userName":"a"},"requestParameters":{"userName":"A"}}"#
    ));
    assert!(!fires(
        &s,
        r#"{"eventName":"X","userIdentity":{"userName":"a"},"requestParameters":{"userName":"b"}}"#
    ));
}

#[test]
fn index_dispatches_by_event_name_without_changing_results() {
    let s = rule("  sel:\n    eventName: [A, B]\n  other:\n    x: 1\n  condition: sel and not other");
    assert_eq!(s.index_stats(), (1, 0, 0));
    assert!(fires(&s, r#"{"eventName":"a"}"#));
    assert!(!fires(&s, r#"{"eventName":"C"}"#));
    let s = rule("  sel:\n    eventName: A\n  or_this:\n    x: 1\n  condition: sel or or_this");
    assert_eq!(
        s.index_stats(),
        (0, 0, 1),
        "an OR branch without eventName cannot be indexed"
    );
    assert!(fires(&s, r#"{"eventName":"Z","x":1}"#));
}

#[test]
fn unsupported_constructs_fail_at_load_naming_file_line_and_construct() {
    let e = load_err(
        "title: t\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    eventName|base65: X\n  condition: sel\n",
    );
    assert!(e.starts_with("bad.yml:5:"), "{e}");
    assert!(e.contains("eventName|base65") && e.contains("unknown modifier"), "{e}");
    let e = load_err(
        "title: t\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    a: 1\n  condition: sel | count() > 5\n",
    );
    assert!(e.contains("correlation"), "{e}");
    let e = load_err("title: t\nlogsource: {product: windows}\ndetection:\n  sel:\n    a: 1\n  condition: sel\n");
    assert!(e.contains("logsource"), "{e}");
    let e = load_err(
        "title: t\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    a: 1\n  condition: sel and missing\n",
    );
    assert!(e.contains("`missing`"), "{e}");
    let e = load_err("title: t\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    a: [1\n");
    assert!(e.contains("invalid YAML"), "{e}");
}

#[test]
fn shipped_rules_pass_their_embedded_tests() {
    let (set, errors) = RuleSet::embedded(&LoadOptions::default());
    assert!(errors.is_empty(), "{errors:?}");
    for name in [
        "root_account_usage",
        "console_login_without_mfa",
        "kms_key_deletion",
        "security_group_opened_to_world",
    ] {
        let r = set
            .rules()
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("{name} missing"));
        assert!(
            !r.tests.true_positives.is_empty() && !r.tests.true_negatives.is_empty(),
            "{name} lacks tests"
        );
    }
    let outcomes = run_rule_tests(&set);
    let failed: Vec<_> = outcomes.iter().filter(|o| !o.passed).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert!(outcomes.len() >= 30);
}
