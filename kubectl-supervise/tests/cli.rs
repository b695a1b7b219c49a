//! The built `kubectl-supervise` binary: exit codes, and nothing on stdout on bad input.

// Test helpers may unwrap: a failure is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubectl-supervise"))
        .args(args)
        .env_remove("KUBECTL_SUPERVISE_IMAGE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kubectl-supervise");
    // A usage error exits before reading stdin: a broken pipe is fine then.
    let written = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes());
    if let Err(e) = written {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
    }
    child.wait_with_output().expect("wait")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Bad input: exit 2, one line on stderr containing `needle`, nothing on stdout.
fn assert_usage(out: &Output, needle: &str) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty(), "stdout: {}", text(&out.stdout));
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(err.contains(needle), "{err:?} lacks {needle:?}");
}

#[test]
fn inject_reads_stdin_and_files_and_exits_0() {
    let unwired = repo("examples/unwired/demo-pod.yaml");
    let text_in = std::fs::read_to_string(&unwired).expect("read");
    let from_file = run(
        &[
            "inject",
            "-f",
            unwired.to_str().expect("utf-8"),
            "--main",
            "job",
            "--image",
            "reg/sv:1",
        ],
        "",
    );
    assert_eq!(from_file.status.code(), Some(0), "{from_file:?}");
    let out = text(&from_file.stdout);
    assert!(out.contains("image: reg/sv:1"), "{out}");
    let from_stdin = run(&["inject", "--main=job", "--image=reg/sv:1"], &text_in);
    assert_eq!(from_stdin.stdout, from_file.stdout);
    // Its output checks clean.
    let checked = run(&["check"], &out);
    assert_eq!(checked.status.code(), Some(0), "{checked:?}");
    assert!(checked.stdout.is_empty());
}

#[test]
fn check_exit_codes() {
    let good = repo("examples/onfailure-job.yaml");
    let out = run(&["check", "-f", good.to_str().expect("utf-8")], "");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let bad = std::fs::read_to_string(&good).expect("read").replacen(
        "            - --on=success\n",
        "",
        1,
    );
    let out = run(&["check", "-f", "-"], &bad);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let lines = text(&out.stdout);
    assert_eq!(lines.lines().count(), 1, "{lines}");
    assert!(
        lines.starts_with("stdin: Job/integration-tests: container redis: ")
            && lines.trim_end().ends_with("[on-failure-any]"),
        "{lines}"
    );
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    assert_usage(&run(&["inject"], "a: [\n"), "invalid YAML");
    assert_usage(&run(&["check"], "kind: Pod\nkind: Pod\n"), "duplicate key");
    assert_usage(&run(&["inject", "--frobnicate"], ""), "--frobnicate");
    assert_usage(&run(&["bogus"], ""), "bogus");
    // clap's suggestions, on the same line.
    assert_usage(
        &run(&["inject", "--mian", "x"], ""),
        "--mian' found (did you mean --main?)",
    );
    assert_usage(&run(&["chekc"], ""), "(did you mean check?)");
    assert_usage(
        &run(&["check", "-f", "/nonexistent/x.yaml"], ""),
        "cannot read /nonexistent/x.yaml",
    );
    let two = std::fs::read_to_string(repo("examples/unwired/demo-pod.yaml")).expect("read");
    assert_usage(
        &run(&["inject", "--main", "nope"], &two),
        "no container named nope",
    );
    assert_usage(&run(&["inject"], &two), "name the main ones with --main");
    assert_usage(
        &run(&["inject", "--main", "job", "--ready", "redis"], &two),
        "--ready",
    );
    assert_usage(
        &run(&["inject", "--main", "job", "--wait-timeout", "soon"], &two),
        "--wait-timeout",
    );
}

#[test]
fn help_and_version_exit_0() {
    let out = run(&["--help"], "");
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("inject"));
    let out = run(&["inject", "--help"], "");
    assert!(text(&out.stdout).contains("--ready <SIDECAR=TARGET>"));
    let out = run(&["--version"], "");
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).starts_with("kubectl-supervise "));
}
