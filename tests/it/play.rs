//! scripts/play.sh: every example played by the one command a newcomer runs, and its failure
//! paths.
//!
//! Theory of operation. Each test runs `bash scripts/play.sh ...` from the repository root, as
//! the README tells a newcomer to, and checks what they would see: the exit code (the pod's
//! result), a few lines of the containers' logs and of the timeline, and that nothing is left
//! behind (no pod, no volume). The script gets the static binary and the podman directory of the
//! container tests (containers.rs: `static_bin()`, target/tmp/podman or SV_PODMAN_DIR),
//! so both share one image cache, whose builds hold the flock of scripts/podman-env.sh. Plays
//! run in parallel, as two newcomers' would: every pod and volume has a name of its own. Tests
//! that play need root, podman, runc and busybox: without them they are skipped with a loud
//! message, except under CI (CI set to anything), where they fail. The failure paths that stop
//! before podman (a bad command line, a missing file, podman missing from PATH) run everywhere.

use crate::containers::static_bin;
use crate::examples;
use crate::util::{self, Outcome};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Every example, and the test that plays it.
const PLAYED: &[(&str, &str)] = &[
    ("buildkite/pipeline.yml", "play_buildkite_step"),
    (
        "cronjob-cloud-sql-proxy.yaml",
        "play_cronjob_cloud_sql_proxy",
    ),
    ("demo-pod.yaml", "play_demo_pod_and_its_failure"),
    (
        "dind-job-native-sidecar.yaml",
        "play_dind_job_native_sidecar",
    ),
    ("dind-job.yaml", "play_dind_job"),
    (
        "onfailure-job.yaml",
        "play_onfailure_job_and_its_backoff_limit",
    ),
    (
        "pipeline-sidecar/fluent-bit-sidecar.json",
        "play_pipeline_sidecar_spec",
    ),
    (
        "unwired/cronjob-cloud-sql-proxy.yaml",
        "play_unwired_examples_injected",
    ),
    (
        "unwired/demo-pod.yaml",
        "play_unwired_demo_pod_as_is_and_injected",
    ),
    (
        "unwired/dind-job-native.yaml",
        "play_unwired_examples_injected",
    ),
    (
        "unwired/dind-job-tls.yaml",
        "play_unwired_examples_injected",
    ),
    ("unwired/dind-job.yaml", "play_unwired_examples_injected"),
];

/// The files of examples/ that play.sh refuses, with the line that says why.
const NOT_PLAYABLE: &[(&str, &str)] = &[
    (
        "README.md",
        "play: examples/README.md: not a manifest: play.sh reads .yaml, .yml and .json files",
    ),
    (
        "pipeline-sidecar/fluent-bit-config.yaml",
        "play: examples/pipeline-sidecar/fluent-bit-config.yaml: nothing to play: no Pod, Job, \
         CronJob, Buildkite step with the kubernetes plugin, or container spec (found: ConfigMap \
         fluent-bit-config; a ConfigMap is played with the pod that mounts it)",
    ),
];

/// How long one play may take: the first run builds every image (about 20 s), a dind pod plays
/// in about 5 s.
const PLAY_DEADLINE: Duration = Duration::from_secs(300);

/// Whether the tests that play can run here; false after [`util::skip`] (a failure under CI).
pub(crate) fn can_play() -> bool {
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    let missing: Vec<&str> = [
        ("root", root),
        ("podman", util::which("podman").is_some()),
        ("runc", util::which("runc").is_some()),
        ("busybox (busybox-static)", util::which("busybox").is_some()),
    ]
    .iter()
    .filter(|(_, ok)| !ok)
    .map(|(what, _)| *what)
    .collect();
    if missing.is_empty() {
        return true;
    }
    util::skip(&format!("scripts/play.sh needs {}", missing.join(", ")));
    false
}

fn podman_dir() -> PathBuf {
    std::env::var_os("SV_PODMAN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("podman"))
}

/// `bash SCRIPT ARGS` from the repository root with the podman of `dir`, and no binary named
/// (a run that plays gets one with `SV_STATIC_BIN` or `--bin`).
pub(crate) fn script_cmd(script: &str, args: &[&str], dir: &Path) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(script)
        .args(args)
        .current_dir(examples::repo())
        .env("SV_PODMAN_DIR", dir)
        .env_remove("SV_STATIC_BIN");
    cmd
}

/// `bash scripts/play.sh ARGS` with the tests' podman, for a run that stops before it needs the
/// binary (it would build one).
fn play_cmd(args: &[&str]) -> Command {
    script_cmd("scripts/play.sh", args, &podman_dir())
}

/// [`play_cmd`] with the static binary of the container tests: a run that plays.
fn player_cmd(args: &[&str]) -> Command {
    let mut cmd = play_cmd(args);
    cmd.env("SV_STATIC_BIN", static_bin());
    cmd
}

/// [`player_cmd`] for `scripts/play.sh -` with `file` on its stdin (which util::start would
/// close: a shell redirects it).
fn player_cmd_stdin(file: &Path) -> Command {
    let cmd = player_cmd(&[]);
    let mut sh = Command::new("bash");
    sh.arg("-c")
        .arg(r#"exec bash scripts/play.sh - <"$0""#)
        .arg(file)
        .current_dir(examples::repo());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    sh
}

fn play(args: &[&str]) -> Outcome {
    util::start(player_cmd(args)).finish_with(PLAY_DEADLINE)
}

/// podman on the tests' private storage.
fn podman(args: &[&str]) -> Outcome {
    podman_in(&podman_dir(), args)
}

/// podman on the private storage of scripts/podman-env.sh in `dir`.
pub(crate) fn podman_in(dir: &Path, args: &[&str]) -> Outcome {
    let mut cmd = Command::new("podman");
    cmd.args(args)
        .env("CONTAINERS_CONF", dir.join("containers.conf"))
        .env("CONTAINERS_STORAGE_CONF", dir.join("storage.conf"));
    util::run(cmd)
}

/// The names of the pods a play printed (`pod NAME: ...` headers).
fn pods_of(out: &Outcome) -> Vec<String> {
    out.stdout
        .lines()
        .filter_map(|l| l.strip_prefix("pod play-"))
        .filter_map(|l| l.split_once(':'))
        .map(|(name, _)| format!("play-{name}"))
        .collect()
}

/// Asserts that the play left no pod and no volume of its own behind.
fn assert_cleaned_up(out: &Outcome) {
    let pods = pods_of(out);
    assert!(!pods.is_empty(), "no pod header in the output{out}");
    let volumes = podman(&["volume", "ls", "--format", "{{.Name}}"]);
    for pod in pods {
        let exists = podman(&["pod", "exists", &pod]);
        assert_eq!(exists.code(), Some(1), "pod {pod} left behind{out}");
        let id = pod.rsplit('-').next().expect("run id");
        assert!(
            !volumes
                .stdout
                .lines()
                .any(|v| v.ends_with(&format!("-{id}"))),
            "volumes of {pod} left behind: {}{out}",
            volumes.stdout
        );
    }
}

/// Whether some line of stdout contains every one of `parts` (a timeline line: who and what).
fn has_line(out: &Outcome, parts: &[&str]) -> bool {
    out.stdout
        .lines()
        .any(|l| parts.iter().all(|p| l.contains(p)))
}

/// Plays `args`, expects exit `code`, a line with all the parts of each of `lines`, and nothing
/// left behind.
fn assert_plays(args: &[&str], code: i32, lines: &[&[&str]]) -> Outcome {
    let out = play(args);
    assert_eq!(out.code(), Some(code), "{out}");
    for parts in lines {
        assert!(has_line(&out, parts), "no line with {parts:?}{out}");
    }
    assert_cleaned_up(&out);
    out
}

#[test]
fn play_demo_pod_and_its_failure() {
    if !can_play() {
        return;
    }
    assert_plays(
        &["examples/demo-pod.yaml"],
        0,
        &[
            &["job: redis says: hello from the main container"],
            &["redis", "sidecar: daemon ready after"],
            &["redis", "sidecar: marker /shared/job.done arrived"],
            &["redis", "container exited with code 0"],
            &["pod Succeeded"],
        ],
    );
    assert_plays(
        &["--fail", "examples/demo-pod.yaml"],
        3,
        &[
            &["job: failing on purpose (play.sh --fail)"],
            &[
                "redis",
                "stopped in",
                "(main's code 3); it exited with code 0",
            ],
            &["pod Failed: job (main) exited with code 3"],
        ],
    );
}

#[test]
fn play_dind_job() {
    if !can_play() {
        return;
    }
    assert_plays(
        &["examples/dind-job.yaml"],
        0,
        &[
            &["built image sha256:"],
            &["build", "main: started sh -ec <script>"],
            &[
                "dind",
                "stopped in",
                "after the main finished (main's code 0)",
            ],
            &["dind", "container exited with code 0"],
            &["pod Succeeded"],
        ],
    );
}

#[test]
fn play_dind_job_native_sidecar() {
    if !can_play() {
        return;
    }
    assert_plays(
        &["examples/dind-job-native-sidecar.yaml"],
        0,
        &[
            &["note: dind is a native sidecar"],
            &[
                "dind",
                "startupProbe passed: /supervisor/bin/supervisor probe unix:",
            ],
            &["the others are done: SIGTERM to dind (the kubelet's part)"],
            &["dind", "on TERM; it exited with code 0"],
            &["pod Succeeded"],
        ],
    );
}

#[test]
fn play_cronjob_cloud_sql_proxy() {
    if !can_play() {
        return;
    }
    assert_plays(
        &["examples/cronjob-cloud-sql-proxy.yaml"],
        0,
        &[
            &["CronJob nightly-refresh (one run of its job)"],
            &["psql stand-in"],
            &[
                "refresh",
                "quit URL http://127.0.0.1:9091/quitquitquit answered 200",
            ],
            &["stand-in cloud-sql-proxy: /quitquitquit received, exiting 0"],
            &["pod Succeeded"],
        ],
    );
}

#[test]
fn play_onfailure_job_and_its_backoff_limit() {
    if !can_play() {
        return;
    }
    assert_plays(
        &["examples/onfailure-job.yaml"],
        0,
        &[
            &["flaky failure on the first attempt"],
            &["tests", "restarted for restartPolicy OnFailure (restart 1,"],
            &["tests passed on attempt 2"],
            &["pod Succeeded"],
        ],
    );
    // Every attempt fails: the Job's backoffLimit (4) ends the pod, which keeps the code.
    assert_plays(
        &["--fail", "examples/onfailure-job.yaml"],
        3,
        &[
            &["tests", "restarted for restartPolicy OnFailure (restart 4,"],
            &["backoffLimit 4 used up: stopping the pod"],
            &["redis", "on TERM; it exited with code 0"],
            &["pod Failed: tests failed 5 times: the Job's backoffLimit (4) is used up"],
        ],
    );
}

#[test]
fn play_buildkite_step() {
    if !can_play() {
        return;
    }
    let out = assert_plays(
        &["examples/buildkite/pipeline.yml"],
        0,
        &[
            &["Buildkite step ':docker: build' (the pod agent-stack-k8s builds)"],
            &["the others are done: SIGTERM to dind (the kubelet's part)"],
            &["dind", "on TERM; it exited with code 0"],
            &["pod Succeeded"],
        ],
    );
    assert!(
        has_line(&out, &["Successfully built"]) || has_line(&out, &["writing image"]),
        "{out}"
    );
}

#[test]
fn play_pipeline_sidecar_spec() {
    if !can_play() {
        return;
    }
    assert_plays(
        &["examples/pipeline-sidecar/fluent-bit-sidecar.json"],
        0,
        &[
            &["fluent-bit", "startupProbe passed"],
            &["fluent-bit", "readinessProbe passed"],
            &["fluent-bit", "livenessProbe passed"],
            &[
                "app",
                "released by play.sh: every probe of the pod has passed",
            ],
            &["app: done"],
            &["stand-in fluent-bit: SIGTERM, flushed, exiting 0"],
            &["pod Succeeded"],
        ],
    );
}

#[test]
fn every_example_is_played_or_says_why() {
    let listed = |f: &str| PLAYED.iter().chain(NOT_PLAYABLE).any(|(p, _)| *p == f);
    for f in examples::example_files() {
        assert!(
            listed(&f),
            "examples/{f} is new: play it in a test here, or list why it cannot be played"
        );
    }
    // A newcomer finds the command for each example in examples/README.md (an un-wired one's
    // is its inject command piped into play.sh, which readme_inject() finds).
    let readme = examples::read("README.md");
    for (f, _) in PLAYED {
        if f.starts_with("unwired/") {
            readme_inject(f);
        } else {
            let cmd = format!("scripts/play.sh examples/{f}");
            assert!(readme.contains(&cmd), "examples/README.md lacks `{cmd}`");
        }
    }
}

/// The `kubectl supervise inject` arguments examples/README.md pipes into `scripts/play.sh -`
/// for an un-wired example, as arguments for kubectl-supervise's `cli::run`.
fn readme_inject(file: &str) -> Vec<String> {
    const RUN: &str = "`cargo run -q -p kubectl-supervise -- ";
    const PIPE: &str = " | scripts/play.sh -`";
    let readme = examples::read("README.md");
    let needle = format!("inject -f examples/{file} ");
    let line = readme
        .lines()
        .find(|l| l.contains(&needle))
        .unwrap_or_else(|| panic!("examples/README.md has no inject command for {file}"));
    let start = line.find(RUN).expect("a cargo run command") + RUN.len();
    let end = line.find(PIPE).expect("piped into scripts/play.sh -");
    let words = kubectl_supervise::command::shell_words(&line[start..end]);
    let mut args = vec!["kubectl-supervise".to_string()];
    for w in words.into_iter().flatten() {
        // Relative to the repository, where the README's command runs.
        let path = examples::repo().join(&w);
        args.push(if w.starts_with("examples/") {
            util::path_str(&path)
        } else {
            w
        });
    }
    args
}

/// What `kubectl-supervise ARGS` (`args[0]` the program's name) prints, through the plugin's own
/// `cli::run` (its binary's main); the test fails when it exits otherwise than 0.
pub(crate) fn kubectl_supervise(args: &[String]) -> String {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = kubectl_supervise::cli::run(args, &mut std::io::empty(), &mut out, &mut err);
    assert_eq!(code, 0, "{args:?}: {}", String::from_utf8_lossy(&err));
    String::from_utf8(out).expect("utf-8")
}

/// Plays a manifest's `text` as `scripts/play.sh -` does.
fn play_text(text: &str) -> Outcome {
    let dir = util::tempdir();
    let manifest = dir.path().join("injected.yaml");
    std::fs::write(&manifest, text).expect("write");
    util::start(player_cmd_stdin(&manifest)).finish_with(PLAY_DEADLINE)
}

/// Plays `file` from examples/unwired/ as its README line does: inject, piped into play.sh.
fn play_injected(file: &str) -> Outcome {
    play_text(&kubectl_supervise(&readme_inject(file)))
}

/// Removes the pods a `--keep` play left, however the test's assertions end.
struct RemoveKept(Vec<String>);

impl Drop for RemoveKept {
    fn drop(&mut self) {
        for p in &self.0 {
            podman(&["pod", "rm", "--force", "--time", "0", p]);
        }
    }
}

#[test]
fn play_unwired_demo_pod_as_is_and_injected() {
    if !can_play() {
        return;
    }
    // As people write it: the job ends (succeeds, or fails when it ran before Redis listened:
    // nothing makes it wait), nothing stops Redis, the pod never completes. Kept, to look at.
    let out = play(&[
        "--keep",
        "--timeout",
        "5s",
        "examples/unwired/demo-pod.yaml",
    ]);
    let pods = pods_of(&out);
    let kept = RemoveKept(pods.clone());
    assert_eq!(out.code(), Some(124), "{out}");
    for parts in [
        &["job", "container exited with code"][..],
        &[
            "pod Failed: the pod did not complete within 5s (still running: redis); job ended, \
             but nothing stops redis (a sidecar without supervisor? see kubectl supervise inject)",
        ],
        &["podman pod rm -f", pods.first().map_or("?", String::as_str)],
    ] {
        assert!(has_line(&out, parts), "no line with {parts:?}{out}");
    }
    let redis = format!("{}-redis", pods[0]);
    let state = podman(&["inspect", "--format", "{{.State.Status}}", &redis]);
    assert_eq!(
        state.stdout.trim(),
        "running",
        "--keep left no running redis{state}"
    );
    drop(kept);

    let out = play_injected("unwired/demo-pod.yaml");
    assert_eq!(out.code(), Some(0), "{out}");
    for parts in [
        &["from stdin"][..],
        &["redis", "sidecar: marker /supervisor/job.done arrived"],
        &["pod Succeeded"],
    ] {
        assert!(has_line(&out, parts), "no line with {parts:?}{out}");
    }
    assert_cleaned_up(&out);
}

#[test]
fn play_unwired_examples_injected() {
    if !can_play() {
        return;
    }
    for (file, line) in [
        ("unwired/dind-job.yaml", "built image sha256:"),
        ("unwired/dind-job-native.yaml", "built image sha256:"),
        ("unwired/dind-job-tls.yaml", "server "),
        (
            "unwired/cronjob-cloud-sql-proxy.yaml",
            "stand-in cloud-sql-proxy: SIGTERM",
        ),
    ] {
        let out = play_injected(file);
        assert_eq!(out.code(), Some(0), "{out}");
        assert!(has_line(&out, &[line]), "no line with {line:?}{out}");
        assert!(has_line(&out, &["pod Succeeded"]), "{out}");
        assert_cleaned_up(&out);
    }
}

/// The docker images' stand-ins have their real entrypoints: a `docker:27-cli` and a
/// `docker:27-dind` container without `command`, injected, run what they would on a cluster
/// (issue 22 item 6: docker:cli's docker-entrypoint.sh was missing).
#[test]
fn play_docker_images_by_their_entrypoints() {
    if !can_play() {
        return;
    }
    let fixture = examples::repo().join("tests/it/fixtures/docker-images-by-entrypoint.yaml");
    let args = [
        "kubectl-supervise",
        "inject",
        "-f",
        fixture.to_str().expect("utf-8"),
        "--main",
        "build",
    ]
    .map(String::from);
    let text = kubectl_supervise(&args);
    assert!(
        text.contains("- docker-entrypoint.sh") && text.contains("- dockerd-entrypoint.sh"),
        "inject ran something else than the images' entrypoints:\n{text}"
    );
    let out = play_text(&text);
    assert_eq!(out.code(), Some(0), "{out}");
    for parts in [&["client 20."][..], &["server 20."], &["pod Succeeded"]] {
        assert!(has_line(&out, parts), "no line with {parts:?}{out}");
    }
    assert_cleaned_up(&out);
}

#[test]
fn unplayable_files_say_why_in_one_line() {
    if !can_play() {
        return;
    }
    let fixture = examples::repo().join("tests/it/fixtures/never-ends.yaml");
    let fixture = fixture.to_str().expect("utf-8");
    let fail = format!(
        "play: {fixture}: --fail: no container runs `supervisor main ... -- COMMAND` whose command could be made to fail"
    );
    let cases: Vec<(Vec<String>, &str)> = NOT_PLAYABLE
        .iter()
        .map(|(f, why)| (vec![format!("examples/{f}")], *why))
        .chain([(vec!["--fail".into(), fixture.into()], fail.as_str())])
        .collect();
    for (args, why) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = util::start(play_cmd(&args)).finish_with(PLAY_DEADLINE);
        assert_eq!(out.code(), Some(2), "{out}");
        assert_eq!(out.stderr.trim_end(), why, "{out}");
        assert!(out.stdout.is_empty(), "{out}");
    }
}

#[test]
fn bad_command_lines_fail_before_anything_runs() {
    for (args, line) in [
        (
            vec!["examples/nope.yaml"],
            "play: no such file: examples/nope.yaml",
        ),
        (
            vec![],
            "play: which example? scripts/play.sh FILE, e.g. scripts/play.sh examples/dind-job.yaml",
        ),
        (
            vec!["--kep", "examples/demo-pod.yaml"],
            "play: unknown option --kep (try --help)",
        ),
        (
            vec!["--timeout", "soon", "examples/demo-pod.yaml"],
            "play: --timeout soon is not a duration (90, 90s, 2m, 1h, 1m30s)",
        ),
        (
            vec!["examples/demo-pod.yaml", "examples/dind-job.yaml"],
            "play: one file at a time: examples/demo-pod.yaml and examples/dind-job.yaml",
        ),
        (
            vec!["--bin", "/nonexistent", "examples/demo-pod.yaml"],
            "play: --bin /nonexistent: no executable supervisor binary there",
        ),
    ] {
        let out = util::run(play_cmd(&args));
        assert_eq!(out.code(), Some(2), "{out}");
        assert_eq!(out.stderr.trim_end(), line, "{out}");
        assert!(out.stdout.is_empty(), "{out}");
    }
    // The binary from the environment is named as such.
    let mut cmd = play_cmd(&["examples/demo-pod.yaml"]);
    cmd.env("SV_STATIC_BIN", "/nonexistent");
    let out = util::run(cmd);
    assert_eq!(out.code(), Some(2), "{out}");
    assert_eq!(
        out.stderr.trim_end(),
        "play: SV_STATIC_BIN=/nonexistent: no executable supervisor binary there",
        "{out}"
    );
    let out = util::run(play_cmd(&["--help"]));
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(out.stdout.contains("--timeout DUR"), "{out}");
}

/// A directory of links to everything on PATH but `leave_out`: this PATH without one program.
fn path_without(leave_out: &str, dir: &Path) -> String {
    let path = std::env::var_os("PATH").expect("PATH");
    for d in std::env::split_paths(&path) {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let link = dir.join(&name);
            if name != leave_out && !link.exists() {
                std::os::unix::fs::symlink(e.path(), link).expect("symlink");
            }
        }
    }
    util::path_str(dir)
}

#[test]
fn missing_podman_is_one_clear_line() {
    let dir = util::tempdir();
    let mut cmd = play_cmd(&["examples/demo-pod.yaml"]);
    cmd.env("PATH", path_without("podman", dir.path()));
    let out = util::run(cmd);
    assert_eq!(out.code(), Some(125), "{out}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(
        lines[0].starts_with("play: cannot play here: no podman")
            && lines[0].ends_with(
                "it needs root, podman, runc, busybox-static and python3-yaml (scripts/setup.sh installs them)"
            ),
        "{out}"
    );
    assert!(out.stdout.is_empty(), "{out}");
}

const NEVER_ENDS: &str = "tests/it/fixtures/never-ends.yaml";

#[test]
fn interrupted_play_cleans_up() {
    if !can_play() {
        return;
    }
    let mut p = util::start(player_cmd(&[NEVER_ENDS]));
    let header = p.expect_line("pod play-never-ends-", PLAY_DEADLINE);
    p.expect_line("running (timeout 5m)", util::DEADLINE);
    p.signal(15);
    let signalled = std::time::Instant::now();
    let out = p.finish_with(util::DEADLINE);
    assert_eq!(out.code(), Some(143), "{out}");
    // The container ignores SIGTERM: waiting out podman's 10 s stop timeout would show here.
    assert!(
        signalled.elapsed() < Duration::from_secs(8),
        "cleaning up took {:?}{out}",
        signalled.elapsed()
    );
    let pod = header
        .strip_prefix("pod ")
        .and_then(|l| l.split_once(':'))
        .map(|(name, _)| name)
        .expect("pod name");
    assert_eq!(podman(&["pod", "exists", pod]).code(), Some(1), "{out}");
}
