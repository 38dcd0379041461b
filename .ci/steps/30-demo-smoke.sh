#!/usr/bin/env bash
# Demo smoke: the README's main job (`cargo run --release -p throttle-demo`) shortened to 5 s —
# a throttled log server on 127.0.0.1 (port 0), four clients, both scripted limit changes.
# Must exit 0 and print its closing totals. Debug profile: the workspace's test build already
# compiled most of its dependencies. The loopback benchmark (bench/) is never run in CI.
cargo build -p throttle-demo
out=$(timeout 60 cargo run -q -p throttle-demo -- --secs 5)
echo "$out"
grep -q '^totals over' <<<"$out"
grep -q 'per-connection limit .* (set on all 4 live connections)' <<<"$out"
