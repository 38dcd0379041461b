//! Size probe: every operation of the core and of its sharing layer (`Shared` with a
//! critical-section lock: `nostd_check::exercise` and `exercise_shared`), linked as a firmware
//! links it. `.ci/steps/41-size.sh` reports this binary's `.text` minus `size_empty`'s. Never
//! flashed.

#![no_std]
#![no_main]

use core::hint::black_box;
use core::task::Waker;

use cortex_m as _; // the critical-section implementation (`critical-section-single-core`)
use cortex_m_rt::entry;
use panic_halt as _;

#[entry]
fn main() -> ! {
    let mut tree = nostd_check::measured_tree();
    let mut now = black_box(0u64);
    loop {
        if let Some((_, leaf, _)) = black_box(nostd_check::exercise(&mut tree, now)) {
            black_box(nostd_check::exercise_shared(leaf, now, Waker::noop()));
        }
        now = now.wrapping_add(black_box(1_000_000));
    }
}
