//! Spawning the supervised command and talking to its process group.
//!
//! The child gets its own process group (so a signal reaches its whole tree, and SIGKILL after the
//! grace period leaves nothing behind), a clean signal state (empty mask, default dispositions:
//! it must not inherit the supervisor's blocked set or anything ignored by whoever started us),
//! and, when the supervisor owns the terminal, the terminal's foreground, so an interactive shell
//! gets Ctrl-C directly and is not stopped by SIGTTIN.
//!
//! std::process::Command is used for the fork/exec and its error pipe (which turns exec failures
//! into ENOENT/EACCES we can map to 127/126), but never to wait: the reaper owns waitpid.

use crate::signals::{self, Sig};
use nix::errno::Errno;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::unistd::Pid;
use std::ffi::OsString;
use std::io;
use std::os::fd::BorrowedFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

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
    let mut command = Command::new(&argv[0]);
    command.args(&argv[1..]);
    let parent_pgrp = nix::unistd::getpgrp();
    // SAFETY: the closure runs in the forked child before exec, where only async-signal-safe
    // calls are allowed: setpgid, isatty/tcgetpgrp/tcsetpgrp, sigaction and sigprocmask are, and
    // nothing here allocates or takes a lock.
    unsafe {
        command.pre_exec(move || prepare_child(parent_pgrp));
    }
    match command.spawn() {
        Ok(child) => Ok(Child {
            pid: Pid::from_raw(child.id() as i32),
        }),
        Err(source) => {
            let (failure, what) = match source.raw_os_error().map(Errno::from_raw) {
                Some(Errno::ENOENT) => (SpawnFailure::NotFound, "command not found"),
                Some(Errno::EACCES | Errno::ENOEXEC | Errno::EISDIR | Errno::EPERM) => {
                    (SpawnFailure::NotExecutable, "cannot execute")
                }
                _ => (SpawnFailure::Other, "could not start"),
            };
            Err(SpawnError {
                failure,
                message: format!("{cmd}: {what} ({source})"),
            })
        }
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
    // survive exec). The raw syscall is used because libc wrappers refuse the signals they
    // reserve for themselves (32-34). An all-zero kernel sigaction is SIG_DFL with no flags and
    // an empty mask on every architecture's layout.
    let zero = [0u64; 4];
    for sig in 1..=64 {
        if sig == Signal::SIGKILL as i32 || sig == Signal::SIGSTOP as i32 {
            continue;
        }
        // SAFETY: rt_sigaction reads a properly sized, zeroed struct and writes nothing (no old
        // action requested); it is a plain syscall, async-signal-safe.
        unsafe {
            nix::libc::syscall(
                nix::libc::SYS_rt_sigaction,
                sig,
                zero.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8usize,
            );
        }
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
    Ok(())
}

impl Child {
    /// Sends `sig` to the child's process group. A group that is already gone is not an error
    /// worth more than a debug line: the child may exit at any moment.
    pub fn signal_group(&self, sig: Sig) {
        match signals::send(-self.pid.as_raw(), Some(sig)) {
            Ok(()) => tracing::debug!("sent {sig} to process group {}", self.pid),
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
