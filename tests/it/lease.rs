//! The main's lease: a sidecar notices at once when the whole main container vanishes without a
//! marker. Mains run as PID 1 of real PID namespaces (`unshare --pid --fork`), and are killed
//! the way a container dies: SIGKILL of the namespace's init takes every process with it.

use crate::util::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Detection must be "at once"; a second leaves room for a loaded CI machine.
const AT_ONCE: Duration = Duration::from_secs(1);

fn s(p: &Path) -> String {
    path_str(p)
}

fn lease_of(done: &Path) -> PathBuf {
    let mut p = done.as_os_str().to_os_string();
    p.push(".lease");
    PathBuf::from(p)
}

/// `supervisor sidecar --wait-file DONE EXTRA... -- SIGNAL_ECHO` as PID 1 of its own namespace.
fn sidecar(done: &Path, extra: &[&str]) -> Proc {
    let mut args = vec!["sidecar".to_string(), "--wait-file".into(), s(done)];
    args.extend(extra.iter().map(|a| a.to_string()));
    args.push("--".into());
    args.extend(signal_echo());
    let mut p = start(sup_in_pid_ns(args));
    p.expect_line("ready", DEADLINE);
    p
}

/// A long-running `supervisor main` as PID 1 of its own namespace, once its command runs (so the
/// main has published its lease and removed a stale marker: both happen before the command
/// starts). Returns the unshare process and the namespace init (the supervisor) to kill.
fn main_in_ns(done: &Path, extra: &[&str]) -> (Proc, i32) {
    let mut args = vec!["main".to_string(), "--done-file".into(), s(done)];
    args.extend(extra.iter().map(|a| a.to_string()));
    args.extend(["--", "sh", "-c", "echo command-started; exec sleep 1000"].map(String::from));
    let lease = lease_of(done);
    let before = inode(&lease);
    let mut p = start(sup_in_pid_ns(args));
    let init = ns_init(&p);
    p.expect_line("command-started", DEADLINE);
    // Wait for THIS main's lease (a vanished main's may still be there).
    assert!(
        wait_until(DEADLINE, || {
            inode(&lease).is_some_and(|i| Some(i) != before)
                && std::fs::read_to_string(&lease).is_ok_and(|t| t.ends_with('\n'))
        }),
        "no lease from the main"
    );
    (p, init)
}

/// SIGKILLs the namespace init (the whole "container" dies) and waits for unshare to report it.
fn vanish(main: &mut Proc, init: i32) -> Instant {
    let t0 = Instant::now();
    kill(init, 9);
    let st = main
        .wait_timeout(DEADLINE)
        .expect("the namespace did not die");
    assert!(!st.success(), "{st:?}");
    t0
}

fn inode(p: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).ok().map(|m| m.ino())
}

/// Waits (bounded) for the sidecar to exit; returns what it did and how long after `t0` it
/// exited, which the test output reports under `what`.
fn exit_after(sc: &mut Proc, t0: Instant, what: &str) -> (Outcome, Duration) {
    let st = sc.wait_timeout(DEADLINE);
    let took = t0.elapsed();
    let o = sc.finish();
    eprintln!("{what}: {:.1}ms", ms(took));
    assert!(st.is_some(), "{o}");
    (o, took)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[test]
fn sigkilled_main_namespace_stops_the_sidecar_at_once() {
    let dir = tempdir();
    let done = dir.path().join("done");
    let lease = lease_of(&done);
    // Started before any main ever ran: it just waits.
    let mut sc = sidecar(&done, &["--grace", "5s"]);
    assert!(
        stays(Duration::from_millis(300), || sc
            .wait_timeout(Duration::ZERO)
            .is_none()),
        "sidecar without any main did not wait"
    );
    let (mut main, init) = main_in_ns(&done, &[]);
    assert!(
        wait_until(DEADLINE, || lock_waiters(&lease) >= 1),
        "the sidecar never blocked on the lease"
    );
    assert!(
        sc.wait_timeout(Duration::ZERO).is_none(),
        "sidecar ended early"
    );

    let t0 = Instant::now();
    kill(init, 9);
    sc.expect_line("got SIGTERM", DEADLINE);
    let to_signal = t0.elapsed();
    let st = sc.wait_timeout(DEADLINE);
    let to_exit = t0.elapsed();
    let o = sc.finish();
    eprintln!(
        "lease detection (SIGKILL of the main's namespace -> daemon got SIGTERM): {:.1}ms; -> sidecar exited: {:.1}ms",
        ms(to_signal),
        ms(to_exit)
    );
    assert!(st.is_some());
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(to_exit < AT_ONCE, "took {to_exit:?}{o}");
    assert!(
        o.stderr
            .contains("main container vanished without a marker (lock released"),
        "{o}"
    );
    assert!(!done.exists(), "a marker appeared");
    assert!(main.wait_timeout(DEADLINE).is_some());
}

#[test]
fn vanished_main_with_exit_code_main_gives_137() {
    let dir = tempdir();
    let done = dir.path().join("done");
    // The main first, the sidecar second.
    let (mut main, init) = main_in_ns(&done, &[]);
    let mut sc = sidecar(&done, &["--exit-code", "main"]);
    assert!(wait_until(DEADLINE, || lock_waiters(&lease_of(&done)) >= 1));
    let t0 = vanish(&mut main, init);
    let (o, took) = exit_after(
        &mut sc,
        t0,
        "lease detection with --exit-code main (SIGKILL -> sidecar exited)",
    );
    assert_eq!(o.code(), Some(137), "{o}");
    assert!(took < AT_ONCE, "{o}");
    assert!(o.stdout.contains("got SIGTERM"), "{o}");
}

#[test]
fn clean_end_is_never_taken_for_a_vanish() {
    // The marker is written before the lease is released: a sidecar woken by the release must
    // find it, every time.
    let dir = tempdir();
    for round in 0..5 {
        let done = dir.path().join(format!("done{round}"));
        let mut sc = sidecar(&done, &["--exit-code", "main"]);
        let gate = dir.path().join(format!("go{round}"));
        let mut main = start(sup_in_pid_ns([
            "main",
            "--done-file",
            &s(&done),
            "--",
            "sh",
            "-c",
            &format!("while [ ! -e '{}' ]; do sleep 0.01; done; exit 3", s(&gate)),
        ]));
        assert!(wait_until(DEADLINE, || lock_waiters(&lease_of(&done)) >= 1));
        std::fs::write(&gate, "").unwrap();
        let mo = main.finish();
        assert_eq!(mo.code(), Some(3), "{mo}");
        let o = sc.finish();
        assert_eq!(o.code(), Some(3), "round {round}{o}");
        assert!(!o.stderr.contains("vanished"), "round {round}{o}");
        assert!(!lease_of(&done).exists(), "lease left behind");
    }
}

#[test]
fn stale_heartbeat_counts_as_vanished() {
    let dir = tempdir();
    let done = dir.path().join("done");
    let (_main, init) = main_in_ns(&done, &["--heartbeat", "100ms"]);
    let lease = std::fs::read_to_string(lease_of(&done)).unwrap();
    assert!(lease.contains("\"heartbeat_ms\":100"), "{lease}");
    let mut sc = sidecar(&done, &["--stale-after", "600ms"]);
    // Alive and beating: never stale, well past --stale-after.
    assert!(
        stays(Duration::from_millis(1500), || sc
            .wait_timeout(Duration::ZERO)
            .is_none()),
        "sidecar stopped although the heartbeat ran"
    );
    // Frozen (the lock is still held): only the heartbeat can tell.
    let t0 = Instant::now();
    kill(init, 19); // SIGSTOP
    let (o, took) = exit_after(
        &mut sc,
        t0,
        "stale heartbeat detection (--heartbeat 100ms, --stale-after 600ms; main frozen -> sidecar exited)",
    );
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(o.stdout.contains("got SIGTERM"), "{o}");
    assert!(o.stderr.contains("heartbeat"), "{o}");
    assert!(took >= Duration::from_millis(450), "too early: {took:?}{o}");
    assert!(took < Duration::from_millis(600) + AT_ONCE, "{took:?}{o}");
    assert!(!done.exists());
    kill(init, 9);
}

#[test]
fn stale_after_does_not_apply_to_a_main_without_heartbeat() {
    // The flags live in two containers: a sidecar with --stale-after beside a main without
    // --heartbeat must not call a healthy main stale (its lease is never refreshed).
    let dir = tempdir();
    let done = dir.path().join("done");
    let (mut main, init) = main_in_ns(&done, &[]);
    let mut sc = sidecar(&done, &["--stale-after", "300ms"]);
    assert!(
        stays(Duration::from_millis(1000), || sc
            .wait_timeout(Duration::ZERO)
            .is_none()),
        "a main without heartbeat was taken for stale"
    );
    // The lock still tells.
    assert!(wait_until(DEADLINE, || lock_waiters(&lease_of(&done)) >= 1));
    let t0 = vanish(&mut main, init);
    let (o, took) = exit_after(&mut sc, t0, "lease detection, no heartbeat flags");
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(took < AT_ONCE, "{o}");
    assert!(o.stderr.contains("has no heartbeat"), "{o}");
    assert!(o.stderr.contains("(lock released"), "{o}");
}

#[test]
fn on_success_keeps_the_daemon_through_vanishes_until_a_zero_marker() {
    let dir = tempdir();
    let done = dir.path().join("done");
    let lease = lease_of(&done);
    let mut sc = sidecar(&done, &["--on", "success"]);
    let running = |sc: &mut Proc| {
        stays(Duration::from_millis(300), || {
            sc.wait_timeout(Duration::ZERO).is_none()
        })
    };

    // 1: the main container is SIGKILLed; the daemon stays for the restarted main.
    let (mut m1, init) = main_in_ns(&done, &[]);
    assert!(wait_until(DEADLINE, || lock_waiters(&lease) >= 1));
    vanish(&mut m1, init);
    assert!(
        running(&mut sc),
        "daemon stopped after a vanish with --on success"
    );

    // 2: a restarted main fails cleanly (marker exit 1, lease removed), once the sidecar waits
    // on its lease.
    let gate = dir.path().join("go");
    let mut m2 = start(sup([
        "main",
        "--done-file",
        &s(&done),
        "--",
        "sh",
        "-c",
        &format!("while [ ! -e '{}' ]; do sleep 0.01; done; exit 1", s(&gate)),
    ]));
    assert!(wait_until(DEADLINE, || lock_waiters(&lease) >= 1));
    let m2_inode = inode(&lease);
    std::fs::write(&gate, "").unwrap();
    let o = m2.finish();
    assert_eq!(o.code(), Some(1), "{o}");
    assert!(!lease.exists());
    assert!(
        running(&mut sc),
        "daemon stopped after a failure with --on success"
    );

    // 3: restarted again (its lease may reuse the removed lease's inode) and SIGKILLed again.
    let (mut m3, init) = main_in_ns(&done, &[]);
    eprintln!(
        "restarted main's lease inode {:?}, the previous one's {m2_inode:?}",
        inode(&lease)
    );
    assert!(
        !done.exists(),
        "the restarted main did not remove the stale marker"
    );
    assert!(wait_until(DEADLINE, || lock_waiters(&lease) >= 1));
    vanish(&mut m3, init);
    assert!(running(&mut sc));

    // 4: success at last.
    let o = run(sup(["main", "--done-file", &s(&done), "--", "true"]));
    assert_eq!(o.code(), Some(0), "{o}");
    sc.expect_line("got SIGTERM", DEADLINE);
    let o = sc.finish();
    assert_eq!(o.code(), Some(0), "{o}");
    assert_eq!(
        o.stderr.matches("main container vanished").count(),
        2,
        "each vanish is logged once{o}"
    );
}

#[test]
fn sidecar_started_after_the_main_vanished_notices_at_once() {
    let dir = tempdir();
    let done = dir.path().join("done");
    let (mut main, init) = main_in_ns(&done, &[]);
    vanish(&mut main, init);
    assert!(
        lease_of(&done).exists(),
        "a SIGKILLed main leaves its lease"
    );
    let t0 = Instant::now();
    let mut sc = start(sup_in_pid_ns([
        "sidecar",
        "--wait-file",
        &s(&done),
        "--",
        "sleep",
        "1000",
    ]));
    let (o, took) = exit_after(
        &mut sc,
        t0,
        "sidecar started after the vanish (start -> exit)",
    );
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(took < AT_ONCE, "{o}");
    assert!(o.stderr.contains("vanished"), "{o}");
}

#[test]
fn read_only_view_of_the_volume_still_sees_the_lease() {
    let dir = tempdir();
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    let done = shared.join("done");
    let probe = shared.join("rw-probe");
    // The sidecar's own mount namespace sees `shared` read-only, as with `readOnly: true`.
    let script = format!(
        "mount --bind '{d}' '{d}' && mount -o remount,bind,ro '{d}' && ! touch '{p}' 2>/dev/null && exec \"$0\" \"$@\"",
        d = s(&shared),
        p = s(&probe),
    );
    let mut args: Vec<String> = [
        "--mount",
        "--propagation",
        "private",
        "--pid",
        "--fork",
        "--kill-child",
        "--mount-proc",
        "--",
        "sh",
        "-c",
        &script,
        bin(),
        "sidecar",
        "--wait-file",
        &s(&done),
        "--",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    args.extend(signal_echo());
    let mut c = std::process::Command::new("unshare");
    sup_env(c.args(args));
    let mut sc = start(c);
    sc.expect_line("ready", DEADLINE);
    assert!(!probe.exists(), "the sidecar's view is writable");

    let (mut main, init) = main_in_ns(&done, &[]);
    assert!(
        wait_until(DEADLINE, || lock_waiters(&lease_of(&done)) >= 1),
        "the read-only sidecar never blocked on the lease"
    );
    let t0 = vanish(&mut main, init);
    sc.expect_line("got SIGTERM", DEADLINE);
    let (o, took) = exit_after(
        &mut sc,
        t0,
        "lease detection through a read-only view (SIGKILL -> sidecar exited)",
    );
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(took < AT_ONCE, "{o}");
    assert!(o.stderr.contains("vanished"), "{o}");
}

#[test]
fn the_command_does_not_inherit_the_lease() {
    let dir = tempdir();
    let done = dir.path().join("done");
    let o = run(sup([
        "main",
        "--done-file",
        &s(&done),
        "--",
        "sh",
        "-c",
        "ls -l /proc/$$/fd/",
    ]));
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(o.stdout.contains("/proc") || o.stdout.contains("->"), "{o}");
    assert!(
        !o.stdout.contains("lease"),
        "the lease fd leaked into the command{o}"
    );
}

#[test]
fn detection_time_over_repeated_vanishes() {
    let dir = tempdir();
    let mut times = Vec::new();
    for round in 0..5 {
        let done = dir.path().join(format!("done{round}"));
        // `sleep` dies at once on SIGTERM, so the time measured is the supervisor's.
        let mut sc = start(sup_in_pid_ns([
            "sidecar",
            "--wait-file",
            &s(&done),
            "--",
            "sleep",
            "1000",
        ]));
        let (mut main, init) = main_in_ns(&done, &[]);
        assert!(wait_until(DEADLINE, || lock_waiters(&lease_of(&done)) >= 1));
        let t0 = Instant::now();
        kill(init, 9);
        assert!(sc.wait_timeout(DEADLINE).is_some());
        times.push(t0.elapsed());
        let o = sc.finish();
        assert_eq!(o.code(), Some(0), "{o}");
        main.wait_timeout(DEADLINE);
    }
    times.sort();
    eprintln!(
        "lease detection, SIGKILL -> sidecar exit over {} rounds: min {:.1}ms, median {:.1}ms, max {:.1}ms",
        times.len(),
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1])
    );
    assert!(times[times.len() - 1] < AT_ONCE, "{times:?}");
}
