//! Criterion benches of each pipeline stage, on delivery files rendered
//! in-process by the corpus generator (`trailwatch::corpus`) from the shared
//! datasets (`../shared/datasets`, or `TRAILWATCH_DATASETS`).
//!
//! Every stage is measured twice, with `Throughput::Bytes` (decompressed
//! JSON) and `Throughput::Elements` (records), in the groups `bytes` and
//! `records`. The inputs are small (4 files, about 4,000 records) so that
//! `cargo test --all-targets`, which runs each bench once, stays fast.
//!
//! Stages: gunzip; simd-json parse; decode into the borrowed record view;
//! rule evaluation with the 4 mandatory rules and with the full pack
//! (rules/ plus the SigmaHQ CloudTrail rules of `../shared/sigma`); the
//! per-object activity aggregate; the commit-side merge of a batch's
//! activity; a SQLite commit of a batch of alerts; one whole object end to
//! end (read, decode, rules, aggregate, commit).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use simd_json::prelude::*;
use trailwatch::corpus::{self, CorpusFile, Generator};
use trailwatch::decode::{self, Decoder, Record};
use trailwatch::pipeline::activity::{ActivityAgg, ActivityRows};
use trailwatch::pipeline::{Alert, ObjectMeta, ObjectOutcome, Outcome, PipelineOptions, Worker};
use trailwatch::rules::{LoadOptions, RuleSet};
use trailwatch::store::Store;
use trailwatch::store::staging::ActivityTable;

const FILES: u64 = 4;

fn shared() -> PathBuf {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    repo.join("../shared")
}

fn datasets() -> PathBuf {
    std::env::var_os("TRAILWATCH_DATASETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| shared().join("datasets"))
}

struct Input {
    files: Vec<CorpusFile>,
    gz: Vec<Vec<u8>>,
    records: u64,
    bytes: u64,
}

fn input() -> Input {
    let g = Generator::new(&datasets(), 42, 1000).expect("the shared datasets load");
    let files: Vec<CorpusFile> = (0..FILES).map(|i| g.file(i)).collect();
    let gz = files.iter().map(CorpusFile::gzip).collect();
    let records = files.iter().map(|f| f.records).sum();
    let bytes = files.iter().map(|f| f.json.len() as u64).sum();
    Input {
        files,
        gz,
        records,
        bytes,
    }
}

fn padded(json: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(json.len() + simd_json::INPUT_PADDING);
    v.extend_from_slice(json);
    v.resize(json.len() + simd_json::INPUT_PADDING, 0);
    v
}

fn rule_texts(dir: &Path, out: &mut Vec<(String, String)>) {
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.unwrap();
        let p = e.path();
        if e.file_type().is_file() && matches!(p.extension().and_then(|x| x.to_str()), Some("yml" | "yaml")) {
            out.push((p.display().to_string(), std::fs::read_to_string(p).unwrap()));
        }
    }
}

/// rules/ plus the SigmaHQ CloudTrail rules: the full pack of `benches/compare`.
fn full_pack() -> RuleSet {
    let mut texts = Vec::new();
    rule_texts(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules"), &mut texts);
    rule_texts(&shared().join("sigma/rules/cloud/aws/cloudtrail"), &mut texts);
    let (set, errors) = RuleSet::compile(
        texts.iter().map(|(f, t)| (f.clone(), t.as_str())),
        &LoadOptions::default(),
    );
    assert!(errors.is_empty(), "full pack fails to load: {errors:?}");
    set
}

/// Calls `f` with the record views of every file, parsed once and kept
/// alive, so that the rule engine and the aggregate are measured alone.
fn with_records<R>(input: &Input, f: impl FnOnce(&[Record<'_>]) -> R) -> R {
    let mut bufs: Vec<Vec<u8>> = input.files.iter().map(|f| padded(&f.json)).collect();
    let tapes: Vec<simd_json::tape::Tape<'_>> = bufs
        .iter_mut()
        .zip(&input.files)
        .map(|(b, f)| {
            let mut buffers = simd_json::Buffers::new(b.len());
            let mut tape = simd_json::tape::Tape::null().reset();
            simd_json::fill_tape_padded(&mut b[..], f.json.len(), &mut buffers, &mut tape).unwrap();
            tape
        })
        .collect();
    let recs: Vec<Record<'_>> = tapes
        .iter()
        .flat_map(|t| {
            trailwatch::decode::Value::root(t)
                .get("Records")
                .and_then(|r| r.as_array())
                .expect("delivery files")
                .iter()
                .map(Record::new)
                .collect::<Vec<_>>()
        })
        .collect();
    f(&recs)
}

fn alerts_batch(n: usize, round: u64) -> Vec<ObjectOutcome> {
    let (set, _) = RuleSet::compile(
        [(
            "r.yml".to_owned(),
            "title: t\nname: bench_rule\nlevel: high\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  s: {eventName: X}\n  condition: s\n",
        )]
        .iter()
        .map(|(f, t)| (f.clone(), *t)),
        &LoadOptions::default(),
    );
    let rule = &set.rules()[0];
    let mut alerts = Vec::with_capacity(n);
    for i in 0..n {
        let json = format!(
            r#"{{"eventVersion":"1.08","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/alice","accountId":"111122223333"}},"eventTime":"2026-10-05T09:00:00Z","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.4","eventID":"bench-{round}-{i}","recipientAccountId":"111122223333"}}"#
        );
        let mut buf = padded(json.as_bytes());
        let len = json.len();
        Decoder::default()
            .decode("bench", &mut buf, len, |rec| {
                alerts.push(Alert::new(rule, rec, "bench-object"))
            })
            .unwrap();
    }
    vec![ObjectOutcome {
        meta: ObjectMeta {
            name: format!("bench-object-{round}"),
            size: 1,
            mtime_ns: None,
            fingerprint: String::new(),
            message_id: None,
        },
        outcome: Outcome::Processed {
            stats: Default::default(),
            alerts,
            activity: ActivityRows::default(),
            corr_hits: Vec::new(),
        },
    }]
}

fn benches(c: &mut Criterion) {
    let input = input();
    let mandatory = corpus::mandatory_rules();
    let full = full_pack();
    let activity: Vec<ActivityRows> = input
        .files
        .iter()
        .map(|f| {
            let mut buf = padded(&f.json);
            let mut agg = ActivityAgg::default();
            Decoder::default()
                .decode("bench", &mut buf, f.json.len(), |rec| agg.add(rec))
                .unwrap();
            agg.take()
        })
        .collect();

    for (group, throughput) in [
        ("bytes", Throughput::Bytes(input.bytes)),
        ("records", Throughput::Elements(input.records)),
    ] {
        let mut g = c.benchmark_group(group);
        g.throughput(throughput)
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));

        g.bench_function("gunzip", |b| {
            let mut out = Vec::new();
            b.iter(|| {
                for gz in &input.gz {
                    black_box(
                        decode::read_object("bench", &gz[..], decode::DEFAULT_MAX_OBJECT_BYTES, &mut out).unwrap(),
                    );
                }
            })
        });

        g.bench_function("simd_json_parse", |b| {
            let mut buffers = simd_json::Buffers::new(1 << 16);
            let mut slot = Some(simd_json::tape::Tape::null().reset());
            b.iter_batched_ref(
                || input.files.iter().map(|f| padded(&f.json)).collect::<Vec<_>>(),
                |bufs| {
                    for (buf, f) in bufs.iter_mut().zip(&input.files) {
                        let mut tape = slot.take().unwrap().reset();
                        simd_json::fill_tape_padded(&mut buf[..], f.json.len(), &mut buffers, &mut tape).unwrap();
                        black_box(tape.as_value().is_object());
                        slot = Some(tape.reset());
                    }
                },
                BatchSize::LargeInput,
            )
        });

        g.bench_function("decode_record_view", |b| {
            let mut decoder = Decoder::default();
            b.iter_batched_ref(
                || input.files.iter().map(|f| padded(&f.json)).collect::<Vec<_>>(),
                |bufs| {
                    for (buf, f) in bufs.iter_mut().zip(&input.files) {
                        let mut n = 0u64;
                        decoder.decode("bench", buf, f.json.len(), |_| n += 1).unwrap();
                        black_box(n);
                    }
                },
                BatchSize::LargeInput,
            )
        });

        with_records(&input, |recs| {
            for (name, set) in [("rules_mandatory", &mandatory), ("rules_full_pack", &full)] {
                g.bench_function(name, |b| {
                    b.iter(|| {
                        let mut hits = 0u32;
                        for r in recs {
                            set.evaluate(r, |_| hits += 1);
                        }
                        black_box(hits)
                    })
                });
            }
            g.bench_function("activity_aggregate", |b| {
                let mut agg = ActivityAgg::default();
                b.iter(|| {
                    for r in recs {
                        agg.add(r);
                    }
                    black_box(agg.take().len())
                })
            });
        });

        g.bench_function("activity_batch_merge_encode", |b| {
            let mut table = ActivityTable::default();
            b.iter(|| {
                table.clear();
                for a in &activity {
                    table.add(a);
                }
                black_box(table.encode().len())
            })
        });

        g.bench_function("sqlite_alert_batch_commit", |b| {
            let dir = tempfile::tempdir().unwrap();
            let mut store = Store::open(dir.path()).unwrap();
            let mut round = 0;
            // As many alerts as the input has records, in one transaction.
            b.iter_batched(
                || {
                    round += 1;
                    alerts_batch(input.records as usize, round)
                },
                |batch| black_box(store.commit(&batch, &[]).unwrap().new_alert_count),
                BatchSize::PerIteration,
            )
        });

        g.bench_function("object_end_to_end", |b| {
            let dir = tempfile::tempdir().unwrap();
            let mut store = Store::open(dir.path()).unwrap();
            let mut worker = Worker::new(Arc::new(mandatory.clone()), PipelineOptions::default());
            let mut round = 0u64;
            b.iter(|| {
                round += 1;
                let mut batch = Vec::new();
                for (i, gz) in input.gz.iter().enumerate() {
                    let meta = ObjectMeta {
                        name: format!("bench-{round}-{i}"),
                        size: gz.len() as u64,
                        mtime_ns: None,
                        fingerprint: format!("blake3:{}", blake3::hash(gz).to_hex()),
                        message_id: None,
                    };
                    batch.push(worker.process(meta, &gz[..]));
                }
                black_box(store.commit(&batch, &[]).unwrap().staged_rows)
            })
        });
        g.finish();
    }
}

criterion_group!(pipeline, benches);
criterion_main!(pipeline);
