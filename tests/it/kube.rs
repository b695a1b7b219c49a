//! What Kubernetes operators see (issue #15): the termination message on every exit path, help
//! and the man page, durations as Kubernetes writes them, and the proxy presets against real
//! loopback listeners.

use crate::util::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn message(path: &Path) -> (String, Option<serde_json::Value>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    assert!(text.len() <= 4096, "{} bytes", text.len());
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default().to_string();
    let json = lines
        .next()
        .map(|l| serde_json::from_str(l).expect("the marker JSON"));
    (first, json)
}

#[test]
fn the_termination_message_says_how_main_ended_on_every_path() {
    let dir = tempdir();
    let log = dir.path().join("termination-log");
    let t = path_str(&log);
    let done = path_str(&dir.path().join("done"));
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec!["--done-file", &done, "--", "sh", "-c", "exit 3"],
            3,
            "main: sh -c 'exit 3' exited with code 3 after ",
        ),
        (
            vec!["--", "sh", "-c", "kill -TERM $$"],
            143,
            "main: sh -c 'kill -TERM $$' was killed by signal TERM after ",
        ),
        (
            vec!["--", "/no/such/command"],
            127,
            "main: /no/such/command could not be started: /no/such/command: command not found",
        ),
        (
            vec![
                "--wait-for",
                "tcp://127.0.0.1:1",
                "--wait-timeout",
                "200ms",
                "--",
                "true",
            ],
            124,
            "main: not started: tcp://127.0.0.1:1 (",
        ),
        (
            vec!["--timeout", "100ms", "--", "sleep", "10"],
            123,
            "main: sleep 10 timed out after 100ms (--timeout) and was killed by signal TERM",
        ),
    ];
    for (extra, code, first_line) in cases {
        let mut args = vec!["main", "--termination-log", &t];
        args.extend(extra.iter());
        let o = run(sup(&args));
        assert_eq!(o.code(), Some(code), "{o}");
        let (first, json) = message(&log);
        assert!(
            first.starts_with(first_line),
            "{first:?} is not {first_line:?}"
        );
        if let Some(j) = json {
            assert_eq!(j["exit_code"], code, "{j}");
        }
    }
    // The marker is there when it fits; a huge one is left out, the sentence stays.
    let long = "x".repeat(9000);
    let o = run(sup([
        "main",
        "--termination-log",
        &t,
        "--",
        "sh",
        "-c",
        "exit 5",
        &long,
        &long,
        &long,
        &long,
        &long,
    ]));
    assert_eq!(o.code(), Some(5), "{o}");
    let (first, json) = message(&log);
    assert!(
        first.starts_with("main: sh -c 'exit 5' xxx") && json.is_none(),
        "{first}"
    );
    // An empty value turns it off.
    std::fs::remove_file(&log).unwrap();
    assert_eq!(
        run(sup(["main", "--termination-log=", "--", "true"])).code(),
        Some(0)
    );
    assert!(!log.exists());
}

#[test]
fn a_usage_error_goes_to_the_termination_log_the_line_or_the_environment_names() {
    let dir = tempdir();
    let flagged = dir.path().join("from-flag");
    let from_env = dir.path().join("from-env");
    let o = run(sup([
        "main",
        "--termination-log",
        &path_str(&flagged),
        "--grace=soon",
        "--",
        "true",
    ]));
    assert_eq!(o.code(), Some(2), "{o}");
    let (first, _) = message(&flagged);
    assert!(
        first.starts_with("supervisor: error: --grace: invalid duration \"soon\""),
        "{first}"
    );
    let mut c = sup(["sidecar", "--stop-signal=CONT", "--", "true"]);
    c.env("SUPERVISOR_TERMINATION_LOG", &from_env);
    let o = run(c);
    assert_eq!(o.code(), Some(2), "{o}");
    let (first, _) = message(&from_env);
    assert!(
        first.starts_with("supervisor: error: --stop-signal: CONT stops nothing"),
        "{first}"
    );
}

#[test]
fn an_unknown_supervisor_variable_is_named_with_a_suggestion() {
    let dir = tempdir();
    let done = dir.path().join("done");
    let mut c = sup(["main", "--", "true"]);
    c.env("SUPERVISOR_DONE_FIEL", &done);
    let o = run(c);
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(
        o.stderr.contains(
            "SUPERVISOR_DONE_FIEL is not a supervisor setting; ignoring it (did you mean SUPERVISOR_DONE_FILE?)"
        ),
        "{o}"
    );
    assert!(!done.exists());
}

#[test]
fn the_termination_message_says_how_a_sidecar_ended() {
    let dir = tempdir();
    let log = dir.path().join("termination-log");
    let done = dir.path().join("done");
    std::fs::write(&done, "{\"exit_code\":0}").unwrap();
    let o = run(sup([
        "sidecar",
        "--termination-log",
        &path_str(&log),
        "--wait-file",
        &path_str(&done),
        "--",
        "sleep",
        "100",
    ]));
    assert_eq!(o.code(), Some(0), "{o}");
    let (first, json) = message(&log);
    assert!(
        first.starts_with("sidecar: sleep 100 stopped in "),
        "{first}"
    );
    assert!(
        first.ends_with("after the main finished (main's code 0); it was killed by signal TERM"),
        "{first}"
    );
    assert_eq!(json.unwrap()["reason"], "stopped");
    // A daemon that dies on its own.
    let o = run(sup([
        "sidecar",
        "--termination-log",
        &path_str(&log),
        "--wait-file",
        &path_str(&dir.path().join("never")),
        "--",
        "sh",
        "-c",
        "exit 1",
    ]));
    assert_eq!(o.code(), Some(1), "{o}");
    assert!(
        message(&log)
            .0
            .starts_with("sidecar: sh -c 'exit 1' exited with code 1 after ")
    );
}

/// In a mount namespace whose /dev is an overlay (so the host's /dev is untouched), the kubelet's
/// /dev/termination-log exists: both modes use it by default, even for a usage error and a refused
/// start.
#[test]
fn dev_termination_log_is_used_when_the_container_has_one() {
    let dir = tempdir();
    let (upper, work) = (dir.path().join("u"), dir.path().join("w"));
    std::fs::create_dir(&upper).unwrap();
    std::fs::create_dir(&work).unwrap();
    let script = format!(
        "mount -t overlay overlay -o lowerdir=/dev,upperdir={u},workdir={w} /dev || exit 90\n\
         touch /dev/termination-log\n\
         \"$SUP\" main -- sh -c 'exit 4'; echo \"rc=$?\"; cat /dev/termination-log; echo\n\
         \"$SUP\" main --grace=soon -- true; echo \"rc=$?\"; cat /dev/termination-log\n",
        u = path_str(&upper),
        w = path_str(&work)
    );
    let mut c = Command::new("unshare");
    c.args(["--mount", "--", "sh", "-c", &script])
        .env("SUP", bin());
    let o = run(c);
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(
        o.stdout
            .contains("rc=4\nmain: sh -c 'exit 4' exited with code 4"),
        "{o}"
    );
    assert!(
        o.stdout
            .contains("rc=2\nsupervisor: error: --grace: invalid duration \"soon\""),
        "{o}"
    );
    assert!(
        !Path::new("/dev/termination-log").exists(),
        "the host's /dev was touched"
    );
}

#[test]
fn help_reads_like_a_man_page() {
    let long = run(sup(["sidecar", "--help"]));
    assert_eq!(long.code(), Some(0), "{long}");
    for section in [
        "EXAMPLES",
        "DURATIONS",
        "SIGNALS",
        "EXIT CODES",
        "FILES",
        "ENVIRONMENT",
        "Stopping:",
        "Global options:",
    ] {
        assert!(long.stdout.contains(section), "{section}{long}");
    }
    assert_eq!(run(sup(["help", "sidecar"])).stdout, long.stdout);
    let short = run(sup(["sidecar", "-h"]));
    assert!(
        short.stdout.lines().count() * 2 < long.stdout.lines().count(),
        "{short}"
    );
    let top = run(sup(["--help"]));
    assert!(
        top.stdout.contains("Modes:") && top.stdout.contains("EXIT CODES"),
        "{top}"
    );
    let typo = run(sup(["sidecar", "--wait-fil", "/x", "--", "true"]));
    assert_eq!(typo.code(), Some(2));
    assert_eq!(
        typo.stderr.trim(),
        "supervisor: error: unknown option --wait-fil (did you mean --wait-file?)"
    );
    // The man page in the repository is the one the table generates (checked by a unit test);
    // here: it is there and names every option the help names.
    let man = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/supervisor.1"),
    )
    .unwrap();
    for opt in [
        "done\\-file",
        "requires",
        "term\\-signals",
        "stop\\-delay",
        "termination\\-log",
        "wait\\-file",
    ] {
        assert!(man.contains(&format!("\\-\\-{opt}")), "{opt}");
    }
}

#[test]
fn durations_as_kubernetes_writes_them() {
    for d in ["1m30s", "1h2m3s", "250ms", "1.5s", "90"] {
        let o = run(sup(["main", "--grace", d, "--timeout", d, "--", "true"]));
        assert_eq!(o.code(), Some(0), "{d}{o}");
    }
    let o = run(sup(["main", "--grace", "1m30", "--", "true"]));
    assert_eq!(o.code(), Some(2), "{o}");
    assert!(o.stderr.contains("\"30\" needs a unit"), "{o}");
}

/// Each preset against real listeners on its documented loopback ports, in a network namespace
/// of the test's own (so the ports cannot clash with anything on the machine).
#[test]
fn presets_reach_each_proxy_s_endpoints() {
    let ports = ["15020", "15021", "9901", "15000", "4191", "9090", "9091"];
    let mut c = Command::new("unshare");
    c.args([
        "--net",
        "--",
        "sh",
        "-c",
        "ip link set lo up && exec python3 \"$0\" \"$@\"",
    ]);
    c.arg(helper_str("admin.py")).args(ports);
    let mut admin = start(c);
    admin.expect_line("listening", DEADLINE);
    let netns = format!("--net=/proc/{}/ns/net", admin.pid());
    let in_ns = |args: &[&str]| {
        let mut c = Command::new("nsenter");
        c.arg(&netns).arg("--").arg(bin()).args(args);
        c.env_remove("RUST_LOG");
        run(c)
    };
    let cases = [
        (
            "istio",
            "GET 15021 /healthz/ready",
            "POST 15020 /quitquitquit",
        ),
        ("envoy", "GET 9901 /ready", "POST 9901 /quitquitquit"),
        (
            "envoy:15000",
            "GET 15000 /ready",
            "POST 15000 /quitquitquit",
        ),
        ("linkerd", "GET 4191 /ready", "POST 4191 /shutdown"),
        (
            "cloud-sql-proxy",
            "GET 9090 /startup",
            "POST 9091 /quitquitquit",
        ),
    ];
    for (preset, ready, quit) in cases {
        let o = in_ns(&["main", "--wait-for", preset, "--quit", preset, "--", "true"]);
        assert_eq!(o.code(), Some(0), "{preset}{o}");
        assert!(
            o.stderr
                .contains(&format!("--quit {preset} is POST http://127.0.0.1:")),
            "the expansion is logged{o}"
        );
        admin.expect_line(ready, DEADLINE);
        admin.expect_line(quit, DEADLINE);
        // The sidecar posts it to stop its daemon.
        // The stand-in does not really quit: the grace period ends it.
        let o = in_ns(&[
            "sidecar",
            "--quit",
            preset,
            "--grace",
            "200ms",
            "--wait-file",
            "/proc/self",
            "--",
            "sleep",
            "100",
        ]);
        assert_eq!(o.code(), Some(0), "{preset}{o}");
        admin.expect_line(quit, DEADLINE);
    }
}
