//! `throttle proxy` with the real clients users have: iperf3 (`-P 8 -J`), curl, socat,
//! `nc -N`, and the status page in headless chromium. Each test prints SKIPPED and passes
//! when its tool is missing (`.ci/deps/proxy.sh` installs them). Bounds are generous; the
//! precise figures come from `benches/proxy_bench.sh`.

mod proxy_util;

use core::time::Duration;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Instant;

use proxy_util::*;

/// Jain's fairness index of `xs`.
fn jain(xs: &[f64]) -> f64 {
    let s: f64 = xs.iter().sum();
    let q: f64 = xs.iter().map(|x| x * x).sum();
    s * s / (xs.len() as f64 * q)
}

#[test]
fn iperf3_eight_streams_share_the_limit_fairly() {
    if !have("iperf3", "iperf3_eight_streams_share_the_limit_fairly") {
        return;
    }
    let port = free_port();
    let mut server = Command::new("iperf3")
        .args(["-s", "-1", "-B", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let upstream = format!("127.0.0.1:{port}").parse().unwrap();
    thread::sleep(Duration::from_millis(300));
    // 100 Mbit/s client → upstream (iperf3 sends from the client by default)
    let p = Proxy::start("iperf3", upstream, "[server]\nup = \"100Mbit/s\"\n");
    let out = Command::new("iperf3")
        .args([
            "-c",
            "127.0.0.1",
            "-p",
            &p.listen.port().to_string(),
            "-P",
            "8",
            "-t",
            "3",
            "-O",
            "1",
            "-J",
        ])
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("iperf3 -J: {e}: {}", String::from_utf8_lossy(&out.stdout)));
    let rates: Vec<f64> = v["end"]["streams"]
        .as_array()
        .unwrap_or_else(|| panic!("no streams: {v}"))
        .iter()
        .map(|s| s["receiver"]["bits_per_second"].as_f64().unwrap())
        .collect();
    assert_eq!(rates.len(), 8);
    let total: f64 = rates.iter().sum();
    let j = jain(&rates);
    println!(
        "iperf3 -P 8 through 100 Mbit/s: {:.2} Mbit/s, Jain {j:.4}",
        total / 1e6
    );
    assert!((total / 100e6 - 1.0).abs() < 0.15, "{total} bit/s");
    assert!(j > 0.95, "Jain {j}: {rates:?}");
}

/// One-shot iperf3 server on a port of its own.
fn iperf_server() -> (std::process::Child, u16) {
    let port = free_port();
    let child = Command::new("iperf3")
        .args(["-s", "-1", "-B", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    thread::sleep(Duration::from_millis(300));
    (child, port)
}

#[test]
fn iperf3_groups_weighted_3_to_1_by_client_network() {
    if !have("iperf3", "iperf3_groups_weighted_3_to_1_by_client_network") {
        return;
    }
    // two listeners (iperf3 serves one test at a time), groups by client address
    let (mut s1, p1) = iperf_server();
    let (mut s2, p2) = iperf_server();
    let any = "127.0.0.1:0";
    let rest = format!(
        "[server]\nup = \"100Mbit/s\"\n\n[[listener]]\nname = \"second\"\nlisten = \"{any}\"\nupstream = \"127.0.0.1:{p2}\"\n\n\
         [[group]]\nname = \"gold\"\nweight = 3\nmatch = {{ client = [\"127.0.0.2/32\"] }}\n\n\
         [[group]]\nname = \"bronze\"\nmatch = {{ client = [\"127.0.0.3/32\"] }}\n"
    );
    let p = Proxy::start(
        "iperf3-weights",
        format!("127.0.0.1:{p1}").parse().unwrap(),
        &rest,
    );
    // the second listener's address, from the stats
    let second = p.stats()["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "second")
        .map(|l| l["listen"].as_str().unwrap().to_string())
        .unwrap();
    let second_port = second.rsplit_once(':').unwrap().1.to_string();
    let run = |port: String, bind: &'static str, streams: &'static str| {
        thread::spawn(move || {
            let out = Command::new("iperf3")
                .args([
                    "-c",
                    "127.0.0.1",
                    "-p",
                    &port,
                    "-B",
                    bind,
                    "-P",
                    streams,
                    "-t",
                    "4",
                    "-O",
                    "1",
                    "-J",
                ])
                .output()
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            v["end"]["sum_received"]["bits_per_second"]
                .as_f64()
                .unwrap_or(0.0)
        })
    };
    let gold = run(p.listen.port().to_string(), "127.0.0.2", "4");
    let bronze = run(second_port, "127.0.0.3", "1");
    let (g, b) = (gold.join().unwrap(), bronze.join().unwrap());
    for s in [&mut s1, &mut s2] {
        let _ = s.kill();
        let _ = s.wait();
    }
    let share = g / (g + b);
    println!(
        "weights 3:1, 4 streams vs 1: gold {:.2} %, total {:.2} Mbit/s",
        share * 100.0,
        (g + b) / 1e6
    );
    assert!((share - 0.75).abs() < 0.06, "gold's share {share}");
    assert!(((g + b) / 100e6 - 1.0).abs() < 0.15, "total {}", g + b);
}

#[test]
fn curl_downloads_from_an_http_server_behind_the_proxy() {
    if !have(
        "curl",
        "curl_downloads_from_an_http_server_behind_the_proxy",
    ) {
        return;
    }
    const SIZE: usize = 3 << 20;
    let up = serve(|s| {
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        while r.read_line(&mut line).is_ok_and(|n| n > 2) {
            line.clear();
        }
        let mut s = s;
        let body: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Length: {SIZE}\r\nConnection: close\r\n\r\n"
        );
        let _ = s.write_all(&body);
    });
    let p = Proxy::start("curl", up, "[server]\ndown = \"2M\"\n");
    let file = p.dir.join("download");
    let t0 = Instant::now();
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "60", "-o"])
        .arg(&file)
        .arg(format!("http://{}/big", p.listen))
        .output()
        .unwrap();
    let t = t0.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = std::fs::read(&file).unwrap();
    assert_eq!(got.len(), SIZE);
    assert!(got.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
    println!("curl: 3 MiB through 2 MiB/s in {t:?} (ideal 1.5 s)");
    assert!(
        t >= Duration::from_millis(1200) && t < Duration::from_secs(30),
        "{t:?}"
    );
}

fn half_close_with(tool: &str, args: &[String]) {
    let up = reverser();
    let p = Proxy::start(&format!("halfclose-{tool}"), up, "");
    let data: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let args: Vec<String> = args
        .iter()
        .map(|a| a.replace("PORT", &p.listen.port().to_string()))
        .collect();
    let mut child = Command::new(tool)
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let d = data.clone();
    let feeder = thread::spawn(move || {
        stdin.write_all(&d).unwrap();
        // stdin closes here: the tool sends FIN, keeps reading the reply
    });
    let mut reply = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut reply)
        .unwrap();
    feeder.join().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{tool}: {status}");
    let head = format!("{}\n", data.len());
    assert!(
        reply.starts_with(head.as_bytes()),
        "{tool}: {:?}",
        String::from_utf8_lossy(&reply[..reply.len().min(40)])
    );
    let mut rev = data;
    rev.reverse();
    assert_eq!(
        &reply[head.len()..],
        &rev[..],
        "{tool}: the whole reply after the half-close"
    );
}

#[test]
fn socat_half_close_gets_the_whole_reply() {
    if have("socat", "socat_half_close_gets_the_whole_reply") {
        half_close_with(
            "socat",
            &[
                "-t".into(),
                "30".into(),
                "-".into(),
                "TCP:127.0.0.1:PORT".into(),
            ],
        );
    }
}

#[test]
fn nc_half_close_gets_the_whole_reply() {
    if have("nc", "nc_half_close_gets_the_whole_reply") {
        half_close_with("nc", &["-N".into(), "127.0.0.1".into(), "PORT".into()]);
    }
}

#[test]
fn status_page_renders_groups_in_headless_chromium() {
    if !have(
        "chromium",
        "status_page_renders_groups_in_headless_chromium",
    ) || !have("socat", "status_page_renders_groups_in_headless_chromium")
    {
        return;
    }
    let up = source(1 << 30);
    let p = Proxy::start(
        "chromium",
        up,
        "[server]\ndown = \"40M\"\n\n[[group]]\nname = \"gold\"\nweight = 3\nmatch = { client = [\"127.0.0.2/32\"] }\ndown = \"32M\"\nper_client = { down = \"100M\" }\n\n[[group]]\nname = \"bronze\"\nmatch = { client = [\"127.0.0.3/32\"] }\n",
    );
    // readers from two client addresses, so that both groups carry traffic
    let mut readers = Vec::new();
    for bind in ["127.0.0.2", "127.0.0.2", "127.0.0.3"] {
        readers.push(
            Command::new("socat")
                .args(["-u", &format!("TCP:{},bind={bind}", p.listen), "/dev/null"])
                .spawn()
                .unwrap(),
        );
    }
    // the rates are 1 s averages since each node's start: let them settle for the picture
    thread::sleep(Duration::from_millis(4000));
    let url = format!("http://{}/", p.admin);
    let profile = p.dir.join("chromium-profile");
    let chromium = |extra: &[&str]| {
        Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(["--virtual-time-budget=6000", "--window-size=1180,760"])
            .args(extra)
            .arg(&url)
            .output()
            .unwrap()
    };
    let dom = chromium(&["--dump-dom"]);
    let html = String::from_utf8_lossy(&dom.stdout);
    let shot = p.dir.join("proxy-status.png");
    let out = chromium(&[&format!("--screenshot={}", shot.display())]);
    for mut r in readers {
        let _ = r.kill();
        let _ = r.wait();
    }
    // the page's script ran: rows for every group, filled from /v1/stats
    assert!(
        html.contains(r#"data-loaded="yes""#),
        "the script did not render: {html}"
    );
    for g in ["gold", "bronze", "default"] {
        assert!(
            html.contains(&format!(r#"data-group="{g}""#)),
            "no row for {g}: {html}"
        );
    }
    assert!(html.contains("MiB/s"), "rates shown: {html}");
    let png = std::fs::read(&shot).unwrap_or_else(|e| {
        panic!(
            "no screenshot ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "{} B",
        png.len()
    );
    if std::env::var_os("THROTTLE_SAVE_SCREENSHOT").is_some() {
        let docs =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/proxy-status.png");
        std::fs::write(&docs, &png).unwrap();
        println!("saved {}", docs.display());
    }
}
