//! `trailwatch bench-floor [--parse] PATH...` (hidden): the physical floors
//! that `benches/compare` measures trailwatch against, with the same code
//! and the same flate2 backend as `scan`, on one thread:
//!
//! * floor A: read each file and gunzip it ([`decode::read_object_buffered`],
//!   as `scan` does);
//! * floor B (`--parse`): and parse it with simd-json into a tape, visiting
//!   every record of `Records`, without rules or stores.
//!
//! Prints one JSON line: files, records (B only), compressed and
//! decompressed bytes, seconds.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use trailwatch::decode;
use trailwatch::sources::local;

#[derive(Debug, clap::Args)]
pub struct BenchFloorArgs {
    /// Files or folders, walked like `scan` does.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Also parse every document with simd-json (floor B).
    #[arg(long)]
    parse: bool,
}

pub fn run(args: BenchFloorArgs) -> anyhow::Result<ExitCode> {
    let files: Vec<PathBuf> = local::walk(&args.paths)
        .filter_map(|f| f.ok())
        .filter(|f| !f.digest)
        .map(|f| f.path)
        .collect();
    let started = Instant::now();
    let (mut raw, mut buf) = (Vec::new(), Vec::new());
    let mut buffers = simd_json::Buffers::new(1 << 16);
    let mut tape_slot = Some(simd_json::tape::Tape::null().reset());
    let (mut compressed, mut decompressed, mut records) = (0u64, 0u64, 0u64);
    for path in &files {
        let name = path.display().to_string();
        raw.clear();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut raw))
            .with_context(|| format!("reading {name}"))?;
        compressed += raw.len() as u64;
        let len = decode::read_object_buffered(&name, &raw[..], decode::DEFAULT_MAX_OBJECT_BYTES, &mut buf)?;
        decompressed += len as u64;
        if args.parse {
            let mut tape = tape_slot.take().expect("tape").reset();
            simd_json::fill_tape_padded(&mut buf[..], len, &mut buffers, &mut tape)
                .map_err(|e| anyhow::anyhow!("{name}: invalid JSON: {e}"))?;
            if let Some(recs) = tape.as_value().get("Records").and_then(|r| r.as_array()) {
                for r in recs.iter() {
                    records += u64::from(r.is_object());
                }
            }
            tape_slot = Some(tape.reset());
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "mode": if args.parse { "gunzip+parse" } else { "gunzip" },
            "files": files.len(),
            "records": records,
            "compressed_bytes": compressed,
            "decompressed_bytes": decompressed,
            "secs": secs,
        })
    );
    Ok(ExitCode::SUCCESS)
}
