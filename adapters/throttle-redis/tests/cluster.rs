//! Redis Cluster (feature `cluster`; run by `.ci/steps/60-redis.sh`): six real nodes, three
//! primaries with a replica each (`redis-cli --cluster create`). Members reach the limit's
//! slot through redis-rs's cluster client; after `CLUSTER FAILOVER` on the replica of that
//! slot they go on, on the new primary, within the limit.

#![cfg(feature = "cluster")]

mod common;

use core::time::Duration;
use std::process::Command;
use std::time::Instant;

use common::{eventually, server};
use throttle_redis::local_server::LocalRedis;
use throttle_redis::{
    LeaseConfig, LimitName, LinkState, PermitConfig, Permits, SharedLimit, Target,
};
use throttle_tokio::{Limits, Tokio};

const RATE: u64 = 4_000_000;

struct Node {
    redis: LocalRedis,
    conf: std::path::PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.redis.kill();
        let _ = std::fs::remove_file(&self.conf);
    }
}

fn node(i: usize) -> Node {
    let conf = std::env::temp_dir().join(format!(
        "throttle-redis-cluster-{}-{i}.conf",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&conf);
    let path = conf.display().to_string();
    let redis = LocalRedis::start_with(&[
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        &path,
        "--cluster-node-timeout",
        "2000",
    ])
    .unwrap();
    Node { redis, conf }
}

/// One line of `CLUSTER NODES`.
struct Entry {
    id: String,
    port: u16,
    master: bool,
    master_id: String,
    slots: Vec<(u16, u16)>,
}

/// `CLUSTER NODES` as `n` sees it.
fn nodes(n: &LocalRedis) -> Vec<Entry> {
    let text: String = n.cmd(&["CLUSTER", "NODES"]).unwrap();
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let port = f[1]
                .split(['@', ':'])
                .nth(1)
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            let slots = f[8..]
                .iter()
                .filter_map(|r| {
                    let (a, b) = r.split_once('-').unwrap_or((r, r));
                    Some((a.parse().ok()?, b.parse().ok()?))
                })
                .collect();
            Entry {
                id: f[0].to_owned(),
                port,
                master: f[2].contains("master"),
                master_id: f[3].to_owned(),
                slots,
            }
        })
        .collect()
}

struct M {
    shared: SharedLimit,
    _root: throttle_tokio::Node,
}

fn member(t: Target) -> M {
    let limiter = throttle_tokio::limiter();
    let root = limiter.node(Limits::per_second(0), 1).unwrap();
    let cfg = LeaseConfig::new(RATE).unwrap();
    let shared = SharedLimit::new(t, LimitName::new("cl").unwrap(), cfg);
    tokio::spawn(shared.run(root.clone(), Tokio));
    let mut leaf = root.leaf(Limits::UNLIMITED, 1).unwrap();
    tokio::spawn(async move { while leaf.acquire(8192).await.is_ok() {} });
    M {
        shared,
        _root: root,
    }
}

fn share(m: &M) -> u64 {
    m.shared.stats().share.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_failover_of_the_limit_slot_is_survived() {
    let Some(probe) = server() else { return };
    drop(probe);
    if Command::new("redis-cli").arg("--version").output().is_err() {
        println!("SKIPPED: redis-cli not found");
        return;
    }
    let ns: Vec<Node> = (0..6).map(node).collect();
    let addrs: Vec<String> = ns
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.redis.port()))
        .collect();
    let out = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&addrs)
        .args(["--cluster-replicas", "1", "--cluster-yes"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let ok = eventually(Duration::from_secs(20), || {
        ns.iter().all(|n| {
            n.redis
                .cmd::<String>(&["CLUSTER", "INFO"])
                .is_ok_and(|i| i.contains("cluster_state:ok"))
        })
    })
    .await;
    assert!(ok.is_some(), "cluster up");

    let urls: Vec<String> = addrs.iter().map(|a| format!("redis://{a}/")).collect();
    let client = redis::cluster::ClusterClient::new(urls.clone()).unwrap();
    let a = member(client.clone().into());
    let b = member(client.clone().into());
    let half = |m: &M| share(m).abs_diff(RATE / 2) <= RATE / 10;
    assert!(eventually(Duration::from_secs(10), || half(&a) && half(&b))
        .await
        .is_some());

    // The replica of the primary that owns the limit's slot takes over.
    let slot: u16 = ns[0]
        .redis
        .cmd(&["CLUSTER", "KEYSLOT", "{thr:cl}:g"])
        .unwrap();
    // The node table gossips its way around: wait until ns[0] knows the owner's replica.
    let mut found = None;
    let _ = eventually(Duration::from_secs(20), || {
        let table = nodes(&ns[0].redis);
        let owner = table
            .iter()
            .find(|n| n.master && n.slots.iter().any(|&(lo, hi)| lo <= slot && slot <= hi));
        found = owner.and_then(|o| table.iter().find(|n| n.master_id == o.id).map(|r| r.port));
        found.is_some()
    })
    .await;
    let replica_port = found.expect("the slot owner's replica");
    let replica = &ns
        .iter()
        .find(|n| n.redis.port() == replica_port)
        .unwrap()
        .redis;
    // A manual failover needs the replica in sync with its primary first.
    let synced = eventually(Duration::from_secs(20), || {
        replica
            .cmd::<String>(&["INFO", "replication"])
            .is_ok_and(|i| i.contains("master_link_status:up"))
    })
    .await;
    assert!(synced.is_some(), "replica in sync");
    let mut promoted = None;
    for _ in 0..3 {
        let _: redis::RedisResult<String> = replica.cmd(&["CLUSTER", "FAILOVER"]);
        promoted = eventually(Duration::from_secs(8), || {
            nodes(replica)
                .iter()
                .any(|n| n.port == replica_port && n.master)
        })
        .await;
        if promoted.is_some() {
            break;
        }
    }
    assert!(promoted.is_some(), "replica promoted");
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(2) {
        assert!(share(&a) + share(&b) <= RATE);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let calls = a.shared.stats().calls;
    let on_new = eventually(Duration::from_secs(10), || {
        a.shared.stats().state == LinkState::Connected
            && b.shared.stats().state == LinkState::Connected
            && a.shared.stats().calls > calls + 5
            && replica
                .cmd::<i64>(&["HLEN", "{thr:cl}:m"])
                .is_ok_and(|n| n == 2)
            && half(&a)
            && half(&b)
    })
    .await;
    assert!(
        on_new.is_some(),
        "a {:?} {:?} b {:?}",
        a.shared.stats(),
        a.shared.last_error(),
        b.shared.stats()
    );

    // Permits through the cluster, blocking and async.
    let p = Permits::new(
        client,
        LimitName::new("clp").unwrap(),
        PermitConfig::new(Duration::from_millis(10), 1).unwrap(),
    );
    assert!(p.acquire().await.unwrap().is_some());
    let got = tokio::task::spawn_blocking(move || p.acquire_blocking())
        .await
        .unwrap();
    assert!(got.unwrap().is_some());
}
