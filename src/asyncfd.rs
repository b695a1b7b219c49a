//! Registering kernel objects (signalfd, inotify) with the event loop.

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// Owns an fd-backed object and exposes its raw fd to tokio.
pub struct Owned<T: AsFd>(pub T);

impl<T: AsFd> AsRawFd for Owned<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// Registers `inner` for readability with the current runtime.
pub fn readable<T: AsFd>(inner: T) -> io::Result<AsyncFd<Owned<T>>> {
    // SAFETY: the fd belongs to `inner`, which the AsyncFd owns for its whole life, and an owned
    // fd-backed object (SignalFd, Inotify) never changes or closes its fd while alive.
    unsafe { AsyncFd::register_with_interest(Owned(inner), Interest::READABLE) }
        .map_err(|e| e.into())
}
