//! `throttle proxy`: listeners → upstreams through the limit tree of [`state`], with
//! connection caps, EMFILE back-off, idle timeout, SIGTERM drain and SIGHUP reload; the admin
//! API in [`admin`].
//!
//! ```text
//!   main task: signals (TERM/INT → drain, HUP → reload) ── drain: wait for 0 connections or
//!              --drain-timeout, then exit
//!   one accept loop per listener ── admit (caps) ── one task per connection (relay.rs)
//!   housekeeping (1 s): evict idle client nodes, apply due schedules
//!   admin server (admin.rs): stats, metrics, PATCH, reload, drain, the status page
//! ```

pub(crate) mod admin;
pub(crate) mod config;
mod metrics;
mod relay;
pub(crate) mod state;

use core::net::{IpAddr, SocketAddr};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use core::time::Duration;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, RwLock};

use alloc::sync::Arc;

use clap::Args;
use throttle_spec::Limit;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::Failure;
use config::{File, ListenerFile, Pair, Plan};
use relay::End;
use state::Tree;

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
    /// Limit for the whole process: UP[:DOWN] (one value: both directions), e.g. 10M:100M.
    #[arg(long = "rate", value_name = "UP[:DOWN]")]
    pub(crate) rate: Option<String>,
    /// Limit per connection: UP[:DOWN].
    #[arg(long = "conn-rate", value_name = "UP[:DOWN]")]
    pub(crate) conn_rate: Option<String>,
    /// Limit per client address: UP[:DOWN].
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

/// The running proxy: the tree, the listeners, the counters, the drain state.
pub(crate) struct Proxy {
    pub(crate) tree: Arc<Tree>,
    args: ProxyArgs,
    pub(crate) started: std::time::Instant,
    pub(crate) active: AtomicUsize,
    per_client: Mutex<HashMap<IpAddr, usize>>,
    pub(crate) rejected: AtomicU64,
    pub(crate) draining: AtomicBool,
    drain_tx: watch::Sender<bool>,
    pub(crate) token: RwLock<Option<String>>,
    /// Running accept loops (their bound address and stop switch) by [`ListenKey`].
    listeners: Mutex<HashMap<ListenKey, (SocketAddr, watch::Sender<bool>)>>,
    reload_lock: tokio::sync::Mutex<()>,
}

/// What identifies a running listener across reloads: its address, and for port 0 (a port
/// the system picks) its name too. A reload keeps a listener whose key stays, binds new keys
/// first, and stops the keys that went.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ListenKey {
    addr: SocketAddr,
    name: Option<String>,
}

impl ListenKey {
    pub(crate) fn of(l: &config::ListenerPlan) -> ListenKey {
        ListenKey {
            addr: l.listen,
            name: (l.listen.port() == 0).then(|| l.name.clone()),
        }
    }
}

/// Releases a connection's slot in the caps when dropped.
struct Slot {
    proxy: Arc<Proxy>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.proxy.active.fetch_sub(1, Ordering::AcqRel);
        let mut m = self.proxy.per_client_map();
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

impl Proxy {
    fn per_client_map(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.per_client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes a slot for a new connection from `ip`, or says which cap refused it.
    fn take_slot(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, &'static str> {
        let plan = self.tree.plan();
        let max = plan.server.max_conns;
        if max > 0 && self.active.load(Ordering::Acquire) >= max {
            return Err("max_conns");
        }
        let mut m = self.per_client_map();
        let n = m.entry(ip).or_insert(0);
        let per = plan.server.max_conns_per_client;
        if per > 0 && *n >= per {
            return Err("max_conns_per_client");
        }
        *n += 1;
        self.active.fetch_add(1, Ordering::AcqRel);
        Ok(Slot {
            proxy: self.clone(),
            ip,
        })
    }

    /// Stops accepting; connections finish within the drain timeout. Idempotent.
    pub(crate) fn begin_drain(&self, why: &str) {
        if !self.draining.swap(true, Ordering::AcqRel) {
            tracing::info!(
                connections = self.active.load(Ordering::Acquire),
                timeout_s = self.args.drain_timeout,
                "{why}: draining (no new connections)"
            );
            let _ = self.drain_tx.send(true);
        }
    }

    /// Re-reads the config file and applies it whole, or keeps the old one and says why.
    pub(crate) async fn reload(self: &Arc<Self>) -> Result<String, String> {
        let _one_at_a_time = self.reload_lock.lock().await;
        if self.args.config.is_none() {
            return Err("no config file to reload (started with flags)".into());
        }
        let plan = plan_from(&self.args).map_err(|f| f.message)?;
        let old = self.tree.plan();
        if plan.admin.as_ref().map(|a| a.listen) != old.admin.as_ref().map(|a| a.listen) {
            return Err("admin.listen changed: restart the proxy to move the admin API".into());
        }
        // Bind every new listener first: if one fails, nothing changes.
        let mut fresh = Vec::new();
        let running: Vec<ListenKey> = self.listener_map().keys().cloned().collect();
        for l in &plan.listeners {
            if !running.contains(&ListenKey::of(l)) {
                let sock = TcpListener::bind(l.listen).await.map_err(|e| {
                    format!(
                        "listener {:?}: cannot listen on {}: {}",
                        l.name,
                        l.listen,
                        crate::os_msg(&e)
                    )
                })?;
                fresh.push((ListenKey::of(l), sock));
            }
        }
        let summary = format!(
            "{} listeners, {} groups",
            plan.listeners.len(),
            plan.groups.len()
        );
        *self
            .token
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            plan.admin.as_ref().and_then(|a| a.token.clone());
        let keep: Vec<ListenKey> = plan.listeners.iter().map(ListenKey::of).collect();
        self.tree.apply(plan);
        self.tree
            .drive_schedules(throttle_spec::jiff::Timestamp::now());
        {
            let mut running = self.listener_map();
            running.retain(|key, (_, stop)| {
                let kept = keep.contains(key);
                if !kept {
                    let _ = stop.send(true);
                }
                kept
            });
        }
        for (key, sock) in fresh {
            self.start_listener(key, sock);
        }
        tracing::info!("config reloaded: {summary}");
        Ok(summary)
    }

    fn listener_map(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<ListenKey, (SocketAddr, watch::Sender<bool>)>> {
        self.listeners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The bound address of each running listener.
    pub(crate) fn bound(&self) -> HashMap<ListenKey, SocketAddr> {
        self.listener_map()
            .iter()
            .map(|(k, (b, _))| (k.clone(), *b))
            .collect()
    }

    fn start_listener(self: &Arc<Self>, key: ListenKey, sock: TcpListener) {
        let bound = sock.local_addr().unwrap_or(key.addr);
        let (stop_tx, stop_rx) = watch::channel(false);
        self.listener_map().insert(key.clone(), (bound, stop_tx));
        tracing::info!("proxy listening on {bound}");
        tokio::spawn(accept_loop(self.clone(), key, sock, stop_rx));
    }
}

/// Errors of `accept` that mean "out of a resource" (descriptors, buffers): back off
/// instead of spinning on a listener that stays readable.
fn exhausted(e: &std::io::Error) -> bool {
    // EMFILE 24, ENFILE 23, ENOBUFS 105, ENOMEM 12 (Linux numbering; std has no kinds for them)
    matches!(e.raw_os_error(), Some(24 | 23 | 105 | 12))
}

async fn accept_loop(
    proxy: Arc<Proxy>,
    key: ListenKey,
    sock: TcpListener,
    mut stop: watch::Receiver<bool>,
) {
    let mut drain = proxy.drain_tx.subscribe();
    let mut backoff = Duration::from_millis(10);
    loop {
        let r = tokio::select! {
            r = sock.accept() => r,
            _ = stop.changed() => break,
            _ = drain.changed() => break,
        };
        match r {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(10);
                admit(&proxy, &key, stream, peer);
            }
            Err(e) if exhausted(&e) => {
                tracing::warn!(error = %crate::os_msg(&e), backoff_ms = backoff.as_millis() as u64, "accept: out of resources, backing off");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
            // ECONNABORTED and the like concern one connection only.
            Err(e) => tracing::debug!(error = %crate::os_msg(&e), "accept"),
        }
    }
    tracing::info!(listen = %key.addr, "stopped listening");
}

fn admit(proxy: &Arc<Proxy>, key: &ListenKey, client: TcpStream, peer: SocketAddr) {
    let plan = proxy.tree.plan();
    let Some(l) = plan.listeners.iter().find(|l| ListenKey::of(l) == *key) else {
        return; // removed by a reload a moment ago
    };
    // `::ffff:10.1.2.3` on a dual-stack listener is the IPv4 client 10.1.2.3 (caps, matches).
    let slot = match proxy.take_slot(peer.ip().to_canonical()) {
        Ok(s) => s,
        Err(cap) => {
            proxy.rejected.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(client = %peer, listener = %l.name, cap, "connection refused: cap reached");
            return;
        }
    };
    let name = l.name.clone();
    let upstream = l.upstream.clone();
    let proxy = proxy.clone();
    tokio::spawn(async move {
        let _slot = slot;
        serve_conn(&proxy, &name, &upstream, client, peer).await;
    });
}

async fn serve_conn(
    proxy: &Proxy,
    listener: &str,
    upstream: &str,
    client: TcpStream,
    peer: SocketAddr,
) {
    let plan = proxy.tree.plan();
    let (placement, up, down) = match proxy.tree.place(listener, peer.ip().to_canonical()) {
        Ok(p) => p,
        Err(state::PlaceError::Tree(e)) => {
            tracing::warn!(client = %peer, "connection refused: {e}");
            return;
        }
    };
    let group = placement.group.name.clone();
    let id = placement.id;
    let t0 = std::time::Instant::now();
    let connect =
        tokio::time::timeout(plan.server.connect_timeout, TcpStream::connect(upstream)).await;
    let upstream_sock = match connect {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::warn!(conn = id, client = %peer, %upstream, error = %crate::os_msg(&e), "upstream connect failed");
            return;
        }
        Err(_) => {
            tracing::warn!(conn = id, client = %peer, %upstream, "upstream connect timed out");
            return;
        }
    };
    tracing::info!(conn = id, client = %peer, %listener, %group, %upstream, "open");
    let traffic = Arc::new(relay::Traffic::default());
    let (un, dn) = (up.node().clone(), down.node().clone());
    let waiting = move || un.stats().waiting > 0 || dn.stats().waiting > 0;
    let end = relay::relay(
        client,
        upstream_sock,
        [up, down],
        traffic.clone(),
        [&placement.group.bytes, &proxy.tree.bytes],
        plan.server.idle_timeout,
        waiting,
    )
    .await;
    let (how, error) = match &end {
        End::Closed => ("closed", String::new()),
        End::Idle => ("idle timeout", String::new()),
        End::Error(e) => ("error", crate::os_msg(e)),
    };
    tracing::info!(
        conn = id,
        client = %peer,
        %group,
        up_bytes = traffic.up.load(Ordering::Relaxed),
        down_bytes = traffic.down.load(Ordering::Relaxed),
        secs = format_args!("{:.3}", t0.elapsed().as_secs_f64()),
        end = how,
        error = (!error.is_empty()).then_some(error.as_str()),
        "close"
    );
    drop(placement);
}

/// `throttle check -c FILE`: validates the whole file (as a reload would) and says what it
/// holds, or why not.
pub(crate) fn check(path: &std::path::Path) -> Result<(), Failure> {
    let plan = config::load(path).map_err(|e| Failure::new(e.0))?;
    println!(
        "{}: ok ({} listeners, {} groups{})",
        path.display(),
        plan.listeners.len(),
        plan.groups.len(),
        if plan.admin.is_some() {
            ", admin API"
        } else {
            ""
        }
    );
    Ok(())
}

fn init_logs() {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// `throttle proxy`.
pub(crate) fn run(args: ProxyArgs) -> Result<(), Failure> {
    init_logs();
    let plan = plan_from(&args)?;
    // Two descriptors per connection: take what the hard limit allows (as nginx's
    // worker_rlimit_nofile); past it, accept backs off (EMFILE) instead of spinning.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(open_files = n, "open-files limit"),
        Err(e) => tracing::warn!("cannot raise the open-files limit: {}", crate::os_msg(&e)),
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(format!("cannot start the runtime: {}", crate::os_msg(&e))))?;
    rt.block_on(serve(args, plan))
}

async fn serve(args: ProxyArgs, plan: Plan) -> Result<(), Failure> {
    use tokio::signal::unix::{signal, SignalKind};
    let sig = |k| {
        signal(k).map_err(|e| Failure::new(format!("cannot handle signals: {}", crate::os_msg(&e))))
    };
    let (mut term, mut int, mut hup) = (
        sig(SignalKind::terminate())?,
        sig(SignalKind::interrupt())?,
        sig(SignalKind::hangup())?,
    );
    // Bind everything before serving anything: a port in use is a startup error.
    let mut socks = Vec::new();
    for l in &plan.listeners {
        let s = TcpListener::bind(l.listen).await.map_err(|e| {
            Failure::new(format!(
                "listener {:?}: cannot listen on {}: {}",
                l.name,
                l.listen,
                crate::os_msg(&e)
            ))
        })?;
        socks.push((ListenKey::of(l), s));
    }
    let admin_sock = match &plan.admin {
        Some(a) => Some(TcpListener::bind(a.listen).await.map_err(|e| {
            Failure::new(format!(
                "admin: cannot listen on {}: {}",
                a.listen,
                crate::os_msg(&e)
            ))
        })?),
        None => None,
    };
    let (drain_tx, mut drain_rx) = watch::channel(false);
    let drain_timeout = Duration::from_secs(args.drain_timeout);
    let token = plan.admin.as_ref().and_then(|a| a.token.clone());
    let proxy = Arc::new(Proxy {
        tree: Tree::new(plan),
        args,
        started: std::time::Instant::now(),
        active: AtomicUsize::new(0),
        per_client: Mutex::new(HashMap::new()),
        rejected: AtomicU64::new(0),
        draining: AtomicBool::new(false),
        drain_tx,
        token: RwLock::new(token),
        listeners: Mutex::new(HashMap::new()),
        reload_lock: tokio::sync::Mutex::new(()),
    });
    proxy
        .tree
        .drive_schedules(throttle_spec::jiff::Timestamp::now());
    for (key, s) in socks {
        proxy.start_listener(key, s);
    }
    if let Some(s) = admin_sock {
        if let Ok(addr) = s.local_addr() {
            tracing::info!("admin API listening on {addr}");
        }
        tokio::spawn(admin::serve(proxy.clone(), s));
    }
    let housekeeping = {
        let tree = proxy.tree.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                tree.sweep();
                tree.drive_schedules(throttle_spec::jiff::Timestamp::now());
            }
        })
    };
    loop {
        tokio::select! {
            _ = term.recv() => proxy.begin_drain("SIGTERM"),
            _ = int.recv() => proxy.begin_drain("SIGINT"),
            _ = hup.recv() => {
                if let Err(e) = proxy.reload().await {
                    tracing::error!("reload failed, the old config stays: {e}");
                }
            }
            _ = drain_rx.changed() => break,
        }
    }
    let deadline = tokio::time::Instant::now() + drain_timeout;
    while proxy.active.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = term.recv() => break, // a second SIGTERM: stop now
            _ = int.recv() => break,
        }
    }
    housekeeping.abort();
    let left = proxy.active.load(Ordering::Acquire);
    if left > 0 {
        tracing::warn!(
            connections = left,
            "drain timeout: closing the connections left"
        );
    } else {
        tracing::info!("drained: every connection finished");
    }
    Ok(())
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
