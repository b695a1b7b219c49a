//! What `main` decides, as a pure function of its state and each input.
//!
//! Lifecycle (`Phase`): `Waiting` (for the `--wait-for` targets, for a first look at every
//! required sidecar, and for a required sidecar that ended before CMD ran to come back; no child
//! yet) → `Running` (CMD runs; a [`Stop`] may be under way, and `Why` remembers what it was for)
//! → `Closing` (the ending is written; what CMD left behind is being stopped, the quit URLs
//! called) → `Ended`. How the run ends is decided here, once, as an [`Ending`]:
//! - CMD's own exit or death is the ending, unless the supervisor asked it to stop: then it is
//!   `Stopped` with CMD's own code when the pod is stopping (a term signal reached this main, or a
//!   required sidecar was stopped by one), `TimedOut` after `--timeout`, `DependencyFailed` after
//!   a required sidecar ended on its own, and `GraceKilled` when a stop from outside ended in
//!   SIGKILL after the grace period;
//! - the first reason to stop is the one that stays: pod deletion sends SIGTERM to every container
//!   at about the same time, so whichever of "my TERM" and "my sidecar was TERMed" arrives first,
//!   the run ends `stopped`, never `dependency-failed`.
//!
//! A required sidecar that ended before CMD started fails the run at once (122, CMD never runs),
//! unless the main waits for its targets with a `--wait-timeout`: then the sidecar is awaited
//! back until that deadline, because under `restartPolicy: OnFailure` its container is being
//! restarted (its supervisor removes the stale marker when it starts), and the gate is checked
//! again once it is back.

use crate::config::OnWaitTimeout;
use crate::ending::{ChildStatus, Ending, StopCause, StoppedExit};
use crate::events::{Input, Timer};
use crate::marker::{Dependency, Presence, Reason};
use crate::modes::driver::{self, say};
use crate::peers::{LeaseView, Observation};
use crate::signals::Sig;
use crate::stop::{Ask, Heard, Step, Stop, StopSettings};
use std::time::{Duration, Instant};
use tracing::Level;

/// `main`'s own action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Own {
    /// `--heartbeat`: refresh the lease's mtime.
    TouchLease,
}

pub type Action = driver::Action<Own>;

/// The readiness gate's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate {
    pub wait_timeout: Option<Duration>,
    pub on_wait_timeout: OnWaitTimeout,
}

/// What the policy needs of the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The command, as shown in logs.
    pub command: String,
    pub stop: StopSettings,
    pub timeout: Option<Duration>,
    pub heartbeat: Option<Duration>,
    /// `--wait-for` was given.
    pub gate: Option<Gate>,
    /// The `--requires` paths, by peer index.
    pub requires: Vec<String>,
    /// `--quit-url`s to POST once CMD has ended.
    pub quit: bool,
    /// The marker's path, for the start line.
    pub marker: Option<String>,
}

/// What a stop was for.
#[derive(Debug, Clone, PartialEq)]
enum Why {
    /// A term signal reached this main.
    Outside(Sig),
    /// A required sidecar was stopped by a signal from outside: the pod is stopping.
    PodStopping(Dependency, Sig),
    Timeout(Duration),
    Dependency(Dependency),
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Waiting {
        gate_open: bool,
        /// When the gate gives up, if it does.
        deadline: Option<Instant>,
    },
    Running {
        stop: Stop,
        why: Option<Why>,
        asked_at: Option<Instant>,
    },
    Closing {
        leftovers: bool,
        quitting: bool,
    },
    Ended,
}

/// What is known of one required sidecar.
#[derive(Debug, Clone, PartialEq)]
enum Peer {
    /// Not looked at yet.
    Unseen,
    Watching,
    /// Ended before CMD started; awaited back until the gate's deadline.
    Away(Dependency),
    Settled,
}

/// What one look at a required sidecar says.
enum News {
    NotStarted,
    Alive,
    /// It ended; `Some(sig)` when its marker says a signal from outside stopped it.
    Ended(Dependency, Option<Sig>),
}

pub struct Policy {
    s: Settings,
    phase: Phase,
    peers: Vec<Peer>,
    /// When the run began, for the start line.
    began: Option<Instant>,
}

impl Policy {
    pub fn new(s: Settings) -> Policy {
        let peers = vec![Peer::Unseen; s.requires.len()];
        Policy {
            s,
            phase: Phase::Waiting {
                gate_open: true,
                deadline: None,
            },
            peers,
            began: None,
        }
    }

    /// The end: write it, then stop the leftovers and call the quit URLs, then exit.
    fn close(&mut self, ending: Ending, leftovers: bool) -> Vec<Action> {
        let mut out = vec![Action::Finish(ending)];
        if leftovers {
            out.push(Action::StopLeftovers(self.s.stop.stop_signal));
            out.push(Action::Arm(Timer::Leftovers, self.s.stop.grace));
            out.push(say(
                Level::WARN,
                crate::ending::leftovers_words(
                    &self.s.command,
                    self.s.stop.stop_signal,
                    self.s.stop.grace,
                ),
            ));
        }
        if self.s.quit {
            out.push(Action::PostQuit);
        }
        self.phase = Phase::Closing {
            leftovers,
            quitting: self.s.quit,
        };
        out.extend(self.maybe_exit());
        out
    }

    fn maybe_exit(&mut self) -> Vec<Action> {
        match self.phase {
            Phase::Closing {
                leftovers: false,
                quitting: false,
            } => {
                self.phase = Phase::Ended;
                vec![Action::Exit]
            }
            _ => Vec::new(),
        }
    }

    /// Starts CMD once the gate is open, every required sidecar was looked at, and none is away.
    fn maybe_spawn(&mut self) -> Vec<Action> {
        let ready = matches!(
            self.phase,
            Phase::Waiting {
                gate_open: true,
                ..
            }
        );
        let peers_ok = self
            .peers
            .iter()
            .all(|p| matches!(p, Peer::Watching | Peer::Settled));
        if ready && peers_ok {
            // Spawned or SpawnFailed comes back at once and moves the phase on.
            vec![Action::Spawn]
        } else {
            Vec::new()
        }
    }

    fn on_signal(&mut self, sig: Sig) -> Vec<Action> {
        let term = self.s.stop.term_signals.contains(sig);
        // Borrowed, not cloned: this runs between a stop signal and its forwarding.
        let cmd = self.s.command.as_str();
        let (grace, delay) = (self.s.stop.grace, self.s.stop.stop_delay);
        match &mut self.phase {
            Phase::Waiting { .. } if term => {
                let mut out = vec![say(
                    Level::WARN,
                    format!("received {sig} while waiting to start; not starting {cmd}"),
                )];
                out.extend(self.close(Ending::Cancelled(sig), false));
                out
            }
            Phase::Waiting { .. } => vec![say(
                Level::INFO,
                format!("received {sig} before {cmd} started: nothing to pass it to"),
            )],
            Phase::Running { stop, why, .. } if term => {
                let (heard, steps) = stop.request(sig, Ask::Signal(sig), delay, grace);
                if heard == Heard::Began {
                    *why = Some(Why::Outside(sig));
                }
                let note = match heard {
                    Heard::Began if delay.is_zero() => format!(
                        "received {sig}, forwarded to {cmd}; it has {} to exit before SIGKILL",
                        crate::clock::human(grace)
                    ),
                    Heard::Began => format!(
                        "received {sig}; {cmd} keeps running for --stop-delay {}, then gets it",
                        crate::clock::human(delay)
                    ),
                    Heard::Held => format!(
                        "received {sig} during --stop-delay; {cmd} gets it when the delay ends"
                    ),
                    Heard::Forwarded => format!("received {sig} again, forwarded to {cmd}"),
                    Heard::Delivered => {
                        format!("received {sig}; {cmd} already got {sig} for this stop")
                    }
                };
                let mut out = stop_actions(steps);
                out.push(say(Level::INFO, note));
                out
            }
            Phase::Running { .. } => vec![
                Action::Stop(Step::Forward(sig)),
                say(Level::DEBUG, format!("forwarded {sig} to {cmd}")),
            ],
            Phase::Closing {
                leftovers: true, ..
            } => vec![Action::StopLeftovers(sig)],
            Phase::Closing { .. } | Phase::Ended => Vec::new(),
        }
    }

    fn on_spawned(&mut self, now: Instant, pid: i32) -> Vec<Action> {
        self.phase = Phase::Running {
            stop: Stop::Idle,
            why: None,
            asked_at: None,
        };
        let mut out = Vec::new();
        if let Some(t) = self.s.timeout {
            out.push(Action::Arm(Timer::Timeout, t));
        }
        if let Some(h) = self.s.heartbeat {
            out.push(Action::Arm(Timer::Heartbeat, h));
        }
        let gate = match (self.s.gate, self.began) {
            (Some(_), Some(b)) => format!(
                " (ready after {})",
                crate::clock::human(now.saturating_duration_since(b))
            ),
            _ => String::new(),
        };
        let marker = self
            .s
            .marker
            .as_ref()
            .map(|m| format!("; marker will be written to {m}"))
            .unwrap_or_default();
        out.push(say(
            Level::INFO,
            format!("started {} as pid {pid}{gate}{marker}", self.s.command),
        ));
        out
    }

    fn on_exit(
        &mut self,
        now: Instant,
        status: ChildStatus,
        leftovers: bool,
        before_stop: bool,
    ) -> Vec<Action> {
        let Phase::Running {
            stop,
            why,
            asked_at,
        } = &self.phase
        else {
            return Vec::new();
        };
        let own = match status {
            ChildStatus::Exited(c) => Ending::Exited(c),
            ChildStatus::Signaled(s) => Ending::Signaled(s),
        };
        let took = asked_at.map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        let stopped = |cause| Ending::Stopped {
            cause,
            status,
            exit: StoppedExit::Command,
            took,
        };
        // A CMD that had already ended when the stop was sent (it crashed or exited a moment
        // before, and its exit was read after the stop request) ended by itself.
        let asked = matches!(stop, Stop::Asked { .. }) && !before_stop;
        let ending = match why.clone() {
            Some(Why::Outside(_) | Why::PodStopping(..))
                if stop.killed() && status == ChildStatus::Signaled(Sig::KILL) =>
            {
                Ending::GraceKilled {
                    grace: self.s.stop.grace,
                }
            }
            Some(Why::Outside(sig)) if asked => stopped(StopCause::Requested(sig)),
            Some(Why::PodStopping(dependency, sig)) if asked => {
                stopped(StopCause::PodStopping { dependency, sig })
            }
            Some(Why::Timeout(after)) if asked => Ending::TimedOut { after, status },
            Some(Why::Dependency(dependency)) if asked => Ending::DependencyFailed {
                dependency,
                status: Some(status),
            },
            // Not asked (yet): CMD ended by itself, during a stop delay at most.
            _ => own,
        };
        self.close(ending, leftovers)
    }

    fn on_timer(&mut self, t: Timer) -> Vec<Action> {
        let (grace, cmd) = (self.s.stop.grace, self.s.command.clone());
        match (&mut self.phase, t) {
            (Phase::Running { stop, .. }, Timer::StopDelay) => stop_actions(stop.delay_over(grace)),
            (Phase::Running { stop, .. }, Timer::Grace) => {
                let steps = stop.grace_over();
                let mut out = stop_actions(steps.clone());
                if !steps.is_empty() {
                    out.push(say(
                        Level::WARN,
                        crate::ending::grace_over_words(&cmd, grace),
                    ));
                }
                out
            }
            (Phase::Running { .. }, Timer::Timeout) => self.timed_out(),
            (Phase::Running { .. }, Timer::Heartbeat) => match self.s.heartbeat {
                Some(h) => vec![
                    Action::Mode(Own::TouchLease),
                    Action::Arm(Timer::Heartbeat, h),
                ],
                None => Vec::new(),
            },
            (Phase::Waiting { .. }, Timer::WaitTimeout) => match self.away() {
                Some(d) => self.not_started(d),
                None => Vec::new(),
            },
            (Phase::Closing { .. }, Timer::Leftovers) => vec![
                Action::KillLeftovers,
                say(
                    Level::WARN,
                    crate::ending::leftovers_killed_words(&cmd, grace),
                ),
            ],
            // A timer of another phase, armed before the phase changed: nothing to do now.
            (_, Timer::StopDelay)
            | (_, Timer::Grace)
            | (_, Timer::Timeout)
            | (_, Timer::Heartbeat)
            | (_, Timer::WaitTimeout)
            | (_, Timer::Leftovers) => Vec::new(),
            // main never arms it.
            (_, Timer::StaleCheck) => Vec::new(),
        }
    }

    fn timed_out(&mut self) -> Vec<Action> {
        let (grace, sig, cmd) = (
            self.s.stop.grace,
            self.s.stop.stop_signal,
            self.s.command.clone(),
        );
        let Some(limit) = self.s.timeout else {
            return Vec::new();
        };
        let Phase::Running { stop, why, .. } = &mut self.phase else {
            return Vec::new();
        };
        if *stop == Stop::Idle {
            *why = Some(Why::Timeout(limit));
        }
        let steps = stop.hurry(Ask::Signal(sig), grace);
        if steps.is_empty() {
            return Vec::new();
        }
        let mut out = stop_actions(steps);
        out.push(say(
            Level::WARN,
            format!(
                "{cmd} has run for --timeout {}: sent {sig}; it has {} to exit before SIGKILL",
                crate::clock::human(limit),
                crate::clock::human(grace)
            ),
        ));
        out
    }

    fn on_ready(&mut self, now: Instant, result: Result<(), Vec<String>>) -> Vec<Action> {
        let Phase::Waiting { deadline, .. } = self.phase else {
            return Vec::new();
        };
        let pending = match result {
            Ok(()) => {
                self.phase = Phase::Waiting {
                    gate_open: true,
                    deadline,
                };
                let mut out = self.maybe_spawn();
                if let (Some(_), Some(d)) = (self.away(), deadline) {
                    out.push(Action::Arm(
                        Timer::WaitTimeout,
                        d.saturating_duration_since(now),
                    ));
                }
                return out;
            }
            Err(pending) => pending,
        };
        if let Some(d) = self.away() {
            return self.not_started(d);
        }
        let gate = self.s.gate.unwrap_or(Gate {
            wait_timeout: None,
            on_wait_timeout: OnWaitTimeout::Fail,
        });
        let waited = gate.wait_timeout.unwrap_or_default();
        match gate.on_wait_timeout {
            OnWaitTimeout::Continue => {
                self.phase = Phase::Waiting {
                    gate_open: true,
                    deadline,
                };
                let mut out = vec![say(
                    Level::WARN,
                    format!(
                        "not ready after {}: {}; starting {} anyway (--on-wait-timeout continue)",
                        crate::clock::human(waited),
                        pending.join(", "),
                        self.s.command
                    ),
                )];
                out.extend(self.maybe_spawn());
                out
            }
            OnWaitTimeout::Fail => self.close(Ending::NotReady { pending, waited }, false),
        }
    }

    /// A required sidecar that ended before CMD started and was awaited back, if any.
    fn away(&self) -> Option<Dependency> {
        self.peers.iter().find_map(|p| match p {
            Peer::Away(d) => Some(d.clone()),
            _ => None,
        })
    }

    fn not_started(&mut self, d: Dependency) -> Vec<Action> {
        let settle = (0..self.peers.len())
            .filter(|&i| self.peers[i] != Peer::Settled)
            .map(Action::Settle);
        let mut out: Vec<Action> = settle.collect();
        out.extend(self.close(
            Ending::DependencyFailed {
                dependency: d,
                status: None,
            },
            false,
        ));
        out
    }

    fn on_peer(&mut self, i: usize, obs: Observation) -> Vec<Action> {
        let Some(path) = self.s.requires.get(i).cloned() else {
            return Vec::new();
        };
        if self.peers[i] == Peer::Settled {
            return Vec::new();
        }
        let was = std::mem::replace(&mut self.peers[i], Peer::Watching);
        match (news(&path, obs), &self.phase) {
            (News::NotStarted, Phase::Waiting { .. }) => self.maybe_spawn(),
            (News::Alive, Phase::Waiting { .. }) => self.came_back(&path, was),
            (News::Ended(_, Some(sig)), Phase::Waiting { .. }) => {
                self.peers[i] = Peer::Settled;
                let mut out = vec![
                    Action::Settle(i),
                    say(
                        Level::WARN,
                        format!(
                            "required sidecar {path} was stopped on {sig} before {} started: the pod is stopping",
                            self.s.command
                        ),
                    ),
                ];
                out.extend(self.close(Ending::Cancelled(sig), false));
                out
            }
            (News::Ended(dep, None), Phase::Waiting { deadline, .. }) => match deadline {
                Some(_) => self.awaited_back(i, dep, &path, was),
                None => self.not_started(dep),
            },
            (News::Ended(dep, request), Phase::Running { .. }) => {
                self.peers[i] = Peer::Settled;
                let mut out = vec![Action::Settle(i)];
                out.extend(match request {
                    Some(sig) => self.pod_stopping(dep, sig),
                    None => self.dependency_ended(dep),
                });
                out
            }
            (News::NotStarted | News::Alive, Phase::Running { .. }) => Vec::new(),
            (_, Phase::Closing { .. } | Phase::Ended) => {
                self.peers[i] = was;
                Vec::new()
            }
        }
    }

    /// A required sidecar is alive; if it was away, it is back, and the gate is checked again
    /// (its readiness went with it).
    fn came_back(&mut self, path: &str, was: Peer) -> Vec<Action> {
        let mut out = Vec::new();
        if let Peer::Away(_) = was {
            out.push(say(
                Level::INFO,
                format!("required sidecar {path} is back; checking readiness again"),
            ));
            if let (
                Some(_),
                Phase::Waiting {
                    gate_open,
                    deadline,
                },
            ) = (self.s.gate, &mut self.phase)
            {
                if *gate_open {
                    *gate_open = false;
                    out.push(Action::StartGate { until: *deadline });
                }
            }
        }
        out.extend(self.maybe_spawn());
        out
    }

    fn awaited_back(&mut self, i: usize, dep: Dependency, path: &str, was: Peer) -> Vec<Action> {
        let what = crate::ending::dependency_words(&dep);
        self.peers[i] = Peer::Away(dep);
        // Seen again (its lease released, then its marker): said once.
        if let Peer::Away(_) = was {
            return Vec::new();
        }
        vec![say(
            Level::WARN,
            format!(
                "required sidecar {path} ended before {} started ({what}); waiting up to \
                 --wait-timeout for it to come back (its container restarts under restartPolicy: OnFailure)",
                self.s.command
            ),
        )]
    }

    /// A required sidecar was stopped by a signal from outside: the pod is stopping. CMD is asked
    /// to stop with that signal when it is one of ours, else with --stop-signal.
    fn pod_stopping(&mut self, dep: Dependency, sig: Sig) -> Vec<Action> {
        let s = &self.s.stop;
        let ask = if s.term_signals.contains(sig) {
            sig
        } else {
            s.stop_signal
        };
        let (grace, cmd) = (s.grace, self.s.command.clone());
        let Phase::Running { stop, why, .. } = &mut self.phase else {
            return Vec::new();
        };
        if *stop == Stop::Idle {
            *why = Some(Why::PodStopping(dep.clone(), sig));
        }
        let steps = stop.hurry(Ask::Signal(ask), grace);
        let note = if steps.is_empty() {
            format!(
                "required sidecar {} was stopped on {sig} while {cmd} was already stopping",
                dep.path
            )
        } else {
            format!(
                "the pod is stopping: required sidecar {} was stopped on {sig}; sent {ask} to {cmd}, which has {} to exit before SIGKILL",
                dep.path,
                crate::clock::human(grace)
            )
        };
        let mut out = stop_actions(steps);
        out.push(say(Level::INFO, note));
        out
    }

    fn dependency_ended(&mut self, d: Dependency) -> Vec<Action> {
        let (grace, sig, cmd) = (
            self.s.stop.grace,
            self.s.stop.stop_signal,
            self.s.command.clone(),
        );
        let what = crate::ending::dependency_words(&d);
        let Phase::Running { stop, why, .. } = &mut self.phase else {
            return Vec::new();
        };
        if *stop == Stop::Idle {
            *why = Some(Why::Dependency(d.clone()));
        }
        let steps = stop.hurry(Ask::Signal(sig), grace);
        if steps.is_empty() {
            return vec![say(
                Level::WARN,
                format!(
                    "required sidecar {} ended ({what}) while {cmd} was already stopping",
                    d.path
                ),
            )];
        }
        let mut out = stop_actions(steps);
        out.push(say(
            Level::ERROR,
            format!(
                "required sidecar {} ended ({what}); sent {sig} to {cmd}, which has {} to exit before SIGKILL",
                d.path,
                crate::clock::human(grace)
            ),
        ));
        out
    }
}

impl driver::Policy for Policy {
    type Own = Own;

    fn start(&mut self, now: Instant) -> Vec<Action> {
        self.began = Some(now);
        match self.s.gate {
            Some(g) => {
                let deadline = g.wait_timeout.map(|w| now + w);
                self.phase = Phase::Waiting {
                    gate_open: false,
                    deadline,
                };
                vec![Action::StartGate { until: deadline }]
            }
            None => self.maybe_spawn(),
        }
    }

    fn on(&mut self, now: Instant, input: Input) -> Vec<Action> {
        let out = match input {
            Input::Signal(sig) => self.on_signal(sig),
            Input::Spawned { pid } => self.on_spawned(now, pid),
            Input::SpawnFailed(e) => self.close(Ending::from_spawn(&e), false),
            Input::ChildExited {
                status,
                leftovers,
                before_stop,
            } => self.on_exit(now, status, leftovers, before_stop),
            Input::LeftoversGone => match &mut self.phase {
                Phase::Closing { leftovers, .. } => {
                    *leftovers = false;
                    self.maybe_exit()
                }
                _ => Vec::new(),
            },
            Input::QuitDone { .. } => match &mut self.phase {
                Phase::Closing { quitting, .. } => {
                    *quitting = false;
                    self.maybe_exit()
                }
                _ => Vec::new(),
            },
            Input::Peer(i, obs) => self.on_peer(i, obs),
            Input::Timer(t) => self.on_timer(t),
            Input::Ready(r) => self.on_ready(now, r),
            // main never asks for lease ages.
            Input::LeaseAges(_) => Vec::new(),
        };
        // The ask starts the clock of how long the stop `took`.
        if let Phase::Running { asked_at, .. } = &mut self.phase {
            if asked_at.is_none() && out.iter().any(|a| matches!(a, Action::Stop(Step::Ask(_)))) {
                *asked_at = Some(now);
            }
        }
        out
    }
}

/// What one look at required sidecar `path` says.
fn news(path: &str, obs: Observation) -> News {
    let dependency = |exit_code, reason, command| Dependency {
        path: path.to_string(),
        exit_code,
        reason,
        command,
    };
    match (obs.marker, obs.lease) {
        // Its marker counts once no live writer holds the lease, or when the lease a helper
        // thread waited on was just released (the marker was renamed in before the release,
        // whatever lease a restarted sidecar may have taken since).
        (Presence::Present(seen), lease)
            if obs.released || !matches!(lease, LeaseView::Held { .. }) =>
        {
            let request = match seen.reason {
                Some(Reason::Stopped) => seen.stop_request,
                _ => None,
            };
            News::Ended(
                dependency(seen.exit_code, seen.reason, seen.program),
                request,
            )
        }
        (_, LeaseView::Held { .. }) => News::Alive,
        (_, LeaseView::Free) => News::Ended(dependency(None, None, None), None),
        (_, LeaseView::None) if obs.released => News::Ended(dependency(None, None, None), None),
        // Not started yet: not a failure (gate on it with --wait-for).
        (_, LeaseView::None) => News::NotStarted,
    }
}

fn stop_actions(steps: Vec<Step>) -> Vec<Action> {
    steps.into_iter().map(Action::Stop).collect()
}

#[cfg(test)]
mod tests;
