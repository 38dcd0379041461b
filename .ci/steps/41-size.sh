#!/usr/bin/env bash
# Size as a guarded number. Run by .ci/run as `bash -euo pipefail .ci/steps/41-size.sh`.
#
# Builds for thumbv7em-none-eabihf (Cortex-M4F, release) and prints, for a tree of N = 2, 8
# and 32 nodes:
#  - flash: the `.text` of nostd-check's objects, whose `exercise` instantiates every operation
#    of a `FixedTree<N>` (the core is generic: its code is compiled where it is used, so these
#    objects hold it; compiler-builtins and non-generic helpers left in the core's rlib are not
#    counted), and the same with the sharing layer (`Shared` + `CsLock`) and the waiting
#    engine (`wait::Engine`, `poll_driver`) as an adapter drives them;
#  - RAM per node: the size of a `static FixedTree<N>` (and of the `Shared` around it) on the
#    target, divided by N (fixed overhead included, so small N pay more per node);
# the same two flash figures for N = 8 in a linked image (examples/firmware's size probes,
# src/bin/size_*.rs: what the design's "≤ 8 KiB for a small tree, linked image, every
# operation used" refers to); and for examples/firmware (8 connections, executor included):
# programmed flash, `.data` (what costs flash *and* RAM: the issue's target is ≤ 512 B) and RAM.
#
# Every figure is compared with .ci/size-baseline.txt; the step fails when one is more than
# 5 % above its baseline (and more than 32 B: a figure near 0 may move by an alignment), when
# one has no baseline, or when the firmware's `.data` exceeds 512 B whatever the baseline. After a change that moves a figure on purpose (a diet,
# a feature worth its bytes), rewrite the baseline and commit it with the change:
#
#     bash .ci/steps/41-size.sh --update-baseline
#
# It also fails when an empty limiter in a `static` (nostd-check's `RAM_SHARED`, the embassy
# `EMBASSY_LIMITER`) is not in `.bss`: an empty limiter must be all zero bytes.
#
# Prints SKIPPED and exits 0 when the target cannot be installed or no size tool is found.
cd "$(dirname "$0")/../.."

BASELINE=.ci/size-baseline.txt
TOLERANCE_PERCENT=5
TOLERANCE_MIN_BYTES=32
# Hard ceilings, whatever the baseline says (issue 14's target).
declare -A CEILING=([firmware_data]=512)
NODE_COUNTS=(2 8 32)
TARGET=thumbv7em-none-eabihf

update=false
case "${1:-}" in
"") ;;
--update-baseline) update=true ;;
*)
    echo "usage: bash .ci/steps/41-size.sh [--update-baseline]" >&2
    exit 2
    ;;
esac

if ! rustup target add "$TARGET"; then
    echo "SKIPPED: size ($TARGET target unavailable: rustup target add failed)"
    exit 0
fi

# The one place that finds a size tool able to read ARM ELF objects: the toolchain's own
# llvm-size (rustup component llvm-tools), one on PATH, or a binutils `size` built for every
# target; `-A` (sysv format: one line per section) works the same in all of them.
find_size_tool() {
    local host sysroot_size
    host=$(rustc -vV | sed -n 's/^host: //p')
    sysroot_size="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-size"
    if [[ -x "$sysroot_size" ]]; then
        echo "$sysroot_size"
    elif command -v llvm-size >/dev/null 2>&1; then
        command -v llvm-size
    elif command -v size >/dev/null 2>&1 && size --help 2>&1 | grep -q 'elf32-little'; then
        command -v size
    elif rustup component add llvm-tools >&2 && [[ -x "$sysroot_size" ]]; then
        echo "$sysroot_size"
    fi
}
SIZE_TOOL=$(find_size_tool)
if [[ -z "$SIZE_TOOL" ]]; then
    echo "SKIPPED: size (no llvm-size or ELF-capable size available)"
    exit 0
fi
echo "size tool: $SIZE_TOOL"

target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
rlib="$target_dir/$TARGET/release/libnostd_check.rlib"

# Sections of the rlib's objects, `-A` format ("name size addr"), one file per build.
rlib_sections() {
    local tmp
    tmp=$(mktemp -d)
    (cd "$tmp" && ar x "$rlib")
    shopt -s nullglob
    local objs=("$tmp"/*.o)
    shopt -u nullglob
    if [[ ${#objs[@]} -eq 0 ]]; then
        echo "no object files in $rlib" >&2
        rm -rf "$tmp"
        return 1
    fi
    "$SIZE_TOOL" -A "${objs[@]}"
    rm -rf "$tmp"
}

# Sum of `.text` and `.text.*` (one section per function).
text_of() { awk '$1 ~ /^\.text(\.|$)/ { s += $2 } END { print s + 0 }'; }
# Size of the static whose mangled name contains $1 (`.data.*`, `.bss.*` or `.rodata.*`).
static_of() { awk -v name="$1" 'index($1, name) && $1 ~ /^\.(data|bss|rodata)\./ { print $2; exit }'; }

declare -A figure
labels=()
# record KEY VALUE LABEL
record() {
    figure[$1]=$2
    labels+=("$1|$3")
}

for n in "${NODE_COUNTS[@]}"; do
    NOSTD_CHECK_NODES=$n cargo build -q -p nostd-check --release --target "$TARGET"
    sections=$(rlib_sections)
    tree=$(static_of RAM_TREE <<<"$sections")
    [[ -n "$tree" ]] || { echo "FAIL: no RAM_TREE section in $rlib"; exit 1; }
    record "core_text_n$n" "$(text_of <<<"$sections")" "flash: core, every operation of FixedTree<$n> (.text)"
    record "tree_ram_per_node_n$n" $(((tree + n - 1) / n)) "RAM per node: static FixedTree<$n> = $tree B / $n"

    NOSTD_CHECK_NODES=$n cargo build -q -p nostd-check --release --target "$TARGET" --features shared
    sections=$(rlib_sections)
    shared=$(static_of RAM_SHARED <<<"$sections")
    [[ -n "$shared" ]] || { echo "FAIL: no RAM_SHARED section in $rlib"; exit 1; }
    # An empty limiter is all zero bytes, so a `static` one is zeroed RAM (`.bss`), not a
    # flash image copied to RAM (`.data`, paid twice): `node::Link`, `Config`'s encoding.
    for name in RAM_SHARED EMBASSY_LIMITER; do
        if ! grep -q "^\.bss\..*$name" <<<"$sections"; then
            echo "FAIL: static $name (an empty limiter) is not in .bss:"
            grep "$name" <<<"$sections" || true
            exit 1
        fi
    done
    record "shared_text_n$n" "$(text_of <<<"$sections")" "flash: core + sharing layer (Shared<CsLock>) + waiting engine, every operation, N = $n (.text)"
    record "shared_ram_per_node_n$n" $(((shared + n - 1) / n)) "RAM per node with the sharing layer: static Shared<FixedTree<$n>> = $shared B / $n"
done

# The example firmware and its size probes (its own workspace and target dir; target and
# linker script come from its .cargo/config.toml). Default features: the QEMU report (feature
# `qemu`) is not counted.
(cd examples/firmware && cargo build -q --release)
# Its target dir as cargo resolves it (CARGO_TARGET_DIR, when set, wins over examples/firmware/target).
fw_target_dir=$(cd examples/firmware && cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bins=$fw_target_dir/$TARGET/release

# Linked images (the firmware's profile: opt-level "s", LTO, one codegen unit): the same
# `exercise` functions as above in a binary, minus an empty one with the same start-up. Unlike
# the rlib figures this counts what a firmware really pays: non-generic code of the core,
# compiler-builtins (u64/u128 division, memcpy), and nothing that LTO can drop.
elf_text() { "$SIZE_TOOL" -A "$1" | awk '$1 == ".text" { print $2 + 0 }'; }
empty=$(elf_text "$bins/size_empty")
record core_linked_text_n8 $(($(elf_text "$bins/size_core") - empty)) "flash: core, every operation of FixedTree<8>, linked (opt-level s, LTO; .text minus an empty firmware)"
record shared_linked_text_n8 $(($(elf_text "$bins/size_shared") - empty)) "flash: core + sharing layer + waiting engine, every operation, N = 8, linked (as above)"

elf=$bins/throttle-firmware
read -r vt text ro data bss < <("$SIZE_TOOL" -A "$elf" | awk '
    $1 == ".vector_table" { vt = $2 } $1 == ".text" { text = $2 } $1 == ".rodata" { ro = $2 }
    $1 == ".data" { data = $2 } $1 == ".bss" { bss = $2 }
    END { print vt + 0, text + 0, ro + 0, data + 0, bss + 0 }')
echo "firmware sections: .vector_table $vt, .text $text, .rodata $ro, .data $data, .bss $bss"
record firmware_flash $((vt + text + ro + data)) "firmware: programmed flash (.vector_table + .text + .rodata + .data image)"
record firmware_data "$data" "firmware: .data (initialised statics: paid in flash and RAM; target ≤ 512)"
record firmware_ram $((data + bss)) "firmware: static RAM (.data + .bss)"

if $update; then
    {
        echo "# Size baseline of .ci/steps/41-size.sh (bytes, $TARGET, release). CI fails when a"
        echo "# figure grows more than ${TOLERANCE_PERCENT} % above it. Rewrite on purpose, with the change"
        echo "# that moves it: bash .ci/steps/41-size.sh --update-baseline"
        echo "# Written $(date -u +%Y-%m-%d) with $(rustc -V)."
        for entry in "${labels[@]}"; do
            key=${entry%%|*}
            echo "$key ${figure[$key]}"
        done
    } >"$BASELINE"
    echo "baseline written to $BASELINE:"
    grep -v '^#' "$BASELINE"
    exit 0
fi

declare -A base
if [[ -f "$BASELINE" ]]; then
    while read -r key value; do
        [[ -z "$key" || "$key" == \#* ]] && continue
        base[$key]=$value
    done <"$BASELINE"
fi

failed=0
printf '%-24s %8s %9s %8s  %s\n' key bytes baseline change what
for entry in "${labels[@]}"; do
    key=${entry%%|*}
    label=${entry#*|}
    value=${figure[$key]}
    ref=${base[$key]:-}
    if [[ -z "$ref" ]]; then
        verdict="NO BASELINE"
        failed=1
        change="-"
    else
        # the printed change is rounded; the check below is exact integer arithmetic
        change=$(awk -v v="$value" -v b="$ref" 'BEGIN { if (b == 0) print (v == 0 ? "0.0%" : "new"); else printf "%+.1f%%", 100 * (v - b) / b }')
        if ((value * 100 > ref * (100 + TOLERANCE_PERCENT) && value > ref + TOLERANCE_MIN_BYTES)); then
            verdict="OVER +${TOLERANCE_PERCENT} %"
            failed=1
        else
            verdict=ok
        fi
    fi
    ceiling=${CEILING[$key]:-}
    if [[ -n "$ceiling" ]] && ((value > ceiling)); then
        verdict="$verdict, OVER THE CEILING OF $ceiling B"
        failed=1
    fi
    printf '%-24s %8d %9s %8s  %s [%s]\n' "$key" "$value" "${ref:--}" "$change" "$label" "$verdict"
done
if ((failed)); then
    echo "FAIL: a size grew more than ${TOLERANCE_PERCENT} % above $BASELINE, has no baseline, or is over its ceiling."
    echo "If the growth is deliberate, run 'bash .ci/steps/41-size.sh --update-baseline' and commit"
    echo "the new baseline with the change, saying what the bytes buy."
    exit 1
fi
echo "sizes within ${TOLERANCE_PERCENT} % of $BASELINE"
