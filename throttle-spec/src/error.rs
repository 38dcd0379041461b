//! Why a rate, a size or a schedule was refused: small `Copy` enums with hand-written
//! messages that say what to write instead.

use core::fmt;

/// Why a rate or a size could not be parsed. The message (`Display`) is one line meant for the
/// person who typed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParseError {
    /// Nothing but blanks.
    Empty,
    /// No number where one was expected (`M`, `fast`, `1.2.3`, a sign, an exponent).
    InvalidNumber,
    /// A unit this grammar does not know.
    UnknownUnit,
    /// `kbps`, `Mbps`, `MBps`…: bits or bytes? tc, ISPs and download tools disagree.
    /// `prefix` is the multiplier letter that was typed (`b'k'`, `b'M'`; 0 for none).
    AmbiguousPerSecond {
        /// The multiplier letter as typed (0 when there was none).
        prefix: u8,
    },
    /// `Mb`, `kb`, `b`: a lowercase `b` alone could be bits or bytes.
    AmbiguousB {
        /// The multiplier letter as typed (0 when there was none).
        prefix: u8,
    },
    /// More than `u64::MAX` bytes (per second), or more than 24 significant digits.
    TooLarge,
    /// A positive value that rounds to less than one byte (per second), e.g. `1bit/s`:
    /// it would silently become "unlimited" (0) or "paused".
    BelowOneByte,
    /// A rate (`/s`) where a size was expected.
    RateNotSize,
    /// `off`, `unlimited` or `pause` where a size was expected.
    KeywordNotSize,
}

fn prefix_str(prefix: u8) -> &'static str {
    match prefix.to_ascii_uppercase() {
        b'K' => "K",
        b'M' => "M",
        b'G' => "G",
        b'T' => "T",
        _ => "",
    }
}

fn si_prefix_str(prefix: u8) -> &'static str {
    match prefix.to_ascii_uppercase() {
        b'K' => "k",
        b'M' => "M",
        b'G' => "G",
        b'T' => "T",
        _ => "",
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ParseError::Empty => f.write_str("empty value: write a rate such as 10M (10 MiB/s)"),
            ParseError::InvalidNumber => f.write_str(
                "not a number: write e.g. 10M, 1.5MiB/s, 500kB/s, 800Mbit/s, off or pause",
            ),
            ParseError::UnknownUnit => f.write_str(
                "unknown unit: use K M G T or KiB MiB GiB TiB (1024^n bytes), kB MB GB TB \
                 (1000^n bytes), kbit Mbit Gbit (bits), with an optional /s",
            ),
            ParseError::AmbiguousPerSecond { prefix } => {
                let (p, s) = (prefix_str(prefix), si_prefix_str(prefix));
                write!(
                    f,
                    "'{s}bps' is ambiguous (bits or bytes?): write {s}bit/s for bits per second, \
                     {s}B/s for 1000-based bytes or {p}iB/s (= {p}) for 1024-based bytes"
                )
            }
            ParseError::AmbiguousB { prefix } => {
                let (p, s) = (prefix_str(prefix), si_prefix_str(prefix));
                write!(
                    f,
                    "'{s}b' is ambiguous: write {s}bit for bits, {s}B for 1000-based bytes or \
                     {p}iB for 1024-based bytes"
                )
            }
            ParseError::TooLarge => f.write_str("value too large (at most 2^64 - 1 bytes)"),
            ParseError::BelowOneByte => {
                f.write_str("below one byte (per second): the smallest limit is 1 B/s")
            }
            ParseError::RateNotSize => f.write_str("a size was expected, not a rate (drop the /s)"),
            ParseError::KeywordNotSize => {
                f.write_str("a size was expected: write e.g. 64K, 1MiB, 100MB or 4096")
            }
        }
    }
}

impl core::error::Error for ParseError {}

/// Why a schedule could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ScheduleError {
    /// Nothing but blanks.
    Empty,
    /// More rules than [`MAX_RULES`](crate::MAX_RULES).
    TooManyRules,
    /// A rule (counted from 1) has no rate, or its rate is wrong.
    Rate {
        /// The rule, counted from 1.
        rule: u8,
        /// What is wrong with its rate.
        error: ParseError,
    },
    /// A rule (counted from 1) has a word that is neither a day, a time range nor `otherwise`.
    Unexpected {
        /// The rule, counted from 1.
        rule: u8,
    },
    /// A time range that is not `HH:MM-HH:MM` (00:00 to 24:00), or starts where it ends.
    BadTime {
        /// The rule, counted from 1.
        rule: u8,
    },
    /// Two `otherwise` rules, or `otherwise` with days or times.
    BadOtherwise {
        /// The rule, counted from 1.
        rule: u8,
    },
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const FORM: &str =
            "write rules like \"20M Mon-Fri 09:00-17:00, 100M otherwise\" (first match wins)";
        match *self {
            ScheduleError::Empty => write!(f, "empty schedule: {FORM}"),
            ScheduleError::TooManyRules => {
                write!(f, "a schedule has at most {} rules", crate::MAX_RULES)
            }
            ScheduleError::Rate { rule, error } => write!(f, "schedule rule {rule}: {error}"),
            ScheduleError::Unexpected { rule } => write!(
                f,
                "schedule rule {rule}: expected days (Mon, Mon-Fri, weekdays, weekends, daily), \
                 a time range HH:MM-HH:MM or `otherwise`; {FORM}"
            ),
            ScheduleError::BadTime { rule } => write!(
                f,
                "schedule rule {rule}: a time range is HH:MM-HH:MM between 00:00 and 24:00, \
                 start and end different (22:00-06:00 runs overnight)"
            ),
            ScheduleError::BadOtherwise { rule } => write!(
                f,
                "schedule rule {rule}: `otherwise` comes once, alone with its rate"
            ),
        }
    }
}

impl core::error::Error for ScheduleError {}
