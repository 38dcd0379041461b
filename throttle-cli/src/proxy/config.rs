//! The proxy's configuration: the TOML file (or the equivalent flags), validated whole into a
//! [`Plan`] before anything is applied. Every field is checked here — names unique, addresses
//! parsed, networks parsed, groups matching listeners that exist, rates in the shared grammar
//! of `throttle-spec`, schedules and their zones, the token file readable — and finally every
//! limit is inserted into a scratch tree (a dry run), so the tree's own checks (a burst too
//! small for its rate) refuse the file too. Applying a `Plan` then cannot fail half-way.
//!
//! ```toml
//! [admin]                       # optional: the admin API (loopback)
//! listen = "127.0.0.1:9901"
//! token_file = "/etc/throttle/token"  # or THROTTLE_ADMIN_TOKEN in the environment
//! [server]                      # the whole process, per direction
//! down = "1GiB/s"               # upstream → client
//! up = "200MiB/s"               # client → upstream
//! per_conn = { down = "50MiB/s" }
//! [[listener]]
//! name = "db"
//! listen = "0.0.0.0:15432"
//! upstream = "127.0.0.1:5432"
//! [[group]]
//! name = "tenant-a"
//! weight = 3
//! match = { listener = ["db"], client = ["10.1.0.0/16"] }
//! down = "100MiB/s"
//! per_client = { down = "10MiB/s" }
//! schedule = { down = "20M Mon-Fri 09:00-17:00", zone = "Europe/Berlin" }
//! ```

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;
use std::collections::HashSet;
use std::path::Path;

use ipnet::IpNet;
use throttle_spec::{Limit, Rate, Schedule, ZonedSchedule};
use throttle_tokio::Limits;

pub(crate) use super::schema::{parse, File, GroupFile, ListenerFile, MatchFile, Pair};

/// The name of the group that takes every connection no other group matches.
pub(crate) const DEFAULT_GROUP: &str = "default";
/// Where the admin token comes from when no `token_file` is given.
pub(crate) const TOKEN_ENV: &str = "THROTTLE_ADMIN_TOKEN";

/// A configuration that cannot be used, with the reason in one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigError(pub(crate) String);

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

/// A validated configuration: everything the proxy needs, nothing left to check.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub(crate) admin: Option<AdminPlan>,
    pub(crate) server: ServerPlan,
    pub(crate) listeners: Vec<ListenerPlan>,
    /// In match order; the last one is always [`DEFAULT_GROUP`], matching everything.
    pub(crate) groups: Vec<GroupPlan>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AdminPlan {
    pub(crate) listen: SocketAddr,
    /// `None`: mutations are refused (no token configured).
    pub(crate) token: Option<String>,
}

#[derive(Clone, Debug)]
pub(crate) struct ServerPlan {
    pub(crate) up: Limit,
    pub(crate) down: Limit,
    pub(crate) max_conns: usize,
    pub(crate) max_conns_per_client: usize,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) connect_timeout: Duration,
    pub(crate) max_clients: usize,
    pub(crate) client_idle: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ListenerPlan {
    pub(crate) name: String,
    pub(crate) listen: SocketAddr,
    pub(crate) upstream: String,
}

#[derive(Clone, Debug)]
pub(crate) struct GroupPlan {
    pub(crate) name: String,
    pub(crate) weight: u16,
    /// Empty: every listener.
    pub(crate) listeners: Vec<String>,
    /// Empty: every client.
    pub(crate) clients: Vec<IpNet>,
    pub(crate) up: Limit,
    pub(crate) down: Limit,
    pub(crate) per_client: Pair,
    /// The group's, or else the server's.
    pub(crate) per_conn: Pair,
    pub(crate) schedule_up: Option<ZonedSchedule>,
    pub(crate) schedule_down: Option<ZonedSchedule>,
}

impl GroupPlan {
    /// True when a connection to `listener` from `client` belongs here.
    pub(crate) fn matches(&self, listener: &str, client: IpAddr) -> bool {
        (self.listeners.is_empty() || self.listeners.iter().any(|l| l == listener))
            && (self.clients.is_empty() || self.clients.iter().any(|n| n.contains(&client)))
    }
}

/// Reads and validates a config file.
pub(crate) fn load(path: &Path) -> Result<Plan, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError(format!(
            "cannot read {}: {}",
            path.display(),
            crate::os_msg(&e)
        ))
    })?;
    let file = parse(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
    validate(file, path.parent())
}

fn parse_addr(what: &str, s: &str) -> Result<SocketAddr, ConfigError> {
    s.parse()
        .or_else(|_| {
            if let Some(rest) = s.strip_prefix("localhost:") {
                format!("127.0.0.1:{rest}").parse()
            } else {
                s.parse()
            }
        })
        .map_err(|_| {
            ConfigError(format!(
                "{what}: {s:?} is not an address like 127.0.0.1:8080"
            ))
        })
}

fn check_upstream(what: &str, s: &str) -> Result<(), ConfigError> {
    match s.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(())
        }
        _ => err(format!("{what}: {s:?} is not HOST:PORT")),
    }
}

fn check_name(what: &str, name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        err(format!(
            "{what}: name {name:?} must be 1–64 characters of A-Z a-z 0-9 - _ ."
        ))
    }
}

fn zoned(
    what: &str,
    s: Option<Schedule>,
    otherwise: Rate,
    zone: Option<&str>,
) -> Result<Option<ZonedSchedule>, ConfigError> {
    let Some(s) = s else { return Ok(None) };
    let s = s.or_otherwise(otherwise);
    match zone {
        Some(z) => ZonedSchedule::in_zone(s, z)
            .map(Some)
            .map_err(|e| ConfigError(format!("{what}: {e}"))),
        None => Ok(Some(ZonedSchedule::local(s))),
    }
}

/// Validates a parsed file; `dir` resolves a relative `token_file`.
pub(crate) fn validate(file: File, dir: Option<&Path>) -> Result<Plan, ConfigError> {
    let admin = match file.admin {
        None => None,
        Some(a) => {
            let listen = parse_addr(
                "admin.listen",
                a.listen.as_deref().unwrap_or("127.0.0.1:9901"),
            )?;
            let token = match a.token_file {
                Some(p) => {
                    let p = match dir {
                        Some(d) if p.is_relative() => d.join(p),
                        _ => p,
                    };
                    Some(read_token(&p)?)
                }
                None => std::env::var(TOKEN_ENV)
                    .ok()
                    .filter(|t| !t.trim().is_empty()),
            };
            Some(AdminPlan { listen, token })
        }
    };
    let s = file.server;
    if s.connect_timeout_secs == 0 {
        return err("server.connect_timeout_secs must be at least 1");
    }
    let server = ServerPlan {
        up: s.up,
        down: s.down,
        max_conns: s.max_conns,
        max_conns_per_client: s.max_conns_per_client,
        idle_timeout: (s.idle_timeout_secs > 0).then(|| Duration::from_secs(s.idle_timeout_secs)),
        connect_timeout: Duration::from_secs(s.connect_timeout_secs),
        max_clients: s.max_clients.max(1),
        client_idle: Duration::from_secs(s.client_idle_secs),
    };
    if file.listeners.is_empty() {
        return err("no [[listener]]: the proxy needs at least one");
    }
    let mut names = HashSet::new();
    let mut addrs = HashSet::new();
    let mut listeners = Vec::new();
    for (i, l) in file.listeners.into_iter().enumerate() {
        let what = format!("listener[{i}]");
        check_name(&what, &l.name)?;
        if !names.insert(l.name.clone()) {
            return err(format!("{what}: the name {:?} is used twice", l.name));
        }
        let listen = parse_addr(&format!("listener {:?}: listen", l.name), &l.listen)?;
        // port 0: the system picks a port for each
        if listen.port() != 0 && !addrs.insert(listen) {
            return err(format!("listener {:?}: {listen} is used twice", l.name));
        }
        check_upstream(&format!("listener {:?}: upstream", l.name), &l.upstream)?;
        listeners.push(ListenerPlan {
            name: l.name,
            listen,
            upstream: l.upstream,
        });
    }
    let mut groups = Vec::new();
    let mut group_names = HashSet::new();
    let mut has_default = false;
    for g in file.groups {
        let what = format!("group {:?}", g.name);
        check_name(&what, &g.name)?;
        if !group_names.insert(g.name.clone()) {
            return err(format!("{what}: the name is used twice"));
        }
        let weight = match u16::try_from(g.weight) {
            Ok(w) if w >= 1 => w,
            _ => return err(format!("{what}: weight {} is not in 1..=65535", g.weight)),
        };
        for l in &g.matches.listener {
            if !names.contains(l) {
                return err(format!("{what}: match.listener {l:?} is not a listener"));
            }
        }
        let clients = g
            .matches
            .client
            .iter()
            .map(|c| {
                c.parse::<IpNet>()
                    .or_else(|_| c.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        ConfigError(format!(
                            "{what}: match.client {c:?} is not a network like 10.1.0.0/16"
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if g.name == DEFAULT_GROUP {
            if !clients.is_empty() || !g.matches.listener.is_empty() {
                return err(format!(
                    "{what}: the default group matches everything: no `match`"
                ));
            }
            has_default = true;
        }
        let (schedule_up, schedule_down) = match g.schedule {
            None => (None, None),
            Some(sf) => (
                zoned(
                    &format!("{what}: schedule.up"),
                    sf.up,
                    g.up.rate,
                    sf.zone.as_deref(),
                )?,
                zoned(
                    &format!("{what}: schedule.down"),
                    sf.down,
                    g.down.rate,
                    sf.zone.as_deref(),
                )?,
            ),
        };
        groups.push(GroupPlan {
            name: g.name,
            weight,
            listeners: g.matches.listener,
            clients,
            up: g.up,
            down: g.down,
            per_client: g.per_client,
            per_conn: g.per_conn.unwrap_or(s.per_conn),
            schedule_up,
            schedule_down,
        });
    }
    // The default group goes last whatever its place in the file: it matches everything.
    if let Some(i) = groups.iter().position(|g| g.name == DEFAULT_GROUP) {
        let d = groups.remove(i);
        groups.push(d);
    }
    if !has_default {
        groups.push(GroupPlan {
            name: DEFAULT_GROUP.into(),
            weight: 1,
            listeners: Vec::new(),
            clients: Vec::new(),
            up: Limit::default(),
            down: Limit::default(),
            per_client: Pair::default(),
            per_conn: s.per_conn,
            schedule_up: None,
            schedule_down: None,
        });
    }
    let plan = Plan {
        admin,
        server,
        listeners,
        groups,
    };
    dry_run(&plan)?;
    Ok(plan)
}

fn read_token(path: &Path) -> Result<String, ConfigError> {
    let t = std::fs::read_to_string(path).map_err(|e| {
        ConfigError(format!(
            "admin.token_file: cannot read {}: {}",
            path.display(),
            crate::os_msg(&e)
        ))
    })?;
    let t = t.trim();
    if t.len() < 16 {
        return err(format!(
            "admin.token_file: {}: the token must be at least 16 characters",
            path.display()
        ));
    }
    Ok(t.to_string())
}

/// Every limit of the plan inserted into a scratch tree: the tree's own checks (bursts below
/// the minimum for their rate, for instance) refuse the file here, before anything applies.
fn dry_run(plan: &Plan) -> Result<(), ConfigError> {
    let limiter = throttle_tokio::limiter();
    let check = |what: &str, l: Limits, parent: Option<&throttle_tokio::Node>| {
        let r = match parent {
            Some(p) => p.child(l, 1),
            None => limiter.node(l, 1),
        };
        r.map_err(|e| ConfigError(format!("{what}: {e}")))
    };
    let up = check("server.up", plan.server.up.to_limits(), None)?;
    let down = check("server.down", plan.server.down.to_limits(), None)?;
    for g in &plan.groups {
        let w = format!("group {:?}", g.name);
        let gu = check(&format!("{w}: up"), g.up.to_limits(), Some(&up))?;
        let gd = check(&format!("{w}: down"), g.down.to_limits(), Some(&down))?;
        check(
            &format!("{w}: per_client.up"),
            g.per_client.up.to_limits(),
            Some(&gu),
        )?;
        check(
            &format!("{w}: per_client.down"),
            g.per_client.down.to_limits(),
            Some(&gd),
        )?;
        check(
            &format!("{w}: per_conn.up"),
            g.per_conn.up.to_limits(),
            Some(&gu),
        )?;
        check(
            &format!("{w}: per_conn.down"),
            g.per_conn.down.to_limits(),
            Some(&gd),
        )?;
    }
    Ok(())
}

/// Checks one limit the way [`dry_run`] does (for the admin API's changes).
pub(crate) fn check_limit(what: &str, l: Limit) -> Result<(), ConfigError> {
    throttle_tokio::limiter()
        .node(l.to_limits(), 1)
        .map(drop)
        .map_err(|e| ConfigError(format!("{what}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[server]
down = "1GiB/s"
up = "200MiB/s"
per_conn = { down = "50MiB/s" }
[[listener]]
name = "db"
listen = "127.0.0.1:15432"
upstream = "127.0.0.1:5432"
[[group]]
name = "tenant-a"
weight = 3
match = { listener = ["db"], client = ["10.1.0.0/16", "192.168.1.7"] }
down = "100MiB/s"
per_client = { down = "10MiB/s" }
schedule = { down = "20M Mon-Fri 09:00-17:00", zone = "UTC" }
"#;

    fn check(text: &str) -> Result<Plan, ConfigError> {
        validate(parse(text)?, None)
    }

    #[test]
    fn config_good_file_validates_with_default_group_last() {
        let p = check(GOOD).unwrap();
        assert_eq!(p.groups.len(), 2);
        assert_eq!(p.groups[1].name, DEFAULT_GROUP);
        let a = &p.groups[0];
        assert_eq!(a.weight, 3);
        assert_eq!(
            a.per_conn.down,
            "50MiB/s".parse().unwrap(),
            "server's per_conn inherited"
        );
        assert!(a.matches("db", "10.1.2.3".parse().unwrap()));
        assert!(a.matches("db", "192.168.1.7".parse().unwrap()));
        assert!(!a.matches("db", "10.2.0.1".parse().unwrap()));
        assert!(p.groups[1].matches("db", "10.2.0.1".parse().unwrap()));
        assert!(a.schedule_down.is_some() && a.schedule_up.is_none());
    }

    #[test]
    fn config_bad_files_give_one_line_reasons() {
        let cases: &[(&str, &str)] = &[
            ("[server]\nbogus = 1\n", "unknown field"),
            ("", "no [[listener]]"),
            ("[[listener]]\nname='a'\nlisten='nope'\nupstream='x:1'\n", "is not an address"),
            ("[[listener]]\nname='a'\nlisten='127.0.0.1:1'\nupstream='x'\n", "HOST:PORT"),
            (
                "[[listener]]\nname='a'\nlisten='127.0.0.1:1'\nupstream='x:1'\n[[listener]]\nname='a'\nlisten='127.0.0.1:2'\nupstream='x:1'\n",
                "used twice",
            ),
            ("[server]\ndown='10mbps'\n", "Mbit/s"),
            (
                "[[listener]]\nname='a'\nlisten='127.0.0.1:1'\nupstream='x:1'\n[[group]]\nname='g'\nmatch={listener=['b']}\n",
                "not a listener",
            ),
            (
                "[[listener]]\nname='a'\nlisten='127.0.0.1:1'\nupstream='x:1'\n[[group]]\nname='g'\nmatch={client=['10.1.0/16']}\n",
                "not a network",
            ),
            (
                "[[listener]]\nname='a'\nlisten='127.0.0.1:1'\nupstream='x:1'\n[[group]]\nname='g'\nweight=0\n",
                "weight 0",
            ),
            (
                "[[listener]]\nname='a'\nlisten='127.0.0.1:1'\nupstream='x:1'\n[[group]]\nname='g'\nschedule={down='1M Mon 09:00-10:00', zone='Mars/Olympus'}\n",
                "time zone",
            ),
            (
                "[[listener]]\nname='a'\nlisten='127.0.0.1:1'\nupstream='x:1'\n[[group]]\nname='g'\ndown='100M burst 1'\n",
                "burst",
            ),
            (
                "[[listener]]\nname='a'\nlisten='127.0.0.1:1'\nupstream='x:1'\n[admin]\ntoken_file='/nonexistent/token'\n",
                "cannot read",
            ),
        ];
        for (text, want) in cases {
            let e = check(text).expect_err(text);
            assert!(e.0.contains(want), "{text:?}: {e}");
            assert!(!e.0.contains('\n'), "one line: {e}");
        }
    }
}
