//! The promises an adversarial tester broke (issue #12), each kept: one main per lease, a marker
//! counts only when its writer is done, a daemonizing daemon is a failure, a stopped daemon still
//! stops gracefully, files are checked before anything starts, bad environment values name their
//! variable, and lists in the environment can hold a comma.

use crate::util::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The child that reports each signal as `got N;` (helpers/sigreport.py).
fn reporter() -> Vec<String> {
    python("sigreport.py", &[])
}

fn args(head: &[&str], cmd: Vec<String>) -> Vec<String> {
    let mut a: Vec<String> = head.iter().map(|s| s.to_string()).collect();
    a.push("--".into());
    a.extend(cmd);
    a
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn ready_pid(line: &str) -> i32 {
    line.trim_start_matches("ready ")
        .trim_end_matches(';')
        .parse()
        .unwrap()
}

#[test]
fn a_second_main_for_the_same_marker_refuses_to_start() {
    let dir = tempdir();
    let done = path_str(&dir.path().join("done"));
    let mut first = start(sup(args(&["main", "--done-file", &done], reporter())));
    first.expect_line("ready", DEADLINE);
    let before = listing(dir.path());
    let ran = dir.path().join("ran");
    let second = run(sup([
        "main",
        "--done-file",
        &done,
        "--",
        "touch",
        &path_str(&ran),
    ]));
    assert_eq!(second.code(), Some(125), "{second}");
    let lines: Vec<&str> = second.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line{second}");
    assert!(lines[0].contains(&format!("{done}.lease")), "{second}");
    assert!(
        lines[0].contains(&format!("pid {}", first.pid())),
        "names the holder{second}"
    );
    assert!(!ran.exists(), "the command ran{second}");
    assert_eq!(listing(dir.path()), before, "something was written");
    // The first main is untouched: it ends normally and writes its marker.
    first.signal(15);
    let o = first.finish();
    assert_eq!(o.code(), Some(7), "{o}");
    assert_eq!(read_json(Path::new(&done))["exit_code"], 7);
}

#[test]
fn two_mains_started_at_once_never_both_run() {
    for round in 0..15 {
        let dir = tempdir();
        let done = path_str(&dir.path().join("done"));
        let cmd = [
            "main",
            "--done-file",
            &done,
            "--",
            "sh",
            "-c",
            "echo started; exec sleep 100",
        ];
        let mut mains = [start(sup(cmd)), start(sup(cmd))];
        // Exactly one of them runs its command; the other refuses with 125.
        let mut refused = None;
        assert!(
            wait_until(DEADLINE, || {
                refused = (0..2).find(|&i| mains[i].wait_timeout(Duration::ZERO).is_some());
                refused.is_some()
            }),
            "round {round}: neither refused"
        );
        let (loser, winner) = match refused {
            Some(0) => (0, 1),
            _ => (1, 0),
        };
        let o = mains[loser].finish();
        assert_eq!(o.code(), Some(125), "round {round}{o}");
        mains[winner].expect_line("started", DEADLINE);
        assert!(
            mains[winner].wait_timeout(Duration::ZERO).is_none(),
            "round {round}"
        );
    }
}

/// A marker someone drops while the main still runs does not stop the sidecar; the real one does.
#[test]
fn a_forged_marker_does_not_count_while_the_main_holds_its_lease() {
    let dir = tempdir();
    let done = dir.path().join("done");
    let gate = dir.path().join("gate");
    let main_cmd = format!(
        "while [ ! -e '{}' ]; do sleep 0.01; done; exit 4",
        path_str(&gate)
    );
    let mut main = start(sup([
        "main",
        "--done-file",
        &path_str(&done),
        "--",
        "sh",
        "-c",
        &main_cmd,
    ]));
    let lease = PathBuf::from(format!("{}.lease", path_str(&done)));
    assert!(wait_until(DEADLINE, || lease.exists()));
    let mut sc = start(sup(args(
        &["sidecar", "--wait-file", &path_str(&done)],
        reporter(),
    )));
    let daemon = ready_pid(&sc.expect_line("ready", DEADLINE));
    assert!(
        wait_until(DEADLINE, || lock_waiters(&lease) >= 1),
        "the sidecar waits on the lease"
    );
    std::fs::write(&done, "{\"exit_code\":0}\n").unwrap();
    assert!(
        stays(Duration::from_millis(300), || alive(daemon)),
        "the forged marker stopped the daemon"
    );
    // A sidecar that starts now sees the forged marker and the live lease: it says so and waits.
    let mut late = start(sup(args(
        &["sidecar", "--wait-file", &path_str(&done)],
        reporter(),
    )));
    late.expect_line("ready", DEADLINE);
    std::fs::write(&gate, "").unwrap();
    assert_eq!(main.finish().code(), Some(4));
    let outcomes = [sc.finish(), late.finish()];
    for o in &outcomes {
        assert_eq!(o.code(), Some(0), "{o}");
        assert!(
            o.stderr.contains("main ended (exited, exit code 4)"),
            "acted on the forged marker{o}"
        );
        assert_eq!(o.stdout.matches("got 15;").count(), 1, "{o}");
    }
    let o = &outcomes[1];
    assert!(
        o.stderr
            .contains("appeared while its main still holds the lease"),
        "{o}"
    );
}

#[test]
fn a_daemon_that_daemonizes_fails_the_sidecar() {
    let dir = tempdir();
    let port = free_port().to_string();
    let pidfile = dir.path().join("redis.pid");
    let o = run(sup([
        "sidecar",
        "--wait-file",
        &path_str(&dir.path().join("done")),
        "--",
        "redis-server",
        "--daemonize",
        "yes",
        "--port",
        &port,
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--dir",
        &path_str(dir.path()),
        "--pidfile",
        &path_str(&pidfile),
    ]));
    assert_eq!(o.code(), Some(121), "{o}");
    assert!(
        o.stderr.contains("it daemonized") && o.stderr.contains("foreground"),
        "{o}"
    );
    // Whether it got as far as its pidfile or not, no redis-server of ours is left.
    let ours = |p: &std::fs::DirEntry| {
        std::fs::read(p.path().join("cmdline")).is_ok_and(|c| {
            String::from_utf8_lossy(&c).contains(&format!("redis-server 127.0.0.1:{port}"))
        })
    };
    assert!(
        wait_until(DEADLINE, || !std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .any(|p| ours(&p))),
        "the daemonized redis was left running"
    );
    // A one-shot sidecar that leaves nothing behind is still a success.
    let flag = dir.path().join("pass-the-parcel");
    let o = run(sup([
        "sidecar",
        "--wait-file",
        &path_str(&dir.path().join("done")),
        "--",
        "touch",
        &path_str(&flag),
    ]));
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(flag.exists());
}

/// A stopped daemon gets SIGCONT after the stop signal, so it stops cleanly, not after --grace.
#[test]
fn a_stopped_child_still_stops_gracefully() {
    let dir = tempdir();
    let done = dir.path().join("done");
    let mut sc = start(sup(args(
        &["sidecar", "--grace", "60s", "--wait-file", &path_str(&done)],
        reporter(),
    )));
    let daemon = ready_pid(&sc.expect_line("ready", DEADLINE));
    kill(daemon, 19);
    assert!(wait_until(DEADLINE, || stopped(daemon)));
    let t0 = Instant::now();
    std::fs::write(&done, "").unwrap();
    let o = sc.finish();
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(o.stdout.contains("got 15;"), "{o}");
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "waited for the grace period{o}"
    );
    // main: a forwarded stop request is followed by SIGCONT too.
    let mut m = start(sup(args(&["main", "--grace", "60s"], reporter())));
    let child = ready_pid(&m.expect_line("ready", DEADLINE));
    kill(child, 19);
    assert!(wait_until(DEADLINE, || stopped(child)));
    let t0 = Instant::now();
    m.signal(15);
    let o = m.finish();
    assert_eq!(o.code(), Some(7), "{o}");
    assert!(t0.elapsed() < Duration::from_secs(20), "{o}");
}

#[test]
fn the_ready_file_location_is_checked_before_the_daemon_starts() {
    let dir = tempdir();
    let ran = dir.path().join("ran");
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    let script = format!(
        "mount --bind '{r}' '{r}' && mount -o remount,bind,ro '{r}' && exec \"$SUP\" sidecar --ready-when tcp://127.0.0.1:1 --ready-file '{r}/ready' -- touch '{ran}'",
        r = path_str(&ro),
        ran = path_str(&ran)
    );
    let mut c = std::process::Command::new("unshare");
    c.args(["--mount", "--", "sh", "-c", &script])
        .env("SUP", bin());
    // No SUPERVISOR_* variable of the test run's environment: each is a warning line.
    sup_env(&mut c);
    let o = run(c);
    assert_eq!(o.code(), Some(125), "{o}");
    assert!(
        o.stderr.contains("is not usable") && o.stderr.contains("Read-only file system"),
        "{o}"
    );
    assert_eq!(o.stderr.lines().count(), 1, "{o}");
    let missing = dir.path().join("no/such/dir/ready");
    let o = run(sup([
        "sidecar",
        "--ready-when",
        "tcp://127.0.0.1:1",
        "--ready-file",
        &path_str(&missing),
        "--",
        "touch",
        &path_str(&ran),
    ]));
    assert_eq!(o.code(), Some(125), "{o}");
    assert!(!ran.exists(), "the daemon started");
}

#[test]
fn bad_environment_values_name_their_variable_in_one_line() {
    let dir = tempdir();
    let ran = dir.path().join("ran");
    let touch = ["touch".to_string(), path_str(&ran)];
    let cases: [(&str, &str, &str, &str); 5] = [
        (
            "main",
            "SUPERVISOR_DONE_FILE",
            "",
            "SUPERVISOR_DONE_FILE is empty",
        ),
        (
            "sidecar",
            "SUPERVISOR_ON",
            "sometimes",
            "SUPERVISOR_ON: invalid value \"sometimes\"",
        ),
        (
            "main",
            "SUPERVISOR_ALLOW_REMOTE_QUIT",
            "maybe",
            "SUPERVISOR_ALLOW_REMOTE_QUIT: invalid value \"maybe\"",
        ),
        (
            "main",
            "SUPERVISOR_GRACE",
            "10 s",
            "SUPERVISOR_GRACE: invalid duration \"10 s\"",
        ),
        (
            "sidecar",
            "SUPERVISOR_TERM_SIGNALS",
            "TERM,KILL",
            "SUPERVISOR_TERM_SIGNALS: invalid signal \"KILL\"",
        ),
    ];
    for (mode, var, value, want) in cases {
        let mut c = sup(args(&[mode], touch.to_vec()));
        c.env(var, value);
        let o = run(c);
        assert_eq!(o.code(), Some(2), "{o}");
        assert_eq!(o.stderr.lines().count(), 1, "{o}");
        assert!(
            o.stderr.starts_with(&format!("supervisor: error: {want}")),
            "{o}"
        );
        assert!(!ran.exists(), "started{o}");
    }
    // An option that needs another is refused on the command line...
    let o = run(sup(args(&["main", "--wait-timeout", "1s"], touch.to_vec())));
    assert_eq!(o.code(), Some(2), "{o}");
    assert!(o.stderr.contains("--wait-timeout needs --wait-for"), "{o}");
    // ...but an image's default in the environment is only warned about.
    let mut c = sup(args(&["main"], touch.to_vec()));
    c.env("SUPERVISOR_WAIT_TIMEOUT", "2m");
    let o = run(c);
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(
        o.stderr.contains(
            "SUPERVISOR_WAIT_TIMEOUT is set but --wait-timeout does nothing without --wait-for"
        ),
        "{o}"
    );
    assert!(ran.exists());
}

#[test]
fn environment_lists_can_hold_a_comma() {
    let dir = tempdir();
    let a = dir.path().join("a,b");
    let c2 = dir.path().join("c");
    let list = format!("{}\\,b,{}", path_str(&dir.path().join("a")), path_str(&c2));
    let mut c = sup(args(&["sidecar"], reporter()));
    c.env("SUPERVISOR_WAIT_FILE", &list);
    let mut sc = start(c);
    sc.expect_line("ready", DEADLINE);
    std::fs::write(&a, "").unwrap();
    std::fs::write(&c2, "").unwrap();
    let o = sc.finish();
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(
        o.stderr
            .contains(&format!("marker {} arrived", path_str(&a))),
        "{o}"
    );
}
