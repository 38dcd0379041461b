#!/usr/bin/env bash
# Fuzzing (fuzz/ is its own workspace, see fuzz/README.md). Run by .ci/run as
# `bash -euo pipefail .ci/steps/50-fuzz.sh`; any failed regression, crash, failed oracle or
# hang (> 10 s per input) fails the step.
#  1. `cargo test` in fuzz/: replays fuzz/regressions/<target>/* through each target's harness
#     (default toolchain if the crate builds there, else nightly);
#  2. needs nightly (else prints SKIPPED and stops here) and cargo-fuzz (installed if missing):
#     replays each target's regressions through the real fuzz binary;
#  3. fuzzes each target for FUZZ_SECONDS (default 60) from its seeds in fuzz/seeds/<target>/,
#     into a scratch corpus (fuzz/seeds/ is never written to).
# `-s none`: the core is forbid(unsafe_code); AddressSanitizer would only halve the throughput.
cd "$(dirname "$0")/../../fuzz"

TARGETS=(ops bucket grammar)
FUZZ_SECONDS=${FUZZ_SECONDS:-60}

have_nightly() { cargo +nightly --version >/dev/null 2>&1; }

# 1. the regression replay test
if cargo test --no-run >/dev/null 2>&1; then
    echo "regression replay test: $(cargo --version)"
    cargo test
elif have_nightly; then
    echo "regression replay test: does not build on $(cargo --version); using nightly"
    cargo +nightly test
else
    echo "fuzz/ does not build with $(cargo --version) and nightly is unavailable:"
    cargo test --no-run || true
    echo "SKIPPED: fuzz (nightly toolchain unavailable; fuzz/ does not build on the default toolchain)"
    exit 0
fi

# 2. toolchain for fuzzing
if ! have_nightly; then
    echo "SKIPPED: fuzz (nightly toolchain unavailable: cargo +nightly --version failed)"
    exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz missing: cargo install cargo-fuzz --locked"
    if ! cargo install cargo-fuzz --locked; then
        echo "SKIPPED: fuzz (cargo-fuzz unavailable: 'cargo install cargo-fuzz --locked' failed)"
        exit 0
    fi
fi
cargo +nightly --version
cargo fuzz --version

shopt -s nullglob
for t in "${TARGETS[@]}"; do
    regressions=(regressions/"$t"/*)
    if [[ ${#regressions[@]} -gt 0 ]]; then
        echo "==> $t: replaying ${#regressions[@]} regression input(s)"
        cargo +nightly fuzz run -s none "$t" "${regressions[@]}" -- -timeout=10 -rss_limit_mb=2048
    else
        echo "==> $t: no regression inputs"
    fi
done

# 3. fuzz each target from its seeds; new inputs go to a scratch corpus
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for t in "${TARGETS[@]}"; do
    seeds=(seeds/"$t"/*)
    echo "==> $t: fuzzing for ${FUZZ_SECONDS} s from ${#seeds[@]} seed(s) in fuzz/seeds/$t"
    mkdir -p "$scratch/$t"
    cargo +nightly fuzz run -s none "$t" "$scratch/$t" "seeds/$t" -- \
        -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
done
