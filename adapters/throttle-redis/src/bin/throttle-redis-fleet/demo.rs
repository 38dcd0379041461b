//! `demo`: start a private `redis-server`, run worker processes (this binary's `worker`
//! command) against it, print per-second rates while Redis is killed, restarted and the
//! limit changed. Also the harness `bench` uses: [`Fleet`] and its helpers.

use core::time::Duration;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use throttle_redis::local_server::LocalRedis;
use throttle_redis::{LeaseConfig, LimitName, SharedLimit};

use crate::worker::unix_us;
use crate::Args;

pub(crate) const MIB: f64 = 1048576.0;

/// One 100 ms progress line of a worker.
#[derive(Clone, Debug)]
pub(crate) struct Bin {
    pub(crate) ms: u64,
    pub(crate) granted: u64,
    pub(crate) share: i64,
    pub(crate) state: String,
    pub(crate) calls: u64,
    pub(crate) worst_us: u64,
}

/// K worker processes and what they printed so far.
pub(crate) struct Fleet {
    children: Vec<Child>,
    rx: mpsc::Receiver<(usize, String)>,
    pub(crate) bins: Vec<Vec<Bin>>,
    lines: Vec<Vec<String>>,
}

pub(crate) fn now_ms() -> u64 {
    unix_us() / 1000
}

pub(crate) fn sleep_until_ms(t: u64) {
    let n = now_ms();
    if t > n {
        std::thread::sleep(Duration::from_millis(t - n));
    }
}

impl Fleet {
    /// Starts one process per entry: `throttle-redis-fleet <args…>`.
    pub(crate) fn start(procs: &[Vec<String>]) -> Result<Fleet, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let (tx, rx) = mpsc::channel();
        let mut children = Vec::new();
        for (i, args) in procs.iter().enumerate() {
            let mut child = Command::new(&exe)
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .map_err(|e| e.to_string())?;
            let out = child.stdout.take().ok_or("no stdout")?;
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if tx.send((i, line)).is_err() {
                        return;
                    }
                }
            });
            children.push(child);
        }
        Ok(Fleet {
            bins: vec![Vec::new(); procs.len()],
            lines: vec![Vec::new(); procs.len()],
            children,
            rx,
        })
    }

    pub(crate) fn pump(&mut self) {
        while let Ok((i, line)) = self.rx.try_recv() {
            let f: Vec<&str> = line.split(' ').collect();
            if f.len() == 10 && f[0] == "bin" {
                let n = |s: &str| s.parse::<u64>().unwrap_or(0);
                self.bins[i].push(Bin {
                    ms: n(f[1]),
                    granted: n(f[2]),
                    share: f[3].parse().unwrap_or(-1),
                    state: f[4].to_owned(),
                    calls: n(f[5]),
                    worst_us: n(f[9]),
                });
            } else {
                self.lines[i].push(line);
            }
        }
    }

    pub(crate) fn at(&self, w: usize, ms: u64) -> Option<&Bin> {
        self.bins[w].iter().rev().find(|b| b.ms <= ms)
    }

    /// Tokens worker `w` spent in `(from, to]`, ms: from the last samples at or before
    /// each end, scaled from the real interval between them to `to − from` (a worker that
    /// missed the CPU samples late; counting its late sample as on time would move tokens
    /// from one window to the next).
    pub(crate) fn spent(&self, w: usize, from: u64, to: u64) -> u64 {
        match (self.at(w, from), self.at(w, to)) {
            (Some(a), Some(b)) if b.ms > a.ms => {
                let tokens = b.granted.saturating_sub(a.granted) as f64;
                (tokens * (to - from) as f64 / (b.ms - a.ms) as f64) as u64
            }
            (None, Some(b)) => b.granted, // started inside the window
            _ => 0,
        }
    }

    pub(crate) fn total(&self, from: u64, to: u64) -> u64 {
        (0..self.bins.len()).map(|w| self.spent(w, from, to)).sum()
    }

    pub(crate) fn wait(mut self) -> Vec<Vec<String>> {
        for c in &mut self.children {
            let _ = c.wait();
        }
        std::thread::sleep(Duration::from_millis(100));
        self.pump();
        core::mem::take(&mut self.lines)
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub(crate) fn worker_args(
    url: &str,
    name: &str,
    rate: u64,
    secs: u64,
    extra: &[&str],
) -> Vec<String> {
    let mut v: Vec<String> = ["worker", "--url", url, "--name", name]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    v.extend([
        "--rate".into(),
        rate.to_string(),
        "--secs".into(),
        secs.to_string(),
    ]);
    v.extend(extra.iter().map(|s| (*s).to_owned()));
    v
}

fn set_rate(url: &str, name: &str, rate: u64) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let name = LimitName::new(name).map_err(|e| e.to_string())?;
    let cfg = LeaseConfig::new(rate).map_err(|e| e.to_string())?;
    rt.block_on(SharedLimit::new(client, name, cfg).set_rate(rate))
        .map_err(|e| e.to_string())
}

pub(crate) fn start_redis() -> Result<LocalRedis, String> {
    if !LocalRedis::available() {
        return Err("redis-server not found (apt-get install redis-server)".into());
    }
    LocalRedis::start().map_err(|e| e.to_string())
}

pub(crate) fn demo(args: &Args) -> Result<(), String> {
    let k = args.num("k", 3)?.max(1);
    let mut rate = args.num("rate", 40 << 20)?;
    let secs = args.num("secs", 30)?;
    let policy = args.str("policy", "last");
    let weights: Vec<String> = args
        .str("weights", "")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let kill_at = args.num("kill-at", 10)?;
    let restart_at = args.num("restart-at", 13)?;
    let change_at = args.num("change-at", 20)?;
    let new_rate = args.num("new-rate", rate / 2)?;
    let mut redis = start_redis()?;
    let url = redis.url();
    println!(
        "redis-server on port {}; {k} workers share {:.1} MiB/s (policy {policy}); \
         kill at {kill_at}s, restart at {restart_at}s, limit → {:.1} MiB/s at {change_at}s",
        redis.port(),
        rate as f64 / MIB,
        new_rate as f64 / MIB
    );
    let procs: Vec<Vec<String>> = (0..k as usize)
        .map(|i| {
            let w = weights.get(i).map_or("1", String::as_str);
            worker_args(
                &url,
                "demo",
                rate,
                secs + 1,
                &["--weight", w, "--policy", &policy],
            )
        })
        .collect();
    let t0 = (now_ms() / 1000 + 1) * 1000;
    let mut fleet = Fleet::start(&procs)?;
    let mut sum = 0.0;
    let mut n = 0u32;
    for s in 1..=secs {
        sleep_until_ms(t0 + s * 1000 + 150);
        fleet.pump();
        let (from, to) = (t0 + (s - 1) * 1000, t0 + s * 1000);
        let mut line = format!("t={s:>3}s");
        for w in 0..k as usize {
            let st = fleet.at(w, to).map_or("-", |b| b.state.as_str());
            let st = &st[..st.len().min(9)];
            let share = fleet.at(w, to).map_or(-1, |b| b.share);
            let share = if share < 0 {
                "unbounded".to_owned()
            } else {
                format!("{:.2}", share as f64 / MIB)
            };
            line += &format!(
                "  w{w} {:>6.2} (share {share}) {st:<9}",
                fleet.spent(w, from, to) as f64 / MIB
            );
        }
        let total = fleet.total(from, to) as f64;
        line += &format!(
            "  total {:>6.2} MiB/s ({:+.1} % of {:.1})",
            total / MIB,
            (total / rate as f64 - 1.0) * 100.0,
            rate as f64 / MIB
        );
        println!("{line}");
        if s > 2 && s < kill_at {
            sum += total;
            n += 1;
        }
        if s == kill_at {
            redis.kill();
            println!("-- redis-server SIGKILLed");
        }
        if s == restart_at {
            redis.restart().map_err(|e| e.to_string())?;
            println!("-- redis-server restarted, empty");
        }
        if s == change_at {
            set_rate(&url, "demo", new_rate)?;
            rate = new_rate;
            println!("-- limit set to {:.1} MiB/s", rate as f64 / MIB);
        }
    }
    let calls = redis.script_calls();
    let _ = fleet.wait();
    if n > 0 {
        println!(
            "steady total (s 3..{kill_at}): {:.2} MiB/s; script calls since the restart: {calls}",
            sum / f64::from(n) / MIB
        );
    }
    Ok(())
}
