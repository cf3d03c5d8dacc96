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
        .decode("e", &mut buf, len, |r| s.evaluate(r, |_| hit = true))
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
    assert_eq!(stats(&s), (1, 0, 0));
    assert!(fires(&s, r#"{"eventName":"a"}"#));
    assert!(!fires(&s, r#"{"eventName":"C"}"#));
    let s = rule("  sel:\n    eventName: A\n  or_this:\n    x: 1\n  condition: sel or or_this");
    assert_eq!(stats(&s), (0, 0, 1), "an OR branch without eventName cannot be indexed");
    assert!(fires(&s, r#"{"eventName":"Z","x":1}"#));
}

/// (by eventName, by eventSource, on every record).
fn stats(s: &RuleSet) -> (usize, usize, usize) {
    let st = s.index_stats();
    (st.by("eventName"), st.by("eventSource"), st.always)
}

/// Rules that pin neither eventName nor eventSource are dispatched by the
/// first field they pin (the root-usage rules by `userIdentity.type`); a
/// value that is not one plain string runs them all, so that dispatch never
/// changes a result.
#[test]
fn rules_without_event_name_dispatch_by_a_field_they_pin() {
    let s = set(concat!(
        "title: root\nname: root\nlogsource: {product: aws, service: cloudtrail}\n",
        "detection:\n  sel:\n    userIdentity.type: Root\n  filter:\n    eventType: AwsServiceEvent\n",
        "  condition: sel and not filter\n",
        "---\n",
        "title: seven\nname: seven\nlogsource: {product: aws, service: cloudtrail}\n",
        "detection:\n  sel:\n    userIdentity.type: '7'\n  condition: sel\n",
    ));
    let st = s.index_stats();
    assert_eq!(
        st.by_field,
        [
            ("eventName".to_owned(), 0),
            ("eventSource".to_owned(), 0),
            ("userIdentity.type".to_owned(), 2)
        ]
    );
    assert_eq!(st.always, 0);
    let hits = |json: &str| {
        let mut buf = Vec::new();
        let len = read_object("e", json.as_bytes(), 1 << 20, &mut buf).unwrap();
        let mut names = Vec::new();
        Decoder::default()
            .decode("e", &mut buf, len, |r| {
                s.evaluate(r, |rule| names.push(rule.name.clone()))
            })
            .unwrap();
        names.join(",")
    };
    assert_eq!(hits(r#"{"eventName":"X","userIdentity":{"type":"ROOT"}}"#), "root");
    assert_eq!(hits(r#"{"eventName":"X","userIdentity":{"type":"IAMUser"}}"#), "");
    assert_eq!(hits(r#"{"eventName":"X","userIdentity":{"arn":"a"}}"#), "");
    assert_eq!(
        hits(r#"{"eventName":"X","userIdentity":{"type":"Root"},"eventType":"AwsServiceEvent"}"#),
        ""
    );
    // Not one plain string: every rule of the index runs.
    assert_eq!(
        hits(r#"{"eventName":"X","userIdentity":{"type":["IAMUser","Root"]}}"#),
        "root"
    );
    assert_eq!(hits(r#"{"eventName":"X","userIdentity":{"type":7}}"#), "seven");
    assert_eq!(
        hits(r#"{"eventName":"X","userIdentity":[{"type":"root"},{"type":"7"}]}"#),
        "root,seven"
    );
}

/// A rule that pins no field to exact values but tests some field's value
/// (prefix, suffix, substring) runs only on records that have the field;
/// `null`, `exists`, a negation, an OR branch without the field, or a
/// nested field (as dear to look up as the rule is to run) keep it on every
/// record.
#[test]
fn rules_testing_a_fields_value_run_only_where_the_field_is() {
    let s = rule(
        "  denied:\n    errorCode|startswith: AccessDenied\n  unauth:\n    errorCode|endswith: UnauthorizedOperation\n  condition: 1 of them",
    );
    let st = s.index_stats();
    assert_eq!(
        (st.by_presence.clone(), st.always),
        (vec![("errorCode".to_owned(), 1)], 0)
    );
    assert!(fires(&s, r#"{"eventName":"X","errorCode":"AccessDeniedException"}"#));
    assert!(fires(
        &s,
        r#"{"eventName":"X","errorCode":["Client.UnauthorizedOperation"]}"#
    ));
    assert!(!fires(&s, r#"{"eventName":"X","errorCode":"ThrottlingException"}"#));
    assert!(!fires(&s, r#"{"eventName":"X"}"#));
    for detection in [
        "  sel:\n    errorCode: null\n  condition: sel",
        "  sel:\n    errorCode|exists: false\n  condition: sel",
        "  sel:\n    errorCode|startswith: Access\n  condition: not sel",
        "  sel:\n    errorCode|startswith: Access\n  other:\n    x|contains: y\n  condition: sel or other",
        "  sel:\n    userIdentity.arn|contains: admin\n  condition: sel",
    ] {
        let s = rule(detection);
        let st = s.index_stats();
        assert_eq!((st.by_presence.len(), st.always), (0, 1), "{detection}");
    }
    assert!(fires(
        &rule("  sel:\n    errorCode: null\n  condition: sel"),
        r#"{"eventName":"X"}"#
    ));
}

/// Regression: a value longer than the dispatch buffer (128 bytes) is
/// never looked up, so a rule keyed on such a value would never have run.
/// It is dispatched by another field it pins, or by the field's presence.
#[test]
fn a_rule_pinning_a_value_longer_than_the_dispatch_buffer_still_fires() {
    let ua = format!("Mozilla/5.0 {}", "x".repeat(150));
    let s = rule(&format!("  sel:\n    userAgent: '{ua}'\n  condition: sel"));
    assert_eq!(s.index_stats().by("userAgent"), 0);
    assert_eq!(s.index_stats().by_presence, [("userAgent".to_owned(), 1)]);
    assert!(fires(
        &s,
        &format!(r#"{{"eventName":"X","userAgent":"{}"}}"#, ua.to_uppercase())
    ));
    assert!(!fires(&s, r#"{"eventName":"X","userAgent":"Mozilla/5.0"}"#));
    let s = rule(&format!(
        "  sel:\n    userAgent: '{ua}'\n    userIdentity.type: IAMUser\n  condition: sel"
    ));
    assert_eq!(s.index_stats().by("userIdentity.type"), 1);
    assert!(fires(
        &s,
        &format!(r#"{{"eventName":"X","userAgent":"{ua}","userIdentity":{{"type":"IAMUser"}}}}"#)
    ));
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

/// The shipped pack: the four mandatory rules and the CIS AWS Foundations
/// monitoring rules 4.1-4.15 (rules/cis/).
const SHIPPED: [&str; 19] = [
    "root_account_usage",
    "console_login_without_mfa",
    "kms_key_deletion",
    "security_group_opened_to_world",
    "cis_4_01_unauthorized_api_calls",
    "cis_4_02_console_login_without_mfa",
    "cis_4_03_root_usage",
    "cis_4_04_iam_policy_changes",
    "cis_4_05_cloudtrail_config_changes",
    "cis_4_06_console_auth_failures",
    "cis_4_07_cmk_disabled_or_deleted",
    "cis_4_08_s3_bucket_policy_changes",
    "cis_4_09_config_changes",
    "cis_4_10_security_group_changes",
    "cis_4_11_nacl_changes",
    "cis_4_12_network_gateway_changes",
    "cis_4_13_route_table_changes",
    "cis_4_14_vpc_changes",
    "cis_4_15_organizations_changes",
];

#[test]
fn shipped_rules_pass_their_embedded_tests() {
    let (set, errors) = RuleSet::embedded(&LoadOptions::default());
    assert!(errors.is_empty(), "{errors:?}");
    for name in SHIPPED {
        let r = set
            .rules()
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("{name} missing"));
        assert!(
            r.tests.true_positives.len() >= 2 && r.tests.true_negatives.len() >= 2,
            "{name} needs at least 2 true positives and 2 true negatives"
        );
    }
    let outcomes = run_rule_tests(&set);
    let failed: Vec<_> = outcomes.iter().filter(|o| !o.passed).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    // Every embedded case of every rule and correlation ran (none was skipped).
    let cases: usize = set
        .rules()
        .iter()
        .map(|r| r.tests.true_positives.len() + r.tests.true_negatives.len())
        .sum::<usize>()
        + set
            .correlations()
            .iter()
            .map(|c| c.tests.true_positives.len() + c.tests.true_negatives.len())
            .sum::<usize>();
    assert_eq!(outcomes.len(), cases);
    assert!(set.correlations().len() >= 11, "the shipped correlation pack loaded");
    for name in SHIPPED {
        assert!(outcomes.iter().any(|o| o.rule == name), "{name} ran no case");
    }
}

/// Regression: `include_dir!` does not tell cargo which folders it listed,
/// so a rule file added under rules/ was left out of the binary until
/// something else forced a rebuild (build.rs now watches rules/). The
/// embedded set must be exactly the rules folder on disk.
#[test]
fn embedded_rules_are_the_rules_folder_not_a_stale_build() {
    let mut embedded = Vec::new();
    collect_embedded(&EMBEDDED, &mut embedded);
    let mut embedded: Vec<(String, String)> = embedded
        .into_iter()
        .map(|(p, t)| (p.replace('\\', "/"), t.to_owned()))
        .collect();
    embedded.sort();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let mut on_disk: Vec<(String, String)> = walkdir::WalkDir::new(&root)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .filter(|e| matches!(e.path().extension().and_then(|x| x.to_str()), Some("yml" | "yaml")))
        .map(|e| {
            let rel = e
                .path()
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            (rel, std::fs::read_to_string(e.path()).unwrap())
        })
        .collect();
    on_disk.sort();
    let names = |v: &[(String, String)]| v.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    assert_eq!(names(&embedded), names(&on_disk), "rule files embedded vs on disk");
    for ((path, a), (_, b)) in embedded.iter().zip(&on_disk) {
        assert!(
            a == b,
            "{path}: the embedded copy differs from the file; the build is stale"
        );
    }
    assert!(
        on_disk.iter().any(|(p, _)| p.starts_with("cis/")),
        "{:?}",
        names(&on_disk)
    );
}

// ------------------------------------------------------------------
// The detection language, construct by construct (issue 6): every modifier
// and condition form, with one event that must fire and one near miss.

fn rule_with(detection: &str, placeholders: &[(&str, &[&str])]) -> RuleSet {
    let mut opts = LoadOptions::default();
    for (k, vs) in placeholders {
        opts.placeholders
            .insert((*k).to_owned(), vs.iter().map(|v| (*v).to_owned()).collect());
    }
    let yaml =
        format!("title: t\nname: t\nlogsource: {{product: aws, service: cloudtrail}}\ndetection:\n{detection}\n");
    let (s, errs) = RuleSet::compile([("t.yml".to_string(), yaml.as_str())], &opts);
    assert!(errs.is_empty(), "{errs:?}");
    s
}

#[test]
fn json_typing_quoted_rule_values_match_numbers_and_booleans() {
    let s = rule("  sel:\n    p.port: '443'\n    p.public: 'true'\n  condition: sel");
    assert!(fires(&s, r#"{"eventName":"X","p":{"port":443,"public":true}}"#));
    assert!(!fires(&s, r#"{"eventName":"X","p":{"port":443,"public":false}}"#));
    assert!(!fires(&s, r#"{"eventName":"X","p":{"port":44,"public":true}}"#));
    // Unquoted YAML scalars match the string forms in records too.
    let s = rule("  sel:\n    p.port: 443\n    p.public: true\n  condition: sel");
    assert!(fires(&s, r#"{"eventName":"X","p":{"port":"443","public":"True"}}"#));
    assert!(!fires(&s, r#"{"eventName":"X","p":{"port":"443","public":"yes"}}"#));
}

#[test]
fn float_record_values_match_as_written() {
    // Regression: record floats were formatted with Display (2.0 -> "2"),
    // so a rule value written `2.0` never matched the record value `2.0`.
    let s = rule("  sel:\n    p.ratio: 2.0\n  condition: sel");
    assert!(fires(&s, r#"{"eventName":"X","p":{"ratio":2.0}}"#));
    assert!(!fires(&s, r#"{"eventName":"X","p":{"ratio":2.5}}"#));
    let s = rule("  sel:\n    p.ratio: '1.5'\n  condition: sel");
    assert!(fires(&s, r#"{"eventName":"X","p":{"ratio":1.5}}"#));
    assert!(!fires(&s, r#"{"eventName":"X","p":{"ratio":15}}"#));
}

#[test]
fn numeric_rule_value_matches_a_float_record_number() {
    // Regression: an unquoted YAML number is a number; `2` must equal the
    // record's `2.0` even though their texts differ.
    let s = rule("  sel:\n    p.n: 2\n  condition: sel");
    assert!(fires(&s, r#"{"eventName":"X","p":{"n":2.0}}"#));
    assert!(fires(&s, r#"{"eventName":"X","p":{"n":2}}"#));
    assert!(fires(&s, r#"{"eventName":"X","p":{"n":"2"}}"#));
    assert!(!fires(&s, r#"{"eventName":"X","p":{"n":2.01}}"#));
    assert!(
        !fires(&s, r#"{"eventName":"X","p":{"n":"2.0"}}"#),
        "strings compare as text"
    );
}

#[test]
fn dotted_path_crosses_arrays_at_every_level() {
    let s =
        rule("  sel:\n    requestParameters.ipPermissions.items.ipRanges.items.cidrIp: 0.0.0.0/0\n  condition: sel");
    let hit = r#"{"eventName":"X","requestParameters":{"ipPermissions":{"items":[
        {"ipRanges":{"items":[{"cidrIp":"192.0.2.0/24"}]}},
        {"ipRanges":{"items":[{"cidrIp":"198.51.100.7/32"},{"cidrIp":"0.0.0.0/0"}]}}]}}}"#;
    assert!(fires(&s, hit));
    let miss = r#"{"eventName":"X","requestParameters":{"ipPermissions":{"items":[
        {"ipRanges":{"items":[{"cidrIp":"192.0.2.0/24"}]}},
        {"ipv6Ranges":{"items":[{"cidrIp":"0.0.0.0/0"}]}}]}}}"#;
    assert!(!fires(&s, miss));
    // Arrays of arrays at the leaf.
    let s = rule("  sel:\n    a.b: x\n  condition: sel");
    assert!(fires(&s, r#"{"eventName":"X","a":[{"b":[["y"],["x"]]}]}"#));
    assert!(!fires(&s, r#"{"eventName":"X","a":[{"b":[["y"],["z"]]}]}"#));
}

#[test]
fn modifiers_on_array_and_object_fields_search_their_values() {
    let s = rule(
        "  sel:\n    requestParameters.layers|startswith: 'arn:aws:lambda:us-east-1:444455556666:'\n  condition: sel",
    );
    assert!(fires(
        &s,
        r#"{"eventName":"X","requestParameters":{"layers":["arn:aws:lambda:us-east-1:111122223333:layer:a:1","arn:aws:lambda:us-east-1:444455556666:layer:b:2"]}}"#
    ));
    assert!(!fires(
        &s,
        r#"{"eventName":"X","requestParameters":{"layers":["arn:aws:lambda:us-east-1:111122223333:layer:a:1"]}}"#
    ));
    // Plain equality on an object searches its scalar values, at any depth.
    let s = rule("  sel:\n    responseElements|endswith: '-failed'\n  condition: sel");
    assert!(fires(
        &s,
        r#"{"eventName":"X","responseElements":{"task":{"states":[{"s":"ok"},{"s":"export-failed"}]}}}"#
    ));
    assert!(!fires(
        &s,
        r#"{"eventName":"X","responseElements":{"export-failed":"ok"}}"#
    ));
}

#[test]
fn startswith_endswith_and_contains_anchor_as_named() {
    let s = rule("  sel:\n    userAgent|startswith: 'aws-cli/'\n  condition: sel");
    assert!(fires(&s, r#"{"eventName":"X","userAgent":"AWS-CLI/2.15 Python/3.11"}"#));
    assert!(!fires(&s, r#"{"eventName":"X","userAgent":"Boto3 aws-cli/2.15"}"#));
    let s = rule("  sel:\n    userAgent|endswith: 'exec-env/CloudShell'\n  condition: sel");
    assert!(fires(
        &s,
        r#"{"eventName":"X","userAgent":"aws-cli/2.15 exec-env/CloudShell"}"#
    ));
    assert!(!fires(
        &s,
        r#"{"eventName":"X","userAgent":"aws-cli/2.15 exec-env/CloudShell x"}"#
    ));
    let s = rule("  sel:\n    userAgent|contains: [S3 Browser, Cyberduck]\n  condition: sel");
    assert!(fires(&s, r#"{"eventName":"X","userAgent":"x cyberDUCK/8"}"#));
    assert!(!fires(&s, r#"{"eventName":"X","userAgent":"S3Browser"}"#));
}

#[test]
fn re_sub_modifiers_i_m_s() {
    let body = r#"{"eventName":"X","p":{"script":"line1\nLINE2"}}"#;
    let s = rule("  sel:\n    p.script|re: '^LINE2$'\n  condition: sel");
    assert!(!fires(&s, body), "without m, ^ and $ anchor the whole text");
    let s = rule("  sel:\n    p.script|re|m: '^LINE2$'\n  condition: sel");
    assert!(fires(&s, body));
    let s = rule("  sel:\n    p.script|re|m: '^line2$'\n  condition: sel");
    assert!(!fires(&s, body), "re is case-sensitive without i");
    let s = rule("  sel:\n    p.script|re|i|m: '^line2$'\n  condition: sel");
    assert!(fires(&s, body));
    let s = rule("  sel:\n    p.script|re: 'line1.LINE2'\n  condition: sel");
    assert!(!fires(&s, body), "without s, `.` does not cross a newline");
    let s = rule("  sel:\n    p.script|re|s: 'line1.LINE2'\n  condition: sel");
    assert!(fires(&s, body));
    let e = load_err(
        "title: t\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    a|contains|i: x\n  condition: sel\n",
    );
    assert!(e.contains("only go with `re`"), "{e}");
    let e = load_err(
        "title: t\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    a|re: '(x'\n  condition: sel\n",
    );
    assert!(
        e.contains("invalid regular expression") && e.contains("bad.yml:5:"),
        "{e}"
    );
}

#[test]
fn cased_makes_matching_case_sensitive() {
    let s = rule("  sel:\n    eventName|cased: ConsoleLogin\n  condition: sel");
    assert!(fires(&s, r#"{"eventName":"ConsoleLogin"}"#));
    assert!(!fires(&s, r#"{"eventName":"consolelogin"}"#));
    let s = rule("  sel:\n    userAgent|contains|cased: 'TruffleHog'\n  condition: sel");
    assert!(fires(&s, r#"{"eventName":"X","userAgent":"x TruffleHog y"}"#));
    assert!(!fires(&s, r#"{"eventName":"X","userAgent":"x trufflehog y"}"#));
}

#[test]
fn wildcards_and_their_escapes() {
    let s = rule("  sel:\n    p.v: 'pre?ix*'\n  condition: sel");
    assert!(fires(&s, r#"{"eventName":"X","p":{"v":"PREFIX-anything"}}"#));
    assert!(!fires(&s, r#"{"eventName":"X","p":{"v":"preix"}}"#));
    // `\*` and `\?` are literal; `\\` is one backslash; other backslashes stay.
    let s = rule("  sel:\n    p.v: 'a\\*b\\?'\n  condition: sel");
    assert!(fires(&s, r#"{"eventName":"X","p":{"v":"a*b?"}}"#));
    assert!(!fires(&s, r#"{"eventName":"X","p":{"v":"axxb?"}}"#));
    assert!(!fires(&s, r#"{"eventName":"X","p":{"v":"a*bc"}}"#));
    let s = rule("  sel:\n    p.v: 'C:\\Temp\\\\*'\n  condition: sel");
    assert!(fires(&s, r#"{"eventName":"X","p":{"v":"c:\\temp\\evil.exe"}}"#));
    assert!(!fires(&s, r#"{"eventName":"X","p":{"v":"c:\\tempo"}}"#));
    let s = rule("  sel:\n    p.v|contains: '\\*'\n  condition: sel");
    assert!(fires(&s, r#"{"eventName":"X","p":{"v":"arn:aws:s3:::b/*"}}"#));
    assert!(!fires(&s, r#"{"eventName":"X","p":{"v":"arn:aws:s3:::b/k"}}"#));
}

#[test]
fn null_in_value_lists_and_exists() {
    let s = rule("  sel:\n    eventName: X\n    errorCode: [null, Success]\n  condition: sel");
    assert!(fires(&s, r#"{"eventName":"X"}"#));
    assert!(fires(&s, r#"{"eventName":"X","errorCode":"success"}"#));
    assert!(!fires(&s, r#"{"eventName":"X","errorCode":"AccessDenied"}"#));
    // `null` is not "contains a null somewhere": an object is not null.
    let s = rule("  sel:\n    eventName: X\n    requestParameters: null\n  condition: sel");
    assert!(fires(&s, r#"{"eventName":"X","requestParameters":null}"#));
    assert!(!fires(&s, r#"{"eventName":"X","requestParameters":{"a":null}}"#));
    let s = rule("  sel:\n    eventName: X\n    errorCode|exists: false\n  condition: sel");
    assert!(fires(&s, r#"{"eventName":"X"}"#));
    assert!(!fires(&s, r#"{"eventName":"X","errorCode":"AccessDenied"}"#));
}

#[test]
fn numeric_comparisons_lt_lte_gt_gte() {
    for (op, val, yes, no) in [("lt", 7, 6, 7), ("lte", 7, 7, 8), ("gt", 7, 8, 7), ("gte", 7, 7, 6)] {
        let s = rule(&format!("  sel:\n    p.n|{op}: {val}\n  condition: sel"));
        assert!(
            fires(&s, &format!(r#"{{"eventName":"X","p":{{"n":{yes}}}}}"#)),
            "{op} {yes}"
        );
        assert!(
            !fires(&s, &format!(r#"{{"eventName":"X","p":{{"n":{no}}}}}"#)),
            "{op} {no}"
        );
        assert!(!fires(&s, r#"{"eventName":"X","p":{"n":"many"}}"#), "{op} on text");
    }
    let s = rule("  sel:\n    p.n|gte: '1.5'\n  condition: sel");
    assert!(fires(&s, r#"{"eventName":"X","p":{"n":"1.5"}}"#));
    assert!(!fires(&s, r#"{"eventName":"X","p":{"n":1.4}}"#));
}

#[test]
fn cidr_handles_ipv4_and_ipv6() {
    let s = rule("  sel:\n    sourceIPAddress|cidr: [192.0.2.0/24, '2001:db8::/32']\n  condition: sel");
    assert!(fires(&s, r#"{"eventName":"X","sourceIPAddress":"192.0.2.77"}"#));
    assert!(fires(&s, r#"{"eventName":"X","sourceIPAddress":"2001:db8:1::5"}"#));
    assert!(!fires(&s, r#"{"eventName":"X","sourceIPAddress":"198.51.100.77"}"#));
    assert!(!fires(&s, r#"{"eventName":"X","sourceIPAddress":"AWS Internal"}"#));
}

#[test]
fn base64_and_base64offset() {
    // "arn:aws:iam" base64-encoded: YXJuOmF3czppYW0=
    let s = rule("  sel:\n    p.blob|base64: 'arn:aws:iam'\n  condition: sel");
    assert!(fires(&s, r#"{"eventName":"X","p":{"blob":"YXJuOmF3czppYW0="}}"#));
    assert!(
        !fires(&s, r#"{"eventName":"X","p":{"blob":"yxjuomf3czppyw0="}}"#),
        "base64 is cased"
    );
    // "#!/bin/bash\ncurl http://169.254.169.254" as user data, searched for
    // `curl` at whatever offset it lands on.
    let s = rule("  sel:\n    p.userData|base64offset|contains: 'curl'\n  condition: sel");
    for data in [
        b"curl x".as_slice(),
        b" curl x",
        b"  curl x",
        b"#!/bin/bash\ncurl http://169.254.169.254",
    ] {
        let enc = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, data);
        assert!(
            fires(&s, &format!(r#"{{"eventName":"X","p":{{"userData":"{enc}"}}}}"#)),
            "{data:?}"
        );
    }
    let enc = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        b"#!/bin/bash\nwget http://x",
    );
    assert!(!fires(
        &s,
        &format!(r#"{{"eventName":"X","p":{{"userData":"{enc}"}}}}"#)
    ));
}

#[test]
fn windash_accepts_every_dash_form() {
    let s = rule("  sel:\n    p.cmd|windash|contains: ' -enc '\n  condition: sel");
    for cmd in [
        "x -enc y",
        "x /enc y",
        "x \u{2013}enc y",
        "x \u{2014}enc y",
        "x \u{2015}enc y",
    ] {
        assert!(
            fires(&s, &format!(r#"{{"eventName":"X","p":{{"cmd":"{cmd}"}}}}"#)),
            "{cmd}"
        );
    }
    assert!(!fires(&s, r#"{"eventName":"X","p":{"cmd":"x +enc y"}}"#));
    assert!(!fires(&s, r#"{"eventName":"X","p":{"cmd":"x enc y"}}"#));
}

#[test]
fn windash_treats_slash_and_non_space_word_starts() {
    // Regression: only a `-` after a space was varied. pySigma varies `-`
    // and `/` wherever they start a word (`\B[-/]\b`), e.g. after `(` or `"`.
    let s = rule("  sel:\n    p.cmd|windash|contains: '/c'\n  condition: sel");
    assert!(fires(&s, r#"{"eventName":"X","p":{"cmd":"cmd.exe -c whoami"}}"#));
    assert!(fires(&s, r#"{"eventName":"X","p":{"cmd":"cmd.exe /c whoami"}}"#));
    let s = rule("  sel:\n    p.cmd|windash|contains: '(-x'\n  condition: sel");
    assert!(fires(&s, r#"{"eventName":"X","p":{"cmd":"f(/x)"}}"#));
    // A dash inside a word is not a switch.
    let s = rule("  sel:\n    p.cmd|windash: 'a-b'\n  condition: sel");
    assert!(!fires(&s, r#"{"eventName":"X","p":{"cmd":"a/b"}}"#));
    assert!(fires(&s, r#"{"eventName":"X","p":{"cmd":"a-b"}}"#));
}

#[test]
fn expand_substitutes_placeholders_from_configuration() {
    let s = rule_with(
        "  sel:\n    eventName: ConsoleLogin\n  filter:\n    sourceIPAddress|expand: '%office_ips%'\n  condition: sel and not filter",
        &[("office_ips", &["192.0.2.*", "198.51.100.10"])],
    );
    assert!(fires(
        &s,
        r#"{"eventName":"ConsoleLogin","sourceIPAddress":"203.0.113.9"}"#
    ));
    assert!(!fires(
        &s,
        r#"{"eventName":"ConsoleLogin","sourceIPAddress":"192.0.2.44"}"#
    ));
    assert!(!fires(
        &s,
        r#"{"eventName":"ConsoleLogin","sourceIPAddress":"198.51.100.10"}"#
    ));
    let e = load_err(
        "title: t\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    a|expand: '%office_ips%'\n  condition: sel\n",
    );
    assert!(
        e.starts_with("bad.yml:5:") && e.contains("%office_ips%") && e.contains("--placeholders"),
        "{e}"
    );
}

#[test]
fn expand_with_cidr_and_re_substitutes_placeholders() {
    // Regression: with `re`, `cidr` or `fieldref`, `expand` was silently
    // ignored: the regex `%x%` was compiled literally.
    let ph: &[(&str, &[&str])] = &[
        ("nets", &["192.0.2.0/24", "2001:db8::/32"]),
        ("ua", &["^Boto3/", "^aws-cli/"]),
    ];
    let s = rule_with(
        "  sel:\n    sourceIPAddress|expand|cidr: '%nets%'\n  condition: sel",
        ph,
    );
    assert!(fires(&s, r#"{"eventName":"X","sourceIPAddress":"2001:db8::1"}"#));
    assert!(!fires(&s, r#"{"eventName":"X","sourceIPAddress":"203.0.113.1"}"#));
    let s = rule_with("  sel:\n    userAgent|expand|re: '%ua%'\n  condition: sel", ph);
    assert!(fires(&s, r#"{"eventName":"X","userAgent":"aws-cli/2.0"}"#));
    assert!(!fires(&s, r#"{"eventName":"X","userAgent":"x aws-cli/2.0"}"#));
}

#[test]
fn fieldref_cased_is_applied_not_ignored() {
    // Regression: `|cased` was accepted with `fieldref` and then ignored.
    let s = rule("  sel:\n    userIdentity.userName|fieldref|cased: requestParameters.userName\n  condition: sel");
    let ev = |a: &str, b: &str| {
        format!(r#"{{"eventName":"X","userIdentity":{{"userName":"{a}"}},"requestParameters":{{"userName":"{b}"}}}}"#)
    };
    assert!(fires(&s, &ev("Alice", "Alice")));
    assert!(!fires(&s, &ev("Alice", "alice")));
    // Without `cased`, references compare like other Sigma strings.
    let s = rule("  sel:\n    userIdentity.userName|fieldref: requestParameters.userName\n  condition: sel");
    assert!(fires(&s, &ev("Alice", "alice")));
    // A missing referenced field matches nothing.
    assert!(!fires(&s, r#"{"eventName":"X","userIdentity":{"userName":"a"}}"#));
}

#[test]
fn modifiers_that_do_not_apply_are_load_errors() {
    let head = "title: t\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n";
    for (line, want) in [
        ("    a|cidr|cased: 10.0.0.0/8", "`cased`"),
        ("    a|contains|startswith: x", "only one of"),
        ("    a|re|contains: x", "cannot be combined"),
        ("    a|exists: maybe", "true or false"),
        ("    a|lt: many", "takes a number"),
        ("    a|cidr: 10.0.0.300/8", "not a CIDR"),
        ("    a|base64offset: x", "contains"),
        ("    a|utf16le|base64: x", "not supported"),
        ("    a: []", "empty value list"),
    ] {
        let e = load_err(&format!("{head}{line}\n  condition: sel\n"));
        assert!(e.contains(want) && e.starts_with("bad.yml:5:"), "{line}: {e}");
    }
}

#[test]
fn empty_search_map_is_a_load_error() {
    // Regression: `selection: {}` compiled to an empty AND, which matched
    // every record.
    let e = load_err(
        "title: t\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  selection: {}\n  condition: selection\n",
    );
    assert!(e.contains("selection") && e.contains("empty"), "{e}");
}

#[test]
fn parentheses_and_every_quantifier_form() {
    let det = "  sel_a:\n    eventName: A\n  sel_b:\n    eventName: B\n  filter:\n    user: root\n  _hidden:\n    user: nobody\n";
    let s = rule(&format!("{det}  condition: (sel_a or sel_b) and not filter"));
    assert!(fires(&s, r#"{"eventName":"B","user":"alice"}"#));
    assert!(!fires(&s, r#"{"eventName":"B","user":"root"}"#));
    // Without the parentheses, `and` binds tighter: A fires even for root.
    let s = rule(&format!("{det}  condition: sel_a or sel_b and not filter"));
    assert!(fires(&s, r#"{"eventName":"A","user":"root"}"#));
    assert!(!fires(&s, r#"{"eventName":"B","user":"root"}"#));
    let s = rule(&format!("{det}  condition: 1 of sel_* and not filter"));
    assert!(fires(&s, r#"{"eventName":"A","user":"bob"}"#));
    assert!(!fires(&s, r#"{"eventName":"C","user":"bob"}"#));
    let s = rule(&format!("{det}  condition: all of sel_*"));
    assert!(!fires(&s, r#"{"eventName":"A"}"#), "A and B cannot both hold");
    let s = rule("  s1:\n    eventName: A\n  s2:\n    user: bob\n  _x:\n    user: nobody\n  condition: all of them");
    assert!(fires(&s, r#"{"eventName":"A","user":"bob"}"#), "`them` skips `_x`");
    assert!(!fires(&s, r#"{"eventName":"A","user":"carol"}"#));
    let s = rule(&format!("{det}  condition: 1 of them"));
    assert!(fires(&s, r#"{"eventName":"Z","user":"root"}"#));
    assert!(
        !fires(&s, r#"{"eventName":"Z","user":"nobody"}"#),
        "`them` skips `_hidden`"
    );
    let s = rule(&format!("{det}  condition: not 1 of them"));
    assert!(fires(&s, r#"{"eventName":"Z","user":"nobody"}"#));
}

#[test]
fn keywords_with_all_and_cased() {
    let s = rule("  keywords:\n    '|all':\n      - 'stratus'\n      - 'attack'\n  condition: keywords");
    assert!(fires(
        &s,
        r#"{"eventName":"X","userAgent":"stratus-red-team","p":{"q":["x-ATTACK-y"]}}"#
    ));
    assert!(!fires(&s, r#"{"eventName":"X","userAgent":"stratus-red-team"}"#));
    let s = rule("  keywords:\n    '|cased':\n      - 'Stratus'\n  condition: keywords");
    assert!(fires(&s, r#"{"eventName":"X","userAgent":"Stratus"}"#));
    assert!(!fires(&s, r#"{"eventName":"X","userAgent":"stratus"}"#));
    // Keywords see numbers and booleans as text too.
    let s = rule("  keywords:\n    - 31337\n  condition: keywords");
    assert!(fires(&s, r#"{"eventName":"X","p":{"port":31337}}"#));
    assert!(!fires(&s, r#"{"eventName":"X","p":{"port":3133}}"#));
}

#[test]
fn keyword_contains_modifier_is_accepted() {
    // Regression: the error said keywords support `contains`, yet
    // `'|contains'` was rejected. Keywords are substring searches already.
    let s = rule("  keywords:\n    '|contains':\n      - 'red-team'\n  condition: keywords");
    assert!(fires(&s, r#"{"eventName":"X","userAgent":"stratus-red-team"}"#));
    assert!(!fires(&s, r#"{"eventName":"X","userAgent":"stratus"}"#));
}

#[test]
fn keyword_string_modifiers_are_applied_not_ignored() {
    // Regression: `base64` and `windash` on keywords were accepted and then
    // ignored, so the keyword matched its plain text instead.
    let s = rule("  keywords:\n    '|base64':\n      - 'arn:aws:iam'\n  condition: keywords");
    assert!(fires(&s, r#"{"eventName":"X","p":{"blob":"xYXJuOmF3czppYW0=x"}}"#));
    assert!(!fires(
        &s,
        r#"{"eventName":"X","p":{"blob":"arn:aws:iam::111122223333:root"}}"#
    ));
    let s = rule("  keywords:\n    '|windash':\n      - ' -enc '\n  condition: keywords");
    assert!(fires(&s, r#"{"eventName":"X","p":{"cmd":"powershell /enc AAA"}}"#));
    let e = load_err(
        "title: t\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  keywords:\n    '|expand':\n      - '%x%'\n  condition: keywords\n",
    );
    assert!(e.contains("expand"), "{e}");
}

#[test]
fn contains_all_requires_each_value_not_each_alternative() {
    // Regression: `base64offset` (3 encodings per value) and `windash`
    // variants were flattened into the value list, so `|all` demanded every
    // encoding of every value at once and never matched.
    let s = rule("  sel:\n    p.userData|base64offset|contains|all: ['curl', 'wget']\n  condition: sel");
    let enc = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        b"#!/bin/sh\ncurl -o x; wget y",
    );
    assert!(fires(&s, &format!(r#"{{"eventName":"X","p":{{"userData":"{enc}"}}}}"#)));
    let enc = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b"#!/bin/sh\ncurl -o x");
    assert!(!fires(
        &s,
        &format!(r#"{{"eventName":"X","p":{{"userData":"{enc}"}}}}"#)
    ));
    let s = rule_with(
        "  sel:\n    p.cmd|expand|contains|all: ['%tool%', 'http']\n  condition: sel",
        &[("tool", &["curl", "wget"])],
    );
    assert!(fires(&s, r#"{"eventName":"X","p":{"cmd":"wget http://x"}}"#));
    assert!(!fires(&s, r#"{"eventName":"X","p":{"cmd":"wget ftp://x"}}"#));
}

#[test]
fn error_line_points_at_the_key_not_an_earlier_mention() {
    // Regression: the line of a construct was the first line *containing*
    // its text, so the field `a` was reported on the `logsource` line.
    let e = load_err(
        "title: t\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    eventName: x\n    a: []\n  condition: sel\n",
    );
    assert!(e.starts_with("bad.yml:6:") && e.contains("empty value list"), "{e}");
}

#[test]
fn expanded_event_names_still_dispatch_by_index() {
    let s = rule_with(
        "  sel:\n    eventName|expand: '%watched%'\n  condition: sel",
        &[("watched", &["DeleteTrail", "StopLogging"])],
    );
    assert_eq!(stats(&s), (1, 0, 0));
    assert!(fires(&s, r#"{"eventName":"StopLogging"}"#));
    assert!(!fires(&s, r#"{"eventName":"StartLogging"}"#));
}

#[test]
fn list_of_maps_is_an_or_of_ands() {
    let s = rule(
        "  sel:\n    eventName: X\n  filter:\n    - eventSource: ssm.amazonaws.com\n    - sourceIPAddress: AWS Internal\n      userAgent: AWS Internal\n  condition: sel and not filter",
    );
    assert!(!fires(
        &s,
        r#"{"eventName":"X","eventSource":"ssm.amazonaws.com","sourceIPAddress":"192.0.2.1"}"#
    ));
    assert!(!fires(
        &s,
        r#"{"eventName":"X","eventSource":"s3.amazonaws.com","sourceIPAddress":"AWS Internal","userAgent":"AWS Internal"}"#
    ));
    // The second map needs both of its fields.
    assert!(fires(
        &s,
        r#"{"eventName":"X","eventSource":"s3.amazonaws.com","sourceIPAddress":"AWS Internal","userAgent":"aws-cli"}"#
    ));
}

#[test]
fn condition_list_is_an_or() {
    let s = rule("  a:\n    eventName: A\n  b:\n    eventName: B\n  condition:\n    - a\n    - b");
    assert!(fires(&s, r#"{"eventName":"A"}"#));
    assert!(fires(&s, r#"{"eventName":"B"}"#));
    assert!(!fires(&s, r#"{"eventName":"C"}"#));
}

#[test]
fn dispatch_keys_lowercase_ascii_letters_only_and_overlong_values_have_none() {
    let mut buf = [0u8; 128];
    assert_eq!(super::lower("ConsoleLogin", &mut buf), Some(&b"consolelogin"[..]));
    // Other bytes stay as they are: such a value finds no (ASCII) key.
    assert_eq!(super::lower("LÖschen-X", &mut buf), Some("lÖschen-x".as_bytes()));
    assert_eq!(
        super::lower(&"A".repeat(128), &mut buf),
        Some("a".repeat(128).as_bytes())
    );
    assert_eq!(super::lower(&"A".repeat(129), &mut buf), None);
}
