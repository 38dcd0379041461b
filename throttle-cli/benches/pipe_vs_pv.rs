//! `throttle pipe -L R` against `pv -L R` (and `cat`) on the same input, measured by the
//! process reading their output: `cargo bench -p throttle-cli --bench pipe_vs_pv` (or
//! `benches/pipe_vs_pv.sh`, which installs pv first). Options: `--secs N` per run (default 10;
//! the figures are for 30), `--rates 1,10,100` (MiB/s), `--skip-cpu`, `--skip-change`.
//!
//! Per tool and rate: steady error (bytes from 1 s to the end against the limit), the first
//! 100 ms after the first byte against the limit, the fullest 100 ms window starting in the
//! first second (a tool that sends 100 ms worth at once, then waits, shows 1.0× on the first
//! figure and up to 2× on this one), the worst 1 s window (every window in the
//! run, stepped by 50 ms, first one included), CPU seconds per GiB (user + system, from
//! /proc). Then CPU per GiB without a limit (zeros through a pipe) for cat, pv and throttle,
//! and the time for a rate change 1 KiB/s → 100 MiB/s to show in the output: from sending
//! the change to 64 KiB more bytes out (0.6 ms of it is the transfer at the new rate),
//! through `throttle set` and `pv -R` (both spawn a process) and through throttle's control
//! socket directly.

extern crate alloc;

mod bench_util;

use alloc::sync::Arc;
use core::time::Duration;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::Instant;

use bench_util::throttle_bin;

const MIB: u64 = 1 << 20;

/// (seconds since the reader started, cumulative bytes) after each read.
type Trace = Arc<Mutex<Vec<(f64, u64)>>>;

/// Spawns `cmd`, feeding zeros (or nothing, if it reads a file) and recording its output.
fn start(mut cmd: Command, feed: bool) -> (Child, Trace, Instant, thread::JoinHandle<()>) {
    let mut child = cmd
        .stdin(if feed { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    if feed {
        let mut stdin = child.stdin.take().expect("stdin");
        thread::spawn(move || {
            let chunk = vec![0u8; 1 << 20];
            while stdin.write_all(&chunk).is_ok() {}
        });
    }
    let mut out = child.stdout.take().expect("stdout");
    let trace: Trace = Arc::new(Mutex::new(Vec::with_capacity(1 << 16)));
    let t = trace.clone();
    let t0 = Instant::now();
    let reader = thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 18];
        let mut total = 0u64;
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n as u64;
            t.lock().unwrap().push((t0.elapsed().as_secs_f64(), total));
        }
    });
    (child, trace, t0, reader)
}

/// CPU seconds (user + system) of a live or zombie process.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // fields after the command name (which may hold spaces) in parentheses
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    // utime, stime are fields 14, 15 of the line: 11, 12 after the name; 100 ticks/s
    (ticks(11) + ticks(12)) / 100.0
}

/// Cumulative bytes at time `t` (the last read at or before it).
fn bytes_at(trace: &[(f64, u64)], t: f64) -> u64 {
    match trace.partition_point(|(s, _)| *s <= t) {
        0 => 0,
        i => trace[i - 1].1,
    }
}

struct Run {
    steady: f64,
    first: f64,
    /// The fullest 100 ms window starting in the first second, against 100 ms of the rate.
    peak: f64,
    worst: f64,
    cpu_per_gib: f64,
}

fn measure(cmd: Command, rate: u64, secs: f64) -> Run {
    let (mut child, trace, _, reader) = start(cmd, true);
    // run `secs` seconds from the first byte
    let first_at = loop {
        if let Some(&(t, _)) = trace.lock().unwrap().first() {
            break t;
        }
        thread::sleep(Duration::from_millis(1));
    };
    thread::sleep(Duration::from_secs_f64(secs));
    let cpu = cpu_secs(child.id());
    let tr = trace.lock().unwrap().clone();
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    let end = first_at + secs;
    let r = rate as f64;
    let steady =
        (bytes_at(&tr, end) - bytes_at(&tr, first_at + 1.0)) as f64 / (r * (secs - 1.0)) - 1.0;
    let first = bytes_at(&tr, first_at + 0.1) as f64 / (r * 0.1);
    // windows starting at each read in the first second: [t_i, t_i + 100 ms)
    let peak = tr
        .iter()
        .enumerate()
        .take_while(|(_, (t, _))| *t < first_at + 1.0)
        .map(|(i, &(t, _))| {
            let before = if i == 0 { 0 } else { tr[i - 1].1 };
            let end = tr[i..].partition_point(|(s, _)| *s < t + 0.1);
            let last = if end == 0 { before } else { tr[i + end - 1].1 };
            (last - before) as f64 / (r * 0.1)
        })
        .fold(0.0, f64::max);
    let mut worst: f64 = 0.0;
    let mut s = first_at;
    while s + 1.0 <= end {
        let dev = (bytes_at(&tr, s + 1.0) - bytes_at(&tr, s)) as f64 / r - 1.0;
        if dev.abs() > worst.abs() {
            worst = dev;
        }
        s += 0.05;
    }
    let total = bytes_at(&tr, f64::MAX) as f64;
    Run {
        steady,
        first,
        peak,
        worst,
        cpu_per_gib: cpu / (total / (1u64 << 30) as f64),
    }
}

/// No limit: zeros from this process through `cmd` for `secs`; CPU s/GiB and MiB/s.
fn cpu_unlimited(cmd: Command, secs: f64) -> (f64, f64) {
    let (mut child, trace, t0, reader) = start(cmd, true);
    thread::sleep(Duration::from_secs_f64(secs));
    let cpu = cpu_secs(child.id());
    let wall = t0.elapsed().as_secs_f64();
    let total = trace.lock().unwrap().last().map_or(0, |x| x.1) as f64;
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    (
        cpu / (total / (1u64 << 30) as f64),
        total / wall / MIB as f64,
    )
}

/// Starts `cmd` at 1 KiB/s, waits 1 s, runs `change`, and returns the time until 64 KiB more
/// came out.
fn change_latency(cmd: Command, change: impl FnOnce(u32)) -> Option<f64> {
    let (mut child, trace, _, reader) = start(cmd, true);
    thread::sleep(Duration::from_secs(1));
    let before = trace.lock().unwrap().last().map_or(0, |x| x.1);
    let t = Instant::now();
    change(child.id());
    let mut took = None;
    while t.elapsed() < Duration::from_secs(5) {
        if trace.lock().unwrap().last().map_or(0, |x| x.1) >= before + (64 << 10) {
            took = Some(t.elapsed().as_secs_f64());
            break;
        }
        thread::yield_now();
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    took
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let secs: f64 = opt("--secs").and_then(|s| s.parse().ok()).unwrap_or(10.0);
    let rates: Vec<u64> = opt("--rates")
        .map(|s| s.split(',').filter_map(|r| r.parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 10, 100]);
    let throttle = throttle_bin();
    let pv = have("pv");
    if !pv {
        println!("pv not found: throttle only (benches/pipe_vs_pv.sh installs it)");
    }
    let cpus = thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "{cpus} CPUs, load {} at start; {secs} s per run",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "\n{:<9} {:>6} {:>10} {:>12} {:>12} {:>12} {:>10}",
        "tool", "MiB/s", "steady", "first 100ms", "peak 100ms", "worst 1s", "CPU s/GiB"
    );
    for &r in &rates {
        let rate = r * MIB;
        let mut tools: Vec<(&str, Command)> = Vec::new();
        let mut t = Command::new(&throttle);
        t.args(["pipe", "-q", "-L", &rate.to_string()]);
        tools.push(("throttle", t));
        if pv {
            let mut p = Command::new("pv");
            p.args(["-q", "-L", &rate.to_string()]);
            tools.push(("pv", p));
        }
        for (name, cmd) in tools {
            let m = measure(cmd, rate, secs);
            println!(
                "{name:<9} {r:>6} {:>+9.3}% {:>11.3}× {:>11.3}× {:>+11.2}% {:>10.3}",
                m.steady * 100.0,
                m.first,
                m.peak,
                m.worst * 100.0,
                m.cpu_per_gib
            );
        }
    }

    if !args.iter().any(|a| a == "--skip-cpu") {
        // from a pipe into a pipe, as in the runs above (a sparse file makes GNU cat take a
        // slow kernel path: 3.4 s of system time per GiB here)
        println!(
            "\nno limit, zeros through a pipe for {:.0} s:",
            secs.min(10.0)
        );
        let mut list: Vec<(&str, Command)> = vec![("cat", Command::new("cat"))];
        if pv {
            let mut p = Command::new("pv");
            p.arg("-q");
            list.push(("pv", p));
        }
        let mut t = Command::new(&throttle);
        t.args(["pipe", "-q"]);
        list.push(("throttle", t));
        for (name, cmd) in list {
            let (cpu, mibs) = cpu_unlimited(cmd, secs.min(10.0));
            println!("{name:<9} {cpu:>7.3} CPU s/GiB  {mibs:>8.0} MiB/s");
        }
    }

    if !args.iter().any(|a| a == "--skip-change") {
        println!("\nrate change 1 KiB/s → 100 MiB/s, time until 64 KiB more are out:");
        let show = |x: Option<f64>| x.map_or("> 5 s".to_string(), |s| format!("{:.2} ms", s * 1e3));
        let sock = std::env::temp_dir().join(format!("throttle-bench-{}.sock", std::process::id()));
        let mut t = Command::new(&throttle);
        t.args(["pipe", "-q", "-L", "1K", "--control"]).arg(&sock);
        let s2 = sock.clone();
        let direct = change_latency(t, move |_| {
            let mut c = UnixStream::connect(&s2).expect("control socket");
            c.write_all(b"limit 100M\n").expect("send");
        });
        println!("throttle, control socket          {}", show(direct));
        let mut t = Command::new(&throttle);
        t.args(["pipe", "-q", "-L", "1K"]);
        let tb = throttle.clone();
        let via_set = change_latency(t, move |pid| {
            let _ = Command::new(&tb)
                .args(["set", &pid.to_string(), "-L", "100M"])
                .status();
        });
        println!("throttle set PID -L 100M           {}", show(via_set));
        if pv {
            let mut p = Command::new("pv");
            p.args(["-q", "-L", "1K"]);
            let via_pv = change_latency(p, |pid| {
                let _ = Command::new("pv")
                    .args(["-R", &pid.to_string(), "-L", &(100 * MIB).to_string()])
                    .status();
            });
            println!("pv -R PID -L 100M                  {}", show(via_pv));
        }
    }
}
