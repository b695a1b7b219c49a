//! Spawning the supervised command and talking to its process group.
//!
//! The child gets its own process group (so a signal reaches its whole tree, and SIGKILL after the
//! grace period leaves nothing behind), a clean signal state (empty mask, default dispositions:
//! it must not inherit the supervisor's blocked set or anything ignored by whoever started us),
//! and, when the supervisor owns the terminal, the terminal's foreground, so an interactive shell
//! gets Ctrl-C directly and is not stopped by SIGTTIN.
//!
//! The fork and exec are ours, as in tini: everything the child runs between them is prepared
//! before the fork (the argument vector as C strings) and async-signal-safe after it, and an exec
//! failure comes back through a close-on-exec pipe as its errno, which tells 127 (not found) from
//! 126 (not executable). (std::process::Command did the same with environment and stdio
//! machinery the supervisor never uses, some 20 KiB of the binary.) Nothing here waits for the
//! child once it runs: the reaper owns waitpid.

use crate::signals::{self, Sig};
use nix::errno::Errno;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::unistd::{ForkResult, Pid};
use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;

/// Why a command could not be started, as the shell tells them apart (127, 126, other).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpawnFailure {
    NotFound,
    NotExecutable,
    Other,
}

/// A command that could not be started: why, and the sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SpawnError {
    pub failure: SpawnFailure,
    pub message: String,
}

/// A running child, leader of its own process group.
#[derive(Debug, Clone, Copy)]
pub struct Child {
    pub pid: Pid,
}

/// Starts `argv` in a new process group with a clean signal state.
pub fn spawn(argv: &[OsString]) -> Result<Child, SpawnError> {
    let cmd = argv
        .first()
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default();
    let fail = |errno: Errno| {
        let (failure, what) = match errno {
            Errno::ENOENT => (SpawnFailure::NotFound, "command not found"),
            Errno::EACCES | Errno::ENOEXEC | Errno::EISDIR | Errno::EPERM => {
                (SpawnFailure::NotExecutable, "cannot execute")
            }
            _ => (SpawnFailure::Other, "could not start"),
        };
        SpawnError {
            failure,
            message: format!("{cmd}: {what} ({})", io::Error::from(errno)),
        }
    };
    // Everything the child needs, made before the fork: it must not allocate after it.
    let args: Vec<CString> = argv
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .map_err(|_| fail(Errno::EINVAL))?;
    let mut ptrs: Vec<*const nix::libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    if args.is_empty() {
        return Err(fail(Errno::ENOENT));
    }
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(fail)?;
    let parent_pgrp = nix::unistd::getpgrp();
    // SAFETY: the supervisor may have threads (lease waiters, name lookups), so the child may only
    // make async-signal-safe calls until it execs or exits: prepare_child's calls, execvp over
    // vectors made before the fork, write and _exit. It allocates nothing and takes no lock.
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => {
            let errno = match prepare_child(parent_pgrp) {
                Ok(()) => {
                    // SAFETY: both vectors outlive the call and the argument vector ends in
                    // null; execvp returns only on failure.
                    unsafe { nix::libc::execvp(ptrs[0], ptrs.as_ptr()) };
                    Errno::last_raw()
                }
                Err(e) => e.raw_os_error().unwrap_or(nix::libc::EINVAL),
            };
            let _ = nix::unistd::write(&wr, &errno.to_ne_bytes());
            // SAFETY: _exit ends the child at once, running nothing of the parent's.
            unsafe { nix::libc::_exit(127) }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(wr);
            let mut buf = [0u8; 4];
            let got = loop {
                match nix::unistd::read(rd.as_raw_fd(), &mut buf) {
                    Err(Errno::EINTR) => continue,
                    r => break r,
                }
            };
            match got {
                // The pipe closed on exec: the command runs.
                Ok(0) | Err(_) => Ok(Child { pid: child }),
                Ok(_) => {
                    // Reaped here, by its pid: it never ran, and nobody else waits for it.
                    let _ = nix::sys::wait::waitpid(child, None);
                    Err(fail(Errno::from_raw(i32::from_ne_bytes(buf))))
                }
            }
        }
        Err(e) => Err(fail(e)),
    }
}

/// Runs in the child between fork and exec. Async-signal-safe calls only.
fn prepare_child(parent_pgrp: Pid) -> io::Result<()> {
    nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0))?;
    let me = nix::unistd::getpid();
    // Take the terminal's foreground only if the supervisor had it: a supervisor started in the
    // background of an interactive shell must not steal the terminal.
    // SAFETY: fd 0 stays open for the duration of this function; borrowing it avoids
    // std::io::stdin(), whose lazy initialisation may allocate.
    let stdin = unsafe { BorrowedFd::borrow_raw(0) };
    let on_tty = nix::unistd::isatty(0).unwrap_or(false);
    if on_tty && nix::unistd::tcgetpgrp(stdin).ok() == Some(parent_pgrp) {
        // tcsetpgrp from what is now a background group raises SIGTTOU unless it is ignored.
        let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
        // SAFETY: installing SIG_IGN runs no code in signal context.
        unsafe {
            let _ = nix::sys::signal::sigaction(Signal::SIGTTOU, &ignore);
        }
        let _ = nix::unistd::tcsetpgrp(stdin, me);
    }
    // Every signal, real-time ones included, back to SIG_DFL (an ignored disposition would
    // survive exec), the C library's own too.
    for sig in 1..=64 {
        if sig == Signal::SIGKILL as i32 || sig == Signal::SIGSTOP as i32 {
            continue;
        }
        let _ = signals::set_disposition(sig, signals::Disposition::Default);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
    Ok(())
}

impl Child {
    /// Sends `sig` to the child's process group. A group that is already gone is not an error
    /// worth more than a debug line: the child may exit at any moment.
    pub fn signal_group(&self, sig: Sig) {
        match signals::send(-self.pid.as_raw(), Some(sig)) {
            Ok(()) => {
                // The kernel wakes the signalled process on this CPU, next to its waker, where
                // it would wait while we log and go back to waiting. Step aside: its handler
                // runs first (forwarding p50 114 -> 103 us on two busy cores, 84 -> 51 us with
                // everything on one, benchkit sigbench, 800 signals each).
                std::thread::yield_now();
                tracing::debug!("sent {sig} to process group {}", self.pid);
            }
            Err(Errno::ESRCH) => {
                // The leader may have called setsid, or the group emptied; try the leader alone.
                match signals::send(self.pid.as_raw(), Some(sig)) {
                    Ok(()) | Err(Errno::ESRCH) => {}
                    Err(e) => tracing::warn!("could not send {sig} to pid {}: {e}", self.pid),
                }
            }
            Err(e) => tracing::warn!("could not send {sig} to process group {}: {e}", self.pid),
        }
    }

    /// SIGKILLs whatever is left of the process group (after the grace period).
    pub fn kill_group(&self) {
        match signals::send(-self.pid.as_raw(), Some(Sig::KILL)) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => tracing::warn!("could not SIGKILL process group {}: {e}", self.pid),
        }
    }
}
