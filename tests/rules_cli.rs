//! `trailwatch rules ...` and rule loading through the binary.

mod common;

use common::*;

/// (rules, correlations, embedded test cases) in the shipped rules/,
/// counted from the YAML itself.
fn shipped_counts() -> (usize, usize, usize) {
    let (mut rules, mut corrs, mut cases) = (0, 0, 0);
    for (_, v) in shipped_rule_docs() {
        if v.get("correlation").is_some() {
            corrs += 1;
        } else {
            rules += 1;
        }
        if let Some(t) = v.get("tests") {
            for k in ["true_positives", "true_negatives"] {
                cases += t.get(k).and_then(|x| x.as_sequence()).map_or(0, |s| s.len());
            }
        }
    }
    (rules, corrs, cases)
}

#[test]
fn rules_test_runs_every_embedded_case() {
    let out = run(bin().args(["rules", "test"]));
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    for name in [
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
        "failed_console_logins_from_one_ip",
        "access_denied_burst_by_principal",
        "access_key_then_admin_policy",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(name) && l.ends_with("ok")),
            "{name}: {text}"
        );
    }
    // Every rule is tested, directly or through the correlation it feeds.
    for l in text.lines().filter(|l| l.contains(" cases ")) {
        assert!(
            l.ends_with(" ok") || l.ends_with("tested through its correlation"),
            "{l}"
        );
    }
    let (rules, corrs, cases) = shipped_counts();
    assert!(
        text.contains(&format!(
            "{} rules, {cases} cases, 0 failed, 0 load errors",
            rules + corrs
        )),
        "{text}"
    );
}

#[test]
fn rules_test_reports_a_failing_case() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wrong.yml"),
        "title: wrong\nname: wrong\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    eventName: A\n  condition: sel\n\
         tests:\n  true_positives:\n    - {eventName: B, eventSource: x}\n  true_negatives:\n    - {eventName: C, eventSource: x}\n",
    )
    .unwrap();
    let out = run(bin().args(["rules", "test"]).arg(dir.path()));
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("wrong") && text.contains("FAILED") && text.contains("true_positive #0: rule did not fire"),
        "{text}"
    );
}

#[test]
fn sigmahq_cloudtrail_rules_all_load() {
    let out = run(bin()
        .args(["rules", "lint"])
        .arg(shared().join("sigma/rules/cloud/aws/cloudtrail")));
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("57 loaded, 0 errors"), "{}", stdout(&out));
}

#[test]
fn lint_reports_every_problem_in_one_pass() {
    let dir = tempfile::tempdir().unwrap();
    let head = "logsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n";
    std::fs::write(
        dir.path().join("a.yml"),
        format!("title: a\n{head}    eventName|nosuch: X\n  condition: sel\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.yml"),
        format!("title: b\n{head}    eventName: X\n  condition: sel and nope\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("c.yml"),
        format!("title: c\n{head}    eventName: X\n  condition: sel\n"),
    )
    .unwrap();
    let out = run(bin().args(["rules", "lint"]).arg(dir.path()));
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("a.yml:5:") && text.contains("unknown modifier `nosuch`"),
        "{text}"
    );
    assert!(text.contains("b.yml:6:") && text.contains("`nope`"), "{text}");
    assert!(text.contains("1 loaded, 2 errors"), "{text}");

    // A scan with such a rule set does not start.
    let data = tempfile::tempdir().unwrap();
    let scan = run(bin()
        .args(["scan", "--rules"])
        .arg(dir.path())
        .arg("--data-dir")
        .arg(data.path())
        .arg(repo().join("sample-logs")));
    assert_eq!(scan.status.code(), Some(2));
    assert!(stderr(&scan).contains("a.yml:5:"), "{}", stderr(&scan));
}

#[test]
fn rules_list_shows_fields_and_dispatch() {
    let out = run(bin().args(["rules", "list"]));
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(
        text.contains("kms_key_deletion") && text.contains("eventSource, eventName, errorCode"),
        "{text}"
    );
    assert!(
        text.contains("event_count of [console_login_failure] by [sourceIPAddress] within 5m (>= 5)"),
        "{text}"
    );
    assert!(
        text.contains(
            "temporal_ordered of [access_key_created_for_another_user, administrator_policy_attached] by [userIdentity.arn] within 15m (>= 2)"
        ),
        "{text}"
    );
    let (rules, corrs, _) = shipped_counts();
    let err = stderr(&out);
    assert!(err.contains(&format!("{rules} rules: ")), "{err}");
    assert!(err.contains(&format!("; {corrs} correlations")), "{err}");
}

#[test]
fn scan_csv_output_has_a_header_and_one_row_per_alert() {
    let data = tempfile::tempdir().unwrap();
    let out = run(bin()
        .args(["scan", "--format", "csv", "--data-dir"])
        .arg(data.path())
        .arg(repo().join("sample-logs")));
    assert!(out.status.success());
    let text = stdout(&out);
    let mut lines = text.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("rule,rule_id,title,severity,event_id,event_time")
    );
    assert_eq!(lines.count() as i64, sample_alert_count());
}

fn sigmahq() -> std::path::PathBuf {
    shared().join("sigma/rules/cloud/aws/cloudtrail")
}

fn placeholder_rules() -> std::path::PathBuf {
    shared().join("sigma/rules-placeholder/cloud/aws/cloudtrail")
}

/// "N rules: ..." from the summary `rules list` writes on stderr.
fn listed_rule_count(out: &std::process::Output) -> usize {
    let err = stderr(out);
    err.lines()
        .find_map(|l| l.split_once(" rules: ").and_then(|(n, _)| n.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no rule count in {err}"))
}

#[test]
fn rules_list_prints_name_id_level_status_and_fields_of_a_folder() {
    let out = run(bin().args(["rules", "list", "--rules"]).arg(sigmahq()));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let header: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "ID", "LEVEL", "STATUS", "FIELDS"]);
    assert_eq!(text.lines().count(), 1 + 57, "{text}");
    assert_eq!(listed_rule_count(&out), 57);
    let row = |name: &str| -> String {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} not listed:\n{text}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    // Each row: name, id, level and status from the YAML, then the fields
    // in order of appearance, including the field a `fieldref` reads.
    assert_eq!(
        row("aws_update_login_profile"),
        "aws_update_login_profile 055fb148-60f8-462d-ad16-26926ce050f1 high test eventSource, eventName, userIdentity.arn, requestParameters.userName"
    );
    assert_eq!(
        row("aws_cloudtrail_imds_malicious_usage"),
        "aws_cloudtrail_imds_malicious_usage 352a918a-34d8-4882-8470-44830c507aa3 high test userIdentity.arn, eventSource, eventName, sourceIPAddress"
    );
    assert_eq!(
        row("aws_ecs_task_definition_cred_endpoint_query"),
        "aws_ecs_task_definition_cred_endpoint_query b94bf91e-c2bf-4047-9c43-c6810f43baad medium test eventSource, eventName, requestParameters.containerDefinitions.command"
    );
}

#[test]
fn rules_is_repeatable_and_loads_every_folder_into_one_set() {
    let builtin = listed_rule_count(&run(bin().args(["rules", "list"])));
    let both = run(bin()
        .args(["rules", "list", "--rules"])
        .arg(repo().join("rules"))
        .arg("--rules")
        .arg(sigmahq()));
    assert_eq!(both.status.code(), Some(0), "{}", stderr(&both));
    assert_eq!(listed_rule_count(&both), builtin + 57);
    let text = stdout(&both);
    assert!(
        text.contains("root_account_usage") && text.contains("aws_root_account_usage"),
        "{text}"
    );
    // The same through TRAILWATCH_RULES, colon- or comma-separated.
    for sep in [":", ","] {
        let joined = format!("{}{sep}{}", repo().join("rules").display(), sigmahq().display());
        let env = run(bin().args(["rules", "list"]).env("TRAILWATCH_RULES", &joined));
        assert_eq!(listed_rule_count(&env), builtin + 57, "TRAILWATCH_RULES={joined}");
    }
    // Flags win over the environment.
    let flag = run(bin()
        .args(["rules", "list", "--rules"])
        .arg(sigmahq())
        .env("TRAILWATCH_RULES", repo().join("rules")));
    assert_eq!(listed_rule_count(&flag), 57);
}

#[test]
fn a_rule_name_defined_in_two_folders_is_an_error_naming_both_files() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let rule = "title: t\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    eventName: X\n  condition: sel\n";
    std::fs::write(a.path().join("same_name.yml"), rule).unwrap();
    std::fs::write(b.path().join("same_name.yml"), rule).unwrap();
    let data = tempfile::tempdir().unwrap();
    let out = run(bin()
        .args(["scan", "--rules"])
        .arg(a.path())
        .arg("--rules")
        .arg(b.path())
        .arg("--data-dir")
        .arg(data.path())
        .arg(repo().join("sample-logs")));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    let (fa, fb) = (a.path().join("same_name.yml"), b.path().join("same_name.yml"));
    assert!(
        err.contains(&format!(
            "rule name `same_name` is defined twice: {} and {}",
            fa.display(),
            fb.display()
        )),
        "{err}"
    );
    assert!(!data.path().join("alerts.db").exists(), "nothing is scanned");
    // lint reports it too, as one error.
    let lint = run(bin().args(["rules", "lint"]).arg(a.path()).arg(b.path()));
    assert_eq!(lint.status.code(), Some(1));
    assert!(stdout(&lint).contains("1 loaded, 1 errors"), "{}", stdout(&lint));
}

const PLACEHOLDER_RULE: &str = "aws_cloudtrail_console_login_success_from_susp_locations";

/// A successful console login, enriched (as the rule expects) with the
/// source country and IP in `src_country` / `src_ip`.
fn login(id: &str, result: &str, country: &str, ip: &str) -> String {
    format!(
        r#"{{"eventVersion":"1.09","userIdentity":{{"type":"IAMUser","principalId":"AIDAEXAMPLEALICE00001","arn":"arn:aws:iam::111122223333:user/alice","accountId":"111122223333","userName":"alice"}},"eventTime":"2026-10-05T14:03:11Z","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"us-east-1","sourceIPAddress":"{ip}","userAgent":"Mozilla/5.0","requestParameters":null,"responseElements":{{"ConsoleLogin":"{result}"}},"additionalEventData":{{"MFAUsed":"Yes"}},"eventID":"{id}","eventType":"AwsConsoleSignIn","recipientAccountId":"111122223333","src_country":"{country}","src_ip":"{ip}"}}"#
    )
}

#[test]
fn placeholder_rule_fails_to_load_without_its_placeholder_naming_file_placeholder_and_remedy() {
    let lint = run(bin().args(["rules", "lint"]).arg(placeholder_rules()));
    assert_eq!(lint.status.code(), Some(1));
    let text = stdout(&lint);
    assert!(text.contains("0 loaded, 1 errors"), "{text}");
    let file = placeholder_rules().join(format!("{PLACEHOLDER_RULE}.yml"));
    assert!(
        text.contains(&format!("{}:25:", file.display()))
            && text.contains("placeholder `%Legitimate_Countries%` has no value")
            && text.contains("--placeholders FILE")
            && text.contains("src_country|expand"),
        "{text}"
    );
    // A scan does not start with it; nor with only one of its two placeholders.
    let ph = tempfile::tempdir().unwrap();
    let only_countries = ph.path().join("countries.yml");
    std::fs::write(&only_countries, "Legitimate_Countries: [DE, FR]\n").unwrap();
    for extra in [None, Some(&only_countries)] {
        let data = tempfile::tempdir().unwrap();
        let mut cmd = bin();
        cmd.args(["scan", "--rules"])
            .arg(placeholder_rules())
            .arg("--data-dir")
            .arg(data.path())
            .arg(repo().join("sample-logs"));
        if let Some(p) = extra {
            cmd.arg("--placeholders").arg(p);
        }
        let out = run(&mut cmd);
        assert_eq!(out.status.code(), Some(2));
        let missing = if extra.is_some() {
            "%Legitimate_IP_Ranges%"
        } else {
            "%Legitimate_Countries%"
        };
        assert!(
            stderr(&out).contains(&format!("placeholder `{missing}` has no value")),
            "{}",
            stderr(&out)
        );
    }
    // An unreadable or malformed placeholders file is named, too.
    let bad = ph.path().join("bad.yml");
    std::fs::write(&bad, "- DE\n- FR\n").unwrap();
    let out = run(bin()
        .args(["rules", "lint", "--placeholders"])
        .arg(&bad)
        .arg(placeholder_rules()));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains(&format!("{}: invalid placeholders file", bad.display())),
        "{}",
        stdout(&out)
    );
}

#[test]
fn placeholder_rule_runs_when_its_placeholders_are_supplied() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("placeholders.yml");
    std::fs::write(
        &yaml,
        "Legitimate_Countries: [DE, FR]\nLegitimate_IP_Ranges:\n  - 192.0.2.*\n  - 198.51.100.10\n",
    )
    .unwrap();
    let toml = dir.path().join("placeholders.toml");
    std::fs::write(
        &toml,
        "Legitimate_Countries = [\"DE\", \"FR\"]\nLegitimate_IP_Ranges = [\"192.0.2.*\", \"198.51.100.10\"]\n",
    )
    .unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let events = [
        // True positive: a success from an unlisted country and address.
        login("e0000000-0000-4000-8000-000000000001", "Success", "BR", "203.0.113.77"),
        // Negatives: listed country; listed address range; exact listed
        // address; and a failed login (the selection needs Success).
        login("e0000000-0000-4000-8000-000000000002", "Success", "de", "203.0.113.78"),
        login("e0000000-0000-4000-8000-000000000003", "Success", "BR", "192.0.2.10"),
        login("e0000000-0000-4000-8000-000000000004", "Success", "BR", "198.51.100.10"),
        login("e0000000-0000-4000-8000-000000000005", "Failure", "BR", "203.0.113.79"),
    ];
    std::fs::write(logs.join("logins.ndjson"), events.join("\n") + "\n").unwrap();
    for ph in [&yaml, &toml] {
        let data = tempfile::tempdir().unwrap();
        let out = run(bin()
            .args(["scan", "--format", "jsonl", "--rules"])
            .arg(placeholder_rules())
            .arg("--placeholders")
            .arg(ph)
            .arg("--data-dir")
            .arg(data.path())
            .arg(&logs));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let alerts: Vec<(String, String)> = printed_alert_pairs(&stdout(&out));
        assert_eq!(
            alerts,
            vec![(
                PLACEHOLDER_RULE.to_owned(),
                "e0000000-0000-4000-8000-000000000001".to_owned()
            )],
            "{}",
            ph.display()
        );
    }
    // The environment variable names the file as well.
    let data = tempfile::tempdir().unwrap();
    let out = run(bin()
        .args(["scan", "--format", "jsonl", "--rules"])
        .arg(placeholder_rules())
        .arg("--data-dir")
        .arg(data.path())
        .arg(&logs)
        .env("TRAILWATCH_PLACEHOLDERS", &yaml));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 1);
}

#[test]
fn daemon_refuses_to_start_when_a_placeholder_is_missing() {
    // Rules load before any AWS call, so no queue is needed to see this.
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("trailwatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "queue_url = \"http://127.0.0.1:9/000000000000/none\"\nrules = [{:?}, {:?}]\n[placeholders]\nLegitimate_Countries = [\"DE\"]\n",
            sigmahq().display().to_string(),
            placeholder_rules().display().to_string()
        ),
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let out = run(bin()
        .args(["daemon", "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(data.path()));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("placeholder `%Legitimate_IP_Ranges%` has no value") && err.contains(PLACEHOLDER_RULE),
        "{err}"
    );
    assert!(
        err.contains("1 rule error(s)"),
        "the 57 SigmaHQ rules of the list load: {err}"
    );
}

#[test]
fn deprecated_v1_aggregations_are_refused_with_the_correlation_to_write_and_the_shipped_translation() {
    let dir = shared().join("sigma/unsupported/cloud");
    let out = run(bin().args(["rules", "lint"]).arg(&dir));
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 8, "{text}");
    for e in &errors {
        let stem = e.rsplit_once(".yml:").unwrap().0.rsplit('/').next().unwrap();
        assert!(e.contains("deprecated Sigma v1 syntax"), "{e}");
        assert!(e.contains("correlation: {type: "), "{e}");
        assert!(
            e.contains(&format!(
                "ships this translation as rules/correlations/sigmahq/{stem}.yml"
            )),
            "{e}"
        );
        assert!(
            repo().join(format!("rules/correlations/sigmahq/{stem}.yml")).exists(),
            "{stem}"
        );
    }
    assert!(text.contains("`count() by sourceIPAddress > 5`"), "{text}");
    assert!(text.contains("`near selection2`"), "{text}");
    assert!(text.contains("`timeframe: 5m`"), "{text}");
    assert!(text.ends_with("0 loaded, 8 errors\n"), "{text}");
}
