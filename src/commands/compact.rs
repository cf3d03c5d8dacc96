//! `trailwatch compact`: merge each aggregate partition's parts.

use std::process::ExitCode;

use anyhow::Context as _;
use trailwatch::store::{Aggregates, Store};

use super::DataDirArgs;

#[derive(Debug, clap::Args)]
pub struct CompactArgs {
    #[command(flatten)]
    data: DataDirArgs,
}

pub fn run(args: CompactArgs) -> anyhow::Result<ExitCode> {
    let mut store = Store::open_existing(&args.data.data_dir).context("cannot open the store")?;
    let aggs = Aggregates::new(&args.data.data_dir);
    // Anything still staged goes out first, so compaction sees it all.
    aggs.flush(&mut store).context("flushing aggregates")?;
    let s = aggs.compact(&mut store).context("compacting aggregates")?;
    eprintln!(
        "compacted {} partitions: {} files into {}",
        s.partitions, s.files_before, s.files_after
    );
    Ok(ExitCode::SUCCESS)
}
