//! `GET /metrics`: the Prometheus (OpenMetrics) text, written by `prometheus-client` from a
//! registry filled at scrape time from the tree's counters. Labels are `group` and
//! `direction` only — never a connection or a client address (cardinality).

use core::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::state::Dir;
use super::Proxy;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupDir {
    group: String,
    direction: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupOnly {
    group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirOnly {
    direction: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;
type FloatCounter = Counter<f64, AtomicU64>;

/// The metrics text now.
pub(crate) fn render(p: &Proxy) -> String {
    let bytes = Family::<GroupDir, Counter>::default();
    let wait = Family::<GroupDir, FloatCounter>::default();
    let rate = Family::<GroupDir, FloatGauge>::default();
    let limit = Family::<GroupDir, Gauge>::default();
    let waiters = Family::<GroupDir, Gauge>::default();
    let conns = Family::<GroupOnly, Gauge>::default();
    let accepted = Family::<GroupOnly, Counter>::default();
    let server_bytes = Family::<DirOnly, Counter>::default();
    let server_rate = Family::<DirOnly, FloatGauge>::default();
    let server_limit = Family::<DirOnly, Gauge>::default();
    let rejected = Counter::<u64>::default();
    let open = Gauge::<i64>::default();

    for g in p.tree.groups() {
        for d in Dir::BOTH {
            let node = &g.dir(d).node;
            let s = node.stats();
            let l = GroupDir {
                group: g.name.clone(),
                direction: d.label().into(),
            };
            bytes
                .get_or_create(&l)
                .inc_by(g.bytes[d.index()].load(Ordering::Relaxed));
            wait.get_or_create(&l).inc_by(s.waited.as_secs_f64());
            rate.get_or_create(&l).set(s.rate);
            waiters.get_or_create(&l).set(i64::from(s.waiting));
            if let Some(r) = node.limits().ok().and_then(|x| x.rate_per_second()) {
                limit
                    .get_or_create(&l)
                    .set(i64::try_from(r).unwrap_or(i64::MAX));
            }
        }
        let l = GroupOnly {
            group: g.name.clone(),
        };
        conns
            .get_or_create(&l)
            .set(i64::try_from(g.connections()).unwrap_or(i64::MAX));
        accepted
            .get_or_create(&l)
            .inc_by(g.accepted.load(Ordering::Relaxed));
    }
    for (d, node) in [(Dir::Up, &p.tree.up), (Dir::Down, &p.tree.down)] {
        let s = node.stats();
        let l = DirOnly {
            direction: d.label().into(),
        };
        server_bytes
            .get_or_create(&l)
            .inc_by(p.tree.bytes[d.index()].load(Ordering::Relaxed));
        server_rate.get_or_create(&l).set(s.rate);
        if let Some(r) = node.limits().ok().and_then(|x| x.rate_per_second()) {
            server_limit
                .get_or_create(&l)
                .set(i64::try_from(r).unwrap_or(i64::MAX));
        }
    }
    rejected.inc_by(p.rejected.load(Ordering::Relaxed));
    open.set(i64::try_from(p.active.load(Ordering::Acquire)).unwrap_or(i64::MAX));

    let mut reg = Registry::with_prefix("throttle");
    reg.register("bytes", "Bytes moved through a group", bytes);
    reg.register(
        "wait_seconds",
        "Time pieces waited for their grant, summed",
        wait,
    );
    reg.register(
        "rate_bytes_per_second",
        "Smoothed current rate (1 s average)",
        rate,
    );
    reg.register(
        "limit_bytes_per_second",
        "The group's limit (absent: none)",
        limit,
    );
    reg.register(
        "waiters",
        "Connections waiting for their limit now",
        waiters,
    );
    reg.register("connections", "Open connections", conns);
    reg.register("connections_accepted", "Connections accepted", accepted);
    reg.register(
        "server_bytes",
        "Bytes moved through the whole proxy",
        server_bytes,
    );
    reg.register(
        "server_rate_bytes_per_second",
        "Smoothed current rate of the whole proxy",
        server_rate,
    );
    reg.register(
        "server_limit_bytes_per_second",
        "The whole proxy's limit (absent: none)",
        server_limit,
    );
    reg.register(
        "connections_rejected",
        "Connections refused by a cap",
        rejected,
    );
    reg.register("open_connections", "Open connections, all groups", open);
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &reg);
    out
}
