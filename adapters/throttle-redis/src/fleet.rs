//! The lease driver: one task per process that keeps a local node (normally the root of a
//! `throttle_io::Limiter`) at this process's share of the fleet limit. It is the only code
//! that talks to Redis for leases; the data path (reads, writes, `acquire`) only ever sees
//! the local tree, so it never waits on Redis.
//!
//! Runtime-agnostic: it sleeps on the [`throttle_io::Runtime`] it is given (tokio's,
//! smol's, async-std's) and uses redis-rs's async connection (feature `tokio` or `smol`).

use alloc::sync::Arc;
use core::future::{poll_fn, Future};
use core::pin::pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::Poll;
use core::time::Duration;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use redis::{AsyncConnectionConfig, Script};
use throttle_io::{BoxTimer, Limits, Node, Runtime, Timer};

use crate::config::LeaseConfig;
use crate::error::{random, CallError};
use crate::lease::{Call, Grant, LeaseState, LeaseStats, Usage};
use crate::name::LimitName;
use crate::scripts;
use crate::target::{Conn, Target};

/// One process's membership in a shared limit. Cheap to clone (one `Arc`).
///
/// Build it, then spawn [`SharedLimit::run`] on your runtime with the node it feeds:
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use throttle_redis::{LeaseConfig, LimitName, SharedLimit};
/// let limiter = throttle_tokio::limiter();
/// let root = limiter.node(throttle_tokio::Limits::per_second(0), 1)?;
/// let client = redis::Client::open("redis://127.0.0.1:6380/")?;
/// let shared = SharedLimit::new(client, LimitName::new("egress")?, LeaseConfig::new(40 << 20)?);
/// tokio::spawn(shared.run(root.clone(), throttle_tokio::Tokio));
/// // … connections, groups and leaves under `root`, as without Redis …
/// println!("{:?}", shared.stats());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SharedLimit(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    target: Target,
    name: LimitName,
    member: String,
    cfg: LeaseConfig,
    state: Mutex<LeaseState>,
    last_error: Mutex<Option<CallError>>,
    stop: AtomicBool,
    lease: Script,
    set_rate: Script,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SharedLimit {
    /// This process joins the limit `name` on `target` (a `redis::Client` converts into
    /// one), with a random member id. Nothing is sent until [`SharedLimit::run`] runs and
    /// the node has demand.
    pub fn new(target: impl Into<Target>, name: LimitName, cfg: LeaseConfig) -> SharedLimit {
        let member = format!("{}-{:016x}", std::process::id(), random());
        SharedLimit(Arc::new(Inner {
            target: target.into(),
            name,
            member,
            cfg,
            state: Mutex::new(LeaseState::new(cfg, Instant::now())),
            last_error: Mutex::new(None),
            stop: AtomicBool::new(false),
            lease: Script::new(scripts::LEASE),
            set_rate: Script::new(scripts::SET_RATE),
        }))
    }

    /// The member id this process reports under (`<pid>-<random>`).
    pub fn member(&self) -> &str {
        &self.0.member
    }

    /// Counters and the link state.
    pub fn stats(&self) -> LeaseStats {
        lock(&self.0.state).stats(Instant::now())
    }

    /// The last error of a call, if the last call failed.
    pub fn last_error(&self) -> Option<CallError> {
        *lock(&self.0.last_error)
    }

    /// Asks the driver to give the share back (one call with demand 0), set the node to 0
    /// and end. Takes effect at its next tick (at most a quarter lease). Dropping every
    /// handle but the driver's does the same.
    pub fn shutdown(&self) {
        self.0.stop.store(true, Ordering::Release);
    }

    /// Changes the fleet-wide rate for every member (they learn it at their next renewal,
    /// within 0.75 T; a decrease is fully in force one lease period later, as the members
    /// holding larger shares renew). Typed error if Redis cannot be reached in time.
    pub async fn set_rate(&self, rate: u64) -> Result<(), SetRateError> {
        if rate == 0 || rate > crate::config::MAX_RATE {
            return Err(SetRateError::Rate);
        }
        let cfg = self.connection_config();
        let mut con = self
            .0
            .target
            .connect(&cfg)
            .await
            .map_err(SetRateError::Call)?;
        let (rate, ver): (u64, u64) = self
            .0
            .set_rate
            .key(self.0.name.global_key())
            .arg(rate)
            .arg(random() & 0xF_FFFF)
            .arg(millis(self.0.cfg.policy.reserve()))
            .arg(ttl_ms(&self.0.cfg))
            .invoke_async(&mut con)
            .await
            .map_err(|e| SetRateError::Call(e.into()))?;
        lock(&self.0.state).adopt_rate(rate, ver);
        Ok(())
    }

    fn connection_config(&self) -> AsyncConnectionConfig {
        AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.0.cfg.connect_timeout))
            .set_response_timeout(Some(self.0.cfg.response_timeout))
    }

    /// The driver: keeps `node` at this process's share until [`SharedLimit::shutdown`] is
    /// called or every other handle of this `SharedLimit` is dropped; it then gives the
    /// share back, sets `node` to 0 and ends. Spawn it once per `SharedLimit` on the runtime
    /// `rt` belongs to. It samples the node every quarter lease (no I/O), calls Redis when a lease is due
    /// (about 1/(0.75 T) per second while busy, none while idle), and never holds a call
    /// longer than the timeouts; while a call is pending, the node still switches to the
    /// outage policy the moment its lease ends.
    pub fn run<R: Runtime>(&self, node: Node, rt: R) -> impl Future<Output = ()> + Send + 'static {
        let this = self.clone();
        async move { this.drive(node, rt).await }
    }

    async fn drive<R: Runtime>(self, node: Node, rt: R) {
        let inner = &self.0;
        let mut timer = rt.timer();
        let mut con: Option<Conn> = None;
        let mut applied: Option<Option<u64>> = None;
        let tick = inner.cfg.lease / 4;
        let cfg = self.connection_config();
        loop {
            // The driver's own clone is the last handle: nobody can use the limit any more.
            let stopping = inner.stop.load(Ordering::Acquire) || Arc::strong_count(&self.0) == 1;
            let now = rt.now();
            let st = node.stats();
            let usage = Usage {
                granted: st.granted,
                waiting: st.waiting > 0,
            };
            let call = {
                let mut s = lock(&inner.state);
                if stopping {
                    s.release_call()
                } else {
                    s.poll_call(now, usage)
                }
            };
            if let Some(call) = call {
                let sent = rt.now();
                let budget = if con.is_some() {
                    inner.cfg.response_timeout
                } else {
                    inner.cfg.connect_timeout + inner.cfg.response_timeout
                };
                let deadline = sent + budget + Duration::from_millis(5);
                let result = {
                    let fut = pin!(self.call(&mut con, &cfg, call));
                    self.race(fut, &rt, &mut timer, deadline, &node, &mut applied)
                        .await
                };
                let done = rt.now();
                let mut s = lock(&inner.state);
                match result {
                    Ok(grant) => {
                        s.on_reply(done, sent, grant);
                        *lock(&inner.last_error) = None;
                    }
                    Err(e) => {
                        s.on_error(done, random());
                        if e.reconnect() {
                            con = None;
                        }
                        *lock(&inner.last_error) = Some(e);
                    }
                }
            }
            if stopping {
                let _ = node.set_limit(Limits::per_second(0));
                lock(&inner.state).stopped();
                return;
            }
            let now = rt.now();
            if !apply(&inner.state, &node, now, &mut applied) {
                return; // the node is gone
            }
            let wake = lock(&inner.state)
                .poll_timeout(now)
                .map_or(now + tick, |t| t.min(now + tick));
            timer.reset(wake);
            poll_fn(|cx| timer.poll_expired(cx)).await;
        }
    }

    /// Awaits `fut` until `deadline`, applying the limit whenever the lease state changes on
    /// its own meanwhile (the lease ending during a slow call).
    async fn race<F, R>(
        &self,
        mut fut: core::pin::Pin<&mut F>,
        rt: &R,
        timer: &mut BoxTimer,
        deadline: Instant,
        node: &Node,
        applied: &mut Option<Option<u64>>,
    ) -> Result<Grant, CallError>
    where
        F: Future<Output = Result<Grant, CallError>>,
        R: Runtime,
    {
        loop {
            let now = rt.now();
            if now >= deadline {
                return Err(CallError::Timeout);
            }
            let wake = lock(&self.0.state)
                .poll_timeout(now)
                .map_or(deadline, |t| t.min(deadline));
            timer.reset(wake);
            let out = poll_fn(|cx| {
                if let Poll::Ready(v) = fut.as_mut().poll(cx) {
                    return Poll::Ready(Some(v));
                }
                timer.poll_expired(cx).map(|()| None)
            })
            .await;
            if let Some(v) = out {
                return v;
            }
            apply(&self.0.state, node, rt.now(), applied);
        }
    }

    async fn call(
        &self,
        con: &mut Option<Conn>,
        cfg: &AsyncConnectionConfig,
        call: Call,
    ) -> Result<Grant, CallError> {
        let inner = &self.0;
        if con.is_none() {
            *con = Some(inner.target.connect(cfg).await?);
        }
        let Some(c) = con.as_mut() else {
            return Err(CallError::Connection);
        };
        let v: Vec<i64> = inner
            .lease
            .key(inner.name.global_key())
            .key(inner.name.members_key())
            .arg(&inner.member)
            .arg(call.seq)
            .arg(call.weight)
            .arg(call.demand)
            .arg(call.used)
            .arg(call.last_share)
            .arg(call.lease_ms)
            .arg(call.hold_ms)
            .arg(call.rate)
            .arg(call.version)
            .arg(random() & 0xF_FFFF)
            .arg(ttl_ms(&inner.cfg))
            .arg(call.known_epoch)
            .invoke_async(c)
            .await?;
        let [share, lease_ms, target, epoch, rate, version, learning] = v[..] else {
            return Err(CallError::Reply);
        };
        let u = |x: i64| u64::try_from(x).map_err(|_| CallError::Reply);
        Ok(Grant {
            share: u(share)?,
            lease_ms: u(lease_ms)?,
            target: u(target)?,
            epoch: u(epoch)?,
            rate: u(rate)?,
            version: u(version)?,
            learning: learning != 0,
        })
    }
}

/// Applies the lease state's limit to the node if it changed; `false` if the node is gone.
fn apply(
    state: &Mutex<LeaseState>,
    node: &Node,
    now: Instant,
    applied: &mut Option<Option<u64>>,
) -> bool {
    let limit = lock(state).limit(now);
    if *applied == Some(limit) {
        return true;
    }
    let limits = match limit {
        Some(rate) => Limits::per_second(rate),
        None => Limits::UNLIMITED,
    };
    if node.set_limit(limits).is_err() {
        return false;
    }
    *applied = Some(limit);
    true
}

/// How long the server keeps a limit's keys after the last call: max(60 s, 3 × hold).
fn ttl_ms(cfg: &LeaseConfig) -> u64 {
    millis(cfg.policy.reserve()).saturating_mul(3).max(60_000)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Why [`SharedLimit::set_rate`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SetRateError {
    /// The rate was 0 or above [`crate::MAX_RATE`]; nothing was sent.
    Rate,
    /// The call failed; the rate may or may not have changed (retry).
    Call(CallError),
}

impl core::fmt::Display for SetRateError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SetRateError::Rate => f.write_str("the fleet rate must be between 1 and 2^50"),
            SetRateError::Call(e) => write!(f, "set_rate: {e}"),
        }
    }
}

impl core::error::Error for SetRateError {}

#[cfg(all(test, feature = "tokio"))]
mod tests {
    use super::*;
    use crate::local_server::LocalRedis;

    fn call(seq: u64, demand: u64) -> Call {
        Call {
            seq,
            demand,
            used: 0,
            last_share: 0,
            weight: 1,
            lease_ms: 200,
            hold_ms: 0,
            rate: 1000,
            version: 0,
            known_epoch: 0,
        }
    }

    #[tokio::test]
    async fn call_repeated_seq_is_answered_from_the_record() {
        if !LocalRedis::available() {
            println!("SKIPPED: redis-server not found");
            return;
        }
        let redis = LocalRedis::start().unwrap();
        let cfg = LeaseConfig::new(1000).unwrap();
        let name = LimitName::new("idem").unwrap();
        let a = SharedLimit::new(redis.client(), name.clone(), cfg);
        let b = SharedLimit::new(redis.client(), name, cfg);
        let conf = a.connection_config();
        let (mut ca, mut cb) = (None, None);
        assert_eq!(
            a.call(&mut ca, &conf, call(1, 1000)).await.unwrap().share,
            1000
        );
        // Everything is reserved by a: b gets nothing yet, though its fair part is half.
        let gb = b.call(&mut cb, &conf, call(1, 1000)).await.unwrap();
        assert_eq!((gb.share, gb.target), (0, 500));
        // a's reply was "lost": the retry with the same number gets the same grant back,
        // not a new computation (which would give 500).
        let again = a.call(&mut ca, &conf, call(1, 1000)).await.unwrap();
        assert_eq!(again.share, 1000);
        assert!(again.lease_ms <= 200);
        // The next number is a new call: a shrinks to its part, then b grows to its part.
        assert_eq!(
            a.call(&mut ca, &conf, call(2, 1000)).await.unwrap().share,
            500
        );
        assert_eq!(
            b.call(&mut cb, &conf, call(2, 1000)).await.unwrap().share,
            500
        );
        // Giving back (demand 0) frees it at once.
        assert_eq!(a.call(&mut ca, &conf, call(3, 0)).await.unwrap().share, 0);
        assert_eq!(
            b.call(&mut cb, &conf, call(3, 1000)).await.unwrap().share,
            1000
        );
    }
}
