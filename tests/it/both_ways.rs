//! Death travels both ways (issue #14): a sidecar with `--done-file` leaves a marker and a lease
//! like a main; a main with `--requires` stops its command when that sidecar ends; sidecars chain
//! their stops; `--timeout`, `--stop-delay` and optional waits. Real dockerd and redis.

use crate::util::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn helper(name: &str) -> String {
    path_str(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/it/helpers")
            .join(name),
    )
}

fn reporter() -> Vec<String> {
    vec!["python3".into(), helper("sigreport.py")]
}

fn args(head: &[&str], cmd: &[String]) -> Vec<String> {
    let mut a: Vec<String> = head.iter().map(|s| s.to_string()).collect();
    a.push("--".into());
    a.extend(cmd.iter().cloned());
    a
}

/// A main whose command reports signals, requiring the sidecar marker `dep`.
fn requiring_main(done: &Path, dep: &Path, extra: &[&str]) -> Proc {
    let (d, r) = (path_str(done), path_str(dep));
    let mut head = vec!["main", "--done-file", &d, "--requires", &r];
    head.extend(extra);
    start(sup(args(&head, &reporter())))
}

#[test]
fn a_sidecar_that_dies_stops_the_main_that_requires_it() {
    let dir = tempdir();
    let (dep, done) = (dir.path().join("dind.done"), dir.path().join("build.done"));
    let mut sc = start(sup(args(
        &["sidecar", "--done-file", &path_str(&dep)],
        &reporter(),
    )));
    let daemon = ready(&mut sc);
    let mut main = requiring_main(&done, &dep, &["--grace", "20s"]);
    ready(&mut main);
    // Alive and well: the main waits on the sidecar's lease, no polling.
    assert!(wait_until(DEADLINE, || lock_waiters(&lease(&dep)) >= 1));
    let t0 = Instant::now();
    kill(daemon, 9);
    main.expect_line("got 15;", DEADLINE);
    let took = t0.elapsed();
    let (m, s) = (main.finish(), sc.finish());
    eprintln!("daemon SIGKILLed -> main's command got TERM: {took:?}");
    assert_eq!(s.code(), Some(137), "the daemon's own death{s}");
    assert_eq!(m.code(), Some(122), "{m}");
    let dm = read_json(&dep);
    assert_eq!(
        (
            dm["role"].as_str(),
            dm["reason"].as_str(),
            dm["signal"].as_str()
        ),
        (Some("sidecar"), Some("signaled"), Some("KILL")),
        "{dm}"
    );
    let mm = read_json(&done);
    assert_eq!(mm["reason"], "dependency-failed", "{mm}");
    assert_eq!(mm["exit_code"], 122);
    assert_eq!(mm["dependency"]["path"], path_str(&dep));
    assert_eq!(mm["dependency"]["exit_code"], 137);
    assert!(
        m.stderr.contains(&format!(
            "required sidecar {} ended (python3 was killed by a signal, exit code 137)",
            path_str(&dep)
        )),
        "{m}"
    );
}

#[test]
fn a_sidecar_killed_with_its_whole_container_stops_the_main_through_the_lease() {
    let dir = tempdir();
    let (dep, done) = (dir.path().join("proxy.done"), dir.path().join("job.done"));
    let mut sc = start(sup_in_pid_ns(args(
        &["sidecar", "--done-file", &path_str(&dep)],
        &reporter(),
    )));
    ready(&mut sc);
    let init = ns_init(&sc);
    let mut main = requiring_main(&done, &dep, &[]);
    ready(&mut main);
    assert!(wait_until(DEADLINE, || lock_waiters(&lease(&dep)) >= 1));
    // As the kubelet sees an OOM kill: PID 1 of the container SIGKILLed, no marker.
    kill(init, 9);
    main.expect_line("got 15;", DEADLINE);
    let m = main.finish();
    assert_eq!(m.code(), Some(122), "{m}");
    assert!(!dep.exists(), "a marker from a SIGKILLed supervisor?");
    let mm = read_json(&done);
    assert_eq!(mm["reason"], "dependency-failed");
    assert!(mm["dependency"].get("exit_code").is_none(), "{mm}");
    assert!(
        m.stderr
            .contains("its supervisor vanished without a marker"),
        "{m}"
    );
    sc.finish();
}

#[test]
fn a_required_sidecar_that_has_not_started_is_not_a_failure_and_a_stopped_main_keeps_its_reason() {
    let dir = tempdir();
    let (dep, done) = (dir.path().join("late.done"), dir.path().join("main.done"));
    let mut main = requiring_main(&done, &dep, &[]);
    ready(&mut main);
    // The sidecar starts later and runs; the main is asked to stop first (pod deletion).
    let mut sc = start(sup(args(
        &["sidecar", "--done-file", &path_str(&dep)],
        &reporter(),
    )));
    ready(&mut sc);
    assert!(wait_until(DEADLINE, || lock_waiters(&lease(&dep)) >= 1));
    main.signal(15);
    let m = main.finish();
    assert_eq!(m.code(), Some(7), "{m}");
    assert_eq!(read_json(&done)["reason"], "stopped");
    sc.signal(15);
    let s = sc.finish();
    assert_eq!(s.code(), Some(0), "{s}");
    let dm = read_json(&dep);
    assert_eq!(
        (dm["reason"].as_str(), dm["exit_code"].as_i64()),
        (Some("stopped"), Some(0)),
        "{dm}"
    );
}

fn ready(p: &mut Proc) -> i32 {
    let line = p.expect_line("ready", DEADLINE);
    line.trim_start_matches("ready ")
        .trim_end_matches(';')
        .parse()
        .unwrap()
}

/// main → redis → log shipper: each stops only after the one before it ended, and the shipper
/// ships every line the main wrote.
#[test]
fn sidecars_stop_in_order_along_a_chain() {
    let dir = tempdir();
    let p = |n: &str| path_str(&dir.path().join(n));
    let (main_done, redis_done, shipper_done, log) = (
        p("main.done"),
        p("redis.done"),
        p("shipper.done"),
        p("job.log"),
    );
    let port = free_port().to_string();
    std::fs::write(&log, "").unwrap();
    let mut shipper = start(sup(args(
        &[
            "sidecar",
            "--wait-file",
            &redis_done,
            "--done-file",
            &shipper_done,
        ],
        &python("shipper.py", &[&log]),
    )));
    shipper.expect_line("shipping", DEADLINE);
    let mut redis = start(sup(args(
        &[
            "sidecar",
            "--wait-file",
            &main_done,
            "--done-file",
            &redis_done,
            "--ready-when",
            &format!("tcp://127.0.0.1:{port}"),
            "--ready-file",
            &p("redis.ready"),
        ],
        &[
            "redis-server".into(),
            "--port".into(),
            port.clone(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--save".into(),
            String::new(),
            "--appendonly".into(),
            "no".into(),
        ],
    )));
    let lines = 500;
    let script = format!(
        "for i in $(seq 1 {lines}); do echo line-$i; done >> '{log}'; redis-cli -p {port} ping"
    );
    let main = run(sup([
        "main",
        "--done-file",
        &main_done,
        "--wait-for",
        &format!("file:{}", p("redis.ready")),
        "--",
        "sh",
        "-c",
        &script,
    ]));
    assert_eq!(main.code(), Some(0), "{main}");
    assert!(main.stdout.contains("PONG"), "{main}");
    let (r, s) = (redis.finish(), shipper.finish());
    assert_eq!((r.code(), s.code()), (Some(0), Some(0)), "{r}{s}");
    assert!(
        s.stdout
            .contains(&format!("shipped {lines} lines: line-1..line-{lines}")),
        "{s}"
    );
    let finished = |f: &str| {
        read_json(Path::new(f))["finished_at"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (a, b, c) = (
        finished(&main_done),
        finished(&redis_done),
        finished(&shipper_done),
    );
    assert!(
        a <= b && b <= c,
        "ends out of order: main {a}, redis {b}, shipper {c}"
    );
    assert!(
        s.stderr.contains(&format!("marker {redis_done} arrived")),
        "{s}"
    );
}

#[test]
fn a_timeout_stops_the_command() {
    let dir = tempdir();
    let done = dir.path().join("done");
    let cmd = "trap 'echo got USR1; exit 7' USR1; echo ready; while :; do sleep 0.01; done";
    let d = path_str(&done);
    let head = [
        "main",
        "--timeout",
        "500ms",
        "--stop-signal",
        "USR1",
        "--done-file",
        &d,
    ];
    let t0 = Instant::now();
    let mut m = start(sup(args(&head, &["sh".into(), "-c".into(), cmd.into()])));
    m.expect_line("ready", DEADLINE);
    m.expect_line("got USR1", DEADLINE);
    assert!(
        t0.elapsed() >= Duration::from_millis(500),
        "stopped before its time: {:?}",
        t0.elapsed()
    );
    let o = m.finish();
    assert_eq!(o.code(), Some(123), "{o}");
    let mk = read_json(&done);
    assert_eq!(
        (mk["reason"].as_str(), mk["command_exit_code"].as_i64()),
        (Some("timed-out"), Some(7)),
        "{mk}"
    );
    assert!(
        o.stderr
            .contains("timed out after 500ms (--timeout) and exited with code 7"),
        "{o}"
    );
}

#[test]
fn a_stop_delay_holds_the_signal_but_not_a_marker_triggered_stop() {
    // main: the command keeps running for the delay, then gets the signal.
    let mut m = start(sup(args(&["main", "--stop-delay", "600ms"], &reporter())));
    ready(&mut m);
    let t0 = Instant::now();
    m.signal(15);
    m.expect_line("got 15;", DEADLINE);
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(600),
        "forwarded after {took:?}"
    );
    assert_eq!(m.finish().code(), Some(7));
    // sidecar: a request from outside waits the delay...
    let dir = tempdir();
    let done = dir.path().join("done");
    let mut s = start(sup(args(
        &[
            "sidecar",
            "--stop-delay",
            "600ms",
            "--wait-file",
            &path_str(&done),
        ],
        &reporter(),
    )));
    ready(&mut s);
    let t0 = Instant::now();
    s.signal(15);
    s.expect_line("got 15;", DEADLINE);
    assert!(
        t0.elapsed() >= Duration::from_millis(600),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(s.finish().code(), Some(0));
    // ...but the mains being done is never delayed, even in the middle of one.
    let mut s = start(sup(args(
        &[
            "sidecar",
            "--stop-delay",
            "1h",
            "--wait-file",
            &path_str(&done),
        ],
        &reporter(),
    )));
    ready(&mut s);
    s.signal(15);
    std::fs::write(&done, "").unwrap();
    let o = s.finish();
    assert_eq!(o.code(), Some(0), "{o}");
}

#[test]
fn an_optional_wait_starts_the_command_anyway() {
    let dir = tempdir();
    let ran = path_str(&dir.path().join("ran"));
    let head = [
        "main",
        "--wait-for",
        "tcp://127.0.0.1:1",
        "--wait-timeout",
        "300ms",
    ];
    let o = run(sup(args(
        &[&head[..], &["--on-wait-timeout", "continue"]].concat(),
        &["touch".into(), ran.clone()],
    )));
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(Path::new(&ran).exists());
    assert!(
        o.stderr
            .contains("not ready after 300ms: tcp://127.0.0.1:1")
            && o.stderr.contains("anyway"),
        "{o}"
    );
    std::fs::remove_file(&ran).unwrap();
    let o = run(sup(args(&head, &["touch".into(), ran.clone()])));
    assert_eq!(o.code(), Some(124), "{o}");
    assert!(!Path::new(&ran).exists());
}

#[test]
fn bad_values_of_the_new_options() {
    let dir = tempdir();
    let d = path_str(&dir.path().join("done"));
    let cases: [(&[&str], &str); 6] = [
        (
            &["main", "--timeout", "0"],
            "--timeout: \"0\" must be greater than zero",
        ),
        (
            &["main", "--stop-delay", "soon"],
            "--stop-delay: invalid duration \"soon\"",
        ),
        (
            &[
                "main",
                "--on-wait-timeout",
                "maybe",
                "--wait-for",
                "file:/x",
                "--wait-timeout",
                "1s",
            ],
            "--on-wait-timeout: invalid value \"maybe\" (use fail, continue)",
        ),
        (&["main", "--requires", ""], "--requires is empty"),
        (
            &["main", "--done-file", &d, "--requires", &d],
            "is this main's own --done-file",
        ),
        (
            &["sidecar", "--done-file", &d, "--wait-file", &d],
            "is this sidecar's own --done-file",
        ),
    ];
    for (head, want) in cases {
        let o = run(sup(args(head, &["true".into()])));
        assert_eq!(o.code(), Some(2), "{o}");
        assert_eq!(o.stderr.lines().count(), 1, "{o}");
        assert!(o.stderr.contains(want), "{want}{o}");
    }
}

/// The real thing: dockerd as a sidecar with its own marker, a main looping docker commands that
/// requires it; dockerd SIGKILLed mid-loop.
#[test]
fn a_dind_sidecar_killed_mid_build_stops_the_build() {
    let Some(dockerd) = tool("dockerd", "docker.io") else {
        return;
    };
    let d = tempdir();
    let root = d.path();
    let _unmount = Unmount(root.to_path_buf());
    let q = |n: &str| path_str(&root.join(n));
    let sock = q("docker.sock");
    let mut args: Vec<String> = ["sidecar", "--done-file", &q("dind.done"), "--grace", "20s"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend([
        "--ready-when".into(),
        format!("unix:{sock}"),
        "--ready-file".into(),
        q("dind.ready"),
        "--".into(),
    ]);
    args.extend(dockerd_args(&dockerd, root));
    let mut dind = start(sup_hiding_containerd(&args));
    let build = format!(
        "trap 'echo build got TERM; exit 143' TERM; while :; do docker -H unix://{sock} version --format '{{{{.Server.Version}}}}' >/dev/null && echo looped; sleep 0.02; done"
    );
    let mut main = start(sup([
        "main",
        "--done-file",
        &q("build.done"),
        "--requires",
        &q("dind.done"),
        "--wait-for",
        &format!("file:{}", q("dind.ready")),
        "--wait-timeout",
        "60s",
        "--grace",
        "10s",
        "--",
        "sh",
        "-c",
        &build,
    ]));
    main.expect_line("looped", Duration::from_secs(60));
    let tree = descendants(dind.pid());
    let pid: i32 = std::fs::read_to_string(root.join("docker.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let t0 = Instant::now();
    kill(pid, 9);
    main.expect_line("build got TERM", DEADLINE);
    eprintln!(
        "dockerd SIGKILLed -> the build got TERM: {:?}",
        t0.elapsed()
    );
    let (m, s) = (main.finish(), dind.finish_with(Duration::from_secs(60)));
    assert_eq!(s.code(), Some(137), "{s}");
    assert_eq!(m.code(), Some(122), "{m}");
    assert_eq!(
        read_json(&root.join("build.done"))["reason"],
        "dependency-failed"
    );
    assert!(
        m.stderr
            .contains("dockerd was killed by a signal, exit code 137"),
        "{m}"
    );
    for p in tree {
        assert!(
            wait_until(DEADLINE, || !alive(p)),
            "{p} of dockerd's tree survived"
        );
    }
}
