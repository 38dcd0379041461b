//! The lease client, without I/O: what to ask Redis and when, and what rate the fed node may
//! run at, as a function of the replies, the errors and the time it is given.
//!
//! ```text
//!            waiting/used > 0            renew_at (0.75 T)           reply: share 0, demand 0
//!   Idle ───────────────────▶ Leased ◀──────────────┐   Leased ────────────────────────▶ Idle
//!                               │ call fails: retry   │
//!                               ▼ (same seq, backoff) │ reply
//!                           Degraded ─────────────────┘
//!                               │ lease ends
//!                               ▼
//!                 Outage: FailClosed → 0 │ LastShare → share for `hold`, then floor
//!                                        │ FailOpenUnbounded → unlimited
//! ```
//!
//! The driver ([`crate::SharedLimit::run`]) feeds it: every tick it samples the fed node
//! ([`Usage`]), asks [`LeaseState::poll_call`] whether to call Redis, reports the outcome with
//! [`LeaseState::on_reply`] or [`LeaseState::on_error`], applies [`LeaseState::limit`] to the
//! node, and sleeps until [`LeaseState::poll_timeout`] (or its next tick). Time only enters
//! as a parameter, so tests drive it with invented instants.

use core::time::Duration;
use std::time::Instant;

use crate::config::{LeaseConfig, OutagePolicy};

/// What the fed node did, sampled by the driver on each tick.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Cumulative tokens that went through the node (`NodeStats::granted`).
    pub granted: u64,
    /// Whether some leaf below the node was waiting when sampled.
    pub waiting: bool,
}

/// One call of the lease script: what this process reports and asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Call {
    /// Sequence number: a retry of an unanswered call reuses it, and the server answers a
    /// repeated number from its record instead of granting twice (idempotent).
    pub seq: u64,
    /// Reported demand, tokens per second (0: idle, gives the share back).
    pub demand: u64,
    /// Tokens spent since the last answered call.
    pub used: u64,
    /// The share this process last held outside a learning period: the most it may get
    /// back while the server is relearning after lost state.
    pub last_share: u64,
    /// Weight among busy members.
    pub weight: u16,
    /// Lease period asked for, ms.
    pub lease_ms: u64,
    /// How long after the lease the server must keep the share reserved (the outage policy's
    /// hold), ms.
    pub hold_ms: u64,
    /// The fleet rate this process knows of and its version (used to recreate lost state).
    pub rate: u64,
    /// Version of `rate` (the server's time of the change, ms; 0 for the configured one).
    pub version: u64,
    /// The server state's epoch this process last saw (0: none yet).
    pub known_epoch: u64,
}

/// The lease script's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Tokens per second this process may spend until the lease ends.
    pub share: u64,
    /// Remaining lease, ms from the server's `now`.
    pub lease_ms: u64,
    /// The weighted max-min share this process would get if the others had shrunk already.
    pub target: u64,
    /// Identity of the server state; a change means the state was lost and recreated.
    pub epoch: u64,
    /// The fleet rate and its version, as stored.
    pub rate: u64,
    /// See [`Call::version`].
    pub version: u64,
    /// Whether the server is relearning shares after lost state.
    pub learning: bool,
}

/// Whether this process's fleet limit is backed by Redis right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LinkState {
    /// The last call was answered (or no call was needed).
    Connected,
    /// Calls fail but the current lease still holds.
    Degraded,
    /// The lease ended and Redis does not answer: the outage policy lets tokens through.
    FailedOpen,
    /// The lease ended and Redis does not answer: rate 0.
    FailedClosed,
}

/// Counters a user can read ([`crate::SharedLimit::stats`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseStats {
    /// Where the link stands.
    pub state: LinkState,
    /// Share in force, tokens per second (`None`: unlimited, fail-open unbounded).
    pub share: Option<u64>,
    /// The fleet rate as last known.
    pub rate: u64,
    /// Answered calls.
    pub calls: u64,
    /// Failed calls (timeouts, connection errors, script errors).
    pub errors: u64,
    /// Answered calls that granted a non-zero share.
    pub leases: u64,
    /// Times the outage policy took over (once per outage).
    pub fallbacks: u64,
    /// Tokens leased but not spent before their lease ended (an estimate: share × lease
    /// time − spent), not given back to anyone.
    pub forfeited: u64,
    /// Times the server state was found lost and recreated (restart, eviction, failover to a
    /// replica without it, a `DEL`).
    pub state_lost: u64,
}

/// The lease client's state. See the module doc for the loop that drives it.
#[derive(Debug)]
pub struct LeaseState {
    cfg: LeaseConfig,
    /// The lease asked for now: `cfg.lease`, doubled while the share is steady (adaptive).
    cur_lease: Duration,
    seq: u64,
    in_flight: bool,
    share: u64,
    /// The share claimed back while the server relearns after lost state: the last share
    /// granted outside a learning period (a grant cut during learning must not lower it).
    claim: u64,
    target: u64,
    lease_start: Option<Instant>,
    lease_until: Option<Instant>,
    renew_at: Option<Instant>,
    idle: bool,
    failures: u32,
    next_attempt: Option<Instant>,
    in_outage: bool,
    epoch: Option<u64>,
    rate: u64,
    version: u64,
    reported_granted: u64,
    report_at: Instant,
    /// Tokens the node was allowed since the last report (∫ limit dt), to tell a saturated
    /// node (spends what it is allowed) from a demand-limited one, also across outages.
    allowed: u64,
    sent_allowed: u64,
    cur_limit: Option<u64>,
    last_tick: Instant,
    sent_granted: u64,
    sent_demand: u64,
    stats: LeaseStats,
}

/// Longest pause between two attempts while Redis does not answer (before jitter): keeps the
/// first grant after a restart well under a second.
const MAX_BACKOFF: Duration = Duration::from_millis(400);

impl LeaseState {
    /// A client that has no lease yet (its node runs at 0 until the first grant, or as the
    /// outage policy says if Redis does not answer).
    pub fn new(cfg: LeaseConfig, now: Instant) -> LeaseState {
        LeaseState {
            cfg,
            cur_lease: cfg.lease,
            seq: 1,
            in_flight: false,
            share: 0,
            claim: 0,
            target: 0,
            lease_start: None,
            lease_until: None,
            renew_at: None,
            idle: true,
            failures: 0,
            next_attempt: None,
            in_outage: false,
            epoch: None,
            rate: cfg.rate,
            version: 0,
            reported_granted: 0,
            report_at: now,
            allowed: 0,
            sent_allowed: 0,
            cur_limit: Some(0),
            last_tick: now,
            sent_granted: 0,
            sent_demand: 0,
            stats: LeaseStats {
                state: LinkState::Connected,
                share: Some(0),
                rate: cfg.rate,
                calls: 0,
                errors: 0,
                leases: 0,
                fallbacks: 0,
                forfeited: 0,
                state_lost: 0,
            },
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LeaseConfig {
        &self.cfg
    }

    /// Feeds one sample of the node and returns the call to make now, if any. At most one
    /// call is in flight: after `Some`, the next is only returned once [`Self::on_reply`] or
    /// [`Self::on_error`] was called. Call it on every tick (e.g. every T/4); it costs no I/O.
    pub fn poll_call(&mut self, now: Instant, usage: Usage) -> Option<Call> {
        self.account(now);
        if self.in_flight {
            return None;
        }
        let used = usage.granted.saturating_sub(self.reported_granted);
        let due = if let Some(at) = self.next_attempt {
            now >= at
        } else if self.idle {
            usage.waiting || used > 0
        } else {
            // Renewal time, or nothing went through for a whole base lease period and nobody
            // waits: give the share back now rather than at the end of a long lease.
            self.renew_at.is_none_or(|r| now >= r)
                || (self.share > 0
                    && used == 0
                    && !usage.waiting
                    && now.saturating_duration_since(self.report_at) >= self.cfg.lease)
        };
        if !due {
            return None;
        }
        let demand = self.demand(now, usage, used);
        self.in_flight = true;
        self.sent_allowed = self.allowed;
        self.sent_granted = usage.granted;
        self.sent_demand = demand;
        Some(Call {
            seq: self.seq,
            demand,
            used,
            last_share: self.claim,
            weight: self.cfg.weight,
            lease_ms: millis(self.cur_lease),
            hold_ms: millis(self.cfg.policy.reserve()),
            rate: self.rate,
            version: self.version,
            known_epoch: self.epoch.unwrap_or(0),
        })
    }

    /// The call that gives the share back (demand 0) when the process leaves; `None` if it
    /// holds nothing or a call is in flight.
    pub fn release_call(&mut self) -> Option<Call> {
        if self.in_flight || (self.idle && self.share == 0) {
            return None;
        }
        self.in_flight = true;
        self.sent_demand = 0;
        Some(Call {
            seq: self.seq,
            demand: 0,
            used: 0,
            last_share: self.share,
            weight: self.cfg.weight,
            lease_ms: millis(self.cfg.lease),
            hold_ms: 0,
            rate: self.rate,
            version: self.version,
            known_epoch: self.epoch.unwrap_or(0),
        })
    }

    /// Adds what the limit in force allowed since the last tick.
    fn account(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last_tick);
        self.last_tick = self.last_tick.max(now);
        let add = match self.cur_limit {
            Some(rate) => {
                u64::try_from(u128::from(rate) * dt.as_micros() / 1_000_000).unwrap_or(u64::MAX)
            }
            None => u64::MAX / 4, // unlimited: never "spent all it was allowed"
        };
        self.allowed = self.allowed.saturating_add(add);
    }

    /// Demand to report: the whole rate when the node is saturated (it spent ≥ 90 % of what
    /// its limit allowed since the last report, or it waits and was allowed nothing), 0 when
    /// nothing went through and nobody waits, otherwise 1.25 × the measured rate (room to
    /// grow), but not below half the current share. Waiters alone do not mean saturation:
    /// a leaf may wait on its own, lower limit.
    fn demand(&self, now: Instant, usage: Usage, used: u64) -> u64 {
        let elapsed_ms = millis(now.saturating_duration_since(self.report_at)).max(1);
        let measured = used.saturating_mul(1000) / elapsed_ms;
        let hungry = (usage.waiting && self.allowed == 0)
            || (self.allowed > 0 && used.saturating_mul(10) >= self.allowed.saturating_mul(9));
        if hungry {
            self.rate
        } else if used == 0 && !usage.waiting {
            0
        } else {
            // At most halving per call: a process that missed the CPU for a moment (a busy
            // machine, a pause) is not mistaken for one that wants less; a truly
            // demand-limited one still gets there in a few lease periods.
            (measured.saturating_mul(5) / 4 + 1)
                .max(self.share / 2)
                .min(self.rate)
        }
    }

    /// The answer to the call in flight, received at `now`; `sent_at` is when it was sent
    /// (the lease is counted from there: conservative, no clock offset needed).
    pub fn on_reply(&mut self, now: Instant, sent_at: Instant, grant: Grant) {
        self.account(now);
        self.allowed = self.allowed.saturating_sub(self.sent_allowed);
        self.sent_allowed = 0;
        self.cur_limit = Some(grant.share);
        self.in_flight = false;
        self.failures = 0;
        self.next_attempt = None;
        self.in_outage = false;
        self.seq = self.seq.wrapping_add(1);
        self.stats.calls += 1;
        if grant.share > 0 {
            self.stats.leases += 1;
        }
        if self.epoch.is_some_and(|e| e != grant.epoch) {
            self.stats.state_lost += 1;
        }
        self.epoch = Some(grant.epoch);
        // Forfeited: what the previous lease allowed minus what went through under it.
        if let (Some(start), Some(until)) = (self.lease_start, self.lease_until) {
            let span = until.min(now).saturating_duration_since(start);
            let allowed = (u128::from(self.share) * span.as_millis() / 1000) as u64;
            let used = self.sent_granted.saturating_sub(self.reported_granted);
            self.stats.forfeited = self
                .stats
                .forfeited
                .saturating_add(allowed.saturating_sub(used));
        }
        if grant.version >= self.version {
            self.rate = grant.rate;
            self.version = grant.version;
        }
        let steady = grant.share == self.share
            && grant.share >= grant.target
            && !grant.learning
            && self.sent_demand != 0;
        self.cur_lease = if steady {
            (self.cur_lease * 2).min(self.cfg.max_lease)
        } else {
            self.cfg.lease
        };
        self.share = grant.share;
        if !grant.learning {
            self.claim = grant.share;
        }
        self.target = grant.target;
        self.idle = grant.share == 0 && self.sent_demand == 0;
        // Never longer than asked for (a corrupt reply must not stretch it, nor overflow).
        let lease = Duration::from_millis(grant.lease_ms).min(self.cfg.max_lease);
        self.lease_start = Some(sent_at);
        self.lease_until = Some(sent_at + lease);
        // Renew at 3/4 of the lease; a member still waiting for its target asks twice as
        // often so that it picks up capacity freed by the others quickly.
        let renew = if self.share < self.target {
            lease / 2
        } else {
            lease * 3 / 4
        };
        self.renew_at = Some(sent_at + renew);
        self.reported_granted = self.sent_granted;
        self.report_at = now;
    }

    /// The call in flight failed at `now` (timeout, connection, script error). The next
    /// attempt reuses its sequence number, after a backoff of 25 ms doubling up to 400 ms,
    /// spread over its upper half by `jitter` (any random number).
    pub fn on_error(&mut self, now: Instant, jitter: u64) {
        self.in_flight = false;
        self.failures = self.failures.saturating_add(1);
        self.stats.errors += 1;
        let base = Duration::from_millis(25)
            .saturating_mul(1 << self.failures.min(5))
            .min(MAX_BACKOFF);
        let half = millis(base) / 2;
        let wait = Duration::from_millis(half + jitter % (half + 1));
        self.next_attempt = Some(now + wait);
    }

    /// The rate the fed node may run at now, tokens per second (`None`: unlimited). Call it
    /// at least on every tick and at every [`Self::poll_timeout`] instant, and apply the
    /// result at once: what it returns is taken to be in force until the next call.
    pub fn limit(&mut self, now: Instant) -> Option<u64> {
        self.account(now);
        let l = self.limit_at(now);
        self.cur_limit = l;
        l
    }

    fn limit_at(&mut self, now: Instant) -> Option<u64> {
        if self.lease_until.is_some_and(|u| now < u) {
            return Some(self.share);
        }
        if self.idle && self.failures == 0 {
            return Some(0);
        }
        if !self.in_outage {
            self.in_outage = true;
            self.stats.fallbacks += 1;
        }
        match self.cfg.policy {
            OutagePolicy::FailClosed => Some(0),
            OutagePolicy::LastShare { hold, floor } => {
                if self.lease_until.is_some_and(|u| now < u + hold) {
                    Some(self.share)
                } else {
                    Some(floor)
                }
            }
            OutagePolicy::FailOpenUnbounded => None,
        }
    }

    /// The next instant at which [`Self::poll_call`] or [`Self::limit`] may answer
    /// differently without a new sample (renewal, lease end, hold end, next attempt).
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        let hold = self.cfg.policy.reserve();
        let mut next: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t.filter(|&t| t > now) {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        consider(self.next_attempt);
        if !self.idle {
            consider(self.renew_at);
        }
        consider(self.lease_until);
        consider(self.lease_until.map(|u| u + hold));
        next
    }

    /// Counters and the link state at `now`.
    pub fn stats(&self, now: Instant) -> LeaseStats {
        let mut s = self.stats;
        s.rate = self.rate;
        let leased = self.lease_until.is_some_and(|u| now < u);
        s.state = if self.failures == 0 {
            LinkState::Connected
        } else if leased {
            LinkState::Degraded
        } else {
            match self.cfg.policy {
                OutagePolicy::FailClosed => LinkState::FailedClosed,
                OutagePolicy::LastShare { hold, floor } => {
                    let holding = self.lease_until.is_some_and(|u| now < u + hold);
                    if (holding && self.share > 0) || floor > 0 {
                        LinkState::FailedOpen
                    } else {
                        LinkState::FailedClosed
                    }
                }
                OutagePolicy::FailOpenUnbounded => LinkState::FailedOpen,
            }
        };
        s.share = if leased || (self.idle && self.failures == 0) {
            Some(self.share)
        } else {
            match self.cfg.policy {
                OutagePolicy::FailClosed => Some(0),
                OutagePolicy::LastShare { hold, floor } => {
                    if self.lease_until.is_some_and(|u| now < u + hold) {
                        Some(self.share)
                    } else {
                        Some(floor)
                    }
                }
                OutagePolicy::FailOpenUnbounded => None,
            }
        };
        s
    }

    /// The driver has ended: no lease, no calls; the stats say rate 0 until a new driver runs.
    pub fn stopped(&mut self) {
        self.in_flight = false;
        self.share = 0;
        self.lease_until = None;
        self.renew_at = None;
        self.idle = true;
        self.failures = 0;
        self.next_attempt = None;
    }

    /// Adopts a fleet rate this process changed itself (see [`crate::SharedLimit::set_rate`]).
    pub fn adopt_rate(&mut self, rate: u64, version: u64) {
        if version >= self.version {
            self.rate = rate;
            self.version = version;
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_millis(200);

    fn cfg(policy: OutagePolicy) -> LeaseConfig {
        LeaseConfig::new(1000).unwrap().with_policy(policy).unwrap()
    }

    fn grant(share: u64, target: u64, epoch: u64) -> Grant {
        Grant {
            share,
            lease_ms: 200,
            target,
            epoch,
            rate: 1000,
            version: 0,
            learning: false,
        }
    }

    fn busy(granted: u64) -> Usage {
        Usage {
            granted,
            waiting: true,
        }
    }

    #[test]
    fn idle_no_demand_makes_no_call() {
        let t0 = Instant::now();
        let mut s = LeaseState::new(cfg(OutagePolicy::FailClosed), t0);
        for i in 0..10 {
            let now = t0 + T * i;
            assert_eq!(s.poll_call(now, Usage::default()), None);
            assert_eq!(s.limit(now), Some(0));
        }
        assert_eq!(s.stats(t0).fallbacks, 0);
    }

    #[test]
    fn idle_waiter_calls_then_renews_at_three_quarters() {
        let t0 = Instant::now();
        let mut s = LeaseState::new(cfg(OutagePolicy::FailClosed), t0);
        let c = s.poll_call(t0, busy(0)).unwrap();
        assert_eq!((c.seq, c.demand), (1, 1000));
        assert_eq!(s.poll_call(t0, busy(0)), None, "one call in flight");
        s.on_reply(t0, t0, grant(500, 500, 7));
        assert_eq!(s.limit(t0), Some(500));
        assert_eq!(s.poll_call(t0 + T / 2, busy(50)), None);
        let c = s.poll_call(t0 + T * 3 / 4, busy(75)).unwrap();
        assert_eq!((c.seq, c.used, c.last_share), (2, 75, 500));
    }

    #[test]
    fn leased_goes_idle_reports_zero_demand_then_stops_calling() {
        let t0 = Instant::now();
        let mut s = LeaseState::new(cfg(OutagePolicy::FailClosed), t0);
        s.poll_call(t0, busy(0)).unwrap();
        s.on_reply(t0, t0, grant(500, 500, 7));
        let at = t0 + T;
        let c = s.poll_call(at, Usage::default()).unwrap();
        assert_eq!(c.demand, 0);
        s.on_reply(at, at, grant(0, 0, 7));
        for i in 1..20 {
            assert_eq!(s.poll_call(at + T * i, Usage::default()), None);
        }
        assert_eq!(s.limit(at + T * 5), Some(0));
        assert_eq!(s.stats(at + T * 5).state, LinkState::Connected);
    }

    #[test]
    fn demand_limited_reports_measured_rate_with_headroom() {
        let t0 = Instant::now();
        let mut s = LeaseState::new(cfg(OutagePolicy::FailClosed), t0);
        s.poll_call(t0, busy(0)).unwrap();
        s.on_reply(t0, t0, grant(800, 800, 1));
        // 150 ms at 400/s = 60 tokens, nobody waiting.
        let at = t0 + T * 3 / 4;
        for i in 0..3u32 {
            let u = Usage {
                granted: 20 * u64::from(i),
                waiting: false,
            };
            assert_eq!(s.poll_call(t0 + T / 4 * i, u), None);
        }
        let c = s
            .poll_call(
                at,
                Usage {
                    granted: 60,
                    waiting: false,
                },
            )
            .unwrap();
        assert_eq!(c.demand, 400 * 5 / 4 + 1);
    }

    #[test]
    fn demand_falls_at_most_by_half_per_call() {
        let t0 = Instant::now();
        let mut s = LeaseState::new(cfg(OutagePolicy::FailClosed), t0);
        s.poll_call(t0, busy(0)).unwrap();
        s.on_reply(t0, t0, grant(800, 800, 1));
        let quiet = |g| Usage {
            granted: g,
            waiting: false,
        };
        // 15 tokens in 150 ms (100/s) under an 800/s share: demand 400, not 126.
        let c = s.poll_call(t0 + T * 3 / 4, quiet(15)).unwrap();
        assert_eq!(c.demand, 400);
    }

    #[test]
    fn steady_share_doubles_the_lease_up_to_max_and_a_change_resets_it() {
        let t0 = Instant::now();
        let c = cfg(OutagePolicy::FailClosed)
            .with_max_lease(Duration::from_millis(800))
            .unwrap();
        let mut s = LeaseState::new(c, t0);
        let mut now = t0;
        let mut asked = Vec::new();
        let mut granted = 0;
        for share in [500, 500, 500, 500, 500, 300, 300] {
            let call = loop {
                granted += 10;
                if let Some(c) = s.poll_call(now, busy(granted)) {
                    break c;
                }
                now += Duration::from_millis(10);
            };
            asked.push(call.lease_ms);
            let mut g = grant(share, share, 1);
            g.lease_ms = call.lease_ms;
            s.on_reply(now, now, g);
        }
        assert_eq!(asked, [200, 200, 400, 800, 800, 800, 200]);
    }

    #[test]
    fn long_lease_nothing_spent_gives_the_share_back_early() {
        let t0 = Instant::now();
        let c = cfg(OutagePolicy::FailClosed)
            .with_max_lease(Duration::from_secs(2))
            .unwrap();
        let mut s = LeaseState::new(c, t0);
        s.poll_call(t0, busy(0)).unwrap();
        let mut g = grant(500, 500, 1);
        g.lease_ms = 2000;
        s.on_reply(t0, t0, g);
        let quiet = Usage {
            granted: 0,
            waiting: false,
        };
        assert_eq!(s.poll_call(t0 + T / 2, quiet), None);
        let c = s.poll_call(t0 + T, quiet).unwrap();
        assert_eq!(c.demand, 0);
    }

    #[test]
    fn renewal_fails_retries_same_seq_with_backoff() {
        let t0 = Instant::now();
        let mut s = LeaseState::new(cfg(OutagePolicy::FailClosed), t0);
        s.poll_call(t0, busy(0)).unwrap();
        s.on_reply(t0, t0, grant(500, 500, 1));
        let at = t0 + T * 3 / 4;
        let c = s.poll_call(at, busy(10)).unwrap();
        s.on_error(at, 0);
        assert_eq!(s.stats(at).state, LinkState::Degraded);
        assert_eq!(s.poll_call(at, busy(10)), None, "backoff");
        let c2 = s
            .poll_call(at + Duration::from_millis(50), busy(10))
            .unwrap();
        assert_eq!(c2.seq, c.seq);
    }

    #[test]
    fn lease_ends_during_outage_fail_closed_is_zero() {
        let t0 = Instant::now();
        let mut s = LeaseState::new(cfg(OutagePolicy::FailClosed), t0);
        s.poll_call(t0, busy(0)).unwrap();
        s.on_reply(t0, t0, grant(500, 500, 1));
        s.poll_call(t0 + T * 3 / 4, busy(1)).unwrap();
        s.on_error(t0 + T * 3 / 4, 0);
        assert_eq!(s.limit(t0 + T - Duration::from_millis(1)), Some(500));
        assert_eq!(s.limit(t0 + T), Some(0));
        assert_eq!(s.stats(t0 + T).state, LinkState::FailedClosed);
        assert_eq!(s.stats(t0 + T).fallbacks, 1);
    }

    #[test]
    fn lease_ends_during_outage_last_share_holds_then_floor() {
        let t0 = Instant::now();
        let hold = Duration::from_secs(2);
        let mut s = LeaseState::new(cfg(OutagePolicy::LastShare { hold, floor: 7 }), t0);
        s.poll_call(t0, busy(0)).unwrap();
        s.on_reply(t0, t0, grant(500, 500, 1));
        s.poll_call(t0 + T * 3 / 4, busy(1)).unwrap();
        s.on_error(t0 + T * 3 / 4, 0);
        assert_eq!(s.limit(t0 + T + hold / 2), Some(500));
        assert_eq!(s.stats(t0 + T + hold / 2).state, LinkState::FailedOpen);
        assert_eq!(s.limit(t0 + T + hold), Some(7));
        assert_eq!(s.poll_timeout(t0 + T), Some(t0 + T + hold));
    }

    #[test]
    fn lease_ends_during_outage_unbounded_is_unlimited() {
        let t0 = Instant::now();
        let mut s = LeaseState::new(cfg(OutagePolicy::FailOpenUnbounded), t0);
        s.poll_call(t0, busy(0)).unwrap();
        s.on_error(t0, 0);
        assert_eq!(s.limit(t0), None);
        assert_eq!(s.stats(t0).share, None);
    }

    #[test]
    fn reply_with_new_epoch_counts_lost_state() {
        let t0 = Instant::now();
        let mut s = LeaseState::new(cfg(OutagePolicy::FailClosed), t0);
        s.poll_call(t0, busy(0)).unwrap();
        s.on_reply(t0, t0, grant(500, 500, 1));
        let at = t0 + T;
        let c = s.poll_call(at, busy(100)).unwrap();
        assert_eq!(c.last_share, 500);
        s.on_reply(at, at, grant(500, 500, 2));
        assert_eq!(s.stats(at).state_lost, 1);
    }

    #[test]
    fn grant_cut_while_learning_keeps_the_claim() {
        let t0 = Instant::now();
        let mut s = LeaseState::new(cfg(OutagePolicy::FailClosed), t0);
        s.poll_call(t0, busy(0)).unwrap();
        s.on_reply(t0, t0, grant(500, 500, 1));
        let at = t0 + T;
        s.poll_call(at, busy(100)).unwrap();
        let mut g = grant(0, 500, 2);
        g.learning = true;
        s.on_reply(at, at, g);
        let c = s.poll_call(at + T, busy(100)).unwrap();
        assert_eq!(c.last_share, 500, "claim kept through a cut grant");
        s.on_reply(at + T, at + T, grant(300, 300, 2));
        let c = s.poll_call(at + T * 2, busy(160)).unwrap();
        assert_eq!(c.last_share, 300, "claim follows grants after learning");
    }

    #[test]
    fn outage_held_at_zero_then_reply_reports_saturation() {
        let t0 = Instant::now();
        let mut s = LeaseState::new(cfg(OutagePolicy::FailClosed), t0);
        s.poll_call(t0, busy(0)).unwrap();
        s.on_reply(t0, t0, grant(1000, 1000, 1));
        assert_eq!(s.limit(t0), Some(1000));
        // Renewal fails; the lease ends at 200 ms; Redis is back 3 s later.
        let at = t0 + T * 3 / 4;
        s.poll_call(at, busy(150)).unwrap();
        s.on_error(at, 0);
        assert_eq!(s.limit(t0 + T), Some(0));
        let mut now = t0 + T;
        while now < t0 + Duration::from_secs(3) {
            now += Duration::from_millis(50);
            if s.poll_call(now, busy(200)).is_some() {
                s.on_error(now, 0);
            }
            s.limit(now);
        }
        // 200 tokens in 3.2 s is a low rate, but it is all the limit allowed: saturated.
        now += Duration::from_millis(400);
        let c = s.poll_call(now, busy(200)).unwrap();
        assert_eq!(c.demand, 1000);
    }

    #[test]
    fn share_below_target_renews_at_half_lease() {
        let t0 = Instant::now();
        let mut s = LeaseState::new(cfg(OutagePolicy::FailClosed), t0);
        s.poll_call(t0, busy(0)).unwrap();
        s.on_reply(t0, t0, grant(0, 500, 1));
        assert_eq!(s.limit(t0), Some(0));
        assert!(s
            .poll_call(t0 + T / 2 - Duration::from_millis(1), busy(0))
            .is_none());
        assert!(s.poll_call(t0 + T / 2, busy(0)).is_some());
    }
}
