//! [`Rt`] for tokio, smol and async-std, and [`Stream`] for their sockets.

use core::future::Future;
use core::net::SocketAddr;
use core::time::Duration;
use std::io;

use throttle_tokio::{Config, Connection, Leaf, Limiter, Server};

use crate::{Rt, Stream, Throttled};

/// A tokio socket (tokio's I/O traits).
#[derive(Debug)]
pub struct Tok<S>(pub S);

impl<S> Stream for Tok<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    fn write_all<'a>(
        &'a mut self,
        buf: &'a [u8],
    ) -> impl Future<Output = io::Result<()>> + Send + 'a {
        tokio::io::AsyncWriteExt::write_all(&mut self.0, buf)
    }
    fn read<'a>(
        &'a mut self,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        tokio::io::AsyncReadExt::read(&mut self.0, buf)
    }
}

impl Throttled for Tok<throttle_tokio::Throttled<tokio::net::TcpStream>> {
    fn read_leaf(&self) -> &Leaf {
        self.0.read_leaf()
    }
    fn write_leaf(&self) -> &Leaf {
        self.0.write_leaf()
    }
}

/// A futures-io socket (smol, async-std).
#[derive(Debug)]
pub struct Fut<S>(pub S);

impl<S> Stream for Fut<S>
where
    S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin + Send + 'static,
{
    fn write_all<'a>(
        &'a mut self,
        buf: &'a [u8],
    ) -> impl Future<Output = io::Result<()>> + Send + 'a {
        futures_lite::AsyncWriteExt::write_all(&mut self.0, buf)
    }
    fn read<'a>(
        &'a mut self,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        futures_lite::AsyncReadExt::read(&mut self.0, buf)
    }
}

impl<S> Throttled for Fut<throttle_smol::Throttled<S>>
// the same type as throttle_async_std::Throttled
where
    S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin + Send + 'static,
{
    fn read_leaf(&self) -> &Leaf {
        self.0.read_leaf()
    }
    fn write_leaf(&self) -> &Leaf {
        self.0.write_leaf()
    }
}

fn local() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// tokio, multi-thread runtime with two workers.
#[derive(Debug)]
pub struct Tokio;

impl Rt for Tokio {
    type Raw = Tok<tokio::net::TcpStream>;
    type Conn = Tok<throttle_tokio::Throttled<tokio::net::TcpStream>>;
    type Listener = throttle_tokio::Listener;

    fn limiter_with(config: Config) -> Limiter {
        Limiter::with_config(config, throttle_tokio::Tokio)
    }
    fn block_on<F: Future<Output = ()>>(f: F) {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime")
            .block_on(f);
    }
    fn spawn<T: Send + 'static>(
        f: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = T> + Send + 'static {
        let h = tokio::spawn(f);
        async move { h.await.expect("task panicked") }
    }
    async fn sleep(d: Duration) {
        tokio::time::sleep(d).await;
    }
    async fn bind(server: Server) -> (Self::Listener, SocketAddr) {
        let l = throttle_tokio::Listener::bind(local(), server)
            .await
            .expect("bind");
        let a = l.local_addr().expect("addr");
        (l, a)
    }
    async fn bind_grouped(
        groups: Vec<Server>,
        pick: impl Fn(SocketAddr) -> Option<usize> + Send + Sync + 'static,
    ) -> (Self::Listener, SocketAddr) {
        let tcp = tokio::net::TcpListener::bind(local()).await.expect("bind");
        let l = throttle_tokio::Listener::grouped(tcp, groups, pick).expect("groups");
        let a = l.local_addr().expect("addr");
        (l, a)
    }
    fn local_port(raw: &Self::Raw) -> u16 {
        raw.0.local_addr().expect("local addr").port()
    }
    async fn accept(l: &Self::Listener) -> Self::Conn {
        Tok(l.accept().await.expect("accept").0)
    }
    async fn connect(addr: SocketAddr) -> Self::Raw {
        Tok(tokio::net::TcpStream::connect(addr).await.expect("connect"))
    }
    fn wrap(raw: Self::Raw, conn: Connection) -> Self::Conn {
        Tok(throttle_tokio::Throttled::new(raw.0, conn))
    }
}

/// smol: the test future on `smol::block_on`, tasks on smol's global executor.
#[derive(Debug)]
pub struct Smol;

impl Rt for Smol {
    type Raw = Fut<smol::net::TcpStream>;
    type Conn = Fut<throttle_smol::Throttled<smol::net::TcpStream>>;
    type Listener = throttle_smol::Listener;

    fn limiter_with(config: Config) -> Limiter {
        Limiter::with_config(config, throttle_smol::Smol)
    }
    fn block_on<F: Future<Output = ()>>(f: F) {
        smol::block_on(f);
    }
    fn spawn<T: Send + 'static>(
        f: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = T> + Send + 'static {
        smol::spawn(f)
    }
    async fn sleep(d: Duration) {
        smol::Timer::after(d).await;
    }
    async fn bind(server: Server) -> (Self::Listener, SocketAddr) {
        let l = throttle_smol::Listener::bind(local(), server)
            .await
            .expect("bind");
        let a = l.local_addr().expect("addr");
        (l, a)
    }
    async fn bind_grouped(
        groups: Vec<Server>,
        pick: impl Fn(SocketAddr) -> Option<usize> + Send + Sync + 'static,
    ) -> (Self::Listener, SocketAddr) {
        let tcp = smol::net::TcpListener::bind(local()).await.expect("bind");
        let l = throttle_smol::Listener::grouped(tcp, groups, pick).expect("groups");
        let a = l.local_addr().expect("addr");
        (l, a)
    }
    fn local_port(raw: &Self::Raw) -> u16 {
        raw.0.local_addr().expect("local addr").port()
    }
    async fn accept(l: &Self::Listener) -> Self::Conn {
        Fut(l.accept().await.expect("accept").0)
    }
    async fn connect(addr: SocketAddr) -> Self::Raw {
        Fut(smol::net::TcpStream::connect(addr).await.expect("connect"))
    }
    fn wrap(raw: Self::Raw, conn: Connection) -> Self::Conn {
        Fut(throttle_smol::Throttled::new(raw.0, conn))
    }
}

/// async-std: its own `block_on` and global executor.
#[derive(Debug)]
pub struct AsyncStd;

impl Rt for AsyncStd {
    type Raw = Fut<async_std::net::TcpStream>;
    type Conn = Fut<throttle_async_std::Throttled<async_std::net::TcpStream>>;
    type Listener = throttle_async_std::Listener;

    fn limiter_with(config: Config) -> Limiter {
        Limiter::with_config(config, throttle_async_std::AsyncStd)
    }
    fn block_on<F: Future<Output = ()>>(f: F) {
        async_std::task::block_on(f);
    }
    fn spawn<T: Send + 'static>(
        f: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = T> + Send + 'static {
        async_std::task::spawn(f)
    }
    async fn sleep(d: Duration) {
        async_std::task::sleep(d).await;
    }
    async fn bind(server: Server) -> (Self::Listener, SocketAddr) {
        let l = throttle_async_std::Listener::bind(local(), server)
            .await
            .expect("bind");
        let a = l.local_addr().expect("addr");
        (l, a)
    }
    async fn bind_grouped(
        groups: Vec<Server>,
        pick: impl Fn(SocketAddr) -> Option<usize> + Send + Sync + 'static,
    ) -> (Self::Listener, SocketAddr) {
        let tcp = async_std::net::TcpListener::bind(local())
            .await
            .expect("bind");
        let l = throttle_async_std::Listener::grouped(tcp, groups, pick).expect("groups");
        let a = l.local_addr().expect("addr");
        (l, a)
    }
    fn local_port(raw: &Self::Raw) -> u16 {
        raw.0.local_addr().expect("local addr").port()
    }
    async fn accept(l: &Self::Listener) -> Self::Conn {
        Fut(l.accept().await.expect("accept").0)
    }
    async fn connect(addr: SocketAddr) -> Self::Raw {
        Fut(async_std::net::TcpStream::connect(addr)
            .await
            .expect("connect"))
    }
    fn wrap(raw: Self::Raw, conn: Connection) -> Self::Conn {
        Fut(throttle_async_std::Throttled::new(raw.0, conn))
    }
}
