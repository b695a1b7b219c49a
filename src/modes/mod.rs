//! The modes: `main` and `sidecar` supervise, `probe` and `install` are one-shot.
//!
//! Each supervising mode is a pure policy (its `policy.rs`: state + input → actions, unit-tested
//! transition by transition) and a thin recipe (its `mod.rs`: settings from the config, the mode's
//! own effects), run by the one [`driver`]. What every mode carries out the same way lives here:
//! the start ([`supervise`]: signals, subreaper, lease, event stream), the [`World`] the shared
//! effects act on, and the end of a run ([`finish`]: marker, lease, termination message, closing
//! log line).

pub mod driver;
pub mod install;
pub mod main;
pub mod probe;
pub mod sidecar;

use crate::child::{self, Child};
use crate::clock;
use crate::config::{Note, Parsed};
use crate::ending::Ending;
use crate::events::{Events, Input, Timer};
use crate::exit::{self, Outcome};
use crate::fsutil;
use crate::http::HttpUrl;
use crate::lease::Lease;
use crate::marker::{Marker, Role};
use crate::readiness::Target;
use crate::reaper;
use crate::signals::Sig;
use crate::stop::Ask;
use crate::termlog;
use driver::Effects;
use nix::unistd::Pid;
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
/// message where the command line or the environment said it goes (or the kubelet's file), so
/// `kubectl describe pod` says what to fix.
pub fn usage_error(refused: &crate::config::Refused) -> Outcome {
    let line = format!("supervisor: error: {}", refused.error);
    eprintln!("{line}");
    if let Some(path) = &refused.termination_log {
        if let Err(e) = termlog::write(path, &line, b"") {
            eprintln!(
                "supervisor: could not write the termination message {}: {e}",
                path.display()
            );
        }
    }
    Outcome::Usage
}

/// What a supervising mode's recipe hands to [`supervise`]: the parts of its config that every
/// mode sets up the same way.
pub struct Recipe {
    pub role: Role,
    pub command: Vec<OsString>,
    /// The command as logs show it (see [`display_command`]).
    pub shown: String,
    pub termination_log: Option<PathBuf>,
    pub done_file: Option<PathBuf>,
    pub heartbeat: Option<Duration>,
    /// The markers under watch: the required sidecars' (main), the mains' (sidecar).
    pub watched: Vec<PathBuf>,
    pub poll: Duration,
    pub gate: (Vec<Target>, &'static str),
    pub quit_urls: Vec<HttpUrl>,
    pub leave_cwd: bool,
}

/// Every supervising mode's start, in one order: signals blocked first (before any thread
/// exists, so every thread inherits the mask), the subreaper bit, the mode's own preparation
/// (`own`: the files only it writes), the lease taken and a stale marker cleared, the event
/// stream opened (before the first look at the markers, so one written in between is still
/// seen); then the driver runs `policy`. A failure before the command starts refuses the run:
/// one line, the termination message, nothing started.
pub fn supervise<P, M>(r: Recipe, mut policy: P, own: impl FnOnce() -> Result<M, String>) -> Outcome
where
    M: OwnEffects,
    P: driver::Policy<Own = M::Own>,
{
    if let Err(e) = crate::signals::block() {
        tracing::error!("cannot block signals: {e}");
        return Outcome::Internal;
    }
    let (started, started_at) = (Instant::now(), SystemTime::now());
    let refuse = |why: String| refuse(r.role, r.termination_log.as_deref(), &r.shown, why);
    let signals = match crate::signals::Signals::new() {
        Ok(s) => s,
        Err(e) => return refuse(format!("cannot read signals (signalfd): {e}")),
    };
    reaper::become_subreaper();
    let mode = match own() {
        Ok(m) => m,
        Err(why) => return refuse(why),
    };
    let lease = match &r.done_file {
        Some(done) => match prepare_done_file(done, r.heartbeat) {
            Ok(l) => Some(l),
            Err(why) => return refuse(why),
        },
        None => None,
    };
    let events = match Events::new(signals, &r.watched, r.poll) {
        Ok(e) => e,
        Err(e) => {
            if let Some(l) = lease {
                l.release();
            }
            return refuse(format!("cannot wait for events (epoll): {e}"));
        }
    };
    let finishing = Finishing {
        role: r.role,
        command: r.command.clone(),
        shown: r.shown,
        started,
        started_at,
        termination_log: r.termination_log,
    };
    let mut fx = Real {
        world: World {
            events,
            command: r.command,
            child: None,
            gate: r.gate,
            poll: r.poll,
            quit_urls: r.quit_urls,
            lease,
            finishing,
            leave_cwd: r.leave_cwd,
        },
        mode,
    };
    let outcome = driver::drive(&mut policy, &mut fx);
    // Kept open and unfreed to the end: closing descriptors and freeing memory (musl hands
    // emptied pages back to the kernel) would only delay the exit the other containers are
    // waiting for.
    std::mem::forget(fx);
    std::mem::forget(policy);
    outcome
}

/// What the effects shared by every supervising mode act on: the event stream, the child, and
/// what the end of the run needs.
pub struct World {
    pub events: Events,
    pub command: Vec<OsString>,
    pub child: Option<Child>,
    /// The readiness targets (`--wait-for`, `--ready-when`) and how to name them in logs.
    pub gate: (Vec<Target>, &'static str),
    pub poll: Duration,
    pub quit_urls: Vec<HttpUrl>,
    pub lease: Option<Lease>,
    pub finishing: Finishing,
    /// Move to `/` once the child runs (no relative path needs the working directory), so the
    /// supervisor pins no mount.
    pub leave_cwd: bool,
}

impl World {
    fn group(&self) -> Option<Pid> {
        self.child.map(|c| c.pid)
    }
}

/// A mode's own effects, carried out on the shared world.
pub trait OwnEffects {
    type Own;
    fn own(&mut self, world: &mut World, action: Self::Own);
}

/// The real effects of a supervising mode: the shared world and the mode's own part.
pub struct Real<M> {
    pub world: World,
    pub mode: M,
}

impl<M: OwnEffects> Effects<M::Own> for Real<M> {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn next(&mut self) -> Input {
        self.world.events.next_input()
    }

    fn spawn(&mut self) -> Input {
        let w = &mut self.world;
        match child::spawn(&w.command) {
            Ok(c) => {
                w.events.watch_child(c.pid);
                w.child = Some(c);
                if w.leave_cwd {
                    if let Err(e) = std::env::set_current_dir("/") {
                        tracing::debug!("staying in the working directory: cannot move to /: {e}");
                    }
                }
                Input::Spawned {
                    pid: c.pid.as_raw(),
                }
            }
            Err(e) => Input::SpawnFailed(e),
        }
    }

    fn start_gate(&mut self, until: Option<Instant>) {
        let w = &mut self.world;
        tracing::info!(
            "waiting for {} ({})",
            crate::readiness::list(&w.gate.0),
            w.gate.1
        );
        w.events
            .start_gate(w.gate.0.clone(), w.gate.1, w.poll, until);
    }

    fn ask(&mut self, ask: Ask) {
        self.world.events.asking();
        if let (Ask::Signal(sig), Some(c)) = (ask, self.world.child) {
            c.signal_group(sig);
        }
        if let Some(group) = self.world.group() {
            self.world.events.wake_if_stopped(group);
        }
    }

    fn forward(&mut self, sig: Sig) {
        if let Some(c) = self.world.child {
            c.signal_group(sig);
        }
    }

    fn kill_group(&mut self) {
        if let Some(c) = self.world.child {
            c.kill_group();
        }
    }

    fn post_quit(&mut self) {
        let w = &mut self.world;
        tracing::info!("POSTing to {} quit URL(s)", w.quit_urls.len());
        w.events.post_quit(w.quit_urls.clone());
    }

    fn arm(&mut self, timer: Timer, after: Duration) {
        self.world.events.arm(timer, after);
    }

    fn settle(&mut self, peer: usize) {
        self.world.events.peers.settle(peer);
    }

    fn lease_ages(&mut self) -> Input {
        Input::LeaseAges(self.world.events.peers.lease_ages())
    }

    fn stop_leftovers(&mut self, sig: Sig) {
        if let Some(g) = self.world.group() {
            reaper::signal_leftovers(g, sig);
            reaper::signal_leftovers(g, Sig::CONT);
        }
        self.world.events.await_leftovers();
    }

    fn kill_leftovers(&mut self) {
        if let Some(g) = self.world.group() {
            reaper::signal_leftovers(g, Sig::KILL);
        }
    }

    fn log(&mut self, level: Level, text: &str) {
        log(level, text);
    }

    fn finish(&mut self, ending: Ending) -> Outcome {
        let lease = self.world.lease.take();
        finish(&self.world.finishing, lease, ending)
    }

    fn own(&mut self, action: M::Own) {
        self.mode.own(&mut self.world, action);
    }
}

pub use crate::logging::log;

/// The most of a command line a log line shows.
const SHOWN_COMMAND: usize = 1024;

/// A command line for logs: arguments joined by spaces, shell-quoted where needed, cut to a
/// readable length (an inline script of 100 kB must not make every log line 100 kB).
pub fn display_command(argv: &[OsString]) -> String {
    let full = argv
        .iter()
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
        .join(" ");
    match full.char_indices().nth(SHOWN_COMMAND) {
        Some((i, _)) => format!("{}…", &full[..i]),
        None => full,
    }
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
    if let Err(e) = remove_stale(lease.marker(), "marker") {
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
    Ok(lease)
}

/// Removes what an earlier run left where this run's `what` ("marker", "ready file") goes, and
/// says what it was: a file is routine, anything else was put in the way.
pub fn remove_stale(place: &fsutil::Place, what: &str) -> std::io::Result<()> {
    let path = place.path().display();
    match place.remove_stale()? {
        Some(fsutil::Kind::File) => {
            tracing::info!("removed a stale {what} from an earlier run: {path}")
        }
        Some(kind) => tracing::warn!("removed {kind} that was in the way of the {what} {path}"),
        None => {}
    }
    Ok(())
}

/// Everything the end of a run needs.
pub struct Finishing {
    pub role: Role,
    pub command: Vec<OsString>,
    pub shown: String,
    pub started: Instant,
    pub started_at: SystemTime,
    pub termination_log: Option<PathBuf>,
}

/// Every end of a supervising run comes here: write the marker, release the lease (only after the
/// marker: whoever sees the lock released must find it), write the termination message, log the
/// one closing line. Returns the outcome, which knows whether the marker was lost. There is a
/// marker to write when there is a lease: it goes beside it, in the directory opened when the
/// lease was taken ([`Lease::marker`]).
pub fn finish(f: &Finishing, lease: Option<Lease>, ending: Ending) -> Outcome {
    let elapsed = f.started.elapsed();
    let code = exit::ending_code(&ending);
    // Only built where someone reads it: nothing for a plain `main -- CMD`.
    let json = if lease.is_some() || f.termination_log.is_some() {
        Marker {
            version: 1,
            role: f.role,
            exit_code: code,
            reason: ending.reason(),
            signal: ending.signal().map(|s| s.to_string()),
            stop_request: ending.stop_request().map(|s| s.to_string()),
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
    let note = match lease.as_ref().map(Lease::marker) {
        None => String::new(),
        Some(marker) => match marker.write_atomic(&json) {
            Ok(()) => format!("; marker written to {}", marker.path().display()),
            Err(e) => {
                let path = marker.path().display();
                tracing::error!("could not write the marker {path}: {e}");
                marker_lost = true;
                format!("; MARKER NOT WRITTEN to {path}")
            }
        },
    };
    if let Some(l) = lease {
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
        if let Err(e) = termlog::write(path, &format!("{role}: {sentence}"), b"") {
            tracing::warn!(
                "could not write the termination message {}: {e}",
                path.display()
            );
        }
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
