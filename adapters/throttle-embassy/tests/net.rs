//! Throttled transfers over real embassy-net TCP sockets (two stacks in one process, see
//! `harness`): accuracy, fairness, runtime limit changes, cancellation, an idle reader charged
//! nothing, a `Server`'s per-connection limits, weighted groups.
//!
//! Durations are short (≈1–2 s per test) and tolerances generous (±10 %) so the binary stays
//! quick and stable on a busy 2-core CI machine; the benchmarks own the tight figures.

#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

mod harness;

use core::cell::Cell;

use embassy_futures::join::{join, join4};
use embassy_futures::select::{select, Either};
use embassy_net::tcp::TcpSocket;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_time::{Duration, Instant, Timer};
use embedded_io_async::{Read, Write};
use throttle_core::{Limits, Tier};
use throttle_embassy::{Directions, Limiter};

use harness::{connect, link, run, PORT};

type Lim = Limiter<16, CriticalSectionRawMutex>;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

fn secs(d: Duration) -> f64 {
    d.as_micros() as f64 / 1e6
}

/// Writes `total` bytes to `w` in 8 KiB calls.
async fn send<W: Write>(w: &mut W, total: usize) {
    let buf = [0x5au8; 8192];
    let mut sent = 0;
    while sent < total {
        let n = w
            .write(&buf[..(total - sent).min(buf.len())])
            .await
            .unwrap_or_else(|_| panic!("write failed"));
        assert!(n > 0);
        sent += n;
    }
}

/// Reads `total` bytes from `r`; returns when 10 % had arrived and when all had.
async fn recv<R: Read>(r: &mut R, total: usize) -> (Instant, Instant) {
    let mut buf = [0u8; 8192];
    let mut got = 0;
    let mut t10 = None;
    while got < total {
        let n = r
            .read(&mut buf)
            .await
            .unwrap_or_else(|_| panic!("read failed"));
        assert!(n > 0, "unexpected EOF after {got} bytes");
        got += n;
        if t10.is_none() && got >= total / 10 {
            t10 = Some(Instant::now());
        }
    }
    (t10.unwrap_or_else(Instant::now), Instant::now())
}

/// The rate seen by the receiver after the first 10 % (which holds the initial burst).
fn measured_rate(total: usize, (t10, end): (Instant, Instant)) -> f64 {
    (total - total / 10) as f64 / secs(end - t10)
}

/// `rate` with a 50 ms burst: more than the automatic 10 ms, so that timer lateness on a loaded
/// 2-core CI machine (tens of ms when the whole workspace's tests run at once) is absorbed
/// rather than lost; the measurement skips the first 10 % anyway.
fn limit(rate: u64) -> Limits {
    Limits::new(Tier::per_second(rate).with_burst(rate / 20))
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

/// Raw capacity of the link (no limiter): `total` bytes client → server, in bytes/s.
async fn raw_capacity(server: &mut TcpSocket<'_>, client: &mut TcpSocket<'_>, total: usize) -> f64 {
    let start = Instant::now();
    let (_, (_, end)) = join(send(client, total), recv(server, total)).await;
    total as f64 / secs(end - start)
}

/// Reads forever (a socket or a throttled stream), adding what arrives to `got`.
async fn count(r: &mut impl Read, got: &Cell<usize>) {
    let mut buf = [0u8; 8192];
    loop {
        let n = r.read(&mut buf).await.unwrap_or(0);
        got.set(got.get() + n);
        if n == 0 {
            Timer::after_millis(1).await;
        }
    }
}

#[test]
fn link_raw_throughput_reported() {
    let l = link();
    let (s, c) = (l.server, l.client);
    let total = 8 << 20;
    let cap = run(l, async move {
        let (mut server, mut client) = connect(s, c, PORT).await;
        raw_capacity(&mut server, &mut client, total).await
    });
    eprintln!("raw link: {:.1} MiB/s", cap / MIB as f64);
    assert!(cap > 0.0);
}

/// Client writes through a group limited to `limit` (write direction); server reads raw.
fn write_accuracy(rate: u64, total: usize, what: &str) {
    let l = link();
    let (s, c) = (l.server, l.client);
    let limiter = Lim::new();
    let limiter = &limiter;
    let measured = run(l, async move {
        let (mut server, client) = connect(s, c, PORT).await;
        let group = limiter
            .add_group(
                None,
                Directions {
                    read: Limits::UNLIMITED,
                    write: limit(rate),
                },
                1,
            )
            .unwrap();
        let mut client = limiter
            .throttle(client, Some(&group), Directions::UNLIMITED)
            .unwrap_or_else(|_| panic!("full"));
        let (_, times) = join(send(&mut client, total), recv(&mut server, total)).await;
        measured_rate(total, times)
    });
    assert_within(measured, rate, 0.10, what);
}

#[test]
fn write_100kib_per_s_within_10_percent() {
    write_accuracy(100 * KIB, 150 * 1024, "write 100 KiB/s");
}

#[test]
fn write_1mib_per_s_within_10_percent() {
    write_accuracy(MIB, 2 << 20, "write 1 MiB/s");
}

/// 10 MiB/s when the link carries at least four times that (release builds: ~1 GiB/s); a
/// debug build's link carries ~5–15 MiB/s (smoltcp unoptimized, tests in parallel), so the
/// rate is scaled to a quarter of the measured capacity and the test says so. `.ci/steps/40-embassy.sh` runs this binary in release too.
#[test]
fn write_10mib_per_s_within_10_percent_or_scaled_to_link() {
    let l = link();
    let (s, c) = (l.server, l.client);
    let limiter = Lim::new();
    let limiter = &limiter;
    let (rate, measured) = run(l, async move {
        let (mut server, client) = connect(s, c, PORT).await;
        let mut client = limiter
            .throttle(client, None, Directions::UNLIMITED)
            .unwrap_or_else(|_| panic!("full"));
        // Unlimited path: the probe also shows that the limiter costs nothing when unlimited.
        let cap = raw_capacity(&mut server, client.get_mut(), 2 << 20).await;
        let rate = (10 * MIB)
            .min((cap as u64 / 4) / (256 * KIB) * (256 * KIB))
            .max(256 * KIB);
        eprintln!(
            "10 MiB/s test: link {:.1} MiB/s, testing {:.2} MiB/s",
            cap / MIB as f64,
            rate as f64 / MIB as f64
        );
        limiter
            .set_limit(client.leaves().write.node(), limit(rate))
            .unwrap();
        let total = rate as usize; // one second's worth
        let (_, times) = join(send(&mut client, total), recv(&mut server, total)).await;
        (rate, measured_rate(total, times))
    });
    assert_within(measured, rate, 0.10, "write 10 MiB/s (or scaled)");
}

/// Server reads through its connection's read leaf at 1 MiB/s; the client writes raw.
#[test]
fn read_1mib_per_s_within_10_percent() {
    let l = link();
    let (s, c) = (l.server, l.client);
    let limiter = Lim::new();
    let limiter = &limiter;
    let total = 2 << 20;
    let measured = run(l, async move {
        let (server, mut client) = connect(s, c, PORT).await;
        let mut server = limiter
            .throttle(
                server,
                None,
                Directions {
                    read: limit(MIB),
                    write: Limits::UNLIMITED,
                },
            )
            .unwrap_or_else(|_| panic!("full"));
        let (_, times) = join(send(&mut client, total), recv(&mut server, total)).await;
        measured_rate(total, times)
    });
    assert_within(measured, MIB, 0.10, "read 1 MiB/s");
}

/// Two connections accepted by one server limited to 1 MiB/s (write): each gets half.
#[test]
fn two_connections_share_server_limit_fairly() {
    let l = link();
    let (s, c) = (l.server, l.client);
    let limiter = Lim::new();
    let limiter = &limiter;
    let (a, b, window) = run(l, async move {
        let ([s1, s2], [mut c1, mut c2]) = harness::connect_two(s, c, PORT).await;
        let server = limiter
            .add_group(
                None,
                Directions {
                    read: Limits::UNLIMITED,
                    write: limit(MIB),
                },
                1,
            )
            .unwrap();
        let mut t1 = limiter
            .throttle(s1, Some(&server), Directions::UNLIMITED)
            .unwrap_or_else(|_| panic!("full"));
        let mut t2 = limiter
            .throttle(s2, Some(&server), Directions::UNLIMITED)
            .unwrap_or_else(|_| panic!("full"));
        two_writers(&mut t1, &mut t2, &mut c1, &mut c2).await
    });
    let (a, b) = (a as f64 / secs(window), b as f64 / secs(window));
    eprintln!(
        "fair share: a {:.1} KiB/s, b {:.1} KiB/s",
        a / 1024.0,
        b / 1024.0
    );
    assert_within(a + b, MIB, 0.10, "aggregate of two connections");
    assert!((a / b - 1.0).abs() <= 0.10, "unfair: a/b = {:.3}", a / b);
}

/// A writer asleep under a 1 KiB/s limit (holding the tree's timer, far in the future) speeds
/// up as soon as another task raises the limit.
#[test]
fn limit_change_from_another_task_reaches_sleeping_writer() {
    let l = link();
    let (s, c) = (l.server, l.client);
    let limiter = Lim::new();
    let limiter = &limiter;
    let total = 256 * 1024;
    let (changed, done, asleep, before) = run(l, async move {
        let (mut server, client) = connect(s, c, PORT).await;
        let slow = Limits::new(Tier::per_second(KIB).with_burst(KIB));
        let group = limiter
            .add_group(
                None,
                Directions {
                    read: Limits::UNLIMITED,
                    write: slow,
                },
                1,
            )
            .unwrap();
        let mut client = limiter
            .throttle(client, Some(&group), Directions::UNLIMITED)
            .unwrap_or_else(|_| panic!("full"));
        let received = Cell::new(0usize);
        let changer = async {
            Timer::after_millis(400).await;
            let asleep = limiter.shared().sleeping();
            let before = received.get();
            limiter
                .set_limit(group.write, Limits::per_second(4 * MIB))
                .unwrap();
            (Instant::now(), asleep, before)
        };
        let reader = async {
            let mut buf = [0u8; 8192];
            while received.get() < total {
                let n = server.read(&mut buf).await.unwrap_or(0);
                assert!(n > 0);
                received.set(received.get() + n);
            }
            Instant::now()
        };
        let ((changed, asleep, before), (_, done)) =
            join(changer, join(send(&mut client, total), reader)).await;
        (changed, done, asleep, before)
    });
    let lag = secs(done - changed);
    eprintln!("limit change: {before} bytes before, rest done {lag:.3} s after the change");
    assert_eq!(asleep, 1, "the writer sleeps in the tree before the change");
    assert!(
        before <= 2 * 1024,
        "1 KiB/s, burst 1 KiB: at most ~1.4 KiB in 0.4 s"
    );
    // 256 KiB at 4 MiB/s = 62 ms; at the old limit it would take over 4 minutes.
    assert!(lag < 1.0, "the change took {lag:.3} s to reach the writer");
}

/// A write waiting for tokens is dropped: its request is cancelled (no waiter left, nothing
/// granted to it), and the other connection under the same limit gets the tokens.
#[test]
fn dropped_waiting_write_cancels_other_leaf_gets_tokens() {
    let l = link();
    let (s, c) = (l.server, l.client);
    let limiter = Lim::new();
    let limiter = &limiter;
    run(l, async move {
        s.wait_config_up().await;
        c.wait_config_up().await;
        let (mut s1, mut s2) = (harness::socket(s), harness::socket(s));
        let (c1, c2) = (harness::socket(c), harness::socket(c));
        let (mut c1, mut c2) = (c1, c2);
        let (r1, r2, r3, r4) = join4(
            s1.accept(PORT),
            s2.accept(PORT),
            c1.connect((harness::SERVER, PORT)),
            c2.connect((harness::SERVER, PORT)),
        )
        .await;
        assert!(r1.is_ok() && r2.is_ok() && r3.is_ok() && r4.is_ok());
        // 16 KiB/s, burst 2 KiB: pieces arrive every few ms
        let group = limiter
            .add_group(
                None,
                Directions {
                    read: Limits::UNLIMITED,
                    write: Limits::new(Tier::per_second(16 * KIB).with_burst(2 * KIB)),
                },
                1,
            )
            .unwrap();
        let mut a = limiter
            .throttle(c1, Some(&group), Directions::UNLIMITED)
            .unwrap_or_else(|_| panic!("full"));
        let mut b = limiter
            .throttle(c2, Some(&group), Directions::UNLIMITED)
            .unwrap_or_else(|_| panic!("full"));
        let a_leaf = a.leaves().write.node();
        let b_leaf = b.leaves().write.node();
        // a takes the burst, then keeps writing, piece by piece; dropped after 100 ms, when it
        // waits for its next piece (its inner writes complete at once: the socket has room).
        send(&mut a, 2 * 1024).await;
        let waiting = async {
            Timer::after_millis(100).await;
            let st = limiter.stats(a_leaf).unwrap();
            (st.granted, limiter.shared().sleeping())
        };
        let (granted_before, sleeping) = match select(waiting, send(&mut a, 60 * 1024)).await {
            Either::First(v) => v,
            Either::Second(()) => panic!("60 KiB at 16 KiB/s finished within 100 ms"),
        };
        assert_eq!(sleeping, 1, "a was asleep in the tree");
        // The write future is dropped here: its request is cancelled.
        assert_eq!(limiter.shared().sleeping(), 0, "a's waiter is gone");
        let st = limiter.stats(a_leaf).unwrap();
        assert_eq!(st.waiting, 0, "a holds no waiting piece");
        assert!(
            st.granted <= granted_before,
            "nothing granted to a after the drop"
        );
        // b now gets every token: 8 KiB at 16 KiB/s is ~0.5 s.
        let t0 = Instant::now();
        let mut sink = [0u8; 8192];
        let (_, got) = join(send(&mut b, 8 * 1024), async {
            let mut got = 0;
            while got < 8 * 1024 {
                got += s2.read(&mut sink).await.unwrap_or(0);
            }
            got
        })
        .await;
        let took = secs(Instant::now() - t0);
        eprintln!("cancel: b sent {got} bytes in {took:.3} s");
        assert!(
            took < 0.9,
            "b waited {took:.3} s for tokens a no longer wants"
        );
        assert_eq!(limiter.stats(a_leaf).unwrap().granted, st.granted);
        assert!(limiter.stats(b_leaf).unwrap().granted >= 8 * 1024);
        drop(s1);
    });
}

/// `t1` and `t2` write as fast as they may, their peers `c1` and `c2` count what arrives:
/// bytes each peer received over 1.5 s after 300 ms of warm-up, and the exact window.
async fn two_writers(
    t1: &mut impl Write,
    t2: &mut impl Write,
    c1: &mut TcpSocket<'_>,
    c2: &mut TcpSocket<'_>,
) -> (usize, usize, Duration) {
    let got = [Cell::new(0usize), Cell::new(0usize)];
    let monitor = async {
        Timer::after_millis(300).await;
        let t0 = Instant::now();
        let before = [got[0].get(), got[1].get()];
        Timer::after_millis(1500).await;
        let window = Instant::now() - t0;
        (got[0].get() - before[0], got[1].get() - before[1], window)
    };
    let traffic = join4(
        send(t1, usize::MAX),
        send(t2, usize::MAX),
        count(c1, &got[0]),
        count(c2, &got[1]),
    );
    match select(monitor, traffic).await {
        Either::First(v) => v,
        Either::Second(_) => unreachable!("traffic runs until the monitor ends"),
    }
}

/// An idle connection (its peer never sends) waiting in `read` holds no tokens: the busy one
/// under the same 512 KiB/s server read limit gets all of it (the conformance suite's
/// `idle_connection_holds_no_tokens`, over embassy-net).
#[test]
fn idle_reader_holds_no_tokens_busy_one_gets_server_rate() {
    let l = link();
    let (s, c) = (l.server, l.client);
    let limiter = Lim::new();
    let limiter = &limiter;
    let (busy, window, idle_granted) = run(l, async move {
        let ([s1, s2], [c1, mut c2]) = harness::connect_two(s, c, PORT).await;
        let server = limiter
            .add_group(
                None,
                Directions {
                    read: limit(512 * KIB),
                    write: Limits::UNLIMITED,
                },
                1,
            )
            .unwrap();
        let mut idle = limiter
            .throttle(s1, Some(&server), Directions::UNLIMITED)
            .unwrap_or_else(|_| panic!("full"));
        let mut busy = limiter
            .throttle(s2, Some(&server), Directions::UNLIMITED)
            .unwrap_or_else(|_| panic!("full"));
        let (got, idle_got) = (Cell::new(0usize), Cell::new(0usize));
        let monitor = async {
            Timer::after_millis(300).await;
            let t0 = Instant::now();
            let before = got.get();
            Timer::after_millis(1500).await;
            (got.get() - before, Instant::now() - t0)
        };
        let traffic = join(
            join(send(&mut c2, usize::MAX), count(&mut busy, &got)),
            count(&mut idle, &idle_got),
        );
        let (n, window) = match select(monitor, traffic).await {
            Either::First(v) => v,
            Either::Second(_) => unreachable!("traffic runs until the monitor ends"),
        };
        assert_eq!(idle_got.get(), 0, "the idle peer sent nothing");
        let idle_granted = limiter
            .stats(idle.leaves().read.node())
            .map_or(u64::MAX, |st| st.granted);
        drop(c1);
        (n, window, idle_granted)
    });
    let rate = busy as f64 / secs(window);
    assert_eq!(idle_granted, 0, "the idle reader was charged nothing");
    assert_within(rate, 512 * KIB, 0.10, "busy reader beside an idle one");
}

/// A `Server` with a 512 KiB/s write limit and 96 KiB/s per connection: two connections each
/// get their own cap (the server limit does not bind), and `connection_stats` agrees with what
/// the peers received (the conformance suite's `connection_limit_under_server_limit`, over
/// embassy-net).
#[test]
fn server_per_connection_limit_under_server_limit() {
    const CONN: u64 = 96 * KIB;
    let l = link();
    let (s, c) = (l.server, l.client);
    let limiter = Lim::new();
    let limiter = &limiter;
    let server: throttle_embassy::Server<'_, 16, 4, CriticalSectionRawMutex> =
        throttle_embassy::Server::new(
            limiter,
            Directions {
                read: Limits::UNLIMITED,
                write: limit(512 * KIB),
            },
            Directions {
                read: Limits::UNLIMITED,
                write: limit(CONN),
            },
        );
    let server = &server;
    let (a, b, window, stats) = run(l, async move {
        let ([s1, s2], [mut c1, mut c2]) = harness::connect_two(s, c, PORT).await;
        let mut t1 = server.accept(s1).unwrap_or_else(|_| panic!("full"));
        let mut t2 = server.accept(s2).unwrap_or_else(|_| panic!("full"));
        let (a, b, window) = two_writers(&mut t1, &mut t2, &mut c1, &mut c2).await;
        (a, b, window, server.connection_stats())
    });
    let (a, b) = (a as f64 / secs(window), b as f64 / secs(window));
    assert_within(a, CONN, 0.10, "connection 1 under its own limit");
    assert_within(b, CONN, 0.10, "connection 2 under its own limit");
    assert_eq!(stats.len(), 2);
    for (read, write) in &stats {
        assert_eq!(read.granted, 0, "reads are unlimited: the tree is skipped");
        assert!(write.granted > 0);
    }
}

/// Two groups weighted 1:3 under a 512 KiB/s server (write), one connection each: the
/// server's rate is shared 1:3 (the conformance suite's `weighted_groups_share_server`, over
/// embassy-net).
#[test]
fn weighted_groups_share_server_limit() {
    let l = link();
    let (s, c) = (l.server, l.client);
    let limiter = Lim::new();
    let limiter = &limiter;
    let (a, b, window) = run(l, async move {
        let ([s1, s2], [mut c1, mut c2]) = harness::connect_two(s, c, PORT).await;
        let write_only = |l: Limits| Directions {
            read: Limits::UNLIMITED,
            write: l,
        };
        let server = limiter
            .add_group(None, write_only(limit(512 * KIB)), 1)
            .unwrap();
        let light = limiter
            .add_group(Some(&server), Directions::UNLIMITED, 1)
            .unwrap();
        let heavy = limiter
            .add_group(Some(&server), Directions::UNLIMITED, 3)
            .unwrap();
        let mut t1 = limiter
            .throttle(s1, Some(&light), Directions::UNLIMITED)
            .unwrap_or_else(|_| panic!("full"));
        let mut t2 = limiter
            .throttle(s2, Some(&heavy), Directions::UNLIMITED)
            .unwrap_or_else(|_| panic!("full"));
        two_writers(&mut t1, &mut t2, &mut c1, &mut c2).await
    });
    let (a, b) = (a as f64 / secs(window), b as f64 / secs(window));
    eprintln!("weights 1:3: {:.1} : {:.1} KiB/s", a / 1024.0, b / 1024.0);
    assert_within(a + b, 512 * KIB, 0.10, "aggregate of two weighted groups");
    let share = a / (a + b);
    assert!(
        (share - 0.25).abs() <= 0.03,
        "light group's share {share:.3}, want 0.25"
    );
}
