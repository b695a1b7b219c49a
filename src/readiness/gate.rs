//! The readiness gate as a pure state machine: which attempt to start when, and when the wait is
//! over. No I/O and no clock: every input carries the time.
//!
//! Theory of operation: at [`Input::Start`] every target gets an attempt. An attempt that fails
//! makes its target wait: a network target for its own backoff (10 ms, doubling to 100 ms), a file
//! target until the watcher says something changed in its directory ([`Input::FilesChanged`]),
//! or for the backoff too when the watcher can only poll. Each attempt's deadline is
//! [`ATTEMPT_TIMEOUT`] after its start, clipped to the overall deadline (`--wait-timeout`), so a
//! target that accepts and never answers cannot keep the gate open past it. The gate is over when
//! every target was ready once ([`Action::Ready`]), or at the overall deadline once no attempt is
//! running any more ([`Action::NotReady`], naming each pending target with the reason of its last
//! attempt: the running attempts end at that same deadline, so their reason is the freshest one).
//! While it waits it says every [`PROGRESS_EVERY`] what it is still waiting for.
//!
//! The driver carries out [`Action::Attempt`] (and times the attempt out at its deadline,
//! reporting that as its outcome), arms one timer at the instant of the last [`Action::ArmTimer`]
//! (a timer that fires with nothing due is harmless), and feeds back the inputs.

use super::{ATTEMPT_TIMEOUT, BACKOFF_START, PROGRESS_EVERY, Target, next_backoff};
use std::time::{Duration, Instant};
use tracing::Level;

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Begin: every target gets an attempt. `files_watched`: the watcher can watch every file
    /// target's directory (false: it polls, so file targets are re-checked on the backoff).
    Start { files_watched: bool },
    /// Attempt `target` ended (a timed-out attempt ends with the reason the driver gives).
    Finished {
        target: usize,
        outcome: Result<(), String>,
    },
    /// The timer armed last fired.
    Timer,
    /// Something changed where the file targets live (and whether the watcher still watches).
    FilesChanged { files_watched: bool },
}

/// What to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start an attempt at target `target`; it must end (or be timed out) by `deadline`.
    Attempt {
        target: usize,
        deadline: Instant,
    },
    /// Arm the gate's one timer at this instant (replacing the earlier one).
    ArmTimer(Instant),
    Log(Level, String),
    /// Every target is ready: the gate is over.
    Ready,
    /// The deadline passed: the gate is over; the pending targets, each with its last reason.
    NotReady(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    /// Not ready. The next attempt starts at `retry` (`None`: when the files change).
    Waiting {
        retry: Option<Instant>,
        backoff: Duration,
        reason: Option<String>,
    },
    Running {
        backoff: Duration,
        reason: Option<String>,
    },
    Ready,
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct Gate {
    /// Who waits, for log lines (`wait-for`, `ready-when`).
    what: &'static str,
    names: Vec<String>,
    files: Vec<bool>,
    slots: Vec<Slot>,
    timeout: Option<Duration>,
    started: Option<Instant>,
    deadline: Option<Instant>,
    next_progress: Option<Instant>,
    files_watched: bool,
    over: bool,
}

impl Gate {
    /// A gate over `targets`, giving up `timeout` after its start (never, with `None`).
    pub fn new(what: &'static str, targets: &[Target], timeout: Option<Duration>) -> Gate {
        Gate {
            what,
            names: targets.iter().map(|t| t.to_string()).collect(),
            files: targets.iter().map(Target::is_file).collect(),
            slots: vec![
                Slot::Waiting {
                    retry: None,
                    backoff: BACKOFF_START,
                    reason: None,
                };
                targets.len()
            ],
            timeout,
            started: None,
            deadline: None,
            next_progress: None,
            files_watched: false,
            over: false,
        }
    }

    #[cfg(test)]
    /// Whether the gate has said Ready or NotReady.
    pub fn is_over(&self) -> bool {
        self.over
    }

    /// The one transition: the state and an input at `now` give the actions.
    pub fn on(&mut self, input: Input, now: Instant) -> Vec<Action> {
        if self.over {
            return Vec::new();
        }
        let mut out = Vec::new();
        match input {
            Input::Start { files_watched } => {
                if self.started.is_some() {
                    return out;
                }
                self.files_watched = files_watched;
                self.started = Some(now);
                self.deadline = self.timeout.map(|t| now + t);
                self.next_progress = Some(now + PROGRESS_EVERY);
                for i in 0..self.slots.len() {
                    self.start(i, now, &mut out);
                }
            }
            Input::Finished { target, outcome } => {
                self.finished(target, outcome, now, &mut out);
                self.progress(now, &mut out);
            }
            Input::Timer => {
                for i in 0..self.slots.len() {
                    let due =
                        matches!(self.slots[i], Slot::Waiting { retry: Some(r), .. } if r <= now);
                    if due && self.open(now) {
                        self.start(i, now, &mut out);
                    }
                }
                self.progress(now, &mut out);
            }
            Input::FilesChanged { files_watched } => {
                self.files_watched = files_watched;
                for i in 0..self.slots.len() {
                    let waiting = matches!(self.slots[i], Slot::Waiting { .. });
                    if self.files[i] && waiting && self.open(now) {
                        self.start(i, now, &mut out);
                    }
                }
                self.progress(now, &mut out);
            }
        }
        self.conclude(now, &mut out);
        out
    }

    /// Whether attempts may still start: the deadline has not passed. (The first round starts
    /// even with a zero `--wait-timeout`: a file that is there, or a port that accepts at once,
    /// is ready.)
    fn open(&self, now: Instant) -> bool {
        self.deadline.is_none_or(|d| now < d)
    }

    /// Starts an attempt at target `i` (which must be waiting).
    fn start(&mut self, i: usize, now: Instant, out: &mut Vec<Action>) {
        let Slot::Waiting {
            backoff, reason, ..
        } = &self.slots[i]
        else {
            return;
        };
        let attempt_deadline = match self.deadline {
            Some(d) => (now + ATTEMPT_TIMEOUT).min(d),
            None => now + ATTEMPT_TIMEOUT,
        };
        self.slots[i] = Slot::Running {
            backoff: *backoff,
            reason: reason.clone(),
        };
        out.push(Action::Attempt {
            target: i,
            deadline: attempt_deadline,
        });
    }

    fn finished(
        &mut self,
        i: usize,
        outcome: Result<(), String>,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(Slot::Running { backoff, .. }) = self.slots.get(i) else {
            return;
        };
        let backoff = *backoff;
        match outcome {
            Ok(()) => {
                out.push(Action::Log(
                    Level::DEBUG,
                    format!("{}: {} is ready", self.what, self.names[i]),
                ));
                self.slots[i] = Slot::Ready;
            }
            Err(reason) => {
                let on_change = self.files[i] && self.files_watched;
                self.slots[i] = Slot::Waiting {
                    retry: (!on_change).then_some(now + backoff),
                    backoff: next_backoff(backoff),
                    reason: Some(reason),
                };
            }
        }
    }

    /// The progress line, when it is due.
    fn progress(&mut self, now: Instant, out: &mut Vec<Action>) {
        let (Some(due), Some(started)) = (self.next_progress, self.started) else {
            return;
        };
        if now < due {
            return;
        }
        out.push(Action::Log(
            Level::INFO,
            format!(
                "{}: still waiting after {}s for {}",
                self.what,
                now.duration_since(started).as_secs(),
                self.pending().join(", ")
            ),
        ));
        self.next_progress = Some(now + PROGRESS_EVERY);
    }

    /// Each target not ready, with the reason of its last attempt.
    fn pending(&self) -> Vec<String> {
        self.slots
            .iter()
            .zip(&self.names)
            .filter_map(|(slot, name)| match slot {
                Slot::Ready => None,
                Slot::Waiting { reason, .. } | Slot::Running { reason, .. } => Some(format!(
                    "{name} ({})",
                    reason.as_deref().unwrap_or("no answer yet")
                )),
            })
            .collect()
    }

    /// Over (ready, or past the deadline with nothing running), or the timer for what is next: a
    /// retry, the progress line or the deadline, all later than `now` (due retries have just
    /// started and the progress line was just said), so a timer never spins.
    fn conclude(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.started.is_none() {
            return;
        }
        if self.slots.iter().all(|s| *s == Slot::Ready) {
            if let Some(started) = self.started {
                out.push(Action::Log(
                    Level::DEBUG,
                    format!(
                        "{}: all targets ready after {}",
                        self.what,
                        crate::clock::human(now.duration_since(started))
                    ),
                ));
            }
            self.over = true;
            out.push(Action::Ready);
            return;
        }
        if !self.open(now) {
            // Past the deadline, the running attempts end at it too: wait for them, no timer.
            if !self.slots.iter().any(|s| matches!(s, Slot::Running { .. })) {
                self.over = true;
                out.push(Action::NotReady(self.pending()));
            }
            return;
        }
        let retries = self.slots.iter().filter_map(|s| match s {
            Slot::Waiting { retry, .. } => *retry,
            _ => None,
        });
        let next = retries.chain(self.next_progress).chain(self.deadline).min();
        if let Some(t) = next {
            out.push(Action::ArmTimer(t));
        }
    }
}

#[cfg(test)]
mod tests;
