//! The gate and its attempts, driven from the async runtime the supervising modes still run on.
//!
//! Theory of operation: this is a bridge, and the only async code of readiness. [`wait_all`] feeds
//! the pure [`Gate`] its inputs (attempt outcomes, its timer, the file watcher's wake-ups) and
//! carries out its actions; each attempt runs as a task that registers the attempt's current
//! descriptor with the runtime's reactor, waits for it (or the attempt's deadline), steps, and
//! registers the next one. A direct event loop drives the same gate and attempts with its own
//! epoll, and this module goes away.

use super::Target;
use super::attempt::{Attempt, Interest, Outcome};
use super::gate::{Action, Gate, Input};
use crate::watch::Watcher;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::io::unix::AsyncFd;
use tokio::task::JoinSet;

/// Waits until every target is ready, or until `timeout` has passed: then returns the targets
/// still pending, each with the reason of its last failed attempt. `what` names the waiter in
/// logs. The watcher used for file targets comes back, disarmed, for the caller to keep (see
/// `watch`: closing it could block on the kernel right when the command should start).
pub async fn wait_all(
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
    let mut watcher = (!files.is_empty()).then(|| Watcher::new(files, poll));
    let gate = Gate::new(what, &targets, timeout);
    let result = drive(gate, &targets, &mut watcher).await;
    if let Some(w) = &mut watcher {
        w.disarm();
    }
    (result, watcher)
}

async fn drive(
    mut gate: Gate,
    targets: &[Target],
    watcher: &mut Option<Watcher>,
) -> Result<(), Vec<String>> {
    let mut attempts: JoinSet<(usize, Outcome)> = JoinSet::new();
    let mut timer: Option<tokio::time::Instant> = None;
    let watched = |w: &Option<Watcher>| w.as_ref().is_some_and(|w| !w.is_polling());
    let mut actions = gate.on(
        Input::Start {
            files_watched: watched(watcher),
        },
        Instant::now(),
    );
    loop {
        for action in actions.drain(..) {
            match action {
                Action::Attempt { target, deadline } => {
                    let attempt = Attempt::probe(&targets[target]);
                    attempts.spawn(async move { (target, finish(attempt, deadline).await) });
                }
                Action::ArmTimer(at) => timer = Some(tokio::time::Instant::from_std(at)),
                Action::Log(level, text) => crate::modes::log(level, &text),
                // Dropping the JoinSet aborts the attempts still running, closing their sockets.
                Action::Ready => return Ok(()),
                Action::NotReady(pending) => return Err(pending),
            }
        }
        let input = tokio::select! {
            Some(joined) = attempts.join_next() => match joined {
                Ok((target, outcome)) => Input::Finished { target, outcome: outcome.map(drop) },
                // A task is only aborted by the JoinSet's drop: nothing to report.
                Err(_) => continue,
            },
            () = sleep_until(timer) => {
                timer = None;
                Input::Timer
            }
            () = changed(watcher) => Input::FilesChanged { files_watched: watched(watcher) },
        };
        actions = gate.on(input, Instant::now());
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn changed(watcher: &mut Option<Watcher>) {
    match watcher {
        Some(w) => w.changed().await,
        None => std::future::pending().await,
    }
}

/// The raw descriptor of an attempt, registered with the reactor for one wait.
struct Raw(RawFd);

impl AsRawFd for Raw {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// Drives one attempt to its end, or to `deadline`.
pub async fn finish(mut attempt: Attempt, deadline: Instant) -> Outcome {
    let allowed = deadline.saturating_duration_since(Instant::now());
    let deadline = tokio::time::Instant::from_std(deadline);
    loop {
        if let Some(outcome) = attempt.step() {
            return outcome;
        }
        let Some((fd, interest)) = attempt.waits_on() else {
            return Err("the attempt waits on nothing".into());
        };
        let interest = match interest {
            Interest::Readable => tokio::io::Interest::READABLE,
            Interest::Writable => tokio::io::Interest::WRITABLE,
        };
        // SAFETY: the descriptor belongs to `attempt`, which is neither stepped nor dropped while
        // this registration lives (it is dropped at the end of this iteration), so it stays open
        // and names the same socket or pipe for the registration's whole life.
        let registered = unsafe { AsyncFd::register_with_interest(Raw(fd.as_raw_fd()), interest) };
        let registered = match registered {
            Ok(r) => r,
            Err(e) => return Err(format!("cannot wait for the attempt: {e}")),
        };
        // Readiness only says "step now": the step itself finds out what happened.
        match tokio::time::timeout_at(deadline, registered.ready(interest)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("cannot wait for the attempt: {e}")),
            Err(_) => return Err(attempt.timed_out(allowed)),
        }
    }
}
