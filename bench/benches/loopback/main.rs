//! `cargo bench -p throttle-bench --bench loopback [-- --quick | --long] [--only LIST]`
//!
//! throttle against async-speed-limit and leaky-bucket over loopback TCP with tokio, in one
//! run: accuracy at 1, 10 and 100 MiB/s; fairness of 10 and 100 streams sharing 50 MiB/s;
//! overhead of a limit far above loopback speed against raw TCP; how long a limit change takes
//! to show; a per-connection limit under a server limit. Rates are measured by the reading
//! client. Prints one table per measurement and writes everything to
//! `target/throttle-bench.json` (or `--json PATH`).
//!
//! `--only` takes a comma-separated subset of
//! `accuracy,fairness,overhead,change,perconn,weighted,requests,manyconn` (`manyconn`: 1 000,
//! 5 000 and 10 000 streams sharing 50 MiB/s, or `--manyconn-limit MIB`; readers in a child
//! process; `weighted`: two `tokio::io::copy` writers weighted 4:1, 1:3, 10:1 at 6, 60 and
//! 600 MiB/s; `requests`: request limiting against governor); `--peers` a subset of
//! `throttle,async-speed-limit,leaky-bucket,governor` (the others print "skipped").

extern crate alloc;

mod manyconn;
mod peers;
mod report;
mod requests;
mod scenarios;
mod throttle_peer;
mod weighted;

use std::process::ExitCode;

use report::Report;

/// Run lengths, per measurement.
#[derive(Clone, Copy, Debug)]
struct Plan {
    accuracy_secs: u32,
    fairness_secs: u32,
    overhead_secs: u32,
    overhead_rounds: usize,
    change_trials: usize,
    perconn_secs: u32,
    manyconn_secs: u32,
    weighted_secs: u32,
    requests_secs: u32,
}

impl Plan {
    const DEFAULT: Plan = Plan {
        accuracy_secs: 10,
        fairness_secs: 10,
        overhead_secs: 1,
        overhead_rounds: 10,
        change_trials: 5,
        perconn_secs: 10,
        manyconn_secs: 10,
        weighted_secs: 3,
        requests_secs: 5,
    };
    const LONG: Plan = Plan {
        accuracy_secs: 30,
        fairness_secs: 30,
        overhead_secs: 2,
        overhead_rounds: 20,
        change_trials: 10,
        perconn_secs: 30,
        manyconn_secs: 30,
        weighted_secs: 10,
        requests_secs: 10,
    };
    const QUICK: Plan = Plan {
        accuracy_secs: 2,
        fairness_secs: 2,
        overhead_secs: 1,
        overhead_rounds: 2,
        change_trials: 2,
        perconn_secs: 2,
        manyconn_secs: 2,
        weighted_secs: 2,
        requests_secs: 2,
    };
}

const SECTIONS: [&str; 8] = [
    "accuracy", "fairness", "overhead", "change", "perconn", "weighted", "requests", "manyconn",
];

fn usage() -> ExitCode {
    eprintln!(
        "usage: cargo bench -p throttle-bench --bench loopback -- [--quick | --long] \
         [--only {}] [--peers throttle,async-speed-limit,leaky-bucket,governor] [--manyconn-limit MIB] \
         [--json PATH]",
        SECTIONS.join(",")
    );
    ExitCode::from(2)
}

/// The connection counts of `manyconn`: 1 000, 5 000 and 10 000, the last lowered if the
/// open-file limit (each process holds one end of every connection) cannot take it.
fn manyconn_counts() -> Vec<usize> {
    let limit = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_owned))
        })
        .and_then(|soft| soft.parse::<usize>().ok())
        .unwrap_or(usize::MAX);
    // Headroom for stdio, pipes, epoll and the listener.
    let most = limit.saturating_sub(64).min(10_000);
    let mut counts: Vec<usize> = [1_000, 5_000].into_iter().filter(|&n| n < most).collect();
    counts.push(most);
    counts
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some(manyconn::CHILD_FLAG) {
        return match manyconn::child(&argv[2..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("manyconn reader: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let mut plan = Plan::DEFAULT;
    let mut mode = "default";
    let mut only: Vec<String> = SECTIONS.iter().map(|s| (*s).to_owned()).collect();
    let mut json_path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map_or_else(
            || "throttle-bench.json".into(),
            |t| t.join("throttle-bench.json"),
        );
    let mut manyconn_mib: u64 = 50;
    let mut peers: Vec<peers::Peer> = peers::Peer::COMPARED.to_vec();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            // `cargo bench` passes --bench to harness = false targets.
            "--bench" => {}
            "--quick" => (plan, mode) = (Plan::QUICK, "quick"),
            "--long" => (plan, mode) = (Plan::LONG, "long"),
            "--only" => match args.next() {
                Some(list) if list.split(',').all(|s| SECTIONS.contains(&s)) => {
                    only = list.split(',').map(str::to_owned).collect();
                }
                _ => return usage(),
            },
            // The shared limit of `manyconn`, MiB/s (default 50).
            "--manyconn-limit" => match args.next().and_then(|m| m.parse().ok()) {
                Some(m) if m > 0 => manyconn_mib = m,
                _ => return usage(),
            },
            "--peers" => {
                let Some(list) = args.next() else {
                    return usage();
                };
                let chosen: Vec<_> = peers::Peer::COMPARED
                    .into_iter()
                    .filter(|p| list.split(',').any(|n| n == p.name()))
                    .collect();
                if chosen.len() != list.split(',').count() {
                    return usage();
                }
                peers = chosen;
            }
            // cargo runs benches in the package directory: a relative path is taken from
            // the workspace root instead, where the command was most likely typed.
            "--json" => match args.next() {
                Some(p) => {
                    json_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                        .parent()
                        .unwrap_or(std::path::Path::new("."))
                        .join(p);
                }
                None => return usage(),
            },
            _ => return usage(),
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut report = Report::new(mode, peers);
    let mut result = runtime.block_on(run(plan, &only, &mut report));
    drop(runtime);
    if result.is_ok() && only.iter().any(|o| o == "manyconn") {
        result = report.manyconn(&manyconn_counts(), manyconn_mib, plan.manyconn_secs);
    }
    if let Err(e) = result {
        eprintln!("benchmark failed: {e}");
        return ExitCode::FAILURE;
    }
    report.finish();
    print!("{report}");
    match std::fs::write(&json_path, format!("{}\n", report.json())) {
        Ok(()) => println!("JSON: {}", json_path.display()),
        Err(e) => eprintln!("could not write {}: {e}", json_path.display()),
    }
    ExitCode::SUCCESS
}

async fn run(plan: Plan, only: &[String], report: &mut Report) -> std::io::Result<()> {
    let on = |s: &str| only.iter().any(|o| o == s);
    if on("accuracy") {
        report.accuracy(plan.accuracy_secs).await?;
    }
    if on("fairness") {
        report.fairness(plan.fairness_secs).await?;
    }
    if on("overhead") {
        report
            .overhead(plan.overhead_secs, plan.overhead_rounds)
            .await?;
    }
    if on("change") {
        report.change(plan.change_trials).await?;
    }
    if on("perconn") {
        report.perconn(plan.perconn_secs).await?;
    }
    if on("weighted") {
        report.weighted(plan.weighted_secs).await?;
    }
    if on("requests") {
        report.requests(plan.requests_secs).await?;
    }
    Ok(())
}
