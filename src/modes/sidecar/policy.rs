//! What `sidecar` decides, as a pure function of its state and each event.
//!
//! Each `--wait-file` is a [`Slot`]: pending until its marker counts (`Done`) or its main is gone
//! without one (`Vanished`). A marker counts only when no live main holds its lease: the real
//! main releases the lease right after renaming its marker into place, so a marker seen while
//! the lease is held is someone else's file, or the main's a moment early, and waits for the
//! release. With `--on success`, failed markers and vanished mains do not count (the main will be
//! restarted). When every slot is settled the daemon is stopped.
//!
//! Lifecycle of the daemon ([`Phase`]): `Running` until the slots are settled or a stop is
//! requested from outside (a term signal, maybe delayed by `--stop-delay`), then `Stopping` (the
//! shared [`Stop`] lifecycle), until it exits. A daemon that exits while `Running` ended on its
//! own: a failure the pod must show, and if it exited 0 but left processes behind, it daemonized.

use super::super::{Action, say};
use crate::config::{ExitPolicy, OnPolicy};
use crate::ending::{ChildStatus, Ending, StopCause, StoppedExit};
use crate::events::{Event, Timer};
use crate::marker::{Presence, Seen};
use crate::peers::{LeaseView, Observation};
use crate::signals::{Sig, SigSet};
use crate::stop::{Ask, Step, Stop};
use std::time::Duration;
use tracing::Level;

/// What the policy needs of the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The daemon, as shown in logs.
    pub command: String,
    pub on: OnPolicy,
    pub exit: ExitPolicy,
    pub grace: Duration,
    pub stop_delay: Duration,
    pub term_signals: SigSet,
    /// How the daemon is asked to stop.
    pub ask: Ask,
    /// The `--wait-file` paths, by slot, and their leases.
    pub waits: Vec<(String, String)>,
    pub stale_after: Option<Duration>,
}

/// What is known about one `--wait-file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    Pending,
    /// The marker counts; the main's exit code if it said one.
    Done(Option<i64>),
    /// The main is gone without a marker.
    Vanished,
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Running,
    Stopping { cause: StopCause, stop: Stop },
    Ended,
}

pub struct Policy {
    s: Settings,
    phase: Phase,
    slots: Vec<Slot>,
    /// What was already said about each slot (by kind), so repeated observations do not repeat
    /// log lines; forgotten when a new main is seen alive.
    notes: Vec<Vec<&'static str>>,
}

impl Policy {
    pub fn new(s: Settings) -> Policy {
        let n = s.waits.len();
        Policy {
            s,
            phase: Phase::Running,
            slots: vec![Slot::Pending; n],
            notes: vec![Vec::new(); n],
        }
    }

    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// Whether a stop has begun.
    pub fn stopping(&self) -> bool {
        matches!(self.phase, Phase::Stopping { .. })
    }

    /// The first actions, once the daemon runs.
    pub fn start(&mut self) -> Vec<Action> {
        match self.s.stale_after {
            Some(limit) => vec![Action::Arm(Timer::StaleCheck, stale_every(limit))],
            None => Vec::new(),
        }
    }

    pub fn on(&mut self, event: Event) -> Vec<Action> {
        match event {
            Event::Signal(sig) => self.on_signal(sig),
            Event::Timer(Timer::StopDelay) => self.with_stop(|stop, grace| stop.delay_over(grace)),
            Event::Timer(Timer::Grace) => {
                let mut out = self.with_stop(|stop, _| stop.grace_over());
                if !out.is_empty() {
                    out.push(say(
                        Level::WARN,
                        format!(
                            "{} still running {} after being asked to stop; killing its process group",
                            self.s.command,
                            crate::clock::human(self.s.grace)
                        ),
                    ));
                }
                out
            }
            Event::Ready(Ok(())) if self.phase == Phase::Running => vec![Action::AnnounceReady],
            // The recipe turns these into observations, exits with leftovers, stale checks.
            _ => Vec::new(),
        }
    }

    fn with_stop(&mut self, f: impl FnOnce(&mut Stop, Duration) -> Vec<Step>) -> Vec<Action> {
        let grace = self.s.grace;
        match &mut self.phase {
            Phase::Stopping { stop, .. } => {
                let steps = f(stop, grace);
                self.asked(steps)
            }
            _ => Vec::new(),
        }
    }

    /// The steps as actions; once the daemon has been asked, the mains' files have nothing more
    /// to say: stop watching them (so no inotify watch is left to retire at the end).
    fn asked(&self, steps: Vec<Step>) -> Vec<Action> {
        let asks = steps.iter().any(|s| matches!(s, Step::Ask(_)));
        let mut out = stop_actions(steps);
        if asks {
            let how = match self.s.ask {
                Ask::Signal(sig) => format!("sent {sig} to its process group"),
                Ask::Quit(_) => "posting to its quit URL(s)".to_string(),
            };
            out.push(say(
                Level::INFO,
                format!(
                    "stopping the daemon: {how}; SIGKILL after {}",
                    crate::clock::human(self.s.grace)
                ),
            ));
            out.extend((0..self.slots.len()).map(Action::Settle));
        }
        out
    }

    fn on_signal(&mut self, sig: Sig) -> Vec<Action> {
        if !self.s.term_signals.contains(sig) {
            return match self.phase {
                Phase::Ended => Vec::new(),
                _ => vec![
                    Action::Forward(sig),
                    say(Level::DEBUG, format!("forwarded {sig} to the daemon")),
                ],
            };
        }
        match self.phase {
            Phase::Running => {
                let delay = self.s.stop_delay;
                let note = if delay.is_zero() {
                    format!("received {sig}: stopping {}", self.s.command)
                } else {
                    format!(
                        "received {sig}: {} keeps running for --stop-delay {}, then is stopped",
                        self.s.command,
                        crate::clock::human(delay)
                    )
                };
                let mut out = self.begin_stop(StopCause::Requested(sig), delay);
                out.push(say(Level::INFO, note));
                out
            }
            Phase::Stopping { .. } => vec![say(
                Level::INFO,
                format!("received {sig} while stopping the daemon; already stopping"),
            )],
            Phase::Ended => Vec::new(),
        }
    }

    fn begin_stop(&mut self, cause: StopCause, delay: Duration) -> Vec<Action> {
        let mut stop = Stop::Idle;
        let steps = stop
            .begin(self.s.ask, delay, self.s.grace)
            .unwrap_or_default();
        self.phase = Phase::Stopping { cause, stop };
        self.asked(steps)
    }

    /// Slot `i`'s marker and lease were observed; `released` when its lease was just released.
    pub fn on_peer(&mut self, i: usize, obs: Observation, released: bool) -> Vec<Action> {
        if self.slots.get(i) != Some(&Slot::Pending) || self.phase == Phase::Ended {
            return Vec::new();
        }
        let (path, lease) = self.s.waits[i].clone();
        let mut out = Vec::new();
        let marker = match obs.marker {
            Presence::NotAFile => {
                self.note(
                    i,
                    "directory",
                    &mut out,
                    Level::WARN,
                    format!("{path} is a directory, not a marker; ignoring it"),
                );
                None
            }
            Presence::Absent => None,
            Presence::Present(seen) => Some(seen),
        };
        if let (
            Some(_),
            LeaseView::Held {
                heartbeat: false, ..
            },
        ) = (self.s.stale_after, &obs.lease)
        {
            self.note(
                i,
                "no-heartbeat",
                &mut out,
                Level::WARN,
                format!(
                    "the main's lease {lease} has no heartbeat (the main runs without --heartbeat): --stale-after does not apply to it; only the lock tells when the main vanishes"
                ),
            );
        }
        match (marker, obs.lease) {
            (Some(_), LeaseView::Held { pid, .. }) => {
                let holder = pid.map_or_else(String::new, |p| format!(" (pid {p})"));
                self.note(
                    i,
                    "held-marker",
                    &mut out,
                    Level::WARN,
                    format!(
                        "marker {path} appeared while its main still holds the lease {lease}{holder}: it counts once the lease is released"
                    ),
                );
            }
            (Some(seen), _) => self.marker_arrived(i, &seen, &mut out),
            (None, LeaseView::Free | LeaseView::None) if released => {
                self.vanished(i, "lock released", &mut out)
            }
            (None, LeaseView::Free) => self.vanished(i, "lease left unlocked", &mut out),
            // A main is alive: what was said about its predecessors may be said again.
            (None, LeaseView::Held { .. }) => self.notes[i].retain(|k| *k == "no-heartbeat"),
            (None, LeaseView::None) => {}
        }
        out.extend(self.maybe_all_settled());
        out
    }

    /// `--stale-after`: slot `i`'s lease is `age` old and declares a heartbeat.
    pub fn on_stale(&mut self, i: usize, age: Duration) -> Vec<Action> {
        if self.slots.get(i) != Some(&Slot::Pending) || self.phase != Phase::Running {
            return Vec::new();
        }
        let mut out = Vec::new();
        self.vanished(
            i,
            &format!("heartbeat {} old", crate::clock::human(age)),
            &mut out,
        );
        out.extend(self.maybe_all_settled());
        out
    }

    /// The stale-check timer fired; the recipe checked the ages (see `on_stale`).
    pub fn stale_checked(&mut self) -> Vec<Action> {
        match (self.s.stale_after, &self.phase) {
            (Some(limit), Phase::Running) => {
                vec![Action::Arm(Timer::StaleCheck, stale_every(limit))]
            }
            _ => Vec::new(),
        }
    }

    fn marker_arrived(&mut self, i: usize, seen: &Seen, out: &mut Vec<Action>) {
        let path = self.s.waits[i].0.clone();
        let code = seen.exit_code.map_or_else(
            || "unknown exit code".to_string(),
            |c| format!("exit code {c}"),
        );
        let reason = seen.reason.as_deref().unwrap_or("unknown");
        let failed = seen.exit_code.is_some_and(|c| c != 0);
        if self.s.on == OnPolicy::Success && failed {
            self.note(
                i,
                "failed-marker",
                out,
                Level::WARN,
                format!(
                    "marker {path} says the main failed ({reason}, {code}); --on success keeps the daemon running for the restarted main"
                ),
            );
            return;
        }
        self.slots[i] = Slot::Done(seen.exit_code);
        out.push(Action::Settle(i));
        out.push(say(
            Level::INFO,
            format!("marker {path} arrived: main ended ({reason}, {code})"),
        ));
    }

    fn vanished(&mut self, i: usize, how: &str, out: &mut Vec<Action>) {
        let lease = self.s.waits[i].1.clone();
        match self.s.on {
            OnPolicy::Any => {
                self.slots[i] = Slot::Vanished;
                out.push(Action::Settle(i));
                out.push(say(
                    Level::ERROR,
                    format!("main container vanished without a marker ({how}: {lease}); treating it as failed"),
                ));
            }
            OnPolicy::Success => self.note(
                i,
                "vanished",
                out,
                Level::WARN,
                format!(
                    "main container vanished without a marker ({how}: {lease}); --on success keeps the daemon running for the restarted main"
                ),
            ),
        }
    }

    /// Says `line` unless something of this `kind` was already said about slot `i`.
    fn note(
        &mut self,
        i: usize,
        kind: &'static str,
        out: &mut Vec<Action>,
        level: Level,
        line: String,
    ) {
        if !self.notes[i].contains(&kind) {
            out.push(say(level, line));
            self.notes[i].push(kind);
        }
    }

    /// Every slot settled: stop the daemon now (never delayed). During a delayed stop requested
    /// from outside, the delay is cut short and the cause stays the request.
    fn maybe_all_settled(&mut self) -> Vec<Action> {
        if self.slots.is_empty() || self.slots.contains(&Slot::Pending) {
            return Vec::new();
        }
        match &mut self.phase {
            Phase::Running => {
                let cause = match self.slots.iter().position(|s| *s == Slot::Vanished) {
                    Some(i) => StopCause::MainVanished {
                        lease: self.s.waits[i].1.clone(),
                    },
                    None => StopCause::MainsDone {
                        main_code: main_code(&self.slots),
                    },
                };
                self.begin_stop(cause, Duration::ZERO)
            }
            Phase::Stopping { stop, .. } => {
                let steps = stop.hurry(self.s.ask, self.s.grace).unwrap_or_default();
                self.asked(steps)
            }
            Phase::Ended => Vec::new(),
        }
    }

    /// The daemon exited. `leftovers`: processes of its tree are still running (they escaped its
    /// group or re-parented to us); `since_ask`: how long ago it was asked to stop.
    pub fn on_daemon_exit(
        &mut self,
        status: ChildStatus,
        leftovers: bool,
        since_ask: Option<Duration>,
    ) -> Vec<Action> {
        let ending = match &self.phase {
            Phase::Stopping {
                cause,
                stop: Stop::Asked { .. },
            } => Ending::Stopped {
                exit: self.stopped_exit(cause),
                cause: cause.clone(),
                status,
                took: since_ask.unwrap_or_default(),
            },
            Phase::Ended => return Vec::new(),
            // Running, or still waiting out a stop delay: nobody asked it to go.
            _ if status == ChildStatus::Exited(0) && leftovers => Ending::Daemonized,
            _ => match status {
                ChildStatus::Exited(c) => Ending::Exited(c),
                ChildStatus::Signaled(s) => Ending::Signaled(s),
            },
        };
        self.phase = Phase::Ended;
        let mut out = Vec::new();
        if matches!(ending, Ending::Exited(_) | Ending::Signaled(_)) {
            out.push(say(
                Level::ERROR,
                format!(
                    "{} {} on its own before the main was done",
                    self.s.command,
                    status.describe()
                ),
            ));
        }
        out.push(Action::Finish(ending));
        out
    }

    fn stopped_exit(&self, cause: &StopCause) -> StoppedExit {
        match (cause, self.s.exit) {
            (StopCause::Requested(_), _) | (_, ExitPolicy::Zero) => StoppedExit::Zero,
            (_, ExitPolicy::Daemon) => StoppedExit::Daemon,
            (StopCause::MainVanished { .. }, ExitPolicy::Main) => StoppedExit::MainVanished,
            (StopCause::MainsDone { main_code }, ExitPolicy::Main) => {
                StoppedExit::MainCode(main_code.unwrap_or(0))
            }
        }
    }
}

/// The first non-zero code among the markers, else 0 when any said 0, else unknown.
fn main_code(slots: &[Slot]) -> Option<i64> {
    let codes = slots.iter().filter_map(|s| match s {
        Slot::Done(c) => *c,
        _ => None,
    });
    let mut zero = None;
    for c in codes {
        if c != 0 {
            return Some(c);
        }
        zero = Some(0);
    }
    zero
}

/// How often `--stale-after` looks: a quarter of the limit, between 50 ms and 5 s.
fn stale_every(limit: Duration) -> Duration {
    (limit / 4).clamp(Duration::from_millis(50), Duration::from_secs(5))
}

fn stop_actions(steps: Vec<Step>) -> Vec<Action> {
    steps.into_iter().map(Action::Stop).collect()
}

#[cfg(test)]
mod tests;
