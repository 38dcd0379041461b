//! Adapter behaviour on in-memory streams (the real-socket tests are the conformance suite's
//! portable scenarios, `tests/conformance/tests/embassy.rs`, over two in-process embassy-net
//! stacks): unlimited paths skip the tree, a blocked stream holds no tokens, drops cancel, removed
//! leaves give typed errors, hostile limits never panic.

extern crate alloc;

use alloc::rc::Rc;

use core::cell::Cell;
use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};

use embassy_futures::block_on;
use embassy_futures::select::{select, Either};
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_time::{Duration, Timer};
use embedded_io_async::{ErrorType, Read, Write};
use throttle_core::{Limits, Tier, MAX_PERIOD};

use crate::{Directions, Error, Limiter, Server};

type Lim = Limiter<8, CriticalSectionRawMutex>;

/// Accepts every write, fills every read; `blocked` makes both pending until cleared.
#[derive(Default)]
struct Mem {
    blocked: Rc<Cell<bool>>,
}

impl Mem {
    fn blocked() -> (Self, Rc<Cell<bool>>) {
        let flag = Rc::new(Cell::new(true));
        (
            Mem {
                blocked: flag.clone(),
            },
            flag,
        )
    }
}

impl ErrorType for Mem {
    type Error = core::convert::Infallible;
}

impl Mem {
    fn poll_io(&self, cx: &mut Context<'_>, len: usize) -> Poll<usize> {
        if self.blocked.get() {
            // a real stream registers the waker with its driver; the test polls by hand
            let _ = cx;
            Poll::Pending
        } else {
            Poll::Ready(len)
        }
    }
}

impl Read for Mem {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let n = core::future::poll_fn(|cx| self.poll_io(cx, buf.len())).await;
        buf.fill(7);
        Ok(n)
    }
}

impl Write for Mem {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        Ok(core::future::poll_fn(|cx| self.poll_io(cx, buf.len())).await)
    }
    async fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

fn poll_once<F: Future>(f: core::pin::Pin<&mut F>) -> Poll<F::Output> {
    f.poll(&mut Context::from_waker(Waker::noop()))
}

fn write_only(limits: Limits) -> Directions<Limits> {
    Directions {
        read: Limits::UNLIMITED,
        write: limits,
    }
}

#[test]
fn unlimited_path_write_skips_tree() {
    let lim = Lim::new();
    let server = lim.group(None, Directions::UNLIMITED, 1).unwrap();
    let mut s = lim
        .wrap(Mem::default(), Some(&server), Directions::UNLIMITED)
        .unwrap_or_else(|_| panic!("full"));
    let n = block_on(s.write(&[0u8; 100_000])).unwrap();
    assert_eq!(n, 100_000, "an unlimited path is never shortened");
    // the tree was not asked for a grant (no piece), but the bytes are counted, on the path
    let st = lim.stats(s.leaves().write.node()).unwrap();
    assert_eq!((st.granted, st.pieces), (100_000, 0));
    assert_eq!(lim.stats(server.write).unwrap().granted, 100_000);
    assert_eq!(lim.stats(server.read).unwrap().granted, 0);
}

#[test]
fn limited_parent_write_counts_in_tree() {
    let lim = Lim::new();
    let server = lim
        .group(None, write_only(Limits::per_second(1 << 30)), 1)
        .unwrap();
    let mut s = lim
        .wrap(Mem::default(), Some(&server), Directions::UNLIMITED)
        .unwrap_or_else(|_| panic!("full"));
    let n = block_on(s.write(&[0u8; 1000])).unwrap();
    assert_eq!(
        lim.stats(s.leaves().write.node()).unwrap().granted,
        n as u64
    );
    let pieces = lim.stats(s.leaves().write.node()).unwrap().pieces;
    // the parent becomes unlimited at runtime: the path check sees the new generation (no
    // piece more), and the bytes still count
    lim.set_limit(server.write, Limits::UNLIMITED).unwrap();
    block_on(s.write(&[0u8; 1000])).unwrap();
    let st = lim.stats(s.leaves().write.node()).unwrap();
    assert_eq!((st.granted, st.pieces), (2 * n as u64, pieces));
}

#[test]
fn write_longer_than_grant_is_shortened() {
    let lim = Lim::new();
    let slow = Limits::new(Tier::per_second(1000).with_burst(1000));
    let mut s = lim
        .wrap(Mem::default(), None, write_only(slow))
        .unwrap_or_else(|_| panic!("full"));
    let n = block_on(s.write(&[0u8; 64 * 1024])).unwrap();
    assert!(n > 0 && n <= 1000, "{n}");
}

#[test]
fn blocked_inner_write_holds_no_tokens_then_pays() {
    // bursts below the default minimum on purpose
    let lim =
        Lim::with_config(throttle_core::Config::DEFAULT.with_min_burst(core::time::Duration::ZERO));
    let group = lim
        .group(
            None,
            write_only(Limits::new(Tier::per_second(1 << 20).with_burst(4096))),
            1,
        )
        .unwrap();
    let full = lim
        .shared()
        .with(|s| s.tree().tokens(group.write, 0))
        .unwrap();
    let (mem, blocked) = Mem::blocked();
    let mut s = lim
        .wrap(mem, Some(&group), Directions::UNLIMITED)
        .unwrap_or_else(|_| panic!("full"));
    let leaf = s.leaves().write.node();
    let mut w = pin!(s.write(&[0u8; 2048]));
    assert!(poll_once(w.as_mut()).is_pending());
    // granted, handed to the inner stream, which would block: everything went back
    let now = lim
        .shared()
        .with(|st| st.tree().tokens(group.write, 0))
        .unwrap();
    assert!(
        now >= full,
        "tokens {now} < {full}: a blocked stream holds tokens"
    );
    assert_eq!(lim.stats(leaf).unwrap().granted, 0);
    assert_eq!(
        lim.shared().sleeping(),
        0,
        "waiting for the stream, not for the tree"
    );
    // the stream moves: the write pays for what it moved before returning
    blocked.set(false);
    let Poll::Ready(Ok(n)) = poll_once(w.as_mut()) else {
        panic!("the burst covers 2 KiB");
    };
    assert_eq!(n, 2048);
    assert_eq!(lim.stats(leaf).unwrap().granted, 2048);
}

#[test]
fn blocked_read_dropped_holds_nothing() {
    let lim = Lim::new();
    let (mem, _blocked) = Mem::blocked();
    let read_only = Directions {
        read: Limits::per_second(1 << 20),
        write: Limits::UNLIMITED,
    };
    let mut s = lim
        .wrap(mem, None, read_only)
        .unwrap_or_else(|_| panic!("full"));
    let leaf = s.leaves().read.node();
    let mut buf = [0u8; 1024];
    {
        let mut r = pin!(s.read(&mut buf));
        assert!(poll_once(r.as_mut()).is_pending());
        assert_eq!(
            lim.stats(leaf).unwrap().granted,
            0,
            "an idle reader holds nothing"
        );
    }
    let st = lim.stats(leaf).unwrap();
    assert_eq!((st.granted, st.waiting), (0, 0));
    assert_eq!(lim.shared().sleeping(), 0);
}

#[test]
fn paused_write_dropped_cancels_its_wait() {
    let lim = Lim::new();
    let group = lim
        .group(None, write_only(Limits::new(Tier::per_second(0))), 1)
        .unwrap();
    let mut s = lim
        .wrap(Mem::default(), Some(&group), Directions::UNLIMITED)
        .unwrap_or_else(|_| panic!("full"));
    let leaf = s.leaves().write.node();
    {
        let mut w = pin!(s.write(&[0u8; 100]));
        assert!(poll_once(w.as_mut()).is_pending());
        assert_eq!(lim.shared().sleeping(), 1);
        assert_eq!(lim.stats(leaf).unwrap().waiting, 1);
    }
    assert_eq!(
        lim.shared().sleeping(),
        0,
        "the dropped write cancelled its request"
    );
    assert_eq!(lim.stats(leaf).unwrap().waiting, 0);
}

#[test]
fn removed_leaves_write_returns_removed() {
    let lim = Lim::new();
    let mut s = lim
        .wrap(
            Mem::default(),
            None,
            Directions::both(Limits::per_second(1000)),
        )
        .unwrap_or_else(|_| panic!("full"));
    lim.remove_connection(&s.leaves()).unwrap();
    assert_eq!(block_on(s.write(&[1, 2, 3])), Err(Error::Removed));
    let mut buf = [0u8; 3];
    assert_eq!(block_on(s.read(&mut buf)), Err(Error::Removed));
}

#[test]
fn full_limiter_hands_stream_back() {
    let lim = Limiter::<3, CriticalSectionRawMutex>::new();
    let _a = lim
        .wrap(Mem::default(), None, Directions::UNLIMITED)
        .unwrap_or_else(|_| panic!("room for one"));
    let Err((e, _stream)) = lim.wrap(Mem::default(), None, Directions::UNLIMITED) else {
        panic!("3 slots hold one connection (2 leaves), not two");
    };
    assert_eq!(e, throttle_core::InsertError::CapacityFull);
    // the half-inserted connection was rolled back: one slot is still free
    assert!(lim.group(None, Directions::UNLIMITED, 1).is_err());
    assert_eq!(lim.shared().with(|s| s.tree().len()), 2);
}

#[test]
fn into_inner_removes_leaves() {
    let lim = Lim::new();
    let s = lim
        .wrap(Mem::default(), None, Directions::UNLIMITED)
        .unwrap_or_else(|_| panic!("full"));
    let leaves = s.leaves();
    let _mem: Mem = s.into_inner();
    assert!(lim.stats(leaves.read.node()).is_err());
    assert_eq!(lim.shared().with(|s| s.tree().len()), 0);
}

/// Hostile limits on the leaf and its parent, changed while a write waits: every call returns
/// (a grant, a wait cut by the timeout, or an error), none panics or overflows.
#[test]
fn extreme_limits_never_panic() {
    let hostile = [
        Limits::per_second(u64::MAX),
        Limits::new(Tier::per_second(u64::MAX).with_burst(u64::MAX)),
        Limits::new(Tier::per_second(u64::MAX).with_burst(0)),
        Limits::new(Tier::per_second(1).with_burst(0)),
        Limits::new(Tier::per_second(1).with_burst(u64::MAX)),
        Limits::new(Tier::per_second(0)),
        Limits::new(Tier::per_period(u64::MAX, MAX_PERIOD).unwrap()),
        Limits::new(Tier::per_period(1, MAX_PERIOD).unwrap()),
        Limits::UNLIMITED,
    ];
    // bursts below the default minimum on purpose
    let lim =
        Lim::with_config(throttle_core::Config::DEFAULT.with_min_burst(core::time::Duration::ZERO));
    let group = lim.group(None, Directions::UNLIMITED, 1).unwrap();
    let mut s = lim
        .wrap(Mem::default(), Some(&group), Directions::UNLIMITED)
        .unwrap_or_else(|_| panic!("full"));
    let big = alloc::vec![0u8; 1 << 20];
    let mut rbuf = alloc::vec![0u8; 1 << 20];
    for (i, parent) in hostile.iter().enumerate() {
        for leaf in &hostile {
            lim.set_limits(&group, Directions::both(*parent)).unwrap();
            lim.set_limit(s.leaves().write.node(), *leaf).unwrap();
            lim.set_limit(s.leaves().read.node(), *leaf).unwrap();
            let io = async {
                let w = s.write(&big).await;
                let r = s.read(&mut rbuf).await;
                (w, r)
            };
            let changer = async {
                Timer::after(Duration::from_millis(2)).await;
                lim.set_limits(&group, Directions::both(hostile[(i + 1) % hostile.len()]))
                    .unwrap();
                Timer::after(Duration::from_millis(3)).await;
            };
            if let Either::First((w, r)) = block_on(select(io, changer)) {
                assert!(w.is_ok_and(|n| n <= big.len()) && r.is_ok_and(|n| n <= 1 << 20));
            }
        }
    }
}

#[test]
fn server_connection_limit_change_reaches_sleeping_connection() {
    let lim = Lim::new();
    let paused = write_only(Limits::new(Tier::per_second(0)));
    let server: Server<'_, 8, 2, CriticalSectionRawMutex> =
        Server::new(&lim, Directions::UNLIMITED, paused);
    let mut a = server
        .wrap(Mem::default())
        .unwrap_or_else(|_| panic!("room"));
    let b = server
        .wrap(Mem::default())
        .unwrap_or_else(|_| panic!("room"));
    assert!(
        server.wrap(Mem::default()).is_err(),
        "the registry holds 2 connections"
    );
    let fast = write_only(Limits::per_second(1 << 20));
    {
        let mut w = pin!(a.write(&[0u8; 100]));
        assert!(
            poll_once(w.as_mut()).is_pending(),
            "per-connection limit: paused"
        );
        assert_eq!(lim.shared().sleeping(), 1);
        server.set_connection_limits(fast);
        assert_eq!(
            lim.shared().sleeping(),
            0,
            "the change woke the sleeping write"
        );
        assert_eq!(poll_once(w.as_mut()), Poll::Ready(Ok(100)));
    }
    let per_conn = server.connection_stats();
    assert_eq!(per_conn.len(), 2);
    assert_eq!(
        (per_conn[0].1.granted, per_conn[1].1.granted),
        (100, 0),
        "per-connection statistics, write side"
    );
    assert_eq!(lim.shared().limits(b.leaves().write.node()), Ok(fast.write));
    // a dropped connection leaves the registry: there is room again
    drop(b);
    assert_eq!(server.connections(), 1);
    let c = server
        .wrap(Mem::default())
        .unwrap_or_else(|_| panic!("room"));
    assert_eq!(lim.shared().limits(c.leaves().write.node()), Ok(fast.write));
    server
        .set_limits(write_only(Limits::per_second(1000)))
        .unwrap();
    let g = server.group().unwrap();
    assert_eq!(lim.shared().limits(g.write), Ok(Limits::per_second(1000)));
}

/// 1000 tokens/s, burst 100, one leaf: the first 100 are there, more take time.
fn request_leaf(lim: &Lim) -> throttle_core::LeafId {
    let l = Limits::new(Tier::per_second(1000).with_burst(100));
    lim.connection(None, Directions::both(l), 1).unwrap().write
}

#[test]
fn acquire_burst_then_waits_on_clock() {
    let lim = Lim::new();
    let leaf = request_leaf(&lim);
    let t0 = embassy_time::Instant::now();
    block_on(lim.acquire(leaf, 100)).unwrap();
    block_on(lim.acquire(leaf, 150)).unwrap();
    let waited = t0.elapsed();
    // 150 more at 1000/s, less the piece of debt a tier may lend: at least ~100 ms
    assert!(waited >= Duration::from_millis(90), "{waited:?}");
    assert_eq!(lim.stats(leaf.node()).unwrap().granted, 250);
    assert_eq!(
        block_on(lim.acquire(leaf, 0)),
        Err(crate::AcquireError::ZeroRequest)
    );
}

#[test]
fn acquire_before_unreachable_deadline_fails_without_reserving() {
    let lim = Lim::new();
    let leaf = request_leaf(&lim);
    let soon = embassy_time::Instant::now() + Duration::from_millis(200);
    // 10 000 at 1000/s cannot make 200 ms
    let r = block_on(lim.acquire_before(leaf, 10_000, soon));
    let Err(crate::AcquireError::Deadline { wait: Some(w) }) = r else {
        panic!("{r:?}")
    };
    assert!(w >= core::time::Duration::from_secs(9), "{w:?}");
    let st = lim.stats(leaf.node()).unwrap();
    assert_eq!((st.granted, st.waiting), (0, 0));
    // what the burst holds is granted whatever the deadline
    let past = embassy_time::Instant::now();
    block_on(lim.acquire_before(leaf, 100, past)).unwrap();
    // a paused path can never meet one
    lim.set_limit(leaf.node(), Limits::per_second(0)).unwrap();
    assert_eq!(
        block_on(lim.acquire_before(leaf, 1, soon)),
        Err(crate::AcquireError::Deadline { wait: None })
    );
}

#[test]
fn acquire_dropped_mid_wait_refunds_piece() {
    let lim = Lim::new();
    let leaf = request_leaf(&lim);
    block_on(lim.acquire(leaf, 100)).unwrap();
    let r = block_on(select(lim.acquire(leaf, 1000), Timer::after_millis(30)));
    assert!(
        matches!(r, Either::Second(())),
        "1000 more cannot come in 30 ms"
    );
    let st = lim.stats(leaf.node()).unwrap();
    assert_eq!(st.waiting, 0, "the waiting piece was withdrawn");
    // (the piece of debt collected before the wait stays spent)
    assert!(st.granted <= 200, "{}", st.granted);
}

#[test]
fn try_acquire_takes_exactly_the_burst_then_says_when() {
    use crate::TryAcquireError;
    let lim = Lim::new();
    // 10 per second, burst 10: the 11th is refused (no piece of debt), with how long to wait
    let leaf = lim
        .connection(None, Directions::both(Limits::per_second(10)), 1)
        .unwrap()
        .write;
    for _ in 0..10 {
        lim.try_acquire(leaf, 1).unwrap();
    }
    match lim.try_acquire(leaf, 1) {
        Err(TryAcquireError::NotYet { wait: Some(w) }) => {
            assert!(
                w > core::time::Duration::ZERO && w <= core::time::Duration::from_millis(100),
                "{w:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(lim.stats(leaf.node()).unwrap().granted, 10);
    assert_eq!(lim.stats(leaf.node()).unwrap().waiting, 0, "nothing held");
    assert_eq!(
        lim.try_acquire(leaf, 11),
        Err(TryAcquireError::InsufficientCapacity { max: 10 })
    );
    assert_eq!(lim.try_acquire(leaf, 0), Err(TryAcquireError::ZeroRequest));
    // an unlimited path always succeeds, without the tree
    let free = lim
        .connection(None, Directions::UNLIMITED, 1)
        .unwrap()
        .write;
    lim.try_acquire(free, 1 << 40).unwrap();
    lim.set_limit(leaf.node(), Limits::new(Tier::per_second(0)))
        .unwrap();
    assert_eq!(
        lim.try_acquire(leaf, 1),
        Err(TryAcquireError::NotYet { wait: None })
    );
}
