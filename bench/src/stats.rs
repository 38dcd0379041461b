//! The figures the report prints: relative error, worst one-second window, Jain's fairness
//! index, and the process's CPU time.

use std::fs;

/// `(achieved − target) / target`, in percent.
pub fn error_pct(achieved: f64, target: f64) -> f64 {
    (achieved - target) / target * 100.0
}

/// The one-second window after the first whose rate is furthest from `target`, as a signed
/// error in percent. `None` for runs shorter than two seconds.
pub fn worst_window_pct(per_second: &[u64], target: f64) -> Option<f64> {
    per_second
        .iter()
        .skip(1)
        .map(|&b| error_pct(b as f64, target))
        .max_by(|a, b| a.abs().total_cmp(&b.abs()))
}

/// Jain's fairness index `(Σx)² / (n·Σx²)`: 1 when all equal, `1/n` when one takes all.
pub fn jain(xs: &[f64]) -> f64 {
    let sum: f64 = xs.iter().sum();
    let sq: f64 = xs.iter().map(|x| x * x).sum();
    if sq == 0.0 {
        return 1.0;
    }
    sum * sum / (xs.len() as f64 * sq)
}

/// User + system CPU seconds this process (all threads) has used so far, from
/// `/proc/self/stat` (clock ticks, assumed 100 per second as on every Linux the benchmark
/// targets). `None` where that file does not exist.
pub fn cpu_seconds() -> Option<f64> {
    stat_cpu_seconds("/proc/self/stat")
}

/// Like [`cpu_seconds`], for the calling thread only (`/proc/thread-self/stat`).
pub fn thread_cpu_seconds() -> Option<f64> {
    stat_cpu_seconds("/proc/thread-self/stat")
}

fn stat_cpu_seconds(path: &str) -> Option<f64> {
    let stat = fs::read_to_string(path).ok()?;
    // The command name (field 2) may contain spaces: count fields after its closing ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': field 3 is at index 0, so utime (14) is index 11 and stime (15) index 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jain_equal_shares_is_one() {
        assert!((jain(&[3.0, 3.0, 3.0]) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn jain_one_takes_all_is_one_over_n() {
        assert!((jain(&[4.0, 0.0, 0.0, 0.0]) - 0.25).abs() < 1e-12);
    }

    #[test]
    fn worst_window_skips_the_first_second() {
        let w = worst_window_pct(&[500, 98, 103], 100.0).unwrap();
        assert!((w - 3.0).abs() < 1e-9);
    }

    #[test]
    fn cpu_seconds_reads_proc_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(cpu_seconds().is_some());
        }
    }
}
