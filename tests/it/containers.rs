//! Real containers: the static binary in an empty root, the docker/ images, and the examples
//! played as pods with podman.
//!
//! Theory of operation. Containers need the static (musl) binary: SV_STATIC_BIN, else
//! the binary under test when it is static, else one `cargo build --release --target
//! x86_64-unknown-linux-musl` into a target directory of its own (the outer cargo holds the
//! lock on ours). The empty-root tests need only root and util-linux: a directory holding just
//! that binary becomes the root of new PID and mount namespaces, with /proc mounted, and the
//! binary runs there as PID 1 - what a FROM scratch image is. The podman tests source
//! scripts/podman-env.sh, which sets up a private, offline podman (its own storage, runc,
//! cgroupfs, no network) and imports or builds every image once, then take each example from
//! examples.rs, rewrite it into a Pod that `podman kube play` runs (local stand-in images, a
//! unique name for the pod and its emptyDir volumes, native sidecars as ordinary containers),
//! play it, and poll the containers' states with a deadline. Where the kubelet would act - the
//! SIGTERM to native sidecars once the job is done, exec probes - the test does it. Everything
//! is removed afterwards, also when an assertion fails.
//!
//! Podman tests run one at a time (a lock), to keep dind from starving the 2-core machine.
//! Without podman or root they are skipped with a loud message, except in CI (CI set to any
//! non-empty value), where they fail.
//!
//! The un-wired examples (examples/unwired/) are injected with the very `kubectl supervise
//! inject` command their header comment documents, checked, and played the same way.

use crate::examples::{self, ExamplePod};
use crate::util::{self, Outcome};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

const PREFIX: &str = "localhost/supervisor-it";

/// Skips the test (returning None) with a loud message, or fails it under CI (the harness's one
/// skip policy).
#[track_caller]
fn skip<T>(why: &str) -> Option<T> {
    util::skip(&format!(
        "{why} (container tests need root, podman, runc and busybox-static; see docs/containers.md)"
    ));
    None
}

// ---------------------------------------------------------------------------------------------
// The static binary
// ---------------------------------------------------------------------------------------------

/// Whether an ELF executable is static: no program interpreter and no shared libraries.
pub fn is_static_elf(path: &Path) -> Result<bool, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    supervisor::elf::linkage(&bytes)
        .map(|l| l == supervisor::elf::Linkage::Static)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The static binary for containers (see the module doc).
pub fn static_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("SV_STATIC_BIN") {
            let p = PathBuf::from(p);
            assert!(
                is_static_elf(&p).unwrap_or_else(|e| panic!("SV_STATIC_BIN: {e}")),
                "SV_STATIC_BIN={p:?} is dynamically linked"
            );
            return p;
        }
        // Not the test build's own binary, static as it now is: the images and the size checks
        // are about the release binary that ships.
        let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("static-build");
        eprintln!(
            "building the static binary for the container tests into {target:?} (set SV_STATIC_BIN to skip)"
        );
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--release", "--target", "x86_64-unknown-linux-musl"])
            .current_dir(examples::repo())
            .env("CARGO_TARGET_DIR", &target);
        let out = util::start(cmd).finish_with(Duration::from_secs(900));
        assert_eq!(out.code(), Some(0), "static build failed{out}");
        let p = target.join("x86_64-unknown-linux-musl/release/supervisor");
        assert!(is_static_elf(&p).expect("built binary"), "{p:?} is not static");
        p
    })
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------------------------
// The empty root
// ---------------------------------------------------------------------------------------------

/// A directory holding only the static binary (at /supervisor) and an empty /proc.
struct EmptyRoot {
    dir: tempfile::TempDir,
}

impl EmptyRoot {
    fn new() -> EmptyRoot {
        let dir = util::tempdir();
        std::fs::copy(static_bin(), dir.path().join("supervisor")).expect("copy binary");
        std::fs::create_dir(dir.path().join("proc")).expect("mkdir proc");
        EmptyRoot { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel.trim_start_matches('/'))
    }

    /// `/supervisor ARGS` as PID 1 of new PID and mount namespaces, chrooted here, /proc mounted.
    fn command(&self, args: &[&str]) -> Command {
        let root = self.dir.path();
        let mut c = Command::new("unshare");
        c.arg("--pid")
            .arg("--fork")
            .arg("--mount")
            .arg(format!("--mount-proc={}", root.join("proc").display()))
            .arg("chroot")
            .arg(root)
            .arg("/supervisor")
            .args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("SUPERVISOR_LOG_FORMAT", "json");
        c
    }

    fn run(&self, args: &[&str]) -> Outcome {
        util::run(self.command(args))
    }
}

fn empty_root_or_skip() -> Option<EmptyRoot> {
    if !is_root() {
        return skip("the empty-root tests need root (namespaces, chroot, mounting /proc)");
    }
    if Command::new("unshare").arg("--version").output().is_err() {
        return skip("unshare (util-linux) is not installed");
    }
    Some(EmptyRoot::new())
}

#[test]
fn static_binary_is_static_and_small() {
    let bin = static_bin();
    assert!(
        is_static_elf(bin).expect("read binary"),
        "{bin:?} has a program interpreter"
    );
    let size = std::fs::metadata(bin).expect("stat").len();
    eprintln!(
        "static binary: {bin:?}, {size} bytes ({:.2} MiB)",
        size as f64 / 1048576.0
    );
    // The budget is about 1 MiB; this only catches an accident (debug info, a fat dependency).
    assert!(size < 2 * 1024 * 1024, "the static binary is {size} bytes");
}

#[test]
fn empty_root_version_and_main_as_pid1() {
    let Some(root) = empty_root_or_skip() else {
        return;
    };
    let out = root.run(&["--version"]);
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(out.stdout.starts_with("supervisor "), "{out}");

    // PID 1 with nothing else in the root: spawn, wait, reap, exit with the child's code.
    let out = root.run(&[
        "main",
        "--done-file",
        "/done",
        "--",
        "/supervisor",
        "--version",
    ]);
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(out.stdout.contains("supervisor "), "{out}");
    let marker = util::read_json(&root.path("/done"));
    assert_eq!(marker["exit_code"], 0, "{marker}");
    assert_eq!(marker["reason"], "exited", "{marker}");

    // The child really is PID 2: its parent, PID 1, is supervisor.
    let out = root.run(&[
        "main",
        "--",
        "/supervisor",
        "probe",
        "file:/proc/2/status",
        "file:/proc/1/exe",
    ]);
    assert_eq!(out.code(), Some(0), "{out}");

    // A failing child's code comes through.
    let out = root.run(&[
        "main",
        "--done-file",
        "/failed",
        "--",
        "/supervisor",
        "probe",
        "file:/nope",
    ]);
    assert_eq!(out.code(), Some(1), "{out}");
    assert_eq!(util::read_json(&root.path("/failed"))["exit_code"], 1);

    // Nothing to exec: 127, and still a marker.
    let out = root.run(&[
        "main",
        "--done-file",
        "/missing",
        "--",
        "/bin/sh",
        "-c",
        "true",
    ]);
    assert_eq!(out.code(), Some(127), "{out}");
    assert_eq!(
        util::read_json(&root.path("/missing"))["reason"],
        "exec-failed"
    );
}

#[test]
fn empty_root_install_and_sidecar() {
    let Some(root) = empty_root_or_skip() else {
        return;
    };
    let out = root.run(&["install", "/opt/bin"]);
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(out.stdout.trim(), "/opt/bin/supervisor", "{out}");
    let installed = root.path("/opt/bin/supervisor");
    let meta = std::fs::metadata(&installed).expect("installed binary");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o755);
    assert_eq!(
        std::fs::read(&installed).expect("read"),
        std::fs::read(static_bin()).expect("read")
    );

    // The installed copy runs too.
    let out = util::run(root.command(&["main", "--", "/opt/bin/supervisor", "--version"]));
    assert_eq!(out.code(), Some(0), "{out}");

    // A sidecar whose marker is already there stops its daemon at once and exits 0. The daemon
    // is supervisor itself, waiting for a file that never comes: no shell, no sleep needed.
    let out = root.run(&[
        "main",
        "--done-file",
        "/done",
        "--",
        "/supervisor",
        "--version",
    ]);
    assert_eq!(out.code(), Some(0), "{out}");
    let start = Instant::now();
    let out = root.run(&[
        "sidecar",
        "--wait-file",
        "/done",
        "--grace",
        "5s",
        "--",
        "/supervisor",
        "main",
        "--wait-for",
        "file:/never",
        "--wait-timeout",
        "60s",
        "--",
        "/supervisor",
        "--version",
    ]);
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}{out}",
        start.elapsed()
    );
}

/// The host pid of the namespace's PID 1: the child of the `unshare --fork` process.
fn ns_init_pid(unshare_pid: i32) -> Option<i32> {
    let children =
        std::fs::read_to_string(format!("/proc/{unshare_pid}/task/{unshare_pid}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

#[test]
fn empty_root_pid1_stops_cleanly_on_sigterm() {
    let Some(root) = empty_root_or_skip() else {
        return;
    };
    // PID 1 of a namespace only receives the signals it handles: the kernel drops the rest.
    // supervisor handles SIGTERM, stops its daemon and exits 0 - in an empty root too.
    std::fs::write(root.path("/present"), b"x").expect("write");
    let mut p = util::start(root.command(&[
        "sidecar",
        "--wait-file",
        "/never",
        "--grace",
        "5s",
        "--ready-when",
        "file:/present",
        "--ready-file",
        "/ready",
        "--",
        "/supervisor",
        "main",
        "--wait-for",
        "file:/never",
        "--wait-timeout",
        "60s",
        "--",
        "/supervisor",
        "--version",
    ]));
    assert!(
        util::wait_until(util::DEADLINE, || root.path("/ready").exists()),
        "no ready file{}",
        p.finish_with(Duration::from_secs(1))
    );
    let init = ns_init_pid(p.pid()).expect("the namespace's PID 1");
    let status = std::fs::read_to_string(format!("/proc/{init}/status")).expect("status");
    let nspid = status
        .lines()
        .find(|l| l.starts_with("NSpid:"))
        .expect("NSpid");
    assert!(
        nspid.trim_end().ends_with("\t1"),
        "not PID 1 in its namespace: {nspid}"
    );
    // SAFETY: kill(2) on a pid we just read from our own child's children list.
    assert_eq!(unsafe { kill(init, 15) }, 0);
    let out = p.finish_with(Duration::from_secs(10));
    assert_eq!(out.code(), Some(0), "{out}");
}

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

// ---------------------------------------------------------------------------------------------
// Podman
// ---------------------------------------------------------------------------------------------

/// The private podman of scripts/podman-env.sh, with every image in place.
pub struct Podman {
    dir: PathBuf,
}

fn podman_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where the tests keep podman's state (images, containers, volumes), unless
/// SV_PODMAN_DIR says otherwise: short, because conmon's sockets live below it and a unix
/// socket path has 108 bytes at most (under the target directory, whose name now carries the
/// target triple, podman's cleanup of exited containers failed and they stayed "stopped");
/// one per checkout, so two checkouts never share state; kept between runs, as an image cache.
pub fn podman_dir() -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    env!("CARGO_MANIFEST_DIR").hash(&mut h);
    std::env::temp_dir().join(format!("supervisor-podman-{:08x}", h.finish() as u32))
}

/// The podman environment, or None (after a loud message) when it cannot run here.
pub fn podman_or_skip() -> Option<(&'static Podman, MutexGuard<'static, ()>)> {
    static PODMAN: OnceLock<Result<Podman, String>> = OnceLock::new();
    let guard = podman_lock();
    let env = PODMAN.get_or_init(|| {
        if !is_root() {
            return Err("rootful podman needs root".into());
        }
        let dir = std::env::var_os("SV_PODMAN_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(podman_dir);
        let bin = static_bin();
        let script = examples::repo().join("scripts/podman-env.sh");
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(r#". "$0" "$1" && sv_podman_ok && sv_images_all "$2""#)
            .arg(&script)
            .arg(&dir)
            .arg(bin);
        let started = Instant::now();
        let out = util::start(cmd).finish_with(Duration::from_secs(600));
        eprintln!(
            "podman images ready in {:.1}s",
            started.elapsed().as_secs_f64()
        );
        if out.code() != Some(0) {
            return Err(format!(
                "scripts/podman-env.sh could not set up podman{out}"
            ));
        }
        Ok(Podman { dir })
    });
    match env {
        Ok(p) => Some((p, guard)),
        Err(e) => skip(e),
    }
}

impl Podman {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("podman");
        c.args(args)
            .env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", self.dir.join("storage.conf"));
        c
    }

    pub fn run(&self, args: &[&str]) -> Outcome {
        util::start(self.cmd(args)).finish_with(Duration::from_secs(120))
    }

    /// `podman ARGS` for commands that copy images (load, pull): through scripts/podman-env.sh's
    /// sv_podman_copy, so that podman 4.3's blob-info cache is ours, not the host's.
    pub fn copy(&self, args: &[&str]) -> Outcome {
        let script = examples::repo().join("scripts/podman-env.sh");
        let mut c = Command::new("bash");
        c.arg("-c")
            .arg(r#". "$0" "$1" && sv_podman_copy "${@:2}""#)
            .arg(&script)
            .arg(&self.dir)
            .args(args);
        let out = util::start(c).finish_with(Duration::from_secs(120));
        assert_eq!(out.code(), Some(0), "podman failed{out}");
        out
    }

    pub fn ok(&self, args: &[&str]) -> Outcome {
        let out = self.run(args);
        assert_eq!(out.code(), Some(0), "podman failed{out}");
        out
    }
}

#[test]
fn scratch_image_runs_in_podman() {
    let Some((pm, _lock)) = podman_or_skip() else {
        return;
    };
    let image = format!("{PREFIX}/supervisor");
    let inspect = pm.ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Entrypoint}} {{.Size}}",
        &image,
    ]);
    let (entry, size) = inspect.stdout.trim().rsplit_once(' ').expect("two fields");
    assert_eq!(entry, r#"["/usr/local/bin/supervisor"]"#, "{inspect}");
    let size: u64 = size.parse().expect("size");
    assert!(size < 2 * 1024 * 1024, "the scratch image is {size} bytes");

    let out = pm.run(&["run", "--rm", "--network", "none", &image, "--version"]);
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(out.stdout.starts_with("supervisor "), "{out}");

    let out = pm.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        &image,
        "main",
        "--done-file",
        "/done",
        "--",
        "/usr/local/bin/supervisor",
        "probe",
        "file:/done.lease",
    ]);
    assert_eq!(
        out.code(),
        Some(0),
        "main's lease file should exist while the child runs{out}"
    );

    let out = pm.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        &image,
        "main",
        "--",
        "/no/such/program",
    ]);
    assert_eq!(out.code(), Some(127), "{out}");
}

#[test]
fn wrapper_images_keep_the_base_entrypoint_contract() {
    let Some((pm, _lock)) = podman_or_skip() else {
        return;
    };
    for (name, entry) in [
        (
            "dind",
            r#"["/usr/local/bin/supervisor","sidecar","--","dockerd-entrypoint.sh"]"#,
        ),
        ("ci-agent", r#"["/usr/local/bin/supervisor","main","--"]"#),
    ] {
        let image = format!("{PREFIX}/{name}");
        let out = pm.ok(&[
            "image",
            "inspect",
            "--format",
            "{{json .Config.Entrypoint}}",
            &image,
        ]);
        assert_eq!(out.stdout.trim(), entry, "{out}");
    }
    // ci-agent: ENTRYPOINT supervisor main, the command as arguments.
    let out = pm.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        &format!("{PREFIX}/ci-agent"),
        "sh",
        "-c",
        "echo agent; exit 5",
    ]);
    assert_eq!(out.code(), Some(5), "{out}");
    assert!(out.stdout.contains("agent"), "{out}");
}

// --- Playing examples ------------------------------------------------------------------------

/// Which local image stands in for each image the examples name.
/// The local stand-in of each image the examples name, read from scripts/podman-env.sh's
/// SV_STANDINS (the one table; `scripts/play.sh` uses it too): image prefix -> local image name.
fn image_map() -> &'static [(String, String)] {
    static MAP: OnceLock<Vec<(String, String)>> = OnceLock::new();
    MAP.get_or_init(|| {
        let script = std::fs::read_to_string(examples::repo().join("scripts/podman-env.sh"))
            .expect("read scripts/podman-env.sh");
        let table = script
            .split("SV_STANDINS=(")
            .nth(1)
            .and_then(|t| t.split("\n)").next())
            .expect("SV_STANDINS=( ... ) in scripts/podman-env.sh");
        let map: Vec<(String, String)> = table
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                Some((w.next()?.to_string(), w.next()?.to_string()))
            })
            .collect();
        assert!(!map.is_empty(), "SV_STANDINS is empty");
        map
    })
}

fn local_image(image: &str) -> String {
    let (_, local) = image_map()
        .iter()
        .find(|(k, _)| image.starts_with(k.as_str()))
        .unwrap_or_else(|| {
            panic!("no local stand-in for image {image}: add one to SV_STANDINS in scripts/podman-env.sh")
        });
    format!("{PREFIX}/{local}")
}

fn run_id() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{:x}{:x}{}",
        std::process::id(),
        nanos >> 12,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A pod being played; removed with everything it made on drop.
pub struct Played {
    pm: &'static Podman,
    name: String,
    yaml: PathBuf,
    volumes: Vec<String>,
    containers: Vec<String>,
    natives: Vec<String>,
    _dir: tempfile::TempDir,
    started: Instant,
}

/// Rewrites an example pod into one `podman kube play` runs here (see the module doc); the
/// images in `keep` are used as they are named (already in podman), not through a stand-in.
fn playable(pod: &ExamplePod, id: &str, keep: &[&str]) -> (Pod, Vec<String>) {
    let mut spec: PodSpec = pod.spec.clone();
    let rename = |v: &str| format!("{v}-{id}");
    for v in spec.volumes.iter_mut().flatten() {
        assert!(
            v.empty_dir.is_some(),
            "{}: volume {} is not an emptyDir",
            pod.file,
            v.name
        );
        v.name = rename(&v.name);
    }
    let mut natives = Vec::new();
    let mut init = Vec::new();
    for mut c in spec.init_containers.take().unwrap_or_default() {
        if c.restart_policy.take().as_deref() == Some("Always") {
            natives.push(c.name.clone());
            spec.containers.push(c);
        } else {
            init.push(c);
        }
    }
    spec.init_containers = (!init.is_empty()).then_some(init);
    let fix = |c: &mut Container| {
        let image = c.image.as_deref().unwrap_or("");
        if !keep.contains(&image) {
            c.image = Some(local_image(image));
        }
        for m in c.volume_mounts.iter_mut().flatten() {
            m.name = rename(&m.name);
        }
        // Probes are the kubelet's job: the tests run the exec probes themselves.
        c.startup_probe = None;
        c.readiness_probe = None;
        c.liveness_probe = None;
        // Declared ports are information for Kubernetes; podman turns them into host port
        // mappings, which a pod without network cannot have. Containers of a pod share
        // 127.0.0.1 either way.
        c.ports = None;
    };
    spec.containers.iter_mut().for_each(fix);
    spec.init_containers.iter_mut().flatten().for_each(fix);
    let name: String = format!("{}-{id}", pod.name)
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let p = Pod {
        metadata: ObjectMeta {
            name: Some(name),
            ..Default::default()
        },
        spec: Some(spec),
        ..Default::default()
    };
    (p, natives)
}

impl Played {
    fn play(pm: &'static Podman, pod: &ExamplePod) -> Played {
        Played::play_keeping(pm, pod, &[])
    }

    /// [`Played::play`], with the images in `keep` used as named (see [`playable`]).
    pub fn play_keeping(pm: &'static Podman, pod: &ExamplePod, keep: &[&str]) -> Played {
        let id = run_id();
        let (p, natives) = playable(pod, &id, keep);
        let dir = util::tempdir();
        let yaml = dir.path().join("pod.yaml");
        // JSON is YAML: podman reads it as is.
        let text = serde_json::to_string_pretty(&p).expect("json");
        std::fs::write(&yaml, text).expect("write pod yaml");
        let spec = p.spec.as_ref().expect("spec");
        let name = p.metadata.name.clone().expect("name");
        let played = Played {
            pm,
            containers: spec
                .containers
                .iter()
                .map(|c| format!("{name}-{}", c.name))
                .collect(),
            natives: natives.iter().map(|c| format!("{name}-{c}")).collect(),
            volumes: spec
                .volumes
                .iter()
                .flatten()
                .map(|v| v.name.clone())
                .collect(),
            name,
            yaml,
            _dir: dir,
            started: Instant::now(),
        };
        let out = pm.run(&[
            "kube",
            "play",
            "--quiet",
            "--network",
            "none",
            played.yaml.to_str().expect("utf-8"),
        ]);
        assert_eq!(
            out.code(),
            Some(0),
            "podman kube play failed{out}\n{}",
            played.report()
        );
        played
    }

    pub fn container(&self, short: &str) -> String {
        format!("{}-{short}", self.name)
    }

    /// (status, exit code, restarts) of each container.
    fn states(&self) -> BTreeMap<String, (String, i32, u32)> {
        let mut args = vec![
            "inspect",
            "--format",
            "{{.Name}} {{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}",
        ];
        args.extend(self.containers.iter().map(String::as_str));
        let out = self.pm.run(&args);
        let mut m = BTreeMap::new();
        for line in out.stdout.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if let [name, status, code, restarts] = f[..] {
                m.insert(
                    name.to_string(),
                    (
                        status.to_string(),
                        code.parse().unwrap_or(-1),
                        restarts.parse().unwrap_or(0),
                    ),
                );
            }
        }
        m
    }

    fn exited(&self, states: &BTreeMap<String, (String, i32, u32)>, names: &[String]) -> bool {
        names.iter().all(|n| {
            states
                .get(n)
                .is_some_and(|(s, _, _)| s == "exited" || s == "stopped")
        })
    }

    /// Waits for the pod to complete, stopping native sidecars with SIGTERM once every other
    /// container has exited, as the kubelet does. Fails the test after `within`.
    pub fn complete(
        &self,
        within: Duration,
        mains: &[&str],
    ) -> BTreeMap<String, (String, i32, u32)> {
        let end = Instant::now() + within;
        let mains: Vec<String> = mains.iter().map(|m| self.container(m)).collect();
        let others: Vec<String> = self
            .containers
            .iter()
            .filter(|c| !self.natives.contains(c))
            .cloned()
            .collect();
        let mut natives_stopped = self.natives.is_empty();
        loop {
            let states = self.states();
            // A sidecar that fails while the job runs would leave the job waiting: fail now.
            for (name, (status, code, _)) in &states {
                if !mains.contains(name) && status == "exited" && *code != 0 {
                    panic!(
                        "{name} failed with exit code {code} before the pod completed\n{}",
                        self.report()
                    );
                }
            }
            if !natives_stopped && self.exited(&states, &others) {
                for n in &self.natives {
                    self.pm.ok(&["stop", "--time", "30", n]);
                }
                natives_stopped = true;
                continue;
            }
            if natives_stopped && self.exited(&states, &self.containers) {
                return states;
            }
            assert!(
                Instant::now() < end,
                "pod {} did not complete within {within:?}: {states:?}\n{}",
                self.name,
                self.report()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Every container's logs, for failure messages.
    fn report(&self) -> String {
        let mut s = String::new();
        let ps = self.pm.run(&[
            "ps",
            "-a",
            "--filter",
            &format!("pod={}", self.name),
            "--format",
            "{{.Names}} {{.Status}}",
        ]);
        s.push_str(&format!(
            "--- containers of {}:\n{}\n",
            self.name, ps.stdout
        ));
        for c in &self.containers {
            let logs = self.pm.run(&["logs", c]);
            s.push_str(&format!(
                "--- logs of {c}:\n{}{}\n",
                logs.stdout, logs.stderr
            ));
        }
        s
    }

    /// Asserts the pod's result: each named container's exit code, 0 for all the others.
    pub fn assert_codes(
        &self,
        states: &BTreeMap<String, (String, i32, u32)>,
        expected: &[(&str, i32)],
    ) {
        for c in &self.containers {
            let short = c.strip_prefix(&format!("{}-", self.name)).unwrap_or(c);
            let want = expected
                .iter()
                .find(|(n, _)| *n == short)
                .map(|(_, code)| *code)
                .unwrap_or(0);
            let got = states.get(c).map(|s| s.1);
            assert_eq!(
                got,
                Some(want),
                "container {short} of {}: {states:?}\n{}",
                self.name,
                self.report()
            );
        }
    }
}

impl Drop for Played {
    fn drop(&mut self) {
        let yaml = self.yaml.to_string_lossy().into_owned();
        let _ = self.pm.run(&["kube", "down", &yaml]);
        let _ = self
            .pm
            .run(&["pod", "rm", "--force", "--ignore", &self.name]);
        for v in &self.volumes {
            let _ = self.pm.run(&["volume", "rm", "--force", v]);
        }
        if !std::thread::panicking() {
            let left = self.pm.run(&[
                "ps",
                "-a",
                "--filter",
                &format!("pod={}", self.name),
                "--format",
                "{{.Names}}",
            ]);
            assert!(
                left.stdout.trim().is_empty(),
                "containers left behind: {}",
                left.stdout
            );
            let vols = self.pm.run(&["volume", "ls", "--format", "{{.Name}}"]);
            for v in &self.volumes {
                assert!(
                    !vols.stdout.lines().any(|l| l == v),
                    "volume {v} left behind"
                );
            }
        }
    }
}

fn example_pod(file: &str) -> ExamplePod {
    examples::all_pods()
        .into_iter()
        .find(|p| p.file == file)
        .unwrap_or_else(|| panic!("no pod in {file}"))
}

/// Replaces the command a container's `supervisor main` runs (what follows `--`).
pub fn with_main_command(mut pod: ExamplePod, container: &str, cmd: &[&str]) -> ExamplePod {
    let c = pod
        .spec
        .containers
        .iter_mut()
        .find(|c| c.name == container)
        .expect("container");
    let argv = c.command.as_mut().expect("command");
    let dashes = argv.iter().position(|w| w == "--").expect("--");
    argv.truncate(dashes + 1);
    argv.extend(cmd.iter().map(|s| s.to_string()));
    c.args = None;
    pod
}

/// Plays `pod`, waits for it to complete within `within`, and checks the exit codes.
fn play_and_check(
    pm: &'static Podman,
    pod: &ExamplePod,
    expected: &[(&str, i32)],
    within: Duration,
) -> (Played, BTreeMap<String, (String, i32, u32)>) {
    let played = Played::play(pm, pod);
    let mains: Vec<&str> = expected.iter().map(|(n, _)| *n).collect();
    let states = played.complete(within, &mains);
    let took = played.started.elapsed();
    played.assert_codes(&states, expected);
    eprintln!(
        "{} played as {} completed in {:.1}s",
        pod.file,
        played.name,
        took.as_secs_f64()
    );
    assert!(took < within, "took {took:?}");
    (played, states)
}

fn logs(pm: &Podman, container: &str) -> String {
    let out = pm.ok(&["logs", container]);
    format!("{}{}", out.stdout, out.stderr)
}

#[test]
fn example_dind_job_completes() {
    let Some((pm, _lock)) = podman_or_skip() else {
        return;
    };
    dind_job_builds(pm, &example_pod("dind-job.yaml"));
}

/// Plays a dind Job's pod: the build succeeds and really built an image.
fn dind_job_builds(pm: &'static Podman, pod: &ExamplePod) -> Played {
    let (played, _) = play_and_check(pm, pod, &[("build", 0)], Duration::from_secs(90));
    let build = logs(pm, &played.container("build"));
    assert!(build.contains("built image sha256:"), "{build}");
    played
}

#[test]
fn example_dind_job_failing_main_fails_the_pod() {
    let Some((pm, _lock)) = podman_or_skip() else {
        return;
    };
    let pod = with_main_command(
        example_pod("dind-job.yaml"),
        "build",
        &["sh", "-c", "docker version >/dev/null && exit 3"],
    );
    play_and_check(pm, &pod, &[("build", 3)], Duration::from_secs(90));
}

/// dockerd crashes in the middle of the build: the build is stopped at once and the pod ends
/// Failed within a second, instead of running until the Job's deadline.
#[test]
fn example_dind_job_dockerd_crash_fails_the_pod_at_once() {
    let Some((pm, _lock)) = podman_or_skip() else {
        return;
    };
    let pod = with_main_command(
        example_pod("dind-job.yaml"),
        "build",
        &[
            "sh",
            "-c",
            "while docker version >/dev/null; do echo build: looping; sleep 0.05; done; sleep 600",
        ],
    );
    let played = Played::play(pm, &pod);
    let build = played.container("build");
    let looping = util::wait_until(Duration::from_secs(90), || {
        logs(pm, &build).contains("build: looping")
    });
    assert!(looping, "the build never ran\n{}", played.report());
    let t0 = Instant::now();
    pm.ok(&[
        "exec",
        &played.container("dind"),
        "sh",
        "-c",
        "kill -9 $(pidof dockerd)",
    ]);
    let ended = util::wait_until(Duration::from_secs(30), || {
        played.states().get(&build).is_some_and(|s| s.0 == "exited")
    });
    let took = t0.elapsed();
    assert!(ended, "the build outlived dockerd\n{}", played.report());
    eprintln!("dockerd SIGKILLed in the dind container -> build container exited: {took:?}");
    let states = played.states();
    assert_eq!(states[&build].1, 122, "{}", played.report());
    assert_eq!(
        states[&played.container("dind")].1,
        137,
        "{}",
        played.report()
    );
    assert!(
        took < Duration::from_secs(5),
        "took {took:?}\n{}",
        played.report()
    );
    let log = logs(pm, &build);
    assert!(
        log.contains("required sidecar /supervisor/dind.done ended (dockerd"),
        "{log}"
    );
}

#[test]
fn example_native_sidecar_job_completes() {
    let Some((pm, _lock)) = podman_or_skip() else {
        return;
    };
    let pod = example_pod("dind-job-native-sidecar.yaml");
    // The startupProbe, run as the kubelet would while the job runs.
    let dind = pod
        .spec
        .init_containers
        .iter()
        .flatten()
        .find(|c| c.name == "dind")
        .expect("dind");
    let probe = dind
        .startup_probe
        .as_ref()
        .and_then(|p| p.exec.as_ref())
        .and_then(|e| e.command.clone())
        .expect("exec probe");
    let played = Played::play(pm, &pod);
    let mut exec = vec!["exec".to_string(), played.container("dind")];
    exec.extend(probe);
    let exec: Vec<&str> = exec.iter().map(String::as_str).collect();
    let mut last = None;
    let dind_name = played.container("dind");
    let mut dind_exited = false;
    let probed = util::wait_until(Duration::from_secs(60), || {
        let out = pm.run(&exec);
        let ok = out.code() == Some(0);
        last = Some(out);
        // A sidecar that died will never pass: stop asking.
        dind_exited = !ok
            && played
                .states()
                .get(&dind_name)
                .is_some_and(|s| s.0 == "exited");
        ok || dind_exited
    });
    assert!(
        probed && !dind_exited,
        "the startupProbe never passed{}\n{}",
        last.expect("ran"),
        played.report()
    );
    let states = played.complete(Duration::from_secs(90), &["build"]);
    played.assert_codes(&states, &[("build", 0)]);
    let dind_logs = logs(pm, &played.container("dind"));
    assert!(
        dind_logs.to_lowercase().contains("sigterm") || dind_logs.contains("TERM"),
        "{dind_logs}"
    );
}

#[test]
fn example_cronjob_cloud_sql_proxy_completes() {
    let Some((pm, _lock)) = podman_or_skip() else {
        return;
    };
    let pod = example_pod("cronjob-cloud-sql-proxy.yaml");
    let (played, _) = play_and_check(pm, &pod, &[("refresh", 0)], Duration::from_secs(30));
    let proxy = logs(pm, &played.container("cloud-sql-proxy"));
    assert!(
        proxy.contains("/quitquitquit received"),
        "the proxy was not stopped by its quit URL: {proxy}"
    );
    let refresh = logs(pm, &played.container("refresh"));
    assert!(refresh.contains("psql stand-in"), "{refresh}");
}

#[test]
fn example_cronjob_failing_main_still_stops_the_proxy() {
    let Some((pm, _lock)) = podman_or_skip() else {
        return;
    };
    let pod = with_main_command(
        example_pod("cronjob-cloud-sql-proxy.yaml"),
        "refresh",
        &["sh", "-c", "exit 4"],
    );
    let (played, _) = play_and_check(pm, &pod, &[("refresh", 4)], Duration::from_secs(30));
    let proxy = logs(pm, &played.container("cloud-sql-proxy"));
    assert!(proxy.contains("/quitquitquit received"), "{proxy}");
}

#[test]
fn example_onfailure_job_retries_in_place() {
    let Some((pm, _lock)) = podman_or_skip() else {
        return;
    };
    let pod = example_pod("onfailure-job.yaml");
    let (played, states) = play_and_check(pm, &pod, &[("tests", 0)], Duration::from_secs(60));
    let restarts = states[&played.container("tests")].2;
    assert!(
        restarts >= 1,
        "the first attempt should have failed and been restarted: {states:?}"
    );
    let tests = logs(pm, &played.container("tests"));
    assert!(tests.contains("tests passed on attempt 2"), "{tests}");
}

#[test]
fn example_buildkite_step_completes() {
    let Some((pm, _lock)) = podman_or_skip() else {
        return;
    };
    let pod = example_pod("buildkite/pipeline.yml");
    let (played, _) = play_and_check(pm, &pod, &[("build", 0)], Duration::from_secs(90));
    let build = logs(pm, &played.container("build"));
    assert!(
        build.contains("Successfully built") || build.contains("writing image"),
        "{build}"
    );
}

#[test]
fn example_demo_pod_completes_and_fails() {
    let Some((pm, _lock)) = podman_or_skip() else {
        return;
    };
    demo_completes_and_fails(pm, example_pod("demo-pod.yaml"));
}

/// Plays the demo's pod twice: the job succeeds, then (DEMO_FAIL=1) fails with 3; either way
/// the Redis sidecar stops and the pod completes.
fn demo_completes_and_fails(pm: &'static Podman, pod: ExamplePod) {
    let (played, _) = play_and_check(pm, &pod, &[("job", 0)], Duration::from_secs(30));
    assert!(logs(pm, &played.container("job")).contains("hello from the main container"));
    drop(played);
    let mut failing = pod;
    let job = failing
        .spec
        .containers
        .iter_mut()
        .find(|c| c.name == "job")
        .expect("job");
    job.env.as_mut().expect("env")[0].value = Some("1".into());
    play_and_check(pm, &failing, &[("job", 3)], Duration::from_secs(30));
}

/// The pipeline sidecar spec in the pod a platform would give it: the binary installed into
/// the `supervisor` volume, its config volume, and an app container whose supervisor writes the
/// marker. The app holds on until the test has run the spec's probes.
fn pipeline_pod() -> ExamplePod {
    let rel = "pipeline-sidecar/fluent-bit-sidecar.json";
    let sidecar = examples::container_spec_pod(rel)
        .expect("loads")
        .spec
        .containers
        .remove(0);
    let spec = serde_json::json!({
        "restartPolicy": "Never",
        "initContainers": [{
            "name": "install-supervisor",
            "image": "ghcr.io/supervisor-dev/supervisor:0.2.0",
            "command": ["/usr/local/bin/supervisor", "install", "/supervisor/bin"],
            "volumeMounts": [{"name": "supervisor", "mountPath": "/supervisor"}]
        }],
        "containers": [{
            "name": "app",
            "image": "busybox:1.36",
            "command": [
                "/supervisor/bin/supervisor", "main", "--done-file=/supervisor/main.done",
                "--wait-for=file:/supervisor/fluent-bit.ready", "--wait-timeout=30s", "--",
                "sh", "-c", "until [ -e /tmp/go ]; do sleep 0.1; done; echo app: done"
            ],
            "volumeMounts": [{"name": "supervisor", "mountPath": "/supervisor"}]
        }],
        "volumes": [
            {"name": "supervisor", "emptyDir": {}},
            {"name": "fluent-bit-config", "emptyDir": {}}
        ]
    });
    let mut spec: PodSpec = serde_json::from_value(spec).expect("pod spec");
    spec.containers.push(sidecar);
    ExamplePod {
        file: rel.into(),
        name: "pipeline".into(),
        kind: "Pod".into(),
        spec,
        origin: examples::Origin::Kubernetes,
    }
}

#[test]
fn example_pipeline_sidecar_probes_and_stops() {
    // The pod around the spec is wired correctly too.
    let pod = pipeline_pod();
    let errors = examples::check_pod(&pod);
    assert!(errors.is_empty(), "{errors:#?}");
    let Some((pm, _lock)) = podman_or_skip() else {
        return;
    };
    let played = Played::play(pm, &pod);
    let sidecar = played.container("fluent-bit");
    let app = played.container("app");
    // The app's command starts only once the sidecar's ready file is there.
    let started = util::wait_until(Duration::from_secs(30), || {
        logs(pm, &app).contains("main: started")
    });
    assert!(started, "the app never started\n{}", played.report());
    // Every exec probe of the spec passes, run the way the kubelet runs them.
    let spec = &pod.spec.containers[1];
    for probe in [
        &spec.startup_probe,
        &spec.readiness_probe,
        &spec.liveness_probe,
    ] {
        let cmd = probe
            .as_ref()
            .and_then(|p| p.exec.as_ref())
            .and_then(|e| e.command.clone())
            .expect("exec probe");
        let mut args = vec!["exec".to_string(), sidecar.clone()];
        args.extend(cmd);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = pm.run(&args);
        assert_eq!(
            out.code(),
            Some(0),
            "probe failed{out}\n{}",
            played.report()
        );
    }
    // A probe of something that is not there fails, so the passes above mean something.
    let out = pm.run(&[
        "exec",
        &sidecar,
        "/supervisor/bin/supervisor",
        "probe",
        "tcp://127.0.0.1:1",
    ]);
    assert_eq!(out.code(), Some(1), "{out}");
    pm.ok(&["exec", &app, "touch", "/tmp/go"]);
    let states = played.complete(Duration::from_secs(30), &["app"]);
    played.assert_codes(&states, &[("app", 0)]);
    let side = logs(pm, &sidecar);
    assert!(side.contains("stand-in fluent-bit: SIGTERM"), "{side}");
}

#[test]
fn every_playable_example_is_played() {
    // A new example must get a test above (or a reason here why it cannot be played).
    let played = [
        "dind-job.yaml",
        "dind-job-native-sidecar.yaml",
        "cronjob-cloud-sql-proxy.yaml",
        "onfailure-job.yaml",
        "buildkite/pipeline.yml",
        "demo-pod.yaml",
        // In the pod of example_pipeline_sidecar_probes_and_stops.
        "pipeline-sidecar/fluent-bit-sidecar.json",
        // Played after `kubectl supervise inject`.
        "unwired/dind-job.yaml",
        "unwired/dind-job-native.yaml",
        "unwired/demo-pod.yaml",
        "unwired/cronjob-cloud-sql-proxy.yaml",
        // By tests/it/play.rs (play_unwired_examples_injected) and tests/it/dind_faults.rs.
        "unwired/dind-job-tls.yaml",
    ];
    // (The webhook's Deployment, which needs an API server to call it, is in deploy/, not
    // examples/; examples::webhook_deployment_command_serves runs its command.)
    for pod in examples::all_pods() {
        assert!(
            played.contains(&pod.file.as_str()),
            "{} is not played",
            pod.file
        );
        for c in pod
            .spec
            .containers
            .iter()
            .chain(pod.spec.init_containers.iter().flatten())
        {
            local_image(c.image.as_deref().unwrap_or(""));
        }
    }
}

// --- Un-wired examples, injected --------------------------------------------------------------

/// The `kubectl supervise inject ...` command an un-wired example's header comment documents
/// (after "Wire it with"), as arguments for the binary, without its `-f FILE`.
fn documented_inject(file: &str) -> Vec<String> {
    let text = examples::read(file);
    let comment: Vec<&str> = text
        .lines()
        .take_while(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#').trim())
        .collect();
    let start = comment
        .iter()
        .position(|l| l.starts_with("kubectl supervise inject"))
        .unwrap_or_else(|| panic!("{file}: no documented inject command"));
    let mut line = String::new();
    for l in &comment[start..] {
        match l.strip_suffix('\\') {
            Some(cont) => line.push_str(cont),
            None => {
                line.push_str(l);
                break;
            }
        }
    }
    let line = line.split(" | ").next().unwrap_or_default();
    let words: Vec<String> = kubectl_supervise::command::shell_words(line)
        .into_iter()
        .flatten()
        .collect();
    let mut args = vec!["kubectl-supervise".to_string()];
    let mut rest = words[2..].iter();
    while let Some(w) = rest.next() {
        if w == "-f" {
            rest.next();
        } else {
            args.push(w.clone());
        }
    }
    args
}

/// An un-wired example injected as documented (through the CLI's own code), checked clean,
/// and read as a pod. `extra` are more inject arguments.
fn injected(file: &str, extra: &[&str]) -> ExamplePod {
    let mut args = documented_inject(file);
    args.extend(extra.iter().map(|s| s.to_string()));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = kubectl_supervise::cli::run(
        &args,
        &mut examples::read(file).as_bytes(),
        &mut out,
        &mut err,
    );
    let text = String::from_utf8(out).expect("utf-8");
    assert_eq!(
        code,
        0,
        "{args:?} failed: {}",
        String::from_utf8_lossy(&err)
    );
    let findings = kubectl_supervise::check::check_str(&text).expect("yaml");
    assert!(
        findings.is_empty(),
        "check on injected {file}: {findings:#?}\n{text}"
    );
    let mut pods = examples::pods_of(file, &text).expect("injected pods");
    assert_eq!(pods.len(), 1, "{file}");
    pods.remove(0)
}

#[test]
fn injected_commands_are_the_documented_ones() {
    assert_eq!(
        documented_inject("unwired/dind-job.yaml"),
        [
            "kubectl-supervise",
            "inject",
            "--main",
            "build",
            "--wait-timeout",
            "2m"
        ]
    );
    // The three dind variants need no --ready: inject knows docker:dind's readiness.
    for f in [
        "unwired/dind-job.yaml",
        "unwired/dind-job-tls.yaml",
        "unwired/dind-job-native.yaml",
    ] {
        let args = documented_inject(f);
        assert!(!args.iter().any(|a| a == "--ready"), "{f}: {args:?}");
    }
}

#[test]
fn injected_dind_job_completes() {
    let Some((pm, _lock)) = podman_or_skip() else {
        return;
    };
    let played = dind_job_builds(pm, &injected("unwired/dind-job.yaml", &[]));
    let dind = logs(pm, &played.container("dind"));
    assert!(dind.contains("ready"), "{dind}");
}

#[test]
fn injected_dind_job_with_native_sidecar_completes() {
    let Some((pm, _lock)) = podman_or_skip() else {
        return;
    };
    let pod = injected("unwired/dind-job.yaml", &["--native"]);
    let dind = pod
        .spec
        .init_containers
        .iter()
        .flatten()
        .find(|c| c.name == "dind")
        .expect("dind is a native sidecar");
    assert_eq!(dind.restart_policy.as_deref(), Some("Always"));
    assert!(dind.startup_probe.is_some());
    dind_job_builds(pm, &pod);
}

#[test]
fn injected_dind_job_native_as_written_completes() {
    let Some((pm, _lock)) = podman_or_skip() else {
        return;
    };
    let pod = injected("unwired/dind-job-native.yaml", &[]);
    let init: Vec<&str> = pod
        .spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        init,
        ["install-supervisor", "dind"],
        "the binary is installed first"
    );
    dind_job_builds(pm, &pod);
}

#[test]
fn injected_demo_pod_completes_and_fails() {
    let Some((pm, _lock)) = podman_or_skip() else {
        return;
    };
    demo_completes_and_fails(pm, injected("unwired/demo-pod.yaml", &[]));
}

#[test]
fn injected_cronjob_with_proxy_completes() {
    let Some((pm, _lock)) = podman_or_skip() else {
        return;
    };
    let pod = injected("unwired/cronjob-cloud-sql-proxy.yaml", &[]);
    let (played, _) = play_and_check(pm, &pod, &[("refresh", 0)], Duration::from_secs(30));
    let refresh = logs(pm, &played.container("refresh"));
    assert!(refresh.contains("psql stand-in"), "{refresh}");
    // The proxy, wrapped by `supervisor sidecar`, was stopped when the job's marker appeared.
    let proxy = logs(pm, &played.container("cloud-sql-proxy"));
    assert!(
        proxy.contains("stand-in cloud-sql-proxy: SIGTERM"),
        "{proxy}"
    );
}

#[test]
fn injected_demo_pod_sidecar_death_stops_the_job() {
    let Some((pm, _lock)) = podman_or_skip() else {
        return;
    };
    // inject wires death both ways: the job requires Redis's marker.
    let pod = with_main_command(
        injected("unwired/demo-pod.yaml", &[]),
        "job",
        &["sh", "-c", "echo job: waiting; exec sleep 600"],
    );
    let played = Played::play(pm, &pod);
    let job = played.container("job");
    let waiting = util::wait_until(Duration::from_secs(30), || {
        logs(pm, &job).contains("job: waiting")
    });
    assert!(waiting, "the job never started\n{}", played.report());
    // As the OOM killer would: the sidecar's supervisor dies with its daemon and writes no
    // marker; the kernel releases its lease.
    pm.ok(&["kill", "--signal", "KILL", &played.container("redis")]);
    let ended = util::wait_until(Duration::from_secs(30), || {
        played.states().get(&job).is_some_and(|s| s.0 == "exited")
    });
    assert!(ended, "the job outlived its sidecar\n{}", played.report());
    let states = played.states();
    assert_eq!(
        states[&job].1,
        122,
        "the job should stop with 122\n{}",
        played.report()
    );
    let log = logs(pm, &job);
    assert!(
        log.contains("required sidecar /supervisor/redis.done ended"),
        "{log}"
    );
}

// --- scripts/demo.sh -------------------------------------------------------------------------

fn demo(mode: &str, fail: bool, podman_dir: Option<&Path>) -> Outcome {
    let mut cmd = Command::new("bash");
    cmd.arg(examples::repo().join("scripts/demo.sh"))
        .args(["--mode", mode, "--bin"])
        .arg(static_bin());
    if fail {
        cmd.arg("--fail");
    }
    if let Some(dir) = podman_dir {
        cmd.env("SV_PODMAN_DIR", dir);
    }
    util::start(cmd).finish_with(Duration::from_secs(120))
}

fn assert_demo(out: &Outcome, fail: bool) {
    let (code, verdict) = if fail {
        (3, "pod Failed")
    } else {
        (0, "pod Succeeded")
    };
    assert_eq!(out.code(), Some(code), "{out}");
    for needle in [
        "redis  container started",
        "redis  ready",
        "job    main started",
        &format!("job    main exited with code {code}"),
        "redis  saw the marker: redis-server stopped in",
        "container exited with code 0",
        verdict,
    ] {
        assert!(
            out.stdout.contains(needle),
            "the timeline lacks {needle:?}{out}"
        );
    }
}

#[test]
fn demo_script_with_podman() {
    let Some((pm, _lock)) = podman_or_skip() else {
        return;
    };
    for fail in [false, true] {
        let out = demo("podman", fail, Some(&pm.dir));
        assert_demo(&out, fail);
    }
    let left = pm.run(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(
        !left.stdout.contains("supervisor-demo"),
        "demo containers left behind: {}",
        left.stdout
    );
}

#[test]
fn demo_script_with_unshare() {
    if !is_root() {
        skip::<()>(
            "the unshare demo test runs as root here (the script also works unprivileged with user namespaces)",
        );
        return;
    }
    if Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        skip::<()>("redis-server is not installed");
        return;
    }
    for fail in [false, true] {
        let out = demo("unshare", fail, None);
        assert_demo(&out, fail);
    }
}
