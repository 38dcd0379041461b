#!/usr/bin/env bash
# The simulator under the conditions real runtimes create (tests/tests/runtime_like.rs), in
# release: 3 s of simulated time per case, held to the 2 % targets of issue 9 (weights under a
# 1 ms timer grid with and without wake-up latency, small bursts, late tasks). The workspace
# test run (debug) runs the same cases over a shorter window with a looser tolerance.
cd "$(dirname "$0")/../.."
cargo nextest run --release -p throttle-tests --test runtime_like
