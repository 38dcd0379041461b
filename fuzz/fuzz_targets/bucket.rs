//! One bucket (a root leaf, or a node and its leaf) at extreme rates, bursts and time spans,
//! checked against an exact model of its token levels; see `src/bucket.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: throttle_fuzz::bucket::BucketInput| {
    throttle_fuzz::bucket::run(&input);
});
