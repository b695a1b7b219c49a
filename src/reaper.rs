//! The only caller of `waitpid(-1)`, and what is left of a child's tree after it ends.
//!
//! As PID 1 (or a child subreaper) the supervisor inherits every orphan of its container and must
//! reap them, or they stay zombies. One SIGCHLD may stand for many exits, so each call drains
//! until the kernel says there is nothing left (0 or ECHILD). The supervised child's status is
//! picked out of the stream here; nobody else may wait, or its status would be stolen.
//!
//! Leftovers are the processes of the child's tree still running after the child itself ended:
//! members of its process group, and anything that left the group and re-parented to us (we are
//! their reaper). What to do with them is the policies' business; finding, signalling and reaping
//! them is this module's.

use crate::signals::{self, Sig};
use nix::errno::Errno;
use nix::unistd::Pid;

/// How a child ended, as `waitpid` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildStatus {
    Exited(i32),
    Signaled(Sig),
}

impl ChildStatus {
    /// The exit code a shell reports: the code, or 128+N for a signal.
    pub fn code(self) -> i32 {
        match self {
            ChildStatus::Exited(c) => c,
            ChildStatus::Signaled(sig) => 128 + sig.number(),
        }
    }

    /// `exited with code 3`, `was killed by signal TERM`.
    pub fn describe(self) -> String {
        match self {
            ChildStatus::Exited(c) => format!("exited with code {c}"),
            ChildStatus::Signaled(s) => format!("was killed by signal {s}"),
        }
    }

    pub fn signal(self) -> Option<Sig> {
        match self {
            ChildStatus::Signaled(s) => Some(s),
            ChildStatus::Exited(_) => None,
        }
    }
}

/// What a drain of the exited children found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// The status of the watched child, if it was among them.
    pub watched: Option<ChildStatus>,
    /// How many other processes were reaped.
    pub others: usize,
    /// The kernel said no child is left at all (ECHILD): what [`has_children`] would ask again.
    pub none_left: bool,
}

/// Reaps every exited child.
pub fn reap(watched: Option<Pid>) -> Drained {
    let mut d = Drained {
        watched: None,
        others: 0,
        none_left: false,
    };
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
                Errno::ECHILD => {
                    d.none_left = true;
                    break;
                }
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
            Some(st) if Some(Pid::from_raw(pid)) == watched => d.watched = Some(st),
            Some(_) => d.others += 1,
            None => {}
        }
    }
    d
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

/// Whether child `pid` has ended and waits to be reaped (`waitid` with WNOWAIT reaps nothing).
pub fn has_exited(pid: Pid) -> bool {
    // SAFETY: an all-zero siginfo_t is a valid value for waitid to fill in.
    let mut info: nix::libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid writes into a live, properly sized siginfo_t.
    let r = unsafe {
        nix::libc::waitid(
            nix::libc::P_PID,
            pid.as_raw() as nix::libc::id_t,
            &mut info,
            nix::libc::WEXITED | nix::libc::WNOHANG | nix::libc::WNOWAIT,
        )
    };
    // SAFETY: waitid filled in a child's fields (si_pid is 0 when it has not ended).
    r == 0 && unsafe { info.si_pid() } == pid.as_raw()
}

/// Whether any process is left in process group `group` (after its leader exited).
pub fn group_alive(group: Pid) -> bool {
    signals::send(-group.as_raw(), None).is_ok()
}

/// Whether anything of a child's tree is left, right after `drained`: its group, or any child of
/// ours.
pub fn leftovers(group: Pid, drained: &Drained) -> bool {
    group_alive(group) || !drained.none_left
}

/// Whether /proc shows this process's own PID namespace: `unshare --pid` without a fresh /proc
/// shows the outer namespace's numbers, which must not be signalled from inside.
fn proc_is_ours() -> bool {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| s.split(' ').next()?.parse::<u32>().ok())
        == Some(std::process::id())
}

/// The children of `pid` as /proc lists them (every thread's list), if /proc is ours.
fn children_of(pid: &str) -> Vec<Pid> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        let list = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        out.extend(
            list.split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
                .map(Pid::from_raw),
        );
    }
    out
}

/// The supervisor's living children, when /proc belongs to its PID namespace.
fn own_children() -> Option<Vec<Pid>> {
    proc_is_ours().then(|| children_of("self"))
}

/// Sends `sig` to what is left of a child's tree: its group, every child of ours (they escaped
/// the group and re-parented to us) and the group each of them leads. As PID 1 that is everything
/// else in the PID namespace, which `kill(-1)` reaches at once. Returns how many processes it
/// addressed (at least 1 when it sent anything but could not count).
pub fn signal_leftovers(group: Pid, sig: Sig) -> usize {
    let _ = signals::send(-group.as_raw(), Some(sig));
    if nix::unistd::getpid().as_raw() == 1 {
        let _ = signals::send(-1, Some(sig));
        return own_children().map_or(1, |c| c.len().max(1));
    }
    let list = own_children().unwrap_or_default();
    for &pid in &list {
        let _ = signals::send(-pid.as_raw(), Some(sig));
        let _ = signals::send(pid.as_raw(), Some(sig));
    }
    list.len()
}

/// Whether a process of `group` is stopped (SIGSTOP, Ctrl-Z): only then does a stop signal need a
/// SIGCONT after it, or the process would sleep through the grace period. Looks at the group's
/// members among our descendants; when /proc cannot tell (not our namespace's), says yes, because
/// a needless SIGCONT is harmless next to a stopped process killed at the deadline.
pub fn group_has_stopped(group: Pid) -> bool {
    if !proc_is_ours() {
        return true;
    }
    let mut todo = children_of("self");
    let mut seen = 0;
    while let Some(pid) = todo.pop() {
        // A tree in our namespace is finite, but it changes while we walk it: bound the walk.
        seen += 1;
        if seen > 100_000 {
            return true;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp ...`: comm may hold spaces and parentheses; the last ')'
        // ends it.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
        if let [state, _ppid, pgrp, ..] = fields.as_slice() {
            if pgrp.parse::<i32>() == Ok(group.as_raw()) && matches!(*state, "T" | "t") {
                return true;
            }
        }
        todo.extend(children_of(&pid.to_string()));
    }
    false
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
