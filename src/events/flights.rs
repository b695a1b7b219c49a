//! The readiness wait and the quit calls, driven by the event loop's own epoll descriptor.
//!
//! Theory of operation: both are attempts in flight ([`Flight`]): non-blocking sockets (or a
//! name lookup's pipe) that the loop waits on beside its signalfd and inbox. The readiness wait
//! is the pure [`Gate`] fed with what the attempts and the file watcher say; the quit calls are
//! one POST per URL, counted when they end. Neither runs on a thread of its own, so nothing here
//! can race the policy: everything happens between two `epoll_wait`s.
//!
//! Registrations follow the attempts: an attempt's descriptor changes from state to state, and a
//! closed descriptor's number may be reused at once. So [`Flights::unregister`] takes every
//! attempt's descriptor out of the poller right after the wait, while they are all still open,
//! and [`Flights::register`] puts back the current ones right before the next wait; in between,
//! attempts may step, end and close freely.

use crate::evloop::{Interest, Poller};
use crate::http::HttpUrl;
use crate::readiness::Target;
use crate::readiness::attempt::{self, Attempt};
use crate::readiness::flight::Flight;
use crate::readiness::gate::{Action, Gate, Input};
use crate::watch::Watcher;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Timeout of one quit request.
pub const QUIT_TIMEOUT: Duration = Duration::from_secs(2);

/// Token bases: the low 32 bits are the attempt's key.
const GATE: u64 = 1 << 32;
const QUIT: u64 = 2 << 32;
/// The gate's file watcher's inotify descriptor.
const GATE_FILES: u64 = 3 << 32;

/// What the loop learns from the flights.
#[derive(Debug, PartialEq, Eq)]
pub enum Done {
    Ready(Result<(), Vec<String>>),
    Quit { answered: usize },
}

/// A readiness wait under way.
struct Waiting {
    gate: Gate,
    targets: Vec<Target>,
    flight: Flight<usize>,
    /// The gate's one timer.
    timer: Option<Instant>,
    watcher: Option<Watcher>,
    /// When to look at the files again, while some directory can only be polled.
    poll_at: Option<Instant>,
}

/// Quit calls under way.
struct Quitting {
    urls: Vec<HttpUrl>,
    flight: Flight<usize>,
    answered: usize,
}

#[derive(Default)]
pub struct Flights {
    waiting: Option<Waiting>,
    quitting: Option<Quitting>,
    /// The descriptors registered for the next wait.
    registered: Vec<RawFd>,
    /// Watchers of finished waits, kept open (and empty) so that closing them never blocks a
    /// critical path (see `watch`); the process exit closes them.
    retired: Vec<Watcher>,
}

impl Flights {
    /// Starts a readiness wait for `targets` that gives up after `timeout`; replaces one under
    /// way. Returns what ended at once.
    pub fn start_gate(
        &mut self,
        targets: Vec<Target>,
        what: &'static str,
        poll: Duration,
        timeout: Option<Duration>,
    ) -> Vec<Done> {
        self.retire();
        let files: Vec<PathBuf> = targets
            .iter()
            .filter_map(|t| match t {
                Target::File(p) => Some(p.clone()),
                _ => None,
            })
            .collect();
        // Armed before the first check: a file created in between is still seen.
        let watcher = (!files.is_empty()).then(|| Watcher::new(files, poll));
        let files_watched = watcher.as_ref().is_some_and(|w| !w.is_polling());
        self.waiting = Some(Waiting {
            gate: Gate::new(what, &targets, timeout),
            targets,
            flight: Flight::default(),
            timer: None,
            watcher,
            poll_at: None,
        });
        self.feed(vec![Input::Start { files_watched }])
    }

    /// POSTs every URL at once; the end comes as [`Done::Quit`].
    pub fn post_quit(&mut self, urls: Vec<HttpUrl>) -> Vec<Done> {
        let deadline = Instant::now() + QUIT_TIMEOUT;
        let mut q = Quitting {
            flight: Flight::default(),
            answered: 0,
            urls,
        };
        let now = Instant::now();
        for i in 0..q.urls.len() {
            if let Some(outcome) = q.flight.launch(i, Attempt::post(&q.urls[i]), deadline, now) {
                q.count(i, outcome);
            }
        }
        self.quitting = Some(q);
        self.quit_done()
    }

    /// The nearest instant something is due.
    pub fn deadline(&self) -> Option<Instant> {
        let w = self.waiting.as_ref();
        [
            w.and_then(|w| w.flight.deadline()),
            w.and_then(|w| w.timer),
            w.and_then(|w| w.poll_at),
            self.quitting.as_ref().and_then(|q| q.flight.deadline()),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Puts the current attempts' (and the gate watcher's) descriptors in the poller.
    pub fn register(&mut self, poller: &Poller) {
        let mut add = |fd: BorrowedFd<'_>, token: u64, interest: attempt::Interest| {
            let interest = match interest {
                attempt::Interest::Readable => Interest::Read,
                attempt::Interest::Writable => Interest::Write,
            };
            match poller.add(fd, token, interest) {
                Ok(()) => self.registered.push(fd.as_raw_fd()),
                Err(e) => tracing::warn!("cannot wait on a probe's socket: {e}"),
            }
        };
        if let Some(w) = &mut self.waiting {
            if w.watcher.as_ref().is_some_and(Watcher::is_polling) && w.poll_at.is_none() {
                w.poll_at = w
                    .watcher
                    .as_ref()
                    .map(|w| Instant::now() + w.poll_interval());
            }
            for (key, fd, interest) in w.flight.waits() {
                add(fd, GATE | key as u64, interest);
            }
            if let Some(fd) = w.watcher.as_ref().and_then(Watcher::inotify_fd) {
                add(fd, GATE_FILES, attempt::Interest::Readable);
            }
        }
        if let Some(q) = &self.quitting {
            for (key, fd, interest) in q.flight.waits() {
                add(fd, QUIT | key as u64, interest);
            }
        }
    }

    /// Takes every descriptor of [`Flights::register`] out of the poller (they are all still
    /// open: nothing has stepped since the wait).
    pub fn unregister(&mut self, poller: &Poller) {
        for fd in self.registered.drain(..) {
            poller.delete_raw(fd);
        }
    }

    /// Whether `token` is one of ours.
    pub fn owns(token: u64) -> bool {
        token >= GATE
    }

    /// The descriptors behind `tokens` are ready, something changed in the watched directories
    /// (`files`: a dnotify signal), and the time is `now`: step, expire and feed the gate.
    pub fn progress(&mut self, tokens: &[u64], files: bool, now: Instant) -> Vec<Done> {
        let mut inputs = Vec::new();
        let mut files_changed = files;
        if let Some(w) = &mut self.waiting {
            for &t in tokens {
                if t == GATE_FILES {
                    files_changed = true;
                } else if t & !0xffff_ffff == GATE {
                    let key = (t & 0xffff_ffff) as usize;
                    if let Some(outcome) = w.flight.ready(key) {
                        inputs.push(finished(key, outcome));
                    }
                }
            }
            inputs.extend(
                w.flight
                    .expire(now)
                    .into_iter()
                    .map(|(k, o)| finished(k, o)),
            );
            if w.timer.is_some_and(|t| t <= now) {
                w.timer = None;
                inputs.push(Input::Timer);
            }
            if w.poll_at.is_some_and(|t| t <= now) {
                w.poll_at = None;
                files_changed = true;
            }
            if files_changed {
                if let Some(watcher) = &mut w.watcher {
                    watcher.drain_inotify();
                    watcher.arm();
                }
                inputs.push(Input::FilesChanged {
                    files_watched: w.watcher.as_ref().is_some_and(|w| !w.is_polling()),
                });
            }
        }
        if let Some(q) = &mut self.quitting {
            for &t in tokens {
                if t & !0xffff_ffff == QUIT {
                    let key = (t & 0xffff_ffff) as usize;
                    if let Some(outcome) = q.flight.ready(key) {
                        q.count(key, outcome);
                    }
                }
            }
            for (key, outcome) in q.flight.expire(now) {
                q.count(key, outcome);
            }
        }
        let mut done = self.feed(inputs);
        done.extend(self.quit_done());
        done
    }

    /// Feeds the gate its inputs (and the outcomes of attempts that end at their launch, as they
    /// come), carrying out its actions.
    fn feed(&mut self, inputs: Vec<Input>) -> Vec<Done> {
        let Some(w) = &mut self.waiting else {
            return Vec::new();
        };
        let mut queue = std::collections::VecDeque::from(inputs);
        while let Some(input) = queue.pop_front() {
            let now = Instant::now();
            for action in w.gate.on(input, now) {
                match action {
                    Action::Attempt { target, deadline } => {
                        let attempt = Attempt::probe(&w.targets[target]);
                        if let Some(outcome) = w.flight.launch(target, attempt, deadline, now) {
                            queue.push_back(finished(target, outcome));
                        }
                    }
                    Action::ArmTimer(at) => w.timer = Some(at),
                    Action::Log(level, text) => crate::logging::log(level, &text),
                    Action::Ready => return self.end_gate(Ok(())),
                    Action::NotReady(pending) => return self.end_gate(Err(pending)),
                }
            }
        }
        Vec::new()
    }

    fn end_gate(&mut self, result: Result<(), Vec<String>>) -> Vec<Done> {
        self.retire();
        vec![Done::Ready(result)]
    }

    /// Drops the wait under way (closing its sockets) and keeps its watcher, disarmed.
    fn retire(&mut self) {
        if let Some(mut w) = self.waiting.take() {
            if let Some(mut watcher) = w.watcher.take() {
                watcher.disarm();
                self.retired.push(watcher);
            }
        }
    }

    fn quit_done(&mut self) -> Vec<Done> {
        match &self.quitting {
            Some(q) if q.flight.is_empty() => {
                let answered = q.answered;
                self.quitting = None;
                vec![Done::Quit { answered }]
            }
            _ => Vec::new(),
        }
    }
}

impl Quitting {
    /// One POST ended: only a 2xx answer counts (a redirect is never followed).
    fn count(&mut self, key: usize, outcome: attempt::Outcome) {
        let url = &self.urls[key];
        match outcome {
            Ok(code) => {
                tracing::info!("quit URL {url} answered {}", code.unwrap_or_default());
                self.answered += 1;
            }
            Err(e) => tracing::warn!("quit URL {url} failed: {e}"),
        }
    }
}

fn finished(target: usize, outcome: attempt::Outcome) -> Input {
    Input::Finished {
        target,
        outcome: outcome.map(drop),
    }
}
