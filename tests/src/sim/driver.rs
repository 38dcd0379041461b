//! The event loop: virtual time, one queue of events, a real `VecTree`, and the bookkeeping
//! the checks need.
//!
//! Each step takes the earliest of: the tree's timer (`poll_timeout`, one-timer style only),
//! a leaf's scheduled re-ask, a timed action, a demand change. After every tree operation the
//! driver drains `poll_ready` and schedules those leaves to collect their grant at once.
//!
//! Ledger: every piece is recorded with the core time and operation number at which the core
//! spent it (for a piece another call granted: when it appeared in `poll_ready`), and every
//! refund with the time it happened. Conformance is checked on that ledger, which is exactly
//! what each token bucket bounds. Usage figures count each grant at its spending time, net of
//! what was given back for it.

use alloc::collections::BinaryHeap;
use core::cmp::Reverse;
use core::time::Duration;
use std::collections::HashMap;

use throttle_core::{
    AcquireError, Decision, Instant, LeafId, Limits, NodeId, RemoveError, SetLimitError, VecTree,
};

use super::conformance::worst_slack;
use super::report::{LeafReport, NodeReport, Report, TierCheck, TraceEvent};
use super::scenario::{limits_rate, Action, Demand, DriverStyle, Scenario};
use crate::ideal::jain;
use crate::rng::SplitMix64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// No backlog, nothing in the core.
    Idle,
    /// An ask is queued.
    Asking,
    /// A piece waits in the core (`until`: what `Wait` said; `None`: paused).
    Waiting(Option<u64>),
    Removed,
}

#[derive(Clone, Copy, Debug)]
enum Ev {
    Ask { leaf: usize, epoch: u64 },
    Action(usize),
    Arrival { leaf: usize, bytes: u64 },
    Toggle { leaf: usize },
    Start { leaf: usize },
}

impl Ev {
    /// Order of events at the same instant: actions, then demand changes, then asks.
    fn prio(&self) -> u8 {
        match self {
            Ev::Action(_) => 0,
            Ev::Arrival { .. } | Ev::Toggle { .. } | Ev::Start { .. } => 1,
            Ev::Ask { .. } => 2,
        }
    }
}

struct Leaf {
    node: usize,
    id: LeafId,
    backlog: u64,
    state: State,
    epoch: u64,
    /// The `want` of the piece waiting in the core; re-asks repeat it, so the collected grant
    /// is the whole piece.
    pending_want: Option<u64>,
    /// `(core time, op)` at which `poll_ready` reported a grant not yet collected.
    ready: Option<(u64, u64)>,
    on: bool,
    rng: SplitMix64,
    done_at: Option<u64>,
    grants: u64,
    trace: Vec<TraceEvent>,
}

#[derive(Clone, Copy, Debug)]
struct GrantRec {
    leaf: usize,
    t: u64,
    seq: u64,
    spent: u64,
    net: u64,
}

#[derive(Clone, Copy, Debug)]
struct RefundRec {
    leaf: usize,
    t: u64,
    seq: u64,
    amount: u64,
}

struct Sim<'a> {
    sc: &'a Scenario,
    tree: VecTree,
    ids: Vec<NodeId>,
    leaf_of: Vec<Option<usize>>,
    by_id: HashMap<NodeId, usize>,
    leaves: Vec<Leaf>,
    paths: Vec<Vec<usize>>,
    /// Keys `time << 64 | prio << 62 | counter << 30 | slot`: time, then priority, then FIFO.
    queue: BinaryHeap<Reverse<u128>>,
    slots: Vec<Ev>,
    free: Vec<u32>,
    seq: u64,
    op: u64,
    now: u64,
    rng: SplitMix64,
    grants: Vec<GrantRec>,
    refunds: Vec<RefundRec>,
    phases: Vec<Vec<(u64, u64, Limits)>>,
    violations: Vec<String>,
    last_gen: u32,
    digest: u64,
    truncated: bool,
    end: u64,
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Runs `sc`; see [`Scenario::run`].
pub(super) fn run(sc: &Scenario) -> Report {
    let mut s = Sim::new(sc);
    s.main_loop();
    s.finish()
}

impl<'a> Sim<'a> {
    fn new(sc: &'a Scenario) -> Self {
        let mut s = Sim {
            sc,
            tree: VecTree::new(sc.config),
            ids: Vec::new(),
            leaf_of: vec![None; sc.nodes.len()],
            by_id: HashMap::new(),
            leaves: Vec::new(),
            paths: (0..sc.nodes.len()).map(|i| sc.path(i)).collect(),
            queue: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            seq: 0,
            op: 0,
            now: 0,
            rng: SplitMix64::fork(sc.seed, u64::MAX),
            grants: Vec::new(),
            refunds: Vec::new(),
            phases: Vec::new(),
            violations: Vec::new(),
            last_gen: 0,
            digest: 0xcbf2_9ce4_8422_2325,
            truncated: false,
            end: ns(sc.duration),
        };
        for (i, n) in sc.nodes.iter().enumerate() {
            let parent = n.parent.map(|p| s.ids[p]);
            let t0 = Instant::ZERO;
            let inserted = match &n.leaf {
                Some(_) => s
                    .tree
                    .insert_leaf(parent, n.limits, n.weight, t0)
                    .map(|l| (l.node(), Some(l))),
                None => s
                    .tree
                    .insert_node(parent, n.limits, n.weight, t0)
                    .map(|id| (id, None)),
            };
            let (id, leaf_id) = match inserted {
                Ok(x) => x,
                Err(e) => panic!("scenario {}: cannot insert node {}: {e}", sc.name, n.name),
            };
            s.ids.push(id);
            s.phases.push(vec![(0, 0, n.limits)]);
            if let Some(spec) = &n.leaf {
                let k = s.leaves.len();
                s.leaf_of[i] = Some(k);
                s.by_id.insert(id, k);
                let (backlog, on) = match &spec.demand {
                    Demand::Saturating | Demand::OnOff { .. } => (u64::MAX, true),
                    Demand::Bytes(b) => (*b, false),
                    Demand::Scripted(_) => (0, false),
                };
                let Some(leaf_id) = leaf_id else {
                    unreachable!("a leaf spec is inserted as a leaf")
                };
                s.leaves.push(Leaf {
                    node: i,
                    id: leaf_id,
                    backlog,
                    state: State::Idle,
                    epoch: 0,
                    pending_want: None,
                    ready: None,
                    on,
                    rng: SplitMix64::fork(sc.seed, i as u64),
                    done_at: (backlog == 0 && matches!(spec.demand, Demand::Bytes(_)))
                        .then(|| ns(spec.start)),
                    grants: 0,
                    trace: Vec::new(),
                });
                s.push(ns(spec.start), Ev::Start { leaf: k });
                if let Demand::Scripted(script) = &spec.demand {
                    for &(t, bytes) in script {
                        s.push(ns(t), Ev::Arrival { leaf: k, bytes });
                    }
                }
            }
        }
        for (i, (t, _)) in sc.actions.iter().enumerate() {
            s.push(ns(*t), Ev::Action(i));
        }
        s.last_gen = s.tree.generation();
        s
    }

    fn push(&mut self, t: u64, ev: Ev) {
        self.seq += 1;
        let slot = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = ev;
                i
            }
            None => {
                self.slots.push(ev);
                (self.slots.len() - 1) as u32
            }
        };
        let key = u128::from(t) << 64
            | u128::from(ev.prio()) << 62
            | u128::from(self.seq & 0xFFFF_FFFF) << 30
            | u128::from(slot & 0x3FFF_FFFF);
        self.queue.push(Reverse(key));
    }

    fn mix(&mut self, words: &[u64]) {
        for &w in words {
            self.digest = (self.digest ^ w)
                .wrapping_mul(0x0100_0000_01b3)
                .rotate_left(29);
        }
    }

    fn violation(&mut self, msg: String) {
        self.violations.push(format!(
            "t={:.9}s op {}: {msg}",
            self.now as f64 / 1e9,
            self.op
        ));
    }

    /// The timestamp given to the next call: the true time, or earlier when hostile.
    fn fed(&mut self) -> Instant {
        let mut t = self.now;
        if let Some(b) = self.sc.backwards {
            if self.rng.chance(b.per_mille) {
                t = t.saturating_sub(self.rng.range(1, ns(b.max).max(1)));
            }
        }
        Instant::from_nanos(t)
    }

    fn begin_op(&mut self) {
        self.op += 1;
        if self.op >= self.sc.max_ops {
            self.truncated = true;
        }
    }

    fn clock(&self) -> u64 {
        self.tree.now().as_nanos()
    }

    fn main_loop(&mut self) {
        loop {
            if self.truncated {
                break;
            }
            let ev_t = self.queue.peek().map(|Reverse(k)| (k >> 64) as u64);
            let timer = match self.sc.driver {
                DriverStyle::OneTimer => self
                    .tree
                    .poll_timeout()
                    .map(|t| self.on_grid(t.as_nanos()).max(self.now)),
                DriverStyle::PerWaiter => None,
            };
            let next = match (ev_t, timer) {
                (None, None) => break,
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
            };
            if next >= self.end {
                break;
            }
            self.now = self.now.max(next);
            if timer == Some(next) {
                self.begin_op();
                self.tree.handle_timeout(Instant::from_nanos(self.now));
                self.mix(&[self.op, 1, self.now]);
                if let Some(t) = self.tree.poll_timeout() {
                    if t.as_nanos() <= self.now {
                        self.violation(format!(
                            "handle_timeout({}) left poll_timeout at {} (timer never advances)",
                            self.now,
                            t.as_nanos()
                        ));
                        break;
                    }
                }
                self.after_op();
                continue;
            }
            let Some(Reverse(key)) = self.queue.pop() else {
                break;
            };
            let slot = (key & 0x3FFF_FFFF) as u32;
            let ev = self.slots[slot as usize];
            self.free.push(slot);
            match ev {
                Ev::Ask { leaf, epoch } => {
                    let l = &self.leaves[leaf];
                    if l.epoch == epoch && matches!(l.state, State::Asking | State::Waiting(_)) {
                        self.ask(leaf);
                    }
                }
                Ev::Action(i) => self.action(i),
                Ev::Arrival { leaf, bytes } => {
                    let l = &mut self.leaves[leaf];
                    if l.state != State::Removed {
                        l.backlog = l.backlog.saturating_add(bytes);
                        if l.state == State::Idle {
                            self.schedule_ask(leaf, self.now);
                        }
                    }
                }
                Ev::Toggle { leaf } => self.toggle(leaf),
                Ev::Start { leaf } => {
                    if let Demand::OnOff { on, .. } = self.spec(leaf).demand {
                        let d = self.leaves[leaf].rng.range(1_000, ns(on).saturating_mul(2));
                        self.push(self.now.saturating_add(d), Ev::Toggle { leaf });
                    }
                    if self.leaves[leaf].state == State::Idle && self.leaves[leaf].backlog > 0 {
                        self.schedule_ask(leaf, self.now);
                    }
                }
            }
        }
    }

    fn spec(&self, leaf: usize) -> &'a super::scenario::LeafSpec {
        let sc: &'a Scenario = self.sc;
        match &sc.nodes[self.leaves[leaf].node].leaf {
            Some(spec) => spec,
            None => unreachable!("leaves are built from leaf specs"),
        }
    }

    fn toggle(&mut self, leaf: usize) {
        if self.leaves[leaf].state == State::Removed {
            return;
        }
        let Demand::OnOff { on, off } = self.spec(leaf).demand else {
            return;
        };
        let l = &mut self.leaves[leaf];
        l.on = !l.on;
        let mean = if l.on { on } else { off };
        let d = l.rng.range(1_000, ns(mean).saturating_mul(2));
        if l.on {
            l.backlog = u64::MAX;
            if l.state == State::Idle {
                self.schedule_ask(leaf, self.now);
            }
        } else {
            l.backlog = 0;
        }
        self.push(self.now.saturating_add(d), Ev::Toggle { leaf });
    }

    /// When a timer set for `t` fires under the scenario's runtime (the grid rounds up).
    fn on_grid(&self, t: u64) -> u64 {
        let grid = ns(self.sc.runtime.timer_grid);
        if grid == 0 {
            return t;
        }
        t.div_ceil(grid).saturating_mul(grid)
    }

    /// How long a woken task takes to run (seeded, per leaf).
    fn latency(&mut self, leaf: usize) -> u64 {
        let (lo, hi) = self.sc.runtime.wake_latency;
        let (lo, hi) = (ns(lo), ns(hi));
        if hi <= lo {
            return lo;
        }
        self.leaves[leaf].rng.range(lo, hi)
    }

    /// A stall before a re-ask, if this one stalls (seeded, per leaf).
    fn stall(&mut self, leaf: usize) -> u64 {
        let (per_mille, lo, hi) = self.sc.runtime.stalls;
        if per_mille == 0 || !self.leaves[leaf].rng.chance(per_mille) {
            return 0;
        }
        let (lo, hi) = (ns(lo), ns(hi));
        if hi <= lo {
            return lo;
        }
        self.leaves[leaf].rng.range(lo, hi)
    }

    fn schedule_ask(&mut self, leaf: usize, at: u64) {
        self.leaves[leaf].state = State::Asking;
        self.wake_at(leaf, at);
    }

    /// Queues an ask at `at`, superseding any queued one, without changing the state (a
    /// per-waiter timer keeps the leaf `Waiting`, so a generation change still wakes it).
    fn wake_at(&mut self, leaf: usize, at: u64) {
        let l = &mut self.leaves[leaf];
        l.epoch += 1;
        let epoch = l.epoch;
        self.push(at, Ev::Ask { leaf, epoch });
    }

    /// Drains `poll_ready` and, per-waiter style, wakes every waiter on a generation change.
    fn after_op(&mut self) {
        while let Some(l) = self.tree.poll_ready() {
            let Some(&k) = self.by_id.get(&l.node()) else {
                self.violation(format!("poll_ready returned an unknown leaf {l:?}"));
                continue;
            };
            if self.leaves[k].state == State::Removed {
                self.violation(format!("poll_ready returned removed leaf {k}"));
                continue;
            }
            if self.leaves[k].ready.is_some() {
                self.violation(format!("leaf {k} reported ready twice"));
            }
            self.leaves[k].ready = Some((self.clock(), self.op));
            self.mix(&[self.op, 2, k as u64]);
            let at = self.now.saturating_add(self.latency(k));
            self.schedule_ask(k, at);
        }
        if self.sc.driver == DriverStyle::PerWaiter {
            let g = self.tree.generation();
            if g != self.last_gen {
                self.last_gen = g;
                for k in 0..self.leaves.len() {
                    if matches!(self.leaves[k].state, State::Waiting(_)) {
                        let at = self.now.saturating_add(self.latency(k));
                        self.schedule_ask(k, at);
                    }
                }
            }
        }
    }

    fn ask(&mut self, k: usize) {
        let spec = self.spec(k);
        let want = match self.leaves[k].pending_want {
            Some(w) => w,
            None => {
                if self.leaves[k].backlog == 0 {
                    self.leaves[k].state = State::Idle;
                    return;
                }
                spec.want.min(self.leaves[k].backlog).max(1)
            }
        };
        let fed = self.fed();
        self.begin_op();
        let id = self.leaves[k].id;
        let d = self.tree.acquire(id, want, fed);
        match d {
            Ok(Decision::Grant(n)) => {
                self.mix(&[self.op, 3, k as u64, n, self.clock()]);
                if n == 0 || n > want {
                    self.violation(format!("leaf {k} asked {want}, got Grant({n})"));
                }
                let (t, seq) = self.leaves[k]
                    .ready
                    .take()
                    .unwrap_or((self.clock(), self.op));
                self.leaves[k].pending_want = None;
                self.after_op();
                let used = if self.sc.short_writes > 0
                    && self.leaves[k].rng.chance(self.sc.short_writes)
                {
                    self.leaves[k].rng.below(n)
                } else {
                    n
                };
                let fed = self.fed();
                self.begin_op();
                if let Err(e) = self.tree.settle(id, used, fed) {
                    self.violation(format!("leaf {k}: settle({used}) of Grant({n}): {e}"));
                }
                if used < n {
                    self.refunds.push(RefundRec {
                        leaf: k,
                        t: self.clock(),
                        seq: self.op,
                        amount: n - used,
                    });
                }
                self.grants.push(GrantRec {
                    leaf: k,
                    t,
                    seq,
                    spent: n,
                    net: used,
                });
                let now = self.now;
                let l = &mut self.leaves[k];
                l.grants += 1;
                if self.sc.trace {
                    l.trace.push(TraceEvent::Grant {
                        at: Duration::from_nanos(now),
                        spent_at: Duration::from_nanos(t),
                        n,
                    });
                }
                if l.backlog != u64::MAX {
                    l.backlog -= used.min(l.backlog);
                    if l.backlog == 0
                        && l.done_at.is_none()
                        && matches!(spec.demand, Demand::Bytes(_))
                    {
                        l.done_at = Some(now);
                    }
                }
                if l.backlog == 0 {
                    l.state = State::Idle;
                } else {
                    let stall = self.stall(k);
                    self.schedule_ask(
                        k,
                        now.saturating_add(ns(spec.io_delay)).saturating_add(stall),
                    );
                }
                self.after_op();
            }
            Ok(Decision::Wait { until }) => {
                let until = until.as_nanos();
                self.mix(&[self.op, 4, k as u64, until]);
                if until <= self.clock() {
                    self.violation(format!(
                        "leaf {k}: Wait until {until} is not after the tree's now {}",
                        self.clock()
                    ));
                }
                if self.leaves[k].ready.is_some() {
                    self.violation(format!("leaf {k} was reported ready but got Wait"));
                }
                let l = &mut self.leaves[k];
                l.pending_want = Some(want);
                l.state = State::Waiting(Some(until));
                if self.sc.trace {
                    l.trace.push(TraceEvent::Wait {
                        at: Duration::from_nanos(self.now),
                        until: Duration::from_nanos(until),
                    });
                }
                if self.sc.driver == DriverStyle::PerWaiter {
                    let at = self.on_grid(until).max(self.now);
                    let at = at.saturating_add(self.latency(k));
                    self.wake_at(k, at);
                }
                self.after_op();
            }
            Ok(Decision::Paused) => {
                self.mix(&[self.op, 5, k as u64]);
                let l = &mut self.leaves[k];
                l.pending_want = Some(want);
                l.state = State::Waiting(None);
                if self.sc.trace {
                    l.trace.push(TraceEvent::Paused {
                        at: Duration::from_nanos(self.now),
                    });
                }
                self.after_op();
            }
            Err(e) => {
                self.violation(format!("leaf {k}: acquire({want}) failed: {e}"));
                self.leaves[k].state = State::Idle;
                self.after_op();
            }
        }
    }

    /// Records the refund of a piece the core granted but the leaf never collected.
    fn refund_uncollected(&mut self, k: usize, amount: u64, what: &str) {
        match self.leaves[k].ready.take() {
            Some((t, seq)) if amount > 0 => {
                self.grants.push(GrantRec {
                    leaf: k,
                    t,
                    seq,
                    spent: amount,
                    net: 0,
                });
                self.refunds.push(RefundRec {
                    leaf: k,
                    t: self.clock(),
                    seq: self.op,
                    amount,
                });
            }
            None if amount == 0 => {}
            other => self.violation(format!(
                "leaf {k}: {what} refunded {amount} while the driver saw grant {other:?}"
            )),
        }
    }

    fn action(&mut self, i: usize) {
        let action = &self.sc.actions[i].1;
        match *action {
            Action::SetLimit { node, limits } => {
                let fed = self.fed();
                self.begin_op();
                let r = self.tree.set_limit(self.ids[node], limits, fed);
                let removed =
                    self.leaf_of[node].is_some_and(|k| self.leaves[k].state == State::Removed);
                match (r, removed) {
                    (Ok(()), false) => {
                        let (op, t) = (self.op, self.clock());
                        self.phases[node].push((op, t, limits));
                    }
                    (Err(SetLimitError::StaleHandle), true) => {}
                    (r, _) => self.violation(format!("set_limit(node {node}) gave {r:?}")),
                }
                self.mix(&[self.op, 6, node as u64]);
                self.after_op();
            }
            Action::SetWeight { node, weight } => {
                self.begin_op();
                let r = self.tree.set_weight(self.ids[node], weight);
                let removed =
                    self.leaf_of[node].is_some_and(|k| self.leaves[k].state == State::Removed);
                if r.is_ok() == (removed || weight == 0) {
                    self.violation(format!("set_weight(node {node}, {weight}) gave {r:?}"));
                }
                self.after_op();
            }
            Action::Cancel { leaf: node } => {
                let Some(k) = self.leaf_of[node] else {
                    self.violation(format!("cancel: node {node} is not a leaf"));
                    return;
                };
                let fed = self.fed();
                self.begin_op();
                let r = self.tree.cancel(self.leaves[k].id, fed);
                self.mix(&[self.op, 7, k as u64, r.unwrap_or(u64::MAX)]);
                if self.leaves[k].state == State::Removed {
                    if r.is_ok() {
                        self.violation(format!("cancel of removed leaf {k} gave {r:?}"));
                    }
                    return;
                }
                match r {
                    Ok(refund) => self.refund_uncollected(k, refund, "cancel"),
                    Err(e) => self.violation(format!("cancel(leaf {k}): {e}")),
                }
                self.leaves[k].pending_want = None;
                if self.leaves[k].backlog > 0 {
                    let at = self.now.saturating_add(ns(self.spec(k).io_delay));
                    self.schedule_ask(k, at);
                } else {
                    self.leaves[k].epoch += 1;
                    self.leaves[k].state = State::Idle;
                }
                self.after_op();
            }
            Action::Remove { leaf: node } => {
                let Some(k) = self.leaf_of[node] else {
                    self.violation(format!("remove: node {node} is not a leaf"));
                    return;
                };
                let id = self.leaves[k].id.node();
                if self.leaves[k].state == State::Removed {
                    let fed = self.fed();
                    self.begin_op();
                    let r = self.tree.remove(id, fed);
                    if r != Err(RemoveError::StaleHandle) {
                        self.violation(format!("second remove of leaf {k} gave {r:?}"));
                    }
                    return;
                }
                // what the core still counts for this leaf beyond what the driver recorded
                // is a piece granted but not collected: remove must refund it
                let counted = self.tree.stats(id).map(|s| s.granted).unwrap_or(0);
                let recorded: u64 = self
                    .grants
                    .iter()
                    .filter(|g| g.leaf == k)
                    .map(|g| g.net)
                    .sum();
                let fed = self.fed();
                self.begin_op();
                let r = self.tree.remove(id, fed);
                self.mix(&[self.op, 8, k as u64]);
                if let Err(e) = r {
                    self.violation(format!("remove(leaf {k}): {e}"));
                    return;
                }
                match counted.checked_sub(recorded) {
                    Some(u) => self.refund_uncollected(k, u, "remove"),
                    None => self.violation(format!(
                        "leaf {k}: stats say {counted} granted, the driver recorded {recorded}"
                    )),
                }
                let l = &mut self.leaves[k];
                l.state = State::Removed;
                l.epoch += 1;
                l.pending_want = None;
                // the handle must now be stale everywhere
                let stale = self.tree.acquire(l.id, 1, Instant::from_nanos(self.now));
                if stale != Err(AcquireError::StaleHandle) {
                    self.violation(format!("acquire on removed leaf {k} gave {stale:?}"));
                }
                self.after_op();
            }
        }
    }

    fn finish(mut self) -> Report {
        let sc = self.sc;
        // everyone stops: cancel what is in flight
        self.now = self.now.max(self.end);
        for k in 0..self.leaves.len() {
            if self.leaves[k].state == State::Removed {
                continue;
            }
            let t = Instant::from_nanos(self.now);
            self.begin_op();
            match self.tree.cancel(self.leaves[k].id, t) {
                Ok(r) => self.refund_uncollected(k, r, "final cancel"),
                Err(e) => self.violation(format!("final cancel(leaf {k}): {e}")),
            }
            self.leaves[k].ready = None;
            // a refund may grant a leaf not cancelled yet: it is cancelled in turn
            while let Some(l) = self.tree.poll_ready() {
                match self.by_id.get(&l.node()) {
                    Some(&j) if j > k => self.leaves[j].ready = Some((self.clock(), self.op)),
                    _ => self.violation(format!("{l:?} ready after it was cancelled")),
                }
            }
        }
        while let Some(l) = self.tree.poll_ready() {
            self.violation(format!("{l:?} ready after everyone cancelled"));
        }
        if let Some(t) = self.tree.poll_timeout() {
            self.violation(format!("a timer is armed at {t:?} while nothing waits"));
        }
        let live: Vec<bool> = (0..sc.nodes.len())
            .map(|i| self.tree.contains(self.ids[i]))
            .collect();
        let stats: Vec<_> = (0..sc.nodes.len())
            .map(|i| self.tree.stats(self.ids[i]).ok())
            .collect();

        // usage, net at spending time, per node
        let n = sc.nodes.len();
        let warm = ns(sc.warmup);
        let mut used = vec![0u64; n];
        let mut window_used = vec![0u64; n];
        let mut leaf_used = vec![0u64; self.leaves.len()];
        let mut leaf_window = vec![0u64; self.leaves.len()];
        for g in &self.grants {
            leaf_used[g.leaf] += g.net;
            let in_window = g.t >= warm && g.t < self.end;
            if in_window {
                leaf_window[g.leaf] += g.net;
            }
            for &p in &self.paths[self.leaves[g.leaf].node] {
                used[p] += g.net;
                if in_window {
                    window_used[p] += g.net;
                }
            }
        }

        // exact accounting against the core's own counters
        for i in 0..n {
            let Some(st) = stats[i] else { continue };
            if st.granted != used[i] {
                self.violation(format!(
                    "node {}: stats().granted = {} but the leaves below used {}",
                    sc.nodes[i].name, st.granted, used[i]
                ));
            }
            if st.waiting != 0 {
                self.violation(format!(
                    "node {}: {} waiting after everyone cancelled",
                    sc.nodes[i].name, st.waiting
                ));
            }
            if sc.nodes[i].leaf.is_none() {
                let children: u64 = (0..n)
                    .filter(|&c| sc.nodes[c].parent == Some(i))
                    .map(|c| stats[c].map_or(used[c], |s| s.granted))
                    .sum();
                if children != st.granted {
                    self.violation(format!(
                        "node {}: granted {} but its children add up to {children}",
                        sc.nodes[i].name, st.granted
                    ));
                }
            }
        }

        // conformance, per node, per phase, per tier, on the ledger
        let mut ledgers: Vec<Vec<(u64, u64, i128)>> = vec![Vec::new(); n];
        for g in &self.grants {
            for &p in &self.paths[self.leaves[g.leaf].node] {
                ledgers[p].push((g.seq, g.t, i128::from(g.spent)));
            }
        }
        for r in &self.refunds {
            for &p in &self.paths[self.leaves[r.leaf].node] {
                ledgers[p].push((r.seq, r.t, -i128::from(r.amount)));
            }
        }
        let max_piece = sc.config.max_piece();
        let mut checks: Vec<Vec<TierCheck>> = vec![Vec::new(); n];
        for i in 0..n {
            let ledger = &mut ledgers[i];
            ledger.sort_by_key(|&(seq, t, _)| (seq, t));
            let phases = &self.phases[i];
            for (ph, &(from_seq, from_t, limits)) in phases.iter().enumerate() {
                let to_seq = phases.get(ph + 1).map_or(u64::MAX, |p| p.0);
                let to_t = phases.get(ph + 1).map_or(self.end, |p| p.1);
                let entries: Vec<(u64, i128)> = ledger
                    .iter()
                    .filter(|e| e.0 >= from_seq && e.0 < to_seq)
                    .map(|e| (e.1, e.2))
                    .collect();
                let phase_used: i128 = entries.iter().filter(|e| e.0 < self.end).map(|e| e.1).sum();
                for (ti, tier) in limits.tiers().iter().enumerate() {
                    let c = TierCheck {
                        phase: ph,
                        from: Duration::from_nanos(from_t),
                        to: Duration::from_nanos(to_t),
                        used: phase_used,
                        tier_index: ti,
                        tier: *tier,
                        worst_slack: worst_slack(&entries, tier),
                        allowed: max_piece,
                    };
                    if !c.conforms() {
                        self.violations.push(format!(
                            "node {} tier {ti} phase {ph}: worst window exceeds rate·w + burst by {} > one piece ({max_piece})",
                            sc.nodes[i].name,
                            c.worst_slack.unwrap_or(0)
                        ));
                    }
                    checks[i].push(c);
                }
            }
        }

        // a long idle: every bucket refills to exactly its burst (nothing minted, no debt
        // left behind by refunds)
        let mut idle: u128 = 1;
        for i in (0..n).filter(|&i| live[i]) {
            for t in self
                .tree
                .limits(self.ids[i])
                .map(|l| l.tiers().to_vec())
                .unwrap_or_default()
            {
                if t.is_paused() {
                    continue;
                }
                let need = (u128::from(t.burst()) + u128::from(max_piece) + 1)
                    * t.period().as_nanos()
                    / u128::from(t.amount())
                    + 1;
                idle = idle.max(need);
            }
        }
        if let Some(t_idle) = u64::try_from(idle)
            .ok()
            .and_then(|d| self.tree.now().as_nanos().checked_add(d))
        {
            self.tree.handle_timeout(Instant::from_nanos(t_idle));
            for i in (0..n).filter(|&i| live[i]) {
                let Ok(limits) = self.tree.limits(self.ids[i]) else {
                    continue;
                };
                for (ti, t) in limits.tiers().iter().enumerate() {
                    let tokens = self.tree.tokens(self.ids[i], ti).unwrap_or(i128::MIN);
                    if !t.is_paused() && tokens != i128::from(t.burst()) {
                        self.violations.push(format!(
                            "node {} tier {ti}: {tokens} tokens after a long idle, burst is {}",
                            sc.nodes[i].name,
                            t.burst()
                        ));
                    }
                }
            }
        }

        // figures
        let window = sc.duration.saturating_sub(sc.warmup).as_secs_f64();
        let rate = |x: u64| if window > 0.0 { x as f64 / window } else { 0.0 };
        let ideal = sc.actions.is_empty().then(|| sc.ideal_rates());
        let ideal_of = |i: usize| ideal.as_ref().map(|v| v[i]).filter(|r| r.is_finite());
        let leaves: Vec<LeafReport> = self
            .leaves
            .iter_mut()
            .enumerate()
            .map(|(k, l)| LeafReport {
                index: l.node,
                name: sc.nodes[l.node].name.clone(),
                used: leaf_used[k],
                window_used: leaf_window[k],
                rate: rate(leaf_window[k]),
                ideal: ideal_of(l.node),
                done_at: l.done_at.map(Duration::from_nanos),
                removed: l.state == State::Removed,
                grants: l.grants,
                trace: core::mem::take(&mut l.trace),
            })
            .collect();
        let xs: Vec<f64> = leaves
            .iter()
            .filter(|l| !l.removed)
            .filter_map(|l| l.ideal.filter(|&i| i > 0.0).map(|i| l.rate / i))
            .collect();
        let nodes = (0..n)
            .map(|i| {
                let limits = self.phases[i].last().map_or(sc.nodes[i].limits, |p| p.2);
                let cap = limits_rate(&limits);
                // after limit changes: the last phase's usage against its own limit
                let last_phase = self.phases[i].len() - 1;
                let utilization = if last_phase > 0 {
                    checks[i]
                        .iter()
                        .filter(|c| c.phase == last_phase && !c.tier.is_paused())
                        .map(|c| {
                            let span = c.to.saturating_sub(c.from).as_secs_f64();
                            let r = c.tier.amount() as f64 / c.tier.period().as_secs_f64();
                            c.used as f64 / (r * span)
                        })
                        .filter(|u| u.is_finite())
                        .reduce(f64::max)
                } else {
                    (cap.is_finite() && cap > 0.0).then(|| rate(window_used[i]) / cap)
                };
                NodeReport {
                    index: i,
                    name: sc.nodes[i].name.clone(),
                    limits,
                    used: used[i],
                    window_used: window_used[i],
                    rate: rate(window_used[i]),
                    ideal: ideal_of(i),
                    stats: stats[i],
                    tiers: core::mem::take(&mut checks[i]),
                    utilization,
                }
            })
            .collect();
        Report {
            name: sc.name.clone(),
            driver: sc.driver,
            duration: sc.duration,
            warmup: sc.warmup,
            max_piece,
            leaves,
            nodes,
            jain: jain(&xs),
            violations: self.violations,
            ops: self.op,
            truncated: self.truncated,
            digest: self.digest,
        }
    }
}
