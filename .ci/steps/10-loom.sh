#!/usr/bin/env bash
# loom models of throttle-core's sharing layer (throttle-core/tests/loom.rs): every
# interleaving of the scenarios up to 5 preemptions (a few seconds once built). Own target dir:
# `--cfg loom` rebuilds everything. Each test prints how many interleavings it explored.
cd "$(dirname "$0")/../.."
RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=5 \
    cargo test -p throttle-core --features std --test loom --release --target-dir target/loom \
    -- --nocapture --test-threads 1
