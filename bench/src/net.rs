//! Loopback TCP plumbing: connected pairs on 127.0.0.1 (port 0) and an unthrottled pump.

use std::io;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::WRITE_CHUNK;

/// One connection seen from both ends: `server` writes (throttled), `client` reads (never).
#[derive(Debug)]
pub struct Pair {
    /// The accepted end; the writer under test wraps it.
    pub server: TcpStream,
    /// The connecting end; the meter reads it as fast as it can.
    pub client: TcpStream,
}

/// Opens `n` connected pairs through one listener on 127.0.0.1 with an OS-chosen port.
pub async fn pairs(n: usize) -> io::Result<Vec<Pair>> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let client = client?;
        let (server, _) = accepted?;
        out.push(Pair { server, client });
    }
    Ok(out)
}

/// Writes 64 KiB buffers into `w` until it fails (the reader hung up) and returns the bytes
/// written. The buffer content is irrelevant to every limiter under test.
pub async fn pump<W: AsyncWrite + Unpin>(mut w: W) -> u64 {
    let buf = vec![0x5a_u8; WRITE_CHUNK];
    let mut total = 0u64;
    while let Ok(n) = w.write(&buf).await {
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    total
}
