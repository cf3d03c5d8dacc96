//! S3 access against a real moto_server: objects fetched through the SDK and
//! processed by the pipeline give exactly the alerts of a local scan.

mod common;
#[path = "common/moto.rs"]
mod moto;

use std::sync::Arc;

use common::*;
use trailwatch::pipeline::{Outcome, PipelineOptions, Worker};
use trailwatch::rules::{LoadOptions, RuleSet};
use trailwatch::sources::s3::{S3Error, get_object};

#[test]
fn objects_fetched_from_s3_give_the_local_alerts() {
    let moto = moto::Moto::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s3 = moto.s3();
    let root = repo().join("sample-logs");
    let files = log_files(&root);
    rt.block_on(async {
        s3.create_bucket().bucket("trail").send().await.unwrap();
        for f in &files {
            let key = f.strip_prefix(&root).unwrap().to_string_lossy().into_owned();
            s3.put_object()
                .bucket("trail")
                .key(key)
                .body(std::fs::read(f).unwrap().into())
                .send()
                .await
                .unwrap();
        }
    });
    let (rules, errs) = RuleSet::embedded(&LoadOptions::default());
    assert!(errs.is_empty());
    let mut worker = Worker::new(Arc::new(rules), PipelineOptions::default());
    let mut got = Vec::new();
    let mut raw = Vec::new();
    for f in &files {
        let key = f.strip_prefix(&root).unwrap().to_string_lossy().into_owned();
        if key.contains("CloudTrail-Digest") {
            continue;
        }
        let fetched = rt.block_on(get_object(&s3, "trail", &key, 1 << 30, &mut raw)).unwrap();
        assert_eq!(fetched.size, std::fs::metadata(f).unwrap().len());
        assert!(!fetched.etag.is_empty());
        let meta = trailwatch::pipeline::ObjectMeta {
            name: format!("s3://trail/{key}"),
            size: fetched.size,
            mtime_ns: None,
            fingerprint: fetched.etag.clone(),
            message_id: None,
        };
        match worker.process(meta, &raw[..]).outcome {
            Outcome::Processed { alerts, .. } => got.extend(alerts.into_iter().map(|a| (a.rule_name, a.event_id))),
            Outcome::Failed(e) => panic!("{e}"),
        }
    }
    got.sort();
    // One worker on its own raises the single-event alerts (correlations run at commit).
    assert_eq!(got, expected_sample_single_event_alerts());

    // A missing key is a permanent, named error; an object over the cap too.
    let e = rt
        .block_on(get_object(&s3, "trail", "AWSLogs/nope.json.gz", 1 << 30, &mut raw))
        .unwrap_err();
    assert!(matches!(e, S3Error::NoSuchKey { .. }), "{e}");
    assert!(e.to_string().contains("s3://trail/AWSLogs/nope.json.gz"));
    assert!(!e.is_transient());
    let big = files.iter().find(|f| !f.to_string_lossy().contains("Digest")).unwrap();
    let key = big.strip_prefix(&root).unwrap().to_string_lossy().into_owned();
    let e = rt.block_on(get_object(&s3, "trail", &key, 100, &mut raw)).unwrap_err();
    assert!(matches!(e, S3Error::TooLarge { limit: 100, .. }), "{e}");
}
