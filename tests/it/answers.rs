//! Ready means ready (issue 24 item 2): a port or a unix socket that accepts and stays silent is
//! not an HTTP endpoint that answers; `http+unix:` and the `docker` preset ask the daemon itself
//! (a real dockerd, and the TLS variant's certificates appearing after its socket); names are
//! looked up off the loop, bounded; and `--wait-timeout` bounds every attempt (issue 22 item 6).

use crate::util::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn s(p: &Path) -> String {
    path_str(p)
}

fn opt(k: &str, v: &str) -> String {
    format!("{k}={v}")
}

/// silent_http.py (see that file): `(listener, port)`; port 0 for a unix socket.
fn silent(kind: &str, opts: &[String]) -> (Proc, u16) {
    let mut argv = python("silent_http.py", &[kind]);
    argv.extend(opts.iter().cloned());
    let mut c = Command::new(&argv[0]);
    c.args(&argv[1..]);
    let mut p = start(c);
    let port = match kind {
        "tcp" => p
            .expect_line("port ", DEADLINE)
            .trim_start_matches("port ")
            .trim()
            .parse()
            .expect("port number"),
        _ => 0,
    };
    p.expect_line("listening", DEADLINE);
    (p, port)
}

/// A silent endpoint's files: its socket, the file that makes it answer, the one it writes first.
struct Late {
    sock: PathBuf,
    go: PathBuf,
    flag: PathBuf,
}

/// silent_http.py on a unix socket in `dir`, silent until `go` exists.
fn silent_socket(dir: &Path) -> (Proc, Late) {
    let late = Late {
        sock: dir.join("d.sock"),
        go: dir.join("go"),
        flag: dir.join("answered"),
    };
    let opts = [
        opt("path", &s(&late.sock)),
        opt("go", &s(&late.go)),
        opt("flag", &s(&late.flag)),
    ];
    (silent("unix", &opts).0, late)
}

/// Fails unless `p` is still running 300 ms from now: it took no target as ready meanwhile.
fn keeps_waiting(p: &mut Proc, why: &str) {
    assert!(
        stays(Duration::from_millis(300), || p
            .wait_timeout(Duration::ZERO)
            .is_none()),
        "{why}"
    );
}

fn main_cmd(opts: &[String], script: &str) -> Command {
    let mut args = vec!["main".to_string()];
    args.extend(opts.iter().cloned());
    args.extend(["--", "sh", "-c", script].map(String::from));
    sup(args)
}

#[test]
fn main_waits_for_a_silent_http_port_to_answer() {
    let dir = tempdir();
    let (go, flag, done) = (
        dir.path().join("go"),
        dir.path().join("answered"),
        dir.path().join("done"),
    );
    let (mut srv, port) = silent("tcp", &[opt("go", &s(&go)), opt("flag", &s(&flag))]);
    // The command checks the order itself: it fails unless the endpoint had answered.
    let mut m = start(main_cmd(
        &[
            "--done-file".into(),
            s(&done),
            "--wait-for".into(),
            format!("http://127.0.0.1:{port}/ready"),
        ],
        &format!("test -e '{}'", s(&flag)),
    ));
    srv.expect_line("held", DEADLINE);
    keeps_waiting(&mut m, "an accepting, silent port was taken as ready");
    std::fs::write(&go, "").unwrap();
    let o = m.finish();
    assert_eq!(o.code(), Some(0), "{o}");
    srv.expect_line("GET /ready 200", DEADLINE);
    assert_eq!(read_json(&done)["reason"], "exited");
}

#[test]
fn sidecar_is_ready_when_its_unix_socket_and_its_port_answer_http() {
    let dir = tempdir();
    let ready = dir.path().join("d.ready");
    let (mut srv, Late { sock, go, flag }) = silent_socket(dir.path());
    let (go_tcp, flag_tcp) = (dir.path().join("go-tcp"), dir.path().join("answered-tcp"));
    let (mut tcp, port) = silent("tcp", &[opt("go", &s(&go_tcp)), opt("flag", &s(&flag_tcp))]);
    let targets = [
        format!("http+unix:{}:/_ping", s(&sock)),
        format!("http://127.0.0.1:{port}/healthz"),
    ];
    let mut args = vec!["sidecar".to_string()];
    for t in &targets {
        args.extend(["--ready-when".into(), t.clone()]);
    }
    args.extend(["--ready-file".into(), s(&ready), "--".into()]);
    args.extend(signal_echo());
    let mut side = start(sup_in_pid_ns(args));
    side.expect_line("ready", DEADLINE);
    srv.expect_line("held", DEADLINE);
    tcp.expect_line("held", DEADLINE);
    let not_yet = |why: &str| {
        assert!(
            stays(Duration::from_millis(300), || !ready.exists()),
            "{why}"
        );
    };
    not_yet("an accepting, silent socket and port were taken as ready");
    // The socket answers; the port still accepts and stays silent.
    std::fs::write(&go, "").unwrap();
    srv.expect_line("GET /_ping 200", DEADLINE);
    not_yet("an accepting, silent port was taken as ready");
    std::fs::write(&go_tcp, "").unwrap();
    assert!(wait_until(DEADLINE, || ready.exists()), "never ready");
    assert!(
        flag.exists() && flag_tcp.exists(),
        "ready before both answered"
    );
    assert_eq!(read_json(&ready)["targets"], serde_json::json!(targets));
    kill(ns_init(&side), 15);
    let o = side.finish();
    assert_eq!(o.code(), Some(0), "{o}");
}

#[test]
fn probe_fails_on_silent_endpoints_until_they_answer() {
    let dir = tempdir();
    let (go_tcp, go_unix) = (dir.path().join("go-tcp"), dir.path().join("go-unix"));
    let sock = dir.path().join("p.sock");
    let (_tcp, port) = silent("tcp", &[opt("go", &s(&go_tcp))]);
    let (_unix, _) = silent("unix", &[opt("path", &s(&sock)), opt("go", &s(&go_unix))]);
    let http = format!("http://127.0.0.1:{port}/healthz");
    let http_unix = format!("http+unix:{}:/_ping", s(&sock));
    let probe = |targets: &[&str]| {
        let mut args = vec!["probe", "--timeout", "500ms"];
        args.extend(targets);
        run(sup(args))
    };
    // Accepting is what tcp:// and unix: ask for: ready.
    let o = probe(&[
        &format!("tcp://127.0.0.1:{port}"),
        &format!("unix:{}", s(&sock)),
    ]);
    assert_eq!(o.code(), Some(0), "{o}");
    let o = probe(&[&http, &http_unix]);
    assert_eq!(o.code(), Some(1), "{o}");
    let lines: Vec<&str> = o.stderr.trim().lines().collect();
    assert_eq!(lines.len(), 2, "{o}");
    for (line, t) in lines.iter().zip([&http, &http_unix]) {
        assert!(
            line.starts_with(&format!("not ready: {t}: no answer within")),
            "{o}"
        );
        assert!(line.ends_with("(connected, no status line yet)"), "{o}");
    }
    std::fs::write(&go_tcp, "").unwrap();
    std::fs::write(&go_unix, "").unwrap();
    assert!(
        wait_until(DEADLINE, || probe(&[&http, &http_unix]).code() == Some(0)),
        "{}",
        probe(&[&http, &http_unix])
    );
}

/// Issue 22 item 6: each attempt is clipped to what is left of `--wait-timeout`; before, the
/// second attempt at a silent endpoint ran its whole second and the gate ended at 2.0 s.
#[test]
fn wait_timeout_bounds_an_attempt_at_a_silent_endpoint() {
    let dir = tempdir();
    let (done, ran) = (dir.path().join("done"), dir.path().join("ran"));
    let (_srv, port) = silent("tcp", &[]);
    let target = format!("http://127.0.0.1:{port}/ready");
    let t0 = Instant::now();
    let o = run(main_cmd(
        &[
            "--done-file".into(),
            s(&done),
            "--wait-for".into(),
            target.clone(),
            "--wait-timeout".into(),
            "1500ms".into(),
        ],
        &format!("touch '{}'", s(&ran)),
    ));
    let took = t0.elapsed();
    eprintln!("--wait-timeout 1500ms, silent HTTP target: main exited after {took:?}");
    assert_eq!(o.code(), Some(124), "{o}");
    assert!(!ran.exists(), "{o}");
    let m = read_json(&done);
    assert_eq!(m["reason"], "not-ready", "{m}");
    let error = m["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!("{target} (no answer within")),
        "{m}"
    );
    assert!(error.contains("connected, no status line yet"), "{m}");
    assert!(
        took >= Duration::from_millis(1500),
        "gave up early: {took:?}{o}"
    );
    // A correctness bound with margin (a full second attempt would end at 2.0 s), not a speed goal.
    assert!(
        took < Duration::from_millis(1900),
        "ran past the deadline: {took:?}{o}"
    );
}

/// Runs the supervisor with the Docker variables `vars` (and no others from this process).
fn with_docker_env(mut c: Command, vars: &[(&str, &str)]) -> Command {
    for (k, v) in vars {
        c.env(k, v);
    }
    c
}

#[test]
fn docker_preset_waits_for_dockers_socket_to_answer() {
    let dir = tempdir();
    let (mut srv, Late { sock, go, flag }) = silent_socket(dir.path());
    let host = format!("unix://{}", s(&sock));
    let mut m = start(with_docker_env(
        main_cmd(
            &["--wait-for".into(), "docker".into()],
            &format!("test -e '{}'", s(&flag)),
        ),
        &[("DOCKER_HOST", &host)],
    ));
    srv.expect_line("held", DEADLINE);
    keeps_waiting(
        &mut m,
        "dockerd's socket accepting was taken as dockerd ready",
    );
    std::fs::write(&go, "").unwrap();
    let o = m.finish();
    assert_eq!(o.code(), Some(0), "{o}");
    srv.expect_line("GET /_ping 200", DEADLINE);
    // The expansion is logged once, with where the endpoint came from.
    let said = format!(
        "--wait-for docker is http+unix:{}:/_ping (endpoint {host}, from DOCKER_HOST)",
        s(&sock)
    );
    assert_eq!(o.stderr.matches(&said).count(), 1, "{o}");
}

#[test]
fn docker_preset_with_tls_waits_for_the_client_certificates() {
    let dir = tempdir();
    let (certdir, sock) = (dir.path().join("certs"), dir.path().join("docker.sock"));
    let client = certdir.join("client");
    // dockerd's socket answers from the start; its certificates come later.
    let go = dir.path().join("go");
    std::fs::write(&go, "").unwrap();
    let (_srv, _) = silent("unix", &[opt("path", &s(&sock)), opt("go", &s(&go))]);
    let vars = [
        ("DOCKER_HOST", format!("unix://{}", s(&sock))),
        ("DOCKER_TLS_CERTDIR", s(&certdir)),
    ];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let probe = || run(with_docker_env(sup(["probe", "docker"]), &vars));
    let c = s(&client);
    let check = format!("test -s '{c}/ca.pem' && test -s '{c}/cert.pem' && test -s '{c}/key.pem'");
    let mut m = start(with_docker_env(
        main_cmd(&["--wait-for".into(), "docker".into()], &check),
        &vars,
    ));
    let o = probe();
    assert_eq!(o.code(), Some(1), "{o}");
    assert!(
        o.stderr
            .contains(&format!("no client certificate {}/ca.pem", s(&client))),
        "{o}"
    );
    // Created empty first (as a writer that has not written yet leaves them): still not ready.
    mkdir(&client);
    for name in ["ca.pem", "cert.pem", "key.pem"] {
        std::fs::write(client.join(name), "").unwrap();
    }
    let o = probe();
    assert_eq!(o.code(), Some(1), "{o}");
    assert!(o.stderr.contains("ca.pem is empty"), "{o}");
    // A FIFO planted where a certificate goes is never opened: not ready, and no hang.
    let key = client.join("key.pem");
    std::fs::remove_file(&key).unwrap();
    let fifo = Command::new("mkfifo").arg(&key).status().unwrap();
    assert!(fifo.success());
    for name in ["ca.pem", "cert.pem"] {
        std::fs::write(client.join(name), "-----BEGIN CERTIFICATE-----\n").unwrap();
    }
    let o = probe();
    assert_eq!(o.code(), Some(1), "{o}");
    assert!(o.stderr.contains("key.pem is not a regular file"), "{o}");
    std::fs::remove_file(&key).unwrap();
    std::fs::write(&key, "").unwrap();
    keeps_waiting(&mut m, "started before the certificates were written");
    for name in ["ca.pem", "cert.pem", "key.pem"] {
        std::fs::write(client.join(name), "-----BEGIN CERTIFICATE-----\n").unwrap();
    }
    let o = m.finish();
    assert_eq!(o.code(), Some(0), "{o}");
    assert_eq!(probe().code(), Some(0));
}

#[test]
fn docker_preset_over_tls_tcp_needs_the_port_and_the_certificates() {
    let dir = tempdir();
    let client = mkdir(&dir.path().join("certs/client"));
    // A port that accepts and never speaks: with TLS in effect that is all the preset asks of it
    // (the supervisor speaks no TLS).
    let (_srv, port) = silent("tcp", &[]);
    let host = format!("tcp://127.0.0.1:{port}");
    let certdir = s(&dir.path().join("certs"));
    let vars = [
        ("DOCKER_HOST", host.as_str()),
        ("DOCKER_TLS_CERTDIR", &certdir),
    ];
    let o = run(with_docker_env(sup(["probe", "docker"]), &vars));
    assert_eq!(o.code(), Some(1), "{o}");
    assert!(o.stderr.contains("no client certificate"), "{o}");
    for name in ["ca.pem", "cert.pem", "key.pem"] {
        std::fs::write(client.join(name), "x").unwrap();
    }
    let o = run(with_docker_env(sup(["probe", "docker"]), &vars));
    assert_eq!(o.code(), Some(0), "{o}");
    // Without TLS the same port is asked for /_ping, and stays silent: not ready.
    let o = run(with_docker_env(
        sup(["probe", "--timeout", "300ms", "docker"]),
        &[("DOCKER_HOST", host.as_str())],
    ));
    assert_eq!(o.code(), Some(1), "{o}");
    assert!(
        o.stderr
            .contains(&format!("docker:{host}: no answer within")),
        "{o}"
    );
}

#[test]
fn bad_docker_endpoints_are_usage_errors_naming_the_variable() {
    let dir = tempdir();
    let ran = dir.path().join("ran");
    let o = run(with_docker_env(
        main_cmd(
            &["--wait-for".into(), "docker".into()],
            &format!("touch '{}'", s(&ran)),
        ),
        &[("DOCKER_HOST", "ssh://me@builder")],
    ));
    assert_eq!(o.code(), Some(2), "{o}");
    assert_eq!(
        o.stderr.trim(),
        "supervisor: error: --wait-for: invalid target \"docker\": DOCKER_HOST \
         \"ssh://me@builder\": not unix:///PATH or tcp://HOST:PORT"
    );
    assert!(!ran.exists());
    let o = run(sup(["probe", "docker:fd://"]));
    assert_eq!(o.code(), Some(2), "{o}");
    assert!(o.stderr.contains("\"docker:fd://\""), "{o}");
}

/// The real thing: dockerd as a sidecar announcing readiness through the `docker` preset, and a
/// main that runs `docker version` the moment the ready file appears.
#[test]
fn http_unix_and_the_docker_preset_against_a_real_dockerd() {
    let Some(dockerd) = tool("dockerd", "docker.io") else {
        return;
    };
    let Some(docker) = tool("docker", "docker.io") else {
        return;
    };
    let d = tempdir();
    let root = d.path();
    let (done, ready, sock) = (
        root.join("done"),
        root.join("ready"),
        root.join("docker.sock"),
    );
    let host = format!("unix://{}", s(&sock));
    let release = root.join("release");
    let mut args: Vec<String> = [
        "sidecar",
        "--wait-file",
        &s(&release),
        "--grace",
        "20s",
        "--ready-when",
        &format!("docker:{host}"),
        "--ready-file",
        &s(&ready),
        "--",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    args.extend(dockerd_args(&dockerd, root));
    let mut side = start(sup_hiding_containerd(&args));
    let cleanup = Unmount(root.to_path_buf());
    let main = run(main_cmd(
        &[
            "--done-file".into(),
            s(&done),
            "--wait-for".into(),
            format!("file:{}", s(&ready)),
            "--wait-timeout".into(),
            "60s".into(),
        ],
        &format!(
            "'{}' -H '{host}' version --format '{{{{.Server.Version}}}}'",
            s(&docker)
        ),
    ));
    assert_eq!(
        main.code(),
        Some(0),
        "docker could not talk to dockerd{main}"
    );
    assert!(!main.stdout.trim().is_empty(), "{main}");
    assert_eq!(read_json(&ready)["targets"][0], format!("docker:{host}"));
    let ping = format!("http+unix:{}:/_ping", s(&sock));
    let o = run(sup(["probe", ping.as_str()]));
    assert_eq!(o.code(), Some(0), "{o}");
    let o = run(sup([
        "probe",
        &format!("http+unix:{}:/no/such/endpoint", s(&sock)),
    ]));
    assert_eq!(o.code(), Some(1), "{o}");
    assert!(o.stderr.contains("HTTP status 404"), "{o}");
    std::fs::write(&release, "{\"exit_code\":0}").unwrap();
    let o = side.finish_with(Duration::from_secs(60));
    assert_eq!(o.code(), Some(0), "{o}");
    drop(cleanup);
}

/// A shell script in a mount namespace where /etc/hosts names `ready.test` (127.0.0.1) and
/// nothing else, and the only DNS server is silent_dns.py at `dns`: `$SUP` is the supervisor.
fn with_hosts_and_silent_dns(dir: &Path, dns: &str, script: &str) -> Command {
    let hosts = dir.join("hosts");
    let resolv = dir.join("resolv.conf");
    std::fs::write(&hosts, "127.0.0.1 ready.test\n").unwrap();
    std::fs::write(
        &resolv,
        format!("nameserver {dns}\noptions timeout:30 attempts:1\n"),
    )
    .unwrap();
    sh_ns(
        &["--mount", "--propagation", "private"],
        &format!(
            "mount --bind '{}' /etc/hosts && mount --bind '{}' /etc/resolv.conf || exit 99; {script}",
            s(&hosts),
            s(&resolv)
        ),
    )
}

/// How many threads of process `pid` are name lookups (they are named `lookup`).
fn lookup_threads(pid: i32) -> usize {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "lookup")
        })
        .count()
}

#[test]
fn names_are_looked_up_off_the_loop_and_a_hung_resolver_is_bounded() {
    const DNS: &str = "127.0.0.77";
    let dir = tempdir();
    let mut dns = start({
        let argv = python("silent_dns.py", &[DNS]);
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]);
        c
    });
    dns.expect_line("listening", DEADLINE);
    let (_tcp, tcp_port) = listener("tcp", &[]);
    let (_http, http_port) = listener("http", &[]);
    // A name /etc/hosts knows: looked up on a thread, then connected to.
    let o = run(with_hosts_and_silent_dns(
        dir.path(),
        DNS,
        &format!(
            "exec \"$SUP\" main --wait-for tcp://ready.test:{tcp_port} \
             --wait-for http://ready.test:{http_port}/healthz -- true"
        ),
    ));
    assert_eq!(o.code(), Some(0), "{o}");
    // A name only the silent DNS server could answer: the lookup hangs for 30 s, the gate does
    // not. Ten of them: at most eight lookups run at once, attempts at the others fail at once.
    let names: Vec<String> = (0..10)
        .map(|i| format!("--wait-for tcp://hang{i}.test:80"))
        .collect();
    let t0 = Instant::now();
    let mut p = start(with_hosts_and_silent_dns(
        dir.path(),
        DNS,
        &format!(
            "exec \"$SUP\" main --wait-timeout 1500ms {} -- true",
            names.join(" ")
        ),
    ));
    dns.expect_line("query", DEADLINE);
    let pid = ns_init(&p);
    let mut most = 0;
    while p.wait_timeout(Duration::ZERO).is_none() && t0.elapsed() < DEADLINE {
        most = most.max(lookup_threads(pid));
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = p.finish();
    let took = t0.elapsed();
    assert_eq!(o.code(), Some(124), "{o}");
    assert!(
        took < Duration::from_millis(1900),
        "the hung lookups held the gate: {took:?}{o}"
    );
    // Eight names wait for their lookup (their retries join it); two were never looked up.
    assert_eq!(o.stderr.matches("(looking up hang").count(), 8, "{o}");
    assert_eq!(
        o.stderr.matches("other names are being looked up").count(),
        2,
        "{o}"
    );
    assert!((1..=8).contains(&most), "{most} lookup threads{o}");
    // `probe` too ends at its --timeout, whatever the resolver does.
    let t0 = Instant::now();
    let o = run(with_hosts_and_silent_dns(
        dir.path(),
        DNS,
        "exec \"$SUP\" probe --timeout 500ms tcp://hang.test:80",
    ));
    assert_eq!(o.code(), Some(1), "{o}");
    assert!(
        o.stderr
            .contains("no answer within 500ms (looking up hang.test)"),
        "{o}"
    );
    assert!(t0.elapsed() < Duration::from_secs(5), "{o}");
}
