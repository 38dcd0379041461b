//! The layer and its service: per request, find (or create) the key's node under the total
//! node, put a one-request leaf under it, and ask for one token — waiting up to a deadline or
//! not at all — before calling the inner service; answer "limited" requests without calling
//! it.
//!
//! ```text
//!   total Node (e.g. 200/s) ── KeyedNodes: key → Node (per-key limits, e.g. 10/s)
//!                                               └── one Leaf per request in flight
//! ```
//!
//! Requests in flight under one key are leaves of that key's node, so they share its limit
//! fairly; keys share the total by weight (all weight 1): a key that asks less than its
//! share leaves the rest to the others (max-min), as the core does for bytes.

use alloc::sync::Arc;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;
use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use http::{HeaderValue, Request, Response, StatusCode};
use throttle_io::{
    AcquireError, KeyedConfig, KeyedError, KeyedNodes, Limits, Node, SetLimitError,
    TryAcquireError, WhenFull,
};
use tower_layer::Layer;
use tower_service::Service;

use crate::key::{KeyExtractor, PeerIp, RequestHead};

/// What a request does when its key (or the total) has no token for it now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Answer "limited" at once (with how long until a token, as `Retry-After`).
    Reject,
    /// Wait up to this long for a token; answer "limited" at once when the limits cannot
    /// allow the request within it (no request waits only to be refused at the end).
    ///
    /// Waiting requests are queued fairly (per key, then between keys by max-min), and they
    /// are admitted the way the core grants bytes: a bucket tier starts a piece — here one
    /// request — only while it holds one whole token, so from a full bucket of burst `b`
    /// exactly `b` requests pass at once (then exactly the rate), as with
    /// [`Policy::Reject`]. A [`Tier::window`](throttle_io::Tier::window) ("at most N in any
    /// window") counts over a sliding window instead.
    Wait(Duration),
}

/// How a limited request is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// HTTP `429 Too Many Requests` with `Retry-After` in whole seconds (rounded up), or `503
    /// Service Unavailable` when the key map is full ([`WhenFull::Reject`]) or the tree
    /// refused the request's node.
    Http,
    /// A gRPC trailers-only response: HTTP 200, `grpc-status: 8` (`RESOURCE_EXHAUSTED`),
    /// `grpc-message`, and `grpc-retry-pushback-ms` when the wait is known (tonic clients and
    /// gRPC retry policies read it).
    Grpc,
}

/// Why a request was answered without calling the inner service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limited {
    /// The key's limit or the total has no token for it within the policy. `retry_after`:
    /// how long until one at the earliest (a lower bound when others compete); `None` when a
    /// limit is paused.
    Rate {
        /// How long until a token at the earliest.
        retry_after: Option<Duration>,
    },
    /// The key map holds its maximum number of keys, none idle ([`WhenFull::Reject`]).
    TooManyKeys,
    /// The tree refused the request's node (e.g. the total node was removed).
    Unavailable,
}

impl fmt::Display for Limited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limited::Rate {
                retry_after: Some(d),
            } => write!(f, "rate-limited: retry in {d:?} at the earliest"),
            Limited::Rate { retry_after: None } => f.write_str("rate-limited: the limit is paused"),
            Limited::TooManyKeys => f.write_str("too many distinct clients at once"),
            Limited::Unavailable => f.write_str("the limiter refused the request"),
        }
    }
}

impl core::error::Error for Limited {}

struct Shared<X: KeyExtractor> {
    total: Node,
    keys: KeyedNodes<X::Key>,
    per_key: RwLock<Limits>,
    /// Per-key limits that differ from `per_key`; they outlive the key's node (eviction).
    overrides: RwLock<HashMap<X::Key, Limits>>,
    extractor: X,
    policy: Policy,
    rejection: Rejection,
}

/// Settings of a [`RequestLimitLayer`], from [`RequestLimitLayer::builder`].
pub struct RequestLimitBuilder<X> {
    total: Node,
    per_key: Limits,
    extractor: X,
    keyed: KeyedConfig,
    policy: Policy,
    rejection: Rejection,
}

impl<X> fmt::Debug for RequestLimitBuilder<X> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestLimitBuilder")
            .field("per_key", &self.per_key)
            .field("keyed", &self.keyed)
            .field("policy", &self.policy)
            .field("rejection", &self.rejection)
            .finish_non_exhaustive()
    }
}

impl<X> RequestLimitBuilder<X> {
    /// The key requests count against (default [`PeerIp`]).
    pub fn key<Y: KeyExtractor>(self, extractor: Y) -> RequestLimitBuilder<Y> {
        RequestLimitBuilder {
            total: self.total,
            per_key: self.per_key,
            extractor,
            keyed: self.keyed,
            policy: self.policy,
            rejection: self.rejection,
        }
    }

    /// Wait or reject (default: reject).
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// How limited requests are answered (default: HTTP 429).
    pub fn rejection(mut self, rejection: Rejection) -> Self {
        self.rejection = rejection;
        self
    }

    /// The most keys held at once (default 100 000). Memory stays bounded by it whatever
    /// the number of distinct clients.
    pub fn max_keys(mut self, cap: usize) -> Self {
        self.keyed.cap = cap.max(1);
        self
    }

    /// How long a key's node outlives its last request (default 60 s). A key evicted and
    /// seen again starts with a full bucket, so keep this above the longest limit period.
    pub fn idle_after(mut self, idle: Duration) -> Self {
        self.keyed.idle = idle;
        self
    }

    /// What a new key gets when `max_keys` keys are held and none is idle: by default
    /// [`WhenFull::Overflow`], one node shared by every key past the cap (served, together,
    /// under one per-key limit); [`WhenFull::Reject`] answers them "limited"
    /// ([`Limited::TooManyKeys`]).
    pub fn when_full(mut self, when_full: WhenFull) -> Self {
        self.keyed.when_full = when_full;
        self
    }

    /// The layer.
    pub fn build(self) -> RequestLimitLayer<X>
    where
        X: KeyExtractor,
    {
        RequestLimitLayer {
            shared: Arc::new(Shared {
                keys: KeyedNodes::new(self.total.clone(), self.keyed),
                total: self.total,
                per_key: RwLock::new(self.per_key),
                overrides: RwLock::new(HashMap::new()),
                extractor: self.extractor,
                policy: self.policy,
                rejection: self.rejection,
            }),
        }
    }
}

/// A tower [`Layer`] limiting requests per key and in total. Clones share the limits, the
/// keys and the counters; every method that changes a limit reaches requests already waiting.
pub struct RequestLimitLayer<X: KeyExtractor = PeerIp> {
    shared: Arc<Shared<X>>,
}

impl<X: KeyExtractor> Clone for RequestLimitLayer<X> {
    fn clone(&self) -> Self {
        RequestLimitLayer {
            shared: self.shared.clone(),
        }
    }
}

impl<X: KeyExtractor> fmt::Debug for RequestLimitLayer<X> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestLimitLayer")
            .field("total", &self.shared.total)
            .field("keys", &self.shared.keys)
            .field("policy", &self.shared.policy)
            .field("rejection", &self.shared.rejection)
            .finish_non_exhaustive()
    }
}

impl RequestLimitLayer<PeerIp> {
    /// Requests under `total` (a node of a limiter whose limits are the service's total, e.g.
    /// `Limits::per_second(200)`; it can sit anywhere in a larger tree), each key limited to
    /// `per_key` (e.g. `Limits::per_second(10)`, or several tiers: "10/s AND 300/min", or a
    /// [`Tier::window`](throttle_io::Tier::window) for "at most N in any window").
    pub fn builder(total: Node, per_key: Limits) -> RequestLimitBuilder<PeerIp> {
        RequestLimitBuilder {
            total,
            per_key,
            extractor: PeerIp,
            keyed: KeyedConfig {
                cap: 100_000,
                idle: Duration::from_secs(60),
                when_full: WhenFull::Overflow,
            },
            policy: Policy::Reject,
            rejection: Rejection::Http,
        }
    }
}

impl<X: KeyExtractor> RequestLimitLayer<X> {
    /// Changes the total limit (reaches waiting requests).
    pub fn set_total(&self, limits: Limits) -> Result<(), SetLimitError> {
        self.shared.total.set_limit(limits)
    }

    /// Changes the limit of every key without its own (see [`set_key`](Self::set_key)),
    /// live keys included.
    pub fn set_per_key(&self, limits: Limits) -> Result<(), SetLimitError> {
        let overrides = read(&self.shared.overrides);
        *write(&self.shared.per_key) = limits;
        // every live key without an override, and the overflow node
        self.shared.keys.set_limits_all(limits)?;
        for (k, l) in overrides.iter() {
            self.shared.keys.set_limits(k, *l)?;
        }
        Ok(())
    }

    /// Gives `key` its own limit (a paying customer, a known crawler), now and whenever it
    /// comes back after eviction.
    pub fn set_key(&self, key: X::Key, limits: Limits) -> Result<(), SetLimitError> {
        self.shared.keys.set_limits(&key, limits)?;
        write(&self.shared.overrides).insert(key, limits);
        Ok(())
    }

    /// `key` goes back to the common per-key limit.
    pub fn clear_key(&self, key: &X::Key) -> Result<(), SetLimitError> {
        write(&self.shared.overrides).remove(key);
        let common = *read(&self.shared.per_key);
        self.shared.keys.set_limits(key, common).map(|_| ())
    }

    /// Keys holding a node now (at most `max_keys`).
    pub fn keys_held(&self) -> usize {
        self.shared.keys.len()
    }

    /// Drops the nodes of keys idle for longer than `idle_after`; returns how many. Optional:
    /// a full map evicts by itself; calling this now and then returns memory sooner.
    pub fn sweep(&self) -> usize {
        self.shared.keys.sweep()
    }

    /// The total node (statistics, limits, or children of your own).
    pub fn total(&self) -> &Node {
        &self.shared.total
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

impl<S, X: KeyExtractor> Layer<S> for RequestLimitLayer<X> {
    type Service = RequestLimit<S, X>;
    fn layer(&self, inner: S) -> RequestLimit<S, X> {
        RequestLimit {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service [`RequestLimitLayer`] wraps around an inner service.
pub struct RequestLimit<S, X: KeyExtractor = PeerIp> {
    inner: S,
    shared: Arc<Shared<X>>,
}

impl<S: Clone, X: KeyExtractor> Clone for RequestLimit<S, X> {
    fn clone(&self) -> Self {
        RequestLimit {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S: fmt::Debug, X: KeyExtractor> fmt::Debug for RequestLimit<S, X> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestLimit")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<X: KeyExtractor> Shared<X> {
    fn limits_for(&self, key: &X::Key) -> Limits {
        match read(&self.overrides).get(key) {
            Some(l) => *l,
            None => *read(&self.per_key),
        }
    }

    /// One token for one request of `key`, within the policy.
    async fn admit(&self, key: X::Key) -> Result<(), Limited> {
        let limits = self.limits_for(&key);
        let node = self.keys.get(&key, limits, 1).map_err(|e| match e {
            KeyedError::Full { .. } => Limited::TooManyKeys,
            _ => Limited::Unavailable,
        })?;
        let mut leaf = node
            .node()
            .leaf(Limits::UNLIMITED, 1)
            .map_err(|_| Limited::Unavailable)?;
        match self.policy {
            Policy::Reject => leaf.try_acquire(1).map_err(|e| match e {
                TryAcquireError::NotYet { wait } => Limited::Rate { retry_after: wait },
                // one token more than a burst: a limit whose burst is 0 tokens is paused
                TryAcquireError::InsufficientCapacity { .. } => Limited::Rate { retry_after: None },
                _ => Limited::Unavailable,
            }),
            Policy::Wait(max) => {
                let deadline = self.total.limiter().now_std() + max;
                leaf.acquire_before(1, deadline).await.map_err(|e| match e {
                    AcquireError::Deadline { wait } => Limited::Rate { retry_after: wait },
                    _ => Limited::Unavailable,
                })
            }
        }
    }

    fn answer<RB: Default>(&self, limited: Limited) -> Response<RB> {
        let mut res = Response::new(RB::default());
        let wait = match limited {
            Limited::Rate { retry_after } => retry_after,
            _ => None,
        };
        let h = res.headers_mut();
        match self.rejection {
            Rejection::Http => {
                *res.status_mut() = match limited {
                    Limited::Rate { .. } => StatusCode::TOO_MANY_REQUESTS,
                    _ => StatusCode::SERVICE_UNAVAILABLE,
                };
                let h = res.headers_mut();
                if let Some(d) = wait {
                    // whole seconds, rounded up: "Retry-After: 0" would invite a retry storm
                    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
                    h.insert(http::header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
                }
            }
            Rejection::Grpc => {
                h.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/grpc"),
                );
                h.insert("grpc-status", HeaderValue::from_static("8"));
                let msg = match limited {
                    Limited::Rate { .. } => "rate-limited",
                    Limited::TooManyKeys => "too many distinct clients",
                    _ => "limiter unavailable",
                };
                h.insert("grpc-message", HeaderValue::from_static(msg));
                if let Some(d) = wait {
                    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1);
                    h.insert("grpc-retry-pushback-ms", HeaderValue::from(ms));
                }
            }
        }
        res
    }
}

impl<S, X, B, RB> Service<Request<B>> for RequestLimit<S, X>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    X: KeyExtractor,
    B: Send + 'static,
    RB: Default + Send + 'static,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<RB>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // the clone is not ready; the service that was polled ready serves this request
        let clone = self.inner.clone();
        let mut inner = core::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        let key = shared.extractor.key(&RequestHead::of(&req));
        Box::pin(async move {
            match shared.admit(key).await {
                Ok(()) => inner.call(req).await,
                Err(limited) => Ok(shared.answer(limited)),
            }
        })
    }
}
