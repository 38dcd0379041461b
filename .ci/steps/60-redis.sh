#!/usr/bin/env bash
# throttle-redis: each feature combination alone (clippy), then the fleet demo shortened to
# 9 s — 3 worker processes sharing one limit through a private redis-server (free port),
# killed at 4 s, restarted empty at 6 s, limit halved at 7 s. Its tests run in the workspace
# test run. About a minute.
cd "$(dirname "$0")/../.."

for features in "" "smol" "tokio,smol"; do
    echo "-- throttle-redis features: [${features}]"
    cargo clippy -p throttle-redis --all-targets --no-default-features --features "$features" -- -D warnings
done

if ! command -v redis-server >/dev/null 2>&1; then
    echo "SKIPPED: redis-server not found (fleet demo not run)"
    exit 0
fi
cargo build -q -p throttle-redis --bins
out=$(timeout 90 target/debug/throttle-redis-fleet demo --k 3 --secs 9 --kill-at 4 --restart-at 6 --change-at 7)
echo "$out"
grep -q '^steady total' <<<"$out"
grep -q 'redis-server restarted' <<<"$out"
