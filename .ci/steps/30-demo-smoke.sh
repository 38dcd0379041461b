#!/usr/bin/env bash
# Demo smoke: the README's main job (`cargo run --release -p throttle-cli -- demo`) shortened to
# 5 s — a throttled log server on 127.0.0.1 (port 0), four clients, both scripted limit changes.
# Must exit 0 and print its closing totals. Debug profile: the workspace's test build already
# compiled the tool and its dependencies. The loopback benchmark (bench/) is never run in CI.
cd "$(dirname "$0")/../.."
cargo build -q -p throttle-cli
out=$(timeout 60 cargo run -q -p throttle-cli -- demo --secs 5)
echo "$out"
grep -q '^totals over' <<<"$out"
grep -q 'server limit .* (one node above all 4 connections)' <<<"$out"
grep -q 'per-connection limit .* (set on all 4 live connections)' <<<"$out"
