//! The proxy's limit tree and what can change in it at runtime: groups, their limits and
//! schedules, the live connections of each group (so that a per-connection change reaches
//! them), applied from a validated [`Plan`] (start, reload) or from the admin API (`PATCH`).
//!
//! ```text
//!   up root (server.up) ──┬── group "a" (weight 3, up) ── client 10.1.0.7 ── conn leaf ...
//!                         └── group "default" ...          (KeyedNodes<IpAddr>)
//!   down root (server.down) ── the same shape, down limits
//! ```
//!
//! One tree per direction: a limit "per direction" is a node per direction. Every node is
//! created here; nothing in this module can fail once a plan is validated (the plan's limits
//! passed the same tree checks in its dry run).

use core::net::IpAddr;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::collections::HashMap;
use std::sync::{Mutex, RwLock};

use alloc::sync::Arc;

use throttle_io::{KeyedConfig, KeyedNode, KeyedNodes, WhenFull};
use throttle_spec::{Limit, Rate, ScheduleDriver};
use throttle_tokio::{Limiter, Node};

use super::config::{GroupPlan, Pair, Plan};

/// The two directions, as labels (`up`: client → upstream, `down`: upstream → client).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    Up,
    Down,
}

impl Dir {
    pub(crate) const BOTH: [Dir; 2] = [Dir::Up, Dir::Down];

    /// 0 for up, 1 for down (index into `[up, down]` arrays).
    pub(crate) fn index(self) -> usize {
        self.pick(0, 1)
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Dir::Up => "up",
            Dir::Down => "down",
        }
    }

    fn pick<T>(self, up: T, down: T) -> T {
        match self {
            Dir::Up => up,
            Dir::Down => down,
        }
    }
}

/// A group's limit tree in one direction.
pub(crate) struct GroupDir {
    pub(crate) node: Node,
    pub(crate) clients: KeyedNodes<IpAddr>,
    /// The schedule of this direction, if any (a manual change holds until its next boundary).
    pub(crate) schedule: Mutex<Option<ScheduleDriver>>,
}

/// What a group's limits are now (the plan's, then the admin API's changes).
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) plan: GroupPlan,
}

/// One group: its nodes, its settings, its live connections.
pub(crate) struct Group {
    pub(crate) name: String,
    pub(crate) up: GroupDir,
    pub(crate) down: GroupDir,
    pub(crate) settings: Mutex<Settings>,
    /// Control handles of the live connections' leaves `[up, down]`, by connection id; an
    /// entry is removed when its connection ends (so the leaves leave the tree).
    conns: Mutex<HashMap<u64, [Node; 2]>>,
    pub(crate) accepted: AtomicU64,
    /// The overflow of the per-client map was logged (once per group).
    overflow_warned: AtomicBool,
    /// Bytes moved `[up, down]`, counted by the relays (exact: what was written).
    pub(crate) bytes: [AtomicU64; 2],
}

impl Group {
    pub(crate) fn dir(&self, d: Dir) -> &GroupDir {
        d.pick(&self.up, &self.down)
    }

    pub(crate) fn settings(&self) -> Settings {
        self.settings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn connections(&self) -> usize {
        lock(&self.conns).len()
    }

    /// Sets what the group's nodes hold from `plan` (weight, per-client limits, per-connection
    /// limits of live connections, and the group's own limit in the directions `group_limit`
    /// says: a `PATCH` that leaves a scheduled direction alone keeps the schedule's rate).
    fn apply(&self, plan: &GroupPlan, group_limit: [bool; 2]) {
        for (d, set) in Dir::BOTH.into_iter().zip(group_limit) {
            let gd = self.dir(d);
            let _ = gd.node.set_weight(plan.weight);
            if set {
                let _ = gd.node.set_limit(d.pick(plan.up, plan.down).to_limits());
            }
            let _ = gd
                .clients
                .set_limits_all(d.pick(plan.per_client.up, plan.per_client.down).to_limits());
        }
        self.set_conn_limits(plan.per_conn);
        lock(&self.settings).plan = plan.clone();
    }

    fn set_conn_limits(&self, per_conn: Pair) {
        for [up, down] in lock(&self.conns).values() {
            let _ = up.set_limit(per_conn.up.to_limits());
            let _ = down.set_limit(per_conn.down.to_limits());
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A connection's place in the tree: its leaves' parents (kept in use while it lives) and its
/// registration in its group. Dropping it unregisters the connection.
pub(crate) struct Placement {
    pub(crate) group: Arc<Group>,
    pub(crate) id: u64,
    /// The client's nodes, kept in use (not evictable) while the connection lives.
    _clients: [KeyedNode; 2],
}

impl Drop for Placement {
    fn drop(&mut self) {
        lock(&self.group.conns).remove(&self.id);
    }
}

/// The tree, the groups in match order, and the plan in force.
pub(crate) struct Tree {
    /// Bytes moved `[up, down]` by every connection.
    pub(crate) bytes: [AtomicU64; 2],
    pub(crate) up: Node,
    pub(crate) down: Node,
    live: RwLock<Live>,
    next_conn: AtomicU64,
}

struct Live {
    plan: Arc<Plan>,
    groups: Vec<Arc<Group>>,
}

/// Why a connection got no place.
#[derive(Debug)]
pub(crate) enum PlaceError {
    /// The group's per-client map is full (cannot happen with the overflow policy) or the
    /// tree refused a node.
    Tree(String),
}

impl Tree {
    /// The tree for `plan` (validated).
    pub(crate) fn new(plan: Plan) -> Arc<Tree> {
        let limiter = throttle_tokio::limiter();
        // Both roots' limits passed the plan's dry run: these cannot fail.
        let up = limiter
            .node(plan.server.up.to_limits(), 1)
            .unwrap_or_else(|_| unreachable_root(&limiter));
        let down = limiter
            .node(plan.server.down.to_limits(), 1)
            .unwrap_or_else(|_| unreachable_root(&limiter));
        let tree = Arc::new(Tree {
            bytes: [AtomicU64::new(0), AtomicU64::new(0)],
            up,
            down,
            live: RwLock::new(Live {
                plan: Arc::new(plan.clone()),
                groups: Vec::new(),
            }),
            next_conn: AtomicU64::new(1),
        });
        tree.apply(plan);
        tree
    }

    /// The plan in force.
    pub(crate) fn plan(&self) -> Arc<Plan> {
        self.live
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .plan
            .clone()
    }

    /// The groups in match order.
    pub(crate) fn groups(&self) -> Vec<Arc<Group>> {
        self.live
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .groups
            .clone()
    }

    /// The group called `name`.
    pub(crate) fn group(&self, name: &str) -> Option<Arc<Group>> {
        self.groups().into_iter().find(|g| g.name == name)
    }

    /// Applies a validated plan at once: existing groups (by name) keep their nodes and live
    /// connections and take the new limits; new groups are added; groups no longer in the
    /// plan match no new connection (their live connections finish under their old limits).
    /// Schedules restart from the new plan.
    pub(crate) fn apply(&self, plan: Plan) {
        let _ = self.up.set_limit(plan.server.up.to_limits());
        let _ = self.down.set_limit(plan.server.down.to_limits());
        let old = self.groups();
        let mut groups = Vec::with_capacity(plan.groups.len());
        for gp in &plan.groups {
            let g = match old.iter().find(|g| g.name == gp.name) {
                Some(g) => {
                    g.apply(gp, [true, true]);
                    for d in Dir::BOTH {
                        g.dir(d).clients.set_config(clients_config(&plan));
                    }
                    g.clone()
                }
                None => self.new_group(gp, &plan),
            };
            for d in Dir::BOTH {
                let sched = d.pick(&gp.schedule_up, &gp.schedule_down);
                *lock(&g.dir(d).schedule) = sched.clone().map(ScheduleDriver::new);
            }
            groups.push(g);
        }
        let mut live = self
            .live
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        live.plan = Arc::new(plan);
        live.groups = groups;
    }

    fn new_group(&self, gp: &GroupPlan, plan: &Plan) -> Arc<Group> {
        let make = |d: Dir, root: &Node| {
            // Limits and weight passed the plan's dry run.
            let node = root
                .child(d.pick(gp.up, gp.down).to_limits(), gp.weight)
                .unwrap_or_else(|_| {
                    root.child(throttle_tokio::Limits::UNLIMITED, 1)
                        .expect("an unlimited child of a live root")
                });
            GroupDir {
                clients: KeyedNodes::new(node.clone(), clients_config(plan)),
                node,
                schedule: Mutex::new(None),
            }
        };
        Arc::new(Group {
            name: gp.name.clone(),
            up: make(Dir::Up, &self.up),
            down: make(Dir::Down, &self.down),
            settings: Mutex::new(Settings { plan: gp.clone() }),
            conns: Mutex::new(HashMap::new()),
            accepted: AtomicU64::new(0),
            overflow_warned: AtomicBool::new(false),
            bytes: [AtomicU64::new(0), AtomicU64::new(0)],
        })
    }

    /// Places a new connection: its group (first match), its client's nodes, its two leaves
    /// `(up, down)` with the group's per-connection limits, registered in the group.
    pub(crate) fn place(
        &self,
        listener: &str,
        client: IpAddr,
    ) -> Result<(Placement, throttle_tokio::Leaf, throttle_tokio::Leaf), PlaceError> {
        let group = self
            .groups()
            .into_iter()
            .find(|g| g.settings().plan.matches(listener, client))
            .ok_or_else(|| PlaceError::Tree("no group (the default group is missing)".into()))?;
        let s = group.settings().plan;
        let tree_err = |e: &dyn core::fmt::Display| PlaceError::Tree(e.to_string());
        let cu = group
            .up
            .clients
            .get(&client, s.per_client.up.to_limits(), 1)
            .map_err(|e| tree_err(&e))?;
        let cd = group
            .down
            .clients
            .get(&client, s.per_client.down.to_limits(), 1)
            .map_err(|e| tree_err(&e))?;
        let up = cu
            .node()
            .leaf(s.per_conn.up.to_limits(), 1)
            .map_err(|e| tree_err(&e))?;
        let down = cd
            .node()
            .leaf(s.per_conn.down.to_limits(), 1)
            .map_err(|e| tree_err(&e))?;
        if (cu.is_overflow() || cd.is_overflow())
            && !group.overflow_warned.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(group = %group.name, "max_clients reached: new clients of the group share one node");
        }
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        lock(&group.conns).insert(id, [up.node().clone(), down.node().clone()]);
        group.accepted.fetch_add(1, Ordering::Relaxed);
        Ok((
            Placement {
                group,
                id,
                _clients: [cu, cd],
            },
            up,
            down,
        ))
    }

    /// Removes idle client nodes of every group (called every second).
    pub(crate) fn sweep(&self) {
        for g in self.groups() {
            g.up.clients.sweep();
            g.down.clients.sweep();
        }
    }

    /// Applies the schedules whose boundary is due (and, after a reload, the rate in force).
    pub(crate) fn drive_schedules(&self, now: throttle_spec::jiff::Timestamp) {
        for g in self.groups() {
            for d in Dir::BOTH {
                let gd = g.dir(d);
                let mut sched = lock(&gd.schedule);
                if let Some(driver) = sched.as_mut() {
                    match driver.drive(&gd.node, now, None) {
                        Ok(Some(rate)) => {
                            tracing::info!(group = %g.name, direction = d.label(), rate = %rate, "schedule: limit changed");
                        }
                        Ok(None) => {}
                        Err(e) => tracing::warn!(group = %g.name, "schedule: {e}"),
                    }
                }
            }
        }
    }
}

/// The per-client map's settings: past `max_clients`, new clients of a group share one
/// overflow node with the per-client limit (served together rather than refused).
fn clients_config(plan: &Plan) -> KeyedConfig {
    KeyedConfig {
        cap: plan.server.max_clients,
        idle: plan.server.client_idle,
        when_full: WhenFull::Overflow,
    }
}

fn unreachable_root(limiter: &Limiter) -> Node {
    limiter
        .node(throttle_tokio::Limits::UNLIMITED, 1)
        .expect("an unlimited root always fits an empty tree")
}

/// A change to one group from the admin API (`PATCH /v1/groups/{name}`); absent fields stay.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GroupPatch {
    pub(crate) up: Option<Limit>,
    pub(crate) down: Option<Limit>,
    pub(crate) weight: Option<u32>,
    pub(crate) per_client: Option<PairPatch>,
    pub(crate) per_conn: Option<PairPatch>,
}

/// One or both directions of a per-client or per-connection limit.
#[derive(Clone, Copy, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PairPatch {
    pub(crate) up: Option<Limit>,
    pub(crate) down: Option<Limit>,
}

impl GroupPatch {
    /// The group's settings with this change, checked like the config file's; nothing is
    /// applied.
    pub(crate) fn merged(&self, plan: &GroupPlan) -> Result<GroupPlan, super::config::ConfigError> {
        use super::config::{check_limit, ConfigError};
        let mut p = plan.clone();
        if let Some(w) = self.weight {
            p.weight = u16::try_from(w)
                .ok()
                .filter(|w| *w >= 1)
                .ok_or_else(|| ConfigError(format!("weight {w} is not in 1..=65535")))?;
        }
        let set = |dst: &mut Limit, src: Option<Limit>, what: &str| -> Result<(), ConfigError> {
            if let Some(l) = src {
                check_limit(what, l)?;
                *dst = l;
            }
            Ok(())
        };
        set(&mut p.up, self.up, "up")?;
        set(&mut p.down, self.down, "down")?;
        if let Some(pc) = self.per_client {
            set(&mut p.per_client.up, pc.up, "per_client.up")?;
            set(&mut p.per_client.down, pc.down, "per_client.down")?;
        }
        if let Some(pc) = self.per_conn {
            set(&mut p.per_conn.up, pc.up, "per_conn.up")?;
            set(&mut p.per_conn.down, pc.down, "per_conn.down")?;
        }
        Ok(p)
    }
}

impl Tree {
    /// Applies a checked change to one group now: its nodes, its clients' nodes and its live
    /// connections (sleeping waiters included: the tree re-evaluates them). A changed group
    /// limit overrides the group's schedule until the schedule's next boundary.
    pub(crate) fn patch(&self, group: &Group, new: &GroupPlan, patch: &GroupPatch) {
        group.apply(new, [patch.up.is_some(), patch.down.is_some()]);
        let now = throttle_spec::jiff::Timestamp::now();
        for (d, changed) in [(Dir::Up, patch.up), (Dir::Down, patch.down)] {
            if let Some(l) = changed {
                if let Some(driver) = lock(&group.dir(d).schedule).as_mut() {
                    driver.manual(l.rate, now);
                }
            }
        }
    }
}

/// A rate as the API shows it: `null` for no limit, else bytes per second.
pub(crate) fn rate_json(r: Rate) -> serde_json::Value {
    match r.bytes_per_second() {
        None => serde_json::Value::Null,
        Some(n) => n.into(),
    }
}
