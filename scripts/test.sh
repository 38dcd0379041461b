#!/usr/bin/env bash
# The project's test command (README): works on a fresh machine with only Rust installed.
# 1. Installs what the tests need and is missing: cargo-nextest (cargo install --locked),
#    and the system packages listed in .ci/deps/*.sh (each installs its package when it can,
#    and prints a line starting with SKIPPED when it cannot: the tests that need it then
#    report SKIPPED too, never pass silently as if they ran).
# 2. Runs `cargo nextest run --workspace` and the doctests (nextest does not run doctests).
# Extra arguments go to nextest, e.g. `scripts/test.sh -p throttle-core`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo nextest --version >/dev/null 2>&1; then
    echo "-- installing cargo-nextest (cargo install cargo-nextest --locked)"
    cargo install cargo-nextest --locked
fi
shopt -s nullglob
for dep in .ci/deps/*.sh; do
    bash -euo pipefail "$dep"
done
shopt -u nullglob

if [[ $# -gt 0 ]]; then
    cargo nextest run "$@"
else
    cargo nextest run --workspace
    cargo test --workspace --doc
fi
