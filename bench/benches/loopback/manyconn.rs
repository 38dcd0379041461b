//! Many connections (DESIGN: "10 000 connections on 2 cores holds accuracy and fairness"):
//! `n` streams over loopback TCP sharing one server limit through throttle-tokio, each writer
//! endlessly writing 16–64 KiB buffers, on a multi-thread tokio runtime with 2 workers.
//!
//! One process cannot hold both ends of 10 000 connections under a 20 000-fd limit (20 001 fds
//! with the listener), so the readers live in a child process: the bench binary re-executed
//! with the hidden flag [`CHILD_FLAG`]. The parent (writers, limiter) listens and accepts; the
//! child (readers, the meter) connects `n` times, waits for `go` on its stdin, then reads for
//! `secs` seconds and prints per-stream, per-second byte counts and its own CPU time on stdout.
//! Each process holds ~`n` sockets.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;
use std::io::{self, BufRead, Write};
use std::process::{Command, Stdio};

use throttle_bench::stats::{cpu_seconds, error_pct, jain};
use throttle_bench::KIB;
use throttle_tokio::{Limits, Node};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// The hidden flag that turns the bench binary into the reading child:
/// `CHILD_FLAG ADDR N SECS`.
pub(crate) const CHILD_FLAG: &str = "--manyconn-reader";

/// The runtime both processes use: multi-thread, 2 workers.
pub(crate) fn runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// What one run measured (client side).
#[derive(Clone, Debug)]
pub(crate) struct ManyConn {
    /// Connections actually opened.
    pub(crate) streams: usize,
    /// Seconds to open them all.
    pub(crate) setup_s: f64,
    /// Aggregate rate vs the limit, whole run / seconds after the first, %.
    pub(crate) aggregate_error_pct: f64,
    pub(crate) aggregate_after_first_pct: f64,
    /// Jain's index over per-stream rates, whole run / after the first second.
    pub(crate) jain: f64,
    pub(crate) jain_after_first: f64,
    /// The stream furthest from its share, signed %, whole run / after the first second.
    pub(crate) worst_stream_pct: f64,
    pub(crate) worst_after_first_pct: f64,
    /// Streams that received nothing after the first second.
    pub(crate) starved_after_first: usize,
    /// The writers' side, after the first second (bytes each `write` returned, sampled at
    /// 1 s and at the end): aggregate error, Jain's index, worst stream vs share.
    pub(crate) sent_aggregate_pct: f64,
    pub(crate) sent_jain: f64,
    pub(crate) sent_worst_pct: f64,
    /// CPU seconds per second of run: the writers' process (limiter, sending side), the
    /// readers' process, both.
    pub(crate) cpu_writer: f64,
    pub(crate) cpu_reader: f64,
    /// Per-stream rates after the first second, bytes per second.
    pub(crate) rates_after_first: Vec<f64>,
    /// Per-stream rates over the whole run, bytes per second.
    pub(crate) rates: Vec<f64>,
    /// All streams' bytes received in each second.
    pub(crate) aggregate_per_second: Vec<u64>,
}

/// The child: connect `n` times to `addr`, wait for `go`, read for `secs` s, print results.
pub(crate) fn child(args: &[String]) -> io::Result<()> {
    let bad = || io::Error::other("usage: --manyconn-reader ADDR N SECS");
    let addr: core::net::SocketAddr = args.first().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    let n: usize = args.get(1).ok_or_else(bad)?.parse().map_err(|_| bad())?;
    let secs: u32 = args.get(2).ok_or_else(bad)?.parse().map_err(|_| bad())?;
    let rt = runtime()?;
    let (cpu, bins) = rt.block_on(async move {
        let mut conns = Vec::with_capacity(n);
        for _ in 0..n {
            conns.push(TcpStream::connect(addr).await?);
        }
        // Ready: the parent accepts, then sends `go`.
        println!("ready");
        io::stdout().flush()?;
        let mut line = String::new();
        tokio::task::spawn_blocking(move || io::stdin().lock().read_line(&mut line).map(|_| ()))
            .await
            .map_err(io::Error::other)??;
        let start = Instant::now();
        let cpu0 = cpu_seconds();
        let readers: Vec<_> = conns
            .into_iter()
            .map(|c| tokio::spawn(drain(c, start, secs)))
            .collect();
        let mut bins = Vec::with_capacity(n);
        for r in readers {
            bins.push(r.await.map_err(io::Error::other)?);
        }
        let cpu = match (cpu0, cpu_seconds()) {
            (Some(a), Some(b)) => b - a,
            _ => f64::NAN,
        };
        io::Result::Ok((cpu, bins))
    })?;
    let mut out = io::BufWriter::new(io::stdout().lock());
    writeln!(out, "cpu {cpu}")?;
    for b in bins {
        let cells: Vec<String> = b.iter().map(u64::to_string).collect();
        writeln!(out, "{}", cells.join(" "))?;
    }
    out.flush()
}

/// Reads until `start + secs`, binning bytes by the second they arrived in. A 64 KiB buffer
/// (not the meter's 256 KiB): 10 000 of them stay affordable.
async fn drain(mut stream: TcpStream, start: Instant, secs: u32) -> Vec<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let end = start + Duration::from_secs(u64::from(secs));
    let mut bins = vec![0u64; secs as usize];
    while let Ok(Ok(n)) = tokio::time::timeout_at(end, stream.read(&mut buf)).await {
        let at = Instant::now();
        if n == 0 || at >= end {
            break;
        }
        let bin = (at.saturating_duration_since(start).as_secs() as usize).min(bins.len() - 1);
        bins[bin] += n as u64;
    }
    bins
}

/// Writes 16–64 KiB buffers (size varied per write, per stream) until the reader hangs up.
/// Adds every write's length to `written`.
async fn pump<W: AsyncWrite + Unpin>(mut w: W, seed: u64, written: Arc<AtomicU64>) {
    let buf = vec![0x5a_u8; 64 * 1024];
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    loop {
        // xorshift64: a size in 16..=64 KiB.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (16 * KIB + x % (48 * KIB + 1)) as usize;
        match w.write(&buf[..len]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                written.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    }
}

/// One run: `n` connections sharing `limit` bytes/s for `secs` seconds (call on a runtime
/// built by [`runtime`]).
pub(crate) async fn run(n: usize, limit: u64, secs: u32) -> io::Result<ManyConn> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let setup = Instant::now();
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .args([
            CHILD_FLAG.to_owned(),
            addr.to_string(),
            n.to_string(),
            secs.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| io::Error::other("no stdin"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("no stdout"))?;
    let mut accepted = Vec::with_capacity(n);
    while accepted.len() < n {
        match tokio::time::timeout(Duration::from_secs(30), listener.accept()).await {
            Ok(Ok((s, _))) => accepted.push(s),
            Ok(Err(e)) => {
                let _ = child.kill();
                return Err(e);
            }
            Err(_) => {
                let _ = child.kill();
                return Err(io::Error::other(format!(
                    "manyconn: only {} of {n} connections within 30 s",
                    accepted.len()
                )));
            }
        }
    }
    drop(listener);
    // Wait for the child's "ready" (all its connects returned), then start both sides.
    let (first, mut lines) = tokio::task::spawn_blocking(move || {
        let mut lines = io::BufReader::new(stdout).lines();
        (lines.next(), lines)
    })
    .await
    .map_err(io::Error::other)?;
    if !matches!(first, Some(Ok(ref l)) if l == "ready") {
        let _ = child.kill();
        return Err(io::Error::other(
            "manyconn: the reader process did not start",
        ));
    }
    let setup_s = setup.elapsed().as_secs_f64();
    let node: Node = throttle_tokio::limiter()
        .node(Limits::per_second(limit), 1)
        .map_err(io::Error::other)?;
    let mut wrapped = Vec::with_capacity(n);
    for s in accepted {
        wrapped.push(
            throttle_tokio::wrap(s, &node, Limits::UNLIMITED, Limits::UNLIMITED)
                .map_err(io::Error::other)?,
        );
    }
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    stdin.write_all(b"go\n")?;
    stdin.flush()?;
    let written: Vec<Arc<AtomicU64>> = (0..n).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let writers: Vec<_> = wrapped
        .into_iter()
        .zip(&written)
        .enumerate()
        .map(|(i, (s, w))| tokio::spawn(pump(s, i as u64 + 1, Arc::clone(w))))
        .collect();
    // The sending side's view: bytes each writer got through between 1 s and the end.
    let snapshot = || -> Vec<u64> { written.iter().map(|w| w.load(Ordering::Relaxed)).collect() };
    tokio::time::sleep_until(t0 + Duration::from_secs(1)).await;
    let (w1, w1_at) = (snapshot(), Instant::now());
    tokio::time::sleep_until(t0 + Duration::from_secs(u64::from(secs))).await;
    let (w2, w2_at) = (snapshot(), Instant::now());
    let span = (w2_at - w1_at).as_secs_f64();
    let sent: Vec<f64> = w1
        .iter()
        .zip(&w2)
        .map(|(a, b)| (b - a) as f64 / span)
        .collect();
    let report = tokio::task::spawn_blocking(move || lines.by_ref().collect::<Result<Vec<_>, _>>())
        .await
        .map_err(io::Error::other)??;
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu_writer = match (cpu0, cpu_seconds()) {
        (Some(a), Some(b)) => (b - a) / elapsed,
        _ => f64::NAN,
    };
    for w in &writers {
        w.abort();
    }
    for w in writers {
        let _ = w.await;
    }
    let _ = child.wait();
    drop(node);

    let mut it = report.iter();
    let cpu_reader = it
        .next()
        .and_then(|l| l.strip_prefix("cpu "))
        .and_then(|c| c.parse::<f64>().ok())
        .map_or(f64::NAN, |c| c / f64::from(secs));
    let bins: Vec<Vec<u64>> = it
        .map(|l| {
            l.split_whitespace()
                .filter_map(|c| c.parse().ok())
                .collect()
        })
        .collect();
    if bins.len() != n {
        return Err(io::Error::other(format!(
            "manyconn: the reader reported {} of {n} streams",
            bins.len()
        )));
    }
    let each = limit as f64 / n as f64;
    let rates: Vec<f64> = bins
        .iter()
        .map(|b| b.iter().sum::<u64>() as f64 / f64::from(secs))
        .collect();
    let tail = (secs as usize).saturating_sub(1).max(1) as f64;
    let later: Vec<f64> = bins
        .iter()
        .map(|b| b.iter().skip(1).sum::<u64>() as f64 / tail)
        .collect();
    let worst = |xs: &[f64]| {
        xs.iter()
            .map(|&r| error_pct(r, each))
            .max_by(|a, b| a.abs().total_cmp(&b.abs()))
            .unwrap_or(f64::NAN)
    };
    Ok(ManyConn {
        streams: n,
        setup_s,
        aggregate_error_pct: error_pct(rates.iter().sum(), limit as f64),
        aggregate_after_first_pct: error_pct(later.iter().sum(), limit as f64),
        jain: jain(&rates),
        jain_after_first: jain(&later),
        worst_stream_pct: worst(&rates),
        worst_after_first_pct: worst(&later),
        starved_after_first: later.iter().filter(|&&r| r == 0.0).count(),
        sent_aggregate_pct: error_pct(sent.iter().sum(), limit as f64),
        sent_jain: jain(&sent),
        sent_worst_pct: worst(&sent),
        cpu_writer,
        cpu_reader,
        rates_after_first: later,
        rates: rates.clone(),
        aggregate_per_second: (0..secs as usize)
            .map(|i| bins.iter().map(|b| b.get(i).copied().unwrap_or(0)).sum())
            .collect(),
    })
}
