//! The one table of exit codes.
//!
//! Every exit path of every mode goes through [`code`], so the documented table in the README and
//! the behaviour cannot drift apart. The shell's conventions are kept: a child's own code passes
//! through, a death by signal N is 128+N, 126/127 are "cannot execute"/"not found".

use nix::sys::signal::Signal;

/// How a supervised child ended, as seen by `waitpid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildStatus {
    Exited(i32),
    Signaled(Signal),
}

/// Why the supervisor is exiting. Each variant maps to exactly one code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The child ran and ended: its code, or 128+N for a signal.
    Child(ChildStatus),
    /// The child ran, but the marker could not be written at the end.
    ChildButMarkerFailed(ChildStatus),
    /// The command was not found (ENOENT).
    NotFound,
    /// The command exists but cannot be executed (EACCES, ENOEXEC, a directory).
    NotExecutable,
    /// Bad command line or environment: nothing was started.
    Usage,
    /// `--wait-timeout` expired before every `--wait-for` target was ready: the command never ran.
    NotReady,
    /// The supervisor itself could not do its job (marker directory not writable, fork failed,
    /// install target read-only, ...).
    Internal,
    /// The supervisor was asked to stop (SIGTERM/SIGINT) before the command started.
    Cancelled(Signal),
    /// A sidecar stopped its daemon as asked: a requested stop is a success.
    Stopped,
    /// A sidecar with `--exit-code main`: the main's code from its marker.
    MainCode(i32),
    /// A sidecar with `--exit-code main` whose main vanished without a marker (lease released or
    /// stale heartbeat). 137 because the usual cause is a SIGKILL (OOM killer, kubelet).
    MainVanished,
    /// `supervisor probe`: a target is not ready.
    ProbeFailed,
}

pub const USAGE: i32 = 2;
pub const PROBE_FAILED: i32 = 1;
pub const NOT_READY: i32 = 124;
pub const INTERNAL: i32 = 125;
pub const NOT_EXECUTABLE: i32 = 126;
pub const NOT_FOUND: i32 = 127;
pub const MAIN_VANISHED: i32 = 137;

/// The exit code of a child status, as a shell reports it.
pub fn status_code(status: ChildStatus) -> i32 {
    match status {
        ChildStatus::Exited(c) => c,
        ChildStatus::Signaled(sig) => 128 + sig as i32,
    }
}

/// The process exit code for an outcome.
pub fn code(outcome: Outcome) -> i32 {
    match outcome {
        Outcome::Child(st) => status_code(st),
        // A failed child keeps its own code (it is the more important news); a successful one
        // must not report success when the sidecars were never told.
        Outcome::ChildButMarkerFailed(st) => match status_code(st) {
            0 => INTERNAL,
            c => c,
        },
        Outcome::NotFound => NOT_FOUND,
        Outcome::NotExecutable => NOT_EXECUTABLE,
        Outcome::Usage => USAGE,
        Outcome::NotReady => NOT_READY,
        Outcome::Internal => INTERNAL,
        Outcome::Cancelled(sig) => 128 + sig as i32,
        Outcome::Stopped => 0,
        Outcome::MainCode(c) => c.clamp(0, 255),
        Outcome::MainVanished => MAIN_VANISHED,
        Outcome::ProbeFailed => PROBE_FAILED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases = [
            (Outcome::Child(ChildStatus::Exited(0)), 0),
            (Outcome::Child(ChildStatus::Exited(3)), 3),
            (Outcome::Child(ChildStatus::Signaled(Signal::SIGTERM)), 143),
            (Outcome::Child(ChildStatus::Signaled(Signal::SIGKILL)), 137),
            (Outcome::ChildButMarkerFailed(ChildStatus::Exited(0)), 125),
            (Outcome::ChildButMarkerFailed(ChildStatus::Exited(7)), 7),
            (
                Outcome::ChildButMarkerFailed(ChildStatus::Signaled(Signal::SIGINT)),
                130,
            ),
            (Outcome::NotFound, 127),
            (Outcome::NotExecutable, 126),
            (Outcome::Usage, 2),
            (Outcome::NotReady, 124),
            (Outcome::Internal, 125),
            (Outcome::Cancelled(Signal::SIGTERM), 143),
            (Outcome::Stopped, 0),
            (Outcome::MainCode(4), 4),
            (Outcome::MainCode(-1), 0),
            (Outcome::MainCode(300), 255),
            (Outcome::MainVanished, 137),
            (Outcome::ProbeFailed, 1),
        ];
        for (outcome, want) in cases {
            assert_eq!(code(outcome), want, "{outcome:?}");
        }
    }
}
