//! The only caller of `waitpid(-1)`.
//!
//! As PID 1 (or a child subreaper) the supervisor inherits every orphan of its container and must
//! reap them, or they stay zombies. One SIGCHLD may stand for many exits, so each call drains
//! until the kernel says there is nothing left (0 or ECHILD). The supervised child's status is
//! picked out of the stream here; nobody else may wait, or its status would be stolen.

use crate::exit::ChildStatus;
use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// Reaps every exited child. Returns the status of `watched` if it was among them, and the number
/// of other processes reaped.
pub fn reap(watched: Option<Pid>) -> (Option<ChildStatus>, usize) {
    let mut found = None;
    let mut others = 0;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
            Ok(WaitStatus::Exited(pid, code)) => {
                if Some(pid) == watched {
                    found = Some(ChildStatus::Exited(code));
                } else {
                    others += 1;
                }
            }
            Ok(WaitStatus::Signaled(pid, sig, _core)) => {
                if Some(pid) == watched {
                    found = Some(ChildStatus::Signaled(sig));
                } else {
                    others += 1;
                }
            }
            // Stopped/continued children are not ended; without WUNTRACED we do not see them,
            // but stay total.
            Ok(_) => {}
            Err(Errno::EINTR) => {}
            Err(e) => {
                tracing::warn!("waitpid failed: {e}");
                break;
            }
        }
    }
    (found, others)
}

/// Reaps after a SIGCHLD: the supervised child's status if it ended (orphans are logged).
pub fn reap_child(child: Pid) -> Option<ChildStatus> {
    let (status, orphans) = reap(Some(child));
    if orphans > 0 {
        tracing::debug!("reaped {orphans} orphaned process(es)");
    }
    status
}

/// SIGKILLs every remaining child of the supervisor (processes that left the daemon's process
/// group and re-parented to us as subreaper or PID 1), then reaps them. Returns how many.
pub fn kill_leftover_children() -> usize {
    let me = std::process::id();
    let mut killed = 0;
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{me}/task")) else {
        return 0;
    };
    for t in tasks.flatten() {
        let children = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        for pid in children
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            let pid = Pid::from_raw(pid);
            // The whole group too: a leftover that made itself a group leader took its own
            // children with it.
            let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
            if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).is_ok() {
                killed += 1;
            }
        }
    }
    if killed > 0 {
        // Blocking waits: each was just SIGKILLed, so each returns at once.
        for _ in 0..killed {
            if waitpid(Pid::from_raw(-1), None).is_err() {
                break;
            }
        }
        reap(None);
    }
    killed
}

/// Makes the supervisor a child subreaper when it is not PID 1, so orphans of the child's tree
/// re-parent to it (and get reaped) instead of escaping to the host's init.
pub fn become_subreaper() {
    if nix::unistd::getpid().as_raw() == 1 {
        return;
    }
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::warn!("could not become a child subreaper (orphans will escape): {e}");
    }
}
