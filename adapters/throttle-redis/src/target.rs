//! Where the limit's state lives: one server, or the primary that Redis Sentinel names.
//!
//! Sentinel discovery is done here with `SENTINEL GET-MASTER-ADDR-BY-NAME` (no redis-rs
//! `sentinel` feature, no extra dependency): asked again on every reconnection, so after a
//! failover the next call reaches the new primary. A call that lands on a demoted primary
//! gets `READONLY`, which drops the connection and asks the sentinels again.

use core::time::Duration;

use crate::error::CallError;

/// The server (or servers) behind a limit.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Target {
    /// A standalone server (or a proxy, or a managed endpoint that follows failovers).
    Server(redis::Client),
    /// The current primary of `service` according to the first of `sentinels` that answers.
    Sentinel {
        /// Clients for the sentinel processes (tried in order).
        sentinels: Vec<redis::Client>,
        /// The monitored primary's name (`sentinel monitor <name> …`).
        service: String,
    },
}

impl From<redis::Client> for Target {
    fn from(c: redis::Client) -> Self {
        Target::Server(c)
    }
}

fn primary_client(addr: Option<(String, u16)>) -> Result<redis::Client, CallError> {
    let (host, port) = addr.ok_or(CallError::Connection)?;
    redis::Client::open(format!("redis://{host}:{port}/")).map_err(|_| CallError::Reply)
}

impl Target {
    /// The client of the server to talk to now (asks the sentinels; blocking, each sentinel
    /// bounded by `timeout`).
    pub(crate) fn resolve_blocking(&self, timeout: Duration) -> Result<redis::Client, CallError> {
        match self {
            Target::Server(c) => Ok(c.clone()),
            Target::Sentinel { sentinels, service } => {
                let mut last = CallError::Connection;
                for s in sentinels {
                    let r = s.get_connection_with_timeout(timeout).and_then(|mut c| {
                        c.set_read_timeout(Some(timeout))?;
                        redis::cmd("SENTINEL")
                            .arg("GET-MASTER-ADDR-BY-NAME")
                            .arg(service)
                            .query::<Option<(String, u16)>>(&mut c)
                    });
                    match r {
                        Ok(addr) => return primary_client(addr),
                        Err(e) => last = e.into(),
                    }
                }
                Err(last)
            }
        }
    }

    /// Async [`Target::resolve_blocking`].
    #[cfg(any(feature = "tokio", feature = "smol"))]
    pub(crate) async fn resolve(
        &self,
        cfg: &redis::AsyncConnectionConfig,
    ) -> Result<redis::Client, CallError> {
        match self {
            Target::Server(c) => Ok(c.clone()),
            Target::Sentinel { sentinels, service } => {
                let mut last = CallError::Connection;
                for s in sentinels {
                    let r = async {
                        let mut c = s.get_multiplexed_async_connection_with_config(cfg).await?;
                        redis::cmd("SENTINEL")
                            .arg("GET-MASTER-ADDR-BY-NAME")
                            .arg(service)
                            .query_async::<Option<(String, u16)>>(&mut c)
                            .await
                    }
                    .await;
                    match r {
                        Ok(addr) => return primary_client(addr),
                        Err(e) => last = e.into(),
                    }
                }
                Err(last)
            }
        }
    }
}
