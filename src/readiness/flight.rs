//! Attempts under way, each with its deadline: the part of driving attempts that every readiness
//! loop shares (the poll runner here, an epoll loop, the async bridge's tasks).
//!
//! Theory of operation: [`Flight::launch`] steps a new attempt at once (a file check, a refused
//! loopback connect or an accepting unix socket end right there); an attempt that waits names its
//! descriptor through [`Flight::waits`], which the loop waits on (re-registering after every call
//! that steps: an attempt's descriptor changes from state to state); [`Flight::ready`] steps the
//! attempt whose descriptor is ready, and [`Flight::expire`] ends those whose deadline has come,
//! saying how long they were given. The nearest deadline ([`Flight::deadline`]) is the loop's
//! timeout. Keys are the caller's: a target's index, an epoll token.

use super::attempt::{Attempt, Interest, Outcome};
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

struct Live<K> {
    key: K,
    attempt: Attempt,
    deadline: Instant,
    /// From its launch to its deadline, for the reason of a timeout.
    allowed: Duration,
}

/// See the module documentation.
pub struct Flight<K> {
    live: Vec<Live<K>>,
}

impl<K> Default for Flight<K> {
    fn default() -> Self {
        Flight { live: Vec::new() }
    }
}

impl<K: Copy + PartialEq> Flight<K> {
    /// Starts `attempt` under `key` (replacing one under the same key), to end by `deadline`.
    /// `Some` when it ended at once.
    pub fn launch(
        &mut self,
        key: K,
        mut attempt: Attempt,
        deadline: Instant,
        now: Instant,
    ) -> Option<Outcome> {
        self.live.retain(|l| l.key != key);
        if let Some(outcome) = attempt.step() {
            return Some(outcome);
        }
        self.live.push(Live {
            key,
            attempt,
            deadline,
            allowed: deadline.saturating_duration_since(now),
        });
        None
    }

    /// Each waiting attempt's key, descriptor and interest.
    pub fn waits(&self) -> impl Iterator<Item = (K, BorrowedFd<'_>, Interest)> + '_ {
        self.live
            .iter()
            .filter_map(|l| l.attempt.waits_on().map(|(fd, i)| (l.key, fd, i)))
    }

    /// The nearest deadline of the attempts under way.
    pub fn deadline(&self) -> Option<Instant> {
        self.live.iter().map(|l| l.deadline).min()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// The descriptor of `key`'s attempt is ready (or may be): step it. `Some` once it ended.
    pub fn ready(&mut self, key: K) -> Option<Outcome> {
        let i = self.live.iter().position(|l| l.key == key)?;
        let outcome = self.live[i].attempt.step()?;
        self.live.swap_remove(i);
        Some(outcome)
    }

    /// Ends the attempts whose deadline is `now` or earlier, each with why.
    pub fn expire(&mut self, now: Instant) -> Vec<(K, Outcome)> {
        let mut over = Vec::new();
        self.live.retain(|l| {
            if l.deadline > now {
                return true;
            }
            over.push((l.key, Err(l.attempt.timed_out(l.allowed))));
            false
        });
        over
    }

    /// Drops every attempt under way (closing its socket).
    pub fn clear(&mut self) {
        self.live.clear();
    }
}
