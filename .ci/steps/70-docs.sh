#!/usr/bin/env bash
# API docs build without a warning (broken or private intra-doc links, bad code blocks, …).
# Run by .ci/run as `bash -euo pipefail .ci/steps/70-docs.sh`; fails on the first warning.
#  1. the workspace with its default features (features unified across members, as
#     `cargo doc --workspace` builds it for a contributor);
#  2. the workspace with every feature (what docs.rs builds: `all-features = true` in each
#     published crate's [package.metadata.docs.rs]). nostd-check is left out: its
#     `panic-handler` feature is its own std-leak proof and fails next to std on purpose;
#  3. each published library alone with its own default features: a link to an item behind a
#     feature that only another member turns on breaks there and nowhere else;
#  4. no tracked file points outside the repository (a clone has nothing beside it): no
#     `../shared/` path, no absolute path of a development machine's work tree;
#  5. the published crates package (`cargo package --no-verify`, nothing uploaded): every
#     dependency has a version, the metadata crates.io requires is there. throttle-cli (the
#     `throttle` binary, the demo included) only in the same call as the libraries it uses:
#     alone, cargo would look for them on crates.io;
#  6. optional, when a nightly toolchain is installed: the libraries as docs.rs builds them
#     (nightly rustdoc, `--cfg docsrs`, every feature), so `feature(doc_cfg)` in each lib.rs and
#     the feature badges it derives from `#[cfg]` still compile without a warning; otherwise
#     `SKIPPED`. Never installs nightly; ~1 minute the first time (nightly builds the
#     dependencies' metadata again), seconds after that.
# `--no-deps`: the dependencies' docs are theirs. About a minute after the test build.
cd "$(dirname "$0")/../.."
export RUSTDOCFLAGS="-D warnings"

echo "-- cargo doc --workspace --no-deps (default features)"
cargo doc -q --workspace --no-deps
echo "-- cargo doc --workspace --no-deps --all-features (without nostd-check)"
cargo doc -q --workspace --exclude nostd-check --no-deps --all-features
for crate in throttle-core throttle-io throttle-tokio throttle-smol throttle-async-std \
    throttle-embassy throttle-spec throttle-redis throttle-tower; do
    echo "-- cargo doc -p $crate --no-deps (its default features alone)"
    cargo doc -q -p "$crate" --no-deps
done
echo "-- no tracked file points outside the repository"
if git grep -nIE '\.\./shared/|/work/(shared|main|wt-)' -- . ':!.ci/steps/70-docs.sh'; then
    echo "FAIL: the lines above point outside the repository; say it in the repository instead"
    exit 1
fi
echo "-- every published library shows its feature badges on docs.rs"
for lib in throttle-core throttle-spec adapters/throttle-{io,tokio,smol,async-std,embassy,redis,tower}; do
    if ! grep -q '^#!\[cfg_attr(docsrs, feature(doc_cfg))\]' "$lib/src/lib.rs"; then
        echo "FAIL: $lib/src/lib.rs lacks #![cfg_attr(docsrs, feature(doc_cfg))]"
        exit 1
    fi
done
echo "-- cargo package --no-verify (published crates)"
cargo package -q --no-verify --allow-dirty -p throttle-core -p throttle-io -p throttle-tokio \
    -p throttle-smol -p throttle-async-std -p throttle-embassy -p throttle-spec -p throttle-redis \
    -p throttle-tower -p throttle-cli \
    2>&1 | { grep -v -e 'manifest has no documentation, homepage or repository' -e '^ *|$' \
    -e 'note: see https://doc.rust-lang.org/cargo/reference/manifest.html#package-metadata' || true; }
if command -v rustup >/dev/null && rustup toolchain list | grep -q '^nightly'; then
    echo "-- docs.rs build: cargo +nightly doc --no-deps --all-features, --cfg docsrs ($(rustc +nightly -V))"
    RUSTDOCFLAGS="--cfg docsrs -D warnings" cargo +nightly doc -q --no-deps --all-features \
        -p throttle-core -p throttle-io -p throttle-tokio -p throttle-smol -p throttle-async-std \
        -p throttle-embassy -p throttle-spec -p throttle-redis -p throttle-tower
else
    echo "SKIPPED: the docs.rs build with --cfg docsrs (no nightly toolchain installed)"
fi
echo "docs: no warnings, no pointer outside the repository; the published crates package"
