//! `throttle proxy` as users run it: the real binary, real sockets on loopback, clients in
//! this process. Bounds are generous (a busy 2-core machine must not make them flake); the
//! precise figures come from `benches/proxy_bench.sh`.

extern crate alloc;

mod proxy_util;

use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::Instant;

use proxy_util::*;

#[test]
fn proxy_half_close_reply_after_client_fin_arrives_whole() {
    let up = reverser();
    let p = Proxy::start("halfclose", up, "");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut c = TcpStream::connect(p.listen).unwrap();
    c.write_all(&data).unwrap();
    c.shutdown(Shutdown::Write).unwrap(); // FIN: the upstream answers only after it
    let mut reply = Vec::new();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c.read_to_end(&mut reply).unwrap();
    let head = format!("{}\n", data.len());
    assert!(
        reply.starts_with(head.as_bytes()),
        "reply head {:?}",
        &reply[..reply.len().min(20)]
    );
    let mut rev = data.clone();
    rev.reverse();
    assert_eq!(
        &reply[head.len()..],
        &rev[..],
        "the reply after the half-close is complete"
    );
    // one line per connection with bytes and duration
    let t0 = Instant::now();
    while !p.log_text().contains("close conn=") && t0.elapsed() < Duration::from_secs(5) {
        thread::sleep(Duration::from_millis(20));
    }
    let log = p.log_text();
    assert!(log.contains("open conn=1"), "{log}");
    assert!(log.contains(&format!("up_bytes={}", data.len())), "{log}");
    assert!(
        log.contains(&format!("down_bytes={}", reply.len())),
        "{log}"
    );
    assert!(log.contains("secs="), "{log}");
}

#[test]
fn proxy_server_down_limit_paces_the_download() {
    let up = source(3 << 20);
    let p = Proxy::start("rate", up, "[server]\ndown = \"2M\"\n");
    let mut c = TcpStream::connect(p.listen).unwrap();
    let (n, t) = drain(&mut c);
    assert_eq!(n, 3 << 20);
    // ideal 1.5 s; the upper bound only catches "not throttled" vs "stuck"
    assert!(
        t >= Duration::from_millis(1200) && t <= Duration::from_secs(15),
        "{t:?}"
    );
    let g = p.group("default");
    assert_eq!(g["down"]["bytes"], 3 << 20);
}

#[test]
fn proxy_slow_reader_makes_the_sender_wait_not_the_proxy_buffer() {
    // The upstream writes as fast as it can; the client reads nothing. TCP must push back:
    // what the upstream manages to write is bounded by socket buffers plus the proxy's one
    // 32 KiB buffer, and stops growing.
    let written = Arc::new(AtomicU64::new(0));
    let w = written.clone();
    let up = serve(move |mut s| {
        let buf = vec![1u8; 64 * 1024];
        while s.write_all(&buf).is_ok() {
            w.fetch_add(buf.len() as u64, Ordering::Relaxed);
        }
    });
    let p = Proxy::start("slowreader", up, "");
    let c = TcpStream::connect(p.listen).unwrap();
    thread::sleep(Duration::from_millis(1500));
    let at_1500 = written.load(Ordering::Relaxed);
    thread::sleep(Duration::from_millis(1000));
    let at_2500 = written.load(Ordering::Relaxed);
    let rss_kib = std::fs::read_to_string(format!("/proc/{}/status", p.pid()))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")
                .map(|v| v.trim().trim_end_matches(" kB").parse::<u64>().unwrap())
        })
        .unwrap();
    println!("upstream wrote {at_1500} B by 1.5 s, {at_2500} B by 2.5 s; proxy RSS {rss_kib} KiB");
    assert!(
        at_2500 < 64 << 20,
        "{at_2500} B went somewhere: the proxy buffers"
    );
    assert!(
        at_2500 - at_1500 < 1 << 20,
        "still flowing into the proxy: {at_1500} → {at_2500}"
    );
    assert!(rss_kib < 64 * 1024, "proxy RSS {rss_kib} KiB");
    drop(c);
}

#[test]
fn proxy_idle_connection_closed_after_idle_timeout() {
    let up = echo();
    let p = Proxy::start("idle", up, "[server]\nidle_timeout_secs = 1\n");
    let mut c = TcpStream::connect(p.listen).unwrap();
    c.write_all(b"hello").unwrap();
    let mut b = [0u8; 5];
    c.read_exact(&mut b).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let t0 = Instant::now();
    let n = c.read(&mut b).unwrap_or(0);
    assert_eq!(n, 0, "closed by the proxy");
    assert!(
        t0.elapsed() >= Duration::from_millis(700),
        "{:?}",
        t0.elapsed()
    );
    let t0 = Instant::now();
    while !p.log_text().contains("idle timeout") && t0.elapsed() < Duration::from_secs(5) {
        thread::sleep(Duration::from_millis(20));
    }
    assert!(
        p.log_text().contains("end=\"idle timeout\""),
        "{}",
        p.log_text()
    );
}

#[test]
fn proxy_caps_refuse_connections_over_the_per_client_cap() {
    let up = echo();
    let p = Proxy::start("caps", up, "[server]\nmax_conns_per_client = 2\n");
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut c = TcpStream::connect(p.listen).unwrap();
        c.write_all(b"x").unwrap();
        let mut b = [0u8; 1];
        c.read_exact(&mut b).unwrap();
        open.push(c);
    }
    let mut third = TcpStream::connect(p.listen).unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = third.write_all(b"x");
    let mut b = [0u8; 1];
    assert_eq!(third.read(&mut b).unwrap_or(0), 0, "the third is closed");
    assert_eq!(p.stats()["rejected"], 1);
    drop(open);
    // slots come back
    let t0 = Instant::now();
    while p.stats()["connections"] != 0 && t0.elapsed() < Duration::from_secs(10) {
        thread::sleep(Duration::from_millis(20));
    }
    let mut c = TcpStream::connect(p.listen).unwrap();
    c.write_all(b"y").unwrap();
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"y");
}

/// Reads from `s` for `d`; returns the bytes read.
fn read_for(s: &mut TcpStream, d: Duration) -> usize {
    let t0 = Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0;
    while t0.elapsed() < d {
        s.set_read_timeout(Some((d - t0.elapsed()).max(Duration::from_millis(1))))
            .unwrap();
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => {}
        }
    }
    n
}

#[test]
fn admin_patch_reaches_live_connections_at_once() {
    let up = source(1 << 30);
    let p = Proxy::start(
        "patch",
        up,
        "[[group]]\nname = \"g\"\nper_conn = { down = \"64K\" }\n",
    );
    let mut conns: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(p.listen).unwrap())
        .collect();
    let slow: usize = conns
        .iter_mut()
        .map(|c| read_for(c, Duration::from_millis(300)))
        .sum();
    let before = p.group("g");
    assert_eq!(before["connections"], 3);
    let (status, body) = p.send("PATCH", "/v1/groups/g", r#"{"per_conn": {"down": "8M"}}"#);
    assert_eq!(status, 200, "{body}");
    let after: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(after["per_conn"]["down"], 8 << 20);
    // every live connection now reads far faster than 64 KiB/s
    for c in &mut conns {
        let n = read_for(c, Duration::from_millis(500));
        assert!(
            n > 512 << 10,
            "{n} B in 0.5 s after the change (before: {slow} B in 0.9 s for 3)"
        );
    }
    // and a pause reaches them too
    let (status, _) = p.send("PATCH", "/v1/groups/g", r#"{"down": "pause"}"#);
    assert_eq!(status, 200);
    for c in &mut conns {
        let _ = read_for(c, Duration::from_millis(300)); // what was in flight
    }
    let n: usize = conns
        .iter_mut()
        .map(|c| read_for(c, Duration::from_millis(500)))
        .sum();
    assert!(n < 1 << 20, "{n} B while paused");
}

/// The fields of a group that a request may change.
fn settings(g: &serde_json::Value) -> serde_json::Value {
    serde_json::json!([
        g["weight"],
        g["up"]["limit"],
        g["down"]["limit"],
        g["per_client"],
        g["per_conn"]
    ])
}

#[test]
fn admin_bad_requests_rejected_with_one_line_and_nothing_changed() {
    let up = echo();
    let p = Proxy::start(
        "badadmin",
        up,
        "[[group]]\nname = \"g\"\ndown = \"10M\"\nweight = 2\n",
    );
    let before = settings(&p.group("g"));
    let a = p.admin;
    let good = r#"{"down": "1M"}"#;
    let huge = format!(r#"{{"down": "1M", "x": "{}"}}"#, "a".repeat(100 * 1024));
    let patch = |headers: &str, body: &str| {
        http(
            a,
            &format!(
                "PATCH /v1/groups/g HTTP/1.1\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        )
    };
    let auth = format!("Host: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n");
    let json_auth = format!("{auth}Content-Type: application/json\r\n");
    let cases: Vec<(&str, (u16, String), u16)> = vec![
        ("no token", patch("Host: 127.0.0.1\r\nContent-Type: application/json\r\n", good), 401),
        (
            "wrong token",
            patch("Host: 127.0.0.1\r\nAuthorization: Bearer test-token-0123456789abcdeX\r\nContent-Type: application/json\r\n", good),
            401,
        ),
        ("form content type", patch(&format!("{auth}Content-Type: application/x-www-form-urlencoded\r\n"), good), 415),
        ("no content type", patch(&auth, good), 415),
        ("huge body", patch(&json_auth, &huge), 413),
        ("unknown field", patch(&json_auth, r#"{"down": "1M", "colour": "red"}"#), 400),
        ("bad rate", patch(&json_auth, r#"{"down": "10mbps"}"#), 400),
        ("zero weight", patch(&json_auth, r#"{"down": "1M", "weight": 0}"#), 400),
        ("tiny burst", patch(&json_auth, r#"{"down": "100M burst 1"}"#), 400),
        ("not json", patch(&json_auth, "down=1M"), 400),
        ("origin", patch(&format!("{json_auth}Origin: http://evil.example\r\n"), good), 403),
        (
            "rebinding host",
            patch(&format!("Host: evil.example:9901\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"), good),
            403,
        ),
        ("origin on GET", http(a, "GET /v1/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://evil.example\r\nConnection: close\r\n\r\n"), 403),
        ("unknown group", p.send("PATCH", "/v1/groups/nope", good), 404),
        ("wrong method", p.send("DELETE", "/v1/groups/g", ""), 405),
        ("unknown path", p.send("POST", "/v1/nothing", "{}"), 404),
    ];
    for (what, (status, body), want) in cases {
        assert_eq!(status, want, "{what}: {body}");
        assert!(
            body.trim().lines().count() == 1 && !body.trim().is_empty(),
            "{what}: one line, got {body:?}"
        );
    }
    assert_eq!(settings(&p.group("g")), before, "nothing changed");
    // and the good request does change it
    let (status, body) = p.send("PATCH", "/v1/groups/g", good);
    assert_eq!(status, 200, "{body}");
    assert_eq!(p.group("g")["down"]["limit"], 1 << 20);
}

#[test]
fn admin_metrics_have_group_and_direction_labels_only() {
    let up = source(100_000);
    let p = Proxy::start("metrics", up, "[[group]]\nname = \"g\"\ndown = \"10M\"\n");
    let mut c = TcpStream::connect(p.listen).unwrap();
    assert_eq!(drain(&mut c).0, 100_000);
    thread::sleep(Duration::from_millis(200));
    let (status, text) = p.get("/metrics");
    assert_eq!(status, 200);
    assert!(
        text.contains(r#"throttle_bytes_total{group="g",direction="down"} 100000"#),
        "{text}"
    );
    assert!(
        text.contains(r#"throttle_limit_bytes_per_second{group="g",direction="down"} 10485760"#),
        "{text}"
    );
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            !line.contains("127.0.0.1") && !line.contains("conn="),
            "{line}"
        );
    }
    let (status, html) = p.get("/");
    assert_eq!(status, 200);
    assert!(html.contains("<canvas") && !html.contains("http://") && !html.contains("https://"));
}

#[test]
fn reload_bad_config_keeps_old_good_config_applies_while_100_connections_stream() {
    let up = source(1 << 30);
    let p = Proxy::start("reload", up, "[[group]]\nname = \"g\"\ndown = \"20M\"\n");
    let mut conns: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(p.listen).unwrap())
        .collect();
    for c in &mut conns {
        assert!(
            read_for(c, Duration::from_millis(5)) > 0
                || read_for(c, Duration::from_millis(500)) > 0
        );
    }
    let text = std::fs::read_to_string(&p.config).unwrap();
    // a bad file: SIGHUP and POST /v1/reload both keep the old config and say why
    std::fs::write(
        &p.config,
        text.replace("down = \"20M\"", "down = \"20 furlongs\""),
    )
    .unwrap();
    p.signal("HUP");
    let (status, body) = p.send("POST", "/v1/reload", "{}");
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("old config stays") && body.contains("unknown unit"),
        "{body}"
    );
    let t0 = Instant::now();
    while !p.log_text().contains("reload failed") && t0.elapsed() < Duration::from_secs(10) {
        thread::sleep(Duration::from_millis(20));
    }
    assert!(
        p.log_text().contains("reload failed, the old config stays"),
        "{}",
        p.log_text()
    );
    assert_eq!(p.group("g")["down"]["limit"], 20 << 20);
    // a good file with a new limit and a new group
    let good = text.replace("down = \"20M\"", "down = \"5M\"")
        + "\n[[group]]\nname = \"h\"\nweight = 2\nmatch = { client = [\"10.0.0.0/8\"] }\n";
    std::fs::write(&p.config, good).unwrap();
    let (status, body) = p.send("POST", "/v1/reload", "{}");
    assert_eq!(status, 200, "{body}");
    assert_eq!(p.group("g")["down"]["limit"], 5 << 20);
    assert_eq!(p.group("h")["weight"], 2);
    assert_eq!(
        p.group("g")["connections"],
        100,
        "every connection survived"
    );
    // and they still flow
    let n: usize = conns
        .iter_mut()
        .take(10)
        .map(|c| read_for(c, Duration::from_millis(200)))
        .sum();
    assert!(n > 0);
}

#[test]
fn thousand_concurrent_connections_all_served() {
    let up = echo();
    let p = Proxy::start("thousand", up, "[server]\ndown = \"50M\"\n");
    let mut conns = Vec::with_capacity(1000);
    for i in 0..1000u32 {
        let mut c = TcpStream::connect(p.listen).unwrap();
        c.write_all(&i.to_be_bytes()).unwrap();
        conns.push(c);
    }
    let t0 = Instant::now();
    while p.stats()["connections"] != 1000 && t0.elapsed() < Duration::from_secs(30) {
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(p.stats()["connections"], 1000);
    for (i, c) in conns.iter_mut().enumerate() {
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut b = [0u8; 4];
        c.read_exact(&mut b).unwrap();
        assert_eq!(u32::from_be_bytes(b), i as u32);
    }
    drop(conns);
    let t0 = Instant::now();
    while p.stats()["connections"] != 0 && t0.elapsed() < Duration::from_secs(30) {
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(p.stats()["connections"], 0);
}

#[test]
fn sigterm_drains_then_exits_within_drain_timeout() {
    let up = echo();
    let mut p = Proxy::start_with("drain", up, "", &["--drain-timeout", "2"]);
    let mut c = TcpStream::connect(p.listen).unwrap();
    c.write_all(b"a").unwrap();
    let mut b = [0u8; 1];
    c.read_exact(&mut b).unwrap();
    p.signal("TERM");
    thread::sleep(Duration::from_millis(300));
    // no new connections; the open one still works
    assert!(
        TcpStream::connect(p.listen).is_err(),
        "still accepting while draining"
    );
    c.write_all(b"b").unwrap();
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"b");
    // it never closes: the proxy exits at the drain timeout
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = p.child.try_wait().unwrap() {
            break s;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "did not exit");
        thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    assert!(p.log_text().contains("drain timeout"), "{}", p.log_text());
}

#[test]
fn check_command_validates_whole_file() {
    let dir = scratch("check");
    let good = dir.join("good.toml");
    std::fs::write(
        &good,
        "[[listener]]\nname='a'\nlisten='127.0.0.1:1'\nupstream='127.0.0.1:2'\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_throttle"))
        .args(["check", "-c"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (1 listeners, 1 groups)"));
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[[listener]]\nname='a'\nlisten='127.0.0.1:1'\nupstream='127.0.0.1:2'\n[[group]]\nname='g'\nmatch={listener=['nope']}\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_throttle"))
        .args(["check", "-c"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("match.listener \"nope\" is not a listener"),
        "{err}"
    );
}

#[test]
fn ctl_stats_set_and_reload_through_the_admin_api() {
    let up = echo();
    let p = Proxy::start("ctl", up, "[[group]]\nname = \"g\"\n");
    let ctl = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_throttle"))
            .arg("ctl")
            .arg("--admin")
            .arg(format!("http://{}", p.admin))
            .arg("--token-file")
            .arg(p.dir.join("token"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = ctl(&["set", "g", "--down", "3M", "--weight", "4"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let g = p.group("g");
    assert_eq!(
        (g["down"]["limit"].clone(), g["weight"].clone()),
        (serde_json::json!(3 << 20), serde_json::json!(4))
    );
    let out = ctl(&["stats"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("  g ") && text.contains("3.00 MiB/s"),
        "{text}"
    );
    let out = ctl(&["pause", "g"]);
    assert!(out.status.success());
    assert_eq!(p.group("g")["down"]["limit"], 0);
    let out = ctl(&["reload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        p.group("g")["down"]["limit"],
        serde_json::Value::Null,
        "the file's limits back"
    );
    // a bad token: a clear error, exit 1
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_throttle"))
        .args([
            "ctl",
            "--admin",
            &format!("http://{}", p.admin),
            "pause",
            "g",
        ])
        .env("THROTTLE_ADMIN_TOKEN", "wrong-token-wrong-token")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
}

#[test]
fn schedule_sets_the_group_limit_and_a_patch_overrides_it() {
    let up = echo();
    let p = Proxy::start(
        "schedule",
        up,
        "[[group]]\nname = \"g\"\ndown = \"50M\"\nschedule = { down = \"1M daily\", zone = \"UTC\" }\n",
    );
    let g = p.group("g");
    assert_eq!(
        g["down"]["limit"],
        1 << 20,
        "the schedule's rate, not the static 50M"
    );
    assert_eq!(g["scheduled"]["down"], true);
    let (status, body) = p.send("PATCH", "/v1/groups/g", r#"{"down": "7M"}"#);
    assert_eq!(status, 200, "{body}");
    // the manual change holds (until the schedule's next boundary: never, for "daily")
    thread::sleep(Duration::from_millis(1500));
    assert_eq!(p.group("g")["down"]["limit"], 7 << 20);
}

#[test]
fn out_of_descriptors_accept_backs_off_and_recovers() {
    // The proxy under a 48-descriptor limit: past it, the accept loop cannot reserve the
    // descriptors a connection needs (its client's and its upstream's socket), so it must not
    // accept (the clients wait in the backlog), back off (not spin at 100 % CPU), and serve
    // again once connections close.
    let up = echo();
    let dir = scratch("emfile");
    std::fs::write(dir.join("token"), TOKEN).unwrap();
    let any: core::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    let cfg = dir.join("t.toml");
    std::fs::write(&cfg, config_text(any, any, up, "")).unwrap();
    let log = dir.join("log");
    /// Kills the proxy however the test ends (a failed assertion must not leak it).
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let child = Kill(
        std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "ulimit -n 48 && exec {} proxy -c {}",
                env!("CARGO_BIN_EXE_throttle"),
                cfg.display()
            ))
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let t0 = Instant::now();
    let listen = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(a) = text.lines().find_map(|l| {
            l.split_once("proxy listening on ")
                .map(|(_, a)| a.trim().to_string())
        }) {
            break a;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "{text}");
        thread::sleep(Duration::from_millis(20));
    };
    let mut conns: Vec<TcpStream> = (0..60)
        .filter_map(|_| TcpStream::connect(&listen).ok())
        .collect();
    thread::sleep(Duration::from_millis(500));
    let cpu = |pid: u32| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let f: Vec<u64> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .skip(11)
            .take(2)
            .map(|x| x.parse().unwrap())
            .collect();
        f[0] + f[1]
    };
    let c0 = cpu(child.0.id());
    thread::sleep(Duration::from_secs(1));
    let ticks = cpu(child.0.id()) - c0;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("out of resources, backing off"), "{text}");
    assert!(
        ticks < 50,
        "{ticks} ticks of CPU in 1 s while out of descriptors: spinning"
    );
    // the proxy accepts a client only with a descriptor reserved for its upstream: no client
    // is accepted and then closed for want of one (the others wait in the listen backlog)
    assert!(
        !text.contains("upstream connect failed"),
        "a client was accepted without a descriptor for its upstream:\n{text}"
    );
    let opened = text.lines().filter(|l| l.contains(" open ")).count();
    let mut b = [0u8; 2];
    // the first clients were accepted and are served (the backlog's wait for a close)
    for (i, c) in conns.iter_mut().take(5).enumerate() {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(b"hi").unwrap();
        c.read_exact(&mut b)
            .unwrap_or_else(|e| panic!("client {i} not served ({opened} opened): {e}\n{text}"));
        assert_eq!(&b, b"hi");
    }
    conns.clear();
    thread::sleep(Duration::from_millis(1500));
    let mut c = TcpStream::connect(&listen).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"ok").unwrap();
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"ok", "serving again");
    drop(child);
}

/// A connection to `to` from the local address `from` (127.0.0.0/8 is all loopback).
fn connect_from(from: &str, to: core::net::SocketAddr) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        s.bind(format!("{from}:0").parse().unwrap()).unwrap();
        let s = s.connect(to).await.unwrap().into_std().unwrap();
        s.set_nonblocking(false).unwrap();
        s
    })
}

#[test]
fn per_client_nodes_past_max_clients_share_the_overflow_node() {
    let up = echo();
    let p = Proxy::start(
        "overflow",
        up,
        "[server]\nmax_clients = 2\n\n[[group]]\nname = \"g\"\nper_client = { down = \"10M\" }\n",
    );
    let mut conns = Vec::new();
    for from in ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        let mut c = connect_from(from, p.listen);
        c.write_all(b"x").unwrap();
        let mut b = [0u8; 1];
        c.read_exact(&mut b).unwrap();
        conns.push(c);
    }
    let g = p.group("g");
    assert_eq!(g["clients"], 2, "{g}");
    assert_eq!(g["client_overflow"], true);
    assert_eq!(g["connections"], 4, "all served");
    assert!(p.log_text().contains("max_clients reached"));
    // a reload with a bigger cap applies to the live group
    let text = std::fs::read_to_string(&p.config).unwrap();
    std::fs::write(
        &p.config,
        text.replace("max_clients = 2", "max_clients = 10"),
    )
    .unwrap();
    assert_eq!(p.send("POST", "/v1/reload", "{}").0, 200);
    let mut c = connect_from("127.0.0.5", p.listen);
    c.write_all(b"y").unwrap();
    let mut b = [0u8; 1];
    c.read_exact(&mut b).unwrap();
    assert_eq!(p.group("g")["clients"], 3);
}
