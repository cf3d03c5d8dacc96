//! `trailwatch gen-corpus --out DIR --size 1GiB --seed N`: the benchmark
//! corpus (see [`trailwatch::corpus`] for what it holds and why its expected
//! alerts are exact).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use trailwatch::corpus::{self, Generator};

use super::scan::parse_bytes;

#[derive(Debug, clap::Args)]
pub struct GenCorpusArgs {
    /// Output folder (created; must be empty). Files go to DIR/AWSLogs/...,
    /// the manifest to DIR/MANIFEST, the planted alerts to
    /// DIR/planted-alerts.tsv.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Compressed bytes on disk (e.g. 1GiB, 64MiB): files are added while
    /// the total stays within it.
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, default_value = "1GiB")]
    size: u64,
    /// Random seed: the same seed gives a byte-identical corpus.
    #[arg(long, value_name = "N", default_value_t = 1)]
    seed: u64,
    /// Average records per delivery file (each file has ±25 %).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    records_per_file: usize,
    /// The shared datasets folder whose grycap and invictus records are replayed.
    #[arg(
        long,
        value_name = "DIR",
        env = "TRAILWATCH_DATASETS",
        default_value = "../shared/datasets"
    )]
    datasets: PathBuf,
    /// Rendering threads (default: one per core). The output does not depend on it.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

pub fn run(args: GenCorpusArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let generator = Generator::new(&args.datasets, args.seed, args.records_per_file)
        .with_context(|| format!("loading seed records from {}", args.datasets.display()))?;
    tracing::info!(
        seed_records = generator.seed_records,
        left_out = generator.seeds_left_out,
        pool = generator.pool_len(),
        "seed records loaded (records that fire a mandatory rule are left out)"
    );
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let mut last = Instant::now();
    let size = args.size;
    let manifest = corpus::write_corpus(&generator, &args.out, size, threads, |written| {
        if last.elapsed() >= Duration::from_secs(5) {
            last = Instant::now();
            tracing::info!(written, target = size, "generating corpus");
        }
    })
    .context("writing the corpus")?;
    let alerts: u64 = manifest.expected_alerts.values().sum();
    eprintln!(
        "wrote {} files, {} records, {} bytes compressed ({} decompressed) to {} in {:.1} s; \
         {} planted alerts ({}), {} near misses",
        manifest.files,
        manifest.records,
        manifest.compressed_bytes,
        manifest.decompressed_bytes,
        args.out.display(),
        started.elapsed().as_secs_f64(),
        alerts,
        manifest
            .expected_alerts
            .iter()
            .map(|(r, n)| format!("{r}: {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        manifest.near_misses,
    );
    Ok(ExitCode::SUCCESS)
}
