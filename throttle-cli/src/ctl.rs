//! `throttle ctl`: the admin API's client (`stats`, `set`, `pause`, `reload`, `drain`), over
//! hyper's HTTP/1.1 client connection. The token comes from `--token-file` or
//! `THROTTLE_ADMIN_TOKEN`, never from the command line (it would show in `ps`).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::Request;
use serde_json::{json, Value};
use throttle_spec::Limit;

use crate::proxy::config::TOKEN_ENV;
use crate::Failure;

/// `throttle ctl`.
#[derive(Args, Debug)]
pub(crate) struct CtlArgs {
    /// The proxy's admin API.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:9901")]
    admin: String,
    /// File holding the admin token (else THROTTLE_ADMIN_TOKEN).
    #[arg(long = "token-file", value_name = "FILE")]
    token_file: Option<PathBuf>,
    #[command(subcommand)]
    cmd: CtlCmd,
}

#[derive(Subcommand, Debug)]
enum CtlCmd {
    /// Print the tree: limits, rates, connections (`--json`: the API's JSON).
    Stats {
        #[arg(long)]
        json: bool,
    },
    /// Change a group's limits now; live connections follow at once.
    Set {
        group: String,
        #[arg(long, value_name = "RATE")]
        down: Option<Limit>,
        #[arg(long, value_name = "RATE")]
        up: Option<Limit>,
        #[arg(long, value_name = "N")]
        weight: Option<u32>,
        /// Per-client limit, down.
        #[arg(long = "client-down", value_name = "RATE")]
        client_down: Option<Limit>,
        /// Per-client limit, up.
        #[arg(long = "client-up", value_name = "RATE")]
        client_up: Option<Limit>,
        /// Per-connection limit, down.
        #[arg(long = "conn-down", value_name = "RATE")]
        conn_down: Option<Limit>,
        /// Per-connection limit, up.
        #[arg(long = "conn-up", value_name = "RATE")]
        conn_up: Option<Limit>,
    },
    /// Pause a group both ways (rate 0) until the next `set`, reload or schedule boundary.
    Pause { group: String },
    /// Re-read the proxy's config file (a bad file keeps the old config; the reason is shown).
    Reload,
    /// Stop accepting; the proxy exits when its connections finished or at its drain timeout.
    Drain,
}

fn token(args: &CtlArgs) -> Result<Option<String>, Failure> {
    match &args.token_file {
        Some(p) => std::fs::read_to_string(p)
            .map(|t| Some(t.trim().to_string()))
            .map_err(|e| {
                Failure::new(format!(
                    "cannot read {}: {}",
                    p.display(),
                    crate::os_msg(&e)
                ))
            }),
        None => Ok(std::env::var(TOKEN_ENV).ok()),
    }
}

fn lim(l: Option<Limit>) -> Value {
    l.map_or(Value::Null, |l| Value::String(l.to_string()))
}

/// Drops `null` members (the API reads an absent field as "unchanged").
fn prune(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, prune(v)))
                .filter(|(_, v)| !matches!(v, Value::Object(o) if o.is_empty()))
                .collect(),
        ),
        v => v,
    }
}

/// `throttle ctl`.
pub(crate) fn run(args: CtlArgs) -> Result<(), Failure> {
    let (method, path, body) = match &args.cmd {
        CtlCmd::Stats { .. } => ("GET", "/v1/stats".to_string(), None),
        CtlCmd::Set {
            group,
            down,
            up,
            weight,
            client_down,
            client_up,
            conn_down,
            conn_up,
        } => (
            "PATCH",
            format!("/v1/groups/{group}"),
            Some(prune(json!({
                "down": lim(*down), "up": lim(*up), "weight": weight,
                "per_client": { "down": lim(*client_down), "up": lim(*client_up) },
                "per_conn": { "down": lim(*conn_down), "up": lim(*conn_up) },
            }))),
        ),
        CtlCmd::Pause { group } => (
            "PATCH",
            format!("/v1/groups/{group}"),
            Some(json!({ "down": "pause", "up": "pause" })),
        ),
        CtlCmd::Reload => ("POST", "/v1/reload".into(), Some(json!({}))),
        CtlCmd::Drain => ("POST", "/v1/drain".into(), Some(json!({}))),
    };
    let token = if body.is_some() { token(&args)? } else { None };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(crate::os_msg(&e)))?;
    let (status, text) = rt.block_on(request(&args.admin, method, &path, token, body))?;
    if !(200..300).contains(&status) {
        return Err(Failure::new(format!(
            "{method} {path}: {status} {}",
            text.trim()
        )));
    }
    match &args.cmd {
        CtlCmd::Stats { json: false } => {
            let v: Value = serde_json::from_str(&text)
                .map_err(|e| Failure::new(format!("the proxy's stats do not parse: {e}")))?;
            print!("{}", table(&v));
        }
        _ => println!("{}", text.trim()),
    }
    Ok(())
}

async fn request(
    admin: &str,
    method: &str,
    path: &str,
    token: Option<String>,
    body: Option<Value>,
) -> Result<(u16, String), Failure> {
    let authority = admin
        .strip_prefix("http://")
        .ok_or_else(|| Failure::usage(format!("--admin {admin:?}: give http://HOST:PORT")))?
        .trim_end_matches('/');
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| {
            Failure::new(format!(
                "cannot reach the admin API at {admin}: {}",
                crate::os_msg(&e)
            ))
        })?;
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| Failure::new(format!("{admin}: {e}")))?;
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", authority);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let bytes = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            Bytes::from(b.to_string())
        }
        None => Bytes::new(),
    };
    let req = req
        .body(Full::new(bytes))
        .map_err(|e| Failure::new(format!("bad request: {e}")))?;
    let resp = send
        .send_request(req)
        .await
        .map_err(|e| Failure::new(format!("{admin}: {e}")))?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| Failure::new(format!("{admin}: {e}")))?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// A limit (`null`: none, 0: paused) or a measured rate, as pv writes rates.
fn rate(v: &Value, is_limit: bool) -> String {
    match v.as_f64() {
        None => "-".into(),
        Some(r) if r < 1.0 && !is_limit => "0 B/s".into(),
        Some(r) => format!("{:.2}", throttle_spec::Rate::PerSecond(r as u64)),
    }
}

/// The stats as a table: one line for the server, one per group.
fn table(v: &Value) -> String {
    let mut out = format!(
        "{:<16} {:>6} {:>6} {:>14} {:>14} {:>14} {:>14}\n",
        "node", "weight", "conns", "down rate", "down limit", "up rate", "up limit"
    );
    let line = |name: &str, weight: String, conns: String, x: &Value| {
        format!(
            "{:<16} {:>6} {:>6} {:>14} {:>14} {:>14} {:>14}\n",
            name,
            weight,
            conns,
            rate(&x["down"]["rate"], false),
            rate(&x["down"]["limit"], true),
            rate(&x["up"]["rate"], false),
            rate(&x["up"]["limit"], true),
        )
    };
    out += &line(
        "server",
        String::new(),
        v["connections"].to_string(),
        &v["server"],
    );
    for g in v["groups"].as_array().into_iter().flatten() {
        out += &line(
            &format!("  {}", g["name"].as_str().unwrap_or("?")),
            g["weight"].to_string(),
            g["connections"].to_string(),
            g,
        );
    }
    out
}
