//! The `throttle` binary as users run it: real processes, real pipes, real unix sockets.
//! Timing bounds are generous (a busy 2-core machine must not make them flake); the precise
//! figures come from `benches/pipe_vs_pv.rs`.

extern crate alloc;

use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Instant;

fn throttle() -> Command {
    Command::new(env!("CARGO_BIN_EXE_throttle"))
}

/// A fresh private directory for one test's files and sockets.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("throttle-cli-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Deterministic bytes that are not all alike (xorshift).
fn data(n: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Runs `throttle ARGS` with `input` on stdin; returns (status, stdout, stderr, elapsed).
fn run(args: &[&str], input: Vec<u8>) -> (std::process::ExitStatus, Vec<u8>, String, Duration) {
    let start = Instant::now();
    let mut child = throttle()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    (
        out.status,
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        start.elapsed(),
    )
}

fn one_line(stderr: &str) -> &str {
    assert_eq!(stderr.lines().count(), 1, "one line expected: {stderr:?}");
    assert!(stderr.starts_with("throttle: "), "{stderr:?}");
    stderr.trim_end()
}

#[test]
fn pipe_unlimited_copies_bytes_exactly() {
    let input = data(3 << 20);
    let (status, out, err, _) = run(&["pipe"], input.clone());
    assert!(status.success(), "{status:?} {err}");
    assert!(out == input, "output differs ({} bytes)", out.len());
    assert_eq!(err, "", "no progress when stderr is not a terminal");
}

#[test]
fn pipe_files_in_order_with_dash_for_stdin() {
    let dir = scratch("files");
    let (a, b) = (dir.join("a"), dir.join("b"));
    std::fs::write(&a, b"first ").unwrap();
    std::fs::write(&b, b" third").unwrap();
    let (status, out, err, _) = run(
        &["pipe", a.to_str().unwrap(), "-", b.to_str().unwrap()],
        b"second".to_vec(),
    );
    assert!(status.success(), "{err}");
    assert_eq!(out, b"first second third");
}

#[test]
fn pipe_limit_paces_output() {
    // 1 MiB at 2 MiB/s: 0.5 s. The initial bucket is taken, so it cannot be much faster.
    let input = data(1 << 20);
    let (status, out, err, elapsed) = run(&["pipe", "-L", "2M", "-q"], input.clone());
    assert!(status.success(), "{err}");
    assert!(out == input);
    assert!(
        elapsed >= Duration::from_millis(450) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
}

#[test]
fn pipe_schedule_sets_the_rate_and_bad_ones_are_refused() {
    let input = data(1 << 20);
    let (status, out, err, elapsed) = run(
        &["pipe", "-q", "--schedule", "2M daily", "--tz", "UTC"],
        input.clone(),
    );
    assert!(status.success(), "{err}");
    assert!(out == input);
    assert!(elapsed >= Duration::from_millis(450), "{elapsed:?}");

    let (status, _, err, _) = run(&["pipe", "--schedule", "2M Funday"], Vec::new());
    assert_eq!(status.code(), Some(2));
    assert!(one_line(&err).contains("Mon-Fri"), "{err}");
    let (status, _, err, _) = run(
        &["pipe", "--schedule", "2M daily", "--tz", "Mars/Olympus"],
        Vec::new(),
    );
    assert_eq!(status.code(), Some(2));
    assert!(one_line(&err).contains("time zone"), "{err}");
}

#[test]
fn bad_input_is_one_line_and_nonzero_exit() {
    let (status, _, err, _) = run(&["pipe", "-L", "10mbps"], Vec::new());
    assert_eq!(status.code(), Some(2));
    let line = one_line(&err);
    assert!(line.contains("Mbit/s") && line.contains("MiB/s"), "{line}");

    let (status, _, err, _) = run(&["pipe", "/nonexistent/throttle-input"], Vec::new());
    assert_eq!(status.code(), Some(1));
    assert!(one_line(&err).contains("No such file"), "{err}");

    let (status, _, err, _) = run(&["pipe", "-B", "0"], Vec::new());
    assert_eq!(status.code(), Some(2), "{err}");
    one_line(&err);

    let (status, _, err, _) = run(&["set", "-L", "1M"], Vec::new());
    assert_eq!(status.code(), Some(2));
    one_line(&err);

    let (status, _, err, _) = run(&["frobnicate"], Vec::new());
    assert_eq!(status.code(), Some(2));
    one_line(&err);
}

#[test]
fn closed_output_ends_pipe_by_sigpipe_silently() {
    let mut child = throttle()
        .args(["pipe", "-f"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = thread::spawn(move || {
        let chunk = vec![b'y'; 1 << 16];
        while stdin.write_all(&chunk).is_ok() {}
    });
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 10];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert_eq!(out.status.signal(), Some(13), "{:?}", out.status);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("rror"), "no error message: {err}");
}

/// Counts what a pipe writes, timestamped.
struct Reader {
    bytes: Arc<AtomicU64>,
    handle: thread::JoinHandle<()>,
}

fn endless_pipe(args: &[&str], env: &[(&str, &PathBuf)]) -> (Child, Reader) {
    let mut cmd = throttle();
    cmd.arg("pipe").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    thread::spawn(move || {
        let chunk = vec![0u8; 1 << 16];
        while stdin.write_all(&chunk).is_ok() {}
    });
    let mut stdout = child.stdout.take().unwrap();
    let bytes = Arc::new(AtomicU64::new(0));
    let b = bytes.clone();
    let handle = thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            b.fetch_add(n as u64, Ordering::Relaxed);
        }
    });
    (child, Reader { bytes, handle })
}

fn wait_for(path: &std::path::Path) {
    let t0 = Instant::now();
    while !path.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{path:?} never appeared"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until `bytes` passed `n`; the time it took.
fn time_to(reader: &Reader, n: u64, limit: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    while reader.bytes.load(Ordering::Relaxed) < n {
        if t0.elapsed() > limit {
            return None;
        }
        thread::sleep(Duration::from_millis(1));
    }
    Some(t0.elapsed())
}

#[test]
fn set_reaches_pipe_asleep_at_1k_through_control_socket() {
    let dir = scratch("control");
    let sock = dir.join("pipe.sock");
    let (mut child, reader) = endless_pipe(&["-L", "1K", "--control", sock.to_str().unwrap()], &[]);
    wait_for(&sock);
    thread::sleep(Duration::from_millis(300));
    let before = reader.bytes.load(Ordering::Relaxed);
    assert!(before < 4096, "1 KiB/s for ~0.3 s: {before} bytes");
    let (status, _, err, _) = run(
        &["set", "--control", sock.to_str().unwrap(), "-L", "100M"],
        Vec::new(),
    );
    assert!(status.success(), "{err}");
    // 8 MiB more: 80 ms at 100 MiB/s, 2.3 hours at 1 KiB/s
    let took = time_to(&reader, before + (8 << 20), Duration::from_secs(5));
    assert!(
        took.is_some(),
        "the new limit did not reach the sleeping pipe"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    reader.handle.join().unwrap();
    assert!(!sock.exists() || std::os::unix::net::UnixStream::connect(&sock).is_err());
}

#[test]
fn set_by_pid_finds_the_default_socket_and_pauses() {
    let dir = scratch("pid");
    let env = [("XDG_RUNTIME_DIR", &dir)];
    let (mut child, reader) = endless_pipe(&["-L", "off"], &env);
    let sock = dir.join("throttle").join(format!("{}.sock", child.id()));
    wait_for(&sock);
    let pid = child.id().to_string();
    let set = |rate: &str| {
        let out = throttle()
            .args(["set", &pid, "-L", rate])
            .env("XDG_RUNTIME_DIR", &dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    set("pause");
    thread::sleep(Duration::from_millis(200)); // what was in flight drains
    let paused_at = reader.bytes.load(Ordering::Relaxed);
    thread::sleep(Duration::from_millis(500));
    let after = reader.bytes.load(Ordering::Relaxed);
    // one piece (≤ 64 KiB) and a pipe buffer may still trickle out, not megabytes
    assert!(
        after - paused_at <= 1 << 20,
        "paused but {} bytes went out",
        after - paused_at
    );
    set("1M");
    assert!(time_to(&reader, after + (256 << 10), Duration::from_secs(5)).is_some());
    child.kill().unwrap();
    child.wait().unwrap();
    reader.handle.join().unwrap();
}

#[test]
fn numeric_progress_for_scripts() {
    let input = data(600 << 10);
    let (status, out, err, _) = run(
        &["pipe", "-n", "-i", "0.2", "-L", "1M", "-s", "600K"],
        input.clone(),
    );
    assert!(status.success(), "{err}");
    assert!(out == input);
    let lines: Vec<Vec<f64>> = err
        .lines()
        .map(|l| l.split(' ').map(|w| w.parse().unwrap()).collect())
        .collect();
    assert!(lines.len() >= 2, "{err}");
    assert!(lines.iter().all(|l| l.len() == 4), "{err}");
    let last = lines.last().unwrap();
    assert_eq!((last[1], last[3]), ((600 << 10) as f64, 100.0), "{err}");
    // a middle line: the rate near 1 MiB/s (generous: ±50 %)
    let mid = &lines[1];
    assert!((mid[2] - 1048576.0).abs() < 524288.0, "{err}");
}

#[test]
fn forced_progress_line_names_rate_and_limit() {
    let (status, _, err, _) = run(&["pipe", "-f", "-i", "0.2", "-L", "1M"], data(400 << 10));
    assert!(status.success(), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.contains("400 KiB") || last.contains("400.00 KiB"),
        "{err}"
    );
    assert!(last.contains("limit 1.00 MiB/s"), "{err}");
}

#[test]
fn demo_runs_under_the_tool() {
    let out = throttle().args(["demo", "--secs", "2"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("totals over"), "{text}");
    let out = throttle()
        .args(["demo", "--clients", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn blocked_writer_saves_no_credit() {
    // 1 MiB/s; the reader stops for 1.5 s (the pipe fills, throttle blocks in write), then
    // reads as fast as it can. With pv -R style accounting, 1.5 s of credit (1.5 MiB) would
    // rush out; here only the pipe's buffer, one burst (50 ms) and the new time's share.
    let mut child = throttle()
        .args(["pipe", "-q", "-L", "1M"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    thread::spawn(move || {
        let chunk = vec![0u8; 1 << 16];
        while stdin.write_all(&chunk).is_ok() {}
    });
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = vec![0u8; 1 << 16];
    stdout.read_exact(&mut buf[..1]).unwrap();
    thread::sleep(Duration::from_millis(1500));
    let resumed = Instant::now();
    let mut got = 0usize;
    while resumed.elapsed() < Duration::from_millis(300) {
        got += stdout.read(&mut buf).unwrap();
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // pipe buffer (64 KiB by default, up to 1 MiB if raised) + 50 KiB + 300 ms at 1 MiB/s
    // ≈ 0.4 MiB; a pile-up would be ≥ 1.8 MiB
    assert!(
        got < 1400 << 10,
        "{} KiB in 300 ms after the block",
        got >> 10
    );
}

#[test]
fn progress_right_after_set_shows_the_new_rate() {
    let dir = scratch("progress");
    let sock = dir.join("p.sock");
    let start = Instant::now();
    let mut child = throttle()
        .args(["pipe", "-n", "-i", "0.25", "-L", "100K", "--control"])
        .arg(&sock)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    thread::spawn(move || {
        let chunk = vec![0u8; 1 << 16];
        while stdin.write_all(&chunk).is_ok() {}
    });
    let mut stdout = child.stdout.take().unwrap();
    thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        while matches!(stdout.read(&mut buf), Ok(n) if n > 0) {}
    });
    wait_for(&sock);
    thread::sleep(Duration::from_millis(800));
    let set_at = start.elapsed().as_secs_f64();
    let (status, _, err, _) = run(
        &["set", "--control", sock.to_str().unwrap(), "-L", "1M"],
        Vec::new(),
    );
    assert!(status.success(), "{err}");
    thread::sleep(Duration::from_millis(900));
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    // the first line at least 300 ms after the change: measured since the change or over an
    // interval after it, so at the new rate (a 1 s moving average would still show < 0.6 MiB/s)
    let line = text
        .lines()
        .map(|l| {
            l.split(' ')
                .map(|w| w.parse::<f64>().unwrap())
                .collect::<Vec<_>>()
        })
        .find(|f| f[0] >= set_at + 0.3)
        .unwrap_or_else(|| panic!("no line after the change: {text}"));
    assert!(
        (line[2] - 1048576.0).abs() < 0.3 * 1048576.0,
        "rate {} right after the change to 1 MiB/s:\n{text}",
        line[2]
    );
}

#[test]
fn interrupt_removes_the_socket_and_ends_by_the_signal() {
    let dir = scratch("sigint");
    let sock = dir.join("i.sock");
    let (mut child, reader) = endless_pipe(&["-L", "1M", "--control", sock.to_str().unwrap()], &[]);
    wait_for(&sock);
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    reader.handle.join().unwrap();
    assert_eq!(status.signal(), Some(2), "{status:?}");
    assert!(!sock.exists(), "the control socket was left behind");
}
