//! The number-and-unit grammar shared by rates and sizes, parsed with integer arithmetic
//! (exact: `1.5M` is 1 572 864, not a float rounded), and the two ways to print an amount of
//! bytes: exact (round-trips through the parser) and rounded for people (`{:.2}`).
//!
//! ```text
//! quantity = number [blank] [unit] ["/s"]
//! number   = digits ["." digits] | "." digits     (at most 24 significant digits)
//! unit     = ""                   bytes
//!          | "B"                  bytes
//!          | P | P "i" | P "iB"   1024^n bytes    (P = K M G T, either case)
//!          | P "B"                1000^n bytes
//!          | "bit" | P "bit"      bits, 1000^n    ("bits" too)
//!          | P "ibit"             bits, 1024^n
//! rejected: anything ending in "ps" (kbps, Mbps, MBps: bits or bytes?) and a lowercase
//!           "b" after a prefix (Mb, kb: bits or bytes?), each with a message saying what to write.
//! ```

use core::fmt;

use crate::error::ParseError;

/// Most significant digits a number may have (keeps `digits × 1024^4` inside `u128`).
const MAX_DIGITS: u32 = 24;

/// A parsed quantity, before rates and sizes give it a meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Quantity {
    /// Bytes, rounded to the nearest (half up).
    pub(crate) bytes: u64,
    /// The number written was zero (`0`, `0.0`, `0M`).
    pub(crate) zero: bool,
    /// A `/s` suffix was written.
    pub(crate) per_second: bool,
}

/// How many bytes (or bits) one unit is, and whether it counts bits.
fn unit(u: &str) -> Result<(u128, bool), ParseError> {
    // every unit is ASCII; checking first keeps the byte slicing below on char boundaries
    if !u.is_ascii() {
        return Err(ParseError::UnknownUnit);
    }
    let b = u.as_bytes();
    if b.len() >= 2 && b[b.len() - 2..].eq_ignore_ascii_case(b"ps") {
        let prefix = b.first().copied().filter(|c| !matches!(c, b'b' | b'B'));
        return Err(ParseError::AmbiguousPerSecond {
            prefix: prefix.unwrap_or(0),
        });
    }
    let bits_word = |s: &str| s.eq_ignore_ascii_case("bit") || s.eq_ignore_ascii_case("bits");
    match u {
        "" | "B" => return Ok((1, false)),
        "b" => return Err(ParseError::AmbiguousB { prefix: 0 }),
        _ if bits_word(u) => return Ok((1, true)),
        _ => {}
    }
    let (p, rest) = u.split_at(1);
    let n = match p {
        "k" | "K" => 1,
        "m" | "M" => 2,
        "g" | "G" => 3,
        "t" | "T" => 4,
        _ => return Err(ParseError::UnknownUnit),
    };
    let (bin, dec) = (1024u128.pow(n), 1000u128.pow(n));
    match rest {
        "" | "i" | "iB" => Ok((bin, false)),
        "B" => Ok((dec, false)),
        "b" | "ib" => Err(ParseError::AmbiguousB { prefix: b[0] }),
        _ if bits_word(rest) => Ok((dec, true)),
        _ if rest.len() > 1 && rest.starts_with('i') && bits_word(&rest[1..]) => Ok((bin, true)),
        _ => Err(ParseError::UnknownUnit),
    }
}

/// Parses `number [unit] [/s]`. Keywords (`off`, `pause`) are the callers' business.
pub(crate) fn parse(s: &str) -> Result<Quantity, ParseError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(ParseError::Empty);
    }
    let mut mantissa: u128 = 0;
    let (mut digits, mut decimals, mut seen_digit, mut seen_dot) = (0u32, 0u32, false, false);
    let mut end = s.len();
    for (i, c) in s.char_indices() {
        match c {
            '0'..='9' => {
                seen_digit = true;
                if mantissa > 0 || c != '0' {
                    digits += 1;
                }
                if digits > MAX_DIGITS {
                    return Err(ParseError::TooLarge);
                }
                mantissa = mantissa * 10 + u128::from(c as u8 - b'0');
                if seen_dot {
                    decimals += 1;
                }
            }
            '.' if !seen_dot => seen_dot = true,
            _ => {
                end = i;
                break;
            }
        }
    }
    if !seen_digit {
        return Err(ParseError::InvalidNumber);
    }
    let mut rest = s[end..].trim_start();
    let per_second = match rest.strip_suffix("/s") {
        Some(r) => {
            rest = r.trim_end();
            true
        }
        None => false,
    };
    if rest.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return Err(ParseError::InvalidNumber);
    }
    let (mult, bits) = unit(rest)?;
    // value = mantissa × mult / 10^decimals (/ 8 for bits), rounded half up. The decimals
    // are at most MAX_DIGITS + leading zeros after the dot, which can be many: a scale past
    // 10^38 means the value is far below one byte anyway.
    let num = mantissa.checked_mul(mult).ok_or(ParseError::TooLarge)?;
    let mut den = if bits { 8u128 } else { 1 };
    for _ in 0..decimals {
        den = match den.checked_mul(10) {
            Some(d) => d,
            None if mantissa == 0 => 1,
            None => return Err(ParseError::BelowOneByte),
        };
    }
    let value = (num + den / 2) / den;
    let bytes = u64::try_from(value).map_err(|_| ParseError::TooLarge)?;
    let zero = mantissa == 0;
    if bytes == 0 && !zero {
        return Err(ParseError::BelowOneByte);
    }
    Ok(Quantity {
        bytes,
        zero,
        per_second,
    })
}

/// IEC units, largest first, with their names.
const IEC: [(u64, &str); 4] = [
    (1 << 40, "TiB"),
    (1 << 30, "GiB"),
    (1 << 20, "MiB"),
    (1 << 10, "KiB"),
];
/// SI units, largest first.
const SI: [(u64, &str); 4] = [
    (1_000_000_000_000, "TB"),
    (1_000_000_000, "GB"),
    (1_000_000, "MB"),
    (1_000, "kB"),
];

/// Writes `n / unit` with up to three decimals, trailing zeros trimmed, if that is exact.
fn write_exact(
    f: &mut fmt::Formatter<'_>,
    n: u64,
    (unit, name): (u64, &str),
    sep: &str,
    suffix: &str,
) -> bool {
    let milli = u128::from(n) * 1000;
    if n < unit || milli % u128::from(unit) != 0 {
        return false;
    }
    let v = milli / u128::from(unit);
    let (int, mut frac) = (v / 1000, v % 1000);
    let res = if frac == 0 {
        write!(f, "{int}{sep}{name}{suffix}")
    } else {
        let mut width = 3;
        while frac % 10 == 0 {
            frac /= 10;
            width -= 1;
        }
        write!(f, "{int}.{frac:0width$}{sep}{name}{suffix}")
    };
    res.is_ok()
}

/// Exact when no precision is asked: the largest IEC unit in which `n` has at most three
/// decimals, else the largest such SI unit, else plain bytes — so the parser reads back the
/// same number. With a precision (`{:.2}`): the largest IEC unit not above `n`, rounded, as pv
/// prints (`1.50 MiB/s`).
pub(crate) fn fmt_bytes(f: &mut fmt::Formatter<'_>, n: u64, suffix: &str) -> fmt::Result {
    if let Some(p) = f.precision() {
        return fmt_rounded(f, n, p, &IEC, "B", suffix);
    }
    fmt_exact(f, n, " ", suffix)
}

/// The exact form without blanks (`1.5MiB/s`), for schedules (their words split on blanks).
pub(crate) fn fmt_bytes_compact(f: &mut fmt::Formatter<'_>, n: u64) -> fmt::Result {
    fmt_exact(f, n, "", "/s")
}

fn fmt_exact(f: &mut fmt::Formatter<'_>, n: u64, sep: &str, suffix: &str) -> fmt::Result {
    for unit in IEC.iter().chain(SI.iter()) {
        if write_exact(f, n, *unit, sep, suffix) {
            return Ok(());
        }
    }
    write!(f, "{n}{sep}B{suffix}")
}

/// `n` in the largest of `units` not above it (else `base`), with `precision` decimals.
pub(crate) fn fmt_rounded(
    f: &mut fmt::Formatter<'_>,
    n: u64,
    precision: usize,
    units: &[(u64, &str)],
    base: &str,
    suffix: &str,
) -> fmt::Result {
    let (unit, name) = units
        .iter()
        .copied()
        .find(|(u, _)| n >= *u)
        .unwrap_or((1, base));
    let p = precision.min(6);
    if unit == 1 {
        return write!(f, "{n} {name}{suffix}");
    }
    let scale = 10u128.pow(p as u32);
    let v = (u128::from(n) * scale + u128::from(unit) / 2) / u128::from(unit);
    let (int, frac) = (v / scale, v % scale);
    if p == 0 {
        write!(f, "{int} {name}{suffix}")
    } else {
        write!(f, "{int}.{frac:0p$} {name}{suffix}")
    }
}

/// SI bit units for [`Bits`](crate::Bits), largest first.
pub(crate) const SI_BITS: [(u64, &str); 4] = [
    (1_000_000_000_000, "Tbit"),
    (1_000_000_000, "Gbit"),
    (1_000_000, "Mbit"),
    (1_000, "kbit"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(s: &str) -> Result<u64, ParseError> {
        parse(s).map(|q| q.bytes)
    }

    #[test]
    fn units_follow_pv_for_letters_and_si_for_b() {
        assert_eq!(bytes("10M"), Ok(10 << 20));
        assert_eq!(bytes("10m"), Ok(10 << 20));
        assert_eq!(bytes("10MiB"), Ok(10 << 20));
        assert_eq!(bytes("10Mi"), Ok(10 << 20));
        assert_eq!(bytes("10MB"), Ok(10_000_000));
        assert_eq!(bytes("500kB"), Ok(500_000));
        assert_eq!(bytes("500KB"), Ok(500_000));
        assert_eq!(bytes("1K"), Ok(1024));
        assert_eq!(bytes("2T"), Ok(2 << 40));
        assert_eq!(bytes("4096"), Ok(4096));
        assert_eq!(bytes("4096B"), Ok(4096));
        assert_eq!(bytes(" 1.5 MiB "), Ok(3 << 19));
        assert_eq!(bytes(".5K"), Ok(512));
        assert_eq!(bytes("1."), Ok(1));
    }

    #[test]
    fn bits_are_divided_by_eight() {
        assert_eq!(bytes("800Mbit"), Ok(100_000_000));
        assert_eq!(bytes("8kbit"), Ok(1000));
        assert_eq!(bytes("8Kibit"), Ok(1024));
        assert_eq!(bytes("16bit"), Ok(2));
        assert_eq!(bytes("1bits"), Err(ParseError::BelowOneByte));
        assert_eq!(bytes("12bit"), Ok(2), "1.5 rounds half up");
    }

    #[test]
    fn per_second_suffix_is_optional_and_recorded() {
        let q = parse("10 MiB/s").unwrap();
        assert_eq!((q.bytes, q.per_second), (10 << 20, true));
        assert!(!parse("10M").unwrap().per_second);
        assert_eq!(bytes("1Gbit/s"), Ok(125_000_000));
    }

    #[test]
    fn ambiguous_units_are_rejected_with_their_prefix() {
        assert_eq!(
            bytes("10mbps"),
            Err(ParseError::AmbiguousPerSecond { prefix: b'm' })
        );
        assert_eq!(
            bytes("10 kbps"),
            Err(ParseError::AmbiguousPerSecond { prefix: b'k' })
        );
        assert_eq!(
            bytes("10MBps"),
            Err(ParseError::AmbiguousPerSecond { prefix: b'M' })
        );
        assert_eq!(
            bytes("10bps"),
            Err(ParseError::AmbiguousPerSecond { prefix: 0 })
        );
        assert_eq!(bytes("10Mb"), Err(ParseError::AmbiguousB { prefix: b'M' }));
        assert_eq!(bytes("10b"), Err(ParseError::AmbiguousB { prefix: 0 }));
    }

    #[test]
    fn garbage_is_rejected() {
        for s in [
            "", " ", "M", "fast", "1¥", "¥", "5Ἲb", "-1M", "+1", "1e6", "1..2", "1.2.3", "10 X",
            "10Q",
        ] {
            assert!(bytes(s).is_err(), "{s:?}");
        }
        assert_eq!(bytes("1 2"), Err(ParseError::InvalidNumber));
        assert_eq!(bytes("99999999999999999999T"), Err(ParseError::TooLarge));
        assert_eq!(bytes("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(bytes("18446744073709551616"), Err(ParseError::TooLarge));
        assert_eq!(bytes("0.4"), Err(ParseError::BelowOneByte));
        assert_eq!(bytes("0.000"), Ok(0));
    }
}
