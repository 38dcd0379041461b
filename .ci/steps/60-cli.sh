#!/usr/bin/env bash
# The `throttle` tool as a user runs it (the README's pipe example), checked with generous
# bounds: 6 MiB through `throttle pipe -L 4M` must arrive complete and unchanged, in 1.2–15 s
# (ideal 1.5 s; the upper bound only catches "not throttled"/"stuck" on a busy machine), and
# the numeric progress (`-n`) must end at 6291456 bytes. Then a rate change by `throttle set`.
# Debug profile: the test build already compiled it. Takes ~3 s.
cargo build -q -p throttle-cli
bin=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/debug/throttle
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

head -c $((6 << 20)) /dev/urandom >"$tmp/in"
t0=${EPOCHREALTIME/./}
"$bin" pipe -L 4M -n -i 0.5 "$tmp/in" >"$tmp/out" 2>"$tmp/progress"
ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
cmp "$tmp/in" "$tmp/out"
echo "throttle pipe -L 4M: 6 MiB in ${ms} ms (ideal 1500 ms); progress:"
cat "$tmp/progress"
((ms >= 1200 && ms <= 15000)) || { echo "FAIL: ${ms} ms is outside 1200..15000"; exit 1; }
tail -n 1 "$tmp/progress" | grep -q '^[0-9.]* 6291456 [0-9]* 100$'

# a pipe asleep at 1 KiB/s, sped up by `throttle set`: 2 MiB must then arrive within 10 s
sock="$tmp/ctl.sock"
head -c $((2 << 20)) /dev/zero | "$bin" pipe -q -L 1K --control "$sock" >"$tmp/out2" &
pid=$!
for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.05; done
"$bin" set --control "$sock" -L 100M
t0=${EPOCHREALTIME/./}
wait "$pid"
ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
size=$(stat -c %s "$tmp/out2")
echo "throttle set 1K → 100M: the remaining ~2 MiB in ${ms} ms (at 1 KiB/s: 34 min)"
((size == 2 << 20 && ms <= 10000)) || { echo "FAIL: size $size, ${ms} ms"; exit 1; }
