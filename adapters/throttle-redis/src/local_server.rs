//! A throwaway `redis-server` process on a free local port, for tests, the fleet demo and
//! benchmarks: started with `--save '' --appendonly no --enable-debug-command yes`, so that
//! it can be SIGKILLed, restarted empty on the same port, paused with `DEBUG SLEEP`, flushed.
//! It runs in its own directory under the temp dir (a replica stores the RDB it receives),
//! removed with it. Killed when dropped. Never touches a server it did not start.

use core::time::Duration;
use std::io;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// A `redis-server` child process.
#[derive(Debug)]
pub struct LocalRedis {
    binary: String,
    port: u16,
    /// Arguments after the defaults (e.g. `--replicaof`), or the whole command line of a
    /// sentinel.
    extra: Vec<String>,
    sentinel: Option<std::path::PathBuf>,
    /// Its own working directory (a replica writes the RDB it receives there).
    dir: std::path::PathBuf,
    child: Option<Child>,
}

fn work_dir(port: u16) -> io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("throttle-redis-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

impl LocalRedis {
    /// Whether `redis-server` (or the binary named by `THROTTLE_REDIS_SERVER`, e.g.
    /// `valkey-server`) can be run.
    pub fn available() -> bool {
        Command::new(Self::binary())
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn binary() -> String {
        std::env::var("THROTTLE_REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned())
    }

    /// Starts a server on a free port and waits until it answers `PING` (up to 10 s).
    pub fn start() -> io::Result<LocalRedis> {
        Self::start_with(&[])
    }

    /// [`LocalRedis::start`] with more arguments, e.g. `["--replicaof", "127.0.0.1 6400"]`.
    pub fn start_with(extra: &[&str]) -> io::Result<LocalRedis> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut s = LocalRedis {
            binary: Self::binary(),
            port,
            extra: extra.iter().map(|a| (*a).to_owned()).collect(),
            sentinel: None,
            dir: work_dir(port)?,
            child: None,
        };
        s.restart()?;
        Ok(s)
    }

    /// A Sentinel on a free port monitoring the primary on `primary_port` as `service`
    /// (quorum 1, down after 1 s), its config file in the temp directory.
    pub fn start_sentinel(service: &str, primary_port: u16) -> io::Result<LocalRedis> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let conf = std::env::temp_dir().join(format!(
            "throttle-redis-sentinel-{}-{port}.conf",
            std::process::id()
        ));
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\nprotected-mode no\n\
                 sentinel monitor {service} 127.0.0.1 {primary_port} 1\n\
                 sentinel down-after-milliseconds {service} 1000\n\
                 sentinel failover-timeout {service} 5000\n"
            ),
        )?;
        let mut s = LocalRedis {
            binary: Self::binary(),
            port,
            extra: vec![conf.display().to_string(), "--sentinel".to_owned()],
            sentinel: Some(conf),
            dir: work_dir(port)?,
            child: None,
        };
        s.restart()?;
        Ok(s)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A client for this server.
    pub fn client(&self) -> redis::Client {
        // `redis://127.0.0.1:<port>/` always parses (`open` only parses, no I/O).
        redis::Client::open(self.url()).expect("a local redis URL parses")
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL (no shutdown, no save) and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends a signal (`"STOP"`, `"CONT"`) with `kill(1)`.
    pub fn signal(&self, sig: &str) -> io::Result<()> {
        let pid = self.pid().ok_or(io::ErrorKind::NotConnected)?;
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()?
            .success();
        if ok {
            Ok(())
        } else {
            Err(io::Error::other("kill failed"))
        }
    }

    /// (Re)starts the server, empty, on the same port; waits until it answers.
    pub fn restart(&mut self) -> io::Result<()> {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut cmd = Command::new(&self.binary);
            cmd.current_dir(&self.dir);
            if self.sentinel.is_some() {
                cmd.args(&self.extra);
            } else {
                cmd.args(["--port", &self.port.to_string()])
                    .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                    .args(["--enable-debug-command", "yes", "--protected-mode", "no"])
                    .args(&self.extra);
            }
            let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
            self.child = Some(child);
            while Instant::now() < deadline {
                if self.ping() {
                    return Ok(());
                }
                if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                    break; // exited: port still in TIME_WAIT or taken; retry
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "redis-server did not start",
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn ping(&self) -> bool {
        let Ok(client) = redis::Client::open(self.url()) else {
            return false;
        };
        let Ok(mut c) = client.get_connection_with_timeout(Duration::from_millis(200)) else {
            return false;
        };
        redis::cmd("PING").query::<String>(&mut c).is_ok()
    }

    /// Runs one command on a fresh connection (2 s timeouts).
    pub fn cmd<T: redis::FromRedisValue>(&self, args: &[&str]) -> redis::RedisResult<T> {
        let client = self.client();
        let mut c = client.get_connection_with_timeout(Duration::from_secs(2))?;
        c.set_read_timeout(Some(Duration::from_secs(5)))?;
        let Some((name, rest)) = args.split_first() else {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "an empty command",
            )));
        };
        let mut cmd = redis::cmd(name);
        for a in rest {
            cmd.arg(*a);
        }
        cmd.query(&mut c)
    }

    /// `calls` of `EVALSHA` + `EVAL` from `INFO commandstats`.
    pub fn script_calls(&self) -> u64 {
        let info: String = self.cmd(&["INFO", "commandstats"]).unwrap_or_default();
        info.lines()
            .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
            .filter_map(|l| {
                l.split(',')
                    .find_map(|kv| kv.split_once("calls=").map(|(_, v)| v.to_owned()))
                    .and_then(|v| v.parse::<u64>().ok())
            })
            .sum()
    }
}

impl Drop for LocalRedis {
    fn drop(&mut self) {
        self.kill();
        if let Some(conf) = &self.sentinel {
            let _ = std::fs::remove_file(conf);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
