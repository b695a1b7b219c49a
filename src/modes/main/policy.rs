//! What `main` decides, as a pure function of its state and each event.
//!
//! Lifecycle ([`Phase`]): `Gating` (waiting for the `--wait-for` targets; no child yet) →
//! `Running` (the command runs; a [`Stop`] may be under way, and [`Why`] remembers what it was
//! for) → `Ended`. How the run ends is decided here, once, as an [`Ending`]:
//! - the command's own exit or death is the ending, unless the supervisor stopped it: after
//!   `--timeout` it is `TimedOut`, after a required sidecar ended it is `DependencyFailed`, and a
//!   SIGKILL after the grace period is `GraceKilled`;
//! - a stop requested from outside (a term signal) keeps its reason even if a timeout or a
//!   dependency comes after it: pod deletion sends SIGTERM to every container at once.

use super::super::{Action, say};
use crate::config::OnWaitTimeout;
use crate::ending::{ChildStatus, Ending};
use crate::events::{Event, Timer};
use crate::marker::{Dependency, Presence};
use crate::peers::{LeaseView, Observation};
use crate::signals::{Sig, SigSet};
use crate::stop::{Ask, Step, Stop};
use std::time::Duration;
use tracing::Level;

/// What the policy needs of the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The command, as shown in logs.
    pub command: String,
    pub grace: Duration,
    pub stop_signal: Sig,
    pub stop_delay: Duration,
    pub term_signals: SigSet,
    pub timeout: Option<Duration>,
    pub heartbeat: Option<Duration>,
    pub gated: bool,
    pub wait_timeout: Option<Duration>,
    pub on_wait_timeout: OnWaitTimeout,
    /// The `--requires` paths, by peer index.
    pub requires: Vec<String>,
}

/// What a stop was for.
#[derive(Debug, Clone, PartialEq)]
enum Why {
    /// A term signal from outside, or no stop at all.
    Outside,
    Timeout(Duration),
    Dependency(Dependency),
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Gating,
    Running { stop: Stop, why: Why },
    Ended,
}

pub struct Policy {
    s: Settings,
    phase: Phase,
    /// Required sidecars already known to have ended.
    settled: Vec<bool>,
}

impl Policy {
    pub fn new(s: Settings) -> Policy {
        let settled = vec![false; s.requires.len()];
        Policy {
            s,
            phase: Phase::Gating,
            settled,
        }
    }

    /// The first actions: the gate, or the command at once.
    pub fn start(&mut self) -> Vec<Action> {
        if self.s.gated {
            vec![Action::StartGate]
        } else {
            vec![Action::Spawn]
        }
    }

    /// The command runs.
    pub fn spawned(&mut self) -> Vec<Action> {
        self.phase = Phase::Running {
            stop: Stop::Idle,
            why: Why::Outside,
        };
        let mut out = Vec::new();
        if let Some(t) = self.s.timeout {
            out.push(Action::Arm(Timer::Timeout, t));
        }
        if let Some(h) = self.s.heartbeat {
            out.push(Action::Arm(Timer::Heartbeat, h));
        }
        out
    }

    /// The command could not be started.
    pub fn spawn_failed(&mut self, ending: Ending) -> Vec<Action> {
        self.end(ending)
    }

    fn end(&mut self, ending: Ending) -> Vec<Action> {
        self.phase = Phase::Ended;
        vec![Action::Finish(ending)]
    }

    pub fn on(&mut self, event: Event) -> Vec<Action> {
        match event {
            Event::Signal(sig) => self.on_signal(sig),
            Event::ChildExited(status) => self.on_exit(status),
            Event::Timer(t) => self.on_timer(t),
            Event::Ready(r) => self.on_ready(r),
            // The recipe turns peer wake-ups into observations (see `on_peer`).
            Event::Peers(_) => Vec::new(),
        }
    }

    fn on_signal(&mut self, sig: Sig) -> Vec<Action> {
        let term = self.s.term_signals.contains(sig);
        let (grace, delay, cmd) = (self.s.grace, self.s.stop_delay, self.s.command.clone());
        match &mut self.phase {
            Phase::Gating if term => {
                let mut out = vec![say(
                    Level::WARN,
                    format!("received {sig} while waiting for the targets; not starting {cmd}"),
                )];
                out.extend(self.end(Ending::Cancelled(sig)));
                out
            }
            Phase::Gating => vec![say(
                Level::DEBUG,
                format!("ignoring {sig}: {cmd} has not started"),
            )],
            Phase::Running { stop, .. } if term => match stop.begin(Ask::Signal(sig), delay, grace)
            {
                Some(steps) => {
                    let note = if delay.is_zero() {
                        format!(
                            "received {sig}, forwarded to {cmd}; it has {} to exit before SIGKILL",
                            crate::clock::human(grace)
                        )
                    } else {
                        format!(
                            "received {sig}; {cmd} keeps running for --stop-delay {}, then gets it",
                            crate::clock::human(delay)
                        )
                    };
                    let mut out = stop_actions(steps);
                    out.push(say(Level::INFO, note));
                    out
                }
                None if matches!(stop, Stop::Delaying(_)) => vec![say(
                    Level::INFO,
                    format!("received {sig} again; still waiting out --stop-delay"),
                )],
                None => vec![
                    Action::Forward(sig),
                    say(Level::DEBUG, format!("forwarded {sig} to {cmd}")),
                ],
            },
            Phase::Running { .. } => vec![
                Action::Forward(sig),
                say(Level::DEBUG, format!("forwarded {sig} to {cmd}")),
            ],
            Phase::Ended => Vec::new(),
        }
    }

    fn on_exit(&mut self, status: ChildStatus) -> Vec<Action> {
        let Phase::Running { stop, why } = &self.phase else {
            return Vec::new();
        };
        let ending = match why {
            Why::Timeout(after) => Ending::TimedOut {
                after: *after,
                status,
            },
            Why::Dependency(d) => Ending::DependencyFailed {
                dependency: d.clone(),
                status: Some(status),
            },
            Why::Outside => match status {
                ChildStatus::Signaled(Sig::KILL) if stop.killed() => Ending::GraceKilled {
                    grace: self.s.grace,
                },
                ChildStatus::Signaled(s) => Ending::Signaled(s),
                ChildStatus::Exited(c) => Ending::Exited(c),
            },
        };
        self.end(ending)
    }

    fn on_timer(&mut self, t: Timer) -> Vec<Action> {
        let (grace, cmd) = (self.s.grace, self.s.command.clone());
        let Phase::Running { stop, why } = &mut self.phase else {
            return Vec::new();
        };
        match t {
            Timer::StopDelay => stop_actions(stop.delay_over(grace)),
            Timer::Grace => {
                let steps = stop.grace_over();
                let mut out = stop_actions(steps.clone());
                if !steps.is_empty() {
                    out.push(say(
                        Level::WARN,
                        format!(
                            "{cmd} still running {} after being asked to stop; killing its process group",
                            crate::clock::human(grace)
                        ),
                    ));
                }
                out
            }
            Timer::Timeout => {
                let Some(limit) = self.s.timeout else {
                    return Vec::new();
                };
                if *stop == Stop::Idle {
                    *why = Why::Timeout(limit);
                }
                let ask = Ask::Signal(self.s.stop_signal);
                let Some(steps) = stop.hurry(ask, grace) else {
                    return Vec::new();
                };
                let mut out = stop_actions(steps);
                out.push(say(
                    Level::WARN,
                    format!(
                        "{cmd} has run for --timeout {}: sent {}; it has {} to exit before SIGKILL",
                        crate::clock::human(limit),
                        self.s.stop_signal,
                        crate::clock::human(grace)
                    ),
                ));
                out
            }
            Timer::Heartbeat => match self.s.heartbeat {
                Some(h) => vec![Action::TouchLease, Action::Arm(Timer::Heartbeat, h)],
                None => Vec::new(),
            },
            Timer::StaleCheck => Vec::new(),
        }
    }

    fn on_ready(&mut self, result: Result<(), Vec<String>>) -> Vec<Action> {
        if self.phase != Phase::Gating {
            return Vec::new();
        }
        let pending = match result {
            Ok(()) => return vec![Action::Spawn],
            Err(pending) => pending,
        };
        let waited = self.s.wait_timeout.unwrap_or_default();
        match self.s.on_wait_timeout {
            OnWaitTimeout::Continue => vec![
                say(
                    Level::WARN,
                    format!(
                        "not ready after {}: {}; starting {} anyway (--on-wait-timeout continue)",
                        crate::clock::human(waited),
                        pending.join(", "),
                        self.s.command
                    ),
                ),
                Action::Spawn,
            ],
            OnWaitTimeout::Fail => self.end(Ending::NotReady { pending, waited }),
        }
    }

    /// A required sidecar (peer `i`) was observed; `released` when its lease was just released.
    pub fn on_peer(&mut self, i: usize, obs: Observation, released: bool) -> Vec<Action> {
        if self.settled.get(i) != Some(&false) || self.phase == Phase::Ended {
            return Vec::new();
        }
        let path = self.s.requires[i].clone();
        let dependency = match (&obs.marker, &obs.lease) {
            (_, LeaseView::Held { .. }) => return Vec::new(),
            (Presence::Present(seen), _) => Dependency {
                path,
                exit_code: seen.exit_code,
                reason: seen.reason.clone(),
                command: seen.program.clone(),
            },
            (_, LeaseView::Free) => vanished(path),
            (_, LeaseView::None) if released => vanished(path),
            // Not started yet: not a failure (gate on it with --wait-for).
            (_, LeaseView::None) => return Vec::new(),
        };
        self.settled[i] = true;
        let mut out = vec![Action::Settle(i)];
        out.extend(self.dependency_ended(dependency));
        out
    }

    fn dependency_ended(&mut self, d: Dependency) -> Vec<Action> {
        let (grace, sig, cmd) = (self.s.grace, self.s.stop_signal, self.s.command.clone());
        let what = crate::ending::dependency_words(&d);
        match &mut self.phase {
            Phase::Gating => self.end(Ending::DependencyFailed {
                dependency: d,
                status: None,
            }),
            Phase::Running { stop, why } => {
                if *stop == Stop::Idle {
                    *why = Why::Dependency(d.clone());
                }
                match stop.hurry(Ask::Signal(sig), grace) {
                    Some(steps) => {
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
                    None => vec![say(
                        Level::WARN,
                        format!(
                            "required sidecar {} ended while {cmd} was already stopping",
                            d.path
                        ),
                    )],
                }
            }
            Phase::Ended => Vec::new(),
        }
    }
}

fn vanished(path: String) -> Dependency {
    Dependency {
        path,
        exit_code: None,
        reason: None,
        command: None,
    }
}

fn stop_actions(steps: Vec<Step>) -> Vec<Action> {
    steps.into_iter().map(Action::Stop).collect()
}

#[cfg(test)]
mod tests;
