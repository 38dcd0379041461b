//! Limit changes: the scripted ones of a normal run, and the commands of the interactive mode.
//! Both go through [`apply`], which changes the limit on the live [`LogServer`]: the server
//! node for the server limit, every registered connection for the per-connection limit.

use crate::demo::args::{parse_rate, show_rate};
use crate::demo::server::LogServer;

/// One limit change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// New server limit (`None`: unlimited).
    Server(Option<u64>),
    /// New per-connection limit (`None`: unlimited).
    Conn(Option<u64>),
}

/// A line typed in interactive mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Command {
    /// Change a limit.
    Set(Change),
    /// Print the commands.
    Help,
    /// Stop.
    Quit,
}

/// The limits in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Current {
    /// Server limit, bytes per second.
    pub(crate) server: Option<u64>,
    /// Per-connection limit, bytes per second.
    pub(crate) conn: Option<u64>,
}

impl Current {
    /// What each greedy client should get, in bytes per second (`None`: no limit at all), for
    /// groups given as `(weight, clients)`: weighted max-min ("water-filling") of the server
    /// limit over the groups, each group asking for at most `clients × per-connection limit`,
    /// split equally inside a group.
    pub(crate) fn expected_per_client(&self, groups: &[(u16, usize)]) -> Option<Vec<f64>> {
        let cap = |n: usize| self.conn.map(|c| c as f64 * n as f64);
        let mut share: Vec<Option<f64>> = vec![None; groups.len()];
        match self.server {
            None => {
                for (g, &(_, n)) in groups.iter().enumerate() {
                    share[g] = Some(cap(n)?);
                }
            }
            Some(server) => {
                let mut left = server as f64;
                loop {
                    let open: Vec<usize> =
                        (0..groups.len()).filter(|&g| share[g].is_none()).collect();
                    if open.is_empty() {
                        break;
                    }
                    let weights: f64 = open.iter().map(|&g| f64::from(groups[g].0)).sum();
                    let per_weight = left / weights;
                    let capped: Vec<usize> = open
                        .iter()
                        .copied()
                        .filter(|&g| {
                            cap(groups[g].1)
                                .is_some_and(|c| c <= per_weight * f64::from(groups[g].0))
                        })
                        .collect();
                    if capped.is_empty() {
                        for g in open {
                            share[g] = Some(per_weight * f64::from(groups[g].0));
                        }
                        break;
                    }
                    for g in capped {
                        let c = cap(groups[g].1).unwrap_or(0.0);
                        share[g] = Some(c);
                        left -= c;
                    }
                }
            }
        }
        let mut out = Vec::new();
        for (g, &(_, n)) in groups.iter().enumerate() {
            let each = share[g].unwrap_or(0.0) / n.max(1) as f64;
            out.extend(core::iter::repeat_n(each, n));
        }
        Some(out)
    }

    /// What `n` greedy clients should get together, and which limit decides it.
    pub(crate) fn expected_total(&self, n: usize) -> (Option<u64>, &'static str) {
        let conns = self.conn.map(|c| c * n as u64);
        match (self.server, conns) {
            (Some(s), Some(c)) if c < s => (Some(c), "per-conn"),
            (Some(s), _) => (Some(s), "server"),
            (None, Some(c)) => (Some(c), "per-conn"),
            (None, None) => (None, "none"),
        }
    }
}

/// The scripted changes of a `secs`-second run, as `(after second k, change)`: at a third of
/// the run the server limit doubles; at two thirds the per-connection limit drops to a third.
pub(crate) fn script(secs: u32, start: Current) -> Vec<(u32, Change)> {
    let mut out = Vec::new();
    if secs < 3 {
        return out;
    }
    let first = (secs / 3).max(1);
    let second = (2 * secs / 3).max(first + 1);
    if let Some(s) = start.server {
        out.push((first, Change::Server(Some(s.saturating_mul(2)))));
    }
    if let Some(c) = start.conn {
        out.push((second, Change::Conn(Some((c / 3).max(1)))));
    }
    out
}

pub(crate) const COMMANDS: &str =
    "commands: `server RATE`, `conn RATE` (e.g. 4M, 512K, off), `help`, `quit`";

/// Parses one typed line.
pub(crate) fn parse_command(line: &str) -> Result<Command, String> {
    let mut words = line.split_whitespace();
    let cmd = words.next().unwrap_or("").to_ascii_lowercase();
    let arg = words.next();
    let rate = || parse_rate(arg.ok_or("a rate is needed, e.g. `server 4M`")?);
    match cmd.as_str() {
        "server" | "s" => Ok(Command::Set(Change::Server(rate()?))),
        "conn" | "c" | "connection" => Ok(Command::Set(Change::Conn(rate()?))),
        "help" | "h" | "?" | "" => Ok(Command::Help),
        "quit" | "q" | "exit" => Ok(Command::Quit),
        other => Err(format!("unknown command {other:?}; {COMMANDS}")),
    }
}

/// Applies `change` to the live server and describes what happened.
pub(crate) fn apply(server: &LogServer, current: &mut Current, change: Change) -> String {
    let live = server.connections();
    match change {
        Change::Server(rate) => match server.set_server_limit(rate) {
            Ok(()) => {
                let was = core::mem::replace(&mut current.server, rate);
                format!(
                    "server limit {} → {} (one node above all {live} connections)",
                    show_rate(was),
                    show_rate(rate)
                )
            }
            Err(e) => format!("server limit not changed: {e}"),
        },
        Change::Conn(rate) => match server.set_conn_limit(rate) {
            Ok(()) => {
                let was = core::mem::replace(&mut current.conn, rate);
                format!(
                    "per-connection limit {} → {} (set on all {live} live connections)",
                    show_rate(was),
                    show_rate(rate)
                )
            }
            Err(e) => format!("per-connection limit not changed: {e}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::MIB;

    const DEFAULT: Current = Current {
        server: Some(8 * MIB),
        conn: Some(3 * MIB),
    };

    #[test]
    fn script_default_run_doubles_server_then_cuts_conn() {
        assert_eq!(
            script(24, DEFAULT),
            vec![
                (8, Change::Server(Some(16 * MIB))),
                (16, Change::Conn(Some(MIB)))
            ]
        );
    }

    #[test]
    fn script_short_run_keeps_changes_apart() {
        assert_eq!(
            script(5, DEFAULT),
            vec![
                (1, Change::Server(Some(16 * MIB))),
                (3, Change::Conn(Some(MIB)))
            ]
        );
        assert!(script(2, DEFAULT).is_empty());
    }

    #[test]
    fn expected_total_names_the_binding_limit() {
        assert_eq!(DEFAULT.expected_total(4), (Some(8 * MIB), "server"));
        assert_eq!(DEFAULT.expected_total(2), (Some(6 * MIB), "per-conn"));
        let open = Current {
            server: None,
            conn: None,
        };
        assert_eq!(open.expected_total(4), (None, "none"));
    }

    #[test]
    fn expected_split_by_weight_then_capped() {
        let mb = |v: Vec<f64>| v.iter().map(|x| x / MIB as f64).collect::<Vec<_>>();
        // 8 MiB/s over weights 2:1 with two clients each: 16/3 and 8/3 per group
        let got = mb(DEFAULT.expected_per_client(&[(2, 2), (1, 2)]).unwrap());
        let want = [8.0 / 3.0, 8.0 / 3.0, 4.0 / 3.0, 4.0 / 3.0];
        assert!(
            got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-9),
            "{got:?}"
        );
        // 16 MiB/s: group A capped at 2 × 3, group B takes the rest but is capped too
        let wide = Current {
            server: Some(16 * MIB),
            ..DEFAULT
        };
        assert_eq!(
            mb(wide.expected_per_client(&[(2, 2), (1, 2)]).unwrap()),
            vec![3.0; 4]
        );
        // 10 MiB/s: A capped at 6, B gets the remaining 4
        let mid = Current {
            server: Some(10 * MIB),
            ..DEFAULT
        };
        assert_eq!(
            mb(mid.expected_per_client(&[(2, 2), (1, 2)]).unwrap()),
            vec![3.0, 3.0, 2.0, 2.0]
        );
        let open = Current {
            server: None,
            conn: None,
        };
        assert_eq!(open.expected_per_client(&[(1, 4)]), None);
    }

    #[test]
    fn commands_parse() {
        assert_eq!(
            parse_command("server 4M"),
            Ok(Command::Set(Change::Server(Some(4 * MIB))))
        );
        assert_eq!(
            parse_command("conn off"),
            Ok(Command::Set(Change::Conn(None)))
        );
        assert_eq!(parse_command(" quit "), Ok(Command::Quit));
        assert!(parse_command("server").is_err());
        assert!(parse_command("faster").is_err());
    }
}
