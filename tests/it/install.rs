//! `supervisor install DIR`: the init-container copy, and the static linking it insists on.

use crate::util::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use supervisor::elf::{self, Linkage};

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

// ---- static linking ----

/// Whether readelf (an independent reading of the ELF headers) sees neither a program
/// interpreter nor a needed shared library.
fn readelf_says_static(readelf: &Path, file: &str) -> bool {
    let mut headers = Command::new(readelf);
    headers.args(["--wide", "--program-headers", "--dynamic", file]);
    let o = run(headers);
    assert_eq!(o.code(), Some(0), "{o}");
    !o.stdout.contains("INTERP") && !o.stdout.contains("(NEEDED)")
}

fn linkage_of(file: &str) -> Linkage {
    let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{file}: {e}"));
    elf::linkage(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn the_binary_cargo_test_builds_is_static_as_readelf_confirms() {
    // .cargo/config.toml makes the musl target the default, so `cargo test` runs the very kind of
    // binary `cargo build --release` ships.
    assert_eq!(linkage_of(bin()), Linkage::Static, "{}", bin());
    let Some(readelf) = tool("readelf", "binutils") else {
        return;
    };
    assert!(readelf_says_static(&readelf, bin()), "{}", bin());
    // The parser agrees with readelf on a dynamic and a static executable of the host.
    let Linkage::Dynamic { interpreter, .. } = linkage_of("/bin/true") else {
        panic!("/bin/true is not dynamic: {:?}", linkage_of("/bin/true"));
    };
    assert!(interpreter.is_some_and(|i| i.contains("ld-")));
    assert!(!readelf_says_static(&readelf, "/bin/true"));
    let Some(busybox) = tool("busybox", "busybox-static") else {
        return;
    };
    let busybox = path_str(&busybox);
    assert_eq!(linkage_of(&busybox), Linkage::Static, "{busybox}");
    assert!(readelf_says_static(&readelf, &busybox), "{busybox}");
}

/// A dynamically linked (glibc) build of the supervisor: what `cargo build --release` gave before
/// the musl target became the default. Built once into a target directory of its own (the outer
/// cargo holds the lock on ours); later runs only check that it is fresh.
fn dynamic_build() -> PathBuf {
    let target_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dynamic-build");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut c = Command::new(cargo);
    c.args([
        "build",
        "--offline",
        "--locked",
        "--bin",
        "supervisor",
        "--target",
        "x86_64-unknown-linux-gnu",
    ])
    .current_dir(env!("CARGO_MANIFEST_DIR"))
    .env("CARGO_TARGET_DIR", &target_dir)
    .env_remove("RUSTFLAGS")
    .env_remove("CARGO_ENCODED_RUSTFLAGS");
    let o = start(c).finish_with(Duration::from_secs(900));
    assert_eq!(o.code(), Some(0), "the glibc build failed{o}");
    target_dir.join("x86_64-unknown-linux-gnu/debug/supervisor")
}

#[test]
fn a_dynamically_linked_binary_is_refused_unless_allow_dynamic() {
    let dynamic = dynamic_build();
    let dynamic_str = path_str(&dynamic);
    assert!(
        matches!(linkage_of(&dynamic_str), Linkage::Dynamic { .. }),
        "the glibc build is static"
    );
    let d = tempdir();
    let dir = d.path().join("bin");
    let install = |extra: &[&str]| {
        let mut c = Command::new(&dynamic);
        sup_env(c.arg("install").args(extra).arg(&dir));
        run(c)
    };

    let o = install(&[]);
    assert_eq!(o.code(), Some(125), "{o}");
    assert_eq!(o.stderr.trim().lines().count(), 1, "one line{o}");
    for needle in [
        "refusing to install",
        &dynamic_str,
        "dynamically linked",
        "ld-linux",
        "cargo build --release",
        "--allow-dynamic",
    ] {
        assert!(o.stderr.contains(needle), "{needle:?} missing{o}");
    }
    assert!(!dir.exists(), "something was written{o}");

    let o = install(&["--allow-dynamic"]);
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(o.stderr.contains("--allow-dynamic"), "no warning{o}");
    let installed = dir.join("supervisor");
    assert_eq!(o.stdout.trim(), path_str(&installed), "{o}");
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(&dynamic).unwrap()
    );
}
