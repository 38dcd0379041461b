//! `throttle pipe`: stdin or FILEs to stdout at a limit, with progress, live changes and a
//! schedule.
//!
//! ```text
//!   copy thread (copy.rs) ── bytes ──▶ stdout          blocking I/O, one leaf under the
//!        ▲ grants (its own runtime: timer, driver)     pipe's node
//!   main thread's runtime ── set_limit ── control socket (`throttle set`), schedule timer
//!   progress tick ── reads the byte counter and the last change ──▶ stderr
//! ```
//! The node starts with an empty bucket: the first 100 ms go out at the limit, not at the
//! limit plus a burst. Pieces may be as small as one byte (`Config::with_pieces(1, 64 KiB)`),
//! so a 1 KiB/s pipe writes ~10 bytes every 10 ms instead of 512 bytes every half second.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;
use std::fs::File;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use clap::Args;
use throttle_spec::jiff::Timestamp;
use throttle_spec::{Rate, Schedule, ScheduleDriver, Size, ZonedSchedule};
use throttle_tokio::{Config, Limiter, Limits, Node, Tier, Tokio};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::signal::unix::{signal, SignalKind};

use crate::control::{self, Request};
use crate::copy::{Copier, CopyError, Input};
use crate::progress::{Meter, Mode};
use crate::{os_msg, signals, Failure};

/// `throttle pipe`.
#[derive(Args, Debug)]
pub(crate) struct PipeArgs {
    /// Limit to RATE: 10M (= 10 MiB/s, as pv), 1.5MiB/s, 500kB/s (1000-based), 800Mbit/s,
    /// off/0 (no limit), pause.
    #[arg(
        short = 'L',
        long = "rate-limit",
        value_name = "RATE",
        default_value = "off"
    )]
    rate: Rate,
    /// Total size expected, for percent and ETA (default: the sum of the FILEs' sizes).
    #[arg(short = 's', long, value_name = "SIZE")]
    size: Option<Size>,
    /// No progress output.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Show progress even when stderr is not a terminal (one line per interval).
    #[arg(short = 'f', long)]
    force: bool,
    /// Numeric progress for scripts, one line per interval: SECONDS BYTES RATE, then PERCENT
    /// when the size is known.
    #[arg(short = 'n', long)]
    numeric: bool,
    /// Seconds between progress updates (decimals allowed).
    #[arg(short = 'i', long, value_name = "SEC", default_value = "1", value_parser = parse_interval)]
    interval: Duration,
    /// Read buffer size.
    #[arg(
        short = 'B',
        long = "buffer-size",
        value_name = "SIZE",
        default_value = "128K"
    )]
    buffer: Size,
    /// Most bytes sent at once after the output was idle or blocked (default: 50 ms of the
    /// rate, at least min(rate, 4 KiB)).
    #[arg(long, value_name = "SIZE")]
    burst: Option<Size>,
    /// Limits by time of week, e.g. "20M Mon-Fri 09:00-17:00, 100M otherwise" (-L is the
    /// rate when no rule matches); `throttle set` holds until the next boundary.
    #[arg(long, value_name = "SPEC")]
    schedule: Option<Schedule>,
    /// Time zone of the schedule (IANA name, e.g. Europe/Berlin; default: local time).
    #[arg(long = "tz", value_name = "ZONE", requires = "schedule")]
    tz: Option<String>,
    /// Control socket for `throttle set --control PATH` (default: one per PID, see `set`).
    #[arg(long, value_name = "PATH")]
    control: Option<PathBuf>,
    /// Show rates in bits per second.
    #[arg(long)]
    bits: bool,
    /// Files to send in order ("-" is stdin; none: stdin).
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(0.01..=86_400.0).contains(&secs) {
        return Err(format!("{s}: between 0.01 and 86400 seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Share of a second the default burst covers: a copy thread or timer woken up to 50 ms late
/// (a loaded machine) catches up instead of losing throughput. The core's automatic burst
/// (10 ms) is tuned for many connections sharing a node; one pipe can afford more. The
/// transfer still starts at the limit (the bucket starts empty), and after a stall or a
/// blocked reader at most 50 ms of the rate goes out at once.
const BURST_DIVISOR: u64 = 20;

/// The node's limits for `rate`, with the explicit burst or the pipe's default.
fn limits_for(rate: Rate, burst: Option<Size>) -> Limits {
    match rate {
        Rate::PerSecond(n) if n > 0 => {
            let auto = Tier::per_second(n);
            let b = burst.map_or((n / BURST_DIVISOR).max(auto.burst()), |b| b.0);
            Limits::new(auto.with_burst(b))
        }
        _ => rate.to_limits(),
    }
}

/// What the control socket, the schedule and the progress line share.
struct Ctl {
    node: Node,
    burst: Option<Size>,
    written: Arc<AtomicU64>,
    state: Mutex<CtlState>,
}

struct CtlState {
    rate: Rate,
    /// The last change: when, and the bytes written by then.
    changed: Option<(Instant, u64)>,
    driver: Option<ScheduleDriver>,
}

impl Ctl {
    fn state(&self) -> std::sync::MutexGuard<'_, CtlState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies `rate` now; `manual`: by `throttle set` (holds until the schedule's next
    /// boundary).
    fn apply(&self, rate: Rate, manual: bool) -> Result<(), String> {
        self.node
            .set_limit(limits_for(rate, self.burst))
            .map_err(|e| e.to_string())?;
        let mut st = self.state();
        st.rate = rate;
        st.changed = Some((Instant::now(), self.written.load(Ordering::Relaxed)));
        if manual {
            if let Some(d) = st.driver.as_mut() {
                d.manual(rate, Timestamp::now());
            }
        }
        Ok(())
    }
}

fn open_inputs(files: &[PathBuf]) -> Result<(Vec<Input>, Option<u64>), Failure> {
    let stdin = || -> Result<Input, Failure> {
        let fd = std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| Failure::new(format!("stdin: {}", os_msg(&e))))?;
        Ok(Input {
            name: "stdin".into(),
            file: File::from(fd),
        })
    };
    if files.is_empty() {
        return Ok((vec![stdin()?], None));
    }
    let mut inputs = Vec::new();
    let mut total = Some(0u64);
    for path in files {
        if path.as_os_str() == "-" {
            inputs.push(stdin()?);
            total = None;
            continue;
        }
        let name = path.display().to_string();
        let file = File::open(path).map_err(|e| Failure::new(format!("{name}: {}", os_msg(&e))))?;
        let meta = file
            .metadata()
            .map_err(|e| Failure::new(format!("{name}: {}", os_msg(&e))))?;
        if meta.is_dir() {
            return Err(Failure::new(format!("{name}: Is a directory")));
        }
        total = total.and_then(|t| meta.is_file().then(|| t + meta.len()));
        inputs.push(Input { name, file });
    }
    Ok((inputs, total))
}

/// Runs `throttle pipe`.
pub(crate) fn run(args: PipeArgs) -> Result<(), Failure> {
    if args.buffer.0 == 0 || args.buffer.0 > 1 << 30 {
        return Err(Failure::usage("--buffer-size: between 1 byte and 1 GiB"));
    }
    let zoned = match (&args.schedule, &args.tz) {
        (None, _) => None,
        (Some(s), None) => Some(ZonedSchedule::local(s.clone().or_otherwise(args.rate))),
        (Some(s), Some(tz)) => Some(
            ZonedSchedule::in_zone(s.clone().or_otherwise(args.rate), tz)
                .map_err(|e| Failure::usage(format!("--tz: {e}")))?,
        ),
    };
    let (inputs, total) = open_inputs(&args.files)?;
    let out = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| Failure::new(format!("stdout: {}", os_msg(&e))))?;
    let mode = if args.quiet {
        Mode::Off
    } else if args.numeric {
        Mode::Numeric
    } else {
        use std::io::IsTerminal;
        let tty = std::io::stderr().is_terminal();
        if tty || args.force {
            Mode::Line { tty }
        } else {
            Mode::Off
        }
    };
    // the control socket, the schedule, the progress line; the copy thread has its own
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(format!("tokio runtime: {e}")))?;
    let size = args.size.map(|s| s.0).or(total);
    let result = rt.block_on(pipe(args, zoned, inputs, File::from(out), size, mode));
    rt.shutdown_background();
    result
}

async fn pipe(
    args: PipeArgs,
    zoned: Option<ZonedSchedule>,
    inputs: Vec<Input>,
    out: File,
    size: Option<u64>,
    mode: Mode,
) -> Result<(), Failure> {
    let mut driver = zoned.map(ScheduleDriver::new);
    let rate = match driver.as_mut() {
        Some(d) => d.poll(Timestamp::now()).unwrap_or(args.rate),
        None => args.rate,
    };
    let limits = limits_for(rate, args.burst);
    let limiter = Limiter::with_config(Config::DEFAULT.with_pieces(1, 1 << 16), Tokio);
    let err = |e: &dyn core::fmt::Display| Failure::new(format!("limiter: {e}"));
    let node = limiter.node(limits, 1).map_err(|e| match args.burst {
        // the core refuses bursts too small to keep their rate (its `min_burst`)
        Some(b) => Failure::usage(format!("--burst {b}: {e}")),
        None => err(&e),
    })?;
    let leaf = node.leaf(Limits::UNLIMITED, 1).map_err(|e| err(&e))?;

    let written = Arc::new(AtomicU64::new(0));
    let ctl = Arc::new(Ctl {
        node,
        burst: args.burst,
        written: written.clone(),
        state: Mutex::new(CtlState {
            rate,
            changed: None,
            driver,
        }),
    });

    // handlers first: a ^C right after the socket appears must still remove it
    let mut int = signal(SignalKind::interrupt()).map_err(|e| Failure::new(e.to_string()))?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| Failure::new(e.to_string()))?;

    // the control socket
    let socket = match &args.control {
        Some(p) => Some(bind(p).map_err(Failure::new)?),
        None => control::socket_for(std::process::id(), true)
            .and_then(|p| bind(&p))
            .map_err(|e| {
                if mode != Mode::Off {
                    eprintln!(
                        "throttle: no control socket ({e}): `throttle set` cannot reach this pipe"
                    );
                }
            })
            .ok(),
    };
    let socket_path = socket.as_ref().map(|(_, p)| p.clone());
    let cleanup = move || {
        if let Some(p) = &socket_path {
            let _ = std::fs::remove_file(p);
        }
    };
    if let Some((listener, _)) = socket {
        let ctl = ctl.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, ctl.clone()));
            }
        });
    }
    if ctl.state().driver.is_some() {
        tokio::spawn(run_schedule(ctl.clone()));
    }

    // the data path
    let (done_tx, mut done_rx) = tokio::sync::oneshot::channel();
    let copier = Copier {
        inputs,
        out,
        leaf,
        limits,
        buffer: usize::try_from(args.buffer.0).unwrap_or(usize::MAX),
        written: written.clone(),
    };
    std::thread::Builder::new()
        .name("throttle-copy".into())
        .spawn(move || {
            let _ = done_tx.send(copier.run());
        })
        .map_err(|e| Failure::new(format!("thread: {e}")))?;

    let start = Instant::now();
    let mut meter = Meter::new(start, size, args.bits, mode);
    let mut ticks = tokio::time::interval_at((start + args.interval).into(), args.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen_change = None;
    let mut draw = |meter: &mut Meter, last: bool| {
        let (rate, changed) = {
            let st = ctl.state();
            (st.rate, st.changed)
        };
        if changed != seen_change {
            if let Some((at, bytes)) = changed {
                meter.mark_change(at, bytes);
            }
            seen_change = changed;
        }
        meter.draw(Instant::now(), written.load(Ordering::Relaxed), rate, last);
    };
    let result = loop {
        tokio::select! {
            r = &mut done_rx => break r.unwrap_or(Ok(())),
            _ = ticks.tick(), if mode != Mode::Off => draw(&mut meter, false),
            _ = int.recv() => {
                cleanup();
                if matches!(mode, Mode::Line { tty: true }) {
                    eprintln!();
                }
                signals::die_by(signals::INT);
            }
            _ = term.recv() => {
                cleanup();
                signals::die_by(signals::TERM);
            }
        }
    };
    cleanup();
    if mode != Mode::Off {
        draw(&mut meter, true);
    }
    match result {
        Ok(()) => Ok(()),
        Err(CopyError::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            signals::die_by(signals::PIPE)
        }
        Err(CopyError::Write(e)) => Err(Failure::new(format!("stdout: {}", os_msg(&e)))),
        Err(CopyError::Read(name, e)) => Err(Failure::new(format!("{name}: {}", os_msg(&e)))),
        Err(CopyError::Runtime(e)) => Err(Failure::new(format!("tokio runtime: {e}"))),
    }
}

/// Binds the control socket at `path`, replacing a stale one (no one answering).
fn bind(path: &std::path::Path) -> Result<(UnixListener, PathBuf), String> {
    let show = path.display();
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(format!("{show}: in use by another process"));
        }
        std::fs::remove_file(path).map_err(|e| format!("{show}: {}", os_msg(&e)))?;
    }
    let l = UnixListener::bind(path).map_err(|e| format!("{show}: {}", os_msg(&e)))?;
    Ok((l, path.to_path_buf()))
}

/// One control connection: one request line, one reply line.
async fn serve(stream: UnixStream, ctl: Arc<Ctl>) {
    let (r, mut w) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(r.take(4096));
    let read = reader.read_line(&mut line);
    if !matches!(
        tokio::time::timeout(Duration::from_secs(5), read).await,
        Ok(Ok(_))
    ) {
        return;
    }
    let reply = match control::parse_request(&line) {
        Ok(Request::Limit(rate)) => match ctl.apply(rate, true) {
            Ok(()) => format!("ok {rate}\n"),
            Err(e) => format!("error {e}\n"),
        },
        Ok(Request::Get) => {
            let rate = ctl.state().rate;
            format!("ok {rate} {}\n", ctl.written.load(Ordering::Relaxed))
        }
        Err(e) => format!("error {e}\n"),
    };
    let _ = w.write_all(reply.as_bytes()).await;
}

/// Applies the schedule at each boundary; wakes at least once a minute (the wall clock can
/// jump: suspend, NTP, a changed zone).
async fn run_schedule(ctl: Arc<Ctl>) {
    loop {
        let now = Timestamp::now();
        let (due, next) = {
            let mut st = ctl.state();
            let Some(d) = st.driver.as_mut() else { return };
            (d.poll(now), d.next_wake())
        };
        if let Some(rate) = due {
            let _ = ctl.apply(rate, false);
        }
        let wait = next
            .map(|t| t.duration_since(now))
            .and_then(|d| Duration::try_from(d).ok())
            .unwrap_or(Duration::from_secs(60))
            .min(Duration::from_secs(60));
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_burst_is_50_ms_of_the_rate_and_explicit_wins() {
        let burst = |l: Limits| l.tiers()[0].burst();
        assert_eq!(
            burst(limits_for(Rate::PerSecond(10 << 20), None)),
            (10 << 20) / 20
        );
        assert_eq!(
            burst(limits_for(Rate::PerSecond(1024), None)),
            1024,
            "min(rate, 4 KiB)"
        );
        assert_eq!(
            burst(limits_for(Rate::PerSecond(10 << 20), Some(Size(1)))),
            1
        );
        assert_eq!(
            limits_for(Rate::Unlimited, Some(Size(1))),
            Limits::UNLIMITED
        );
        assert!(limits_for(Rate::PAUSED, None).is_paused());
    }
}
