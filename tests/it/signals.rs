//! Every signal the kernel can deliver, sent to each mode, as PID 1 of a PID namespace and not:
//! the supervisor survives, forwards what it forwards (the real-time range included) to a child
//! that reports each one, and exits with the command's code.

use crate::util::*;
use std::process::Command;

/// The child that reports each signal as `got N;` (helpers/sigreport.py).
fn reporter() -> Vec<String> {
    python("sigreport.py", &[])
}

/// Never forwarded: KILL and STOP (uncatchable), the synchronous faults (they keep their
/// default action, so they would kill a supervisor that is not PID 1), CHLD (reaped).
const NOT_SENT: [i32; 10] = [9, 19, 4, 5, 6, 7, 8, 11, 31, 17];
/// Dropped by the supervisor (the C library's own): sent to prove it survives them.
const DROPPED: [i32; 2] = [32, 33];

fn command(mode: &str, pid1: bool, extra: &[&str], env: &[(&str, &str)]) -> Command {
    let mut args: Vec<String> = vec![mode.into()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push("--".into());
    args.extend(reporter());
    let mut c = if pid1 {
        sup_in_pid_ns(&args)
    } else {
        sup(&args)
    };
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// Starts the supervisor and returns it with the pid to signal (the namespace's init when PID 1).
fn started(c: Command, pid1: bool) -> (Proc, i32) {
    let mut p = start(c);
    p.expect_line("ready", DEADLINE);
    let target = if pid1 { ns_init(&p) } else { p.pid() };
    (p, target)
}

/// Sends every signal but `skip` and the stop requests, and checks each forwardable one arrives.
fn send_all(p: &mut Proc, target: i32, stop_requests: &[i32]) {
    for n in DROPPED {
        kill(target, n);
    }
    for n in 1..=64 {
        if NOT_SENT.contains(&n) || DROPPED.contains(&n) || stop_requests.contains(&n) {
            continue;
        }
        kill(target, n);
        p.expect_line(&format!("got {n};"), DEADLINE);
    }
}

fn every_signal(mode: &str, pid1: bool) {
    let (mut p, target) = started(command(mode, pid1, &[], &[]), pid1);
    send_all(&mut p, target, &[2, 15]);
    kill(target, 15);
    let o = p.finish();
    assert!(o.stdout.contains("got 15;"), "{o}");
    match mode {
        // TERM is forwarded; the command's code is the supervisor's.
        "main" => assert_eq!(o.code(), Some(7), "{o}"),
        // TERM to a sidecar stops its daemon (with TERM, the stop signal) and exits 0.
        _ => assert_eq!(o.code(), Some(0), "{o}"),
    }
    for n in DROPPED {
        assert!(
            !o.stdout.contains(&format!("got {n};")),
            "{n} was forwarded{o}"
        );
    }
}

#[test]
fn main_forwards_every_signal() {
    every_signal("main", false);
}

#[test]
fn main_as_pid1_forwards_every_signal() {
    every_signal("main", true);
}

#[test]
fn sidecar_forwards_every_signal() {
    every_signal("sidecar", false);
}

#[test]
fn sidecar_as_pid1_forwards_every_signal() {
    every_signal("sidecar", true);
}

/// More signals pending at once than one read of the signalfd takes (8): all are forwarded, in
/// order. The supervisor is stopped (SIGSTOP) while 20 real-time signals queue up for it, so
/// they are all waiting when it resumes.
#[test]
fn a_burst_of_pending_signals_is_forwarded_whole() {
    let (mut p, target) = started(command("main", false, &[], &[]), false);
    kill(target, 19);
    assert!(
        wait_until(DEADLINE, || stopped(target)),
        "the supervisor did not stop: (state, ppid) {:?}",
        stat(target)
    );
    for n in 35..=54 {
        kill(target, n);
    }
    kill(target, 18);
    for n in 35..=54 {
        p.expect_line(&format!("got {n};"), DEADLINE);
    }
    kill(target, 15);
    let o = p.finish();
    assert_eq!(o.code(), Some(7), "{o}");
}

/// The same with a thread running: a peer's lease held, so the supervisor waits on it in a thread
/// of its own. The C library unblocks its signals (33 and 34, RTMIN) in the process's first
/// thread's creator; left so, 34 killed a supervisor that is not PID 1 and vanished in one that is.
fn every_signal_with_a_thread(mode: &str, pid1: bool) {
    let dir = tempdir();
    let peer_marker = path_str(&dir.path().join("peer.done"));
    // The peer: a sidecar for a main to require, a main for a sidecar to wait for.
    let peer_mode = if mode == "main" { "sidecar" } else { "main" };
    let mut peer = start(sup([
        peer_mode,
        "--done-file",
        &peer_marker,
        "--",
        "sleep",
        "1000",
    ]));
    peer.expect_stderr("started sleep", DEADLINE);
    let waits = if mode == "main" {
        "--requires"
    } else {
        "--wait-file"
    };
    let (mut p, target) = started(command(mode, pid1, &[waits, &peer_marker], &[]), pid1);
    p.expect_stderr("started python3", DEADLINE);
    send_all(&mut p, target, &[2, 15]);
    kill(target, 15);
    let o = p.finish();
    assert!(o.stdout.contains("got 15;"), "{o}");
    let code = if mode == "main" { 7 } else { 0 };
    assert_eq!(o.code(), Some(code), "{o}");
    drop(peer);
}

#[test]
fn main_with_a_thread_forwards_every_signal() {
    every_signal_with_a_thread("main", false);
}

#[test]
fn main_as_pid1_with_a_thread_forwards_every_signal() {
    every_signal_with_a_thread("main", true);
}

#[test]
fn sidecar_with_a_thread_forwards_every_signal() {
    every_signal_with_a_thread("sidecar", false);
}

#[test]
fn sidecar_as_pid1_with_a_thread_forwards_every_signal() {
    every_signal_with_a_thread("sidecar", true);
}

/// With `--term-signals RTMIN+3` (a systemd image's STOPSIGNAL), TERM and INT are plain signals
/// forwarded like any other, and 37 is the request to stop.
fn rtmin3_stops(mode: &str, pid1: bool) {
    let dir = tempdir();
    let done = dir.path().join("done");
    let mut extra = vec!["--term-signals", "RTMIN+3"];
    let d = path_str(&done);
    extra.extend(["--done-file", &d]);
    // The sidecar stops its daemon with USR1, so that TERM can be seen forwarded as it is.
    let exit_on = if mode == "main" { "37" } else { "10" };
    if mode == "sidecar" {
        extra.extend(["--stop-signal", "USR1"]);
    }
    let c = command(mode, pid1, &extra, &[("EXIT_ON", exit_on)]);
    let (mut p, target) = started(c, pid1);
    for n in [2, 15, 34, 64] {
        kill(target, n);
        p.expect_line(&format!("got {n};"), DEADLINE);
    }
    kill(target, 37);
    let o = p.finish();
    let marker = read_json(&done);
    if mode == "main" {
        assert_eq!(o.code(), Some(7), "{o}");
        assert!(
            o.stderr.contains("received RTMIN+3, forwarded to python3"),
            "{o}"
        );
        assert_eq!(marker["reason"], "stopped", "{marker}");
        assert_eq!(marker["stop_request"], "RTMIN+3", "{marker}");
    } else {
        // The daemon got the stop signal, not RTMIN+3.
        assert!(!o.stdout.contains("got 37;"), "{o}");
        assert_eq!(o.code(), Some(0), "{o}");
        assert!(
            o.stderr.contains("stopped in") && o.stderr.contains("on RTMIN+3"),
            "{o}"
        );
        assert_eq!(marker["reason"], "stopped", "{marker}");
        assert_eq!(marker["role"], "sidecar", "{marker}");
    }
}

#[test]
fn main_takes_the_configured_stop_signal() {
    rtmin3_stops("main", false);
    rtmin3_stops("main", true);
}

#[test]
fn sidecar_takes_the_configured_stop_signal() {
    rtmin3_stops("sidecar", false);
    rtmin3_stops("sidecar", true);
}

/// A child killed by a real-time signal: its status must not be lost (nix's waitpid turned it
/// into an error after reaping), so the supervisor exits 128+N instead of hanging.
#[test]
fn a_child_killed_by_a_real_time_signal_gives_128_plus_n() {
    for pid1 in [false, true] {
        let args = ["main", "--", "sh", "-c", "echo ready; exec sleep 100"];
        let mut p = start(if pid1 { sup_in_pid_ns(args) } else { sup(args) });
        p.expect_line("ready", DEADLINE);
        let target = if pid1 { ns_init(&p) } else { p.pid() };
        // sleep is exec'd only after `echo`; wait until the child really is sleep.
        assert!(wait_until(DEADLINE, || children(target)
            .iter()
            .any(|c| std::fs::read_to_string(format!("/proc/{c}/comm"))
                .is_ok_and(|s| s.trim() == "sleep"))));
        kill(target, 40);
        let o = p.finish();
        assert_eq!(o.code(), Some(128 + 40), "{o}");
        assert!(o.stderr.contains("was killed by signal RTMIN+6"), "{o}");
    }
}
