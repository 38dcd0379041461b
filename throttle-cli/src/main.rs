//! `throttle`: the command-line tool. `throttle pipe` copies stdin or files to stdout at a
//! limit (pv -L done right), `throttle set` changes a running pipe, `throttle proxy` puts
//! limits in front of any TCP service (`throttle ctl` is its admin client, `throttle check`
//! validates its config file), `throttle demo` runs the log-server showcase. Errors are one line on stderr and a non-zero exit (2: usage,
//! 1: anything else); a closed output pipe ends the process by SIGPIPE like other Unix tools.

extern crate alloc;

mod control;
mod copy;
mod ctl;
mod demo;
mod pipe;
mod progress;
mod proxy;
mod signals;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Bandwidth limits for pipes and TCP services.
#[derive(Parser, Debug)]
#[command(name = "throttle", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Copy stdin (or FILEs) to stdout at a limit, with a progress line on stderr (like pv -L).
    Pipe(Box<pipe::PipeArgs>),
    /// Change the limit of a running `throttle pipe` (by PID or by its control socket).
    Set(control::SetArgs),
    /// Put limits in front of a TCP service: listeners → upstreams, groups, per-client and
    /// per-connection limits, an admin API (`throttle proxy -c throttle.toml`).
    Proxy(Box<proxy::ProxyArgs>),
    /// Talk to a running proxy's admin API (stats, set, pause, reload, drain).
    Ctl(Box<ctl::CtlArgs>),
    /// Validate a proxy config file without applying it (like `nginx -t`).
    Check {
        /// The config file.
        #[arg(short = 'c', long = "config", value_name = "FILE")]
        config: std::path::PathBuf,
    },
    /// Run the showcase: a throttled TCP log server with four clients (`throttle demo --help`).
    #[command(disable_help_flag = true)]
    Demo {
        /// Arguments for the demo (`--secs N`, `--server-limit R`, `--groups`, `-i`, `--help`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// A failure to report: one line, then exit with `code`.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) message: String,
    pub(crate) code: u8,
}

impl Failure {
    /// A runtime failure (exit 1).
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            code: 1,
        }
    }

    /// A usage error (exit 2).
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            code: 2,
        }
    }
}

/// An I/O error without Rust's " (os error N)" tail, as other tools print it.
pub(crate) fn os_msg(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// clap's error as one line: its text up to the first blank line, lines joined, without the
/// `error: ` prefix and the usage block.
fn one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            break;
        }
        out.push(line.strip_prefix("error: ").unwrap_or(line));
    }
    out.join(" ")
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind::{DisplayHelp, DisplayVersion};
            if matches!(e.kind(), DisplayHelp | DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            eprintln!("throttle: {}", one_line(&e));
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Pipe(args) => pipe::run(*args),
        Command::Set(args) => control::set(args),
        Command::Proxy(args) => proxy::run(*args),
        Command::Ctl(args) => ctl::run(*args),
        Command::Check { config } => proxy::check(&config),
        Command::Demo { args } => return demo::main_with(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("throttle: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
