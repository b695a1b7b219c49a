//! `supervisor main`: exit codes, signals, the marker, PID 1 duties, fail-fast checks, logs.

use crate::util::*;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::time::Duration;

fn main_cmd(done: Option<&std::path::Path>, extra: &[&str], cmd: &[&str]) -> std::process::Command {
    let mut args: Vec<String> = vec!["main".into()];
    if let Some(d) = done {
        args.push("--done-file".into());
        args.push(path_str(d));
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push("--".into());
    args.extend(cmd.iter().map(|s| s.to_string()));
    sup(args)
}

#[test]
fn version_and_help() {
    let o = run(sup(["--version"]));
    assert_eq!(o.code(), Some(0), "{o}");
    // `supervisor VERSION (COMMIT, TARGET)`: what a binary found in an image was built as.
    let inner = o
        .stdout
        .strip_prefix(&format!("supervisor {} (", env!("CARGO_PKG_VERSION")))
        .and_then(|s| s.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not `supervisor VERSION (COMMIT, TARGET)`: {o}"));
    let (commit, target) = inner.split_once(", ").expect("commit, target");
    assert!(!commit.is_empty(), "{o}");
    assert_eq!(target.split('-').count(), 4, "a target triple: {o}");
    let o = run(sup(["--help"]));
    assert_eq!(o.code(), Some(0), "{o}");
    for word in ["main", "sidecar", "probe", "install"] {
        assert!(o.stdout.contains(word), "{word} missing from help: {o}");
    }
    let o = run(sup(["main", "--help"]));
    for flag in [
        "--done-file",
        "--grace",
        "--wait-for",
        "--wait-timeout",
        "--quit-url",
        "--heartbeat",
        "SUPERVISOR_DONE_FILE",
    ] {
        assert!(
            o.stdout.contains(flag),
            "{flag} missing from main --help: {o}"
        );
    }
}

#[test]
fn exit_codes_pass_through() {
    for (script, want) in [
        ("exit 0", 0),
        ("exit 3", 3),
        ("exit 255", 255),
        ("kill -TERM $$", 143),
        ("kill -KILL $$", 137),
        ("kill -USR1 $$", 138),
    ] {
        let o = run(main_cmd(None, &[], &["sh", "-c", script]));
        assert_eq!(o.code(), Some(want), "{script}: {o}");
    }
}

#[test]
fn exec_failures_are_127_and_126_and_leave_a_marker() {
    let d = tempdir();
    let done = d.path().join("done");
    let o = run(main_cmd(Some(&done), &[], &["/no/such/command", "arg"]));
    assert_eq!(o.code(), Some(127), "{o}");
    assert!(
        o.stderr.contains("/no/such/command"),
        "error must name the command: {o}"
    );
    let m = read_json(&done);
    assert_eq!(m["exit_code"], 127);
    assert_eq!(m["reason"], "exec-failed");
    assert!(m["error"].as_str().unwrap().contains("not found"), "{m}");

    let o = run(main_cmd(Some(&done), &[], &["no-such-command-in-path"]));
    assert_eq!(o.code(), Some(127), "{o}");

    let script = d.path().join("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = run(main_cmd(Some(&done), &[], &[&path_str(&script)]));
    assert_eq!(o.code(), Some(126), "{o}");
    assert_eq!(read_json(&done)["exit_code"], 126);
    assert_eq!(read_json(&done)["reason"], "exec-failed");

    let o = run(main_cmd(Some(&done), &[], &[&path_str(d.path())]));
    assert_eq!(o.code(), Some(126), "a directory is not executable: {o}");
}

#[test]
fn usage_errors_exit_2_name_the_value_and_start_nothing() {
    let d = tempdir();
    let witness = d.path().join("ran");
    let touch = format!("touch {}", path_str(&witness));
    let cases: &[(&[&str], &str)] = &[
        (&["--grace", "5x"], "5x"),
        (&["--grace", "-1"], "-1"),
        (&["--wait-for", "gopher://x"], "gopher://x"),
        (&["--wait-timeout", "soon"], "soon"),
        (&["--quit-url", "http://10.0.0.1/quit"], "10.0.0.1"),
        (&["--quit-url", "localhost:80"], "localhost:80"),
        (&["--heartbeat", "1s"], "--done-file"),
        (&["--log-level", "loud"], "loud"),
        (&["--no-such-flag"], "--no-such-flag"),
    ];
    for (extra, needle) in cases {
        let o = run(main_cmd(None, extra, &["sh", "-c", &touch]));
        assert_eq!(o.code(), Some(2), "{extra:?}: {o}");
        assert!(
            o.stderr.contains(needle),
            "{extra:?}: message must name {needle:?}: {o}"
        );
        assert!(
            !witness.exists(),
            "{extra:?}: the command ran despite a usage error"
        );
    }
    let o = run(sup(["main"]));
    assert_eq!(o.code(), Some(2), "missing command: {o}");
    let o = run(sup(["frobnicate"]));
    assert_eq!(o.code(), Some(2), "unknown mode: {o}");
}

#[test]
fn options_read_environment_variables() {
    let d = tempdir();
    let done = d.path().join("done");
    let mut c = main_cmd(None, &[], &["sh", "-c", "exit 5"]);
    c.env("SUPERVISOR_DONE_FILE", &done);
    let o = run(c);
    assert_eq!(o.code(), Some(5), "{o}");
    assert_eq!(read_json(&done)["exit_code"], 5);

    let mut c = main_cmd(None, &[], &["true"]);
    c.env("SUPERVISOR_GRACE", "nonsense");
    let o = run(c);
    assert_eq!(o.code(), Some(2), "{o}");
    assert!(o.stderr.contains("nonsense"), "{o}");
}

#[test]
fn marker_content_for_a_normal_exit() {
    let d = tempdir();
    let done = d.path().join("done");
    let o = run(main_cmd(Some(&done), &[], &["sh", "-c", "exit 7"]));
    assert_eq!(o.code(), Some(7), "{o}");
    let m = read_json(&done);
    assert_eq!(m["version"], 1);
    assert_eq!(m["exit_code"], 7);
    assert_eq!(m["reason"], "exited");
    assert!(m["signal"].is_null(), "{m}");
    for k in ["started_at", "finished_at"] {
        let t = m[k].as_str().unwrap();
        assert!(
            t.len() == 24 && t.ends_with('Z') && &t[10..11] == "T",
            "{k} not RFC 3339: {t}"
        );
    }
    assert!(m["finished_at"].as_str() >= m["started_at"].as_str());
    assert_eq!(m["command"], serde_json::json!(["sh", "-c", "exit 7"]));
    let mode = std::fs::metadata(&done).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    // Nothing else is left in the directory: no temp file, and the lease is released.
    let names: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["done"], "leftovers in the marker directory");
}

#[test]
fn stale_marker_is_removed_before_the_command_starts() {
    let d = tempdir();
    let done = d.path().join("done");
    std::fs::write(&done, "{\"exit_code\":0}").unwrap();
    let check = format!("test ! -e {}", path_str(&done));
    let o = run(main_cmd(Some(&done), &[], &["sh", "-c", &check]));
    assert_eq!(o.code(), Some(0), "the command saw the stale marker: {o}");
    assert!(o.stderr.contains("stale marker"), "{o}");
    assert_eq!(read_json(&done)["exit_code"], 0);
}

#[test]
fn fails_fast_when_the_marker_directory_is_missing() {
    let d = tempdir();
    let witness = d.path().join("ran");
    let done = d.path().join("missing/dir/done");
    let o = run(main_cmd(Some(&done), &[], &["touch", &path_str(&witness)]));
    assert_eq!(o.code(), Some(125), "{o}");
    assert!(
        o.stderr.contains(&path_str(&d.path().join("missing/dir"))),
        "must name the path: {o}"
    );
    assert!(
        o.stderr.contains("No such file or directory"),
        "must give the OS error: {o}"
    );
    assert!(
        !witness.exists(),
        "the command ran although the marker could never be written"
    );
}

#[test]
fn fails_fast_on_a_read_only_marker_directory() {
    // A real read-only mount in a private mount namespace.
    let d = tempdir();
    let mnt = d.path().join("shared");
    std::fs::create_dir(&mnt).unwrap();
    let witness = d.path().join("ran");
    let script = format!(
        "mount -t tmpfs -o ro,size=64k tmpfs {m} && exec {b} main --done-file {m}/done -- touch {w}",
        m = path_str(&mnt),
        b = bin(),
        w = path_str(&witness)
    );
    let mut c = std::process::Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "sh", "-c", &script]);
    let o = run(c);
    assert_eq!(o.code(), Some(125), "{o}");
    assert!(
        o.stderr.contains("Read-only file system"),
        "must give the OS error: {o}"
    );
    assert!(
        o.stderr.contains(&path_str(&mnt)),
        "must name the directory: {o}"
    );
    assert!(!witness.exists());
}

#[test]
fn forwards_signals_to_the_child() {
    let d = tempdir();
    let done = d.path().join("done");
    let mut c = main_cmd(Some(&done), &[], &[]);
    c.args(signal_echo());
    c.env("ECHO_EXIT_ON_TERM", "1");
    let mut p = start(c);
    p.expect_line("ready", DEADLINE);
    for (sig, name) in [
        (1, "SIGHUP"),
        (10, "SIGUSR1"),
        (12, "SIGUSR2"),
        (28, "SIGWINCH"),
        (3, "SIGQUIT"),
        (14, "SIGALRM"),
        (2, "SIGINT"),
    ] {
        p.signal(sig);
        p.expect_line(&format!("got {name}"), DEADLINE);
    }
    p.signal(15);
    p.expect_line("got SIGTERM", DEADLINE);
    let o = p.finish();
    assert_eq!(o.code(), Some(0), "the child exited 0 on TERM: {o}");
    // INT came first: it is the stop request; TERM was passed on after it.
    let m = read_json(&done);
    assert_eq!(
        (m["reason"].as_str(), m["stop_request"].as_str()),
        (Some("stopped"), Some("INT"))
    );
}

#[test]
fn signals_reach_the_whole_process_group() {
    // A shell that starts two signal-echo children and waits: TERM to the supervisor must reach
    // both grandchildren, not only the shell.
    let script = format!(
        "trap 'echo shell got USR1' USR1; trap 'echo shell got TERM' TERM; python3 '{e}' & python3 '{e}' & wait; wait; wait",
        e = helper_str("signal_echo.py")
    );
    let mut p = start(main_cmd(None, &["--grace", "10s"], &["sh", "-c", &script]));
    p.expect_line("ready", DEADLINE);
    p.expect_line("ready", DEADLINE);
    p.signal(10);
    p.expect_line("got SIGUSR1", DEADLINE);
    p.expect_line("got SIGUSR1", DEADLINE);
    p.signal(15);
    let o = p.finish();
    assert_eq!(o.stdout.matches("got SIGTERM").count(), 2, "{o}");
}

#[test]
fn grace_period_ends_in_sigkill_of_the_group() {
    let d = tempdir();
    let done = d.path().join("done");
    let pidfile = d.path().join("grandchild");
    // The shell and its background grandchild both ignore TERM.
    let script = format!(
        "trap '' TERM; sh -c 'trap \"\" TERM; echo $$ > {pf}; exec sleep 1000' & echo ready; wait",
        pf = path_str(&pidfile)
    );
    let mut p = start(main_cmd(
        Some(&done),
        &["--grace", "300ms"],
        &["sh", "-c", &script],
    ));
    p.expect_line("ready", DEADLINE);
    assert!(wait_until(DEADLINE, || std::fs::read_to_string(&pidfile)
        .map(|s| s.ends_with('\n'))
        .unwrap_or(false)));
    let grandchild: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let t0 = std::time::Instant::now();
    p.signal(15);
    let o = p.finish();
    let took = t0.elapsed();
    assert_eq!(o.code(), Some(137), "{o}");
    assert!(
        took >= Duration::from_millis(300),
        "killed before the grace period: {took:?}"
    );
    let m = read_json(&done);
    assert_eq!(m["reason"], "grace-killed", "{m}");
    assert_eq!(m["signal"], "KILL", "{m}");
    assert!(o.stderr.contains("killing its process group"), "{o}");
    assert!(
        wait_until(DEADLINE, || !alive(grandchild)),
        "grandchild {grandchild} survived the group SIGKILL"
    );
}

#[test]
fn marker_records_a_signal_death() {
    let d = tempdir();
    let done = d.path().join("done");
    let mut p = start(main_cmd(
        Some(&done),
        &[],
        &["sh", "-c", "echo ready; exec sleep 1000"],
    ));
    p.expect_line("ready", DEADLINE);
    p.signal(15);
    let o = p.finish();
    assert_eq!(o.code(), Some(143), "{o}");
    let m = read_json(&done);
    assert_eq!(m["reason"], "stopped", "{m}");
    assert_eq!(m["signal"], "TERM");
    assert_eq!(m["stop_request"], "TERM");
    assert_eq!(m["exit_code"], 143);
}

#[test]
fn child_gets_clean_signal_state_cwd_env_and_stdio() {
    let d = tempdir();
    let mut c = main_cmd(
        None,
        &[],
        &[
            "sh",
            "-c",
            "grep -E '^Sig(Blk|Ign)' /proc/self/status; pwd; echo \"$MY_VAR\"; echo to-stderr >&2",
        ],
    );
    c.current_dir(d.path());
    c.env("MY_VAR", "kept");
    // Start the supervisor with signals ignored and blocked, as a sloppy parent might.
    // SAFETY: signal/sigprocmask are async-signal-safe and run between fork and exec.
    unsafe {
        c.pre_exec(|| {
            let mut set: [u64; 16] = [0; 16];
            set[0] = (1 << (10 - 1)) | (1 << (12 - 1));
            sigprocmask(0, set.as_ptr(), std::ptr::null_mut());
            signal(1, 1);
            signal(3, 1);
            Ok(())
        });
    }
    let o = run(c);
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(
        o.stdout.contains("SigBlk:\t0000000000000000"),
        "inherited a blocked mask: {o}"
    );
    assert!(
        o.stdout.contains("SigIgn:\t0000000000000000"),
        "inherited ignored signals: {o}"
    );
    let canon = std::fs::canonicalize(d.path()).unwrap();
    assert!(o.stdout.contains(&path_str(&canon)), "cwd changed: {o}");
    assert!(o.stdout.contains("kept"), "env lost: {o}");
    assert!(o.stderr.contains("to-stderr"), "stderr not inherited: {o}");
}

unsafe extern "C" {
    fn sigprocmask(how: i32, set: *const u64, old: *mut u64) -> i32;
    fn signal(sig: i32, handler: usize) -> usize;
}

#[test]
fn becomes_a_subreaper_when_not_pid_1() {
    let d = tempdir();
    let pidfile = d.path().join("orphan");
    // The orphan's parent (the subshell) exits at once; it must re-parent to the supervisor.
    let script = format!(
        "(sleep 1000 & echo $! > {pf}.tmp; mv {pf}.tmp {pf}); echo ready; exec sleep 1000",
        pf = path_str(&pidfile)
    );
    let mut p = start(main_cmd(None, &["--grace", "1s"], &["sh", "-c", &script]));
    p.expect_line("ready", DEADLINE);
    assert!(wait_until(DEADLINE, || pidfile.exists()));
    let orphan: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let ppid = || {
        std::fs::read_to_string(format!("/proc/{orphan}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("PPid:"))
                    .map(|l| l[5..].trim().parse::<i32>().unwrap())
            })
    };
    assert!(
        wait_until(DEADLINE, || ppid() == Some(p.pid())),
        "orphan's parent is {:?}, not the supervisor {}",
        ppid(),
        p.pid()
    );
    p.signal(15);
    let o = p.finish();
    assert_eq!(o.code(), Some(143), "{o}");
}

#[test]
fn as_pid_1_it_reaps_orphans_and_propagates_the_code() {
    // 200 orphans become zombies unless PID 1 reaps them; the job counts zombies until none are
    // left (with a deadline) and reports how many it saw last.
    let script = r#"
        [ $$ -ne 1 ] || { echo "the job must not be PID 1"; exit 90; }
        i=0; while [ $i -lt 200 ]; do (true &) ; i=$((i+1)); done
        n=0
        while :; do
            z=$(grep -l '^State:.*Z' /proc/[0-9]*/status 2>/dev/null | wc -l)
            [ "$z" -eq 0 ] && break
            n=$((n+1)); [ $n -gt 400 ] && { echo "zombies left: $z"; exit 91; }
            sleep 0.01
        done
        echo "pid1=$(cat /proc/1/comm)"
        exit 42
    "#;
    let o = run(sup_in_pid_ns(["main", "--", "sh", "-c", script]));
    assert_eq!(o.code(), Some(42), "{o}");
    assert!(o.stdout.contains("pid1=supervisor"), "{o}");
}

#[test]
fn as_pid_1_signals_from_outside_are_forwarded() {
    let d = tempdir();
    let done = d.path().join("done");
    let mut c = sup_in_pid_ns(["main", "--done-file", &path_str(&done), "--"]);
    c.args(signal_echo());
    let mut p = start(c);
    p.expect_line("ready", DEADLINE);
    // The namespace's PID 1 is the child of the unshare process.
    let init = children(p.pid());
    assert_eq!(init.len(), 1, "{init:?}");
    // SIGTERM to the host-side pid of the namespace's init, as the kubelet's runtime does.
    kill(init[0], 10);
    p.expect_line("got SIGUSR1", DEADLINE);
    kill(init[0], 15);
    p.expect_line("got SIGTERM", DEADLINE);
    let o = p.finish();
    assert_eq!(o.code(), Some(0), "{o}");
    assert_eq!(read_json(&done)["exit_code"], 0);
}

#[test]
fn logs_one_line_at_start_and_one_at_the_end() {
    let d = tempdir();
    let done = d.path().join("done");
    let o = run(main_cmd(Some(&done), &[], &["sh", "-c", "exit 3"]));
    let lines: Vec<&str> = o.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{o}");
    assert!(lines[0].contains("started sh -c 'exit 3'"), "{o}");
    assert!(lines[1].contains("exited with code 3 after"), "{o}");
    assert!(
        lines[1].contains(&format!("marker written to {}", path_str(&done))),
        "{o}"
    );

    let o = run(main_cmd(Some(&done), &["--log-format", "json"], &["true"]));
    for l in o.stderr.lines() {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v["message"].is_string(), "{l}");
        assert_eq!(v["mode"], "main", "{l}");
        assert!(v["level"].is_string(), "{l}");
    }
    let o = run(main_cmd(Some(&done), &["--log-level", "error"], &["true"]));
    assert_eq!(o.stderr, "", "{o}");
    let mut c = main_cmd(Some(&done), &[], &["true"]);
    c.env("RUST_LOG", "warn");
    let o = run(c);
    assert_eq!(o.stderr, "", "{o}");
}
