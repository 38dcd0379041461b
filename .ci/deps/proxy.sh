#!/usr/bin/env bash
# The real clients and peers of `throttle proxy`'s tests, CI step and benchmark (Debian
# packages): iperf3 (-P 8 -J: per-stream rates), socat and netcat-openbsd (half-close),
# curl (an HTTP download through the proxy), chromium (the status page in a real headless
# browser), nginx + libnginx-mod-stream (the reference proxy of the benchmark). Installs what
# is missing when it can (root + apt-get); otherwise prints SKIPPED for what is missing, and
# the tests that need it print SKIPPED instead of running.
need=()
command -v iperf3 >/dev/null 2>&1 || need+=(iperf3)
command -v socat >/dev/null 2>&1 || need+=(socat)
command -v nc >/dev/null 2>&1 || need+=(netcat-openbsd)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v chromium >/dev/null 2>&1 || need+=(chromium fonts-dejavu-core)
{ command -v nginx >/dev/null 2>&1 && ls /usr/lib/nginx/modules/ngx_stream_module.so >/dev/null 2>&1; } ||
    need+=(nginx libnginx-mod-stream)
if [[ ${#need[@]} -eq 0 ]]; then
    exit 0
fi
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "-- installing ${need[*]} (apt-get)"
    # nginx's package may try to start a service on port 80; the tests never use it.
    if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; then
        exit 0
    fi
fi
echo "SKIPPED: could not install ${need[*]} (the proxy tests that need them will say SKIPPED)"
exit 0
