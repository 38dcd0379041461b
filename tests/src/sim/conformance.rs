//! The conformance check: the worst window of a token ledger against one tier, exactly.
//!
//! For a tier of `amount` tokens per `period` with burst `b`, the slack of a window `[s, t]`
//! is `used(s..t) − amount·(t−s)/period − b`. Its maximum over all windows is reached with
//! `s` and `t` at ledger entries, and a Lindley recursion finds it in one pass:
//! `Q_k = n_k + max(0, Q_{k−1} − amount·(t_k − t_{k−1}))` (in tokens × period, so integers
//! stay exact) is the worst window *ending* at entry `k`: one pass, O(k), integer math;
//! entries may be negative (refunds).

use throttle_core::Tier;

/// The worst `used(s..t) − amount·(t−s)/period` over windows `[s, t]` of `entries`, in
/// tokens × period (exact). `entries` are `(time in ns, tokens)`, sorted by time; tokens are
/// signed (a refund is negative); entries at the same instant count together (a window
/// cannot hold part of an instant). `None` when there is no entry.
///
/// Saturates instead of overflowing on absurd inputs (sums beyond `2^127 / period`).
pub fn worst_excess_scaled(entries: &[(u64, i128)], amount: u64, period_ns: u64) -> Option<i128> {
    let p = i128::from(period_ns);
    let mut q: i128 = 0;
    let mut last: Option<u64> = None;
    let mut best: Option<i128> = None;
    let mut k = 0;
    while k < entries.len() {
        // a window holds every entry of its end points' instants: sum each instant first
        let t = entries[k].0;
        let mut d: i128 = 0;
        while k < entries.len() && entries[k].0 == t {
            d = d.saturating_add(entries[k].1);
            k += 1;
        }
        if let Some(l) = last {
            let drain = u128::from(amount).saturating_mul(u128::from(t.saturating_sub(l)));
            q = if q <= 0 || drain >= q.unsigned_abs() {
                0
            } else {
                q - drain as i128
            };
        }
        q = q.saturating_add(d.saturating_mul(p));
        best = Some(best.map_or(q, |b| b.max(q)));
        last = Some(t);
    }
    best
}

/// The worst slack of `entries` against `tier`, in whole tokens rounded up:
/// `max over [s,t] of used(s..t) − rate·(t−s) − burst`. Conforming means `≤ one piece`.
/// `None` when there is no entry.
pub fn worst_slack(entries: &[(u64, i128)], tier: &Tier) -> Option<i128> {
    let p = tier.period().as_nanos() as i128;
    let best = worst_excess_scaled(entries, tier.amount(), tier.period().as_nanos() as u64)?;
    let over = best.saturating_sub(i128::from(tier.burst()).saturating_mul(p));
    // ceil(over / p), exact for negative values too
    Some(-((-over).div_euclid(p)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    /// O(k²) reference: every window between two entries.
    fn brute(entries: &[(u64, i128)], amount: u64, period: u64) -> Option<i128> {
        let p = i128::from(period);
        let mut best = None;
        for i in 0..entries.len() {
            let s = entries[i].0;
            // a window starts at the first entry of its time
            if i > 0 && entries[i - 1].0 == s {
                continue;
            }
            let mut used = 0i128;
            for (j, &(t, d)) in entries.iter().enumerate().skip(i) {
                used += d;
                // a window ends after the last entry of its time
                if entries.get(j + 1).is_some_and(|e| e.0 == t) {
                    continue;
                }
                let v = used * p - i128::from(amount) * i128::from(t - s);
                best = Some(best.map_or(v, |b: i128| b.max(v)));
            }
        }
        best
    }

    #[test]
    fn random_ledgers_match_brute_force() {
        let mut g = SplitMix64::new(3);
        for _ in 0..300 {
            let k = g.range(1, 30) as usize;
            let mut t = 0;
            let mut e = Vec::new();
            for _ in 0..k {
                t += g.below(5);
                let d = g.range(0, 20) as i128 - if g.chance(200) { 25 } else { 0 };
                e.push((t, d));
            }
            let (a, p) = (g.range(0, 9), g.range(1, 4));
            assert_eq!(
                worst_excess_scaled(&e, a, p),
                brute(&e, a, p),
                "{e:?} {a}/{p}"
            );
        }
    }

    #[test]
    fn one_burst_then_rate_has_zero_slack() {
        // 1000/s, burst 100: 100 at t=0, then 10 every 10 ms
        let tier = Tier::per_second(1000).with_burst(100);
        let mut e = vec![(0, 100)];
        for k in 1..=100u64 {
            e.push((k * 10_000_000, 10));
        }
        assert_eq!(worst_slack(&e, &tier), Some(0));
        // one more token in the last window is one token of slack
        e.push((1_000_000_000, 1));
        assert_eq!(worst_slack(&e, &tier), Some(1));
        assert_eq!(worst_slack(&[], &tier), None);
    }
}
