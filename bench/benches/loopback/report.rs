//! Runs each measurement for every peer and keeps the results twice: as plain-text tables (one
//! per measurement, peers side by side) and as one JSON document.

use core::fmt;
use std::io;

use throttle_bench::json::Json;
use throttle_bench::table::Table;
use throttle_bench::{KIB, MIB};

use crate::peers::Peer;
use crate::scenarios;

pub(crate) struct Report {
    sections: Vec<(String, Table, Vec<String>)>,
    json: Vec<(String, Json)>,
    load_before: String,
    load_after: String,
    mode: &'static str,
    peers: Vec<Peer>,
}

fn pct(x: f64) -> String {
    if x.is_nan() {
        "-".into()
    } else if x.abs() < 0.005 {
        "0.00 %".into()
    } else {
        format!("{x:+.2} %")
    }
}

fn na() -> String {
    "n/a".into()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn header(first: &str) -> Vec<&str> {
    let mut h = vec![first];
    h.extend(Peer::COMPARED.iter().map(|p| p.name()));
    h
}

fn median(xs: &[f64]) -> f64 {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| !x.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

impl Report {
    pub(crate) fn new(mode: &'static str, peers: Vec<Peer>) -> Self {
        Report {
            peers,
            sections: Vec::new(),
            json: Vec::new(),
            load_before: loadavg(),
            load_after: String::new(),
            mode,
        }
    }

    pub(crate) fn finish(&mut self) {
        self.load_after = loadavg();
    }

    pub(crate) fn has_peer(&self, peer: Peer) -> bool {
        self.peers.contains(&peer)
    }

    pub(crate) fn progress(what: &str) {
        eprintln!("  running: {what}");
    }

    pub(crate) async fn accuracy(&mut self, secs: u32) -> io::Result<()> {
        let mut t = Table::new(&header(&format!("accuracy, one stream, {secs} s")));
        let mut js = Vec::new();
        for rate in [MIB, 10 * MIB, 100 * MIB] {
            let mut mean = vec![format!("{} MiB/s: mean rate error", rate / MIB)];
            let mut worst = vec![format!("{} MiB/s: worst 1-s window", rate / MIB)];
            let mut gap = vec![format!("{} MiB/s: longest pause between reads", rate / MIB)];
            for peer in Peer::COMPARED {
                if !self.peers.contains(&peer) {
                    mean.push("skipped".into());
                    worst.push("skipped".into());
                    gap.push("skipped".into());
                    continue;
                }
                Self::progress(&format!("accuracy {} MiB/s {}", rate / MIB, peer.name()));
                let r = scenarios::accuracy(peer, rate, secs).await?;
                mean.push(r.as_ref().map_or_else(na, |r| pct(r.error_pct)));
                worst.push(r.as_ref().map_or_else(na, |r| pct(r.worst_window_pct)));
                gap.push(
                    r.as_ref()
                        .map_or_else(na, |r| format!("{:.1} ms", r.longest_gap_ms)),
                );
                js.push(
                    Json::obj()
                        .with("peer", peer.key())
                        .with("limit_bytes_per_sec", rate)
                        .with("secs", u64::from(secs))
                        .with("error_pct", r.map(|r| r.error_pct))
                        .with("worst_window_pct", r.map(|r| r.worst_window_pct))
                        .with("longest_gap_ms", r.map(|r| r.longest_gap_ms))
                        .with("longest_gap_at_s", r.map(|r| r.longest_gap_at_s)),
                );
            }
            t.row(mean);
            t.row(worst);
            t.row(gap);
        }
        self.add(
            "accuracy",
            t,
            vec![
                "target: within ±1 % over the run (DESIGN: ±0.5 % over 30 s; ±2 % per 1-s window)"
                    .into(),
            ],
            Json::Arr(js),
        );
        Ok(())
    }

    pub(crate) async fn fairness(&mut self, secs: u32) -> io::Result<()> {
        let shared = 50 * MIB;
        let mut t = Table::new(&header(&format!("fairness, sharing 50 MiB/s, {secs} s")));
        let mut js = Vec::new();
        for n in [10usize, 100] {
            let mut jr = vec![format!("{n} streams: Jain's index")];
            let mut ar = vec![format!("{n} streams: aggregate error")];
            let mut wr = vec![format!("{n} streams: worst stream vs share")];
            let mut lr = vec![format!("{n} streams: worst stream, after the 1st s")];
            for peer in Peer::COMPARED {
                if !self.peers.contains(&peer) {
                    for r in [&mut jr, &mut ar, &mut wr, &mut lr] {
                        r.push("skipped".into());
                    }
                    continue;
                }
                Self::progress(&format!("fairness {n} streams {}", peer.name()));
                let r = scenarios::sharing(peer, shared, None, n, secs).await?;
                jr.push(r.as_ref().map_or_else(na, |r| format!("{:.4}", r.jain)));
                ar.push(r.as_ref().map_or_else(na, |r| pct(r.aggregate_error_pct)));
                wr.push(r.as_ref().map_or_else(na, |r| pct(r.worst_stream_pct)));
                lr.push(
                    r.as_ref()
                        .map_or_else(na, |r| pct(r.worst_stream_after_first_pct)),
                );
                js.push(
                    Json::obj()
                        .with("peer", peer.key())
                        .with("streams", n)
                        .with("shared_bytes_per_sec", shared)
                        .with(
                            "worst_stream_after_first_pct",
                            r.as_ref().map(|r| r.worst_stream_after_first_pct),
                        )
                        .with("secs", u64::from(secs))
                        .with("jain", r.as_ref().map(|r| r.jain))
                        .with(
                            "aggregate_error_pct",
                            r.as_ref().map(|r| r.aggregate_error_pct),
                        )
                        .with("worst_stream_pct", r.as_ref().map(|r| r.worst_stream_pct))
                        .with("rates_bytes_per_sec", r.map(|r| r.rates)),
                );
            }
            t.row(jr);
            t.row(ar);
            t.row(wr);
            t.row(lr);
        }
        self.add(
            "fairness",
            t,
            vec![
                "target: Jain ≥ 0.99 for 100 streams, aggregate within ±1 %".into(),
                "async-speed-limit: one Limiter cloned into every stream (clones share one queue); \
                 leaky-bucket and governor: one limiter behind an Arc"
                    .into(),
            ],
            Json::Arr(js),
        );
        Ok(())
    }

    pub(crate) async fn overhead(&mut self, secs: u32, rounds: usize) -> io::Result<()> {
        let huge = 100 << 30;
        let cols = [
            ("raw TCP", Peer::Raw, None),
            ("throttle", Peer::Throttle, Some(huge)),
            ("throttle, no limit", Peer::Throttle, None),
            ("async-speed-limit", Peer::Asl, Some(huge)),
            ("leaky-bucket", Peer::Lb, Some(huge)),
            ("governor", Peer::Gov, Some(huge)),
        ];
        let mut runs: [Vec<scenarios::Speed>; 6] = Default::default();
        // The first loopback run of a process is consistently about half as fast (seen
        // 1.2 GiB/s then 2.9 GiB/s for the same raw run): warm up, discard.
        Self::progress("overhead warm-up (raw TCP, discarded)");
        scenarios::speed(Peer::Raw, None, 2).await?;
        for round in 0..rounds {
            // Rotate the order each round so no column always runs first or last.
            for k in 0..cols.len() {
                let i = (k + round) % cols.len();
                let (label, peer, limit) = &cols[i];
                if *peer != Peer::Raw && !self.peers.contains(peer) {
                    continue;
                }
                Self::progress(&format!("overhead round {} {label}", round + 1));
                if let Some(s) = scenarios::speed(*peer, *limit, secs).await? {
                    eprintln!(
                        "    {:.0} MiB/s, {:.3} CPU s/GiB, writer {:.3}",
                        s.bytes_per_sec / MIB as f64,
                        s.cpu_s_per_gib,
                        s.writer_cpu_s_per_gib
                    );
                    runs[i].push(s);
                }
            }
        }
        // Median over rounds: robust to a round hit by another process's burst.
        let mean = |i: usize| {
            let r = &runs[i];
            let b: Vec<f64> = r.iter().map(|s| s.bytes_per_sec).collect();
            let c: Vec<f64> = r.iter().map(|s| s.cpu_s_per_gib).collect();
            let w: Vec<f64> = r.iter().map(|s| s.writer_cpu_s_per_gib).collect();
            (!r.is_empty()).then(|| (median(&b), median(&c), median(&w)))
        };
        // Ratio to the raw run of the same round, then the median over rounds: pairs runs a
        // few seconds apart, so slow swings in the machine's load cancel.
        let ratios = |i: usize| -> Vec<f64> {
            runs[i]
                .iter()
                .zip(&runs[0])
                .map(|(s, r)| s.bytes_per_sec / r.bytes_per_sec)
                .collect()
        };
        let mut h = vec![format!(
            "overhead, one stream, limit 100 GiB/s, {secs} s × {rounds}"
        )];
        h.extend(cols.iter().map(|c| c.0.to_owned()));
        let h: Vec<&str> = h.iter().map(String::as_str).collect();
        let mut t = Table::new(&h);
        let mut tput = vec!["throughput, MiB/s (median)".to_owned()];
        let mut ratio = vec!["vs raw TCP, same round: median (min–max)".to_owned()];
        let mut cpu = vec!["CPU s per GiB, process (median)".to_owned()];
        let mut wcpu = vec!["CPU s per GiB, writer thread (median)".to_owned()];
        let mut js = Vec::new();
        for (i, (label, peer, limit)) in cols.iter().enumerate() {
            let m = mean(i);
            tput.push(m.map_or_else(na, |m| format!("{:.0}", m.0 / MIB as f64)));
            let rs = ratios(i);
            ratio.push(if rs.is_empty() {
                na()
            } else {
                format!(
                    "{:.1} % ({:.0}–{:.0})",
                    median(&rs) * 100.0,
                    rs.iter().copied().fold(f64::INFINITY, f64::min) * 100.0,
                    rs.iter().copied().fold(f64::NEG_INFINITY, f64::max) * 100.0
                )
            });
            cpu.push(m.map_or_else(na, |m| format!("{:.3}", m.1)));
            wcpu.push(m.map_or_else(na, |m| format!("{:.3}", m.2)));
            js.push(
                Json::obj()
                    .with("peer", peer.key())
                    .with("label", *label)
                    .with("limit_bytes_per_sec", *limit)
                    .with("secs", u64::from(secs))
                    .with("rounds", rounds)
                    .with(
                        "runs_bytes_per_sec",
                        runs[i].iter().map(|s| s.bytes_per_sec).collect::<Vec<_>>(),
                    )
                    .with("bytes_per_sec", m.map(|m| m.0))
                    .with(
                        "ratio_to_raw_median",
                        (!ratios(i).is_empty()).then(|| median(&ratios(i))),
                    )
                    .with("ratios_to_raw", ratios(i))
                    .with("cpu_s_per_gib", m.map(|m| m.1))
                    .with("writer_cpu_s_per_gib", m.map(|m| m.2))
                    .with(
                        "runs_writer_cpu_s_per_gib",
                        runs[i]
                            .iter()
                            .map(|s| s.writer_cpu_s_per_gib)
                            .collect::<Vec<_>>(),
                    ),
            );
        }
        t.row(tput);
        t.row(ratio);
        t.row(cpu);
        t.row(wcpu);
        let mut sink = vec!["limiter cost per 64 KiB write into io::sink(), ns".to_owned()];
        let mut sink_js = Vec::new();
        for (label, peer, limit) in &cols {
            if *peer != Peer::Raw && !self.peers.contains(peer) {
                sink.push("skipped".into());
                continue;
            }
            let (peer, limited) = (*peer, limit.is_some());
            let ns = tokio::task::spawn_blocking(move || scenarios::sink_cost(peer, limited))
                .await
                .map_err(io::Error::other)??;
            sink.push(ns.map_or_else(na, |ns| format!("{ns:.0}")));
            sink_js.push(
                Json::obj()
                    .with("label", *label)
                    .with("ns_per_64k_write", ns),
            );
        }
        t.row(sink);
        self.add(
            "overhead",
            t,
            vec![
                "target: ≥ 95 % of raw throughput; writer and reader each on its own thread \
                 (current-thread runtimes); after a discarded warm-up run, runs interleaved (order \
                 rotated each round), median of rounds; \"no limit\": every node Limits::UNLIMITED \
                 (the adapter's bypass)"
                    .into(),
            ],
            Json::obj()
                .with("loopback", Json::Arr(js))
                .with("sink", Json::Arr(sink_js)),
        );
        Ok(())
    }

    pub(crate) async fn change(&mut self, trials: usize) -> io::Result<()> {
        let (from, to) = (KIB, 100 * MIB);
        let mut t = Table::new(&header(&format!(
            "limit change 1 KiB/s → 100 MiB/s, {trials} trials"
        )));
        let mut first = vec!["set_limit → first byte, median / max".to_owned()];
        let mut new = vec!["set_limit → 64 KiB received, median / max".to_owned()];
        let mut js = Vec::new();
        for peer in Peer::COMPARED {
            if !self.peers.contains(&peer) {
                first.push("skipped".into());
                new.push("skipped".into());
                continue;
            }
            Self::progress(&format!("limit change {}", peer.name()));
            let r = scenarios::change(peer, from, to, trials).await?;
            match &r {
                None => {
                    first.push(na());
                    new.push(na());
                }
                Some(c) => {
                    let maxf = c.first_byte_ms.iter().copied().fold(f64::NAN, f64::max);
                    first.push(if c.first_byte_ms.iter().all(|x| x.is_nan()) {
                        format!("none in {:.0} ms", c.window_ms)
                    } else {
                        format!("{:.1} / {:.1} ms", median(&c.first_byte_ms), maxf)
                    });
                    let missed = c.new_rate_ms.iter().filter(|x| x.is_none()).count();
                    let got: Vec<f64> = c.new_rate_ms.iter().flatten().copied().collect();
                    new.push(if missed == 0 {
                        format!(
                            "{:.1} / {:.1} ms",
                            median(&got),
                            got.iter().copied().fold(f64::NAN, f64::max)
                        )
                    } else {
                        format!(
                            "{missed}/{} trials > {:.0} ms",
                            c.new_rate_ms.len(),
                            c.window_ms
                        )
                    });
                }
            }
            js.push(
                Json::obj()
                    .with("peer", peer.key())
                    .with("from_bytes_per_sec", from)
                    .with("to_bytes_per_sec", to)
                    .with("supported", r.is_some())
                    .with("first_byte_ms", r.as_ref().map(|c| c.first_byte_ms.clone()))
                    .with(
                        "first_64k_ms",
                        r.as_ref().map(|c| {
                            Json::Arr(c.new_rate_ms.iter().map(|x| Json::from(*x)).collect())
                        }),
                    )
                    .with("window_ms", r.as_ref().map(|c| c.window_ms)),
            );
        }
        t.row(first);
        t.row(new);
        self.add(
            "change",
            t,
            vec![
                "target: ≤ 10 ms; 64 KiB would take 64 s at the old rate, so it marks the new rate"
                    .into(),
                "leaky-bucket and governor cannot change their rate (n/a); async-speed-limit: set_speed_limit"
                    .into(),
            ],
            Json::Arr(js),
        );
        Ok(())
    }

    pub(crate) async fn perconn(&mut self, secs: u32) -> io::Result<()> {
        let (server, conn) = (20 * MIB, 4 * MIB);
        let mut t = Table::new(&header(&format!(
            "4 MiB/s per connection under 20 MiB/s, {secs} s"
        )));
        let mut js = Vec::new();
        for n in [3usize, 8] {
            let each = (conn as f64).min(server as f64 / n as f64) / MIB as f64;
            let mut ar = vec![format!("{n} streams ({each} MiB/s each): aggregate error")];
            let mut wr = vec![format!("{n} streams: worst stream vs expected")];
            let mut jr = vec![format!("{n} streams: Jain's index")];
            for peer in Peer::COMPARED {
                if !self.peers.contains(&peer) {
                    for r in [&mut ar, &mut wr, &mut jr] {
                        r.push("skipped".into());
                    }
                    continue;
                }
                Self::progress(&format!("per-connection {n} streams {}", peer.name()));
                let r = scenarios::sharing(peer, server, Some(conn), n, secs).await?;
                ar.push(r.as_ref().map_or_else(na, |r| pct(r.aggregate_error_pct)));
                wr.push(r.as_ref().map_or_else(na, |r| pct(r.worst_stream_pct)));
                jr.push(r.as_ref().map_or_else(na, |r| format!("{:.4}", r.jain)));
                js.push(
                    Json::obj()
                        .with("peer", peer.key())
                        .with("streams", n)
                        .with("server_bytes_per_sec", server)
                        .with("conn_bytes_per_sec", conn)
                        .with("secs", u64::from(secs))
                        .with("jain", r.as_ref().map(|r| r.jain))
                        .with(
                            "aggregate_error_pct",
                            r.as_ref().map(|r| r.aggregate_error_pct),
                        )
                        .with("worst_stream_pct", r.as_ref().map(|r| r.worst_stream_pct))
                        .with("rates_bytes_per_sec", r.map(|r| r.rates)),
                );
            }
            t.row(ar);
            t.row(wr);
            t.row(jr);
        }
        self.add(
            "perconn",
            t,
            vec![
                "peers have no hierarchy: composed by hand (async-speed-limit: a per-stream \
                 Limiter nested inside the shared one; leaky-bucket and governor: acquire from the stream's \
                 bucket, then the shared one)"
                    .into(),
            ],
            Json::Arr(js),
        );
        Ok(())
    }

    /// `manyconn`: throttle only; one column per connection count. Runs on its own
    /// 2-worker runtime (see `manyconn::runtime`), so this is a blocking call.
    pub(crate) fn manyconn(&mut self, counts: &[usize], mib: u64, secs: u32) -> io::Result<()> {
        let limit = mib * MIB;
        let rt = crate::manyconn::runtime()?;
        let mut title = vec![format!("throttle, N streams sharing {mib} MiB/s, {secs} s")];
        title.extend(counts.iter().map(|n| format!("N = {n}")));
        let title: Vec<&str> = title.iter().map(String::as_str).collect();
        let mut t = Table::new(&title);
        let mut rows: Vec<Vec<String>> = [
            "aggregate error",
            "aggregate error, after the 1st s",
            "Jain's index",
            "Jain's index, after the 1st s",
            "worst stream vs share",
            "worst stream vs share, after the 1st s",
            "streams with no byte after the 1st s",
            "sent (writer side), after the 1st s: aggregate error",
            "sent, after the 1st s: Jain's index",
            "sent, after the 1st s: worst stream vs share",
            "CPU s per s: writers + limiter process",
            "CPU s per s: readers process",
            "CPU s per s: both",
            "connection setup, s",
        ]
        .iter()
        .map(|r| vec![(*r).to_owned()])
        .collect();
        let mut js = Vec::new();
        for &n in counts {
            Self::progress(&format!("manyconn {n} streams throttle"));
            let r = rt.block_on(crate::manyconn::run(n, limit, secs))?;
            let cells = [
                pct(r.aggregate_error_pct),
                pct(r.aggregate_after_first_pct),
                format!("{:.4}", r.jain),
                format!("{:.4}", r.jain_after_first),
                pct(r.worst_stream_pct),
                pct(r.worst_after_first_pct),
                r.starved_after_first.to_string(),
                pct(r.sent_aggregate_pct),
                format!("{:.4}", r.sent_jain),
                pct(r.sent_worst_pct),
                format!("{:.2}", r.cpu_writer),
                format!("{:.2}", r.cpu_reader),
                format!("{:.2}", r.cpu_writer + r.cpu_reader),
                format!("{:.1}", r.setup_s),
            ];
            for (row, c) in rows.iter_mut().zip(cells) {
                row.push(c);
            }
            js.push(
                Json::obj()
                    .with("peer", "throttle")
                    .with("streams", r.streams)
                    .with("shared_bytes_per_sec", limit)
                    .with("secs", u64::from(secs))
                    .with("aggregate_error_pct", r.aggregate_error_pct)
                    .with("aggregate_after_first_pct", r.aggregate_after_first_pct)
                    .with("jain", r.jain)
                    .with("jain_after_first", r.jain_after_first)
                    .with("worst_stream_pct", r.worst_stream_pct)
                    .with("worst_stream_after_first_pct", r.worst_after_first_pct)
                    .with("starved_after_first", r.starved_after_first)
                    .with("sent_after_first_aggregate_pct", r.sent_aggregate_pct)
                    .with("sent_after_first_jain", r.sent_jain)
                    .with("sent_after_first_worst_stream_pct", r.sent_worst_pct)
                    .with("cpu_s_per_s_writer_process", r.cpu_writer)
                    .with("cpu_s_per_s_reader_process", r.cpu_reader)
                    .with("setup_s", r.setup_s)
                    .with("aggregate_bytes_per_second", r.aggregate_per_second)
                    .with("rates_bytes_per_sec", r.rates)
                    .with("rates_after_first_bytes_per_sec", r.rates_after_first),
            );
        }
        for row in rows {
            t.row(row);
        }
        self.add(
            "manyconn",
            t,
            vec![
                "target (DESIGN): 10 000 connections on 2 cores hold accuracy and fairness".into(),
                "writers (each 16–64 KiB per write) and limiter in this process, readers in a \
                 child process (fd limit); both on multi-thread tokio runtimes with 2 workers; \
                 CPU from /proc/self/stat of each process over the run; peers not run"
                    .into(),
            ],
            Json::Arr(js),
        );
        Ok(())
    }

    pub(crate) fn add(&mut self, key: &str, table: Table, notes: Vec<String>, json: Json) {
        self.sections.push((key.to_owned(), table, notes));
        self.json.push((key.to_owned(), json));
    }

    pub(crate) fn json(&self) -> Json {
        Json::obj()
            .with("mode", self.mode)
            .with(
                "machine",
                Json::obj()
                    .with(
                        "cores",
                        std::thread::available_parallelism().map_or(0, |n| n.get()),
                    )
                    .with("loadavg_before", self.load_before.as_str())
                    .with("loadavg_after", self.load_after.as_str()),
            )
            .with("results", Json::Obj(self.json.clone()))
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "\nthrottle loopback benchmark ({} run; {} cores; load average before {}, after {})",
            self.mode,
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            self.load_before,
            self.load_after
        )?;
        for (_, table, notes) in &self.sections {
            writeln!(f)?;
            write!(f, "{table}")?;
            for n in notes {
                writeln!(f, "  {n}")?;
            }
        }
        Ok(())
    }
}
