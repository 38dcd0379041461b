#!/usr/bin/env bash
# The sharing layer on an MCU: throttle-core with `critical-section` (CsLock) for a target
# without std and without 64-bit atomics. SKIPPED when the target cannot be installed.
cd "$(dirname "$0")/../.."
target=thumbv7em-none-eabihf
if ! rustup target add "$target"; then
    echo "SKIPPED: $target unavailable (rustup target add failed)"
    exit 0
fi
cargo build -p throttle-core --release --target "$target" --no-default-features --features critical-section
