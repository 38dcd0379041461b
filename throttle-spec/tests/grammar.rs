//! Property tests of the grammar: whatever `Display` prints parses back to the same value,
//! rounded display stays within its rounding, and no input makes the parsers panic.

use proptest::prelude::*;
use throttle_spec::{Limit, Rate, Schedule, Size};

fn rate() -> impl Strategy<Value = Rate> {
    prop_oneof![
        Just(Rate::Unlimited),
        Just(Rate::PAUSED),
        (1u64..=u64::MAX).prop_map(Rate::PerSecond),
        // round numbers, where the unit choice matters most
        (1u64..10_000, 0u32..5, any::<bool>()).prop_map(|(k, e, si)| {
            let unit = if si { 1000u64 } else { 1024 };
            Rate::PerSecond(k.saturating_mul(unit.pow(e)))
        }),
    ]
}

proptest! {
    #[test]
    fn rate_display_parses_back_equal(r in rate()) {
        let text = r.to_string();
        prop_assert_eq!(text.parse::<Rate>(), Ok(r), "{}", text);
    }

    #[test]
    fn size_display_parses_back_equal(n in any::<u64>()) {
        let text = Size(n).to_string();
        prop_assert_eq!(text.parse::<Size>(), Ok(Size(n)), "{}", text);
    }

    #[test]
    fn limit_display_parses_back_equal(r in rate(), b in proptest::option::of(any::<u64>())) {
        let l = Limit { rate: r, burst: b.map(Size) };
        prop_assert_eq!(l.to_string().parse::<Limit>(), Ok(l));
    }

    #[test]
    fn rounded_display_is_within_half_a_unit_of_last_digit(n in 1u64..(1 << 50)) {
        let text = format!("{:.2}", Rate::PerSecond(n));
        let back = text.parse::<Rate>().unwrap().bytes_per_second().unwrap();
        // two decimals of a value ≥ 1 in its unit: relative error ≤ 0.5 %
        let err = (back as f64 - n as f64).abs() / n as f64;
        prop_assert!(err <= 0.005 + 1.0 / n as f64, "{} → {} ({})", n, text, back);
    }

    #[test]
    fn parsers_never_panic(s in "\\PC{0,40}") {
        let _ = s.parse::<Rate>();
        let _ = s.parse::<Size>();
        let _ = s.parse::<Limit>();
        let _ = s.parse::<Schedule>();
    }

    #[test]
    fn parsers_never_panic_near_the_grammar(
        s in "[0-9]{0,30}(\\.[0-9]{0,30})? ?(k|K|m|M|g|G|t|T)?(i)?(B|b|bit|bits|ps|bps)?(/s)?"
    ) {
        if let Ok(Rate::PerSecond(n)) = s.parse::<Rate>() {
            prop_assert!(n > 0, "{} parsed to pause", s);
        }
        let _ = s.parse::<Size>();
    }

    #[test]
    fn schedule_display_parses_back_equal(
        rules in proptest::collection::vec((rate(), 1u8..128, 0u32..24, 0u32..60, 0u32..25), 1..6)
    ) {
        let text: Vec<String> = rules
            .iter()
            .map(|(r, days, h, m, h2)| {
                let names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
                let d: Vec<&str> = (0..7).filter(|i| days & (1 << i) != 0).map(|i| names[i]).collect();
                let end = if *h2 == 24 { "24:00".to_string() } else { format!("{h2:02}:30") };
                format!("{} {} {h:02}:{m:02}-{end}", r.to_string().replace(' ', ""), d.join(" "))
            })
            .collect();
        let text = text.join(", ");
        if let Ok(s) = text.parse::<Schedule>() {
            prop_assert_eq!(s.to_string().parse::<Schedule>(), Ok(s.clone()), "{} → {}", text, s);
        }
    }
}
