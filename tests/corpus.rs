//! `trailwatch gen-corpus`: the benchmark corpus is exact and deterministic.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;

fn generate(out: &Path, seed: &str, size: &str) -> serde_json::Value {
    let o = run(bin()
        .args(["gen-corpus", "--size", size, "--seed", seed, "--datasets"])
        .arg(shared().join("datasets"))
        .arg("--out")
        .arg(out));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    serde_json::from_str(&std::fs::read_to_string(out.join("MANIFEST")).unwrap()).unwrap()
}

/// Every file under `root`, relative path → bytes.
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            (
                e.path().strip_prefix(root).unwrap().display().to_string(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn scan_finds_exactly_the_planted_alerts_of_a_generated_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    let m = generate(&corpus, "7", "2MiB");

    // The size is honoured: compressed bytes on disk, within one file of it.
    let files = log_files(&corpus);
    let on_disk: u64 = files.iter().map(|f| f.metadata().unwrap().len()).sum();
    assert_eq!(on_disk, m["compressed_bytes"].as_u64().unwrap());
    assert!(on_disk <= 2 << 20, "{on_disk}");
    let biggest = files.iter().map(|f| f.metadata().unwrap().len()).max().unwrap();
    assert!(on_disk + biggest > 2 << 20, "{on_disk} + {biggest}");
    assert_eq!(files.len() as u64, m["files"].as_u64().unwrap());
    // CloudTrail's layout and names, with the fictional accounts only.
    for f in &files {
        let rel = f.strip_prefix(&corpus).unwrap().display().to_string();
        let parts: Vec<&str> = rel.split('/').collect();
        assert_eq!(parts.len(), 8, "{rel}");
        assert_eq!((parts[0], parts[2]), ("AWSLogs", "CloudTrail"), "{rel}");
        assert!(
            ["111122223333", "444455556666", "123456789012", "777788889999"].contains(&parts[1]),
            "{rel}"
        );
        assert!(
            parts[7].starts_with(&format!("{}_CloudTrail_{}_", parts[1], parts[3])),
            "{rel}"
        );
        assert!(parts[7].ends_with(".json.gz"), "{rel}");
    }

    // Scan with the four mandatory rules: exactly the planted alerts.
    let data = dir.path().join("data");
    let out = run(bin()
        .args(["scan", "--format", "jsonl", "--rules"])
        .arg(repo().join("rules/mandatory"))
        .arg("--data-dir")
        .arg(&data)
        .arg(&corpus));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let planted = std::fs::read_to_string(corpus.join("planted-alerts.tsv")).unwrap();
    let mut want: Vec<(String, String)> = planted
        .lines()
        .skip(1)
        .map(|l| {
            let (r, e) = l.split_once('\t').unwrap();
            (r.to_owned(), e.to_owned())
        })
        .collect();
    want.sort();
    let got = query_pairs(&data, "SELECT rule_name, event_id FROM alerts ORDER BY 1, 2");
    assert_eq!(got, want);
    // Every rule has planted alerts, and the manifest counts them.
    let mut per_rule: BTreeMap<String, u64> = BTreeMap::new();
    for (r, _) in &got {
        *per_rule.entry(r.clone()).or_default() += 1;
    }
    let expected: BTreeMap<String, u64> = m["expected_alerts"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    assert_eq!(per_rule, expected);
    assert_eq!(expected.len(), 4);
    assert!(expected.values().all(|&n| n > 0), "{expected:?}");
    // Every record and byte is accounted for.
    assert_eq!(
        count(&data, "SELECT SUM(records) FROM objects") as u64,
        m["records"].as_u64().unwrap()
    );
    assert_eq!(
        count(&data, "SELECT COUNT(*) FROM objects WHERE status = 'ok'") as u64,
        m["files"].as_u64().unwrap()
    );
    let decompressed: u64 = files
        .iter()
        .map(|f| {
            use std::io::Read;
            let mut s = Vec::new();
            flate2::read::MultiGzDecoder::new(std::fs::File::open(f).unwrap())
                .read_to_end(&mut s)
                .unwrap();
            s.len() as u64
        })
        .sum();
    assert_eq!(decompressed, m["decompressed_bytes"].as_u64().unwrap());
}

#[test]
fn the_same_seed_gives_a_byte_identical_corpus_and_another_seed_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
    generate(&a, "3", "1MiB");
    // A different thread count must not matter.
    let o = run(bin()
        .args([
            "gen-corpus",
            "--size",
            "1MiB",
            "--seed",
            "3",
            "--threads",
            "1",
            "--datasets",
        ])
        .arg(shared().join("datasets"))
        .arg("--out")
        .arg(&b));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    generate(&c, "4", "1MiB");
    let (ta, tb, tc) = (tree(&a), tree(&b), tree(&c));
    assert!(ta.len() > 3);
    assert!(ta == tb, "same seed, different output");
    assert_ne!(ta, tc);
}

#[test]
fn the_real_source_accounts_never_reach_the_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c");
    generate(&out, "1", "1MiB");
    // The accounts that own the seed records: every recipientAccountId and
    // userIdentity.accountId of the datasets.
    let seeds = shared().join("datasets");
    let mut accounts = std::collections::BTreeSet::new();
    for d in ["grycap_cloudtrail-tracker", "invictus-ir_aws_dataset"] {
        for f in log_files(&seeds.join(d)).into_iter().chain(
            walkdir::WalkDir::new(seeds.join(d))
                .into_iter()
                .map(Result::unwrap)
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .map(|e| e.into_path()),
        ) {
            use std::io::Read;
            let mut text = Vec::new();
            let raw = std::fs::read(&f).unwrap();
            if raw.starts_with(&[0x1f, 0x8b]) {
                flate2::read::MultiGzDecoder::new(&raw[..])
                    .read_to_end(&mut text)
                    .unwrap();
            } else {
                text = raw;
            }
            let doc: serde_json::Value = serde_json::from_slice(&text).unwrap();
            for r in doc["Records"].as_array().into_iter().flatten() {
                for v in [&r["recipientAccountId"], &r["userIdentity"]["accountId"]] {
                    if let Some(s) = v.as_str().filter(|s| s.len() == 12) {
                        accounts.insert(s.to_owned());
                    }
                }
            }
        }
    }
    assert!(accounts.len() >= 2, "{accounts:?}");
    for (path, bytes) in tree(&out) {
        let text = if path.ends_with(".gz") {
            use std::io::Read;
            let mut s = String::new();
            flate2::read::MultiGzDecoder::new(&bytes[..])
                .read_to_string(&mut s)
                .unwrap();
            s
        } else {
            String::from_utf8(bytes).unwrap()
        };
        for a in &accounts {
            assert!(!text.contains(a.as_str()), "{path} holds a source account");
            assert!(!path.contains(a.as_str()), "{path} names a source account");
        }
    }
}

#[test]
fn gen_corpus_refuses_a_folder_that_is_not_empty() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keep.txt"), "x").unwrap();
    let o = run(bin()
        .args(["gen-corpus", "--size", "1MiB", "--datasets"])
        .arg(shared().join("datasets"))
        .arg("--out")
        .arg(dir.path()));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not empty"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(dir.path().join("keep.txt")).unwrap(), "x");
}
