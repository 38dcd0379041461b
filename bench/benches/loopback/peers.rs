//! The limiters under test, each used the way its documentation recommends, behind one small
//! interface: build a [`Shaper`] for a scenario (an optional limit shared by all its streams,
//! an optional limit per stream), start writers through it, change the shared limit.
//!
//! - **throttle**: see `throttle_peer.rs`.
//! - **async-speed-limit** 0.4: one `Limiter` (cloned into every stream: clones share one
//!   queue, which is how the crate shares a limit) wrapping the socket with `Limiter::limit`;
//!   its tokio `AsyncWrite` impl (feature `tokio`), default refill period 0.1 s, standard
//!   clock. A per-stream limit under a shared one: a second `Limiter` per stream, nested.
//! - **leaky-bucket** 1.x: a `RateLimiter` (shared through an `Arc`) with the default refill
//!   interval (100 ms) refilled with `rate / 10` tokens, default `max` (10 refills), fair
//!   scheduling (the default). (A 10 ms interval loses ~11 %: the crate counts elapsed time in
//!   whole milliseconds and drops each wake-up's sub-millisecond lateness.)
//!   before each write the writer acquires as many tokens as the chunk it writes, the chunk
//!   being `rate × 10 ms` clamped to 1–64 KiB. It cannot change its rate at runtime. A
//!   per-stream limit under a shared one: acquire from the stream's limiter, then the shared.
//! - **governor** 0.10 (GCRA), byte mode: a direct `RateLimiter` (shared through an `Arc`)
//!   whose cells are bytes (KiB when the rate does not fit a `u32`, i.e. above 4 GiB/s), quota
//!   `per_second(rate)` with a burst of `rate × 10 ms` (throttle's automatic burst; governor's
//!   own default, one second's worth, would let a stream run a whole second ahead); before each
//!   write the writer awaits `until_n_ready(chunk)`, chunks as for leaky-bucket. It cannot
//!   change its quota at runtime. A per-stream limit under a shared one: its own limiter, then
//!   the shared one.

use alloc::sync::Arc;
use core::time::Duration;

use core::num::NonZeroU32;

use async_speed_limit::Limiter;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter as Gcra};
use leaky_bucket::RateLimiter;
use throttle_bench::{net, KIB, WRITE_CHUNK};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::throttle_peer::ThrottleShaper;

/// Which limiter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Peer {
    /// No limiter at all (raw TCP).
    Raw,
    /// This workspace's throttle-tokio.
    Throttle,
    /// async-speed-limit.
    Asl,
    /// leaky-bucket.
    Lb,
    /// governor.
    Gov,
}

impl Peer {
    /// The limiters compared side by side, in column order.
    pub(crate) const COMPARED: [Peer; 4] = [Peer::Throttle, Peer::Asl, Peer::Lb, Peer::Gov];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Peer::Raw => "raw TCP",
            Peer::Throttle => "throttle",
            Peer::Asl => "async-speed-limit",
            Peer::Lb => "leaky-bucket",
            Peer::Gov => "governor",
        }
    }

    pub(crate) fn key(self) -> &'static str {
        match self {
            Peer::Raw => "raw",
            Peer::Throttle => "throttle",
            Peer::Asl => "async_speed_limit",
            Peer::Lb => "leaky_bucket",
            Peer::Gov => "governor",
        }
    }
}

/// The limits of one scenario, ready to shape any number of streams.
pub(crate) enum Shaper {
    Raw,
    Throttle(ThrottleShaper),
    Asl {
        shared: Option<Limiter>,
        per_stream: Option<u64>,
    },
    Lb {
        shared: Option<Arc<RateLimiter>>,
        per_stream: Option<u64>,
        chunk: usize,
    },
    Gov {
        shared: Option<Arc<DefaultDirectRateLimiter>>,
        per_stream: Option<u64>,
        chunk: usize,
        /// Bytes per governor cell.
        unit: u64,
    },
}

/// Bytes per cell so that `rate` cells per second fit governor's `u32`.
fn gcra_unit(rate: u64) -> u64 {
    if rate <= u64::from(u32::MAX) {
        1
    } else {
        KIB
    }
}

/// A governor limiter of `rate` bytes/s in cells of `unit` bytes, burst `rate × 10 ms` (at least
/// one `chunk`, so that `until_n_ready(chunk)` can ever succeed).
fn gcra(rate: u64, unit: u64, chunk: usize) -> Arc<DefaultDirectRateLimiter> {
    let cells = |b: u64| NonZeroU32::new(u32::try_from(b / unit).unwrap_or(u32::MAX).max(1));
    let burst = (rate / 100).max(chunk as u64);
    let quota = Quota::per_second(cells(rate).unwrap_or(NonZeroU32::MIN))
        .allow_burst(cells(burst).unwrap_or(NonZeroU32::MIN));
    Arc::new(Gcra::direct(quota))
}

fn bucket(rate: u64) -> Arc<RateLimiter> {
    Arc::new(
        RateLimiter::builder()
            .interval(Duration::from_millis(100))
            .refill((rate / 10).max(1) as usize)
            .build(),
    )
}

impl Shaper {
    /// A limit `shared` by all streams (a server limit) and/or `per_stream`; `None` where the
    /// peer cannot express it.
    pub(crate) fn new(peer: Peer, shared: Option<u64>, per_stream: Option<u64>) -> Option<Self> {
        Some(match peer {
            Peer::Raw => Shaper::Raw,
            Peer::Throttle => Shaper::Throttle(ThrottleShaper::new(shared, per_stream)?),
            Peer::Asl => Shaper::Asl {
                shared: shared.map(|r| <Limiter>::new(r as f64)),
                per_stream,
            },
            Peer::Lb => {
                let smallest = shared.into_iter().chain(per_stream).min()?;
                Shaper::Lb {
                    shared: shared.map(bucket),
                    per_stream,
                    chunk: ((smallest / 100) as usize).clamp(KIB as usize, WRITE_CHUNK),
                }
            }
            Peer::Gov => {
                let smallest = shared.into_iter().chain(per_stream).min()?;
                let largest = shared.into_iter().chain(per_stream).max()?;
                let unit = gcra_unit(largest);
                let chunk = ((smallest / 100) as usize).clamp(KIB as usize, WRITE_CHUNK);
                Shaper::Gov {
                    shared: shared.map(|r| gcra(r, unit, chunk)),
                    per_stream,
                    chunk,
                    unit,
                }
            }
        })
    }

    /// Starts writing into `stream` as fast as the limits allow, until the reader hangs up.
    pub(crate) fn spawn(&self, stream: TcpStream) -> JoinHandle<u64> {
        match self {
            Shaper::Raw => tokio::spawn(net::pump(stream)),
            Shaper::Throttle(t) => t.spawn(stream),
            Shaper::Asl { shared, per_stream } => {
                let shared = shared.clone();
                let own = per_stream.map(|r| <Limiter>::new(r as f64));
                tokio::spawn(async move {
                    match (shared, own) {
                        (Some(s), Some(o)) => net::pump(s.limit(o.limit(stream))).await,
                        (Some(l), None) | (None, Some(l)) => net::pump(l.limit(stream)).await,
                        (None, None) => net::pump(stream).await,
                    }
                })
            }
            Shaper::Lb {
                shared,
                per_stream,
                chunk,
            } => {
                let shared = shared.clone();
                let own = per_stream.map(bucket);
                let chunk = *chunk;
                tokio::spawn(async move {
                    let mut stream = stream;
                    let buf = vec![0x5a_u8; chunk];
                    let mut total = 0u64;
                    loop {
                        if let Some(o) = &own {
                            o.acquire(chunk).await;
                        }
                        if let Some(s) = &shared {
                            s.acquire(chunk).await;
                        }
                        if stream.write_all(&buf).await.is_err() {
                            break total;
                        }
                        total += chunk as u64;
                    }
                })
            }
            Shaper::Gov {
                shared,
                per_stream,
                chunk,
                unit,
            } => {
                let shared = shared.clone();
                let (chunk, unit) = (*chunk, *unit);
                let own = per_stream.map(|r| gcra(r, unit, chunk));
                let cells = NonZeroU32::new(u32::try_from(chunk as u64 / unit).unwrap_or(1).max(1))
                    .unwrap_or(NonZeroU32::MIN);
                tokio::spawn(async move {
                    let mut stream = stream;
                    let buf = vec![0x5a_u8; chunk];
                    let mut total = 0u64;
                    loop {
                        for l in own.iter().chain(&shared) {
                            // (the burst is at least one chunk: never InsufficientCapacity)
                            let _ = l.until_n_ready(cells).await;
                        }
                        if stream.write_all(&buf).await.is_err() {
                            break total;
                        }
                        total += chunk as u64;
                    }
                })
            }
        }
    }

    /// Changes the shared limit for every stream, existing ones included. `false` where the
    /// peer cannot.
    pub(crate) fn set_shared(&self, rate: u64) -> bool {
        match self {
            Shaper::Raw | Shaper::Lb { .. } | Shaper::Gov { .. } => false,
            Shaper::Throttle(t) => t.set_shared(rate),
            Shaper::Asl { shared, .. } => match shared {
                Some(l) => {
                    l.set_speed_limit(rate as f64);
                    true
                }
                None => false,
            },
        }
    }
}
