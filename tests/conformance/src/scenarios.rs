//! The scenarios, each an `async fn` generic over the runtime. Real loopback sockets, real
//! runtimes; bounds are generous (a busy 2-core machine), rates small (tests run in parallel).

extern crate alloc;

use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;
use std::time::Instant;

use throttle_tokio::{Config, Limiter, Limits, Server, Tier};

pub use crate::weighted::{
    weighted_groups_of_three_8k_writes_at_60_mib, weighted_one_leaf_groups_8k_writes_at_60_mib,
};
use crate::{timeout, Rt, Stream, Throttled};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

/// Reads `s` until end of stream or error, counting into `count`.
async fn sink(mut s: impl Stream, count: Arc<AtomicU64>) -> u64 {
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0;
    while let Ok(n) = s.read(&mut buf).await {
        if n == 0 {
            break;
        }
        total += n as u64;
        count.fetch_add(n as u64, Ordering::Relaxed);
    }
    total
}

/// Writes to `s` in `chunk`-sized pieces until an error or `stop`, counting into `count`.
async fn source(mut s: impl Stream, chunk: usize, count: Arc<AtomicU64>, stop: Arc<AtomicBool>) {
    let buf = vec![0x5au8; chunk];
    while !stop.load(Ordering::Relaxed) {
        if s.write_all(&buf).await.is_err() {
            break;
        }
        count.fetch_add(chunk as u64, Ordering::Relaxed);
    }
}

fn counters(n: usize) -> Vec<Arc<AtomicU64>> {
    (0..n).map(|_| Arc::new(AtomicU64::new(0))).collect()
}

fn snapshot(c: &[Arc<AtomicU64>]) -> Vec<u64> {
    c.iter().map(|c| c.load(Ordering::Relaxed)).collect()
}

/// Per-counter rates (bytes/s) over `window`, after `warmup`.
async fn measure<R: Rt>(c: &[Arc<AtomicU64>], warmup: Duration, window: Duration) -> Vec<f64> {
    R::sleep(warmup).await;
    let (a, t0) = (snapshot(c), Instant::now());
    R::sleep(window).await;
    let (b, dt) = (snapshot(c), t0.elapsed().as_secs_f64());
    a.iter().zip(&b).map(|(a, b)| (b - a) as f64 / dt).collect()
}

fn jain(x: &[f64]) -> f64 {
    let s: f64 = x.iter().sum();
    let q: f64 = x.iter().map(|v| v * v).sum();
    s * s / (x.len() as f64 * q)
}

fn server(limiter: &Limiter, server: Limits, read: Limits, write: Limits) -> Server {
    Server::new(limiter.node(server, 1).expect("server node"), read, write)
}

/// Waits until `cond` holds, up to `limit`.
async fn eventually<R: Rt>(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while !cond() {
        if t0.elapsed() > limit {
            return false;
        }
        R::sleep(Duration::from_millis(10)).await;
    }
    true
}

/// One stream limited to 256 KiB/s writes 3 s worth (+ its burst): the time taken matches
/// the limit within ±5 %, every byte arrives, and the statistics agree.
pub async fn one_stream_accuracy<R: Rt>() {
    const RATE: u64 = 256 * KIB;
    const BURST: u64 = 4096; // Tier::per_second's automatic burst at this rate
    let limiter = R::limiter();
    let srv = server(
        &limiter,
        Limits::UNLIMITED,
        Limits::UNLIMITED,
        Limits::per_second(RATE),
    );
    let (l, addr) = R::bind(srv).await;
    let raw = R::connect(addr).await;
    let mut conn = R::accept(&l).await;
    let received = R::spawn(sink(raw, Arc::new(AtomicU64::new(0))));
    let total = 3 * RATE + BURST;
    let buf = vec![1u8; 64 << 10];
    let t0 = Instant::now();
    let mut sent = 0;
    while sent < total {
        let n = (total - sent).min(buf.len() as u64);
        conn.write_all(&buf[..n as usize]).await.expect("write");
        sent += n;
    }
    let dt = t0.elapsed().as_secs_f64();
    let rate = (total - BURST) as f64 / dt;
    let stats = conn.write_leaf().node().stats();
    drop(conn);
    eprintln!(
        "one stream: {rate:.0} B/s for a {RATE} B/s limit over {dt:.3} s; stats.rate {:.0}",
        stats.rate
    );
    assert_eq!(received.await, total, "every byte arrives");
    assert!(
        (rate / RATE as f64 - 1.0).abs() <= 0.05,
        "rate {rate:.0} B/s vs limit {RATE} B/s ({dt:.3} s)"
    );
    assert_eq!(stats.granted, total);
    assert!(
        (stats.rate / RATE as f64 - 1.0).abs() <= 0.10,
        "smoothed rate {:.0}",
        stats.rate
    );
}

/// A plain client writing to a throttled server connection that reads into `count`.
async fn uploader<R: Rt>(
    l: &R::Listener,
    addr: core::net::SocketAddr,
    count: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> impl Sized {
    let raw = R::connect(addr).await;
    let conn = R::accept(l).await;
    let up = R::spawn(source(raw, 2 << 10, Arc::new(AtomicU64::new(0)), stop));
    (up, R::spawn(sink(conn, count)))
}

/// Reads limited per connection (128 KiB/s) under a server limit (512 KiB/s): two
/// connections each get their own limit; six share the server's.
pub async fn connection_limit_under_server_limit<R: Rt>() {
    const SERVER: u64 = 512 * KIB;
    const CONN: u64 = 128 * KIB;
    let limiter = R::limiter();
    let srv = server(
        &limiter,
        Limits::per_second(SERVER),
        Limits::per_second(CONN),
        Limits::UNLIMITED,
    );
    let (l, addr) = R::bind(srv.clone()).await;
    let stop = Arc::new(AtomicBool::new(false));
    let counts = counters(6);
    let mut tasks = Vec::new();
    for count in &counts[..2] {
        tasks.push(uploader::<R>(&l, addr, count.clone(), stop.clone()).await);
    }
    let two = measure::<R>(
        &counts[..2],
        Duration::from_millis(400),
        Duration::from_millis(1500),
    )
    .await;
    for count in &counts[2..] {
        tasks.push(uploader::<R>(&l, addr, count.clone(), stop.clone()).await);
    }
    let six = measure::<R>(
        &counts,
        Duration::from_millis(400),
        Duration::from_millis(1500),
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    assert_eq!(srv.connections(), 6);
    drop(tasks);
    eprintln!("two connections (limit {CONN} each): {two:.0?}; six under {SERVER}: {six:.0?}");
    for r in &two {
        assert!(
            (r / CONN as f64 - 1.0).abs() <= 0.10,
            "two connections: {two:?} vs {CONN} each"
        );
    }
    let total: f64 = six.iter().sum();
    assert!(
        (total / SERVER as f64 - 1.0).abs() <= 0.10,
        "six: total {total:.0} vs {SERVER}"
    );
    for r in &six {
        assert!(
            *r <= CONN as f64 * 1.10,
            "six: {six:?}: one above its own limit {CONN}"
        );
    }
}

/// Twenty connections writing through one 1 MiB/s server limit share it fairly.
pub async fn fairness_of_twenty_connections<R: Rt>() {
    const N: usize = 20;
    const SERVER: u64 = MIB;
    let limiter = R::limiter();
    let srv = server(
        &limiter,
        Limits::per_second(SERVER),
        Limits::UNLIMITED,
        Limits::UNLIMITED,
    );
    let (l, addr) = R::bind(srv).await;
    let stop = Arc::new(AtomicBool::new(false));
    let counts = counters(N);
    let (mut tasks, mut sources) = (Vec::new(), Vec::new());
    for count in &counts {
        let raw = R::connect(addr).await;
        let conn = R::accept(&l).await;
        tasks.push(R::spawn(sink(raw, Arc::new(AtomicU64::new(0)))));
        sources.push(R::spawn(source(conn, 2 << 10, count.clone(), stop.clone())));
    }
    let rates = measure::<R>(&counts, Duration::from_millis(500), Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let total: f64 = rates.iter().sum();
    let j = jain(&rates);
    eprintln!("twenty connections: Jain {j:.4}, total {total:.0} B/s for {SERVER}");
    assert!(j >= 0.95, "Jain {j:.4}: {rates:?}");
    assert!(
        (total / SERVER as f64 - 1.0).abs() <= 0.10,
        "total {total:.0} vs {SERVER}"
    );
}

/// A write sleeping under 1 KiB/s completes soon after the per-connection limit is raised to
/// 10 MiB/s through the server (reaching an existing connection's sleeping task).
pub async fn limit_change_reaches_sleeping_writer<R: Rt>() {
    let limiter = R::limiter();
    let srv = server(
        &limiter,
        Limits::UNLIMITED,
        Limits::UNLIMITED,
        Limits::per_second(KIB),
    );
    let (l, addr) = R::bind(srv.clone()).await;
    let raw = R::connect(addr).await;
    let mut conn = R::accept(&l).await;
    let leaf = conn.write_leaf().node().clone();
    let _sink = R::spawn(sink(raw, Arc::new(AtomicU64::new(0))));
    let writer = R::spawn(async move {
        conn.write_all(&vec![3u8; 64 << 10]).await.expect("write");
        Instant::now()
    });
    R::sleep(Duration::from_millis(300)).await;
    let before = leaf.stats();
    assert!(before.granted <= 4 * KIB, "throttled at first: {before:?}");
    assert_eq!(before.waiting, 1, "the writer sleeps on the tree");
    let changed = Instant::now();
    srv.set_connection_limits(Limits::UNLIMITED, Limits::per_second(10 * MIB))
        .expect("set limits");
    let done = timeout::<R, _>(Duration::from_secs(5), writer)
        .await
        .expect("the sleeping write completes after the change");
    let took = done.saturating_duration_since(changed);
    eprintln!("sleeping write completed {took:?} after the limit change");
    assert!(
        took < Duration::from_secs(2),
        "took {took:?} after the change"
    );
}

/// Two groups of two connections under a 1 MiB/s server, weights 1 and 3: the groups get
/// 1/4 and 3/4 of it (client-side throttling of plain sockets, `wrap`).
pub async fn weighted_groups_share_server<R: Rt>() {
    const SERVER: u64 = MIB;
    let limiter = R::limiter();
    let root = limiter.node(Limits::per_second(SERVER), 1).expect("root");
    let groups = [
        root.child(Limits::UNLIMITED, 1).expect("a"),
        root.child(Limits::UNLIMITED, 3).expect("b"),
    ];
    // the receiving side: not limited
    let rx = R::limiter();
    let (l, addr) = R::bind(server(
        &rx,
        Limits::UNLIMITED,
        Limits::UNLIMITED,
        Limits::UNLIMITED,
    ))
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let counts = counters(4);
    let (mut sinks, mut sources) = (Vec::new(), Vec::new());
    for (k, count) in counts.iter().enumerate() {
        let raw = R::connect(addr).await;
        let conn = groups[k / 2]
            .connection(Limits::UNLIMITED, Limits::UNLIMITED)
            .expect("conn");
        let tx = R::wrap(raw, conn);
        sinks.push(R::spawn(sink(
            R::accept(&l).await,
            Arc::new(AtomicU64::new(0)),
        )));
        sources.push(R::spawn(source(tx, 2 << 10, count.clone(), stop.clone())));
    }
    let rates = measure::<R>(&counts, Duration::from_millis(500), Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let (a, b) = (rates[0] + rates[1], rates[2] + rates[3]);
    let share = a / (a + b);
    eprintln!(
        "weights 1:3: shares {:.3} : {:.3}, per connection {rates:.0?}",
        share,
        1.0 - share
    );
    assert!(
        (share - 0.25).abs() <= 0.05,
        "group shares {a:.0} : {b:.0} ({rates:?})"
    );
    assert!(
        ((a + b) / SERVER as f64 - 1.0).abs() <= 0.10,
        "total {}",
        a + b
    );
    let j = jain(&rates[2..]);
    assert!(j >= 0.95, "inside the weight-3 group: {rates:?}");
}

/// Dropping a throttled connection while its write sleeps hands its share (and the tree's
/// timer) to the other connection, which then gets the whole server limit.
pub async fn dropped_stream_hands_over_to_other_connection<R: Rt>() {
    const SERVER: u64 = 128 * KIB;
    let limiter = R::limiter();
    let srv = server(
        &limiter,
        Limits::per_second(SERVER),
        Limits::UNLIMITED,
        Limits::UNLIMITED,
    );
    let (l, addr) = R::bind(srv).await;
    let counts = counters(2);
    let stop = Arc::new(AtomicBool::new(false));
    let mut sinks = Vec::new();
    let mut conns = Vec::new();
    for _ in 0..2 {
        let raw = R::connect(addr).await;
        conns.push(R::accept(&l).await);
        sinks.push(R::spawn(sink(raw, Arc::new(AtomicU64::new(0)))));
    }
    assert_eq!(limiter.len(), 5);
    let b = conns.pop().expect("b");
    let a = conns.pop().expect("a");
    let a_done = R::spawn({
        let (count, stop) = (counts[0].clone(), stop.clone());
        // the write in flight is dropped with the stream after 1 s
        async move {
            timeout::<R, _>(Duration::from_secs(1), source(a, 2 << 10, count, stop))
                .await
                .is_none()
        }
    });
    let _b = R::spawn(source(b, 2 << 10, counts[1].clone(), stop.clone()));
    let shared = measure::<R>(
        &counts,
        Duration::from_millis(200),
        Duration::from_millis(600),
    )
    .await;
    assert!(a_done.await, "a was dropped mid-write");
    assert_eq!(limiter.len(), 3, "a's leaves are gone");
    let alone = measure::<R>(
        &counts[1..],
        Duration::from_millis(200),
        Duration::from_secs(1),
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    eprintln!("two connections {shared:.0?} B/s, then alone {alone:.0?} B/s (server {SERVER})");
    let half = SERVER as f64 / 2.0;
    assert!(
        shared.iter().all(|r| (r / half - 1.0).abs() <= 0.25),
        "shared {shared:?}"
    );
    assert!(
        (alone[0] / SERVER as f64 - 1.0).abs() <= 0.15,
        "alone {alone:?} vs {SERVER}"
    );
}

/// A write future dropped mid-wait while its stream stays alive and unpolled (a timeout or a
/// `select!` around `write_all`) does not hold up the other connections: the limiter's driver
/// task keeps the tree's timer, so only the dropped write's own piece is stranded. Without the
/// driver, the dropped write's leaf would keep the timer and B would sleep forever.
pub async fn dropped_write_future_does_not_stall_others<R: Rt>() {
    const SERVER: u64 = 64 * KIB;
    const B_BYTES: usize = 128 << 10;
    let limiter = R::limiter();
    let srv = server(
        &limiter,
        Limits::per_second(SERVER),
        Limits::UNLIMITED,
        Limits::UNLIMITED,
    );
    let (l, addr) = R::bind(srv).await;
    let received = counters(2);
    let mut sinks = Vec::new();
    let mut conns = Vec::new();
    for count in &received {
        let raw = R::connect(addr).await;
        conns.push(R::accept(&l).await);
        sinks.push(R::spawn(sink(raw, count.clone())));
    }
    let mut b = conns.pop().expect("b");
    let mut a = conns.pop().expect("a");
    // A waits first (alone, it is the one sleeping waiter) in a task of its own; its
    // `write_all` is dropped by the timeout mid-wait, and the task ends, handing the stream
    // back: alive, never polled again, never cancelled.
    let (a, dropped) = R::spawn(async move {
        let r = timeout::<R, _>(Duration::from_millis(100), a.write_all(&vec![2u8; 1 << 20])).await;
        (a, r.is_none())
    })
    .await;
    assert!(dropped, "a's write was dropped mid-wait");
    let a_sent = a.write_leaf().node().stats().granted;
    // B alone now: 128 KiB at 64 KiB/s, ~2 s.
    let t0 = Instant::now();
    let r = timeout::<R, _>(Duration::from_secs(10), b.write_all(&vec![3u8; B_BYTES])).await;
    let took = t0.elapsed();
    eprintln!(
        "after a's write_all was dropped ({a_sent} B sent), b's {B_BYTES} B write: {} after \
         {took:?} (expected ~2 s at {SERVER} B/s); driver: {}",
        if r.is_some() { "done" } else { "cut" },
        limiter.has_driver()
    );
    assert!(
        r.is_some(),
        "b's write stalled behind a's dropped write ({:?} B received by b's peer)",
        received[1].load(Ordering::Relaxed)
    );
    r.expect("completed").expect("write");
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(6),
        "b took {took:?}"
    );
    assert!(
        limiter.has_driver(),
        "the limiter's driver task holds the timer"
    );
    drop((a, b));
}

/// A connection waiting for data to read holds no tokens: the other connection under the
/// same server gets the whole limit, and the idle leaf was granted nothing.
pub async fn idle_connection_holds_no_tokens<R: Rt>() {
    const SERVER: u64 = 128 * KIB;
    let limiter = R::limiter();
    let srv = server(
        &limiter,
        Limits::per_second(SERVER),
        Limits::UNLIMITED,
        Limits::UNLIMITED,
    );
    let (l, addr) = R::bind(srv).await;
    // idle: the server reads, the client never writes
    let _idle_client = R::connect(addr).await;
    let idle = R::accept(&l).await;
    let idle_leaf = idle.read_leaf().node().clone();
    let idle_reader = R::spawn(sink(idle, Arc::new(AtomicU64::new(0))));
    // busy: the server writes
    let raw = R::connect(addr).await;
    let busy = R::accept(&l).await;
    let _sink = R::spawn(sink(raw, Arc::new(AtomicU64::new(0))));
    let counts = counters(1);
    let stop = Arc::new(AtomicBool::new(false));
    let _source = R::spawn(source(busy, 2 << 10, counts[0].clone(), stop.clone()));
    let rate = measure::<R>(&counts, Duration::from_millis(300), Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let st = idle_leaf.stats();
    eprintln!(
        "busy connection {rate:.0?} B/s next to an idle one (server {SERVER}); idle leaf {st:?}"
    );
    assert_eq!(
        (st.granted, st.waiting),
        (0, 0),
        "the idle reader holds nothing"
    );
    assert!((rate[0] / SERVER as f64 - 1.0).abs() <= 0.10, "{rate:?}");
    drop(idle_reader);
}

/// Connections closed by the client end on the server, and their leaves leave the tree.
pub async fn connection_close_frees_leaves<R: Rt>() {
    let limiter = R::limiter();
    let srv = server(
        &limiter,
        Limits::per_second(MIB),
        Limits::per_second(256 * KIB),
        Limits::per_second(256 * KIB),
    );
    let (l, addr) = R::bind(srv.clone()).await;
    let mut done = Vec::new();
    for _ in 0..5 {
        let mut raw = R::connect(addr).await;
        let conn = R::accept(&l).await;
        done.push(R::spawn(sink(conn, Arc::new(AtomicU64::new(0)))));
        raw.write_all(&[9u8; 10 << 10]).await.expect("write");
        drop(raw);
    }
    for d in done {
        assert_eq!(
            timeout::<R, _>(Duration::from_secs(5), d).await,
            Some(10 << 10)
        );
    }
    assert!(
        eventually::<R>(Duration::from_secs(3), || limiter.len() == 1).await,
        "tree len {} after every connection closed",
        limiter.len()
    );
    assert_eq!(srv.connections(), 0);
    assert_eq!(srv.stats().granted, 5 * (10 << 10));
}

/// No limit anywhere: the tree is skipped (no piece, no wake-up), 32 MiB go through fast and
/// are still counted; a limit set afterwards takes effect on the same connection.
pub async fn unlimited_skips_tree<R: Rt>() {
    const TOTAL: u64 = 32 * MIB;
    let limiter = R::limiter();
    let srv = server(
        &limiter,
        Limits::UNLIMITED,
        Limits::UNLIMITED,
        Limits::UNLIMITED,
    );
    let (l, addr) = R::bind(srv.clone()).await;
    let raw = R::connect(addr).await;
    let mut conn = R::accept(&l).await;
    let received = R::spawn(sink(raw, Arc::new(AtomicU64::new(0))));
    let buf = vec![7u8; 256 << 10];
    let t0 = Instant::now();
    for _ in 0..TOTAL / buf.len() as u64 {
        conn.write_all(&buf).await.expect("write");
    }
    let dt = t0.elapsed();
    assert!(dt < Duration::from_secs(10), "32 MiB took {dt:?}");
    eprintln!(
        "unlimited: 32 MiB in {dt:?} ({:.0} MiB/s)",
        32.0 / dt.as_secs_f64()
    );
    let stats = srv.stats();
    assert_eq!((stats.granted, stats.pieces), (TOTAL, 0));
    assert_eq!(limiter.shared().wakes(), 0, "nothing ever slept");
    // now limited: 128 KiB at 128 KiB/s, less the 4 KiB burst
    srv.set_limit(Limits::per_second(128 * KIB)).expect("limit");
    let t1 = Instant::now();
    conn.write_all(&vec![1u8; 128 << 10]).await.expect("write");
    let dt = t1.elapsed();
    assert!(
        dt >= Duration::from_millis(800) && dt < Duration::from_secs(3),
        "{dt:?}"
    );
    drop(conn);
    assert_eq!(received.await, TOTAL + (128 << 10));
}

/// Ten tasks share one request limit (100/s), each through a leaf of its own (the core keeps
/// one waker per leaf): the node's rate is met, the tasks get equal shares, and the leaves
/// are gone once the tasks end.
pub async fn requests_from_many_tasks_share_node<R: Rt>() {
    const N: usize = 10;
    let limiter = R::limiter_with(Config::DEFAULT.with_pieces(1, 64 << 10));
    let node = limiter
        .node(Limits::new(Tier::per_second(100).with_burst(10)), 1)
        .expect("node");
    let counts = counters(N);
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for count in &counts {
        let (node, count, stop) = (node.clone(), count.clone(), stop.clone());
        tasks.push(R::spawn(async move {
            let mut leaf = node.leaf(Limits::UNLIMITED, 1).expect("leaf");
            while !stop.load(Ordering::Relaxed) {
                leaf.acquire(1).await.expect("acquire");
                count.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let rates = measure::<R>(&counts, Duration::from_millis(300), Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        assert!(timeout::<R, _>(Duration::from_secs(3), t).await.is_some());
    }
    let total: f64 = rates.iter().sum();
    let j = jain(&rates);
    eprintln!("ten tasks, 100 requests/s: total {total:.1}/s, Jain {j:.4}: {rates:.1?}");
    assert!((total / 100.0 - 1.0).abs() <= 0.10, "{total}");
    assert!(j >= 0.95, "{rates:?}");
    assert_eq!(limiter.len(), 1, "every request's leaf is gone");
}

/// A server limited per direction (`Server::per_direction`: reads 128 KiB/s, writes
/// 384 KiB/s, each its own node), two connections uploading and two downloading at once: the
/// uploads share the read limit, the downloads the write limit, independently (one node for
/// both directions would cap the sum instead).
pub async fn per_direction_server_limits_each_direction<R: Rt>() {
    const IN: u64 = 128 * KIB;
    const OUT: u64 = 384 * KIB;
    let limiter = R::limiter();
    let srv = Server::per_direction(
        limiter.node(Limits::per_second(IN), 1).expect("read node"),
        limiter
            .node(Limits::per_second(OUT), 1)
            .expect("write node"),
        Limits::UNLIMITED,
        Limits::UNLIMITED,
    );
    let (l, addr) = R::bind(srv.clone()).await;
    let stop = Arc::new(AtomicBool::new(false));
    let counts = counters(4);
    let mut tasks = Vec::new();
    for count in &counts[..2] {
        tasks.push(uploader::<R>(&l, addr, count.clone(), stop.clone()).await);
    }
    let (mut writers, mut readers) = (Vec::new(), Vec::new());
    for count in &counts[2..] {
        let raw = R::connect(addr).await;
        let conn = R::accept(&l).await;
        writers.push(R::spawn(source(conn, 8 << 10, count.clone(), stop.clone())));
        readers.push(R::spawn(sink(raw, Arc::new(AtomicU64::new(0)))));
    }
    let rates = measure::<R>(
        &counts,
        Duration::from_millis(400),
        Duration::from_millis(1500),
    )
    .await;
    assert_eq!(srv.connections(), 4);
    assert_eq!(srv.connection_stats().len(), 4);
    stop.store(true, Ordering::Relaxed);
    drop((tasks, writers, readers));
    let (rin, rout) = (rates[0] + rates[1], rates[2] + rates[3]);
    eprintln!(
        "per-direction server: in {rin:.0} B/s of {IN}, out {rout:.0} B/s of {OUT}; {rates:.0?}"
    );
    assert!((rin / IN as f64 - 1.0).abs() <= 0.10, "in {rin:.0} vs {IN}");
    assert!(
        (rout / OUT as f64 - 1.0).abs() <= 0.10,
        "out {rout:.0} vs {OUT}"
    );
}

/// Several weighted groups behind ONE listener (`Listener::grouped`): a 1 MiB/s server node,
/// two groups under it weighted 1 and 3, each connection put into a group by a closure on
/// its peer's address (here its port, registered by the test before `accept`). Two
/// connections per group write as fast as they may: the groups get 1/4 and 3/4 of the
/// server's rate; a connection the closure refuses is closed and `accept` returns the next.
pub async fn listener_groups_share_by_weight<R: Rt>() {
    const SERVER: u64 = MIB;
    let limiter = R::limiter();
    let root = limiter.node(Limits::per_second(SERVER), 1).expect("root");
    let groups = vec![
        Server::new(
            root.child(Limits::UNLIMITED, 1).expect("light"),
            Limits::UNLIMITED,
            Limits::UNLIMITED,
        ),
        Server::new(
            root.child(Limits::UNLIMITED, 3).expect("heavy"),
            Limits::UNLIMITED,
            Limits::UNLIMITED,
        ),
    ];
    let routes: Arc<std::sync::Mutex<std::collections::HashMap<u16, usize>>> = Arc::default();
    let pick = {
        let routes = routes.clone();
        move |peer: core::net::SocketAddr| {
            routes
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&peer.port())
                .copied()
        }
    };
    let (l, addr) = R::bind_grouped(groups.clone(), pick).await;
    let route = |raw: &R::Raw, group: usize| {
        routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(R::local_port(raw), group);
    };
    // a connection nobody routes is refused: its client sees the end of the stream
    let mut refused = R::connect(addr).await;
    let stop = Arc::new(AtomicBool::new(false));
    let counts = counters(4);
    let (mut sinks, mut sources) = (Vec::new(), Vec::new());
    for (k, count) in counts.iter().enumerate() {
        let raw = R::connect(addr).await;
        route(&raw, k / 2);
        let conn = R::accept(&l).await;
        sinks.push(R::spawn(sink(raw, Arc::new(AtomicU64::new(0)))));
        sources.push(R::spawn(source(conn, 8 << 10, count.clone(), stop.clone())));
    }
    let mut one = [0u8; 1];
    let eof = timeout::<R, _>(Duration::from_secs(5), refused.read(&mut one)).await;
    assert!(
        matches!(eof, Some(Ok(0)) | Some(Err(_))),
        "the refused connection was closed: {eof:?}"
    );
    let rates = measure::<R>(&counts, Duration::from_millis(500), Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    drop(l);
    let (a, b) = (rates[0] + rates[1], rates[2] + rates[3]);
    let share = a / (a + b);
    eprintln!(
        "one listener, groups weighted 1:3: shares {share:.3} : {:.3}, total {:.0} B/s of \
         {SERVER}; per connection {rates:.0?}",
        1.0 - share,
        a + b
    );
    assert_eq!(
        groups.iter().map(Server::connections).collect::<Vec<_>>(),
        [2, 2],
        "two connections in each group"
    );
    assert!(
        (share - 0.25).abs() <= 0.05,
        "group shares {a:.0} : {b:.0} ({rates:?})"
    );
    assert!(
        ((a + b) / SERVER as f64 - 1.0).abs() <= 0.10,
        "total {}",
        a + b
    );
}
