//! The pod's lifecycle as the kubelet and the kernel drive it (issue #22, items 1, 5, 7): a pod
//! deletion is no dependency failure, no signal is dropped or invented, faults a process sends are
//! survived and forwarded, nothing CMD leaves behind outlives the supervisor, and the supervisor
//! pins no working directory.

use crate::util::*;
use std::path::Path;

/// A sidecar of the repro in issue #22: waits for the main's marker, leaves one of its own.
fn sidecar_of(main_done: &Path, own_done: &Path) -> Proc {
    let mut p = start(sup([
        "sidecar",
        "--wait-file",
        &path_str(main_done),
        "--done-file",
        &path_str(own_done),
        "--",
        "sh",
        "-c",
        "echo ready; exec sleep 1000",
    ]));
    p.expect_line("ready", DEADLINE);
    p
}

/// A main that requires it and takes 0.3 s to stop on TERM (exit 143).
fn main_requiring(main_done: &Path, dep: &Path) -> Proc {
    let mut p = start(sup([
        "main",
        "--done-file",
        &path_str(main_done),
        "--requires",
        &path_str(dep),
        "--",
        "sh",
        "-c",
        "trap 'sleep 0.3; exit 143' TERM; echo ready; while :; do sleep 0.05; done",
    ]));
    p.expect_line("ready", DEADLINE);
    p
}

#[test]
fn a_pod_deletion_that_reaches_the_sidecar_first_is_no_dependency_failure() {
    let d = tempdir();
    let (m, s) = (d.path().join("main.done"), d.path().join("dind.done"));
    let mut sc = sidecar_of(&m, &s);
    let mut main = main_requiring(&m, &s);
    assert!(wait_until(DEADLINE, || lock_waiters(&lease(&s)) >= 1));
    // The kubelet's TERM reaches the sidecar first; the main's lands after the sidecar is gone.
    sc.signal(15);
    let so = sc.finish();
    assert_eq!(so.code(), Some(0), "{so}");
    assert_eq!(read_json(&s)["stop_request"], "TERM");
    main.expect_stderr("the pod is stopping", DEADLINE);
    main.signal(15);
    let mo = main.finish();
    assert_eq!(mo.code(), Some(143), "CMD's own code, not 122: {mo}");
    assert!(!mo.stderr.contains("ERROR"), "nobody is paged: {mo}");
    let marker = read_json(&m);
    assert_eq!(marker["reason"], "stopped", "{marker}");
    assert_eq!(marker["stop_request"], "TERM", "{marker}");
    assert_eq!(marker["dependency"]["path"], path_str(&s), "{marker}");
}

#[test]
fn a_pod_deletion_that_reaches_the_main_first_ends_the_same_way() {
    let d = tempdir();
    let (m, s) = (d.path().join("main.done"), d.path().join("dind.done"));
    let mut sc = sidecar_of(&m, &s);
    let mut main = main_requiring(&m, &s);
    assert!(wait_until(DEADLINE, || lock_waiters(&lease(&s)) >= 1));
    main.signal(15);
    main.expect_stderr("received TERM, forwarded", DEADLINE);
    sc.signal(15);
    let mo = main.finish();
    assert_eq!(mo.code(), Some(143), "{mo}");
    let marker = read_json(&m);
    assert_eq!(
        (marker["reason"].as_str(), marker["stop_request"].as_str()),
        (Some("stopped"), Some("TERM")),
        "{marker}"
    );
    assert_eq!(sc.finish().code(), Some(0));
}

/// The child that reports each signal it receives (`got N;`), exiting 7 on $EXIT_ON.
fn reporter(exit_on: i32) -> Vec<String> {
    let mut v = vec!["env".to_string(), format!("EXIT_ON={exit_on}")];
    v.extend(python("sigreport.py", &[]));
    v
}

#[test]
fn no_signal_is_dropped_during_the_stop_delay() {
    for mode in ["main", "sidecar"] {
        let mut args = vec![mode.to_string(), "--stop-delay=1s".into()];
        if mode == "sidecar" {
            // So that the stop itself shows as TERM, like main's forwarded request.
            args.push("--stop-signal=TERM".into());
        }
        args.push("--".into());
        args.extend(reporter(12));
        let mut p = start(sup(&args));
        p.expect_line("ready", DEADLINE);
        p.signal(15);
        p.expect_stderr("keeps running for --stop-delay", DEADLINE);
        p.signal(2);
        p.expect_stderr("received INT during --stop-delay", DEADLINE);
        // Not a term signal: forwarded at once, before the delay ends.
        p.signal(10);
        p.expect_line("got 10;", DEADLINE);
        assert!(
            !p.stdout_so_far().contains("got 15;"),
            "{mode}: before the delay"
        );
        // After the delay, the stop signal and the one held. (Pending standard signals reach a
        // process lowest number first, so their order is the kernel's, not ours.)
        p.expect_line("got ", DEADLINE);
        p.expect_line("got ", DEADLINE);
        let seen = p.stdout_so_far();
        assert!(
            seen.contains("got 15;") && seen.contains("got 2;"),
            "{mode}: {seen}"
        );
        p.signal(12);
        let o = p.finish();
        let expected = if mode == "main" { 7 } else { 0 };
        assert_eq!(o.code(), Some(expected), "{mode}: {o}");
    }
}

#[test]
fn a_stop_signal_brings_no_sigcont_unless_a_process_is_stopped() {
    let mut p = start(sup(["main", "--"]
        .into_iter()
        .map(String::from)
        .chain(reporter(12))));
    p.expect_line("ready", DEADLINE);
    p.signal(15);
    p.expect_line("got 15;", DEADLINE);
    p.signal(12);
    let o = p.finish();
    assert_eq!(o.code(), Some(7), "{o}");
    assert!(!o.stdout.contains("got 18;"), "a SIGCONT nobody sent: {o}");
}

#[test]
fn faults_a_process_sends_are_forwarded_and_survived_when_not_pid_1() {
    for mode in ["main", "sidecar"] {
        let mut args = vec![mode.to_string(), "--".into()];
        args.extend(reporter(15));
        let mut p = start(sup(&args));
        p.expect_line("ready", DEADLINE);
        // Twice each: a second SEGV or BUS once killed a supervisor that was not PID 1.
        for n in [4, 5, 6, 7, 8, 11, 31, 11, 7] {
            p.signal(n);
            p.expect_line(&format!("got {n};"), DEADLINE);
        }
        p.signal(15);
        let o = p.finish();
        let expected = if mode == "main" { 7 } else { 0 };
        assert_eq!(o.code(), Some(expected), "{mode}: {o}");
    }
}

/// The supervisor run under tests/it/helpers/subreaper.py, which reports what re-parented to it.
fn under_subreaper(args: &[&str]) -> Proc {
    let mut argv = python("subreaper.py", &[]);
    argv.push(bin().to_string());
    argv.extend(args.iter().map(|a| a.to_string()));
    let mut c = std::process::Command::new(&argv[0]);
    c.args(&argv[1..]);
    start(c)
}

#[test]
fn what_cmd_leaves_behind_is_stopped_and_reaped_after_the_marker() {
    let d = tempdir();
    let done = d.path().join("done");
    // One leftover that stops on TERM, one that ignores it (CMD exits only once it does), one
    // already dying.
    let armed = d.path().join("armed");
    let script = format!(
        "sleep 1000 & (trap '' TERM; touch {a}; exec sleep 1000) & \
         while [ ! -e {a} ]; do sleep 0.01; done; (sleep 0.05) & echo ready; exit 3",
        a = path_str(&armed)
    );
    let mut p = under_subreaper(&[
        "main",
        "--grace=2s",
        "--done-file",
        &path_str(&done),
        "--",
        "sh",
        "-c",
        &script,
    ]);
    p.expect_line("ready", DEADLINE);
    // The marker does not wait for the leftovers.
    assert!(wait_until(DEADLINE, || done.exists()));
    assert!(p.stdout_so_far().lines().all(|l| !l.starts_with("left:")));
    let o = p.finish();
    assert_eq!(o.code(), Some(3), "{o}");
    assert!(o.stdout.contains("left: none"), "{o}");
    assert!(
        o.stderr.contains("left processes running: sent them TERM"),
        "{o}"
    );
    assert!(
        o.stderr.contains("SIGKILLed"),
        "the one that ignored TERM: {o}"
    );
    assert_eq!(read_json(&done)["exit_code"], 3);
}

#[test]
fn the_supervisor_moves_to_root_once_cmd_runs_unless_a_relative_path_needs_it() {
    let d = tempdir();
    let done = d.path().join("done");
    let required = path_str(&d.path().join("dep.done"));
    for (required, stays) in [(required.as_str(), false), ("dep.done", true)] {
        let mut c = sup([
            "main",
            "--done-file",
            "done",
            "--requires",
            required,
            "--",
            "sh",
            "-c",
            "echo ready; exec sleep 1000",
        ]);
        c.current_dir(d.path());
        let mut p = start(c);
        // The start line comes after the move: the child's own "ready" may come before it.
        p.expect_stderr("started sh -c", DEADLINE);
        let cwd = std::fs::read_link(format!("/proc/{}/cwd", p.pid())).unwrap();
        let want = if stays { d.path() } else { Path::new("/") };
        assert_eq!(cwd, want, "--requires {required}");
        p.signal(15);
        assert_eq!(p.finish().code(), Some(143));
        // A relative marker path is resolved once, at the start: it lands where it should.
        assert!(done.exists(), "--requires {required}");
        std::fs::remove_file(&done).unwrap();
    }
}

#[test]
fn a_sidecar_that_ended_before_cmd_is_awaited_back_within_the_wait_timeout() {
    let d = tempdir();
    let (m, s, ready) = (
        d.path().join("main.done"),
        d.path().join("redis.done"),
        d.path().join("redis.ready"),
    );
    // What a sidecar that died before the main started leaves: its marker and its ready file.
    std::fs::write(&s, b"{\"exit_code\":1,\"reason\":\"exited\"}\n").unwrap();
    std::fs::write(&ready, b"{}\n").unwrap();
    let main_cmd = |timeout: &str| {
        sup([
            "main",
            "--done-file",
            &path_str(&m),
            "--requires",
            &path_str(&s),
            "--wait-for",
            &format!("file:{}", path_str(&ready)),
            "--wait-timeout",
            timeout,
            "--",
            "sh",
            "-c",
            "echo started; exit 0",
        ])
    };
    let mut main = start(main_cmd("20s"));
    main.expect_stderr("waiting up to --wait-timeout for it to come back", DEADLINE);
    // Its container restarts: the new supervisor clears the old files and announces itself.
    let mut sc = start(sup([
        "sidecar",
        "--wait-file",
        &path_str(&m),
        "--done-file",
        &path_str(&s),
        "--ready-when",
        "tcp://127.0.0.1:1",
        "--ready-file",
        &path_str(&ready),
        "--",
        "sleep",
        "1000",
    ]));
    main.expect_stderr("is back; checking readiness again", DEADLINE);
    assert!(
        !main.stdout_so_far().contains("started"),
        "CMD must wait for the sidecar's readiness again"
    );
    // Ready again (the test writes the ready file the daemon's probe would have).
    std::fs::write(&ready, b"{}\n").unwrap();
    main.expect_line("started", DEADLINE);
    assert_eq!(main.finish().code(), Some(0));
    assert_eq!(sc.finish().code(), Some(0));
    // Never back: the deadline ends the run with the reason that is known.
    std::fs::write(&s, b"{\"exit_code\":1,\"reason\":\"exited\"}\n").unwrap();
    let o = run(main_cmd("300ms"));
    assert_eq!(o.code(), Some(122), "{o}");
    assert!(!o.stdout.contains("started"), "{o}");
    assert_eq!(read_json(&m)["reason"], "dependency-failed");
}

#[test]
fn without_a_gate_a_sidecar_that_ended_before_cmd_fails_the_run_at_once() {
    let d = tempdir();
    let (m, s) = (d.path().join("main.done"), d.path().join("redis.done"));
    std::fs::write(&s, b"{\"exit_code\":1,\"reason\":\"exited\"}\n").unwrap();
    let o = run(sup([
        "main",
        "--done-file",
        &path_str(&m),
        "--requires",
        &path_str(&s),
        "--",
        "sh",
        "-c",
        "echo started",
    ]));
    assert_eq!(o.code(), Some(122), "{o}");
    assert!(!o.stdout.contains("started"), "CMD never runs: {o}");
}
