//! The only caller of `waitpid(-1)`.
//!
//! As PID 1 (or a child subreaper) the supervisor inherits every orphan of its container and must
//! reap them, or they stay zombies. One SIGCHLD may stand for many exits, so each call drains
//! until the kernel says there is nothing left (0 or ECHILD). The supervised child's status is
//! picked out of the stream here; nobody else may wait, or its status would be stolen.

use crate::ending::ChildStatus;
use crate::signals::Sig;
use nix::errno::Errno;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

/// Reaps every exited child. Returns the status of `watched` if it was among them, and the number
/// of other processes reaped.
pub fn reap(watched: Option<Pid>) -> (Option<ChildStatus>, usize) {
    let mut found = None;
    let mut others = 0;
    loop {
        let mut status = 0;
        // The raw call, not nix's waitpid: nix turns a death by a real-time signal into EINVAL
        // after the kernel has already reaped the child, and its status would be lost.
        // SAFETY: waitpid writes one int into a live local.
        let pid = unsafe { nix::libc::waitpid(-1, &mut status, nix::libc::WNOHANG) };
        if pid == 0 {
            break;
        }
        if pid < 0 {
            match Errno::last() {
                Errno::ECHILD => break,
                Errno::EINTR => continue,
                e => {
                    tracing::warn!("waitpid failed: {e}");
                    break;
                }
            }
        }
        let ended = if nix::libc::WIFEXITED(status) {
            Some(ChildStatus::Exited(nix::libc::WEXITSTATUS(status)))
        } else if nix::libc::WIFSIGNALED(status) {
            Sig::new(nix::libc::WTERMSIG(status)).map(ChildStatus::Signaled)
        } else {
            // Stopped/continued children are not ended; without WUNTRACED we do not see them.
            None
        };
        match ended {
            Some(st) if Some(Pid::from_raw(pid)) == watched => found = Some(st),
            Some(_) => others += 1,
            None => {}
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

/// Whether the supervisor has any child left (running or not yet reaped). Asks the kernel
/// (`waitid` with WNOWAIT, which reaps nothing), so it holds whatever /proc shows.
pub fn has_children() -> bool {
    // SAFETY: an all-zero siginfo_t is a valid value for waitid to fill in.
    let mut info: nix::libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid writes into a live, properly sized siginfo_t.
    let r = unsafe {
        nix::libc::waitid(
            nix::libc::P_ALL,
            0,
            &mut info,
            nix::libc::WEXITED | nix::libc::WNOHANG | nix::libc::WNOWAIT,
        )
    };
    r == 0
}

/// The supervisor's living children, from `/proc/self/task/*/children`, when /proc belongs to
/// the supervisor's PID namespace (it may not: `unshare --pid` without a fresh /proc shows the
/// outer namespace's numbers, which must not be signalled from inside).
fn children_from_proc() -> Option<Vec<Pid>> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let own = stat.split(' ').next()?.parse::<u32>().ok()?;
    if own != std::process::id() {
        return None;
    }
    let mut out = Vec::new();
    for t in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let list = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        out.extend(
            list.split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
                .map(Pid::from_raw),
        );
    }
    Some(out)
}

/// SIGKILLs every remaining child of the supervisor (processes that left the daemon's process
/// group and re-parented to us as subreaper or PID 1), and the group each leads, then reaps them.
/// As PID 1 that is everything else in the PID namespace: `kill(-1)` takes them all at once.
/// Returns how many were killed (at least 1 when any was, if they could not be counted).
pub fn kill_leftover_children() -> usize {
    if !has_children() {
        return 0;
    }
    let killed = if nix::unistd::getpid().as_raw() == 1 {
        // SAFETY: kill has no memory-safety requirements.
        unsafe { nix::libc::kill(-1, nix::libc::SIGKILL) };
        children_from_proc().map_or(1, |c| c.len().max(1))
    } else {
        let list = children_from_proc().unwrap_or_default();
        for &pid in &list {
            // The whole group too: a leftover that made itself a group leader took its own
            // children with it.
            let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
        list.len()
    };
    // Blocking waits: everything left was just SIGKILLed, so each returns promptly.
    while has_children() {
        if waitpid(Pid::from_raw(-1), None).is_err() {
            break;
        }
    }
    reap(None);
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
