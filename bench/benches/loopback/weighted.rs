//! Weighted fairness as users run it (issue 9): two tokio writers doing `tokio::io::copy`
//! (8 KiB writes) under one limited node, with weights 4:1, 1:3 and 10:1, at 6, 60 and
//! 600 MiB/s, both as two weighted leaves of the node and as two one-leaf weighted groups.
//! Throttle only (no peer has weights). Rates are measured by the reading clients, over the
//! seconds after the first (start-up excluded); the figure of merit is
//! `(rate₁ / rate₂) / (w₁ / w₂)`, 1.00 when the weights hold.

use std::io;

use throttle_bench::json::Json;
use throttle_bench::meter::{self, Received};
use throttle_bench::table::Table;
use throttle_bench::{net, MIB};
use throttle_tokio::{Limits, Node};
use tokio::time::Instant;

use crate::report::Report;

/// The weight pairs measured.
pub(crate) const WEIGHTS: [[u16; 2]; 3] = [[4, 1], [1, 3], [10, 1]];
/// The node's limits measured, MiB/s.
pub(crate) const RATES_MIB: [u64; 3] = [6, 60, 600];

/// One run's outcome.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Weighted {
    /// Each writer's rate after the first second, bytes/s.
    pub(crate) rates: [f64; 2],
    /// `(rate₁ / rate₂) / (w₁ / w₂)`.
    pub(crate) ratio: f64,
    /// The sum of both vs the node's limit, %.
    pub(crate) aggregate_error_pct: f64,
}

fn tail_rate(r: &Received) -> f64 {
    let tail = &r.per_second[1.min(r.per_second.len())..];
    tail.iter().sum::<u64>() as f64 / tail.len().max(1) as f64
}

/// Two `tokio::io::copy` writers under a node of `limit` bytes/s for `secs` (≥ 2) seconds,
/// weighted `w` as leaves of the node, or (`groups`) each in its own one-leaf group of weight
/// `w[i]` under it.
pub(crate) async fn weighted(
    w: [u16; 2],
    groups: bool,
    limit: u64,
    secs: u32,
) -> io::Result<Weighted> {
    let node = throttle_tokio::limiter()
        .node(Limits::per_second(limit), 1)
        .map_err(io::Error::other)?;
    let pairs = net::pairs(2).await?;
    let mut keep: Vec<Node> = Vec::new();
    let mut streams = Vec::new();
    for (pair, &weight) in pairs.into_iter().zip(&w) {
        let s = if groups {
            let g = node
                .child(Limits::UNLIMITED, weight)
                .map_err(io::Error::other)?;
            let s = throttle_tokio::wrap(pair.server, &g, Limits::UNLIMITED, Limits::UNLIMITED);
            keep.push(g);
            s
        } else {
            let s = throttle_tokio::wrap(pair.server, &node, Limits::UNLIMITED, Limits::UNLIMITED);
            if let Ok(s) = &s {
                s.write_leaf()
                    .node()
                    .set_weight(weight)
                    .map_err(io::Error::other)?;
            }
            s
        }
        .map_err(io::Error::other)?;
        streams.push((s, pair.client));
    }
    let start = Instant::now();
    let mut writers = Vec::new();
    let mut readers = Vec::new();
    for (mut s, client) in streams {
        // what a proxy does: tokio's copy loop, 8 KiB at a time
        writers.push(tokio::spawn(async move {
            tokio::io::copy(&mut tokio::io::repeat(0x5a), &mut s).await
        }));
        readers.push(tokio::spawn(meter::drain(client, start, secs)));
    }
    let mut got = Vec::new();
    for r in readers {
        got.push(r.await.map_err(io::Error::other)?);
    }
    for wr in writers {
        wr.abort();
    }
    drop(keep);
    let rates = [tail_rate(&got[0]), tail_rate(&got[1])];
    let ratio = (rates[0] / rates[1]) / (f64::from(w[0]) / f64::from(w[1]));
    Ok(Weighted {
        rates,
        ratio,
        aggregate_error_pct: (rates[0] + rates[1]) / limit as f64 * 100.0 - 100.0,
    })
}

impl Report {
    /// The weighted-fairness table: one row per weight pair and topology, one column per rate.
    pub(crate) async fn weighted(&mut self, secs: u32) -> io::Result<()> {
        let secs = secs.max(2);
        let cols: Vec<String> = RATES_MIB.iter().map(|r| format!("{r} MiB/s")).collect();
        let mut h = vec![format!(
            "weights, 2 × tokio::io::copy (8 KiB writes), {secs} s"
        )];
        h.extend(cols);
        let h: Vec<&str> = h.iter().map(String::as_str).collect();
        let mut t = Table::new(&h);
        let mut js = Vec::new();
        for groups in [false, true] {
            for w in WEIGHTS {
                let what = if groups { "one-leaf groups" } else { "leaves" };
                let mut row = vec![format!("{}:{} as {what}", w[0], w[1])];
                for mib in RATES_MIB {
                    Self::progress(&format!("weighted {}:{} {what} {mib} MiB/s", w[0], w[1]));
                    let r = weighted(w, groups, mib * MIB, secs).await?;
                    row.push(format!(
                        "{:.2} ({:.1} : {:.1}; {:+.1} %)",
                        r.ratio,
                        r.rates[0] / MIB as f64,
                        r.rates[1] / MIB as f64,
                        r.aggregate_error_pct
                    ));
                    js.push(
                        Json::obj()
                            .with("weights", vec![u64::from(w[0]), u64::from(w[1])])
                            .with("groups", groups)
                            .with("limit_bytes_per_sec", mib * MIB)
                            .with("secs", u64::from(secs))
                            .with("rates_bytes_per_sec", r.rates.to_vec())
                            .with("share_ratio_over_weight_ratio", r.ratio)
                            .with("aggregate_error_pct", r.aggregate_error_pct),
                    );
                }
                t.row(row);
            }
        }
        self.add(
            "weighted",
            t,
            vec![
                "cell: (rate₁ / rate₂) / (w₁ / w₂), then each writer's MiB/s and the aggregate vs \
                 the limit; target 0.98–1.02 (issue 9); rates after the first second, measured \
                 by the readers"
                    .into(),
                "leaves: both connections under the limited node, write leaves weighted; groups: \
                 each connection in its own group (Limits::UNLIMITED, weighted) under it"
                    .into(),
            ],
            Json::Arr(js),
        );
        Ok(())
    }
}
