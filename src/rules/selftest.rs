//! Runs the test events that each rule carries (`tests.true_positives` and
//! `tests.true_negatives`) through the real decoder and the full, indexed
//! rule set, so that a dispatch-index bug fails the test as well.

use super::RuleSet;
use super::correlation::{CorrelationLimits, Correlator, Hit};
use crate::decode::{Decoder, read_object};
use crate::time::parse_ms;

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
                    set.evaluate(rec, |r| hit |= r.name == rule.name);
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
    run_correlation_tests(set, &mut decoder, &mut buf, &mut out);
    out
}

/// Runs each correlation's scenarios through the full rule set and a fresh
/// correlator (default limits): a true positive must make the correlation
/// fire, a true negative must not.
fn run_correlation_tests(set: &RuleSet, decoder: &mut Decoder, buf: &mut Vec<u8>, out: &mut Vec<TestOutcome>) {
    for (ci, corr) in set.correlations().iter().enumerate() {
        let cases = corr
            .tests
            .true_positives
            .iter()
            .map(|s| ("true_positive", s, true))
            .chain(corr.tests.true_negatives.iter().map(|s| ("true_negative", s, false)));
        let mut counters = [0usize; 2];
        for (kind, scenario, expect) in cases {
            let index = counters[usize::from(!expect)];
            counters[usize::from(!expect)] += 1;
            let mut correlator = Correlator::new(set.correlations(), CorrelationLimits::default());
            let mut fired = false;
            let mut problem = None;
            for (n, event) in scenario.iter().enumerate() {
                let label = format!("{}#{}/{}/event {}", corr.name, kind, index, n);
                let mut hits = Vec::new();
                let mut records = 0;
                let res = read_object(&label, event.as_bytes(), 1 << 24, buf).and_then(|len| {
                    decoder.decode(&label, buf, len, |rec| {
                        records += 1;
                        set.evaluate(rec, |r| {
                            for &(c, pos) in r.feeds.iter().filter(|(c, _)| *c == ci) {
                                let time = rec.str("eventTime").and_then(parse_ms);
                                match time {
                                    Some(time_ms) => hits.push(Hit {
                                        corr: c,
                                        pos,
                                        time_ms,
                                        event_id: rec.str("eventID").unwrap_or_default().to_owned(),
                                        group: corr.group_key(pos, rec),
                                        value: corr.value(pos, rec),
                                    }),
                                    None => problem = Some(format!("event {n} has no parseable eventTime")),
                                }
                            }
                        });
                    })
                });
                if let Err(e) = res {
                    problem = Some(format!("event {n} does not decode: {e}"));
                } else if records != 1 {
                    problem = Some(format!("event {n}: expected one record, got {records}"));
                }
                for h in &hits {
                    fired |= !correlator.apply(h).is_empty();
                }
            }
            fired |= !correlator.close_windows().is_empty();
            let (passed, reason) = match problem {
                Some(p) => (false, p),
                None if fired == expect => (true, String::new()),
                None if expect => (false, "correlation did not fire".into()),
                None => (false, "correlation fired on a true negative".into()),
            };
            out.push(TestOutcome {
                rule: corr.name.clone(),
                source: corr.source.clone(),
                kind,
                index,
                passed,
                reason,
            });
        }
    }
}
