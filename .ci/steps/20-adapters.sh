#!/usr/bin/env bash
# Adapters: the workspace run builds throttle-io with every feature at once (smol and
# async-std turn them on), so check each feature combination alone here; cfg mistakes
# (an import only one feature uses) hide otherwise. The conformance suite itself runs in the
# workspace test run (tests/conformance).
cd "$(dirname "$0")/../.."

for features in "" "futures-io" "async-io"; do
    echo "-- throttle-io features: [${features}]"
    cargo clippy -p throttle-io --all-targets --no-default-features --features "$features" -- -D warnings
done
