//! The system calls the explorer makes itself, through nix's re-export of libc: signal masks and
//! waits (raw, so the C library's reserved signals can be blocked too), namespaces, mounts and
//! resource limits for the containers, pidfds and poll for the kubelet's wait, and
//! CLOCK_MONOTONIC, the one clock every process of a run stamps its events with.

use nix::libc;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Nanoseconds of CLOCK_MONOTONIC: the same clock in every process and namespace of the machine.
pub fn now() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes only the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

pub fn ns(d: Duration) -> u64 {
    d.as_nanos() as u64
}

/// The kernel's bit for signal `sig` in a 64-bit signal mask.
pub fn bit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

/// Every signal the kernel lets a process block (all but KILL and STOP).
pub fn all_signals() -> u64 {
    !(bit(libc::SIGKILL) | bit(libc::SIGSTOP))
}

fn sigprocmask(how: i32, mask: u64) -> io::Result<()> {
    // SAFETY: rt_sigprocmask reads the 8-byte mask we pass and writes nothing (no old set).
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            how,
            &mask as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub fn block(mask: u64) -> io::Result<()> {
    sigprocmask(libc::SIG_BLOCK, mask)
}

pub fn unblock(mask: u64) -> io::Result<()> {
    sigprocmask(libc::SIG_UNBLOCK, mask)
}

/// A signal taken from the pending set.
pub struct Taken {
    pub sig: i32,
    /// The sender's pid as this process's namespace sees it (0: from an ancestor namespace).
    pub pid: i32,
    pub code: i32,
}

/// Takes one pending signal of `mask` (which must be blocked), waiting at most `timeout` (None:
/// for ever). None on timeout or interruption.
pub fn take(mask: u64, timeout: Option<Duration>) -> Option<Taken> {
    // SAFETY: siginfo_t is plain data; all-zero is a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().try_into().unwrap_or(i64::MAX),
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let tsp = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: rt_sigtimedwait reads the mask and the timespec and writes the siginfo we own.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigtimedwait,
            &mask as *const u64,
            &mut info as *mut libc::siginfo_t,
            tsp,
            8usize,
        )
    };
    if r <= 0 {
        return None;
    }
    // SAFETY: the kernel filled in the siginfo for the signal it returned.
    let pid = unsafe { info.si_pid() };
    Some(Taken {
        sig: r as i32,
        pid,
        code: info.si_code,
    })
}

/// Dies by `sig` with its default action (RLIMIT_CORE is 0 in every container: no core file).
pub fn die_by(sig: i32) -> ! {
    // SAFETY: restoring the default disposition and signalling ourselves have no memory effects.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
    }
    let _ = unblock(bit(sig));
    // SAFETY: as above.
    unsafe {
        libc::kill(libc::getpid(), sig);
    }
    // Only reached when the signal's default action is to do nothing.
    std::process::exit(128 + sig)
}

pub fn kill(pid: i32, sig: i32) -> bool {
    // SAFETY: kill(2) has no memory effects; a stale pid only yields ESRCH.
    unsafe { libc::kill(pid, sig) == 0 }
}

pub fn getpid() -> i32 {
    // SAFETY: getpid cannot fail.
    unsafe { libc::getpid() }
}

/// fork(2); only called by the single-threaded helpers.
pub fn fork() -> io::Result<i32> {
    // SAFETY: the helpers are single-threaded, so the child may run any code.
    let r = unsafe { libc::fork() };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r)
}

/// Reaps every exited child without blocking.
pub fn reap_all() {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status we own.
        let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if r <= 0 {
            return;
        }
    }
}

/// Waits for any child; false when there is none.
pub fn reap_one() -> bool {
    let mut status = 0;
    // SAFETY: waitpid writes the status we own.
    unsafe { libc::waitpid(-1, &mut status, 0) > 0 }
}

/// A pidfd for `pid`: readable once the process has exited.
pub fn pidfd(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes plain integers and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the descriptor is new and ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Waits until one of `fds` is readable or `timeout` passes; returns which are readable.
pub fn poll_readable(fds: &[RawFd], timeout: Duration) -> Vec<bool> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: poll reads and writes the array of pollfds we own, of the length we pass.
    let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
    if r <= 0 {
        return vec![false; fds.len()];
    }
    pfds.iter().map(|p| p.revents != 0).collect()
}

/// setns(2) for the calling thread.
pub fn setns(fd: RawFd, kind: i32) -> io::Result<()> {
    // SAFETY: setns takes a descriptor and a flag; it changes only the calling thread's namespaces.
    if unsafe { libc::setns(fd, kind) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// unshare(2) for the calling thread.
pub fn unshare(flags: i32) -> io::Result<()> {
    // SAFETY: unshare takes a flag; it changes only the calling thread's namespaces.
    if unsafe { libc::unshare(flags) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub fn open_ns(path: &str) -> io::Result<OwnedFd> {
    let f = std::fs::File::open(path)?;
    Ok(OwnedFd::from(f))
}

/// Between fork and exec: a fresh /proc for the new PID namespace, in a private mount namespace
/// of its own, as `unshare --mount-proc` does. Async-signal-safe (system calls only).
pub fn mount_proc() -> io::Result<()> {
    let none = c"none";
    let root = c"/";
    let proc_ = c"proc";
    let target = c"/proc";
    // SAFETY: plain system calls on static NUL-terminated strings.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) < 0
            || libc::mount(
                none.as_ptr(),
                root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) < 0
            || libc::mount(
                proc_.as_ptr(),
                target.as_ptr(),
                proc_.as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                std::ptr::null(),
            ) < 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Between fork and exec: what every container process gets. It joins its cgroup (the
/// kubelet's unit of killing and counting), dumps no core (the faults sent in a run would fill
/// the disk), leads a session of its own, and dies with the explorer's thread that started it.
pub fn container_setup(cgroup_procs: RawFd) -> io::Result<()> {
    let zero = b"0";
    let no_core = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on memory we own; all async-signal-safe.
    unsafe {
        if libc::write(cgroup_procs, zero.as_ptr().cast(), 1) != 1
            || libc::setrlimit(libc::RLIMIT_CORE, &no_core) < 0
            || libc::setsid() < 0
            || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) < 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
