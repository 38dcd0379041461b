//! Replays every file in `fuzz/regressions/` through the `ops` harness on the stable toolchain
//! (`cargo test` from `fuzz/`), decoding it exactly as the fuzz target does. An input that runs
//! longer than 10 s fails as a hang.

use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};

#[test]
fn regressions_replay() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("fuzz/regressions/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut failed = Vec::new();
    for path in files {
        let bytes = std::fs::read(&path).expect("readable file");
        // libfuzzer-sys decodes a typed input with `arbitrary_take_rest` and skips inputs
        // that do not decode; so does this.
        let Ok(input) = throttle_fuzz::Input::arbitrary_take_rest(Unstructured::new(&bytes)) else {
            continue;
        };
        eprintln!("replaying {}", path.display());
        let (tx, rx) = mpsc::channel();
        // a hung input leaves its thread behind; the test fails anyway
        thread::spawn(move || {
            let ok = std::panic::catch_unwind(|| throttle_fuzz::run(&input)).is_ok();
            let _ = tx.send(ok);
        });
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(true) => {}
            Ok(false) => failed.push(format!("{}: panicked", path.display())),
            Err(_) => failed.push(format!("{}: hung (> 10 s)", path.display())),
        }
    }
    assert!(
        failed.is_empty(),
        "regressions failed:\n{}",
        failed.join("\n")
    );
}
