//! The one table of exit codes.
//!
//! Every exit path of every mode goes through [`code`], so the documented table (README, checked
//! by a test) and the behaviour cannot drift apart. The shell's conventions are kept: a child's
//! own code passes through, a death by signal N is 128+N, 126/127 are "cannot execute"/"not
//! found". The supervisor's own verdicts sit just below 126, where programs rarely put theirs.

use crate::ending::{Ending, ExecFailure, StoppedExit};

pub const SUCCESS: i32 = 0;
pub const PROBE_FAILED: i32 = 1;
pub const USAGE: i32 = 2;
pub const DAEMONIZED: i32 = 121;
pub const DEPENDENCY_FAILED: i32 = 122;
pub const TIMED_OUT: i32 = 123;
pub const NOT_READY: i32 = 124;
pub const INTERNAL: i32 = 125;
pub const NOT_EXECUTABLE: i32 = 126;
pub const NOT_FOUND: i32 = 127;
pub const MAIN_VANISHED: i32 = 137;

/// Every code the supervisor itself decides, in the order the documentation lists them.
pub const DOCUMENTED: [i32; 11] = [
    SUCCESS,
    PROBE_FAILED,
    USAGE,
    DAEMONIZED,
    DEPENDENCY_FAILED,
    TIMED_OUT,
    NOT_READY,
    INTERNAL,
    NOT_EXECUTABLE,
    NOT_FOUND,
    MAIN_VANISHED,
];

/// What a mode ends with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A supervising mode's run ended. `marker_lost`: its `--done-file` could not be written.
    Ended { ending: Ending, marker_lost: bool },
    /// `probe`: every target ready; `install`: done.
    Success,
    /// `probe`: a target is not ready.
    ProbeFailed,
    /// Bad command line or environment: nothing was started.
    Usage,
    /// The supervisor could not do its job before there was anything to report in a marker
    /// (signals could not be set up, `install` failed).
    Internal,
}

impl Outcome {
    pub fn ended(ending: Ending) -> Outcome {
        Outcome::Ended {
            ending,
            marker_lost: false,
        }
    }
}

/// The exit code of an ending, as written in its marker.
pub fn ending_code(ending: &Ending) -> i32 {
    match ending {
        Ending::Exited(c) => *c,
        Ending::Signaled(_) | Ending::GraceKilled { .. } => {
            ending.status().map_or(INTERNAL, |s| s.code())
        }
        Ending::TimedOut { .. } => TIMED_OUT,
        Ending::DependencyFailed { .. } => DEPENDENCY_FAILED,
        Ending::Stopped { exit, status, .. } => match exit {
            StoppedExit::Command => status.code(),
            StoppedExit::Zero => SUCCESS,
            StoppedExit::MainCode(c) => (*c).clamp(0, 255) as i32,
            StoppedExit::Daemon => status.code(),
            StoppedExit::MainVanished => MAIN_VANISHED,
        },
        Ending::Daemonized => DAEMONIZED,
        Ending::ExecFailed {
            failure: ExecFailure::NotFound,
            ..
        } => NOT_FOUND,
        Ending::ExecFailed {
            failure: ExecFailure::NotExecutable,
            ..
        } => NOT_EXECUTABLE,
        Ending::NotReady { .. } => NOT_READY,
        Ending::Cancelled(s) => 128 + s.number(),
        Ending::SupervisorError(_) => INTERNAL,
    }
}

/// The process exit code for an outcome.
pub fn code(outcome: &Outcome) -> i32 {
    match outcome {
        // A failure keeps its own code (it is the more important news); a success must not be
        // reported when the other containers were never told.
        Outcome::Ended {
            ending,
            marker_lost: true,
        } => match ending_code(ending) {
            SUCCESS => INTERNAL,
            c => c,
        },
        Outcome::Ended { ending, .. } => ending_code(ending),
        Outcome::Success => SUCCESS,
        Outcome::ProbeFailed => PROBE_FAILED,
        Outcome::Usage => USAGE,
        Outcome::Internal => INTERNAL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ending::{ChildStatus, StopCause};
    use crate::marker::Dependency;
    use crate::signals::Sig;
    use std::time::Duration;

    fn stopped(exit: StoppedExit, status: ChildStatus) -> Ending {
        Ending::Stopped {
            cause: StopCause::MainsDone { main_code: Some(4) },
            status,
            exit,
            took: Duration::ZERO,
        }
    }

    /// Every ending and outcome with its code: the table the README documents.
    fn table() -> Vec<(Outcome, i32)> {
        let mut t = endings();
        t.extend(outcomes());
        t
    }

    fn endings() -> Vec<(Outcome, i32)> {
        let term = ChildStatus::Signaled(Sig::TERM);
        let e = Outcome::ended;
        vec![
            (e(Ending::Exited(0)), 0),
            (e(Ending::Exited(3)), 3),
            (e(Ending::Signaled(Sig::TERM)), 143),
            (e(Ending::Signaled(Sig::new(37).unwrap())), 165),
            (
                e(Ending::GraceKilled {
                    grace: Duration::ZERO,
                }),
                137,
            ),
            (
                e(Ending::TimedOut {
                    after: Duration::ZERO,
                    status: term,
                }),
                123,
            ),
            (
                e(Ending::DependencyFailed {
                    dependency: Dependency {
                        path: "p".into(),
                        exit_code: None,
                        reason: None,
                        command: None,
                    },
                    status: Some(term),
                }),
                122,
            ),
            (e(stopped(StoppedExit::Zero, term)), 0),
            (e(stopped(StoppedExit::MainCode(4), term)), 4),
            (e(stopped(StoppedExit::MainCode(-1), term)), 0),
            (e(stopped(StoppedExit::MainCode(300), term)), 255),
            (e(stopped(StoppedExit::Daemon, term)), 143),
            (e(stopped(StoppedExit::MainVanished, term)), 137),
            (e(Ending::Daemonized), 121),
            (
                e(Ending::ExecFailed {
                    failure: ExecFailure::NotFound,
                    error: String::new(),
                }),
                127,
            ),
            (
                e(Ending::ExecFailed {
                    failure: ExecFailure::NotExecutable,
                    error: String::new(),
                }),
                126,
            ),
            (
                e(Ending::NotReady {
                    pending: vec![],
                    waited: Duration::ZERO,
                }),
                124,
            ),
            (e(Ending::Cancelled(Sig::TERM)), 143),
            (e(Ending::SupervisorError(String::new())), 125),
        ]
    }

    fn outcomes() -> Vec<(Outcome, i32)> {
        vec![
            (
                Outcome::Ended {
                    ending: Ending::Exited(0),
                    marker_lost: true,
                },
                125,
            ),
            (
                Outcome::Ended {
                    ending: Ending::Exited(7),
                    marker_lost: true,
                },
                7,
            ),
            (
                Outcome::Ended {
                    ending: Ending::Signaled(Sig::INT),
                    marker_lost: true,
                },
                130,
            ),
            (Outcome::Success, 0),
            (Outcome::ProbeFailed, 1),
            (Outcome::Usage, 2),
            (Outcome::Internal, 125),
        ]
    }

    #[test]
    fn codes() {
        for (outcome, want) in table() {
            assert_eq!(code(&outcome), want, "{outcome:?}");
        }
    }

    /// The README's exit-code table names exactly the supervisor's own codes.
    #[test]
    fn readme_table_matches() {
        let readme = include_str!("../README.md");
        let section = readme
            .split("## Exit codes")
            .nth(1)
            .and_then(|s| s.split("\n## ").next())
            .expect("README has an Exit codes section");
        let documented: Vec<i32> = section
            .lines()
            .filter_map(|l| l.strip_prefix("| "))
            .filter_map(|l| l.split(' ').next()?.parse().ok())
            .collect();
        let ours = DOCUMENTED;
        assert_eq!(documented, ours, "README exit-code rows, in order");
    }
}
