//! The one stop lifecycle, shared by both modes: (wait out `--stop-delay`) → ask once → wait out
//! `--grace` → SIGKILL the process group.
//!
//! Theory of operation: the supervisor asks a child to stop exactly once on its own (dockerd, for
//! one, quits without cleaning up on the third SIGTERM), either with a signal or, for daemons that
//! have one, by POSTing to their quit URLs (the policy falls back to the signal when none
//! answers). A stop asked for from outside (a term signal) may first wait `--stop-delay`, while
//! the child keeps serving (a pod being deleted keeps its endpoints a moment longer); stops the
//! supervisor decides itself (the mains are done, a timeout, a dependency ended) are never
//! delayed, and cut a running delay short.
//!
//! No signal from outside is dropped. Term signals that arrive during the delay are held and
//! delivered, in order, right after the ask; once the child has been asked, every further one is
//! forwarded as it comes, except the first outside copy of the very signal the supervisor already
//! sent on its own (the kubelet's TERM after the supervisor's own TERM for the same stop: the
//! child has it, and many programs take a second one as "quit now, skip the clean-up").
//!
//! [`Stop`] is pure: it takes requests and timer expiries and says what to do ([`Step`]).

use crate::signals::{Sig, SigSet};
use std::time::Duration;

/// How a mode stops its child: the settings both modes share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopSettings {
    /// How long the child has after the ask before its group is SIGKILLed.
    pub grace: Duration,
    /// The signal the supervisor's own stops ask with.
    pub stop_signal: Sig,
    /// How long a stop requested from outside waits before the ask.
    pub stop_delay: Duration,
    /// The signals that are a request to stop.
    pub term_signals: SigSet,
}

/// How to ask the child to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// Send this signal to its group (with a SIGCONT when a process of it is stopped).
    Signal(Sig),
    /// POST the quit URLs; send this signal if none answers.
    Quit(Sig),
}

/// Where a stop is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    Idle,
    /// A stop was requested from outside; the ask waits for the delay timer. `held`: term signals
    /// that arrived meanwhile, delivered after the ask.
    Delaying {
        ask: Ask,
        held: Vec<Sig>,
    },
    /// The child was asked; `killed` once the grace period ran out and the group was SIGKILLed.
    /// `echo`: the signal the supervisor asked with on its own, until its outside copy arrives.
    Asked {
        killed: bool,
        echo: Option<Sig>,
    },
}

/// One thing to do, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Ask(Ask),
    /// Pass a signal from outside on to the child's group.
    Forward(Sig),
    /// Arm the stop-delay timer.
    ArmDelay(Duration),
    /// Arm the grace timer.
    ArmGrace(Duration),
    KillGroup,
}

/// What became of a term signal from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// It began the stop (now, or after the delay).
    Began,
    /// Held until the delay is over.
    Held,
    /// Forwarded to the child, which was already asked to stop.
    Forwarded,
    /// The child already got this very signal from the supervisor for the same stop.
    Delivered,
}

impl Stop {
    /// Whether a stop has begun (delayed or asked).
    pub fn begun(&self) -> bool {
        *self != Stop::Idle
    }

    /// Whether the group was SIGKILLed after the grace period.
    pub fn killed(&self) -> bool {
        matches!(self, Stop::Asked { killed: true, .. })
    }

    /// A term signal `sig` from outside, to be carried out as `ask` after `delay`.
    pub fn request(
        &mut self,
        sig: Sig,
        ask: Ask,
        delay: Duration,
        grace: Duration,
    ) -> (Heard, Vec<Step>) {
        match self {
            Stop::Idle if delay.is_zero() => {
                *self = Stop::Asked {
                    killed: false,
                    echo: None,
                };
                (Heard::Began, vec![Step::Ask(ask), Step::ArmGrace(grace)])
            }
            Stop::Idle => {
                *self = Stop::Delaying {
                    ask,
                    held: Vec::new(),
                };
                (Heard::Began, vec![Step::ArmDelay(delay)])
            }
            Stop::Delaying { held, .. } => {
                held.push(sig);
                (Heard::Held, Vec::new())
            }
            Stop::Asked { echo, .. } if *echo == Some(sig) => {
                *echo = None;
                (Heard::Delivered, Vec::new())
            }
            Stop::Asked { echo, .. } => {
                *echo = None;
                (Heard::Forwarded, vec![Step::Forward(sig)])
            }
        }
    }

    /// The supervisor itself decided the child must stop now, with `ask`. A delayed request from
    /// outside is carried out at once instead (it came first, and its signal is the one the
    /// child is waiting for); a child already asked is not asked again.
    pub fn hurry(&mut self, ask: Ask, grace: Duration) -> Vec<Step> {
        match self {
            Stop::Idle => {
                let echo = match ask {
                    Ask::Signal(s) => Some(s),
                    Ask::Quit(_) => None,
                };
                *self = Stop::Asked {
                    killed: false,
                    echo,
                };
                vec![Step::Ask(ask), Step::ArmGrace(grace)]
            }
            Stop::Delaying { .. } => self.delay_over(grace),
            Stop::Asked { .. } => Vec::new(),
        }
    }

    /// The stop-delay timer fired: ask, then deliver what was held.
    pub fn delay_over(&mut self, grace: Duration) -> Vec<Step> {
        match std::mem::replace(self, Stop::Idle) {
            Stop::Delaying { ask, held } => {
                *self = Stop::Asked {
                    killed: false,
                    echo: None,
                };
                let mut steps = vec![Step::Ask(ask), Step::ArmGrace(grace)];
                steps.extend(held.into_iter().map(Step::Forward));
                steps
            }
            other => {
                *self = other;
                Vec::new()
            }
        }
    }

    /// The grace timer fired.
    pub fn grace_over(&mut self) -> Vec<Step> {
        match self {
            Stop::Asked {
                killed: killed @ false,
                ..
            } => {
                *killed = true;
                vec![Step::KillGroup]
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: Duration = Duration::from_secs(10);
    const D: Duration = Duration::from_secs(5);
    const TERM: Ask = Ask::Signal(Sig::TERM);

    #[test]
    fn ask_once_then_kill_at_the_deadline() {
        let mut s = Stop::Idle;
        assert_eq!(
            s.request(Sig::TERM, TERM, Duration::ZERO, G),
            (Heard::Began, vec![Step::Ask(TERM), Step::ArmGrace(G)])
        );
        assert_eq!(s.hurry(TERM, G), vec![], "asked only once");
        assert_eq!(s.delay_over(G), vec![]);
        assert!(!s.killed());
        assert_eq!(s.grace_over(), vec![Step::KillGroup]);
        assert!(s.killed());
        assert_eq!(s.grace_over(), vec![], "killed only once");
    }

    #[test]
    fn every_later_signal_from_outside_is_forwarded() {
        let mut s = Stop::Idle;
        s.request(Sig::TERM, TERM, Duration::ZERO, G);
        assert_eq!(
            s.request(Sig::TERM, TERM, Duration::ZERO, G),
            (Heard::Forwarded, vec![Step::Forward(Sig::TERM)])
        );
        assert_eq!(
            s.request(Sig::INT, TERM, Duration::ZERO, G),
            (Heard::Forwarded, vec![Step::Forward(Sig::INT)])
        );
    }

    #[test]
    fn the_outside_copy_of_the_supervisor_s_own_ask_is_not_sent_twice() {
        let mut s = Stop::Idle;
        assert_eq!(s.hurry(TERM, G), vec![Step::Ask(TERM), Step::ArmGrace(G)]);
        assert_eq!(
            s.request(Sig::TERM, TERM, Duration::ZERO, G).0,
            Heard::Delivered
        );
        assert_eq!(
            s.request(Sig::TERM, TERM, Duration::ZERO, G),
            (Heard::Forwarded, vec![Step::Forward(Sig::TERM)]),
            "a second one is the user's own"
        );
        let mut q = Stop::Idle;
        q.hurry(TERM, G);
        assert_eq!(
            q.request(Sig::INT, TERM, Duration::ZERO, G).0,
            Heard::Forwarded
        );
        assert_eq!(
            q.request(Sig::TERM, TERM, Duration::ZERO, G).0,
            Heard::Forwarded,
            "only the first outside signal can be the echo"
        );
    }

    #[test]
    fn a_delayed_stop_asks_when_the_delay_is_over_and_delivers_what_it_held() {
        let mut s = Stop::Idle;
        assert_eq!(
            s.request(Sig::TERM, TERM, D, G),
            (Heard::Began, vec![Step::ArmDelay(D)])
        );
        assert!(s.begun());
        assert_eq!(s.grace_over(), vec![], "no grace runs during the delay");
        assert_eq!(s.request(Sig::INT, TERM, D, G), (Heard::Held, vec![]));
        assert_eq!(s.request(Sig::TERM, TERM, D, G), (Heard::Held, vec![]));
        assert_eq!(
            s.delay_over(G),
            vec![
                Step::Ask(TERM),
                Step::ArmGrace(G),
                Step::Forward(Sig::INT),
                Step::Forward(Sig::TERM)
            ]
        );
        assert_eq!(s.delay_over(G), vec![]);
    }

    #[test]
    fn the_supervisor_cuts_a_delay_short_with_the_request_it_delayed() {
        let mut s = Stop::Idle;
        s.request(Sig::TERM, TERM, D, G);
        s.request(Sig::HUP, TERM, D, G);
        let quit = Ask::Quit(Sig::QUIT);
        assert_eq!(
            s.hurry(quit, G),
            vec![Step::Ask(TERM), Step::ArmGrace(G), Step::Forward(Sig::HUP)]
        );
        assert_eq!(s.delay_over(G), vec![], "the old delay timer is void");
        let mut idle = Stop::Idle;
        assert_eq!(
            idle.hurry(quit, G),
            vec![Step::Ask(quit), Step::ArmGrace(G)]
        );
    }
}
