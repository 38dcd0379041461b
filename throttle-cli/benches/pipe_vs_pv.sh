#!/usr/bin/env bash
# throttle pipe against pv (and cat): installs Debian's pv when missing (apt-get, as root),
# builds the release binary and runs benches/pipe_vs_pv.rs. Arguments go to the bench, e.g.
#   bash throttle-cli/benches/pipe_vs_pv.sh --secs 30
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v pv >/dev/null 2>&1; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        apt-get install -y pv >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y pv >/dev/null; }
    else
        echo "pv not installed and cannot install it here: measuring throttle alone"
    fi
fi
cargo build --release -p throttle-cli
cargo bench -p throttle-cli --bench pipe_vs_pv -- "$@"
