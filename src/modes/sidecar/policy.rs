//! What `sidecar` decides, as a pure function of its state and each input.
//!
//! Each `--wait-file` is a [`Slot`]: pending until its marker counts (`Done`) or its main is gone
//! without one (`Vanished`). A marker counts only when no live main holds its lease: the real
//! main releases the lease right after renaming its marker into place, so a marker seen while
//! the lease is held is someone else's file, or the main's a moment early, and waits for the
//! release (a marker found right after the release of the lease we waited on counts, whatever
//! lease a restarted main may have taken since). With `--on success`, failed markers and vanished
//! mains do not count (the main will be restarted). When every slot is settled the daemon is
//! stopped.
//!
//! Lifecycle of the daemon (`Phase`): `Starting` → `Running` (the daemon runs) until the slots
//! are settled or a stop is requested from outside (a term signal, maybe delayed by
//! `--stop-delay`), then `Stopping` (the shared [`Stop`] lifecycle) until it exits → `Closing`
//! (the ending is written; what the daemon left behind is being stopped) → `Ended`. A daemon that
//! exits while `Running` ended on its own: a failure the pod must show, and if it exited 0 but
//! left processes behind, it daemonized.

use crate::config::{ExitPolicy, OnPolicy};
use crate::ending::{ChildStatus, Ending, StopCause, StoppedExit};
use crate::events::{Input, Timer};
use crate::marker::{Presence, Seen};
use crate::modes::driver::{self, say};
use crate::peers::{LeaseAge, LeaseView, Observation};
use crate::signals::Sig;
use crate::stop::{Ask, Heard, Step, Stop, StopSettings};
use std::time::{Duration, Instant};
use tracing::Level;

/// `sidecar`'s own action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Own {
    /// The daemon is ready: write the ready file.
    AnnounceReady,
}

pub type Action = driver::Action<Own>;

/// What the policy needs of the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The daemon, as shown in logs.
    pub command: String,
    pub on: OnPolicy,
    pub exit: ExitPolicy,
    pub stop: StopSettings,
    /// How the daemon is asked to stop.
    pub ask: Ask,
    /// The `--wait-file` paths, by slot, and their leases.
    pub waits: Vec<(String, String)>,
    pub stale_after: Option<Duration>,
    /// `--ready-when` was given.
    pub gated: bool,
    /// `--ready-file`, for the log line.
    pub ready_file: Option<String>,
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
    Starting,
    Running,
    Stopping {
        cause: StopCause,
        stop: Stop,
        asked_at: Option<Instant>,
    },
    Closing {
        leftovers: bool,
    },
    Ended,
}

pub struct Policy {
    s: Settings,
    phase: Phase,
    slots: Vec<Slot>,
    /// What was already said about each slot (by kind), so repeated observations do not repeat
    /// log lines; forgotten when a new main is seen alive.
    notes: Vec<Vec<&'static str>>,
    began: Option<Instant>,
}

impl Policy {
    pub fn new(s: Settings) -> Policy {
        let n = s.waits.len();
        Policy {
            s,
            phase: Phase::Starting,
            slots: vec![Slot::Pending; n],
            notes: vec![Vec::new(); n],
            began: None,
        }
    }

    #[cfg(test)]
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    fn on_spawned(&mut self, pid: i32) -> Vec<Action> {
        self.phase = Phase::Running;
        let mut out = Vec::new();
        if self.s.gated {
            out.push(Action::StartGate { until: None });
        }
        if let Some(limit) = self.s.stale_after {
            out.push(Action::Arm(Timer::StaleCheck, stale_every(limit)));
        }
        let cmd = &self.s.command;
        let list: Vec<&str> = self.s.waits.iter().map(|(p, _)| p.as_str()).collect();
        let line = if list.is_empty() {
            format!(
                "started {cmd} as pid {pid}; no --wait-file: will stop it on {} (native sidecar)",
                self.s.stop.term_signals
            )
        } else {
            let on = match self.s.on {
                OnPolicy::Any => "any exit",
                OnPolicy::Success => "success only",
            };
            format!(
                "started {cmd} as pid {pid}; will stop it when the main is done ({}, on {on})",
                list.join(", ")
            )
        };
        out.push(say(Level::INFO, line));
        out
    }

    /// The steps as actions; once the daemon has been asked, the mains' files have nothing more
    /// to say: stop watching them (so no watch is left to retire at the end).
    fn asked(&self, steps: Vec<Step>) -> Vec<Action> {
        let asks = steps.iter().any(|s| matches!(s, Step::Ask(_)));
        let mut out = stop_actions(steps);
        if asks {
            let how = match self.s.ask {
                Ask::Signal(sig) => format!("sent {sig} to its process group"),
                Ask::Quit(_) => "posting to its quit URL(s)".to_string(),
            };
            if let Ask::Quit(_) = self.s.ask {
                out.push(Action::PostQuit);
            }
            out.push(say(
                Level::INFO,
                format!(
                    "stopping the daemon: {how}; SIGKILL after {}",
                    crate::clock::human(self.s.stop.grace)
                ),
            ));
            out.extend((0..self.slots.len()).map(Action::Settle));
        }
        out
    }

    fn on_signal(&mut self, sig: Sig) -> Vec<Action> {
        let term = self.s.stop.term_signals.contains(sig);
        let (ask, delay, grace) = (self.s.ask, self.s.stop.stop_delay, self.s.stop.grace);
        let cmd = self.s.command.clone();
        match &mut self.phase {
            Phase::Running if term => {
                let note = if delay.is_zero() {
                    format!("received {sig}: stopping {cmd}")
                } else {
                    format!(
                        "received {sig}: {cmd} keeps running for --stop-delay {}, then is stopped",
                        crate::clock::human(delay)
                    )
                };
                let mut stop = Stop::Idle;
                let (_, steps) = stop.request(sig, ask, delay, grace);
                self.phase = Phase::Stopping {
                    cause: StopCause::Requested(sig),
                    stop,
                    asked_at: None,
                };
                let mut out = self.asked(steps);
                out.push(say(Level::INFO, note));
                out
            }
            Phase::Stopping { stop, .. } if term => {
                let (heard, steps) = stop.request(sig, ask, delay, grace);
                let note = match heard {
                    Heard::Held => {
                        format!(
                            "received {sig} during --stop-delay; the daemon gets it when the delay ends"
                        )
                    }
                    Heard::Delivered => {
                        format!("received {sig}; the daemon already got {sig} for this stop")
                    }
                    Heard::Began | Heard::Forwarded => {
                        format!("received {sig} while stopping the daemon; forwarded it")
                    }
                };
                let mut out = self.asked(steps);
                out.push(say(Level::INFO, note));
                out
            }
            Phase::Starting | Phase::Running | Phase::Stopping { .. } => vec![
                Action::Stop(Step::Forward(sig)),
                say(Level::DEBUG, format!("forwarded {sig} to the daemon")),
            ],
            Phase::Closing { leftovers: true } => vec![Action::StopLeftovers(sig)],
            Phase::Closing { .. } | Phase::Ended => Vec::new(),
        }
    }

    fn begin_stop(&mut self, cause: StopCause) -> Vec<Action> {
        let mut stop = Stop::Idle;
        let steps = stop.hurry(self.s.ask, self.s.stop.grace);
        self.phase = Phase::Stopping {
            cause,
            stop,
            asked_at: None,
        };
        self.asked(steps)
    }

    /// Slot `i`'s marker and lease were observed.
    fn on_peer(&mut self, i: usize, obs: Observation) -> Vec<Action> {
        if self.slots.get(i) != Some(&Slot::Pending)
            || !matches!(self.phase, Phase::Running | Phase::Stopping { .. })
        {
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
            // The lease waited on was just released: the marker was written before that.
            (Some(seen), _) if obs.released => self.marker_arrived(i, &seen, &mut out),
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
            (Some(seen), LeaseView::None | LeaseView::Free) => {
                self.marker_arrived(i, &seen, &mut out)
            }
            (None, LeaseView::Free | LeaseView::None) if obs.released => {
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

    /// `--stale-after`: the ages of the leases that are held.
    fn on_ages(&mut self, ages: Vec<Option<LeaseAge>>) -> Vec<Action> {
        let Some(limit) = self.s.stale_after else {
            return Vec::new();
        };
        if self.phase != Phase::Running {
            return Vec::new();
        }
        let mut out = Vec::new();
        for (i, age) in ages.into_iter().enumerate() {
            let Some(LeaseAge { age, heartbeat }) = age else {
                continue;
            };
            // A lease without a heartbeat never gets younger: calling it stale would end a
            // healthy main.
            if heartbeat && age > limit && self.slots.get(i) == Some(&Slot::Pending) {
                let how = format!("heartbeat {} old", crate::clock::human(age));
                self.vanished(i, &how, &mut out);
            }
        }
        out.extend(self.maybe_all_settled());
        if self.phase == Phase::Running {
            out.push(Action::Arm(Timer::StaleCheck, stale_every(limit)));
        }
        out
    }

    fn marker_arrived(&mut self, i: usize, seen: &Seen, out: &mut Vec<Action>) {
        let path = self.s.waits[i].0.clone();
        let code = seen.exit_code.map_or_else(
            || "unknown exit code".to_string(),
            |c| format!("exit code {c}"),
        );
        let reason = seen.reason.map_or("unknown", |r| r.as_str());
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
        let (ask, grace) = (self.s.ask, self.s.stop.grace);
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
                self.begin_stop(cause)
            }
            Phase::Stopping { stop, .. } => {
                let steps = stop.hurry(ask, grace);
                self.asked(steps)
            }
            Phase::Starting | Phase::Closing { .. } | Phase::Ended => Vec::new(),
        }
    }

    /// The daemon exited; `leftovers`: processes of its tree are still running.
    fn on_exit(
        &mut self,
        now: Instant,
        status: ChildStatus,
        leftovers: bool,
        before_stop: bool,
    ) -> Vec<Action> {
        let asked = match &self.phase {
            // A daemon that had already ended when it was asked (its exit read after the stop
            // request that came after it) ended on its own, as a daemon that daemonized did.
            Phase::Stopping { .. } if before_stop => None,
            Phase::Stopping {
                cause,
                stop: Stop::Asked { .. },
                asked_at,
            } => Some((cause.clone(), *asked_at)),
            Phase::Stopping { .. } | Phase::Running => None,
            Phase::Starting | Phase::Closing { .. } | Phase::Ended => return Vec::new(),
        };
        let mut out = Vec::new();
        let ending = match asked {
            Some((cause, asked_at)) => Ending::Stopped {
                exit: self.stopped_exit(&cause),
                cause,
                status,
                took: asked_at.map_or(Duration::ZERO, |t| now.saturating_duration_since(t)),
            },
            // Running, or still waiting out a stop delay: nobody asked it to go.
            None if status == ChildStatus::Exited(0) && leftovers => Ending::Daemonized,
            None => {
                let line = format!("{} {} on its own", self.s.command, status.describe());
                match (self.s.waits.is_empty(), status) {
                    (false, _) => out.push(say(
                        Level::ERROR,
                        format!("{line} before the main was done"),
                    )),
                    // A native or one-shot sidecar: ending on its own may be its whole job.
                    (true, ChildStatus::Exited(0)) => {}
                    (true, _) => out.push(say(Level::WARN, line)),
                }
                match status {
                    ChildStatus::Exited(c) => Ending::Exited(c),
                    ChildStatus::Signaled(s) => Ending::Signaled(s),
                }
            }
        };
        out.extend(self.close(ending, leftovers));
        out
    }

    fn close(&mut self, ending: Ending, leftovers: bool) -> Vec<Action> {
        let mut out = vec![Action::Finish(ending)];
        self.phase = Phase::Closing { leftovers };
        if leftovers {
            let (sig, grace) = (self.s.stop.stop_signal, self.s.stop.grace);
            out.push(Action::StopLeftovers(sig));
            out.push(Action::Arm(Timer::Leftovers, grace));
            out.push(say(
                Level::WARN,
                crate::ending::leftovers_words("the daemon", sig, grace),
            ));
        } else {
            self.phase = Phase::Ended;
            out.push(Action::Exit);
        }
        out
    }

    fn stopped_exit(&self, cause: &StopCause) -> StoppedExit {
        match (cause, self.s.exit) {
            (StopCause::Requested(_) | StopCause::PodStopping { .. }, _)
            | (_, ExitPolicy::Zero) => StoppedExit::Zero,
            (_, ExitPolicy::Daemon) => StoppedExit::Daemon,
            (StopCause::MainVanished { .. }, ExitPolicy::Main) => StoppedExit::MainVanished,
            (StopCause::MainsDone { main_code }, ExitPolicy::Main) => {
                StoppedExit::MainCode(main_code.unwrap_or(0))
            }
        }
    }

    fn on_timer(&mut self, t: Timer) -> Vec<Action> {
        let grace = self.s.stop.grace;
        let cmd = self.s.command.clone();
        match (&mut self.phase, t) {
            (Phase::Stopping { stop, .. }, Timer::StopDelay) => {
                let steps = stop.delay_over(grace);
                self.asked(steps)
            }
            (Phase::Stopping { stop, .. }, Timer::Grace) => {
                let mut out = stop_actions(stop.grace_over());
                if !out.is_empty() {
                    out.push(say(
                        Level::WARN,
                        crate::ending::grace_over_words(&cmd, grace),
                    ));
                }
                out
            }
            (Phase::Running, Timer::StaleCheck) => vec![Action::CheckStale],
            (Phase::Closing { .. }, Timer::Leftovers) => vec![
                Action::KillLeftovers,
                say(
                    Level::WARN,
                    crate::ending::leftovers_killed_words(&cmd, grace),
                ),
            ],
            // A timer of another phase, armed before the phase changed: nothing to do now.
            (_, Timer::StopDelay | Timer::Grace | Timer::StaleCheck | Timer::Leftovers) => {
                Vec::new()
            }
            // sidecar never arms these.
            (_, Timer::Timeout | Timer::Heartbeat | Timer::WaitTimeout) => Vec::new(),
        }
    }

    fn on_ready(&mut self, now: Instant, r: Result<(), Vec<String>>) -> Vec<Action> {
        if self.phase != Phase::Running {
            return Vec::new();
        }
        match r {
            Ok(()) => {
                let after = self
                    .began
                    .map_or(Duration::ZERO, |b| now.saturating_duration_since(b));
                let note = self
                    .s
                    .ready_file
                    .as_ref()
                    .map(|f| format!("; writing {f}"))
                    .unwrap_or_default();
                vec![
                    Action::Mode(Own::AnnounceReady),
                    say(
                        Level::INFO,
                        format!("daemon ready after {}{note}", crate::clock::human(after)),
                    ),
                ]
            }
            Err(pending) => vec![say(
                Level::WARN,
                format!("the readiness wait ended without: {}", pending.join(", ")),
            )],
        }
    }

    fn on_quit_done(&mut self, answered: usize) -> Vec<Action> {
        match (&self.phase, self.s.ask) {
            (Phase::Stopping { .. }, Ask::Quit(fallback)) if answered == 0 => vec![
                Action::Stop(Step::Ask(Ask::Signal(fallback))),
                say(
                    Level::WARN,
                    format!("no quit URL succeeded; sending {fallback} to the daemon instead"),
                ),
            ],
            _ => Vec::new(),
        }
    }
}

impl driver::Policy for Policy {
    type Own = Own;

    fn start(&mut self, now: Instant) -> Vec<Action> {
        self.began = Some(now);
        vec![Action::Spawn]
    }

    fn on(&mut self, now: Instant, input: Input) -> Vec<Action> {
        let out = match input {
            Input::Signal(sig) => self.on_signal(sig),
            Input::Spawned { pid } => self.on_spawned(pid),
            Input::SpawnFailed(e) => self.close(Ending::from_spawn(&e), false),
            Input::ChildExited {
                status,
                leftovers,
                before_stop,
            } => self.on_exit(now, status, leftovers, before_stop),
            Input::LeftoversGone => match self.phase {
                Phase::Closing { leftovers: true } => {
                    self.phase = Phase::Ended;
                    vec![Action::Exit]
                }
                _ => Vec::new(),
            },
            Input::Peer(i, obs) => self.on_peer(i, obs),
            Input::LeaseAges(ages) => self.on_ages(ages),
            Input::Timer(t) => self.on_timer(t),
            Input::Ready(r) => self.on_ready(now, r),
            Input::QuitDone { answered } => self.on_quit_done(answered),
        };
        // The ask starts the clock of how long the stop `took`.
        if let Phase::Stopping { asked_at, .. } = &mut self.phase {
            if asked_at.is_none() && out.iter().any(|a| matches!(a, Action::Stop(Step::Ask(_)))) {
                *asked_at = Some(now);
            }
        }
        out
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
