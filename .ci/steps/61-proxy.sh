#!/usr/bin/env bash
# `throttle proxy` end to end as an operator runs it (the README's proxy example): `throttle
# check` on a good and a bad file, a download through a 2 MiB/s group limit (size exact,
# 1.2–15 s for 3 MiB: the upper bound only catches "not throttled" vs "stuck"), `throttle ctl`
# stats/set, a bad SIGHUP reload that keeps the old config, /metrics, and a SIGTERM drain.
# Needs socat (.ci/deps/proxy.sh); prints SKIPPED without it. Debug build (the test build made
# it already); takes ~10 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v socat >/dev/null 2>&1; then
    echo "SKIPPED: socat not installed (.ci/deps/proxy.sh installs it)"
    exit 0
fi
cargo build -q -p throttle-cli
bin=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/debug/throttle
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

# an upstream that sends 3 MiB to each connection
head -c $((3 << 20)) /dev/urandom >"$tmp/blob"
up=""
for _ in $(seq 20); do
    port=$((20000 + RANDOM % 40000))
    socat TCP-LISTEN:$port,bind=127.0.0.1,fork OPEN:"$tmp/blob" 2>/dev/null &
    pid=$!
    sleep 0.2
    if kill -0 "$pid" 2>/dev/null; then # still running: the port was free
        pids+=("$pid")
        up=$port
        break
    fi
done
[[ -n $up ]] || { echo "FAIL: the socat upstream did not start"; exit 1; }

head -c 24 /dev/urandom | base64 >"$tmp/token"
cat >"$tmp/throttle.toml" <<TOML
[admin]
listen = "127.0.0.1:0"
token_file = "token"
[server]
down = "100M"
[[listener]]
name = "files"
listen = "127.0.0.1:0"
upstream = "127.0.0.1:$up"
[[group]]
name = "office"
weight = 2
match = { client = ["127.0.0.0/8"] }
down = "2M"
per_client = { down = "50M" }
TOML
"$bin" check -c "$tmp/throttle.toml"
sed 's/down = "2M"/down = "2 parsecs"/' "$tmp/throttle.toml" >"$tmp/bad.toml"
if "$bin" check -c "$tmp/bad.toml" 2>"$tmp/check.err"; then
    echo "FAIL: throttle check accepted a bad file"; exit 1
fi
echo "throttle check on a bad file: $(cat "$tmp/check.err")"

"$bin" proxy -c "$tmp/throttle.toml" --drain-timeout 5 2>"$tmp/proxy.log" &
pids+=($!)
proxy=$!
listen="" admin=""
for _ in $(seq 200); do
    listen=$(sed -n 's/.*proxy listening on \([0-9.:]*\).*/\1/p' "$tmp/proxy.log" | head -n 1)
    admin=$(sed -n 's/.*admin API listening on \([0-9.:]*\).*/\1/p' "$tmp/proxy.log" | head -n 1)
    [[ -n $listen && -n $admin ]] && break
    sleep 0.05
done
[[ -n $listen && -n $admin ]] || { echo "FAIL: the proxy did not start"; cat "$tmp/proxy.log"; exit 1; }
ctl() { "$bin" ctl --admin "http://$admin" --token-file "$tmp/token" "$@"; }

t0=${EPOCHREALTIME/./}
socat -u "TCP:$listen" "CREATE:$tmp/got"
ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
cmp "$tmp/blob" "$tmp/got"
echo "3 MiB through the group's 2 MiB/s: ${ms} ms (ideal 1500 ms)"
((ms >= 1200 && ms <= 15000)) || { echo "FAIL: ${ms} ms is outside 1200..15000"; exit 1; }

ctl stats
ctl set office --down 50M
ctl stats | grep -q '^  office .*50.00 MiB/s' || { echo "FAIL: ctl set did not show"; ctl stats; exit 1; }

# a bad reload keeps the old config and says why
cp "$tmp/bad.toml" "$tmp/throttle.toml"
kill -HUP "$proxy"
for _ in $(seq 100); do grep -q "reload failed" "$tmp/proxy.log" && break; sleep 0.05; done
grep "reload failed" "$tmp/proxy.log"
ctl stats | grep -q '^  office .*50.00 MiB/s' || { echo "FAIL: the bad reload changed the limits"; exit 1; }

curl -sf "http://$admin/metrics" | grep 'throttle_bytes_total{group="office",direction="down"} 3145728'

kill -TERM "$proxy"
for _ in $(seq 200); do kill -0 "$proxy" 2>/dev/null || break; sleep 0.05; done
if kill -0 "$proxy" 2>/dev/null; then echo "FAIL: still running 10 s after SIGTERM"; exit 1; fi
wait "$proxy"
grep -E "open conn=|close conn=|drained" "$tmp/proxy.log"
echo "proxy end to end: ok"
