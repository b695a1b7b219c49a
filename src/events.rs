//! The one event stream of a supervising mode: signals, the child's exit, the peers' files and
//! leases, readiness, and timers, each turned into a typed [`Event`] here.
//!
//! Theory of operation: a mode's loop reads like tini's: take the next event, let the pure policy
//! decide, carry out what it decided. Everything that is mechanism rather than decision happens
//! in [`Events::next`] and never reaches the policy: SIGCHLD becomes a reap (and an event only
//! when the supervised child was among the reaped), the C library's reserved signals and our own
//! SIGPIPE are dropped, a failed read of the signalfd is logged and retried. Timers are named
//! ([`Timer`]); arming one replaces its deadline, and while none is armed nothing wakes the
//! supervisor up.

use crate::ending::ChildStatus;
use crate::peers::{Peers, Wake};
use crate::reaper;
use crate::signals::{Handling, Sig, Signals};
use crate::watch::Watcher;
use nix::unistd::Pid;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio::time::Instant;

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
}

const TIMERS: [Timer; 5] = [
    Timer::Grace,
    Timer::StopDelay,
    Timer::Timeout,
    Timer::Heartbeat,
    Timer::StaleCheck,
];

/// Something that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A signal for the policy: a request to stop or one to forward.
    Signal(Sig),
    /// The supervised child ended.
    ChildExited(ChildStatus),
    Timer(Timer),
    /// A peer's files or lease may have changed.
    Peers(Wake),
    /// The readiness wait ended: every target ready, or the targets still pending at its deadline.
    Ready(Result<(), Vec<String>>),
}

/// A readiness wait: its result, and its watcher to keep until exit (see `watch`).
pub type ReadyWait = Pin<Box<dyn Future<Output = (Result<(), Vec<String>>, Option<Watcher>)>>>;

pub struct Events {
    signals: Signals,
    child: Option<Pid>,
    deadlines: [Option<Instant>; TIMERS.len()],
    pub peers: Peers,
    ready: Option<ReadyWait>,
    /// Watchers that are done, kept open (and empty) so that closing them never blocks a
    /// critical path; the process exit closes them.
    retired: Vec<Watcher>,
}

impl Events {
    pub fn new(signals: Signals, peers: Peers) -> Events {
        Events {
            signals,
            child: None,
            deadlines: [None; TIMERS.len()],
            peers,
            ready: None,
            retired: Vec::new(),
        }
    }

    /// From now on, the reaper picks this child's status out of the exits it sees.
    pub fn watch_child(&mut self, pid: Pid) {
        self.child = Some(pid);
    }

    /// Arms `timer` to fire `after` from now (replacing an earlier deadline).
    pub fn arm(&mut self, timer: Timer, after: Duration) {
        self.deadlines[slot(timer)] = Some(Instant::now() + after);
    }

    pub fn disarm(&mut self, timer: Timer) {
        self.deadlines[slot(timer)] = None;
    }

    /// Starts a readiness wait; its end comes as [`Event::Ready`].
    pub fn await_ready(&mut self, wait: ReadyWait) {
        self.ready = Some(wait);
    }

    /// The next event. Never fails: problems reading a source are logged and the source retried.
    pub async fn next(&mut self) -> Event {
        loop {
            let next_timer = TIMERS
                .iter()
                .zip(self.deadlines)
                .filter_map(|(t, d)| d.map(|d| (d, *t)))
                .min_by_key(|(d, _)| *d);
            let ready = &mut self.ready;
            tokio::select! {
                biased;
                r = self.signals.recv() => match r {
                    Ok(received) => {
                        let sig = received.sig;
                        match sig.handling() {
                            Handling::Reap => {
                                let (status, orphans) = reaper::reap(self.child);
                                if orphans > 0 {
                                    tracing::debug!("reaped {orphans} orphaned process(es)");
                                }
                                if let Some(st) = status {
                                    self.child = None;
                                    return Event::ChildExited(st);
                                }
                            }
                            Handling::Reserved => {
                                tracing::debug!("dropped signal {sig}: reserved by the C library");
                            }
                            _ if received.is_own_pipe() => {}
                            _ if received.is_dnotify() => crate::watch::dnotify_fired(),
                            _ => return Event::Signal(sig),
                        }
                    }
                    Err(e) => {
                        // Never give up: a PID 1 that exits kills the container.
                        tracing::warn!("reading signals failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                w = self.peers.next() => return Event::Peers(w),
                r = poll_ready(ready) => {
                    self.ready = None;
                    let (result, watcher) = r;
                    self.retired.extend(watcher);
                    return Event::Ready(result);
                }
                () = sleep_until(next_timer.map(|(d, _)| d)) => {
                    if let Some((_, t)) = next_timer {
                        self.deadlines[slot(t)] = None;
                        return Event::Timer(t);
                    }
                }
            }
        }
    }
}

fn slot(timer: Timer) -> usize {
    TIMERS.iter().position(|t| *t == timer).unwrap_or(0)
}

async fn poll_ready(ready: &mut Option<ReadyWait>) -> (Result<(), Vec<String>>, Option<Watcher>) {
    match ready {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
