//! Example firmware: a Cortex-M4F serving 8 connections under one server limit with
//! `throttle-embassy`.
//!
//! - `LIMITER` holds a limiter with fixed-capacity storage: 2 nodes for the server (read,
//!   write) + 2 leaves per connection = 18 slots. It is a plain `static`: an empty limiter is
//!   all zero bytes, so it lands in `.bss` (zeroed at reset) and costs RAM only, no flash
//!   image (`.ci/steps/41-size.sh` fails when the firmware's `.data` grows past 512 B).
//!   `SERVER` holds the server limit, the per-connection limit and the registry of live
//!   connections: a [`StaticCell`] filled once at the start of `main`, as its limits are
//!   built at run time.
//! - 8 connection tasks each register a stream with the server and serve requests (read a
//!   request, write a 4 KiB response), sharing the server limit fairly.
//! - A task changes the server limit every 5 s (256 KiB/s ↔ 1 MiB/s): sleeping connections
//!   see it at once.
//!
//! The streams are [`Dummy`] `embedded-io-async` streams, not embassy-net `TcpSocket`s: a NIC
//! driver and board support crate would dominate the build and the size figures. The adapter
//! code is the same for a `TcpSocket` (it only needs `Read + Write`).
//!
//! Build: `cargo build --release` here (target and linker script come from
//! `.cargo/config.toml`). Run on an emulated STM32F405:
//! `cargo build --release --features qemu && qemu-system-arm -machine netduinoplus2 -nographic
//! -semihosting-config enable=on,target=native -kernel target/thumbv7em-none-eabihf/release/throttle-firmware`
//! prints the rate of every connection each second and exits 0 if the limits held.

#![no_std]
#![no_main]

#[cfg(feature = "qemu")]
mod report;
mod time_driver;

use core::convert::Infallible;
use core::sync::atomic::{AtomicU32, Ordering};

use embassy_executor::Spawner;
use embassy_time::Timer;
use embedded_io_async::{ErrorType, Read, Write};
use panic_halt as _;
use static_cell::StaticCell;
use throttle_core::Limits;
use throttle_embassy::{Directions, Limiter, Server};

/// Connections served at once.
const CONNECTIONS: usize = 8;

/// Slots: 1 server (2 nodes) + 8 connections × 2 leaves.
const SLOTS: usize = 2 + 2 * CONNECTIONS;

/// The limiter: all zeros at start, so in `.bss` (see the module docs).
static LIMITER: Limiter<SLOTS> = Limiter::new();

/// The server: its limit, each connection's limit, a registry of up to 8 connections.
static SERVER: StaticCell<AppServer> = StaticCell::new();

/// The server type every task is handed a `&'static` of.
type AppServer = Server<'static, SLOTS, CONNECTIONS>;

/// The server limit before the first change, and the limit changer's period.
const SLOW: u32 = 256 << 10;
const FAST: u32 = 1 << 20;
const PERIOD_SECS: u64 = 5;

/// Bytes written per connection (for a speed display or a debugger).
static SENT: [AtomicU32; CONNECTIONS] = [const { AtomicU32::new(0) }; CONNECTIONS];

/// What every request is answered with (in flash, not in each task's state).
static RESPONSE: &[u8] = &[0x42; 4096];

/// A stand-in for a `TcpSocket`: reads produce a request pattern, writes are consumed.
struct Dummy {
    id: u8,
}

impl ErrorType for Dummy {
    type Error = Infallible;
}

impl Read for Dummy {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        buf.fill(self.id);
        Ok(buf.len())
    }
}

impl Write for Dummy {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

#[embassy_executor::task(pool_size = CONNECTIONS)]
async fn connection(server: &'static AppServer, id: usize) {
    let Ok(mut conn) = server.wrap(Dummy { id: id as u8 }) else {
        return; // limiter full: a real server would refuse the connection
    };
    let mut request = [0u8; 256];
    loop {
        if conn.read(&mut request).await.is_err() {
            break;
        }
        if conn.write_all(RESPONSE).await.is_err() {
            break;
        }
        if let Some(counter) = SENT.get(id) {
            counter.fetch_add(RESPONSE.len() as u32, Ordering::Relaxed);
        }
    }
    // `conn` dropped: its leaves leave the limiter.
}

#[embassy_executor::task]
async fn limit_changer(server: &'static AppServer) {
    let mut fast = false;
    loop {
        Timer::after_secs(PERIOD_SECS).await;
        fast = !fast;
        let rate = if fast { FAST } else { SLOW };
        let _ = server.set_limits(Directions::both(Limits::per_second(u64::from(rate))));
    }
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    if let Some(p) = cortex_m::Peripherals::take() {
        time_driver::init(p.SYST);
    }
    let limiter: &'static Limiter<SLOTS> = &LIMITER;
    let server: &'static AppServer = SERVER.init_with(|| {
        Server::new(
            limiter,
            Directions::both(Limits::per_second(SLOW as u64)),
            Directions {
                read: Limits::per_second(32 << 10),
                write: Limits::per_second(256 << 10),
            },
        )
    });
    for id in 0..CONNECTIONS {
        if let Ok(token) = connection(server, id) {
            spawner.spawn(token);
        }
    }
    if let Ok(token) = limit_changer(server) {
        spawner.spawn(token);
    }
    #[cfg(feature = "qemu")]
    if let Ok(token) = report::reporter(&SENT) {
        spawner.spawn(token);
    }
}
