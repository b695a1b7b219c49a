//! Every transition of `sidecar`'s policy, in microseconds.

use super::*;
use crate::marker::Reason;
use crate::modes::driver::Action::{
    Arm, CheckStale, Exit, Finish, KillLeftovers, Mode, PostQuit, Settle, Spawn, StartGate,
    Stop as S, StopLeftovers,
};
use crate::modes::driver::Policy as _;
use crate::modes::driver::testing::{acts, logs};
use crate::signals::SigSet;

const GRACE: Duration = Duration::from_secs(10);
const DELAY: Duration = Duration::from_secs(5);
const TERM: Sig = Sig::TERM;

fn settings(waits: usize) -> Settings {
    Settings {
        command: "dockerd".into(),
        on: OnPolicy::Any,
        exit: ExitPolicy::Zero,
        stop: StopSettings {
            grace: GRACE,
            stop_signal: Sig::QUIT,
            stop_delay: Duration::ZERO,
            term_signals: SigSet::empty().with(Sig::TERM).with(Sig::INT),
        },
        ask: Ask::Signal(Sig::QUIT),
        waits: (0..waits)
            .map(|i| {
                (
                    format!("/shared/m{i}.done"),
                    format!("/shared/m{i}.done.lease"),
                )
            })
            .collect(),
        stale_after: None,
        gated: false,
        ready_file: None,
    }
}

fn delayed(waits: usize) -> Settings {
    let mut s = settings(waits);
    s.stop.stop_delay = DELAY;
    s
}

/// The one instant of a test: every input happens at once.
fn t0() -> Instant {
    thread_local! { static T0: Instant = Instant::now(); }
    T0.with(|t| *t)
}

/// A running daemon.
fn running(s: Settings) -> Policy {
    let mut p = Policy::new(s);
    assert_eq!(p.start(t0()), vec![Spawn]);
    p.on(t0(), Input::Spawned { pid: 42 });
    p
}

fn on(p: &mut Policy, input: Input) -> Vec<Action> {
    p.on(t0(), input)
}

fn peer(p: &mut Policy, i: usize, o: Observation) -> Vec<Action> {
    on(p, Input::Peer(i, o))
}

fn marker(code: Option<i64>) -> Presence {
    Presence::Present(Seen {
        exit_code: code,
        reason: Some(Reason::Exited),
        stop_request: None,
        program: None,
        command_exit_code: code,
    })
}

fn obs(marker: Presence, lease: LeaseView) -> Observation {
    Observation {
        marker,
        lease,
        released: false,
    }
}

fn released(marker: Presence, lease: LeaseView) -> Observation {
    Observation {
        marker,
        lease,
        released: true,
    }
}

fn held() -> LeaseView {
    LeaseView::Held {
        pid: Some(1),
        heartbeat: false,
    }
}

/// What asking the daemon to stop looks like with `n` slots.
fn stop(n: usize) -> Vec<Action> {
    let mut v = vec![
        S(Step::Ask(Ask::Signal(Sig::QUIT))),
        S(Step::ArmGrace(GRACE)),
    ];
    v.extend((0..n).map(Settle));
    v
}

/// The ending the daemon's exit leads to.
fn end(p: &mut Policy, st: ChildStatus, leftovers: bool) -> Ending {
    let out = acts(on(
        p,
        Input::ChildExited {
            status: st,
            leftovers,
            before_stop: false,
        },
    ));
    match out.as_slice() {
        [Finish(e), Exit] | [Finish(e), StopLeftovers(_), Arm(Timer::Leftovers, _)] => e.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_marker_without_a_live_lease_counts_and_stops_the_daemon_once() {
    let mut p = running(settings(1));
    let out = peer(&mut p, 0, obs(marker(Some(3)), LeaseView::None));
    let mut want = vec![Settle(0)];
    want.extend(stop(1));
    assert_eq!(acts(out.clone()), want);
    let said = logs(&out);
    assert!(
        said.contains("marker /shared/m0.done arrived: main ended (exited, exit code 3)"),
        "{said}"
    );
    assert!(
        said.contains("stopping the daemon: sent QUIT to its process group; SIGKILL after 10.0s"),
        "{said}"
    );
    assert_eq!(
        peer(&mut p, 0, obs(marker(Some(3)), LeaseView::None)),
        vec![]
    );
    let st = ChildStatus::Exited(0);
    assert_eq!(
        end(&mut p, st, false),
        Ending::Stopped {
            cause: StopCause::MainsDone { main_code: Some(3) },
            status: st,
            exit: StoppedExit::Zero,
            took: Duration::ZERO
        }
    );
}

#[test]
fn a_marker_counts_only_once_its_lease_is_released() {
    let mut p = running(settings(1));
    let out = peer(&mut p, 0, obs(marker(Some(0)), held()));
    assert_eq!(acts(out.clone()), vec![]);
    assert!(
        logs(&out).contains(
            "appeared while its main still holds the lease /shared/m0.done.lease (pid 1)"
        )
    );
    assert_eq!(
        peer(&mut p, 0, obs(marker(Some(0)), held())),
        vec![],
        "said once"
    );
    let out = acts(peer(&mut p, 0, released(marker(Some(0)), LeaseView::None)));
    assert_eq!(out[0], Settle(0));
    assert_eq!(out[1..], stop(1));
}

#[test]
fn every_marker_must_arrive() {
    let mut p = running(settings(2));
    assert_eq!(
        acts(peer(&mut p, 1, obs(marker(Some(0)), LeaseView::None))),
        vec![Settle(1)]
    );
    assert_eq!(p.slots(), [Slot::Pending, Slot::Done(Some(0))]);
    let out = acts(peer(&mut p, 0, obs(marker(Some(4)), LeaseView::None)));
    assert_eq!(out[1..], stop(2));
    match end(&mut p, ChildStatus::Signaled(Sig::QUIT), false) {
        Ending::Stopped { cause, .. } => {
            assert_eq!(cause, StopCause::MainsDone { main_code: Some(4) })
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_vanished_main_stops_the_daemon_under_on_any() {
    for (lease, released, how) in [
        (LeaseView::Free, false, "lease left unlocked"),
        (LeaseView::None, true, "lock released"),
        (LeaseView::Free, true, "lock released"),
    ] {
        let mut p = running(Settings {
            exit: ExitPolicy::Main,
            ..settings(1)
        });
        let o = Observation {
            marker: Presence::Absent,
            lease,
            released,
        };
        let out = peer(&mut p, 0, o);
        assert!(
            logs(&out).contains(&format!("vanished without a marker ({how}")),
            "{out:?}"
        );
        assert_eq!(acts(out)[1..], stop(1));
        let e = end(&mut p, ChildStatus::Exited(0), false);
        assert_eq!(crate::exit::ending_code(&e), 137, "{e:?}");
    }
    // Not started yet, or alive: nothing.
    let mut p = running(settings(1));
    assert_eq!(
        peer(&mut p, 0, obs(Presence::Absent, LeaseView::None)),
        vec![]
    );
    assert_eq!(peer(&mut p, 0, obs(Presence::Absent, held())), vec![]);
}

#[test]
fn on_success_waits_through_failures_and_vanishes() {
    let mut p = running(Settings {
        on: OnPolicy::Success,
        exit: ExitPolicy::Main,
        ..settings(1)
    });
    let out = peer(&mut p, 0, released(marker(Some(1)), LeaseView::None));
    assert_eq!(acts(out.clone()), vec![]);
    assert!(logs(&out).contains("says the main failed (exited, exit code 1); --on success keeps"));
    assert_eq!(
        peer(&mut p, 0, obs(marker(Some(1)), LeaseView::None)),
        vec![],
        "said once"
    );
    let out = peer(&mut p, 0, released(Presence::Absent, LeaseView::Free));
    assert!(logs(&out).contains("--on success keeps the daemon running for the restarted main"));
    assert_eq!(acts(out), vec![]);
    assert_eq!(
        peer(&mut p, 0, obs(Presence::Absent, LeaseView::Free)),
        vec![],
        "said once"
    );
    // A new main lives: the next vanish is news again.
    assert_eq!(peer(&mut p, 0, obs(Presence::Absent, held())), vec![]);
    assert_eq!(
        logs(&peer(
            &mut p,
            0,
            released(Presence::Absent, LeaseView::None)
        ))
        .lines()
        .count(),
        1
    );
    // A marker without a code counts as success.
    let out = acts(peer(&mut p, 0, released(marker(None), LeaseView::None)));
    assert_eq!(out[1..], stop(1));
    assert_eq!(
        crate::exit::ending_code(&end(&mut p, ChildStatus::Exited(0), false)),
        0
    );
}

#[test]
fn a_directory_is_not_a_marker() {
    let mut p = running(settings(1));
    let out = peer(&mut p, 0, obs(Presence::NotAFile, LeaseView::None));
    assert_eq!(acts(out.clone()), vec![]);
    assert!(logs(&out).contains("is a directory, not a marker"));
}

#[test]
fn a_term_signal_stops_the_daemon_and_exits_zero_whatever_the_policy() {
    let mut p = running(Settings {
        exit: ExitPolicy::Daemon,
        ..settings(1)
    });
    let out = on(&mut p, Input::Signal(TERM));
    assert_eq!(acts(out.clone()), stop(1));
    assert!(logs(&out).contains("received TERM: stopping dockerd"));
    let again = on(&mut p, Input::Signal(TERM));
    assert_eq!(
        acts(again.clone()),
        vec![S(Step::Forward(TERM))],
        "asked once; a second TERM from outside is the user's, and passed on"
    );
    assert!(logs(&again).contains("forwarded it"), "{again:?}");
    assert_eq!(
        acts(on(&mut p, Input::Signal(Sig::HUP))),
        vec![S(Step::Forward(Sig::HUP))]
    );
    let e = end(&mut p, ChildStatus::Signaled(Sig::QUIT), false);
    assert_eq!(crate::exit::ending_code(&e), 0);
    assert!(matches!(
        e,
        Ending::Stopped {
            cause: StopCause::Requested(TERM),
            ..
        }
    ));
}

#[test]
fn a_native_sidecar_stops_only_on_a_term_signal() {
    let mut p = running(settings(0));
    assert_eq!(
        acts(on(&mut p, Input::Signal(Sig::USR1))),
        vec![S(Step::Forward(Sig::USR1))]
    );
    assert_eq!(acts(on(&mut p, Input::Signal(Sig::INT))), stop(0));
}

#[test]
fn a_stop_delay_holds_a_request_but_never_the_mains_end() {
    let mut p = running(delayed(1));
    assert_eq!(
        acts(on(&mut p, Input::Signal(TERM))),
        vec![S(Step::ArmDelay(DELAY))]
    );
    assert_eq!(acts(on(&mut p, Input::Signal(Sig::INT))), vec![], "held");
    // The main finishes during the delay: stop now, and deliver what was held.
    let out = acts(peer(&mut p, 0, released(marker(Some(0)), LeaseView::None)));
    assert_eq!(
        out,
        vec![
            Settle(0),
            S(Step::Ask(Ask::Signal(Sig::QUIT))),
            S(Step::ArmGrace(GRACE)),
            S(Step::Forward(Sig::INT)),
            Settle(0)
        ]
    );
    assert_eq!(
        acts(on(&mut p, Input::Timer(Timer::StopDelay))),
        vec![],
        "the delay is void"
    );
    // Without a marker the delay runs out.
    let mut p = running(delayed(1));
    on(&mut p, Input::Signal(TERM));
    assert_eq!(acts(on(&mut p, Input::Timer(Timer::StopDelay))), stop(1));
}

#[test]
fn the_grace_period_ends_in_sigkill() {
    let mut p = running(settings(1));
    on(&mut p, Input::Signal(TERM));
    let out = on(&mut p, Input::Timer(Timer::Grace));
    assert_eq!(acts(out.clone()), vec![S(Step::KillGroup)]);
    assert!(logs(&out).contains("still running 10.0s after being asked to stop"));
    match end(&mut p, ChildStatus::Signaled(Sig::KILL), false) {
        e @ Ending::Stopped { .. } => assert!(
            e.sentence("dockerd", Duration::ZERO)
                .contains("after SIGKILL")
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_daemon_that_had_ended_before_the_stop_ended_on_its_own() {
    // It daemonized a moment before TERM came; its exit was read after the TERM.
    let mut p = running(settings(1));
    on(&mut p, Input::Signal(TERM));
    let out = on(
        &mut p,
        Input::ChildExited {
            status: ChildStatus::Exited(0),
            leftovers: true,
            before_stop: true,
        },
    );
    assert_eq!(
        acts(out),
        vec![
            Finish(Ending::Daemonized),
            StopLeftovers(Sig::QUIT),
            Arm(Timer::Leftovers, GRACE)
        ]
    );
    // Ended after the stop was sent: stopped.
    let mut p = running(settings(1));
    on(&mut p, Input::Signal(TERM));
    assert!(matches!(
        end(&mut p, ChildStatus::Exited(0), true),
        Ending::Stopped { .. }
    ));
}

#[test]
fn a_daemon_that_ends_on_its_own_is_a_failure_the_pod_sees() {
    let mut p = running(settings(1));
    let out = on(
        &mut p,
        Input::ChildExited {
            status: ChildStatus::Exited(1),
            leftovers: false,
            before_stop: false,
        },
    );
    assert!(logs(&out).contains("dockerd exited with code 1 on its own before the main was done"));
    assert_eq!(acts(out), vec![Finish(Ending::Exited(1)), Exit]);
    // A one-shot sidecar without --wait-file: no ERROR about a main it does not wait for.
    let mut p = running(settings(0));
    let out = on(
        &mut p,
        Input::ChildExited {
            status: ChildStatus::Exited(0),
            leftovers: false,
            before_stop: false,
        },
    );
    assert_eq!(logs(&out), "");
    let mut p = running(settings(0));
    let out = on(
        &mut p,
        Input::ChildExited {
            status: ChildStatus::Exited(3),
            leftovers: false,
            before_stop: false,
        },
    );
    assert_eq!(logs(&out), "dockerd exited with code 3 on its own");
    let mut p = running(settings(1));
    assert_eq!(
        end(&mut p, ChildStatus::Signaled(Sig::KILL), false),
        Ending::Signaled(Sig::KILL)
    );
    // Exit 0 leaving processes behind: it daemonized.
    let mut p = running(settings(1));
    assert_eq!(
        end(&mut p, ChildStatus::Exited(0), true),
        Ending::Daemonized
    );
    // A one-shot sidecar that leaves nothing behind: its 0.
    let mut p = running(settings(1));
    assert_eq!(
        end(&mut p, ChildStatus::Exited(0), false),
        Ending::Exited(0)
    );
    // A non-zero exit that leaves processes is still its own failure.
    let mut p = running(settings(1));
    assert_eq!(end(&mut p, ChildStatus::Exited(2), true), Ending::Exited(2));
}

#[test]
fn exit_code_policies() {
    let cases = [
        (ExitPolicy::Zero, 0),
        (ExitPolicy::Main, 3),
        (ExitPolicy::Daemon, 128 + 3),
    ];
    for (policy, code) in cases {
        let mut p = running(Settings {
            exit: policy,
            ..settings(1)
        });
        peer(&mut p, 0, obs(marker(Some(3)), LeaseView::None));
        let e = end(&mut p, ChildStatus::Signaled(Sig::QUIT), false);
        assert_eq!(crate::exit::ending_code(&e), code, "{policy:?}");
    }
}

#[test]
fn readiness_is_announced_once_running() {
    let mut p = running(settings(1));
    let out = on(&mut p, Input::Ready(Ok(())));
    assert_eq!(acts(out.clone()), vec![Mode(Own::AnnounceReady)]);
    assert!(logs(&out).starts_with("daemon ready after"), "{out:?}");
    on(&mut p, Input::Signal(TERM));
    assert_eq!(
        on(&mut p, Input::Ready(Ok(()))),
        vec![],
        "not once stopping"
    );
    let mut p = Policy::new(Settings {
        gated: true,
        ..settings(1)
    });
    p.start(t0());
    let out = acts(on(&mut p, Input::Spawned { pid: 7 }));
    assert_eq!(out, vec![StartGate { until: None }]);
}

#[test]
fn stale_leases_count_as_vanished_mains() {
    let limit = Duration::from_millis(600);
    let every = Duration::from_millis(150);
    let mut p = Policy::new(Settings {
        stale_after: Some(limit),
        ..settings(1)
    });
    p.start(t0());
    let out = acts(on(&mut p, Input::Spawned { pid: 7 }));
    assert_eq!(out, vec![Arm(Timer::StaleCheck, every)]);
    let hb = LeaseView::Held {
        pid: Some(9),
        heartbeat: true,
    };
    assert_eq!(peer(&mut p, 0, obs(Presence::Absent, hb)), vec![]);
    assert_eq!(
        on(&mut p, Input::Timer(Timer::StaleCheck)),
        vec![CheckStale]
    );
    let young = Some(LeaseAge {
        age: Duration::from_millis(100),
        heartbeat: true,
    });
    assert_eq!(
        on(&mut p, Input::LeaseAges(vec![young])),
        vec![Arm(Timer::StaleCheck, every)]
    );
    let no_heartbeat = Some(LeaseAge {
        age: Duration::from_secs(70),
        heartbeat: false,
    });
    assert_eq!(
        on(&mut p, Input::LeaseAges(vec![no_heartbeat])),
        vec![Arm(Timer::StaleCheck, every)],
        "a lease without a heartbeat never gets younger: not stale"
    );
    let old = Some(LeaseAge {
        age: Duration::from_millis(700),
        heartbeat: true,
    });
    let out = on(&mut p, Input::LeaseAges(vec![old]));
    assert!(logs(&out).contains("(heartbeat 700ms old"));
    assert_eq!(acts(out)[1..], stop(1));
    assert_eq!(
        on(&mut p, Input::Timer(Timer::StaleCheck)),
        vec![],
        "no more checks once stopping"
    );
}

#[test]
fn a_daemon_that_will_not_quit_gets_the_signal() {
    let mut p = running(Settings {
        ask: Ask::Quit(Sig::TERM),
        ..settings(1)
    });
    let out = acts(peer(&mut p, 0, obs(marker(Some(0)), LeaseView::None)));
    assert_eq!(
        out,
        vec![
            Settle(0),
            S(Step::Ask(Ask::Quit(Sig::TERM))),
            S(Step::ArmGrace(GRACE)),
            PostQuit,
            Settle(0)
        ]
    );
    assert_eq!(
        acts(on(&mut p, Input::QuitDone { answered: 0 })),
        vec![S(Step::Ask(Ask::Signal(Sig::TERM)))]
    );
    assert_eq!(on(&mut p, Input::QuitDone { answered: 1 }), vec![]);
}

#[test]
fn what_the_daemon_leaves_behind_is_stopped_after_the_marker() {
    let mut p = running(settings(1));
    on(&mut p, Input::Signal(TERM));
    let out = acts(on(
        &mut p,
        Input::ChildExited {
            status: ChildStatus::Exited(0),
            leftovers: true,
            before_stop: false,
        },
    ));
    assert!(matches!(out[0], Finish(Ending::Stopped { .. })), "{out:?}");
    assert_eq!(
        out[1..],
        [StopLeftovers(Sig::QUIT), Arm(Timer::Leftovers, GRACE)]
    );
    assert_eq!(
        acts(on(&mut p, Input::Timer(Timer::Leftovers))),
        vec![KillLeftovers]
    );
    assert_eq!(on(&mut p, Input::LeftoversGone), vec![Exit]);
}

#[test]
fn a_lease_without_heartbeat_is_named_once_under_stale_after() {
    let mut p = running(Settings {
        stale_after: Some(DELAY),
        ..settings(1)
    });
    let out = peer(&mut p, 0, obs(Presence::Absent, held()));
    assert!(logs(&out).contains("has no heartbeat"), "{out:?}");
    assert_eq!(peer(&mut p, 0, obs(Presence::Absent, held())), vec![]);
}
