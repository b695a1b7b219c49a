//! Every transition of `sidecar`'s policy, in microseconds.

use super::*;
use crate::modes::Action::{AnnounceReady, Arm, Finish, Forward, Log, Settle, Stop as S};

const GRACE: Duration = Duration::from_secs(10);
const DELAY: Duration = Duration::from_secs(5);
const TERM: Sig = Sig::TERM;

fn settings(waits: usize) -> Settings {
    Settings {
        command: "dockerd".into(),
        on: OnPolicy::Any,
        exit: ExitPolicy::Zero,
        grace: GRACE,
        stop_delay: Duration::ZERO,
        term_signals: SigSet::empty().with(Sig::TERM).with(Sig::INT),
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
    }
}

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

fn marker(code: Option<i64>) -> Presence {
    Presence::Present(Seen {
        exit_code: code,
        reason: Some("exited".into()),
        program: None,
        command_exit_code: code,
    })
}

fn obs(marker: Presence, lease: LeaseView) -> Observation {
    Observation { marker, lease }
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

fn end(p: &mut Policy, st: ChildStatus, leftovers: bool) -> Ending {
    match acts(p.on_daemon_exit(st, leftovers, Some(Duration::from_millis(7)))).as_slice() {
        [Finish(e)] => e.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_marker_without_a_live_lease_counts_and_stops_the_daemon_once() {
    let mut p = Policy::new(settings(1));
    let out = p.on_peer(0, obs(marker(Some(3)), LeaseView::None), false);
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
        p.on_peer(0, obs(marker(Some(3)), LeaseView::None), false),
        vec![]
    );
    let st = ChildStatus::Exited(0);
    assert_eq!(
        end(&mut p, st, false),
        Ending::Stopped {
            cause: StopCause::MainsDone { main_code: Some(3) },
            status: st,
            exit: StoppedExit::Zero,
            took: Duration::from_millis(7)
        }
    );
}

#[test]
fn a_marker_counts_only_once_its_lease_is_released() {
    let mut p = Policy::new(settings(1));
    let out = p.on_peer(0, obs(marker(Some(0)), held()), false);
    assert_eq!(acts(out.clone()), vec![]);
    assert!(
        logs(&out).contains(
            "appeared while its main still holds the lease /shared/m0.done.lease (pid 1)"
        )
    );
    assert_eq!(
        p.on_peer(0, obs(marker(Some(0)), held()), false),
        vec![],
        "said once"
    );
    let out = acts(p.on_peer(0, obs(marker(Some(0)), LeaseView::None), true));
    assert_eq!(out[0], Settle(0));
    assert_eq!(out[1..], stop(1));
}

#[test]
fn every_marker_must_arrive() {
    let mut p = Policy::new(settings(2));
    assert_eq!(
        acts(p.on_peer(1, obs(marker(Some(0)), LeaseView::None), false)),
        vec![Settle(1)]
    );
    assert_eq!(p.slots(), [Slot::Pending, Slot::Done(Some(0))]);
    let out = acts(p.on_peer(0, obs(marker(Some(4)), LeaseView::None), false));
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
        let mut p = Policy::new(Settings {
            exit: ExitPolicy::Main,
            ..settings(1)
        });
        let out = p.on_peer(0, obs(Presence::Absent, lease), released);
        assert!(
            logs(&out).contains(&format!("vanished without a marker ({how}")),
            "{out:?}"
        );
        assert_eq!(acts(out)[1..], stop(1));
        let e = end(&mut p, ChildStatus::Exited(0), false);
        assert_eq!(crate::exit::ending_code(&e), 137, "{e:?}");
    }
    // Not started yet, or alive: nothing.
    let mut p = Policy::new(settings(1));
    assert_eq!(
        p.on_peer(0, obs(Presence::Absent, LeaseView::None), false),
        vec![]
    );
    assert_eq!(p.on_peer(0, obs(Presence::Absent, held()), false), vec![]);
}

#[test]
fn on_success_waits_through_failures_and_vanishes() {
    let mut p = Policy::new(Settings {
        on: OnPolicy::Success,
        exit: ExitPolicy::Main,
        ..settings(1)
    });
    let out = p.on_peer(0, obs(marker(Some(1)), LeaseView::None), true);
    assert_eq!(acts(out.clone()), vec![]);
    assert!(logs(&out).contains("says the main failed (exited, exit code 1); --on success keeps"));
    assert_eq!(
        p.on_peer(0, obs(marker(Some(1)), LeaseView::None), false),
        vec![],
        "said once"
    );
    let out = p.on_peer(0, obs(Presence::Absent, LeaseView::Free), true);
    assert!(logs(&out).contains("--on success keeps the daemon running for the restarted main"));
    assert_eq!(acts(out), vec![]);
    assert_eq!(
        p.on_peer(0, obs(Presence::Absent, LeaseView::Free), false),
        vec![],
        "said once"
    );
    // A new main lives: the next vanish is news again.
    assert_eq!(p.on_peer(0, obs(Presence::Absent, held()), false), vec![]);
    assert_eq!(
        logs(&p.on_peer(0, obs(Presence::Absent, LeaseView::None), true))
            .lines()
            .count(),
        1
    );
    // A marker without a code counts as success.
    let out = acts(p.on_peer(0, obs(marker(None), LeaseView::None), true));
    assert_eq!(out[1..], stop(1));
    assert_eq!(
        crate::exit::ending_code(&end(&mut p, ChildStatus::Exited(0), false)),
        0
    );
}

#[test]
fn a_directory_is_not_a_marker() {
    let mut p = Policy::new(settings(1));
    let out = p.on_peer(0, obs(Presence::NotAFile, LeaseView::None), false);
    assert_eq!(acts(out.clone()), vec![]);
    assert!(logs(&out).contains("is a directory, not a marker"));
}

#[test]
fn a_term_signal_stops_the_daemon_and_exits_zero_whatever_the_policy() {
    let mut p = Policy::new(Settings {
        exit: ExitPolicy::Daemon,
        ..settings(1)
    });
    let out = p.on(Event::Signal(TERM));
    assert_eq!(acts(out.clone()), stop(1));
    assert!(logs(&out).contains("received TERM: stopping dockerd"));
    assert_eq!(acts(p.on(Event::Signal(TERM))), vec![], "asked once");
    assert_eq!(acts(p.on(Event::Signal(Sig::HUP))), vec![Forward(Sig::HUP)]);
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
    let mut p = Policy::new(settings(0));
    assert_eq!(p.start(), vec![]);
    assert_eq!(
        acts(p.on(Event::Signal(Sig::USR1))),
        vec![Forward(Sig::USR1)]
    );
    assert_eq!(acts(p.on(Event::Signal(Sig::INT))), stop(0));
}

#[test]
fn a_stop_delay_holds_a_request_but_never_the_mains_end() {
    let mut p = Policy::new(Settings {
        stop_delay: DELAY,
        ..settings(1)
    });
    assert_eq!(
        acts(p.on(Event::Signal(TERM))),
        vec![S(Step::ArmDelay(DELAY))]
    );
    assert_eq!(acts(p.on(Event::Signal(TERM))), vec![]);
    // The main finishes during the delay: stop now.
    let out = acts(p.on_peer(0, obs(marker(Some(0)), LeaseView::None), true));
    assert_eq!(out[1..], stop(1));
    assert_eq!(
        acts(p.on(Event::Timer(Timer::StopDelay))),
        vec![],
        "the delay is void"
    );
    // Without a marker the delay runs out.
    let mut p = Policy::new(Settings {
        stop_delay: DELAY,
        ..settings(1)
    });
    p.on(Event::Signal(TERM));
    assert_eq!(acts(p.on(Event::Timer(Timer::StopDelay))), stop(1));
}

#[test]
fn the_grace_period_ends_in_sigkill() {
    let mut p = Policy::new(settings(1));
    p.on(Event::Signal(TERM));
    let out = p.on(Event::Timer(Timer::Grace));
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
fn a_daemon_that_ends_on_its_own_is_a_failure_the_pod_sees() {
    let mut p = Policy::new(settings(1));
    let out = p.on_daemon_exit(ChildStatus::Exited(1), false, None);
    assert!(logs(&out).contains("dockerd exited with code 1 on its own before the main was done"));
    assert_eq!(acts(out), vec![Finish(Ending::Exited(1))]);
    let mut p = Policy::new(settings(1));
    assert_eq!(
        end(&mut p, ChildStatus::Signaled(Sig::KILL), false),
        Ending::Signaled(Sig::KILL)
    );
    // Exit 0 leaving processes behind: it daemonized.
    let mut p = Policy::new(settings(1));
    assert_eq!(
        end(&mut p, ChildStatus::Exited(0), true),
        Ending::Daemonized
    );
    // A one-shot sidecar that leaves nothing behind: its 0.
    let mut p = Policy::new(settings(1));
    assert_eq!(
        end(&mut p, ChildStatus::Exited(0), false),
        Ending::Exited(0)
    );
    // A non-zero exit that leaves processes is still its own failure.
    let mut p = Policy::new(settings(1));
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
        let mut p = Policy::new(Settings {
            exit: policy,
            ..settings(1)
        });
        p.on_peer(0, obs(marker(Some(3)), LeaseView::None), false);
        let e = end(&mut p, ChildStatus::Signaled(Sig::QUIT), false);
        assert_eq!(crate::exit::ending_code(&e), code, "{policy:?}");
    }
}

#[test]
fn readiness_is_announced_once_running() {
    let mut p = Policy::new(settings(1));
    assert_eq!(p.on(Event::Ready(Ok(()))), vec![AnnounceReady]);
}

#[test]
fn stale_leases_count_as_vanished_mains() {
    let limit = Duration::from_millis(600);
    let mut p = Policy::new(Settings {
        stale_after: Some(limit),
        ..settings(1)
    });
    assert_eq!(
        p.start(),
        vec![Arm(Timer::StaleCheck, Duration::from_millis(150))]
    );
    let hb = LeaseView::Held {
        pid: Some(9),
        heartbeat: true,
    };
    assert_eq!(p.on_peer(0, obs(Presence::Absent, hb), false), vec![]);
    assert_eq!(
        p.stale_checked(),
        vec![Arm(Timer::StaleCheck, Duration::from_millis(150))]
    );
    let out = p.on_stale(0, Duration::from_millis(700));
    assert!(logs(&out).contains("(heartbeat 700ms old"));
    assert_eq!(acts(out)[1..], stop(1));
    assert_eq!(p.stale_checked(), vec![], "no more checks once stopping");
}

#[test]
fn a_lease_without_heartbeat_is_named_once_under_stale_after() {
    let mut p = Policy::new(Settings {
        stale_after: Some(DELAY),
        ..settings(1)
    });
    let out = p.on_peer(0, obs(Presence::Absent, held()), false);
    assert!(logs(&out).contains("has no heartbeat"), "{out:?}");
    assert_eq!(p.on_peer(0, obs(Presence::Absent, held()), false), vec![]);
}
