//! The event loop's kernel side: one epoll descriptor, and an inbox that helper threads post to.
//!
//! Theory of operation: a supervisor waits on a handful of descriptors (the signalfd, the inbox,
//! an inotify instance, probe sockets) and on its nearest deadline, which is epoll_wait's timeout.
//! Nothing runs between the kernel saying a descriptor is ready and the policy hearing of it but a
//! read: no scheduler, no wakers, no task queue. Helper threads (a blocked flock, a name lookup, a
//! readiness probe) never touch the supervisor's state: they send a message on a channel and bump
//! an eventfd that the loop waits on, so their news arrives through the same one wait as signals.

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Instant;

/// What a descriptor is registered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    Read,
    Write,
}

/// An epoll instance. Tokens are the caller's: whatever tells its descriptors apart.
pub struct Poller {
    epoll: Epoll,
    buf: Vec<EpollEvent>,
}

impl Poller {
    pub fn new() -> io::Result<Poller> {
        Ok(Poller {
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
            buf: vec![EpollEvent::empty(); 16],
        })
    }

    fn flags(interest: Interest) -> EpollFlags {
        match interest {
            Interest::Read => EpollFlags::EPOLLIN,
            Interest::Write => EpollFlags::EPOLLOUT,
        }
    }

    /// Waits on `fd` (level-triggered: it is reported until drained).
    pub fn add(&self, fd: impl AsFd, token: u64, interest: Interest) -> io::Result<()> {
        let ev = EpollEvent::new(Self::flags(interest), token);
        Ok(self.epoll.add(fd, ev)?)
    }

    pub fn modify(&self, fd: impl AsFd, token: u64, interest: Interest) -> io::Result<()> {
        let mut ev = EpollEvent::new(Self::flags(interest), token);
        Ok(self.epoll.modify(fd, &mut ev)?)
    }

    pub fn delete(&self, fd: impl AsFd) {
        // A descriptor that is already closed left the set by itself.
        let _ = self.epoll.delete(fd);
    }

    /// Removes the registration of descriptor number `fd`. The caller makes sure the number still
    /// names what it registered (see `events::flights`); a number no longer registered is
    /// refused by the kernel, harmlessly.
    pub fn delete_raw(&self, fd: RawFd) {
        // SAFETY: epoll_ctl with EPOLL_CTL_DEL reads no event (a null pointer is allowed since
        // Linux 2.6.9) and touches no memory of ours; the descriptor is only a number to it.
        unsafe {
            nix::libc::epoll_ctl(
                self.epoll.0.as_raw_fd(),
                nix::libc::EPOLL_CTL_DEL,
                fd,
                std::ptr::null_mut(),
            );
        }
    }

    /// Waits until a descriptor is ready or `deadline` passes, and returns the ready tokens (none
    /// at the deadline or on EINTR). A deadline is rounded up to the next millisecond, so the loop
    /// never wakes a moment early and spins.
    pub fn wait(&mut self, deadline: Option<Instant>) -> io::Result<Vec<u64>> {
        let timeout = match deadline {
            None => EpollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                let ms = left.as_nanos().div_ceil(1_000_000);
                EpollTimeout::try_from(ms).unwrap_or(EpollTimeout::MAX)
            }
        };
        match self.epoll.wait(&mut self.buf, timeout) {
            Ok(n) => Ok(self.buf[..n].iter().map(EpollEvent::data).collect()),
            Err(nix::errno::Errno::EINTR) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }
}

/// The receiving end of the inbox: an eventfd the loop waits on, and the messages behind it.
pub struct Inbox<T> {
    bell: Arc<EventFd>,
    rx: mpsc::Receiver<T>,
    tx: mpsc::Sender<T>,
}

/// A helper thread's way to post to the loop.
pub struct Poster<T> {
    bell: Arc<EventFd>,
    tx: mpsc::Sender<T>,
}

impl<T> Clone for Poster<T> {
    fn clone(&self) -> Self {
        Poster {
            bell: self.bell.clone(),
            tx: self.tx.clone(),
        }
    }
}

impl<T> Poster<T> {
    /// Posts a message and rings the bell. A loop that is gone (the process is exiting) is fine.
    pub fn post(&self, msg: T) {
        if self.tx.send(msg).is_ok() {
            let _ = self.bell.write(1);
        }
    }
}

impl<T> Inbox<T> {
    pub fn new() -> io::Result<Inbox<T>> {
        let bell = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
        let (tx, rx) = mpsc::channel();
        Ok(Inbox {
            bell: Arc::new(bell),
            rx,
            tx,
        })
    }

    pub fn poster(&self) -> Poster<T> {
        Poster {
            bell: self.bell.clone(),
            tx: self.tx.clone(),
        }
    }

    /// The descriptor the loop waits on.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.bell.as_fd()
    }

    /// Everything posted so far. The bell is reset first: a message posted after the reset rings
    /// it again, so none is left waiting for a wake-up that never comes.
    pub fn take(&self) -> Vec<T> {
        let _ = self.bell.read();
        self.rx.try_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_post_from_another_thread_wakes_the_wait() {
        let mut p = Poller::new().unwrap();
        let inbox: Inbox<u32> = Inbox::new().unwrap();
        p.add(inbox.fd(), 7, Interest::Read).unwrap();
        let poster = inbox.poster();
        let t = std::thread::spawn(move || poster.post(42));
        let far = Instant::now() + Duration::from_secs(10);
        assert_eq!(p.wait(Some(far)).unwrap(), vec![7]);
        t.join().unwrap();
        assert_eq!(inbox.take(), vec![42]);
        let soon = Instant::now() + Duration::from_millis(1);
        assert_eq!(p.wait(Some(soon)).unwrap(), Vec::<u64>::new(), "bell reset");
    }
}
