//! The readiness wait driven to its end on the calling thread: the gate, its attempts and the
//! file watcher, all waited on with one poll(2).
//!
//! Theory of operation: [`wait_all`] feeds the pure [`Gate`] its inputs and carries out its
//! actions. The attempts under way are a [`Flight`]; the wait is for any of their descriptors, the
//! watcher's ([`Watcher::descriptors`]: its inotify instance, the bell the event loop rings on
//! each dnotify signal), or the nearest of the attempts' deadlines, the gate's timer and the poll
//! tick of a directory that can only be polled. The event stream runs it on a helper thread and
//! hears its end through its inbox; an event loop can equally drive the same gate and flight on
//! its own descriptors.

use super::Target;
use super::attempt::{Attempt, Interest};
use super::flight::Flight;
use super::gate::{Action, Gate, Input};
use crate::watch::Watcher;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Waits until every target is ready, or until `timeout` has passed: then returns the targets
/// still pending, each with the reason of its last failed attempt. `what` names the waiter in
/// logs. The watcher used for file targets comes back, disarmed, for the caller to keep (see
/// `watch`: closing it could block on the kernel right when the command should start).
pub fn wait_all(
    targets: Vec<Target>,
    what: &'static str,
    poll: Duration,
    timeout: Option<Duration>,
) -> (Result<(), Vec<String>>, Option<Watcher>) {
    let files: Vec<PathBuf> = targets
        .iter()
        .filter_map(|t| match t {
            Target::File(p) => Some(p.clone()),
            _ => None,
        })
        .collect();
    // Armed before the first check: a file created in between is still seen.
    let watcher = (!files.is_empty()).then(|| Watcher::new(files, poll));
    let mut w = Waiting {
        gate: Gate::new(what, &targets, timeout),
        targets,
        flight: Flight::default(),
        timer: None,
        watcher,
        poll_at: None,
    };
    let mut inputs: VecDeque<Input> = VecDeque::from([Input::Start {
        files_watched: w.files_watched(),
    }]);
    let result = loop {
        if let Some(result) = w.decide(&mut inputs) {
            break result;
        }
        inputs.extend(w.wait());
    };
    let mut watcher = w.watcher;
    if let Some(w) = &mut watcher {
        w.disarm();
    }
    // Dropping the flight closes the sockets of the attempts still under way.
    (result, watcher)
}

struct Waiting {
    gate: Gate,
    targets: Vec<Target>,
    flight: Flight<usize>,
    /// The gate's timer.
    timer: Option<Instant>,
    watcher: Option<Watcher>,
    /// When to look at the files again, while some directory can only be polled.
    poll_at: Option<Instant>,
}

/// The key of the watcher's descriptors among the attempts' (which are target indexes).
const WATCHER: usize = usize::MAX;

impl Waiting {
    fn files_watched(&self) -> bool {
        self.watcher.as_ref().is_some_and(|w| !w.is_polling())
    }

    /// Feeds the inputs to the gate (and the outcomes of attempts that end at their launch, as
    /// they come), carrying out its actions; the result once the gate is over.
    fn decide(&mut self, inputs: &mut VecDeque<Input>) -> Option<Result<(), Vec<String>>> {
        while let Some(input) = inputs.pop_front() {
            let now = Instant::now();
            for action in self.gate.on(input, now) {
                match action {
                    Action::Attempt { target, deadline } => {
                        let attempt = Attempt::probe(&self.targets[target]);
                        if let Some(outcome) = self.flight.launch(target, attempt, deadline, now) {
                            inputs.push_back(Input::Finished {
                                target,
                                outcome: outcome.map(drop),
                            });
                        }
                    }
                    Action::ArmTimer(at) => self.timer = Some(at),
                    Action::Log(level, text) => crate::modes::log(level, &text),
                    Action::Ready => return Some(Ok(())),
                    Action::NotReady(pending) => return Some(Err(pending)),
                }
            }
        }
        None
    }

    /// Waits for the next thing to happen; the inputs it makes.
    fn wait(&mut self) -> Vec<Input> {
        if self.watcher.as_ref().is_some_and(Watcher::is_polling) && self.poll_at.is_none() {
            self.poll_at = self
                .watcher
                .as_ref()
                .map(|w| Instant::now() + w.poll_interval());
        }
        let deadline = [self.flight.deadline(), self.timer, self.poll_at]
            .into_iter()
            .flatten()
            .min();
        let ready = self.poll(deadline);
        let mut inputs = Vec::new();
        let mut files_changed = false;
        for key in ready {
            if key == WATCHER {
                files_changed = true;
            } else if let Some(outcome) = self.flight.ready(key) {
                inputs.push(Input::Finished {
                    target: key,
                    outcome: outcome.map(drop),
                });
            }
        }
        let now = Instant::now();
        for (target, outcome) in self.flight.expire(now) {
            inputs.push(Input::Finished {
                target,
                outcome: outcome.map(drop),
            });
        }
        if self.timer.is_some_and(|t| t <= now) {
            self.timer = None;
            inputs.push(Input::Timer);
        }
        if self.poll_at.is_some_and(|t| t <= now) {
            self.poll_at = None;
            files_changed = true;
        }
        if files_changed {
            if let Some(w) = &mut self.watcher {
                w.changed();
            }
            inputs.push(Input::FilesChanged {
                files_watched: self.files_watched(),
            });
        }
        inputs
    }

    /// One poll(2) on the attempts' and the watcher's descriptors, until `deadline`: the keys of
    /// the ready ones.
    fn poll(&self, deadline: Option<Instant>) -> Vec<usize> {
        let mut keys = Vec::new();
        let mut fds = Vec::new();
        for (key, fd, interest) in self.flight.waits() {
            let events = match interest {
                Interest::Readable => PollFlags::POLLIN,
                Interest::Writable => PollFlags::POLLOUT,
            };
            keys.push(key);
            fds.push(PollFd::new(fd, events));
        }
        for fd in self.watcher.iter().flat_map(Watcher::descriptors) {
            keys.push(WATCHER);
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
        }
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                // Rounded up to whole milliseconds: waking early would only spin.
                let ms = d
                    .saturating_duration_since(Instant::now())
                    .as_micros()
                    .div_ceil(1000);
                PollTimeout::try_from(ms.min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX)
            }
        };
        if let Err(e) = poll(&mut fds, timeout) {
            if e != nix::errno::Errno::EINTR {
                // Never spin on a failing poll: the deadlines still come, a little later.
                tracing::warn!("waiting for readiness failed: {}", std::io::Error::from(e));
                std::thread::sleep(Duration::from_millis(10));
            }
            return Vec::new();
        }
        fds.iter()
            .zip(keys)
            .filter(|(fd, _)| fd.revents().is_some_and(|r| !r.is_empty()))
            .map(|(_, key)| key)
            .collect()
    }
}
