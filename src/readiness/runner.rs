//! A small poll(2) loop that drives attempts to their end, concurrently, each bounded by its own
//! deadline: `supervisor probe` (one attempt per target) and the quit URLs' POSTs.
//!
//! Theory of operation: step every attempt once (a file check, a refused loopback connect or an
//! accepting unix socket end right there); then, while some are waiting, poll their descriptors
//! until the nearest deadline, step those that are ready, and end those whose deadline has come
//! with [`Attempt::timed_out`]. Nothing here decides anything: it is the readiness loop in its
//! smallest form, with the clock read here and nowhere in the attempts.

use super::attempt::{Attempt, Interest, Outcome};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::time::{Duration, Instant};

/// Drives every attempt until it ends or its deadline comes; the outcomes, in order.
pub fn run(attempts: Vec<(Attempt, Instant)>) -> Vec<Outcome> {
    let started = Instant::now();
    let mut live: Vec<(Attempt, Instant)> = attempts;
    let mut outcomes: Vec<Option<Outcome>> = live.iter_mut().map(|(a, _)| a.step()).collect();
    loop {
        let now = Instant::now();
        for ((attempt, deadline), outcome) in live.iter().zip(outcomes.iter_mut()) {
            if outcome.is_none() && now >= *deadline {
                let allowed = deadline.saturating_duration_since(started);
                *outcome = Some(Err(attempt.timed_out(allowed)));
            }
        }
        let waiting: Vec<usize> = (0..live.len()).filter(|&i| outcomes[i].is_none()).collect();
        let Some(nearest) = waiting.iter().map(|&i| live[i].1).min() else {
            break;
        };
        let ready = match wait(&live, &waiting, nearest.saturating_duration_since(now)) {
            Ok(ready) => ready,
            Err(why) => {
                for &i in &waiting {
                    outcomes[i] = Some(Err(why.clone()));
                }
                break;
            }
        };
        for i in ready {
            outcomes[i] = live[i].0.step();
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Err("never ran".into())))
        .collect()
}

/// Polls the descriptors of the waiting attempts for at most `timeout`; which of them are ready.
fn wait(
    live: &[(Attempt, Instant)],
    waiting: &[usize],
    timeout: Duration,
) -> Result<Vec<usize>, String> {
    let mut fds = Vec::with_capacity(waiting.len());
    let mut whose = Vec::with_capacity(waiting.len());
    for &i in waiting {
        // An attempt that waits always names its descriptor; one that does not gets stepped.
        let Some((fd, interest)) = live[i].0.waits_on() else {
            return Ok(vec![i]);
        };
        let events = match interest {
            Interest::Readable => PollFlags::POLLIN,
            Interest::Writable => PollFlags::POLLOUT,
        };
        fds.push(PollFd::new(fd, events));
        whose.push(i);
    }
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
        .zip(whose)
        .filter(|(fd, _)| fd.revents().is_some_and(|r| !r.is_empty()))
        .map(|(_, i)| i)
        .collect())
}

#[cfg(test)]
mod tests;
