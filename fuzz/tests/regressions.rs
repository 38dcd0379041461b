//! Replays every file in `fuzz/regressions/<target>/` through that target's harness (`ops`,
//! `bucket`) on the stable toolchain (`cargo test` from `fuzz/`), decoding it exactly as the
//! fuzz target does. An input that runs longer than 10 s fails as a hang. A file directly in
//! `fuzz/regressions/`, or a directory named after no target, fails the test (it would
//! otherwise never be replayed).

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};

/// Decodes `bytes` as the target's input and runs it; `None` when the bytes do not decode
/// (libfuzzer-sys skips such inputs too).
type Replay = fn(Vec<u8>) -> Option<Box<dyn FnOnce() + Send>>;

fn ops(bytes: Vec<u8>) -> Option<Box<dyn FnOnce() + Send>> {
    let input = throttle_fuzz::Input::arbitrary_take_rest(Unstructured::new(&bytes)).ok()?;
    Some(Box::new(move || throttle_fuzz::run(&input)))
}

fn bucket(bytes: Vec<u8>) -> Option<Box<dyn FnOnce() + Send>> {
    let input =
        throttle_fuzz::bucket::BucketInput::arbitrary_take_rest(Unstructured::new(&bytes)).ok()?;
    Some(Box::new(move || throttle_fuzz::bucket::run(&input)))
}

const TARGETS: &[(&str, Replay)] = &[("ops", ops), ("bucket", bucket)];

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.expect("readable entry").path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn regressions_replay() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
    let mut failed = Vec::new();
    for entry in std::fs::read_dir(&root).expect("fuzz/regressions/ exists") {
        let path = entry.expect("readable entry").path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        if !path.is_dir() || !TARGETS.iter().any(|(t, _)| *t == name) {
            failed.push(format!(
                "{}: not in a target's directory (regressions/<target>/<name>, targets: {})",
                path.display(),
                TARGETS
                    .iter()
                    .map(|(t, _)| *t)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    let mut replayed = 0;
    for &(target, replay) in TARGETS {
        for path in files_in(&root.join(target)) {
            let bytes = std::fs::read(&path).expect("readable file");
            let Some(f) = replay(bytes) else {
                eprintln!("skipping {} (does not decode)", path.display());
                continue;
            };
            eprintln!("replaying {} ({target})", path.display());
            replayed += 1;
            let (tx, rx) = mpsc::channel();
            // a hung input leaves its thread behind; the test fails anyway
            thread::spawn(move || {
                let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_ok();
                let _ = tx.send(ok);
            });
            match rx.recv_timeout(Duration::from_secs(10)) {
                Ok(true) => {}
                Ok(false) => failed.push(format!("{} ({target}): panicked", path.display())),
                Err(_) => failed.push(format!("{} ({target}): hung (> 10 s)", path.display())),
            }
        }
    }
    eprintln!("{replayed} regression input(s) replayed");
    assert!(
        failed.is_empty(),
        "regressions failed:\n{}",
        failed.join("\n")
    );
}
