//! The modes: `main` and `sidecar` supervise, `probe` and `install` are one-shot.
//!
//! Each supervising mode is a recipe (its `mod.rs`: set up, then loop: next event, let the policy
//! decide, carry out the [`Action`]s) and a pure policy (its `policy.rs`: state + event →
//! actions, unit-tested transition by transition). What both recipes carry out the same way
//! lives here: the actions on the child and the timers, and the end of a run ([`finish`]:
//! marker, lease, termination message, closing log line).

pub mod install;
pub mod main;
pub mod probe;
pub mod sidecar;

use crate::child::Child;
use crate::clock;
use crate::config::{Note, Parsed};
use crate::ending::Ending;
use crate::events::{Events, Timer};
use crate::exit::{self, Outcome};
use crate::fsutil;
use crate::http::HttpUrl;
use crate::lease::Lease;
use crate::marker::{Marker, Role};
use crate::signals::Sig;
use crate::stop::{Ask, Step};
use crate::termlog;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};
use tracing::Level;

/// Runs a validated command line, after logging what reading it had to say.
pub fn run(mode: Parsed, notes: &[Note]) -> Outcome {
    crate::logging::set_mode(match mode {
        Parsed::Main(_) => "main",
        Parsed::Sidecar(_) => "sidecar",
        Parsed::Probe(_) => "probe",
        Parsed::Install(_) => "install",
    });
    for n in notes {
        match n {
            Note::Info(t) => tracing::info!("{t}"),
            Note::Warn(t) => tracing::warn!("{t}"),
        }
    }
    match mode {
        Parsed::Main(cfg) => main::run(cfg),
        Parsed::Sidecar(cfg) => sidecar::run(cfg),
        Parsed::Probe(cfg) => probe::run(cfg),
        Parsed::Install(cfg) => install::run(&cfg.dir, cfg.allow_dynamic),
    }
}

/// A bad command line or environment: one line on stderr, and the same line as the termination
/// message when the kubelet's file is there (the `--termination-log` option itself may be what
/// could not be read), so `kubectl describe pod` says what to fix.
pub fn usage_error(e: &crate::config::ConfigError) -> Outcome {
    let line = format!("supervisor: error: {e}");
    eprintln!("{line}");
    let default = Path::new("/dev/termination-log");
    if nix::unistd::access(default, nix::unistd::AccessFlags::W_OK).is_ok() {
        let _ = termlog::write(default, &line, b"");
    }
    Outcome::Usage
}

/// What a policy tells its recipe to do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `main`: start the readiness wait (its end comes back as an event).
    StartGate,
    /// Start the command (the result goes back to the policy).
    Spawn,
    /// Forward a signal to the child's process group.
    Forward(Sig),
    /// A step of the stop lifecycle.
    Stop(Step),
    Arm(Timer, Duration),
    /// `main --heartbeat`: refresh the lease's mtime.
    TouchLease,
    /// Stop watching peer `i`: the policy is done with it.
    Settle(usize),
    /// `sidecar`: the daemon is ready: write the ready file.
    AnnounceReady,
    Log(Level, String),
    /// The run is over.
    Finish(Ending),
}

/// The actions in the order they are carried out: every deed before any log line, so a signal
/// or a SIGKILL never waits for a line to be formatted and written; the end of the run last, so
/// its log lines are still written.
pub fn deeds_first(actions: Vec<Action>) -> Vec<Action> {
    let rank = |a: &Action| match a {
        Action::Log(..) => 1,
        Action::Finish(_) => 2,
        _ => 0,
    };
    let mut ordered = actions;
    // A stable sort: deeds, and log lines, keep their own order.
    ordered.sort_by_key(rank);
    ordered
}

/// Shorthand for a log action.
pub fn say(level: Level, text: impl Into<String>) -> Action {
    Action::Log(level, text.into())
}

/// Runs a supervising mode: signals blocked first (before any thread exists, so every thread
/// inherits the mask), then the loop.
pub fn supervising<F: std::future::Future<Output = Outcome>>(fut: F) -> Outcome {
    if let Err(e) = crate::signals::block() {
        tracing::error!("cannot block signals: {e}");
        return Outcome::Internal;
    }
    block_on(fut)
}

/// The single-threaded runtime every mode runs on: one thread, no work stealing, and no timer
/// unless a mode arms one (so an idle supervisor never wakes up).
pub fn block_on<F: std::future::Future<Output = Outcome>>(fut: F) -> Outcome {
    match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
    {
        Ok(rt) => {
            let outcome = rt.block_on(fut);
            // The process exits right after: tearing the runtime down (deregistrations, closes,
            // unmaps) would only delay the exit the other containers are waiting for.
            std::mem::forget(rt);
            outcome
        }
        Err(e) => {
            tracing::error!("cannot start the event loop: {e}");
            Outcome::Internal
        }
    }
}

/// What the shared actions act on.
#[derive(Clone, Copy)]
pub struct Hands<'a> {
    pub child: Option<Child>,
    pub quit_urls: &'a [HttpUrl],
}

/// Carries out the actions both recipes share; the mode-specific ones come back unhandled.
pub fn act_common(a: Action, hands: Hands, events: &mut Events) -> Option<Action> {
    let child = hands.child;
    match a {
        Action::Forward(sig) => {
            if let Some(c) = child {
                c.signal_group(sig);
            }
        }
        Action::Stop(step) => match step {
            Step::Ask(ask) => {
                if let Some(c) = child {
                    ask_to_stop(c, ask, hands.quit_urls);
                }
            }
            Step::ArmDelay(d) => events.arm(Timer::StopDelay, d),
            Step::ArmGrace(d) => events.arm(Timer::Grace, d),
            Step::KillGroup => {
                if let Some(c) = child {
                    c.kill_group();
                }
            }
        },
        Action::Arm(t, d) => events.arm(t, d),
        Action::Settle(i) => events.peers.settle(i),
        Action::Log(level, text) => log(level, &text),
        other => return Some(other),
    }
    None
}

/// Asks the child to stop: the signal then SIGCONT (a stopped child could not act on it), or the
/// quit URLs, posted beside the loop so signals and the reaper keep being served.
fn ask_to_stop(child: Child, ask: Ask, quit_urls: &[HttpUrl]) {
    match ask {
        Ask::Signal(sig) => {
            child.signal_group(sig);
            child.signal_group(Sig::CONT);
        }
        Ask::Quit(fallback) => {
            child.signal_group(Sig::CONT);
            crate::quit::quit(child, quit_urls.to_vec(), fallback);
        }
    }
}

pub fn log(level: Level, text: &str) {
    match level {
        Level::ERROR => tracing::error!("{text}"),
        Level::WARN => tracing::warn!("{text}"),
        Level::INFO => tracing::info!("{text}"),
        Level::DEBUG => tracing::debug!("{text}"),
        Level::TRACE => tracing::trace!("{text}"),
    }
}

/// A command line for logs and markers: arguments joined by spaces, shell-quoted where needed.
pub fn display_command(argv: &[OsString]) -> String {
    argv.iter()
        .map(|a| {
            let s = a.to_string_lossy();
            if !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
            {
                s.into_owned()
            } else {
                format!("'{}'", s.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Takes the lease and removes a stale marker: proves the volume is there and writable before a
/// long run starts, and makes sure nobody reads an earlier run's marker.
pub fn prepare_done_file(done: &Path, heartbeat: Option<Duration>) -> Result<Lease, String> {
    let lease =
        Lease::acquire(done, heartbeat.map(|h| h.as_millis() as u64)).map_err(|e| match e {
            crate::lease::LeaseError::Taken { .. } => e.to_string(),
            e => format!(
                "the marker directory {} is not usable: {e}",
                fsutil::parent_dir(done).display()
            ),
        })?;
    match fsutil::remove_stale(done) {
        Ok(true) => tracing::info!(
            "removed a stale marker from an earlier run: {}",
            done.display()
        ),
        Ok(false) => {}
        Err(e) => {
            lease.release();
            let e = match e.kind() {
                std::io::ErrorKind::IsADirectory => "the marker path is a directory".to_string(),
                _ => e.to_string(),
            };
            return Err(format!(
                "cannot remove the stale marker {}: {e}",
                done.display()
            ));
        }
    }
    Ok(lease)
}

/// Everything the end of a run needs.
pub struct Finishing {
    pub role: Role,
    pub command: Vec<OsString>,
    pub shown: String,
    pub started: Instant,
    pub started_at: SystemTime,
    pub done_file: Option<PathBuf>,
    pub lease: Option<Lease>,
    pub termination_log: Option<PathBuf>,
}

/// Every end of a supervising run comes here: write the marker, release the lease (only after the
/// marker: whoever sees the lock released must find it), write the termination message, log the
/// one closing line. Returns the outcome, which knows whether the marker was lost.
pub fn finish(f: Finishing, ending: Ending) -> Outcome {
    let elapsed = f.started.elapsed();
    let code = exit::ending_code(&ending);
    // Only built where someone reads it: nothing for a plain `main -- CMD`.
    let json = if f.done_file.is_some() || f.termination_log.is_some() {
        Marker {
            version: 1,
            role: f.role,
            exit_code: code,
            reason: ending.reason(),
            signal: ending.signal().map(|s| s.to_string()),
            command_exit_code: ending.status().map(|s| s.code()),
            started_at: clock::rfc3339(f.started_at),
            finished_at: clock::rfc3339(SystemTime::now()),
            duration_ms: elapsed.as_millis() as u64,
            command: f
                .command
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            error: ending.error(),
            dependency: ending.dependency().cloned(),
        }
        .to_json()
    } else {
        Vec::new()
    };
    let mut marker_lost = false;
    let note = match &f.done_file {
        None => String::new(),
        Some(path) => match fsutil::write_atomic(path, &json) {
            Ok(()) => format!("; marker written to {}", path.display()),
            Err(e) => {
                tracing::error!("could not write the marker {}: {e}", path.display());
                marker_lost = true;
                format!("; MARKER NOT WRITTEN to {}", path.display())
            }
        },
    };
    if let Some(l) = f.lease {
        l.release();
    }
    let sentence = ending.sentence(&f.shown, elapsed);
    let role = match f.role {
        Role::Main => "main",
        Role::Sidecar => "sidecar",
    };
    if let Some(path) = &f.termination_log {
        if let Err(e) = termlog::write(path, &format!("{role}: {sentence}"), &json) {
            tracing::warn!(
                "could not write the termination message {}: {e}",
                path.display()
            );
        }
    }
    let level = if code == 0 && !marker_lost {
        Level::INFO
    } else {
        Level::WARN
    };
    log(level, &format!("{sentence}{note}"));
    Outcome::Ended {
        ending,
        marker_lost,
    }
}

/// The end of a run that never got as far as starting anything (the volume is not usable): no
/// marker (there may be a live one that is not ours), but the termination message and the log.
pub fn refuse(role: Role, termination_log: Option<&Path>, shown: &str, why: String) -> Outcome {
    let ending = Ending::SupervisorError(why);
    let sentence = ending.sentence(shown, Duration::ZERO);
    tracing::error!("{sentence}");
    if let Some(path) = termination_log {
        let role = match role {
            Role::Main => "main",
            Role::Sidecar => "sidecar",
        };
        let _ = termlog::write(path, &format!("{role}: {sentence}"), b"");
    }
    Outcome::ended(ending)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_display() {
        let argv: Vec<OsString> = ["sh", "-c", "echo 'hi' there", ""]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(display_command(&argv), r"sh -c 'echo '\''hi'\'' there' ''");
    }
}
