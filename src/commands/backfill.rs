//! `trailwatch backfill s3://BUCKET[/PREFIX]`: historical CloudTrail from S3,
//! selected by day folders, accounts and regions, processed concurrently,
//! resumable through the ledger.
//!
//! An async side lists (several folders at a time, ahead of processing) and
//! runs objects (`--concurrency` at a time); this thread commits outcomes in
//! batches and draws progress. Ctrl-C stops dispatching, lets in-flight
//! objects finish and commits them; the same command continues later,
//! skipping objects already in the ledger with the same ETag.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::sync::{Semaphore, mpsc};
use trailwatch::daemon::events::Metrics;
use trailwatch::decode::DEFAULT_MAX_OBJECT_BYTES;
use trailwatch::ingest::{IngestResult, S3Ingest};
use trailwatch::pipeline::PipelineOptions;
use trailwatch::sources::s3::{self, AwsOptions};
use trailwatch::sources::s3_layout::{self, Selection};
use trailwatch::store::Store;

use super::committer::{BatchLimits, Committer};
use super::progress::Progress;
use super::scan::parse_bytes;
use super::{AggregateArgs, CorrelationArgs, DataDirArgs, RuleArgs};
use crate::output::{AlertFormat, AlertWriter};

#[derive(Debug, clap::Args)]
pub struct BackfillArgs {
    /// Where the trail delivers: s3://BUCKET or s3://BUCKET/PREFIX.
    uri: String,
    /// First day (YYYY-MM-DD), inclusive.
    #[arg(long, value_name = "DATE")]
    from: Option<chrono::NaiveDate>,
    /// Last day (YYYY-MM-DD), inclusive [default: today].
    #[arg(long, value_name = "DATE")]
    to: Option<chrono::NaiveDate>,
    /// Hours before --from whose day folder is also listed: a file can hold
    /// events from shortly before its folder's day.
    #[arg(long, value_name = "HOURS", default_value_t = 1)]
    from_slack_hours: u32,
    /// Only these accounts (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    accounts: Vec<String>,
    /// Only these regions (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "REGION,...")]
    regions: Vec<String>,
    /// Objects downloaded and processed at the same time [default: 4 per core].
    #[arg(long, value_name = "N")]
    concurrency: Option<usize>,
    /// Process objects again even if the ledger has them (no duplicates are stored).
    #[arg(long)]
    reprocess: bool,
    /// Print the selected keys and exit, without processing.
    #[arg(long)]
    list: bool,
    /// AWS region [default: from the standard chain].
    #[arg(long, env = "TRAILWATCH_REGION")]
    region: Option<String>,
    /// Endpoint for S3 (AWS_ENDPOINT_URL is honoured too).
    #[arg(long, env = "TRAILWATCH_ENDPOINT_URL")]
    endpoint_url: Option<String>,
    /// Path-style S3 addressing.
    #[arg(long, env = "TRAILWATCH_FORCE_PATH_STYLE")]
    force_path_style: bool,
    /// Attempts for transient S3 errors.
    #[arg(long, default_value_t = 5)]
    max_retries: u32,
    /// Cap on an object's stored and decompressed size.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_OBJECT_BYTES, value_parser = parse_bytes)]
    max_object_bytes: u64,
    #[arg(long, value_enum, default_value_t = AlertFormat::Table)]
    format: AlertFormat,
    #[command(flatten)]
    aggregates: AggregateArgs,
    #[command(flatten)]
    rules: RuleArgs,
    #[command(flatten)]
    correlation: CorrelationArgs,
    #[command(flatten)]
    data: DataDirArgs,
}

enum Event {
    Listed(u64),
    ListingDone,
    ListingFailed(String),
    Result(IngestResult),
}

pub fn run(args: BackfillArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let Some((bucket, prefix)) = s3_layout::parse_s3_uri(&args.uri) else {
        bail!("`{}` is not an s3://BUCKET[/PREFIX] URI", args.uri);
    };
    if let (Some(f), Some(t)) = (args.from, args.to)
        && f > t
    {
        bail!("--from {f} is after --to {t}");
    }
    let sel = Selection {
        from: args.from,
        to: args.to,
        accounts: args.accounts.clone(),
        regions: args.regions.clone(),
        from_slack_hours: args.from_slack_hours,
    };
    let aws = AwsOptions {
        region: args.region.clone(),
        endpoint_url: args.endpoint_url.clone(),
        force_path_style: args.force_path_style,
        request_timeout: None,
    };
    let concurrency = args
        .concurrency
        .unwrap_or_else(|| 4 * std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let sdk = rt.block_on(s3::sdk_config(&aws));
    let client = s3::s3_client(&sdk, &aws);

    if args.list {
        let folders = rt.block_on(s3_layout::discover(&client, &bucket, &prefix, &sel))?;
        let (tx, mut rx) = mpsc::channel(1024);
        let c2 = client.clone();
        let b2 = bucket.clone();
        let lister = rt.spawn(async move {
            for f in folders {
                s3_layout::list_objects(&c2, &b2, &f, &tx).await?;
            }
            Ok::<_, s3::S3Error>(())
        });
        let mut keys = Vec::new();
        while let Some(o) = rx.blocking_recv() {
            keys.push(o.key);
        }
        rt.block_on(lister)??;
        keys.sort();
        for k in keys {
            println!("{k}");
        }
        return Ok(ExitCode::SUCCESS);
    }

    let rules = Arc::new(args.rules.load()?);
    let store = Store::open(&args.data.data_dir).context("cannot open the alert store")?;
    let writer = AlertWriter::stdout(args.format);
    let mut committer = Committer::new(
        store,
        args.aggregates.open(&args.data.data_dir),
        writer,
        args.aggregates.flush_rows,
        rules.clone(),
        args.correlation.limits(),
    )?
    // Downloads arrive one at a time; smaller batches keep the ledger (and
    // a resumed backfill) closer to what was downloaded.
    .with_limits(BatchLimits {
        max_objects: 64,
        ..BatchLimits::default()
    });

    let stop = super::stop_on_interrupt("objects");
    let stop_after: Option<u64> = std::env::var("TRAILWATCH_TEST_STOP_AFTER")
        .ok()
        .and_then(|v| v.parse().ok());

    let opts = PipelineOptions {
        max_object_bytes: args.max_object_bytes,
        ..Default::default()
    };
    let ingest = Arc::new(S3Ingest::new(
        client.clone(),
        Arc::new(Metrics::default()),
        rules.clone(),
        opts,
        args.max_retries,
        &args.data.data_dir,
    ));
    let (ev_tx, mut ev_rx) = mpsc::channel::<Event>(concurrency * 4);
    {
        let stop = stop.clone();
        let reprocess = args.reprocess;
        let bucket = bucket.clone();
        rt.spawn(async move {
            let folders = match s3_layout::discover(&client, &bucket, &prefix, &sel).await {
                Ok(f) => f,
                Err(e) => {
                    let _ = ev_tx.send(Event::ListingFailed(e.to_string())).await;
                    return;
                }
            };
            // Listing: several folders at a time, ahead of processing.
            let (obj_tx, mut obj_rx) = mpsc::channel(4096);
            let list_slots = Arc::new(Semaphore::new(8));
            let mut listers = Vec::new();
            for f in folders {
                let (client, bucket, obj_tx, ev_tx, slots) = (
                    client.clone(),
                    bucket.clone(),
                    obj_tx.clone(),
                    ev_tx.clone(),
                    list_slots.clone(),
                );
                listers.push(tokio::spawn(async move {
                    let _slot = slots.acquire_owned().await.expect("open");
                    match s3_layout::list_objects(&client, &bucket, &f, &obj_tx).await {
                        Ok(n) => {
                            let _ = ev_tx.send(Event::Listed(n)).await;
                        }
                        Err(e) => {
                            let _ = ev_tx.send(Event::ListingFailed(e.to_string())).await;
                        }
                    }
                }));
            }
            drop(obj_tx);
            let done_listing = {
                let ev_tx = ev_tx.clone();
                tokio::spawn(async move {
                    for l in listers {
                        let _ = l.await;
                    }
                    let _ = ev_tx.send(Event::ListingDone).await;
                })
            };
            // In-flight objects are bounded by the semaphore; finished tasks
            // are not kept, so memory does not grow with the object count.
            let work_slots = Arc::new(Semaphore::new(concurrency));
            while let Some(o) = obj_rx.recv().await {
                if stop.load(Ordering::SeqCst) {
                    continue;
                }
                let permit = work_slots.clone().acquire_owned().await.expect("open");
                if stop.load(Ordering::SeqCst) {
                    continue;
                }
                let (ingest, ev_tx) = (ingest.clone(), ev_tx.clone());
                tokio::spawn(async move {
                    let r = ingest.run(&o, None, reprocess).await;
                    let _ = ev_tx.send(Event::Result(r)).await;
                    drop(permit);
                });
            }
            let _ = done_listing.await;
            // Every permit back means every object task has reported.
            let _ = work_slots.acquire_many(concurrency as u32).await;
        });
    }

    let mut progress = Progress::new();
    let mut transient = 0u64;
    let mut listing_errors = 0u64;
    loop {
        let ev = rt.block_on(async { tokio::time::timeout(Duration::from_millis(200), ev_rx.recv()).await });
        match ev {
            Ok(Some(Event::Listed(n))) => progress.add_total(n),
            Ok(Some(Event::ListingDone)) => progress.listing_finished(),
            Ok(Some(Event::ListingFailed(e))) => {
                listing_errors += 1;
                tracing::error!("{e}");
            }
            Ok(Some(Event::Result(IngestResult::Skipped))) => {
                committer.totals.objects += 1;
                committer.totals.unchanged += 1;
            }
            Ok(Some(Event::Result(IngestResult::Transient(e)))) => {
                transient += 1;
                committer.totals.objects += 1;
                committer.totals.failed += 1;
                tracing::error!(object = %e, "not processed (transient); run the backfill again to retry it");
            }
            Ok(Some(Event::Result(IngestResult::Outcome(oc)))) => committer.push(*oc),
            Ok(None) => break,
            Err(_) => {}
        }
        if committer.due() {
            committer.commit()?;
            if stop_after.is_some_and(|n| committer.totals.objects >= n) && !stop.swap(true, Ordering::SeqCst) {
                eprintln!("trailwatch: test stop after {} objects", committer.totals.objects);
            }
        }
        progress.update(&committer.totals);
    }
    let (store, totals) = committer.finish()?;
    progress.finish();
    let total_alerts = store.alert_count()?;
    totals.report(
        "backfilled",
        "already done",
        total_alerts,
        started.elapsed().as_secs_f64(),
    );
    // "backfilled 0 objects" alone reads like success; a prefix, account,
    // region or date range that selects nothing should be visible.
    if totals.objects == 0 && !stop.load(Ordering::SeqCst) {
        tracing::warn!(
            uri = %args.uri,
            "found no CloudTrail log objects under this URI for the selected accounts, regions and dates"
        );
    }
    if stop.load(Ordering::SeqCst) {
        eprintln!("trailwatch: stopped early; run the same command again to continue");
        return Ok(ExitCode::from(130));
    }
    Ok(if totals.failed > 0 || transient > 0 || listing_errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
