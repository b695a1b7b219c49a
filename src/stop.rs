//! The one stop lifecycle, shared by both modes: (wait out `--stop-delay`) → ask once → wait out
//! `--grace` → SIGKILL the process group.
//!
//! Theory of operation: a child is asked to stop exactly once (dockerd, for one, quits without
//! cleaning up on the third SIGTERM), either with a signal or, for daemons that have one, by
//! POSTing to their quit URLs (falling back to the signal at once when none answers). A SIGCONT
//! follows the signal: a stopped (SIGSTOPped, Ctrl-Z'd) child would otherwise sleep through the
//! whole grace period and die by SIGKILL instead of stopping cleanly. A stop asked for from
//! outside (a term signal) may first wait `--stop-delay`, while the child keeps serving (a pod
//! being deleted keeps its endpoints a moment longer); stops the supervisor decides itself (the
//! mains are done, a timeout, a dependency ended) are never delayed.
//!
//! [`Stop`] is pure: it takes requests and timer expiries and says what to do ([`Step`]). The
//! mode loops carry the steps out; `crate::quit` is the HTTP half of that.

use crate::signals::Sig;
use std::time::Duration;

/// How to ask the child to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// Send this signal to its group, then SIGCONT.
    Signal(Sig),
    /// POST the quit URLs; send this signal (then SIGCONT) if none answers.
    Quit(Sig),
}

/// Where a stop is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Idle,
    /// A stop was requested from outside; the ask waits for the delay timer.
    Delaying(Ask),
    /// The child was asked; `killed` once the grace period ran out and the group was SIGKILLed.
    Asked {
        killed: bool,
    },
}

/// One thing to do, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Ask(Ask),
    /// Arm the stop-delay timer.
    ArmDelay(Duration),
    /// Arm the grace timer.
    ArmGrace(Duration),
    KillGroup,
}

impl Stop {
    /// Whether a stop has begun (delayed or asked).
    pub fn begun(self) -> bool {
        self != Stop::Idle
    }

    /// Whether the group was SIGKILLed after the grace period.
    pub fn killed(self) -> bool {
        self == Stop::Asked { killed: true }
    }

    /// Begins a stop now (or after `delay`). A stop already begun is not begun again: `None`.
    pub fn begin(&mut self, ask: Ask, delay: Duration, grace: Duration) -> Option<Vec<Step>> {
        if self.begun() {
            return None;
        }
        if delay.is_zero() {
            *self = Stop::Asked { killed: false };
            Some(vec![Step::Ask(ask), Step::ArmGrace(grace)])
        } else {
            *self = Stop::Delaying(ask);
            Some(vec![Step::ArmDelay(delay)])
        }
    }

    /// Skips what is left of a delay: the supervisor itself decided the child must stop now.
    pub fn hurry(&mut self, ask: Ask, grace: Duration) -> Option<Vec<Step>> {
        match *self {
            Stop::Idle => self.begin(ask, Duration::ZERO, grace),
            Stop::Delaying(_) => {
                *self = Stop::Idle;
                self.begin(ask, Duration::ZERO, grace)
            }
            Stop::Asked { .. } => None,
        }
    }

    /// The stop-delay timer fired.
    pub fn delay_over(&mut self, grace: Duration) -> Vec<Step> {
        match *self {
            Stop::Delaying(ask) => {
                *self = Stop::Asked { killed: false };
                vec![Step::Ask(ask), Step::ArmGrace(grace)]
            }
            _ => Vec::new(),
        }
    }

    /// The grace timer fired.
    pub fn grace_over(&mut self) -> Vec<Step> {
        match *self {
            Stop::Asked { killed: false } => {
                *self = Stop::Asked { killed: true };
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
            s.begin(TERM, Duration::ZERO, G),
            Some(vec![Step::Ask(TERM), Step::ArmGrace(G)])
        );
        assert_eq!(s.begin(TERM, Duration::ZERO, G), None, "asked only once");
        assert_eq!(s.hurry(TERM, G), None);
        assert_eq!(s.delay_over(G), vec![]);
        assert!(!s.killed());
        assert_eq!(s.grace_over(), vec![Step::KillGroup]);
        assert!(s.killed());
        assert_eq!(s.grace_over(), vec![], "killed only once");
    }

    #[test]
    fn a_delayed_stop_asks_when_the_delay_is_over() {
        let mut s = Stop::Idle;
        assert_eq!(s.begin(TERM, D, G), Some(vec![Step::ArmDelay(D)]));
        assert!(s.begun());
        assert_eq!(s.grace_over(), vec![], "no grace runs during the delay");
        assert_eq!(s.begin(TERM, D, G), None);
        assert_eq!(s.delay_over(G), vec![Step::Ask(TERM), Step::ArmGrace(G)]);
        assert_eq!(s.delay_over(G), vec![]);
    }

    #[test]
    fn the_supervisor_cuts_a_delay_short() {
        let mut s = Stop::Idle;
        s.begin(TERM, D, G);
        let quit = Ask::Quit(Sig::QUIT);
        assert_eq!(
            s.hurry(quit, G),
            Some(vec![Step::Ask(quit), Step::ArmGrace(G)])
        );
        assert_eq!(s.delay_over(G), vec![], "the old delay timer is void");
        let mut idle = Stop::Idle;
        assert_eq!(
            idle.hurry(TERM, G),
            Some(vec![Step::Ask(TERM), Step::ArmGrace(G)])
        );
    }
}
