//! The stdio transport's other half of the contract: a server whose client closed its stdout has
//! nobody to answer, so it stops taking calls instead of carrying them out unseen.
//!
//! rmcp logs a failed response write and goes on reading requests; a client that closed only its
//! read end (or crashed half way) would still have panes created and text typed for it.
//! [`StdoutWatch`] knows the client is gone when stdout is a pipe whose reader closed (epoll
//! reports it at once, before any response is due) or when a write to stdout failed ([`Closing`]),
//! whatever stdout is. The server refuses every call from then on, and `termloom-mcp` ends the
//! session.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures_util::FutureExt;
use tokio::io::AsyncWrite;
use tokio::sync::Notify;

/// Whether the client still reads this process's stdout.
pub struct StdoutWatch {
    /// A second descriptor of stdout's pipe, registered only for errors (`None` when stdout is
    /// not something epoll can watch: a file, say).
    #[cfg(unix)]
    fd: Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>,
    failed: AtomicBool,
    told: Notify,
}

impl StdoutWatch {
    /// Starts watching. Must be called inside the runtime that serves the session.
    pub fn new() -> Arc<Self> {
        #[cfg(unix)]
        let fd = {
            use std::os::fd::AsFd;
            use tokio::io::Interest;
            use tokio::io::unix::AsyncFd;
            io::stdout()
                .as_fd()
                .try_clone_to_owned()
                .ok()
                // SAFETY: the descriptor is owned by the AsyncFd and stays open while registered.
                .and_then(|fd| unsafe { AsyncFd::register_with_interest(fd, Interest::ERROR) }.ok())
        };
        Arc::new(StdoutWatch {
            #[cfg(unix)]
            fd,
            failed: AtomicBool::new(false),
            told: Notify::new(),
        })
    }

    /// True once the client is known to have stopped reading. No system call: it looks at what
    /// the runtime's last poll of its descriptors saw, which comes no later than the request
    /// being handled.
    pub fn is_gone(&self) -> bool {
        if self.failed.load(Ordering::SeqCst) {
            return true;
        }
        #[cfg(unix)]
        if let Some(fd) = &self.fd {
            return fd
                .ready(tokio::io::Interest::ERROR)
                .now_or_never()
                .is_some_and(|r| r.is_ok());
        }
        false
    }

    /// Resolves once the client is gone.
    pub async fn gone(&self) {
        let failed = async {
            while !self.failed.load(Ordering::SeqCst) {
                self.told.notified().await;
            }
        };
        #[cfg(unix)]
        if let Some(fd) = &self.fd {
            tokio::select! {
                _ = failed => {}
                r = fd.ready(tokio::io::Interest::ERROR) => {
                    if r.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
            }
            return;
        }
        failed.await
    }

    fn fail(&self) {
        self.failed.store(true, Ordering::SeqCst);
        self.told.notify_waiters();
        self.told.notify_one();
    }
}

/// An `AsyncWrite` that tells its [`StdoutWatch`] when a write or flush fails: the client is no
/// longer reading.
pub struct Closing<W> {
    inner: W,
    watch: Arc<StdoutWatch>,
}

impl<W> Closing<W> {
    /// Wraps `inner`, stdout's writer.
    pub fn new(inner: W, watch: Arc<StdoutWatch>) -> Self {
        Closing { inner, watch }
    }

    fn seen<T>(&self, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if let Poll::Ready(Err(_)) = &r {
            self.watch.fail();
        }
        r
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Closing<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.seen(r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.seen(r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.seen(r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_failed_write_is_told_once_and_still_returned() {
        let (a, b) = tokio::io::duplex(64);
        drop(b);
        let watch = StdoutWatch::new();
        let mut w = Closing::new(a, watch.clone());
        assert!(w.write_all(b"hello").await.is_err());
        assert!(watch.is_gone());
        tokio::time::timeout(std::time::Duration::from_secs(5), watch.gone())
            .await
            .expect("the failure was told");
    }

    #[tokio::test]
    async fn writes_that_succeed_tell_nothing() {
        let (a, mut b) = tokio::io::duplex(64);
        let watch = StdoutWatch::new();
        let mut w = Closing::new(a, watch.clone());
        w.write_all(b"hello").await.expect("written");
        let mut got = [0u8; 5];
        tokio::io::AsyncReadExt::read_exact(&mut b, &mut got)
            .await
            .expect("read");
        assert_eq!(&got, b"hello");
        assert!(!watch.is_gone(), "nothing failed");
    }
}
