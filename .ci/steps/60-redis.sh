#!/usr/bin/env bash
# throttle-redis: the feature combinations (clippy), the smol and Cluster tests, then the fleet demo
# shortened to 9 s — 3 worker processes sharing one limit through a private redis-server (free port),
# killed at 4 s, restarted empty at 6 s, limit halved at 7 s. Its tests run in the workspace
# test run. About a minute.
cd "$(dirname "$0")/../.."

# The library alone without an async runtime (blocking permits only) and on smol alone;
# every target (tests, demo) with tokio, smol and cluster together.
cargo clippy -p throttle-redis --lib --no-default-features -- -D warnings
cargo clippy -p throttle-redis --lib --no-default-features --features smol -- -D warnings
cargo clippy -p throttle-redis --all-targets --features smol,cluster -- -D warnings

if ! command -v redis-server >/dev/null 2>&1; then
    echo "SKIPPED: redis-server not found (fleet demo not run)"
    exit 0
fi
# The smol driver test and the Cluster test (the workspace run builds this crate with tokio
# only, so these two test files compile to nothing there).
cargo nextest run -p throttle-redis --features smol,cluster --test smol --test cluster
cargo build -q -p throttle-redis --bins
out=$(timeout 90 target/debug/throttle-redis-fleet demo --k 3 --secs 9 --kill-at 4 --restart-at 6 --change-at 7)
echo "$out"
grep -q '^steady total' <<<"$out"
grep -q 'redis-server restarted' <<<"$out"
