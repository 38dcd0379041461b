#!/usr/bin/env bash
# Instructions per decision of throttle-core, counted by valgrind (callgrind): a figure that
# does not move with the machine's load, unlike criterion's nanoseconds (benches/decision.rs).
# Use it to compare two commits on a busy machine; use criterion for absolute speed.
#
#     bash scripts/decision-instructions.sh            # this checkout
#
# Needs valgrind (`apt-get install valgrind`); says so and exits 1 without it. Each figure is
# the whole run's instructions / 200 000 iterations of a loop of
# throttle-core/examples/decision_loop.rs (process start-up and building the tree add about one
# instruction per iteration).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v valgrind >/dev/null; then
    echo "valgrind not found: apt-get install valgrind" >&2
    exit 1
fi
cargo build -q --release -p throttle-core --features std --example decision_loop
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bin="$target_dir/release/examples/decision_loop"
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$@" 2>&1 >/dev/null |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
echo "instructions per iteration (200 000 iterations)"
for loop in "settle 1" "settle 2" "settle 3" "binding 3" "unlimited 3"; do
    # shellcheck disable=SC2086
    total=$(count $loop)
    echo "$loop $total" | awk '{ printf "  %-12s %8.0f\n", $1 " " $2, $3 / 200000 }'
done
echo "(includes the loop's own few instructions; compare commits, not absolute figures)"
