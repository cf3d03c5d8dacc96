//! Crash-test hooks. `TRAILWATCH_TEST_ABORT_AT=<point>[:<n>]` makes the
//! process abort (as SIGKILL would leave it: no destructors, no flushing)
//! the n-th time (default 1st) it reaches the named point. Points:
//! `before_commit`, `after_commit`, `flush_begun`, `flush_written`,
//! `compact_written`, `before_delete`. Unset, a hook is one relaxed atomic load.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

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
    if let Some(h) = hook() {
        if h.point == point && h.seen.fetch_add(1, Ordering::SeqCst) + 1 == h.nth {
            eprintln!("trailwatch: test hook: aborting at {point}");
            std::process::abort();
        }
    }
}
