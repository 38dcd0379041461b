//! The named scenarios of the design document and the issues, shared by the tests and the
//! `simulate` binary. Each function returns a ready-to-run [`Scenario`] (one-timer driver;
//! change [`Scenario::driver`] for the other style).

use core::time::Duration;
use throttle_core::{Config, Limits, Tier};

use crate::sim::{Action, Demand, LeafSpec, Scenario};

/// 1 KiB.
pub const KIB: u64 = 1 << 10;
/// 1 MiB.
pub const MIB: u64 = 1 << 20;
/// 1 GiB.
pub const GIB: u64 = 1 << 30;

fn saturating() -> LeafSpec {
    LeafSpec::new(Demand::Saturating)
}

/// (Bursts are at least `Config::min_burst`, 5 ms of the rate: what the default configuration
/// accepts.)
fn per_second(rate: u64, burst: u64) -> Limits {
    Limits::new(Tier::per_second(rate).with_burst(burst))
}

/// 100 equal-weight saturating leaves under one 50 MiB/s server (burst 256 KiB), 5 s.
/// Ideal: 0.5 MiB/s each.
pub fn flat_100() -> Scenario {
    let mut sc = Scenario::new("flat_100", Config::DEFAULT);
    let server = sc.node("server", None, per_second(50 * MIB, 256 * KIB), 1);
    for i in 0..100 {
        sc.leaf(
            format!("c{i:02}"),
            Some(server),
            Limits::UNLIMITED,
            1,
            saturating(),
        );
    }
    sc.duration = Duration::from_secs(5);
    sc
}

/// Three saturating leaves of weights 1 : 2 : 4 under one 7 MiB/s server, 10 s.
pub fn weights_124() -> Scenario {
    let mut sc = Scenario::new("weights_124", Config::DEFAULT);
    let server = sc.node("server", None, Limits::per_second(7 * MIB), 1);
    for (name, w) in [("w1", 1), ("w2", 2), ("w4", 4)] {
        sc.leaf(name, Some(server), Limits::UNLIMITED, w, saturating());
    }
    sc.duration = Duration::from_secs(10);
    sc
}

/// One leaf capped at 1 MiB/s (10 %) and four unlimited ones under a 10 MiB/s server, 10 s.
/// Ideal: 1 MiB/s for the capped leaf, 2.25 MiB/s for each other.
pub fn capped_leaf() -> Scenario {
    let mut sc = Scenario::new("capped_leaf", Config::DEFAULT);
    let server = sc.node("server", None, Limits::per_second(10 * MIB), 1);
    sc.leaf(
        "capped",
        Some(server),
        Limits::per_second(MIB),
        1,
        saturating(),
    );
    for i in 0..4 {
        sc.leaf(
            format!("free{i}"),
            Some(server),
            Limits::UNLIMITED,
            1,
            saturating(),
        );
    }
    sc.duration = Duration::from_secs(10);
    sc
}

/// The design's three-level example, the case that rules out a plain FIFO per node (it gives
/// A 24 and B 76 MiB/s: fair between leaves, not between groups): server 100 MiB/s (burst 512 KiB); group A capped at
/// 30 MiB/s with A1 (unlimited) and A2 (capped 5 MiB/s); group B unlimited with B1 (capped
/// 20 MiB/s), B2 and B3 (weight 2); 5 s. Ideal: A1 25, A2 5, B1 17.5, B2 17.5, B3 35 MiB/s.
pub fn three_level() -> Scenario {
    let mut sc = Scenario::new("three_level", Config::DEFAULT);
    let server = sc.node("server", None, per_second(100 * MIB, 512 * KIB), 1);
    let a = sc.node("A", Some(server), per_second(30 * MIB, 160 * KIB), 1);
    let b = sc.node("B", Some(server), Limits::UNLIMITED, 1);
    sc.leaf("A1", Some(a), Limits::UNLIMITED, 1, saturating());
    sc.leaf(
        "A2",
        Some(a),
        per_second(5 * MIB, 26 * KIB),
        1,
        saturating(),
    );
    sc.leaf(
        "B1",
        Some(b),
        per_second(20 * MIB, 128 * KIB),
        1,
        saturating(),
    );
    sc.leaf("B2", Some(b), Limits::UNLIMITED, 1, saturating());
    sc.leaf("B3", Some(b), Limits::UNLIMITED, 2, saturating());
    sc.duration = Duration::from_secs(5);
    sc
}

/// The plain version: server 100 MiB/s; A capped 30 MiB/s with two unlimited
/// leaves; B unlimited with three leaves weighted 1 : 1 : 2; 5 s.
/// Ideal: A 30 (15 + 15), B 70 (17.5 + 17.5 + 35) MiB/s.
pub fn three_level_plain() -> Scenario {
    let mut sc = Scenario::new("three_level_plain", Config::DEFAULT);
    let server = sc.node("server", None, per_second(100 * MIB, 512 * KIB), 1);
    let a = sc.node("A", Some(server), per_second(30 * MIB, 160 * KIB), 1);
    let b = sc.node("B", Some(server), Limits::UNLIMITED, 1);
    sc.leaf("A1", Some(a), Limits::UNLIMITED, 1, saturating());
    sc.leaf("A2", Some(a), Limits::UNLIMITED, 1, saturating());
    sc.leaf("B1", Some(b), Limits::UNLIMITED, 1, saturating());
    sc.leaf("B2", Some(b), Limits::UNLIMITED, 1, saturating());
    sc.leaf("B3", Some(b), Limits::UNLIMITED, 2, saturating());
    sc.duration = Duration::from_secs(5);
    sc
}

/// A tenant with 1 connection and a tenant with 50 under a 50 MiB/s server, 5 s.
/// Ideal: 25 vs 25 MiB/s.
pub fn tenants_1_vs_50() -> Scenario {
    let mut sc = Scenario::new("tenants_1_vs_50", Config::DEFAULT);
    let server = sc.node("server", None, per_second(50 * MIB, 256 * KIB), 1);
    let one = sc.node("tenant1", Some(server), Limits::UNLIMITED, 1);
    let many = sc.node("tenant50", Some(server), Limits::UNLIMITED, 1);
    sc.leaf("solo", Some(one), Limits::UNLIMITED, 1, saturating());
    for i in 0..50 {
        sc.leaf(
            format!("m{i:02}"),
            Some(many),
            Limits::UNLIMITED,
            1,
            saturating(),
        );
    }
    sc.duration = Duration::from_secs(5);
    sc
}

/// The case a design with a bounded number of pieces in flight per node misses (a group whose
/// only busy child is one connection can hold only one of them): under a 60 MiB/s server, tenant T1 (weight 2)
/// holds group X (one connection) and group Y (three connections) of equal weight, tenant
/// T2 (weight 1) two connections; 5 s. Ideal: X 20, Y 20 (6.67 each), T2 20 (10 each).
pub fn weighted_groups() -> Scenario {
    let mut sc = Scenario::new("weighted_groups", Config::DEFAULT);
    let server = sc.node("server", None, per_second(60 * MIB, 320 * KIB), 1);
    let t1 = sc.node("T1", Some(server), Limits::UNLIMITED, 2);
    let t2 = sc.node("T2", Some(server), Limits::UNLIMITED, 1);
    let x = sc.node("X", Some(t1), Limits::UNLIMITED, 1);
    let y = sc.node("Y", Some(t1), Limits::UNLIMITED, 1);
    sc.leaf("x1", Some(x), Limits::UNLIMITED, 1, saturating());
    for i in 1..=3 {
        sc.leaf(format!("y{i}"), Some(y), Limits::UNLIMITED, 1, saturating());
    }
    for i in 1..=2 {
        sc.leaf(
            format!("t2c{i}"),
            Some(t2),
            Limits::UNLIMITED,
            1,
            saturating(),
        );
    }
    sc.duration = Duration::from_secs(5);
    sc
}

/// hfq.py's weight test: groups weighted 1 : 2 with five connections each under a
/// 30 MiB/s server, 5 s. Ideal: 10 : 20 MiB/s.
pub fn groups_weighted_1_2() -> Scenario {
    let mut sc = Scenario::new("groups_weighted_1_2", Config::DEFAULT);
    let server = sc.node("server", None, per_second(30 * MIB, 256 * KIB), 1);
    let a = sc.node("G1", Some(server), Limits::UNLIMITED, 1);
    let b = sc.node("G2", Some(server), Limits::UNLIMITED, 2);
    for i in 0..5 {
        sc.leaf(format!("a{i}"), Some(a), Limits::UNLIMITED, 1, saturating());
        sc.leaf(format!("b{i}"), Some(b), Limits::UNLIMITED, 1, saturating());
    }
    sc.duration = Duration::from_secs(5);
    sc
}

/// A server at 1 KiB/s whose second 60 KiB piece (after its 60 KiB burst, once it holds a
/// whole byte again) puts it a minute in debt, raised to 100 MiB/s at t = 1 s; one saturating
/// leaf; 2 s, traced. The waiter must be served within one piece's time at the new rate
/// (≈ 0.6 ms).
pub fn limit_change() -> Scenario {
    let mut sc = Scenario::new(
        "limit_change",
        Config::DEFAULT.with_pieces(60 * KIB, 64 * KIB),
    );
    // 1 KiB/s with a 60 KiB burst: the full bucket's piece, then (one whole byte later, 0.98
    // ms) one more piece of debt that takes a minute to repay (no piece exceeds the burst)
    let server = sc.node(
        "server",
        None,
        Limits::new(Tier::per_second(KIB).with_burst(60 * KIB)),
        1,
    );
    sc.leaf("conn", Some(server), Limits::UNLIMITED, 1, saturating());
    sc.at(
        Duration::from_secs(1),
        Action::SetLimit {
            node: server,
            limits: Limits::per_second(100 * MIB),
        },
    );
    sc.duration = Duration::from_secs(2);
    sc.trace = true;
    sc
}

/// A 1 GiB transfer through a leaf limited to 64 MiB/s with a 384 KiB burst: 16 s.
pub fn one_gib() -> Scenario {
    let mut sc = Scenario::new("one_gib", Config::DEFAULT);
    sc.leaf(
        "transfer",
        None,
        per_second(64 * MIB, 384 * KIB),
        1,
        LeafSpec::new(Demand::Bytes(GIB)),
    );
    sc.duration = Duration::from_secs(17);
    sc
}

/// A 1 MiB transfer through a leaf limited to 1 KiB/s (automatic burst): 1024 s virtual.
pub fn slow_1mib() -> Scenario {
    let mut sc = Scenario::new("slow_1mib", Config::DEFAULT);
    sc.leaf(
        "transfer",
        None,
        Limits::per_second(KIB),
        1,
        LeafSpec::new(Demand::Bytes(MIB)),
    );
    sc.duration = Duration::from_secs(1100);
    sc
}

/// Issue 9's weighted pair: two saturating copy loops asking `want` tokens at a time, weighted
/// `w` under a root limited to `rate`, as two leaves of the root or (`groups`) as the only leaf
/// of two weighted, unlimited groups. Leaves are named `a` and `b`; 3 s, measured after 0.2 s.
/// Not in [`all`]: it is run over a matrix (`tests/runtime_like.rs`, `simulate --weights`).
pub fn weighted_pair(rate: u64, w: (u16, u16), want: u64, groups: bool) -> Scenario {
    let mut sc = Scenario::new(
        format!(
            "weights {}:{} at {} MiB/s, want {want}",
            w.0,
            w.1,
            rate / MIB
        ),
        Config::DEFAULT,
    );
    let root = sc.node("root", None, Limits::per_second(rate), 1);
    for (name, weight) in [("a", w.0), ("b", w.1)] {
        let spec = LeafSpec::new(Demand::Saturating).want(want);
        if groups {
            let g = sc.node(format!("g{name}"), Some(root), Limits::UNLIMITED, weight);
            sc.leaf(name, Some(g), Limits::UNLIMITED, 1, spec);
        } else {
            sc.leaf(name, Some(root), Limits::UNLIMITED, weight, spec);
        }
    }
    sc.duration = Duration::from_secs(3);
    sc.warmup = Duration::from_millis(200);
    sc
}

/// Every named scenario, in the order the `simulate` binary prints them.
pub fn all() -> Vec<Scenario> {
    vec![
        flat_100(),
        weights_124(),
        capped_leaf(),
        three_level(),
        three_level_plain(),
        tenants_1_vs_50(),
        weighted_groups(),
        groups_weighted_1_2(),
        limit_change(),
        one_gib(),
        slow_1mib(),
    ]
}

/// The named scenario `name`, if there is one.
pub fn named(name: &str) -> Option<Scenario> {
    all().into_iter().find(|s| s.name == name)
}
