//! Where the limit's state lives: one server, the primary that Redis Sentinel names, or a
//! Cluster (feature `cluster`), and the connection to it.
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
    /// A Redis Cluster (feature `cluster`): all keys of a limit live in the slot of its hash
    /// tag; redis-rs follows `MOVED`/`ASK` and failovers. Timeouts are the client's own
    /// (`ClusterClientBuilder`), bounded by this crate's call deadline as well.
    #[cfg(feature = "cluster")]
    Cluster(Box<redis::cluster::ClusterClient>),
}

#[cfg(feature = "cluster")]
impl From<redis::cluster::ClusterClient> for Target {
    fn from(c: redis::cluster::ClusterClient) -> Self {
        Target::Cluster(Box::new(c))
    }
}

/// An async connection to a [`Target`]: what the scripts are invoked on.
#[cfg(any(feature = "tokio", feature = "smol"))]
#[derive(Clone)]
pub(crate) enum Conn {
    Single(redis::aio::MultiplexedConnection),
    #[cfg(feature = "cluster")]
    Cluster(redis::cluster_async::ClusterConnection),
}

#[cfg(any(feature = "tokio", feature = "smol"))]
impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            #[cfg(feature = "cluster")]
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            #[cfg(feature = "cluster")]
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            #[cfg(feature = "cluster")]
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// A blocking connection to a [`Target`].
pub(crate) type SyncConn = Box<dyn redis::ConnectionLike + Send>;

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
    /// A blocking connection, every step bounded by `timeout`.
    pub(crate) fn connect_blocking(&self, timeout: Duration) -> Result<SyncConn, CallError> {
        #[cfg(feature = "cluster")]
        if let Target::Cluster(c) = self {
            let con = c.get_connection()?;
            con.set_read_timeout(Some(timeout))?;
            con.set_write_timeout(Some(timeout))?;
            return Ok(Box::new(con));
        }
        let client = self.resolve_blocking(timeout)?;
        let con = client.get_connection_with_timeout(timeout)?;
        con.set_read_timeout(Some(timeout))?;
        con.set_write_timeout(Some(timeout))?;
        Ok(Box::new(con))
    }

    /// An async connection with `cfg`'s timeouts.
    #[cfg(any(feature = "tokio", feature = "smol"))]
    pub(crate) async fn connect(
        &self,
        cfg: &redis::AsyncConnectionConfig,
    ) -> Result<Conn, CallError> {
        #[cfg(feature = "cluster")]
        if let Target::Cluster(c) = self {
            return Ok(Conn::Cluster(c.get_async_connection().await?));
        }
        let client = self.resolve(cfg).await?;
        Ok(Conn::Single(
            client
                .get_multiplexed_async_connection_with_config(cfg)
                .await?,
        ))
    }

    /// The client of the server to talk to now (asks the sentinels; blocking, each sentinel
    /// bounded by `timeout`).
    fn resolve_blocking(&self, timeout: Duration) -> Result<redis::Client, CallError> {
        match self {
            Target::Server(c) => Ok(c.clone()),
            #[cfg(feature = "cluster")]
            Target::Cluster(_) => Err(CallError::Reply),
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
    async fn resolve(
        &self,
        cfg: &redis::AsyncConnectionConfig,
    ) -> Result<redis::Client, CallError> {
        match self {
            Target::Server(c) => Ok(c.clone()),
            #[cfg(feature = "cluster")]
            Target::Cluster(_) => Err(CallError::Reply),
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
