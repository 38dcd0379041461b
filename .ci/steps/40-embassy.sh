#!/usr/bin/env bash
# The embassy adapter beyond the workspace test run. Run by .ci/run as
# `bash -euo pipefail .ci/steps/40-embassy.sh`.
#  1. the conformance suite on embassy (tests/conformance/tests/embassy.rs: the portable
#     scenarios over two in-process embassy-net stacks) in release: the debug build of
#     embassy-net carries only ~5-15 MiB/s over the in-process link, so
#     `write_10mib_per_s_...` scales its rate down there; in release the link carries ~1 GiB/s
#     and the test runs at the real 10 MiB/s;
#  2. examples/firmware (its own workspace) built for thumbv7em-none-eabihf in release. Needs
#     the target (prints SKIPPED and exits 0 without it). Its flash and RAM are printed and
#     guarded by the size step (41-size.sh).
cd "$(dirname "$0")/../.."

# 1.
log=$(mktemp)
rc=0
cargo test -p throttle-conformance --release --test embassy -- --nocapture >"$log" 2>&1 || rc=$?
grep -E '^(test |raw link|10 MiB|write |read |fair|aggregate|limit change|per-connection|cancel|weights|busy|connection [12])|test result' "$log" || true
if [[ $rc -ne 0 ]]; then
    cat "$log"
    echo "the conformance suite on embassy failed in release (exit $rc)"
    exit "$rc"
fi
rm -f "$log"

# 2.
target=thumbv7em-none-eabihf
if ! rustup target add "$target"; then
    echo "SKIPPED: firmware build ($target target unavailable: rustup target add failed)"
    exit 0
fi
(cd examples/firmware && cargo build --release)
# (its own workspace: the target dir cargo uses for it, CARGO_TARGET_DIR included)
fw_target_dir=$(cd examples/firmware && cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
elf=$fw_target_dir/$target/release/throttle-firmware

# 3. the firmware running on an emulated Cortex-M4 (QEMU's netduinoplus2, an STM32F405: the
#    memory map of memory.x). Built with feature `qemu`, it prints the measured rates through
#    semihosting and exits 0 only if the server limit held (±10 %) and was shared (see
#    examples/firmware/src/report.rs). QEMU is installed from Debian's packages if missing.
if ! command -v qemu-system-arm >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    { timeout 300 apt-get install -y -qq --no-install-recommends qemu-system-arm ||
        { timeout 120 apt-get update -qq && timeout 300 apt-get install -y -qq --no-install-recommends qemu-system-arm; }; } \
        >/dev/null 2>&1 || true
fi
if ! command -v qemu-system-arm >/dev/null 2>&1; then
    echo "SKIPPED: firmware under QEMU (qemu-system-arm unavailable)"
    exit 0
fi
(cd examples/firmware && cargo build --release --features qemu)
timeout 120 qemu-system-arm -machine netduinoplus2 -nographic \
    -semihosting-config enable=on,target=native -kernel "$elf"
echo "firmware under QEMU: limits held"
