//! Ending the process the Unix way after cleaning up: a closed output pipe kills the process
//! by SIGPIPE (the shell sees 141, `set -o pipefail` scripts behave as with `cat`), ^C by
//! SIGINT. Rust ignores SIGPIPE at start; `signal_hook::low_level::emulate_default_handler`
//! restores the default action and raises the signal, without `unsafe`.

use signal_hook::consts::{SIGINT, SIGPIPE, SIGTERM};

/// Dies by `signal` (after the caller cleaned up). Falls back to exit code 128 + signal if
/// the signal could not be raised.
pub(crate) fn die_by(signal: i32) -> ! {
    let _ = signal_hook::low_level::emulate_default_handler(signal);
    std::process::exit(128 + signal)
}

/// SIGPIPE's number.
pub(crate) const PIPE: i32 = SIGPIPE;
/// SIGINT's number.
pub(crate) const INT: i32 = SIGINT;
/// SIGTERM's number.
pub(crate) const TERM: i32 = SIGTERM;
