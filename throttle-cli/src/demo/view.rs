//! The once-per-second table. Every rate in it is bytes the clients received during that row's
//! interval divided by the interval's measured length; the last column is what the server
//! node's own statistics say (the adapter's smoothed rate), for comparison.

use crate::demo::control::Current;
use crate::demo::MIB;

fn mib(x: f64) -> f64 {
    x / MIB as f64
}

/// The column header.
pub(crate) fn header(clients: usize) -> String {
    let mut s = String::from("     t");
    for i in 1..=clients {
        s.push_str(&format!("  client {i:<2}"));
    }
    s.push_str(" │   total │  limits allow │ server stats");
    s
}

/// One row: the rates of each client during the last interval of `secs` seconds.
pub(crate) fn row(t: f64, deltas: &[u64], secs: f64, current: Current, server_rate: f64) -> String {
    let mut s = format!("{t:>4.0} s");
    for &d in deltas {
        s.push_str(&format!("  {:>9.2}", mib(d as f64 / secs)));
    }
    let total: u64 = deltas.iter().sum();
    s.push_str(&format!(" │ {:>7.2} │", mib(total as f64 / secs)));
    match current.expected_total(deltas.len()) {
        (Some(limit), why) => s.push_str(&format!(" {:>5.2} {why:<8}│", mib(limit as f64))),
        (None, _) => s.push_str("      no limit │"),
    }
    s.push_str(&format!(" {:>12.2}", mib(server_rate)));
    s
}

/// The rates the limits allow each client, as a row under the same columns (`None`: no limit).
pub(crate) fn expect_row(expected: Option<&[f64]>, clients: usize) -> String {
    let mut s = String::from("expect");
    match expected {
        Some(e) => {
            for &x in e {
                s.push_str(&format!("  {:>9.2}", mib(x)));
            }
            s.push_str(&format!(" │ {:>7.2} │", mib(e.iter().sum())));
        }
        None => {
            for _ in 0..clients {
                s.push_str("          -");
            }
            s.push_str(" │       - │");
        }
    }
    s
}

/// The closing summary.
pub(crate) fn totals(bytes: &[u64], lines: u64, secs: f64, granted: u64) -> String {
    let mut s = format!("totals over {secs:.1} s (measured by the clients):\n");
    for (i, &b) in bytes.iter().enumerate() {
        s.push_str(&format!(
            "  client {:<2} {:>9.1} MiB  {:>6.2} MiB/s average\n",
            i + 1,
            mib(b as f64),
            mib(b as f64 / secs)
        ));
    }
    let all: u64 = bytes.iter().sum();
    s.push_str(&format!(
        "  all       {:>9.1} MiB  {:>6.2} MiB/s average, {lines} log lines\n",
        mib(all as f64),
        mib(all as f64 / secs)
    ));
    s.push_str(&format!(
        "  the server node's statistics count {:.1} MiB granted",
        mib(granted as f64)
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_shows_rates_total_and_binding_limit() {
        let current = Current {
            server: Some(8 * MIB),
            conn: Some(3 * MIB),
        };
        let r = row(3.0, &[2 * MIB, 2 * MIB], 1.0, current, 4.0 * MIB as f64);
        assert_eq!(
            r,
            "   3 s       2.00       2.00 │    4.00 │  6.00 per-conn│         4.00"
        );
    }

    #[test]
    fn expect_row_uses_the_row_columns() {
        let e = [2.0 * MIB as f64, MIB as f64];
        let r = expect_row(Some(&e), 2);
        assert_eq!(r, "expect       2.00       1.00 │    3.00 │");
        assert_eq!(expect_row(None, 2).chars().count(), r.chars().count());
    }

    #[test]
    fn header_lines_up_with_rows() {
        let current = Current {
            server: None,
            conn: None,
        };
        let r = row(1.0, &[MIB, MIB, MIB], 1.0, current, 0.0);
        assert_eq!(header(3).chars().count(), r.chars().count());
    }
}
