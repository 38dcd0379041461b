//! The `bucket` fuzz target: the arithmetic of one bucket at extreme rates, bursts and time
//! spans, through the public API only, checked against an exact model of its token levels.
//!
//! The tree is one root leaf, or one root node with one leaf under it. Each carries 0–3 tiers
//! built from arbitrary `(amount, period, burst)` — `0`, `1`, `u64::MAX`, periods from 1 ns to
//! `MAX_PERIOD` and beyond (rejected), `Tier::per_second` — then a sequence of `acquire`,
//! `settle`, `cancel`, `set_limit` (to other extreme tiers), `handle_timeout`, and caller-clock
//! jumps forwards, backwards, to `u64::MAX`, to the `until` of the last `Wait` or just before.
//!
//! The model keeps, per tier, the exact level in token·nanoseconds (`tokens × period`), as the
//! `bucket.rs` docs define it: a tier starts full (`burst × period`), earns `amount` per ns up
//! to full, a grant of `n` spends `n × period` (and is only made while no tier of the path is
//! paused and every tier holds its *threshold*, `min(period, full)`: one whole token, or 0
//! for a burst of 0), a refund adds `n × period` up to full, `set_limit` keeps tier `i`'s
//! tokens (floored toward −∞ when the period changes, capped by the new burst; a new tier
//! starts full). From that it predicts every answer. Oracles, after every call:
//! - **tiers**: `Tier::per_period` errors exactly on a zero period (`ZeroPeriod`) or one above
//!   `MAX_PERIOD` (`PeriodTooLong`), never panics; getters give back what was built;
//!   `Tier::per_second`'s automatic burst is `max(rate / 100, min(rate, 4096))`;
//!   `Limits::from_tiers` rejects more than `MAX_TIERS` tiers;
//! - **no panic, overflow or hang** (debug assertions are on);
//! - **decisions**: `Grant(n)` has `1 ≤ n ≤ want`; `Grant` exactly when no tier on the path is
//!   paused and each holds its threshold; a fresh grant's size is the piece rule of `Config`
//!   (`min(want, max_piece, max(min_piece, smallest burst and rate × round on the path)))`, a
//!   grant after waiting is that piece re-shrunk at grant time; `Paused` exactly when a tier on
//!   the path is paused; `Wait { until }` has `until > now` or `until == Instant::MAX`, and
//!   `until` is exact: the first nanosecond at which every tier on the path holds its threshold
//!   (`decision.rs`: exact for a leaf alone at its bottleneck; here there are no siblings);
//!   asking again at `until` (with no `set_limit` since) grants, unless `until == MAX`;
//! - **exact accounting**: `stats().granted` of both nodes is the used-plus-held sum of the
//!   model, `pieces`, `waiting` and `waited` match, `cancel` returns what was held,
//!   `settle` errors exactly when it should; `tokens(node, k)` equals the model's
//!   `floor(level / period)`, never exceeds the burst and never goes below minus the largest
//!   piece granted;
//! - **conformance** per tier since insert or the last `set_limit` of that node (u128, exact
//!   rationals): `net granted · period ≤ burst · period + amount · elapsed + p · period −
//!   threshold`, `p` the largest piece granted in the run (a piece starts on the threshold);
//! - **timers**: while the leaf waits, `poll_timeout()` is the earliest recovery among the
//!   nodes of its path below their threshold (none at `now == u64::MAX`), else `None`;
//! - **ready list**: `poll_ready` returns the leaf exactly when `handle_timeout` or
//!   `set_limit` granted its waiting piece.
//!
//! `THROTTLE_FUZZ_TRACE=1` prints every call as Rust code, with its result, to stderr.

use core::fmt;
use core::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use throttle_core::{
    AcquireError, Config, Decision, Instant, LeafId, Limits, LimitsError, NodeId, SettleError,
    Tier, TierError, VecTree, MAX_PERIOD, MAX_TIERS,
};

use crate::{Amount, ConfigIn};

// ------------------------------------------------------------------------------------------
// Input
// ------------------------------------------------------------------------------------------

/// A `u64` weighted towards the edges: 0, 1, 2, `u64::MAX`, `u64::MAX − k`, powers of two and
/// their neighbours, anything.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Extreme(pub u64);

impl fmt::Debug for Extreme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            u64::MAX => f.write_str("MAX"),
            v => write!(f, "{v}"),
        }
    }
}

impl<'a> Arbitrary<'a> for Extreme {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let sel: u8 = u.arbitrary()?;
        let v = match sel % 12 {
            0 => 0,
            1 => 1,
            2 => u64::MAX,
            3 => u64::MAX - u64::from(u.arbitrary::<u8>()?),
            4 => 1u64 << u.int_in_range(0..=63u32)?,
            5 => (1u64 << u.int_in_range(1..=63u32)?) - 1,
            6 => (1u64 << u.int_in_range(0..=63u32)?) + 1,
            7 | 8 => u.arbitrary()?,
            9 => u.int_in_range(2..=100)?,
            _ => u.int_in_range(1..=1 << 20)?,
        };
        Ok(Extreme(v))
    }

    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        (1, Some(9))
    }
}

/// A tier period, valid or not: 0, 1 ns, `MAX_PERIOD` and its neighbours, `u64::MAX` ns,
/// `Duration::MAX`, everyday periods, anything.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PeriodIn(pub Duration);

impl fmt::Debug for PeriodIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl<'a> Arbitrary<'a> for PeriodIn {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let max = MAX_PERIOD.as_nanos() as u64;
        let sel: u8 = u.arbitrary()?;
        let d = match sel % 16 {
            0 => Duration::ZERO,
            1 => Duration::from_nanos(1),
            2 => MAX_PERIOD,
            3 => Duration::from_nanos(max + 1),
            4 => Duration::from_nanos(max - u64::from(u.arbitrary::<u8>()?)),
            5 => Duration::from_nanos(u64::MAX),
            6 => Duration::MAX,
            7 => Duration::from_secs(u64::MAX),
            8 | 9 => Duration::from_secs(1),
            10 => Duration::from_millis(1),
            11 => Duration::from_secs(60),
            12 => Duration::from_nanos(u.arbitrary()?),
            13 => Duration::new(u.arbitrary()?, u.int_in_range(0..=999_999_999)?),
            _ => Duration::from_nanos(u.int_in_range(1..=max)?),
        };
        Ok(PeriodIn(d))
    }

    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        (1, Some(13))
    }
}

/// How one tier is built.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum TierSpec {
    /// `Tier::per_second(rate)`, optionally `.with_burst(b)`.
    PerSecond {
        rate: Extreme,
        burst: Option<Extreme>,
    },
    /// `Tier::per_period(amount, period)`, optionally `.with_burst(b)` (when it is valid).
    PerPeriod {
        amount: Extreme,
        period: PeriodIn,
        burst: Option<Extreme>,
    },
}

/// 1–4 tier specs (mostly one); invalid ones are dropped after their error is checked, more
/// than `MAX_TIERS` valid ones are rejected by `Limits::from_tiers` and then cut to three.
#[derive(Clone, Debug)]
pub struct TiersIn(pub Vec<TierSpec>);

impl<'a> Arbitrary<'a> for TiersIn {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let sel: u8 = u.arbitrary()?;
        let n = match sel % 16 {
            0 => 0,
            1..=8 => 1,
            9..=12 => 2,
            13 | 14 => 3,
            _ => 4,
        };
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(u.arbitrary()?);
        }
        Ok(TiersIn(v))
    }

    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        (1, None)
    }
}

/// How much of its grant the leaf reports used.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum UsedIn {
    All,
    None,
    /// `held × f / 255`.
    Fraction(u8),
    /// `held + 1 + k`, saturating: more than granted (an error).
    Over(u8),
    Raw(Extreme),
}

/// Where the caller's clock goes.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Jump {
    Nanos(u32),
    Millis(u16),
    Secs(u32),
    /// Saturating.
    Big(Extreme),
    Back(Extreme),
    /// `u64::MAX`.
    ToMax,
    /// To the `until` of the last `Wait`.
    ToUntil,
    /// One nanosecond before the `until` of the last `Wait`.
    JustBeforeUntil,
}

#[derive(Arbitrary, Clone, Debug)]
pub enum BOp {
    Acquire(Amount),
    /// Moves the clock to the last `Wait`'s `until`, then acquires.
    AcquireAtUntil(Amount),
    Settle(UsedIn),
    Cancel,
    Time(Jump),
    /// `on_node` is ignored for a leaf alone.
    SetLimit {
        on_node: bool,
        tiers: TiersIn,
    },
    HandleTimeout,
    /// Moves the clock to `poll_timeout()` (if later) and calls `handle_timeout` there.
    HandleAtDeadline,
}

#[derive(Arbitrary, Clone, Debug)]
pub struct BucketInput {
    pub config: ConfigIn,
    /// A root node with the leaf under it (else the leaf alone).
    pub with_node: bool,
    pub node_tiers: TiersIn,
    pub leaf_tiers: TiersIn,
    pub start: Extreme,
    pub ops: Vec<BOp>,
}

// ------------------------------------------------------------------------------------------
// Building tiers (oracle: typed errors, never a panic)
// ------------------------------------------------------------------------------------------

const NANOS_PER_SEC: u128 = 1_000_000_000;

fn build_tier(spec: &TierSpec) -> Option<Tier> {
    match *spec {
        TierSpec::PerSecond { rate, burst } => {
            let r = rate.0;
            let t = Tier::per_second(r);
            let auto = (r / 100).max(r.min(4096));
            assert_eq!(t.amount(), r, "per_second amount");
            assert_eq!(t.period(), Duration::from_secs(1), "per_second period");
            assert_eq!(t.burst(), auto, "per_second({r}) automatic burst");
            assert_eq!(t.rate_per_second(), r, "per_second rate");
            assert_eq!(t.is_paused(), r == 0);
            Some(match burst {
                Some(b) => {
                    let t2 = t.with_burst(b.0);
                    assert_eq!((t2.amount(), t2.period(), t2.burst()), (r, t.period(), b.0));
                    t2
                }
                None => t,
            })
        }
        TierSpec::PerPeriod {
            amount,
            period,
            burst,
        } => {
            let r = Tier::per_period(amount.0, period.0);
            if period.0.is_zero() {
                assert_eq!(r, Err(TierError::ZeroPeriod), "per_period({amount:?}, 0)");
                return None;
            }
            if period.0 > MAX_PERIOD {
                assert_eq!(
                    r,
                    Err(TierError::PeriodTooLong),
                    "per_period({amount:?}, {:?})",
                    period.0
                );
                return None;
            }
            let t = r.unwrap_or_else(|e| panic!("per_period({amount:?}, {:?}): {e:?}", period.0));
            assert_eq!(
                (t.amount(), t.period(), t.burst()),
                (amount.0, period.0, amount.0),
                "per_period getters"
            );
            let rps = u128::from(amount.0) * NANOS_PER_SEC / period.0.as_nanos();
            assert_eq!(
                t.rate_per_second(),
                u64::try_from(rps).unwrap_or(u64::MAX),
                "rate_per_second of {t:?}"
            );
            assert_eq!(t.is_paused(), amount.0 == 0);
            Some(match burst {
                Some(b) => t.with_burst(b.0),
                None => t,
            })
        }
    }
}

fn build_limits(tiers: &TiersIn) -> Limits {
    let valid: Vec<Tier> = tiers.0.iter().filter_map(build_tier).collect();
    if valid.len() > MAX_TIERS {
        assert_eq!(
            Limits::from_tiers(&valid),
            Err(LimitsError::TooManyTiers),
            "from_tiers with {} tiers",
            valid.len()
        );
    }
    let valid = &valid[..valid.len().min(MAX_TIERS)];
    let l = Limits::from_tiers(valid).expect("at most MAX_TIERS tiers");
    assert_eq!(l.tiers(), valid, "Limits::tiers");
    assert_eq!(l.is_unlimited(), valid.is_empty());
    assert_eq!(l.is_paused(), valid.iter().any(|t| t.amount() == 0));
    assert_eq!(
        l.rate_per_second(),
        valid.iter().map(Tier::rate_per_second).min(),
        "Limits::rate_per_second"
    );
    // the same limits, built tier by tier
    let chained = valid
        .iter()
        .try_fold(Limits::UNLIMITED, |acc, &t| acc.and(t))
        .expect("at most MAX_TIERS tiers");
    assert_eq!(chained, l, "Limits::and vs Limits::from_tiers");
    if valid.len() == MAX_TIERS {
        assert_eq!(
            l.and(valid[0]),
            Err(LimitsError::TooManyTiers),
            "Limits::and"
        );
    }
    if let [t] = valid {
        assert_eq!(Limits::new(*t), l, "Limits::new");
        if t.period() == Duration::from_secs(1) && t.burst() == Tier::per_second(t.amount()).burst()
        {
            assert_eq!(Limits::per_second(t.amount()), l, "Limits::per_second");
        }
    }
    l
}

// ------------------------------------------------------------------------------------------
// The model
// ------------------------------------------------------------------------------------------

fn period(t: &Tier) -> u128 {
    t.period().as_nanos()
}

/// `burst × period`: a full bucket, in token·ns.
fn full(t: &Tier) -> i128 {
    (u128::from(t.burst()) * period(t)) as i128
}

/// What a tier must hold to start a piece: one whole token, or its full bucket when that is
/// less (a burst of 0 holds at most 0), in token·ns.
fn threshold(t: &Tier) -> i128 {
    full(t).min(period(t) as i128)
}

/// One node's tiers, as the model sees them.
#[derive(Debug)]
struct MNode {
    id: NodeId,
    limits: Limits,
    /// Level of each tier in token·ns, refilled up to the model's clock.
    level: Vec<i128>,
    /// Conformance window: clock and granted counter at insert or last `set_limit`.
    base_clock: u64,
    base_granted: u128,
    pieces: u64,
    waited: u64,
}

impl MNode {
    fn new(id: NodeId, limits: Limits, clock: u64) -> MNode {
        MNode {
            id,
            limits,
            level: limits.tiers().iter().map(full).collect(),
            base_clock: clock,
            base_granted: 0,
            pieces: 0,
            waited: 0,
        }
    }

    /// Earns `dt` ns worth: `min(level + amount · dt, full)`.
    fn refill(&mut self, dt: u64) {
        for (l, t) in self.level.iter_mut().zip(self.limits.tiers()) {
            let f = full(t);
            if *l >= f {
                continue;
            }
            let room = (f - *l) as u128;
            *l = match u128::from(dt).checked_mul(u128::from(t.amount())) {
                Some(e) if e < room => *l + e as i128,
                _ => f,
            };
        }
    }

    fn consume(&mut self, n: u64) {
        for (l, t) in self.level.iter_mut().zip(self.limits.tiers()) {
            *l -= (u128::from(n) * period(t)) as i128;
        }
    }

    fn refund(&mut self, n: u64) {
        for (l, t) in self.level.iter_mut().zip(self.limits.tiers()) {
            *l = (*l + (u128::from(n) * period(t)) as i128).min(full(t));
        }
    }

    fn relimit(&mut self, new: Limits) {
        let old = self.limits;
        let level = new
            .tiers()
            .iter()
            .enumerate()
            .map(|(i, t)| match old.tiers().get(i) {
                Some(o) if o.period() == t.period() => self.level[i].min(full(t)),
                Some(o) => {
                    let tokens = self.level[i].div_euclid(period(o) as i128);
                    (tokens * period(t) as i128).min(full(t))
                }
                None => full(t),
            })
            .collect();
        self.level = level;
        self.limits = new;
    }

    fn paused(&self) -> bool {
        self.limits.tiers().iter().any(|t| t.amount() == 0)
    }

    /// No tier paused, and every tier holds its threshold (one whole token, or its full
    /// bucket when that is less).
    fn sendable(&self) -> bool {
        !self.paused()
            && self
                .level
                .iter()
                .zip(self.limits.tiers())
                .all(|(&l, t)| l >= threshold(t))
    }

    /// The first instant (ns, saturating) at which every tier holds its threshold; `None`
    /// when paused.
    fn recovery(&self, clock: u64) -> Option<u64> {
        if self.paused() {
            return None;
        }
        let mut at = clock;
        for (l, t) in self.level.iter().zip(self.limits.tiers()) {
            let need = threshold(t) - *l;
            if need > 0 {
                let dt = (need as u128).div_ceil(u128::from(t.amount()));
                at = at.max(clock.saturating_add(u64::try_from(dt).unwrap_or(u64::MAX)));
            }
        }
        Some(at)
    }

    /// Smallest burst of a tier that is not paused (`u64::MAX`: none).
    fn burst(&self) -> u64 {
        let tiers = self.limits.tiers();
        tiers
            .iter()
            .filter(|t| !t.is_paused())
            .map(Tier::burst)
            .min()
            .unwrap_or(u64::MAX)
    }

    /// The node's bound on a piece: smallest burst, smallest `rate × round` (`Config` docs).
    fn piece_bound(&self, round_ns: u64) -> u64 {
        let tiers = self.limits.tiers();
        let burst = self.burst();
        let round = tiers
            .iter()
            .map(|t| {
                let r = u128::from(t.amount()) * u128::from(round_ns) / period(t);
                u64::try_from(r).unwrap_or(u64::MAX - 1)
            })
            .min()
            .unwrap_or(u64::MAX);
        burst.min(round)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LState {
    Idle,
    Pending {
        piece: u64,
        since: u64,
    },
    /// Granted by `handle_timeout` or `set_limit`, not collected yet.
    Granted {
        piece: u64,
    },
    Holding {
        n: u64,
    },
}

struct Harness {
    tree: VecTree,
    config: Config,
    /// Model nodes: the leaf first, then its parent if any (the leaf's path).
    path: Vec<MNode>,
    leaf: LeafId,
    /// The caller's clock (may go backwards).
    now: u64,
    /// The tree's clock.
    clock: u64,
    state: LState,
    /// Tokens used (settled or counted used) over the run.
    committed: u128,
    /// Largest piece ever spent.
    max_spent: u64,
    /// The last `Wait`'s `until`, while it still holds (cleared by `set_limit` and grants).
    until: Option<u64>,
    /// `handle_timeout` or `set_limit` granted the waiting piece: `poll_ready` owes the leaf.
    owed_ready: bool,
    trace: bool,
}

/// Runs one input; panics when an oracle fails.
pub fn run(input: &BucketInput) {
    let trace = crate::trace_enabled();
    let config = input.config.config();
    let node_limits = build_limits(&input.node_tiers);
    let leaf_limits = build_limits(&input.leaf_tiers);
    let start = input.start.0;
    let t0 = Instant::from_nanos(start);
    let mut tree = VecTree::new(config);
    if trace {
        eprintln!("// Config: any burst (with_min_burst(Duration::ZERO))");
        eprintln!(
            "let mut tree = VecTree::new(Config::DEFAULT.with_round(Duration::from_nanos({})).with_pieces({}, {}));",
            config.round().as_nanos(),
            config.min_piece(),
            config.max_piece()
        );
    }
    let mut path = Vec::new();
    let parent = if input.with_node {
        if trace {
            eprintln!(
                "let node = tree.insert_node(None, {}, 1, {}).unwrap();",
                crate::fmt_limits(&node_limits),
                crate::fmt_now(start)
            );
        }
        let id = tree
            .insert_node(None, node_limits, 1, t0)
            .expect("insert_node into an empty tree");
        path.push(MNode::new(id, node_limits, start));
        Some(id)
    } else {
        None
    };
    if trace {
        eprintln!(
            "let leaf = tree.insert_leaf({}, {}, 1, {}).unwrap();",
            if parent.is_some() {
                "Some(node)"
            } else {
                "None"
            },
            crate::fmt_limits(&leaf_limits),
            crate::fmt_now(start)
        );
    }
    assert_eq!(
        tree.insert_leaf(parent, leaf_limits, 0, t0),
        Err(throttle_core::InsertError::ZeroWeight)
    );
    let leaf = tree
        .insert_leaf(parent, leaf_limits, 1, t0)
        .expect("insert_leaf");
    path.insert(0, MNode::new(leaf.node(), leaf_limits, start));
    let mut h = Harness {
        tree,
        config,
        path,
        leaf,
        now: start,
        clock: start,
        state: LState::Idle,
        committed: 0,
        max_spent: 0,
        until: None,
        owed_ready: false,
        trace,
    };
    h.check();
    for op in &input.ops {
        h.step(op);
        h.drain_ready();
        h.check();
    }
    h.cancel();
    h.drain_ready();
    h.check();
}

impl Harness {
    fn trace(&self, line: impl FnOnce() -> String) {
        if self.trace {
            eprintln!("{}", line());
        }
    }

    fn result(&self, r: &dyn fmt::Debug) {
        if self.trace {
            eprintln!("    // -> {r:?}");
        }
    }

    fn at(&self) -> Instant {
        Instant::from_nanos(self.now)
    }

    /// A call succeeded at `self.now`: the tree's clock moves (never back) and every tier
    /// earns what the time is worth.
    fn tick(&mut self) {
        if self.now > self.clock {
            let dt = self.now - self.clock;
            for n in &mut self.path {
                n.refill(dt);
            }
            self.clock = self.now;
        }
    }

    fn path_paused(&self) -> bool {
        self.path.iter().any(MNode::paused)
    }

    fn path_sendable(&self) -> bool {
        self.path.iter().all(MNode::sendable)
    }

    /// Smallest burst and `rate × round` on the path.
    fn bound(&self) -> u64 {
        let round = self.config.round().as_nanos() as u64;
        self.path
            .iter()
            .map(|n| n.piece_bound(round))
            .min()
            .unwrap_or(u64::MAX)
    }

    /// The piece rule at request time (`Config` docs), for a leaf with no sibling.
    fn request_piece(&self, want: u64) -> u64 {
        let c = &self.config;
        want.min(c.max_piece())
            .min(c.min_piece().max(self.bound()))
            .min(self.path_burst())
    }

    /// The same rule at grant time: never grows the piece, never below `min_piece`, never
    /// above the path's smallest burst.
    fn grant_piece(&self, piece: u64) -> u64 {
        let min = self.config.min_piece();
        let piece = if piece <= min {
            piece
        } else {
            piece.min(self.bound()).max(min)
        };
        piece.min(self.path_burst())
    }

    /// No grant exceeds the smallest burst of a tier that is not paused on the path (at
    /// least 1).
    fn path_burst(&self) -> u64 {
        self.path
            .iter()
            .map(MNode::burst)
            .min()
            .unwrap_or(u64::MAX)
            .max(1)
    }

    fn spend(&mut self, n: u64, waited: Option<u64>) {
        for node in &mut self.path {
            node.consume(n);
            node.pieces += 1;
            if let Some(w) = waited {
                node.waited = node.waited.saturating_add(w);
            }
        }
        self.max_spent = self.max_spent.max(n);
        self.until = None;
    }

    fn refund(&mut self, n: u64) {
        for node in &mut self.path {
            node.refund(n);
        }
    }

    /// What `run` does for this tree: grant the waiting piece if the whole path has credit.
    /// Returns the granted piece.
    fn run_scheduler(&mut self) -> Option<u64> {
        let LState::Pending { piece, since } = self.state else {
            return None;
        };
        if !self.path_sendable() {
            return None;
        }
        let g = self.grant_piece(piece);
        self.spend(g, Some(self.clock - since));
        self.state = LState::Granted { piece: g };
        Some(g)
    }

    fn expected_wait(&self) -> Decision {
        if self.path_paused() {
            return Decision::Paused;
        }
        let mut until = self.clock;
        for n in &self.path {
            if !n.sendable() {
                until = until.max(n.recovery(self.clock).expect("not paused"));
            }
        }
        if until <= self.clock {
            until = self.clock.saturating_add(1);
        }
        Decision::Wait {
            until: Instant::from_nanos(until),
        }
    }

    fn step(&mut self, op: &BOp) {
        match *op {
            BOp::Acquire(want) => self.acquire(want.0, false),
            BOp::AcquireAtUntil(want) => {
                if let Some(u) = self.until {
                    self.now = u;
                    self.acquire(want.0, true);
                }
            }
            BOp::Settle(used) => self.settle(used),
            BOp::Cancel => self.cancel(),
            BOp::Time(j) => {
                self.now = match j {
                    Jump::Nanos(n) => self.now.saturating_add(u64::from(n)),
                    Jump::Millis(n) => self.now.saturating_add(u64::from(n) * 1_000_000),
                    Jump::Secs(n) => self.now.saturating_add(u64::from(n) * 1_000_000_000),
                    Jump::Big(n) => self.now.saturating_add(n.0),
                    Jump::Back(n) => self.now.saturating_sub(n.0),
                    Jump::ToMax => u64::MAX,
                    Jump::ToUntil => self.until.unwrap_or(self.now),
                    Jump::JustBeforeUntil => self.until.map_or(self.now, |u| u - 1),
                };
                self.trace(|| format!("// caller clock: {}", crate::fmt_now(self.now)));
            }
            BOp::SetLimit { on_node, ref tiers } => {
                let k = if on_node && self.path.len() > 1 { 1 } else { 0 };
                let l = build_limits(tiers);
                self.set_limit(k, l);
            }
            BOp::HandleTimeout => self.handle_timeout(),
            BOp::HandleAtDeadline => {
                if let Some(t) = self.tree.poll_timeout() {
                    self.now = self.now.max(t.as_nanos());
                    self.handle_timeout();
                }
            }
        }
    }

    fn acquire(&mut self, want: u64, at_until: bool) {
        let now = self.at();
        self.trace(|| {
            format!(
                "let d = tree.acquire(leaf, {want}, {});",
                crate::fmt_now(self.now)
            )
        });
        let r = self.tree.acquire(self.leaf, want, now);
        self.result(&r);
        if want == 0 {
            assert_eq!(r, Err(AcquireError::ZeroRequest), "acquire of 0 tokens");
            return;
        }
        let d = r.unwrap_or_else(|e| panic!("acquire failed: {e:?}"));
        self.tick();
        if let LState::Holding { n } = self.state {
            self.committed += u128::from(n);
            self.state = LState::Idle;
        }
        let collected = matches!(self.state, LState::Granted { .. });
        let expected = match self.state {
            LState::Granted { piece } => {
                let n = piece.min(want);
                if n < piece {
                    self.refund(piece - n);
                }
                Decision::Grant(n)
            }
            LState::Pending { piece, since } => {
                let piece = piece.min(want);
                self.state = LState::Pending { piece, since };
                match self.run_scheduler() {
                    Some(g) => Decision::Grant(g),
                    None => self.expected_wait(),
                }
            }
            LState::Idle | LState::Holding { .. } => {
                let piece = self.request_piece(want);
                if self.path_sendable() {
                    self.spend(piece, None);
                    Decision::Grant(piece)
                } else {
                    self.state = LState::Pending {
                        piece,
                        since: self.clock,
                    };
                    self.expected_wait()
                }
            }
        };
        // the contracts, independently of the model's exact prediction
        match d {
            Decision::Grant(n) => {
                assert!(1 <= n && n <= want, "Grant({n}) for want {want}");
                // a grant made before a limit paused the path is still collected
                assert!(collected || !self.path_paused(), "Grant on a paused path");
            }
            Decision::Wait { until } => {
                assert!(
                    !collected,
                    "a grant made earlier answered {d:?} when collected"
                );
                assert!(
                    until.as_nanos() > self.clock || until == Instant::MAX,
                    "Wait until {} not after now {}",
                    until.as_nanos(),
                    self.clock
                );
                assert!(!at_until, "asked again at the last Wait's until, got {d:?}");
            }
            Decision::Paused => {
                assert!(
                    !collected,
                    "a grant made earlier answered Paused when collected"
                );
                assert!(
                    self.path_paused(),
                    "Paused, but no tier on the path is paused"
                );
                assert!(
                    !at_until,
                    "asked again at the last Wait's until, got Paused"
                );
            }
        }
        assert_eq!(d, expected, "acquire({want}) at {}", self.clock);
        match d {
            Decision::Grant(n) => {
                self.state = LState::Holding { n };
                self.until = None;
            }
            Decision::Wait { until } if until != Instant::MAX => {
                self.until = Some(until.as_nanos());
            }
            _ => self.until = None,
        }
        // a grant collected now is not owed to poll_ready any more
        self.owed_ready = false;
    }

    fn settle(&mut self, used: UsedIn) {
        let held = match self.state {
            LState::Holding { n } => n,
            _ => 0,
        };
        let used = match used {
            UsedIn::All => held,
            UsedIn::None => 0,
            UsedIn::Fraction(f) => (u128::from(held) * u128::from(f) / 255) as u64,
            UsedIn::Over(k) => held.saturating_add(1 + u64::from(k)),
            UsedIn::Raw(v) => v.0,
        };
        let now = self.at();
        self.trace(|| {
            format!(
                "let r = tree.settle(leaf, {used}, {});",
                crate::fmt_now(self.now)
            )
        });
        let r = self.tree.settle(self.leaf, used, now);
        self.result(&r);
        let expected = match self.state {
            LState::Holding { n } if used > n => Err(SettleError::UsedMoreThanGranted),
            LState::Holding { .. } => Ok(()),
            _ => Err(SettleError::NoGrant),
        };
        assert_eq!(r, expected, "settle({used}) in state {:?}", self.state);
        if r.is_ok() {
            self.tick();
            self.committed += u128::from(used);
            if used < held {
                self.refund(held - used);
            }
            self.state = LState::Idle;
        }
    }

    fn cancel(&mut self) {
        let now = self.at();
        self.trace(|| format!("let r = tree.cancel(leaf, {});", crate::fmt_now(self.now)));
        let r = self.tree.cancel(self.leaf, now);
        self.result(&r);
        self.tick();
        let out = match self.state {
            LState::Granted { piece } => piece,
            LState::Holding { n } => n,
            _ => 0,
        };
        assert_eq!(r, Ok(out), "cancel in state {:?}", self.state);
        if out > 0 {
            self.refund(out);
        }
        self.state = LState::Idle;
        self.owed_ready = false;
        self.until = None;
    }

    fn set_limit(&mut self, k: usize, limits: Limits) {
        let now = self.at();
        let id = self.path[k].id;
        self.trace(|| {
            format!(
                "let r = tree.set_limit({}, {}, {});",
                if k == 0 { "leaf.node()" } else { "node" },
                crate::fmt_limits(&limits),
                crate::fmt_now(self.now)
            )
        });
        let before = self.tree.stats(id).expect("live node").granted;
        let r = self.tree.set_limit(id, limits, now);
        self.result(&r);
        assert_eq!(r, Ok(()), "set_limit");
        self.tick();
        let clock = self.clock;
        let node = &mut self.path[k];
        node.relimit(limits);
        node.base_clock = clock;
        node.base_granted = u128::from(before);
        self.until = None;
        if self.run_scheduler().is_some() {
            self.owed_ready = true;
        }
        assert_eq!(self.tree.limits(id), Ok(limits), "limits() after set_limit");
    }

    fn handle_timeout(&mut self) {
        let now = self.at();
        self.trace(|| format!("tree.handle_timeout({});", crate::fmt_now(self.now)));
        self.tree.handle_timeout(now);
        self.tick();
        if self.run_scheduler().is_some() {
            self.owed_ready = true;
        }
    }

    fn drain_ready(&mut self) {
        let r = self.tree.poll_ready();
        if self.owed_ready {
            self.trace(|| "while let Some(l) = tree.poll_ready() {}".into());
            self.result(&r);
            assert_eq!(
                r,
                Some(self.leaf),
                "poll_ready after a grant by another call"
            );
            self.owed_ready = false;
            assert_eq!(
                self.tree.poll_ready(),
                None,
                "poll_ready reports the leaf twice"
            );
        } else {
            assert_eq!(r, None, "poll_ready without a grant by another call");
        }
    }

    fn check(&mut self) {
        assert_eq!(self.tree.now().as_nanos(), self.clock, "tree clock");
        let outstanding = match self.state {
            LState::Granted { piece } => piece,
            LState::Holding { n } => n,
            _ => 0,
        };
        let granted = self.committed + u128::from(outstanding);
        let waiting = u32::from(matches!(self.state, LState::Pending { .. }));
        let max_spent = i128::from(self.max_spent);
        let mut timer: Option<u64> = None;
        for (k, node) in self.path.iter().enumerate() {
            let s = self.tree.stats(node.id).expect("live node");
            assert_eq!(
                u128::from(s.granted),
                granted,
                "node {k}: stats().granted vs used + held"
            );
            assert_eq!(s.pieces, node.pieces, "node {k}: stats().pieces");
            assert_eq!(s.waiting, waiting, "node {k}: stats().waiting");
            assert_eq!(
                s.waited,
                Duration::from_nanos(node.waited),
                "node {k}: stats().waited"
            );
            let net = granted as i128 - node.base_granted as i128;
            let elapsed = u128::from(self.clock - node.base_clock);
            for (i, t) in node.limits.tiers().iter().enumerate() {
                let p = period(t);
                let tokens = self.tree.tokens(node.id, i).expect("live node");
                assert_eq!(
                    tokens,
                    node.level[i].div_euclid(p as i128),
                    "node {k} tier {i} ({t:?}): tokens() vs the model's level {}",
                    node.level[i]
                );
                assert!(
                    tokens <= i128::from(t.burst()) && tokens >= -max_spent,
                    "node {k} tier {i} ({t:?}) holds {tokens} tokens: outside \
                     [−largest piece {max_spent}, burst]"
                );
                if net > 0 {
                    // a piece starts at a level ≥ the threshold: the last one left it at
                    // ≥ threshold − largest piece
                    let lhs = net as u128 * p;
                    let rhs = (u128::from(t.burst()) * p)
                        .saturating_add(u128::from(t.amount()).saturating_mul(elapsed))
                        .saturating_add(u128::from(self.max_spent) * p)
                        .saturating_sub(threshold(t) as u128);
                    assert!(
                        lhs <= rhs,
                        "conformance: node {k} tier {i} ({t:?}) granted {net} net over \
                         {elapsed} ns: more than burst + rate·elapsed + largest piece {} \
                         − one token",
                        self.max_spent
                    );
                }
            }
            assert_eq!(self.tree.tokens(node.id, MAX_TIERS), Ok(0));
            if waiting > 0 && !node.sendable() {
                if let Some(at) = node.recovery(self.clock).filter(|&at| at > self.clock) {
                    timer = Some(timer.map_or(at, |t| t.min(at)));
                }
            }
        }
        assert_eq!(
            self.tree.poll_timeout().map(Instant::as_nanos),
            timer,
            "poll_timeout() in state {:?}",
            self.state
        );
        if let (Some(u), Some(t)) = (self.until, timer) {
            assert!(t <= u, "poll_timeout() {t} later than the Wait's until {u}");
            if self.path.len() == 1 {
                assert_eq!(t, u, "a leaf alone: poll_timeout() is its Wait's until");
            }
        }
    }
}
