//! `supervisor sidecar`: markers, stop policy, exit codes, real daemons.

use crate::util::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The daemon of these tests: helpers/daemon.py (logs each signal, exits 0 on TERM unless told
/// to ignore it).
fn daemon() -> Vec<String> {
    python("daemon.py", &[])
}

fn sidecar(waits: &[&Path], extra: &[&str]) -> Command {
    let mut args: Vec<String> = vec!["sidecar".into()];
    for w in waits {
        args.push("--wait-file".into());
        args.push(path_str(w));
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push("--".into());
    args.extend(daemon());
    sup(args)
}

/// A sidecar waiting for `done` whose daemon is `sh -c script`.
fn sidecar_sh(done: &Path, script: &str) -> Command {
    sup([
        "sidecar",
        "--wait-file",
        &path_str(done),
        "--",
        "sh",
        "-c",
        script,
    ])
}

#[test]
fn stops_the_daemon_once_when_the_marker_appears_and_exits_0() {
    let d = tempdir();
    let done = d.path().join("done");
    let mut p = start(sidecar(&[&done], &[]));
    p.expect_line("daemon ready", DEADLINE);
    let t0 = Instant::now();
    write_marker(&done, 3);
    let o = p.finish();
    eprintln!("marker to sidecar exit: {:?}", t0.elapsed());
    assert_eq!(o.code(), Some(0), "{o}");
    assert_eq!(
        o.stdout.matches("daemon got SIGTERM").count(),
        1,
        "TERM must be sent exactly once: {o}"
    );
    assert!(
        o.stderr
            .contains(&format!("marker {} arrived", path_str(&done))),
        "{o}"
    );
    assert!(
        o.stderr.contains("exit code 3"),
        "the log must give the main's code: {o}"
    );
    assert!(
        o.stderr.contains("stopped in"),
        "the log must say how long the stop took: {o}"
    );
}

#[test]
fn a_marker_present_at_start_counts_at_once() {
    let d = tempdir();
    let done = d.path().join("done");
    write_marker(&done, 0);
    let o = run(sidecar(&[&done], &[]));
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(o.stderr.contains("arrived"), "{o}");
}

#[test]
fn follows_a_marker_directory_that_does_not_exist_yet() {
    let d = tempdir();
    let done = d.path().join("a/b/c/done");
    let mut p = start(sidecar(&[&done], &[]));
    p.expect_line("daemon ready", DEADLINE);
    std::fs::create_dir(d.path().join("a")).unwrap();
    std::fs::create_dir_all(d.path().join("a/b/c")).unwrap();
    write_marker(&done, 0);
    let o = p.finish();
    assert_eq!(o.code(), Some(0), "{o}");
}

/// A whole tree made at once (`mkdir -p`) while the sidecar moves its watch down it: a level
/// created between choosing the directory to watch and arming its watch made no event the sidecar
/// could see, and the marker at the bottom was missed (about 1 round in 10 before the fix). Each
/// round must see its marker.
#[test]
fn follows_a_deep_marker_directory_made_at_once() {
    for round in 0..30 {
        let d = tempdir();
        let deep = d.path().join("a/b/c/d/e/f/g/h");
        let done = deep.join("done");
        let mut p = start(sidecar_sh(&done, "echo up; exec sleep 1000"));
        // The watch is armed before the daemon starts.
        p.expect_line("up", DEADLINE);
        std::fs::create_dir_all(&deep).unwrap();
        write_marker(&done, 0);
        let o = p.finish();
        assert_eq!(o.code(), Some(0), "round {round}: {o}");
    }
}

#[test]
fn waits_for_every_marker() {
    let d = tempdir();
    let (a, b) = (d.path().join("a.done"), d.path().join("b.done"));
    let mut p = start(sidecar(&[&a, &b], &[]));
    p.expect_line("daemon ready", DEADLINE);
    write_marker(&a, 0);
    assert!(wait_until(DEADLINE, || std::fs::read_to_string(&a).is_ok()));
    // With one marker of two, the sidecar must keep running. Give it a fair chance to (wrongly)
    // stop: ask it to forward a signal and wait for the echo, which happens after it has
    // processed the marker event.
    p.signal(10);
    p.expect_line("daemon got SIGUSR1", DEADLINE);
    assert!(
        p.wait_timeout(Duration::from_millis(200)).is_none(),
        "stopped with one marker of two"
    );
    write_marker(&b, 0);
    let o = p.finish();
    assert_eq!(o.code(), Some(0), "{o}");
}

#[test]
fn on_success_ignores_failed_markers_until_a_successful_one() {
    let d = tempdir();
    let done = d.path().join("done");
    let mut p = start(sidecar(
        &[&done],
        &["--on", "success", "--exit-code", "main"],
    ));
    p.expect_line("daemon ready", DEADLINE);
    write_marker(&done, 1);
    p.signal(10);
    p.expect_line("daemon got SIGUSR1", DEADLINE);
    assert!(
        p.wait_timeout(Duration::from_millis(200)).is_none(),
        "a failed marker stopped it with --on success"
    );
    // The restarted main removes the stale marker, then succeeds.
    std::fs::remove_file(&done).unwrap();
    write_marker(&done, 0);
    let o = p.finish();
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(
        o.stderr.contains("--on success keeps the daemon running"),
        "{o}"
    );
}

#[test]
fn a_plain_touch_counts_as_done_with_unknown_code() {
    for on in ["any", "success"] {
        let d = tempdir();
        let done = d.path().join("done");
        let mut p = start(sidecar(&[&done], &["--on", on, "--exit-code", "main"]));
        p.expect_line("daemon ready", DEADLINE);
        std::fs::File::create(&done).unwrap();
        let o = p.finish();
        assert_eq!(o.code(), Some(0), "--on {on}: {o}");
        assert!(o.stderr.contains("unknown exit code"), "{o}");
    }
}

#[test]
fn exit_code_policies() {
    for (policy, marker_code, daemon_exit, want) in [
        ("zero", 5, "0", 0),
        ("main", 5, "0", 5),
        ("main", 0, "3", 0),
        ("daemon", 5, "3", 3),
        ("daemon", 5, "0", 0),
    ] {
        let d = tempdir();
        let done = d.path().join("done");
        let mut c = sidecar(&[&done], &["--exit-code", policy]);
        c.env("DAEMON_EXIT", daemon_exit);
        let mut p = start(c);
        p.expect_line("daemon ready", DEADLINE);
        write_marker(&done, marker_code);
        let o = p.finish();
        assert_eq!(
            o.code(),
            Some(want),
            "--exit-code {policy}, marker {marker_code}, daemon {daemon_exit}: {o}"
        );
    }
}

#[test]
fn custom_stop_signal() {
    let d = tempdir();
    let done = d.path().join("done");
    let mut p = start(sidecar(&[&done], &["--stop-signal", "QUIT"]));
    p.expect_line("daemon ready", DEADLINE);
    write_marker(&done, 0);
    let o = p.finish();
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(o.stdout.contains("daemon got SIGQUIT"), "{o}");
    assert!(!o.stdout.contains("SIGTERM"), "{o}");
}

#[test]
fn sigkill_after_the_grace_period_and_the_stop_signal_only_once() {
    let d = tempdir();
    let done = d.path().join("done");
    let mut c = sidecar(&[&done], &["--grace", "400ms"]);
    c.env("DAEMON_IGNORE_TERM", "1");
    let mut p = start(c);
    p.expect_line("daemon ready", DEADLINE);
    let t0 = Instant::now();
    write_marker(&done, 0);
    p.expect_line("daemon got SIGTERM", DEADLINE);
    // A second TERM to the supervisor while stopping must not reach the daemon again.
    p.signal(15);
    let o = p.finish();
    let took = t0.elapsed();
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(
        took >= Duration::from_millis(400),
        "SIGKILL before the grace period: {took:?}"
    );
    assert_eq!(o.stdout.matches("daemon got SIGTERM").count(), 1, "{o}");
    assert!(o.stderr.contains("after SIGKILL"), "{o}");
}

#[test]
fn without_wait_file_only_sigterm_stops_the_daemon() {
    // A native sidecar: no marker to wait for; the kubelet's SIGTERM ends it with exit 0.
    let mut args = vec!["sidecar".to_string(), "--".into()];
    args.extend(daemon());
    let mut p = start(sup(args));
    p.expect_line("daemon ready", DEADLINE);
    p.signal(1);
    p.expect_line("daemon got SIGHUP", DEADLINE);
    assert!(p.wait_timeout(Duration::from_millis(100)).is_none());
    p.signal(15);
    let o = p.finish();
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(o.stderr.contains("native sidecar"), "{o}");
    assert!(o.stdout.contains("daemon got SIGTERM"), "{o}");
}

#[test]
fn sigterm_to_the_sidecar_stops_the_daemon_and_exits_0() {
    for sig in [15, 2] {
        let d = tempdir();
        let done = d.path().join("done");
        let mut p = start(sidecar(&[&done], &[]));
        p.expect_line("daemon ready", DEADLINE);
        p.signal(sig);
        let o = p.finish();
        assert_eq!(o.code(), Some(0), "signal {sig}: {o}");
        assert!(
            o.stdout.contains("daemon got SIGTERM"),
            "the stop signal, not the one received: {o}"
        );
    }
}

#[test]
fn other_signals_are_forwarded_to_the_daemon() {
    let d = tempdir();
    let done = d.path().join("done");
    let mut p = start(sidecar(&[&done], &[]));
    p.expect_line("daemon ready", DEADLINE);
    p.signal(1);
    p.expect_line("daemon got SIGHUP", DEADLINE);
    write_marker(&done, 0);
    assert_eq!(p.finish().code(), Some(0));
}

#[test]
fn a_daemon_that_dies_on_its_own_gives_its_status() {
    let d = tempdir();
    let done = d.path().join("done");
    for (script, want) in [("exit 0", 0), ("exit 4", 4), ("kill -KILL $$", 137)] {
        let o = run(sup([
            "sidecar",
            "--wait-file",
            &path_str(&done),
            "--",
            "sh",
            "-c",
            script,
        ]));
        assert_eq!(o.code(), Some(want), "{script}: {o}");
        assert!(
            o.stderr.contains("on its own before the main was done"),
            "{o}"
        );
    }
    let o = run(sup([
        "sidecar",
        "--wait-file",
        &path_str(&done),
        "--",
        "/no/such/daemon",
    ]));
    assert_eq!(o.code(), Some(127), "{o}");
}

#[test]
fn usage_errors() {
    let d = tempdir();
    let done = path_str(&d.path().join("done"));
    for (args, needle) in [
        (vec!["--stop-signal", "NOPE"], "NOPE"),
        (vec!["--grace", "forever"], "forever"),
        (vec!["--poll", "0"], "--poll"),
        (vec!["--on", "sometimes"], "sometimes"),
        (vec!["--exit-code", "seven"], "seven"),
        (
            vec!["--quit-url", "http://192.0.2.1:9091/quitquitquit"],
            "192.0.2.1",
        ),
        (vec!["--ready-when", "gopher://x"], "gopher://x"),
        (vec!["--stale-after", "0s"], "--stale-after"),
    ] {
        let mut all = vec!["sidecar", "--wait-file", &done];
        all.extend(args.iter());
        all.extend(["--", "true"]);
        let o = run(sup(all));
        assert_eq!(o.code(), Some(2), "{args:?}: {o}");
        assert!(
            o.stderr.contains(needle),
            "{args:?}: must name {needle:?}: {o}"
        );
    }
    let o = run(sup(["sidecar", "--", "sh", "-c", "exit 6"]));
    assert_eq!(
        o.code(),
        Some(6),
        "without --wait-file the daemon just runs: {o}"
    );
    // Allowed with the explicit opt-in.
    let mut c = sup([
        "sidecar",
        "--wait-file",
        &done,
        "--quit-url",
        "http://192.0.2.1:9/q",
        "--allow-remote-quit",
        "--",
        "true",
    ]);
    c.env("X", "1");
    assert_eq!(run(c).code(), Some(0));
}

#[test]
fn works_with_a_read_only_view_of_the_volume() {
    let d = tempdir();
    let shared = d.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    let view = d.path().join("view");
    std::fs::create_dir(&view).unwrap();
    // The sidecar sees the volume through a read-only bind mount, as with `readOnly: true`.
    let script = format!(
        "mount --bind {s} {v} && mount -o remount,bind,ro {v} && exec {b} sidecar --wait-file {v}/done -- python3 '{daemon}'",
        s = path_str(&shared),
        v = path_str(&view),
        b = bin(),
        daemon = helper_str("daemon.py")
    );
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "sh", "-c", &script]);
    let mut p = start(c);
    p.expect_line("daemon ready", DEADLINE);
    write_marker(&shared.join("done"), 0);
    let o = p.finish();
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(o.stdout.contains("daemon got SIGTERM"), "{o}");
}

/// Voluntary + involuntary context switches of every thread of a process.
fn wakeups(pid: i32) -> u64 {
    let mut total = 0;
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let s = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
        for l in s.lines() {
            if l.starts_with("voluntary_ctxt_switches")
                || l.starts_with("nonvoluntary_ctxt_switches")
            {
                total += l.split_whitespace().last().unwrap().parse::<u64>().unwrap();
            }
        }
    }
    total
}

#[test]
fn no_wakeups_while_idle() {
    let d = tempdir();
    let done = d.path().join("done");
    let mut p = start(sup([
        "sidecar",
        "--wait-file",
        &path_str(&done),
        "--",
        "sleep",
        "1000",
    ]));
    // Let start-up finish: the count must settle (it can only change if something wakes us).
    let mut last = wakeups(p.pid());
    assert!(wait_until(DEADLINE, || {
        std::thread::sleep(Duration::from_millis(100));
        let now = wakeups(p.pid());
        let settled = now == last;
        last = now;
        settled
    }));
    let before = wakeups(p.pid());
    std::thread::sleep(Duration::from_millis(1500)); // measuring an interval, not synchronising
    let after = wakeups(p.pid());
    assert_eq!(
        after - before,
        0,
        "the idle sidecar woke up {} times in 1.5s",
        after - before
    );
    write_marker(&done, 0);
    assert_eq!(p.finish().code(), Some(0));
}

fn wait_port(port: u16) -> bool {
    wait_until(DEADLINE, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
}

#[test]
fn real_redis_server_is_stopped_cleanly() {
    if tool("redis-server", "redis-server").is_none() {
        return;
    }
    let d = tempdir();
    let done = d.path().join("done");
    let port = free_port();
    let mut p = start(sup([
        "sidecar",
        "--wait-file",
        &path_str(&done),
        "--exit-code",
        "daemon",
        "--",
        "redis-server",
        "--port",
        &port.to_string(),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        &path_str(d.path()),
    ]));
    assert!(wait_port(port), "redis never listened");
    let t0 = Instant::now();
    write_marker(&done, 0);
    let o = p.finish();
    eprintln!("redis: marker to sidecar exit {:?}", t0.elapsed());
    assert_eq!(o.code(), Some(0), "redis must exit 0 on TERM: {o}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "redis still listening"
    );
}

#[test]
fn real_nginx_is_stopped_with_quit() {
    if tool("nginx", "nginx-light").is_none() {
        return;
    }
    let d = tempdir();
    let done = d.path().join("done");
    let port = free_port();
    let conf = d.path().join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off; master_process on; worker_processes 2; pid {dir}/nginx.pid; error_log stderr;\n\
             events {{}}\n\
             http {{ access_log off; client_body_temp_path {dir}; proxy_temp_path {dir}; fastcgi_temp_path {dir}; uwsgi_temp_path {dir}; scgi_temp_path {dir};\n\
             server {{ listen 127.0.0.1:{port}; location / {{ return 200 'ok'; }} }} }}\n",
            dir = path_str(d.path())
        ),
    )
    .unwrap();
    let mut p = start(sup([
        "sidecar",
        "--wait-file",
        &path_str(&done),
        "--stop-signal",
        "QUIT",
        "--exit-code",
        "daemon",
        "--",
        "nginx",
        "-c",
        &path_str(&conf),
        "-e",
        "stderr",
    ]));
    assert!(wait_port(port), "nginx never listened");
    // The master listens before it forks its workers: wait for them too.
    let mut workers = Vec::new();
    assert!(
        wait_until(DEADLINE, || {
            workers = descendants(p.pid());
            workers.len() >= 3
        }),
        "master + 2 workers expected: {workers:?}"
    );
    write_marker(&done, 0);
    let o = p.finish();
    assert_eq!(o.code(), Some(0), "nginx must exit 0 on QUIT: {o}");
    for w in workers {
        assert!(
            wait_until(DEADLINE, || !alive(w)),
            "nginx process {w} survived"
        );
    }
}

#[test]
fn real_dockerd_supervised_through_its_whole_life() {
    let Some(dockerd) = tool("dockerd", "docker.io") else {
        return;
    };
    let d = tempdir();
    let root = d.path();
    let done = root.join("done");
    let ready = root.join("ready");
    let sock = root.join("docker.sock");
    // A stale ready file from an earlier run must go before the daemon starts.
    std::fs::write(&ready, "stale").unwrap();
    let mut args: Vec<String> = [
        "sidecar",
        "--wait-file",
        &path_str(&done),
        "--grace",
        "20s",
        "--ready-when",
        &format!("unix:{}", path_str(&sock)),
        "--ready-file",
        &path_str(&ready),
        "--",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(dockerd_args(&dockerd, root));
    let c = sup_hiding_containerd(&args);
    let mut p = start(c);
    let cleanup = Unmount(root.to_path_buf());
    assert!(
        wait_until(Duration::from_secs(60), || std::fs::read_to_string(&ready)
            .is_ok_and(|s| s.contains("ready_at"))),
        "dockerd never became ready"
    );
    let v = read_json(&ready);
    assert_eq!(v["targets"][0], format!("unix:{}", path_str(&sock)));
    // The daemon really answers.
    let o = run({
        let mut c = Command::new("docker");
        c.args([
            "-H",
            &format!("unix://{}", path_str(&sock)),
            "version",
            "--format",
            "{{.Server.Version}}",
        ]);
        c
    });
    assert_eq!(o.code(), Some(0), "{o}");
    let tree = descendants(p.pid());
    assert!(
        tree.len() >= 2,
        "dockerd and its containerd expected: {tree:?}"
    );
    let t0 = Instant::now();
    write_marker(&done, 0);
    let o = p.finish_with(Duration::from_secs(60));
    eprintln!("dockerd: marker to sidecar exit {:?}", t0.elapsed());
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(
        o.stderr.contains("exited with code 0"),
        "dockerd must shut down cleanly on one TERM: {o}"
    );
    for pid in tree {
        assert!(
            wait_until(DEADLINE, || !alive(pid)),
            "process {pid} of dockerd's tree survived"
        );
    }
    drop(cleanup);
}

#[test]
fn no_process_of_the_daemon_outlives_the_sidecar() {
    // The daemon starts a helper in a process group (and session) of its own, which the group
    // signal cannot reach, then exits on TERM without stopping it.
    let d = tempdir();
    let done = d.path().join("done");
    let pidfile = d.path().join("escaped");
    let script = format!(
        "setsid sh -c 'echo $$ > {pf}; exec sleep 1000' & trap 'exit 0' TERM; echo ready; while :; do sleep 0.05; done",
        pf = path_str(&pidfile)
    );
    let mut p = start(sidecar_sh(&done, &script));
    p.expect_line("ready", DEADLINE);
    assert!(wait_until(DEADLINE, || std::fs::read_to_string(&pidfile)
        .is_ok_and(|s| s.ends_with('\n'))));
    let escaped: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(escaped));
    write_marker(&done, 0);
    let o = p.finish();
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(
        !alive(escaped),
        "the escaped helper {escaped} outlived the sidecar: {o}"
    );
    assert!(
        o.stderr
            .contains("the daemon left processes running: sent them TERM"),
        "{o}"
    );
}
