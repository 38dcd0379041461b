//! The decision bench's three main loops, run a fixed number of times: for counting
//! instructions (`scripts/decision-instructions.sh` runs it under valgrind's callgrind), which,
//! unlike criterion's wall-clock figures, does not move with the load of a shared machine.
//!
//! ```text
//! cargo run --release -p throttle-core --features std --example decision_loop -- settle 3
//! ```
//!
//! Loops (as in `benches/decision.rs`), each 200 000 iterations on a virtual clock:
//! - `settle D`: a chain of depth `D` whose limits never bind; acquire 1500 → Grant → settle;
//! - `binding D`: the same chain with the root at 100 MiB/s; acquire 1500, the clock moving 1 µs
//!   on a grant and to `until` on a wait (about half the calls wait);
//! - `unlimited D`: no tier anywhere.
//!
//! Prints the tokens granted (so the work cannot be optimised away).

use throttle_core::{Config, Decision, Instant, LeafId, Limits, NodeId, Tier, VecTree};

const ITERATIONS: u64 = 200_000;
const WANT: u64 = 1500;

fn chain(tree: &mut VecTree, depth: usize, limits: impl Fn(usize) -> Limits) -> LeafId {
    let mut parent: Option<NodeId> = None;
    for level in 0..depth - 1 {
        parent = Some(
            tree.insert_node(parent, limits(level), 1, Instant::ZERO)
                .expect("insert"),
        );
    }
    tree.insert_leaf(parent, limits(depth - 1), 1, Instant::ZERO)
        .expect("insert")
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(kind), Some(depth)) = (args.next(), args.next().and_then(|d| d.parse().ok())) else {
        eprintln!("usage: decision_loop settle|binding|unlimited DEPTH");
        std::process::exit(2);
    };
    let depth: usize = depth;
    if depth == 0 {
        eprintln!("DEPTH must be at least 1");
        std::process::exit(2);
    }
    let huge = || Limits::per_second(1_000_000_000_000_000);
    let mut tree = VecTree::new(Config::DEFAULT);
    let (mut now, mut granted) = (0u64, 0u64);
    match kind.as_str() {
        "settle" | "unlimited" => {
            let unlimited = kind == "unlimited";
            let leaf = chain(&mut tree, depth, |_| {
                if unlimited {
                    Limits::UNLIMITED
                } else {
                    huge()
                }
            });
            for _ in 0..ITERATIONS {
                now += 1_000;
                let t = Instant::from_nanos(now);
                if let Ok(Decision::Grant(n)) = tree.acquire(leaf, WANT, t) {
                    let _ = tree.settle(leaf, n, t);
                    granted += n;
                }
            }
        }
        "binding" => {
            let leaf = chain(&mut tree, depth, |level| {
                if level == 0 {
                    Limits::new(Tier::per_second(100 << 20))
                } else {
                    huge()
                }
            });
            for _ in 0..ITERATIONS {
                match tree.acquire(leaf, WANT, Instant::from_nanos(now)) {
                    Ok(Decision::Grant(n)) => {
                        now += 1_000;
                        granted += n;
                    }
                    Ok(Decision::Wait { until }) => now = until.as_nanos().max(now + 1),
                    _ => now += 1_000,
                }
            }
        }
        _ => {
            eprintln!("usage: decision_loop settle|binding|unlimited DEPTH");
            std::process::exit(2);
        }
    }
    println!("{granted}");
}
