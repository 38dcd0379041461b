//! The data path: a plain thread doing blocking `read`/`write` on the raw descriptors (no
//! line buffering, no copies through a runtime's blocking pool), asking the limiter before
//! each write. The thread has its own current-thread tokio runtime for the waiting: the
//! limiter's driver task and timer run on it, inside the `block_on` that waits for a grant,
//! so one piece costs one thread wake-up (not a timer thread's and then this one's).
//!
//! ```text
//!   read(input, buf)  ──▶  while some of buf is left:
//!                             grant = block_on(leaf.poll_acquire(left))   (sleeps here)
//!                             written = write(stdout, grant bytes)
//!                             leaf.settle(written)
//! ```
//! The grant is asked for *after* the data is read and right before it is written, so a
//! writer blocked on a slow consumer holds at most one piece: the bucket cannot save more
//! than its burst meanwhile (no `pv -R` credit pile-up, a rate cut takes effect at the next
//! piece). A limit change wakes the sleeping `block_on` at once (the core's change notice).

use alloc::sync::Arc;
use core::future::poll_fn;
use core::sync::atomic::{AtomicU64, Ordering};
use std::fs::File;
use std::io::{self, Read, Write};

use throttle_tokio::{Leaf, Limits};
use tokio::runtime::Runtime;

/// Takes the initial bucket (the burst) so that the transfer starts at the limit, not at the
/// limit plus a burst.
async fn start_empty(leaf: &mut Leaf, limits: &Limits) {
    let burst = limits.tiers().iter().map(|t| t.burst()).min().unwrap_or(0);
    if burst > 0 && !limits.is_paused() {
        let _ = leaf.acquire(burst).await;
    }
}

/// One input: a name for messages and an open file (stdin is a dup of fd 0).
pub(crate) struct Input {
    pub(crate) name: String,
    pub(crate) file: File,
}

/// Why the copy stopped early.
#[derive(Debug)]
pub(crate) enum CopyError {
    /// Reading an input failed.
    Read(String, io::Error),
    /// Writing stdout failed (`BrokenPipe`: the reader went away).
    Write(io::Error),
    /// The thread's runtime could not be built.
    Runtime(io::Error),
}

/// The copy loop's state, moved to its thread.
pub(crate) struct Copier {
    pub(crate) inputs: Vec<Input>,
    pub(crate) out: File,
    pub(crate) leaf: Leaf,
    /// The node's limits at the start: their burst is taken before the first byte.
    pub(crate) limits: Limits,
    pub(crate) buffer: usize,
    /// Bytes written so far (read by the progress line).
    pub(crate) written: Arc<AtomicU64>,
}

impl Copier {
    /// Copies every input in order; returns when all are done or on the first error.
    pub(crate) fn run(mut self) -> Result<(), CopyError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(CopyError::Runtime)?;
        rt.block_on(start_empty(&mut self.leaf, &self.limits));
        let mut buf = vec![0u8; self.buffer.max(1)];
        let inputs = core::mem::take(&mut self.inputs);
        for mut input in inputs {
            loop {
                let n = match input.file.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(CopyError::Read(input.name, e)),
                };
                self.write_all(&rt, &buf[..n])?;
            }
        }
        Ok(())
    }

    /// Writes `data` piece by piece as the limiter grants it.
    fn write_all(&mut self, rt: &Runtime, mut data: &[u8]) -> Result<(), CopyError> {
        while !data.is_empty() {
            let want = data.len() as u64;
            let leaf = &mut self.leaf;
            let grant = rt
                .block_on(poll_fn(|cx| leaf.poll_acquire(cx, want)))
                .map_err(|e| CopyError::Write(io::Error::other(e)))?;
            let piece = usize::try_from(grant).unwrap_or(usize::MAX).min(data.len());
            match self.out.write(&data[..piece]) {
                Ok(0) => {
                    self.leaf.settle(0);
                    return Err(CopyError::Write(io::ErrorKind::WriteZero.into()));
                }
                Ok(w) => {
                    self.leaf.settle(w as u64);
                    self.written.fetch_add(w as u64, Ordering::Relaxed);
                    data = &data[w..];
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => self.leaf.settle(0),
                Err(e) => {
                    self.leaf.settle(0);
                    return Err(CopyError::Write(e));
                }
            }
        }
        Ok(())
    }
}
