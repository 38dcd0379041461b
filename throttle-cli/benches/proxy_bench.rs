//! `throttle proxy`'s figures with real clients on loopback: `cargo bench -p throttle-cli
//! --bench proxy_bench` (or `benches/proxy_bench.sh`, which installs iperf3 and nginx first and
//! builds the release binary). Options: `--secs N` per iperf3 run (default 10), `--skip-nginx`.
//!
//! 1. iperf3 `-P 8 -J` through a 100 Mbit/s limit (client → upstream): aggregate against the
//!    limit and Jain's index over the 8 streams' receiver rates (`-O 2`: the first 2 s omitted).
//! 2. Two groups weighted 3:1, 4 streams from 127.0.0.2 in one, 1 stream from 127.0.0.3 in the
//!    other, under 100 Mbit/s: each group's share.
//! 3. A `PATCH` reaching live connections, measured at the clients: 20 connections paused by a
//!    `PATCH`, then resumed by another; the time from sending the resume to each client's first
//!    byte (median and worst over 5 rounds).
//! 4. No limit: one iperf3 stream direct, through `throttle proxy` and through nginx's stream
//!    proxy (Debian's nginx + libnginx-mod-stream, one process); throughput, and CPU seconds per
//!    GiB of each proxy process (user + system from /proc). `--only-throughput`: this part only.

extern crate alloc;

mod bench_util;

use alloc::sync::Arc;
use core::net::SocketAddr;
use core::time::Duration;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::Instant;

use bench_util::throttle_bin;

const TOKEN: &str = "bench-token-0123456789abcdef";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn scratch() -> PathBuf {
    let d = std::env::temp_dir().join(format!("throttle-proxy-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn wait_port(port: u16) {
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "nothing listens on {port}"
        );
        thread::sleep(Duration::from_millis(20));
    }
    // Through a proxy the probe reached an iperf3 server, which takes it for a test: give it
    // time to drop it before the real client comes.
    thread::sleep(Duration::from_millis(1500));
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `throttle proxy -c` on `toml`; waits for each of `ports`.
fn proxy(dir: &Path, toml: &str, ports: &[u16]) -> Killed {
    std::fs::write(dir.join("token"), TOKEN).unwrap();
    let cfg = dir.join("bench.toml");
    std::fs::write(&cfg, toml).unwrap();
    let child = Command::new(throttle_bin())
        .args(["proxy", "-c"])
        .arg(&cfg)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for p in ports {
        wait_port(*p);
    }
    Killed(child)
}

fn iperf_server(port: u16) -> Killed {
    let c = Command::new("iperf3")
        .args(["-s", "-B", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("iperf3");
    // No probe connection: iperf3 would take it for a test and be busy for a moment.
    thread::sleep(Duration::from_millis(500));
    Killed(c)
}

fn iperf_client(
    port: u16,
    streams: u32,
    secs: u64,
    bind: Option<&str>,
    omit: u64,
) -> serde_json::Value {
    let mut cmd = Command::new("iperf3");
    cmd.args([
        "-c",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-P",
        &streams.to_string(),
    ])
    .args(["-t", &secs.to_string(), "-O", &omit.to_string(), "-J"]);
    if let Some(b) = bind {
        cmd.args(["-B", b]);
    }
    let out = cmd.output().unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("iperf3: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn stream_rates(v: &serde_json::Value) -> Vec<f64> {
    v["end"]["streams"]
        .as_array()
        .unwrap_or_else(|| panic!("iperf3 gave no streams: {v}"))
        .iter()
        .map(|s| s["receiver"]["bits_per_second"].as_f64().unwrap_or(0.0))
        .collect()
}

fn jain(xs: &[f64]) -> f64 {
    let s: f64 = xs.iter().sum();
    let q: f64 = xs.iter().map(|x| x * x).sum();
    s * s / (xs.len() as f64 * q)
}

fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    // after the comm: state is field 3, utime 14, stime 15 (1-based in proc(5))
    let ticks = |i: usize| {
        f.get(i - 3)
            .and_then(|x| x.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(14) + ticks(15)) / 100.0
}

fn uptime() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let secs: u64 = args
        .iter()
        .position(|a| a == "--secs")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let skip_nginx = args.iter().any(|a| a == "--skip-nginx");
    let only_throughput = args.iter().any(|a| a == "--only-throughput");
    let dir = scratch();
    println!(
        "throttle proxy bench, {secs} s per iperf3 run; load (1/5/15 min): {}",
        uptime()
    );

    // 1. eight streams through 100 Mbit/s
    let up = free_port();
    let listen = free_port();
    let _srv = iperf_server(up);
    if !only_throughput {
        let _p = proxy(
            &dir,
            &format!("[server]\nup = \"100Mbit/s\"\n[[listener]]\nname = \"a\"\nlisten = \"127.0.0.1:{listen}\"\nupstream = \"127.0.0.1:{up}\"\n"),
            &[listen],
        );
        let v = iperf_client(listen, 8, secs, None, 2);
        let r = stream_rates(&v);
        let total: f64 = r.iter().sum();
        println!(
            "1. iperf3 -P 8 through 100 Mbit/s: aggregate {:.3} Mbit/s ({:+.2} %), Jain {:.4}, streams {:?} Mbit/s",
            total / 1e6,
            (total / 100e6 - 1.0) * 100.0,
            jain(&r),
            r.iter().map(|x| (x / 1e4).round() / 100.0).collect::<Vec<_>>()
        );
    }

    // 2. weights 3:1, 4 streams vs 1
    if !only_throughput {
        let up2 = free_port();
        let _srv2 = iperf_server(up2);
        let (la, lb) = (free_port(), free_port());
        let _p = proxy(
            &dir,
            &format!(
                "[server]\nup = \"100Mbit/s\"\n\
                 [[listener]]\nname = \"a\"\nlisten = \"127.0.0.1:{la}\"\nupstream = \"127.0.0.1:{up}\"\n\
                 [[listener]]\nname = \"b\"\nlisten = \"127.0.0.1:{lb}\"\nupstream = \"127.0.0.1:{up2}\"\n\
                 [[group]]\nname = \"gold\"\nweight = 3\nmatch = {{ client = [\"127.0.0.2\"] }}\n\
                 [[group]]\nname = \"bronze\"\nweight = 1\nmatch = {{ client = [\"127.0.0.3\"] }}\n"
            ),
            &[la, lb],
        );
        let ta = thread::spawn(move || iperf_client(la, 4, secs, Some("127.0.0.2"), 2));
        let vb = iperf_client(lb, 1, secs, Some("127.0.0.3"), 2);
        let va = ta.join().unwrap();
        let a: f64 = stream_rates(&va).iter().sum();
        let b: f64 = stream_rates(&vb).iter().sum();
        println!(
            "2. weights 3:1, 4 streams vs 1 under 100 Mbit/s: gold {:.2} % ({:.2} Mbit/s), bronze {:.2} % ({:.2} Mbit/s), total {:.2} Mbit/s; gold's 4 streams Jain {:.4}",
            a / (a + b) * 100.0,
            a / 1e6,
            b / (a + b) * 100.0,
            b / 1e6,
            (a + b) / 1e6,
            jain(&stream_rates(&va))
        );
    }

    // 3. PATCH latency at the clients
    if !only_throughput {
        patch_latency(&dir);
    }

    // 4. no limit: direct, throttle, nginx
    let direct = iperf_client(up, 1, secs, None, 0);
    let direct_bps = direct["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or(0.0);
    println!(
        "4. no limit, one stream, {secs} s: direct {:.2} Gbit/s",
        direct_bps / 1e9
    );
    let through = |name: &str, port: u16, pid: u32| {
        let c0 = cpu_secs(pid);
        let v = iperf_client(port, 1, secs, None, 0);
        let cpu = cpu_secs(pid) - c0;
        let bps = v["end"]["sum_received"]["bits_per_second"]
            .as_f64()
            .unwrap_or(0.0);
        let gib = v["end"]["sum_received"]["bytes"].as_f64().unwrap_or(0.0) / (1u64 << 30) as f64;
        println!(
            "   {name}: {:.2} Gbit/s ({:.1} % of direct), {:.3} CPU s per GiB ({cpu:.2} s for {gib:.2} GiB)",
            bps / 1e9,
            bps / direct_bps * 100.0,
            cpu / gib
        );
        cpu / gib
    };
    let throttle_cpu = {
        // a fresh iperf3 server each time: the last one may still be closing its test
        let up = free_port();
        let _srv = iperf_server(up);
        let l = free_port();
        let p = proxy(
            &dir,
            &format!("[[listener]]\nname = \"a\"\nlisten = \"127.0.0.1:{l}\"\nupstream = \"127.0.0.1:{up}\"\n"),
            &[l],
        );
        through("throttle proxy", l, p.0.id())
    };
    if skip_nginx || !Path::new("/usr/lib/nginx/modules/ngx_stream_module.so").exists() {
        println!("   nginx: SKIPPED (--skip-nginx, or nginx + libnginx-mod-stream not installed)");
        return;
    }
    let up = free_port();
    let _srv3 = iperf_server(up);
    let l = free_port();
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n\
             daemon off; master_process off; worker_processes 1;\n\
             pid {d}/nginx.pid; error_log {d}/nginx-error.log;\n\
             events {{ worker_connections 1024; }}\n\
             stream {{ server {{ listen 127.0.0.1:{l}; proxy_pass 127.0.0.1:{up}; }} }}\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let nginx = Killed(
        Command::new("nginx")
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(dir.join("nginx-error.log"))
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx"),
    );
    wait_port(l);
    let nginx_cpu = through("nginx stream proxy", l, nginx.0.id());
    println!(
        "   CPU per GiB, throttle ÷ nginx: {:.2}×",
        throttle_cpu / nginx_cpu
    );
}

/// 20 connections read from an endless source through a group; a PATCH pauses the group,
/// another resumes it; the time from sending the resume to each client's next byte.
fn patch_latency(dir: &Path) {
    let src = TcpListener::bind("127.0.0.1:0").unwrap();
    let src_addr = src.local_addr().unwrap();
    thread::spawn(move || {
        for s in src.incoming().flatten() {
            thread::spawn(move || {
                let mut s = s;
                let buf = vec![0u8; 16 * 1024];
                while s.write_all(&buf).is_ok() {}
            });
        }
    });
    let (l, a) = (free_port(), free_port());
    let _p = proxy(
        dir,
        &format!(
            "[admin]\nlisten = \"127.0.0.1:{a}\"\ntoken_file = \"token\"\n\
             [[listener]]\nname = \"a\"\nlisten = \"127.0.0.1:{l}\"\nupstream = \"{src_addr}\"\n\
             [[group]]\nname = \"g\"\nper_conn = {{ down = \"1M\" }}\n"
        ),
        &[l, a],
    );
    let admin: SocketAddr = format!("127.0.0.1:{a}").parse().unwrap();
    let patch = |body: &str| {
        let mut s = TcpStream::connect(admin).unwrap();
        write!(
            s,
            "PATCH /v1/groups/g HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    };
    const N: usize = 20;
    // the time of each client's last read
    let last: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; N]));
    for i in 0..N {
        let last = last.clone();
        let mut c = TcpStream::connect(("127.0.0.1", l)).unwrap();
        thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = c.read(&mut buf) {
                if n == 0 {
                    break;
                }
                last.lock().unwrap()[i] = Some(Instant::now());
            }
        });
    }
    thread::sleep(Duration::from_secs(1));
    let mut worst = Vec::new();
    let mut all = Vec::new();
    for _round in 0..5 {
        patch(r#"{"down": "pause"}"#);
        thread::sleep(Duration::from_millis(1500));
        let t0 = Instant::now();
        patch(r#"{"down": "off"}"#);
        let deadline = t0 + Duration::from_secs(5);
        let lat: Vec<f64> = loop {
            let v = last.lock().unwrap().clone();
            if v.iter().all(|t| t.is_some_and(|t| t > t0)) || Instant::now() > deadline {
                break v
                    .iter()
                    .map(|t| {
                        t.filter(|t| *t > t0)
                            .map_or(f64::INFINITY, |t| (t - t0).as_secs_f64() * 1e3)
                    })
                    .collect();
            }
            thread::sleep(Duration::from_micros(200));
        };
        worst.push(lat.iter().copied().fold(0.0, f64::max));
        all.extend(lat);
    }
    all.sort_by(f64::total_cmp);
    println!(
        "3. PATCH pause → resume, 20 live connections, 5 rounds: first byte at the clients after sending the resume: median {:.2} ms, worst per round {:?} ms (includes the HTTP request and the 200 µs polling of this bench)",
        all[all.len() / 2],
        worst.iter().map(|w| (w * 100.0).round() / 100.0).collect::<Vec<_>>()
    );
}
