//! Connections: one accept loop per listener (descriptors reserved before each accept, EMFILE
//! back-off), the caps (total and per client address), and one task per connection that finds
//! its place in the tree, dials the upstream, relays (`relay.rs`) and logs the open and the
//! close.

use core::net::{IpAddr, SocketAddr};
use core::sync::atomic::Ordering;
use core::time::Duration;
use std::collections::HashMap;

use alloc::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::relay::{self, End};
use super::{config, state, Proxy};

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

    pub(super) fn start_listener(self: &Arc<Self>, key: ListenKey, sock: TcpListener) {
        let bound = sock.local_addr().unwrap_or(key.addr);
        let (stop_tx, stop_rx) = watch::channel(false);
        self.listener_map().insert(key.clone(), (bound, stop_tx));
        tracing::info!("proxy listening on {bound}");
        tokio::spawn(accept_loop(self.clone(), key, sock, stop_rx));
    }
}

/// Errors of `accept` (or of reserving descriptors for it) that mean "out of a resource"
/// (descriptors, buffers): back off instead of spinning on a listener that stays readable.
fn exhausted(e: &std::io::Error) -> bool {
    // EMFILE 24, ENFILE 23, ENOBUFS 105, ENOMEM 12 (Linux numbering; std has no kinds for them)
    matches!(e.raw_os_error(), Some(24 | 23 | 105 | 12))
}

/// Two descriptors held open before an `accept`: one is closed just before it (room for the
/// client's socket), the other just before the upstream connect (room for the upstream's).
/// Out of descriptors, the loop cannot reserve them and does not accept: clients wait in the
/// listen backlog instead of being accepted and then closed for want of an upstream socket.
/// (A descriptor opened elsewhere in between can still take the room; the connect then fails
/// and is logged, as before.)
struct Reserved {
    client: std::fs::File,
    upstream: UpstreamRoom,
}

/// The descriptor held for a connection's upstream socket; dropped right before the connect.
struct UpstreamRoom {
    _held: std::fs::File,
}

impl Reserved {
    fn take() -> std::io::Result<Reserved> {
        let null = if cfg!(windows) { "NUL" } else { "/dev/null" };
        Ok(Reserved {
            client: std::fs::File::open(null)?,
            upstream: UpstreamRoom {
                _held: std::fs::File::open(null)?,
            },
        })
    }
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
        let reserved = Reserved::take();
        let r = match reserved {
            Ok(Reserved { client, upstream }) => {
                drop(client);
                let r = tokio::select! {
                    r = sock.accept() => r,
                    _ = stop.changed() => break,
                    _ = drain.changed() => break,
                };
                r.map(|(stream, peer)| (stream, peer, upstream))
            }
            Err(e) => Err(e),
        };
        match r {
            Ok((stream, peer, upstream)) => {
                backoff = Duration::from_millis(10);
                admit(&proxy, &key, stream, peer, upstream);
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

fn admit(
    proxy: &Arc<Proxy>,
    key: &ListenKey,
    client: TcpStream,
    peer: SocketAddr,
    room: UpstreamRoom,
) {
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
        serve_conn(&proxy, &name, &upstream, client, peer, room).await;
    });
}

async fn serve_conn(
    proxy: &Proxy,
    listener: &str,
    upstream: &str,
    client: TcpStream,
    peer: SocketAddr,
    room: UpstreamRoom,
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
    drop(room);
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
