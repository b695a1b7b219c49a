//! Which signals the supervisor takes, forwards, or never touches.
//!
//! Theory of operation: before anything else runs (and before any thread exists, so every thread
//! inherits it) the supervisor blocks every signal it handles and reads them from a signalfd. A
//! blocked signal is queued even for PID 1 (the kernel drops signals with a default disposition
//! for init only when they are not blocked), nothing runs in signal-handler context, and SIGCHLDs
//! that merge into one are fine because the reaper drains every exited child on each one.
//!
//! Synchronous signals (SEGV, BUS, ILL, FPE, TRAP, SYS, ABRT) are the supervisor's own faults and
//! keep their default action. SIGCHLD is consumed, never forwarded. SIGPIPE is blocked so that a
//! closed stderr makes writes fail with EPIPE instead of killing PID 1; it is not forwarded, since
//! the one we see is almost always our own. KILL and STOP cannot be caught.

use crate::asyncfd::{self, Owned};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::io;
use tokio::io::unix::AsyncFd;

/// Signals forwarded to the child's process group.
pub const FORWARDED: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGALRM,
    Signal::SIGTERM,
    Signal::SIGSTKFLT,
    Signal::SIGCONT,
    Signal::SIGTSTP,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGURG,
    Signal::SIGXCPU,
    Signal::SIGXFSZ,
    Signal::SIGVTALRM,
    Signal::SIGPROF,
    Signal::SIGWINCH,
    Signal::SIGIO,
    Signal::SIGPWR,
];

/// Every signal the supervisor blocks and reads from its signalfd.
pub fn handled() -> SigSet {
    let mut set = SigSet::empty();
    for &s in FORWARDED {
        set.add(s);
    }
    set.add(Signal::SIGCHLD);
    set.add(Signal::SIGPIPE);
    set
}

/// Whether a signal asks the supervisor to shut down (and so starts the grace period).
pub fn is_termination(sig: Signal) -> bool {
    matches!(sig, Signal::SIGTERM | Signal::SIGINT)
}

/// Blocks the handled signals in the calling thread. Call first, before any thread is created.
pub fn block() -> io::Result<()> {
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&handled()), None).map_err(io::Error::from)
}

/// Blocked signals, delivered one at a time through a non-blocking signalfd.
pub struct Signals {
    fd: AsyncFd<Owned<SignalFd>>,
}

impl Signals {
    pub fn new() -> io::Result<Self> {
        let sfd = SignalFd::with_flags(&handled(), SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(io::Error::from)?;
        Ok(Signals {
            fd: asyncfd::readable(sfd)?,
        })
    }

    /// Waits for the next signal.
    pub async fn recv(&mut self) -> io::Result<Signal> {
        loop {
            let mut guard = self.fd.readable_mut().await?;
            match guard.get_inner_mut().0.read_signal() {
                Ok(Some(info)) => {
                    if let Ok(sig) = Signal::try_from(info.ssi_signo as i32) {
                        return Ok(sig);
                    }
                }
                Ok(None) => guard.clear_ready(),
                Err(e) => return Err(io::Error::from(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_forward_chld_or_synchronous_signals() {
        for s in [
            Signal::SIGCHLD,
            Signal::SIGSEGV,
            Signal::SIGBUS,
            Signal::SIGILL,
            Signal::SIGFPE,
            Signal::SIGTRAP,
            Signal::SIGSYS,
            Signal::SIGABRT,
            Signal::SIGKILL,
            Signal::SIGSTOP,
            Signal::SIGPIPE,
        ] {
            assert!(!FORWARDED.contains(&s), "{s:?} must not be forwarded");
        }
        let set = handled();
        for s in [
            Signal::SIGSEGV,
            Signal::SIGBUS,
            Signal::SIGILL,
            Signal::SIGFPE,
        ] {
            assert!(!set.contains(s), "{s:?} must keep its default action");
        }
        for s in [
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGHUP,
            Signal::SIGWINCH,
            Signal::SIGCHLD,
        ] {
            assert!(set.contains(s));
        }
    }
}
