//! The portable scenarios: each an `async fn(N: Net)`, run on tokio, smol, async-std AND
//! embassy (over two in-process embassy-net stacks). They started as throttle-embassy's
//! `tests/net.rs` and run in one task (`join`/`select`, no spawn), so the same function holds
//! every adapter to the same promises: accuracy per direction, a fair share, weighted
//! groups, per-connection limits under a server, a limit change reaching a sleeping writer, a
//! dropped write cancelling, an idle reader holding nothing.
//!
//! Rates are small and tolerances generous (±10 %): a debug build of embassy-net carries only
//! ~5–15 MiB/s over its in-process link, and the tests share a busy 2-core machine.

use core::cell::Cell;
use core::time::Duration;
use std::time::Instant;

use embassy_futures::join::{join, join4, join_array};
use embassy_futures::select::{select, Either};
use throttle_core::{Limits, Tier};
use throttle_embassy::Directions;

use crate::net::{Io, Net, ReqError};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

/// Writes `total` bytes to `w` in 8 KiB calls.
async fn send(w: &mut impl Io, total: usize) {
    let buf = vec![0x5au8; 8192];
    let mut sent = 0;
    while sent < total {
        let n = (total - sent).min(buf.len());
        w.send_all(&buf[..n]).await.expect("write");
        sent += n;
    }
}

/// Reads `total` bytes from `r`; returns when 10 % had arrived and when all had.
async fn recv(r: &mut impl Io, total: usize) -> (Instant, Instant) {
    let mut buf = vec![0u8; 8192];
    let mut got = 0;
    let mut t10 = None;
    while got < total {
        let n = r.recv(&mut buf).await.expect("read");
        assert!(n > 0, "unexpected end of stream after {got} bytes");
        got += n;
        if t10.is_none() && got >= total / 10 {
            t10 = Some(Instant::now());
        }
    }
    (t10.unwrap_or_else(Instant::now), Instant::now())
}

/// Reads until end of stream or error, adding what arrives to `got`.
async fn count<N: Net>(net: &N, r: &mut impl Io, got: &Cell<usize>) {
    let mut buf = vec![0u8; 8192];
    loop {
        match r.recv(&mut buf).await {
            Ok(0) | Err(()) => net.sleep(Duration::from_millis(5)).await,
            Ok(n) => got.set(got.get() + n),
        }
    }
}

/// The rate seen by the receiver after the first 10 % (which holds the initial burst).
fn measured_rate(total: usize, (t10, end): (Instant, Instant)) -> f64 {
    (total - total / 10) as f64 / (end - t10).as_secs_f64()
}

/// `rate` with a 50 ms burst: more than the automatic 10 ms, so timer lateness on a loaded
/// machine is absorbed rather than lost; the measurement skips the first 10 % anyway.
fn limit(rate: u64) -> Limits {
    Limits::new(Tier::per_second(rate).with_burst(rate / 20))
}

fn write_only(l: Limits) -> Directions<Limits> {
    Directions {
        read: Limits::UNLIMITED,
        write: l,
    }
}

fn read_only(l: Limits) -> Directions<Limits> {
    Directions {
        read: l,
        write: Limits::UNLIMITED,
    }
}

fn assert_within(measured: f64, limit: u64, tolerance: f64, what: &str) {
    let err = measured / limit as f64 - 1.0;
    eprintln!(
        "{what}: limit {:.1} KiB/s, measured {:.1} KiB/s ({:+.2} %)",
        limit as f64 / 1024.0,
        measured / 1024.0,
        err * 100.0
    );
    assert!(err.abs() <= tolerance, "{what}: {:+.2} % off", err * 100.0);
}

/// `t1` and `t2` write as fast as they may, their peers count what arrives: bytes each peer
/// received over 1.5 s after 300 ms of warm-up, and the exact window.
async fn two_writers<N: Net>(
    net: &N,
    t1: &mut impl Io,
    t2: &mut impl Io,
    c1: &mut impl Io,
    c2: &mut impl Io,
) -> (f64, f64) {
    let got = [Cell::new(0usize), Cell::new(0usize)];
    let monitor = async {
        net.sleep(Duration::from_millis(300)).await;
        let t0 = Instant::now();
        let before = [got[0].get(), got[1].get()];
        net.sleep(Duration::from_millis(1500)).await;
        let window = t0.elapsed().as_secs_f64();
        (
            (got[0].get() - before[0]) as f64 / window,
            (got[1].get() - before[1]) as f64 / window,
        )
    };
    let traffic = join4(
        send(t1, usize::MAX),
        send(t2, usize::MAX),
        count(net, c1, &got[0]),
        count(net, c2, &got[1]),
    );
    match select(monitor, traffic).await {
        Either::First(v) => v,
        Either::Second(_) => unreachable!("traffic runs until the monitor ends"),
    }
}

/// Eight connections in one group write as fast as they may: together they get the group's
/// rate, each an equal share (what `fairness_of_twenty_connections` checks on the std
/// runtimes, here in one task, so on embassy too).
pub async fn eight_connections_share_server_limit_fairly<N: Net>(net: N) {
    const CONNS: usize = 8;
    let group = net.group(None, write_only(limit(MIB)), 1);
    let mut pairs = Vec::new();
    for _ in 0..CONNS {
        pairs.push(net.attach(Some(&group)).await);
    }
    let got: [Cell<usize>; CONNS] = Default::default();
    let traffic: Vec<_> = pairs
        .iter_mut()
        .zip(&got)
        .map(|((t, c), g)| join(send(t, usize::MAX), count(&net, c, g)))
        .collect();
    let Ok(traffic) = <[_; CONNS]>::try_from(traffic) else {
        unreachable!("one future per connection")
    };
    let monitor = async {
        net.sleep(Duration::from_millis(300)).await;
        let t0 = Instant::now();
        let before = got.each_ref().map(Cell::get);
        net.sleep(Duration::from_millis(1500)).await;
        let window = t0.elapsed().as_secs_f64();
        let mut rates = [0.0; CONNS];
        for ((r, g), b) in rates.iter_mut().zip(&got).zip(before) {
            *r = (g.get() - b) as f64 / window;
        }
        rates
    };
    let rates = match select(monitor, join_array(traffic)).await {
        Either::First(v) => v,
        Either::Second(_) => unreachable!("traffic runs until the monitor ends"),
    };
    let total: f64 = rates.iter().sum();
    let (min, max) = rates
        .iter()
        .fold((f64::MAX, 0.0f64), |(lo, hi), &r| (lo.min(r), hi.max(r)));
    eprintln!(
        "eight connections: {:?} KiB/s",
        rates.map(|r| (r / 1024.0).round())
    );
    assert_within(total, MIB, 0.10, "aggregate of eight connections");
    // the same ±25 % as two connections (a debug embassy-net link on a loaded machine)
    assert!(max / min <= 1.25, "unfair: max/min = {:.3}", max / min);
}

/// On an unlimited path nothing waits and no piece is asked for, yet every byte counts in
/// the statistics, on the connection's group and direction only; the same after the path
/// becomes unlimited at runtime.
pub async fn unlimited_path_counts_every_byte<N: Net>(net: N) {
    let total = 1 << 20;
    let group = net.group(None, Directions::both(Limits::UNLIMITED), 1);
    let (mut conn, mut peer) = net.attach(Some(&group)).await;
    join(send(&mut conn, total), recv(&mut peer, total)).await;
    let st = net.group_stats(&group);
    assert_eq!(st.write.granted, total as u64, "written bytes counted");
    assert_eq!((st.read.granted, st.write.waiting), (0, 0));
    // limited, then unlimited again at runtime: every byte still counts once
    net.set_group_limits(&group, write_only(limit(64 * MIB)));
    join(send(&mut conn, total), recv(&mut peer, total)).await;
    net.set_group_limits(&group, Directions::both(Limits::UNLIMITED));
    join(send(&mut conn, total), recv(&mut peer, total)).await;
    let granted = net.group_stats(&group).write.granted;
    eprintln!(
        "unlimited, limited, unlimited: {granted} bytes counted of {}",
        3 * total
    );
    assert_eq!(granted, 3 * total as u64);
}

/// What the link carries without a limiter (a connection on an unlimited path), in bytes/s:
/// printed, and asserted only to be positive.
pub async fn link_raw_throughput_reported<N: Net>(net: N) {
    let (mut conn, mut peer) = net.attach(None).await;
    let total = 8 << 20;
    let t0 = Instant::now();
    let (_, (_, end)) = join(send(&mut conn, total), recv(&mut peer, total)).await;
    let cap = total as f64 / (end - t0).as_secs_f64();
    eprintln!("raw link: {:.1} MiB/s", cap / MIB as f64);
    assert!(cap > 0.0);
}

/// A connection writes through a group limited to `rate` (write direction).
async fn write_accuracy<N: Net>(net: N, rate: u64, total: usize, what: &str) {
    let group = net.group(None, write_only(limit(rate)), 1);
    let (mut conn, mut peer) = net.attach(Some(&group)).await;
    let (_, times) = join(send(&mut conn, total), recv(&mut peer, total)).await;
    assert_within(measured_rate(total, times), rate, 0.10, what);
}

/// Writes under 100 KiB/s: ±10 %.
pub async fn write_100kib_per_s_within_10_percent<N: Net>(net: N) {
    write_accuracy(net, 100 * KIB, 150 * 1024, "write 100 KiB/s").await;
}

/// Writes under 1 MiB/s: ±10 %.
pub async fn write_1mib_per_s_within_10_percent<N: Net>(net: N) {
    write_accuracy(net, MIB, 2 << 20, "write 1 MiB/s").await;
}

/// 10 MiB/s when the link carries at least four times that (std runtimes, embassy in
/// release: ~1 GiB/s); a debug build's embassy link carries ~5–15 MiB/s, so the rate is scaled
/// to a quarter of the measured capacity and the test says so (`.ci/steps/40-embassy.sh` runs
/// it in release, at the real 10 MiB/s).
pub async fn write_10mib_per_s_within_10_percent_or_scaled_to_link<N: Net>(net: N) {
    let group = net.group(None, Directions::UNLIMITED, 1);
    let (mut conn, mut peer) = net.attach(Some(&group)).await;
    // Unlimited path: the probe also shows that the limiter costs nothing when unlimited.
    let probe = 2 << 20;
    let t0 = Instant::now();
    let (_, (_, end)) = join(send(&mut conn, probe), recv(&mut peer, probe)).await;
    let cap = probe as f64 / (end - t0).as_secs_f64();
    let rate = (10 * MIB)
        .min((cap as u64 / 4) / (256 * KIB) * (256 * KIB))
        .max(256 * KIB);
    eprintln!(
        "10 MiB/s test: link {:.1} MiB/s, testing {:.2} MiB/s",
        cap / MIB as f64,
        rate as f64 / MIB as f64
    );
    net.set_group_limits(&group, write_only(limit(rate)));
    let total = rate as usize; // one second's worth
    let (_, times) = join(send(&mut conn, total), recv(&mut peer, total)).await;
    assert_within(
        measured_rate(total, times),
        rate,
        0.10,
        "write 10 MiB/s (or scaled)",
    );
}

/// Reads under 1 MiB/s (the peer writes as fast as it can): ±10 %.
pub async fn read_1mib_per_s_within_10_percent<N: Net>(net: N) {
    let group = net.group(None, read_only(limit(MIB)), 1);
    let (mut conn, mut peer) = net.attach(Some(&group)).await;
    let total = 2 << 20;
    let (_, times) = join(send(&mut peer, total), recv(&mut conn, total)).await;
    assert_within(measured_rate(total, times), MIB, 0.10, "read 1 MiB/s");
}

/// Two connections under one 1 MiB/s group (write): each gets half.
pub async fn two_connections_share_server_limit_fairly<N: Net>(net: N) {
    let group = net.group(None, write_only(limit(MIB)), 1);
    let (mut t1, mut c1) = net.attach(Some(&group)).await;
    let (mut t2, mut c2) = net.attach(Some(&group)).await;
    let (a, b) = two_writers(&net, &mut t1, &mut t2, &mut c1, &mut c2).await;
    eprintln!(
        "fair share: a {:.1} KiB/s, b {:.1} KiB/s",
        a / 1024.0,
        b / 1024.0
    );
    assert_within(a + b, MIB, 0.10, "aggregate of two connections");
    // ±25 %: a debug embassy-net link on a loaded 2-core machine swings (1.34 seen once);
    // equal shares come out within 1 % when it is quiet.
    assert!((a / b - 1.0).abs() <= 0.25, "unfair: a/b = {:.3}", a / b);
}

/// A writer asleep under a 1 KiB/s limit speeds up as soon as the limit is raised (from
/// another future of the same task, as from another task).
pub async fn limit_change_reaches_sleeping_writer_in_group<N: Net>(net: N) {
    let total = 256 * 1024;
    let slow = Limits::new(Tier::per_second(KIB).with_burst(KIB));
    let group = net.group(None, write_only(slow), 1);
    let (mut conn, mut peer) = net.attach(Some(&group)).await;
    let received = Cell::new(0usize);
    let changer = async {
        net.sleep(Duration::from_millis(400)).await;
        let before = received.get();
        assert_eq!(
            net.group_stats(&group).write.waiting,
            1,
            "the writer sleeps in the tree before the change"
        );
        net.set_group_limits(&group, write_only(Limits::per_second(4 * MIB)));
        (Instant::now(), before)
    };
    let reader = async {
        let mut buf = [0u8; 8192];
        while received.get() < total {
            let n = peer.recv(&mut buf).await.expect("read");
            assert!(n > 0);
            received.set(received.get() + n);
        }
        Instant::now()
    };
    let ((changed, before), (_, done)) = join(
        changer,
        join(
            async {
                send(&mut conn, total).await;
            },
            reader,
        ),
    )
    .await;
    let lag = (done - changed).as_secs_f64();
    eprintln!("limit change: {before} bytes before, rest done {lag:.3} s after the change");
    assert!(
        before <= 2 * 1024,
        "1 KiB/s, burst 1 KiB: at most ~1.4 KiB in 0.4 s, got {before}"
    );
    // 256 KiB at 4 MiB/s = 62 ms; at the old limit it would take over 4 minutes.
    assert!(lag < 1.0, "the change took {lag:.3} s to reach the writer");
}

/// A write waiting for tokens is dropped: its request is cancelled (nothing waiting, nothing
/// granted to it afterwards), and the other connection under the same limit gets the tokens.
pub async fn dropped_waiting_write_cancels_other_leaf_gets_tokens<N: Net>(net: N) {
    // 16 KiB/s, burst 2 KiB: pieces arrive every few ms
    let group = net.group(
        None,
        write_only(Limits::new(Tier::per_second(16 * KIB).with_burst(2 * KIB))),
        1,
    );
    let (mut a, _a_peer) = net.attach(Some(&group)).await;
    let (mut b, mut b_peer) = net.attach(Some(&group)).await;
    // a takes the burst, then keeps writing, piece by piece; dropped after 100 ms, when it
    // waits for its next piece (its inner writes complete at once: the socket has room).
    send(&mut a, 2 * 1024).await;
    let waiting = async {
        net.sleep(Duration::from_millis(100)).await;
        net.group_stats(&group).write.waiting
    };
    let sleeping = match select(waiting, send(&mut a, 60 * 1024)).await {
        Either::First(v) => v,
        Either::Second(()) => panic!("60 KiB at 16 KiB/s finished within 100 ms"),
    };
    assert_eq!(sleeping, 1, "a was asleep in the tree");
    // The write future is dropped here: its request is cancelled.
    let st = net.stats(&a).write;
    assert_eq!(st.waiting, 0, "a holds no waiting piece");
    // b now gets every token: 8 KiB at 16 KiB/s is ~0.5 s.
    let t0 = Instant::now();
    let mut sink = [0u8; 8192];
    let (_, got) = join(send(&mut b, 8 * 1024), async {
        let mut got = 0;
        while got < 8 * 1024 {
            got += b_peer.recv(&mut sink).await.unwrap_or(0);
        }
        got
    })
    .await;
    let took = t0.elapsed().as_secs_f64();
    eprintln!("cancel: b sent {got} bytes in {took:.3} s");
    assert!(
        took < 0.9,
        "b waited {took:.3} s for tokens a no longer wants"
    );
    assert_eq!(
        net.stats(&a).write.granted,
        st.granted,
        "nothing granted to a after the drop"
    );
    assert!(net.stats(&b).write.granted >= 8 * 1024);
}

/// An idle connection (its peer never sends) waiting in `read` holds no tokens: the busy one
/// under the same 512 KiB/s read limit gets all of it.
pub async fn idle_reader_holds_no_tokens_busy_one_gets_server_rate<N: Net>(net: N) {
    let group = net.group(None, read_only(limit(512 * KIB)), 1);
    let (mut idle, _idle_peer) = net.attach(Some(&group)).await;
    let (mut busy, mut busy_peer) = net.attach(Some(&group)).await;
    let (got, idle_got) = (Cell::new(0usize), Cell::new(0usize));
    let monitor = async {
        net.sleep(Duration::from_millis(300)).await;
        let t0 = Instant::now();
        let before = got.get();
        net.sleep(Duration::from_millis(1500)).await;
        (got.get() - before) as f64 / t0.elapsed().as_secs_f64()
    };
    let traffic = join(
        join(
            send(&mut busy_peer, usize::MAX),
            count(&net, &mut busy, &got),
        ),
        count(&net, &mut idle, &idle_got),
    );
    let rate = match select(monitor, traffic).await {
        Either::First(v) => v,
        Either::Second(_) => unreachable!("traffic runs until the monitor ends"),
    };
    assert_eq!(idle_got.get(), 0, "the idle peer sent nothing");
    let st = net.stats(&idle).read;
    assert_eq!(
        (st.granted, st.waiting),
        (0, 0),
        "the idle reader was charged nothing"
    );
    assert_within(rate, 512 * KIB, 0.10, "busy reader beside an idle one");
}

/// A server with a 512 KiB/s write limit and 96 KiB/s per connection: two connections each
/// get their own cap (the server limit does not bind), and the server's per-connection
/// statistics see both.
pub async fn server_per_connection_limit_under_server_limit<N: Net>(net: N) {
    const CONN: u64 = 96 * KIB;
    let server = net
        .server(write_only(limit(512 * KIB)), write_only(limit(CONN)))
        .await;
    let (mut t1, mut c1) = net.accept(&server).await;
    let (mut t2, mut c2) = net.accept(&server).await;
    let (a, b) = two_writers(&net, &mut t1, &mut t2, &mut c1, &mut c2).await;
    assert_within(a, CONN, 0.10, "connection 1 under its own limit");
    assert_within(b, CONN, 0.10, "connection 2 under its own limit");
    let stats = net.connection_stats(&server);
    assert_eq!(stats.len(), 2);
    for s in &stats {
        assert_eq!(s.read.granted, 0, "nothing was read");
        assert!(s.write.granted > 0);
    }
}

/// A server's per-connection limit changed while its connection sleeps under 1 KiB/s reaches
/// that connection at once.
pub async fn server_connection_limit_change_reaches_sleeping_connection<N: Net>(net: N) {
    let total = 128 * 1024;
    let slow = Limits::new(Tier::per_second(KIB).with_burst(KIB));
    let server = net.server(Directions::UNLIMITED, write_only(slow)).await;
    let (mut conn, mut peer) = net.accept(&server).await;
    let changer = async {
        net.sleep(Duration::from_millis(300)).await;
        net.set_connection_limits(&server, write_only(Limits::per_second(4 * MIB)));
        Instant::now()
    };
    let reader = async {
        recv(&mut peer, total).await;
        Instant::now()
    };
    let (changed, (_, done)) = join(changer, join(send(&mut conn, total), reader)).await;
    let lag = (done - changed).as_secs_f64();
    eprintln!("per-connection limit change: rest done {lag:.3} s after the change");
    assert!(
        lag < 1.0,
        "the change took {lag:.3} s to reach the connection"
    );
}

/// Two groups weighted 1:3 under a 512 KiB/s group (write), one connection each: the rate is
/// shared 1:3.
pub async fn weighted_groups_share_server_limit<N: Net>(net: N) {
    let server = net.group(None, write_only(limit(512 * KIB)), 1);
    let light = net.group(Some(&server), Directions::UNLIMITED, 1);
    let heavy = net.group(Some(&server), Directions::UNLIMITED, 3);
    let (mut t1, mut c1) = net.attach(Some(&light)).await;
    let (mut t2, mut c2) = net.attach(Some(&heavy)).await;
    let (a, b) = two_writers(&net, &mut t1, &mut t2, &mut c1, &mut c2).await;
    eprintln!("weights 1:3: {:.1} : {:.1} KiB/s", a / 1024.0, b / 1024.0);
    assert_within(a + b, 512 * KIB, 0.10, "aggregate of two weighted groups");
    let share = a / (a + b);
    assert!(
        (share - 0.25).abs() <= 0.06,
        "light group's share {share:.3}, want 0.25"
    );
}

/// The I/O accounting rule (`throttle_core::wait`): a reader whose stream is idle holds
/// nothing and takes no turns, however often it is polled (here: in a `join` beside a ticker
/// that wakes the task every 5 ms); when 96 KiB then arrive, it pays for exactly the bytes
/// that moved, once, at the rate (64 KiB/s), and holds nothing again afterwards.
pub async fn stalled_reader_holds_nothing_and_pays_only_what_moved<N: Net>(net: N) {
    const RATE: u64 = 64 * KIB;
    const TOTAL: usize = 96 << 10;
    let group = net.group(None, read_only(limit(RATE)), 1);
    let (mut conn, mut peer) = net.attach(Some(&group)).await;
    let got = Cell::new(0usize);
    let done = Cell::new(false);
    let mut idle_seen = Vec::new();
    let checks = async {
        // idle: sample what the reader holds while it is polled every 5 ms
        for _ in 0..10 {
            net.sleep(Duration::from_millis(30)).await;
            // the group has this one leaf: its counts are the leaf's
            let g = net.group_stats(&group).read;
            idle_seen.push((g.granted, g.waiting));
        }
        let t0 = Instant::now();
        send(&mut peer, TOTAL).await;
        while got.get() < TOTAL {
            net.sleep(Duration::from_millis(5)).await;
        }
        let took = t0.elapsed();
        // idle again: the last bytes are paid, then nothing is held
        net.sleep(Duration::from_millis(300)).await;
        let after = net.group_stats(&group).read;
        done.set(true);
        (took, after)
    };
    let ticker = async {
        while !done.get() {
            net.sleep(Duration::from_millis(5)).await;
        }
    };
    let reader = async {
        let mut buf = vec![0u8; 8192];
        let stop = async {
            while !done.get() {
                net.sleep(Duration::from_millis(20)).await;
            }
        };
        let mut stop = core::pin::pin!(stop);
        while let Either::First(n) = select(conn_recv(&mut conn, &mut buf), stop.as_mut()).await {
            got.set(got.get() + n);
        }
    };
    let ((took, after), _, _) = embassy_futures::join::join3(checks, ticker, reader).await;
    let st = net.stats(&conn).read;
    assert_eq!(
        st.granted, after.granted,
        "the group's counts are its one leaf's"
    );
    eprintln!(
        "stalled reader: idle samples (granted, waiting) \
         {idle_seen:?}; {TOTAL} B at {RATE} B/s took {took:?}; afterwards {after:?}, at the end \
         {st:?}"
    );
    assert!(
        idle_seen.iter().all(|s| *s == (0, 0)),
        "an idle reader holds nothing: {idle_seen:?}"
    );
    assert_eq!(got.get(), TOTAL);
    assert_eq!(
        (after.granted, after.waiting),
        (TOTAL as u64, 0),
        "paid exactly the bytes that moved, nothing held after"
    );
    // 96 KiB at 64 KiB/s less the 3.2 KiB burst: ~1.45 s
    assert!(
        took >= Duration::from_millis(1100) && took < Duration::from_secs(6),
        "{TOTAL} B took {took:?} at {RATE} B/s"
    );
}

/// One read of `conn` (0 on error).
async fn conn_recv(conn: &mut impl Io, buf: &mut [u8]) -> usize {
    conn.recv(buf).await.unwrap_or(0)
}

/// `Some(output)` of `f`, or `None` after `d` (dropping `f`: cancellation).
async fn within<N: Net, T>(
    net: &N,
    d: Duration,
    f: impl core::future::Future<Output = T>,
) -> Option<T> {
    match select(f, net.sleep(d)).await {
        Either::First(v) => Some(v),
        Either::Second(()) => None,
    }
}

/// Requests (seed 002's "10/s AND 300/min"): the burst at once (exactly 10: a piece starts on
/// a whole token, the 11th would wait 100 ms); a
/// deadline that cannot be met fails at once with the earliest wait and reserves nothing; one
/// that can is met; a zero request and a paused limit are typed errors.
pub async fn request_deadline_fails_fast_and_reserves_nothing<N: Net>(net: N) {
    let limits = Limits::per_second(10)
        .and(Tier::per_period(300, Duration::from_secs(60)).expect("tier"))
        .expect("limits");
    let mut leaf = net.request_leaf(None, limits);
    for _ in 0..10 {
        net.acquire(&mut leaf, 1).await.expect("burst");
    }
    assert_eq!(net.request_stats(&leaf).granted, 10);
    let t0 = Instant::now();
    match net
        .acquire_before(&mut leaf, 30, Duration::from_millis(200))
        .await
    {
        Err(ReqError::Deadline(Some(w))) => {
            assert!(w > Duration::from_millis(200), "{w:?}");
            assert!(w < Duration::from_secs(4), "earliest {w:?} away");
        }
        other => panic!("expected a deadline error, got {other:?}"),
    }
    let took = t0.elapsed();
    assert!(
        took < Duration::from_millis(150),
        "failed at once, not after {took:?}"
    );
    assert_eq!(net.request_stats(&leaf).waiting, 0, "nothing reserved");
    net.acquire_before(&mut leaf, 1, Duration::from_secs(3))
        .await
        .expect("in time");
    assert_eq!(net.acquire(&mut leaf, 0).await, Err(ReqError::ZeroRequest));
    net.set_request_limit(&leaf, Limits::per_second(0));
    assert_eq!(
        net.acquire_before(&mut leaf, 1, Duration::from_secs(60))
            .await,
        Err(ReqError::Deadline(None))
    );
    eprintln!("requests: a 30-token deadline failed in {took:?}");
}

/// A waiting request dropped by a timeout withdraws its piece and is charged nothing; the
/// other leaf under the same node (100/s, burst 100) is served when the debt is repaid.
pub async fn request_cancel_refunds_to_other_leaf<N: Net>(net: N) {
    let node = net.group(
        None,
        read_only(Limits::new(Tier::per_second(100).with_burst(100))),
        1,
    );
    let mut a = net.request_leaf(Some(&node), Limits::UNLIMITED);
    let mut b = net.request_leaf(Some(&node), Limits::UNLIMITED);
    net.acquire(&mut a, 100).await.expect("burst");
    net.acquire(&mut a, 100).await.expect("debt");
    let spent = net.request_stats(&a).granted;
    assert_eq!(spent, 200);
    let t0 = Instant::now();
    assert!(
        within(&net, Duration::from_millis(300), net.acquire(&mut a, 50))
            .await
            .is_none(),
        "a waits for the debt"
    );
    let st = net.request_stats(&a);
    assert_eq!(
        (st.granted, st.waiting),
        (spent, 0),
        "the dropped request was charged nothing and left nothing queued"
    );
    let r = within(&net, Duration::from_secs(5), net.acquire(&mut b, 50)).await;
    let took = t0.elapsed();
    eprintln!("after a's cancel, b served at {took:?} (debt repaid at 1 s)");
    assert_eq!(r, Some(Ok(())), "b is served");
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_millis(2500),
        "{took:?}"
    );
    assert_eq!(net.group_stats(&node).read.granted, 250);
}

/// A sliding-window request limit ("100/s AND 10 per 400 ms") on a group: one leaf waiting
/// with `acquire`, one polling with `try_acquire` (3 ms apart when refused), in one task for
/// 1.3 s; at most 10 in any 400 ms (instants read after each grant: 10 ms of slack), and at
/// least two windows' worth admitted.
pub async fn window_tier_admits_at_most_n_in_any_window<N: Net>(net: N) {
    let window = Duration::from_millis(400);
    let limits = Limits::per_second(100)
        .and(Tier::window(10, window).expect("window"))
        .expect("limits");
    let group = net.group(None, read_only(limits), 1);
    let mut waiting = net.request_leaf(Some(&group), Limits::UNLIMITED);
    let mut polling = net.request_leaf(Some(&group), Limits::UNLIMITED);
    let t0 = Instant::now();
    let run = Duration::from_millis(1300);
    let at = core::cell::RefCell::new(Vec::new());
    let waiter = async {
        while t0.elapsed() < run {
            net.acquire(&mut waiting, 1).await.expect("acquire");
            at.borrow_mut().push(t0.elapsed());
        }
    };
    let poller = async {
        while t0.elapsed() < run {
            match net.try_acquire(&mut polling, 1) {
                Ok(()) => at.borrow_mut().push(t0.elapsed()),
                Err(ReqError::NotYet(Some(w))) => {
                    assert!(w <= window + window / 8, "{w:?}");
                    net.sleep(Duration::from_millis(3)).await;
                }
                Err(e) => panic!("{e:?}"),
            }
        }
    };
    join(waiter, poller).await;
    let mut at = at.into_inner();
    at.sort();
    let (mut lo, mut most) = (0, 0);
    for hi in 0..at.len() {
        while at[hi] - at[lo] >= window - Duration::from_millis(10) {
            lo += 1;
        }
        most = most.max(hi + 1 - lo);
    }
    eprintln!(
        "window 10 per 400 ms: {} admitted in 1.3 s, at most {most} in any 390 ms",
        at.len()
    );
    assert!(most <= 10, "{most}: {at:?}");
    assert!(at.len() >= 20 && at.len() <= 40, "{}", at.len());
}
