//! Signals: their numbers and names, which ones the supervisor takes, and the signalfd it reads.
//!
//! Theory of operation: before anything else runs (and before any thread exists, so every thread
//! inherits it) the supervisor blocks every signal it handles and reads them from a signalfd. A
//! blocked signal is queued even for PID 1 (the kernel drops signals with a default disposition for
//! the init of a PID namespace only when they are not blocked), nothing runs in signal-handler
//! context, and SIGCHLDs that merge into one are fine because the reaper drains every exited child
//! on each one.
//!
//! Signals are kernel numbers ([`Sig`], 1 to 64), not nix's `Signal`, which cannot name the
//! real-time range. Which of them do what ([`Handling`]):
//! - KILL and STOP cannot be caught.
//! - The synchronous faults (SEGV, BUS, ILL, FPE, TRAP, SYS, ABRT) are blocked like the rest, and
//!   forwarded when they arrive: one that arrives through the signalfd was sent by a process
//!   (`kill`, `sigqueue`, `tkill`). A real fault of the supervisor's own never waits in the queue:
//!   the kernel forces it through, unblocking it and resetting it to its default action, so a bug
//!   still ends the supervisor at once (and `abort` unblocks SIGABRT before it raises it again).
//! - 32 and 33 belong to the C library (glibc's thread cancellation and set*id broadcast; musl
//!   uses 32-34 the same way): no program sends them to another on purpose, so they are blocked
//!   (they cannot kill us) and dropped, never forwarded.
//! - CHLD is consumed by the reaper, never forwarded. PIPE is ours when our own write to a closed
//!   stderr raised it (dropped), and forwarded when another process sent it.
//! - Everything else, the real-time range included, is forwarded to the child's process group.
//!
//! The real-time range is named the way glibc, `kill -l`, Docker and Kubernetes name it: RTMIN is
//! 34 (not musl's 35), so `STOPSIGNAL SIGRTMIN+3` (systemd images) means 37 here as everywhere.
//! Masks are built as raw 64-bit kernel masks and set with raw syscalls, because both C libraries
//! refuse to add their reserved signals to a `sigset_t`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// A signal number the kernel can deliver: 1 to 64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sig(u8);

/// The first real-time signal, as glibc and every container runtime number it.
pub const RTMIN: i32 = 34;
/// The last signal the kernel has.
pub const RTMAX: i32 = 64;

/// Names of the standard signals, indexed by number (without the `SIG` prefix).
const NAMES: [&str; 32] = [
    "", "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
    "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
    "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
];

impl Sig {
    pub const HUP: Sig = Sig(1);
    pub const INT: Sig = Sig(2);
    pub const QUIT: Sig = Sig(3);
    pub const ABRT: Sig = Sig(6);
    pub const KILL: Sig = Sig(9);
    pub const USR1: Sig = Sig(10);
    pub const SEGV: Sig = Sig(11);
    pub const USR2: Sig = Sig(12);
    pub const PIPE: Sig = Sig(13);
    pub const TERM: Sig = Sig(15);
    pub const CHLD: Sig = Sig(17);
    pub const CONT: Sig = Sig(18);
    pub const STOP: Sig = Sig(19);
    pub const TSTP: Sig = Sig(20);
    pub const WINCH: Sig = Sig(28);
    pub const IO: Sig = Sig(29);

    /// The signal numbered `n`, if the kernel has one.
    pub fn new(n: i32) -> Option<Sig> {
        (1..=RTMAX).contains(&n).then_some(Sig(n as u8))
    }

    pub fn number(self) -> i32 {
        i32::from(self.0)
    }

    /// Every signal, 1 to 64.
    pub fn all() -> impl Iterator<Item = Sig> {
        (1..=RTMAX as u8).map(Sig)
    }

    /// What the supervisor does with this signal when it arrives.
    pub fn handling(self) -> Handling {
        match self.0 {
            9 | 19 => Handling::Uncatchable,
            32 | 33 => Handling::Reserved,
            17 => Handling::Reap,
            _ => Handling::Forward,
        }
    }

    /// Whether the default action of this signal continues or suspends a process (CONT, TSTP,
    /// TTIN, TTOU): sent to ask a process to stop, it would leave it running.
    pub fn suspends_or_continues(self) -> bool {
        matches!(self.0, 18 | 20 | 21 | 22)
    }

    fn bit(self) -> u64 {
        1u64 << (self.0 - 1)
    }
}

impl std::fmt::Display for Sig {
    /// `TERM`, `RTMIN`, `RTMIN+3`, `RTMAX-1`, `RTMAX`; 32 and 33, which have no name, as numbers.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.number();
        match n {
            1..=31 => f.write_str(NAMES[n as usize]),
            32 | 33 => write!(f, "{n}"),
            RTMIN => f.write_str("RTMIN"),
            RTMAX => f.write_str("RTMAX"),
            _ if n - RTMIN <= (RTMAX - RTMIN) / 2 => write!(f, "RTMIN+{}", n - RTMIN),
            _ => write!(f, "RTMAX-{}", RTMAX - n),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid signal {input:?}: {why}")]
pub struct SigError {
    input: String,
    why: &'static str,
}

impl std::str::FromStr for Sig {
    type Err = SigError;

    /// `TERM`, `SIGTERM`, `sigterm`, `15`, `RTMIN`, `RTMIN+3`, `SIGRTMAX-2`, `37`.
    fn from_str(s: &str) -> Result<Sig, SigError> {
        let err = |why| SigError {
            input: s.to_string(),
            why,
        };
        let t = s.trim();
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
            return t
                .parse::<i32>()
                .ok()
                .and_then(Sig::new)
                .ok_or(err("signals are numbered 1 to 64"));
        }
        let upper = t.to_ascii_uppercase();
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
            return name.parse::<Sig>();
        }
        if let Some(i) = NAMES.iter().skip(1).position(|n| *n == name) {
            return Ok(Sig(i as u8 + 1));
        }
        let offset = |rest: &str, sign: i32| -> Option<Sig> {
            let n: i32 = match rest {
                "" => 0,
                _ => rest
                    .strip_prefix(if sign > 0 { '+' } else { '-' })?
                    .parse()
                    .ok()?,
            };
            let base = if sign > 0 { RTMIN } else { RTMAX };
            Sig::new(base + sign * n).filter(|s| (RTMIN..=RTMAX).contains(&s.number()))
        };
        let rt = if let Some(rest) = name.strip_prefix("RTMIN") {
            offset(rest, 1)
        } else if let Some(rest) = name.strip_prefix("RTMAX") {
            offset(rest, -1)
        } else {
            return Err(err(
                "expected a name like TERM, QUIT or RTMIN+3, or a number",
            ));
        };
        rt.ok_or(err("the real-time range is RTMIN (34) to RTMAX (64)"))
    }
}

/// What arriving at the supervisor does to a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    /// KILL, STOP: the kernel acts on them directly.
    Uncatchable,
    /// Reserved by the C library: blocked and dropped.
    Reserved,
    /// CHLD: reap.
    Reap,
    /// Forwarded to the child's process group (PIPE only when another process sent it).
    Forward,
}

/// A set of signals (a raw kernel mask).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SigSet(u64);

impl SigSet {
    pub fn empty() -> SigSet {
        SigSet(0)
    }

    pub fn with(mut self, sig: Sig) -> SigSet {
        self.0 |= sig.bit();
        self
    }

    pub fn contains(self, sig: Sig) -> bool {
        self.0 & sig.bit() != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Sig> {
        Sig::all().filter(move |s| self.contains(*s))
    }

    /// Every signal the supervisor blocks and reads from its signalfd.
    pub fn handled() -> SigSet {
        Sig::all()
            .filter(|s| s.handling() != Handling::Uncatchable)
            .fold(SigSet::empty(), SigSet::with)
    }
}

impl std::fmt::Display for SigSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.iter().map(|s| s.to_string()).collect();
        f.write_str(&names.join(","))
    }
}

/// Parses a list like `TERM,QUIT,RTMIN+3` (names or numbers). Only signals the supervisor passes
/// on can be in it: not KILL or STOP (the kernel acts on them), CHLD, or the C library's 32 and 33.
pub fn parse_list(s: &str) -> Result<SigSet, SigError> {
    let mut set = SigSet::empty();
    for part in s.split(',') {
        let sig: Sig = part.parse()?;
        if sig.handling() != Handling::Forward {
            return Err(SigError {
                input: part.trim().to_string(),
                why: "the supervisor never receives it as a request to stop",
            });
        }
        set = set.with(sig);
    }
    Ok(set)
}

/// Blocks the handled signals in the calling thread and sets the C library's own signals (32-34)
/// to be ignored. Call first, before any thread is created.
///
/// Why the second part: musl's first `pthread_create` unblocks 33 and 34 in the calling thread
/// (and each new thread starts with 33 unblocked; glibc's with 32 and 33), and a real-time signal's
/// default action ends the process. Every thread is spawned through [`spawn_thread`], which blocks
/// them again; in the moment before it does, one of them sent from outside is dropped rather than
/// fatal. A blocked signal is never ignored by the kernel: it is still queued for the signalfd, so
/// 34 (RTMIN) is forwarded as before. The child gets every disposition back as SIG_DFL.
pub fn block() -> io::Result<()> {
    set_mask()?;
    for sig in 32..=34 {
        set_disposition(sig, Disposition::Ignore)?;
    }
    Ok(())
}

/// A disposition [`set_disposition`] can set.
#[derive(Debug, Clone, Copy)]
pub enum Disposition {
    Default = 0,
    Ignore = 1,
}

/// Sets signal `n`'s disposition with the raw rt_sigaction, because both C libraries refuse their
/// own signals (32-34). No flags, an empty mask. Async-signal-safe: it may run between fork and
/// exec.
pub fn set_disposition(n: i32, to: Disposition) -> io::Result<()> {
    // The kernel's sigaction has the handler first on every architecture's layout (SIG_DFL 0,
    // SIG_IGN 1), then flags, (restorer,) mask: zero for each.
    let action = [to as u64, 0, 0, 0];
    // SAFETY: rt_sigaction reads a properly sized struct from a live local and writes nothing
    // (no old action requested); a plain syscall.
    let r = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_rt_sigaction,
            n,
            action.as_ptr(),
            std::ptr::null_mut::<u64>(),
            8usize,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn set_mask() -> io::Result<()> {
    sigprocmask(nix::libc::SIG_BLOCK, Some(SigSet::handled().0)).map(drop)
}

/// The raw rt_sigprocmask: `how` with `mask` (none: only read), returning the mask before. The
/// raw call, because the C library filters its reserved signals out of both.
fn sigprocmask(how: nix::libc::c_int, mask: Option<u64>) -> io::Result<u64> {
    let mut old = 0u64;
    let new = mask.as_ref().map_or(std::ptr::null(), |m| m as *const u64);
    // SAFETY: rt_sigprocmask reads at most one 8-byte kernel mask from a live local and writes
    // one into another.
    let r = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_rt_sigprocmask,
            how,
            new,
            &mut old as *mut u64,
            8usize,
        )
    };
    if r == 0 {
        Ok(old)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Spawns a named thread with the caller's signal mask, and gives the caller its mask back: the
/// C library unblocks its own signals (see [`block`]) when it creates a thread, and a signal a
/// supervisor's thread left unblocked would be delivered there instead of to the signalfd.
pub fn spawn_thread<F>(name: &str, stack: usize, f: F) -> io::Result<()>
where
    F: FnOnce() + Send + 'static,
{
    let mask = sigprocmask(nix::libc::SIG_BLOCK, None)?;
    let spawned = std::thread::Builder::new()
        .name(name.into())
        .stack_size(stack)
        .spawn(move || {
            if let Err(e) = sigprocmask(nix::libc::SIG_SETMASK, Some(mask)) {
                tracing::warn!("cannot set the signal mask of a new thread: {e}");
            }
            f()
        });
    let again = sigprocmask(nix::libc::SIG_SETMASK, Some(mask));
    spawned?;
    again.map(drop)
}

/// One signal as the signalfd reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub sig: Sig,
    /// The sending process (0 for the kernel).
    pub from: u32,
    /// `si_code`: how it was sent (0 `kill`, negative `sigqueue`/`tkill`, positive from the kernel).
    pub code: i32,
}

impl Received {
    /// A SIGPIPE our own write raised (the kernel names us as its sender): not news for the child.
    pub fn is_own_pipe(&self) -> bool {
        self.sig == Sig::PIPE && self.from == std::process::id()
    }

    /// A SIGIO the kernel sent for one of our dnotify watches (see `watch`), not one a process
    /// sent: those have a code of 0 or below.
    pub fn is_dnotify(&self) -> bool {
        self.sig == Sig::IO && self.code > 0 && self.from == 0
    }
}

/// The kernel's `struct signalfd_siginfo`: 128 bytes, of which we read the first fields.
#[repr(C)]
struct SigInfo {
    signo: u32,
    errno: i32,
    code: i32,
    pid: u32,
    rest: [u8; 112],
}

/// A signalfd for the handled signals, opened with a raw kernel mask.
struct RawSignalFd(OwnedFd);

impl AsFd for RawSignalFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl RawSignalFd {
    fn open(mask: SigSet) -> io::Result<RawSignalFd> {
        let flags = nix::libc::SFD_NONBLOCK | nix::libc::SFD_CLOEXEC;
        // SAFETY: signalfd4 with fd -1 creates a new descriptor; it reads an 8-byte mask from a
        // live local.
        let fd = unsafe {
            nix::libc::syscall(
                nix::libc::SYS_signalfd4,
                -1,
                &mask.0 as *const u64,
                8usize,
                flags,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
        Ok(RawSignalFd(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
    }

    /// Reads the pending signals, up to [`BATCH`] of them, in one read (none: an empty batch).
    fn read(&self) -> io::Result<Batch> {
        const EMPTY: SigInfo = SigInfo {
            signo: 0,
            errno: 0,
            code: 0,
            pid: 0,
            rest: [0; 112],
        };
        let mut infos = [EMPTY; BATCH];
        let size = std::mem::size_of::<SigInfo>();
        // SAFETY: reads at most BATCH records into a live array of #[repr(C)] records.
        let n =
            unsafe { nix::libc::read(self.0.as_raw_fd(), infos.as_mut_ptr().cast(), size * BATCH) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock => Ok(Batch::default()),
                _ => Err(e),
            };
        }
        if n as usize % size != 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "short read from the signalfd",
            ));
        }
        let mut batch = Batch {
            full: n as usize == size * BATCH,
            ..Batch::default()
        };
        for (slot, info) in batch.got.iter_mut().zip(&infos[..n as usize / size]) {
            *slot = Sig::new(info.signo as i32).map(|sig| Received {
                sig,
                from: info.pid,
                code: info.code,
            });
        }
        Ok(batch)
    }
}

/// How many signals one read takes at most.
pub const BATCH: usize = 8;

/// The signals one read took. `full`: the read filled the buffer, so more may be pending;
/// otherwise every signal pending at the time was taken, and a later one wakes the loop again.
#[derive(Debug, Default)]
pub struct Batch {
    got: [Option<Received>; BATCH],
    pub full: bool,
}

impl Batch {
    pub fn iter(&self) -> impl Iterator<Item = Received> + '_ {
        self.got.iter().flatten().copied()
    }
}

/// Blocked signals, delivered through a non-blocking signalfd.
pub struct Signals {
    fd: RawSignalFd,
}

impl Signals {
    pub fn new() -> io::Result<Self> {
        Ok(Signals {
            fd: RawSignalFd::open(SigSet::handled())?,
        })
    }

    /// The descriptor to wait on: readable while a signal is pending.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The pending signals, in one read: one syscall per wake-up, where reading one at a time
    /// took a second read (EAGAIN) on the way to the signal's forwarding.
    pub fn read(&self) -> io::Result<Batch> {
        self.fd.read()
    }
}

/// `kill(2)` with a raw signal number (`None` probes), which nix's `Signal` cannot name for the
/// real-time range. `pid` as kill takes it: negative for a group, -1 for everything we may signal.
pub fn send(pid: i32, sig: Option<Sig>) -> Result<(), nix::errno::Errno> {
    let n = sig.map_or(0, Sig::number);
    // SAFETY: kill has no memory-safety requirements.
    nix::errno::Errno::result(unsafe { nix::libc::kill(pid, n) }).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_for_every_signal() {
        for s in Sig::all() {
            let name = s.to_string();
            assert_eq!(name.parse::<Sig>(), Ok(s), "{name}");
            assert_eq!(format!("SIG{name}").parse::<Sig>(), Ok(s), "{name}");
            assert_eq!(s.number().to_string().parse::<Sig>(), Ok(s));
        }
    }

    #[test]
    fn names_follow_the_glibc_and_container_runtime_convention() {
        let cases = [
            ("TERM", 15),
            ("sigterm", 15),
            ("term", 15),
            (" 15 ", 15),
            ("QUIT", 3),
            ("RTMIN", 34),
            ("RTMIN+3", 37),
            ("SIGRTMIN+3", 37),
            ("rtmax", 64),
            ("RTMAX-1", 63),
            ("RTMIN+30", 64),
            ("37", 37),
            ("32", 32),
        ];
        for (s, n) in cases {
            assert_eq!(s.parse::<Sig>().map(Sig::number), Ok(n), "{s}");
        }
        assert_eq!(Sig::new(37).unwrap().to_string(), "RTMIN+3");
        assert_eq!(Sig::new(63).unwrap().to_string(), "RTMAX-1");
        assert_eq!(Sig::new(49).unwrap().to_string(), "RTMIN+15");
        assert_eq!(Sig::new(50).unwrap().to_string(), "RTMAX-14");
        for s in [
            "", "NOPE", "0", "65", "99", "-15", "SIG", "RTMIN+31", "RTMAX-31", "RTMIN-1",
            "RTMAX+1", "RTMIN+", "RTMIN3", "1e1",
        ] {
            let e = s.parse::<Sig>().unwrap_err();
            assert!(e.to_string().contains(&format!("{s:?}")), "{s}: {e}");
        }
    }

    #[test]
    fn term_signal_lists() {
        let set = parse_list("TERM,QUIT,RTMIN+3").unwrap();
        assert_eq!(set.to_string(), "QUIT,TERM,RTMIN+3");
        assert!(set.contains(Sig::TERM) && !set.contains(Sig::INT));
        assert_eq!(parse_list("15, 2").unwrap().to_string(), "INT,TERM");
        for bad in ["", "TERM,", "KILL", "STOP", "CHLD", "32", "TERM,NOPE"] {
            assert!(parse_list(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn own_sigpipe_and_dnotify_signals_are_recognised() {
        let me = std::process::id();
        let r = |sig, from, code| Received { sig, from, code };
        assert!(r(Sig::PIPE, me, 0).is_own_pipe());
        assert!(!r(Sig::PIPE, me + 1, 0).is_own_pipe());
        assert!(!r(Sig::TERM, me, 0).is_own_pipe());
        assert!(r(Sig::IO, 0, 0x80).is_dnotify());
        assert!(
            !r(Sig::IO, 42, 0).is_dnotify(),
            "kill -IO from a process is forwarded"
        );
        assert!(!r(Sig::IO, 42, -1).is_dnotify());
    }
}
