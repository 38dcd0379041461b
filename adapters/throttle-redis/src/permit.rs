//! Permits for low rates (seed 003): `acquire()` hands out slots spaced at least
//! `min_interval` apart across every process, possibly in the future (at most `max_permits`
//! future slots outstanding, otherwise `None` at once), each usable only within its window.
//! One atomic script call per permit, on the server's clock.

use core::time::Duration;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use redis::Script;
use throttle_io::Timer as _;

use crate::config::ConfigError;
use crate::error::{CallError, PermitError};
use crate::name::LimitName;
use crate::scripts;
#[cfg(any(feature = "tokio", feature = "smol"))]
use crate::target::Conn;
use crate::target::{SyncConn, Target};

/// How permits are spaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PermitConfig {
    min_interval: Duration,
    max_permits: u32,
    window: Duration,
    timeout: Duration,
}

impl PermitConfig {
    /// Uses at least `min_interval` apart (1 ms ..= 1 day), at most `max_permits` future
    /// permits outstanding (0: only permits valid at once). The use window defaults to a
    /// tenth of `min_interval` (at least 1 ms, at most 1 s), the Redis timeouts to 300 ms.
    pub fn new(min_interval: Duration, max_permits: u32) -> Result<PermitConfig, ConfigError> {
        if min_interval < Duration::from_millis(1) || min_interval > Duration::from_secs(86_400) {
            return Err(ConfigError::Interval);
        }
        let window = (min_interval / 10).clamp(Duration::from_millis(1), Duration::from_secs(1));
        Ok(PermitConfig {
            min_interval,
            max_permits,
            window,
            timeout: Duration::from_millis(300),
        })
    }

    /// How long after `valid_at` a permit may still be used (1 ms ..= `min_interval`).
    /// Slots are `min_interval + window` apart, so that two uses anywhere in their windows
    /// are still `min_interval` apart: a wider window costs throughput.
    pub fn with_window(mut self, window: Duration) -> Result<PermitConfig, ConfigError> {
        if window < Duration::from_millis(1) || window > self.min_interval {
            return Err(ConfigError::Interval);
        }
        self.window = window;
        Ok(self)
    }

    /// Connect and response timeout of each call (non-zero).
    pub fn with_timeout(mut self, timeout: Duration) -> Result<PermitConfig, ConfigError> {
        if timeout.is_zero() {
            return Err(ConfigError::Timeout);
        }
        self.timeout = timeout;
        Ok(self)
    }
}

/// One slot, as seed 003 describes it. Times are the server's (Unix ms) plus their local
/// conservative equivalents: `valid_from()` is never earlier than the server's `valid_at`
/// and `expires()` never later than its `expires_at`, whatever the network delay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permit {
    /// How long to wait from the server's `now` until the permit is valid (0: now).
    pub time_to_wait: Duration,
    /// Server time (Unix ms) from which the permit may be used.
    pub valid_at: u64,
    /// Server time (Unix ms) from which it may no longer be used (forfeited).
    pub expires_at: u64,
    local_valid: Instant,
    local_expires: Instant,
}

impl Permit {
    /// Local instant from which the permit may be used.
    pub fn valid_from(&self) -> Instant {
        self.local_valid
    }

    /// Local instant from which it may no longer be used.
    pub fn expires(&self) -> Instant {
        self.local_expires
    }

    /// Whether it may be used at `now`.
    pub fn usable_at(&self, now: Instant) -> bool {
        now >= self.local_valid && now < self.local_expires
    }

    /// Blocks the thread until the permit is valid; `Err(Expired)` if its window has
    /// passed by then (use the permit right after `Ok`).
    pub fn wait_blocking(&self) -> Result<(), PermitError> {
        let now = Instant::now();
        if now < self.local_valid {
            std::thread::sleep(self.local_valid - now);
        }
        if Instant::now() < self.local_expires {
            Ok(())
        } else {
            Err(PermitError::Expired)
        }
    }

    /// Like [`Permit::wait_blocking`], sleeping on `rt`'s timer.
    pub async fn wait<R: throttle_io::Runtime>(&self, rt: &R) -> Result<(), PermitError> {
        if rt.now() < self.local_valid {
            let mut timer = rt.timer();
            timer.reset(self.local_valid);
            core::future::poll_fn(|cx| timer.poll_expired(cx)).await;
        }
        if rt.now() < self.local_expires {
            Ok(())
        } else {
            Err(PermitError::Expired)
        }
    }
}

/// A fleet-wide permit throttle. `Sync`: share it between threads or tasks.
pub struct Permits {
    target: Target,
    name: LimitName,
    cfg: PermitConfig,
    script: Script,
    sync_con: Mutex<Option<SyncConn>>,
    #[cfg(any(feature = "tokio", feature = "smol"))]
    async_con: Mutex<Option<Conn>>,
}

impl core::fmt::Debug for Permits {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Permits")
            .field("name", &self.name)
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl Permits {
    /// Permits of the limit `name` on `target` (a `redis::Client` converts into one).
    pub fn new(target: impl Into<Target>, name: LimitName, cfg: PermitConfig) -> Permits {
        Permits {
            target: target.into(),
            name,
            cfg,
            script: Script::new(scripts::PERMIT),
            sync_con: Mutex::new(None),
            #[cfg(any(feature = "tokio", feature = "smol"))]
            async_con: Mutex::new(None),
        }
    }

    fn args(&self) -> [u64; 4] {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let ttl = ms(self.cfg.min_interval + self.cfg.window).max(1000);
        [
            ms(self.cfg.min_interval),
            u64::from(self.cfg.max_permits),
            ms(self.cfg.window),
            ttl,
        ]
    }

    /// One permit, or `None` when `max_permits` future permits are already outstanding.
    /// Blocking (std): one round trip, bounded by the timeout.
    pub fn acquire_blocking(&self) -> Result<Option<Permit>, CallError> {
        let mut guard = self.sync_con.lock().unwrap_or_else(PoisonError::into_inner);
        if guard.is_none() {
            *guard = Some(self.target.connect_blocking(self.cfg.timeout)?);
        }
        let Some(con) = guard.as_mut() else {
            return Err(CallError::Connection);
        };
        let sent = Instant::now();
        let [mi, mp, win, ttl] = self.args();
        let r: Result<Vec<i64>, _> = self
            .script
            .key(self.name.permits_key())
            .arg(mi)
            .arg(mp)
            .arg(win)
            .arg(ttl)
            .invoke(&mut **con);
        match r {
            Ok(v) => decode(&v, sent, Instant::now()),
            Err(e) => {
                let e = CallError::from(e);
                if e.reconnect() {
                    *guard = None;
                }
                Err(e)
            }
        }
    }

    /// [`Permits::acquire_blocking`], then [`Permit::wait_blocking`]: returns once the
    /// permit is valid (`None` at once if none is available).
    pub fn acquire_and_wait_blocking(&self) -> Result<Option<Permit>, PermitError> {
        match self.acquire_blocking()? {
            Some(p) => p.wait_blocking().map(|()| Some(p)),
            None => Ok(None),
        }
    }

    /// One permit, or `None` (async; feature `tokio` or `smol`).
    #[cfg(any(feature = "tokio", feature = "smol"))]
    pub async fn acquire(&self) -> Result<Option<Permit>, CallError> {
        let con = self
            .async_con
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut con = match con {
            Some(c) => c,
            None => {
                let cfg = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(self.cfg.timeout))
                    .set_response_timeout(Some(self.cfg.timeout));
                let c = self.target.connect(&cfg).await?;
                *self
                    .async_con
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(c.clone());
                c
            }
        };
        let sent = Instant::now();
        let [mi, mp, win, ttl] = self.args();
        let r: Result<Vec<i64>, _> = self
            .script
            .key(self.name.permits_key())
            .arg(mi)
            .arg(mp)
            .arg(win)
            .arg(ttl)
            .invoke_async(&mut con)
            .await;
        match r {
            Ok(v) => decode(&v, sent, Instant::now()),
            Err(e) => {
                let e = CallError::from(e);
                if e.reconnect() {
                    *self
                        .async_con
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = None;
                }
                Err(e)
            }
        }
    }

    /// [`Permits::acquire`], then [`Permit::wait`] on `rt`.
    #[cfg(any(feature = "tokio", feature = "smol"))]
    pub async fn acquire_and_wait<R: throttle_io::Runtime>(
        &self,
        rt: &R,
    ) -> Result<Option<Permit>, PermitError> {
        match self.acquire().await? {
            Some(p) => p.wait(rt).await.map(|()| Some(p)),
            None => Ok(None),
        }
    }
}

/// Turns the script's reply into a permit. The server's `now` happened between `sent` and
/// `received`: counting the wait from `received` and the expiry from `sent` keeps the
/// local window inside the server's.
fn decode(v: &[i64], sent: Instant, received: Instant) -> Result<Option<Permit>, CallError> {
    let [ok, wait, valid_at, expires_at, now] = v[..] else {
        return Err(CallError::Reply);
    };
    if ok == 0 {
        return Ok(None);
    }
    let u = |x: i64| u64::try_from(x).map_err(|_| CallError::Reply);
    let (wait, valid_at, expires_at, now) = (u(wait)?, u(valid_at)?, u(expires_at)?, u(now)?);
    let time_to_wait = Duration::from_millis(wait);
    let local_valid = received.checked_add(time_to_wait).ok_or(CallError::Reply)?;
    let local_expires = sent
        .checked_add(Duration::from_millis(expires_at.saturating_sub(now)))
        .ok_or(CallError::Reply)?;
    Ok(Some(Permit {
        time_to_wait,
        valid_at,
        expires_at,
        local_valid,
        local_expires,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permit_config_bad_input_is_refused() {
        assert_eq!(
            PermitConfig::new(Duration::ZERO, 2),
            Err(ConfigError::Interval)
        );
        let c = PermitConfig::new(Duration::from_secs(3), 2).unwrap();
        assert_eq!(c.window, Duration::from_millis(300));
        assert_eq!(
            c.with_window(Duration::from_secs(4)),
            Err(ConfigError::Interval)
        );
        assert_eq!(c.with_timeout(Duration::ZERO), Err(ConfigError::Timeout));
    }

    #[test]
    fn reply_decoded_conservatively() {
        let sent = Instant::now();
        let received = sent + Duration::from_millis(4);
        let p = decode(&[1, 3000, 13_000, 13_300, 10_000], sent, received)
            .unwrap()
            .unwrap();
        assert_eq!(p.valid_from(), received + Duration::from_secs(3));
        assert_eq!(p.expires(), sent + Duration::from_millis(3300));
        assert_eq!(decode(&[0, 9000, 0, 0, 1], sent, received), Ok(None));
        assert_eq!(decode(&[1, 2], sent, received), Err(CallError::Reply));
    }
}
