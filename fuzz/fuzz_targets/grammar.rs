//! The rate/size/schedule grammar of `throttle-spec` on arbitrary text. Oracles: no panic;
//! whatever parses prints (`Display`) to text that parses back to the same value; a parsed
//! positive rate is never 0 (a typo must not pause a transfer), and `{:.2}` of a rate stays
//! within 0.5 % of it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use throttle_spec::{Limit, ParseError, Rate, Schedule, Size};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = text.parse::<Rate>() {
        assert_eq!(r.to_string().parse::<Rate>(), Ok(r), "{text:?}");
        if let Rate::PerSecond(n) = r {
            let lower = text.trim().to_ascii_lowercase();
            assert!(n > 0 || lower.starts_with("pause"), "{text:?} parsed to pause");
            if n > 0 {
                let shown = format!("{r:.2}");
                match shown.parse::<Rate>() {
                    Ok(back) => {
                        let b = back.bytes_per_second().expect("a rate") as f64;
                        assert!((b - n as f64).abs() <= n as f64 * 0.005 + 1.0, "{n} → {shown}");
                    }
                    // rounding up may pass 2^64 - 1 (16777216.00 TiB/s)
                    Err(ParseError::TooLarge) if n > u64::MAX / 200 * 199 => {}
                    Err(e) => panic!("{n} → {shown}: {e}"),
                }
            }
        }
    }
    if let Ok(s) = text.parse::<Size>() {
        assert_eq!(s.to_string().parse::<Size>(), Ok(s), "{text:?}");
    }
    if let Ok(l) = text.parse::<Limit>() {
        assert_eq!(l.to_string().parse::<Limit>(), Ok(l), "{text:?}");
    }
    if let Ok(s) = text.parse::<Schedule>() {
        let shown = s.to_string();
        assert_eq!(shown.parse::<Schedule>().as_ref(), Ok(&s), "{text:?} → {shown:?}");
        // the pure function answers for any week time without panicking
        for t in [0u32, 1, 86_399, 302_400, 604_799] {
            let step = s.at(throttle_spec::WeekTime::from_seconds(t));
            assert!(step.next_change_in.is_none_or(|d| (1..=throttle_spec::WEEK).contains(&d)));
        }
    }
});
