//! `throttle demo`: the showcase, the TCP log server of the first seed scenario. `main.rs`
//! hands it the arguments after `demo` and exits with what [`main_with`] returns.
//!
//! A server on 127.0.0.1 (port 0) streams endless generated log lines over raw TCP to four
//! clients under a server limit (8 MiB/s) and a per-connection limit (3 MiB/s). The clients
//! read as fast as they can; once a second the demo prints what each of them received, the
//! total, what the limits allow and what the server node's statistics say. At a third of the
//! run the server limit doubles, at two thirds the per-connection limit drops to a third: the
//! next rows show every existing connection following. `--help` lists the options, including
//! two weighted groups of clients (`--groups`) and an interactive mode that reads new limits
//! from the terminal. It has its own hand-rolled options (`args.rs`), not clap's: the tool
//! passes everything after `demo` through unchanged.

mod args;
mod clients;
mod control;
mod logs;
mod server;
mod view;

use core::net::SocketAddr;
use core::time::Duration;
use std::io::BufRead;
use std::process::ExitCode;

use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use crate::demo::args::{show_rate, ArgsError, Options};
use crate::demo::control::{Command, Current};
use crate::demo::server::LogServer;

/// One mebibyte, in bytes.
const MIB: u64 = 1 << 20;

/// Runs the demo with `args` (the arguments after the program name, `--help` for the list)
/// and returns the process's exit code: 0, 1 when it failed, 2 for bad arguments.
pub(crate) fn main_with(args: impl IntoIterator<Item = String>) -> ExitCode {
    let opts = match args::parse(args) {
        Ok(o) => o,
        Err(ArgsError::Help) => {
            println!("{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(opts));
    // Client and server tasks are endless: stop them without waiting.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Typed lines, read on a plain thread (a blocking stdin read must not hold up the runtime).
fn commands() -> mpsc::UnboundedReceiver<Result<Command, String>> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(control::parse_command(&line)).is_err() {
                return;
            }
        }
        let _ = tx.send(Ok(Command::Quit));
    });
    rx
}

async fn run(opts: Options) -> std::io::Result<()> {
    let mut current = Current {
        server: opts.server_limit,
        conn: opts.conn_limit,
    };
    // (weight, clients) per group; the first group gets the odd client.
    let groups: Vec<(u16, usize)> = if opts.groups {
        vec![(2, opts.clients.div_ceil(2)), (1, opts.clients / 2)]
    } else {
        vec![(1, opts.clients)]
    };
    let weights: Vec<u16> = groups.iter().map(|g| g.0).collect();
    let server = LogServer::start(current.server, current.conn, &weights).await?;
    let addrs: Vec<SocketAddr> = groups
        .iter()
        .enumerate()
        .flat_map(|(g, &(_, n))| core::iter::repeat_n(server.addr(g), n))
        .collect();
    let script = match (opts.interactive, opts.secs) {
        (false, Some(secs)) => control::script(secs, current),
        _ => Vec::new(),
    };

    if opts.groups {
        println!(
            "throttle demo: a log server streams generated log lines to {} clients in two groups",
            opts.clients
        );
        let (a, b) = (groups[0].1, groups[1].1);
        println!(
            "  group A, weight 2: clients 1–{a} on {}; group B, weight 1: clients {}–{} on {}",
            server.addr(0),
            a + 1,
            a + b,
            server.addr(1)
        );
    } else {
        println!(
            "throttle demo: a log server on {} streams generated log lines to {} clients",
            server.addr(0),
            opts.clients
        );
    }
    println!(
        "limits: server {}, per connection {}",
        show_rate(current.server),
        show_rate(current.conn)
    );
    for (at, change) in &script {
        let what = match change {
            control::Change::Server(r) => format!("the server limit becomes {}", show_rate(*r)),
            control::Change::Conn(r) => {
                format!("the per-connection limit becomes {}", show_rate(*r))
            }
        };
        println!("scripted: after {at} s {what}");
    }
    let mut typed = if opts.interactive {
        println!("interactive: {}", control::COMMANDS);
        Some(commands())
    } else {
        None
    };
    println!(
        "MiB/s received by each client in each second (measured by the clients); `expect`: what \
         the limits allow each one;\nlast column: the server node's smoothed rate (1 s EWMA) \
         from throttle's statistics\n"
    );

    let counters = clients::start(&addrs).await?;
    let start = Instant::now();
    let mut ticker =
        tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut prev = vec![0u64; opts.clients];
    let mut prev_at = start;
    let mut second = 0u32;
    let header = view::header(opts.clients);
    let expect = |current: &Current| {
        view::expect_row(
            current.expected_per_client(&groups).as_deref(),
            opts.clients,
        )
    };
    println!("{header}");
    println!("{}", expect(&current));
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                second += 1;
                let now = Instant::now();
                let bytes = counters.bytes();
                let deltas: Vec<u64> = bytes.iter().zip(&prev).map(|(b, p)| b - p).collect();
                let secs = now.duration_since(prev_at).as_secs_f64();
                let t = now.duration_since(start).as_secs_f64();
                if second > 1 && second % 20 == 1 {
                    println!("{header}");
                }
                println!("{}", view::row(t, &deltas, secs, current, server.stats().rate));
                (prev, prev_at) = (bytes, now);
                if opts.secs == Some(second) {
                    break;
                }
                for (_, change) in script.iter().filter(|(at, _)| *at == second) {
                    println!("  ── {second} s: {}", control::apply(&server, &mut current, *change));
                    println!("{}", expect(&current));
                }
            }
            Some(cmd) = async { typed.as_mut()?.recv().await }, if typed.is_some() => {
                let t = start.elapsed().as_secs_f64();
                match cmd {
                    Ok(Command::Set(change)) => {
                        println!("  ── {t:.1} s: {}", control::apply(&server, &mut current, change));
                        println!("{}", expect(&current));
                    }
                    Ok(Command::Help) => println!("  {}", control::COMMANDS),
                    Ok(Command::Quit) => break,
                    Err(msg) => println!("  {msg}"),
                }
            }
        }
    }
    let elapsed = prev_at.duration_since(start).as_secs_f64();
    println!(
        "\n{}",
        view::totals(&prev, counters.lines(), elapsed, server.stats().granted)
    );
    Ok(())
}
