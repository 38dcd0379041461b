//! Live changes: every `throttle pipe` listens on a unix socket (`--control PATH`, or
//! `$XDG_RUNTIME_DIR/throttle/PID.sock`, else `/tmp/throttle-UID/PID.sock` in a directory only
//! its owner can enter), and `throttle set` talks to it.
//!
//! The protocol is one line each way (try it with `socat - UNIX:PATH`):
//! `limit RATE` → `ok RATE` (now in force) | `error MESSAGE`; `get` → `ok RATE BYTES`.

use core::time::Duration;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use clap::Args;
use throttle_spec::Rate;

use crate::{os_msg, Failure};

/// `throttle set`.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["pid", "control"])))]
pub(crate) struct SetArgs {
    /// The PID of a running `throttle pipe`.
    pid: Option<u32>,
    /// The control socket of the pipe (`throttle pipe --control PATH`) instead of a PID.
    #[arg(long, value_name = "PATH")]
    control: Option<PathBuf>,
    /// The new limit: 10M (MiB/s), 500kB/s, 800Mbit/s, off (no limit), pause.
    #[arg(short = 'L', long = "rate-limit", value_name = "RATE", required = true)]
    rate: Rate,
}

/// The directory of the default sockets, created (mode 0700) when `create`.
pub(crate) fn socket_dir(create: bool) -> Result<PathBuf, String> {
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| Path::new(d).is_dir()) {
        Some(d) => PathBuf::from(d).join("throttle"),
        None => {
            let uid = std::fs::metadata("/proc/self")
                .map(|m| m.uid())
                .unwrap_or(0);
            std::env::temp_dir().join(format!("throttle-{uid}"))
        }
    };
    if create {
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("{}: {e}", dir.display())),
        }
        // someone else's directory in /tmp must not receive our socket
        let meta = std::fs::metadata(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let me = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
        if me.is_some_and(|uid| uid != meta.uid()) || meta.permissions().mode() & 0o077 != 0 {
            return Err(format!(
                "{}: not a private directory of this user",
                dir.display()
            ));
        }
    }
    Ok(dir)
}

/// The default socket of process `pid`.
pub(crate) fn socket_for(pid: u32, create_dir: bool) -> Result<PathBuf, String> {
    Ok(socket_dir(create_dir)?.join(format!("{pid}.sock")))
}

/// A request from a control client.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Request {
    /// Set the limit.
    Limit(Rate),
    /// Report the limit and the bytes so far.
    Get,
}

/// Parses one request line; `Err` is the reply's message.
pub(crate) fn parse_request(line: &str) -> Result<Request, String> {
    let line = line.trim();
    let (cmd, arg) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    match cmd {
        "limit" | "rate" => arg
            .parse()
            .map(Request::Limit)
            .map_err(|e| format!("{arg:?}: {e}")),
        "get" => Ok(Request::Get),
        _ => Err(format!("unknown request {cmd:?} (limit RATE, get)")),
    }
}

/// `throttle set`: sends `limit RATE` and waits for the answer.
pub(crate) fn set(args: SetArgs) -> Result<(), Failure> {
    let path = match (&args.control, args.pid) {
        (Some(p), _) => p.clone(),
        (None, Some(pid)) => socket_for(pid, false).map_err(Failure::new)?,
        (None, None) => return Err(Failure::usage("give a PID or --control PATH")),
    };
    let who = match args.pid {
        Some(pid) if args.control.is_none() => format!("process {pid}"),
        _ => path.display().to_string(),
    };
    let stream = UnixStream::connect(&path).map_err(|e| {
        Failure::new(format!(
            "cannot reach {who} ({}: {}); is it a running `throttle pipe`?",
            path.display(),
            os_msg(&e)
        ))
    })?;
    let reply = exchange(stream, &format!("limit {}", args.rate))
        .map_err(|e| Failure::new(format!("{}: {}", path.display(), os_msg(&e))))?;
    match reply.strip_prefix("ok") {
        Some(_) => Ok(()),
        None => Err(Failure::new(format!(
            "{who}: {}",
            reply.strip_prefix("error ").unwrap_or(&reply)
        ))),
    }
}

/// Sends one line, reads one line back (5 s at most).
fn exchange(mut stream: UnixStream, line: &str) -> std::io::Result<String> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(format!("{line}\n").as_bytes())?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply)?;
    if reply.is_empty() {
        return Err(std::io::Error::other("no answer"));
    }
    Ok(reply.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_bad_ones_say_why() {
        assert_eq!(
            parse_request("limit 20M\n"),
            Ok(Request::Limit(Rate::PerSecond(20 << 20)))
        );
        assert_eq!(
            parse_request("limit 20 MiB/s"),
            Ok(Request::Limit(Rate::PerSecond(20 << 20)))
        );
        assert_eq!(parse_request("get"), Ok(Request::Get));
        assert!(parse_request("limit 20mbps")
            .unwrap_err()
            .contains("Mbit/s"));
        assert!(parse_request("jump").unwrap_err().contains("unknown"));
    }
}
