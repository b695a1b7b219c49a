//! Hardening: faults of the shared volume, hostile markers, bad input, load, terminals, quit URLs
//! and an unprivileged user, each checked against the real binary with real mounts, namespaces and
//! processes (the tests run as root, as CI does).
//!
//! Isolation: anything that can outlive a failing test runs as (or under) the init of a fresh PID
//! namespace (`unshare --pid --fork --kill-child`): the test's group kill takes the init down, and
//! the kernel then kills everything else in the namespace. Mounts live in private mount
//! namespaces, so a tmpfs never leaks onto the host.

use crate::util::{
    DEADLINE, Outcome, alive, bin, grandchild, helper_str, in_ns, kill, lock_waiters, mkdir,
    path_str as s, python, read_json, run, sh_ns, start, sup, sup_ns, sup_under_init, tempdir,
    wait_until, zombies_of,
};
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

// ---- helpers ----

/// Fails the test unless every needle appears in the output (stdout or stderr).
fn assert_mentions(o: &Outcome, needles: &[&str]) {
    for n in needles {
        assert!(
            o.stderr.contains(n) || o.stdout.contains(n),
            "expected {n:?} in the output{o}"
        );
    }
}

/// Whether stdout has exactly this line.
fn has_line(o: &Outcome, line: &str) -> bool {
    o.stdout.lines().any(|l| l == line)
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn is_regular(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_file())
}

// ---- the shared volume ----

#[test]
fn full_marker_volume_fails_fast_or_fails_the_run_naming_the_path() {
    let t = tempdir();
    let d = mkdir(&t.path().join("vol"));
    let out = mkdir(&t.path().join("out"));
    // Three runs on one 16 KiB tmpfs: full before the start, filled by a job that succeeds, filled
    // by a job that fails. `ls -A` shows what each run left on the volume.
    let script = r#"
mount -t tmpfs -o size=16k tmpfs "$D" || exit 90
dd if=/dev/zero of="$D/fill" bs=4k 2>/dev/null
"$SUP" main --done-file "$D/done" -- touch "$OUT/ran"
echo "full-at-start rc=$? left=$(ls -A "$D" | tr '\n' ' ')"
rm -f "$D/fill"
"$SUP" main --done-file "$D/done" -- sh -c 'dd if=/dev/zero of="$D/fill" bs=4k 2>/dev/null; exit 0'
echo "filled-ok rc=$? left=$(ls -A "$D" | tr '\n' ' ')"
rm -f "$D/fill"
"$SUP" main --done-file "$D/done" -- sh -c 'dd if=/dev/zero of="$D/fill" bs=4k 2>/dev/null; exit 3'
echo "filled-fail rc=$? left=$(ls -A "$D" | tr '\n' ' ')"
"#;
    let mut c = sh_ns(&["--mount"], script);
    c.env("D", &d).env("OUT", &out);
    let o = run(c);
    assert_eq!(o.code(), Some(0), "{o}");
    // Full before the start: the lease cannot be written, the command never runs.
    assert!(has_line(&o, "full-at-start rc=125 left=fill "), "{o}");
    assert!(!out.join("ran").exists(), "the command ran{o}");
    let dir = s(&d);
    assert_mentions(
        &o,
        &[
            &format!("cannot create the lease {dir}/done.lease: No space left on device"),
            "not starting the command",
        ],
    );
    // Filled during the run: no marker, no temp file, no lease left; a success becomes 125 and a
    // failure keeps its own code.
    assert!(has_line(&o, "filled-ok rc=125 left=fill "), "{o}");
    assert!(has_line(&o, "filled-fail rc=3 left=fill "), "{o}");
    assert_mentions(
        &o,
        &[
            &format!("could not write the marker {dir}/done: No space left on device"),
            &format!("MARKER NOT WRITTEN to {dir}/done"),
        ],
    );
}

#[test]
fn read_only_volume_fails_fast_and_a_read_only_sidecar_still_works() {
    let t = tempdir();
    let d = mkdir(&t.path().join("vol"));
    let out = mkdir(&t.path().join("out"));
    let script = r#"
mkdir "$D/rw" "$D/ro" "$D/dead" || exit 90
mount -t tmpfs -o size=64k tmpfs "$D/dead" || exit 91
echo '{"exit_code":0}' > "$D/dead/done"
mount -o remount,ro "$D/dead" || exit 92
"$SUP" main --done-file "$D/dead/done" -- touch "$OUT/ran"
echo "ro rc=$? stale=$(cat "$D/dead/done")"
# A sidecar whose view of the volume is a read-only bind mount of the main's.
mount -t tmpfs -o size=64k tmpfs "$D/rw" || exit 93
mount --bind "$D/rw" "$D/ro" && mount -o remount,bind,ro "$D/ro" || exit 94
"$SUP" sidecar --exit-code main --wait-file "$D/ro/done" -- sleep 1000 &
sc=$!
"$SUP" main --done-file "$D/rw/done" -- sh -c 'exit 4'
echo "main rc=$?"
wait $sc
echo "sidecar rc=$?"
"#;
    let mut c = sh_ns(&["--mount"], script);
    c.env("D", &d).env("OUT", &out);
    let o = run(c);
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(
        o.stdout.contains(r#"ro rc=125 stale={"exit_code":0}"#),
        "{o}"
    );
    assert!(!out.join("ran").exists(), "the command ran{o}");
    assert_mentions(
        &o,
        &[&format!(
            "the marker directory {}/dead is not usable: cannot create the lease {}/dead/done.lease: Read-only file system",
            s(&d),
            s(&d)
        )],
    );
    assert!(has_line(&o, "main rc=4"), "{o}");
    assert!(has_line(&o, "sidecar rc=4"), "{o}");
}

#[test]
fn marker_directory_deleted_during_the_job_fails_the_run_and_sidecars_still_stop() {
    let t = tempdir();
    let d = mkdir(&t.path().join("vol"));
    let go = t.path().join("go");
    let done = d.join("done");
    let lease = d.join("done.lease");
    let mut c = sup_ns([
        "main",
        "--done-file",
        &s(&done),
        "--",
        "sh",
        "-c",
        r#"while [ ! -e "$GO" ]; do sleep 0.01; done; rm -rf "$D"; exit 0"#,
    ]);
    c.env("GO", &go).env("D", &d);
    let mut main = start(c);
    assert!(wait_until(DEADLINE, || lease.exists()), "no lease");
    let mut sidecar = start(sup_ns([
        "sidecar",
        "--wait-file",
        &s(&done),
        "--",
        "sleep",
        "1000",
    ]));
    assert!(
        wait_until(DEADLINE, || lock_waiters(&lease) >= 1),
        "the sidecar never waited on the lease"
    );
    std::fs::write(&go, "").unwrap();
    let m = main.finish();
    assert_eq!(m.code(), Some(125), "{m}");
    assert_mentions(
        &m,
        &[&format!(
            "could not write the marker {}: No such file or directory",
            s(&done)
        )],
    );
    assert!(!d.exists());
    // The lock dies with the main's supervisor even though its file is gone: the sidecar is told.
    let o = sidecar.finish();
    assert_eq!(o.code(), Some(0), "{o}");
    assert_mentions(&o, &["main container vanished without a marker"]);
}

#[test]
fn marker_path_that_is_a_directory_fails_fast_and_does_not_count_for_sidecars() {
    let t = tempdir();
    let done = mkdir(&t.path().join("done"));
    std::fs::write(done.join("keep"), "x").unwrap();
    let ran = t.path().join("ran");
    let o = run(sup_ns([
        "main",
        "--done-file",
        &s(&done),
        "--",
        "touch",
        &s(&ran),
    ]));
    assert_eq!(o.code(), Some(125), "{o}");
    assert_mentions(
        &o,
        &[&format!(
            "cannot remove the stale marker {}: the marker path is a directory",
            s(&done)
        )],
    );
    assert!(!ran.exists(), "the command ran{o}");
    assert!(done.join("keep").exists(), "the directory was touched");
    assert!(!t.path().join("done.lease").exists(), "lease left behind");

    let mut sc = start(sup_ns([
        "sidecar",
        "--wait-file",
        &s(&done),
        "--",
        "sh",
        "-c",
        "echo up; exec sleep 1000",
    ]));
    sc.expect_line("up", DEADLINE);
    assert!(
        sc.wait_timeout(Duration::from_millis(300)).is_none(),
        "a directory counted as a marker"
    );
    std::fs::remove_dir_all(&done).unwrap();
    std::fs::write(&done, "").unwrap();
    let o = sc.finish();
    assert_eq!(o.code(), Some(0), "{o}");
    assert_mentions(&o, &["is a directory, not a marker"]);
}

/// Victim files a planted symlink points at; each must be unchanged at the end.
struct Victims(Vec<(PathBuf, String)>);

impl Victims {
    fn new(dir: &Path, names: &[&str]) -> Self {
        Victims(
            names
                .iter()
                .map(|n| {
                    let p = dir.join(n);
                    let body = format!("victim {n}\n");
                    std::fs::write(&p, &body).unwrap();
                    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
                    (p, body)
                })
                .collect(),
        )
    }

    fn assert_untouched(&self, o: &Outcome) {
        for (p, body) in &self.0 {
            let now = std::fs::read_to_string(p).unwrap_or_default();
            assert_eq!(
                &now,
                body,
                "{} was written through a symlink{o}",
                p.display()
            );
            assert_eq!(mode(p), 0o600, "{} changed mode{o}", p.display());
        }
    }
}

fn plant(link: &Path, target: &Path) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

#[test]
fn symlinks_planted_at_marker_lease_and_temp_paths_are_replaced_never_followed() {
    let t = tempdir();
    let d = mkdir(&t.path().join("vol"));
    let v = mkdir(&t.path().join("victims"));
    let victims = Victims::new(&v, &["marker", "lease", "tmp", "leasetmp"]);
    // As PID 1 the supervisor's temp files are `.NAME.tmp.1`: predictable, so plant them all.
    plant(&d.join("done"), &v.join("marker"));
    plant(&d.join("done.lease"), &v.join("lease"));
    plant(&d.join(".done.tmp.1"), &v.join("tmp"));
    plant(&d.join(".done.lease.tmp.1"), &v.join("leasetmp"));
    // The job plants them again while it runs (the stale marker was removed at the start).
    let mut c = sup_ns([
        "main",
        "--done-file",
        &s(&d.join("done")),
        "--",
        "sh",
        "-c",
        r#"test -f "$D/done.lease" && test ! -L "$D/done.lease" && echo lease-is-a-file
ln -sfn "$V/marker" "$D/done" && ln -sfn "$V/lease" "$D/done.lease" && ln -sfn "$V/tmp" "$D/.done.tmp.1""#,
    ]);
    c.env("D", &d).env("V", &v);
    let o = run(c);
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(o.stdout.contains("lease-is-a-file"), "{o}");
    victims.assert_untouched(&o);
    assert!(is_regular(&d.join("done")), "marker is not a file{o}");
    assert_eq!(read_json(&d.join("done"))["exit_code"], 0);
    for tmp in [".done.tmp.1", ".done.lease.tmp.1"] {
        assert!(
            std::fs::symlink_metadata(d.join(tmp)).is_err(),
            "{tmp} left{o}"
        );
    }

    // The sidecar's ready file and its temp file.
    let victims = Victims::new(&v, &["ready", "readytmp"]);
    plant(&d.join("ready"), &v.join("ready"));
    plant(&d.join(".ready.tmp.1"), &v.join("readytmp"));
    let mut c = sup_ns([
        "sidecar",
        "--wait-file",
        &s(&d.join("done2")),
        "--ready-when",
        &format!("file:{}", s(&d.join("go"))),
        "--ready-file",
        &s(&d.join("ready")),
        "--",
        "sh",
        "-c",
        r#"ln -sfn "$V/ready" "$D/ready" && touch "$D/go" && exec sleep 1000"#,
    ]);
    c.env("D", &d).env("V", &v);
    let mut sc = start(c);
    assert!(
        wait_until(DEADLINE, || is_regular(&d.join("ready"))),
        "no ready file"
    );
    std::fs::write(d.join("done2"), "").unwrap();
    let o = sc.finish();
    assert_eq!(o.code(), Some(0), "{o}");
    victims.assert_untouched(&o);
    assert!(read_json(&d.join("ready"))["ready_at"].is_string());
}

#[test]
fn marker_lease_and_ready_files_are_0644_whatever_the_umask_and_readable_by_other_users() {
    let t = tempdir();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for umask in ["000", "077"] {
        let d = mkdir(&t.path().join(format!("vol{umask}")));
        let script = r#"umask "$U"; exec "$SUP" main --done-file "$D/done" -- sh -c 'echo "lease $(stat -c %a "$D/done.lease")"; exit 5'"#;
        let mut c = sh_ns(&[], script);
        c.env("U", umask).env("D", &d);
        let o = run(c);
        assert_eq!(o.code(), Some(5), "{o}");
        assert!(o.stdout.contains("lease 644"), "umask {umask}{o}");
        assert_eq!(mode(&d.join("done")), 0o644, "umask {umask}{o}");

        // Another user (a sidecar image running as nobody) reads the marker's exit code.
        let o = run(in_ns(
            &[],
            "setpriv",
            [
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--",
                bin(),
                "sidecar",
                "--exit-code",
                "main",
                "--wait-file",
                &s(&d.join("done")),
                "--",
                "sleep",
                "1000",
            ],
        ));
        assert_eq!(
            o.code(),
            Some(5),
            "umask {umask}: the marker was unreadable{o}"
        );

        let script = r#"umask "$U"; exec "$SUP" sidecar --wait-file "$D/stop" --ready-when "file:$D/go" --ready-file "$D/ready" -- sh -c 'touch "$D/go"; exec sleep 1000'"#;
        let mut c = sh_ns(&[], script);
        c.env("U", umask).env("D", &d);
        let mut sc = start(c);
        assert!(
            wait_until(DEADLINE, || is_regular(&d.join("ready"))),
            "no ready file"
        );
        std::fs::write(d.join("stop"), "").unwrap();
        let o = sc.finish();
        assert_eq!(o.code(), Some(0), "{o}");
        assert_eq!(mode(&d.join("ready")), 0o644, "umask {umask}{o}");
    }
}

// ---- inotify unavailable, nothing can watch ----

#[test]
fn without_inotify_the_sidecar_and_the_readiness_gate_still_wake_on_events() {
    let t = tempdir();
    let d = mkdir(&t.path().join("vol"));
    // In a user namespace whose inotify instance limit is 0, inotify_init fails with EMFILE; dnotify
    // still works. --poll 1h: were they polling, they would not see the files for an hour.
    let script = r#"echo 0 > /proc/sys/user/max_inotify_instances || exit 90
"$SUP" main --wait-for "file:$D/go" --wait-timeout 20s -- echo gate-passed 2>&1
echo "main rc=$?"
exec "$SUP" sidecar --poll 1h --wait-file "$D/done" -- sh -c 'echo daemon-up; exec sleep 1000' 2>&1
"#;
    let mut c = sh_ns(&["--user", "--map-root-user"], script);
    c.env("D", &d);
    let mut p = start(c);
    p.expect_line("waiting for file:", DEADLINE);
    std::fs::write(d.join("go"), "").unwrap();
    p.expect_line("gate-passed", DEADLINE);
    p.expect_line("main rc=0", DEADLINE);
    p.expect_line("daemon-up", DEADLINE);
    std::fs::write(d.join("done"), "").unwrap();
    p.expect_line("stopping the daemon", DEADLINE);
    let o = p.finish();
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(!o.stdout.contains("polling"), "{o}");
}

#[test]
fn a_directory_nothing_can_watch_is_polled() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempdir();
    let d = mkdir(&t.path().join("vol"));
    // Searchable but not readable by the supervisor's user: neither dnotify (it opens the
    // directory) nor inotify (it needs read permission) can watch it; files in it can be read.
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o711)).unwrap();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let script = r#"exec setpriv --reuid=65534 --regid=65534 --clear-groups -- sh -c '
"$SUP" main --wait-for "file:$D/go" --wait-timeout 20s -- echo gate-passed 2>&1
echo "main rc=$?"
exec "$SUP" sidecar --poll 50ms --wait-file "$D/done" -- sh -c "echo daemon-up; exec sleep 1000" 2>&1
'"#;
    let mut c = sh_ns(&[], script);
    c.env("D", &d);
    let mut p = start(c);
    let l = p.expect_line("polling every 200ms", DEADLINE);
    assert!(l.contains("cannot watch"), "{l}");
    std::fs::write(d.join("go"), "").unwrap();
    p.expect_line("gate-passed", DEADLINE);
    p.expect_line("main rc=0", DEADLINE);
    let l = p.expect_line("polling every 50ms", DEADLINE);
    assert!(l.contains("Permission denied"), "{l}");
    p.expect_line("daemon-up", DEADLINE);
    std::fs::write(d.join("done"), "").unwrap();
    p.expect_line("stopping the daemon", DEADLINE);
    let o = p.finish();
    assert_eq!(o.code(), Some(0), "{o}");
}

// ---- hostile markers ----

/// Runs ARGS (the supervisor and its arguments) as PID 1's child under helpers/maxrss.py, which
/// prints `maxrss KiB` (the peak resident memory of it and its children) once it has exited.
fn with_maxrss(args: &[&str]) -> Command {
    let mut v = vec![helper_str("maxrss.py"), bin().to_string()];
    v.extend(args.iter().map(|a| a.to_string()));
    in_ns(&[], "python3", v)
}

/// The `maxrss` line of a [`with_maxrss`] run, in MiB.
fn maxrss_mib(o: &Outcome) -> u64 {
    o.stdout
        .lines()
        .find_map(|l| l.strip_prefix("maxrss ")?.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no maxrss line{o}"))
        / 1024
}

/// Runs a sidecar on the marker `setup` makes, with `--on ON --exit-code main`, and returns its
/// outcome, run time and peak memory in MiB.
fn sidecar_on(on: &str, setup: impl FnOnce(&Path), dir: &Path) -> (Outcome, Duration, u64) {
    let done = dir.join("done");
    let _ = std::fs::remove_file(&done);
    setup(&done);
    let started = Instant::now();
    let o = run(with_maxrss(&[
        "sidecar",
        "--on",
        on,
        "--exit-code",
        "main",
        "--wait-file",
        &s(&done),
        "--",
        "sleep",
        "1000",
    ]));
    let mib = maxrss_mib(&o);
    (o, started.elapsed(), mib)
}

/// A sparse file of `len` bytes that starts with `head`.
fn sparse(path: &Path, head: &[u8], len: u64) {
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(head).unwrap();
    f.set_len(len).unwrap();
}

#[test]
fn garbage_binary_truncated_huge_and_special_markers_count_as_done_with_unknown_code() {
    let t = tempdir();
    let d = mkdir(&t.path().join("vol"));
    let v = mkdir(&t.path().join("elsewhere"));
    std::fs::write(v.join("marker"), r#"{"exit_code":7,"reason":"exited"}"#).unwrap();
    let fifo = v.join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    // The control case: a real marker's code does come through, so the 0s below mean "unknown".
    let (o, _, _) = sidecar_on(
        "any",
        |p| std::fs::write(p, r#"{"exit_code":9,"reason":"exited"}"#).unwrap(),
        &d,
    );
    assert_eq!(o.code(), Some(9), "{o}");

    type Setup = Box<dyn FnOnce(&Path)>;
    let fifo2 = fifo.clone();
    let vm = v.join("marker");
    let cases: Vec<(&str, Setup)> = vec![
        ("text", Box::new(|p| std::fs::write(p, "done\n").unwrap())),
        (
            "binary",
            Box::new(|p| {
                std::fs::write(p, (0..=255u8).cycle().take(70_000).collect::<Vec<_>>()).unwrap()
            }),
        ),
        (
            "truncated",
            Box::new(|p| std::fs::write(p, r#"{"version":1,"exit_code":3,"rea"#).unwrap()),
        ),
        (
            "nested",
            Box::new(|p| std::fs::write(p, "[".repeat(100_000)).unwrap()),
        ),
        (
            "sparse 4 GiB",
            Box::new(|p| sparse(p, br#"{"exit_code":5,"reason":"#, 4 << 30)),
        ),
        (
            // Valid JSON, but its code lies past the 64 KiB a reader reads.
            "padded past the read limit",
            Box::new(|p| {
                let body = format!(r#"{{"exit_code":5{}}}"#, " ".repeat(100_000));
                std::fs::write(p, body).unwrap()
            }),
        ),
        (
            "fifo",
            Box::new(|p| {
                assert!(Command::new("mkfifo").arg(p).status().unwrap().success());
            }),
        ),
        (
            "char device (like /dev/zero)",
            Box::new(|p| {
                assert!(
                    Command::new("mknod")
                        .arg(p)
                        .args(["c", "1", "5"])
                        .status()
                        .unwrap()
                        .success()
                );
            }),
        ),
        ("symlink to a marker", Box::new(move |p| plant(p, &vm))),
        ("symlink to a fifo", Box::new(move |p| plant(p, &fifo2))),
    ];
    for (name, setup) in cases {
        // --on success: an unknown code counts (a plain `touch` is the simplest marker).
        let (o, took, mib) = sidecar_on("success", setup, &d);
        assert_eq!(o.code(), Some(0), "{name}{o}");
        assert_mentions(&o, &["unknown exit code", "stopping the daemon"]);
        assert!(took < Duration::from_secs(5), "{name}: took {took:?}{o}");
        assert!(mib < 100, "{name}: peak memory {mib} MiB{o}");
    }
}

#[test]
fn text_in_a_hostile_marker_cannot_forge_log_lines_or_send_escapes() {
    let t = tempdir();
    let d = mkdir(&t.path().join("vol"));
    let forged = "2026-01-01T00:00:00.000Z ERROR sidecar: forged line";
    let body = serde_json::json!({
        "exit_code": 0,
        "reason": format!("x\n{forged}\u{1b}]0;title\u{7}\u{1b}[2J"),
    });
    let (o, _, _) = sidecar_on("any", |p| std::fs::write(p, body.to_string()).unwrap(), &d);
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(
        !o.stderr.lines().any(|l| l.starts_with(forged)),
        "a forged log line{o}"
    );
    assert!(
        !o.stderr.contains('\u{1b}'),
        "an escape sequence reached the log{o}"
    );
}

#[test]
fn a_huge_marker_appearing_while_the_sidecar_runs_is_read_boundedly() {
    let t = tempdir();
    let d = mkdir(&t.path().join("vol"));
    let done = d.join("done");
    let mut sc = start(with_maxrss(&[
        "sidecar",
        "--exit-code",
        "main",
        "--wait-file",
        &s(&done),
        "--",
        "sh",
        "-c",
        "echo up; exec sleep 1000",
    ]));
    sc.expect_line("up", DEADLINE);
    // 4 GiB (a hole after the first bytes), renamed into place: the sidecar's first look at it
    // is the whole file.
    sparse(
        &d.join(".done.tmp"),
        br#"{"exit_code":5,"reason":"#,
        4 << 30,
    );
    std::fs::rename(d.join(".done.tmp"), &done).unwrap();
    let o = sc.finish_with(Duration::from_secs(10));
    assert_eq!(o.code(), Some(0), "{o}");
    let mib = maxrss_mib(&o);
    assert!(mib < 100, "peak memory {mib} MiB{o}");
}

// ---- bad input ----

#[test]
fn non_utf8_arguments_environment_and_paths_pass_through_byte_for_byte() {
    let t = tempdir();
    let arg: &[u8] = b"caf\xe9 \xff\xfe \x01\x7f \xc3\xa9 -- --grace";
    let val: &[u8] = b"v\xff\x80\xfe=x";
    let done = t.path().join(OsStr::from_bytes(b"done-\xff\xfe"));
    let want_arg = format!("ARG {}", hex(arg));
    let want_env = format!("ENV {} {}", hex(val), hex(b"\xc0"));
    for mode in ["main", "sidecar"] {
        let mut args: Vec<OsString> = vec![mode.into()];
        if mode == "main" {
            args.extend(["--done-file".into(), done.clone().into_os_string()]);
        } else {
            let never = t.path().join(OsStr::from_bytes(b"never-\xff"));
            args.extend(["--wait-file".into(), never.into_os_string()]);
        }
        args.push("--".into());
        args.extend(
            python("argv_env_hex.py", &[])
                .into_iter()
                .map(OsString::from),
        );
        args.push(OsString::from_vec(arg.to_vec()));
        let mut c = sup_ns(args);
        c.env("HX_WEIRD", OsStr::from_bytes(val)).env(
            OsStr::from_bytes(b"HX_\xff\xfe"),
            OsStr::from_bytes(b"\xc0"),
        );
        let o = run(c);
        // The sidecar's daemon ends on its own with 0: that is its exit code.
        assert_eq!(o.code(), Some(0), "{mode}{o}");
        assert!(o.stdout.contains(&want_arg), "{mode}: argument changed{o}");
        assert!(
            o.stdout.contains(&want_env),
            "{mode}: environment changed{o}"
        );
    }
    // The marker landed at the exact (non-UTF-8) path and is valid JSON (the command lossily).
    let m = read_json(&done);
    assert_eq!(m["exit_code"], 0);
    assert!(
        m["command"][2].as_str().unwrap().contains('\u{fffd}'),
        "{m}"
    );
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn very_long_argument_lists_reach_the_child_and_keep_the_marker_readable() {
    let t = tempdir();
    let done = t.path().join("done");
    // 100k arguments and one of the kernel's largest (MAX_ARG_STRLEN - 1): ~1.3 MB of argv.
    let big = "y".repeat(128 * 1024 - 1);
    let long = |script: &str| {
        let mut v: Vec<String> = vec![
            "main".into(),
            "--done-file".into(),
            s(&done),
            "--".into(),
            "sh".into(),
            "-c".into(),
            script.into(),
            big.clone(),
        ];
        v.extend(std::iter::repeat_n("x".to_string(), 100_000));
        v
    };
    let o = run(sup_ns(long(r#"echo "args=$# first=${#0}""#)));
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(o.stdout.contains("args=100000 first=131071"), "{o}");
    std::fs::remove_file(&done).unwrap();

    // A sidecar reads at most 64 KiB of a marker: the main must keep the marker within that, or
    // the exit code is lost (here a failure would be reported as success).
    let mut sc = start(sup_ns([
        "sidecar",
        "--exit-code",
        "main",
        "--wait-file",
        &s(&done),
        "--",
        "sleep",
        "1000",
    ]));
    let o = run(sup_ns(long("exit 3")));
    assert_eq!(o.code(), Some(3), "{o}");
    let size = std::fs::metadata(&done).unwrap().len();
    assert!(size < 64 * 1024, "marker is {size} bytes");
    let m = read_json(&done);
    assert_eq!(m["exit_code"], 3);
    assert!(
        m["command"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .as_str()
            .unwrap()
            .contains("more arguments"),
        "{m}"
    );
    let o = sc.finish();
    assert_eq!(o.code(), Some(3), "{o}");
}

#[test]
fn everything_after_double_dash_belongs_to_the_child() {
    let t = tempdir();
    let tricky = [
        "--grace",
        "--done-file",
        "x",
        "--help",
        "--version",
        "-h",
        "--",
        "--log-level=trace",
        "--unknown",
        "-",
    ];
    let print = r#"printf '[%s]\n' "$@""#;
    let want: String = tricky.iter().map(|a| format!("[{a}]\n")).collect();
    let mut args = vec!["main", "--", "sh", "-c", print, "sh"];
    args.extend(tricky);
    let o = run(sup_ns(&args));
    assert_eq!(o.code(), Some(0), "{o}");
    assert_eq!(format!("{}\n", o.stdout), want, "{o}");

    let done = s(&t.path().join("done"));
    let mut args = vec![
        "sidecar",
        "--wait-file",
        &done,
        "--",
        "sh",
        "-c",
        print,
        "sh",
    ];
    args.extend(tricky);
    let o = run(sup_ns(&args));
    assert_eq!(o.code(), Some(0), "{o}");
    assert_eq!(format!("{}\n", o.stdout), want, "{o}");

    // A command named like a flag is a command (not found), not the supervisor's --help.
    let o = run(sup_ns(["main", "--", "--help"]));
    assert_eq!(o.code(), Some(127), "{o}");
    assert!(!o.stdout.contains("Usage"), "{o}");
    // Before `--`, an unknown flag is a usage error and nothing starts.
    let ran = t.path().join("ran");
    let o = run(sup_ns(["main", "--unknown", "--", "touch", &s(&ran)]));
    assert_eq!(o.code(), Some(2), "{o}");
    assert!(!ran.exists());
}

// ---- load ----

#[test]
fn signal_storm_leaves_the_supervisor_standing_and_the_exit_code_right() {
    let t = tempdir();
    let done = t.path().join("done");
    let mut p = start(sup_under_init([
        "main",
        "--done-file",
        &s(&done),
        "--",
        "python3",
        &helper_str("signal_counter.py"),
    ]));
    let sup_pid = grandchild(p.pid());
    p.expect_line("ready", DEADLINE);
    // 6000 signals: forwarded ones, and ones the supervisor keeps (CHLD, PIPE). Any of them with
    // its default action would kill an ordinary process.
    let storm = [10, 12, 1, 28, 23, 14, 18, 17, 13]; // USR1 USR2 HUP WINCH URG ALRM CONT CHLD PIPE
    for i in 0..6000 {
        kill(sup_pid, storm[i % storm.len()]);
    }
    assert!(alive(sup_pid), "the supervisor died in the storm");
    kill(sup_pid, 15);
    let line = p.expect_line("counts ", DEADLINE);
    let o = p.finish();
    assert_eq!(o.code(), Some(7), "{o}");
    assert!(line.contains("SIGUSR1="), "{line}");
    assert!(
        !line.contains("SIGCHLD") && !line.contains("SIGPIPE"),
        "{line}"
    );
    let m = read_json(&done);
    assert_eq!(
        (m["exit_code"].as_i64(), m["reason"].as_str()),
        (Some(7), Some("stopped")),
        "stopped by the storm's TERM, with the command's own code"
    );
}

#[test]
fn zombie_storm_as_pid_1_reaps_every_orphan_while_the_job_runs() {
    let t = tempdir();
    let done = t.path().join("done");
    // 3000 orphans re-parented to PID 1; then the job waits (bounded) until the namespace holds
    // nothing but PID 1 and itself (no orphan still running, no zombie left: a glob expanded by
    // the shell itself starts no process), and exits 3 if that happened, 99 if they stayed.
    let job = r#"
i=0
while [ $i -lt 3000 ]; do (true &); i=$((i+1)); done
n=0
while :; do
  set -- /proc/[0-9]*
  [ $# -le 2 ] && break
  n=$((n+1)); [ $n -gt 1500 ] && { echo "processes left: $*"; exit 99; }; sleep 0.02
done
echo "no zombies after 3000 orphans"; exit 3
"#;
    let o = run(in_ns(
        &["--mount-proc"],
        bin(),
        [
            "--log-level",
            "debug",
            "main",
            "--done-file",
            &s(&done),
            "--",
            "sh",
            "-c",
            job,
        ],
    ));
    assert_eq!(o.code(), Some(3), "{o}");
    assert!(o.stdout.contains("no zombies after 3000 orphans"), "{o}");
    let reaped: usize = o
        .stderr
        .lines()
        .filter_map(|l| {
            l.split("reaped ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .sum();
    assert!(reaped >= 3000, "reaped {reaped} orphans{o}");
    assert_eq!(read_json(&done)["exit_code"], 3);
}

#[test]
fn a_daemon_whose_children_fork_and_die_forever_is_reaped_and_still_stopped() {
    let t = tempdir();
    let done = t.path().join("done");
    let churn =
        r#"i=0; while :; do (true &); i=$((i+1)); [ $((i % 500)) = 0 ] && echo "forked $i"; done"#;
    let mut p = start(sup_under_init([
        "sidecar",
        "--wait-file",
        &s(&done),
        "--",
        "sh",
        "-c",
        churn,
    ]));
    let sup_pid = grandchild(p.pid());
    p.expect_line("forked 3000", DEADLINE);
    // Without reaping, 3000 zombies would hang off the supervisor; a few in flight are fine.
    let z = zombies_of(sup_pid);
    assert!(z < 300, "{z} zombies under the supervisor");
    std::fs::write(&done, "").unwrap();
    let o = p.finish();
    assert_eq!(o.code(), Some(0), "{o}");
    assert_mentions(&o, &["stopping the daemon", "stopped in"]);
}

#[test]
fn a_daemon_that_daemonizes_and_exits_ends_the_sidecar_and_leaves_no_straggler() {
    let t = tempdir();
    let bg = t.path().join("bg");
    let mut c = sup([
        "sidecar",
        "--wait-file",
        &s(&t.path().join("done")),
        "--",
        "sh",
        "-c",
        // Its output elsewhere: a straggler holding the test's pipes would hang the test, not fail it.
        r#"sleep 1000 >/dev/null 2>&1 & echo $! > "$BG.tmp" && mv "$BG.tmp" "$BG"; exit 0"#,
    ]);
    c.env("BG", &bg);
    let o = run(c);
    let pid: i32 = std::fs::read_to_string(&bg)
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no background pid{o}"));
    let gone = wait_until(Duration::from_secs(2), || !alive(pid));
    if !gone {
        kill(pid, 9);
    }
    // 121: it daemonized (trust.rs), which is what leaving a background child and exiting 0 is.
    assert_eq!(o.code(), Some(121), "{o}");
    assert_mentions(&o, &["it daemonized"]);
    assert!(
        gone,
        "the daemon's background child outlived the sidecar{o}"
    );
}

// ---- terminals ----

#[test]
fn interactive_shell_under_a_pseudo_terminal_gets_ctrl_c_job_control_and_its_exit_code() {
    // helpers/pty_driver.py drives `supervisor main -- bash -i` on a pseudo-terminal: a command,
    // Ctrl-C of a foreground job, Ctrl-Z and kill of a stopped job, then `exit 0`.
    let o = run(in_ns(
        &["--mount-proc"],
        "python3",
        [helper_str("pty_driver.py").as_str(), bin()],
    ));
    assert!(o.stdout.contains("TTY-OK"), "{o}");
    assert_eq!(o.code(), Some(0), "{o}");
}

// ---- quit URLs ----

#[derive(Clone, Copy)]
enum Reply {
    /// 302 to another URL.
    Redirect(u16),
    /// A status line (or not), then bytes without a newline, forever.
    Endless {
        status_line: bool,
    },
    /// Reads the request and never answers.
    Silent,
    Ok,
}

/// A one-connection HTTP server on `bind` that sends each request line it gets to the channel and
/// answers as told. The thread ends when the client goes (or after 20 s).
fn http_server(bind: &str, reply: Reply) -> (u16, mpsc::Receiver<String>) {
    let l = TcpListener::bind(bind).expect("bind");
    let port = l.local_addr().unwrap().port();
    l.set_nonblocking(true).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(20);
        let mut c = loop {
            match l.accept() {
                Ok((c, _)) => break c,
                Err(_) if Instant::now() < end => std::thread::sleep(Duration::from_millis(5)),
                Err(_) => return,
            }
        };
        c.set_nonblocking(false).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match c.read(&mut b) {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&b[..n]),
            }
        }
        let line = String::from_utf8_lossy(&head)
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        let _ = tx.send(line);
        match reply {
            Reply::Ok => {
                let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
            }
            Reply::Redirect(to) => {
                let _ = write!(
                    c,
                    "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{to}/quitquitquit\r\nContent-Length: 0\r\n\r\n"
                );
            }
            Reply::Endless { status_line } => {
                if status_line {
                    let _ = c.write_all(b"HTTP/1.1 200 OK\r\n");
                }
                let chunk = [b'A'; 8192];
                while Instant::now() < end && c.write_all(&chunk).is_ok() {}
            }
            Reply::Silent => {
                // Hold the connection until the client gives up.
                let _ = c.read(&mut b);
            }
        }
    });
    (port, rx)
}

/// `supervisor main --quit-url URL -- true`, timed.
fn main_quitting(urls: &[String], extra: &[&str]) -> (Outcome, Duration) {
    let mut args: Vec<String> = vec!["main".into()];
    for u in urls {
        args.extend(["--quit-url".into(), u.clone()]);
    }
    args.extend(extra.iter().map(|e| e.to_string()));
    args.extend(["--".into(), "true".into()]);
    let started = Instant::now();
    let o = run(sup_ns(args));
    (o, started.elapsed())
}

#[test]
fn quit_urls_must_be_loopback_unless_allowed() {
    let t = tempdir();
    let ran = t.path().join("ran");
    for url in [
        "http://10.0.0.1/quitquitquit",
        "http://example.com/",
        "http://localhost.example.com/",
        "http://127.0.0.1.nip.io/",
        "http://169.254.169.254/",
        "http://0.0.0.0:1/",
        "http://[::]:1/",
    ] {
        for mode in ["main", "sidecar"] {
            let mut args = vec![mode, "--quit-url", url];
            if mode == "sidecar" {
                args.extend(["--wait-file", "/nonexistent/done"]);
            }
            args.extend(["--", "touch", ran.to_str().unwrap()]);
            let o = run(sup_ns(&args));
            assert_eq!(o.code(), Some(2), "{mode} {url}{o}");
            assert_mentions(&o, &["is not a loopback address", "--allow-remote-quit"]);
            assert!(!ran.exists(), "{mode} {url}: the command ran{o}");
        }
    }
    // With the flag, a non-loopback literal is used as given (0.0.0.0 reaches this host).
    let (port, rx) = http_server("0.0.0.0:0", Reply::Ok);
    let (o, _) = main_quitting(
        &[format!("http://0.0.0.0:{port}/quitquitquit")],
        &["--allow-remote-quit"],
    );
    assert_eq!(o.code(), Some(0), "{o}");
    assert_eq!(
        rx.recv_timeout(DEADLINE).as_deref(),
        Ok("POST /quitquitquit HTTP/1.1")
    );
}

#[test]
fn quit_url_redirects_are_not_followed() {
    let elsewhere = TcpListener::bind("127.0.0.1:0").unwrap();
    elsewhere.set_nonblocking(true).unwrap();
    let to = elsewhere.local_addr().unwrap().port();
    let (port, rx) = http_server("127.0.0.1:0", Reply::Redirect(to));
    let (o, _) = main_quitting(&[format!("http://127.0.0.1:{port}/quit")], &[]);
    assert_eq!(o.code(), Some(0), "{o}");
    assert_eq!(
        rx.recv_timeout(DEADLINE).as_deref(),
        Ok("POST /quit HTTP/1.1")
    );
    assert_mentions(&o, &["answered 302 (not a success; not followed)"]);
    // The main has exited: had it followed the Location, its connection would be queued here.
    assert!(
        matches!(elsewhere.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the redirect was followed{o}"
    );
}

#[test]
fn quit_url_responses_are_bounded_and_time_limited() {
    // No newline, ever: reading stops at the head limit instead of buffering the stream.
    let (port, rx) = http_server("127.0.0.1:0", Reply::Endless { status_line: false });
    let (o, took) = main_quitting(&[format!("http://127.0.0.1:{port}/q")], &[]);
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(rx.recv_timeout(DEADLINE).is_ok());
    assert_mentions(&o, &["no final status in the first 8192 bytes"]);
    assert!(took < Duration::from_millis(1500), "took {took:?}{o}");

    // A status line then an endless body: the status is all that is read.
    let (port, _rx) = http_server("127.0.0.1:0", Reply::Endless { status_line: true });
    let (o, took) = main_quitting(&[format!("http://127.0.0.1:{port}/q")], &[]);
    assert_eq!(o.code(), Some(0), "{o}");
    assert_mentions(&o, &["answered 200"]);
    assert!(took < Duration::from_millis(1500), "took {took:?}{o}");

    // Accepts and never answers: the main still exits after the 2 s quit timeout.
    let (port, rx) = http_server("127.0.0.1:0", Reply::Silent);
    let (o, took) = main_quitting(&[format!("http://127.0.0.1:{port}/q")], &[]);
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(rx.recv_timeout(DEADLINE).is_ok());
    assert_mentions(&o, &["no answer within 2000ms"]);
    assert!(took < Duration::from_secs(3), "took {took:?}{o}");

    // The sidecar: a silent quit endpoint falls back to the stop signal after the timeout, long
    // before the 10 s grace would SIGKILL.
    let t = tempdir();
    let done = t.path().join("done");
    std::fs::write(&done, "").unwrap();
    let (port, _rx) = http_server("127.0.0.1:0", Reply::Silent);
    let started = Instant::now();
    let o = run(sup_ns([
        "sidecar",
        "--wait-file",
        &s(&done),
        "--quit-url",
        &format!("http://127.0.0.1:{port}/q"),
        "--",
        "sleep",
        "1000",
    ]));
    let took = started.elapsed();
    assert_eq!(o.code(), Some(0), "{o}");
    assert_mentions(&o, &["no quit URL succeeded; sending TERM"]);
    assert!(took < Duration::from_secs(4), "took {took:?}{o}");
}

// ---- an unprivileged user ----

fn as_nobody<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut v: Vec<OsString> = vec![
        "--reuid=65534".into(),
        "--regid=65534".into(),
        "--clear-groups".into(),
        "--".into(),
        bin().into(),
    ];
    v.extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
    in_ns(&[], "setpriv", v)
}

#[test]
fn both_modes_work_as_an_unprivileged_user() {
    let t = tempdir();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let d = mkdir(&t.path().join("vol"));
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
    let done = d.join("done");
    let mut sc = start(as_nobody([
        "sidecar",
        "--exit-code",
        "main",
        "--wait-file",
        &s(&done),
        "--",
        "sleep",
        "1000",
    ]));
    let o = run(as_nobody([
        "main",
        "--done-file",
        &s(&done),
        "--",
        "sh",
        "-c",
        "echo \"uid=$(id -u) gid=$(id -g)\"; exit 6",
    ]));
    assert_eq!(o.code(), Some(6), "{o}");
    assert!(o.stdout.contains("uid=65534 gid=65534"), "{o}");
    let meta = std::fs::metadata(&done).unwrap();
    assert_eq!((meta.uid(), mode(&done)), (65534, 0o644));
    let o = sc.finish();
    assert_eq!(o.code(), Some(6), "{o}");

    // A marker directory this user cannot write: fail fast, before the command.
    let root_only = mkdir(&t.path().join("root-only"));
    let ran = d.join("ran");
    let o = run(as_nobody([
        "main",
        "--done-file",
        &s(&root_only.join("done")),
        "--",
        "touch",
        &s(&ran),
    ]));
    assert_eq!(o.code(), Some(125), "{o}");
    assert_mentions(&o, &["Permission denied", "not starting the command"]);
    assert!(!ran.exists());
}
