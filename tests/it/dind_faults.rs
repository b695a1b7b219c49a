//! scripts/dind-faults.sh: the seed's Docker-in-Docker Job, injected and played under faults.
//!
//! Theory of operation. The script is the test (docs/dind.md): each seed injects an un-wired dind
//! Job of examples/unwired/, plays it as a podman pod with a real dockerd, deals it a fault at a
//! moment the seed draws, and checks the run against the documented tables; it exits 0 only when
//! every run went as documented and nothing was left behind. Here CI runs it on seeds 1-15, which
//! play each of the three variants with each of the five faults once, and checks its summary. The
//! manifests are made by `kubectl-supervise inject -f FILE --main build` through the plugin's own
//! `cli::run` (the binary's main is that function), so the test needs no second binary built.
//! It uses the static binary and the podman directory of containers.rs, so the image cache is
//! shared. Without root, podman, runc, busybox or dockerd the podman tests skip loudly, and fail
//! under CI; the command-line and rule-table tests run everywhere.

use crate::containers::{podman_dir, static_bin};
use crate::examples;
use crate::util::{self, Outcome};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// The faults the script deals.
const FAULTS: [&str; 5] = [
    "none",
    "dockerd-killed",
    "build-killed",
    "pod-deleted",
    "dockerd-slow",
];

/// The variants the script plays, and the un-wired example each one injects.
const VARIANTS: &[(&str, &str)] = &[
    ("plain", "unwired/dind-job.yaml"),
    ("tls", "unwired/dind-job-tls.yaml"),
    ("native", "unwired/dind-job-native.yaml"),
];

/// A bound for the whole session: 15 runs of about 6 s, on a machine shared with the rest of
/// the suite (every run is bounded by the script itself too).
const SESSION_DEADLINE: Duration = Duration::from_secs(900);

/// What scripts/play.sh needs, and the files of docker.io the dind stand-in is made of; with
/// them, the right to play: one session at a time, so that a run's bound is not shared by the
/// dockerds of the other tests here on a machine of two cores.
fn can_play() -> Option<MutexGuard<'static, ()>> {
    static ONE_SESSION: Mutex<()> = Mutex::new(());
    if !crate::play::can_play() {
        return None;
    }
    util::tool("dockerd", "docker.io")?;
    Some(ONE_SESSION.lock().unwrap_or_else(|e| e.into_inner()))
}

fn podman_directory() -> PathBuf {
    std::env::var_os("SV_PODMAN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(podman_dir)
}

/// `bash scripts/dind-faults.sh ARGS` from the repository root.
fn script(args: &[&str]) -> Command {
    crate::play::script_cmd("scripts/dind-faults.sh", args, &podman_directory())
}

/// DIR/{plain,tls,native}.yaml: each un-wired variant as the README's one command injects it.
fn injected(dir: &Path) {
    for (variant, file) in VARIANTS {
        let path = util::path_str(&examples::examples_dir().join(file));
        let args = [
            "kubectl-supervise",
            "inject",
            "-f",
            &path,
            "--main",
            "build",
        ]
        .map(String::from);
        let text = crate::play::kubectl_supervise(&args);
        std::fs::write(dir.join(format!("{variant}.yaml")), text).expect("write");
    }
}

/// The script on the manifests injected into `dir`, with the static binary, and `args`.
fn session(dir: &Path, args: &[&str]) -> util::Proc {
    injected(dir);
    let bin = util::path_str(static_bin());
    let manifests = util::path_str(dir);
    let mut all = args.to_vec();
    all.extend(["--bin", &bin, "--manifests", &manifests]);
    util::start(script(&all))
}

/// The value of the summary line `label: VALUE`.
fn summary<'a>(out: &'a Outcome, label: &str) -> &'a str {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no summary line {label:?}{out}"))
        .trim()
}

#[test]
fn dind_faults_every_variant_under_every_fault() {
    let Some(_one) = can_play() else { return };
    let dir = util::tempdir();
    let out = session(dir.path(), &["15", "1"]).finish_with(SESSION_DEADLINE);
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(
        summary(&out, "runs:").starts_with("15 (native 5, plain 5, tls 5)"),
        "{out}"
    );
    for label in [
        "\"Cannot connect\" failures:",
        "builds started before dockerd answered:",
        "pods not finished within their bound:",
        "outcomes not as documented:",
        "left behind:",
        "runs with a violation:",
    ] {
        assert_eq!(summary(&out, label), "0", "{label}{out}");
    }
    // Each fault was dealt: seeds 1-15 pair every variant with every fault once.
    let faults = summary(&out, "faults:");
    for kind in FAULTS {
        assert!(faults.contains(kind), "no {kind} run{out}");
    }
}

/// The rules fire: a dind that says it is ready when its socket accepts (`unix:`, where dockerd
/// listens before it answers) lets the build start early, and a build that does not wait
/// cannot connect.
#[test]
fn dind_faults_catch_a_build_that_starts_too_early() {
    let Some(_one) = can_play() else { return };
    let dir = util::tempdir();
    injected(dir.path());
    let plain = dir.path().join("plain.yaml");
    let text = std::fs::read_to_string(&plain).expect("read");
    let cases = [
        (
            "--ready-when=docker:unix:///var/run/dind/docker.sock",
            "--ready-when=unix:/var/run/dind/docker.sock",
            "[early-start]",
            // Seed 5 of a plain run with a slow dockerd: it listens and answers nothing for
            // 3.23 s, so the window is always there (a real dockerd's own is a race).
            ("5", "dockerd-slow"),
        ),
        (
            "- --wait-for=file:/supervisor/dind.ready\n",
            "",
            "[cannot-connect]",
            ("1", "none"),
        ),
    ];
    for (from, to, rule, (seed, fault)) in cases {
        assert!(
            text.contains(from),
            "{from:?} not in the injected manifest:\n{text}"
        );
        std::fs::write(&plain, text.replace(from, to)).expect("write");
        let bin = util::path_str(static_bin());
        let manifests = util::path_str(dir.path());
        let out = util::start(script(&[
            "1",
            seed,
            "--variant",
            "plain",
            "--fault",
            fault,
            "--bin",
            &bin,
            "--manifests",
            &manifests,
        ]))
        .finish_with(SESSION_DEADLINE);
        assert_eq!(out.code(), Some(1), "{rule}{out}");
        assert!(out.stdout.contains(rule), "{rule}{out}");
        assert_eq!(summary(&out, "left behind:"), "0", "{out}");
    }
}

#[test]
fn dind_faults_interrupted_leaves_nothing_behind() {
    let Some(_one) = can_play() else { return };
    let dir = util::tempdir();
    // Seed 2 (native, no fault): the build waits for dockerd for a second or more, a window to
    // interrupt a pod that runs.
    let mut p = session(dir.path(), &["--seed", "2"]);
    let pid = p.pid();
    let podman = |args: &[&str]| crate::play::podman_in(&podman_directory(), args);
    let ours = |name: &str| name.ends_with(&format!("-df{pid}s2"));
    let running = util::wait_until(Duration::from_secs(300), || {
        let pods = podman(&["pod", "ls", "--format", "{{.Name}} {{.Status}}"]);
        pods.stdout
            .lines()
            .filter_map(|l| l.strip_suffix(" Running"))
            .any(ours)
    });
    assert!(
        running,
        "no pod of the session ran{}",
        p.finish_with(Duration::from_secs(5))
    );
    p.signal(15);
    let out = p.finish_with(Duration::from_secs(60));
    assert_eq!(out.code(), Some(143), "{out}");
    assert!(out.stderr.contains("interrupted (SIGTERM)"), "{out}");
    for what in ["pod", "volume"] {
        let left = podman(&[what, "ls", "--format", "{{.Name}}"]);
        assert!(
            !left.stdout.lines().any(ours),
            "{what} left behind: {}{out}",
            left.stdout
        );
    }
}

#[test]
fn dind_faults_bad_command_lines_are_one_line() {
    for (args, line) in [
        (
            &["--bogus"][..],
            "dind-faults: unrecognized arguments: --bogus",
        ),
        (&["ten"], "dind-faults: N and FIRST are numbers: ten"),
        (
            &["--bound", "soon"],
            "dind-faults: --bound soon is not a duration (90, 90s, 2m, 1m30s, 500ms)",
        ),
        (
            &["--variant", "rootless"],
            "dind-faults: --variant rootless: one of plain, tls, native",
        ),
        (
            &["--fault", "oom"],
            "dind-faults: --fault oom: one of none, dockerd-killed, build-killed, pod-deleted, dockerd-slow",
        ),
        (
            &["--bin", "/nonexistent"],
            "dind-faults: --bin /nonexistent: no executable supervisor binary there",
        ),
        (
            &["--manifests", "/nonexistent"],
            "dind-faults: --manifests /nonexistent: not a directory",
        ),
    ] {
        let out = util::run(script(args));
        assert_eq!(out.code(), Some(2), "{out}");
        assert_eq!(out.stderr.trim_end(), line, "{out}");
        assert!(out.stdout.is_empty(), "{out}");
    }
    let out = util::run(script(&["--help"]));
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(out.stdout.contains("--seed S"), "{out}");
}

/// docs/dind.md's table of rules is the script's own (`--rules`), between its markers.
#[test]
fn dind_faults_rules_are_the_documented_ones() {
    let out = util::run(script(&["--rules"]));
    assert_eq!(out.code(), Some(0), "{out}");
    let doc = std::fs::read_to_string(examples::repo().join("docs/dind.md")).expect("docs/dind.md");
    let table = doc
        .split("<!-- begin dind-faults --rules -->\n")
        .nth(1)
        .and_then(|t| t.split("<!-- end dind-faults --rules -->").next())
        .expect("the rules' markers in docs/dind.md");
    assert_eq!(
        table.trim_end(),
        out.stdout.trim_end(),
        "docs/dind.md's rules differ from `scripts/dind-faults.sh --rules`: paste its output"
    );
}
