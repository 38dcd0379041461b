//! Command-line options (hand-rolled: five flags do not need a parser crate) and the rate
//! syntax shared with the interactive mode and the `throttle` tool (`throttle-spec`): `8M`,
//! `8MiB`, `512K`, `1.5M`, `1000000` (bytes per second; K/M/G are powers of 1024, kB/MB
//! powers of 1000), `0`/`off`/`unlimited` for no limit.

use core::fmt;

use crate::demo::MIB;

/// What the demo runs.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Options {
    /// Seconds to run (`None`: interactive mode without `--secs`, until `quit`).
    pub(crate) secs: Option<u32>,
    /// Server limit, bytes per second (`None`: unlimited).
    pub(crate) server_limit: Option<u64>,
    /// Per-connection limit, bytes per second (`None`: unlimited).
    pub(crate) conn_limit: Option<u64>,
    /// Number of clients.
    pub(crate) clients: usize,
    /// Read new limits from the terminal instead of the scripted changes.
    pub(crate) interactive: bool,
    /// Two groups of clients under the server, weights 2 and 1.
    pub(crate) groups: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            secs: Some(24),
            server_limit: Some(8 * MIB),
            conn_limit: Some(3 * MIB),
            clients: 4,
            interactive: false,
            groups: false,
        }
    }
}

pub(crate) const USAGE: &str = "\
usage: throttle demo [options]    (from a clone: cargo run --release -p throttle-cli -- demo [options])

A log server on 127.0.0.1 streams generated log lines to N clients over TCP, under a server
limit and a per-connection limit; every second it prints what each client received. Scripted:
at 1/3 of the run the server limit doubles, at 2/3 the per-connection limit drops to a third.

options:
  --secs N            run N seconds (default 24; interactive: until `quit`)
  --server-limit R    server limit (default 8M)
  --conn-limit R      per-connection limit (default 3M)
  --clients N         clients, 1..=12 (default 4)
  --groups            two groups of clients (the first half weight 2, the rest weight 1)
                      sharing the server limit 2:1 (each its own listener)
  --interactive, -i   no script: type `server R`, `conn R` or `quit` while it runs
  --help, -h          this text
R: bytes per second, e.g. 8M, 512K, 1.5M, 10MB, 1000000 (K/M/G = 1024^n, kB/MB = 1000^n);
   0 or off = unlimited";

/// Why the command line was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ArgsError {
    /// `--help` was asked for.
    Help,
    /// Anything else: the message to print.
    Bad(String),
}

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgsError::Help => f.write_str(USAGE),
            ArgsError::Bad(msg) => write!(f, "{msg}\n\n{USAGE}"),
        }
    }
}

/// Parses a rate with the project's grammar (`throttle-spec`): `Ok(None)` means unlimited.
pub(crate) fn parse_rate(s: &str) -> Result<Option<u64>, String> {
    match s.parse::<throttle_spec::Rate>() {
        Ok(r) => Ok(r.bytes_per_second()),
        Err(e) => Err(format!("{s:?}: {e}")),
    }
}

/// `8.00 MiB/s`, `512.0 KiB/s` or `unlimited`.
pub(crate) fn show_rate(rate: Option<u64>) -> String {
    match rate {
        None => "unlimited".into(),
        Some(r) if r >= MIB => format!("{:.2} MiB/s", r as f64 / MIB as f64),
        Some(r) => format!("{:.1} KiB/s", r as f64 / 1024.0),
    }
}

/// Parses the arguments after the program name.
pub(crate) fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, ArgsError> {
    let mut o = Options::default();
    let mut secs_given = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| ArgsError::Bad(format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--help" | "-h" => return Err(ArgsError::Help),
            "--interactive" | "-i" => o.interactive = true,
            "--groups" => o.groups = true,
            "--secs" => {
                let v = value()?;
                let n: u32 = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=86_400).contains(n))
                    .ok_or_else(|| ArgsError::Bad(format!("--secs: not 1..=86400: {v:?}")))?;
                o.secs = Some(n);
                secs_given = true;
            }
            "--server-limit" => {
                o.server_limit = parse_rate(&value()?).map_err(ArgsError::Bad)?;
            }
            "--conn-limit" => o.conn_limit = parse_rate(&value()?).map_err(ArgsError::Bad)?,
            "--clients" => {
                let v = value()?;
                o.clients = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=12).contains(n))
                    .ok_or_else(|| ArgsError::Bad(format!("--clients: not 1..=12: {v:?}")))?;
            }
            _ => return Err(ArgsError::Bad(format!("unknown argument {arg:?}"))),
        }
    }
    if o.interactive && !secs_given {
        o.secs = None;
    }
    if o.groups && o.clients < 2 {
        return Err(ArgsError::Bad("--groups needs at least 2 clients".into()));
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn rates_parse_with_binary_units() {
        assert_eq!(parse_rate("8M"), Ok(Some(8 * MIB)));
        assert_eq!(parse_rate("8MiB/s"), Ok(Some(8 * MIB)));
        assert_eq!(parse_rate("512k"), Ok(Some(512 * 1024)));
        assert_eq!(parse_rate("1.5M"), Ok(Some(3 * MIB / 2)));
        assert_eq!(parse_rate("1000"), Ok(Some(1000)));
        assert_eq!(parse_rate("off"), Ok(None));
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("3X").is_err());
    }

    #[test]
    fn no_arguments_give_the_defaults() {
        assert_eq!(parse(args("")), Ok(Options::default()));
    }

    #[test]
    fn flags_with_space_or_equals() {
        let o = parse(args(
            "--secs 5 --server-limit=4M --conn-limit 1M --clients 6",
        ))
        .unwrap();
        assert_eq!(o.secs, Some(5));
        assert_eq!(o.server_limit, Some(4 * MIB));
        assert_eq!(o.conn_limit, Some(MIB));
        assert_eq!(o.clients, 6);
    }

    #[test]
    fn interactive_without_secs_runs_until_quit() {
        assert_eq!(parse(args("-i")).unwrap().secs, None);
        assert_eq!(parse(args("-i --secs 9")).unwrap().secs, Some(9));
    }

    #[test]
    fn bad_arguments_are_refused() {
        assert!(matches!(parse(args("--clients 0")), Err(ArgsError::Bad(_))));
        assert!(matches!(parse(args("--secs")), Err(ArgsError::Bad(_))));
        assert!(matches!(parse(args("--what")), Err(ArgsError::Bad(_))));
        assert_eq!(parse(args("--help")), Err(ArgsError::Help));
    }
}
