//! trailwatch: CloudTrail anomaly detection.
//!
//! The library is the pipeline; the `trailwatch` binary (`src/main.rs`,
//! `src/commands/`) is a thin CLI over it. See ARCHITECTURE.md for the map.
//!
//! * [`sources`]: where objects come from (local files; S3 and SQS later).
//! * [`decode`]: gzip + JSON into borrowed record views.
//! * [`rules`]: Sigma compile and evaluate (pure, no I/O).
//! * [`pipeline`]: one object → outcome (alerts, stats), no store I/O.
//! * [`store`]: SQLite alerts and ledger, Parquet aggregates.
//! * [`daemon`]: the SQS-notified S3 ingestion loop.
//! * [`corpus`]: the deterministic benchmark corpus (`trailwatch gen-corpus`).
//! * [`time`]: CloudTrail event times as milliseconds.

//!
//! Without the default `full` feature only the pure engine is built (decode,
//! rules, pipeline, notification parsing): the fuzz targets link that.

pub mod corpus;
#[cfg(feature = "full")]
pub mod daemon;
pub mod decode;
pub mod error_text;
#[doc(hidden)]
pub mod fuzz_harness;
#[cfg(feature = "full")]
pub mod ingest;
pub mod pipeline;
pub mod rules;
pub mod sources;
#[cfg(feature = "full")]
pub mod store;
pub mod testhook;
pub mod time;
