#!/usr/bin/env bash
# throttle proxy's figures with real clients (iperf3) and against nginx's stream proxy:
# installs what is missing (.ci/deps/proxy.sh: iperf3, nginx + libnginx-mod-stream, ...),
# builds the release binary, runs benches/proxy_bench.rs, then the keyed-node memory figure
# (benches/keyed_memory.rs). Arguments go to proxy_bench, e.g.
#   bash throttle-cli/benches/proxy_bench.sh --secs 10
set -euo pipefail
cd "$(dirname "$0")/../.."
bash .ci/deps/proxy.sh
command -v iperf3 >/dev/null 2>&1 || { echo "SKIPPED: iperf3 not installed"; exit 0; }
cargo build --release -p throttle-cli
cargo bench -p throttle-cli --bench proxy_bench -- "$@"
cargo bench -p throttle-cli --bench keyed_memory
