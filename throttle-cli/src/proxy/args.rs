//! `throttle proxy`'s command line: the flags, and the [`Plan`] from the flags or the file
//! (the flags' limits and admin settings on top of the file's).

use std::path::PathBuf;

use clap::Args;
use throttle_spec::Limit;

use super::config::{self, File, ListenerFile, Pair, Plan};
use crate::Failure;

/// `throttle proxy`: from a config file (`-c`) or from flags (`-l`, `-u`, rates).
#[derive(Args, Debug, Default)]
pub(crate) struct ProxyArgs {
    /// Config file (TOML; `throttle check -c FILE` validates it). Reloaded on SIGHUP.
    #[arg(short = 'c', long = "config", value_name = "FILE", conflicts_with_all = ["listen", "upstream"])]
    pub(crate) config: Option<PathBuf>,
    /// Listen address (without -c), e.g. 127.0.0.1:8080.
    #[arg(
        short = 'l',
        long = "listen",
        value_name = "ADDR",
        requires = "upstream"
    )]
    pub(crate) listen: Option<String>,
    /// Upstream HOST:PORT (without -c).
    #[arg(
        short = 'u',
        long = "upstream",
        value_name = "ADDR",
        requires = "listen"
    )]
    pub(crate) upstream: Option<String>,
    /// Limit for the whole process: UP:DOWN, or one rate for both directions (e.g. 10M:100M).
    #[arg(long = "rate", value_name = "UP[:DOWN]")]
    pub(crate) rate: Option<String>,
    /// Limit per connection: UP:DOWN, or one rate for both.
    #[arg(long = "conn-rate", value_name = "UP[:DOWN]")]
    pub(crate) conn_rate: Option<String>,
    /// Limit per client address: UP:DOWN, or one rate for both.
    #[arg(long = "client-rate", value_name = "UP[:DOWN]")]
    pub(crate) client_rate: Option<String>,
    /// Open connections at most (0: no cap).
    #[arg(long = "max-conns", value_name = "N")]
    pub(crate) max_conns: Option<usize>,
    /// Admin API address (loopback advised), e.g. 127.0.0.1:9901.
    #[arg(long = "admin", value_name = "ADDR")]
    pub(crate) admin: Option<String>,
    /// File holding the admin token (or set THROTTLE_ADMIN_TOKEN; never on the command line).
    #[arg(long = "token-file", value_name = "FILE")]
    pub(crate) token_file: Option<PathBuf>,
    /// Seconds to let connections finish after SIGTERM or POST /v1/drain.
    #[arg(long = "drain-timeout", value_name = "SECS", default_value_t = 30)]
    pub(crate) drain_timeout: u64,
}

fn pair(flag: &str, s: &str) -> Result<Pair, Failure> {
    let parse = |t: &str| {
        t.parse::<Limit>()
            .map_err(|e| Failure::usage(format!("{flag} {s:?}: {e}")))
    };
    Ok(match s.split_once(':') {
        Some((u, d)) => Pair {
            up: parse(u)?,
            down: parse(d)?,
        },
        None => {
            let l = parse(s)?;
            Pair { up: l, down: l }
        }
    })
}

/// The plan from the flags or the file, the flags' admin settings on top.
pub(crate) fn plan_from(args: &ProxyArgs) -> Result<Plan, Failure> {
    let mut file = match &args.config {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| {
                Failure::new(format!(
                    "cannot read {}: {}",
                    p.display(),
                    crate::os_msg(&e)
                ))
            })?;
            config::parse(&text).map_err(|e| Failure::new(format!("{}: {e}", p.display())))?
        }
        None => {
            let (Some(l), Some(u)) = (&args.listen, &args.upstream) else {
                return Err(Failure::usage("give -c FILE, or -l ADDR -u ADDR"));
            };
            let mut f = File::default();
            f.listeners.push(ListenerFile {
                name: "main".into(),
                listen: l.clone(),
                upstream: u.clone(),
            });
            f
        }
    };
    if let Some(r) = &args.rate {
        let p = pair("--rate", r)?;
        file.server.up = p.up;
        file.server.down = p.down;
    }
    if let Some(r) = &args.conn_rate {
        file.server.per_conn = pair("--conn-rate", r)?;
    }
    if let Some(r) = &args.client_rate {
        let p = pair("--client-rate", r)?;
        if file.groups.iter().all(|g| g.name != config::DEFAULT_GROUP) {
            file.groups.push(config::GroupFile {
                name: config::DEFAULT_GROUP.into(),
                weight: 1,
                matches: config::MatchFile::default(),
                up: Limit::default(),
                down: Limit::default(),
                per_client: p,
                per_conn: None,
                schedule: None,
            });
        }
    }
    if let Some(n) = args.max_conns {
        file.server.max_conns = n;
    }
    if args.admin.is_some() || args.token_file.is_some() {
        let a = file.admin.get_or_insert_with(Default::default);
        if let Some(l) = &args.admin {
            a.listen = Some(l.clone());
        }
        if let Some(t) = &args.token_file {
            a.token_file = Some(t.clone());
        }
    }
    let dir = args.config.as_deref().and_then(std::path::Path::parent);
    config::validate(file, dir).map_err(|e| match &args.config {
        Some(p) => Failure::new(format!("{}: {e}", p.display())),
        None => Failure::usage(e.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_build_a_plan_with_both_directions() {
        let args = ProxyArgs {
            listen: Some("127.0.0.1:1".into()),
            upstream: Some("127.0.0.1:2".into()),
            rate: Some("10M:100M".into()),
            conn_rate: Some("1M".into()),
            client_rate: Some("5M".into()),
            ..Default::default()
        };
        let p = plan_from(&args).unwrap();
        assert_eq!(p.server.up, "10M".parse().unwrap());
        assert_eq!(p.server.down, "100M".parse().unwrap());
        let d = p.groups.last().unwrap();
        assert_eq!(d.per_conn.up, "1M".parse().unwrap());
        assert_eq!(d.per_conn.down, "1M".parse().unwrap());
        assert_eq!(d.per_client.down, "5M".parse().unwrap());
        let bad = ProxyArgs {
            rate: Some("10mbps".into()),
            ..args
        };
        assert!(plan_from(&bad).unwrap_err().message.contains("Mbit/s"));
    }
}
