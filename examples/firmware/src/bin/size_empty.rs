//! Size probe, the baseline: the same start-up and loop as `size_core` and `size_shared`
//! without the core. `.ci/steps/41-size.sh` subtracts its `.text` from theirs, so what remains
//! is what a firmware pays for the core in a linked image (this workspace's release profile:
//! `opt-level = "s"`, LTO, one codegen unit). Never flashed.

#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;
use panic_halt as _;

#[entry]
fn main() -> ! {
    let mut now = black_box(0u64);
    loop {
        black_box(now);
        now = now.wrapping_add(black_box(1_000_000));
    }
}
