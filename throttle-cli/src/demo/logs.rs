//! Endless, realistic-looking log lines, generated on the fly (no file, no allocation per line):
//! an access log of a small service fleet with the occasional warning and error.
//!
//! ```text
//! 2026-11-22T11:42:07.412Z INFO  api-3   GET /api/v1/orders/18243 status=200 bytes=1532 dur_ms=12 req=9f8e7d6c5b4a3210
//! 2026-11-22T11:42:07.413Z WARN  db-2    slow query table=orders rows=1832 dur_ms=1203 req=0c1d2e3f40516273
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

/// Who logs what: access lines from the front services, slow queries from the databases,
/// upstream timeouts from the services calling out, cache lines from the session layer.
const FRONT: [&str; 4] = ["api-1", "api-2", "api-3", "auth-1"];
const DATABASES: [&str; 2] = ["db-1", "db-2"];
const CALLERS: [&str; 2] = ["pay-2", "api-3"];
const SESSIONS: [&str; 2] = ["auth-1", "auth-2"];
const ROUTES: [(&str, &str); 8] = [
    ("GET", "/api/v1/orders/"),
    ("GET", "/api/v1/users/"),
    ("POST", "/api/v1/orders"),
    ("GET", "/api/v1/catalog/items/"),
    ("PUT", "/api/v1/carts/"),
    ("GET", "/healthz"),
    ("DELETE", "/api/v1/sessions/"),
    ("GET", "/static/app."),
];
const TABLES: [&str; 4] = ["orders", "users", "payments", "inventory"];
const UPSTREAMS: [&str; 3] = [
    "payments.internal:8443",
    "ledger.internal:9000",
    "search.internal:9200",
];

/// A deterministic generator of log lines (xorshift64*; a seed per connection).
#[derive(Clone, Debug)]
pub(crate) struct LogGen {
    rng: u64,
    /// The timestamp of the next line, in milliseconds since the Unix epoch.
    ms: u64,
}

impl LogGen {
    /// Lines starting at the current wall-clock time, varied by `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        LogGen {
            rng: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
            ms,
        }
    }

    fn next(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Appends whole lines to `out` until it holds at least `len` bytes.
    pub(crate) fn fill(&mut self, out: &mut Vec<u8>, len: usize) {
        while out.len() < len {
            self.line(out);
        }
    }

    /// Appends one line (with its `\n`).
    pub(crate) fn line(&mut self, out: &mut Vec<u8>) {
        self.ms += self.below(3);
        push_timestamp(out, self.ms);
        let roll = self.below(1000);
        let services: &[&str] = match roll {
            0..=9 => &CALLERS,
            10..=49 => &DATABASES,
            50..=149 => &SESSIONS,
            _ => &FRONT,
        };
        let service = services[self.below(services.len() as u64) as usize];
        let level = match roll {
            0..=9 => "ERROR ",
            10..=49 => "WARN  ",
            50..=149 => "DEBUG ",
            _ => "INFO  ",
        };
        out.extend_from_slice(level.as_bytes());
        out.extend_from_slice(service.as_bytes());
        out.extend_from_slice(&b"        "[..8 - service.len()]);
        match roll {
            0..=9 => {
                out.extend_from_slice(b"upstream timeout host=");
                let host = UPSTREAMS[self.below(UPSTREAMS.len() as u64) as usize];
                out.extend_from_slice(host.as_bytes());
                out.extend_from_slice(b" attempt=");
                push_u64(out, 1 + self.below(3));
                out.extend_from_slice(b" dur_ms=");
                push_u64(out, 5000 + self.below(100));
            }
            10..=49 => {
                out.extend_from_slice(b"slow query table=");
                out.extend_from_slice(TABLES[self.below(TABLES.len() as u64) as usize].as_bytes());
                out.extend_from_slice(b" rows=");
                push_u64(out, self.below(50_000));
                out.extend_from_slice(b" dur_ms=");
                push_u64(out, 500 + self.below(2500));
            }
            50..=149 => {
                out.extend_from_slice(b"cache ");
                out.extend_from_slice(if self.below(4) == 0 { b"miss" } else { b"hit " });
                out.extend_from_slice(b" key=session:");
                push_u64(out, self.below(1_000_000));
                out.extend_from_slice(b" ttl_s=");
                push_u64(out, 60 * (1 + self.below(30)));
            }
            _ => {
                let (method, path) = ROUTES[self.below(ROUTES.len() as u64) as usize];
                out.extend_from_slice(method.as_bytes());
                out.push(b' ');
                out.extend_from_slice(path.as_bytes());
                if path.ends_with('/') {
                    push_u64(out, self.below(100_000));
                } else if path.ends_with('.') {
                    out.extend_from_slice(if self.below(2) == 0 { b"js" } else { b"css" });
                }
                let status = match self.below(100) {
                    0..=1 => 500,
                    2..=6 => 404,
                    7..=9 => 304,
                    10..=14 => 201,
                    _ => 200,
                };
                out.extend_from_slice(b" status=");
                push_u64(out, status);
                out.extend_from_slice(b" bytes=");
                push_u64(out, self.below(64_000));
                out.extend_from_slice(b" dur_ms=");
                push_u64(out, self.below(200));
            }
        }
        out.extend_from_slice(b" req=");
        let id = self.next();
        for shift in (0..16).rev() {
            out.push(b"0123456789abcdef"[((id >> (shift * 4)) & 0xf) as usize]);
        }
        out.push(b'\n');
    }
}

fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

fn push_padded(out: &mut Vec<u8>, n: u64, width: usize) {
    let start = out.len();
    push_u64(out, n);
    let len = out.len() - start;
    if len < width {
        out.splice(start..start, core::iter::repeat_n(b'0', width - len));
    }
}

/// `YYYY-MM-DDThh:mm:ss.mmmZ ` (UTC), with the civil-from-days conversion of H. Hinnant.
fn push_timestamp(out: &mut Vec<u8>, ms: u64) {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let sod = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    push_padded(out, year.max(0) as u64, 4);
    out.push(b'-');
    push_padded(out, month as u64, 2);
    out.push(b'-');
    push_padded(out, day as u64, 2);
    out.push(b'T');
    push_padded(out, sod / 3600, 2);
    out.push(b':');
    push_padded(out, sod / 60 % 60, 2);
    out.push(b':');
    push_padded(out, sod % 60, 2);
    out.push(b'.');
    push_padded(out, ms % 1000, 3);
    out.extend_from_slice(b"Z ");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_epoch_and_leap_day() {
        let mut out = Vec::new();
        push_timestamp(&mut out, 0);
        push_timestamp(&mut out, 1_709_210_096_007); // 2024-02-29T12:34:56.007Z
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "1970-01-01T00:00:00.000Z 2024-02-29T12:34:56.007Z "
        );
    }

    #[test]
    fn fill_gives_whole_lines_past_len() {
        let mut g = LogGen::new(7);
        let mut out = Vec::new();
        g.fill(&mut out, 10_000);
        assert!(out.len() >= 10_000 && out.len() < 10_300);
        assert_eq!(out.last(), Some(&b'\n'));
        let text = String::from_utf8(out).unwrap();
        for line in text.lines() {
            assert!(line.len() > 60 && line.len() < 160, "{line}");
            assert!(line.contains(" req="), "{line}");
        }
    }
}
