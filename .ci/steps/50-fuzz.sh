#!/usr/bin/env bash
# Fuzz smoke (nightly + cargo-fuzz; fuzz/ is its own workspace, see fuzz/README.md): replays
# every input in fuzz/regressions/, then fuzzes the `ops` target for 45 s from its local corpus.
# Any crash, failed oracle or hang (> 10 s per input) fails the step. `-s none`: the core is
# forbid(unsafe_code), AddressSanitizer would only halve the throughput.
fuzz_smoke() {
    if ! cargo +nightly --version >/dev/null 2>&1 ||
        ! { cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked; }; then
        echo "SKIPPED: fuzz smoke (nightly or cargo-fuzz unavailable)"
        return 0
    fi
    cargo +nightly --version
    cargo fuzz --version
    (
        cd fuzz
        shopt -s nullglob
        regressions=(regressions/*)
        if [[ ${#regressions[@]} -gt 0 ]]; then
            echo "replaying ${#regressions[@]} regression input(s)"
            cargo +nightly fuzz run -s none ops "${regressions[@]}" -- -timeout=10
        fi
        cargo +nightly fuzz run -s none ops -- -max_total_time=45 -timeout=10 -rss_limit_mb=2048
    )
}


fuzz_smoke
