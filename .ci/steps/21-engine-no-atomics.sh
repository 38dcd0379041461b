#!/usr/bin/env bash
# The waiting engine (throttle-core/src/wait.rs) caches "this path is unlimited" against a
# lock-free change counter, an AtomicU32 where the target has 32-bit atomics; without them
# (thumbv6m: Cortex-M0/M0+) `sync::Changes` falls back to asking under the lock. The workspace
# builds never compile that fallback: build the core and the embassy adapter for thumbv6m here
# so that a cfg mistake fails CI. ~20 s; SKIPPED when the target cannot be installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
target=thumbv6m-none-eabi
if ! rustup target add "$target"; then
    echo "SKIPPED: $target unavailable (rustup target add failed)"
    exit 0
fi
cargo build -p throttle-core --release --target "$target" --no-default-features --features critical-section
cargo build -p throttle-embassy --release --target "$target"
echo "ok: throttle-core and throttle-embassy build for $target (no 32-bit atomic read-modify-write)"
