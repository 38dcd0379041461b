//! `throttle-redis-fleet`: the fleet demo and benchmark, and the worker processes they (and
//! the multi-process tests) start.
//!
//! ```text
//! throttle-redis-fleet demo  [--k 3] [--rate 41943040] [--secs 30] [--weights 1,1,1]
//!                            [--policy last|closed|open] [--kill-at 10] [--restart-at 13]
//!                            [--change-at 20] [--new-rate 20971520]
//! throttle-redis-fleet bench [--quick 1] [--only steady,weighted,idle,calls,outage,asleep,seed003]
//! throttle-redis-fleet worker --url U --name N --rate R [--weight W] [--cap C]
//!                            [--policy P] [--hold-ms H] [--lease-ms T] [--max-lease-ms M] [--secs S]
//!                            [--idle-from S --idle-to S] [--conns 4]
//! throttle-redis-fleet permits --url U --name N [--workers 3] [--interval-ms 3000]
//!                            [--max 2] [--secs 60] [--window-ms W] [--retry-ms 1000]
//! ```
//!
//! `demo` starts its own `redis-server` on a free port (never the one on 6379), runs K
//! workers sharing one limit and prints each worker's rate and the total every second while
//! it kills and restarts Redis and changes the limit.

extern crate alloc;

mod bench;
mod demo;
mod worker;

use std::collections::HashMap;
use std::process::ExitCode;

/// `--key value` pairs after the subcommand.
pub(crate) struct Args(HashMap<String, String>);

impl Args {
    fn parse(args: &[String]) -> Result<Args, String> {
        let mut map = HashMap::new();
        let mut it = args.iter();
        while let Some(k) = it.next() {
            let key = k
                .strip_prefix("--")
                .ok_or_else(|| format!("expected --option, got {k}"))?;
            let v = it.next().ok_or_else(|| format!("--{key} needs a value"))?;
            map.insert(key.to_owned(), v.clone());
        }
        Ok(Args(map))
    }

    pub(crate) fn str(&self, key: &str, default: &str) -> String {
        self.0
            .get(key)
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    }

    pub(crate) fn num(&self, key: &str, default: u64) -> Result<u64, String> {
        match self.0.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("--{key}: not a number: {v}")),
        }
    }

    pub(crate) fn opt(&self, key: &str) -> Result<Option<u64>, String> {
        match self.0.get(key) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| format!("--{key}: not a number: {v}")),
        }
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = argv.split_first() else {
        eprintln!("usage: throttle-redis-fleet demo|bench|worker|permits [--option value]…");
        return ExitCode::from(2);
    };
    let args = match Args::parse(rest) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let r = match cmd.as_str() {
        "worker" => worker::worker(&args),
        "permits" => worker::permits(&args),
        "demo" => demo::demo(&args),
        "bench" => bench::bench(&args),
        other => Err(format!("unknown command {other}")),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("throttle-redis-fleet: {e}");
            ExitCode::FAILURE
        }
    }
}
