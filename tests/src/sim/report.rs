//! What a simulation found: per-leaf rates against the ideal, per-node conformance and
//! utilization, and every broken invariant.

use core::fmt;
use core::time::Duration;
use throttle_core::{Limits, Stats, Tier};

use super::scenario::DriverStyle;

/// One timed observation of a leaf (kept when [`Scenario::trace`](super::Scenario::trace)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceEvent {
    /// The leaf collected a grant of `n` tokens at `at` (the core spent them at `spent_at`).
    Grant {
        /// When the leaf received `Grant(n)`.
        at: Duration,
        /// When the core spent the tokens (earlier when another call granted the piece).
        spent_at: Duration,
        /// Tokens granted.
        n: u64,
    },
    /// The leaf was told to wait until `until`.
    Wait {
        /// When it asked.
        at: Duration,
        /// What `Wait { until }` said.
        until: Duration,
    },
    /// The leaf was told `Paused`.
    Paused {
        /// When it asked.
        at: Duration,
    },
}

/// The outcome for one leaf.
#[derive(Clone, Debug, PartialEq)]
pub struct LeafReport {
    /// Index in the scenario.
    pub index: usize,
    /// Name in the scenario.
    pub name: String,
    /// Tokens used over the whole run (granted, net of what was settled back or refunded).
    pub used: u64,
    /// Tokens used by grants inside the measuring window `[warmup, duration)`.
    pub window_used: u64,
    /// `window_used` per second of the measuring window.
    pub rate: f64,
    /// The ideal long-run rate (hierarchical weighted max-min), when the scenario has no
    /// timed events.
    pub ideal: Option<f64>,
    /// When a [`Demand::Bytes`](super::Demand::Bytes) transfer was fully granted.
    pub done_at: Option<Duration>,
    /// True when the leaf was removed during the run.
    pub removed: bool,
    /// Grants collected.
    pub grants: u64,
    /// Grants and waits, in order, when tracing.
    pub trace: Vec<TraceEvent>,
}

/// The worst window of one tier of one node during one phase (between two limit changes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TierCheck {
    /// Phase number: 0 until the first `set_limit` of this node, then 1, …
    pub phase: usize,
    /// When the phase started.
    pub from: Duration,
    /// When it ended (the next change, or the end of the run).
    pub to: Duration,
    /// Tokens spent through the node during the phase, net of refunds made in it.
    pub used: i128,
    /// Index of the tier in the node's limits.
    pub tier_index: usize,
    /// The tier.
    pub tier: Tier,
    /// Worst `used(s..t) − rate·(t−s) − burst` over windows inside the phase, in tokens
    /// (`None`: nothing was granted through the node in this phase).
    pub worst_slack: Option<i128>,
    /// What the contract allows: one piece (`Config::max_piece`).
    pub allowed: u64,
}

impl TierCheck {
    /// True when the worst window is within the contract.
    pub fn conforms(&self) -> bool {
        self.worst_slack
            .is_none_or(|s| s <= i128::from(self.allowed))
    }
}

/// The outcome for one node (leaves included).
#[derive(Clone, Debug, PartialEq)]
pub struct NodeReport {
    /// Index in the scenario.
    pub index: usize,
    /// Name in the scenario.
    pub name: String,
    /// Limits at the end of the run.
    pub limits: Limits,
    /// Tokens used through this node over the whole run (net).
    pub used: u64,
    /// Tokens used through this node by grants inside the measuring window.
    pub window_used: u64,
    /// `window_used` per second of the window.
    pub rate: f64,
    /// Ideal rate (sum of its leaves' ideal rates), when defined.
    pub ideal: Option<f64>,
    /// The core's counters at the end of the run, before the final idle phase (`None` when
    /// removed).
    pub stats: Option<Stats>,
    /// Conformance of every tier in every phase.
    pub tiers: Vec<TierCheck>,
    /// `rate` over the smallest tier rate (`None` when unlimited or paused); after limit
    /// changes, the usage of the last phase over what its limit allowed in it.
    pub utilization: Option<f64>,
}

/// Everything a run measured. `Display` prints a readable block; tests read the fields.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// Scenario name.
    pub name: String,
    /// Driver style used.
    pub driver: DriverStyle,
    /// Virtual time simulated.
    pub duration: Duration,
    /// Start of the measuring window.
    pub warmup: Duration,
    /// The largest piece (`Config::max_piece`).
    pub max_piece: u64,
    /// One entry per leaf, in scenario order.
    pub leaves: Vec<LeafReport>,
    /// One entry per node (leaves included), in scenario order.
    pub nodes: Vec<NodeReport>,
    /// Jain's index of `rate / ideal` over the leaves with a positive ideal rate.
    pub jain: Option<f64>,
    /// Every broken contract or invariant, one line each. Empty when all is well.
    pub violations: Vec<String>,
    /// Tree operations performed.
    pub ops: u64,
    /// True when the run stopped at `max_ops` before `duration`.
    pub truncated: bool,
    /// A hash of every decision and timestamp: equal for identical runs.
    pub digest: u64,
}

impl Report {
    /// The leaf called `name`.
    ///
    /// # Panics
    /// When there is none (a test-writing error).
    pub fn leaf(&self, name: &str) -> &LeafReport {
        self.leaves
            .iter()
            .find(|l| l.name == name)
            .unwrap_or_else(|| panic!("no leaf {name} in {}", self.name))
    }

    /// The node called `name`.
    ///
    /// # Panics
    /// When there is none.
    pub fn node(&self, name: &str) -> &NodeReport {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name} in {}", self.name))
    }

    /// True when no contract or invariant was broken.
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }

    /// Panics with the whole report when something was broken.
    #[track_caller]
    pub fn assert_ok(&self) {
        assert!(self.is_ok(), "contract violations:\n{self}");
    }

    /// The worst slack of any tier of any node in any phase, in tokens.
    pub fn worst_slack(&self) -> Option<i128> {
        self.nodes
            .iter()
            .flat_map(|n| n.tiers.iter())
            .filter_map(|t| t.worst_slack)
            .max()
    }

    /// The largest `|rate / ideal − 1|` over the leaves with a positive ideal rate.
    pub fn max_ideal_error(&self) -> Option<f64> {
        self.leaves
            .iter()
            .filter(|l| !l.removed)
            .filter_map(|l| {
                l.ideal
                    .filter(|&i| i > 0.0)
                    .map(|i| (l.rate / i - 1.0).abs())
            })
            .reduce(f64::max)
    }

    /// Length of the measuring window in seconds.
    pub fn window_secs(&self) -> f64 {
        self.duration.saturating_sub(self.warmup).as_secs_f64()
    }
}

/// A rate in bytes per second, in the most readable unit.
pub fn fmt_rate(r: f64) -> String {
    const K: f64 = 1024.0;
    if !r.is_finite() {
        "unlimited".into()
    } else if r >= K * K {
        format!("{:.3} MiB/s", r / (K * K))
    } else if r >= K {
        format!("{:.3} KiB/s", r / K)
    } else {
        format!("{r:.1} B/s")
    }
}

fn fmt_tier(t: &Tier) -> String {
    let p = t.period();
    if p == Duration::from_secs(1) {
        format!("{} burst {}", fmt_rate(t.amount() as f64), t.burst())
    } else {
        format!("{} per {:?} burst {}", t.amount(), p, t.burst())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let style = match self.driver {
            DriverStyle::OneTimer => "one timer",
            DriverStyle::PerWaiter => "per-waiter timers",
        };
        writeln!(
            f,
            "== {} ({style}; {:?} simulated, measured over [{:?}, {:?}); {} ops{}) ==",
            self.name,
            self.duration,
            self.warmup,
            self.duration,
            self.ops,
            if self.truncated { "; TRUNCATED" } else { "" }
        )?;
        let total: f64 = self.leaves.iter().map(|l| l.rate).sum();
        let ideal_total: f64 = self.leaves.iter().filter_map(|l| l.ideal).sum();
        writeln!(
            f,
            "  {:<12} {:>16} {:>16} {:>8} {:>8} {:>8}",
            "leaf", "rate", "ideal", "share", "ideal", "error"
        )?;
        // many leaves: the five lowest and five highest rates (`{:#}` prints all)
        let mut order: Vec<&LeafReport> = self.leaves.iter().collect();
        let compact = !f.alternate() && order.len() > 16;
        if compact {
            order.sort_by(|a, b| a.rate.total_cmp(&b.rate));
            let n = order.len();
            order = order[..5].iter().chain(&order[n - 5..]).copied().collect();
        }
        for (k, l) in order.into_iter().enumerate() {
            if compact && k == 5 {
                writeln!(
                    f,
                    "  … {} more leaves between these (lowest 5 above, highest 5 below)",
                    self.leaves.len() - 10
                )?;
            }
            let share = if total > 0.0 { l.rate / total } else { 0.0 };
            let (ideal, ishare, err) = match l.ideal {
                Some(i) if ideal_total > 0.0 => (
                    fmt_rate(i),
                    format!("{:.4}", i / ideal_total),
                    if i > 0.0 {
                        format!("{:+.2}%", (l.rate / i - 1.0) * 100.0)
                    } else {
                        "-".into()
                    },
                ),
                _ => ("-".into(), "-".into(), "-".into()),
            };
            let mut extra = String::new();
            if let Some(d) = l.done_at {
                extra += &format!("  done at {:.6} s", d.as_secs_f64());
            }
            if l.removed {
                extra += "  (removed)";
            }
            writeln!(
                f,
                "  {:<12} {:>16} {:>16} {:>8.4} {:>8} {:>8}{extra}",
                l.name,
                fmt_rate(l.rate),
                ideal,
                share,
                ishare,
                err
            )?;
        }
        match (self.jain, self.max_ideal_error()) {
            (Some(j), Some(e)) => writeln!(
                f,
                "  Jain's index of rate/ideal: {j:.5}; largest |rate/ideal − 1|: {:.3}%",
                e * 100.0
            )?,
            _ => writeln!(f, "  Jain's index: -")?,
        }
        writeln!(
            f,
            "  {:<12} {:<34} {:>6} {:>13} {:>16} {:>8}",
            "node", "tier", "phase", "worst slack", "rate", "util"
        )?;
        for n in &self.nodes {
            for t in &n.tiers {
                let slack = t.worst_slack.map_or("-".into(), |s| format!("{s} B"));
                let util = n
                    .utilization
                    .filter(|_| {
                        t.phase + 1 == n.tiers.iter().map(|x| x.phase + 1).max().unwrap_or(0)
                    })
                    .map_or("-".into(), |u| format!("{:.2}%", u * 100.0));
                writeln!(
                    f,
                    "  {:<12} {:<34} {:>6} {:>13} {:>16} {:>8}",
                    n.name,
                    fmt_tier(&t.tier),
                    t.phase,
                    slack,
                    fmt_rate(n.rate),
                    util
                )?;
            }
        }
        writeln!(
            f,
            "  conformance allowed: one piece = {} B; worst seen: {}",
            self.max_piece,
            self.worst_slack().map_or("-".into(), |s| format!("{s} B"))
        )?;
        if self.violations.is_empty() {
            writeln!(f, "  violations: none")
        } else {
            writeln!(f, "  violations ({}):", self.violations.len())?;
            for v in self.violations.iter().take(20) {
                writeln!(f, "    {v}")?;
            }
            if self.violations.len() > 20 {
                writeln!(f, "    … {} more", self.violations.len() - 20)?;
            }
            Ok(())
        }
    }
}
