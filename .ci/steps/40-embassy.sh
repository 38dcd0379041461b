#!/usr/bin/env bash
# The embassy adapter beyond the workspace test run. Run by .ci/run as
# `bash -euo pipefail .ci/steps/40-embassy.sh`.
#  1. its host tests in release: the debug build of embassy-net carries only ~5-15 MiB/s over
#     the in-process link, so `write_10mib_per_s_...` scales its rate down there; in release
#     the link carries ~1 GiB/s and the test runs at the real 10 MiB/s;
#  2. examples/firmware (its own workspace) built for thumbv7em-none-eabihf in release, and its
#     flash (.text+.rodata) and RAM (.data+.bss) use printed. Needs the target (prints
#     SKIPPED and exits 0 without it) and llvm-size or an ELF-capable size.
cd "$(dirname "$0")/../.."

# 1.
log=$(mktemp)
rc=0
cargo test -p throttle-embassy --release --test net -- --nocapture >"$log" 2>&1 || rc=$?
grep -E '^(test |raw link|10 MiB|write |read |fair|aggregate|limit change|cancel)|test result' "$log" || true
if [[ $rc -ne 0 ]]; then
    cat "$log"
    echo "throttle-embassy release tests failed (exit $rc)"
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
elf=examples/firmware/target/$target/release/throttle-firmware

host=$(rustc -vV | sed -n 's/^host: //p')
sysroot_size="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-size"
size_tool=""
if [[ -x "$sysroot_size" ]]; then
    size_tool=$sysroot_size
elif command -v llvm-size >/dev/null 2>&1; then
    size_tool=$(command -v llvm-size)
elif command -v size >/dev/null 2>&1 && size --help 2>&1 | grep -q 'elf32-little'; then
    size_tool=$(command -v size)
elif rustup component add llvm-tools && [[ -x "$sysroot_size" ]]; then
    size_tool=$sysroot_size
fi
if [[ -z "$size_tool" ]]; then
    echo "SKIPPED: firmware size (no llvm-size or ELF-capable size available)"
    exit 0
fi

"$size_tool" -A "$elf" | awk -v tool="$size_tool" '
    $1 == ".vector_table" { vt = $2 }
    $1 == ".text" { text = $2 }
    $1 == ".rodata" { ro = $2 }
    $1 == ".data" { data = $2 }
    $1 == ".bss" { bss = $2 }
    END {
        printf "firmware (8 throttled connections, 1 server limit) on thumbv7em-none-eabihf, release [%s]:\n", tool
        printf "  flash: %d bytes (.text %d + .rodata %d; + .vector_table %d + .data load image %d = %d programmed)\n", text + ro, text, ro, vt, data, vt + text + ro + data
        printf "  RAM:   %d bytes (.data %d + .bss %d; the static Limiter<18> is in .data)\n", data + bss, data, bss
    }'

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
