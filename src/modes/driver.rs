//! The one driver of every supervising mode: next input, let the policy decide, carry out what it
//! decided, until the policy says the run is over.
//!
//! Theory of operation: a mode is a [`Policy`] (pure: state + input → actions, with the time of
//! each input) and a thin recipe that sets up the [`Effects`] the driver carries the actions out
//! with. The contract is closed on both sides: the policy matches every [`Input`] (no input it
//! could ignore by accident), and its actions are the shared [`Action`]s plus a part of its own
//! (`Action::Mode`), which only its own effects can carry out, so a mode cannot ask for an effect
//! that nobody performs. Answers to what the policy asked (the spawn's result, the lease ages) go
//! back to it at once, before the next event.
//!
//! Adding a mode (say, `supervisor job`, which runs several commands in turn):
//! 1. `modes/job/policy.rs`: a `Policy` with its own state, matching every `Input`, with unit
//!    tests per transition (they run in microseconds: see the main and sidecar policies).
//! 2. `modes/job/mod.rs`: the recipe: build the policy's settings and a [`super::Recipe`] from
//!    the mode's config, implement [`super::OwnEffects`] for the mode's own actions (often none),
//!    and call [`super::supervise`], which does the start every mode shares (signals, subreaper,
//!    lease, event stream) and runs this driver.
//! 3. `config.rs`/`cli.rs`: the mode's options in the one table and its typed config.

use crate::ending::Ending;
use crate::events::{Input, Timer};
use crate::exit::Outcome;
use crate::signals::Sig;
use crate::stop::{Ask, Step};
use std::time::{Duration, Instant};
use tracing::Level;

/// What a policy tells the driver to do, in order. `X` is the mode's own part.
#[derive(Debug, Clone, PartialEq)]
pub enum Action<X> {
    /// Start the command (the result comes back as `Spawned` or `SpawnFailed`).
    Spawn,
    /// Start the readiness wait, to give up at `until` (the end comes back as `Ready`).
    StartGate {
        until: Option<Instant>,
    },
    /// A step of the stop lifecycle.
    Stop(Step),
    /// POST the quit URLs (the end comes back as `QuitDone`).
    PostQuit,
    Arm(Timer, Duration),
    /// Stop watching peer `i`: the policy is done with it.
    Settle(usize),
    /// Ask for the peers' lease ages (they come back as `LeaseAges`).
    CheckStale,
    /// Send a signal to what the child left behind, and report when none is left
    /// (`LeftoversGone`).
    StopLeftovers(Sig),
    /// SIGKILL what the child left behind.
    KillLeftovers,
    Log(Level, String),
    /// Write the marker, release the lease, write the termination message, log the closing
    /// line. The run goes on until `Exit` (what the child left behind may still be stopping).
    Finish(Ending),
    /// The run is over.
    Exit,
    /// An action of the mode's own.
    Mode(X),
}

/// Shorthand for a log action.
pub fn say<X>(level: Level, text: impl Into<String>) -> Action<X> {
    Action::Log(level, text.into())
}

/// A supervising mode's decisions.
pub trait Policy {
    /// The mode's own actions.
    type Own;
    /// The first actions.
    fn start(&mut self, now: Instant) -> Vec<Action<Self::Own>>;
    /// What to do about `input`, which happened at `now`.
    fn on(&mut self, now: Instant, input: Input) -> Vec<Action<Self::Own>>;
}

/// What the driver acts on: the world for a real run, a recording fake in tests.
pub trait Effects<X> {
    /// The time, for the policy.
    fn now(&self) -> Instant;
    /// Waits for the next input.
    fn next(&mut self) -> Input;
    /// Starts the command: `Spawned` or `SpawnFailed`.
    fn spawn(&mut self) -> Input;
    fn start_gate(&mut self, until: Option<Instant>);
    /// Asks the child to stop (a signal with a SIGCONT where needed, or the quit URLs).
    fn ask(&mut self, ask: Ask);
    fn forward(&mut self, sig: Sig);
    fn kill_group(&mut self);
    fn post_quit(&mut self);
    fn arm(&mut self, timer: Timer, after: Duration);
    fn settle(&mut self, peer: usize);
    /// The peers' lease ages: `LeaseAges`.
    fn lease_ages(&mut self) -> Input;
    fn stop_leftovers(&mut self, sig: Sig);
    fn kill_leftovers(&mut self);
    fn log(&mut self, level: Level, text: &str);
    fn finish(&mut self, ending: Ending) -> Outcome;
    fn own(&mut self, action: X);
}

/// The actions in the order they are carried out: every deed before any log line, so a signal
/// or a SIGKILL never waits for a line to be formatted and written; the end of the run last, so
/// its log lines are still written.
fn deeds_first<X>(actions: Vec<Action<X>>) -> Vec<Action<X>> {
    let rank = |a: &Action<X>| match a {
        Action::Log(..) => 1,
        Action::Finish(_) => 2,
        Action::Exit => 3,
        _ => 0,
    };
    let mut ordered = actions;
    // A stable sort: deeds, and log lines, keep their own order.
    ordered.sort_by_key(rank);
    ordered
}

/// Runs `policy` against `fx` until it says `Exit`; returns the outcome its `Finish` produced.
pub fn drive<P: Policy, E: Effects<P::Own>>(policy: &mut P, fx: &mut E) -> Outcome {
    let mut queue = std::collections::VecDeque::from(deeds_first(policy.start(fx.now())));
    let mut outcome = None;
    loop {
        while let Some(action) = queue.pop_front() {
            let answer = match action {
                Action::Spawn => {
                    let spawned = fx.spawn();
                    // Room for the decisions to come, made while the command's exec runs: growing
                    // the queue later mapped fresh memory (musl's malloc: an mmap and a page
                    // fault, ~20 us here) between a stop signal and its forwarding.
                    queue.reserve(32);
                    Some(spawned)
                }
                Action::StartGate { until } => {
                    fx.start_gate(until);
                    None
                }
                Action::Stop(step) => {
                    match step {
                        Step::Ask(ask) => fx.ask(ask),
                        Step::Forward(sig) => fx.forward(sig),
                        Step::ArmDelay(d) => fx.arm(Timer::StopDelay, d),
                        Step::ArmGrace(d) => fx.arm(Timer::Grace, d),
                        Step::KillGroup => fx.kill_group(),
                    }
                    None
                }
                Action::PostQuit => {
                    fx.post_quit();
                    None
                }
                Action::Arm(t, d) => {
                    fx.arm(t, d);
                    None
                }
                Action::Settle(i) => {
                    fx.settle(i);
                    None
                }
                Action::CheckStale => Some(fx.lease_ages()),
                Action::StopLeftovers(sig) => {
                    fx.stop_leftovers(sig);
                    None
                }
                Action::KillLeftovers => {
                    fx.kill_leftovers();
                    None
                }
                Action::Log(level, text) => {
                    fx.log(level, &text);
                    None
                }
                Action::Finish(ending) => {
                    outcome = Some(fx.finish(ending));
                    None
                }
                Action::Exit => {
                    // Not freed: the process exits next, and musl's free of the queue's block
                    // may hand a page back to the kernel first.
                    std::mem::forget(std::mem::take(&mut queue));
                    return outcome.unwrap_or_else(|| {
                        fx.log(Level::ERROR, "the run ended without an ending (a bug)");
                        Outcome::Internal
                    });
                }
                Action::Mode(x) => {
                    fx.own(x);
                    None
                }
            };
            if let Some(input) = answer {
                // Before anything else queued: the policy hears the answer to what it asked.
                let now = fx.now();
                for a in deeds_first(policy.on(now, input)).into_iter().rev() {
                    queue.push_front(a);
                }
            }
        }
        let input = fx.next();
        queue.extend(deeds_first(policy.on(fx.now(), input)));
    }
}

/// What the policies' unit tests share.
#[cfg(test)]
pub mod testing {
    use super::Action;

    /// The actions without their log lines.
    pub fn acts<X>(v: Vec<Action<X>>) -> Vec<Action<X>> {
        v.into_iter()
            .filter(|a| !matches!(a, Action::Log(..)))
            .collect()
    }

    /// The log lines, one per line.
    pub fn logs<X>(v: &[Action<X>]) -> String {
        v.iter()
            .filter_map(|a| match a {
                Action::Log(_, t) => Some(t.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ending::ChildStatus;

    /// A policy that spawns, asks for the lease ages once, stops the child on a signal, and ends
    /// when the child exits.
    struct Toy {
        heard: Vec<Input>,
    }

    impl Policy for Toy {
        type Own = &'static str;

        fn start(&mut self, _: Instant) -> Vec<Action<&'static str>> {
            vec![say(Level::INFO, "hello"), Action::Spawn]
        }

        fn on(&mut self, _: Instant, input: Input) -> Vec<Action<&'static str>> {
            self.heard.push(input.clone());
            match input {
                Input::Spawned { .. } => vec![Action::CheckStale, Action::Mode("spawned")],
                Input::Signal(sig) => vec![
                    say(Level::INFO, "stopping"),
                    Action::Stop(Step::Ask(Ask::Signal(sig))),
                    Action::Stop(Step::ArmGrace(Duration::from_secs(1))),
                ],
                Input::ChildExited { status, .. } => vec![
                    Action::Exit,
                    Action::Finish(Ending::Exited(status.code())),
                    say(Level::INFO, "bye"),
                ],
                _ => Vec::new(),
            }
        }
    }

    /// Feeds scripted inputs and records every effect.
    struct Fake {
        inputs: Vec<Input>,
        did: Vec<String>,
    }

    impl Effects<&'static str> for Fake {
        fn now(&self) -> Instant {
            Instant::now()
        }
        fn next(&mut self) -> Input {
            self.inputs.remove(0)
        }
        fn spawn(&mut self) -> Input {
            self.did.push("spawn".into());
            Input::Spawned { pid: 42 }
        }
        fn start_gate(&mut self, _: Option<Instant>) {
            self.did.push("gate".into());
        }
        fn ask(&mut self, ask: Ask) {
            self.did.push(format!("ask {ask:?}"));
        }
        fn forward(&mut self, sig: Sig) {
            self.did.push(format!("forward {sig}"));
        }
        fn kill_group(&mut self) {
            self.did.push("kill".into());
        }
        fn post_quit(&mut self) {
            self.did.push("quit".into());
        }
        fn arm(&mut self, t: Timer, d: Duration) {
            self.did.push(format!("arm {t:?} {}s", d.as_secs()));
        }
        fn settle(&mut self, i: usize) {
            self.did.push(format!("settle {i}"));
        }
        fn lease_ages(&mut self) -> Input {
            self.did.push("ages".into());
            Input::LeaseAges(Vec::new())
        }
        fn stop_leftovers(&mut self, sig: Sig) {
            self.did.push(format!("leftovers {sig}"));
        }
        fn kill_leftovers(&mut self) {
            self.did.push("kill leftovers".into());
        }
        fn log(&mut self, _: Level, text: &str) {
            self.did.push(format!("log {text}"));
        }
        fn finish(&mut self, e: Ending) -> Outcome {
            self.did.push("finish".into());
            Outcome::ended(e)
        }
        fn own(&mut self, x: &'static str) {
            self.did.push(format!("own {x}"));
        }
    }

    #[test]
    fn deeds_before_words_answers_at_once_and_the_end_last() {
        let mut fake = Fake {
            inputs: vec![
                Input::Signal(Sig::TERM),
                Input::ChildExited {
                    status: ChildStatus::Exited(3),
                    leftovers: false,
                    before_stop: false,
                },
            ],
            did: Vec::new(),
        };
        let mut toy = Toy { heard: Vec::new() };
        let outcome = drive(&mut toy, &mut fake);
        assert_eq!(outcome, Outcome::ended(Ending::Exited(3)));
        assert_eq!(
            fake.did,
            [
                "spawn",
                "ages",
                "own spawned",
                "log hello",
                "ask Signal(Sig(15))",
                "arm Grace 1s",
                "log stopping",
                "log bye",
                "finish",
            ]
        );
        assert_eq!(toy.heard[0], Input::Spawned { pid: 42 });
        assert_eq!(toy.heard[1], Input::LeaseAges(Vec::new()));
    }

    #[test]
    fn an_exit_without_an_ending_is_an_internal_error() {
        struct Quitter;
        impl Policy for Quitter {
            type Own = &'static str;
            fn start(&mut self, _: Instant) -> Vec<Action<&'static str>> {
                vec![Action::Exit]
            }
            fn on(&mut self, _: Instant, _: Input) -> Vec<Action<&'static str>> {
                Vec::new()
            }
        }
        let mut fake = Fake {
            inputs: Vec::new(),
            did: Vec::new(),
        };
        assert_eq!(drive(&mut Quitter, &mut fake), Outcome::Internal);
    }
}
