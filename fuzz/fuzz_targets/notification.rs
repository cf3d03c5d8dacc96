//! Fuzz target `notification`: see `trailwatch::fuzz_harness::notification` for what it
//! feeds and which invariants it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    trailwatch::fuzz_harness::notification(data);
});
