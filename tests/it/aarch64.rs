//! The arm64 build of the in-pod binary, run under qemu user-mode emulation: its main paths -
//! exit codes, signal forwarding, the marker, a sidecar's stop, a required sidecar's death.
//!
//! Theory of operation. `qemu-aarch64-static BIN ARGS` translates the aarch64 supervisor's
//! instructions and passes its system calls, translated, to the host kernel; a program it
//! starts (`execve`) is an ordinary x86-64 process, so the helpers are the same as everywhere.
//! The test's signals go to qemu's process, which hands them to the emulated program, whose
//! signalfd and epoll are emulated on the host's. So these tests show the arm64 build's own
//! code - its syscall numbers, structure layouts, atomics, the musl it links - doing the job;
//! what emulation cannot show is in docs/release.md ("What the arm64 tests show").
//!
//! The binary: SV_AARCH64_BIN (CI points it at scripts/release.sh's build), else the
//! plain release build `cargo build --release --target aarch64-unknown-linux-musl` leaves.
//! Without it or qemu (Debian's qemu-user-static) the tests skip, and fail under CI.

use crate::util::*;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use supervisor::marker::{Marker, Reason, Role};

/// qemu and the aarch64 binary, when both are here.
struct Emulated {
    qemu: PathBuf,
    bin: PathBuf,
}

fn emulated() -> Option<Emulated> {
    let qemu = tool("qemu-aarch64-static", "qemu-user-static")?;
    let bin = std::env::var_os("SV_AARCH64_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("target/aarch64-unknown-linux-musl/release/supervisor")
        });
    if !bin.is_file() {
        skip(&format!(
            "no aarch64 supervisor at {} (cargo build --release --target aarch64-unknown-linux-musl, or set SV_AARCH64_BIN)",
            bin.display()
        ));
        return None;
    }
    Some(Emulated { qemu, bin })
}

impl Emulated {
    /// `supervisor ARGS` under qemu, with the clean environment of [`sup`].
    fn sup<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = Command::new(&self.qemu);
        c.arg(&self.bin).args(args);
        sup_env(&mut c);
        c
    }

    /// The same as PID 1 of a fresh PID namespace with its own /proc, as in a container.
    fn sup_pid1<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut all = vec![self.bin.as_os_str().to_os_string()];
        all.extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        in_ns(&["--mount-proc"], &path_str(&self.qemu), all)
    }
}

/// `HEAD... -- python3 HELPER`.
fn with_helper(head: &[&str], helper: &str) -> Vec<String> {
    let mut v: Vec<String> = head.iter().map(|s| s.to_string()).collect();
    v.push("--".into());
    v.extend(python(helper, &[]));
    v
}

fn read_marker(path: &Path) -> Marker {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{}: not a marker: {e}", String::from_utf8_lossy(&bytes)))
}

#[test]
fn aarch64_binary_is_static_and_says_what_it_is() {
    let Some(e) = emulated() else { return };
    let bytes = std::fs::read(&e.bin).unwrap();
    // e_machine, at offset 18 of the ELF header: 183 is EM_AARCH64.
    assert_eq!(
        bytes.get(18..20),
        Some(&[183u8, 0][..]),
        "not an aarch64 ELF"
    );
    assert_eq!(
        supervisor::elf::linkage(&bytes).unwrap(),
        supervisor::elf::Linkage::Static
    );
    assert!(bytes.len() <= 1 << 20, "{} bytes: over 1 MiB", bytes.len());
    let o = run(e.sup(["--version"]));
    assert_eq!(o.code(), Some(0), "{o}");
    let head = format!("supervisor {} (", env!("CARGO_PKG_VERSION"));
    assert!(
        o.stdout.starts_with(&head) && o.stdout.ends_with(", aarch64-unknown-linux-musl)"),
        "{o}"
    );
}

#[test]
fn aarch64_main_passes_exit_codes_through() {
    let Some(e) = emulated() else { return };
    for (script, want) in [
        ("exit 0", 0),
        ("exit 3", 3),
        ("kill -TERM $$", 143),
        ("kill -KILL $$", 137),
    ] {
        let o = run(e.sup(["main", "--", "sh", "-c", script]));
        assert_eq!(o.code(), Some(want), "{script}: {o}");
    }
    let o = run(e.sup(["main", "--", "/no/such/command"]));
    assert_eq!(o.code(), Some(127), "{o}");
}

/// The standard signals the supervisor forwards (signals.rs has the full table): 1-31 but
/// INT and TERM (stop requests), KILL and STOP, the synchronous faults, and CHLD.
const FORWARDED: [i32; 19] = [
    1, 3, 10, 12, 13, 14, 16, 18, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30,
];

#[test]
fn aarch64_main_forwards_signals_and_stops_on_term() {
    let Some(e) = emulated() else { return };
    let mut p = start(e.sup(with_helper(&["main"], "sigreport.py")));
    p.expect_line("ready", DEADLINE);
    for n in FORWARDED {
        p.signal(n);
        p.expect_line(&format!("got {n};"), DEADLINE);
    }
    p.signal(15);
    p.expect_line("got 15;", DEADLINE);
    let o = p.finish();
    // sigreport.py exits 7 after reporting TERM: the code is the command's.
    assert_eq!(o.code(), Some(7), "{o}");
    assert!(o.stderr.contains("received TERM, forwarded"), "{o}");
}

#[test]
fn aarch64_main_as_pid1_writes_the_marker_and_removes_its_lease() {
    let Some(e) = emulated() else { return };
    let d = tempdir();
    let done = d.path().join("job.done");
    // An orphan for PID 1 to reap on the way: the backgrounded sleep outlives its shell.
    let o = run(e.sup_pid1([
        "main",
        "--done-file",
        &path_str(&done),
        "--",
        "sh",
        "-c",
        "sleep 0.2 & exit 3",
    ]));
    assert_eq!(o.code(), Some(3), "{o}");
    let m = read_marker(&done);
    assert_eq!(
        (
            m.version,
            m.role,
            m.reason,
            m.exit_code,
            m.command_exit_code
        ),
        (1, Role::Main, Reason::Exited, 3, Some(3)),
        "{m:?}"
    );
    assert_eq!(m.command, ["sh", "-c", "sleep 0.2 & exit 3"]);
    assert!(
        !d.path().join("job.done.lease").exists(),
        "the lease outlived a clean end"
    );
}

#[test]
fn aarch64_sidecar_stops_its_daemon_once_when_the_marker_appears() {
    let Some(e) = emulated() else { return };
    let d = tempdir();
    let (main_done, own) = (d.path().join("main.done"), d.path().join("redis.done"));
    let (w, o) = (path_str(&main_done), path_str(&own));
    let mut p = start(e.sup(with_helper(
        &["sidecar", "--wait-file", &w, "--done-file", &o],
        "daemon.py",
    )));
    p.expect_line("daemon ready", DEADLINE);
    write_marker(&main_done, 3);
    let out = p.finish();
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(
        out.stdout.matches("daemon got SIGTERM").count(),
        1,
        "TERM exactly once{out}"
    );
    assert!(out.stderr.contains("exit code 3"), "the main's code{out}");
    let m = read_marker(&own);
    assert_eq!(
        (m.role, m.reason, m.exit_code),
        (Role::Sidecar, Reason::Stopped, 0)
    );
}

#[test]
fn aarch64_main_stops_when_a_required_sidecar_dies() {
    let Some(e) = emulated() else { return };
    let d = tempdir();
    let (dep, done) = (d.path().join("dind.done"), d.path().join("build.done"));
    let (dep_s, done_s) = (path_str(&dep), path_str(&done));
    let mut sc = start(e.sup(with_helper(
        &["sidecar", "--done-file", &dep_s],
        "sigreport.py",
    )));
    let line = sc.expect_line("ready", DEADLINE);
    let daemon: i32 = line
        .trim_start_matches("ready ")
        .trim_end_matches(';')
        .parse()
        .expect("ready PID;");
    let mut main = start(e.sup(with_helper(
        &["main", "--done-file", &done_s, "--requires", &dep_s],
        "sigreport.py",
    )));
    main.expect_line("ready", DEADLINE);
    // The main blocks on the sidecar's lease (flock through qemu), as it does natively.
    let lease = d.path().join("dind.done.lease");
    assert!(wait_until(DEADLINE, || lock_waiters(&lease) >= 1));
    kill(daemon, 9);
    main.expect_line("got 15;", DEADLINE);
    let (m, s) = (main.finish(), sc.finish());
    assert_eq!(s.code(), Some(137), "{s}");
    assert_eq!(m.code(), Some(122), "{m}");
    let mm = read_marker(&done);
    assert_eq!(mm.reason, Reason::DependencyFailed, "{mm:?}");
    assert_eq!(mm.dependency.map(|d| d.path), Some(dep_s));
}
