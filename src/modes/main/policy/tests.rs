//! Every transition of `main`'s policy, in microseconds.

use super::*;
use crate::child::{SpawnError, SpawnFailure};
use crate::marker::Seen;
use crate::modes::driver::Action::{
    Arm, Exit, Finish, KillLeftovers, Mode, PostQuit, Settle, Spawn, StartGate, Stop as S,
    StopLeftovers,
};
use crate::modes::driver::Policy as _;
use crate::modes::driver::testing::{acts, logs};
use crate::signals::SigSet;

const GRACE: Duration = Duration::from_secs(25);
const DELAY: Duration = Duration::from_secs(5);
const TERM: Sig = Sig::TERM;

fn settings() -> Settings {
    Settings {
        command: "./ci.sh".into(),
        stop: StopSettings {
            grace: GRACE,
            stop_signal: Sig::INT,
            stop_delay: Duration::ZERO,
            term_signals: SigSet::empty().with(Sig::TERM).with(Sig::INT),
        },
        timeout: None,
        heartbeat: None,
        gate: None,
        requires: vec!["/shared/dind.done".into()],
        quit: false,
        marker: Some("/shared/main.done".into()),
    }
}

fn with_delay(delay: Duration) -> Settings {
    let mut s = settings();
    s.stop.stop_delay = delay;
    s
}

fn gated(wait_timeout: Option<Duration>) -> Settings {
    Settings {
        gate: Some(Gate {
            wait_timeout,
            on_wait_timeout: OnWaitTimeout::Fail,
        }),
        ..settings()
    }
}

/// The one instant of a test: every input happens at once.
fn t0() -> Instant {
    thread_local! { static T0: Instant = Instant::now(); }
    T0.with(|t| *t)
}

fn on(p: &mut Policy, input: Input) -> Vec<Action> {
    p.on(t0(), input)
}

fn not_started() -> Observation {
    observed(Presence::Absent, LeaseView::None, false)
}

fn alive() -> Observation {
    observed(
        Presence::Absent,
        LeaseView::Held {
            pid: Some(7),
            heartbeat: false,
        },
        false,
    )
}

/// A running command: started, its required sidecar looked at (not started yet).
fn running(s: Settings) -> Policy {
    let mut p = Policy::new(s);
    assert_eq!(p.start(t0()), vec![]);
    assert_eq!(on(&mut p, Input::Peer(0, not_started())), vec![Spawn]);
    on(&mut p, Input::Spawned { pid: 42 });
    p
}

fn ask(sig: Sig) -> Vec<Action> {
    vec![S(Step::Ask(Ask::Signal(sig))), S(Step::ArmGrace(GRACE))]
}

/// The ending the command's exit leads to (nothing left behind, no quit URLs).
fn exit(p: &mut Policy, st: ChildStatus) -> Ending {
    let out = acts(on(
        p,
        Input::ChildExited {
            status: st,
            leftovers: false,
            before_stop: false,
        },
    ));
    match out.as_slice() {
        [Finish(e), Exit] => e.clone(),
        other => panic!("{other:?}"),
    }
}

fn observed(marker: Presence, lease: LeaseView, released: bool) -> Observation {
    Observation {
        marker,
        lease,
        released,
    }
}

fn sidecar_marker(code: i64, reason: Reason, request: Option<Sig>) -> Presence {
    Presence::Present(Seen {
        exit_code: Some(code),
        reason: Some(reason),
        stop_request: request,
        program: Some("dockerd".into()),
        command_exit_code: Some(code),
    })
}

fn ended(code: i64) -> Observation {
    observed(
        sidecar_marker(code, Reason::Exited, None),
        LeaseView::None,
        true,
    )
}

fn stopped_on(sig: Sig) -> Observation {
    observed(
        sidecar_marker(0, Reason::Stopped, Some(sig)),
        LeaseView::None,
        true,
    )
}

#[test]
fn starts_once_every_required_sidecar_was_looked_at_or_behind_the_gate() {
    let mut p = Policy::new(Settings {
        requires: Vec::new(),
        ..settings()
    });
    assert_eq!(p.start(t0()), vec![Spawn]);
    let mut p = Policy::new(settings());
    assert_eq!(
        p.start(t0()),
        vec![],
        "not before its sidecar was looked at"
    );
    assert_eq!(on(&mut p, Input::Peer(0, alive())), vec![Spawn]);
    let mut p = Policy::new(gated(None));
    assert_eq!(p.start(t0()), vec![StartGate { until: None }]);
    assert_eq!(on(&mut p, Input::Peer(0, not_started())), vec![]);
    assert_eq!(on(&mut p, Input::Ready(Ok(()))), vec![Spawn]);
}

#[test]
fn arms_the_timeout_and_the_heartbeat_when_the_command_runs() {
    let h = Duration::from_secs(1);
    let t = Duration::from_secs(60);
    let mut p = Policy::new(Settings {
        timeout: Some(t),
        heartbeat: Some(h),
        requires: Vec::new(),
        ..settings()
    });
    p.start(t0());
    let out = on(&mut p, Input::Spawned { pid: 42 });
    assert_eq!(
        acts(out.clone()),
        vec![Arm(Timer::Timeout, t), Arm(Timer::Heartbeat, h)]
    );
    assert!(
        logs(&out)
            .contains("started ./ci.sh as pid 42; marker will be written to /shared/main.done"),
        "{out:?}"
    );
    assert_eq!(
        on(&mut p, Input::Timer(Timer::Heartbeat)),
        vec![Mode(Own::TouchLease), Arm(Timer::Heartbeat, h)]
    );
}

#[test]
fn the_command_s_own_end_is_the_ending() {
    assert_eq!(
        exit(&mut running(settings()), ChildStatus::Exited(3)),
        Ending::Exited(3)
    );
    let sig = Sig::new(37).unwrap();
    assert_eq!(
        exit(&mut running(settings()), ChildStatus::Signaled(sig)),
        Ending::Signaled(sig)
    );
    let mut p = Policy::new(Settings {
        requires: Vec::new(),
        ..settings()
    });
    p.start(t0());
    let e = SpawnError {
        failure: SpawnFailure::NotFound,
        message: "x: command not found".into(),
    };
    assert_eq!(
        on(&mut p, Input::SpawnFailed(e.clone())),
        vec![Finish(Ending::from_spawn(&e)), Exit]
    );
    assert_eq!(
        on(&mut p, Input::Signal(TERM)),
        vec![],
        "nothing after the end"
    );
}

#[test]
fn a_term_signal_stops_the_command_and_the_run_ends_stopped_with_its_code() {
    let mut p = running(settings());
    let out = on(&mut p, Input::Signal(TERM));
    assert_eq!(acts(out.clone()), ask(TERM));
    assert!(
        logs(&out).contains("received TERM, forwarded to ./ci.sh; it has 25.0s"),
        "{out:?}"
    );
    // Later ones are forwarded as they are, without a new grace period.
    assert_eq!(
        acts(on(&mut p, Input::Signal(Sig::INT))),
        vec![S(Step::Forward(Sig::INT))]
    );
    match exit(&mut p, ChildStatus::Exited(143)) {
        Ending::Stopped {
            cause: StopCause::Requested(TERM),
            status: ChildStatus::Exited(143),
            exit: StoppedExit::Command,
            ..
        } => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_grace_period_ends_in_sigkill_and_says_so() {
    let mut p = running(settings());
    on(&mut p, Input::Signal(TERM));
    let out = on(&mut p, Input::Timer(Timer::Grace));
    assert_eq!(acts(out.clone()), vec![S(Step::KillGroup)]);
    assert!(logs(&out).contains("still running 25.0s after being asked to stop"));
    assert_eq!(
        acts(on(&mut p, Input::Timer(Timer::Grace))),
        vec![],
        "killed once"
    );
    assert_eq!(
        exit(&mut p, ChildStatus::Signaled(Sig::KILL)),
        Ending::GraceKilled { grace: GRACE }
    );
}

#[test]
fn other_signals_are_forwarded_and_not_a_stop() {
    let mut p = running(settings());
    for n in [1, 4, 6, 10, 11, 28, 34, 37, 64] {
        let sig = Sig::new(n).unwrap();
        assert_eq!(
            acts(on(&mut p, Input::Signal(sig))),
            vec![S(Step::Forward(sig))],
            "{sig}"
        );
    }
    assert_eq!(
        acts(on(&mut p, Input::Timer(Timer::Grace))),
        vec![],
        "no grace is running"
    );
    assert_eq!(exit(&mut p, ChildStatus::Exited(0)), Ending::Exited(0));
}

#[test]
fn term_signals_are_configurable() {
    let mut s = settings();
    s.stop.term_signals = SigSet::empty().with(Sig::QUIT).with(Sig::new(37).unwrap());
    let mut p = running(s);
    assert_eq!(
        acts(on(&mut p, Input::Signal(TERM))),
        vec![S(Step::Forward(TERM))],
        "TERM is no stop request now"
    );
    let rt = Sig::new(37).unwrap();
    assert_eq!(acts(on(&mut p, Input::Signal(rt))), ask(rt));
}

#[test]
fn a_stop_delay_keeps_the_command_running_and_drops_no_signal() {
    let mut p = running(with_delay(DELAY));
    let out = on(&mut p, Input::Signal(TERM));
    assert_eq!(acts(out.clone()), vec![S(Step::ArmDelay(DELAY))]);
    assert!(logs(&out).contains("keeps running for --stop-delay 5.0s"));
    let out = on(&mut p, Input::Signal(Sig::INT));
    assert_eq!(acts(out.clone()), vec![], "held during the delay");
    assert!(
        logs(&out)
            .contains("received INT during --stop-delay; ./ci.sh gets it when the delay ends"),
        "{out:?}"
    );
    assert_eq!(
        acts(on(&mut p, Input::Signal(Sig::USR1))),
        vec![S(Step::Forward(Sig::USR1))]
    );
    let mut want = ask(TERM);
    want.push(S(Step::Forward(Sig::INT)));
    assert_eq!(on(&mut p, Input::Timer(Timer::StopDelay)), want);
    assert_eq!(
        exit(&mut p, ChildStatus::Exited(0)).reason(),
        Reason::Stopped
    );
}

#[test]
fn a_command_that_ends_during_the_stop_delay_ended_by_itself() {
    let mut p = running(with_delay(DELAY));
    on(&mut p, Input::Signal(TERM));
    assert_eq!(exit(&mut p, ChildStatus::Exited(0)), Ending::Exited(0));
}

#[test]
fn the_timeout_stops_the_command_with_the_stop_signal() {
    let t = Duration::from_secs(60);
    let mut p = running(Settings {
        timeout: Some(t),
        ..settings()
    });
    let out = on(&mut p, Input::Timer(Timer::Timeout));
    assert_eq!(acts(out.clone()), ask(Sig::INT));
    assert!(
        logs(&out).contains("has run for --timeout 1m00s: sent INT"),
        "{out:?}"
    );
    // The kubelet's INT for the same stop is not sent twice.
    let out = on(&mut p, Input::Signal(Sig::INT));
    assert_eq!(acts(out.clone()), vec![]);
    assert!(logs(&out).contains("already got INT"), "{out:?}");
    let st = ChildStatus::Signaled(Sig::INT);
    assert_eq!(
        exit(&mut p, st),
        Ending::TimedOut {
            after: t,
            status: st
        }
    );
}

#[test]
fn the_timeout_cuts_a_stop_delay_short_and_the_request_keeps_its_reason() {
    let t = Duration::from_secs(60);
    let mut p = running(Settings {
        timeout: Some(t),
        ..with_delay(DELAY)
    });
    on(&mut p, Input::Signal(TERM));
    assert_eq!(acts(on(&mut p, Input::Timer(Timer::Timeout))), ask(TERM));
    match exit(&mut p, ChildStatus::Exited(0)) {
        Ending::Stopped {
            cause: StopCause::Requested(TERM),
            ..
        } => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_timeout_after_a_stop_request_changes_nothing() {
    let mut p = running(Settings {
        timeout: Some(DELAY),
        ..settings()
    });
    on(&mut p, Input::Signal(TERM));
    assert_eq!(acts(on(&mut p, Input::Timer(Timer::Timeout))), vec![]);
    assert_eq!(
        exit(&mut p, ChildStatus::Signaled(TERM)).reason(),
        Reason::Stopped
    );
}

#[test]
fn the_wait_timeout_fails_or_continues() {
    let pending = vec!["unix:/var/run/docker.sock (refused)".to_string()];
    let w = Duration::from_secs(120);
    let mut p = Policy::new(Settings {
        requires: Vec::new(),
        ..gated(Some(w))
    });
    let now = t0();
    assert_eq!(
        p.start(now),
        vec![StartGate {
            until: Some(now + w)
        }]
    );
    assert_eq!(
        on(&mut p, Input::Ready(Err(pending.clone()))),
        vec![
            Finish(Ending::NotReady {
                pending: pending.clone(),
                waited: w
            }),
            Exit
        ]
    );
    let mut s = gated(Some(w));
    s.requires = Vec::new();
    s.gate = Some(Gate {
        wait_timeout: Some(w),
        on_wait_timeout: OnWaitTimeout::Continue,
    });
    let mut p = Policy::new(s);
    p.start(t0());
    let out = on(&mut p, Input::Ready(Err(pending)));
    assert_eq!(acts(out.clone()), vec![Spawn]);
    assert!(logs(&out).contains("starting ./ci.sh anyway (--on-wait-timeout continue)"));
}

#[test]
fn a_term_signal_before_the_command_runs_cancels_it() {
    let mut p = Policy::new(gated(None));
    p.start(t0());
    let out = on(&mut p, Input::Signal(Sig::USR1));
    assert_eq!(acts(out.clone()), vec![], "nothing to pass it to yet");
    assert!(logs(&out).contains("received USR1 before ./ci.sh started"));
    assert_eq!(
        acts(on(&mut p, Input::Signal(Sig::INT))),
        vec![Finish(Ending::Cancelled(Sig::INT)), Exit]
    );
    assert_eq!(acts(on(&mut p, Input::Ready(Ok(())))), vec![], "too late");
}

#[test]
fn a_required_sidecar_that_ends_on_its_own_stops_the_command() {
    let mut p = running(settings());
    // Alive, its marker seen while its lease is held, or not started yet: nothing.
    assert_eq!(on(&mut p, Input::Peer(0, alive())), vec![]);
    let early = observed(
        sidecar_marker(1, Reason::Exited, None),
        LeaseView::Held {
            pid: Some(7),
            heartbeat: false,
        },
        false,
    );
    assert_eq!(on(&mut p, Input::Peer(0, early)), vec![]);
    assert_eq!(on(&mut p, Input::Peer(0, not_started())), vec![]);
    // Its marker, once its lease is released: it ended.
    let out = on(&mut p, Input::Peer(0, ended(1)));
    let mut want = vec![Settle(0)];
    want.extend(ask(Sig::INT));
    assert_eq!(acts(out.clone()), want);
    assert!(
        logs(&out)
            .contains("required sidecar /shared/dind.done ended (dockerd exited with code 1)"),
        "{out:?}"
    );
    assert_eq!(on(&mut p, Input::Peer(0, ended(1))), vec![], "settled");
    let st = ChildStatus::Signaled(Sig::INT);
    match exit(&mut p, st) {
        Ending::DependencyFailed { dependency, status } => {
            assert_eq!(status, Some(st));
            assert_eq!(
                (dependency.path.as_str(), dependency.exit_code),
                ("/shared/dind.done", Some(1))
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_marker_found_right_after_the_release_counts_whatever_lease_followed() {
    let mut p = running(settings());
    let restarted = observed(
        sidecar_marker(2, Reason::Exited, None),
        LeaseView::Held {
            pid: Some(9),
            heartbeat: false,
        },
        true,
    );
    assert_eq!(acts(on(&mut p, Input::Peer(0, restarted)))[0], Settle(0));
}

#[test]
fn a_required_sidecar_that_vanishes_stops_the_command() {
    for (lease, released) in [(LeaseView::Free, false), (LeaseView::None, true)] {
        let mut p = running(settings());
        let out = acts(on(
            &mut p,
            Input::Peer(0, observed(Presence::Absent, lease, released)),
        ));
        assert_eq!(out[0], Settle(0));
        assert_eq!(out[1..], ask(Sig::INT));
        match exit(&mut p, ChildStatus::Exited(0)) {
            Ending::DependencyFailed { dependency, .. } => assert_eq!(dependency.exit_code, None),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_sidecar_stopped_from_outside_means_the_pod_is_stopping() {
    // The sidecar's TERM lands first: the command is stopped as on its own request.
    let mut p = running(settings());
    let out = on(&mut p, Input::Peer(0, stopped_on(TERM)));
    let mut want = vec![Settle(0)];
    want.extend(ask(TERM));
    assert_eq!(acts(out.clone()), want);
    assert!(logs(&out).contains("the pod is stopping"), "{out:?}");
    // The main's own TERM 50 ms later: the command has it already.
    assert_eq!(acts(on(&mut p, Input::Signal(TERM))), vec![]);
    let e = exit(&mut p, ChildStatus::Exited(143));
    assert_eq!(
        (e.reason(), crate::exit::ending_code(&e), e.stop_request()),
        (Reason::Stopped, 143, Some(TERM))
    );
    assert_eq!(
        e.dependency().map(|d| d.path.as_str()),
        Some("/shared/dind.done")
    );
    // The main's TERM first: the sidecar's stop changes nothing.
    let mut p = running(settings());
    on(&mut p, Input::Signal(TERM));
    let out = on(&mut p, Input::Peer(0, stopped_on(TERM)));
    assert_eq!(acts(out.clone()), vec![Settle(0)]);
    let e = exit(&mut p, ChildStatus::Exited(143));
    assert_eq!(
        (e.reason(), crate::exit::ending_code(&e)),
        (Reason::Stopped, 143)
    );
    // A stop signal that is not one of ours: the command gets --stop-signal.
    let mut p = running(settings());
    let out = acts(on(&mut p, Input::Peer(0, stopped_on(Sig::QUIT))));
    assert_eq!(out[1..], ask(Sig::INT));
}

#[test]
fn a_sidecar_stopped_because_its_own_mains_were_done_is_a_dependency_failure() {
    let mut p = running(settings());
    let done = observed(
        sidecar_marker(0, Reason::Stopped, None),
        LeaseView::None,
        true,
    );
    on(&mut p, Input::Peer(0, done));
    assert_eq!(
        exit(&mut p, ChildStatus::Exited(1)).reason(),
        Reason::DependencyFailed
    );
}

#[test]
fn a_required_sidecar_that_ended_before_the_command_ends_the_run_at_once() {
    let mut p = Policy::new(settings());
    p.start(t0());
    match acts(on(&mut p, Input::Peer(0, ended(2)))).as_slice() {
        [
            Settle(0),
            Finish(Ending::DependencyFailed { status: None, .. }),
            Exit,
        ] => {}
        other => panic!("{other:?}"),
    }
    // The pod is stopping before the command started: cancelled.
    let mut p = Policy::new(gated(None));
    p.start(t0());
    assert_eq!(
        acts(on(&mut p, Input::Peer(0, stopped_on(TERM)))),
        vec![Settle(0), Finish(Ending::Cancelled(TERM)), Exit]
    );
}

#[test]
fn with_a_wait_timeout_a_sidecar_that_ended_first_is_awaited_back() {
    let w = Duration::from_secs(120);
    let mut p = Policy::new(gated(Some(w)));
    p.start(t0());
    let out = on(&mut p, Input::Peer(0, ended(2)));
    assert_eq!(acts(out.clone()), vec![]);
    assert!(logs(&out).contains("waiting up to --wait-timeout for it to come back"));
    // Seen ended again (its lease released, then its marker): said once.
    assert_eq!(on(&mut p, Input::Peer(0, ended(2))), vec![]);
    // The gate opens (the old ready file is still there), but the sidecar is away.
    let out = acts(on(&mut p, Input::Ready(Ok(()))));
    assert!(
        matches!(out.as_slice(), [Arm(Timer::WaitTimeout, _)]),
        "{out:?}"
    );
    // Restarted (its new supervisor holds a lease): the gate is checked again, then CMD runs.
    let out = acts(on(&mut p, Input::Peer(0, alive())));
    assert!(
        matches!(out.as_slice(), [StartGate { until: Some(_) }]),
        "{out:?}"
    );
    assert_eq!(on(&mut p, Input::Ready(Ok(()))), vec![Spawn]);
    // Never back: the deadline fails the run with the reason that is known.
    let mut p = Policy::new(gated(Some(w)));
    p.start(t0());
    on(&mut p, Input::Peer(0, ended(2)));
    on(&mut p, Input::Ready(Ok(())));
    match acts(on(&mut p, Input::Timer(Timer::WaitTimeout))).as_slice() {
        [
            Settle(0),
            Finish(Ending::DependencyFailed { status: None, .. }),
            Exit,
        ] => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_main_asked_to_stop_first_keeps_its_reason() {
    let mut p = running(settings());
    on(&mut p, Input::Signal(TERM));
    let out = on(&mut p, Input::Peer(0, ended(0)));
    assert_eq!(acts(out.clone()), vec![Settle(0)]);
    assert!(logs(&out).contains("was already stopping"));
    assert_eq!(
        exit(&mut p, ChildStatus::Signaled(TERM)).reason(),
        Reason::Stopped
    );
    // During a stop delay, the dependency cuts it short; the reason stays the request.
    let mut p = running(with_delay(DELAY));
    on(&mut p, Input::Signal(TERM));
    let out = acts(on(&mut p, Input::Peer(0, ended(0))));
    assert_eq!(out[1..], ask(TERM));
    assert_eq!(
        exit(&mut p, ChildStatus::Exited(0)).reason(),
        Reason::Stopped
    );
}

#[test]
fn what_the_command_leaves_behind_is_stopped_after_the_marker() {
    let mut p = running(Settings {
        quit: true,
        ..settings()
    });
    let out = on(
        &mut p,
        Input::ChildExited {
            status: ChildStatus::Exited(0),
            leftovers: true,
            before_stop: false,
        },
    );
    assert_eq!(
        acts(out.clone()),
        vec![
            Finish(Ending::Exited(0)),
            StopLeftovers(Sig::INT),
            Arm(Timer::Leftovers, GRACE),
            PostQuit
        ]
    );
    assert!(logs(&out).contains("./ci.sh left processes running: sent them INT"));
    assert_eq!(
        acts(on(&mut p, Input::Signal(Sig::HUP))),
        vec![StopLeftovers(Sig::HUP)]
    );
    assert_eq!(
        acts(on(&mut p, Input::Timer(Timer::Leftovers))),
        vec![KillLeftovers]
    );
    assert_eq!(
        on(&mut p, Input::LeftoversGone),
        vec![],
        "the quit calls run"
    );
    assert_eq!(on(&mut p, Input::QuitDone { answered: 1 }), vec![Exit]);
}

#[test]
fn a_command_that_had_ended_before_the_stop_ended_by_itself() {
    // It aborted a moment before the pod-deletion TERM, whose request was read first.
    let mut p = running(settings());
    on(&mut p, Input::Signal(TERM));
    let out = acts(on(
        &mut p,
        Input::ChildExited {
            status: ChildStatus::Signaled(Sig::ABRT),
            leftovers: false,
            before_stop: true,
        },
    ));
    assert_eq!(out, vec![Finish(Ending::Signaled(Sig::ABRT)), Exit]);
    // Asked while it ran, it ignored the stop and crashed later: the stop's reason stays.
    let mut p = running(settings());
    on(&mut p, Input::Peer(0, ended(1)));
    assert_eq!(
        exit(&mut p, ChildStatus::Signaled(Sig::SEGV)).reason(),
        Reason::DependencyFailed
    );
}
