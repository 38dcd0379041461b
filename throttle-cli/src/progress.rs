//! The progress line on stderr: bytes, elapsed time, the current rate, the average, the limit
//! in force and, when the size is known, percent and ETA.
//!
//! The current rate is measured over the last interval (`-i`), or since the last limit change
//! when that is more recent (and at least 100 ms ago): the first line after `throttle set`
//! shows the new rate, not a blend with the old one (a 1 s moving average would lag ~2 s).
//! Modes: a line redrawn in place on a terminal (`\r`), one line per interval when forced to
//! a non-terminal (`-f`, for logs), numbers for scripts (`-n`: `SECONDS BYTES RATE [PERCENT]`),
//! nothing (`-q`, or stderr not a terminal without `-f`).

use core::time::Duration;
use std::io::Write;
use std::time::Instant;

use throttle_spec::{Bits, Rate, Size};

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Nothing.
    Off,
    /// The human line; `tty`: redrawn in place.
    Line {
        /// stderr is a terminal: redraw with `\r`.
        tty: bool,
    },
    /// `SECONDS BYTES RATE [PERCENT]` per interval.
    Numeric,
}

/// The measurements behind the line.
#[derive(Debug)]
pub(crate) struct Meter {
    start: Instant,
    /// The previous sample (time, bytes).
    last: (Instant, u64),
    /// The one before it: a final draw shortly after a tick measures from here.
    before: (Instant, u64),
    /// The last limit change (time, bytes then).
    change: Option<(Instant, u64)>,
    size: Option<u64>,
    bits: bool,
    mode: Mode,
}

/// Shortest window the current rate is measured over after a change.
const MIN_WINDOW: Duration = Duration::from_millis(100);

impl Meter {
    pub(crate) fn new(start: Instant, size: Option<u64>, bits: bool, mode: Mode) -> Self {
        Meter {
            start,
            last: (start, 0),
            before: (start, 0),
            change: None,
            size,
            bits,
            mode,
        }
    }

    /// Records a limit change at `now`, when `bytes` had been written.
    pub(crate) fn mark_change(&mut self, now: Instant, bytes: u64) {
        self.change = Some((now, bytes));
    }

    /// The current rate in bytes per second at `now` (and moves the sample window on).
    pub(crate) fn current(&mut self, now: Instant, bytes: u64) -> f64 {
        let mut from = self.last;
        if now.saturating_duration_since(from.0) < MIN_WINDOW {
            from = self.before;
        }
        if let Some(c) = self.change {
            if c.0 > from.0 && now.saturating_duration_since(c.0) >= MIN_WINDOW {
                from = c;
            }
        }
        self.before = self.last;
        self.last = (now, bytes);
        let dt = now.saturating_duration_since(from.0).as_secs_f64();
        if dt <= 0.0 {
            return 0.0;
        }
        bytes.saturating_sub(from.1) as f64 / dt
    }

    /// The text for `now` (no line ending), or `None` when progress is off.
    pub(crate) fn render(&mut self, now: Instant, bytes: u64, limit: Rate) -> Option<String> {
        if self.mode == Mode::Off {
            return None;
        }
        let rate = self.current(now, bytes);
        let elapsed = now.saturating_duration_since(self.start);
        let secs = elapsed.as_secs_f64();
        let pct = self
            .size
            .filter(|s| *s > 0)
            .map(|s| (bytes as f64 * 100.0 / s as f64).min(100.0));
        if self.mode == Mode::Numeric {
            let mut line = format!("{secs:.3} {bytes} {}", rate.round() as u64);
            if let Some(p) = pct {
                line.push_str(&format!(" {p:.0}"));
            }
            return Some(line);
        }
        let avg = if secs > 0.0 { bytes as f64 / secs } else { 0.0 };
        let show = |r: f64| -> String {
            let r = r.round() as u64;
            if self.bits {
                format!("{:.2}", Bits(r))
            } else {
                format!("{:.2}", Rate::PerSecond(r))
            }
        };
        let limit_text = match limit {
            Rate::Unlimited => "no limit".to_string(),
            Rate::PerSecond(0) => "paused".to_string(),
            Rate::PerSecond(n) if self.bits => format!("limit {:.2}", Bits(n)),
            r => format!("limit {r:.2}"),
        };
        let mut line = format!(
            "{:>10.2} {} [{:>13}] avg {} {}",
            Size(bytes),
            clock(elapsed),
            show(rate),
            show(avg),
            limit_text
        );
        if let (Some(p), Some(size)) = (pct, self.size) {
            let left = size.saturating_sub(bytes);
            let eta = if left == 0 {
                "0:00:00".to_string()
            } else if rate >= 1.0 {
                clock(Duration::from_secs_f64((left as f64 / rate).min(1e9)))
            } else {
                "--:--:--".to_string()
            };
            line.push_str(&format!(" {p:>3.0}% ETA {eta}"));
        }
        Some(line)
    }

    /// Draws the line for `now` on stderr; `last`: the final draw (ends the line).
    pub(crate) fn draw(&mut self, now: Instant, bytes: u64, limit: Rate, last: bool) {
        let Some(text) = self.render(now, bytes, limit) else {
            return;
        };
        let mut err = std::io::stderr().lock();
        // A failing stderr is not worth dying for: the data path is what matters.
        let _ = match self.mode {
            Mode::Line { tty: true } if last => writeln!(err, "\r{text}\x1b[K"),
            Mode::Line { tty: true } => write!(err, "\r{text}\x1b[K"),
            _ => writeln!(err, "{text}"),
        };
        let _ = err.flush();
    }
}

/// `H:MM:SS`.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_after_change_is_measured_since_the_change() {
        let t0 = Instant::now();
        let mut m = Meter::new(t0, None, false, Mode::Numeric);
        // 1 s at 1000 B/s
        assert_eq!(m.current(t0 + Duration::from_secs(1), 1000), 1000.0);
        // at 1.5 s the limit goes to 10 000 B/s; at 2 s 1000 + 500 + 5000 bytes are out
        m.mark_change(t0 + Duration::from_millis(1500), 1500);
        let r = m.current(t0 + Duration::from_secs(2), 6500);
        assert!((r - 10_000.0).abs() < 1.0, "{r}: the new rate, not a blend");
        // a change 50 ms before the tick is too recent to measure: the whole interval
        m.mark_change(t0 + Duration::from_millis(2950), 16_000);
        let r = m.current(t0 + Duration::from_secs(3), 16_500);
        assert!((r - 10_000.0).abs() < 1.0, "{r}");
        // a final draw 20 ms after a tick measures over the previous interval too
        let r = m.current(t0 + Duration::from_millis(3020), 16_700);
        assert!((r - 10_000.0).abs() < 1.0, "{r}");
    }

    #[test]
    fn numeric_line_has_seconds_bytes_rate_percent() {
        let t0 = Instant::now();
        let mut m = Meter::new(t0, Some(4000), false, Mode::Numeric);
        let line = m
            .render(t0 + Duration::from_secs(1), 1000, Rate::Unlimited)
            .unwrap();
        assert_eq!(line, "1.000 1000 1000 25");
    }

    #[test]
    fn human_line_shows_rate_limit_and_eta() {
        let t0 = Instant::now();
        let mut m = Meter::new(t0, Some(4 << 20), false, Mode::Line { tty: false });
        let line = m
            .render(
                t0 + Duration::from_secs(1),
                1 << 20,
                Rate::PerSecond(1 << 20),
            )
            .unwrap();
        assert!(line.contains("1.00 MiB/s"), "{line}");
        assert!(line.contains("limit 1.00 MiB/s"), "{line}");
        assert!(line.contains("25% ETA 0:00:03"), "{line}");
        assert!(Meter::new(t0, None, false, Mode::Off)
            .render(t0, 0, Rate::Unlimited)
            .is_none());
    }
}
