//! Every transition of `main`'s policy, in microseconds.

use super::*;
use crate::marker::Seen;
use crate::modes::Action::{
    Arm, Finish, Forward, Log, Settle, Spawn, StartGate, Stop as S, TouchLease,
};
use crate::stop::Step;

const GRACE: Duration = Duration::from_secs(25);
const DELAY: Duration = Duration::from_secs(5);
const TERM: Sig = Sig::TERM;

fn settings() -> Settings {
    Settings {
        command: "./ci.sh".into(),
        grace: GRACE,
        stop_signal: Sig::INT,
        stop_delay: Duration::ZERO,
        term_signals: SigSet::empty().with(Sig::TERM).with(Sig::INT),
        timeout: None,
        heartbeat: None,
        gated: false,
        wait_timeout: None,
        on_wait_timeout: OnWaitTimeout::Fail,
        requires: vec!["/shared/dind.done".into()],
    }
}

fn running(s: Settings) -> Policy {
    let mut p = Policy::new(s);
    assert_eq!(p.start(), vec![Spawn]);
    p.spawned();
    p
}

/// The actions without their log lines.
fn acts(v: Vec<Action>) -> Vec<Action> {
    v.into_iter().filter(|a| !matches!(a, Log(..))).collect()
}

fn logs(v: &[Action]) -> String {
    v.iter()
        .filter_map(|a| match a {
            Log(_, t) => Some(t.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn ask(sig: Sig) -> Vec<Action> {
    vec![S(Step::Ask(Ask::Signal(sig))), S(Step::ArmGrace(GRACE))]
}

fn exit(p: &mut Policy, st: ChildStatus) -> Ending {
    match acts(p.on(Event::ChildExited(st))).as_slice() {
        [Finish(e)] => e.clone(),
        other => panic!("{other:?}"),
    }
}

fn observed(marker: Presence, lease: LeaseView) -> Observation {
    Observation { marker, lease }
}

fn sidecar_marker(code: i64) -> Presence {
    Presence::Present(Seen {
        exit_code: Some(code),
        reason: Some("exited".into()),
        program: Some("dockerd".into()),
        command_exit_code: Some(code),
    })
}

#[test]
fn starts_at_once_or_behind_the_gate() {
    assert_eq!(Policy::new(settings()).start(), vec![Spawn]);
    let mut p = Policy::new(Settings {
        gated: true,
        ..settings()
    });
    assert_eq!(p.start(), vec![StartGate]);
    assert_eq!(p.on(Event::Ready(Ok(()))), vec![Spawn]);
}

#[test]
fn arms_the_timeout_and_the_heartbeat_when_the_command_runs() {
    let h = Duration::from_secs(1);
    let t = Duration::from_secs(60);
    let mut p = Policy::new(Settings {
        timeout: Some(t),
        heartbeat: Some(h),
        ..settings()
    });
    p.start();
    assert_eq!(
        p.spawned(),
        vec![Arm(Timer::Timeout, t), Arm(Timer::Heartbeat, h)]
    );
    assert_eq!(
        p.on(Event::Timer(Timer::Heartbeat)),
        vec![TouchLease, Arm(Timer::Heartbeat, h)]
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
    let failed = Ending::ExecFailed {
        failure: crate::ending::ExecFailure::NotFound,
        error: "x".into(),
    };
    let mut p = Policy::new(settings());
    p.start();
    assert_eq!(p.spawn_failed(failed.clone()), vec![Finish(failed)]);
    assert_eq!(p.on(Event::Signal(TERM)), vec![], "nothing after the end");
}

#[test]
fn a_term_signal_is_forwarded_once_with_a_grace_period_and_sigcont() {
    let mut p = running(settings());
    let out = p.on(Event::Signal(TERM));
    assert_eq!(acts(out.clone()), ask(TERM));
    assert!(
        logs(&out).contains("received TERM, forwarded to ./ci.sh; it has 25.0s"),
        "{out:?}"
    );
    // Later ones are forwarded as they are, without a new grace period.
    assert_eq!(acts(p.on(Event::Signal(Sig::INT))), vec![Forward(Sig::INT)]);
    assert_eq!(
        exit(&mut p, ChildStatus::Signaled(TERM)),
        Ending::Signaled(TERM)
    );
}

#[test]
fn the_grace_period_ends_in_sigkill_and_says_so() {
    let mut p = running(settings());
    p.on(Event::Signal(TERM));
    let out = p.on(Event::Timer(Timer::Grace));
    assert_eq!(acts(out.clone()), vec![S(Step::KillGroup)]);
    assert!(logs(&out).contains("still running 25.0s after being asked to stop"));
    assert_eq!(
        acts(p.on(Event::Timer(Timer::Grace))),
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
    for n in [1, 10, 28, 34, 37, 64] {
        let sig = Sig::new(n).unwrap();
        assert_eq!(acts(p.on(Event::Signal(sig))), vec![Forward(sig)], "{sig}");
    }
    assert_eq!(
        acts(p.on(Event::Timer(Timer::Grace))),
        vec![],
        "no grace is running"
    );
    assert_eq!(exit(&mut p, ChildStatus::Exited(0)), Ending::Exited(0));
}

#[test]
fn term_signals_are_configurable() {
    let quit = SigSet::empty().with(Sig::QUIT).with(Sig::new(37).unwrap());
    let mut p = running(Settings {
        term_signals: quit,
        ..settings()
    });
    assert_eq!(
        acts(p.on(Event::Signal(TERM))),
        vec![Forward(TERM)],
        "TERM is no stop request now"
    );
    let rt = Sig::new(37).unwrap();
    assert_eq!(acts(p.on(Event::Signal(rt))), ask(rt));
}

#[test]
fn a_stop_delay_keeps_the_command_running_then_forwards() {
    let mut p = running(Settings {
        stop_delay: DELAY,
        ..settings()
    });
    let out = p.on(Event::Signal(TERM));
    assert_eq!(acts(out.clone()), vec![S(Step::ArmDelay(DELAY))]);
    assert!(logs(&out).contains("keeps running for --stop-delay 5.0s"));
    assert_eq!(
        acts(p.on(Event::Signal(TERM))),
        vec![],
        "absorbed during the delay"
    );
    assert_eq!(
        acts(p.on(Event::Signal(Sig::USR1))),
        vec![Forward(Sig::USR1)]
    );
    assert_eq!(p.on(Event::Timer(Timer::StopDelay)), ask(TERM));
    assert_eq!(exit(&mut p, ChildStatus::Exited(0)), Ending::Exited(0));
}

#[test]
fn the_timeout_stops_the_command_with_the_stop_signal() {
    let t = Duration::from_secs(60);
    let mut p = running(Settings {
        timeout: Some(t),
        ..settings()
    });
    let out = p.on(Event::Timer(Timer::Timeout));
    assert_eq!(acts(out.clone()), ask(Sig::INT));
    assert!(
        logs(&out).contains("has run for --timeout 1m00s: sent INT"),
        "{out:?}"
    );
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
fn the_timeout_cuts_a_stop_delay_short_but_the_request_keeps_its_reason() {
    let t = Duration::from_secs(60);
    let mut p = running(Settings {
        timeout: Some(t),
        stop_delay: DELAY,
        ..settings()
    });
    p.on(Event::Signal(TERM));
    assert_eq!(acts(p.on(Event::Timer(Timer::Timeout))), ask(Sig::INT));
    assert_eq!(exit(&mut p, ChildStatus::Exited(0)), Ending::Exited(0));
}

#[test]
fn a_timeout_after_a_stop_request_changes_nothing() {
    let mut p = running(Settings {
        timeout: Some(DELAY),
        ..settings()
    });
    p.on(Event::Signal(TERM));
    assert_eq!(acts(p.on(Event::Timer(Timer::Timeout))), vec![]);
    assert_eq!(
        exit(&mut p, ChildStatus::Signaled(TERM)),
        Ending::Signaled(TERM)
    );
}

#[test]
fn the_wait_timeout_fails_or_continues() {
    let pending = vec!["unix:/var/run/docker.sock (refused)".to_string()];
    let w = Duration::from_secs(120);
    let mut p = Policy::new(Settings {
        gated: true,
        wait_timeout: Some(w),
        ..settings()
    });
    p.start();
    assert_eq!(
        p.on(Event::Ready(Err(pending.clone()))),
        vec![Finish(Ending::NotReady {
            pending: pending.clone(),
            waited: w
        })]
    );
    let mut p = Policy::new(Settings {
        gated: true,
        wait_timeout: Some(w),
        on_wait_timeout: OnWaitTimeout::Continue,
        ..settings()
    });
    p.start();
    let out = p.on(Event::Ready(Err(pending)));
    assert_eq!(acts(out.clone()), vec![Spawn]);
    assert!(logs(&out).contains("starting ./ci.sh anyway (--on-wait-timeout continue)"));
}

#[test]
fn a_term_signal_before_the_command_runs_cancels_it() {
    let mut p = Policy::new(Settings {
        gated: true,
        ..settings()
    });
    p.start();
    assert_eq!(
        acts(p.on(Event::Signal(Sig::USR1))),
        vec![],
        "nothing to forward to yet"
    );
    assert_eq!(
        acts(p.on(Event::Signal(Sig::INT))),
        vec![Finish(Ending::Cancelled(Sig::INT))]
    );
    assert_eq!(acts(p.on(Event::Ready(Ok(())))), vec![], "too late");
}

#[test]
fn a_required_sidecar_that_ends_stops_the_command() {
    let mut p = running(settings());
    // Alive, or not started yet: nothing.
    let alive = LeaseView::Held {
        pid: Some(7),
        heartbeat: false,
    };
    assert_eq!(
        p.on_peer(0, observed(Presence::Absent, alive.clone()), false),
        vec![]
    );
    assert_eq!(
        p.on_peer(0, observed(sidecar_marker(1), alive), false),
        vec![]
    );
    assert_eq!(
        p.on_peer(0, observed(Presence::Absent, LeaseView::None), false),
        vec![]
    );
    // Its marker, once its lease is gone: it ended.
    let out = p.on_peer(0, observed(sidecar_marker(1), LeaseView::None), true);
    let mut want = vec![Settle(0)];
    want.extend(ask(Sig::INT));
    assert_eq!(acts(out.clone()), want);
    assert!(
        logs(&out)
            .contains("required sidecar /shared/dind.done ended (dockerd exited with code 1)"),
        "{out:?}"
    );
    assert_eq!(
        p.on_peer(0, observed(sidecar_marker(1), LeaseView::None), true),
        vec![],
        "settled"
    );
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
fn a_required_sidecar_that_vanishes_stops_the_command() {
    for (lease, released) in [(LeaseView::Free, false), (LeaseView::None, true)] {
        let mut p = running(settings());
        let out = acts(p.on_peer(0, observed(Presence::Absent, lease), released));
        assert_eq!(out[0], Settle(0));
        assert_eq!(out[1..], ask(Sig::INT));
        match exit(&mut p, ChildStatus::Exited(0)) {
            Ending::DependencyFailed { dependency, .. } => assert_eq!(dependency.exit_code, None),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_required_sidecar_that_ends_before_the_command_runs_ends_the_run() {
    let mut p = Policy::new(Settings {
        gated: true,
        ..settings()
    });
    p.start();
    match acts(p.on_peer(0, observed(sidecar_marker(2), LeaseView::None), true)).as_slice() {
        [
            Settle(0),
            Finish(Ending::DependencyFailed { status: None, .. }),
        ] => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_main_asked_to_stop_first_keeps_its_reason() {
    let mut p = running(settings());
    p.on(Event::Signal(TERM));
    let out = p.on_peer(0, observed(sidecar_marker(0), LeaseView::None), true);
    assert_eq!(acts(out.clone()), vec![Settle(0)]);
    assert!(logs(&out).contains("was already stopping"));
    assert_eq!(
        exit(&mut p, ChildStatus::Signaled(TERM)),
        Ending::Signaled(TERM)
    );
    // During a stop delay, the dependency cuts it short; the reason stays the request.
    let mut p = running(Settings {
        stop_delay: DELAY,
        ..settings()
    });
    p.on(Event::Signal(TERM));
    let out = acts(p.on_peer(0, observed(sidecar_marker(0), LeaseView::None), true));
    assert_eq!(out[1..], ask(Sig::INT));
    assert_eq!(exit(&mut p, ChildStatus::Exited(0)), Ending::Exited(0));
}
