//! Per-node statistics: the core's cumulative counters plus a smoothed current rate, computed
//! when asked (no background task).

use core::time::Duration;

/// What went through a node, from [`Node::stats`](crate::Node::stats).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct NodeStats {
    /// Tokens (bytes, requests) granted through the node and used, since it was created:
    /// the tree's count (minus refunds) plus what passed while the path was unlimited.
    pub granted: u64,
    /// Pieces granted by the tree through the node (unlimited traffic is not counted).
    pub pieces: u64,
    /// Sum over pieces of the time each waited between request and grant.
    pub waited: Duration,
    /// Leaves under the node (itself for a leaf) waiting for a piece right now.
    pub waiting: u32,
    /// Smoothed current rate in tokens per second: an exponentially weighted moving average
    /// with a 1 s time constant, updated from `granted` at each call (the first call gives
    /// the average since the node was created). Called rarely (every few seconds) it is
    /// about the average since the previous call.
    pub rate: f64,
}

/// Time constant of the rate average.
const TAU: f64 = 1.0;

/// The state of one node's rate average (shared by all handles to the node).
#[derive(Debug)]
pub(crate) struct Rate {
    at: std::time::Instant,
    granted: u64,
    rate: f64,
    /// False until the first update: the first interval's rate is taken as is (an average
    /// starting from 0 would under-read it by `e^(-dt/τ)`).
    primed: bool,
}

impl Rate {
    pub(crate) fn new(now: std::time::Instant) -> Self {
        Rate {
            at: now,
            granted: 0,
            rate: 0.0,
            primed: false,
        }
    }

    /// Folds the counter's progress since the last call into the average and returns it.
    pub(crate) fn update(&mut self, now: std::time::Instant, granted: u64) -> f64 {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        // Below a millisecond the instantaneous rate is mostly noise: keep the last value.
        if dt < 1e-3 {
            return self.rate;
        }
        let inst = granted.saturating_sub(self.granted) as f64 / dt;
        let alpha = if self.primed {
            1.0 - (-dt / TAU).exp()
        } else {
            1.0
        };
        self.primed = true;
        self.rate += alpha * (inst - self.rate);
        self.at = now;
        self.granted = granted;
        self.rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_steady_input_converges_to_input() {
        let t0 = std::time::Instant::now();
        let mut r = Rate::new(t0);
        let mut v = 0.0;
        for i in 1..=50u64 {
            // 1000 tokens per 100 ms = 10 000/s
            v = r.update(t0 + Duration::from_millis(100 * i), 1000 * i);
        }
        assert!((v - 10_000.0).abs() < 100.0, "{v}");
    }

    #[test]
    fn rate_rare_calls_give_interval_average() {
        let t0 = std::time::Instant::now();
        let mut r = Rate::new(t0);
        let v = r.update(t0 + Duration::from_secs(3), 15_000);
        assert!(
            (v - 5_000.0).abs() < 1e-6,
            "the first call: the average so far, {v}"
        );
        // nothing more: decays towards 0
        let v = r.update(t0 + Duration::from_secs(13), 15_000);
        assert!(v < 1.0, "{v}");
    }
}
