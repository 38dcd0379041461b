//! Size probe: every operation of the core on a `FixedTree<8>` (`nostd_check::exercise`, the
//! function the rlib figure of `.ci/steps/41-size.sh` measures), linked as a firmware links it.
//! The step reports this binary's `.text` minus `size_empty`'s. Never flashed.

#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;
use panic_halt as _;

#[entry]
fn main() -> ! {
    let mut tree = nostd_check::measured_tree();
    let mut now = black_box(0u64);
    loop {
        black_box(nostd_check::exercise(&mut tree, now));
        now = now.wrapping_add(black_box(1_000_000));
    }
}
