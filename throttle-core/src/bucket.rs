//! Exact token-bucket arithmetic for the tiers of one node.
//!
//! Each tier keeps one signed level, counted in *token-nanoseconds per period*: a tier of
//! `amount` tokens per `period` ns holds `level / period` tokens. In those units refilling `dt`
//! ns adds exactly `dt × amount` and spending `n` tokens removes exactly `n × period`, so no
//! remainder is ever dropped and nothing drifts over years of refills, without a division on
//! the grant path. The level is capped at `burst × period` (a full bucket) and may go below
//! zero by less than one piece: a node may *start* a piece while every tier holds at least one
//! whole token (its *threshold*: `min(one token, full bucket)`, so `period`, or 0 for a burst
//! of 0), and the piece it sends may put it in debt (as Linux HTB does). That is what bounds
//! the conformance slack to `burst + one piece` and lets a request larger than the burst go
//! through in pieces. Requiring a whole token rather than a level ≥ 0 makes request limits
//! exact: with pieces of one token (`acquire(1)`), "10 per second" admits exactly 10 at once
//! and "1 per minute" exactly 1, not one more on credit of the next period.
//!
//! The field `level` holds the level *less the threshold*, so that "may start a piece" is
//! `level ≥ 0` and the instant it becomes true is the old "out of debt" computation: one sign
//! test on the decision path, where a node is checked many times per grant. The cap is then
//! `(burst − 1)⁺ × period`, which costs the refill one saturating subtraction; the few places
//! that need the real level (`tokens`, `relimit`, `hold_bound`, `holds_at`) add the threshold
//! back.
//!
//! Ranges: `amount, burst, n < 2^64`, `period ≤ 2^55`, so every product is below `2^119` and
//! `level` stays within `±2^121` after saturating refills: `i128` never overflows.
//!
//! A [`window`](crate::Tier::window) tier has no level (its slot stays 0): its counters live in
//! [`Window`], and each method below hands it over there. It is never in debt; it is sendable
//! while its window has room for one more token.

use crate::limits::{Limits, Tier, MAX_TIERS};
use crate::muldiv;
use crate::window::Window;

/// Refills are capped here before they are added (a full bucket is at most `2^119`).
const REFILL_CAP: u128 = 1 << 120;

/// The live state of a node's tiers. Indexes match `Limits::tiers()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Buckets {
    /// Per token tier: its level less its [`threshold`] (see the module docs).
    level: [i128; MAX_TIERS],
    /// The instant (ns) up to which the levels are refilled.
    last: u64,
    /// The counters of the node's window tier, if it has one.
    window: Window,
}

fn cap(amount_burst: u64, period: u64) -> i128 {
    (u128::from(amount_burst) * u128::from(period)) as i128
}

/// The level a token tier must hold to start a piece: one whole token (`period`), or its full
/// bucket when that is smaller (a burst of 0: 0, the most its level ever is).
fn threshold(t: &Tier) -> i128 {
    cap(t.burst().min(1), t.period_ns())
}

/// A full bucket as stored: `burst × period` less the threshold, `(burst − 1)⁺ × period`.
#[inline]
fn top(t: &Tier) -> i128 {
    cap(t.burst().saturating_sub(1), t.period_ns())
}

impl Buckets {
    /// Every tier starts full, so a new node may use its burst at once.
    pub(crate) fn full(limits: &Limits, now: u64) -> Buckets {
        let mut level = [0; MAX_TIERS];
        for (l, t) in level.iter_mut().zip(limits.iter_tiers()) {
            if !t.is_window() {
                *l = top(t);
            }
        }
        Buckets {
            level,
            last: now,
            window: Window::empty(limits.window(), now),
        }
    }

    /// Earns what `now - last` is worth. `now` earlier than `last` earns nothing.
    #[inline]
    pub(crate) fn refill(&mut self, limits: &Limits, now: u64) {
        if now > self.last {
            self.refill_slow(limits, now);
        }
    }

    fn refill_slow(&mut self, limits: &Limits, now: u64) {
        let dt = u128::from(now - self.last);
        self.last = now;
        for (l, t) in self.level.iter_mut().zip(limits.iter_tiers()) {
            if t.is_window() {
                self.window.advance(t, now);
                continue;
            }
            let full = top(t);
            if *l >= full {
                continue;
            }
            // both factors are below 2^64: the product cannot overflow u128
            let earned = (dt * u128::from(t.amount())).min(REFILL_CAP) as i128;
            *l = (*l + earned).min(full);
        }
    }

    /// True when some tier is paused (earns nothing until the limit changes).
    pub(crate) fn paused(limits: &Limits) -> bool {
        limits.is_paused()
    }

    /// True when no tier is paused and every tier may start a piece: a token tier holds its
    /// threshold (one whole token, see the module docs: the stored level is ≥ 0), a window
    /// has room for one more token. Call [`Buckets::refill`] first.
    #[inline]
    pub(crate) fn sendable(&self, limits: &Limits) -> bool {
        limits.iter_tiers().zip(&self.level).all(|(t, &l)| {
            !t.is_paused()
                && if t.is_window() {
                    self.window.room(t) > 0
                } else {
                    l >= 0
                }
        })
    }

    /// Spends `n` tokens on every tier (may go into debt).
    #[inline]
    pub(crate) fn consume(&mut self, limits: &Limits, n: u64) {
        for (l, t) in self.level.iter_mut().zip(limits.iter_tiers()) {
            if t.is_window() {
                self.window.consume(n);
            } else {
                *l -= cap(n, t.period_ns());
            }
        }
    }

    /// Gives back `n` unused tokens on every tier, never beyond a full bucket.
    pub(crate) fn refund(&mut self, limits: &Limits, n: u64) {
        for (l, t) in self.level.iter_mut().zip(limits.iter_tiers()) {
            if t.is_window() {
                self.window.refund(n);
                continue;
            }
            let full = top(t);
            if *l < full {
                *l = (*l + cap(n, t.period_ns())).min(full);
            }
        }
    }

    /// The instant (ns) at which the node is sendable again, given the levels refilled up to
    /// `self.last`; `None` when paused. Exact: the first nanosecond at which every token tier
    /// holds its threshold (its stored level ≥ 0) and every window has room for one token.
    pub(crate) fn recovery(&self, limits: &Limits) -> Option<u64> {
        let mut at = self.last;
        for (t, &l) in limits.iter_tiers().zip(&self.level) {
            if t.is_paused() {
                return None;
            }
            if t.is_window() {
                at = at.max(self.window.ready_at(t, 1, self.last)?);
                continue;
            }
            if l < 0 {
                let dt = muldiv::div_ceil(l.unsigned_abs(), t.amount());
                at = at.max(self.last.saturating_add(muldiv::saturate(dt)));
            }
        }
        Some(at)
    }

    /// The first nanosecond (≥ `self.last`, levels refilled up to it) at which every token
    /// tier holds `n` tokens more than its floor — its threshold when `start` (so that, `n`
    /// spent, it may still start a piece), else 0 (it can spend `n` without going into debt).
    /// Window tiers are not looked at. `None` when a tier is paused. Exact, with `div_ceil`.
    pub(crate) fn holds_at(&self, limits: &Limits, n: u64, start: bool) -> Option<u64> {
        let mut at = self.last;
        for (t, &l) in limits.iter_tiers().zip(&self.level) {
            if t.is_paused() {
                return None;
            }
            if t.is_window() {
                continue;
            }
            // in stored units (level − threshold); n·period < 2^119, the threshold ≤ 2^55,
            // the level ≥ −2^121: no overflow
            let mut floor = cap(n, t.period_ns());
            if !start {
                floor -= threshold(t);
            }
            if l < floor {
                let dt = muldiv::div_ceil((floor - l) as u128, t.amount());
                at = at.max(self.last.saturating_add(muldiv::saturate(dt)));
            }
        }
        Some(at)
    }

    /// Moves to new limits at `now` (refill with the old ones first). Tier `i` keeps the tokens
    /// it held (debt included), rescaled to the new period and capped by the new burst; a tier
    /// that did not exist before starts full.
    pub(crate) fn relimit(&mut self, old: &Limits, new: &Limits, now: u64) {
        self.refill(old, now);
        let mut level = [0; MAX_TIERS];
        for (i, (l, t)) in level.iter_mut().zip(new.tiers()).enumerate() {
            if t.is_window() {
                continue;
            }
            let full = cap(t.burst(), t.period_ns());
            // the real levels: stored + threshold
            let held = match old.tiers().get(i).filter(|o| !o.is_window()) {
                Some(o) if o.period_ns() == t.period_ns() => {
                    (self.level[i] + threshold(o)).min(full)
                }
                Some(o) => {
                    // tokens = level / old period, floored toward −∞ so a rescale never mints
                    let tokens = muldiv::floor_div(self.level[i] + threshold(o), o.period_ns());
                    (tokens * i128::from(t.period_ns())).min(full)
                }
                None => full,
            };
            *l = held - threshold(t);
        }
        self.level = level;
        self.last = self.last.max(now);
        self.window = match (old.window(), new.window()) {
            (Some(o), Some(n)) => self.window.rescale(o, n, self.last),
            (_, n) => Window::empty(n, self.last),
        };
    }

    /// The counters of the node's window tier (meaningless without one).
    pub(crate) fn window(&self) -> &Window {
        &self.window
    }

    /// The held-turn bound of this node (see `sched`, "Held turns"): how long (ns) a turn may
    /// keep it waiting, and whether it has already banked enough that it should not wait at
    /// all. Per tier the bound is half of `min(rate × round, burst)`: what is banked while a
    /// turn is held (below the bound when it starts, plus the bound) never exceeds the burst,
    /// so holding a turn never wastes a token. `None` when no tier earns anything.
    pub(crate) fn hold_bound(&self, limits: &Limits, round_ns: u64) -> Option<(u64, bool)> {
        let mut out: Option<(u64, bool)> = None;
        for (t, &l) in limits.iter_tiers().zip(&self.level) {
            // a window keeps its room until used (up to its N): holding wastes nothing there
            if t.is_paused() || t.is_window() {
                continue;
            }
            let period = u128::from(t.period_ns());
            let round = muldiv::mul_div(t.amount(), round_ns, t.period_ns());
            let bound = u128::from(round.min(t.burst()) / 2);
            // the real level (a bound of at least one token banked is also the threshold to
            // start a piece; a bound of 0 ends the hold at once whatever `banked` says)
            let l = l + threshold(t);
            let banked = l >= 0 && l.unsigned_abs() >= bound * period;
            let ns = muldiv::saturate(muldiv::div(bound * period, t.amount()));
            out = Some(match out {
                None => (ns, banked),
                Some((h, b)) => (h.min(ns), b || banked),
            });
        }
        out
    }

    /// Whole tokens currently held by tier `i` (negative = debt), for stats and tests.
    /// For a window tier: the tokens it can still admit now.
    pub(crate) fn tokens(&self, limits: &Limits, i: usize) -> i128 {
        match limits.tiers().get(i) {
            Some(t) if t.is_window() => i128::from(self.window.room(t)),
            Some(t) => muldiv::floor_div(self.level[i] + threshold(t), t.period_ns()),
            None => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Tier;
    use core::time::Duration;

    const S: u64 = 1_000_000_000;

    #[test]
    fn full_bucket_spent_recovers_at_exact_rate() {
        let l = Limits::new(Tier::per_second(1000).with_burst(0));
        let mut b = Buckets::full(&l, 0);
        assert!(b.sendable(&l));
        b.consume(&l, 250);
        assert!(!b.sendable(&l));
        assert_eq!(b.recovery(&l), Some(S / 4));
        b.refill(&l, S / 4 - 1);
        assert!(!b.sendable(&l));
        b.refill(&l, S / 4);
        assert!(b.sendable(&l));
    }

    #[test]
    fn a_piece_starts_on_one_whole_token() {
        // 1 per minute, burst 1: one token, then a minute for the next
        let l = Limits::new(Tier::per_period(1, Duration::from_secs(60)).unwrap());
        let mut b = Buckets::full(&l, 0);
        assert!(b.sendable(&l));
        assert_eq!(b.tokens(&l, 0), 1);
        b.consume(&l, 1);
        assert_eq!(b.tokens(&l, 0), 0);
        assert!(!b.sendable(&l));
        assert_eq!(b.recovery(&l), Some(60 * S));
        // one token at once (no debt): 60 s; one to spend and one more to start on: 120 s
        assert_eq!(b.holds_at(&l, 1, false), Some(60 * S));
        assert_eq!(b.holds_at(&l, 1, true), Some(120 * S));
        b.refill(&l, 60 * S - 1);
        assert!(!b.sendable(&l));
        b.refill(&l, 60 * S);
        assert!(b.sendable(&l));
        // never beyond the burst
        b.refill(&l, 600 * S);
        assert_eq!(b.tokens(&l, 0), 1);
        b.refund(&l, 5);
        assert_eq!(b.tokens(&l, 0), 1);
        // a piece of 3 started on the one token: 2 of debt, 3 minutes to the next start
        b.consume(&l, 3);
        assert_eq!(b.tokens(&l, 0), -2);
        assert_eq!(b.recovery(&l), Some(600 * S + 180 * S));
        // the tokens carry over a limit change, debt included
        let per_s = Limits::new(Tier::per_second(10));
        b.relimit(&l, &per_s, 600 * S);
        assert_eq!(b.tokens(&per_s, 0), -2);
        assert_eq!(b.recovery(&per_s), Some(600 * S + 300_000_000));
    }

    #[test]
    fn refill_over_years_is_exact() {
        // 7 tokens per minute, refilled every 13 ns for the equivalent of years: no remainder lost.
        let l = Limits::new(
            Tier::per_period(7, Duration::from_secs(60))
                .unwrap()
                .with_burst(u64::MAX),
        );
        let mut b = Buckets::full(&l, 0);
        b.consume(&l, u64::MAX);
        let mut now = 0;
        for _ in 0..100_000 {
            now += 13;
            b.refill(&l, now);
        }
        // jump the rest in one go: the level must equal a single refill over the whole span
        let years = 10 * 365 * 24 * 3600 * S;
        b.refill(&l, years);
        let mut one = Buckets::full(&l, 0);
        one.consume(&l, u64::MAX);
        one.refill(&l, years);
        assert_eq!(b, one);
    }

    #[test]
    fn backwards_time_earns_nothing() {
        let l = Limits::per_second(1000);
        let mut b = Buckets::full(&l, 5 * S);
        b.consume(&l, 5000);
        let before = b;
        b.refill(&l, S);
        assert_eq!(b, before);
    }

    #[test]
    fn max_rate_and_burst_do_not_overflow() {
        let l = Limits::new(Tier::per_second(u64::MAX).with_burst(u64::MAX))
            .and(Tier::per_period(u64::MAX, crate::limits::MAX_PERIOD).unwrap())
            .unwrap();
        let mut b = Buckets::full(&l, 0);
        for _ in 0..4 {
            b.consume(&l, u64::MAX);
        }
        b.refill(&l, u64::MAX);
        b.refund(&l, u64::MAX);
        let _ = b.recovery(&l);
        assert!(b.tokens(&l, 0) <= i128::from(u64::MAX));
    }

    #[test]
    fn paused_tier_never_recovers() {
        let l = Limits::per_second(0);
        let b = Buckets::full(&l, 0);
        assert!(!b.sendable(&l));
        assert_eq!(b.recovery(&l), None);
        assert!(Buckets::paused(&l));
    }

    #[test]
    fn refund_never_exceeds_burst() {
        let l = Limits::new(Tier::per_second(1000).with_burst(100));
        let mut b = Buckets::full(&l, 0);
        b.consume(&l, 30);
        b.refund(&l, 50);
        assert_eq!(b.tokens(&l, 0), 100);
    }

    #[test]
    fn relimit_keeps_debt_and_rescales_period() {
        let old = Limits::new(Tier::per_second(1024).with_burst(0));
        let mut b = Buckets::full(&old, 0);
        b.consume(&old, 60 * 1024); // a minute of debt at 1 KiB/s
        assert_eq!(b.recovery(&old), Some(60 * S));
        let new = Limits::new(Tier::per_second(100 << 20));
        b.relimit(&old, &new, S);
        // debt left after 1 s at the old rate: 59 KiB, repaid at 100 MiB/s, plus the whole
        // byte a piece starts on
        let at = b.recovery(&new).unwrap();
        assert_eq!(at, S + ((59 * 1024 + 1) * S).div_ceil(100 << 20));
        let per_min = Limits::new(Tier::per_period(6000, Duration::from_secs(60)).unwrap());
        let mut c = Buckets::full(&per_min, 0);
        c.consume(&per_min, 6010);
        c.relimit(&per_min, &Limits::new(Tier::per_second(100)), 0);
        assert_eq!(c.tokens(&Limits::new(Tier::per_second(100)), 0), -10);
    }
}
