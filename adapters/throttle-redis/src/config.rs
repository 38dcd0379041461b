//! What a process asks of the fleet: the fleet-wide rate, its weight, the lease period, the
//! Redis timeouts and what to do while Redis does not answer.

use core::fmt;
use core::time::Duration;

/// Highest fleet-wide rate accepted, in tokens per second (2^50, about 1 PiB/s): keeps every
/// product in the scripts exact in Lua's doubles (2^53).
pub const MAX_RATE: u64 = 1 << 50;

/// What a process does once its lease has expired and Redis still does not answer.
///
/// The default is [`OutagePolicy::LastShare`] with a 10 s hold and a floor of 0: the fleet
/// keeps running at the shares it had for 10 s (Redis hiccups, failovers and restarts cost
/// no throughput), then stops. It cannot overshoot: the server keeps a silent member's share
/// reserved for as long as that member may still spend it (see the crate's README).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OutagePolicy {
    /// Rate 0 from the end of the lease until Redis answers again.
    FailClosed,
    /// Keep the last share for `hold` after the lease ends, then run at `floor` tokens per
    /// second until Redis answers. The server reserves the share for `hold` too, so the fleet
    /// stays within its limit as long as `floor` is 0 (each member's floor adds to the total).
    LastShare {
        /// How long the last share is kept after the lease ends.
        hold: Duration,
        /// Rate after `hold`, tokens per second.
        floor: u64,
    },
    /// No fleet limit at all (the fed node becomes unlimited) until Redis answers: the total
    /// is unbounded during the outage. The local tree's other limits still apply.
    FailOpenUnbounded,
}

impl Default for OutagePolicy {
    fn default() -> Self {
        OutagePolicy::LastShare {
            hold: Duration::from_secs(10),
            floor: 0,
        }
    }
}

impl OutagePolicy {
    /// How long after the end of its lease the server keeps a silent member's share reserved.
    pub fn reserve(&self) -> Duration {
        match self {
            OutagePolicy::LastShare { hold, .. } => *hold,
            _ => Duration::ZERO,
        }
    }
}

/// One process's view of a shared limit. Build with [`LeaseConfig::new`], adjust with the
/// `with_*` methods (each checks its input).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseConfig {
    pub(crate) rate: u64,
    pub(crate) weight: u16,
    pub(crate) lease: Duration,
    pub(crate) max_lease: Duration,
    pub(crate) policy: OutagePolicy,
    pub(crate) response_timeout: Duration,
    pub(crate) connect_timeout: Duration,
}

/// Why a configuration was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigError {
    /// The fleet rate was 0 (use a rate and pause the local tree instead) or above
    /// [`MAX_RATE`].
    Rate,
    /// The weight was 0.
    Weight,
    /// The lease period was outside 20 ms ..= 10 s.
    Lease,
    /// A timeout was zero or longer than the lease period.
    Timeout,
    /// The outage hold was longer than one hour.
    Hold,
    /// Permits: `min_interval` zero or above one day, or the use window zero or longer than
    /// `min_interval`.
    Interval,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigError::Rate => "the fleet rate must be between 1 and 2^50 tokens per second",
            ConfigError::Weight => "the weight must be at least 1",
            ConfigError::Lease => "the lease period must be between 20 ms and 10 s",
            ConfigError::Timeout => "timeouts must be non-zero and shorter than the lease",
            ConfigError::Hold => "the outage hold must be at most one hour",
            ConfigError::Interval => {
                "min_interval must be in 1 ms ..= 1 day and the use window in 1 ms ..= min_interval"
            }
        })
    }
}

impl core::error::Error for ConfigError {}

impl LeaseConfig {
    /// `rate` tokens per second shared by the whole fleet; weight 1, lease period 200 ms,
    /// response timeout 150 ms, connect timeout 200 ms (both capped at the lease period), the
    /// default [`OutagePolicy`].
    pub fn new(rate: u64) -> Result<LeaseConfig, ConfigError> {
        if rate == 0 || rate > MAX_RATE {
            return Err(ConfigError::Rate);
        }
        Ok(LeaseConfig {
            rate,
            weight: 1,
            lease: Duration::from_millis(200),
            max_lease: Duration::from_millis(200),
            policy: OutagePolicy::default(),
            response_timeout: Duration::from_millis(150),
            connect_timeout: Duration::from_millis(200),
        })
    }

    /// This process's weight among the busy members (weighted max-min by demand).
    pub fn with_weight(mut self, weight: u16) -> Result<LeaseConfig, ConfigError> {
        if weight == 0 {
            return Err(ConfigError::Weight);
        }
        self.weight = weight;
        Ok(self)
    }

    /// The lease period T (20 ms ..= 10 s): a busy process calls Redis about `1/(0.75 T)`
    /// times per second; shares move within about 2 T. Timeouts longer than T are cut to T;
    /// the adaptive maximum ([`LeaseConfig::with_max_lease`]) is raised to T if below.
    pub fn with_lease(mut self, lease: Duration) -> Result<LeaseConfig, ConfigError> {
        if lease < Duration::from_millis(20) || lease > Duration::from_secs(10) {
            return Err(ConfigError::Lease);
        }
        self.lease = lease;
        self.max_lease = self.max_lease.max(lease);
        self.response_timeout = self.response_timeout.min(lease);
        self.connect_timeout = self.connect_timeout.min(lease);
        Ok(self)
    }

    /// Adaptive lease size (off by default: `max` = the lease period): while this process's
    /// share stays the same from one grant to the next, and it is not waiting for more, each
    /// lease doubles, up to `max` (lease ..= 10 s); any change brings it back to the lease
    /// period. Fewer calls for a steady fleet (about 1/(0.75 max) per second), at a price:
    /// a newcomer, a rate change or an outage policy is seen up to 0.75 `max` later.
    pub fn with_max_lease(mut self, max: Duration) -> Result<LeaseConfig, ConfigError> {
        if max < self.lease || max > Duration::from_secs(10) {
            return Err(ConfigError::Lease);
        }
        self.max_lease = max;
        Ok(self)
    }

    /// The outage policy.
    pub fn with_policy(mut self, policy: OutagePolicy) -> Result<LeaseConfig, ConfigError> {
        if policy.reserve() > Duration::from_secs(3600) {
            return Err(ConfigError::Hold);
        }
        self.policy = policy;
        Ok(self)
    }

    /// How long one Redis call (response) and one connection attempt may take.
    pub fn with_timeouts(
        mut self,
        response: Duration,
        connect: Duration,
    ) -> Result<LeaseConfig, ConfigError> {
        if response.is_zero() || connect.is_zero() || response > self.lease || connect > self.lease
        {
            return Err(ConfigError::Timeout);
        }
        self.response_timeout = response;
        self.connect_timeout = connect;
        Ok(self)
    }

    /// The fleet-wide rate this process knows of (tokens per second).
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// The lease period.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// The outage policy.
    pub fn policy(&self) -> OutagePolicy {
        self.policy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_bad_input_is_refused() {
        assert_eq!(LeaseConfig::new(0), Err(ConfigError::Rate));
        assert_eq!(LeaseConfig::new(MAX_RATE + 1), Err(ConfigError::Rate));
        let c = LeaseConfig::new(1000).unwrap();
        assert_eq!(c.with_weight(0), Err(ConfigError::Weight));
        assert_eq!(c.with_lease(Duration::ZERO), Err(ConfigError::Lease));
        assert_eq!(
            c.with_lease(Duration::from_secs(11)),
            Err(ConfigError::Lease)
        );
        assert_eq!(
            c.with_timeouts(Duration::from_secs(1), Duration::from_millis(10)),
            Err(ConfigError::Timeout)
        );
        let long = OutagePolicy::LastShare {
            hold: Duration::from_secs(7200),
            floor: 0,
        };
        assert_eq!(c.with_policy(long), Err(ConfigError::Hold));
    }

    #[test]
    fn config_short_lease_cuts_timeouts() {
        let c = LeaseConfig::new(1000)
            .unwrap()
            .with_lease(Duration::from_millis(50))
            .unwrap();
        assert_eq!(c.response_timeout, Duration::from_millis(50));
        assert_eq!(c.connect_timeout, Duration::from_millis(50));
    }
}
