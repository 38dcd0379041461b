//! The sharing layer's wake-up protocol, single-threaded (the concurrent interleavings are
//! loom's job: `tests/loom.rs`). A tiny virtual-time executor polls "tasks" (one per leaf)
//! when their waker fired or their timer is due.

extern crate alloc;

use alloc::sync::Arc;
use alloc::task::Wake;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::{Config, Limits, StdLock, Tier, VecTree};

type S = Shared<crate::Growable, StdLock<State<crate::Growable>>>;

struct Flag(AtomicUsize);
impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn flag() -> (Arc<Flag>, Waker) {
    let f = Arc::new(Flag(AtomicUsize::new(0)));
    (f.clone(), Waker::from(f))
}

fn ms(n: u64) -> Instant {
    Instant::from_millis(n)
}

fn shared() -> S {
    // mechanics of the sharing layer, with bursts below the default minimum on purpose
    Shared::new(VecTree::new(
        Config::DEFAULT.with_min_burst(core::time::Duration::ZERO),
    ))
}

#[test]
fn uncontended_grant_registers_nothing() {
    let s = shared();
    let root = s
        .insert_node(None, Limits::per_second(1 << 20), 1, ms(0))
        .unwrap();
    let leaf = s
        .insert_leaf(Some(root), Limits::UNLIMITED, 1, ms(0))
        .unwrap();
    let (_f, w) = flag();
    assert!(matches!(
        s.poll_acquire(leaf, 1000, ms(0), &w).unwrap(),
        Step::Grant(1000)
    ));
    assert_eq!(s.sleeping(), 0);
    s.settle(leaf, 1000, ms(0)).unwrap();
    assert_eq!(s.wakes(), 0);
}

#[test]
fn paused_waiter_set_limit_wakes_it() {
    let s = shared();
    let root = s
        .insert_node(None, Limits::new(Tier::per_second(0)), 1, ms(0))
        .unwrap();
    let leaf = s
        .insert_leaf(Some(root), Limits::UNLIMITED, 1, ms(0))
        .unwrap();
    let (f, w) = flag();
    assert_eq!(
        s.poll_acquire(leaf, 1000, ms(0), &w).unwrap(),
        Step::Sleep { until: None }
    );
    assert_eq!(s.sleeping(), 1);
    s.set_limit(root, Limits::per_second(1 << 20), ms(1))
        .unwrap();
    assert_eq!(
        f.0.load(Ordering::SeqCst),
        1,
        "the limit change must wake the waiter"
    );
    assert_eq!(s.sleeping(), 0);
    // the bucket was empty: one whole byte at 1 MiB/s first (954 ns), then the grant
    let byte = Instant::from_nanos(ms(1).as_nanos() + 954);
    assert_eq!(
        s.poll_acquire(leaf, 1000, ms(1), &w).unwrap(),
        Step::Sleep { until: Some(byte) }
    );
    assert!(matches!(
        s.poll_acquire(leaf, 1000, byte, &w).unwrap(),
        Step::Grant(_)
    ));
}

/// Two leaves behind an exhausted root: one holds the timer, the other sleeps without one.
type Task = (Arc<Flag>, Waker);

fn two_waiting() -> (S, LeafId, LeafId, [Task; 2], Instant) {
    let s = shared();
    // 100 KiB/s, 1 KiB burst: the burst goes at once, the next piece once one whole byte is
    // earned, then pieces of 1 KiB every 10 ms.
    let root = s
        .insert_node(
            None,
            Limits::new(Tier::per_second(100 << 10).with_burst(1024)),
            1,
            ms(0),
        )
        .unwrap();
    let a = s
        .insert_leaf(Some(root), Limits::UNLIMITED, 1, ms(0))
        .unwrap();
    let b = s
        .insert_leaf(Some(root), Limits::UNLIMITED, 1, ms(0))
        .unwrap();
    let fa = flag();
    let fb = flag();
    // a spends the burst; the next piece waits for one whole byte (9 766 ns at 100 KiB/s)
    let mut grants = 0;
    let t = loop {
        match s.poll_acquire(a, 1024, ms(0), &fa.1).unwrap() {
            Step::Grant(n) => {
                s.settle(a, n, ms(0)).unwrap();
                grants += 1;
                assert!(grants <= 1, "the burst, no more");
            }
            Step::Sleep { until: Some(t) } => break t,
            other => panic!("a waits first and takes the timer, got {other:?}"),
        }
    };
    assert_eq!((grants, t), (1, Instant::from_nanos(9_766)));
    assert_eq!(
        s.poll_acquire(b, 1024, ms(0), &fb.1).unwrap(),
        Step::Sleep { until: None },
        "b sleeps without a timer of its own"
    );
    assert_eq!(s.sleeping(), 2);
    (s, a, b, [fa, fb], t)
}

#[test]
fn two_waiters_holder_granted_hands_off_timer() {
    let (s, a, b, [fa, fb], t) = two_waiting();
    assert!(t > ms(0) && t <= ms(20), "{t:?}");
    // Whenever the holder's timer fires and the holder itself is served, the other (asleep
    // without a timer) must be woken to take the timer over. Drive both until that happened
    // a few times (who is served when is fair queueing's business, not this test's).
    let tasks = [(a, &fa), (b, &fb)];
    let mut holder = 0usize;
    let mut now = t;
    let mut handoffs = 0;
    for _ in 0..100 {
        let other = 1 - holder;
        let before = tasks[other].1 .0 .0.load(Ordering::SeqCst);
        match s
            .poll_acquire(tasks[holder].0, 1024, now, &tasks[holder].1 .1)
            .unwrap()
        {
            Step::Grant(n) => {
                s.settle(tasks[holder].0, n, now).unwrap();
                assert!(
                    tasks[other].1 .0 .0.load(Ordering::SeqCst) > before,
                    "the holder was served: the other waiter must be woken"
                );
                handoffs += 1;
                // the served task asks again and sleeps without the timer
                assert_eq!(
                    s.poll_acquire(tasks[holder].0, 1024, now, &tasks[holder].1 .1)
                        .unwrap(),
                    Step::Sleep { until: None }
                );
                let Step::Sleep { until: Some(next) } = s
                    .poll_acquire(tasks[other].0, 1024, now, &tasks[other].1 .1)
                    .unwrap()
                else {
                    panic!("the woken waiter takes the timer")
                };
                holder = other;
                now = next;
            }
            Step::Sleep { until: Some(next) } => {
                // the other one was served: it was woken and collects its grant
                assert!(tasks[other].1 .0 .0.load(Ordering::SeqCst) > before);
                let Step::Grant(n) = s
                    .poll_acquire(tasks[other].0, 1024, now, &tasks[other].1 .1)
                    .unwrap()
                else {
                    panic!("woken because granted")
                };
                s.settle(tasks[other].0, n, now).unwrap();
                assert_eq!(
                    s.poll_acquire(tasks[other].0, 1024, now, &tasks[other].1 .1)
                        .unwrap(),
                    Step::Sleep { until: None }
                );
                now = next;
            }
            other => panic!("the holder sleeps on the timer, got {other:?}"),
        }
    }
    assert!(handoffs >= 10, "{handoffs} hand-offs");
}

#[test]
fn holder_cancel_hands_off_timer() {
    let (s, a, b, [_fa, fb], t) = two_waiting();
    // before the root holds a whole byte again (at `t`)
    s.cancel(a, ms(0)).unwrap();
    assert_eq!(fb.0 .0.load(Ordering::SeqCst), 1);
    assert_eq!(
        s.poll_acquire(b, 1024, ms(0), &fb.1).unwrap(),
        Step::Sleep { until: Some(t) }
    );
}

#[test]
fn holder_removed_hands_off_timer() {
    let (s, a, b, [fa, fb], t) = two_waiting();
    // before the root holds a whole byte again (at `t`)
    s.remove(a.node(), ms(0)).unwrap();
    assert_eq!(
        fa.0 .0.load(Ordering::SeqCst),
        1,
        "a removed leaf's task is woken…"
    );
    assert_eq!(
        s.poll_acquire(a, 1024, ms(0), &fa.1),
        Err(AcquireError::StaleHandle),
        "…and learns it is gone"
    );
    assert_eq!(fb.0 .0.load(Ordering::SeqCst), 1);
    assert_eq!(
        s.poll_acquire(b, 1024, ms(0), &fb.1).unwrap(),
        Step::Sleep { until: Some(t) }
    );
    assert_eq!(s.sleeping(), 1);
}

#[test]
fn faster_limit_wakes_holder_to_rearm() {
    let (s, a, _b, [fa, fb], t) = two_waiting();
    let root = s.with(|st| st.tree().parent(a.node()).unwrap().unwrap());
    // Ten times faster but still no credit at once: nobody is granted, yet the next grant
    // moves earlier, so the holder must hear of it (and only the holder).
    s.set_limit(
        root,
        Limits::new(Tier::per_second(1000 << 10).with_burst(1024)),
        ms(0),
    )
    .unwrap();
    let woken_a = fa.0 .0.load(Ordering::SeqCst);
    let woken_b = fb.0 .0.load(Ordering::SeqCst);
    assert_eq!(
        woken_a + woken_b,
        1,
        "one wake-up: the holder re-arms or the first is granted"
    );
    match s.poll_acquire(a, 1024, ms(0), &fa.1).unwrap() {
        Step::Sleep { until: Some(t2) } => assert!(t2 < t, "{t2:?} !< {t:?}"),
        Step::Grant(_) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_input_is_typed_error_and_changes_nothing() {
    let s = shared();
    let leaf = s.insert_leaf(None, Limits::UNLIMITED, 1, ms(0)).unwrap();
    let (_f, w) = flag();
    assert_eq!(
        s.poll_acquire(leaf, 0, ms(0), &w),
        Err(AcquireError::ZeroRequest)
    );
    assert_eq!(s.sleeping(), 0);
    s.remove(leaf.node(), ms(0)).unwrap();
    assert_eq!(
        s.poll_acquire(leaf, 1, ms(0), &w),
        Err(AcquireError::StaleHandle)
    );
    assert_eq!(s.cancel(leaf, ms(0)), Err(CancelError::StaleHandle));
    assert_eq!(s.settle(leaf, 1, ms(0)), Err(SettleError::StaleHandle));
}

/// 50 saturating tasks behind one root, driven by a virtual-time executor that only polls a
/// task when its waker fired or its timer (if it holds the tree's) is due. Checks that the
/// tree's rate is reached, that the tasks share it, and that wake-ups stay O(pieces): no herd.
#[test]
fn many_waiters_one_timer_no_herd() {
    const N: usize = 50;
    let s = shared();
    let rate = 1u64 << 20;
    let root = s
        .insert_node(None, Limits::per_second(rate), 1, ms(0))
        .unwrap();
    let leaves: Vec<LeafId> = (0..N)
        .map(|_| {
            s.insert_leaf(Some(root), Limits::UNLIMITED, 1, ms(0))
                .unwrap()
        })
        .collect();
    let flags: Vec<(Arc<Flag>, Waker)> = (0..N).map(|_| flag()).collect();
    let mut seen = [0usize; N];
    let mut timers: Vec<Option<Instant>> = alloc::vec![None; N];
    let mut runnable = alloc::vec![true; N];
    let mut sent = [0u64; N];
    let mut now = ms(0);
    let mut polls = 0u64;
    let end = Instant::from_secs(5);
    while now < end {
        for k in 0..N {
            let woke = flags[k].0 .0.load(Ordering::SeqCst);
            let due = timers[k].is_some_and(|t| t <= now);
            if !(runnable[k] || woke != seen[k] || due) {
                continue;
            }
            seen[k] = woke;
            runnable[k] = false;
            polls += 1;
            loop {
                match s
                    .poll_acquire(leaves[k], 64 << 10, now, &flags[k].1)
                    .unwrap()
                {
                    Step::Grant(n) => {
                        s.settle(leaves[k], n, now).unwrap();
                        sent[k] += n;
                        timers[k] = None;
                    }
                    Step::Sleep { until } => {
                        timers[k] = until;
                        break;
                    }
                }
            }
        }
        let holders = timers.iter().filter(|t| t.is_some()).count();
        assert!(
            holders <= 1,
            "at most one task sleeps on a timer, saw {holders}"
        );
        let pending = (0..N).any(|k| flags[k].0 .0.load(Ordering::SeqCst) != seen[k]);
        if !pending {
            now = timers
                .iter()
                .flatten()
                .copied()
                .min()
                .expect("someone holds the timer while tasks wait");
        }
    }
    let total: u64 = sent.iter().sum();
    let expect = rate * 5;
    assert!(
        total.abs_diff(expect) < expect / 50,
        "granted {total} of {expect}"
    );
    let (lo, hi) = (sent.iter().min().unwrap(), sent.iter().max().unwrap());
    assert!(hi - lo <= 2 * (64 << 10), "shares {lo}..{hi}");
    let pieces = s.stats(root).unwrap().pieces;
    let wakes = s.wakes();
    // Each piece wakes its leaf once, plus one hand-off; a herd would be ~N per round.
    assert!(
        wakes <= 2 * pieces + N as u64,
        "{wakes} wakes for {pieces} pieces"
    );
    assert!(
        polls <= 3 * pieces + 2 * N as u64,
        "{polls} polls for {pieces} pieces"
    );
}

/// With a driver task holding the timer, a waiter that never polls again (its future was
/// dropped without a cancel) strands only its own piece: the others are still served. In
/// holder mode the same dead waiter, holding the timer, would leave them asleep.
#[test]
fn driver_mode_dead_waiter_does_not_stall_others() {
    let (s, a, b, [_fa, fb], t) = two_waiting();
    let (fd, wd) = flag();
    // a holds the timer and "dies" (never polls again, never cancels). A driver starts:
    let mut at = s.poll_driver(ms(0), &wd);
    assert_eq!(at, Some(t), "the driver takes over the tree's deadline");
    let mut b_got = 0u64;
    let mut now = ms(0);
    let mut driver_seen = 0;
    for _ in 0..400 {
        if fb.0 .0.swap(0, Ordering::SeqCst) > 0 {
            loop {
                match s.poll_acquire(b, 1024, now, &fb.1).unwrap() {
                    Step::Grant(n) => {
                        s.settle(b, n, now).unwrap();
                        b_got += n;
                    }
                    Step::Sleep { until } => {
                        assert_eq!(until, None, "with a driver, waiters never hold the timer");
                        break;
                    }
                }
            }
        }
        let woken = fd.0.load(Ordering::SeqCst);
        if woken != driver_seen {
            // the driver was woken (a deadline moved earlier): it polls at once
            driver_seen = woken;
        } else {
            // the driver sleeps until its deadline
            now = at.expect("b waits, so the driver has a deadline");
        }
        at = s.poll_driver(now, &wd);
    }
    assert!(
        b_got >= 16 * 1024,
        "b was served {b_got} despite a dead waiter ahead of it"
    );
    let _ = (a, fd);
}

#[test]
fn driver_is_woken_when_deadline_moves_earlier() {
    let (s, a, _b, _f, t) = two_waiting();
    let (fd, wd) = flag();
    assert_eq!(s.poll_driver(ms(0), &wd), Some(t));
    let root = s.with(|st| st.tree().parent(a.node()).unwrap().unwrap());
    s.set_limit(
        root,
        Limits::new(Tier::per_second(1000 << 10).with_burst(1024)),
        ms(0),
    )
    .unwrap();
    assert_eq!(
        fd.0.load(Ordering::SeqCst),
        1,
        "an earlier deadline wakes the driver"
    );
    let t2 = s.poll_driver(ms(0), &wd).unwrap();
    assert!(t2 < t);
    assert!(s.has_driver());
}

#[test]
fn released_driver_hands_timer_back_to_waiters() {
    let (s, _a, b, [fa, fb], _t) = two_waiting();
    let (_fd, wd) = flag();
    assert!(s.poll_driver(ms(0), &wd).is_some());
    // taking over woke the old holder (a) so it drops its own timer
    assert_eq!(fa.0 .0.load(Ordering::SeqCst), 1);
    s.release_driver();
    assert!(!s.has_driver());
    // b is the only registered waiter left (a was woken): it is woken to take the timer
    assert_eq!(fb.0 .0.load(Ordering::SeqCst), 1);
    assert!(matches!(
        s.poll_acquire(b, 1024, ms(0), &fb.1).unwrap(),
        Step::Sleep { until: Some(_) }
    ));
}

#[test]
fn try_take_admits_exactly_the_burst_then_says_when() {
    let s = shared();
    // 10 per second, burst 10, under a node that is not limiting
    let root = s
        .insert_node(None, Limits::per_second(1 << 20), 1, ms(0))
        .unwrap();
    let leaf = s
        .insert_leaf(Some(root), Limits::per_second(10), 1, ms(0))
        .unwrap();
    for _ in 0..10 {
        s.try_take(leaf, 1, ms(0)).unwrap();
    }
    // the 11th: refused, with the instant (as an `acquire` would wait for it)
    assert_eq!(
        s.try_take(leaf, 1, ms(0)),
        Err(TakeError::NotYet {
            until: Some(ms(100))
        })
    );
    assert_eq!(s.stats(leaf.node()).unwrap().granted, 10);
    assert_eq!(s.stats(leaf.node()).unwrap().waiting, 0, "nothing held");
    s.try_take(leaf, 1, ms(100)).unwrap();
    // more than the burst: never at once
    assert_eq!(
        s.try_take(leaf, 11, ms(10_000)),
        Err(TakeError::TooLarge { max: 10 })
    );
    assert_eq!(s.try_take(leaf, 0, ms(10_000)), Err(TakeError::ZeroRequest));
    s.set_limit(leaf.node(), Limits::new(Tier::per_second(0)), ms(10_000))
        .unwrap();
    assert_eq!(
        s.try_take(leaf, 1, ms(10_000)),
        Err(TakeError::NotYet { until: None })
    );
    s.remove(leaf.node(), ms(10_000)).unwrap();
    assert_eq!(s.try_take(leaf, 1, ms(10_000)), Err(TakeError::Stale));
    assert_eq!(s.wakes(), 0);
}

/// `acquire` (what a waiting request limiter polls) is as exact as `try_take`: "10 per
/// second" admits 10 `acquire(1)` at once, not 11; the 11th sleeps until 100 ms, the 12th
/// until 200 ms; `check_deadline` (`acquire_before`) says the same instants.
#[test]
fn acquire_admits_exactly_the_burst_then_one_per_tenth_of_a_second() {
    use crate::request::AcquireError as E;
    let s = shared();
    let root = s
        .insert_node(None, Limits::per_second(1 << 20), 1, ms(0))
        .unwrap();
    let leaf = s
        .insert_leaf(Some(root), Limits::per_second(10), 1, ms(0))
        .unwrap();
    let (_f, w) = flag();
    for _ in 0..10 {
        assert_eq!(s.poll_acquire(leaf, 1, ms(0), &w).unwrap(), Step::Grant(1));
        s.settle(leaf, 1, ms(0)).unwrap();
    }
    assert_eq!(
        s.check_deadline(leaf, 1, ms(0), ms(99)),
        Err(E::Deadline {
            wait: Some(core::time::Duration::from_millis(100))
        })
    );
    assert_eq!(s.check_deadline(leaf, 2, ms(0), ms(200)), Ok(()));
    // the 11th at 100 ms, the 12th at 200 ms
    for (asked, due) in [(0, 100), (100, 200)] {
        assert_eq!(
            s.poll_acquire(leaf, 1, ms(asked), &w).unwrap(),
            Step::Sleep {
                until: Some(ms(due))
            }
        );
        assert_eq!(
            s.poll_acquire(leaf, 1, ms(due), &w).unwrap(),
            Step::Grant(1)
        );
        s.settle(leaf, 1, ms(due)).unwrap();
    }
    assert_eq!(s.stats(leaf.node()).unwrap().granted, 12);
    // `try_acquire` (a grant now or nothing) at the same instant: nothing
    assert!(matches!(
        s.try_acquire(leaf, 1, ms(200)).unwrap(),
        Decision::Wait { .. }
    ));
}

#[test]
fn check_deadline_says_how_long_past_the_deadline_and_reserves_nothing() {
    use crate::request::AcquireError as E;
    use core::time::Duration;
    let s = shared();
    // 10 per second, burst 10: 30 tokens take the burst, one last piece of debt (10) started
    // on one whole token, and 1.1 s to earn the 11 tokens between
    let leaf = s
        .insert_leaf(None, Limits::per_second(10), 1, ms(0))
        .unwrap();
    assert_eq!(s.check_deadline(leaf, 30, ms(0), ms(1_100)), Ok(()));
    assert_eq!(
        s.check_deadline(leaf, 30, ms(0), ms(1_099)),
        Err(E::Deadline {
            wait: Some(Duration::from_millis(1_100))
        })
    );
    // what the path can grant now is never refused, even past the deadline
    assert_eq!(s.check_deadline(leaf, 10, ms(5), ms(0)), Ok(()));
    let st = s.stats(leaf.node()).unwrap();
    assert_eq!((st.granted, st.waiting), (0, 0), "nothing reserved");
    assert_eq!(s.sleeping(), 0);
    // the wait counts from `now`: empty at 0 ms, 5 tokens at 500 ms, 6 more by 1.1 s (10 to
    // spend on the first piece, one whole token to start the last)
    s.try_take(leaf, 10, ms(0)).unwrap();
    assert_eq!(
        s.check_deadline(leaf, 20, ms(500), ms(600)),
        Err(E::Deadline {
            wait: Some(Duration::from_millis(600))
        })
    );
    assert_eq!(
        s.check_deadline(leaf, 0, ms(500), ms(600)),
        Err(E::ZeroRequest)
    );
    s.set_limit(leaf.node(), Limits::new(Tier::per_second(0)), ms(500))
        .unwrap();
    assert_eq!(
        s.check_deadline(leaf, 1, ms(500), Instant::MAX),
        Err(E::Deadline { wait: None })
    );
    s.remove(leaf.node(), ms(500)).unwrap();
    assert_eq!(s.check_deadline(leaf, 1, ms(500), ms(600)), Err(E::Stale));
}
