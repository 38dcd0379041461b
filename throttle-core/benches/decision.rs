//! Cost of one scheduling decision of the `throttle-core` state machine.
//!
//! Everything runs on a virtual clock (`Instant::from_nanos`), so what is measured is the CPU
//! time of the decision path only: no sleeping, no syscalls, no allocation. Benches:
//!
//! - `acquire_settle/depth{1,2,3}`: a chain root → … → leaf whose limits never bind (10^15
//!   tokens/s, 10^13 burst at every level). One iteration = `acquire(leaf, 1500)` → `Grant` →
//!   `settle(leaf, 1500)`, the clock advancing 1 µs per iteration: the grant path.
//! - `acquire_settle/fixed8_depth3`: the same depth-3 chain in a `FixedTree::<8>` (inline
//!   storage, no allocator) instead of a `VecTree`.
//! - `unlimited/depth3`: the same chain with no tier anywhere (the zero-overhead path).
//! - `acquire_binding/depth3`: the depth-3 chain with the root at 100 MiB/s. One iteration =
//!   one `acquire(leaf, 1500)`: a `Grant` moves the clock 1 µs on (the grant counts as used by
//!   the next acquire, no settle), a `Wait { until }` moves it to `until`. In steady state about
//!   half of the calls grant and half wait; the ratio is printed after the bench.
//! - `acquire_settle/10k_leaves`: root (1 GiB/s, binding) → 100 groups → 100 leaves each.
//!   A driver loop step = clock + 1 µs, `handle_timeout`, drain `poll_ready`, then the next leaf
//!   in round-robin order (`i % 10 000`) is polled: it collects and settles any grant and asks
//!   again until it gets `Wait` (a sender with an endless backlog). One iteration = as many
//!   steps as it takes to collect **one granted piece**, so the figure is ns per granted piece,
//!   with the scheduler (fair queues over 100 × 100 children) and the timer heap in play.
//!   Step/grant/wake counts (warm-up included) are printed after the bench.
//! - `acquire_settle/10k_leaves_leaf_limits`: the same with every leaf also limited to
//!   256 KiB/s with the smallest burst the tree accepts (`Config::min_burst`, 5 ms of the rate),
//!   so a leaf served shortly before its poll is in debt when it asks again: the timer heap then
//!   holds many leaf timers, not just the root's. (With a burst of 0 the tree refuses the leaf:
//!   `BurstTooSmall`.)
//!
//! - `shared/depth3`: the `acquire_settle/depth3` iteration through [`Shared`] with a
//!   `StdLock` (uncontended std mutex, one lock per call, change notice included): what an
//!   adapter pays per grant on the fast path.
//!
//! Run with
//!
//! ```text
//! cargo bench -p throttle-core --features std --bench decision
//! cargo bench -p throttle-core --features std --bench decision -- 10k_leaves   # a filter
//! ```
//!
//! The whole file runs in about 40 s (1 s warm-up, 3 s measurement, 50 samples each). Figures
//! are ns per iteration as defined above; they are only comparable on a quiet machine.

use core::hint::black_box;
use core::task::Waker;
use core::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use throttle_core::{
    shared::Step, Config, Decision, FixedTree, Instant, LeafId, Limits, NodeId, Shared, Storage,
    Tier, Tree, VecShared, VecTree,
};

/// Tokens asked for per acquire (one MTU-sized write).
const WANT: u64 = 1500;
/// Clock advance per iteration / driver step, in ns.
const STEP_NS: u64 = 1_000;

/// A limit that never binds at these rates: 10^15 tokens/s, 10^13 tokens of burst.
fn huge() -> Limits {
    Limits::per_second(1_000_000_000_000_000)
}

/// A chain of `depth` nodes (depth − 1 interior nodes, then the leaf); `limits(level)` gives
/// each level's limits, level 0 being the root.
fn chain<S: Storage>(tree: &mut Tree<S>, depth: usize, limits: impl Fn(usize) -> Limits) -> LeafId {
    let t0 = Instant::ZERO;
    let mut parent: Option<NodeId> = None;
    for level in 0..depth - 1 {
        parent = Some(tree.insert_node(parent, limits(level), 1, t0).unwrap());
    }
    tree.insert_leaf(parent, limits(depth - 1), 1, t0).unwrap()
}

/// One iteration of the grant path: acquire → Grant → settle, the clock 1 µs later each time.
fn grant_path<S: Storage>(c: &mut Criterion, name: &str, mut tree: Tree<S>, leaf: LeafId) {
    let mut now = 0u64;
    c.bench_function(name, |b| {
        b.iter(|| {
            now += STEP_NS;
            let t = Instant::from_nanos(now);
            let n = match black_box(tree.acquire(leaf, black_box(WANT), t)) {
                Ok(Decision::Grant(n)) => n,
                other => panic!("expected a grant on the unbound path, got {other:?}"),
            };
            tree.settle(leaf, n, t).unwrap();
        });
    });
    // Every piece was granted immediately and nothing was left waiting.
    assert_eq!(tree.poll_ready(), None);
    assert_eq!(tree.poll_timeout(), None);
}

fn acquire_settle_depth(c: &mut Criterion) {
    for depth in 1..=3 {
        let mut tree = VecTree::new(Config::DEFAULT);
        let leaf = chain(&mut tree, depth, |_| huge());
        grant_path(c, &format!("acquire_settle/depth{depth}"), tree, leaf);
    }
}

fn shared_depth3(c: &mut Criterion) {
    let mut tree = VecTree::new(Config::DEFAULT);
    let leaf = chain(&mut tree, 3, |_| huge());
    let shared: VecShared = Shared::new(tree);
    let waker = Waker::noop();
    let mut now = 0u64;
    c.bench_function("shared/depth3", |b| {
        b.iter(|| {
            now += STEP_NS;
            let t = Instant::from_nanos(now);
            let n = match black_box(shared.poll_acquire(leaf, black_box(WANT), t, waker)) {
                Ok(Step::Grant(n)) => n,
                other => panic!("expected a grant on the unbound path, got {other:?}"),
            };
            shared.settle(leaf, n, t).unwrap();
        });
    });
    assert_eq!(shared.sleeping(), 0);
}

fn fixed_depth3(c: &mut Criterion) {
    let mut tree = FixedTree::<8>::new(Config::DEFAULT);
    let leaf = chain(&mut tree, 3, |_| huge());
    grant_path(c, "acquire_settle/fixed8_depth3", tree, leaf);
}

fn unlimited_depth3(c: &mut Criterion) {
    let mut tree = VecTree::new(Config::DEFAULT);
    let leaf = chain(&mut tree, 3, |_| Limits::UNLIMITED);
    grant_path(c, "unlimited/depth3", tree, leaf);
}

/// Depth 3, root at 100 MiB/s: one iteration = one acquire, the clock following the decision.
fn binding_depth3(c: &mut Criterion) {
    let mut tree = VecTree::new(Config::DEFAULT);
    let leaf = chain(&mut tree, 3, |level| match level {
        0 => Limits::per_second(100 << 20),
        _ => huge(),
    });
    let mut now = 0u64;
    let (mut grants, mut waits) = (0u64, 0u64);
    c.bench_function("acquire_binding/depth3", |b| {
        b.iter(
            || match black_box(tree.acquire(leaf, black_box(WANT), Instant::from_nanos(now))) {
                Ok(Decision::Grant(_)) => {
                    grants += 1;
                    now += STEP_NS;
                }
                Ok(Decision::Wait { until }) => {
                    waits += 1;
                    now = until.as_nanos();
                }
                other => panic!("unexpected {other:?}"),
            },
        );
    });
    let total = grants + waits;
    if total == 0 {
        return; // filtered out
    }
    eprintln!(
        "    acquire_binding/depth3: {grants} grants, {waits} waits ({:.1} % grants), \
         {:.1} MiB/s of virtual time",
        100.0 * grants as f64 / total as f64,
        (grants * WANT) as f64 / (now as f64 / 1e9) / f64::from(1 << 20),
    );
}

/// A many-leaf driver on a virtual clock (see the module docs).
struct Driver {
    tree: VecTree,
    leaves: Vec<LeafId>,
    now: u64,
    next: usize,
    steps: u64,
    wakes: u64,
    grants: u64,
    waits: u64,
}

impl Driver {
    /// root (1 GiB/s) → `groups` groups → `per_group` leaves, every leaf with `leaf_limits`.
    fn new(groups: usize, per_group: usize, leaf_limits: Limits) -> Driver {
        let t0 = Instant::ZERO;
        let mut tree = VecTree::new(Config::DEFAULT);
        let root = tree
            .insert_node(None, Limits::per_second(1 << 30), 1, t0)
            .unwrap();
        let mut leaves = Vec::with_capacity(groups * per_group);
        for _ in 0..groups {
            let g = tree.insert_node(Some(root), huge(), 1, t0).unwrap();
            for _ in 0..per_group {
                leaves.push(tree.insert_leaf(Some(g), leaf_limits, 1, t0).unwrap());
            }
        }
        let mut d = Driver {
            tree,
            leaves,
            now: 0,
            next: 0,
            steps: 0,
            wakes: 0,
            grants: 0,
            waits: 0,
        };
        // Make every leaf busy (the first ones share the root's burst).
        for _ in 0..d.leaves.len() {
            d.poll_next();
        }
        d.reset_counts();
        d
    }

    fn reset_counts(&mut self) {
        (self.steps, self.wakes, self.grants, self.waits) = (0, 0, 0, 0);
    }

    /// Polls the next leaf in round-robin order: it sends (collects + settles) until told to
    /// wait. Returns the pieces it collected.
    fn poll_next(&mut self) -> u64 {
        let leaf = self.leaves[self.next];
        self.next = (self.next + 1) % self.leaves.len();
        let t = Instant::from_nanos(self.now);
        let mut got = 0;
        loop {
            match black_box(self.tree.acquire(leaf, WANT, t)) {
                Ok(Decision::Grant(n)) => {
                    self.tree.settle(leaf, n, t).unwrap();
                    got += 1;
                }
                Ok(Decision::Wait { .. }) => {
                    self.waits += 1;
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        self.grants += got;
        got
    }

    /// Driver steps until at least one piece has been collected.
    fn until_grant(&mut self) {
        loop {
            self.now += STEP_NS;
            self.steps += 1;
            self.tree.handle_timeout(Instant::from_nanos(self.now));
            while let Some(leaf) = self.tree.poll_ready() {
                black_box(leaf);
                self.wakes += 1;
            }
            if self.poll_next() > 0 {
                return;
            }
        }
    }

    fn report(&self, name: &str) {
        if self.grants == 0 {
            return; // filtered out
        }
        let g = self.grants as f64;
        eprintln!(
            "    {name}: {} grants, {:.2} steps/grant, {:.2} waits/grant, {:.2} wakes/grant, \
             {:.0} MiB/s of virtual time",
            self.grants,
            self.steps as f64 / g,
            self.waits as f64 / g,
            self.wakes as f64 / g,
            (self.grants * WANT) as f64 / (self.steps * STEP_NS) as f64 * 1e9 / f64::from(1 << 20),
        );
    }
}

fn many_leaves(c: &mut Criterion) {
    let cases = [
        ("acquire_settle/10k_leaves", huge()),
        ("acquire_settle/10k_leaves_leaf_limits", {
            let tier = Tier::per_second(256 << 10);
            Limits::new(tier.with_burst(Config::DEFAULT.min_burst_of(&tier)))
        }),
    ];
    for (name, leaf_limits) in cases {
        let mut d = Driver::new(100, 100, leaf_limits);
        c.bench_function(name, |b| b.iter(|| d.until_grant()));
        d.report(name);
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = acquire_settle_depth, shared_depth3, fixed_depth3, unlimited_depth3, binding_depth3, many_leaves
}
criterion_main!(benches);
