#!/usr/bin/env bash
# The minimum supported Rust version is true: the published crates build on the toolchain their
# `rust-version` names. Run by .ci/run as `bash -euo pipefail .ci/steps/71-msrv.sh`.
#  - the workspace's `rust-version` (root Cargo.toml, [workspace.package]; heapless 0.9 sets
#    the floor): every published crate but throttle-redis, every feature on, plus the core
#    with no feature at all (the no_std, no-alloc build an MCU uses);
#  - throttle-redis's own `rust-version` (redis-rs 1.x needs a newer one), every feature on.
# Against the committed Cargo.lock (`--locked`): the versions CI and contributors build. A
# rust-version below the truth fails here (1.86 does: heapless 0.9.3 requires rustc 1.87).
# Warnings are not errors on purpose: lints differ between compiler versions.
# The toolchains are installed with rustup's minimal profile (rustc, cargo, std: ~15 s each);
# SKIPPED when rustup cannot install one. Own target dir: an old rustc cannot read the
# current one's artifacts. About 2 minutes the first time on 2 cores, seconds after that.
cd "$(dirname "$0")/../.."

# rust-version = "X.Y" from the first [package]/[workspace.package] line of a manifest
rust_version_of() { sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' "$1" | head -n 1; }

workspace_msrv=$(rust_version_of Cargo.toml)
redis_msrv=$(rust_version_of adapters/throttle-redis/Cargo.toml)
if [[ -z "$workspace_msrv" || -z "$redis_msrv" ]]; then
    echo "FAIL: no rust-version found (workspace: '$workspace_msrv', throttle-redis: '$redis_msrv')"
    exit 1
fi

install() {
    rustup toolchain install "$1" --profile minimal --no-self-update >/dev/null 2>&1 ||
        rustup toolchain install "$1" --profile minimal
}

if ! install "$workspace_msrv"; then
    echo "SKIPPED: MSRV check (rustup could not install Rust $workspace_msrv)"
    exit 0
fi
echo "-- Rust $workspace_msrv ($(rustc +"$workspace_msrv" -V)): published crates, every feature"
cargo +"$workspace_msrv" check --locked --target-dir target/msrv \
    -p throttle-core -p throttle-io -p throttle-tokio -p throttle-smol -p throttle-async-std \
    -p throttle-embassy -p throttle-spec -p throttle-cli -p throttle-tower --all-features
echo "-- Rust $workspace_msrv: throttle-core without features (no_std, no alloc)"
cargo +"$workspace_msrv" check --locked --target-dir target/msrv -p throttle-core --no-default-features

if ! install "$redis_msrv"; then
    echo "SKIPPED: MSRV check of throttle-redis (rustup could not install Rust $redis_msrv)"
    exit 0
fi
echo "-- Rust $redis_msrv ($(rustc +"$redis_msrv" -V)): throttle-redis, every feature"
cargo +"$redis_msrv" check --locked --target-dir target/msrv -p throttle-redis --all-features
echo "MSRV: Rust $workspace_msrv (throttle-redis: $redis_msrv) builds every published crate"
