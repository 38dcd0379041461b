//! `throttle proxy`: listeners → upstreams through the limit tree of [`state`], with
//! connection caps, EMFILE back-off, idle timeout, SIGTERM drain and SIGHUP reload; the admin
//! API in [`admin`].
//!
//! ```text
//!   main task: signals (TERM/INT → drain, HUP → reload) ── drain: wait for 0 connections or
//!              --drain-timeout, then exit
//!   one accept loop per listener ── admit (caps) ── one task per connection (conn.rs,
//!   relay.rs); the flags and the plan in args.rs
//!   housekeeping (1 s): evict idle client nodes, apply due schedules
//!   admin server (admin.rs): stats, metrics, PATCH, reload, drain, the status page
//! ```

pub(crate) mod admin;
mod args;
pub(crate) mod config;
mod conn;
mod metrics;
mod relay;
mod schema;
pub(crate) mod state;

pub(crate) use args::{plan_from, ProxyArgs};
pub(crate) use conn::ListenKey;

use core::net::{IpAddr, SocketAddr};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use core::time::Duration;
use std::collections::HashMap;
use std::sync::{Mutex, RwLock};

use alloc::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::Failure;
use config::Plan;
use state::Tree;

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

impl Proxy {
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
