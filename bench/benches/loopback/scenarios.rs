//! The five measurements. Each starts its own connections on 127.0.0.1, starts the writers at a
//! common instant, measures on the reading side and tears everything down before returning.

use core::time::Duration;
use std::io;

use throttle_bench::meter::{self, Received};
use throttle_bench::stats::{cpu_seconds, error_pct, jain, thread_cpu_seconds, worst_window_pct};
use throttle_bench::{net, KIB};
use tokio::time::Instant;

use crate::peers::{Peer, Shaper};

/// Runs `n` streams through `shaper` for `secs` seconds; what each client received.
pub(crate) async fn streams(shaper: &Shaper, n: usize, secs: u32) -> io::Result<Vec<Received>> {
    let pairs = net::pairs(n).await?;
    let start = Instant::now();
    let mut writers = Vec::with_capacity(n);
    let mut readers = Vec::with_capacity(n);
    for pair in pairs {
        writers.push(shaper.spawn(pair.server));
        readers.push(tokio::spawn(meter::drain(pair.client, start, secs)));
    }
    let mut out = Vec::with_capacity(n);
    for r in readers {
        out.push(r.await.map_err(io::Error::other)?);
    }
    for w in writers {
        w.abort();
    }
    Ok(out)
}

/// One stream at one limit.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Accuracy {
    /// Achieved rate over the whole run vs the limit, %.
    pub(crate) error_pct: f64,
    /// The worst one-second window after the first, signed, %.
    pub(crate) worst_window_pct: f64,
    /// The longest pause between two reads, ms, and when it ended (s from the start).
    pub(crate) longest_gap_ms: f64,
    pub(crate) longest_gap_at_s: f64,
}

pub(crate) async fn accuracy(peer: Peer, rate: u64, secs: u32) -> io::Result<Option<Accuracy>> {
    let Some(shaper) = Shaper::new(peer, Some(rate), None) else {
        return Ok(None);
    };
    let got = streams(&shaper, 1, secs).await?;
    let r = &got[0];
    Ok(Some(Accuracy {
        error_pct: error_pct(r.rate(), rate as f64),
        worst_window_pct: worst_window_pct(&r.per_second, rate as f64).unwrap_or(f64::NAN),
        longest_gap_ms: r.longest_gap.0.as_secs_f64() * 1e3,
        longest_gap_at_s: r.longest_gap.1.as_secs_f64(),
    }))
}

/// Many streams sharing one limit (or, with `per_stream`, each also capped).
#[derive(Clone, Debug)]
pub(crate) struct Sharing {
    /// Jain's index over the per-stream mean rates.
    pub(crate) jain: f64,
    /// Aggregate rate vs the expected aggregate, %.
    pub(crate) aggregate_error_pct: f64,
    /// The stream furthest from its expected share, signed, %.
    pub(crate) worst_stream_pct: f64,
    /// Like `worst_stream_pct`, counting only the seconds after the first (start-up excluded:
    /// whoever starts first may take the shared burst while the others are still starting).
    pub(crate) worst_stream_after_first_pct: f64,
    /// Each stream's mean rate, bytes per second, in connection order.
    pub(crate) rates: Vec<f64>,
}

pub(crate) async fn sharing(
    peer: Peer,
    shared: u64,
    per_stream: Option<u64>,
    n: usize,
    secs: u32,
) -> io::Result<Option<Sharing>> {
    let Some(shaper) = Shaper::new(peer, Some(shared), per_stream) else {
        return Ok(None);
    };
    let got = streams(&shaper, n, secs).await?;
    let rates: Vec<f64> = got.iter().map(Received::rate).collect();
    let each = per_stream.map_or(shared as f64 / n as f64, |c| {
        (c as f64).min(shared as f64 / n as f64)
    });
    let aggregate: f64 = rates.iter().sum();
    let later: Vec<f64> = got
        .iter()
        .map(|r| {
            let tail = &r.per_second[1.min(r.per_second.len())..];
            tail.iter().sum::<u64>() as f64 / tail.len().max(1) as f64
        })
        .collect();
    Ok(Some(Sharing {
        worst_stream_after_first_pct: later
            .iter()
            .map(|&r| error_pct(r, each))
            .max_by(|a, b| a.abs().total_cmp(&b.abs()))
            .unwrap_or(f64::NAN),
        jain: jain(&rates),
        aggregate_error_pct: error_pct(aggregate, each * n as f64),
        worst_stream_pct: rates
            .iter()
            .map(|&r| error_pct(r, each))
            .max_by(|a, b| a.abs().total_cmp(&b.abs()))
            .unwrap_or(f64::NAN),
        rates,
    }))
}

/// One stream as fast as loopback goes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Speed {
    /// Bytes per second received.
    pub(crate) bytes_per_sec: f64,
    /// Process CPU seconds (both ends, all threads) per GiB moved.
    pub(crate) cpu_s_per_gib: f64,
    /// CPU seconds of the writer's thread (the limiter and the sending side) per GiB.
    pub(crate) writer_cpu_s_per_gib: f64,
}

/// Runs one stream for `secs` seconds with a fixed thread layout: the writer (and its limiter)
/// on one thread with a current-thread runtime, the reader on another. On the shared
/// multi-thread runtime, loopback throughput swings by ±30 % with where the scheduler happens to
/// put the two tasks; two dedicated threads keep runs comparable.
pub(crate) async fn speed(peer: Peer, limit: Option<u64>, secs: u32) -> io::Result<Option<Speed>> {
    tokio::task::spawn_blocking(move || speed_threads(peer, limit, secs))
        .await
        .map_err(io::Error::other)?
}

fn current_thread() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

fn speed_threads(peer: Peer, limit: Option<u64>, secs: u32) -> io::Result<Option<Speed>> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    let addr = listener.local_addr()?;
    let client = std::net::TcpStream::connect(addr)?;
    let (server, _) = listener.accept()?;
    server.set_nonblocking(true)?;
    client.set_nonblocking(true)?;
    let (go_tx, go_rx) = std::sync::mpsc::channel::<Instant>();
    let writer = std::thread::spawn(move || -> io::Result<Option<f64>> {
        let rt = current_thread()?;
        rt.block_on(async move {
            let Some(shaper) = Shaper::new(peer, limit, None) else {
                return Ok(None);
            };
            let stream = tokio::net::TcpStream::from_std(server)?;
            // Start the clock only once the writer is set up.
            let cpu0 = thread_cpu_seconds();
            let _ = go_tx.send(Instant::now());
            let _ = shaper.spawn(stream).await;
            Ok(Some(match (cpu0, thread_cpu_seconds()) {
                (Some(a), Some(b)) => b - a,
                _ => f64::NAN,
            }))
        })
    });
    let Ok(start) = go_rx.recv() else {
        // The writer gave up before starting: unsupported peer or a setup error.
        return writer
            .join()
            .map_err(|_| io::Error::other("writer thread panicked"))?
            .map(|_| None);
    };
    let cpu0 = cpu_seconds();
    let received = current_thread()?.block_on(async move {
        let stream = tokio::net::TcpStream::from_std(client)?;
        io::Result::Ok(meter::drain(stream, start, secs).await)
    })?;
    let cpu1 = cpu_seconds();
    // The reader hung up: the writer's next write fails and its thread ends.
    let writer_cpu = writer
        .join()
        .map_err(|_| io::Error::other("writer thread panicked"))??
        .unwrap_or(f64::NAN);
    let gib = received.total as f64 / f64::from(1u32 << 30);
    Ok(Some(Speed {
        bytes_per_sec: received.rate(),
        cpu_s_per_gib: match (cpu0, cpu1) {
            (Some(a), Some(b)) => (b - a) / gib,
            _ => f64::NAN,
        },
        writer_cpu_s_per_gib: writer_cpu / gib,
    }))
}

/// How long a limit change takes to show on a stream that was crawling.
#[derive(Clone, Debug)]
pub(crate) struct Change {
    /// Per trial: set_limit → first byte received after it, ms.
    pub(crate) first_byte_ms: Vec<f64>,
    /// Per trial: set_limit → 64 KiB received after it (64 s at the old rate), ms;
    /// `None` when that did not happen within the trial's window.
    pub(crate) new_rate_ms: Vec<Option<f64>>,
    /// How long a trial waits after the change.
    pub(crate) window_ms: f64,
}

pub(crate) async fn change(
    peer: Peer,
    from: u64,
    to: u64,
    trials: usize,
) -> io::Result<Option<Change>> {
    let window = Duration::from_secs(2);
    let mut out = Change {
        first_byte_ms: Vec::new(),
        new_rate_ms: Vec::new(),
        window_ms: window.as_secs_f64() * 1e3,
    };
    for trial in 0..trials {
        let Some(shaper) = Shaper::new(peer, Some(from), None) else {
            return Ok(None);
        };
        let pair = net::pairs(1).await?.pop().expect("one pair");
        // Vary the phase against the slow stream's 0.5 s piece clock.
        let warm = Duration::from_millis(1000 + 137 * trial as u64);
        let start = Instant::now();
        let writer = shaper.spawn(pair.server);
        let reader = tokio::spawn(meter::record(pair.client, start + warm + window));
        tokio::time::sleep_until(start + warm).await;
        let t_set = Instant::now();
        if !shaper.set_shared(to) {
            writer.abort();
            reader.abort();
            return Ok(None);
        }
        let events = reader.await.map_err(io::Error::other)?;
        writer.abort();
        let after: Vec<_> = events.iter().filter(|(t, _)| *t >= t_set).collect();
        let ms = |t: Instant| t.duration_since(t_set).as_secs_f64() * 1e3;
        out.first_byte_ms
            .push(after.first().map_or(f64::NAN, |(t, _)| ms(*t)));
        let mut sum = 0u64;
        let mut reached = None;
        for (t, n) in after {
            sum += *n as u64;
            if sum >= 64 * KIB {
                reached = Some(ms(*t));
                break;
            }
        }
        out.new_rate_ms.push(reached);
    }
    Ok(Some(out))
}

/// The limiter's own cost, without a network: nanoseconds per 64 KiB write into
/// `tokio::io::sink()` (always ready), through each limiter at a limit of 8 PiB/s (so high that
/// the limiter never has to wait), on a current-thread runtime. `None` where unsupported.
pub(crate) fn sink_cost(peer: Peer, limited: bool) -> io::Result<Option<f64>> {
    use throttle_tokio::Limits;
    use tokio::io::AsyncWriteExt;

    const WRITES: u32 = 200_000;
    let rate: u64 = 1 << 53;
    let buf = vec![0x5a_u8; throttle_bench::WRITE_CHUNK];
    let rt = current_thread()?;
    rt.block_on(async move {
        let t0 = std::time::Instant::now();
        match peer {
            Peer::Raw => {
                let mut w = tokio::io::sink();
                for _ in 0..WRITES {
                    w.write_all(&buf).await?;
                }
            }
            Peer::Throttle => {
                let limits = if limited {
                    Limits::per_second(rate)
                } else {
                    Limits::UNLIMITED
                };
                let node = throttle_tokio::limiter()
                    .node(limits, 1)
                    .map_err(io::Error::other)?;
                let mut w = throttle_tokio::wrap(
                    tokio::io::sink(),
                    &node,
                    Limits::UNLIMITED,
                    Limits::UNLIMITED,
                )
                .map_err(io::Error::other)?;
                for _ in 0..WRITES {
                    w.write_all(&buf).await?;
                }
            }
            Peer::Asl => {
                let mut w = <async_speed_limit::Limiter>::new(rate as f64).limit(tokio::io::sink());
                for _ in 0..WRITES {
                    w.write_all(&buf).await?;
                }
            }
            Peer::Lb => {
                let lb = leaky_bucket::RateLimiter::builder()
                    .interval(Duration::from_millis(100))
                    .refill((rate / 10) as usize)
                    .build();
                let mut w = tokio::io::sink();
                for _ in 0..WRITES {
                    lb.acquire(buf.len()).await;
                    w.write_all(&buf).await?;
                }
            }
            Peer::Gov => {
                use core::num::NonZeroU32;
                // cells of 1 KiB (saturating at 4 TiB/s): 8 PiB/s does not fit governor's u32
                let kib = |b: u64| {
                    NonZeroU32::new(u32::try_from(b >> 10).unwrap_or(u32::MAX))
                        .unwrap_or(NonZeroU32::MIN)
                };
                let quota = governor::Quota::per_second(kib(rate)).allow_burst(kib(rate / 100));
                let g = governor::RateLimiter::direct(quota);
                let cells = kib(buf.len() as u64);
                let mut w = tokio::io::sink();
                for _ in 0..WRITES {
                    let _ = g.until_n_ready(cells).await;
                    w.write_all(&buf).await?;
                }
            }
        }
        Ok(Some(t0.elapsed().as_secs_f64() * 1e9 / f64::from(WRITES)))
    })
}
