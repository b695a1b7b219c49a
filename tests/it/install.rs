//! `supervisor install DIR`: the init-container copy.

use crate::util::*;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

#[test]
fn installs_atomically_idempotently_and_runs() {
    let d = tempdir();
    let dir = d.path().join("a/b/bin");
    for round in 0..2 {
        let o = run(sup(["install", &path_str(&dir)]));
        assert_eq!(o.code(), Some(0), "round {round}: {o}");
        let installed = dir.join("supervisor");
        assert_eq!(
            o.stdout.trim(),
            path_str(&installed),
            "prints the installed path: {o}"
        );
        let meta = std::fs::metadata(&installed).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o755);
        assert_eq!(
            std::fs::read(&installed).unwrap(),
            std::fs::read(bin()).unwrap()
        );
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["supervisor"], "no temp file left behind");
    }
    // Re-installing over a copy that is running (another container already uses it) works.
    let installed = dir.join("supervisor");
    let mut p = start({
        let mut c = Command::new(&installed);
        c.args(["main", "--", "sh", "-c", "echo ready; exec sleep 1000"]);
        c
    });
    p.expect_line("ready", DEADLINE);
    let o = run(sup(["install", &path_str(&dir)]));
    assert_eq!(o.code(), Some(0), "{o}");
    let mut version = Command::new(&installed);
    version.arg("--version");
    let o = run(version);
    assert_eq!(o.code(), Some(0), "{o}");
    p.signal(15);
    assert_eq!(p.finish().code(), Some(143));
}

#[test]
fn read_only_and_full_targets_fail_clearly() {
    let d = tempdir();
    let mnt = d.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    for (opts, needle) in [
        ("ro,size=4m", "Read-only file system"),
        ("size=64k", "No space left on device"),
    ] {
        let script = format!(
            "mount -t tmpfs -o {opts} tmpfs {m} && exec {b} install {m}/bin",
            m = path_str(&mnt),
            b = bin()
        );
        let mut c = Command::new("unshare");
        c.args(["--mount", "--propagation", "private", "sh", "-c", &script]);
        let o = run(c);
        assert_eq!(o.code(), Some(125), "{opts}: {o}");
        assert!(
            o.stderr.contains(needle),
            "{opts}: must give the OS error: {o}"
        );
        assert!(
            o.stderr.contains(&path_str(&mnt)),
            "{opts}: must name the directory: {o}"
        );
    }
}
