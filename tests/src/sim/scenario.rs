//! What a simulation runs: a tree of limits, what each leaf wants, and timed events.
//!
//! Build one with [`Scenario::new`], add nodes top-down with [`Scenario::node`] and
//! [`Scenario::leaf`] (each returns the index later events refer to), add events with
//! [`Scenario::at`], then [`Scenario::run`] it.

use core::time::Duration;
use throttle_core::{Config, Limits};

use crate::ideal::IdealNode;

/// How the driver waits for a leaf that was told `Wait` or `Paused`.
///
/// Both must give the same contract results; they differ in how many times leaves re-ask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DriverStyle {
    /// One timer for the whole tree: the driver sleeps until [`Tree::poll_timeout`], calls
    /// [`Tree::handle_timeout`], and wakes the leaves [`Tree::poll_ready`] reports. A waiting
    /// leaf re-asks only when reported ready.
    ///
    /// [`Tree::poll_timeout`]: throttle_core::Tree::poll_timeout
    /// [`Tree::handle_timeout`]: throttle_core::Tree::handle_timeout
    /// [`Tree::poll_ready`]: throttle_core::Tree::poll_ready
    OneTimer,
    /// One timer per waiter: a waiting leaf re-asks at its `Wait { until }`, and every waiting
    /// or paused leaf re-asks when [`Tree::generation`](throttle_core::Tree::generation)
    /// changes. Leaves reported by `poll_ready` are still woken (they hold a grant); nobody
    /// calls `handle_timeout`.
    PerWaiter,
}

/// What a leaf wants to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Demand {
    /// Always has data: asks again as soon as its io delay is over.
    Saturating,
    /// A finite transfer of this many tokens (e.g. a 1 GiB request); the leaf goes idle when
    /// it has sent them all. The report gives its completion time.
    Bytes(u64),
    /// At each `(time since start, tokens)` that many tokens are added to the leaf's backlog.
    Scripted(Vec<(Duration, u64)>),
    /// Alternates busy periods (saturating) and idle periods, each of a seeded random length
    /// uniform in `[0, 2 × mean]`. Starts busy. When a busy period ends the leaf finishes the
    /// piece it waits for, then stops asking.
    OnOff {
        /// Mean busy period.
        on: Duration,
        /// Mean idle period.
        off: Duration,
    },
}

/// The consumer behind a leaf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafSpec {
    /// What it wants to send.
    pub demand: Demand,
    /// Most tokens asked per `acquire` (the size of the caller's buffer). Default 64 KiB.
    pub want: u64,
    /// Time between a grant and the next `acquire` (writing the data). Default zero.
    pub io_delay: Duration,
    /// When the leaf starts (time since the start of the simulation). Default zero.
    pub start: Duration,
}

impl LeafSpec {
    /// A consumer with this demand, 64 KiB buffers, no io delay, starting at once.
    pub fn new(demand: Demand) -> Self {
        LeafSpec {
            demand,
            want: 64 * 1024,
            io_delay: Duration::ZERO,
            start: Duration::ZERO,
        }
    }

    /// The same with `want` tokens asked per `acquire` (at least 1).
    #[must_use]
    pub fn want(mut self, want: u64) -> Self {
        self.want = want.max(1);
        self
    }

    /// The same with an io delay between a grant and the next ask.
    #[must_use]
    pub fn io_delay(mut self, d: Duration) -> Self {
        self.io_delay = d;
        self
    }

    /// The same starting at `t` after the start.
    #[must_use]
    pub fn start(mut self, t: Duration) -> Self {
        self.start = t;
        self
    }
}

/// One node of the scenario's tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSpec {
    /// Name used in reports.
    pub name: String,
    /// Index of the parent (added earlier), `None` for a root.
    pub parent: Option<usize>,
    /// Limits at the start.
    pub limits: Limits,
    /// Weight among siblings (≥ 1).
    pub weight: u16,
    /// `Some` for a leaf: its consumer.
    pub leaf: Option<LeafSpec>,
}

/// Something that happens at a given time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `set_limit(node, limits)`.
    SetLimit {
        /// Node index.
        node: usize,
        /// The new limits.
        limits: Limits,
    },
    /// `set_weight(node, weight)`.
    SetWeight {
        /// Node index.
        node: usize,
        /// The new weight (0 is rejected by the core; the simulator records the error).
        weight: u16,
    },
    /// `cancel(leaf)`: the consumer abandons its wait (a dropped future) and asks again after
    /// its io delay.
    Cancel {
        /// Leaf index.
        leaf: usize,
    },
    /// `remove(leaf)`: the connection closes, whatever it has in flight.
    Remove {
        /// Leaf index.
        leaf: usize,
    },
}

/// How a real runtime drives the core, as opposed to the exact timers the simulator has by
/// default: timers that fire on a grid, tasks that run a while after they were woken, and
/// tasks that stall now and then.
///
/// `Runtime::EXACT` (the default) fires every timer at its instant and runs every woken task
/// at once. [`Runtime::tokio`] is what `tokio::time` and a busy executor give: timers rounded
/// up to the next millisecond, and a wake-up latency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Runtime {
    /// Timers fire at the first multiple of this after their deadline (zero: exactly).
    pub timer_grid: Duration,
    /// A woken task (by a timer or by `poll_ready`) runs after a delay uniform in
    /// `[min, max]` (seeded), as a task queued behind others on an executor.
    pub wake_latency: (Duration, Duration),
    /// Share (per mille) of re-asks after a grant that are delayed by a stall uniform in
    /// `[min, max]`: a task descheduled by a loaded CPU, a long poll elsewhere.
    pub stalls: (u32, Duration, Duration),
}

impl Runtime {
    /// Exact timers, no latency, no stalls.
    pub const EXACT: Runtime = Runtime {
        timer_grid: Duration::ZERO,
        wake_latency: (Duration::ZERO, Duration::ZERO),
        stalls: (0, Duration::ZERO, Duration::ZERO),
    };

    /// tokio's timer wheel: deadlines rounded up to the next 1 ms, plus a wake-up latency
    /// uniform in `[0, max_latency]`.
    pub const fn tokio(max_latency: Duration) -> Runtime {
        Runtime {
            timer_grid: Duration::from_millis(1),
            wake_latency: (Duration::ZERO, max_latency),
            stalls: (0, Duration::ZERO, Duration::ZERO),
        }
    }

    /// The same with stalls: `per_mille` of re-asks delayed by `[min, max]`.
    #[must_use]
    pub const fn with_stalls(mut self, per_mille: u32, min: Duration, max: Duration) -> Runtime {
        self.stalls = (per_mille, min, max);
        self
    }
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime::EXACT
    }
}

/// Hostile timestamps: some calls are given a `now` earlier than the true virtual time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Backwards {
    /// Share of calls (per mille) given an earlier timestamp.
    pub per_mille: u32,
    /// How much earlier at most.
    pub max: Duration,
}

/// A complete, deterministic simulation input. Same scenario → same [`Report`](super::Report).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// Name used in reports.
    pub name: String,
    /// The tree's configuration (piece sizes, round).
    pub config: Config,
    /// Nodes, parents before children.
    pub nodes: Vec<NodeSpec>,
    /// Timed events, `(time since start, action)`, applied in time order (ties: in the order
    /// given, before leaves re-ask at that time).
    pub actions: Vec<(Duration, Action)>,
    /// Virtual time simulated.
    pub duration: Duration,
    /// Rates and shares are measured over `[warmup, duration)`; default zero.
    pub warmup: Duration,
    /// How waiters wait.
    pub driver: DriverStyle,
    /// Seed of every random choice (on/off periods, short writes, hostile timestamps).
    pub seed: u64,
    /// Share of grants (per mille) of which only a random part `0..n` is used and the rest
    /// settled back ("short writes"). Settling happens at the grant's instant, as an adapter
    /// that writes as soon as it is granted does.
    pub short_writes: u32,
    /// Hostile timestamps for `acquire`, `settle`, `cancel`, `remove` and `set_limit`
    /// (`handle_timeout` always gets the true time).
    pub backwards: Option<Backwards>,
    /// How timers fire and tasks run (default: exactly, at once).
    pub runtime: Runtime,
    /// Stop after this many tree operations (guards against scenarios where an unlimited
    /// path grants forever at one instant); the report then says `truncated`.
    pub max_ops: u64,
    /// Keep every grant and wait of every leaf in the report (for tests that look at times).
    pub trace: bool,
}

impl Scenario {
    /// An empty scenario: 1 s, one-timer driver, seed 0, no short writes, honest clocks.
    pub fn new(name: impl Into<String>, config: Config) -> Self {
        Scenario {
            name: name.into(),
            config,
            nodes: Vec::new(),
            actions: Vec::new(),
            duration: Duration::from_secs(1),
            warmup: Duration::ZERO,
            driver: DriverStyle::OneTimer,
            seed: 0,
            short_writes: 0,
            backwards: None,
            runtime: Runtime::EXACT,
            max_ops: 20_000_000,
            trace: false,
        }
    }

    /// Adds an interior node under `parent` (or a root); returns its index.
    ///
    /// # Panics
    /// If `parent` is not the index of an interior node added before (a test-writing error).
    pub fn node(
        &mut self,
        name: impl Into<String>,
        parent: Option<usize>,
        limits: Limits,
        weight: u16,
    ) -> usize {
        self.push(name.into(), parent, limits, weight, None)
    }

    /// Adds a leaf under `parent` (or a standalone root leaf); returns its index.
    ///
    /// # Panics
    /// As [`Scenario::node`].
    pub fn leaf(
        &mut self,
        name: impl Into<String>,
        parent: Option<usize>,
        limits: Limits,
        weight: u16,
        spec: LeafSpec,
    ) -> usize {
        self.push(name.into(), parent, limits, weight, Some(spec))
    }

    fn push(
        &mut self,
        name: String,
        parent: Option<usize>,
        limits: Limits,
        weight: u16,
        leaf: Option<LeafSpec>,
    ) -> usize {
        if let Some(p) = parent {
            assert!(
                p < self.nodes.len() && self.nodes[p].leaf.is_none(),
                "parent {p} of {name} must be an interior node added before it"
            );
        }
        self.nodes.push(NodeSpec {
            name,
            parent,
            limits,
            weight,
            leaf,
        });
        self.nodes.len() - 1
    }

    /// Schedules `action` at `t` after the start.
    pub fn at(&mut self, t: Duration, action: Action) -> &mut Self {
        self.actions.push((t, action));
        self
    }

    /// The index of the node called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// Indexes of the leaves, in order.
    pub fn leaves(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].leaf.is_some())
            .collect()
    }

    /// The path from node `i` up to its root, `i` first.
    pub fn path(&self, i: usize) -> Vec<usize> {
        let mut p = vec![i];
        let mut k = i;
        while let Some(up) = self.nodes[k].parent {
            p.push(up);
            k = up;
        }
        p
    }

    /// The oracle's view of the tree at the start: caps are the smallest long-run tier rates
    /// (bytes/s); leaves with [`Demand::Saturating`], no io delay and a start at zero are busy,
    /// all others idle (cap 0). Only meaningful without timed events.
    pub fn ideal_nodes(&self) -> Vec<IdealNode> {
        self.nodes
            .iter()
            .map(|n| {
                let cap = limits_rate(&n.limits);
                let busy = n.leaf.as_ref().map(|l| {
                    l.demand == Demand::Saturating && l.io_delay.is_zero() && l.start.is_zero()
                });
                IdealNode {
                    parent: n.parent,
                    cap: if busy == Some(false) { 0.0 } else { cap },
                    weight: f64::from(n.weight.max(1)),
                    leaf: n.leaf.is_some(),
                }
            })
            .collect()
    }

    /// [`crate::ideal::ideal`] of [`Scenario::ideal_nodes`]: the long-run rate of every node.
    pub fn ideal_rates(&self) -> Vec<f64> {
        crate::ideal::ideal(&self.ideal_nodes())
    }

    /// Runs the simulation. Deterministic: the same scenario gives the same report.
    pub fn run(&self) -> super::Report {
        super::driver::run(self)
    }
}

/// The smallest long-run rate of `limits` in tokens per second (exact fraction as `f64`);
/// infinity when unlimited, 0 when paused.
pub fn limits_rate(limits: &Limits) -> f64 {
    limits
        .tiers()
        .iter()
        .map(|t| t.amount() as f64 * 1e9 / t.period().as_nanos() as f64)
        .fold(f64::INFINITY, f64::min)
}

fn fmt_limits(l: &Limits) -> String {
    if l.is_unlimited() {
        return "unlimited".into();
    }
    l.tiers()
        .iter()
        .map(|t| {
            if t.period() == Duration::from_secs(1) {
                format!("{}/s burst {}", t.amount(), t.burst())
            } else {
                format!("{} per {:?} burst {}", t.amount(), t.period(), t.burst())
            }
        })
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// A compact listing: one line per node (indented by depth, with its parent's index), then
/// the settings and the timed events.
impl core::fmt::Display for Scenario {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        writeln!(
            f,
            "scenario {} ({:?}, {:?}, {:?}, seed {}, short writes {}‰, backwards {:?}, {:?})",
            self.name,
            self.duration,
            self.driver,
            self.runtime,
            self.seed,
            self.short_writes,
            self.backwards,
            self.config
        )?;
        for (i, n) in self.nodes.iter().enumerate() {
            let depth = self.path(i).len() - 1;
            write!(
                f,
                "  {:indent$}[{i}] {}{} w{} {}",
                "",
                n.name,
                n.parent.map_or(String::new(), |p| format!(" (in [{p}])")),
                n.weight,
                fmt_limits(&n.limits),
                indent = 2 * depth
            )?;
            if let Some(l) = &n.leaf {
                write!(
                    f,
                    " leaf {:?} want {} io {:?} start {:?}",
                    l.demand, l.want, l.io_delay, l.start
                )?;
            }
            writeln!(f)?;
        }
        for (t, a) in &self.actions {
            match a {
                Action::SetLimit { node, limits } => {
                    writeln!(f, "  at {t:?}: set_limit([{node}], {})", fmt_limits(limits))?
                }
                other => writeln!(f, "  at {t:?}: {other:?}")?,
            }
        }
        Ok(())
    }
}
