//! Fuzz target `decode_rules`: see `trailwatch::fuzz_harness::decode_rules` for what it
//! feeds and which invariants it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    trailwatch::fuzz_harness::decode_rules(data);
});
