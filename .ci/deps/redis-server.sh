#!/usr/bin/env bash
# redis-server (Debian package) for throttle-redis's tests, demo and CI step: each test
# starts its own server on a free port (never the one on 6379) and kills it. Installs the
# package when missing and possible (root + apt-get); otherwise prints SKIPPED, and the
# tests that need it print "SKIPPED: redis-server not found" instead of running.
if command -v redis-server >/dev/null 2>&1; then
    exit 0
fi
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "-- installing redis-server (apt-get)"
    if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; then
        # The package may start a system service on 6379; the tests never use it.
        command -v redis-server >/dev/null 2>&1 && exit 0
    fi
fi
echo "SKIPPED: redis-server not installed and cannot be installed here (throttle-redis tests will say SKIPPED)"
exit 0
