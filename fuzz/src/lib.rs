//! The `ops` fuzz target: random sequences of [`throttle_core`] operations, checked after every
//! step against a straightforward reference model kept beside the tree.
//!
//! Oracles (the contracts of `throttle_core`'s crate docs, "Contracts"):
//! - **totality**: nothing panics or hangs (debug assertions are on in fuzz builds);
//! - **determinism**: a second tree fed the same calls gives the same answers;
//! - **grants**: every `Grant(n)` has `1 ≤ n ≤ want`, `n ≤ max_piece`, and follows the piece
//!   rule's lower bound `n ≥ min(want, min_piece)`; collecting a grant made earlier yields
//!   exactly `min(piece, want)`;
//! - **exact accounting**: per node, `stats(node).granted` equals the model's sum over the
//!   leaves under it (removed ones included) of what they used plus what they still hold;
//!   `cancel` returns exactly what was held or granted-but-uncollected; `settle` errors exactly
//!   when the model says so; `stats(node).waiting` counts the waiting leaves;
//! - **conformance**, per tier of every live node since its insertion or last `set_limit`:
//!   `net granted · period ≤ burst · period + amount · elapsed + max_piece · period −
//!   min(period, burst · period)` (u128: a piece starts only while the tier holds one whole
//!   token, or its full bucket when that is less), and `−max_piece ≤ tokens(node, tier) ≤
//!   burst`;
//! - **handles**: operations on removed nodes return `StaleHandle`, never touch another node
//!   (the accounting of every other node is re-checked), read-only queries fail too;
//! - **errors change nothing**: `now()` and `generation()` only move on successful calls;
//! - **timers**: after `handle_timeout(now)`, `poll_timeout()` is `None` or later than `now()`;
//!   while some leaf waits on a path without a paused tier, `poll_timeout()` is `Some`
//!   (except at `now() == u64::MAX`, where debt can never be repaid and no timer is armed);
//! - **ready list**: `poll_ready` returns exactly the leaves granted by someone else's call
//!   and not yet collected, cancelled or removed, each once;
//! - **`Wait`/`Paused`**: `Paused` exactly when a node on the leaf's path has a paused tier,
//!   and `Wait { until }` has `until > now()` (or `until == Instant::MAX`: never);
//! - **`Tree::earliest`** (asked before every acquire): stale exactly for a removed leaf,
//!   `None` exactly on a paused path, never before the clock, and a lower bound — a leaf with
//!   nothing in flight that is granted all it asked for at once was not told a later instant.
//!
//! The model learns the size of a piece granted by another call (reported by `poll_ready`)
//! from the leaf's `stats().granted`, which must then stay put until the leaf collects,
//! cancels or is removed.
//!
//! Environment: `THROTTLE_FUZZ_TRACE=1` prints every call as Rust code with its result to
//! stderr (a readable reproducer: run one input with `cargo fuzz run ops <file>`).

pub mod bucket;

use core::fmt;
use core::time::Duration;
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use throttle_core::{
    AcquireError, CancelError, Config, Decision, Fixed, FixedTree, Growable, InsertError, Instant,
    LeafId, Limits, NodeId, RemoveError, SetLimitError, SettleError, StaleHandle, Storage, Tier,
    Tree, VecTree, MAX_TIERS,
};

/// Capacity of the `FixedTree` variant (small, so that `CapacityFull` and slot reuse happen).
pub const FIXED_CAPACITY: usize = 8;

// ------------------------------------------------------------------------------------------
// Input
// ------------------------------------------------------------------------------------------

/// A token count, biased towards small sane values, with 0, 1, powers of two and values near
/// `u64::MAX` now and then.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Amount(pub u64);

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            u64::MAX => f.write_str("MAX"),
            v => write!(f, "{v}"),
        }
    }
}

impl<'a> Arbitrary<'a> for Amount {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let sel: u8 = u.arbitrary()?;
        let v = match sel % 16 {
            0 => 0,
            1 => u64::MAX,
            2 => 1,
            3 => u64::MAX - u64::from(u.arbitrary::<u8>()?),
            4 => 1u64 << u.int_in_range(0..=63u32)?,
            5 => u.arbitrary()?,
            6..=8 => u.int_in_range(1..=4096)?,
            9..=11 => u.int_in_range(1..=1 << 20)?,
            _ => u.int_in_range(1..=100)?,
        };
        Ok(Amount(v))
    }

    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        (1, Some(9))
    }
}

/// A tier period in milliseconds; 0 stands for 1 ns (the shortest period there is).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PeriodMs(pub u32);

impl PeriodMs {
    fn duration(self) -> Duration {
        match self.0 {
            0 => Duration::from_nanos(1),
            ms => Duration::from_millis(u64::from(ms)),
        }
    }
}

impl fmt::Debug for PeriodMs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("1ns"),
            ms => write!(f, "{ms}ms"),
        }
    }
}

impl<'a> Arbitrary<'a> for PeriodMs {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let sel: u8 = u.arbitrary()?;
        let ms = match sel % 8 {
            0 => 0,
            1 => u32::MAX,
            2..=4 => 1000,
            5 => 60_000,
            _ => u.int_in_range(1..=10_000)?,
        };
        Ok(PeriodMs(ms))
    }

    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        (1, Some(5))
    }
}

/// A node weight, mostly 1..=8, sometimes 0 (rejected) or `u16::MAX`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Weight(pub u16);

impl fmt::Debug for Weight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl<'a> Arbitrary<'a> for Weight {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let sel: u8 = u.arbitrary()?;
        Ok(Weight(match sel % 16 {
            0 => 0,
            1 => u16::MAX,
            2 => u.arbitrary()?,
            3..=8 => 1,
            v => u16::from(v) - 7,
        }))
    }

    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        (1, Some(3))
    }
}

/// A tier's burst: automatic (`Tier::per_second` for a 1000 ms period, else the amount) or
/// explicit.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Burst {
    Auto,
    Explicit(Amount),
}

/// One tier: `amount` tokens per `period`.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub struct TierIn {
    pub amount: Amount,
    pub period: PeriodMs,
    pub burst: Burst,
}

impl TierIn {
    pub fn tier(&self) -> Tier {
        let t = match self.burst {
            Burst::Auto if self.period.0 == 1000 => Tier::per_second(self.amount.0),
            _ => Tier::per_period(self.amount.0, self.period.duration())
                .expect("periods from 1 ns to u32::MAX ms are valid"),
        };
        match self.burst {
            Burst::Auto => t,
            Burst::Explicit(b) => t.with_burst(b.0),
        }
    }
}

/// 0..=3 tiers (mostly one).
#[derive(Clone, Debug)]
pub struct LimitsIn(pub Vec<TierIn>);

impl<'a> Arbitrary<'a> for LimitsIn {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let sel: u8 = u.arbitrary()?;
        let n = match sel % 8 {
            0 => 0,
            1..=4 => 1,
            5 | 6 => 2,
            _ => MAX_TIERS,
        };
        let mut tiers = Vec::with_capacity(n);
        for _ in 0..n {
            tiers.push(u.arbitrary()?);
        }
        Ok(LimitsIn(tiers))
    }

    fn size_hint(depth: usize) -> (usize, Option<usize>) {
        let _ = depth;
        (1, None)
    }
}

impl LimitsIn {
    pub fn limits(&self) -> Limits {
        let tiers: Vec<Tier> = self.0.iter().take(MAX_TIERS).map(TierIn::tier).collect();
        Limits::from_tiers(&tiers).expect("at most MAX_TIERS tiers")
    }
}

/// How much of its grant a leaf reports used.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Used {
    /// `held × f / 255`.
    Fraction(u8),
    /// `held + 1 + k`: more than granted (an error).
    Over(u8),
    /// Any number.
    Raw(Amount),
}

/// How far the test clock moves forwards.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum TimeStep {
    Nanos(u32),
    Millis(u16),
    /// Saturating: reaches `u64::MAX` easily.
    Big(u64),
}

/// `*_pick`s index (modulo) into the handles created so far, removed ones included.
#[derive(Arbitrary, Clone, Debug)]
pub enum Op {
    InsertNode {
        parent_pick: Option<u8>,
        limits: LimitsIn,
        weight: Weight,
    },
    InsertLeaf {
        parent_pick: Option<u8>,
        limits: LimitsIn,
        weight: Weight,
    },
    Acquire {
        leaf_pick: u8,
        want: Amount,
    },
    Settle {
        leaf_pick: u8,
        used: Used,
    },
    Cancel {
        leaf_pick: u8,
    },
    SetLimit {
        node_pick: u8,
        limits: LimitsIn,
    },
    SetWeight {
        node_pick: u8,
        weight: Weight,
    },
    Remove {
        node_pick: u8,
    },
    /// `handle_timeout(now)`.
    HandleTimeout,
    /// Moves the clock to `poll_timeout()` (if later) and calls `handle_timeout` there.
    HandleAtDeadline,
    AdvanceTime(TimeStep),
    /// The caller's clock steps back (the tree must treat it as no time passing).
    TimeBackwards {
        ns: u32,
    },
    DrainReady,
}

/// The tree's `Config`, within its clamps.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub struct ConfigIn {
    pub default: bool,
    pub round_us: u32,
    pub min_piece: Amount,
    pub max_piece: Amount,
}

impl ConfigIn {
    pub fn config(&self) -> Config {
        // every burst, those below the default minimum included: the fuzzer explores any
        // configuration the core can be given
        let any_burst = Config::DEFAULT.with_min_burst(Duration::ZERO);
        if self.default {
            return any_burst;
        }
        any_burst
            .with_round(Duration::from_micros(u64::from(self.round_us)))
            .with_pieces(self.min_piece.0, self.max_piece.0)
    }
}

/// One fuzz input.
#[derive(Arbitrary, Clone, Debug)]
pub struct Input {
    /// `FixedTree<FIXED_CAPACITY>` (no allocation, `CapacityFull`) instead of `VecTree`.
    pub fixed: bool,
    pub config: ConfigIn,
    pub ops: Vec<Op>,
}

// ------------------------------------------------------------------------------------------
// The reference model
// ------------------------------------------------------------------------------------------

/// A leaf's request as the model sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LState {
    Idle,
    /// Waiting; the piece is at most `cap` (the smallest `want` since it started waiting).
    Pending {
        cap: u64,
    },
    /// Granted by another call, not collected yet.
    Granted {
        g: u64,
    },
    /// Told `Grant(n)`, not settled yet.
    Holding {
        n: u64,
    },
}

impl LState {
    /// Tokens spent on the path and not (yet) given back.
    fn outstanding(self) -> u64 {
        match self {
            LState::Granted { g } => g,
            LState::Holding { n } => n,
            LState::Idle | LState::Pending { .. } => 0,
        }
    }
}

#[derive(Debug)]
struct MNode {
    id: NodeId,
    leaf: Option<LeafId>,
    alive: bool,
    parent: Option<usize>,
    /// Itself, then its ancestors up to the root (model indexes).
    path: Vec<usize>,
    children: u32,
    limits: Limits,
    /// Conformance window: tree clock and `stats().granted` at insert or last `set_limit`.
    base_clock: u64,
    base_granted: u64,
    /// Leaf: tokens reported (or counted) used.
    committed: u64,
    state: LState,
    /// Leaf: granted by someone else's call and not yet returned by `poll_ready` (nor
    /// collected, cancelled, removed).
    in_ready: bool,
}

/// Whether `THROTTLE_FUZZ_TRACE` asks for a trace (read once per process).
fn trace_enabled() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| {
        std::env::var("THROTTLE_FUZZ_TRACE").is_ok_and(|v| !v.is_empty() && v != "0")
    })
}

struct Harness<S: Storage> {
    a: Tree<S>,
    /// Fed exactly the same calls: determinism.
    b: Tree<S>,
    /// `Some(n)` for fixed storage of `n` nodes.
    capacity: Option<usize>,
    /// The caller's clock (may go backwards).
    now: u64,
    /// The model of the tree's clock: the latest `now` of a successful call.
    clock: u64,
    generation: u32,
    min_piece: u64,
    max_piece: u64,
    nodes: Vec<MNode>,
    /// Model indexes of the leaves, in creation order.
    leaves: Vec<usize>,
    trace: bool,
}

/// Calls `method` on both trees, checks they agree, returns tree `a`'s answer.
macro_rules! both {
    ($h:ident . $method:ident ( $($arg:expr),* $(,)? )) => {{
        let r1 = $h.a.$method($($arg),*);
        let r2 = $h.b.$method($($arg),*);
        assert_eq!(
            r1, r2,
            concat!("determinism: identical trees disagree on ", stringify!($method))
        );
        r1
    }};
}

fn fmt_limits(l: &Limits) -> String {
    if l.is_unlimited() {
        return "Limits::UNLIMITED".into();
    }
    let tiers: Vec<String> = l
        .tiers()
        .iter()
        .map(|t| {
            format!(
                "Tier::per_period({}, Duration::from_nanos({})).unwrap().with_burst({})",
                t.amount(),
                t.period().as_nanos(),
                t.burst()
            )
        })
        .collect();
    format!("Limits::from_tiers(&[{}]).unwrap()", tiers.join(", "))
}

fn fmt_now(ns: u64) -> String {
    match ns {
        u64::MAX => "Instant::MAX".into(),
        ns => format!("Instant::from_nanos({ns})"),
    }
}

/// Runs one input; panics when an oracle fails.
pub fn run(input: &Input) {
    let config = input.config.config();
    if input.fixed {
        let (a, b) = (FixedTree::new(config), FixedTree::new(config));
        Harness::<Fixed<FIXED_CAPACITY>>::new(a, b, Some(FIXED_CAPACITY)).run(&input.ops);
    } else {
        let (a, b) = (VecTree::new(config), VecTree::new(config));
        Harness::<Growable>::new(a, b, None).run(&input.ops);
    }
}

impl<S: Storage> Harness<S> {
    fn run(mut self, ops: &[Op]) {
        let h = &mut self;
        for op in ops {
            h.step(op);
            h.check();
        }
        h.finish();
    }

    fn new(a: Tree<S>, b: Tree<S>, capacity: Option<usize>) -> Self {
        let config = *a.config();
        let h = Harness {
            a,
            b,
            capacity,
            now: 0,
            clock: 0,
            generation: 0,
            min_piece: config.min_piece(),
            max_piece: config.max_piece(),
            nodes: Vec::new(),
            leaves: Vec::new(),
            trace: trace_enabled(),
        };
        assert!(1 <= h.min_piece && h.min_piece <= h.max_piece);
        assert!(h.max_piece <= throttle_core::MAX_PIECE_LIMIT);
        h.trace(|| {
            format!(
                "let mut tree = {}::new(Config::DEFAULT.with_round(Duration::from_nanos({})){});",
                capacity.map_or("VecTree".into(), |n| format!("FixedTree::<{n}>")),
                config.round().as_nanos(),
                format_args!(
                    ".with_pieces({}, {})",
                    config.min_piece(),
                    config.max_piece()
                )
            )
        });
        h
    }

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

    fn set_now(&mut self, ns: u64) {
        self.now = ns;
    }

    fn tick(&mut self) {
        self.clock = self.clock.max(self.now);
    }

    fn pick_node(&self, k: u8) -> Option<usize> {
        (!self.nodes.is_empty()).then(|| usize::from(k) % self.nodes.len())
    }

    fn pick_leaf(&self, k: u8) -> Option<usize> {
        (!self.leaves.is_empty()).then(|| self.leaves[usize::from(k) % self.leaves.len()])
    }

    fn name(&self, m: usize) -> String {
        format!("n{m}")
    }

    /// No grant exceeds the smallest burst of a tier that is not paused on the path (at
    /// least 1): the piece rule's upper bound, and so its lower bound's cap.
    fn path_burst(&self, m: usize) -> u64 {
        self.nodes[m]
            .path
            .iter()
            .flat_map(|&k| self.nodes[k].limits.tiers().to_vec())
            .filter(|t| !t.is_paused())
            .map(|t| t.burst())
            .min()
            .unwrap_or(u64::MAX)
            .max(1)
    }

    fn path_paused(&self, m: usize) -> bool {
        self.nodes[m]
            .path
            .iter()
            .any(|&k| self.nodes[k].limits.is_paused())
    }

    fn step(&mut self, op: &Op) {
        match *op {
            Op::InsertNode {
                parent_pick,
                ref limits,
                weight,
            } => self.insert(false, parent_pick, limits, weight),
            Op::InsertLeaf {
                parent_pick,
                ref limits,
                weight,
            } => self.insert(true, parent_pick, limits, weight),
            Op::Acquire { leaf_pick, want } => {
                if let Some(m) = self.pick_leaf(leaf_pick) {
                    self.acquire(m, want.0);
                }
            }
            Op::Settle { leaf_pick, used } => {
                if let Some(m) = self.pick_leaf(leaf_pick) {
                    self.settle(m, used);
                }
            }
            Op::Cancel { leaf_pick } => {
                if let Some(m) = self.pick_leaf(leaf_pick) {
                    self.cancel(m);
                }
            }
            Op::SetLimit {
                node_pick,
                ref limits,
            } => {
                if let Some(m) = self.pick_node(node_pick) {
                    self.set_limit(m, limits.limits());
                }
            }
            Op::SetWeight { node_pick, weight } => {
                if let Some(m) = self.pick_node(node_pick) {
                    self.set_weight(m, weight.0);
                }
            }
            Op::Remove { node_pick } => {
                if let Some(m) = self.pick_node(node_pick) {
                    self.remove(m);
                }
            }
            Op::HandleTimeout => self.handle_timeout(),
            Op::HandleAtDeadline => {
                let t = both!(self.poll_timeout());
                if let Some(t) = t {
                    self.set_now(self.now.max(t.as_nanos()));
                    self.handle_timeout();
                }
            }
            Op::AdvanceTime(step) => {
                let d = match step {
                    TimeStep::Nanos(ns) => u64::from(ns),
                    TimeStep::Millis(ms) => u64::from(ms) * 1_000_000,
                    TimeStep::Big(ns) => ns,
                };
                self.set_now(self.now.saturating_add(d));
            }
            Op::TimeBackwards { ns } => self.set_now(self.now.saturating_sub(u64::from(ns))),
            Op::DrainReady => self.drain_ready(),
        }
    }

    fn insert(&mut self, leaf: bool, parent_pick: Option<u8>, limits: &LimitsIn, weight: Weight) {
        let parent = parent_pick.and_then(|k| self.pick_node(k));
        let pid = parent.map(|p| self.nodes[p].id);
        let lim = limits.limits();
        let w = weight.0;
        let now = self.at();
        let m = self.nodes.len();
        self.trace(|| {
            let p = parent.map_or("None".into(), |p| format!("Some({})", self.name(p)));
            let f = if leaf { "insert_leaf" } else { "insert_node" };
            format!(
                "let {} = tree.{f}({p}, {}, {w}, {});",
                self.name(m),
                fmt_limits(&lim),
                fmt_now(self.now)
            )
        });
        let r: Result<(NodeId, Option<LeafId>), InsertError> = if leaf {
            both!(self.insert_leaf(pid, lim, w, now)).map(|l| (l.node(), Some(l)))
        } else {
            both!(self.insert_node(pid, lim, w, now)).map(|n| (n, None))
        };
        self.result(&r);
        let expected = if w == 0 {
            Err(InsertError::ZeroWeight)
        } else if parent.is_some_and(|p| !self.nodes[p].alive) {
            Err(InsertError::StaleParent)
        } else if parent.is_some_and(|p| self.nodes[p].leaf.is_some()) {
            Err(InsertError::ParentIsLeaf)
        } else if self
            .capacity
            .is_some_and(|n| self.nodes.iter().filter(|n| n.alive).count() >= n)
        {
            // removed slots are reused first: full exactly when every slot holds a live node
            Err(InsertError::CapacityFull)
        } else {
            Ok(())
        };
        match (r, expected) {
            (Err(e), Err(x)) => assert_eq!(e, x, "insert error"),
            (Ok((id, leaf_id)), Ok(())) => {
                for old in &self.nodes {
                    assert_ne!(old.id, id, "a new node got the handle of an older node");
                }
                self.tick();
                self.generation = self.generation.wrapping_add(1);
                let mut path = vec![m];
                if let Some(p) = parent {
                    path.extend_from_slice(&self.nodes[p].path);
                    self.nodes[p].children += 1;
                }
                self.nodes.push(MNode {
                    id,
                    leaf: leaf_id,
                    alive: true,
                    parent,
                    path,
                    children: 0,
                    limits: lim,
                    base_clock: self.clock,
                    base_granted: 0,
                    committed: 0,
                    state: LState::Idle,
                    in_ready: false,
                });
                if leaf {
                    self.leaves.push(m);
                }
            }
            (r, x) => panic!("insert: tree answered {r:?}, model expected {x:?}"),
        }
    }

    /// The oracles of `Tree::earliest` (see the module docs): stale exactly when the leaf is
    /// gone; `None` exactly when the path has a paused tier (and then the acquire is
    /// `Paused`); never before the tree's clock; and a lower bound: a leaf with nothing in
    /// flight that is granted all it asked for at once was not told a later instant.
    fn check_earliest(
        &self,
        m: usize,
        want: u64,
        fresh: bool,
        earliest: Result<Option<Instant>, StaleHandle>,
        r: &Result<Decision, AcquireError>,
    ) {
        if !self.nodes[m].alive {
            assert!(
                earliest.is_err(),
                "earliest on a removed leaf: {earliest:?}"
            );
            return;
        }
        let earliest = earliest.unwrap_or_else(|e| panic!("earliest on a live leaf: {e:?}"));
        let Some(at) = earliest else {
            assert!(
                self.path_paused(m),
                "earliest None on a path without a paused tier"
            );
            if want > 0 && fresh {
                assert_eq!(*r, Ok(Decision::Paused), "earliest None but acquire {r:?}");
            }
            return;
        };
        assert!(!self.path_paused(m), "earliest {at:?} on a paused path");
        assert!(
            at.as_nanos() >= self.clock.max(self.now),
            "earliest {at:?} before the clock"
        );
        if fresh && want > 0 && *r == Ok(Decision::Grant(want)) {
            assert!(
                at.as_nanos() <= self.clock.max(self.now),
                "earliest {at:?} for {want} tokens, but all {want} were granted at once at {}",
                self.clock.max(self.now)
            );
        }
    }

    fn acquire(&mut self, m: usize, want: u64) {
        let lid = self.nodes[m].leaf.expect("a leaf");
        let now = self.at();
        self.trace(|| {
            format!(
                "let d = tree.acquire({}, {want}, {});",
                self.name(m),
                fmt_now(self.now)
            )
        });
        // `Tree::earliest`, asked before the acquire (read-only, so asked of one tree)
        let fresh = matches!(self.nodes[m].state, LState::Idle);
        let earliest = self.a.earliest(lid, want.max(1), now);
        let r = both!(self.acquire(lid, want, now));
        self.result(&r);
        self.check_earliest(m, want, fresh, earliest, &r);
        if !self.nodes[m].alive {
            assert_eq!(
                r,
                Err(AcquireError::StaleHandle),
                "acquire on a removed leaf"
            );
            return;
        }
        if want == 0 {
            assert_eq!(r, Err(AcquireError::ZeroRequest), "acquire of 0 tokens");
            return;
        }
        let d = r.unwrap_or_else(|e| panic!("acquire on a live leaf failed: {e:?}"));
        self.tick();
        let before = self.nodes[m].state;
        let path_burst = self.path_burst(m);
        let (min_piece, max_piece, clock, paused) = (
            self.min_piece.min(path_burst),
            self.max_piece,
            self.clock,
            self.path_paused(m),
        );
        let node = &mut self.nodes[m];
        // asking again counts a held grant as fully used
        if let LState::Holding { n } = before {
            node.committed += n;
        }
        // the piece is sized when the leaf asks (never above the path's burst then) and never
        // grows while it waits, even when a limit change raises the burst
        let cap = match before {
            LState::Pending { cap } => cap.min(want),
            _ => want.min(path_burst),
        };
        match d {
            Decision::Grant(n) => {
                assert!(1 <= n && n <= want, "Grant({n}) for want {want}");
                match before {
                    LState::Granted { g } => {
                        assert_eq!(
                            n,
                            g.min(want),
                            "collecting a {g}-token grant with want {want}"
                        )
                    }
                    _ => {
                        assert!(n <= max_piece, "Grant({n}) above max_piece {max_piece}");
                        assert!(
                            n >= cap.min(min_piece),
                            "Grant({n}) below min(want {cap}, min_piece and burst {min_piece})"
                        );
                        assert!(
                            n <= path_burst,
                            "Grant({n}) above the path's burst {path_burst}"
                        );
                    }
                }
                node.state = LState::Holding { n };
                node.in_ready = false;
            }
            Decision::Wait { until } => {
                assert!(
                    !matches!(before, LState::Granted { .. }),
                    "a collected grant answered {d:?}"
                );
                assert!(
                    !paused,
                    "Wait on a path with a paused tier (expected Paused)"
                );
                // at the end of time, `until == Instant::MAX` means never
                assert!(
                    until.as_nanos() > clock || until == Instant::MAX,
                    "Wait until {} not after now {clock}",
                    until.as_nanos()
                );
                node.state = LState::Pending { cap };
            }
            Decision::Paused => {
                assert!(
                    !matches!(before, LState::Granted { .. }),
                    "a collected grant answered Paused"
                );
                assert!(paused, "Paused but no node on the path has a paused tier");
                node.state = LState::Pending { cap };
            }
        }
    }

    fn settle(&mut self, m: usize, used: Used) {
        let lid = self.nodes[m].leaf.expect("a leaf");
        let held = match self.nodes[m].state {
            LState::Holding { n } => n,
            _ => 0,
        };
        let used = match used {
            Used::Fraction(f) => (u128::from(held) * u128::from(f) / 255) as u64,
            Used::Over(k) => held.saturating_add(1 + u64::from(k)),
            Used::Raw(v) => v.0,
        };
        let now = self.at();
        self.trace(|| {
            format!(
                "let r = tree.settle({}, {used}, {});",
                self.name(m),
                fmt_now(self.now)
            )
        });
        let r = both!(self.settle(lid, used, now));
        self.result(&r);
        let node = &self.nodes[m];
        let expected = if !node.alive {
            Err(SettleError::StaleHandle)
        } else {
            match node.state {
                LState::Holding { n } if used > n => Err(SettleError::UsedMoreThanGranted),
                LState::Holding { .. } => Ok(()),
                _ => Err(SettleError::NoGrant),
            }
        };
        assert_eq!(r, expected, "settle({used}) in state {:?}", node.state);
        if r.is_ok() {
            self.tick();
            let node = &mut self.nodes[m];
            node.committed += used;
            node.state = LState::Idle;
        }
    }

    fn cancel(&mut self, m: usize) {
        let lid = self.nodes[m].leaf.expect("a leaf");
        let now = self.at();
        self.trace(|| {
            format!(
                "let r = tree.cancel({}, {});",
                self.name(m),
                fmt_now(self.now)
            )
        });
        let before = self.a.stats(lid.node()).map(|s| s.granted);
        let r = both!(self.cancel(lid, now));
        self.result(&r);
        let node = &mut self.nodes[m];
        if !node.alive {
            assert_eq!(r, Err(CancelError::StaleHandle), "cancel on a removed leaf");
            return;
        }
        let expected = node.state.outstanding();
        assert_eq!(r, Ok(expected), "cancel in state {:?}", node.state);
        node.state = LState::Idle;
        node.in_ready = false;
        let after = self.a.stats(lid.node()).map(|s| s.granted);
        assert_eq!(
            before.map(|b| b - expected),
            after,
            "cancel's return is not the drop of stats().granted"
        );
        self.tick();
    }

    fn set_limit(&mut self, m: usize, lim: Limits) {
        let id = self.nodes[m].id;
        let now = self.at();
        self.trace(|| {
            format!(
                "let r = tree.set_limit({}, {}, {});",
                self.name(m),
                fmt_limits(&lim),
                fmt_now(self.now)
            )
        });
        let before = self.a.stats(id).map(|s| s.granted);
        let r = both!(self.set_limit(id, lim, now));
        self.result(&r);
        if !self.nodes[m].alive {
            assert_eq!(
                r,
                Err(SetLimitError::StaleHandle),
                "set_limit on a removed node"
            );
            return;
        }
        assert_eq!(r, Ok(()), "set_limit on a live node");
        self.tick();
        self.generation = self.generation.wrapping_add(1);
        let clock = self.clock;
        let node = &mut self.nodes[m];
        node.limits = lim;
        node.base_clock = clock;
        node.base_granted = before.expect("live node has stats");
    }

    fn set_weight(&mut self, m: usize, w: u16) {
        let id = self.nodes[m].id;
        self.trace(|| format!("let r = tree.set_weight({}, {w});", self.name(m)));
        let r = both!(self.set_weight(id, w));
        self.result(&r);
        let expected = if !self.nodes[m].alive {
            Err(SetLimitError::StaleHandle)
        } else if w == 0 {
            Err(SetLimitError::ZeroWeight)
        } else {
            Ok(())
        };
        assert_eq!(r, expected, "set_weight({w})");
        if r.is_ok() {
            self.generation = self.generation.wrapping_add(1);
        }
    }

    fn remove(&mut self, m: usize) {
        let id = self.nodes[m].id;
        let now = self.at();
        self.trace(|| {
            format!(
                "let r = tree.remove({}, {});",
                self.name(m),
                fmt_now(self.now)
            )
        });
        let r = both!(self.remove(id, now));
        self.result(&r);
        let node = &self.nodes[m];
        let expected = if !node.alive {
            Err(RemoveError::StaleHandle)
        } else if node.children > 0 {
            Err(RemoveError::HasChildren)
        } else {
            Ok(())
        };
        assert_eq!(r, expected, "remove");
        if r.is_err() {
            return;
        }
        self.tick();
        self.generation = self.generation.wrapping_add(1);
        let node = &mut self.nodes[m];
        node.alive = false;
        node.state = LState::Idle;
        node.in_ready = false;
        if let Some(p) = node.parent {
            self.nodes[p].children -= 1;
        }
    }

    fn handle_timeout(&mut self) {
        let now = self.at();
        self.trace(|| format!("tree.handle_timeout({});", fmt_now(self.now)));
        both!(self.handle_timeout(now));
        self.tick();
        let t = both!(self.poll_timeout());
        self.result(&t);
        if let Some(t) = t {
            assert!(
                t.as_nanos() > self.clock,
                "after handle_timeout({}), poll_timeout() = {} is not in the future",
                self.clock,
                t.as_nanos()
            );
        }
    }

    fn drain_ready(&mut self) {
        self.trace(|| "while let Some(l) = tree.poll_ready() { /* wake l */ }".into());
        let mut seen = 0usize;
        while let Some(l) = both!(self.poll_ready()) {
            self.result(&l);
            seen += 1;
            assert!(seen <= self.leaves.len(), "poll_ready never ends");
            let m = self
                .leaves
                .iter()
                .copied()
                .find(|&m| self.nodes[m].alive && self.nodes[m].leaf == Some(l))
                .unwrap_or_else(|| panic!("poll_ready returned {l:?}, not a live leaf"));
            let node = &mut self.nodes[m];
            assert!(
                node.in_ready && matches!(node.state, LState::Granted { .. }),
                "poll_ready returned n{m} in state {:?} (in_ready {})",
                node.state,
                node.in_ready
            );
            node.in_ready = false;
        }
        for &m in &self.leaves {
            assert!(
                !self.nodes[m].in_ready,
                "n{m} was granted by another call but poll_ready did not report it"
            );
        }
    }

    /// Checks every oracle that holds between calls.
    fn check(&mut self) {
        for t in [&self.a, &self.b] {
            assert_eq!(t.now().as_nanos(), self.clock, "tree clock");
            assert_eq!(t.generation(), self.generation, "generation");
        }
        let alive = self.nodes.iter().filter(|n| n.alive).count();
        assert_eq!(self.a.len(), alive, "len()");

        // 1. learn grants made by other calls; check each leaf's outstanding tokens
        for &m in &self.leaves {
            let node = &self.nodes[m];
            if !node.alive {
                continue;
            }
            let granted = self.a.stats(node.id).expect("live leaf").granted;
            let out = i128::from(granted) - i128::from(node.committed);
            let state = match node.state {
                LState::Pending { cap } if out != 0 => {
                    let g = u64::try_from(out).unwrap_or_else(|_| {
                        panic!(
                            "n{m}: stats().granted {granted} below used {}",
                            node.committed
                        )
                    });
                    let burst = self.path_burst(m);
                    assert!(
                        g <= cap.min(self.max_piece).min(burst)
                            && g >= cap.min(self.min_piece).min(burst),
                        "n{m} was granted a piece of {g} while waiting with cap {cap} \
                         (pieces {}..={})",
                        self.min_piece,
                        self.max_piece
                    );
                    LState::Granted { g }
                }
                s => {
                    assert_eq!(
                        out,
                        i128::from(s.outstanding()),
                        "n{m} in state {s:?}: stats().granted {granted} − used {}",
                        node.committed
                    );
                    s
                }
            };
            if state != node.state {
                let node = &mut self.nodes[m];
                node.state = state;
                node.in_ready = true;
            }
        }

        // 2. expected counters per node
        let mut granted = vec![0u64; self.nodes.len()];
        let mut waiting = vec![0u32; self.nodes.len()];
        for &m in &self.leaves {
            let node = &self.nodes[m];
            let c = node.committed + node.state.outstanding();
            let w = u32::from(matches!(node.state, LState::Pending { .. }));
            for &k in &node.path {
                granted[k] += c;
                waiting[k] += w;
            }
        }

        let mut some_waiter_unpaused = false;
        for (m, node) in self.nodes.iter().enumerate() {
            let id = node.id;
            if !node.alive {
                assert!(!self.a.contains(id), "n{m} removed but contains()");
                assert_eq!(
                    self.a.stats(id),
                    Err(StaleHandle::Removed),
                    "stats of removed n{m}"
                );
                assert!(self.a.limits(id).is_err() && self.a.parent(id).is_err());
                assert!(self.a.tokens(id, 0).is_err());
                continue;
            }
            assert!(self.a.contains(id));
            let s = self.a.stats(id).expect("live node");
            assert_eq!(
                s,
                self.b.stats(id).expect("live node"),
                "determinism: stats"
            );
            assert_eq!(
                s.granted, granted[m],
                "n{m}: stats().granted vs the model's sum over its leaves"
            );
            assert_eq!(s.waiting, waiting[m], "n{m}: stats().waiting");
            assert_eq!(self.a.limits(id), Ok(node.limits), "n{m}: limits()");
            assert_eq!(
                self.a.parent(id),
                Ok(node.parent.map(|p| self.nodes[p].id)),
                "n{m}: parent()"
            );
            if matches!(node.state, LState::Pending { .. }) && !self.path_paused(m) {
                some_waiter_unpaused = true;
            }

            // conformance since insert / last set_limit, per tier
            let net = i128::from(s.granted) - i128::from(node.base_granted);
            let elapsed = u128::from(self.clock - node.base_clock);
            let piece = u128::from(self.max_piece);
            for (k, t) in node.limits.tiers().iter().enumerate() {
                let period = t.period().as_nanos();
                if net > 0 {
                    // the last piece started on at least one whole token (or a full bucket
                    // of burst 0) and left the tier at ≥ that − max_piece
                    let full = u128::from(t.burst()) * period;
                    let lhs = (net as u128).saturating_mul(period);
                    let rhs = full
                        .saturating_add(u128::from(t.amount()) * elapsed)
                        .saturating_add(piece * period)
                        .saturating_sub(full.min(period));
                    assert!(
                        lhs <= rhs,
                        "conformance: n{m} tier {k} ({t:?}) granted {net} net over {elapsed} ns \
                         since its limit was set: more than burst + rate·elapsed + max_piece {} \
                         − one token",
                        self.max_piece
                    );
                }
                let tokens = self.a.tokens(id, k).expect("live node");
                assert!(
                    tokens <= i128::from(t.burst()) && tokens >= -i128::from(self.max_piece),
                    "n{m} tier {k} ({t:?}) holds {tokens} tokens: outside [−max_piece, burst]"
                );
            }
        }

        let timeout = both!(self.poll_timeout());
        // at `now == u64::MAX` debt can never be repaid: no timer is armed (documented)
        let end_of_time = self.clock == u64::MAX;
        if some_waiter_unpaused && !end_of_time {
            assert!(
                timeout.is_some(),
                "a leaf waits on a path without a paused tier, but poll_timeout() is None"
            );
        }
    }

    /// Cancels every leaf and removes every node (children first), checking as it goes, then
    /// checks that a reused slot gets a fresh handle.
    fn finish(&mut self) {
        for i in 0..self.leaves.len() {
            let m = self.leaves[i];
            if self.nodes[m].alive {
                self.cancel(m);
                self.check();
            }
        }
        for m in (0..self.nodes.len()).rev() {
            if self.nodes[m].alive {
                self.remove(m);
                self.check();
            }
        }
        assert!(
            self.a.is_empty(),
            "tree not empty after removing every node"
        );
        assert_eq!(both!(self.poll_timeout()), None, "empty tree has a timer");
        assert_eq!(
            both!(self.poll_ready()),
            None,
            "empty tree has ready leaves"
        );
        if !self.nodes.is_empty() {
            self.insert(true, None, &LimitsIn(Vec::new()), Weight(1));
            self.check();
        }
    }
}
