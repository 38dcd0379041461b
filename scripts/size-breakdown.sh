#!/usr/bin/env bash
# What each byte of the core's flash buys: the linked size probes of examples/firmware
# (`size_core`: every operation of a `FixedTree<8>`; `size_shared`: the same plus the sharing
# layer), function by function, summed by the part of the core they belong to. The totals are
# the `core_linked_text_n8` / `shared_linked_text_n8` figures of .ci/steps/41-size.sh (the
# probe's `.text` minus an empty firmware's); this script says where they go.
#
#     bash scripts/size-breakdown.sh            # both probes, by part
#     bash scripts/size-breakdown.sh --functions # and every function over 64 B
#
# Needs the thumbv7em-none-eabihf target and rustup's llvm-tools (installed if missing).
# Functions the compiler inlined into the probe's `main` (the public operations: insert,
# acquire, settle, cancel, set_limit, stats...) are one line, "public operations, inlined".
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=thumbv7em-none-eabihf
functions=false
[[ "${1:-}" == --functions ]] && functions=true

rustup target add "$TARGET" >/dev/null
rustup component add llvm-tools >/dev/null 2>&1 || true
host=$(rustc -vV | sed -n 's/^host: //p')
bin="$(rustc --print sysroot)/lib/rustlib/$host/bin"
[[ -x "$bin/llvm-nm" ]] || { echo "no llvm-nm (rustup component add llvm-tools)" >&2; exit 1; }

(cd examples/firmware && cargo build -q --release --bin size_core --bin size_shared --bin size_empty)
out=examples/firmware/target/$TARGET/release

text_of() { "$bin/llvm-size" -A "$1" | awk '$1 == ".text" { print $2 + 0 }'; }

# part FUNCTION-NAME: which part of the core (or of the image) a function belongs to.
classify() {
    awk '
    function part(name) {
        if (name ~ /__cortex_m_rt_main/) return "public operations, inlined into the probe"
        if (name ~ /throttle_core::sched::/) return "scheduler (sched.rs: eligibility, pull walk, held turns)"
        if (name ~ /throttle_core::fairq::/) return "fair queue (fairq.rs)"
        if (name ~ /throttle_core::timers::/) return "timer heap (timers.rs)"
        if (name ~ /throttle_core::lists::/) return "roots and ready lists (lists.rs)"
        if (name ~ /throttle_core::(bucket|limits)::/) return "token buckets and limits (bucket.rs, limits.rs)"
        if (name ~ /throttle_core::window::/) return "sliding windows (window.rs)"
        if (name ~ /throttle_core::muldiv::/) return "128-bit division (muldiv.rs)"
        if (name ~ /throttle_core::(tree|config|node|storage|earliest)::/) return "tree operations and config (tree.rs, config.rs)"
        if (name ~ /throttle_core::(shared|wait)::/) return "sharing layer and waiting engine (shared.rs, wait.rs)"
        if (name ~ /critical_section|cortex_m::/) return "critical section (cortex-m)"
        if (name ~ /^(__aeabi_|__udiv|__umod|compiler_builtins::)/) return "compiler built-ins (64-bit division, memcpy, memset)"
        if (name ~ /^(core::|__rustc::)/) return "core library (panic and bounds-check stubs, closures)"
        if (name ~ /^(Reset|main|__pre_init|DefaultHandler|HardFault|DefaultPreInit|__cortex_m_rt_|rust_begin_unwind|panic_halt|core::panicking)/) return "start-up and panic (also in the empty image)"
        return "other: " name
    }
    { size = strtonum("0x" $2); if (size == 0) next; $1 = ""; $2 = ""; $3 = ""; sub(/^ +/, ""); print size "\t" part($0) "\t" $0 }'
}

report() {
    local probe=$1
    local total empty
    total=$(text_of "$out/$probe")
    empty=$(text_of "$out/size_empty")
    echo "== $probe: .text $total B, empty firmware $empty B, difference $((total - empty)) B"
    local rows
    rows=$("$bin/llvm-nm" --size-sort -S -C "$out/$probe" | awk '$3 ~ /^[tTwW]$/' | classify)
    awk -F'\t' '{ s[$2] += $1; t += $1 } END { for (p in s) printf "%7d  %5.1f %%  %s\n", s[p], 100 * s[p] / t, p; }' <<<"$rows" | sort -rn
    echo "  (sizes of symbols; alignment padding between functions makes up the rest of .text)"
    if $functions; then
        echo "  -- functions over 64 B:"
        awk -F'\t' '$1 > 64 { printf "%7d  %s\n", $1, $3 }' <<<"$rows" | sort -rn | sed 's/::h[0-9a-f]\{16\}$//'
    fi
    echo
}

report size_core
report size_shared
