//! throttle under test, through `throttle-tokio` as its README shows: one limiter (one tree on
//! tokio's clock), a node carrying the shared limit, and each stream wrapped with
//! `throttle_tokio::wrap` under it (read direction unlimited, write direction carrying the
//! per-stream limit). A shared-limit change is `Node::set_limit`, which reaches the streams'
//! sleeping writers.

use throttle_bench::net;
use throttle_tokio::{Limits, Node};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

pub(crate) struct ThrottleShaper {
    node: Node,
    per_stream: Limits,
}

fn limits(rate: Option<u64>) -> Limits {
    rate.map_or(Limits::UNLIMITED, Limits::per_second)
}

impl ThrottleShaper {
    pub(crate) fn new(shared: Option<u64>, per_stream: Option<u64>) -> Option<Self> {
        let node = throttle_tokio::limiter().node(limits(shared), 1).ok()?;
        Some(ThrottleShaper {
            node,
            per_stream: limits(per_stream),
        })
    }

    pub(crate) fn spawn(&self, stream: TcpStream) -> JoinHandle<u64> {
        let wrapped = throttle_tokio::wrap(stream, &self.node, Limits::UNLIMITED, self.per_stream);
        tokio::spawn(async move {
            match wrapped {
                Ok(s) => net::pump(s).await,
                Err(e) => {
                    eprintln!("throttle: cannot register a stream: {e}");
                    0
                }
            }
        })
    }

    pub(crate) fn set_shared(&self, rate: u64) -> bool {
        self.node.set_limit(Limits::per_second(rate)).is_ok()
    }
}
