//! Runs the test events that each rule carries (`tests.true_positives` and
//! `tests.true_negatives`) through the real decoder and the full, indexed
//! rule set, so that a dispatch-index bug fails the test as well.

use super::RuleSet;
use crate::decode::{Decoder, read_object};

/// The verdict on one embedded test event.
#[derive(Debug, Clone)]
pub struct TestOutcome {
    pub rule: String,
    pub source: String,
    /// `true_positive` or `true_negative`.
    pub kind: &'static str,
    pub index: usize,
    pub passed: bool,
    /// Why it failed (empty when passed).
    pub reason: String,
}

/// Runs every rule's embedded tests. Rules without tests yield nothing.
pub fn run_rule_tests(set: &RuleSet) -> Vec<TestOutcome> {
    let mut decoder = Decoder::default();
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for rule in set.rules() {
        let cases = rule
            .tests
            .true_positives
            .iter()
            .map(|e| ("true_positive", e, true))
            .chain(rule.tests.true_negatives.iter().map(|e| ("true_negative", e, false)));
        let mut counters = [0usize; 2];
        for (kind, event, expect) in cases {
            let index = counters[usize::from(!expect)];
            counters[usize::from(!expect)] += 1;
            let label = format!("{}#{}/{}", rule.name, kind, index);
            let mut fired = None;
            let mut records = 0;
            let res = read_object(&label, event.as_bytes(), 1 << 24, &mut buf).and_then(|len| {
                decoder.decode(&label, &mut buf, len, |rec| {
                    records += 1;
                    let mut hit = false;
                    set.evaluate(&rec, |r| hit |= r.name == rule.name);
                    fired = Some(hit);
                })
            });
            let (passed, reason) = match (res, fired) {
                (Err(e), _) => (false, format!("event does not decode: {e}")),
                (Ok(_), None) => (
                    false,
                    "event is not a CloudTrail record (no eventName/eventSource/eventTime)".into(),
                ),
                (Ok(_), Some(_)) if records != 1 => (false, format!("expected one record, got {records}")),
                (Ok(_), Some(hit)) if hit == expect => (true, String::new()),
                (Ok(_), Some(_)) => (
                    false,
                    if expect {
                        "rule did not fire".into()
                    } else {
                        "rule fired on a true negative".into()
                    },
                ),
            };
            out.push(TestOutcome {
                rule: rule.name.clone(),
                source: rule.source.clone(),
                kind,
                index,
                passed,
                reason,
            });
        }
    }
    out
}
