//! The crate's one 128-bit division, kept out of line.
//!
//! Rates are exact fractions (`amount / period`) and bucket levels are in token·ns, so
//! converting between tokens and time divides a 128-bit product by a 64-bit rate or period.
//! On a 32-bit MCU each inlined 128-bit division is most of a kilobyte of code: every caller
//! (refill bounds, recovery instants, piece sizes, stats, estimates) goes through [`div`]
//! instead, so the image holds one copy.

/// `⌊n / d⌋`; a divisor of 0 counts as 1 (callers never pass 0: periods and the rates they
/// divide by are checked first; this keeps the function total).
#[inline(never)]
pub(crate) fn div(n: u128, d: u64) -> u128 {
    n / u128::from(d.max(1))
}

/// `⌈n / d⌉` (as [`div`]).
pub(crate) fn div_ceil(n: u128, d: u64) -> u128 {
    let q = div(n, d);
    if q * u128::from(d.max(1)) < n {
        q + 1
    } else {
        q
    }
}

/// `⌊n / d⌋` rounded toward −∞ (`i128::div_euclid` for a positive divisor).
pub(crate) fn floor_div(n: i128, d: u64) -> i128 {
    if n >= 0 {
        div(n.unsigned_abs(), d) as i128
    } else {
        -(div_ceil(n.unsigned_abs(), d) as i128)
    }
}

/// `⌊a × b / d⌋`, saturating at `u64::MAX`.
pub(crate) fn mul_div(a: u64, b: u64, d: u64) -> u64 {
    saturate(div(u128::from(a) * u128::from(b), d))
}

/// `x` as `u64`, saturating.
pub(crate) fn saturate(x: u128) -> u64 {
    u64::try_from(x).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_and_saturation() {
        assert_eq!(div(7, 2), 3);
        assert_eq!(div_ceil(7, 2), 4);
        assert_eq!(div_ceil(8, 2), 4);
        assert_eq!(div(5, 0), 5);
        assert_eq!(floor_div(-7, 2), -4);
        assert_eq!(floor_div(-8, 2), -4);
        assert_eq!(floor_div(7, 2), 3);
        assert_eq!(
            floor_div(-(1i128 << 120), 3),
            (-(1i128 << 120)).div_euclid(3)
        );
        assert_eq!(mul_div(u64::MAX, u64::MAX, 1), u64::MAX);
        assert_eq!(mul_div(1 << 40, 1 << 40, 1 << 41), 1 << 39);
    }
}
