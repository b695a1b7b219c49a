//! Readiness and ordering: `main --wait-for`, `sidecar --ready-when/--ready-file`, `probe`, and
//! quit URLs, against real listeners (python servers, redis-server).

use crate::util::*;
use std::path::Path;
use std::time::{Duration, Instant};

fn s(p: &Path) -> String {
    path_str(p)
}

/// `sh -c SCRIPT` as a command vector.
fn sh(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

fn main_cmd(opts: &[String], cmd: &[String]) -> std::process::Command {
    let mut args = vec!["main".to_string()];
    args.extend(opts.iter().cloned());
    args.push("--".into());
    args.extend(cmd.iter().cloned());
    sup(args)
}

fn opt(k: &str, v: &str) -> String {
    format!("{k}={v}")
}

#[test]
fn wait_for_tcp_that_listens_late() {
    let dir = tempdir();
    let (flag, done) = (dir.path().join("listening"), dir.path().join("done"));
    let (_srv, port) = listener("tcp", &[opt("delay", "0.4"), opt("flag", &s(&flag))]);
    let t0 = Instant::now();
    // The command checks the ordering itself: it fails unless the port was listening already.
    let o = run(main_cmd(
        &[
            "--done-file".into(),
            s(&done),
            "--wait-for".into(),
            format!("tcp://127.0.0.1:{port}"),
        ],
        &sh(&format!("test -e '{}'", s(&flag))),
    ));
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(
        t0.elapsed() >= Duration::from_millis(350),
        "did not wait{o}"
    );
    let m = read_json(&done);
    assert_eq!(m["exit_code"], 0, "{m}");
    assert_eq!(m["reason"], "exited", "{m}");
    assert!(o.stderr.contains(&format!("tcp://127.0.0.1:{port}")), "{o}");
}

#[test]
fn wait_for_http_503_then_200() {
    let dir = tempdir();
    let flag = dir.path().join("served-200");
    let (mut srv, port) = listener("http", &[opt("fail", "3"), opt("flag", &s(&flag))]);
    let o = run(main_cmd(
        &[
            "--wait-for".into(),
            format!("http://127.0.0.1:{port}/healthz?x=1"),
        ],
        &sh(&format!("test -e '{}'", s(&flag))),
    ));
    assert_eq!(o.code(), Some(0), "{o}");
    for _ in 0..3 {
        srv.expect_line("GET /healthz?x=1 503", DEADLINE);
    }
    srv.expect_line("GET /healthz?x=1 200", DEADLINE);
}

#[test]
fn wait_for_unix_socket_that_appears_late() {
    let dir = tempdir();
    let (sock, flag) = (dir.path().join("d.sock"), dir.path().join("listening"));
    let (_srv, _) = listener(
        "unix",
        &[
            opt("path", &s(&sock)),
            opt("delay", "0.3"),
            opt("flag", &s(&flag)),
        ],
    );
    let o = run(main_cmd(
        &["--wait-for".into(), format!("unix:{}", s(&sock))],
        &sh(&format!("test -e '{}'", s(&flag))),
    ));
    assert_eq!(o.code(), Some(0), "{o}");
}

#[test]
fn wait_for_file_in_a_directory_that_does_not_exist_yet() {
    let dir = tempdir();
    let (a, ran) = (dir.path().join("a"), dir.path().join("ran"));
    let ready = a.join("b").join("ready");
    let mut m = start(main_cmd(
        &["--wait-for".into(), format!("file:{}", s(&ready))],
        &sh(&format!("test -e '{}' && touch '{}'", s(&ready), s(&ran))),
    ));
    assert!(
        stays(Duration::from_millis(300), || m
            .wait_timeout(Duration::ZERO)
            .is_none()),
        "main did not wait for the file"
    );
    std::fs::create_dir(&a).unwrap();
    std::fs::create_dir(a.join("b")).unwrap();
    assert!(
        stays(Duration::from_millis(100), || !ran.exists()),
        "the command ran before the file existed"
    );
    let t0 = Instant::now();
    std::fs::write(&ready, "").unwrap();
    let o = m.finish();
    eprintln!(
        "file target: main ended {:.1}ms after the file appeared",
        t0.elapsed().as_secs_f64() * 1000.0
    );
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(ran.exists(), "{o}");
}

#[test]
fn wait_timeout_writes_not_ready_marker_and_stops_the_sidecar() {
    let dir = tempdir();
    let (done, ran) = (dir.path().join("done"), dir.path().join("ran"));
    let (_closed, closed_port) = listener("closed", &[]);
    let (_http, http_port) = listener("http", &[opt("fail", "1000000")]);
    let targets = [
        format!("file:{}", s(&dir.path().join("never"))),
        format!("tcp://127.0.0.1:{closed_port}"),
        format!("unix:{}", s(&dir.path().join("no.sock"))),
        format!("http://127.0.0.1:{http_port}/ready"),
    ];
    let mut sidecar = start(sup_in_pid_ns({
        let mut a = vec![
            "sidecar".to_string(),
            "--wait-file".into(),
            s(&done),
            "--exit-code".into(),
            "main".into(),
            "--".into(),
        ];
        a.extend(signal_echo());
        a
    }));
    sidecar.expect_line("ready", DEADLINE);

    let mut opts = vec![
        "--done-file".to_string(),
        s(&done),
        "--wait-timeout".into(),
        "700ms".into(),
    ];
    for t in &targets {
        opts.push("--wait-for".into());
        opts.push(t.clone());
    }
    let t0 = Instant::now();
    let o = run(main_cmd(&opts, &sh(&format!("touch '{}'", s(&ran)))));
    let took = t0.elapsed();
    assert_eq!(o.code(), Some(124), "{o}");
    assert!(
        took >= Duration::from_millis(650),
        "gave up early: {took:?}{o}"
    );
    assert!(took < Duration::from_secs(5), "gave up late: {took:?}{o}");
    assert!(!ran.exists(), "the command ran{o}");
    for t in &targets {
        assert!(o.stderr.contains(t.as_str()), "log does not name {t}{o}");
    }
    let m = read_json(&done);
    assert_eq!(m["reason"], "not-ready", "{m}");
    assert_eq!(m["exit_code"], 124, "{m}");
    assert!(
        m["error"]
            .as_str()
            .unwrap_or("")
            .contains("tcp://127.0.0.1"),
        "{m}"
    );
    // The not-ready marker is what lets the sidecars go.
    sidecar.expect_line("got SIGTERM", DEADLINE);
    let so = sidecar.finish();
    assert_eq!(so.code(), Some(124), "{so}");
}

#[test]
fn sigterm_while_waiting_cancels() {
    let dir = tempdir();
    let (done, ran) = (dir.path().join("done"), dir.path().join("ran"));
    let mut m = start(main_cmd(
        &[
            "--done-file".into(),
            s(&done),
            "--wait-for".into(),
            format!("file:{}", s(&dir.path().join("never"))),
        ],
        &sh(&format!("touch '{}'", s(&ran))),
    ));
    // The lease exists once signals are set up and the volume is checked.
    assert!(wait_until(DEADLINE, || dir
        .path()
        .join("done.lease")
        .exists()));
    m.signal(15);
    let o = m.finish();
    assert_eq!(o.code(), Some(143), "{o}");
    assert!(!ran.exists());
    let mk = read_json(&done);
    assert_eq!(mk["reason"], "cancelled", "{mk}");
    assert_eq!(mk["signal"], "TERM", "{mk}");
}

#[test]
fn bad_targets_are_usage_errors_before_anything_waits() {
    let dir = tempdir();
    let (done, ran) = (dir.path().join("done"), dir.path().join("ran"));
    for bad in [
        "gopher://x",
        "tcp://host",
        "tcp://host:99999",
        "tcp://:80",
        "file:",
        "unix:",
        "https://localhost/",
        "localhost:80",
        "http://a b/",
    ] {
        let t0 = Instant::now();
        // A good target that never comes up beside it: the bad one must fail before any wait.
        let o = run(main_cmd(
            &[
                "--done-file".into(),
                s(&done),
                "--wait-for".into(),
                format!("file:{}", s(&dir.path().join("never"))),
                "--wait-for".into(),
                bad.into(),
            ],
            &sh(&format!("touch '{}'", s(&ran))),
        ));
        assert_eq!(o.code(), Some(2), "{bad}{o}");
        assert!(o.stderr.contains(bad), "error does not name {bad:?}{o}");
        assert_eq!(o.stderr.trim().lines().count(), 1, "not one line{o}");
        assert!(t0.elapsed() < Duration::from_secs(2), "{bad} waited{o}");
        assert!(!ran.exists() && !done.exists(), "{bad}{o}");
        assert!(!dir.path().join("done.lease").exists(), "{bad}{o}");

        let o = run(sup([
            "sidecar",
            "--wait-file",
            &s(&done),
            "--ready-when",
            bad,
            "--",
            "sh",
            "-c",
            &format!("touch '{}'", s(&ran)),
        ]));
        assert_eq!(o.code(), Some(2), "{bad}{o}");
        assert!(o.stderr.contains(bad), "{o}");
        assert!(!ran.exists(), "{o}");

        let o = run(sup(["probe", bad]));
        assert_eq!(o.code(), Some(2), "{bad}{o}");
        assert!(o.stderr.contains(bad), "{o}");
    }
}

#[test]
fn ready_file_is_written_only_after_the_daemon_listens() {
    if tool("redis-server", "redis-server").is_none() || tool("redis-cli", "redis-tools").is_none()
    {
        return;
    }
    let dir = tempdir();
    let (done, ready, go) = (
        dir.path().join("done"),
        dir.path().join("redis-ready"),
        dir.path().join("go"),
    );
    std::fs::write(&ready, "{\"stale\":true}\n").unwrap();
    let port = free_port();
    // redis starts only when the test says so, so "not ready yet" lasts as long as we look.
    let daemon = format!(
        "while [ ! -e '{}' ]; do sleep 0.02; done; exec redis-server --port {port} --bind 127.0.0.1 --save '' --appendonly no --dir '{}'",
        s(&go),
        s(dir.path())
    );
    let mut sidecar = start(sup_in_pid_ns([
        "sidecar",
        "--wait-file",
        &s(&done),
        "--ready-when",
        &format!("tcp://127.0.0.1:{port}"),
        "--ready-file",
        &s(&ready),
        "--",
        "sh",
        "-c",
        &daemon,
    ]));
    assert!(
        wait_until(DEADLINE, || !ready.exists()),
        "the stale ready file was not removed"
    );
    assert!(
        stays(Duration::from_millis(300), || !ready.exists()),
        "ready file written before the daemon listens"
    );

    // A main gated on the ready file, as in a pod.
    let mut main = start(main_cmd(
        &[
            "--done-file".into(),
            s(&done),
            "--wait-for".into(),
            format!("file:{}", s(&ready)),
        ],
        &[
            "redis-cli".into(),
            "-p".into(),
            port.to_string(),
            "ping".into(),
        ],
    ));
    std::fs::write(&go, "").unwrap();
    assert!(wait_until(DEADLINE, || ready.exists()), "no ready file");
    std::net::TcpStream::connect(("127.0.0.1", port))
        .expect("the ready file exists but the daemon does not accept");
    let r = read_json(&ready);
    assert!(
        r["ready_at"].as_str().is_some_and(|t| t.contains('T')),
        "{r}"
    );
    assert!(r["pid"].as_i64().is_some_and(|p| p > 0), "{r}");
    assert_eq!(r["targets"][0], format!("tcp://127.0.0.1:{port}"), "{r}");

    let mo = main.finish();
    assert_eq!(mo.code(), Some(0), "{mo}");
    assert!(mo.stdout.contains("PONG"), "{mo}");
    let so = sidecar.finish();
    assert_eq!(so.code(), Some(0), "{so}");
    assert!(so.stderr.contains("daemon ready after"), "{so}");
}

#[test]
fn probe_ready_targets() {
    let dir = tempdir();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = tcp.local_addr().unwrap().port();
    let sock = dir.path().join("p.sock");
    let _unix = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let file = dir.path().join("exists");
    std::fs::write(&file, "").unwrap();
    let (_http, http_port) = listener("http", &[]);
    let o = run(sup([
        "probe".to_string(),
        format!("tcp://127.0.0.1:{port}"),
        format!("tcp://localhost:{port}"),
        format!("unix:{}", s(&sock)),
        format!("file:{}", s(&file)),
        format!("http://127.0.0.1:{http_port}/healthz"),
        format!("http://localhost:{http_port}/"),
    ]));
    assert_eq!(o.code(), Some(0), "{o}");
    assert_eq!(o.stderr.trim(), "", "{o}");
    assert_eq!(o.stdout.trim(), "", "{o}");
}

#[test]
fn probe_failing_targets_one_line_each_and_closed_port_fails_fast() {
    let dir = tempdir();
    let (_closed, closed_port) = listener("closed", &[]);
    let (_http, http_port) = listener("http", &[opt("fail", "1000000")]);
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open_port = tcp.local_addr().unwrap().port();
    let failing = [
        format!("tcp://127.0.0.1:{closed_port}"),
        format!("unix:{}", s(&dir.path().join("none.sock"))),
        format!("file:{}", s(&dir.path().join("none"))),
        format!("http://127.0.0.1:{http_port}/healthz"),
    ];
    let mut args = vec![
        "probe".to_string(),
        "--timeout".into(),
        "5s".into(),
        format!("tcp://127.0.0.1:{open_port}"),
    ];
    args.extend(failing.iter().cloned());
    let t0 = Instant::now();
    let o = run(sup(args));
    let took = t0.elapsed();
    eprintln!("probe with 4 failing targets took {took:?}");
    assert_eq!(o.code(), Some(1), "{o}");
    // Far below --timeout even on a loaded machine: a refused connect is an answer.
    assert!(
        took < Duration::from_secs(3),
        "closed port not fast: {took:?}{o}"
    );
    let lines: Vec<&str> = o.stderr.trim().lines().collect();
    assert_eq!(lines.len(), failing.len(), "{o}");
    for t in &failing {
        assert_eq!(
            lines.iter().filter(|l| l.contains(t.as_str())).count(),
            1,
            "{t}{o}"
        );
    }
    assert!(o.stderr.contains("503"), "{o}");
    assert!(!o.stderr.contains(&format!(":{open_port}")), "{o}");
}

#[test]
fn main_quit_urls_are_posted_after_the_marker() {
    let dir = tempdir();
    let done = dir.path().join("done");
    let (mut srv, port) = listener("http", &[opt("marker", &s(&done))]);
    let (_closed, closed_port) = listener("closed", &[]);
    let o = run(main_cmd(
        &[
            "--done-file".into(),
            s(&done),
            "--quit-url".into(),
            format!("http://127.0.0.1:{port}/quitquitquit"),
            "--quit-url".into(),
            format!("http://localhost:{port}/quitquitquit?second"),
            // A dead endpoint: logged, never changes the exit code.
            "--quit-url".into(),
            format!("http://127.0.0.1:{closed_port}/quit"),
        ],
        &sh("exit 3"),
    ));
    assert_eq!(o.code(), Some(3), "{o}");
    // Both posts are recorded (in any order); the marker existed when each arrived.
    let a = srv.expect_line("POST /quitquitquit", DEADLINE);
    let b = srv.expect_line("POST /quitquitquit", DEADLINE);
    for l in [&a, &b] {
        assert!(l.ends_with("marker=yes"), "POST before the marker: {l}");
    }
    assert!(a.contains("?second") != b.contains("?second"), "{a} / {b}");
    assert!(o.stderr.contains(&format!(":{closed_port}/quit")), "{o}");
    assert_eq!(read_json(&done)["exit_code"], 3);
}

#[test]
fn remote_quit_urls_are_refused_unless_allowed() {
    let dir = tempdir();
    let (done, ran) = (dir.path().join("done"), dir.path().join("ran"));
    for url in ["http://10.1.2.3/quitquitquit", "http://example.com:15020/q"] {
        let o = run(main_cmd(
            &[
                "--done-file".into(),
                s(&done),
                "--quit-url".into(),
                url.into(),
            ],
            &sh(&format!("touch '{}'", s(&ran))),
        ));
        assert_eq!(o.code(), Some(2), "{o}");
        assert!(o.stderr.contains(url), "{o}");
        assert!(o.stderr.contains("--allow-remote-quit"), "{o}");
        assert!(!ran.exists() && !done.exists(), "{o}");
        let o = run(sup([
            "sidecar",
            "--wait-file",
            &s(&done),
            "--quit-url",
            url,
            "--",
            "true",
        ]));
        assert_eq!(o.code(), Some(2), "{o}");
        assert!(o.stderr.contains(url), "{o}");
    }
    // 0.0.0.0 is not loopback by its text, yet reaches this host: allowed only with the flag.
    let (mut srv, port) = listener("http", &[opt("marker", &s(&done))]);
    let url = format!("http://0.0.0.0:{port}/quit");
    let o = run(main_cmd(
        &[
            "--done-file".into(),
            s(&done),
            "--allow-remote-quit".into(),
            "--quit-url".into(),
            url,
        ],
        &sh("true"),
    ));
    assert_eq!(o.code(), Some(0), "{o}");
    srv.expect_line("POST /quit marker=yes", DEADLINE);
}

#[test]
fn sidecar_quit_url_stops_a_daemon_that_ignores_sigterm() {
    let dir = tempdir();
    let done = dir.path().join("done");
    let port = free_port();
    let mut args = vec![
        "sidecar".to_string(),
        "--wait-file".into(),
        s(&done),
        "--grace".into(),
        "10s".into(),
        "--quit-url".into(),
        format!("http://localhost:{port}/quitquitquit"),
        "--".into(),
    ];
    args.extend(py_listen(
        "http",
        &[
            opt("port", &port.to_string()),
            opt("exit_on", "/quitquitquit"),
            opt("ignore_term", "1"),
        ],
    ));
    let mut sidecar = start(sup_in_pid_ns(args));
    sidecar.expect_line("listening", DEADLINE);
    let t0 = Instant::now();
    std::fs::write(&done, "{\"exit_code\":0}").unwrap();
    sidecar.expect_line("POST /quitquitquit", DEADLINE);
    sidecar.expect_line("quitting", DEADLINE);
    let o = sidecar.finish();
    let took = t0.elapsed();
    eprintln!("sidecar quit URL: daemon stopped {took:?} after the marker");
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(
        took < Duration::from_secs(5),
        "waited for the grace period{o}"
    );
    assert!(!o.stderr.contains("after SIGKILL"), "{o}");
}

#[test]
fn sidecar_quit_url_failure_falls_back_to_the_stop_signal() {
    let dir = tempdir();
    let done = dir.path().join("done");
    let (_closed, closed_port) = listener("closed", &[]);
    let mut args = vec![
        "sidecar".to_string(),
        "--wait-file".into(),
        s(&done),
        "--grace".into(),
        "10s".into(),
        "--quit-url".into(),
        format!("http://127.0.0.1:{closed_port}/quitquitquit"),
        "--".into(),
    ];
    args.extend(signal_echo());
    let mut sidecar = start(sup_in_pid_ns(args));
    sidecar.expect_line("ready", DEADLINE);
    let t0 = Instant::now();
    std::fs::write(&done, "").unwrap();
    sidecar.expect_line("got SIGTERM", DEADLINE);
    let o = sidecar.finish();
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(t0.elapsed() < Duration::from_secs(5), "{o}");
    assert!(o.stderr.contains("no quit URL succeeded"), "{o}");
}

#[test]
fn localhost_works_for_every_network_target() {
    let dir = tempdir();
    let done = dir.path().join("done");
    let (_tcp, tcp_port) = listener("tcp", &[opt("delay", "0.2")]);
    let (mut http, http_port) = listener("http", &[opt("fail", "1"), opt("marker", &s(&done))]);
    let o = run(main_cmd(
        &[
            "--done-file".into(),
            s(&done),
            "--wait-for".into(),
            format!("tcp://localhost:{tcp_port}"),
            "--wait-for".into(),
            format!("http://localhost:{http_port}/healthz"),
            "--wait-timeout".into(),
            "10s".into(),
            "--quit-url".into(),
            format!("http://LOCALHOST:{http_port}/quitquitquit"),
        ],
        &sh("true"),
    ));
    assert_eq!(o.code(), Some(0), "{o}");
    http.expect_line("GET /healthz 200", DEADLINE);
    http.expect_line("POST /quitquitquit marker=yes", DEADLINE);
}

#[test]
fn http_targets_follow_kubernetes_rules_and_never_redirects() {
    let (mut srv, port) = listener("http", &[opt("code_from_path", "1")]);
    for (code, ready) in [
        (200, true),
        (204, true),
        (302, true),
        (399, true),
        (404, false),
        (503, false),
    ] {
        let o = run(sup([
            "probe".to_string(),
            format!("http://127.0.0.1:{port}/{code}"),
        ]));
        assert_eq!(o.code(), Some(if ready { 0 } else { 1 }), "{code}{o}");
        if !ready {
            assert!(o.stderr.contains(&format!("HTTP status {code}")), "{o}");
        }
        srv.expect_line(&format!("GET /{code} {code}"), DEADLINE);
    }
}

#[test]
fn ipv6_literals() {
    let Ok(l) = std::net::TcpListener::bind("[::1]:0") else {
        skip("there is no IPv6 loopback (::1) here");
        return;
    };
    let port = l.local_addr().unwrap().port();
    let o = run(sup([
        "probe".to_string(),
        format!("tcp://[::1]:{port}"),
        format!("tcp://localhost:{port}"),
    ]));
    assert_eq!(o.code(), Some(0), "{o}");
}

#[test]
fn localhost_needs_no_nss_hosts_or_dns() {
    // /etc/hosts, nsswitch.conf and resolv.conf emptied in a private mount namespace, as in a
    // scratch image: the C library cannot resolve `localhost` there, the supervisor still can.
    let (_tcp, tcp_port) = listener("tcp", &[]);
    let (_http, http_port) = listener("http", &[]);
    let script = format!(
        "for f in /etc/hosts /etc/nsswitch.conf /etc/resolv.conf /etc/host.conf; do \
           if [ -e $f ]; then mount --bind /dev/null $f || exit 99; fi; done; \
         if command -v getent >/dev/null && getent hosts localhost; then exit 98; fi; \
         exec '{}' probe tcp://localhost:{tcp_port} http://localhost:{http_port}/healthz",
        bin()
    );
    let mut c = std::process::Command::new("unshare");
    sup_env(c.args(["--mount", "--propagation", "private", "sh", "-c", &script]));
    let o = run(c);
    assert_eq!(o.code(), Some(0), "{o}");
}

#[test]
fn progress_is_logged_while_waiting() {
    // The one slow test (the progress line comes every 5 s): a user watching `kubectl logs`
    // must see what the main is still waiting for. A file target alone, so the line comes at
    // 5 s sharp (network targets log it at their next backoff turn, within a second after).
    let dir = tempdir();
    let never = dir.path().join("never");
    let o = run(main_cmd(
        &[
            "--wait-for".into(),
            format!("file:{}", s(&never)),
            "--wait-timeout".into(),
            "5300ms".into(),
        ],
        &sh("true"),
    ));
    assert_eq!(o.code(), Some(124), "{o}");
    let progress: Vec<&str> = o
        .stderr
        .lines()
        .filter(|l| l.contains("still waiting"))
        .collect();
    assert_eq!(progress.len(), 1, "{o}");
    assert!(progress[0].contains(&format!("file:{}", s(&never))), "{o}");
}
