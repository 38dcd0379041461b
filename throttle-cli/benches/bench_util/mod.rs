//! What the benchmarks of this crate share: finding the release binary they measure.

use std::path::{Path, PathBuf};

/// `target/release/throttle`, next to the bench's own executable
/// (`target/release/deps/NAME-HASH`).
pub(crate) fn throttle_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(Path::parent)
        .map(|d| d.join("throttle"))
        .filter(|p| p.exists())
        .expect("build the binary first: cargo build --release -p throttle-cli")
}
