//! [`Rate`] (bytes per second, or no limit) and [`Size`] (bytes), as people type them, and
//! [`Limit`]: a rate with an optional burst, turned into the core's [`Limits`] in one call.

use core::fmt;
use core::str::FromStr;

use throttle_core::{Limits, Tier};

use crate::error::ParseError;
use crate::quantity::{self, fmt_rounded, SI_BITS};

/// A byte rate: no limit, or a number of bytes per second (0 = paused).
///
/// Parsed from what pv, curl, wget and nginx users type ([`FromStr`]): `10M` = 10 MiB/s,
/// `1.5MiB/s`, `500kB/s` (1000-based), `800Mbit/s`, `4096`; `0`, `off` and `unlimited` mean no
/// limit (the convention of config files: "0 = unlimited"); `pause` means rate 0.
/// `kbps`/`Mbps` are refused with a message saying what to write.
///
/// `Display` is exact and parses back to the same value: the largest IEC unit in which the
/// rate has at most three decimals (`10 MiB/s`, `1.5 KiB/s`), else SI (`1 MB/s`), else bytes
/// (`1000001 B/s`); `unlimited`, `pause`. `{:.2}` rounds like pv (`1.50 MiB/s`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Rate {
    /// No limit.
    #[default]
    Unlimited,
    /// Bytes per second; 0 pauses (waiters wait until the limit changes).
    PerSecond(u64),
}

impl Rate {
    /// Rate 0: nothing passes until the limit changes.
    pub const PAUSED: Rate = Rate::PerSecond(0);

    /// Bytes per second, `None` when unlimited.
    pub const fn bytes_per_second(self) -> Option<u64> {
        match self {
            Rate::Unlimited => None,
            Rate::PerSecond(n) => Some(n),
        }
    }

    /// True for rate 0.
    pub const fn is_paused(self) -> bool {
        matches!(self, Rate::PerSecond(0))
    }

    /// The core's limits: no tier when unlimited, else one tier per second with the core's
    /// automatic burst (`max(rate × 10 ms, min(rate, 4 KiB))`).
    pub const fn to_limits(self) -> Limits {
        match self {
            Rate::Unlimited => Limits::UNLIMITED,
            Rate::PerSecond(n) => Limits::per_second(n),
        }
    }

    /// The core's limits with an explicit burst (`None`: automatic). A burst means nothing
    /// without a rate: unlimited stays unlimited.
    pub const fn to_limits_with_burst(self, burst: Option<Size>) -> Limits {
        match (self, burst) {
            (Rate::PerSecond(n), Some(Size(b))) => Limits::new(Tier::per_second(n).with_burst(b)),
            _ => self.to_limits(),
        }
    }
}

impl FromStr for Rate {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Rate, ParseError> {
        let t = s.trim();
        for (word, rate) in [
            ("off", Rate::Unlimited),
            ("unlimited", Rate::Unlimited),
            ("pause", Rate::PAUSED),
            ("paused", Rate::PAUSED),
        ] {
            if t.eq_ignore_ascii_case(word) {
                return Ok(rate);
            }
        }
        let q = quantity::parse(t)?;
        Ok(if q.zero {
            Rate::Unlimited
        } else {
            Rate::PerSecond(q.bytes)
        })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Rate::Unlimited => f.write_str("unlimited"),
            Rate::PerSecond(0) => f.write_str("pause"),
            Rate::PerSecond(n) => quantity::fmt_bytes(f, n, "/s"),
        }
    }
}

/// An amount of bytes (`-s`, `--burst`, buffer sizes): the rate grammar without `/s` and
/// without keywords. `0` is zero bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Size(pub u64);

impl FromStr for Size {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Size, ParseError> {
        let t = s.trim();
        if ["off", "unlimited", "pause", "paused"]
            .iter()
            .any(|w| t.eq_ignore_ascii_case(w))
        {
            return Err(ParseError::KeywordNotSize);
        }
        let q = quantity::parse(t)?;
        if q.per_second {
            return Err(ParseError::RateNotSize);
        }
        Ok(Size(q.bytes))
    }
}

impl fmt::Display for Size {
    /// Exact (`1.5 MiB`, `4097 B`); `{:.2}` rounds (`1.50 MiB`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        quantity::fmt_bytes(f, self.0, "")
    }
}

/// A byte rate shown in SI bits per second (`{:.2}` → `838.86 Mbit/s`), for `--bits`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bits(pub u64);

impl fmt::Display for Bits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = f.precision().unwrap_or(2);
        fmt_rounded(f, self.0.saturating_mul(8), p, &SI_BITS, "bit", "/s")
    }
}

/// A rate and an optional burst: what a config file or a flag pair says about one node.
/// [`Limit::to_limits`] is the one call from config value to the core's [`Limits`].
///
/// Parsed from `RATE` or `RATE burst SIZE` (`"10M burst 1M"`); with the `serde` feature,
/// deserialized from that string, from a number of bytes per second (0 = unlimited) or from a
/// table `{ rate = "10M", burst = "1M" }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Limit {
    /// The rate.
    pub rate: Rate,
    /// The burst; `None`: the core's automatic burst.
    pub burst: Option<Size>,
}

impl Limit {
    /// The core's limits for this rate and burst.
    pub const fn to_limits(&self) -> Limits {
        self.rate.to_limits_with_burst(self.burst)
    }
}

impl From<Rate> for Limit {
    fn from(rate: Rate) -> Limit {
        Limit { rate, burst: None }
    }
}

impl FromStr for Limit {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Limit, ParseError> {
        let t = s.trim();
        // "RATE burst SIZE": split at the word, case-insensitively
        let lower_at = t
            .as_bytes()
            .windows(5)
            .position(|w| w.eq_ignore_ascii_case(b"burst"));
        match lower_at {
            Some(i) => Ok(Limit {
                rate: t[..i].parse()?,
                burst: Some(t[i + 5..].trim_start_matches([' ', '=']).parse()?),
            }),
            None => Ok(Limit {
                rate: t.parse()?,
                burst: None,
            }),
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.burst {
            Some(b) => write!(f, "{} burst {}", self.rate, b),
            None => write!(f, "{}", self.rate),
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate alloc;
    extern crate std;
    use alloc::string::ToString;

    use super::*;

    fn rate(s: &str) -> Result<Rate, ParseError> {
        s.parse()
    }

    #[test]
    fn keywords_mean_unlimited_or_paused() {
        for s in ["0", "0M", "0.0", "off", "OFF", "unlimited", " Unlimited "] {
            assert_eq!(rate(s), Ok(Rate::Unlimited), "{s:?}");
        }
        assert_eq!(rate("pause"), Ok(Rate::PAUSED));
        assert_eq!(rate("Paused"), Ok(Rate::PAUSED));
        assert!(Rate::PAUSED.is_paused());
        assert_eq!(rate("10M"), Ok(Rate::PerSecond(10 << 20)));
        assert_eq!(rate("10 MiB/s"), Ok(Rate::PerSecond(10 << 20)));
    }

    #[test]
    fn ambiguous_rate_message_says_what_to_write() {
        let e = rate("10mbps").unwrap_err().to_string();
        assert!(e.contains("Mbit/s") && e.contains("MiB/s"), "{e}");
        let e = rate("100kbps").unwrap_err().to_string();
        assert!(e.contains("kbit/s") && e.contains("kB/s"), "{e}");
    }

    #[test]
    fn display_is_exact_and_rounded_on_request() {
        let show = |n| Rate::PerSecond(n).to_string();
        assert_eq!(show(10 << 20), "10 MiB/s");
        assert_eq!(show(3 << 19), "1.5 MiB/s");
        assert_eq!(show(1_000_000), "1 MB/s");
        assert_eq!(show(1_000_001), "1000.001 kB/s");
        assert_eq!(show(999), "999 B/s");
        assert_eq!(show(1536), "1.5 KiB/s");
        assert_eq!(show(100), "100 B/s");
        assert_eq!(Rate::Unlimited.to_string(), "unlimited");
        assert_eq!(Rate::PAUSED.to_string(), "pause");
        assert_eq!(
            std::format!("{:.2}", Rate::PerSecond(1_000_000)),
            "976.56 KiB/s"
        );
        assert_eq!(
            std::format!("{:.2}", Rate::PerSecond(3 << 19)),
            "1.50 MiB/s"
        );
        assert_eq!(std::format!("{:.1}", Size(512)), "512 B");
        assert_eq!(std::format!("{:.2}", Bits(100_000_000)), "800.00 Mbit/s");
    }

    #[test]
    fn sizes_refuse_rates_and_keywords() {
        assert_eq!("64K".parse(), Ok(Size(65536)));
        assert_eq!("0".parse(), Ok(Size(0)));
        assert_eq!("1M/s".parse::<Size>(), Err(ParseError::RateNotSize));
        assert_eq!("off".parse::<Size>(), Err(ParseError::KeywordNotSize));
    }

    #[test]
    fn limit_from_config_value_in_one_call() {
        let l: Limit = "10M burst 1M".parse().unwrap();
        assert_eq!(
            l.to_limits(),
            Limits::new(Tier::per_second(10 << 20).with_burst(1 << 20))
        );
        let l: Limit = "10M".parse().unwrap();
        assert_eq!(l.to_limits(), Limits::per_second(10 << 20));
        assert_eq!(
            "off burst=1M".parse::<Limit>().unwrap().to_limits(),
            Limits::UNLIMITED
        );
        assert!("pause".parse::<Limit>().unwrap().to_limits().is_paused());
        assert_eq!(l.to_string(), "10 MiB/s");
        let l: Limit = "2K burst 512".parse().unwrap();
        assert_eq!(l.to_string().parse(), Ok(l));
    }
}
