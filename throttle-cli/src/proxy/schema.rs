//! What the config file says, as serde reads it (`deny_unknown_fields` everywhere, defaults
//! in one place); [`config`](super::config) turns it into a validated plan.

use std::path::PathBuf;

use serde::Deserialize;
use throttle_spec::{Limit, Schedule};

use super::config::ConfigError;

/// One limit per direction (`up`: client → upstream, `down`: upstream → client).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Pair {
    #[serde(default)]
    pub(crate) up: Limit,
    #[serde(default)]
    pub(crate) down: Limit,
}

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct File {
    #[serde(default)]
    pub(crate) admin: Option<AdminFile>,
    #[serde(default)]
    pub(crate) server: ServerFile,
    #[serde(default, rename = "listener")]
    pub(crate) listeners: Vec<ListenerFile>,
    #[serde(default, rename = "group")]
    pub(crate) groups: Vec<GroupFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdminFile {
    pub(crate) listen: Option<String>,
    pub(crate) token_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ServerFile {
    pub(crate) up: Limit,
    pub(crate) down: Limit,
    pub(crate) per_conn: Pair,
    /// Open connections at most (0: no cap).
    pub(crate) max_conns: usize,
    /// Open connections per client address at most (0: no cap).
    pub(crate) max_conns_per_client: usize,
    /// Close a connection after this long without a byte either way (0: never).
    pub(crate) idle_timeout_secs: u64,
    pub(crate) connect_timeout_secs: u64,
    /// Client addresses with a node each, per group (per-client limits); past it, new clients
    /// of the group share one overflow node.
    pub(crate) max_clients: usize,
    /// How long a client's node stays after its last connection closed.
    pub(crate) client_idle_secs: u64,
}

impl Default for ServerFile {
    fn default() -> Self {
        ServerFile {
            up: Limit::default(),
            down: Limit::default(),
            per_conn: Pair::default(),
            max_conns: 10_000,
            max_conns_per_client: 0,
            idle_timeout_secs: 600,
            connect_timeout_secs: 10,
            max_clients: 100_000,
            client_idle_secs: 60,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListenerFile {
    pub(crate) name: String,
    pub(crate) listen: String,
    pub(crate) upstream: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GroupFile {
    pub(crate) name: String,
    #[serde(default = "one")]
    pub(crate) weight: u32,
    #[serde(default, rename = "match")]
    pub(crate) matches: MatchFile,
    #[serde(default)]
    pub(crate) up: Limit,
    #[serde(default)]
    pub(crate) down: Limit,
    #[serde(default)]
    pub(crate) per_client: Pair,
    pub(crate) per_conn: Option<Pair>,
    pub(crate) schedule: Option<ScheduleFile>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MatchFile {
    #[serde(default)]
    pub(crate) listener: Vec<String>,
    #[serde(default)]
    pub(crate) client: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScheduleFile {
    pub(crate) up: Option<Schedule>,
    pub(crate) down: Option<Schedule>,
    /// IANA zone; the system's local zone when absent.
    pub(crate) zone: Option<String>,
}

/// Parses TOML text (no validation beyond the types and unknown fields).
pub(crate) fn parse(text: &str) -> Result<File, ConfigError> {
    toml::from_str(text).map_err(|e| {
        // toml's message is several lines (a snippet); keep the first and the reason.
        let s = e.to_string();
        let mut lines = s.lines().filter(|l| !l.trim().is_empty());
        let head = lines.next().unwrap_or("").trim().to_string();
        let last = s.lines().last().unwrap_or("").trim().to_string();
        ConfigError(if last == head || last.is_empty() {
            head
        } else {
            format!("{head} {last}")
        })
    })
}
