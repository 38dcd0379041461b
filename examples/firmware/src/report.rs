//! QEMU only (feature `qemu`): prints each second's write rate per connection through
//! semihosting, checks it, then exits QEMU with the verdict (exit status 0 or 1), so CI can
//! check the firmware really throttles on the target: in every second but the first after a
//! change, the total within ±10 % of the server limit and no connection below half its share.

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m_semihosting::{debug, hprintln};
use embassy_time::{Instant, Timer};

use crate::{CONNECTIONS, FAST, PERIOD_SECS, SLOW};

/// Seconds reported: two periods of the limit changer (slow, then fast).
const SECONDS: u64 = 2 * PERIOD_SECS;

#[embassy_executor::task]
pub(crate) async fn reporter(sent: &'static [AtomicU32; CONNECTIONS]) {
    hprintln!(
        "8 connections, server limit {} KiB/s for {} s, then {} KiB/s (embassy-time seconds)",
        SLOW >> 10,
        PERIOD_SECS,
        FAST >> 10
    );
    let start = Instant::now();
    let mut last = [0u32; CONNECTIONS];
    let mut ok = true;
    for second in 1..=SECONDS {
        Timer::at(start + embassy_time::Duration::from_secs(second)).await;
        let mut total = 0u32;
        let (mut min, mut max) = (u32::MAX, 0u32);
        for (prev, counter) in last.iter_mut().zip(sent.iter()) {
            let now = counter.load(Ordering::Relaxed);
            let delta = now.wrapping_sub(*prev);
            *prev = now;
            total = total.wrapping_add(delta);
            min = min.min(delta);
            max = max.max(delta);
        }
        let limit = if second <= PERIOD_SECS { SLOW } else { FAST };
        let settling = second == 1 || second == PERIOD_SECS + 1;
        let within = total.abs_diff(limit) <= limit / 10 && min >= limit / CONNECTIONS as u32 / 2;
        ok &= settling || within;
        hprintln!(
            "t={}s total {} KiB/s, per connection {}..{} KiB/s{}",
            second,
            total >> 10,
            min >> 10,
            max >> 10,
            match (settling, within) {
                (true, _) => " (limit just changed)",
                (false, true) => " ok",
                (false, false) => " OUT OF BOUNDS",
            }
        );
    }
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
}
