//! Two real embassy-net stacks in one process, linked by `embassy-net-driver-channel`: two
//! small "wire" futures copy IP frames between the channels. Everything runs in one future
//! under [`block_on`], without statics (the stacks' resources are leaked per test), so tests
//! run in parallel. Time is embassy-time's std driver (real time). Moved here from
//! throttle-embassy's `tests/harness` so the conformance suite runs over it.

#![allow(clippy::std_instead_of_core, clippy::std_instead_of_alloc)]

use std::boxed::Box;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

use embassy_futures::join::join4;
use embassy_futures::select::{select, Either};
use embassy_net::tcp::TcpSocket;
use embassy_net::{Config, Ipv4Address, Ipv4Cidr, Stack, StackResources, StaticConfigV4};
use embassy_net_driver_channel as ch;
use embassy_net_driver_channel::driver::{HardwareAddress, LinkState};

/// Frame size of the link (IP MTU). Large because smoltcp's per-byte work (checksums) in a
/// debug build caps a 1500-byte link at ~6 MiB/s on a busy 2-core machine; ~11 MiB/s here.
pub const MTU: usize = 16384;
/// Frames queued per direction of each channel.
const QUEUE: usize = 16;
/// TCP port the server listens on.
pub const PORT: u16 = 7000;
/// Socket buffer size (each of rx and tx, each socket).
pub const SOCKET_BUF: usize = 64 * 1024;

/// Addresses from TEST-NET-1 (RFC 5737): only ever seen by the two in-process stacks.
pub const SERVER: Ipv4Address = Ipv4Address::new(192, 0, 2, 1);
/// The client stack's address.
pub const CLIENT: Ipv4Address = Ipv4Address::new(192, 0, 2, 2);

/// Runs `fut` on this thread, parking while nothing is ready (the std time driver and the
/// stacks wake it), rather than embassy-futures' busy loop: a 2-core CI machine has no core
/// to spare for spinning.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        thread::park();
    }
}

fn leak<T>(v: T) -> &'static mut T {
    Box::leak(Box::new(v))
}

fn stack(
    addr: Ipv4Address,
    seed: u64,
) -> (
    Stack<'static>,
    embassy_net::Runner<'static, ch::Device<'static, MTU>>,
    ch::Runner<'static, MTU>,
) {
    let state = leak(ch::State::<MTU, QUEUE, QUEUE>::new());
    let (runner, device) = ch::new(state, HardwareAddress::Ip);
    let config = Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(addr, 24),
        gateway: None,
        dns_servers: Default::default(),
    });
    let resources = leak(StackResources::<12>::new());
    let (stack, net) = embassy_net::new(device, config, resources, seed);
    (stack, net, runner)
}

/// Frames copied by all wires of this process (a sanity figure for throughput tests).
pub static FRAMES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Copies frames from one stack's transmit queue to the other's receive queue, forever.
async fn wire(mut tx: ch::TxRunner<'static, MTU>, mut rx: ch::RxRunner<'static, MTU>) -> ! {
    loop {
        let frame = tx.tx_buf().await;
        let len = frame.len();
        let dst = rx.rx_buf().await;
        let n = len.min(dst.len());
        dst[..n].copy_from_slice(&frame[..n]);
        rx.rx_done(n);
        tx.tx_done();
        FRAMES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The two stacks, linked, ready to use inside [`run`].
pub struct Link {
    /// The stack at [`SERVER`].
    pub server: Stack<'static>,
    /// The stack at [`CLIENT`].
    pub client: Stack<'static>,
    background: std::pin::Pin<Box<dyn Future<Output = ()>>>,
}

/// Builds two stacks (server 192.0.2.1, client 192.0.2.2) and the futures that run them.
pub fn link() -> Link {
    let (server, mut net_s, chan_s) = stack(SERVER, 1);
    let (client, mut net_c, chan_c) = stack(CLIENT, 2);
    let (state_s, rx_s, tx_s) = chan_s.split();
    let (state_c, rx_c, tx_c) = chan_c.split();
    state_s.set_link_state(LinkState::Up);
    state_c.set_link_state(LinkState::Up);
    let background = Box::pin(async move {
        join4(net_s.run(), net_c.run(), wire(tx_s, rx_c), wire(tx_c, rx_s)).await;
    });
    Link {
        server,
        client,
        background,
    }
}

/// Runs `body` with the link running beside it; returns `body`'s output.
pub fn run<T>(link: Link, body: impl Future<Output = T>) -> T {
    block_on(async move {
        match select(body, link.background).await {
            Either::First(v) => v,
            Either::Second(()) => unreachable!("the stacks run forever"),
        }
    })
}

/// A TCP socket on `stack` with leaked buffers.
pub fn socket(stack: Stack<'static>) -> TcpSocket<'static> {
    let rx = leak([0u8; SOCKET_BUF]);
    let tx = leak([0u8; SOCKET_BUF]);
    TcpSocket::new(stack, rx, tx)
}

/// A connected (server, client) socket pair on `port`.
pub async fn connect(
    link_server: Stack<'static>,
    link_client: Stack<'static>,
    port: u16,
) -> (TcpSocket<'static>, TcpSocket<'static>) {
    link_server.wait_config_up().await;
    link_client.wait_config_up().await;
    let mut server = socket(link_server);
    let mut client = socket(link_client);
    let (a, c) =
        embassy_futures::join::join(server.accept(port), client.connect((SERVER, port))).await;
    a.expect("accept");
    c.expect("connect");
    (server, client)
}

/// Two connected (server, client) pairs on the same `port`: `([server1, server2], [client1,
/// client2])`, accepted and connected at once.
pub async fn connect_two(
    link_server: Stack<'static>,
    link_client: Stack<'static>,
    port: u16,
) -> ([TcpSocket<'static>; 2], [TcpSocket<'static>; 2]) {
    link_server.wait_config_up().await;
    link_client.wait_config_up().await;
    let (mut s1, mut s2) = (socket(link_server), socket(link_server));
    let (mut c1, mut c2) = (socket(link_client), socket(link_client));
    let (r1, r2, r3, r4) = embassy_futures::join::join4(
        s1.accept(port),
        s2.accept(port),
        c1.connect((SERVER, port)),
        c2.connect((SERVER, port)),
    )
    .await;
    assert!(r1.is_ok() && r2.is_ok() && r3.is_ok() && r4.is_ok());
    ([s1, s2], [c1, c2])
}
