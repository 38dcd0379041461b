//! `cargo run --release -p throttle-demo`: the demo on its own (the same as `throttle demo`).

use std::process::ExitCode;

fn main() -> ExitCode {
    throttle_demo::main_with(std::env::args().skip(1))
}
