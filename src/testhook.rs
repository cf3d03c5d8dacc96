//! Crash- and fault-test hooks, compiled in but inert unless their
//! environment variable is set (each is read once; unset, a hook costs one
//! atomic load).
//!
//! * `TRAILWATCH_TEST_ABORT_AT=<point>[:<n>]` makes the process abort (as
//!   SIGKILL would leave it: no destructors, no flushing) the n-th time
//!   (default 1st) it reaches the named point. Points, in the order an object
//!   meets them: `mid_download` (first body bytes of an S3 object read, the
//!   rest not yet), `mid_decode` (the object's first record evaluated, the
//!   others not yet), `before_commit`, `after_commit`, `before_delete` (SQS),
//!   and for the aggregates `flush_begun`, `flush_written`, `compact_begun`
//!   (the compaction is recorded, nothing written), `compact_written`.
//! * `TRAILWATCH_TEST_SLOW_OBJECT_MS=<ms>` delays every object by that much
//!   after it is opened (an S3 object whose headers arrived, a local file
//!   read into memory) and before it is decoded: it stands in for a huge
//!   object, so that kills land while objects are in flight.
//! * `TRAILWATCH_TEST_FAIL_WRITES=<flag file>` makes store commits and
//!   Parquet writes fail with ENOSPC while the flag file exists: the
//!   disk-full test's stand-in where no small file system can be mounted.
//! * `TRAILWATCH_TEST_PANIC_OBJECT=<substring>` panics while processing an
//!   object whose name contains it.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

struct Hook {
    point: String,
    nth: u64,
    seen: AtomicU64,
}

fn hook() -> Option<&'static Hook> {
    static HOOK: OnceLock<Option<Hook>> = OnceLock::new();
    HOOK.get_or_init(|| {
        let spec = std::env::var("TRAILWATCH_TEST_ABORT_AT").ok()?;
        let (point, nth) = match spec.split_once(':') {
            Some((p, n)) => (p.to_owned(), n.parse().unwrap_or(1)),
            None => (spec, 1),
        };
        Some(Hook {
            point,
            nth,
            seen: AtomicU64::new(0),
        })
    })
    .as_ref()
}

/// Aborts the process if the test hook names this point and count.
pub fn hit(point: &str) {
    if let Some(h) = hook()
        && h.point == point
        && h.seen.fetch_add(1, Ordering::SeqCst) + 1 == h.nth
    {
        eprintln!("trailwatch: test hook: aborting at {point}");
        std::process::abort();
    }
}

/// The artificial per-object delay, if `TRAILWATCH_TEST_SLOW_OBJECT_MS` is set.
pub fn slow_object() -> Option<Duration> {
    static SLOW: OnceLock<Option<Duration>> = OnceLock::new();
    *SLOW.get_or_init(|| {
        std::env::var("TRAILWATCH_TEST_SLOW_OBJECT_MS")
            .ok()?
            .parse()
            .ok()
            .map(Duration::from_millis)
    })
}

/// Panics while processing an object whose name contains
/// `TRAILWATCH_TEST_PANIC_OBJECT`, so that a test can check that a bug which
/// panics on one input costs that object only.
pub fn panic_on_object(name: &str) {
    static NEEDLE: OnceLock<Option<String>> = OnceLock::new();
    if let Some(needle) = NEEDLE.get_or_init(|| std::env::var("TRAILWATCH_TEST_PANIC_OBJECT").ok())
        && name.contains(needle.as_str())
    {
        panic!("test hook: panicking on {name}");
    }
}

/// `Err(ENOSPC)` while the `TRAILWATCH_TEST_FAIL_WRITES` flag file exists.
pub fn injected_write_error() -> std::io::Result<()> {
    static FLAG: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();
    match FLAG.get_or_init(|| std::env::var_os("TRAILWATCH_TEST_FAIL_WRITES").map(Into::into)) {
        Some(flag) if flag.exists() => Err(std::io::Error::from_raw_os_error(libc::ENOSPC)),
        _ => Ok(()),
    }
}
