//! A small poll(2) loop that drives attempts to their end, concurrently, each bounded by its own
//! deadline: `supervisor probe` (one attempt per target) and the quit URLs' POSTs.
//!
//! Theory of operation: launch every attempt into a [`Flight`] (those that end at once are
//! done); then, while some wait, poll their descriptors until the nearest deadline, step those
//! that are ready, and end those whose deadline has come. Nothing here decides anything: it is the
//! readiness loop in its smallest form, with the clock read here and nowhere in the attempts.

use super::attempt::{Attempt, Interest, Outcome};
use super::flight::Flight;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::time::{Duration, Instant};

/// Drives every attempt until it ends or its deadline comes; the outcomes, in order.
pub fn run(attempts: Vec<(Attempt, Instant)>) -> Vec<Outcome> {
    let now = Instant::now();
    let mut flight = Flight::default();
    let mut outcomes: Vec<Option<Outcome>> = attempts
        .into_iter()
        .enumerate()
        .map(|(i, (attempt, deadline))| flight.launch(i, attempt, deadline, now))
        .collect();
    while let Some(nearest) = flight.deadline() {
        let ready = match wait(&flight, nearest.saturating_duration_since(Instant::now())) {
            Ok(ready) => ready,
            Err(why) => {
                // The loop cannot wait any more: what is under way ends with why.
                for slot in outcomes.iter_mut().filter(|o| o.is_none()) {
                    *slot = Some(Err(why.clone()));
                }
                break;
            }
        };
        for i in ready {
            if let Some(outcome) = flight.ready(i) {
                outcomes[i] = Some(outcome);
            }
        }
        for (i, outcome) in flight.expire(Instant::now()) {
            outcomes[i] = Some(outcome);
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Err("never ran".into())))
        .collect()
}

/// Polls the flight's descriptors for at most `timeout`; the keys of those that are ready.
fn wait(flight: &Flight<usize>, timeout: Duration) -> Result<Vec<usize>, String> {
    let (keys, mut fds): (Vec<usize>, Vec<PollFd>) = flight
        .waits()
        .map(|(key, fd, interest)| {
            let events = match interest {
                Interest::Readable => PollFlags::POLLIN,
                Interest::Writable => PollFlags::POLLOUT,
            };
            (key, PollFd::new(fd, events))
        })
        .unzip();
    // Rounded up to whole milliseconds: waking early would only spin.
    let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
    match poll(
        &mut fds,
        PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
    ) {
        Ok(_) => {}
        Err(nix::errno::Errno::EINTR) => return Ok(Vec::new()),
        Err(e) => return Err(format!("poll: {}", std::io::Error::from(e))),
    }
    Ok(fds
        .iter()
        .zip(keys)
        .filter(|(fd, _)| fd.revents().is_some_and(|r| !r.is_empty()))
        .map(|(_, key)| key)
        .collect())
}

#[cfg(test)]
mod tests;
