//! Shared pieces of the proxy tests: a running `throttle proxy` on free loopback ports, tiny
//! upstream servers, and a raw HTTP/1.1 client for the admin API (raw so that the tests can
//! send what a well-behaved client would not).

#![allow(dead_code, unreachable_pub)] // each test file uses a part

use core::net::SocketAddr;
use core::time::Duration;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Instant;

pub const TOKEN: &str = "test-token-0123456789abcdef";

/// A port free a moment ago (the proxy binds it next; a clash fails the start loudly).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh private directory.
pub fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("throttle-proxy-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running proxy; killed on drop.
pub struct Proxy {
    pub child: Child,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub admin: SocketAddr,
    pub listen: SocketAddr,
    pub log: PathBuf,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `[admin]` and one `[[listener]]` named "main" to `upstream`, then `rest` (TOML).
pub fn config_text(
    admin: SocketAddr,
    listen: SocketAddr,
    upstream: SocketAddr,
    rest: &str,
) -> String {
    format!(
        "[admin]\nlisten = \"{admin}\"\ntoken_file = \"token\"\n\n[[listener]]\nname = \"main\"\nlisten = \"{listen}\"\nupstream = \"{upstream}\"\n\n{rest}"
    )
}

impl Proxy {
    /// Starts `throttle proxy -c` with [`config_text`]`(…, rest)` and waits until its admin
    /// API answers.
    pub fn start(name: &str, upstream: SocketAddr, rest: &str) -> Proxy {
        Self::start_with(name, upstream, rest, &[])
    }

    pub fn start_with(name: &str, upstream: SocketAddr, rest: &str, extra: &[&str]) -> Proxy {
        let dir = scratch(name);
        std::fs::write(dir.join("token"), TOKEN).unwrap();
        // Port 0: the proxy picks free ports and logs them (no race between parallel tests).
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let config = dir.join("throttle.toml");
        std::fs::write(&config, config_text(any, any, upstream, rest)).unwrap();
        let log = dir.join("proxy.log");
        let child = Command::new(env!("CARGO_BIN_EXE_throttle"))
            .arg("proxy")
            .arg("-c")
            .arg(&config)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut p = Proxy {
            child,
            dir,
            config,
            admin: any,
            listen: any,
            log,
        };
        let t0 = Instant::now();
        loop {
            let text = p.log_text();
            let find = |key: &str| {
                text.lines()
                    .find_map(|l| {
                        l.split_once(key)
                            .map(|(_, a)| a.trim().parse::<SocketAddr>())
                    })
                    .and_then(Result::ok)
            };
            if let (Some(a), Some(l)) =
                (find("admin API listening on "), find("proxy listening on "))
            {
                p.admin = a;
                p.listen = l;
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "proxy did not start: {text}"
            );
            thread::sleep(Duration::from_millis(20));
        }
        p
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (e.g. "HUP", "TERM") with kill(1).
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    /// `GET /v1/stats` parsed.
    pub fn stats(&self) -> serde_json::Value {
        let (status, body) = self.get("/v1/stats");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        http(
            self.admin,
            &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
        )
    }

    /// An authorized JSON request.
    pub fn send(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        http(
            self.admin,
            &format!(
                "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        )
    }

    /// The group `name` in the stats.
    pub fn group(&self, name: &str) -> serde_json::Value {
        self.stats()["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no group {name}"))
    }
}

/// Sends a raw request, returns (status, body).
pub fn http(addr: SocketAddr, raw: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(raw.as_bytes());
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

/// An upstream that sends `n` bytes to each connection (then closes), forever.
pub fn source(n: usize) -> SocketAddr {
    serve(move |mut s| {
        let buf = vec![7u8; 64 * 1024];
        let mut left = n;
        while left > 0 {
            let k = left.min(buf.len());
            if s.write_all(&buf[..k]).is_err() {
                return;
            }
            left -= k;
        }
    })
}

/// An upstream that reads until EOF, then answers with the byte count and the bytes
/// reversed, and closes: a reply that only arrives after a half-close got through.
pub fn reverser() -> SocketAddr {
    serve(|mut s| {
        let mut got = Vec::new();
        if s.read_to_end(&mut got).is_err() {
            return;
        }
        got.reverse();
        let _ = s.write_all(format!("{}\n", got.len()).as_bytes());
        let _ = s.write_all(&got);
        let _ = s.shutdown(Shutdown::Write);
    })
}

/// An upstream that echoes until EOF.
pub fn echo() -> SocketAddr {
    serve(|mut s| {
        let mut r = s.try_clone().unwrap();
        let _ = std::io::copy(&mut r, &mut s);
        let _ = s.shutdown(Shutdown::Write);
    })
}

/// Runs `handler` on a thread per accepted connection.
pub fn serve(handler: impl Fn(TcpStream) + Send + Sync + Clone + 'static) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for s in l.incoming().flatten() {
            let h = handler.clone();
            thread::spawn(move || h(s));
        }
    });
    addr
}

/// Reads from `s` until EOF; returns the bytes and the time it took.
pub fn drain(s: &mut TcpStream) -> (usize, Duration) {
    let t0 = Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0;
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return (n, t0.elapsed()),
            Ok(k) => n += k,
        }
    }
}

/// True when the program is on the PATH; prints SKIPPED otherwise.
pub fn have(tool: &str, test: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        println!("SKIPPED: {test}: {tool} not installed (.ci/deps/proxy.sh installs it)");
    }
    found
}
