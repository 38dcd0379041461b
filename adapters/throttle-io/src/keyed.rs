//! Keyed child nodes: one node per key (a client address, a user id, an API key) under a
//! parent, created on first use with that key's limits, evicted when idle, and bounded in
//! number. The proxy's per-client limits and a request-limiting middleware's per-client
//! limits are this one map.
//!
//! ```text
//!   parent Node ──┬── key "10.0.0.1" → Node (its limits) ── connections / leaves ...
//!                 ├── key "10.0.0.2" → Node
//!                 └── overflow Node (WhenFull::Overflow: every key past the cap shares it)
//!   KeyedNodes { map, cap, idle } ── get(key) → KeyedNode (a guard: the key is in use)
//! ```
//!
//! **Idle**: a key is idle when no [`KeyedNode`] guard for it is alive and nothing else holds
//! its node (no child, no clone). Idle keys older than the idle time are removed by
//! [`KeyedNodes::sweep`] (call it periodically, e.g. once per idle time) and, when the map is
//! full, by `get` itself (a scan at most every 100 ms and every `cap / 8` new keys, so a flood
//! of new keys costs O(1) amortized per call, not a scan each).
//!
//! **Full** (`len == cap` and nothing idle enough to evict): [`WhenFull::Reject`] fails with
//! [`KeyedError::Full`]; [`WhenFull::Overflow`] hands out one shared overflow node (created
//! with the limits of the first key that overflowed, changed by [`KeyedNodes::set_limits_all`]):
//! the keys beyond the cap share one key's limit instead of being refused. Either way memory
//! stays bounded by `cap` entries, whatever the number of distinct keys.
//!
//! Cost: one mutex and one hash lookup per `get`; the map uses the std `RandomState` hasher,
//! so keys chosen by an attacker (client addresses) cannot degrade it.

extern crate alloc;

use alloc::sync::Arc;
use core::fmt;
use core::hash::Hash;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use core::time::Duration;
use std::collections::HashMap;
use std::sync::Mutex;

use throttle_core::{InsertError, Limits, SetLimitError};

use crate::limiter::Node;

/// What [`KeyedNodes::get`] does with a new key when the map holds `cap` keys and none is
/// idle long enough to be evicted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenFull {
    /// Refuse the new key with [`KeyedError::Full`] (e.g. refuse the connection).
    Reject,
    /// Put every key past the cap on one shared overflow node: served, but together.
    Overflow,
}

/// Why [`KeyedNodes::get`] gave no node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyedError {
    /// The map holds its maximum number of keys, none idle ([`WhenFull::Reject`]).
    Full {
        /// The cap.
        cap: usize,
    },
    /// The tree refused the node (a stale or leaf parent, a zero weight).
    Insert(InsertError),
}

impl fmt::Display for KeyedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyedError::Full { cap } => write!(f, "too many distinct keys in use (cap {cap})"),
            KeyedError::Insert(e) => write!(f, "cannot add a node for the key: {e}"),
        }
    }
}

impl core::error::Error for KeyedError {}

impl From<InsertError> for KeyedError {
    fn from(e: InsertError) -> Self {
        KeyedError::Insert(e)
    }
}

/// The settings of a [`KeyedNodes`] map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyedConfig {
    /// The most keys held at once (`≥ 1`).
    pub cap: usize,
    /// How long a key stays after its last use ends (`0`: evictable as soon as unused).
    pub idle: Duration,
    /// What a new key gets when the map is full.
    pub when_full: WhenFull,
}

/// Child nodes by key under one parent. Cloning is cheap (an `Arc`); clones share the map.
pub struct KeyedNodes<K>(Arc<Inner<K>>);

impl<K> Clone for KeyedNodes<K> {
    fn clone(&self) -> Self {
        KeyedNodes(self.0.clone())
    }
}

struct Inner<K> {
    parent: Node,
    state: Mutex<State<K>>,
}

struct State<K> {
    config: KeyedConfig,
    map: HashMap<K, Entry>,
    overflow: Option<Entry>,
    /// No time-triggered eviction scan from `get` before this (ns on the limiter's clock).
    next_full_sweep: u64,
    /// New keys asked for while full since the last scan.
    full_gets: usize,
}

/// A full map is scanned for idle keys by `get` at most this often, plus once per `cap / 8`
/// new keys: O(1) amortized per call under a flood of new keys, and an idle key frees its
/// place within 100 ms of its idle time.
const FULL_SWEEP_EVERY_NS: u64 = 100_000_000;

#[derive(Clone)]
struct Entry {
    node: Node,
    use_: Arc<Use>,
}

/// In-use count of one key and when its last use ended (ns on the limiter's clock).
#[derive(Debug)]
struct Use {
    users: AtomicUsize,
    idle_since: AtomicU64,
}

/// One use of a key's node: keep it alive while the key is in use (e.g. for the life of a
/// connection); dropping the last one starts the key's idle time. Deref-free on purpose: the
/// node is [`KeyedNode::node`].
pub struct KeyedNode {
    node: Node,
    use_: Arc<Use>,
    overflow: bool,
}

impl fmt::Debug for KeyedNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedNode")
            .field("node", &self.node)
            .field("overflow", &self.overflow)
            .finish()
    }
}

impl KeyedNode {
    /// The key's node: make children, connections or leaves under it.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// True when this is the shared overflow node (the map was full).
    pub fn is_overflow(&self) -> bool {
        self.overflow
    }
}

impl Drop for KeyedNode {
    fn drop(&mut self) {
        // The time first, then the count: a sweep that sees 0 users also sees the time.
        let now = self.node.limiter().now().as_nanos();
        self.use_.idle_since.store(now, Ordering::Release);
        self.use_.users.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Entry {
    fn lease(&self, overflow: bool) -> KeyedNode {
        self.use_.users.fetch_add(1, Ordering::AcqRel);
        KeyedNode {
            node: self.node.clone(),
            use_: self.use_.clone(),
            overflow,
        }
    }

    /// Unused (no guard, no child, no clone outside the map) since at least `idle` at `now`.
    fn evictable(&self, now: u64, idle: Duration) -> bool {
        self.use_.users.load(Ordering::Acquire) == 0
            && Arc::strong_count(&self.node.0) == 1
            && now.saturating_sub(self.use_.idle_since.load(Ordering::Acquire))
                >= u64::try_from(idle.as_nanos()).unwrap_or(u64::MAX)
    }
}

impl<K> fmt::Debug for KeyedNodes<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedNodes")
            .field("config", &self.0.state.lock().map(|s| s.config).ok())
            .field("len", &self.0.state.lock().map(|s| s.map.len()).ok())
            .finish_non_exhaustive()
    }
}

impl<K: Hash + Eq + Clone> KeyedNodes<K> {
    /// An empty map of children under `parent`. A `cap` of 0 is taken as 1.
    pub fn new(parent: Node, mut config: KeyedConfig) -> Self {
        config.cap = config.cap.max(1);
        KeyedNodes(Arc::new(Inner {
            parent,
            state: Mutex::new(State {
                config,
                map: HashMap::new(),
                overflow: None,
                next_full_sweep: 0,
                full_gets: 0,
            }),
        }))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State<K>> {
        self.0
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The node of `key`, created under the parent with `limits` and `weight` if the key has
    /// none (an existing key keeps its current limits: change them with
    /// [`set_limits`](Self::set_limits)). Holding the returned guard keeps the key in use.
    pub fn get(&self, key: &K, limits: Limits, weight: u16) -> Result<KeyedNode, KeyedError> {
        let mut st = self.state();
        if let Some(e) = st.map.get(key) {
            return Ok(e.lease(false));
        }
        let cfg = st.config;
        if st.map.len() >= cfg.cap {
            let now = self.0.parent.limiter().now().as_nanos();
            st.full_gets = st.full_gets.saturating_add(1);
            if now >= st.next_full_sweep || st.full_gets > cfg.cap / 8 {
                st.next_full_sweep = now.saturating_add(FULL_SWEEP_EVERY_NS);
                st.full_gets = 0;
                Self::evict(&mut st, now, cfg.idle);
            }
        }
        if st.map.len() >= cfg.cap {
            return match cfg.when_full {
                WhenFull::Reject => Err(KeyedError::Full { cap: cfg.cap }),
                WhenFull::Overflow => {
                    let e = match st.overflow.take() {
                        Some(e) => e,
                        None => self.entry(limits, weight)?,
                    };
                    let guard = e.lease(true);
                    st.overflow = Some(e);
                    Ok(guard)
                }
            };
        }
        let entry = self.entry(limits, weight)?;
        let guard = entry.lease(false);
        st.map.insert(key.clone(), entry);
        Ok(guard)
    }

    fn entry(&self, limits: Limits, weight: u16) -> Result<Entry, InsertError> {
        let now = self.0.parent.limiter().now().as_nanos();
        Ok(Entry {
            node: self.0.parent.child(limits, weight)?,
            use_: Arc::new(Use {
                users: AtomicUsize::new(0),
                idle_since: AtomicU64::new(now),
            }),
        })
    }

    fn evict(st: &mut State<K>, now: u64, idle: Duration) -> usize {
        let before = st.map.len();
        st.map.retain(|_, e| !e.evictable(now, idle));
        // A map that grew for a flood and emptied gives its memory back.
        if st.map.capacity() > 64 && st.map.len() < st.map.capacity() / 4 {
            st.map.shrink_to(st.map.len() * 2);
        }
        if st.overflow.as_ref().is_some_and(|e| e.evictable(now, idle)) {
            st.overflow = None;
        }
        before - st.map.len()
    }

    /// Removes the keys idle for at least the configured idle time; returns how many.
    /// O(keys held). Call it periodically.
    pub fn sweep(&self) -> usize {
        let now = self.0.parent.limiter().now().as_nanos();
        let mut st = self.state();
        let idle = st.config.idle;
        Self::evict(&mut st, now, idle)
    }

    /// Changes the limits of `key`'s node (live users and sleeping waiters included). `Ok(false)`
    /// when the key has no node now.
    pub fn set_limits(&self, key: &K, limits: Limits) -> Result<bool, SetLimitError> {
        let node = self.state().map.get(key).map(|e| e.node.clone());
        match node {
            Some(n) => n.set_limit(limits).map(|()| true),
            None => Ok(false),
        }
    }

    /// Changes the limits of every key's node and of the overflow node, e.g. when the
    /// per-key limit of a whole group changes. The caller passes the same limits to later
    /// [`get`](Self::get)s for new keys.
    pub fn set_limits_all(&self, limits: Limits) -> Result<(), SetLimitError> {
        let nodes: Vec<Node> = {
            let st = self.state();
            st.map
                .values()
                .chain(st.overflow.as_ref())
                .map(|e| e.node.clone())
                .collect()
        };
        for n in nodes {
            n.set_limit(limits)?;
        }
        Ok(())
    }

    /// Keys held now (the overflow node not counted).
    pub fn len(&self) -> usize {
        self.state().map.len()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True while the overflow node exists (keys beyond the cap were served together).
    pub fn has_overflow(&self) -> bool {
        self.state().overflow.is_some()
    }

    /// The parent node.
    pub fn parent(&self) -> &Node {
        &self.0.parent
    }

    /// The settings.
    pub fn config(&self) -> KeyedConfig {
        self.state().config
    }

    /// Changes the settings. A smaller cap applies as keys go (nothing is evicted early: keys
    /// in use stay); a new idle time applies to every key from the next sweep.
    pub fn set_config(&self, mut config: KeyedConfig) {
        config.cap = config.cap.max(1);
        self.state().config = config;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rt::Manual;

    fn cfg(cap: usize, idle_ms: u64, when_full: WhenFull) -> KeyedConfig {
        KeyedConfig {
            cap,
            idle: Duration::from_millis(idle_ms),
            when_full,
        }
    }

    #[test]
    fn keyed_same_key_gets_same_node_other_key_other_limits() {
        let limiter = Manual::new().limiter();
        let parent = limiter.node(Limits::per_second(1000), 1).unwrap();
        let keyed = KeyedNodes::new(parent, cfg(10, 1000, WhenFull::Reject));
        let a1 = keyed.get(&"a", Limits::per_second(10), 1).unwrap();
        let a2 = keyed.get(&"a", Limits::per_second(99), 1).unwrap();
        let b = keyed.get(&"b", Limits::per_second(20), 2).unwrap();
        assert_eq!(a1.node().id(), a2.node().id());
        assert_ne!(a1.node().id(), b.node().id());
        assert_eq!(
            a2.node().limits().unwrap(),
            Limits::per_second(10),
            "an existing key keeps its limits"
        );
        assert_eq!(b.node().limits().unwrap(), Limits::per_second(20));
        assert_eq!(keyed.len(), 2);
        assert_eq!(limiter.len(), 3);
    }

    #[test]
    fn keyed_limits_change_at_runtime_reach_live_keys() {
        let limiter = Manual::new().limiter();
        let parent = limiter.node(Limits::UNLIMITED, 1).unwrap();
        let keyed = KeyedNodes::new(parent, cfg(10, 1000, WhenFull::Reject));
        let a = keyed.get(&1u32, Limits::per_second(10), 1).unwrap();
        let b = keyed.get(&2u32, Limits::per_second(10), 1).unwrap();
        assert_eq!(keyed.set_limits(&1, Limits::per_second(50)), Ok(true));
        assert_eq!(keyed.set_limits(&3, Limits::per_second(50)), Ok(false));
        assert_eq!(a.node().limits().unwrap(), Limits::per_second(50));
        assert_eq!(b.node().limits().unwrap(), Limits::per_second(10));
        keyed.set_limits_all(Limits::UNLIMITED).unwrap();
        assert_eq!(a.node().limits().unwrap(), Limits::UNLIMITED);
        assert_eq!(b.node().limits().unwrap(), Limits::UNLIMITED);
    }

    #[test]
    fn keyed_idle_key_evicted_after_idle_time_busy_key_kept() {
        let clock = Manual::new();
        let limiter = clock.limiter();
        let parent = limiter.node(Limits::UNLIMITED, 1).unwrap();
        let keyed = KeyedNodes::new(parent, cfg(10, 100, WhenFull::Reject));
        let a = keyed.get(&"a", Limits::UNLIMITED, 1).unwrap();
        let b = keyed.get(&"b", Limits::UNLIMITED, 1).unwrap();
        // a child under b keeps b busy even after b's guard is gone
        let conn = b
            .node()
            .connection(Limits::UNLIMITED, Limits::UNLIMITED)
            .unwrap();
        drop(b);
        drop(a);
        clock.advance(Duration::from_millis(50));
        assert_eq!(keyed.sweep(), 0, "not idle long enough");
        clock.advance(Duration::from_millis(60));
        assert_eq!(keyed.sweep(), 1, "a is gone, b has a connection");
        assert_eq!(keyed.len(), 1);
        drop(conn);
        clock.advance(Duration::from_millis(200));
        assert_eq!(keyed.sweep(), 1);
        assert!(keyed.is_empty());
        assert_eq!(limiter.len(), 1, "only the parent is left in the tree");
    }

    #[test]
    fn keyed_full_reject_is_typed_error_until_a_key_is_idle() {
        let clock = Manual::new();
        let limiter = clock.limiter();
        let parent = limiter.node(Limits::UNLIMITED, 1).unwrap();
        let keyed = KeyedNodes::new(parent, cfg(2, 0, WhenFull::Reject));
        let a = keyed.get(&1u8, Limits::UNLIMITED, 1).unwrap();
        let _b = keyed.get(&2u8, Limits::UNLIMITED, 1).unwrap();
        assert_eq!(
            keyed.get(&3u8, Limits::UNLIMITED, 1).unwrap_err(),
            KeyedError::Full { cap: 2 }
        );
        // a known key is still served when full
        assert!(keyed.get(&1u8, Limits::UNLIMITED, 1).is_ok());
        drop(a);
        clock.advance(Duration::from_millis(5));
        let c = keyed.get(&3u8, Limits::UNLIMITED, 1).unwrap();
        assert!(!c.is_overflow());
        assert_eq!(keyed.len(), 2);
    }

    #[test]
    fn keyed_full_overflow_shares_one_node() {
        let limiter = Manual::new().limiter();
        let parent = limiter.node(Limits::UNLIMITED, 1).unwrap();
        let keyed = KeyedNodes::new(parent, cfg(1, 60_000, WhenFull::Overflow));
        let _a = keyed.get(&"a", Limits::per_second(10), 1).unwrap();
        let b = keyed.get(&"b", Limits::per_second(10), 1).unwrap();
        let c = keyed.get(&"c", Limits::per_second(10), 1).unwrap();
        assert!(b.is_overflow() && c.is_overflow());
        assert_eq!(b.node().id(), c.node().id());
        assert!(keyed.has_overflow());
        keyed.set_limits_all(Limits::per_second(7)).unwrap();
        assert_eq!(c.node().limits().unwrap(), Limits::per_second(7));
    }

    #[test]
    fn keyed_many_distinct_keys_memory_stays_bounded() {
        let clock = Manual::new();
        let limiter = clock.limiter();
        let parent = limiter.node(Limits::UNLIMITED, 1).unwrap();
        let keyed = KeyedNodes::new(parent, cfg(500, 0, WhenFull::Overflow));
        let mut overflowed = 0;
        for k in 0..50_000u32 {
            let g = keyed.get(&k, Limits::per_second(100), 1).unwrap();
            overflowed += usize::from(g.is_overflow());
            drop(g);
            clock.advance(Duration::from_micros(100));
            assert!(keyed.len() <= 500);
            assert!(limiter.len() <= 502, "parent + cap + overflow");
        }
        // a full map is scanned once per cap / 8 new keys: the keys in between overflow
        assert!(overflowed < 50_000 / 4, "{overflowed}");
        clock.advance(Duration::from_millis(5));
        keyed.sweep();
        assert!(keyed.is_empty());
        assert_eq!(limiter.len(), 1);
    }

    #[test]
    fn keyed_set_config_changes_cap_and_idle_at_runtime() {
        let clock = Manual::new();
        let limiter = clock.limiter();
        let parent = limiter.node(Limits::UNLIMITED, 1).unwrap();
        let keyed = KeyedNodes::new(parent, cfg(1, 60_000, WhenFull::Reject));
        let a = keyed.get(&1u8, Limits::UNLIMITED, 1).unwrap();
        assert!(keyed.get(&2u8, Limits::UNLIMITED, 1).is_err());
        keyed.set_config(cfg(2, 10, WhenFull::Reject));
        let _b = keyed.get(&2u8, Limits::UNLIMITED, 1).unwrap();
        drop(a);
        clock.advance(Duration::from_millis(20));
        assert_eq!(keyed.sweep(), 1, "the new idle time applies");
        assert_eq!(keyed.config().cap, 2);
    }

    #[test]
    fn keyed_bad_weight_is_typed_error() {
        let limiter = Manual::new().limiter();
        let parent = limiter.node(Limits::UNLIMITED, 1).unwrap();
        let keyed = KeyedNodes::new(parent, cfg(4, 0, WhenFull::Reject));
        assert_eq!(
            keyed.get(&0u8, Limits::UNLIMITED, 0).unwrap_err(),
            KeyedError::Insert(InsertError::ZeroWeight)
        );
        assert!(keyed.is_empty());
    }
}
