//! How a supervised run ended: the one value from which the marker's reason, signal and codes,
//! the closing log line, the termination message and the process exit code all derive.
//!
//! Policies decide an [`Ending`]; nothing downstream decides again. The exit code of each ending
//! lives in `exit` (the one table); the words live here.

use crate::child::{SpawnError, SpawnFailure};
use crate::clock;
use crate::marker::{Dependency, Reason};
pub use crate::reaper::ChildStatus;
use crate::signals::Sig;
use std::time::Duration;

/// Why an exec failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecFailure {
    NotFound,
    NotExecutable,
}

/// Why a sidecar stopped its daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopCause {
    /// Every marker it waited for arrived (and counted). `main_code`: the first non-zero code
    /// among them, else 0 when any said 0, else unknown.
    MainsDone { main_code: Option<i64> },
    /// A main's lease was released, or went stale, without a marker.
    MainVanished { lease: String },
    /// A stop signal reached the supervisor itself (pod deletion, a native sidecar's shutdown).
    Requested(Sig),
    /// `main`: a `--requires` sidecar was stopped by a signal from outside: the pod is stopping.
    PodStopping { dependency: Dependency, sig: Sig },
}

/// What the supervisor exits with after a stop: a main with its command's own code, a sidecar as
/// `--exit-code` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoppedExit {
    /// `main`: the command's own code (128+N for a signal), as a shell reports it.
    Command,
    Zero,
    /// The main's code from its marker (clamped to 0-255; unknown counts as 0).
    MainCode(i64),
    /// The daemon's own status.
    Daemon,
    /// A main vanished: 137, the code of the SIGKILL that most likely took it.
    MainVanished,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The command exited by itself (for a sidecar: before the mains were done).
    Exited(i32),
    /// The command was killed by a signal (for a sidecar: before the mains were done).
    Signaled(Sig),
    /// `main`: the command outlived `--grace` after a stop signal and was SIGKILLed.
    GraceKilled { grace: Duration },
    /// `main --timeout` expired and the command was stopped.
    TimedOut {
        after: Duration,
        status: ChildStatus,
    },
    /// A `main --requires` sidecar ended first and the command was stopped (`status`), or never
    /// started (`None`).
    DependencyFailed {
        dependency: Dependency,
        status: Option<ChildStatus>,
    },
    /// The supervisor stopped the command (`status`) `took` after asking it to: a sidecar because
    /// the mains were done or it was asked to stop, a main because the pod is stopping.
    Stopped {
        cause: StopCause,
        status: ChildStatus,
        exit: StoppedExit,
        took: Duration,
    },
    /// A sidecar's daemon exited 0 before the mains were done and left processes behind.
    Daemonized,
    /// The command could not be executed.
    ExecFailed { failure: ExecFailure, error: String },
    /// `--wait-timeout` expired first: the command never ran.
    NotReady {
        pending: Vec<String>,
        waited: Duration,
    },
    /// Asked to stop before the command started.
    Cancelled(Sig),
    /// The supervisor itself failed; the command never ran.
    SupervisorError(String),
}

impl Ending {
    /// How a run ends when its command cannot be started.
    pub fn from_spawn(e: &SpawnError) -> Ending {
        let error = e.message.clone();
        match e.failure {
            SpawnFailure::NotFound => Ending::ExecFailed {
                failure: ExecFailure::NotFound,
                error,
            },
            SpawnFailure::NotExecutable => Ending::ExecFailed {
                failure: ExecFailure::NotExecutable,
                error,
            },
            SpawnFailure::Other => Ending::SupervisorError(error),
        }
    }

    /// The signal from outside that stopped the run (directly, or through a required sidecar).
    pub fn stop_request(&self) -> Option<Sig> {
        match self {
            Ending::Stopped {
                cause: StopCause::Requested(s) | StopCause::PodStopping { sig: s, .. },
                ..
            } => Some(*s),
            _ => None,
        }
    }

    pub fn reason(&self) -> Reason {
        match self {
            Ending::Exited(_) => Reason::Exited,
            Ending::Signaled(_) => Reason::Signaled,
            Ending::GraceKilled { .. } => Reason::GraceKilled,
            Ending::TimedOut { .. } => Reason::TimedOut,
            Ending::DependencyFailed { .. } => Reason::DependencyFailed,
            Ending::Stopped { .. } => Reason::Stopped,
            Ending::Daemonized => Reason::Daemonized,
            Ending::ExecFailed { .. } => Reason::ExecFailed,
            Ending::NotReady { .. } => Reason::NotReady,
            Ending::Cancelled(_) => Reason::Cancelled,
            Ending::SupervisorError(_) => Reason::SupervisorError,
        }
    }

    /// How the command itself ended, when it ran.
    pub fn status(&self) -> Option<ChildStatus> {
        match self {
            Ending::Exited(c) => Some(ChildStatus::Exited(*c)),
            Ending::Signaled(s) => Some(ChildStatus::Signaled(*s)),
            Ending::GraceKilled { .. } => Some(ChildStatus::Signaled(Sig::KILL)),
            Ending::TimedOut { status, .. } | Ending::Stopped { status, .. } => Some(*status),
            Ending::DependencyFailed { status, .. } => *status,
            Ending::Daemonized => Some(ChildStatus::Exited(0)),
            Ending::ExecFailed { .. }
            | Ending::NotReady { .. }
            | Ending::Cancelled(_)
            | Ending::SupervisorError(_) => None,
        }
    }

    /// The signal the marker names: the one that ended the command, or cancelled its start.
    pub fn signal(&self) -> Option<Sig> {
        match self {
            Ending::Cancelled(s) => Some(*s),
            _ => self.status().and_then(ChildStatus::signal),
        }
    }

    /// The error text the marker carries, for endings that have one.
    pub fn error(&self) -> Option<String> {
        match self {
            Ending::ExecFailed { error, .. } | Ending::SupervisorError(error) => {
                Some(error.clone())
            }
            Ending::NotReady { pending, waited } => Some(format!(
                "not ready after {}: {}",
                clock::human(*waited),
                pending.join(", ")
            )),
            _ => None,
        }
    }

    pub fn dependency(&self) -> Option<&Dependency> {
        match self {
            Ending::DependencyFailed { dependency, .. }
            | Ending::Stopped {
                cause: StopCause::PodStopping { dependency, .. },
                ..
            } => Some(dependency),
            _ => None,
        }
    }

    /// What happened, in words, as the closing log line and the termination message's first line
    /// say it: `./ci.sh exited with code 3 after 12m04s`. `command` is the command as displayed,
    /// `elapsed` the supervisor's whole run.
    pub fn sentence(&self, command: &str, elapsed: Duration) -> String {
        let after = clock::human(elapsed);
        match self {
            Ending::Exited(c) => format!("{command} exited with code {c} after {after}"),
            Ending::Signaled(s) => format!("{command} was killed by signal {s} after {after}"),
            Ending::GraceKilled { grace } => format!(
                "{command} was SIGKILLed after {after}: it did not stop within --grace {}",
                clock::human(*grace)
            ),
            Ending::TimedOut {
                after: limit,
                status,
            } => format!(
                "{command} timed out after {} (--timeout) and {}",
                clock::human(*limit),
                stopped_status(*status)
            ),
            Ending::DependencyFailed { dependency, status } => {
                let what = dependency_words(dependency);
                match status {
                    Some(st) => format!(
                        "stopped after its dependency {} ended ({what}); {command} {}",
                        dependency.path,
                        stopped_status(*st)
                    ),
                    None => format!(
                        "not started: its dependency {} ended first ({what})",
                        dependency.path
                    ),
                }
            }
            Ending::Stopped {
                cause,
                status,
                took,
                ..
            } => {
                let why = match cause {
                    StopCause::MainsDone { main_code: Some(c) } => {
                        format!("after the main finished (main's code {c})")
                    }
                    StopCause::MainsDone { main_code: None } => {
                        "after the main finished (main's code unknown)".to_string()
                    }
                    StopCause::MainVanished { lease } => {
                        format!("after the main vanished without a marker (lease {lease})")
                    }
                    StopCause::Requested(s) => format!("on {s}"),
                    StopCause::PodStopping { dependency, sig } => format!(
                        "because the pod is stopping (its sidecar {} was stopped on {sig})",
                        dependency.path
                    ),
                };
                let how = match status {
                    ChildStatus::Signaled(Sig::KILL) => {
                        "it outlived --grace and died after SIGKILL".into()
                    }
                    st => format!("it {}", st.describe()),
                };
                format!("{command} stopped in {} {why}; {how}", clock::human(*took))
            }
            Ending::Daemonized => format!(
                "{command} exited 0 after {after} but left processes running: it daemonized, so \
                 nothing supervises the daemon. Keep it in the foreground (e.g. redis-server \
                 --daemonize no, nginx -g 'daemon off;')"
            ),
            Ending::ExecFailed { error, .. } => format!("{command} could not be started: {error}"),
            Ending::NotReady { pending, waited } => format!(
                "not started: {} not ready after {}",
                pending.join(", "),
                clock::human(*waited)
            ),
            Ending::Cancelled(s) => format!("not started: received {s} while waiting"),
            Ending::SupervisorError(e) => format!("{e}; not starting the command ({command})"),
        }
    }
}

/// The line said when the grace period ran out: `dockerd still running 10.0s after ...`.
pub fn grace_over_words(command: &str, grace: Duration) -> String {
    format!(
        "{command} still running {} after being asked to stop; killing its process group",
        clock::human(grace)
    )
}

/// The line said when what the command left behind outlived the grace period.
pub fn leftovers_killed_words(command: &str, grace: Duration) -> String {
    format!(
        "what {command} left behind outlived {}: SIGKILLed",
        clock::human(grace)
    )
}

/// The line said when the command ended and left processes running (`who`: the command, or
/// "the daemon").
pub fn leftovers_words(who: &str, sig: crate::signals::Sig, grace: Duration) -> String {
    format!(
        "{who} left processes running: sent them {sig}; SIGKILL after {}",
        clock::human(grace)
    )
}

/// `exited with code 0 after being stopped` and the like.
fn stopped_status(status: ChildStatus) -> String {
    match status {
        ChildStatus::Signaled(Sig::KILL) => "was SIGKILLed after --grace".to_string(),
        st => format!("{} after being stopped", st.describe()),
    }
}

/// `dockerd exited with code 1`, `its supervisor vanished without a marker`.
pub fn dependency_words(d: &Dependency) -> String {
    let who = d.command.as_deref().unwrap_or("it");
    let code = d
        .exit_code
        .map_or_else(|| "unknown".to_string(), |c| c.to_string());
    match d.reason {
        None if d.exit_code.is_none() => {
            "its supervisor vanished without a marker (SIGKILL or OOM kill)".into()
        }
        Some(Reason::Exited) => format!("{who} exited with code {code}"),
        Some(Reason::Signaled) => format!("{who} was killed by a signal, exit code {code}"),
        Some(Reason::Stopped) => format!("{who} was stopped, exit code {code}"),
        Some(r) => format!("{who} ended ({}), exit code {code}", r.as_str()),
        None => format!("{who} ended, exit code {code}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_say_what_happened() {
        let d = Duration::from_millis(724_000);
        assert_eq!(
            Ending::Exited(3).sentence("./ci.sh", d),
            "./ci.sh exited with code 3 after 12m04s"
        );
        let dep = Dependency {
            path: "/shared/dind.done".into(),
            exit_code: Some(1),
            reason: Some(Reason::Exited),
            command: Some("dockerd".into()),
        };
        let e = Ending::DependencyFailed {
            dependency: dep,
            status: Some(ChildStatus::Signaled(Sig::TERM)),
        };
        assert_eq!(
            e.sentence("./ci.sh", d),
            "stopped after its dependency /shared/dind.done ended (dockerd exited with code 1); \
             ./ci.sh was killed by signal TERM after being stopped"
        );
        assert_eq!(e.signal(), Some(Sig::TERM));
        let nr = Ending::NotReady {
            pending: vec!["unix:/var/run/docker.sock".into()],
            waited: Duration::from_secs(120),
        };
        assert_eq!(
            nr.sentence("x", d),
            "not started: unix:/var/run/docker.sock not ready after 2m00s"
        );
        let st = Ending::Stopped {
            cause: StopCause::MainsDone { main_code: Some(0) },
            status: ChildStatus::Signaled(Sig::TERM),
            exit: StoppedExit::Zero,
            took: Duration::from_millis(1000),
        };
        assert_eq!(
            st.sentence("dockerd", d),
            "dockerd stopped in 1.0s after the main finished (main's code 0); it was killed by signal TERM"
        );
        assert_eq!(st.reason(), Reason::Stopped);
    }

    #[test]
    fn signals_and_statuses() {
        assert_eq!(ChildStatus::Signaled(Sig::TERM).code(), 143);
        assert_eq!(
            Ending::GraceKilled {
                grace: Duration::ZERO
            }
            .signal(),
            Some(Sig::KILL)
        );
        assert_eq!(Ending::Cancelled(Sig::INT).status(), None);
        assert_eq!(Ending::Cancelled(Sig::INT).signal(), Some(Sig::INT));
        assert_eq!(Ending::Exited(0).signal(), None);
    }
}
