//! Connections the simulator can reset, for the "connection reset by peer" fault.
//!
//! axum hands a middleware no socket, so the listener wraps each accepted stream with a flag
//! that the request's [`Conn`] (its connect info) can raise. Once raised, the next write
//! fails: the server drops the connection, and zero linger makes the kernel send a TCP reset
//! instead of a clean close, as a crashed proxy or a load balancer cutting in does.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Wait after a failed accept (out of file descriptors, say) before the next.
const ACCEPT_RETRY: Duration = Duration::from_millis(10);

/// A TCP listener whose connections can be reset.
#[derive(Debug)]
pub(crate) struct ResettableListener {
    inner: TcpListener,
}

/// One connection, as a request sees it.
#[derive(Debug, Clone)]
pub(crate) struct Conn {
    pub peer: SocketAddr,
    doomed: Arc<AtomicBool>,
}

/// An accepted stream that fails its next write once doomed.
#[derive(Debug)]
pub(crate) struct ResettableStream {
    tcp: TcpStream,
    doomed: Arc<AtomicBool>,
}

impl ResettableListener {
    pub(crate) fn new(inner: TcpListener) -> Self {
        Self { inner }
    }
}

impl Conn {
    /// Resets the connection instead of answering.
    pub(crate) fn reset(&self) {
        self.doomed.store(true, Ordering::Release);
    }
}

impl Listener for ResettableListener {
    type Io = ResettableStream;
    type Addr = Conn;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((tcp, peer)) => {
                    let doomed = Arc::new(AtomicBool::new(false));
                    let conn = Conn {
                        peer,
                        doomed: doomed.clone(),
                    };
                    return (ResettableStream { tcp, doomed }, conn);
                }
                Err(error) => {
                    tracing::warn!(%error, "the simulator failed to accept a connection");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(Conn {
            peer: self.inner.local_addr()?,
            doomed: Arc::default(),
        })
    }
}

impl Connected<IncomingStream<'_, ResettableListener>> for Conn {
    fn connect_info(stream: IncomingStream<'_, ResettableListener>) -> Self {
        stream.remote_addr().clone()
    }
}

impl ResettableStream {
    /// Fails with a reset, and arms the socket to send one when it is dropped.
    fn check(&self) -> io::Result<()> {
        if !self.doomed.load(Ordering::Acquire) {
            return Ok(());
        }
        self.tcp.set_zero_linger()?;
        Err(io::ErrorKind::ConnectionReset.into())
    }
}

impl AsyncRead for ResettableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Err(e) = self.check() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Err(e) = self.check() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}
