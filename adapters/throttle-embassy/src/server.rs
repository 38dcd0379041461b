//! [`Server`]: a server limit plus a per-connection limit that reaches every live connection
//! when it changes — the listener side of the adapter, in a `static`.
//!
//! The server keeps the leaves of the connections it accepted in a fixed-capacity registry.
//! A connection leaves the limiter when its stream is dropped (that path knows nothing of the
//! server); the registry forgets such stale entries lazily, on the next `wrap` or limit
//! change (a leaf handle is generational, so a stale entry never aliases a new connection).
//!
//! Lock order: the server's own mutex, then the limiter's; never the reverse.

use core::cell::RefCell;

use embassy_sync::blocking_mutex::raw::{CriticalSectionRawMutex, RawMutex};
use embassy_sync::blocking_mutex::Mutex;
use heapless::Vec;
use throttle_core::{InsertError, Limits, SetLimitError, Stats};

use crate::limiter::{Directions, Group, Leaves, Limiter};
use crate::stream::Throttled;

struct Registry<const C: usize> {
    group: Option<Group>,
    limits: Directions<Limits>,
    per_connection: Directions<Limits>,
    connections: Vec<Leaves, C>,
}

/// A server: one node per direction in a [`Limiter`] (created on first use), up to `C`
/// connections under it, and a per-connection limit applied to each — changing it with
/// [`Server::set_connection_limits`] reaches every live connection, sleeping ones included.
///
/// ```
/// use throttle_core::Limits;
/// use throttle_embassy::{Directions, Limiter, Server};
///
/// static LIMITER: Limiter<18> = Limiter::new();
/// static SERVER: Server<'static, 18, 8> = Server::new(
///     &LIMITER,
///     Directions { read: Limits::per_second(1 << 20), write: Limits::per_second(4 << 20) },
///     Directions::UNLIMITED,
/// );
/// // in the accept loop: `let conn = SERVER.wrap(socket)?;`
/// ```
///
/// The server's two nodes count each direction separately, like the std adapters'
/// `Server::per_direction` (their `Server::new` counts both directions in one node: build
/// that here with [`Limiter::shared`] and a [`Group`] whose `read` and `write` are the same
/// node). Memory: `C` × 16 bytes of registry on 32-bit
/// targets, plus the mutex.
pub struct Server<'a, const N: usize, const C: usize, M: RawMutex = CriticalSectionRawMutex> {
    limiter: &'a Limiter<N, M>,
    registry: Mutex<M, RefCell<Registry<C>>>,
}

impl<'a, const N: usize, const C: usize, M: RawMutex> Server<'a, N, C, M> {
    /// A server in `limiter` with the server's `limits` and each connection's
    /// `per_connection` limits. `const`: nothing is inserted until first use.
    pub const fn new(
        limiter: &'a Limiter<N, M>,
        limits: Directions<Limits>,
        per_connection: Directions<Limits>,
    ) -> Self {
        Server {
            limiter,
            registry: Mutex::new(RefCell::new(Registry {
                group: None,
                limits,
                per_connection,
                connections: Vec::new(),
            })),
        }
    }

    /// The server's nodes, inserted into the limiter on first use (2 slots).
    pub fn group(&self) -> Result<Group, InsertError> {
        self.with(|r| self.ensure_group(r))
    }

    /// Registers `stream` as a connection: one leaf per direction under the server, with the
    /// current per-connection limits. The stream is handed back if the limiter or the
    /// registry is full (`InsertError::CapacityFull`).
    pub fn wrap<T>(&self, stream: T) -> Result<Throttled<'a, T, N, M>, (InsertError, T)> {
        self.with(|r| {
            let group = match self.ensure_group(r) {
                Ok(g) => g,
                Err(e) => return Err((e, stream)),
            };
            self.prune(r);
            if r.connections.is_full() {
                return Err((InsertError::CapacityFull, stream));
            }
            let leaves = match self.limiter.connection(Some(&group), r.per_connection, 1) {
                Ok(l) => l,
                Err(e) => return Err((e, stream)),
            };
            // Not full (checked above, under the same lock): the push cannot fail.
            let _ = r.connections.push(leaves);
            Ok(Throttled::new(self.limiter, stream, leaves))
        })
    }

    /// Changes the server's limits (both nodes). Reaches every sleeping connection.
    pub fn set_limits(&self, limits: Directions<Limits>) -> Result<(), SetLimitError> {
        self.with(|r| {
            r.limits = limits;
            match r.group {
                Some(g) => self.limiter.set_limits(&g, limits),
                None => Ok(()),
            }
        })
    }

    /// Changes the per-connection limits of every live connection and of those accepted
    /// later. Reaches connections asleep in a read or write at once.
    pub fn set_connection_limits(&self, limits: Directions<Limits>) {
        self.with(|r| {
            r.per_connection = limits;
            self.prune(r);
            for c in &r.connections {
                // A connection dropped since the prune has nothing left to limit.
                let _ = self.limiter.set_limit(c.read.node(), limits.read);
                let _ = self.limiter.set_limit(c.write.node(), limits.write);
            }
        });
    }

    /// The per-connection limits new and live connections have.
    pub fn connection_limits(&self) -> Directions<Limits> {
        self.with(|r| r.per_connection)
    }

    /// Live connections (those whose stream has not been dropped).
    pub fn connections(&self) -> usize {
        self.with(|r| {
            self.prune(r);
            r.connections.len()
        })
    }

    /// Statistics of every live connection, `(read, write)` leaf by leaf, oldest first (as
    /// the std adapters' `Server::connection_stats`). One short lock of the tree per leaf.
    pub fn connection_stats(&self) -> Vec<(Stats, Stats), C> {
        self.with(|r| {
            self.prune(r);
            let mut out = Vec::new();
            for c in &r.connections {
                let read = self.limiter.stats(c.read.node()).unwrap_or_default();
                let write = self.limiter.stats(c.write.node()).unwrap_or_default();
                // (never full: it has the registry's capacity)
                let _ = out.push((read, write));
            }
            out
        })
    }

    fn with<R>(&self, f: impl FnOnce(&mut Registry<C>) -> R) -> R {
        // Never reentered: no method calls back into the server while it holds the lock.
        self.registry.lock(|cell| f(&mut cell.borrow_mut()))
    }

    fn ensure_group(&self, r: &mut Registry<C>) -> Result<Group, InsertError> {
        if let Some(g) = r.group {
            return Ok(g);
        }
        let g = self.limiter.group(None, r.limits, 1)?;
        r.group = Some(g);
        Ok(g)
    }

    /// Forgets connections whose leaves are gone (their stream was dropped).
    fn prune(&self, r: &mut Registry<C>) {
        let limiter = self.limiter;
        r.connections.retain(|c| limiter.contains(c.read.node()));
    }
}

impl<const N: usize, const C: usize, M: RawMutex> core::fmt::Debug for Server<'_, N, C, M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Server")
            .field("capacity", &C)
            .finish_non_exhaustive()
    }
}
