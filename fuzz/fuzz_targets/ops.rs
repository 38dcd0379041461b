//! Random sequences of tree operations checked against a reference model; see `src/lib.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: throttle_fuzz::Input| {
    throttle_fuzz::run(&input);
});
