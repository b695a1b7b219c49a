//! The one event stream of a supervising mode: signals, the child's exit, the peers' files and
//! leases, readiness, quit calls and timers, each turned into a typed [`Input`] for the policy.
//!
//! Theory of operation: the loop reads like tini's: wait for the kernel, turn what it says into
//! inputs, let the pure policy decide, carry out what it decided. [`Events::next_input`] blocks in
//! one `epoll_wait` on the signalfd, the inbox that the lease waiters (threads blocked in a flock)
//! post to, the inotify descriptor, and the sockets of the readiness probes and quit calls under
//! way (`flights.rs`), with the nearest deadline as its timeout.
//! Everything that is mechanism rather than decision happens here and never reaches the policy:
//! SIGCHLD becomes a reap (and an input only when the supervised child was among the reaped, or
//! the last of its leftovers is gone), the C library's reserved signals and our own SIGPIPE are
//! dropped, a dnotify SIGIO becomes a look at the peers, a failed read is logged and retried.
//! Timers are named ([`Timer`]); arming one replaces its deadline, and while none is armed
//! nothing wakes the supervisor up.

mod flights;

use crate::child::SpawnError;
use crate::evloop::{Inbox, Interest, Poller};
use crate::http::HttpUrl;
use crate::peers::{LeaseAge, Observation, Peers};
use crate::readiness::Target;
use crate::reaper;
pub use crate::reaper::ChildStatus;
use crate::signals::{Handling, Sig, Signals};
use nix::unistd::Pid;
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The timers a policy can arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// The grace period after asking the child to stop.
    Grace,
    /// `--stop-delay` before asking.
    StopDelay,
    /// `main --timeout`.
    Timeout,
    /// `main --heartbeat`: refresh the lease.
    Heartbeat,
    /// `sidecar --stale-after`: look at the leases' ages.
    StaleCheck,
    /// `main --wait-timeout`, while a required sidecar that ended is awaited back.
    WaitTimeout,
    /// The grace period of what the child left behind.
    Leftovers,
}

/// Something that happened, for the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A signal for the policy: a request to stop or one to forward.
    Signal(Sig),
    /// The command was started.
    Spawned {
        pid: i32,
    },
    /// The command could not be started.
    SpawnFailed(SpawnError),
    /// The supervised child ended; `leftovers`: processes of its tree are still running;
    /// `before_stop`: it had already ended when it was asked to stop.
    ChildExited {
        status: ChildStatus,
        leftovers: bool,
        before_stop: bool,
    },
    /// The last process the child left behind is gone (after a stop of the leftovers began).
    LeftoversGone,
    /// A look at peer `i` (a watched directory changed, or its lease was released).
    Peer(usize, Observation),
    /// The peers' lease ages, as asked for.
    LeaseAges(Vec<Option<LeaseAge>>),
    Timer(Timer),
    /// The readiness wait ended: every target ready, or the targets still pending at its deadline.
    Ready(Result<(), Vec<String>>),
    /// The quit calls are done; so many answered with a success.
    QuitDone {
        answered: usize,
    },
}

/// What helper threads post to the loop.
enum Note {
    Released { peer: usize, id: u64 },
}

const SIGNALS: u64 = 1;
const INBOX: u64 = 2;
const INOTIFY: u64 = 3;

pub struct Events {
    poller: Poller,
    signals: Signals,
    inbox: Inbox<Note>,
    timers: Vec<(Timer, Instant)>,
    /// The supervised child, while it runs: its exit is reported.
    child: Option<Pid>,
    /// A stop of the leftovers is under way: report when none is left.
    draining: bool,
    /// The child had already ended when it was asked to stop.
    ended_before_ask: bool,
    pub peers: Peers,
    pending: VecDeque<Input>,
    /// The inotify descriptor registered with the poller, if any.
    inotify: Option<RawFd>,
    /// When to look at the peers again, while some directory can only be polled.
    poll_at: Option<Instant>,
    /// The readiness wait and the quit calls under way.
    flights: flights::Flights,
    /// A process group asked to stop, and when to look whether a process of it is stopped.
    wake_check: Option<(Pid, Instant)>,
}

/// How long after a stop request the child's group is looked at for a stopped process. Not at
/// once: the walk of /proc would run on the CPU the signalled process wakes on (the kernel
/// places a wakee near its waker), between the signal and its handler, and it is wasted on a
/// child that exits at once. A stopped process waits this long for its SIGCONT, against a grace
/// period of seconds.
const WAKE_CHECK_AFTER: Duration = Duration::from_millis(2);

impl Events {
    /// The stream, with the peers' markers (`--requires` or `--wait-file`) under watch. The first
    /// inputs are a look at each peer, taken after the watch is armed.
    pub fn new(signals: Signals, markers: &[PathBuf], poll: Duration) -> std::io::Result<Events> {
        let poller = Poller::new()?;
        let inbox: Inbox<Note> = Inbox::new()?;
        poller.add(signals.fd(), SIGNALS, Interest::Read)?;
        poller.add(inbox.fd(), INBOX, Interest::Read)?;
        let poster = inbox.poster();
        let on_release = Arc::new(move |peer, id| poster.post(Note::Released { peer, id }));
        let mut peers = Peers::new(markers, poll, on_release);
        let pending = (0..peers.count())
            .map(|i| Input::Peer(i, peers.observe(i)))
            .collect();
        Ok(Events {
            poller,
            signals,
            inbox,
            timers: Vec::new(),
            child: None,
            draining: false,
            ended_before_ask: false,
            peers,
            pending,
            inotify: None,
            poll_at: None,
            flights: flights::Flights::default(),
            wake_check: None,
        })
    }

    /// From now on, the reaper picks this child's status out of the exits it sees.
    pub fn watch_child(&mut self, pid: Pid) {
        self.child = Some(pid);
    }

    /// The child is being asked to stop: remember whether it had ended already (its exit may be
    /// read only after the stop request that came after it).
    pub fn asking(&mut self) {
        if let Some(pid) = self.child {
            self.ended_before_ask |= reaper::has_exited(pid);
        }
    }

    /// Sends SIGCONT to `group` shortly (see [`WAKE_CHECK_AFTER`]) if a process of it is stopped
    /// then: a stopped process would sleep through the grace period, and one that is not stopped
    /// must not get a signal nobody sent.
    pub fn wake_if_stopped(&mut self, group: Pid) {
        self.wake_check = Some((group, Instant::now() + WAKE_CHECK_AFTER));
    }

    /// Reports [`Input::LeftoversGone`] once nothing of the child's tree is left.
    pub fn await_leftovers(&mut self) {
        self.draining = true;
        self.check_leftovers(false);
    }

    /// `none_left`: a drain just found no child left, so the kernel need not be asked again.
    fn check_leftovers(&mut self, none_left: bool) {
        if self.draining && (none_left || !reaper::has_children()) {
            self.draining = false;
            self.pending.push_back(Input::LeftoversGone);
        }
    }

    /// Arms `timer` to fire `after` from now (replacing an earlier deadline).
    pub fn arm(&mut self, timer: Timer, after: Duration) {
        let at = Instant::now() + after;
        self.timers.retain(|(t, _)| *t != timer);
        self.timers.push((timer, at));
    }

    /// An answer to a question the policy asked, delivered as the next input.
    pub fn answer(&mut self, input: Input) {
        self.pending.push_front(input);
    }

    /// The next input. Never fails: problems reading a source are logged and the source retried.
    pub fn next_input(&mut self) -> Input {
        loop {
            if let Some(input) = self.pending.pop_front() {
                return input;
            }
            self.peers.rewatch();
            self.register_inotify();
            self.flights.register(&self.poller);
            let deadline = self
                .timers
                .iter()
                .map(|(_, at)| *at)
                .chain(self.poll_at)
                .chain(self.wake_check.map(|(_, at)| at))
                .chain(self.flights.deadline())
                .min();
            let waited = self.poller.wait(deadline);
            // Out of the poller while every one is still open (see `flights`).
            self.flights.unregister(&self.poller);
            let ready = match waited {
                Ok(r) => r,
                Err(e) => {
                    // Never give up: a PID 1 that exits kills the container.
                    tracing::warn!("waiting for events failed: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            // Signals first: a stop request or the child's exit is the most urgent news.
            let mut files = false;
            if ready.contains(&SIGNALS) {
                files = self.read_signals();
            }
            if ready.contains(&INBOX) {
                self.read_inbox();
            }
            if files || ready.contains(&INOTIFY) {
                self.files_changed();
            }
            let now = Instant::now();
            let ours: Vec<u64> = ready
                .into_iter()
                .filter(|t| flights::Flights::owns(*t))
                .collect();
            for done in self.flights.progress(&ours, files, now) {
                self.push_done(done);
            }
            self.expire(now);
        }
    }

    /// Reads every pending signal; returns whether a dnotify signal said that something changed
    /// in a watched directory.
    fn read_signals(&mut self) -> bool {
        let mut files = false;
        loop {
            let batch = match self.signals.read() {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!("reading signals failed: {e}");
                    return files;
                }
            };
            for received in batch.iter() {
                let sig = received.sig;
                match sig.handling() {
                    Handling::Reap => self.reap(),
                    Handling::Reserved => {
                        tracing::debug!("dropped signal {sig}: reserved by the C library");
                    }
                    Handling::Uncatchable => {}
                    Handling::Forward if received.is_own_pipe() => {}
                    Handling::Forward if received.is_dnotify() => files = true,
                    Handling::Forward => self.pending.push_back(Input::Signal(sig)),
                }
            }
            if !batch.full {
                return files;
            }
        }
    }

    fn reap(&mut self) {
        let drained = reaper::reap(self.child);
        if drained.others > 0 {
            tracing::debug!("reaped {} orphaned process(es)", drained.others);
        }
        if let (Some(status), Some(pid)) = (drained.watched, self.child) {
            self.child = None;
            let leftovers = reaper::leftovers(pid, &drained);
            self.pending.push_back(Input::ChildExited {
                status,
                leftovers,
                before_stop: self.ended_before_ask,
            });
        }
        self.check_leftovers(drained.none_left);
    }

    fn read_inbox(&mut self) {
        for note in self.inbox.take() {
            match note {
                Note::Released { peer, id } => {
                    if let Some((i, obs)) = self.peers.released(peer, id) {
                        self.pending.push_back(Input::Peer(i, obs));
                    }
                }
            }
        }
    }

    fn files_changed(&mut self) {
        for (i, obs) in self.peers.changed() {
            self.pending.push_back(Input::Peer(i, obs));
        }
    }

    /// Fires the timers that are due, earliest first, and the poll tick.
    fn expire(&mut self, now: Instant) {
        let mut due: Vec<(Timer, Instant)> = Vec::new();
        self.timers.retain(|&(t, at)| {
            if at <= now {
                due.push((t, at));
                false
            } else {
                true
            }
        });
        due.sort_by_key(|&(_, at)| at);
        self.pending
            .extend(due.into_iter().map(|(t, _)| Input::Timer(t)));
        if self.poll_at.is_some_and(|at| at <= now) {
            self.poll_at = None;
            self.files_changed();
        }
        if let Some((group, _)) = self.wake_check.filter(|&(_, at)| at <= now) {
            self.wake_check = None;
            if reaper::group_alive(group) && reaper::group_has_stopped(group) {
                if let Err(e) = crate::signals::send(-group.as_raw(), Some(Sig::CONT)) {
                    tracing::debug!("could not send CONT to process group {group}: {e}");
                }
            }
        }
    }

    /// Keeps the poller in step with the watcher: its inotify descriptor once it has one, and the
    /// poll tick while some directory can only be polled.
    fn register_inotify(&mut self) {
        let Some(w) = self.peers.watcher() else {
            return;
        };
        if let Some(fd) = w.inotify_fd() {
            let raw = fd.as_raw_fd();
            if self.inotify != Some(raw) {
                match self.poller.add(fd, INOTIFY, Interest::Read) {
                    Ok(()) => self.inotify = Some(raw),
                    Err(e) => tracing::warn!("cannot wait on inotify: {e}"),
                }
            }
        }
        if w.is_polling() && self.poll_at.is_none() {
            self.poll_at = Some(Instant::now() + w.poll_interval());
        }
    }

    /// Starts the readiness wait for `targets` (giving up at `until`); its end comes as
    /// [`Input::Ready`]. A wait under way is replaced.
    pub fn start_gate(
        &mut self,
        targets: Vec<Target>,
        what: &'static str,
        poll: Duration,
        until: Option<Instant>,
    ) {
        let timeout = until.map(|u| u.saturating_duration_since(Instant::now()));
        for done in self.flights.start_gate(targets, what, poll, timeout) {
            self.push_done(done);
        }
    }

    /// POSTs the quit URLs; the end comes as [`Input::QuitDone`].
    pub fn post_quit(&mut self, urls: Vec<HttpUrl>) {
        for done in self.flights.post_quit(urls) {
            self.push_done(done);
        }
    }

    fn push_done(&mut self, done: flights::Done) {
        self.pending.push_back(match done {
            flights::Done::Ready(r) => Input::Ready(r),
            flights::Done::Quit { answered } => Input::QuitDone { answered },
        });
    }
}
